#include "server/study_backend.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "criteria/compiler.h"
#include "model/study.h"
#include "server/convert.h"
#include "server/criteria_convert.h"
#include "server/grpc_status.h"
#include "server/page_token.h"
#include "sync/criteria_refresh.h"

namespace trialmatch::server {

using common::ToAbsl;

namespace {

// Room left in a response for everything but the studies (token, total,
// freshness, framing).
constexpr std::size_t kEnvelopeBytes = 16 * 1024;
constexpr int32_t kMaxPageSize = 1000;
constexpr int32_t kUpstreamDefaultPageSize = 10;

// A client's text, quoted and cut, for an error message.
std::string Quoted(std::string_view text, std::size_t max = 40) {
  std::string cut(text.substr(0, max));
  return absl::StrCat("'", absl::CHexEscape(cut),
                      text.size() > max ? "...'" : "'");
}

// Cut to a readable length for notes and messages.
std::string Shorten(std::string_view text, std::size_t max = 240) {
  if (text.size() <= max) return std::string(text);
  return absl::StrCat(ToAbsl(text.substr(0, max - 3)), "...");
}

absl::StatusOr<std::string> NormalizeNctId(std::string_view raw) {
  std::string id(absl::StripAsciiWhitespace(ToAbsl(raw)));
  absl::AsciiStrToUpper(&id);
  if (!model::IsValidNctId(id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "nct_id must be \"NCT\" followed by 8 digits (e.g. NCT01234567), got ",
        Quoted(raw)));
  }
  return id;
}

absl::Status ValidatePageSize(int64_t page_size, std::string_view field) {
  if (page_size < 0 || page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(field), " must be between 0 and ", kMaxPageSize,
                     " (0 = default), got ", page_size));
  }
  return absl::OkStatus();
}

absl::Status ValidateFormat(int format) {
  if (!v1::Format_IsValid(format)) {
    return absl::InvalidArgumentError(
        absl::StrCat("format must be FORMAT_JSON or FORMAT_CSV, got ", format));
  }
  return absl::OkStatus();
}

bool IsCsv(int format) { return format == v1::FORMAT_CSV; }

// Upper-cases each value and checks it against the API's Status enum.
absl::Status NormalizeStatuses(
    google::protobuf::RepeatedPtrField<std::string>* values,
    std::string_view field) {
  const std::vector<std::string>& allowed = StudyStatusValues();
  for (std::string& v : *values) {
    std::string upper(absl::StripAsciiWhitespace(v));
    absl::AsciiStrToUpper(&upper);
    if (std::find(allowed.begin(), allowed.end(), upper) == allowed.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown ", ToAbsl(field), " value ", Quoted(v),
                       "; allowed values: ", absl::StrJoin(allowed, ", ")));
    }
    v = std::move(upper);
  }
  return absl::OkStatus();
}

std::vector<std::string> ToVector(
    const google::protobuf::RepeatedPtrField<std::string>& values) {
  return {values.begin(), values.end()};
}

ctgov::StudyQuery ToCtgov(const v1::StudyQuery& q) {
  ctgov::StudyQuery out;
  out.cond = q.cond();
  out.term = q.term();
  out.locn = q.locn();
  out.titles = q.titles();
  out.intr = q.intr();
  out.outc = q.outc();
  out.spons = q.spons();
  out.lead = q.lead();
  out.id = q.id();
  out.patient = q.patient();
  return out;
}

ctgov::StudyFilters ToCtgov(const v1::StudyFilter& f) {
  ctgov::StudyFilters out;
  out.overall_status = ToVector(f.overall_status());
  out.geo = f.geo();
  out.ids = ToVector(f.ids());
  out.advanced = f.advanced();
  if (!f.synonyms().empty()) out.synonyms = {f.synonyms()};
  return out;
}

// Only the parts the local full-text search understands.
bool IsSimpleQuery(const v1::StudyQuery& q) {
  return q.locn().empty() && q.titles().empty() && q.outc().empty() &&
         q.spons().empty() && q.lead().empty() && q.id().empty() &&
         q.patient().empty();
}
bool IsSimpleFilter(const v1::StudyFilter& f) {
  return f.geo().empty() && f.ids().empty() && f.advanced().empty() &&
         f.synonyms().empty();
}
bool IsEmptyFilter(const v1::StudyFilter& f) {
  return IsSimpleFilter(f) && f.overall_status().empty();
}
bool IsSimpleSearch(const v1::SearchStudiesRequest& r) {
  return IsSimpleQuery(r.query()) && IsSimpleFilter(r.filter()) &&
         IsEmptyFilter(r.post_filter()) && r.agg_filters().empty() &&
         r.geo_decay().empty() && r.fields().empty() && r.sort().empty() &&
         !IsCsv(r.format());
}
bool IsSimpleListAll(const v1::ListAllStudiesRequest& r) {
  return IsSimpleQuery(r.query()) && IsSimpleFilter(r.filter()) &&
         r.fields().empty();
}
constexpr std::string_view kSimpleQueries =
    "the local store answers only query.cond, query.intr and query.term with "
    "filter.overall_status (JSON, no fields, sort or other filters)";

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t nanos = absl::ToUnixNanos(t);
  int64_t seconds = nanos / 1'000'000'000;
  int64_t rest = nanos % 1'000'000'000;
  if (rest < 0) {
    rest += 1'000'000'000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rest));
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  out->set_seconds(nanos / 1'000'000'000);
  out->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
}

// Splits CSV text into records (RFC 4180: a quoted field may hold newlines
// and "" escapes). Each record keeps its line end.
std::vector<std::string_view> CsvRecords(std::string_view csv) {
  std::vector<std::string_view> records;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < csv.size(); ++i) {
    const char c = csv[i];
    if (c == '"') {
      quoted = !quoted;  // "" inside quotes toggles twice
    } else if (c == '\n' && !quoted) {
      records.push_back(csv.substr(start, i + 1 - start));
      start = i + 1;
    }
  }
  if (start < csv.size()) records.push_back(csv.substr(start));
  return records;
}

// One result of a page, loaded.
struct PageItem {
  v1::Study study;
  absl::Time fetched_at = absl::InfiniteFuture();  // unknown for upstream
};

struct Assembled {
  std::size_t next = 0;  // position in the page of the first item not sent
  bool cut = false;      // stopped by the size budget before the page's end
  absl::Time oldest = absl::InfiniteFuture();
};

