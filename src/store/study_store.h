// StudyStore: the local cache of ClinicalTrials.gov studies, on SQLite (WAL).
//
// It keeps, in one file:
//  * every study exactly as received (raw JSON text, byte for byte) with its
//    overall status, last update date, fetch time, a stable content hash and
//    a lifecycle state (ACTIVE / LEFT_SCOPE / VANISHED, see store_types.h);
//  * a full-text index (FTS5) kept in the same transactions, so simple
//    cond / intr / term queries can be answered offline (SearchLocal);
//  * the criteria module's compiled form of each study, with the versions
//    and content hash it was compiled from (stale entries can be listed);
//  * the sync state (watermark, upstream dataTimestamp, times, counts, and a
//    full-sync cursor so an interrupted full sync resumes);
//  * cached responses of the small upstream endpoints (metadata, enums ...).
// Schema, pragmas, lifecycle and the crash-safety argument: docs/store.md.
//
//   ASSIGN_OR_RETURN(auto store, StudyStore::Open(DefaultStorePath(), {}));
//   ASSIGN_OR_RETURN(StudyRecord rec, MakeStudyRecord(std::move(json_text)));
//   ASSIGN_OR_RETURN(UpsertCounts n, store->UpsertStudies({rec}));
//   ASSIGN_OR_RETURN(StoredStudy s, store->GetStudy("NCT01234567"));
//
// Durability: every mutating call is one transaction. A process crash
// (kill -9) at any moment leaves the state before or after each call, never
// a mix (tests/store/crash_test.cc); see StoreOptions::durability for power
// loss.
//
// Thread safety: a StudyStore is thread-safe; share one per process. Writes
// are serialised on one writer connection (absl::Mutex). For a file-backed
// store, reads run on a small pool of read-only connections, concurrently
// with each other and with a write in progress, each read seeing the last
// committed state as one consistent snapshot (WAL). For ":memory:" there is
// a single connection and reads wait for writes. Callbacks passed to the
// store must not call back into the same StudyStore.
//
// Other processes may open the same file (e.g. the CLI next to a running
// server): SQLite's locking makes that safe; a writer waits up to
// StoreOptions::busy_timeout and then fails with kUnavailable. The file must
// be on a local filesystem (WAL needs shared memory).
//
// Errors (all methods): kUnavailable when the database stays locked by
// another process (retry later); kDataLoss when the file is corrupt;
// kResourceExhausted when the disk is full; kInternal for other SQLite
// failures (the message holds SQLite's text — log it, do not show it to
// clients). Method comments list the codes specific to them.
#ifndef TRIALMATCH_STORE_STUDY_STORE_H_
#define TRIALMATCH_STORE_STUDY_STORE_H_

#include <cstdint>
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
#include "absl/types/span.h"
#include "common/clock.h"
#include "store/store_types.h"

namespace trialmatch::store {

namespace sqlite {
class Connection;
}  // namespace sqlite

struct StoreOptions {
  // Time source for fetched_at, compiled_at, cache ages ... Not owned; must
  // outlive the store.
  common::Clock* clock = &common::SystemClock::Default();

  // kProcessCrash: PRAGMA synchronous=NORMAL. A committed transaction
  //   survives a crash of this process (kill -9, OOM kill); after a power
  //   loss or kernel crash the last few commits may be lost, but the file is
  //   never corrupt and never holds half a transaction. Sync can refetch.
  // kPowerLoss: synchronous=FULL, an fsync of the WAL at every commit; each
  //   commit is slower (a disk flush) but survives power loss too.
  enum class Durability { kProcessCrash, kPowerLoss };
  Durability durability = Durability::kProcessCrash;

  // How long a write waits for another process's lock before kUnavailable.
  absl::Duration busy_timeout = absl::Seconds(5);

  // Read-only connections for concurrent reads (file-backed stores only;
  // ":memory:" always uses the writer connection). 0 = reads share the
  // writer connection.
  int read_connections = 2;

  // SQLite page cache per connection.
  int64_t cache_size_kib = 16 * 1024;

  // PRAGMA mmap_size: read the file through a memory map of up to this many
  // bytes (0 = off, SQLite's default). Measured on the recorded corpus:
  // GetStudy 1.4-2x and full scans 2.3-2.8x faster. The price: an I/O error on
  // the file (failing disk, file truncated by someone else) raises SIGBUS
  // instead of returning kInternal. Writes never go through the map, so
  // crash safety is unchanged.
  int64_t mmap_size_bytes = 0;

