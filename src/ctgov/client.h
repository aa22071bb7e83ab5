// CtgovClient: the ClinicalTrials.gov API v2 client — every read operation of
// the API, each one rate-limited, retried and validated.
//
// Layers (google-cloud-cpp shape):
//   HttpTransport (ctgov/http_transport.h; CurlTransport in production, a
//   scripted fake in tests)  →  RetryLoop + RateLimiter + backoff
//   (ctgov/retry.h, time from an injected common::Clock)  →  typed operations
//   here, whose bodies are checked (JSON validated, HTML error pages caught)
//   and parsed (ctgov/responses.h).
//
//   ASSIGN_OR_RETURN(CtgovClient client, CtgovClient::CreateDefault({}));
//   SearchParams p;
//   p.filter.overall_status = {"RECRUITING"};
//   p.page_size = 1000;
//   ASSIGN_OR_RETURN(PagingSummary done, client.ForEachPage(p, {},
//       [&](StudyPage& page) { return store.PutAll(page.studies); }));
//
// Per request (every attempt): wait for the client's rate limiter (shared by
// all copies of the client, all threads), GET, then:
//   transport kUnavailable / kDeadlineExceeded      → retry
//   HTTP 408, 429, 500, 502, 503, 504                → retry (Retry-After
//                                                      honoured, capped)
//   HTTP 2xx with an HTML page (maintenance page)    → retry
//   HTTP 2xx whose JSON is malformed / wrong shape   → retry
//   HTTP 400 → kInvalidArgument, 404 → kNotFound, other codes per AsStatus
//                                                    → returned at once
// After the last attempt (RetryOptions: attempt count and time budget):
// kUnavailable naming the operation, the attempt count and the last cause —
// or kDataLoss when the last cause was a malformed body (the server answered,
// but not with usable data; retrying later may not help).
// Error messages name the operation and URL path ("GET /studies"), never the
// query string (queries may be derived from patient data).
//
// @par Thread safety
// CtgovClient is a cheap-to-copy value; copies share the transport, the rate
// limiter and the jitter source. All methods are const and may be called
// concurrently from any number of threads. Calls block the calling thread
// (rate limit, backoff sleeps, HTTP); there is no cancellation inside a call
// except ForEachPage's flag, checked between pages.
#ifndef TRIALMATCH_CTGOV_CLIENT_H_
#define TRIALMATCH_CTGOV_CLIENT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "ctgov/http_transport.h"
#include "ctgov/responses.h"
#include "ctgov/retry.h"
#include "ctgov/search_params.h"

namespace trialmatch::ctgov {

inline constexpr char kDefaultBaseUrl[] = "https://clinicaltrials.gov/api/v2";

struct CtgovOptions {
  // API root; paths such as "/studies" are appended. http(s) only.
  std::string base_url = kDefaultBaseUrl;
  // Request starts per second across the whole client (all threads, all
  // copies). 0.8/s = 48/min stays under the ~50 requests/minute per IP that
  // ClinicalTrials.gov is commonly reported to allow. <= 0 disables it.
  double requests_per_second = 0.8;
  // Attempts, time budget, backoff and the Retry-After cap (ctgov/retry.h):
  // defaults 6 attempts, 10 min, 1 s doubling to 60 s with full jitter,
  // Retry-After honoured up to 60 s.
  RetryOptions retry = {};
  // Per attempt (see HttpRequest).
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration timeout = absl::Minutes(5);  // a 1000-study page is large
  long low_speed_bytes_per_second = 1024;
  absl::Duration low_speed_time = absl::Seconds(30);
  std::size_t max_response_bytes = std::size_t{512} << 20;
  // Seed of the backoff jitter; nullopt = from std::random_device.
  std::optional<std::uint64_t> random_seed = {};
};

// GET /studies/{nctId} options.
struct GetStudyOptions {
  StudyFormat format = StudyFormat::kJson;
  MarkupFormat markup_format = MarkupFormat::kDefault;  // JSON formats only
  std::vector<std::string> fields = {};  // empty = the whole record
};

// One study as the API returned it.
struct StudyRecord {
  std::string requested_id = {};  // the id asked for
  // The study's id: the target of a 301 (alias/old id), else the record's
  // own nctId when the body is JSON and has one, else requested_id.
  std::string nct_id = {};
  bool redirected = false;  // the API answered 301 and it was followed
  std::string body = {};    // as sent (JSON / CSV / FHIR JSON / RIS)
};

// ForEachPage limits. The page that reaches a limit is delivered whole.
struct PagingOptions {
  std::int64_t max_pages = 0;    // 0 = no limit
  std::int64_t max_studies = 0;  // JSON pages only; 0 = no limit
  // Checked before each page request; when true the paging stops with
  // kCancelled. Not owned; must outlive the call.
  const std::atomic<bool>* cancelled = nullptr;
};

struct PagingSummary {
  std::int64_t pages = 0;    // pages delivered to the callback
  std::int64_t studies = 0;  // JSON elements delivered
  std::optional<std::int64_t> total_count = {};  // from the first page, if sent
  bool complete = false;             // the last page (no token) was delivered
  std::string next_page_token = {};  // where to resume when !complete
};

// Receives each page; may move out of it. A non-OK return stops the paging
// and is returned by ForEachPage unchanged.
using PageCallback = std::function<absl::Status(StudyPage& page)>;

class CtgovClient {
 public:
  // Validates `options` (kInvalidArgument: base_url not http(s)://host...,
  // max_attempts < 1, negative durations, zero max_response_bytes) and
  // builds a client. `transport` must not be null; `clock` must outlive the
  // client and all its copies.
  static absl::StatusOr<CtgovClient> Create(
      CtgovOptions options, std::shared_ptr<HttpTransport> transport,
      common::Clock& clock);