// Adds items [skip, count) of a page to `out` while they fit in `budget`.
// `load(i)` returns nullopt for an item that vanished (skipped). The first
// item that does not fit alone is kResourceExhausted.
absl::StatusOr<Assembled> AssemblePage(
    std::size_t count, std::size_t skip, std::size_t budget,
    absl::FunctionRef<absl::StatusOr<std::optional<PageItem>>(std::size_t)>
        load,
    google::protobuf::RepeatedPtrField<v1::Study>* out) {
  Assembled a;
  std::size_t used = kEnvelopeBytes;
  a.next = std::min(skip, count);
  for (; a.next < count; ++a.next) {
    TRIALMATCH_ASSIGN_OR_RETURN(std::optional<PageItem> item, load(a.next));
    if (!item.has_value()) continue;
    const std::size_t size = item->study.ByteSizeLong() + 8;
    if (used + size > budget) {
      if (out->empty()) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "study ", item->study.nct_id(), " is ", size,
            " bytes as a response, over the server's response limit of ",
            budget,
            " bytes; request fewer fields (e.g. leave out ResultsSection)"));
      }
      a.cut = true;
      break;
    }
    used += size;
    a.oldest = std::min(a.oldest, item->fetched_at);
    out->Add(std::move(item->study));
  }
  return a;
}

std::string EndpointOp(int e) {
  static const char* const kOps[] = {"metadata", "search-areas", "enums",
                                     "stats/size", "version"};
  return kOps[e];
}

template <typename Resp>
constexpr bool kHasJson = requires(Resp& r) {
  r.set_json(std::string());
};

// An endpoint body (validated) as its typed response.
template <typename Resp, typename Body>
absl::StatusOr<Resp> Typed(absl::StatusOr<Body> body,
                           absl::Status (*parse)(std::string_view, Resp*),
                           const std::string& server_version = "") {
  if (!body.ok()) return body.status();
  Resp resp;
  if (absl::Status s = parse(body->body, &resp); !s.ok()) {
    // Cached bodies were validated when stored; this is a bug or damage.
    return absl::InternalError(
        absl::StrCat("cached endpoint body does not parse: ", s.ToString()));
  }
  if constexpr (kHasJson<Resp>) {
    resp.set_json(std::move(body->body));
  } else {
    resp.set_server_version(server_version);
  }
  *resp.mutable_freshness() = std::move(body->freshness);
  return resp;
}

template <typename Resp, typename Body>
std::optional<absl::StatusOr<Resp>> TypedMaybe(
    std::optional<absl::StatusOr<Body>> body,
    absl::Status (*parse)(std::string_view, Resp*),
    const std::string& server_version = "") {
  if (!body.has_value()) return std::nullopt;
  return Typed<Resp>(std::move(*body), parse, server_version);
}

// Replaces a store failure by a status safe for clients (store messages may
// hold SQL). kNotFound and kInvalidArgument are the caller's business.
absl::Status StoreFailure(const absl::Status& s, std::string_view what) {
  if (s.code() == absl::StatusCode::kUnavailable) {
    TM_LOG_WARNING("server", "store ", ToAbsl(what), ": ", s.ToString());
    return absl::UnavailableError(
        "the study store is busy (locked by another process); retry later");
  }
  return absl::InternalError(
      absl::StrCat("store ", ToAbsl(what), ": ", s.ToString()));
}

}  // namespace

const std::vector<std::string>& StudyStatusValues() {
  static const std::vector<std::string>* const kValues =
      new std::vector<std::string>{"ACTIVE_NOT_RECRUITING",
                                   "COMPLETED",
                                   "ENROLLING_BY_INVITATION",
                                   "NOT_YET_RECRUITING",
                                   "RECRUITING",
                                   "SUSPENDED",
                                   "TERMINATED",
                                   "WITHDRAWN",
                                   "AVAILABLE",
                                   "NO_LONGER_AVAILABLE",
                                   "TEMPORARILY_NOT_AVAILABLE",
                                   "APPROVED_FOR_MARKETING",
                                   "WITHHELD",
                                   "UNKNOWN"};
  return *kValues;
}

StudyBackend::StudyBackend(StudyBackendOptions options,
                           std::optional<ctgov::CtgovClient> upstream,
                           UpstreamMonitor* monitor, common::Clock& clock)
    : options_(std::move(options)),
      upstream_(std::move(upstream)),
      monitor_(monitor),
      clock_(clock),
      typed_cache_(options_.typed_cache_bytes) {}

void StudyBackend::AttachStore(std::shared_ptr<store::StudyStore> store) {
  absl::MutexLock lock(&mu_);
  store_ = std::move(store);
}

bool StudyBackend::store_attached() const {
  absl::MutexLock lock(&mu_);
  return store_ != nullptr;
}

absl::StatusOr<std::shared_ptr<store::StudyStore>> StudyBackend::Store() const {
  absl::MutexLock lock(&mu_);
  if (store_ == nullptr) {
    return absl::UnavailableError(
        "the server is starting: the study store is not open yet");
  }
  return store_;
}

// --- Upstream use -----------------------------------------------------------

StudyBackend::UpstreamGate StudyBackend::CheckUpstream() {
  if (!upstream_.has_value()) {
    return {false, "offline mode (ClinicalTrials.gov is not called)"};
  }
  if (monitor_ != nullptr && !monitor_->ShouldTry()) {
    return {false, absl::StrCat("ClinicalTrials.gov unreachable since ",
                                absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                                                 monitor_->down_since(),
                                                 absl::UTCTimeZone()),
                                " (", monitor_->last_cause(), ")")};
  }
  return {true, ""};
}

std::optional<absl::Status> StudyBackend::NonOutage(const absl::Status& s,
                                                    std::string* why) {
  if (CallToken* token = CurrentCallToken();
      token != nullptr && token->Expired()) {
    return token->Check();
  }
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return absl::InvalidArgumentError(absl::StrCat(
          "ClinicalTrials.gov rejected the request: ", s.message()));
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kCancelled:
      return s;
    default:
      break;
  }
  if (monitor_ != nullptr) monitor_->ReportOutage(s);
  if (IsInternalCode(s.code()) && s.code() != absl::StatusCode::kDataLoss) {
    TM_LOG_ERROR("server", "upstream call failed: ", s.ToString());
    *why =
        "ClinicalTrials.gov unavailable (unexpected error, see the server log)";
  } else {
    // ctgov messages name the operation, URL path and HTTP status only.
    *why = absl::StrCat("ClinicalTrials.gov unavailable: ",
                        Shorten(common::ToStd(s.message())));
  }
  return std::nullopt;
}

