// Opening files of other schema versions: migration of a hand-made version-1
// file (data preserved, atomic on failure), refusal of newer incompatible
// files and of foreign databases, and the default path.
#include "store/schema.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/content_hash.h"
#include "store/sqlite.h"
#include "store/store_test_util.h"
#include "store/study_store.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::store {
namespace {

using ::testing::HasSubstr;
using ::trialmatch::testing::IsOk;
using ::trialmatch::testing::StatusIs;

// Schema version 1 exactly as it was (frozen here on purpose: the test must
// not follow later edits of the code).
constexpr const char* kV1Schema = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('version', '1'), ('last_compatible_version', '1');
CREATE TABLE studies (
  nct_id TEXT PRIMARY KEY,
  raw_json TEXT NOT NULL,
  overall_status TEXT NOT NULL,
  last_update_post_date TEXT NOT NULL,
  fetched_at INTEGER NOT NULL,
  content_hash INTEGER NOT NULL
);
CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
)sql";

// The value of a query that must succeed.
template <typename T>
T Must(absl::StatusOr<T> v) {
  EXPECT_OK(v.status());
  return v.ok() ? *std::move(v) : T();
}

std::unique_ptr<sqlite::Connection> RawOpen(const std::string& path) {
  auto db = sqlite::Connection::Open(path, {});
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? *std::move(db) : nullptr;
}

class SchemaTest : public ::testing::Test {
 protected:
  void SetUp() override { TM_REQUIRE_SHARED_DATA(); }

