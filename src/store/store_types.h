// Value types exchanged with store::StudyStore (study_store.h): records going
// in, stored studies coming out, lifecycle states, sync state, compiled
// criteria entries, endpoint-cache entries and local-search queries/pages.
//
// All are plain values: copyable, thread-compatible. Views (`StudyView`) point
// into store-owned memory and are only valid inside the callback that
// receives them.
#ifndef TRIALMATCH_STORE_STORE_TYPES_H_
#define TRIALMATCH_STORE_STORE_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "model/study.h"

namespace trialmatch::store {

// --- Studies -----------------------------------------------------------------

// Where a stored study stands relative to what the service wants to serve.
//   kActive     returned by the last sync and its overallStatus is wanted.
//   kLeftScope  its latest known overallStatus is no longer wanted (e.g. it
//               moved from RECRUITING to COMPLETED); kept, not served.
//   kVanished   a full reconciliation did not return it (withdrawn from the
//               registry, or its status changed and nothing told us which).
// A study upserted again becomes kActive or kLeftScope from its new status.
enum class Lifecycle { kActive, kLeftScope, kVanished };

// "ACTIVE" | "LEFT_SCOPE" | "VANISHED" (the spelling stored in SQLite).
std::string_view LifecycleName(Lifecycle lifecycle);
// Inverse of LifecycleName; kInvalidArgument for anything else.
absl::StatusOr<Lifecycle> ParseLifecycle(std::string_view name);

// A study as received from ClinicalTrials.gov: the exact JSON text (kept
// byte for byte, including resultsSection) and its parse. The store trusts
// that `study` was parsed from `raw_json`; MakeStudyRecord guarantees it.
struct StudyRecord {
  std::string raw_json;
  model::Study study;
};

// Parses `raw_json` with model::ParseStudy. kDataLoss when it is not a study.
absl::StatusOr<StudyRecord> MakeStudyRecord(std::string raw_json);

// A study as stored (GetStudy).
struct StoredStudy {
  std::string nct_id;
  std::string raw_json;        // exactly as upserted
  std::string overall_status;  // e.g. "RECRUITING"
  std::string last_update_post_date;
  Lifecycle lifecycle = Lifecycle::kActive;
  uint64_t content_hash = 0;  // ContentHash(raw_json)
  absl::Time fetched_at;      // last upsert of this study, changed or not
  absl::Time updated_at;      // last time raw_json changed (or inserted)
  absl::Time lifecycle_changed_at;
};

// One study during ForEachStudy. Views are valid only inside the callback.
struct StudyView {
  std::string_view nct_id;
  std::string_view overall_status;
  std::string_view last_update_post_date;
  Lifecycle lifecycle = Lifecycle::kActive;
  uint64_t content_hash = 0;
  absl::Time fetched_at;
  std::string_view raw_json;  // empty unless StudyFilter::include_raw_json
  // Present when StudyFilter::include_compiled and an entry exists (fresh or
  // not: compare versions/hash with CompiledEntry semantics if it matters).
  bool has_compiled = false;
  std::string_view compiled_blob;
  std::string_view compiler_version;
  std::string_view rules_version;
  uint64_t compiled_content_hash = 0;
};

struct StudyFilter {
  // Lifecycles to include; empty = all.
  std::vector<Lifecycle> lifecycles = {Lifecycle::kActive};
  // overall_status values to include; empty = all.
  std::vector<std::string> statuses;
  bool include_raw_json = true;
  bool include_compiled = false;
};

// What one UpsertStudies call did.
struct UpsertCounts {
  int64_t inserted = 0;  // new nct ids
  int64_t updated = 0;   // raw JSON changed
  int64_t unchanged =
      0;  // same content hash and size: only fetched_at refreshed
  int64_t left_scope = 0;   // became kLeftScope in this call (was not before)
  int64_t reactivated = 0;  // was kLeftScope/kVanished, now kActive
};

// Counts of stored data (GetStats).
struct StoreStats {
  int64_t studies = 0;
  int64_t active = 0;
  int64_t left_scope = 0;
  int64_t vanished = 0;
  int64_t raw_json_bytes = 0;  // sum of stored raw JSON sizes
  int64_t compiled_entries = 0;
  int64_t endpoint_entries = 0;
  int64_t file_bytes = 0;  // page_count * page_size of the main file
};

// What the store holds, as a version (GetGeneration): equal values mean
// nothing that feeds the matcher's snapshot changed in between (study rows
// added or removed, records, lifecycles, content hashes, compiled criteria).
struct StoreGeneration {
  std::string store_id;    // random, made with the store (or schema v3)
  int64_t generation = 0;  // +1 at every such change
  int64_t token = 0;       // random, renewed at every such change (so a
                           // restored backup that diverges never repeats)
  bool operator==(const StoreGeneration&) const = default;
};

// --- Sync state --------------------------------------------------------------

// An interrupted full sync resumes from here: the page token of the next
// page to fetch, persisted in the same transaction as the page's studies.
struct FullSyncCursor {
  int64_t sync_id = 0;     // allocated by BeginFullSync, > 0
  std::string page_token;  // next page to fetch; "" = the first page
  absl::Time started_at = absl::InfinitePast();
  int64_t pages_done = 0;
  int64_t studies_seen = 0;
};

// Counters of the last sync run, as the sync module reports them.
struct SyncCounts {
  int64_t fetched = 0;
  int64_t inserted = 0;
  int64_t updated = 0;
  int64_t unchanged = 0;
  int64_t left_scope = 0;
  int64_t vanished = 0;
};

// The store keeps this value verbatim for the sync module (which owns its
// meaning); the only fields the store itself writes are documented at
// BeginFullSync/ReconcileFullSync.
struct SyncState {
  std::string watermark;       // max lastUpdatePostDate seen ("YYYY-MM-DD")
  std::string data_timestamp;  // upstream dataTimestamp at the last sync
  std::optional<absl::Time> last_full_sync_at;
  std::optional<absl::Time> last_incremental_sync_at;
  SyncCounts last_sync_counts;
  std::optional<FullSyncCursor> full_sync;  // set while a full sync runs
};

// What ReconcileFullSync did.
struct ReconcileCounts {
  int64_t vanished = 0;  // kActive studies this full sync did not return
  int64_t seen = 0;      // studies stamped as seen by this full sync
};

// What ApplyScope did.
struct ScopeCounts {
  int64_t left_scope = 0;   // kActive -> kLeftScope
  int64_t reactivated = 0;  // kLeftScope -> kActive (status wanted again)
};

// --- Compiled criteria -------------------------------------------------------

// The criteria module's compiled form of one study, stored opaquely. An entry
// is fresh when its compiler_version and rules_version equal the caller's
// current ones and its content_hash equals the stored study's content_hash.
struct CompiledEntry {
  std::string nct_id;
  std::string compiler_version;
  std::string rules_version;
  uint64_t content_hash = 0;  // of the raw JSON it was compiled from
  std::string blob;           // opaque bytes (binary-safe)
  absl::Time compiled_at;     // set by the store on PutCompiled
};

enum class StaleReason { kMissing, kVersionChanged, kContentChanged };

struct StaleStudy {
  std::string nct_id;
  uint64_t content_hash = 0;  // the stored study's current hash
  StaleReason reason = StaleReason::kMissing;
};

struct StaleQuery {
  std::string compiler_version;
  std::string rules_version;
  std::vector<Lifecycle> lifecycles = {Lifecycle::kActive};  // empty = all
  int64_t limit = 0;                                         // 0 = no limit
};

// --- Endpoint cache ----------------------------------------------------------

// A cached upstream response (metadata, search-areas, enums, stats/size,
// version ...).
struct CachedResponse {
  std::string body;
  absl::Time fetched_at;
  absl::Duration age;  // store clock's now - fetched_at (never negative)
};

// --- Local search ------------------------------------------------------------

// An offline approximation of GET /studies with query.cond / query.intr /
// query.term. Each text field is words and "quoted phrases", all required;
// `OR` (upper case) between two terms makes either suffice; a trailing `*`
// makes a word a prefix. Matching is case- and diacritic-insensitive. Fields
// searched (after the API's search areas, limited to what the store indexes):
//   cond: conditions, condition MeSH terms and ancestors, titles, keywords, NCT
//   id intr: intervention names, titles, keywords term: all of the above plus
//   acronym and lead sponsor
// Results are ordered by NCT id (stable under concurrent writes: a study is
// returned at most once across pages), not by relevance.
struct LocalSearchQuery {
  std::string cond;
  std::string intr;
  std::string term;
  std::vector<std::string> statuses;  // overall_status filter; empty = any
  std::vector<Lifecycle> lifecycles = {Lifecycle::kActive};  // empty = all
  int page_size = 10;       // 0 -> 10; values above 1000 are clamped to 1000
  std::string page_token;   // from a previous page of the same query
  bool count_total = true;  // fill LocalSearchPage::total_count
};

struct LocalSearchHit {
  std::string nct_id;
  std::string brief_title;
  std::string overall_status;
  std::string last_update_post_date;
  std::string study_type;
  std::vector<std::string> phases;
  std::vector<std::string> conditions;
  std::vector<std::string> interventions;
  Lifecycle lifecycle = Lifecycle::kActive;
};

struct LocalSearchPage {
  std::vector<LocalSearchHit> studies;
  std::string next_page_token;         // "" on the last page
  std::optional<int64_t> total_count;  // when count_total
};

}  // namespace trialmatch::store

#endif  // TRIALMATCH_STORE_STORE_TYPES_H_