absl::Status StudyBackend::Unavailable(std::string_view what,
                                       std::string_view why) const {
  const std::string message = absl::StrCat(ToAbsl(what), "; ", ToAbsl(why));
  if (offline()) return absl::FailedPreconditionError(message);
  return absl::UnavailableError(message);
}

v1::Freshness StudyBackend::UpstreamFreshness() const {
  v1::Freshness f;
  f.set_source(v1::DATA_SOURCE_UPSTREAM);
  SetTime(clock_.Now(), f.mutable_fetched_at());
  SetDuration(absl::ZeroDuration(), f.mutable_age());
  return f;
}

v1::Freshness StudyBackend::CacheFreshness(absl::Time fetched_at,
                                           bool upstream_unavailable,
                                           std::string note) const {
  v1::Freshness f;
  f.set_source(v1::DATA_SOURCE_CACHE);
  if (fetched_at != absl::InfiniteFuture() &&
      fetched_at != absl::InfinitePast()) {
    SetTime(fetched_at, f.mutable_fetched_at());
    SetDuration(std::max(absl::ZeroDuration(), clock_.Now() - fetched_at),
                f.mutable_age());
  }
  f.set_upstream_unavailable(upstream_unavailable);
  f.set_note(std::move(note));
  return f;
}

absl::Status StudyBackend::ProbeUpstream() {
  if (!upstream_.has_value()) return absl::OkStatus();
  absl::StatusOr<ctgov::CtgovClient::Version> v = upstream_->GetVersion();
  if (!v.ok()) return v.status();
  TRIALMATCH_RETURN_IF_ERROR(ValidateEndpointBody(Endpoint::kVersion, v->json));
  if (absl::StatusOr<std::shared_ptr<store::StudyStore>> store = Store();
      store.ok()) {
    if (absl::Status s = (*store)->PutCachedResponse(
            EndpointOp(static_cast<int>(Endpoint::kVersion)), "", v->json);
        !s.ok()) {
      TM_LOG_WARNING("server", "caching /version failed: ", s.ToString());
    }
  }
  return absl::OkStatus();
}

// --- GetStudy
// ------------------------------------------------------------------

absl::StatusOr<std::optional<store::StoredStudy>> StudyBackend::LoadStudy(
    const std::string& nct_id) {
  TRIALMATCH_ASSIGN_OR_RETURN(std::shared_ptr<store::StudyStore> store,
                              Store());
  absl::StatusOr<store::StoredStudy> stored = store->GetStudy(nct_id);
  if (stored.ok()) return std::optional<store::StoredStudy>(*std::move(stored));
  if (stored.status().code() == absl::StatusCode::kNotFound) {
    return std::optional<store::StoredStudy>();
  }
  return StoreFailure(stored.status(), "GetStudy");
}

absl::Status StudyBackend::StudyFromStored(const store::StoredStudy& stored,
                                           v1::Study* out) {
  if (std::shared_ptr<const v1::Study> typed =
          typed_cache_.Get(stored.nct_id, stored.content_hash)) {
    *out = *typed;
    out->set_record_json(stored.raw_json);
    return absl::OkStatus();
  }
  if (absl::Status s = StudyFromRecordJson(stored.raw_json, out); !s.ok()) {
    return absl::InternalError(absl::StrCat("stored record of ", stored.nct_id,
                                            " does not parse: ", s.ToString()));
  }
  std::string record = std::move(*out->mutable_record_json());
  out->clear_record_json();
  typed_cache_.Put(stored.nct_id, stored.content_hash,
                   std::make_shared<const v1::Study>(*out));
  out->set_record_json(std::move(record));
  return absl::OkStatus();
}

absl::StatusOr<v1::GetStudyResponse> StudyBackend::CachedStudyResponse(
    const store::StoredStudy& stored, bool upstream_unavailable,
    std::string note) {
  v1::GetStudyResponse resp;
  TRIALMATCH_RETURN_IF_ERROR(StudyFromStored(stored, resp.mutable_study()));
  *resp.mutable_freshness() =
      CacheFreshness(stored.fetched_at, upstream_unavailable, std::move(note));
  if (resp.ByteSizeLong() > options_.max_response_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "study ", stored.nct_id, " is ", resp.ByteSizeLong(),
        " bytes as a response, over the server's response limit of ",
        options_.max_response_bytes,
        " bytes; request fewer fields (e.g. leave out ResultsSection)"));
  }
  return resp;
}

absl::StatusOr<v1::GetStudyResponse> StudyBackend::StudyFallback(
    const v1::GetStudyRequest& r, const std::string& nct_id,
    std::string_view why) {
  absl::StatusOr<std::optional<store::StoredStudy>> cached = LoadStudy(nct_id);
  if (!cached.ok()) {
    if (cached.status().code() == absl::StatusCode::kUnavailable) {
      return Unavailable(common::ToStd(cached.status().message()), why);
    }
    return cached.status();
  }
  const bool whole_json = !IsCsv(r.format()) && r.fields().empty();
  if (cached->has_value() && whole_json) {
    return CachedStudyResponse(
        **cached, /*upstream_unavailable=*/true,
        absl::StrCat("served from the cache: ", ToAbsl(why)));
  }
  if (cached->has_value()) {
    return Unavailable(
        "the cache holds whole JSON records only (fields and CSV need "
        "ClinicalTrials.gov)",
        why);
  }
  if (offline()) {
    return absl::NotFoundError(absl::StrCat(
        "study ", nct_id, " is not in the local store (offline mode)"));
  }
  return Unavailable(
      absl::StrCat("study ", nct_id, " is not in the local store"), why);
}

void StudyBackend::WriteBack(std::string record_json) {
  absl::StatusOr<std::shared_ptr<store::StudyStore>> store = Store();
  if (!store.ok()) return;
  absl::StatusOr<store::StudyRecord> record =
      store::MakeStudyRecord(std::move(record_json));
  if (!record.ok()) {
    TM_LOG_WARNING("server", "not caching an upstream record: ",
                   record.status().ToString());
    return;
  }
  store::UpsertOptions options;
  options.wanted_statuses = options_.wanted_statuses;
  absl::StatusOr<store::UpsertCounts> n =
      (*store)->UpsertStudies({*record}, options);
  if (!n.ok()) {
    TM_LOG_WARNING("server", "caching ", record->study.nct_id,
                   " failed: ", n.status().ToString());
  }
}

