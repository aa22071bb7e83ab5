// crash_writer: a helper process for crash_test.cc. It runs (or resumes) a
// full sync of the batch plan in crash_plan.h into a study store, printing a
// line to stdout around every commit, until it finishes or is killed:
//
//   begin <k>        about to upsert batch k
//   committed <P>    P batches are committed (P = k + 1)
//   reconciled       the full sync was reconciled; exit status 0
//
// Usage: crash_writer <db> <studies_dir> <num_studies> <mode> <n>
//
// Modes other than "none" install a fault-injecting SQLite VFS (leveldb's
// fault-injection idea, at SQLite's OS layer) that SIGKILLs the process at a
// chosen point of its own I/O, so crashes land deterministically:
//   write          at the n-th write SQLite issues to any file (WAL frames,
//                  database pages during checkpoints, headers);
//   torn           the same, after performing the first half of that write;
//   before-commit  just before the n-th commit frame is appended to the WAL
//                  (the transaction is lost, whole);
//   after-commit   just after the n-th commit frame is in the WAL, before
//                  SQLite returns (committed, but never reported).
// "none": no injected crash (the test may still kill it from outside).
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/logging.h"
#include "store/crash_plan.h"
#include "store/study_store.h"

namespace {

using trialmatch::store::StudyRecord;
using trialmatch::store::StudyStore;
namespace crash = trialmatch::store::crash;

// --- Fault-injecting VFS -----------------------------------------------------

enum class Mode { kNone, kWrite, kTorn, kBeforeCommit, kAfterCommit };

sqlite3_vfs* g_real_vfs = nullptr;
sqlite3_vfs g_shim_vfs;
Mode g_mode = Mode::kNone;
long long g_n = 0;
long long g_writes = 0;
long long g_commits = 0;
bool g_die_after_next_write = false;

// Our file object: a header pointing at the real VFS's file object, which
// lives right after it (szOsFile covers both).
struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;
  bool wal;
};

// A WAL frame is written as a 24-byte header, then the page. Bytes 4..7 of
// the header (big-endian) hold the database size for a commit frame and are
// zero otherwise (SQLite file format, section "WAL file format").
bool IsCommitFrameHeader(const ShimFile* f, const void* buf, int n) {
  if (!f->wal || n != 24) return false;
  const auto* b = static_cast<const unsigned char*>(buf);
  return (b[4] | b[5] | b[6] | b[7]) != 0;
}

sqlite3_file* Real(sqlite3_file* f) {
  return reinterpret_cast<ShimFile*>(f)->real;
}

int ShimClose(sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); }
int ShimRead(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return Real(f)->pMethods->xRead(Real(f), buf, n, off);
}
int ShimWrite(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  sqlite3_file* real = Real(f);
  switch (g_mode) {
    case Mode::kWrite:
    case Mode::kTorn:
      if (++g_writes >= g_n) {
        if (g_mode == Mode::kTorn && n > 1) {
          real->pMethods->xWrite(real, buf, n / 2, off);
        }
        raise(SIGKILL);
      }
      break;
    case Mode::kBeforeCommit:
    case Mode::kAfterCommit:
      if (g_die_after_next_write) {  // the commit frame's page
        const int rc = real->pMethods->xWrite(real, buf, n, off);
        if (rc == SQLITE_OK) raise(SIGKILL);
        return rc;
      }
      if (IsCommitFrameHeader(reinterpret_cast<ShimFile*>(f), buf, n) &&
          ++g_commits == g_n) {
        if (g_mode == Mode::kBeforeCommit) raise(SIGKILL);
        g_die_after_next_write = true;
      }
      break;
    case Mode::kNone:
      break;
  }
  return real->pMethods->xWrite(real, buf, n, off);
}
int ShimTruncate(sqlite3_file* f, sqlite3_int64 size) {
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
int ShimSync(sqlite3_file* f, int flags) {
  return Real(f)->pMethods->xSync(Real(f), flags);
}
int ShimFileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
int ShimLock(sqlite3_file* f, int lock) {
  return Real(f)->pMethods->xLock(Real(f), lock);
}
int ShimUnlock(sqlite3_file* f, int lock) {
  return Real(f)->pMethods->xUnlock(Real(f), lock);
}
int ShimCheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int ShimFileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int ShimSectorSize(sqlite3_file* f) {
  return Real(f)->pMethods->xSectorSize(Real(f));
}
int ShimDeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
int ShimShmMap(sqlite3_file* f, int region, int size, int extend,
               void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
int ShimShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShimShmBarrier(sqlite3_file* f) {
  Real(f)->pMethods->xShmBarrier(Real(f));
}
int ShimShmUnmap(sqlite3_file* f, int delete_flag) {
  return Real(f)->pMethods->xShmUnmap(Real(f), delete_flag);
}
int ShimFetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return Real(f)->pMethods->xFetch(Real(f), off, n, out);
}
int ShimUnfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return Real(f)->pMethods->xUnfetch(Real(f), off, p);
}