  // Create() with a CurlTransport and the system clock.
  static absl::StatusOr<CtgovClient> CreateDefault(CtgovOptions options = {});

  // GET /studies. JSON: studies[] as exact bytes, nextPageToken, totalCount.
  // CSV: the body, with the token and total from the x-next-page-token and
  // x-total-count headers. kInvalidArgument for a bad page_size or a 400.
  absl::StatusOr<StudyPage> SearchStudies(const SearchParams& params) const;

  // GET /studies/{nctId}. kInvalidArgument unless model::IsValidNctId(nct_id)
  // (checked before any request); kNotFound for a 404. A 301 (the id is an
  // alias) is followed once, to this client's base URL with the id taken
  // from the Location header; a second redirect is kDataLoss.
  absl::StatusOr<StudyRecord> GetStudy(
      std::string_view nct_id, const GetStudyOptions& options = {}) const;

  // GET /studies/metadata: the data model's fields (raw JSON).
  absl::StatusOr<std::string> GetStudiesMetadata(
      bool include_indexed_only = false,
      bool include_historic_only = false) const;
  // GET /studies/search-areas (raw JSON).
  absl::StatusOr<std::string> GetSearchAreas() const;
  // GET /studies/enums (raw JSON).
  absl::StatusOr<std::string> GetEnums() const;
  // GET /stats/size: study JSON size statistics (raw JSON).
  absl::StatusOr<std::string> GetStatsSize() const;
  // GET /stats/field/values?types=..&fields=.. (raw JSON).
  absl::StatusOr<std::string> GetFieldValuesStats(
      const std::vector<std::string>& types = {},
      const std::vector<std::string>& fields = {}) const;
  // GET /stats/field/sizes?fields=.. (raw JSON).
  absl::StatusOr<std::string> GetListFieldSizes(
      const std::vector<std::string>& fields = {}) const;

  struct Version {
    ApiVersion parsed = {};  // apiVersion, dataTimestamp
    std::string json = {};   // the body as sent
  };
  // GET /version.
  absl::StatusOr<Version> GetVersion() const;

  // Pages through GET /studies from `first` (its page_token may resume an
  // earlier run), calling `on_page` for each page in order. countTotal is
  // sent on the first request only. Stops at the last page, at a limit in
  // `paging`, or on the first error. Returns:
  //   the summary            finished or stopped at a limit
  //   kCancelled             *paging.cancelled became true
  //   kDataLoss              the server repeated a page token (a loop)
  //   the callback's status  when it returned non-OK
  //   SearchStudies' errors  for a failed page
  absl::StatusOr<PagingSummary> ForEachPage(SearchParams first,
                                            const PagingOptions& paging,
                                            const PageCallback& on_page) const;

  const CtgovOptions& options() const;

 private:
  struct Impl;
  explicit CtgovClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace trialmatch::ctgov

#endif  // TRIALMATCH_CTGOV_CLIENT_H_