StudyBackend::Maybe<v1::GetStudyResponse> StudyBackend::StudyLocal(
    const v1::GetStudyRequest& r) {
  absl::StatusOr<std::string> id = NormalizeNctId(r.nct_id());
  if (!id.ok()) return id.status();
  if (absl::Status s = ValidateFormat(r.format()); !s.ok()) return s;
  if (r.has_max_cache_age_seconds() && r.max_cache_age_seconds() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_cache_age_seconds must not be negative, got ",
                     r.max_cache_age_seconds()));
  }
  absl::StatusOr<std::optional<store::StoredStudy>> cached = LoadStudy(*id);
  if (!cached.ok()) return cached.status();
  const bool whole_json = !IsCsv(r.format()) && r.fields().empty();
  const absl::Duration max_age = r.has_max_cache_age_seconds()
                                     ? absl::Seconds(r.max_cache_age_seconds())
                                     : options_.max_cache_age;
  if (whole_json && cached->has_value() && max_age > absl::ZeroDuration() &&
      clock_.Now() - (*cached)->fetched_at <= max_age) {
    return CachedStudyResponse(**cached, /*upstream_unavailable=*/false, "");
  }
  UpstreamGate gate = CheckUpstream();
  if (!gate.usable) return StudyFallback(r, *id, gate.why_not);
  return std::nullopt;
}

absl::StatusOr<v1::GetStudyResponse> StudyBackend::StudyUpstream(
    const v1::GetStudyRequest& r) {
  TRIALMATCH_ASSIGN_OR_RETURN(std::string id, NormalizeNctId(r.nct_id()));
  TRIALMATCH_RETURN_IF_ERROR(ValidateFormat(r.format()));
  if (!upstream_.has_value()) {
    return StudyFallback(r, id,
                         "offline mode (ClinicalTrials.gov is not called)");
  }
  const bool whole_json = !IsCsv(r.format()) && r.fields().empty();
  ctgov::GetStudyOptions options;
  options.format =
      IsCsv(r.format()) ? ctgov::StudyFormat::kCsv : ctgov::StudyFormat::kJson;
  options.fields = ToVector(r.fields());
  absl::StatusOr<ctgov::StudyRecord> record = upstream_->GetStudy(id, options);
  v1::GetStudyResponse resp;
  if (record.ok() && !IsCsv(r.format())) {
    if (absl::Status s =
            StudyFromRecordJson(record->body, resp.mutable_study());
        !s.ok()) {
      record = absl::DataLossError(absl::StrCat(
          "GET /studies/", id, ": the body is not a study: ", s.message()));
    }
  }
  if (!record.ok()) {
    std::string why;
    if (std::optional<absl::Status> s = NonOutage(record.status(), &why)) {
      if (s->code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(
            absl::StrCat("study ", id, " not found at ClinicalTrials.gov"));
      }
      return *s;
    }
    return StudyFallback(r, id, why);
  }
  if (monitor_ != nullptr) monitor_->ReportSuccess();
  if (IsCsv(r.format())) resp.set_csv(record->body);
  if (record->nct_id != id) resp.set_canonical_nct_id(record->nct_id);
  *resp.mutable_freshness() = UpstreamFreshness();
  if (whole_json) WriteBack(std::move(record->body));
  if (resp.ByteSizeLong() > options_.max_response_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "study ", id, " is ", resp.ByteSizeLong(),
        " bytes as a response, over the server's response limit of ",
        options_.max_response_bytes,
        " bytes; request fewer fields (e.g. leave out ResultsSection)"));
  }
  return resp;
}

StudyBackend::Maybe<v1::GetStudyResponse> StudyBackend::GetStudyLocal(
    const v1::GetStudyRequest& r) {
  if (absl::Status s = ValidateIncludeCriteria(r); !s.ok()) return s;
  Maybe<v1::GetStudyResponse> answer = StudyLocal(r);
  if (answer.has_value()) {
    if (absl::Status s = AttachCriteria(r, &*answer); !s.ok()) return s;
  }
  return answer;
}

absl::StatusOr<v1::GetStudyResponse> StudyBackend::GetStudyUpstream(
    const v1::GetStudyRequest& r) {
  TRIALMATCH_RETURN_IF_ERROR(ValidateIncludeCriteria(r));
  absl::StatusOr<v1::GetStudyResponse> answer = StudyUpstream(r);
  TRIALMATCH_RETURN_IF_ERROR(AttachCriteria(r, &answer));
  return answer;
}

absl::Status StudyBackend::ValidateIncludeCriteria(
    const v1::GetStudyRequest& r) const {
  if (!r.include_criteria()) return absl::OkStatus();
  if (IsCsv(r.format()) || !r.fields().empty()) {
    return absl::InvalidArgumentError(
        "include_criteria needs the whole JSON record: leave out fields and "
        "the CSV format");
  }
  if (options_.rules == nullptr) {
    return absl::FailedPreconditionError(
        "this server has no eligibility rules configured (criteria are not "
        "available)");
  }
  return absl::OkStatus();
}

absl::Status StudyBackend::AttachCriteria(
    const v1::GetStudyRequest& r, absl::StatusOr<v1::GetStudyResponse>* resp) {
  if (!r.include_criteria() || !resp->ok()) return absl::OkStatus();
  v1::GetStudyResponse& out = **resp;
  absl::StatusOr<std::shared_ptr<store::StudyStore>> store = Store();
  const criteria::Compiler compiler(options_.rules->Get());
  absl::StatusOr<sync::LoadedCriteria> loaded = sync::LoadOrCompileRecord(
      store.ok() ? store->get() : nullptr, compiler, out.study().record_json(),
      {.write_back = true, .clock = &clock_});
  if (!loaded.ok()) {
    if (loaded.status().code() == absl::StatusCode::kDataLoss) {
      return absl::InternalError(absl::StrCat("compiling the criteria of ",
                                              out.study().nct_id(), ": ",
                                              loaded.status().message()));
    }
    return StoreFailure(loaded.status(), "GetCompiled");
  }
  CompiledStudyToProto(loaded->compiled, out.mutable_criteria());
  out.set_criteria_origin(loaded->from_store
                              ? v1::CRITERIA_ORIGIN_STORED
                              : v1::CRITERIA_ORIGIN_COMPILED_ON_REQUEST);
  if (out.ByteSizeLong() > options_.max_response_bytes) {
    *resp = absl::ResourceExhaustedError(absl::StrCat(
        "study ", out.study().nct_id(), " with its criteria is ",
        out.ByteSizeLong(), " bytes as a response, over the server's limit of ",
        options_.max_response_bytes,
        " bytes; ask GetStudyCriteria and GetStudy separately"));
  }
  return absl::OkStatus();
}

