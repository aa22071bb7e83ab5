#include "ctgov/client.h"

#include <cmath>
#include <random>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "ctgov/curl_transport.h"
#include "model/study.h"

namespace trialmatch::ctgov {

using common::ToAbsl;

namespace {

// What a successful body must look like.
struct Expect {
  const char* accept;  // Accept request header
  const char* what;    // for messages: "JSON", "CSV", ...
};
constexpr Expect kJsonBody{"application/json", "JSON"};
constexpr Expect kFhirBody{"application/fhir+json, application/json", "JSON"};
constexpr Expect kCsvBody{"text/csv", "CSV"};
constexpr Expect kRisBody{
    "application/x-research-info-systems, text/plain, */*", "RIS"};

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 ||
         status == 308;
}

bool IsTransientTransportError(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

// Body of a raw-JSON operation: validated, returned as sent.
absl::StatusOr<std::string> JsonBody(HttpResponse& response) {
  TRIALMATCH_RETURN_IF_ERROR(ValidateJson(response.body));
  return std::move(response.body);
}

// The NCT id at the end of a Location header ("/api/v2/studies/NCT01234567",
// absolute or relative, query ignored); "" when there is none.
std::string IdFromLocation(std::string_view location) {
  std::string_view path = location;
  if (auto q = path.find_first_of("?#"); q != std::string_view::npos) {
    path = path.substr(0, q);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (auto slash = path.rfind('/'); slash != std::string_view::npos) {
    path.remove_prefix(slash + 1);
  }
  std::string id = absl::AsciiStrToUpper(ToAbsl(path));
  return model::IsValidNctId(id) ? id : std::string();
}

}  // namespace

struct CtgovClient::Impl {
  Impl(CtgovOptions o, std::shared_ptr<HttpTransport> t, common::Clock& c,
       std::uint64_t seed)
      : options(std::move(o)),
        transport(std::move(t)),
        clock(c),
        limiter(options.requests_per_second, c),
        seeder(seed) {}

  std::uint64_t NextSeed() {
    absl::MutexLock lock(&mu);
    return seeder();
  }

  // One GET with rate limiting and retries. `parse` turns a 2xx response
  // (or, with allow_redirect, a 3xx) into T; a kDataLoss from it means
  // "malformed body" and is retried.
  template <typename T, typename Parse>
  absl::StatusOr<T> Call(std::string_view path, const std::string& query,
                         const Expect& expect, bool allow_redirect,
                         Parse&& parse) {
    HttpRequest request;
    request.url = absl::StrCat(options.base_url, ToAbsl(path),
                               query.empty() ? "" : "?", query);
    request.headers.Add("Accept", expect.accept);
    request.connect_timeout = options.connect_timeout;
    request.timeout = options.timeout;
    request.low_speed_bytes_per_second = options.low_speed_bytes_per_second;
    request.low_speed_time = options.low_speed_time;
    request.max_body_bytes = options.max_response_bytes;
    const std::string operation = absl::StrCat("GET ", ToAbsl(path));

    ExponentialBackoff backoff(options.retry, NextSeed());
    std::optional<T> result;
    const absl::Status status = RetryLoop(
        options.retry, backoff, clock, &limiter, operation,
        [&](int) -> AttemptOutcome {
          absl::StatusOr<HttpResponse> got = transport->Get(request);
          if (!got.ok()) {
            return AttemptOutcome::Failure(
                got.status(), IsTransientTransportError(got.status()));
          }
          HttpResponse& response = *got;
          if (!(allow_redirect && IsRedirect(response.status))) {
            if (response.status < 200 || response.status >= 300) {
              AttemptOutcome failed = AttemptOutcome::Failure(
                  AsStatus(response), IsTransientHttpStatus(response.status));
              if (auto ra = response.headers.Get("Retry-After");
                  ra.has_value() && failed.transient) {
                failed.retry_after = ParseRetryAfter(*ra, clock.Now());
              }
              return failed;
            }
            if (LooksLikeHtml(response)) {
              return AttemptOutcome::Failure(
                  absl::UnavailableError(absl::StrCat(
                      "HTTP ", response.status, " with an HTML page where ",
                      expect.what, " was expected")),
                  /*transient=*/true);
            }
          }
          const std::size_t bytes = response.body.size();
          absl::StatusOr<T> parsed = parse(response);
          if (!parsed.ok()) {
            return AttemptOutcome::Failure(
                parsed.status(),
                parsed.status().code() == absl::StatusCode::kDataLoss);
          }
          TM_LOG_DEBUG("ctgov", operation, " -> HTTP ", response.status, ", ",
                       bytes, " bytes");
          result.emplace(*std::move(parsed));
          return AttemptOutcome::Success();
        });
    if (!status.ok()) return status;
    return *std::move(result);
  }

  CtgovOptions options;
  std::shared_ptr<HttpTransport> transport;
  common::Clock& clock;
  RateLimiter limiter;
  absl::Mutex mu;
  std::mt19937_64 seeder ABSL_GUARDED_BY(mu);
};

absl::StatusOr<CtgovClient> CtgovClient::Create(
    CtgovOptions options, std::shared_ptr<HttpTransport> transport,
    common::Clock& clock) {
  if (transport == nullptr) {
    return absl::InvalidArgumentError("CtgovClient: transport is null");
  }
  std::string& base = options.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string_view b = base;
  const std::size_t scheme = b.rfind("https://", 0) == 0  ? 8
                             : b.rfind("http://", 0) == 0 ? 7
                                                          : 0;
  if (scheme == 0 || b.size() == scheme ||
      b.find_first_of("?# ") != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CtgovClient: base_url must be an http(s) URL without query, got '",
        base.substr(0, 100), "'"));
  }
  const RetryOptions& r = options.retry;
  if (r.max_attempts < 1) {
    return absl::InvalidArgumentError("CtgovClient: retry.max_attempts < 1");
  }
  if (r.max_total_time < absl::ZeroDuration() ||
      r.initial_backoff < absl::ZeroDuration() ||
      r.max_backoff < absl::ZeroDuration() ||
      r.max_retry_after < absl::ZeroDuration() ||
      options.connect_timeout < absl::ZeroDuration() ||
      options.timeout < absl::ZeroDuration() ||
      options.low_speed_time < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "CtgovClient: negative duration in options");
  }
  if (!(r.backoff_multiplier >= 1.0) || !std::isfinite(r.backoff_multiplier)) {
    return absl::InvalidArgumentError(
        "CtgovClient: retry.backoff_multiplier must be >= 1");
  }
  if (!std::isfinite(options.requests_per_second)) {
    return absl::InvalidArgumentError(
        "CtgovClient: requests_per_second must be finite");
  }
  if (options.max_response_bytes == 0) {
    return absl::InvalidArgumentError("CtgovClient: max_response_bytes is 0");
  }
  const std::uint64_t seed =
      options.random_seed.has_value()
          ? *options.random_seed
          : (std::uint64_t{std::random_device{}()} << 32) ^
                std::random_device{}();
  return CtgovClient(std::make_shared<Impl>(std::move(options),
                                            std::move(transport), clock, seed));
}

