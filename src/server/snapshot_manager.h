// The matcher's snapshot served from the study store: loading it, and keeping
// the current one while a server runs.
//
//   LoadSnapshot(store, rules, options)
//       Reads every ACTIVE study of the store (ForEachStudy, one consistent
//       read) with its compiled criteria and builds a match::Snapshot. A
//       study's stored compiled entry is used when it is fresh (made by the
//       current compiler and rules from the current record); otherwise the
//       study is compiled now with `rules` (nothing is written back: the
//       criteria refresher, sync/criteria_refresh.h, owns the stored
//       entries). Records are decoded (JSON parse, criteria parse or compile)
//       on `options.threads` threads while the store is read. A record that
//       does not parse is skipped with a WARNING naming its NCT id, never
//       fatal. Used by `trialmatch serve` (through the SnapshotManager) and
//       by the in-process `trialmatch match`.
//
//   SnapshotHolder
//       The current snapshot: readers take a shared_ptr (lock-free for them
//       in spirit: one std::atomic<std::shared_ptr> load) and keep using it
//       for the whole call, while a new one is installed; the old one is
//       freed when its last reader lets go.
//
//   SnapshotManager
//       A background thread that (re)builds the snapshot at Start() and on
//       RequestRebuild() (serve: after each sync that changed the store and
//       after the criteria refresher recompiled or the rules changed), and
//       installs it in its holder. Requests arriving while a rebuild waits or
//       prepares are coalesced into it. A failed rebuild keeps the current
//       snapshot, is logged, and is retried after `retry_interval`.
//
// Why here and not in match/: match/ is pure (no I/O, no store, no proto);
// this is the composition of store + criteria + match that the serving layer
// (server and cli) needs.
//
// Thread safety: LoadSnapshot is thread-safe (the store is); SnapshotHolder
// and SnapshotManager are thread-safe.
#ifndef TRIALMATCH_SERVER_SNAPSHOT_MANAGER_H_
#define TRIALMATCH_SERVER_SNAPSHOT_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "criteria/rule_set.h"
#include "match/snapshot.h"
#include "store/study_store.h"

namespace trialmatch::server {

struct SnapshotLoadOptions {
  // Threads decoding records; 0 = one per hardware thread. 1 decodes on the
  // calling thread.
  int threads = 0;
  // When it turns true the load stops with kCancelled. May be null.
  const std::atomic<bool>* cancelled = nullptr;
  // Called every `progress_every` studies read (from the calling thread),
  // with the count so far. May be empty.
  std::function<void(int64_t studies_read)> progress;
  int64_t progress_every = 1000;
  // Time of LoadedSnapshot::built_at. Not owned.
  const common::Clock* clock = &common::SystemClock::Default();
};

// What one load did.
struct SnapshotLoadReport {
  int64_t studies = 0;     // in the snapshot
  int64_t from_store = 0;  // with a fresh stored compiled entry
  int64_t compiled = 0;    // compiled now (entry missing or stale)
  int64_t failed = 0;      // skipped: the record does not parse
  // The first few failures, "NCT...: message" (study ids only).
  std::vector<std::string> failures;
  absl::Duration elapsed;
  // "snapshot of 1267 studies (1267 with stored compiled criteria, 0 compiled
  // now, 0 failed) in 1.9s".
  std::string Summary() const;
};

// A snapshot with what a response says about it.
struct LoadedSnapshot {
  std::shared_ptr<const match::Snapshot> snapshot;  // never null once loaded
  absl::Time built_at;
  // Set by SnapshotHolder::Install: 1 for the first snapshot installed, then
  // +1 each time. 0 before.
  int64_t generation = 0;
  std::string compiler_version;
  std::string rules_version;
  SnapshotLoadReport report;
};

// Loads the ACTIVE studies of `store` (see the file comment). `rules` must
// not be null; it compiles stale entries and is kept by the snapshot
// (patient condition synonyms). Errors: the store's (kUnavailable,
// kDataLoss, kInternal ...); kCancelled when options.cancelled turned true;
// kInvalidArgument for options.threads < 0.
absl::StatusOr<LoadedSnapshot> LoadSnapshot(
    store::StudyStore& store, std::shared_ptr<const criteria::RuleSet> rules,
    const SnapshotLoadOptions& options = {});

class SnapshotHolder {
 public:
  SnapshotHolder() = default;
  SnapshotHolder(const SnapshotHolder&) = delete;
  SnapshotHolder& operator=(const SnapshotHolder&) = delete;