// --- GetStudyCriteria --------------------------------------------------------

StudyBackend::Maybe<v1::GetStudyCriteriaResponse>
StudyBackend::GetStudyCriteriaLocal(const v1::GetStudyCriteriaRequest& r) {
  return GetStudyCriteria(r);
}

absl::StatusOr<v1::GetStudyCriteriaResponse> StudyBackend::GetStudyCriteria(
    const v1::GetStudyCriteriaRequest& r) {
  TRIALMATCH_ASSIGN_OR_RETURN(std::string id, NormalizeNctId(r.nct_id()));
  if (options_.rules == nullptr) {
    return absl::FailedPreconditionError(
        "this server has no eligibility rules configured (criteria are not "
        "available)");
  }
  TRIALMATCH_ASSIGN_OR_RETURN(std::shared_ptr<store::StudyStore> store,
                              Store());
  const criteria::Compiler compiler(options_.rules->Get());
  absl::StatusOr<sync::LoadedCriteria> loaded = sync::LoadOrCompile(
      *store, compiler, id, {.write_back = true, .clock = &clock_});
  if (!loaded.ok()) {
    switch (loaded.status().code()) {
      case absl::StatusCode::kNotFound:
        return absl::NotFoundError(absl::StrCat(
            "study ", id,
            " is not in the local store (sync or import it first)"));
      case absl::StatusCode::kDataLoss:
        TM_LOG_ERROR("server", loaded.status().ToString());
        return absl::InternalError(
            absl::StrCat("the stored record of ", id, " cannot be read"));
      default:
        return StoreFailure(loaded.status(), "GetCompiled");
    }
  }
  v1::GetStudyCriteriaResponse resp;
  CompiledStudyToProto(loaded->compiled, resp.mutable_criteria());
  resp.set_eligibility_criteria(std::move(loaded->eligibility_criteria));
  resp.set_origin(loaded->from_store ? v1::CRITERIA_ORIGIN_STORED
                                     : v1::CRITERIA_ORIGIN_COMPILED_ON_REQUEST);
  SetTime(loaded->compiled_at, resp.mutable_compiled_at());
  if (resp.ByteSizeLong() > options_.max_response_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the criteria of ", id, " are ", resp.ByteSizeLong(),
                     " bytes as a response, over the server's limit of ",
                     options_.max_response_bytes, " bytes"));
  }
  return resp;
}

// --- SearchStudies
// -------------------------------------------------------------

namespace {

struct PreparedSearch {
  v1::SearchStudiesRequest request;  // statuses normalised
  uint64_t fingerprint = 0;
  std::optional<SearchCursor> cursor;
};

absl::StatusOr<PreparedSearch> PrepareSearch(
    const v1::SearchStudiesRequest& r) {
  TRIALMATCH_RETURN_IF_ERROR(ValidatePageSize(r.page_size(), "page_size"));
  TRIALMATCH_RETURN_IF_ERROR(ValidateFormat(r.format()));
  PreparedSearch p;
  p.request = r;
  TRIALMATCH_RETURN_IF_ERROR(
      NormalizeStatuses(p.request.mutable_filter()->mutable_overall_status(),
                        "filter.overall_status"));
  TRIALMATCH_RETURN_IF_ERROR(NormalizeStatuses(
      p.request.mutable_post_filter()->mutable_overall_status(),
      "post_filter.overall_status"));
  p.fingerprint = SearchFingerprint(p.request);
  if (!r.page_token().empty()) {
    TRIALMATCH_ASSIGN_OR_RETURN(
        p.cursor, DecodeSearchCursor(r.page_token(), p.fingerprint));
  }
  return p;
}

}  // namespace

absl::StatusOr<v1::SearchStudiesResponse> StudyBackend::SearchFromStore(
    const v1::SearchStudiesRequest& r, uint64_t fingerprint,
    const std::string& inner, int64_t skip, int32_t fetch_page_size,
    bool upstream_unavailable, std::string note) {
  TRIALMATCH_ASSIGN_OR_RETURN(std::shared_ptr<store::StudyStore> store,
                              Store());
  store::LocalSearchQuery q;
  q.cond = r.query().cond();
  q.intr = r.query().intr();
  q.term = r.query().term();
  q.statuses = ToVector(r.filter().overall_status());
  // Studies that left the sync scope are still real studies; vanished ones
  // are gone from the registry.
  q.lifecycles = {store::Lifecycle::kActive, store::Lifecycle::kLeftScope};
  const int32_t page_size =
      skip > 0
          ? fetch_page_size
          : (r.page_size() == 0 ? kUpstreamDefaultPageSize : r.page_size());
  q.page_size = page_size;
  q.page_token = inner;
  q.count_total = r.count_total();
  absl::StatusOr<store::LocalSearchPage> page = store->SearchLocal(q);
  if (!page.ok()) {
    if (page.status().code() == absl::StatusCode::kInvalidArgument) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_token is not valid for the local store: ",
                       page.status().message()));
    }
    return StoreFailure(page.status(), "SearchLocal");
  }
  v1::SearchStudiesResponse resp;
  if (page->total_count.has_value()) resp.set_total_count(*page->total_count);
  TRIALMATCH_ASSIGN_OR_RETURN(
      Assembled a,
      AssemblePage(
          page->studies.size(), static_cast<std::size_t>(skip),
          options_.max_response_bytes,
          [&](std::size_t i) -> absl::StatusOr<std::optional<PageItem>> {
            TRIALMATCH_ASSIGN_OR_RETURN(std::optional<store::StoredStudy> s,
                                        LoadStudy(page->studies[i].nct_id));
            if (!s.has_value()) return std::optional<PageItem>();  // deleted
            PageItem item;
            TRIALMATCH_RETURN_IF_ERROR(StudyFromStored(*s, &item.study));
            item.fetched_at = s->fetched_at;
            return std::optional<PageItem>(std::move(item));
          },
          resp.mutable_studies()));
  if (a.cut) {
    resp.set_next_page_token(
        EncodeSearchCursor({CursorOrigin::kLocal, fingerprint, inner,
                            static_cast<int64_t>(a.next), page_size}));
  } else if (!page->next_page_token.empty()) {
    resp.set_next_page_token(EncodeSearchCursor(
        {CursorOrigin::kLocal, fingerprint, page->next_page_token, 0, 0}));
  }
  *resp.mutable_freshness() =
      CacheFreshness(a.oldest, upstream_unavailable, std::move(note));
  return resp;
}

