// Syncer: brings the local study store (store::StudyStore) up to date with
// ClinicalTrials.gov (ctgov::CtgovClient). Used by `trialmatch sync` and, on
// a schedule, by `trialmatch serve` (sync/scheduler.h). docs/sync.md has the
// whole story; in short:
//
// Full sync — every study whose overallStatus is wanted (default RECRUITING,
//   NOT_YET_RECRUITING), `pageSize` studies per page (default 1000),
//   countTotal on the first page. Each page is ONE store transaction together
//   with the cursor (the next page token), so a crash or an upstream failure
//   resumes at the next page; a resumed token the upstream rejects (HTTP 400)
//   restarts the full sync from the first page, with a warning. After the
//   last page, the studies that were ACTIVE but not returned are asked for
//   by `filter.ids` (batched, no status filter): those returned are stored
//   with their new status (LEFT_SCOPE when no longer wanted), the others are
//   marked VANISHED (store::StudyStore::ReconcileFullSync).
// Incremental sync — `filter.advanced=AREA[LastUpdatePostDate]RANGE[
//   watermark - overlap, MAX]` without a status filter, so studies that stop
//   recruiting are seen too: stored ones become LEFT_SCOPE, new in-scope ones
//   ACTIVE; out-of-scope studies the store does not hold are not stored
//   (SyncOptions::store_unknown_out_of_scope). Skipped without any /studies
//   request when /version's dataTimestamp equals the one recorded by the
//   last successful sync. The watermark is the latest lastUpdatePostDate
//   seen; it is written after the last page is stored, so a failed
//   incremental sync simply runs again from the old watermark (upserts are
//   idempotent).
// kAuto picks a full sync when none ever completed, when one is in progress
//   (it resumes), or when the last one is older than full_sync_interval;
//   an incremental sync otherwise.
//
// What was stored stays stored and served when the upstream fails mid-way.
// Records the upstream sends that are not studies (or have an invalid NCT
// id) are skipped with a warning naming their position, never stored.
//
// Thread safety: a Syncer is thread-safe; Sync() calls are serialised (a
// second caller waits). Two processes syncing one store at the same time
// is safe (SQLite transactions) but wasteful: they share the cursor.
#ifndef TRIALMATCH_SYNC_SYNCER_H_
#define TRIALMATCH_SYNC_SYNCER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "ctgov/client.h"
#include "store/study_store.h"
#include "sync/progress.h"

namespace trialmatch::sync {

// The statuses served by default.
inline const std::vector<std::string>& DefaultWantedStatuses() {
  static const auto* const kStatuses =
      new std::vector<std::string>{"RECRUITING", "NOT_YET_RECRUITING"};
  return *kStatuses;
}

// The wanted statuses a --statuses flag asks for: no value -> the defaults;
// the single value "ALL" (any case) -> {} (every status: the whole
// registry); otherwise the values as given.
std::vector<std::string> WantedStatusesFromFlag(
    const std::vector<std::string>& values);

struct SyncOptions {
  // overallStatus values in scope (upper case; normalised by Create). Empty
  // means every status — the whole registry.
  std::vector<std::string> wanted_statuses = DefaultWantedStatuses();
  // Studies per /studies page, 1..1000.
  int page_size = 1000;
  // How far before the watermark an incremental sync starts (whole days,
  // rounded up): post dates are days, and records can be posted late.
  absl::Duration overlap = absl::Hours(3 * 24);
  // A full sync (with reconciliation) runs in kAuto mode when the last one
  // completed longer ago than this. ZeroDuration() = only when none ever
  // completed.
  absl::Duration full_sync_interval = absl::Hours(7 * 24);
  // NCT ids per `filter.ids` request during reconciliation, 1..1000.
  int reconcile_batch_size = 200;
  // Skip an incremental sync when /version's dataTimestamp has not moved.
  bool skip_when_data_unchanged = true;
  // Incremental syncs see every updated study of the registry, most of them
  // never in scope. false (default): store an out-of-scope study only when
  // the store already holds it (to record that it left the scope). true:
  // store them all as LEFT_SCOPE.
  bool store_unknown_out_of_scope = false;
};

enum class SyncMode {
  kAuto,         // as described in the file comment
  kFull,         // a full sync (resumes one in progress)
  kIncremental,  // unless a full sync is required (none yet / in progress)
};

enum class SyncKind { kSkipped, kFull, kIncremental };
std::string_view SyncKindName(SyncKind kind);  // "skipped" | "full" | ...

// What one Sync() did. Counts cover this run only (a resumed full sync's
// earlier pages are in resumed_pages / resumed_studies).
struct SyncReport {
  SyncKind kind = SyncKind::kSkipped;
  bool resumed = false;  // continued an interrupted full sync
  int64_t resumed_pages = 0;
  int64_t resumed_studies = 0;
  bool restarted = false;  // the saved page token was rejected: restarted
  int64_t pages = 0;       // /studies pages fetched (reconciliation included)
  int64_t fetched = 0;     // study records received
  int64_t json_bytes = 0;  // their JSON size
  int64_t inserted = 0;
  int64_t updated = 0;
  int64_t unchanged = 0;
  int64_t left_scope = 0;       // became LEFT_SCOPE (status no longer wanted)
  int64_t reactivated = 0;      // LEFT_SCOPE / VANISHED -> ACTIVE
  int64_t vanished = 0;         // ACTIVE -> VANISHED (reconciliation)
  int64_t ignored = 0;          // out of scope and not stored (incremental)
  int64_t skipped = 0;          // bad records (not a study, invalid NCT id)
  int64_t reconcile_asked = 0;  // ids asked for by filter.ids
  int64_t reconcile_returned = 0;      // studies the upstream returned for them
  std::optional<int64_t> total_count;  // the upstream's totalCount
  std::string data_timestamp;          // upstream /version dataTimestamp
  std::string watermark;               // after this run
  absl::Duration elapsed;