const sqlite3_io_methods kShimMethods = {3,
                                         ShimClose,
                                         ShimRead,
                                         ShimWrite,
                                         ShimTruncate,
                                         ShimSync,
                                         ShimFileSize,
                                         ShimLock,
                                         ShimUnlock,
                                         ShimCheckReservedLock,
                                         ShimFileControl,
                                         ShimSectorSize,
                                         ShimDeviceCharacteristics,
                                         ShimShmMap,
                                         ShimShmLock,
                                         ShimShmBarrier,
                                         ShimShmUnmap,
                                         ShimFetch,
                                         ShimUnfetch};

int ShimOpen(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags,
             int* out_flags) {
  auto* shim = reinterpret_cast<ShimFile*>(f);
  shim->real = reinterpret_cast<sqlite3_file*>(shim + 1);
  shim->wal = (flags & SQLITE_OPEN_WAL) != 0;
  const int rc =
      g_real_vfs->xOpen(g_real_vfs, name, shim->real, flags, out_flags);
  shim->base.pMethods =
      shim->real->pMethods != nullptr ? &kShimMethods : nullptr;
  return rc;
}

void InstallCrashVfs() {
  g_real_vfs = sqlite3_vfs_find(nullptr);
  // The other VFS methods (delete, access, full pathname, randomness, time)
  // are the unix VFS's own and do not depend on which VFS object calls them.
  g_shim_vfs = *g_real_vfs;
  g_shim_vfs.zName = "trialmatch_crash";
  g_shim_vfs.pNext = nullptr;
  g_shim_vfs.szOsFile =
      static_cast<int>(sizeof(ShimFile)) + g_real_vfs->szOsFile;
  g_shim_vfs.xOpen = ShimOpen;
  sqlite3_vfs_register(&g_shim_vfs, /*makeDflt=*/1);
}

// --- The writer --------------------------------------------------------------

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Say(const std::string& line) {
  const std::string text = line + "\n";
  // One unbuffered write per line: what the test reads was really said.
  (void)!write(STDOUT_FILENO, text.data(), text.size());
}

int Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "crash_writer: %s: %s\n", what.c_str(),
               status.ToString().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::map<std::string, Mode> modes = {
      {"none", Mode::kNone},
      {"write", Mode::kWrite},
      {"torn", Mode::kTorn},
      {"before-commit", Mode::kBeforeCommit},
      {"after-commit", Mode::kAfterCommit}};
  if (argc != 6 || modes.count(argv[4]) == 0) {
    std::fprintf(stderr,
                 "usage: crash_writer <db> <studies_dir> <num_studies> "
                 "none|write|torn|before-commit|after-commit <n>\n");
    return 64;
  }
  const std::string db = argv[1];
  const crash::Plan plan =
      crash::MakePlan(argv[2], static_cast<size_t>(std::atoll(argv[3])));
  g_mode = modes.at(argv[4]);
  g_n = std::atoll(argv[5]);
  if (g_mode != Mode::kNone) InstallCrashVfs();
  trialmatch::common::SetMinLogLevel(trialmatch::common::LogLevel::kWarning);

  absl::StatusOr<std::unique_ptr<StudyStore>> store = StudyStore::Open(db);
  if (!store.ok()) return Fail("open", store.status());
  absl::StatusOr<trialmatch::store::FullSyncCursor> cursor =
      (*store)->BeginFullSync();
  if (!cursor.ok()) return Fail("begin full sync", cursor.status());
  const std::string marker_raw = ReadFile(plan.files[0]);

  for (int k = static_cast<int>(cursor->pages_done); k < plan.num_batches();
       ++k) {
    Say("begin " + std::to_string(k));
    std::vector<StudyRecord> batch;
    for (size_t i = plan.begin(k); i < plan.end(k); ++i) {
      absl::StatusOr<StudyRecord> r =
          trialmatch::store::MakeStudyRecord(ReadFile(plan.files[i]));
      if (!r.ok()) return Fail(plan.files[i].string(), r.status());
      batch.push_back(*std::move(r));
    }
    absl::StatusOr<StudyRecord> marker =
        trialmatch::store::MakeStudyRecord(crash::MarkerJson(marker_raw, k));
    if (!marker.ok()) return Fail("marker", marker.status());
    batch.push_back(*std::move(marker));

    absl::StatusOr<trialmatch::store::SyncState> state =
        (*store)->GetSyncState();
    if (!state.ok() || !state->full_sync.has_value()) {
      return Fail("sync state", state.status());
    }
    state->full_sync->page_token = crash::PageToken(k + 1);
    state->full_sync->pages_done = k + 1;
    state->full_sync->studies_seen += static_cast<int64_t>(batch.size());
    state->data_timestamp = crash::DataTimestamp(k + 1);
    trialmatch::store::UpsertOptions options;
    options.full_sync_id = cursor->sync_id;
    options.sync_state = *state;
    absl::StatusOr<trialmatch::store::UpsertCounts> counts =
        (*store)->UpsertStudies(batch, options);
    if (!counts.ok()) return Fail("upsert", counts.status());
    Say("committed " + std::to_string(k + 1));
  }

  trialmatch::store::SyncState done;
  done.data_timestamp = crash::kReconciled;
  done.last_full_sync_at = absl::Now();
  absl::StatusOr<trialmatch::store::ReconcileCounts> rc =
      (*store)->ReconcileFullSync(cursor->sync_id, done);
  if (!rc.ok()) return Fail("reconcile", rc.status());
  Say("reconciled");
  return 0;
}
