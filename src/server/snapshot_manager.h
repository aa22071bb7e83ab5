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
//   LoadSnapshotFile(store, rules, path) / SaveSnapshotFile(loaded, path)
//       The fast path (docs/match.md, "Snapshot file"): a built snapshot
//       saved beside the store (DefaultSnapshotPath: "<store>.snapshot") with
//       the key it was built for (the store's generation, the compiler and
//       rules versions: SnapshotKeyOf), and read back when that key is still
//       the store's: ~1-2 s at 100k studies instead of minutes. A missing,
//       stale, older-format or damaged file is an error the caller answers by
//       building with LoadSnapshot.
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
//       snapshot, is logged, and is retried after `retry_interval`. With
//       options.initial_load, the first snapshot is tried from there first
//       (serve: the snapshot file), without the prepare step; with
//       options.persist, each snapshot it built (not one it loaded) is handed
//       to it after being installed (serve: SaveSnapshotFile), on the
//       manager's thread, off the request path.
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
#include "match/snapshot_io.h"
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
  // Set when the snapshot was read from a snapshot file (LoadSnapshotFile):
  // its path; the counts above are then 0 but `studies`.
  std::string file;
  absl::Duration elapsed;
  // "snapshot of 1267 studies (1267 with stored compiled criteria, 0 compiled
  // now, 0 failed) in 1.9s", or "snapshot of 1267 studies read from
  // /var/lib/trialmatch/studies.db.snapshot in 0.1s".
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
  // What it was built from (read before the store was): set by LoadSnapshot
  // when the store has a generation, and by LoadSnapshotFile.
  std::optional<match::SnapshotKey> key;
  // Read from a snapshot file rather than built.
  bool from_file = false;
};

// Loads the ACTIVE studies of `store` (see the file comment). `rules` must
// not be null; it compiles stale entries and is kept by the snapshot
// (patient condition synonyms). Errors: the store's (kUnavailable,
// kDataLoss, kInternal ...); kCancelled when options.cancelled turned true;
// kInvalidArgument for options.threads < 0.
absl::StatusOr<LoadedSnapshot> LoadSnapshot(
    store::StudyStore& store, std::shared_ptr<const criteria::RuleSet> rules,
    const SnapshotLoadOptions& options = {});

// The key a snapshot built now from `store` with `rules` would have.
// Errors: the store's.
absl::StatusOr<match::SnapshotKey> SnapshotKeyOf(
    store::StudyStore& store, const criteria::RuleSet& rules);

// True when `loaded` (may be null) has a key and it is the one a snapshot
// built now would have (SnapshotManagerOptions::is_current); false when the
// store cannot be read.
bool IsCurrent(const LoadedSnapshot* loaded, store::StudyStore& store,
               const criteria::RuleSet& rules);

// "<store path>.snapshot"; "" for ":memory:" and an empty path (no file).
std::string DefaultSnapshotPath(const std::string& store_path);
// The file for a --snapshot_file flag value: "" = DefaultSnapshotPath,
// "none" = no file (""), anything else is the path.
std::string SnapshotFilePath(const std::string& flag,
                             const std::string& store_path);

// Reads the snapshot file at `path` if it was built from the store as it is
// now with `rules` (not null; becomes the snapshot's rules). built_at is the
// file's modification time. Errors: kNotFound when there is no file;
// kFailedPrecondition when it is stale (another store, generation, compiler
// or rules version) or of another format version; kDataLoss when it is
// damaged; kPermissionDenied; the store's errors.
absl::StatusOr<LoadedSnapshot> LoadSnapshotFile(
    store::StudyStore& store, std::shared_ptr<const criteria::RuleSet> rules,
    const std::string& path);

// Writes `loaded` to `path` atomically (match::WriteSnapshot) with its key,
// and logs it (INFO: path, size, time).
// Errors: kFailedPrecondition when loaded.key is not set (the generation was
// not readable: the file could never be known fresh); WriteSnapshot's.
absl::Status SaveSnapshotFile(const LoadedSnapshot& loaded,
                              const std::string& path);

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
  // Tried once at Start, before the first build and without the prepare
  // step; when it fails (logged at INFO) the first build runs as usual.
  std::function<absl::StatusOr<LoadedSnapshot>()> initial_load;
  // Called after a snapshot the manager built (not one from initial_load) is
  // installed, on the building thread (after InstalledFn).
  std::function<void(const LoadedSnapshot&)> persist;
  // Asked by the background thread after the prepare step: true skips that
  // build, the current snapshot being built from what the store holds now
  // (serve: the installed snapshot's key equals SnapshotKeyOf the store).
  // RebuildNow always builds.
  std::function<bool()> is_current;
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
  // Prepare, load, install; with `skip_if_current` nothing after prepare
  // when options_.is_current says so (returns the current snapshot).
  absl::StatusOr<std::shared_ptr<const LoadedSnapshot>> BuildLocked(
      bool skip_if_current = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(build_mu_);
  // initial_load; true when it installed a snapshot.
  bool InitialLoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(build_mu_);
  // Installs, counts, logs, notifies.
  std::shared_ptr<const LoadedSnapshot> InstallLocked(LoadedSnapshot loaded)
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
