// StudyBackend: the logic of trialmatch.v1.StudyService, free of gRPC
// plumbing (userver's service/component split): requests in, typed responses
// or absl::Status out. server/study_service.h runs it on executors behind the
// callback API; tests drive it through an in-process server.
//
// Sources. Every answer says where it came from in a Freshness message:
//   UPSTREAM  fetched from ClinicalTrials.gov for this request (age 0);
//   CACHE     from the local store, with fetched_at and age; with
//             upstream_unavailable = true when the upstream was needed but
//             could not be used (down, circuit open, offline mode) — the
//             data may then be older than the usual maximum age.
//
// Rules per operation (details and rationale: docs/server.md):
//   GetStudy      cache-first: a stored copy younger than the max age
//                 (request override, else StudyServiceOptions::max_cache_age;
//                 0 forces upstream) answers; otherwise upstream, and the
//                 fresh record is written back to the store. Upstream down →
//                 the stored copy whatever its age, flagged; nothing stored →
//                 UNAVAILABLE (NOT_FOUND in offline mode). `fields` and CSV
//                 are upstream-only (the store holds whole JSON records).
//   SearchStudies upstream first; when the upstream cannot be used, simple
//                 queries (query.cond/intr/term, filter.overall_status,
//                 paging, count_total; JSON) are answered by the store's
//                 full-text search, flagged; other queries → UNAVAILABLE.
//                 Page tokens are bound to query and origin (page_token.h).
//                 A page larger than the response budget is returned in
//                 parts (fewer studies + a token that resumes mid-page).
//   ListAllStudies pages upstream (or the store, same fallback rules) and
//                 emits each study, then a summary; stops at `limit`, on
//                 cancellation or when the consumer goes away.
//   GetStudyCriteria  a stored study's compiled eligibility criteria: the
//                 store's compiled entry when fresh (current compiler and
//                 rules, current record), else compiled now and written back
//                 (sync/criteria_refresh.h LoadOrCompile). Store only: a
//                 study not in the store is NOT_FOUND. GetStudy with
//                 include_criteria attaches the same to whatever record it
//                 returns (cached or just fetched).
//   endpoints     metadata, search-areas, enums, stats/size, version: the
//                 store's endpoint cache with a TTL each; expired → upstream
//                 and re-cached; upstream down → the cached body whatever its
//                 age, flagged; nothing cached → UNAVAILABLE.
//
// Validation happens before any upstream call: malformed NCT id, page_size
// outside 0..1000, unknown overall_status value (the message lists the API's
// Status values), unknown format, negative limit or max age, foreign page
// token → kInvalidArgument.
//
// Error model (the statuses returned; server/grpc_status.h maps them):
//   kInvalidArgument   validation above; the upstream rejected the query (400)
//   kNotFound          no such study upstream (or in the store when offline)
//   kUnavailable       the upstream was needed, is unreachable/rate-limiting
//                      after retries, and the store cannot answer; the store
//                      is not open yet; the store is locked by another process
//   kFailedPrecondition offline mode and the request needs the upstream;
//                      criteria asked for but no rules configured
//   kResourceExhausted one study is larger than the response budget
//   kCancelled / kDeadlineExceeded  the call's token (call_context.h) expired
//   kInternal          anything unexpected (logged; clients see a generic text)
// Store errors other than not-found are never passed through verbatim (their
// messages may hold SQL); they are logged and replaced.
//
// Two-phase operations: `*Local` runs first, on a thread allowed to touch
// the store only; it returns an answer, or nullopt when the upstream is
// needed, in which case `*Upstream` runs (on a thread allowed to block on
// HTTP). `*Upstream` re-validates and is complete on its own.
//
// Thread safety: thread-safe; all methods may run concurrently. Blocking
// methods honour the current thread's CallToken (call_context.h).
#ifndef TRIALMATCH_SERVER_STUDY_BACKEND_H_
#define TRIALMATCH_SERVER_STUDY_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "criteria/rule_set.h"
#include "ctgov/client.h"
#include "server/call_context.h"
#include "server/typed_study_cache.h"
#include "server/upstream_monitor.h"
#include "store/study_store.h"
#include "trialmatch/v1/study_service.pb.h"