  // Create the file (and its parent directories) when it does not exist.
  bool create_if_missing = true;
};

// Per-call options of UpsertStudies.
struct UpsertOptions {
  // overall_status values in scope; empty = every status is in scope. A
  // record whose status is not in scope is stored with lifecycle
  // kLeftScope, the others with kActive.
  std::vector<std::string> wanted_statuses;
  // > 0: stamp every record as seen by this full sync (from BeginFullSync),
  // which ReconcileFullSync relies on. Must be the full sync in progress.
  int64_t full_sync_id = 0;
  // When set, written in the same transaction as the batch (e.g. the
  // full-sync cursor pointing at the next page, the new watermark).
  std::optional<SyncState> sync_state;
};

// The default location of the store file (flags override it in main):
//   $XDG_STATE_HOME/trialmatch/studies.db when XDG_STATE_HOME is absolute, else
//   $HOME/.local/state/trialmatch/studies.db when HOME is set, else
//   /var/lib/trialmatch/studies.db.
// (XDG Base Directory spec: a cache that is expensive to rebuild is "state".)
std::string DefaultStorePath();

class StudyStore {
 public:
  // Opens or creates the store at `path` (":memory:" for a private
  // in-memory store), creating missing parent directories, setting the
  // pragmas (WAL, synchronous, foreign_keys, busy_timeout) and bringing the
  // schema to the current version (migrations run in one transaction).
  // Errors: kFailedPrecondition when the file's schema is newer and
  // incompatible, the file belongs to another application, WAL cannot be
  // enabled (e.g. a network filesystem), or the path cannot be created or
  // opened; kNotFound when it does not exist and !create_if_missing;
  // kDataLoss when the file is not a database or is corrupt;
  // kInvalidArgument for an empty path or a null options.clock.
  static absl::StatusOr<std::unique_ptr<StudyStore>> Open(
      const std::string& path, const StoreOptions& options = {});

  StudyStore(const StudyStore&) = delete;
  StudyStore& operator=(const StudyStore&) = delete;
  ~StudyStore();

  // --- Studies ---------------------------------------------------------------

  // Inserts or updates `batch` in one transaction (together with
  // options.sync_state). Idempotent: a record whose raw JSON has the same
  // content hash and size as the stored one is not rewritten, only its
  // fetched_at (and lifecycle, full-sync stamp) refreshed. A later record in
  // the batch wins over an earlier one with the same NCT id.
  // Errors: kInvalidArgument when a record has an invalid NCT id or empty raw
  // JSON (nothing is written); kFailedPrecondition when full_sync_id is not
  // the full sync in progress.
  absl::StatusOr<UpsertCounts> UpsertStudies(
      absl::Span<const StudyRecord> batch, const UpsertOptions& options = {});

  // The stored study. kInvalidArgument for a malformed NCT id, kNotFound
  // when it is not stored (in any lifecycle state).
  absl::StatusOr<StoredStudy> GetStudy(std::string_view nct_id);

  // Calls `fn` for every study passing `filter`, in NCT id order, from one
  // consistent snapshot, streaming row by row (one raw JSON in memory at a
  // time: 100k studies do not accumulate). Stops at and returns the first
  // non-OK status from `fn`. `fn` must not call this store. On a file-backed
  // store writers are not blocked meanwhile (WAL); on ":memory:" they are.
  absl::Status ForEachStudy(
      const StudyFilter& filter,
      absl::FunctionRef<absl::Status(const StudyView&)> fn);

  // Offline search (see LocalSearchQuery for the syntax and fields).
  // Errors: kInvalidArgument for a negative page_size or a page_token that is
  // malformed or was issued for a different query.
  absl::StatusOr<LocalSearchPage> SearchLocal(const LocalSearchQuery& query);

  // Re-evaluates lifecycles after the wanted statuses changed: kActive
  // studies whose status is not wanted become kLeftScope; kLeftScope studies
  // whose status is wanted again become kActive. Empty = all wanted.
  absl::StatusOr<ScopeCounts> ApplyScope(
      absl::Span<const std::string> wanted_statuses);

  // Deletes non-ACTIVE studies whose lifecycle changed before `cutoff`
  // (with their compiled entries and index rows). Returns how many.
  absl::StatusOr<int64_t> PurgeInactive(absl::Time cutoff);

  absl::StatusOr<StoreStats> GetStats();

  // The store's generation (see StoreGeneration). Triggers in the file move
  // it in the same transaction as the change, whoever writes (another
  // process, an older binary). Read it before reading the data it versions:
  // a change in between then shows as a newer generation, never an older.
  // kDataLoss when the generation row is missing.
  absl::StatusOr<StoreGeneration> GetGeneration();

  // --- Sync state ------------------------------------------------------------