absl::StatusOr<CtgovClient> CtgovClient::CreateDefault(CtgovOptions options) {
  TRIALMATCH_ASSIGN_OR_RETURN(std::shared_ptr<CurlTransport> transport,
                              CurlTransport::Create());
  return Create(std::move(options), std::move(transport),
                common::SystemClock::Default());
}

const CtgovOptions& CtgovClient::options() const { return impl_->options; }

absl::StatusOr<StudyPage> CtgovClient::SearchStudies(
    const SearchParams& params) const {
  TRIALMATCH_ASSIGN_OR_RETURN(std::string query, BuildSearchQuery(params));
  if (params.format == SearchFormat::kJson) {
    return impl_->Call<StudyPage>(
        "/studies", query, kJsonBody, /*allow_redirect=*/false,
        [](HttpResponse& r) { return ParseStudiesPage(r.body); });
  }
  return impl_->Call<StudyPage>(
      "/studies", query, kCsvBody, /*allow_redirect=*/false,
      [](HttpResponse& r) -> absl::StatusOr<StudyPage> {
        StudyPage page;
        if (auto token = r.headers.Get("x-next-page-token")) {
          page.next_page_token = std::string(*token);
        }
        if (auto total = r.headers.Get("x-total-count")) {
          std::int64_t n = 0;
          if (!absl::SimpleAtoi(ToAbsl(*total), &n) || n < 0) {
            return absl::DataLossError("x-total-count is not a count");
          }
          page.total_count = n;
        }
        page.csv = std::move(r.body);
        return page;
      });
}

absl::StatusOr<StudyRecord> CtgovClient::GetStudy(
    std::string_view nct_id, const GetStudyOptions& options) const {
  if (!model::IsValidNctId(nct_id)) {
    return absl::InvalidArgumentError(
        "GetStudy: the id must be \"NCT\" followed by 8 digits");
  }
  const bool json = options.format == StudyFormat::kJson ||
                    options.format == StudyFormat::kFhirJson;
  const Expect& expect = options.format == StudyFormat::kJson       ? kJsonBody
                         : options.format == StudyFormat::kFhirJson ? kFhirBody
                         : options.format == StudyFormat::kCsv      ? kCsvBody
                                                                    : kRisBody;
  QueryString q;
  q.Add("format", FormatName(options.format));
  if (json) {
    q.Add("markupFormat",
          options.markup_format == MarkupFormat::kMarkdown ? "markdown"
          : options.markup_format == MarkupFormat::kLegacy ? "legacy"
                                                           : "");
  }
  q.AddList("fields", options.fields);

  struct Got {
    bool redirect = false;
    std::string location;
    std::string body;
  };
  auto fetch = [&](const std::string& id) {
    return impl_->Call<Got>(
        absl::StrCat("/studies/", id), q.str(), expect,
        /*allow_redirect=*/true,
        [json](HttpResponse& r) -> absl::StatusOr<Got> {
          Got got;
          if (IsRedirect(r.status)) {
            got.redirect = true;
            got.location = std::string(r.headers.Get("Location").value_or(""));
            return got;
          }
          if (json) TRIALMATCH_RETURN_IF_ERROR(ValidateJson(r.body));
          got.body = std::move(r.body);
          return got;
        });
  };

  StudyRecord record;
  record.requested_id = std::string(nct_id);
  record.nct_id = record.requested_id;
  TRIALMATCH_ASSIGN_OR_RETURN(Got got, fetch(record.nct_id));
  if (got.redirect) {
    const std::string target = IdFromLocation(got.location);
    if (target.empty()) {
      return absl::DataLossError(
          absl::StrCat("GET /studies/", record.requested_id,
                       ": redirect without an NCT id in its Location header"));
    }
    TM_LOG_INFO("ctgov", record.requested_id, " is an alias of ", target);
    record.nct_id = target;
    record.redirected = true;
    TRIALMATCH_ASSIGN_OR_RETURN(got, fetch(target));
    if (got.redirect) {
      return absl::DataLossError(absl::StrCat(
          "GET /studies/", record.requested_id, ": redirected to ", target,
          " which redirects again; only one redirect is followed"));
    }
  }
  if (options.format == StudyFormat::kJson) {
    if (std::optional<std::string> id = StudyNctIdOf(got.body);
        id.has_value() && model::IsValidNctId(*id)) {
      record.nct_id = *std::move(id);
    }
  }
  record.body = std::move(got.body);
  return record;
}

