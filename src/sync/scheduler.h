// SyncScheduler: keeps the store synced in the background of `serve`.
//
// A thread syncs once at start (SyncMode::kAuto: incremental, or full when
// the store never completed one or one is due), then every `interval`.
// When a sync fails (ClinicalTrials.gov unreachable, a bad answer, a store
// error) the stored studies keep being served; the scheduler logs a WARNING
// once per failure streak (and again only if the kind of failure changes),
// retries with exponential backoff (initial_retry doubling up to max_retry),
// and logs when syncing works again. It never throws or aborts the process.
// Stop() cancels a running sync (it ends before its next request; with the
// clients built by Create(), sleeps and retry waits end at once too) and
// joins the thread.
//
//   auto scheduler = SyncScheduler::Create(store.get(), config,
//       [&](const SyncReport& report) { server.RebuildSnapshot(); });
//   (*scheduler)->Start();
//   ... status() for a health/status endpoint ...
//   (*scheduler)->Stop();   // also done by the destructor
//
// The change callback runs on the scheduler's thread after each sync whose
// report says changed() (studies inserted, updated, left the scope, came
// back or vanished) — not after skipped or no-op syncs, and not at start:
// the server builds its first snapshot from the store itself. It must not
// call Stop() (that would join its own thread).
//
// Time: the schedule reads the injected clock; the waits between runs are
// real-time condition-variable waits of the clock's remaining duration, cut
// short by RequestSync() and Stop(). Tests drive RunOnce() with a
// FakeClock, or the thread with RequestSync().
//
// Thread safety: all methods are thread-safe. Start() at most once;
// after Stop() the scheduler cannot be restarted.
#ifndef TRIALMATCH_SYNC_SCHEDULER_H_
#define TRIALMATCH_SYNC_SCHEDULER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "ctgov/client.h"
#include "store/study_store.h"
#include "sync/cancellation.h"
#include "sync/syncer.h"

namespace trialmatch::sync {

struct SchedulerOptions {
  // Between the end of a successful sync and the start of the next.
  absl::Duration interval = absl::Hours(1);
  // After the n-th consecutive failure: min(max_retry, initial_retry *
  // 2^(n-1)).
  absl::Duration initial_retry = absl::Minutes(1);
  absl::Duration max_retry = absl::Minutes(30);
  // Sync as soon as Start() is called (else after the first interval).
  bool sync_at_start = true;
};

// What the server can expose about syncing.
struct SchedulerStatus {
  bool running = false;  // a sync is in progress
  int64_t attempts = 0;
  int64_t successes = 0;
  int64_t failures = 0;
  int64_t consecutive_failures = 0;  // 0 = the last attempt succeeded
  std::optional<absl::Time> last_attempt_at;
  std::optional<absl::Time> last_success_at;
  std::optional<absl::Time> last_failure_at;
  absl::Status last_error = absl::OkStatus();  // of the last failure
  std::optional<SyncReport> last_report;       // of the last success
  std::optional<absl::Time> next_run_at;       // when idle and scheduled
};

struct SchedulerConfig {
  ctgov::CtgovOptions ctgov = {};
  SyncOptions sync = {};
  SchedulerOptions schedule = {};
};

class SyncScheduler {
 public:
  // One sync; `cancelled` turns true when the scheduler stops.
  using SyncFn =
      std::function<absl::StatusOr<SyncReport>(const std::atomic<bool>&)>;
  using ChangedFn = std::function<void(const SyncReport&)>;

  // The production scheduler: a libcurl client (config.ctgov) over
  // cancellable transport and clock (sync/cancellation.h), a Syncer over
  // `store` (not owned; must outlive the scheduler). Errors:
  // kInvalidArgument for bad options (see Syncer::Create, CtgovClient::
  // Create), kInternal when libcurl cannot be initialised. Not started.
  static absl::StatusOr<std::unique_ptr<SyncScheduler>> Create(
      store::StudyStore* store, SchedulerConfig config, ChangedFn on_change);

  // A scheduler around any sync function (tests). `clock` must outlive it.
  // `cancellation` (may be null: one is made) is cancelled by Stop(); pass
  // the one the sync function's client was built over.
  SyncScheduler(SyncFn sync, SchedulerOptions options, common::Clock& clock,
                ChangedFn on_change,
                std::shared_ptr<Cancellation> cancellation = nullptr);
  SyncScheduler(const SyncScheduler&) = delete;
  SyncScheduler& operator=(const SyncScheduler&) = delete;
  ~SyncScheduler();  // Stop()

  // Starts the background thread. Later calls do nothing.
  void Start();
  // Cancels a running sync, wakes and joins the thread. Idempotent.
  void Stop();
  // Makes the thread sync now (or right after the sync in progress).
  void RequestSync();

  SchedulerStatus status() const;

  // One attempt now, on the calling thread (serialised with the thread's):
  // runs the sync, updates status(), logs, calls the change callback.
  // Returns the wait before the next attempt: `interval` after a success,
  // the backoff after a failure. Does nothing (returns `interval`) once
  // stopped.
  absl::Duration RunOnce();

 private:
  void Loop();
  bool WakeUp() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || requested_;
  }

  const SyncFn sync_;
  const SchedulerOptions options_;
  common::Clock& clock_;
  const ChangedFn on_change_;
  const std::shared_ptr<Cancellation> cancellation_;
  // Keeps objects the sync function's client refers to alive (Create()).
  std::shared_ptr<void> keep_alive_;

  absl::Mutex run_mu_;  // one RunOnce at a time
  mutable absl::Mutex mu_;
  SchedulerStatus status_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // The failure code the current streak was last reported with.
  std::optional<absl::StatusCode> reported_code_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace trialmatch::sync

#endif  // TRIALMATCH_SYNC_SCHEDULER_H_