  // The stored sync state (a default SyncState before any was written).
  absl::StatusOr<SyncState> GetSyncState();
  // Replaces the stored sync state. A full_sync cursor in `state` is stored
  // as given (use BeginFullSync to allocate one).
  absl::Status PutSyncState(const SyncState& state);

  // Starts a full sync, or resumes the one in progress: returns the stored
  // cursor when there is one, else allocates a new sync_id, sets started_at
  // to now and stores an empty cursor (page_token "", pages_done 0).
  absl::StatusOr<FullSyncCursor> BeginFullSync();

  // Ends full sync `sync_id` in one transaction: every kActive study not
  // upserted with this full_sync_id becomes kVanished, and `state` is
  // written with its full_sync cursor cleared. Call only after the last
  // page was stored. Errors: kFailedPrecondition when `sync_id` is not the
  // full sync in progress.
  absl::StatusOr<ReconcileCounts> ReconcileFullSync(int64_t sync_id,
                                                    const SyncState& state);

  // NCT ids of the kActive studies that full sync `sync_id` has not stamped
  // (not upserted with that full_sync_id), in NCT id order: the studies
  // ReconcileFullSync would mark kVanished now. The sync module asks the
  // upstream about them first, to tell "left the wanted statuses" from
  // "gone". Errors: kFailedPrecondition when `sync_id` is not the full sync
  // in progress.
  absl::StatusOr<std::vector<std::string>> ListActiveNotSeen(int64_t sync_id);

  // --- Compiled criteria -----------------------------------------------------

  // Stores entries (replacing existing ones) in one transaction;
  // compiled_at is set to now. Errors: kInvalidArgument for a malformed NCT
  // id; kNotFound when a study is not stored (nothing is written).
  absl::Status PutCompiled(absl::Span<const CompiledEntry> entries);

  // kInvalidArgument for a malformed NCT id; kNotFound when no entry exists.
  absl::StatusOr<CompiledEntry> GetCompiled(std::string_view nct_id);

  // Studies (in the query's lifecycles) whose compiled entry is missing or
  // was made by other compiler/rules versions or from other content, in NCT
  // id order, up to query.limit.
  absl::StatusOr<std::vector<StaleStudy>> ListStaleCompiled(
      const StaleQuery& query);

  // --- Endpoint cache --------------------------------------------------------

  // Stores (replaces) the response of `operation` (e.g. "metadata",
  // "search-areas", "enums", "stats/size", "version") for `params` (a
  // canonical query string, "" for none), fetched now.
  absl::Status PutCachedResponse(std::string_view operation,
                                 std::string_view params,
                                 std::string_view body);
  // kNotFound when nothing is cached for (operation, params).
  absl::StatusOr<CachedResponse> GetCachedResponse(std::string_view operation,
                                                   std::string_view params);

  // --- Maintenance -----------------------------------------------------------

  // Runs PRAGMA integrity_check and the FTS5 index integrity check.
  // kDataLoss (with SQLite's first findings) when either fails.
  absl::Status IntegrityCheck();

  // Copies the WAL into the main file and truncates it (e.g. after a full
  // sync). Readers in progress may keep part of the WAL alive; not an error.
  absl::Status Checkpoint();

  // The schema version of the open file (schema::kCurrentVersion, or newer
  // when a newer compatible build wrote it).
  int schema_version() const { return schema_version_; }
  const std::string& path() const { return path_; }

 private:
  class ReaderPool;

  StudyStore(std::string path, const StoreOptions& options,
             std::unique_ptr<sqlite::Connection> writer,
             std::unique_ptr<ReaderPool> readers, int schema_version);

  // Runs `fn` in a read transaction on a pooled reader (or on the writer,
  // under write_mu_, when there is no pool).
  absl::Status Read(absl::FunctionRef<absl::Status(sqlite::Connection&)> fn);
  // Runs `fn` in an IMMEDIATE transaction on the writer; commits when `fn`
  // returns OK, rolls back otherwise.
  absl::Status Write(absl::FunctionRef<absl::Status(sqlite::Connection&)> fn);
  // Read or Write for functions producing a value (defined in the .cc only).
  enum class Access { kRead, kWrite };
  template <typename T>
  absl::StatusOr<T> Transact(
      Access access,
      absl::FunctionRef<absl::StatusOr<T>(sqlite::Connection&)> fn);

  const std::string path_;
  const StoreOptions options_;
  common::Clock* const clock_;
  const int schema_version_;

  absl::Mutex write_mu_;
  const std::unique_ptr<sqlite::Connection> writer_
      ABSL_PT_GUARDED_BY(write_mu_);
  const std::unique_ptr<ReaderPool> readers_;  // null when reads use writer_
};

}  // namespace trialmatch::store

#endif  // TRIALMATCH_STORE_STUDY_STORE_H_