StudyBackend::Maybe<v1::SearchStudiesResponse> StudyBackend::SearchStudiesLocal(
    const v1::SearchStudiesRequest& r) {
  absl::StatusOr<PreparedSearch> p = PrepareSearch(r);
  if (!p.ok()) return p.status();
  if (p->cursor.has_value() && p->cursor->origin == CursorOrigin::kLocal) {
    return SearchFromStore(p->request, p->fingerprint, p->cursor->inner,
                           p->cursor->skip, p->cursor->fetch_page_size,
                           /*upstream_unavailable=*/false,
                           "served from the local store: this result set "
                           "started there (its page tokens are local)");
  }
  UpstreamGate gate = CheckUpstream();
  if (gate.usable) return std::nullopt;
  if (p->cursor.has_value()) {
    return Unavailable(
        "this result set's next page must come from ClinicalTrials.gov",
        gate.why_not);
  }
  if (!IsSimpleSearch(p->request))
    return Unavailable(kSimpleQueries, gate.why_not);
  return SearchFromStore(
      p->request, p->fingerprint, "", 0, 0,
      /*upstream_unavailable=*/true,
      absl::StrCat("served from the local store: ", gate.why_not));
}

absl::StatusOr<v1::SearchStudiesResponse> StudyBackend::SearchStudiesUpstream(
    const v1::SearchStudiesRequest& r) {
  TRIALMATCH_ASSIGN_OR_RETURN(PreparedSearch p, PrepareSearch(r));
  const v1::SearchStudiesRequest& q = p.request;
  if (p.cursor.has_value() && p.cursor->origin == CursorOrigin::kLocal) {
    return SearchFromStore(q, p.fingerprint, p.cursor->inner, p.cursor->skip,
                           p.cursor->fetch_page_size, false,
                           "served from the local store: this result set "
                           "started there (its page tokens are local)");
  }
  auto fallback =
      [&](std::string_view why) -> absl::StatusOr<v1::SearchStudiesResponse> {
    if (p.cursor.has_value()) {
      return Unavailable(
          "this result set's next page must come from ClinicalTrials.gov", why);
    }
    if (!IsSimpleSearch(q)) return Unavailable(kSimpleQueries, why);
    return SearchFromStore(
        q, p.fingerprint, "", 0, 0, true,
        absl::StrCat("served from the local store: ", ToAbsl(why)));
  };
  if (!upstream_.has_value()) {
    return fallback("offline mode (ClinicalTrials.gov is not called)");
  }
  ctgov::SearchParams params;
  params.format = IsCsv(q.format()) ? ctgov::SearchFormat::kCsv
                                    : ctgov::SearchFormat::kJson;
  params.query = ToCtgov(q.query());
  params.filter = ToCtgov(q.filter());
  params.post_filter = ToCtgov(q.post_filter());
  params.agg_filters = q.agg_filters();
  params.geo_decay = q.geo_decay();
  params.fields = ToVector(q.fields());
  params.sort = ToVector(q.sort());
  params.count_total = q.count_total();
  const int64_t skip = p.cursor.has_value() ? p.cursor->skip : 0;
  const int32_t fetch_page_size =
      skip > 0
          ? p.cursor->fetch_page_size
          : (q.page_size() == 0 ? kUpstreamDefaultPageSize : q.page_size());
  params.page_size = fetch_page_size;
  params.page_token = p.cursor.has_value() ? p.cursor->inner : "";

  absl::StatusOr<ctgov::StudyPage> page = upstream_->SearchStudies(params);
  if (!page.ok()) {
    std::string why;
    if (std::optional<absl::Status> s = NonOutage(page.status(), &why)) {
      return *s;
    }
    return fallback(why);
  }
  if (monitor_ != nullptr) monitor_->ReportSuccess();

  v1::SearchStudiesResponse resp;
  if (page->total_count.has_value()) resp.set_total_count(*page->total_count);
  Assembled a;
  if (IsCsv(q.format())) {
    // The first upstream page starts with the header row; a later part of
    // it must not repeat it.
    std::vector<std::string_view> rows = CsvRecords(page->csv);
    std::string_view header;
    if (params.page_token.empty() && !rows.empty()) {
      header = rows.front();
      rows.erase(rows.begin());
    }
    std::string csv(skip == 0 ? header : std::string_view());
    a.next = std::min<std::size_t>(static_cast<std::size_t>(skip), rows.size());
    for (; a.next < rows.size(); ++a.next) {
      if (csv.size() + rows[a.next].size() + kEnvelopeBytes >
          options_.max_response_bytes) {
        if (a.next == static_cast<std::size_t>(skip)) {
          return absl::ResourceExhaustedError(
              "a CSV row is larger than the server's response limit; request "
              "fewer fields");
        }
        a.cut = true;
        break;
      }
      csv.append(rows[a.next]);
    }
    resp.set_csv(std::move(csv));
  } else {
    TRIALMATCH_ASSIGN_OR_RETURN(
        a, AssemblePage(
               page->studies.size(), static_cast<std::size_t>(skip),
               options_.max_response_bytes,
               [&](std::size_t i) -> absl::StatusOr<std::optional<PageItem>> {
                 PageItem item;
                 TRIALMATCH_RETURN_IF_ERROR(
                     StudyFromRecordJson(page->studies[i], &item.study));
                 return std::optional<PageItem>(std::move(item));
               },
               resp.mutable_studies()));
  }
  if (a.cut) {
    resp.set_next_page_token(EncodeSearchCursor(
        {CursorOrigin::kUpstream, p.fingerprint, params.page_token,
         static_cast<int64_t>(a.next), fetch_page_size}));
  } else if (!page->next_page_token.empty()) {
    resp.set_next_page_token(EncodeSearchCursor(
        {CursorOrigin::kUpstream, p.fingerprint, page->next_page_token, 0, 0}));
  }
  *resp.mutable_freshness() = UpstreamFreshness();
  return resp;
}

// --- ListAllStudies
// ---------------------------------------------------------------

absl::Status StudyBackend::ValidateListAll(
    const v1::ListAllStudiesRequest& r) const {
  TRIALMATCH_RETURN_IF_ERROR(ValidatePageSize(r.page_size(), "page_size"));
  if (r.limit() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must not be negative (0 = all), got ", r.limit()));
  }
  v1::ListAllStudiesRequest copy = r;
  return NormalizeStatuses(copy.mutable_filter()->mutable_overall_status(),
                           "filter.overall_status");
}