absl::StatusOr<std::string> CtgovClient::GetStudiesMetadata(
    bool include_indexed_only, bool include_historic_only) const {
  QueryString q;
  if (include_indexed_only) q.Add("includeIndexedOnly", "true");
  if (include_historic_only) q.Add("includeHistoricOnly", "true");
  return impl_->Call<std::string>("/studies/metadata", q.str(), kJsonBody,
                                  false, JsonBody);
}

absl::StatusOr<std::string> CtgovClient::GetSearchAreas() const {
  return impl_->Call<std::string>("/studies/search-areas", "", kJsonBody, false,
                                  JsonBody);
}

absl::StatusOr<std::string> CtgovClient::GetEnums() const {
  return impl_->Call<std::string>("/studies/enums", "", kJsonBody, false,
                                  JsonBody);
}

absl::StatusOr<std::string> CtgovClient::GetStatsSize() const {
  return impl_->Call<std::string>("/stats/size", "", kJsonBody, false,
                                  JsonBody);
}

absl::StatusOr<std::string> CtgovClient::GetFieldValuesStats(
    const std::vector<std::string>& types,
    const std::vector<std::string>& fields) const {
  QueryString q;
  q.AddList("types", types);
  q.AddList("fields", fields);
  return impl_->Call<std::string>("/stats/field/values", q.str(), kJsonBody,
                                  false, JsonBody);
}

absl::StatusOr<std::string> CtgovClient::GetListFieldSizes(
    const std::vector<std::string>& fields) const {
  QueryString q;
  q.AddList("fields", fields);
  return impl_->Call<std::string>("/stats/field/sizes", q.str(), kJsonBody,
                                  false, JsonBody);
}

absl::StatusOr<CtgovClient::Version> CtgovClient::GetVersion() const {
  return impl_->Call<Version>(
      "/version", "", kJsonBody, false,
      [](HttpResponse& r) -> absl::StatusOr<Version> {
        TRIALMATCH_ASSIGN_OR_RETURN(ApiVersion parsed, ParseVersion(r.body));
        return Version{std::move(parsed), std::move(r.body)};
      });
}

absl::StatusOr<PagingSummary> CtgovClient::ForEachPage(
    SearchParams first, const PagingOptions& paging,
    const PageCallback& on_page) const {
  PagingSummary summary;
  absl::flat_hash_set<std::string> seen;
  SearchParams params = std::move(first);
  if (!params.page_token.empty()) seen.insert(params.page_token);
  while (true) {
    if (paging.cancelled != nullptr && paging.cancelled->load()) {
      return absl::CancelledError(absl::StrCat(
          "GET /studies: paging cancelled after ", summary.pages, " pages"));
    }
    TRIALMATCH_ASSIGN_OR_RETURN(StudyPage page, SearchStudies(params));
    if (summary.pages == 0) summary.total_count = page.total_count;
    ++summary.pages;
    summary.studies += static_cast<std::int64_t>(page.studies.size());
    std::string next = page.next_page_token;
    TRIALMATCH_RETURN_IF_ERROR(on_page(page));
    if (next.empty()) {
      summary.complete = true;
      summary.next_page_token.clear();
      return summary;
    }
    if (!seen.insert(next).second) {
      return absl::DataLossError(
          absl::StrCat("GET /studies: the server repeated a page token after ",
                       summary.pages, " pages (paging loop)"));
    }
    summary.next_page_token = next;
    if (paging.max_pages > 0 && summary.pages >= paging.max_pages) {
      return summary;
    }
    if (paging.max_studies > 0 && summary.studies >= paging.max_studies) {
      return summary;
    }
    params.page_token = std::move(next);
    params.count_total = false;
  }
}

}  // namespace trialmatch::ctgov