namespace trialmatch::server {

// How long each cached endpoint response is served without asking upstream.
struct EndpointTtls {
  absl::Duration metadata = absl::Hours(24);
  absl::Duration search_areas = absl::Hours(24);
  absl::Duration enums = absl::Hours(24);
  absl::Duration stats_size = absl::Hours(1);
  absl::Duration version = absl::Minutes(10);
};

// gRPC's default maximum receive size of a client (4 MiB): the budget every
// response is held to unless configured otherwise.
inline constexpr std::size_t kDefaultClientReceiveLimit = std::size_t{4} << 20;

struct StudyBackendOptions {
  // GetStudy serves a stored copy younger than this (request may override).
  absl::Duration max_cache_age = absl::Hours(24);
  EndpointTtls ttls = {};
  // overall_status values in scope for records GetStudy writes back (they
  // are stored ACTIVE, others LEFT_SCOPE; see store::UpsertOptions). Empty =
  // every status in scope. Should equal the sync module's scope.
  std::vector<std::string> wanted_statuses = {};
  // Largest serialized response (bytes). Keep <= what clients accept.
  std::size_t max_response_bytes = kDefaultClientReceiveLimit;
  // trialmatch's version, reported by GetApiVersion.
  std::string server_version = {};
  // Memory for typed fields of recently served stored studies (saves a JSON
  // parse per cache hit; see typed_study_cache.h). 0 disables.
  std::size_t typed_cache_bytes = std::size_t{64} << 20;
  // The eligibility rules of GetStudyCriteria and include_criteria (not
  // owned; must outlive the backend; reloads take effect at the next call).
  // Null: those requests fail with kFailedPrecondition.
  criteria::RuleSetHolder* rules = nullptr;
};

// The API's Status enum (OpenAPI 2.0.3), the values filter.overall_status
// accepts.
const std::vector<std::string>& StudyStatusValues();

class StudyBackend {
 public:
  template <typename T>
  using Maybe = std::optional<absl::StatusOr<T>>;

  // `upstream` nullopt = offline mode (ClinicalTrials.gov is never called).
  // `monitor` may be null (then the upstream is always tried); `monitor` and
  // `clock` must outlive the backend. `clock` measures ages of stored data:
  // use the same clock as the store.
  StudyBackend(StudyBackendOptions options,
               std::optional<ctgov::CtgovClient> upstream,
               UpstreamMonitor* monitor, common::Clock& clock);

  // Makes the store available (until then every store-backed answer is
  // kUnavailable "starting"). May be called once, from any thread.
  void AttachStore(std::shared_ptr<store::StudyStore> store);
  bool store_attached() const;
  bool offline() const { return !upstream_.has_value(); }

  Maybe<v1::GetStudyResponse> GetStudyLocal(const v1::GetStudyRequest& r);
  absl::StatusOr<v1::GetStudyResponse> GetStudyUpstream(
      const v1::GetStudyRequest& r);

  // Always answers (store only); the second form is Dispatch's "upstream"
  // phase, never reached.
  Maybe<v1::GetStudyCriteriaResponse> GetStudyCriteriaLocal(
      const v1::GetStudyCriteriaRequest& r);
  absl::StatusOr<v1::GetStudyCriteriaResponse> GetStudyCriteria(
      const v1::GetStudyCriteriaRequest& r);

  Maybe<v1::SearchStudiesResponse> SearchStudiesLocal(
      const v1::SearchStudiesRequest& r);
  absl::StatusOr<v1::SearchStudiesResponse> SearchStudiesUpstream(
      const v1::SearchStudiesRequest& r);

  // Cheap checks done before a stream starts.
  absl::Status ValidateListAll(const v1::ListAllStudiesRequest& r) const;
  // Emits each study (then returns the summary, which the caller sends
  // last). `emit` returns false when the consumer is gone: the listing
  // stops with kCancelled. Honours token.cancel_flag() between pages.
  absl::StatusOr<v1::ListAllStudiesSummary> ListAllStudies(
      const v1::ListAllStudiesRequest& r, const CallToken& token,
      absl::FunctionRef<bool(v1::Study&&)> emit);