  // True when the store's served content may have changed: something
  // inserted, updated, left the scope, came back or vanished.
  bool changed() const {
    return inserted + updated + left_scope + reactivated + vanished > 0;
  }
  // One line for logs and the CLI: kind, counts, pages, time, rates.
  std::string Summary() const;
};

struct SyncControl {
  // When it becomes true, the sync stops before its next request with
  // kCancelled (what was stored stays; a full sync resumes later). Not owned.
  const std::atomic<bool>* cancelled = nullptr;
  // Called after each page (on the syncing thread).
  ProgressCallback on_progress = {};
};

class Syncer {
 public:
  // Normalises (trims, upper-cases, de-duplicates) the wanted statuses and
  // validates the options: kInvalidArgument for a page_size or
  // reconcile_batch_size outside 1..1000, a negative overlap or interval.
  // `store` and `clock` are not owned and must outlive the Syncer.
  static absl::StatusOr<std::unique_ptr<Syncer>> Create(
      ctgov::CtgovClient client, store::StudyStore* store, SyncOptions options,
      common::Clock& clock = common::SystemClock::Default());

  Syncer(const Syncer&) = delete;
  Syncer& operator=(const Syncer&) = delete;

  // Runs one sync. Errors (the store keeps everything committed before):
  //   kUnavailable       ClinicalTrials.gov unreachable / overloaded after
  //                      the client's retries
  //   kDeadlineExceeded  likewise, when the last attempt timed out
  //   kDataLoss          the upstream kept sending unusable data (malformed
  //                      JSON after retries, a looping page token)
  //   kInvalidArgument   the upstream rejected a query (HTTP 400) other than
  //                      a stale resumed page token
  //   kCancelled         control.cancelled became true
  //   store errors       (see store/study_store.h)
  // Messages say what was kept: "... after 12 pages; stored pages are kept,
  // the next sync resumes at page 13".
  absl::StatusOr<SyncReport> Sync(SyncMode mode = SyncMode::kAuto,
                                  const SyncControl& control = {});

  const SyncOptions& options() const { return options_; }

 private:
  class Run;
  Syncer(ctgov::CtgovClient client, store::StudyStore* store,
         SyncOptions options, common::Clock& clock);

  const ctgov::CtgovClient client_;
  store::StudyStore* const store_;
  const SyncOptions options_;
  common::Clock& clock_;
  absl::Mutex sync_mu_;  // held for the whole of Sync()
};

}  // namespace trialmatch::sync

#endif  // TRIALMATCH_SYNC_SYNCER_H_