absl::StatusOr<v1::ListAllStudiesSummary> StudyBackend::ListAllStudies(
    const v1::ListAllStudiesRequest& request, const CallToken& token,
    absl::FunctionRef<bool(v1::Study&&)> emit) {
  TRIALMATCH_RETURN_IF_ERROR(ValidateListAll(request));
  v1::ListAllStudiesRequest r = request;
  TRIALMATCH_RETURN_IF_ERROR(NormalizeStatuses(
      r.mutable_filter()->mutable_overall_status(), "filter.overall_status"));
  const int64_t limit = r.limit();
  const bool simple = IsSimpleListAll(r);

  auto from_store =
      [&](std::string_view why) -> absl::StatusOr<v1::ListAllStudiesSummary> {
    if (!simple) return Unavailable(kSimpleQueries, why);
    TRIALMATCH_ASSIGN_OR_RETURN(std::shared_ptr<store::StudyStore> store,
                                Store());
    store::LocalSearchQuery q;
    q.cond = r.query().cond();
    q.intr = r.query().intr();
    q.term = r.query().term();
    q.statuses = ToVector(r.filter().overall_status());
    q.lifecycles = {store::Lifecycle::kActive, store::Lifecycle::kLeftScope};
    q.page_size = kMaxPageSize;
    q.count_total = false;
    int64_t emitted = 0;
    absl::Time oldest = absl::InfiniteFuture();
    for (;;) {
      TRIALMATCH_RETURN_IF_ERROR(token.Check());
      absl::StatusOr<store::LocalSearchPage> page = store->SearchLocal(q);
      if (!page.ok()) return StoreFailure(page.status(), "SearchLocal");
      for (const store::LocalSearchHit& hit : page->studies) {
        if (limit > 0 && emitted >= limit) break;
        TRIALMATCH_ASSIGN_OR_RETURN(std::optional<store::StoredStudy> s,
                                    LoadStudy(hit.nct_id));
        if (!s.has_value()) continue;
        v1::Study study;
        TRIALMATCH_RETURN_IF_ERROR(StudyFromStored(*s, &study));
        if (!emit(std::move(study))) {
          return absl::CancelledError("the client went away");
        }
        ++emitted;
        oldest = std::min(oldest, s->fetched_at);
      }
      if (page->next_page_token.empty() || (limit > 0 && emitted >= limit)) {
        break;
      }
      q.page_token = page->next_page_token;
    }
    v1::ListAllStudiesSummary summary;
    summary.set_total_returned(emitted);
    *summary.mutable_freshness() = CacheFreshness(
        oldest, true,
        absl::StrCat("served from the local store: ", ToAbsl(why)));
    return summary;
  };

  UpstreamGate gate = CheckUpstream();
  if (!gate.usable) return from_store(gate.why_not);

  ctgov::SearchParams params;
  params.query = ToCtgov(r.query());
  params.filter = ToCtgov(r.filter());
  params.fields = ToVector(r.fields());
  int64_t page_size = r.page_size() == 0 ? kMaxPageSize : r.page_size();
  if (limit > 0) page_size = std::min(page_size, limit);
  params.page_size = static_cast<int>(page_size);
  ctgov::PagingOptions paging;
  paging.max_studies = limit;
  paging.cancelled = token.cancel_flag();
  int64_t emitted = 0;
  bool consumer_gone = false;
  const v1::Freshness freshness = UpstreamFreshness();
  absl::StatusOr<ctgov::PagingSummary> done = upstream_->ForEachPage(
      params, paging, [&](ctgov::StudyPage& page) -> absl::Status {
        for (const std::string& raw : page.studies) {
          if (limit > 0 && emitted >= limit) break;
          v1::Study study;
          TRIALMATCH_RETURN_IF_ERROR(StudyFromRecordJson(raw, &study));
          if (!emit(std::move(study))) {
            consumer_gone = true;
            return absl::CancelledError("the client went away");
          }
          ++emitted;
        }
        return absl::OkStatus();
      });
  if (done.ok()) {
    if (monitor_ != nullptr) monitor_->ReportSuccess();
    v1::ListAllStudiesSummary summary;
    summary.set_total_returned(emitted);
    *summary.mutable_freshness() = freshness;
    return summary;
  }
  if (consumer_gone) return absl::CancelledError("the client went away");
  TRIALMATCH_RETURN_IF_ERROR(token.Check());
  std::string why;
  if (std::optional<absl::Status> s = NonOutage(done.status(), &why)) return *s;
  if (emitted > 0) {
    return absl::UnavailableError(absl::StrCat(
        "the listing was interrupted after ", emitted, " studies; ", why));
  }
  return from_store(why);
}

// --- Endpoint operations
// ---------------------------------------------------------

absl::Status StudyBackend::ValidateEndpointBody(Endpoint e,
                                                std::string_view body) const {
  switch (e) {
    case Endpoint::kMetadata: {
      v1::GetStudiesMetadataResponse r;
      return ParseStudiesMetadata(body, &r);
    }
    case Endpoint::kSearchAreas: {
      v1::GetSearchAreasResponse r;
      return ParseSearchAreas(body, &r);
    }
    case Endpoint::kEnums: {
      v1::GetEnumsResponse r;
      return ParseEnums(body, &r);
    }
    case Endpoint::kStatsSize: {
      v1::GetStatsSizeResponse r;
      return ParseStatsSize(body, &r);
    }
    case Endpoint::kVersion: {
      v1::GetApiVersionResponse r;
      return ParseApiVersion(body, &r);
    }
  }
  return absl::InternalError("unknown endpoint");
}

StudyBackend::Maybe<StudyBackend::EndpointBody> StudyBackend::EndpointLocal(
    Endpoint e, const std::string& params) {
  absl::StatusOr<std::shared_ptr<store::StudyStore>> store = Store();
  if (!store.ok()) return store.status();
  const std::string op = EndpointOp(static_cast<int>(e));
  absl::StatusOr<store::CachedResponse> cached =
      (*store)->GetCachedResponse(op, params);
  if (!cached.ok() && cached.status().code() != absl::StatusCode::kNotFound) {
    return StoreFailure(cached.status(), "GetCachedResponse");
  }
  const absl::Duration ttl = [&] {
    switch (e) {
      case Endpoint::kMetadata:
        return options_.ttls.metadata;
      case Endpoint::kSearchAreas:
        return options_.ttls.search_areas;
      case Endpoint::kEnums:
        return options_.ttls.enums;
      case Endpoint::kStatsSize:
        return options_.ttls.stats_size;
      case Endpoint::kVersion:
        return options_.ttls.version;
    }
    return absl::ZeroDuration();
  }();
  if (cached.ok() && cached->age <= ttl) {
    return EndpointBody{std::move(cached->body),
                        CacheFreshness(cached->fetched_at, false, "")};
  }
  UpstreamGate gate = CheckUpstream();
  if (!gate.usable) return EndpointFallback(e, params, gate.why_not);
  return std::nullopt;
}