  Maybe<v1::GetStudiesMetadataResponse> GetStudiesMetadataLocal(
      const v1::GetStudiesMetadataRequest& r);
  absl::StatusOr<v1::GetStudiesMetadataResponse> GetStudiesMetadataUpstream(
      const v1::GetStudiesMetadataRequest& r);
  Maybe<v1::GetSearchAreasResponse> GetSearchAreasLocal(
      const v1::GetSearchAreasRequest& r);
  absl::StatusOr<v1::GetSearchAreasResponse> GetSearchAreasUpstream(
      const v1::GetSearchAreasRequest& r);
  Maybe<v1::GetEnumsResponse> GetEnumsLocal(const v1::GetEnumsRequest& r);
  absl::StatusOr<v1::GetEnumsResponse> GetEnumsUpstream(
      const v1::GetEnumsRequest& r);
  Maybe<v1::GetStatsSizeResponse> GetStatsSizeLocal(
      const v1::GetStatsSizeRequest& r);
  absl::StatusOr<v1::GetStatsSizeResponse> GetStatsSizeUpstream(
      const v1::GetStatsSizeRequest& r);
  Maybe<v1::GetApiVersionResponse> GetApiVersionLocal(
      const v1::GetApiVersionRequest& r);
  absl::StatusOr<v1::GetApiVersionResponse> GetApiVersionUpstream(
      const v1::GetApiVersionRequest& r);

  // GET /version for the upstream prober: OK when the upstream answered
  // with a usable body (which then refreshes the cached version).
  absl::Status ProbeUpstream();

 private:
  enum class Endpoint { kMetadata, kSearchAreas, kEnums, kStatsSize, kVersion };
  struct EndpointBody {
    std::string body;
    v1::Freshness freshness;
  };
  struct UpstreamGate {
    bool usable = false;
    std::string why_not;  // note for Freshness / error messages
  };

  absl::StatusOr<std::shared_ptr<store::StudyStore>> Store() const;
  UpstreamGate CheckUpstream();
  // Classifies an upstream failure: token expiry → its status; rejections
  // (400/404) → passed; anything else is an outage: reported to the monitor,
  // returned as nullopt with `*why` set.
  std::optional<absl::Status> NonOutage(const absl::Status& s,
                                        std::string* why);
  absl::Status Unavailable(std::string_view what, std::string_view why) const;

  // GetStudy helpers. The *Study* phases without include_criteria.
  Maybe<v1::GetStudyResponse> StudyLocal(const v1::GetStudyRequest& r);
  absl::StatusOr<v1::GetStudyResponse> StudyUpstream(
      const v1::GetStudyRequest& r);
  // include_criteria: kInvalidArgument with fields/CSV, kFailedPrecondition
  // without rules.
  absl::Status ValidateIncludeCriteria(const v1::GetStudyRequest& r) const;
  // Attaches the criteria of resp->study().record_json() when asked.
  absl::Status AttachCriteria(const v1::GetStudyRequest& r,
                              absl::StatusOr<v1::GetStudyResponse>* resp);
  absl::StatusOr<std::optional<store::StoredStudy>> LoadStudy(
      const std::string& nct_id);
  // `stored` as a v1::Study (typed fields from typed_cache_ when the record
  // is unchanged). kInternal when the stored record does not parse.
  absl::Status StudyFromStored(const store::StoredStudy& stored,
                               v1::Study* out);
  absl::StatusOr<v1::GetStudyResponse> CachedStudyResponse(
      const store::StoredStudy& stored, bool upstream_unavailable,
      std::string note);
  absl::StatusOr<v1::GetStudyResponse> StudyFallback(
      const v1::GetStudyRequest& r, const std::string& nct_id,
      std::string_view why);
  void WriteBack(std::string record_json);

  // SearchStudies helpers.
  absl::StatusOr<v1::SearchStudiesResponse> SearchFromStore(
      const v1::SearchStudiesRequest& r, uint64_t fingerprint,
      const std::string& inner, int64_t skip, int32_t fetch_page_size,
      bool upstream_unavailable, std::string note);

  // Endpoint helpers.
  Maybe<EndpointBody> EndpointLocal(Endpoint e, const std::string& params);
  absl::StatusOr<EndpointBody> EndpointUpstream(
      Endpoint e, const std::string& params,
      const std::function<absl::StatusOr<std::string>()>& fetch);
  absl::StatusOr<EndpointBody> EndpointFallback(Endpoint e,
                                                const std::string& params,
                                                std::string_view why);
  absl::Status ValidateEndpointBody(Endpoint e, std::string_view body) const;

  v1::Freshness UpstreamFreshness() const;
  v1::Freshness CacheFreshness(absl::Time fetched_at, bool upstream_unavailable,
                               std::string note) const;

  const StudyBackendOptions options_;
  const std::optional<ctgov::CtgovClient> upstream_;
  UpstreamMonitor* const monitor_;
  common::Clock& clock_;
  TypedStudyCache typed_cache_;
  mutable absl::Mutex mu_;
  std::shared_ptr<store::StudyStore> store_ ABSL_GUARDED_BY(mu_);
};

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_STUDY_BACKEND_H_
