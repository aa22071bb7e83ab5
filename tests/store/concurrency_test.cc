// Concurrent readers during writes on a file-backed store (writer connection
// + reader pool, WAL): readers never see part of a batch, a long scan keeps
// its snapshot and does not block the writer.
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/store_test_util.h"
#include "store/study_store.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::store {
namespace {

using ::trialmatch::testing::StatusIs;

constexpr int kBatch = 20;

int64_t CountStudies(StudyStore& store) {
  int64_t n = 0;
  StudyFilter all;
  all.include_raw_json = false;
  all.lifecycles.clear();
  EXPECT_OK(store.ForEachStudy(all, [&](const StudyView&) {
    ++n;
    return absl::OkStatus();
  }));
  return n;
}

TEST(StudyStoreConcurrencyTest, ReadersSeeWholeBatchesWhileAWriterRuns) {
  TM_REQUIRE_SHARED_DATA();
  const std::vector<StudyRecord> records = testing::LoadRecords(12 * kBatch);
  trialmatch::testing::TempDir dir;
  StoreOptions options;
  options.read_connections = 2;  // fewer than readers: the pool also queues
  ASSERT_OK_AND_ASSIGN(auto store,
                       StudyStore::Open(dir.File("s.db").string(), options));

  constexpr int kReaders = 3;
  absl::Mutex mu;
  int readers_started = 0;  // guarded by mu
  std::atomic<bool> writer_done{false};
  std::atomic<int> torn{0};
  std::vector<std::set<int64_t>> seen(kReaders);

  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      size_t probe = static_cast<size_t>(r);
      bool first = true;
      while (true) {
        const bool last = writer_done.load();
        const int64_t n = CountStudies(*store);
        if (n % kBatch != 0) ++torn;
        seen[r].insert(n);
        const StudyRecord& rec = records[probe++ % records.size()];
        absl::StatusOr<StoredStudy> s = store->GetStudy(rec.study.nct_id);
        if (s.ok()) {
          EXPECT_EQ(s->raw_json, rec.raw_json);
        } else {
          EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
        }
        absl::StatusOr<SyncState> sync = store->GetSyncState();
        EXPECT_OK(sync.status());
        if (first) {
          absl::MutexLock lock(&mu);
          ++readers_started;
          first = false;
        }
        if (last) break;
      }
    });
  }

  {  // Start writing only once every reader has looked at the empty store.
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* n) { return *n == kReaders; }, &readers_started));
  }
  for (size_t k = 0; k * kBatch < records.size(); ++k) {
    UpsertOptions o;
    SyncState state;
    state.watermark = "batch-" + std::to_string(k + 1);
    o.sync_state = state;
    ASSERT_OK(
        store
            ->UpsertStudies(
                absl::MakeConstSpan(records).subspan(k * kBatch, kBatch), o)
            .status());
  }
  writer_done = true;
  for (std::thread& t : readers) t.join();

  EXPECT_EQ(torn.load(), 0) << "a reader saw part of a batch";
  for (int r = 0; r < kReaders; ++r) {
    EXPECT_TRUE(seen[r].count(0)) << "reader " << r;
    EXPECT_TRUE(seen[r].count(static_cast<int64_t>(records.size())))
        << "reader " << r;
  }
  ASSERT_OK_AND_ASSIGN(SyncState final_state, store->GetSyncState());
  EXPECT_EQ(final_state.watermark, "batch-12");
  EXPECT_OK(store->IntegrityCheck());
}

TEST(StudyStoreConcurrencyTest, LongScanKeepsItsSnapshotAndDoesNotBlockWrites) {
  TM_REQUIRE_SHARED_DATA();
  const std::vector<StudyRecord> records = testing::LoadRecords(60);
  trialmatch::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, StudyStore::Open(dir.File("s.db").string()));
  const auto first_half = absl::MakeConstSpan(records).first(30);
  const auto second_half = absl::MakeConstSpan(records).subspan(30);
  ASSERT_OK(store->UpsertStudies(first_half).status());

  absl::Notification scan_started;
  absl::Notification write_done;
  bool write_finished_during_scan = false;
  int64_t scanned = 0;
  std::thread scanner([&] {
    EXPECT_OK(store->ForEachStudy({}, [&](const StudyView& v) {
      if (scanned++ == 0) {
        scan_started.Notify();
        // Deadlock guard only: the write must finish while we are here.
        write_finished_during_scan =
            write_done.WaitForNotificationWithTimeout(absl::Seconds(60));
      }
      EXPECT_FALSE(v.raw_json.empty());
      return absl::OkStatus();
    }));
  });
  scan_started.WaitForNotification();
  ASSERT_OK_AND_ASSIGN(UpsertCounts counts, store->UpsertStudies(second_half));
  EXPECT_EQ(counts.inserted, 30);
  write_done.Notify();
  scanner.join();

  EXPECT_TRUE(write_finished_during_scan);
  EXPECT_EQ(scanned, 30) << "the scan must see the snapshot it started with";
  EXPECT_EQ(CountStudies(*store), 60);
}

}  // namespace
}  // namespace trialmatch::store