absl::StatusOr<StudyBackend::EndpointBody> StudyBackend::EndpointFallback(
    Endpoint e, const std::string& params, std::string_view why) {
  const std::string op = EndpointOp(static_cast<int>(e));
  absl::StatusOr<std::shared_ptr<store::StudyStore>> store = Store();
  if (!store.ok())
    return Unavailable(common::ToStd(store.status().message()), why);
  absl::StatusOr<store::CachedResponse> cached =
      (*store)->GetCachedResponse(op, params);
  if (cached.ok()) {
    return EndpointBody{
        std::move(cached->body),
        CacheFreshness(cached->fetched_at, true,
                       absl::StrCat("served from the cache: ", ToAbsl(why)))};
  }
  if (cached.status().code() != absl::StatusCode::kNotFound) {
    return StoreFailure(cached.status(), "GetCachedResponse");
  }
  return Unavailable(absl::StrCat("no cached /", op, " response"), why);
}

absl::StatusOr<StudyBackend::EndpointBody> StudyBackend::EndpointUpstream(
    Endpoint e, const std::string& params,
    const std::function<absl::StatusOr<std::string>()>& fetch) {
  if (!upstream_.has_value()) {
    return EndpointFallback(e, params,
                            "offline mode (ClinicalTrials.gov is not called)");
  }
  absl::StatusOr<std::string> body = fetch();
  if (body.ok()) {
    if (absl::Status s = ValidateEndpointBody(e, *body); !s.ok()) {
      body = absl::DataLossError(
          absl::StrCat("GET /", EndpointOp(static_cast<int>(e)),
                       ": unusable body: ", s.message()));
    }
  }
  if (!body.ok()) {
    std::string why;
    if (std::optional<absl::Status> s = NonOutage(body.status(), &why)) {
      return *s;
    }
    return EndpointFallback(e, params, why);
  }
  if (monitor_ != nullptr) monitor_->ReportSuccess();
  if (absl::StatusOr<std::shared_ptr<store::StudyStore>> store = Store();
      store.ok()) {
    if (absl::Status s = (*store)->PutCachedResponse(
            EndpointOp(static_cast<int>(e)), params, *body);
        !s.ok()) {
      TM_LOG_WARNING("server", "caching /", EndpointOp(static_cast<int>(e)),
                     " failed: ", s.ToString());
    }
  }
  return EndpointBody{*std::move(body), UpstreamFreshness()};
}

namespace {
std::string MetadataParams(const v1::GetStudiesMetadataRequest& r) {
  return absl::StrCat(
      "includeIndexedOnly=", r.include_indexed_only() ? "true" : "false",
      "&includeHistoricOnly=", r.include_historic_only() ? "true" : "false");
}
}  // namespace

StudyBackend::Maybe<v1::GetStudiesMetadataResponse>
StudyBackend::GetStudiesMetadataLocal(const v1::GetStudiesMetadataRequest& r) {
  return TypedMaybe(EndpointLocal(Endpoint::kMetadata, MetadataParams(r)),
                    &ParseStudiesMetadata);
}
absl::StatusOr<v1::GetStudiesMetadataResponse>
StudyBackend::GetStudiesMetadataUpstream(
    const v1::GetStudiesMetadataRequest& r) {
  return Typed(EndpointUpstream(Endpoint::kMetadata, MetadataParams(r),
                                [&] {
                                  return upstream_->GetStudiesMetadata(
                                      r.include_indexed_only(),
                                      r.include_historic_only());
                                }),
               &ParseStudiesMetadata);
}

StudyBackend::Maybe<v1::GetSearchAreasResponse>
StudyBackend::GetSearchAreasLocal(const v1::GetSearchAreasRequest&) {
  return TypedMaybe(EndpointLocal(Endpoint::kSearchAreas, ""),
                    &ParseSearchAreas);
}
absl::StatusOr<v1::GetSearchAreasResponse> StudyBackend::GetSearchAreasUpstream(
    const v1::GetSearchAreasRequest&) {
  return Typed(EndpointUpstream(Endpoint::kSearchAreas, "",
                                [&] { return upstream_->GetSearchAreas(); }),
               &ParseSearchAreas);
}

StudyBackend::Maybe<v1::GetEnumsResponse> StudyBackend::GetEnumsLocal(
    const v1::GetEnumsRequest&) {
  return TypedMaybe(EndpointLocal(Endpoint::kEnums, ""), &ParseEnums);
}
absl::StatusOr<v1::GetEnumsResponse> StudyBackend::GetEnumsUpstream(
    const v1::GetEnumsRequest&) {
  return Typed(EndpointUpstream(Endpoint::kEnums, "",
                                [&] { return upstream_->GetEnums(); }),
               &ParseEnums);
}

StudyBackend::Maybe<v1::GetStatsSizeResponse> StudyBackend::GetStatsSizeLocal(
    const v1::GetStatsSizeRequest&) {
  return TypedMaybe(EndpointLocal(Endpoint::kStatsSize, ""), &ParseStatsSize);
}
absl::StatusOr<v1::GetStatsSizeResponse> StudyBackend::GetStatsSizeUpstream(
    const v1::GetStatsSizeRequest&) {
  return Typed(EndpointUpstream(Endpoint::kStatsSize, "",
                                [&] { return upstream_->GetStatsSize(); }),
               &ParseStatsSize);
}

StudyBackend::Maybe<v1::GetApiVersionResponse> StudyBackend::GetApiVersionLocal(
    const v1::GetApiVersionRequest&) {
  return TypedMaybe(EndpointLocal(Endpoint::kVersion, ""), &ParseApiVersion,
                    options_.server_version);
}
absl::StatusOr<v1::GetApiVersionResponse> StudyBackend::GetApiVersionUpstream(
    const v1::GetApiVersionRequest&) {
  return Typed(
      EndpointUpstream(Endpoint::kVersion, "",
                       [&]() -> absl::StatusOr<std::string> {
                         absl::StatusOr<ctgov::CtgovClient::Version> v =
                             upstream_->GetVersion();
                         if (!v.ok()) return v.status();
                         return std::move(v->json);
                       }),
      &ParseApiVersion, options_.server_version);
}

}  // namespace trialmatch::server