  // A version-1 file holding `records` (fetched at 1000 + i seconds), one
  // unparseable row and a watermark.
  void MakeV1File(const std::vector<StudyRecord>& records) {
    auto db = RawOpen(path_);
    ASSERT_NE(db, nullptr);
    ASSERT_OK(db->Execute(kV1Schema));
    for (size_t i = 0; i < records.size(); ++i) {
      ASSERT_OK_AND_ASSIGN(
          sqlite::Statement st,
          db->Prepare("INSERT INTO studies VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
      st.BindText(1, records[i].study.nct_id);
      st.BindText(2, records[i].raw_json);
      st.BindText(3, records[i].study.overall_status);
      st.BindText(4, records[i].study.last_update_post_date);
      st.BindTime(5, absl::FromUnixSeconds(1000 + static_cast<int64_t>(i)));
      st.BindInt64(6, 0);  // v1 hashes are recomputed by the migration
      ASSERT_OK(st.Run());
    }
    ASSERT_OK(db->Execute(
        "INSERT INTO studies VALUES ('NCT00000001', 'not json', 'RECRUITING', "
        "'2020-01-01', 5, 0);"
        "INSERT INTO sync_state VALUES ('watermark', '2025-04-30'), "
        "('data_timestamp', '2025-05-01T08:00:00');"));
  }

  trialmatch::testing::TempDir dir_;
  const std::string path_ = dir_.File("studies.db").string();
};

TEST_F(SchemaTest, FreshFileIsCreatedAtTheCurrentVersion) {
  ASSERT_OK_AND_ASSIGN(auto store, StudyStore::Open(path_));
  EXPECT_EQ(store->schema_version(), schema::kCurrentVersion);
  store.reset();
  auto db = RawOpen(path_);
  EXPECT_EQ(
      Must(db->QueryString("SELECT value FROM meta WHERE key = 'version'")),
      std::to_string(schema::kCurrentVersion));
  EXPECT_EQ(Must(db->QueryInt64("PRAGMA application_id")),
            schema::kApplicationId);
  EXPECT_EQ(Must(db->QueryString("PRAGMA journal_mode")), "wal");
}

TEST_F(SchemaTest, Version1IsMigratedWithItsData) {
  const std::vector<StudyRecord> records = testing::LoadRecords(6);
  MakeV1File(records);
  ASSERT_OK_AND_ASSIGN(auto store, StudyStore::Open(path_));
  EXPECT_EQ(store->schema_version(), schema::kCurrentVersion);
  for (size_t i = 0; i < records.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(StoredStudy s,
                         store->GetStudy(records[i].study.nct_id));
    EXPECT_EQ(s.raw_json, records[i].raw_json);
    EXPECT_EQ(s.content_hash, ContentHash(records[i].raw_json));
    EXPECT_EQ(s.fetched_at,
              absl::FromUnixSeconds(1000 + static_cast<int64_t>(i)));
    EXPECT_EQ(s.lifecycle, Lifecycle::kActive);
  }
  // The row that no longer parses was dropped, not fatal.
  EXPECT_THAT(store->GetStudy("NCT00000001"),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(SyncState sync, store->GetSyncState());
  EXPECT_EQ(sync.watermark, "2025-04-30");
  EXPECT_EQ(sync.data_timestamp, "2025-05-01T08:00:00");
  // The search index was built from the migrated rows.
  LocalSearchQuery q;
  q.term = records[3].study.nct_id;
  ASSERT_OK_AND_ASSIGN(LocalSearchPage page, store->SearchLocal(q));
  ASSERT_EQ(page.studies.size(), 1u);
  EXPECT_EQ(page.studies[0].brief_title, records[3].study.brief_title);
  EXPECT_OK(store->IntegrityCheck());
  // And the migrated file takes new writes and reopens as the current
  // version.
  ASSERT_OK(store->UpsertStudies(testing::LoadRecords(2, 10)).status());
  store.reset();
  ASSERT_OK_AND_ASSIGN(store, StudyStore::Open(path_));
  EXPECT_EQ(store->schema_version(), schema::kCurrentVersion);
  ASSERT_OK_AND_ASSIGN(StoreStats stats, store->GetStats());
  EXPECT_EQ(stats.studies, 8);
}

TEST_F(SchemaTest, FailedMigrationLeavesVersion1Untouched) {
  const std::vector<StudyRecord> records = testing::LoadRecords(3);
  MakeV1File(records);
  {
    // A table in the way makes the v2 DDL fail halfway through.
    auto db = RawOpen(path_);
    ASSERT_OK(db->Execute("CREATE TABLE compiled_criteria (x)"));
  }
  EXPECT_THAT(StudyStore::Open(path_), StatusIs(absl::StatusCode::kInternal,
                                                HasSubstr("already exists")));
  auto db = RawOpen(path_);
  EXPECT_EQ(
      Must(db->QueryString("SELECT value FROM meta WHERE key = 'version'")),
      "1");
  EXPECT_EQ(Must(db->QueryInt64("SELECT count(*) FROM studies")), 4);
  EXPECT_EQ(Must(db->TableExists("studies_v1")), false);
  EXPECT_EQ(Must(db->TableExists("study_json")), false);
}

TEST_F(SchemaTest, NewerIncompatibleSchemaIsRefused) {
  ASSERT_OK(StudyStore::Open(path_).status());
  {
    auto db = RawOpen(path_);
    ASSERT_OK(
        db->Execute("UPDATE meta SET value = '7' WHERE key IN ('version', "
                    "'last_compatible_version')"));
  }
  EXPECT_THAT(StudyStore::Open(path_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("schema version >= 7")));
}

TEST_F(SchemaTest, NewerCompatibleSchemaIsUsedAndNotDowngraded) {
  ASSERT_OK(StudyStore::Open(path_).status());
  {
    auto db = RawOpen(path_);
    ASSERT_OK(db->Execute("UPDATE meta SET value = '4' WHERE key = 'version'"));
  }
  ASSERT_OK_AND_ASSIGN(auto store, StudyStore::Open(path_));
  EXPECT_EQ(store->schema_version(), 4);
  ASSERT_OK(store->UpsertStudies(testing::LoadRecords(1)).status());
  store.reset();
  auto db = RawOpen(path_);
  EXPECT_EQ(
      Must(db->QueryString("SELECT value FROM meta WHERE key = 'version'")),
      "4");
}

TEST_F(SchemaTest, Version2GetsAGenerationKeptByTriggers) {
  const std::vector<StudyRecord> records = testing::LoadRecords(3);
  {
    ASSERT_OK_AND_ASSIGN(auto store, StudyStore::Open(path_));
    ASSERT_OK(store->UpsertStudies(records).status());
  }
  {
    // Back to version 2: no generation table, no triggers.
    auto db = RawOpen(path_);
    ASSERT_OK(db->Execute(
        "DROP TABLE store_generation;"
        "DROP TRIGGER generation_studies_insert;"
        "DROP TRIGGER generation_studies_delete;"
        "DROP TRIGGER generation_studies_update;"
        "DROP TRIGGER generation_json_insert;"
        "DROP TRIGGER generation_json_delete;"
        "DROP TRIGGER generation_json_update;"
        "DROP TRIGGER generation_compiled_insert;"
        "DROP TRIGGER generation_compiled_delete;"
        "DROP TRIGGER generation_compiled_update;"
        "UPDATE meta SET value = '2' WHERE key = 'version'"));
  }
  ASSERT_OK_AND_ASSIGN(auto store, StudyStore::Open(path_));
  EXPECT_EQ(store->schema_version(), 3);
  ASSERT_OK_AND_ASSIGN(StoreGeneration g, store->GetGeneration());
  EXPECT_EQ(g.generation, 0);
  EXPECT_EQ(g.store_id.size(), 32u);
  ASSERT_OK(store->UpsertStudies({testing::Modified(records[0], "x")}).status());
  ASSERT_OK_AND_ASSIGN(StoreGeneration after, store->GetGeneration());
  EXPECT_GT(after.generation, 0);
  EXPECT_EQ(after.store_id, g.store_id);
  auto db = RawOpen(path_);
  EXPECT_EQ(Must(db->QueryString(
                "SELECT value FROM meta WHERE key = 'last_compatible_version'")),
            "2");  // additive: version-2 code still opens the file
}

TEST_F(SchemaTest, BrokenMetaIsDataLoss) {
  ASSERT_OK(StudyStore::Open(path_).status());
  {
    auto db = RawOpen(path_);
    ASSERT_OK(db->Execute("DELETE FROM meta WHERE key = 'version'"));
  }
  EXPECT_THAT(StudyStore::Open(path_), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(SchemaTest, ForeignDatabasesAreNotTouched) {
  {
    auto db = RawOpen(path_);
    ASSERT_OK(db->Execute("CREATE TABLE accounts (id INTEGER)"));
  }
  EXPECT_THAT(
      StudyStore::Open(path_),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("meta")));
  const std::string other = dir_.File("other.db").string();
  {
    auto db = RawOpen(other);
    ASSERT_OK(db->Execute("PRAGMA application_id = 1234"));
  }
  EXPECT_THAT(StudyStore::Open(other),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("another application")));
}

TEST_F(SchemaTest, GarbageFileIsDataLoss) {
  std::ofstream(path_) << std::string(8192, 'x');
  EXPECT_THAT(StudyStore::Open(path_), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(SchemaTest, OpenCreatesParentDirectoriesUnlessToldNotTo) {
  const std::string nested = dir_.File("a/b/c/studies.db").string();
  StoreOptions no_create;
  no_create.create_if_missing = false;
  EXPECT_THAT(StudyStore::Open(nested, no_create),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(StudyStore::Open(nested).status());
  EXPECT_TRUE(std::filesystem::exists(nested));
  EXPECT_THAT(StudyStore::Open("", {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SchemaTest, UnwritableLocationIsFailedPrecondition) {
  // A regular file where a directory should be.
  const std::string blocker = dir_.File("file").string();
  std::ofstream(blocker) << "x";
  EXPECT_THAT(StudyStore::Open(blocker + "/sub/studies.db"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

// Sets an environment variable for the scope (tests in this binary are
// single-threaded while this runs).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name); old != nullptr) old_ = old;
    if (value == nullptr) {
      unsetenv(name);
    } else {
      setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    if (old_.has_value()) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(DefaultStorePathTest, FollowsXdgThenHomeThenVarLib) {
  {
    ScopedEnv xdg("XDG_STATE_HOME", "/srv/state");
    ScopedEnv home("HOME", "/home/u");
    EXPECT_EQ(DefaultStorePath(), "/srv/state/trialmatch/studies.db");
  }
  {
    ScopedEnv xdg("XDG_STATE_HOME", "relative/ignored");
    ScopedEnv home("HOME", "/home/u");
    EXPECT_EQ(DefaultStorePath(), "/home/u/.local/state/trialmatch/studies.db");
  }
  {
    ScopedEnv xdg("XDG_STATE_HOME", nullptr);
    ScopedEnv home("HOME", nullptr);
    EXPECT_EQ(DefaultStorePath(), "/var/lib/trialmatch/studies.db");
  }
}

}  // namespace
}  // namespace trialmatch::store