  // The current snapshot, or null before the first Install.
  std::shared_ptr<const LoadedSnapshot> Current() const {
    return current_.load(std::memory_order_acquire);
  }

  // Makes `loaded` current (its generation is set here) and returns it.
  // Calls already running keep the snapshot they started with.
  std::shared_ptr<const LoadedSnapshot> Install(LoadedSnapshot loaded)
      ABSL_LOCKS_EXCLUDED(install_mu_);

 private:
  std::atomic<std::shared_ptr<const LoadedSnapshot>> current_;
  absl::Mutex install_mu_;  // serialises generations
  int64_t generation_ ABSL_GUARDED_BY(install_mu_) = 0;
};

struct SnapshotManagerOptions {
  // After a failed rebuild (e.g. the store locked by another process), the
  // next attempt.
  absl::Duration retry_interval = absl::Minutes(1);
};

// What the manager can report.
struct SnapshotManagerStatus {
  int64_t builds = 0;    // successful rebuilds
  int64_t failures = 0;  // failed ones
  absl::Status last_error = absl::OkStatus();
  std::optional<SnapshotLoadReport> last_report;
};

class SnapshotManager {
 public:
  // Builds one snapshot; `cancelled` turns true on Stop().
  using LoadFn = std::function<absl::StatusOr<LoadedSnapshot>(
      const std::atomic<bool>& cancelled)>;
  // Runs before each build, before the pending requests are taken: requests
  // made while it runs are served by the build that follows (serve: the
  // criteria refresher's RunOnce, so stale entries are compiled and stored
  // once, and its "refreshed" notification does not cause a second build).
  using PrepareFn = std::function<void()>;
  // Called after each snapshot installed (on the manager's thread).
  using InstalledFn = std::function<void(const LoadedSnapshot&)>;

  // `holder` is not owned and must outlive the manager. Not started.
  SnapshotManager(SnapshotHolder* holder, LoadFn load,
                  SnapshotManagerOptions options = {},
                  PrepareFn prepare = nullptr,
                  InstalledFn on_installed = nullptr);
  SnapshotManager(const SnapshotManager&) = delete;
  SnapshotManager& operator=(const SnapshotManager&) = delete;
  ~SnapshotManager();  // Stop()

  // Starts the thread, which builds at once. At most once.
  void Start();
  // Cancels a build in progress and joins. Idempotent; no restart.
  void Stop();
  // Makes the thread rebuild (now, or right after the build in progress).
  void RequestRebuild();

  // Prepare, load and install on the calling thread (serialised with the
  // thread's builds). Returns the installed snapshot, or the error (the
  // current snapshot stays).
  absl::StatusOr<std::shared_ptr<const LoadedSnapshot>> RebuildNow();

  SnapshotHolder& holder() { return *holder_; }
  SnapshotManagerStatus status() const;

 private:
  void Loop();
  absl::StatusOr<std::shared_ptr<const LoadedSnapshot>> BuildLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(build_mu_);

  SnapshotHolder* const holder_;
  const LoadFn load_;
  const SnapshotManagerOptions options_;
  const PrepareFn prepare_;
  const InstalledFn on_installed_;
  std::atomic<bool> cancelled_{false};

  absl::Mutex build_mu_;  // one build at a time

  mutable absl::Mutex mu_;
  SnapshotManagerStatus status_ ABSL_GUARDED_BY(mu_);
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_SNAPSHOT_MANAGER_H_
