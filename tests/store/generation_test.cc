// The store generation (StudyStore::GetGeneration, schema v3 triggers): it
// moves with every change that can alter the matcher's snapshot (new,
// changed, removed records; lifecycle changes; compiled criteria), stays put
// for refreshes that cannot (same record re-fetched, sync state, cached
// endpoints), survives reopening, and is made for migrated version-2 files.
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "store/study_store.h"
#include "store_test_util.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::store::testing {
namespace {

using ::trialmatch::testing::TempDir;

class GenerationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    path_ = dir_.File("s.db").string();
    ASSERT_OK_AND_ASSIGN(store_, StudyStore::Open(path_));
  }
  StoreGeneration Gen() {
    absl::StatusOr<StoreGeneration> g = store_->GetGeneration();
    EXPECT_TRUE(g.ok()) << g.status();
    return g.ok() ? *g : StoreGeneration{};
  }
  // Runs `change` and expects the generation to move (or not).
  template <typename F>
  void ExpectMoves(bool moves, F change, const char* what) {
    SCOPED_TRACE(what);
    const StoreGeneration before = Gen();
    change();
    const StoreGeneration after = Gen();
    EXPECT_EQ(after.store_id, before.store_id);
    if (moves) {
      EXPECT_GT(after.generation, before.generation);
      EXPECT_NE(after.token, before.token);
    } else {
      EXPECT_EQ(after, before);
    }
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<StudyStore> store_;
};

TEST_F(GenerationTest, MovesWithEveryChangeThatFeedsTheSnapshot) {
  const std::vector<StudyRecord> records = LoadRecords(4);
  const StoreGeneration fresh = Gen();
  EXPECT_EQ(fresh.store_id.size(), 32u);  // 128 random bits, hex
  EXPECT_EQ(fresh.generation, 0);

  ExpectMoves(
      true, [&] { ASSERT_OK(store_->UpsertStudies(records).status()); },
      "insert");
  ExpectMoves(
      false, [&] { ASSERT_OK(store_->UpsertStudies(records).status()); },
      "same records again (fetched_at refreshed only)");
  ExpectMoves(
      true,
      [&] {
        ASSERT_OK(store_->UpsertStudies({Modified(records[0], "v2")}).status());
      },
      "changed record");
  ExpectMoves(
      true, [&] { ASSERT_OK(store_->ApplyScope({"NO_SUCH_STATUS"}).status()); },
      "lifecycle: ACTIVE -> LEFT_SCOPE");
  ExpectMoves(
      false,
      [&] { ASSERT_OK(store_->ApplyScope({"NO_SUCH_STATUS"}).status()); },
      "scope unchanged");
  ExpectMoves(
      true, [&] { ASSERT_OK(store_->ApplyScope({}).status()); },
      "lifecycle: back to ACTIVE");
  CompiledEntry e;
  e.nct_id = records[1].study.nct_id;
  e.compiler_version = "1";
  e.blob = "{}";
  ExpectMoves(
      true, [&] { ASSERT_OK(store_->PutCompiled({e})); },
      "compiled entry written");
  ExpectMoves(
      true, [&] { ASSERT_OK(store_->PutCompiled({e})); },
      "compiled entry replaced");
  ExpectMoves(
      false,
      [&] {
        SyncState s;
        s.watermark = "2025-01-01";
        ASSERT_OK(store_->PutSyncState(s));
        ASSERT_OK(store_->PutCachedResponse("version", "", "{}"));
      },
      "sync state and endpoint cache");
  // A full sync that misses two studies (0, changed above, and 3): they
  // vanish, then are purged.
  ASSERT_OK_AND_ASSIGN(FullSyncCursor c, store_->BeginFullSync());
  UpsertOptions options;
  options.full_sync_id = c.sync_id;
  ExpectMoves(
      false,
      [&] {
        ASSERT_OK(store_
                      ->UpsertStudies(
                          absl::MakeConstSpan(records).subspan(1, 2), options)
                      .status());
      },
      "full sync stamps unchanged records");
  ExpectMoves(
      true,
      [&] { ASSERT_OK(store_->ReconcileFullSync(c.sync_id, {}).status()); },
      "studies vanished");
  ExpectMoves(
      true,
      [&] {
        ASSERT_OK_AND_ASSIGN(int64_t purged,
                             store_->PurgeInactive(absl::InfiniteFuture()));
        EXPECT_EQ(purged, 2);
      },
      "purge");
}

TEST_F(GenerationTest, SurvivesReopeningAndSeesOtherConnectionsWrites) {
  ASSERT_OK(store_->UpsertStudies(LoadRecords(2)).status());
  const StoreGeneration before = Gen();
  EXPECT_GT(before.generation, 0);
  store_.reset();
  ASSERT_OK_AND_ASSIGN(store_, StudyStore::Open(path_));
  EXPECT_EQ(Gen(), before);
  // Another writer (a raw connection, as an older binary would write):
  // the triggers in the file move the generation all the same.
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<sqlite::Connection> db,
                         sqlite::Connection::Open(path_, {}));
    ASSERT_OK(db->Execute("UPDATE studies SET lifecycle = 'VANISHED'"));
  }
  EXPECT_GT(Gen().generation, before.generation);
}

TEST_F(GenerationTest, DifferentStoresHaveDifferentIds) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StudyStore> other,
                       StudyStore::Open(dir_.File("t.db").string()));
  ASSERT_OK_AND_ASSIGN(StoreGeneration g, other->GetGeneration());
  EXPECT_NE(g.store_id, Gen().store_id);
}

}  // namespace
}  // namespace trialmatch::store::testing
