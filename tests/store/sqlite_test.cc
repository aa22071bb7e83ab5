#include "store/sqlite.h"

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace trialmatch::store::sqlite {
namespace {

using ::testing::HasSubstr;
using ::trialmatch::testing::IsOk;
using ::trialmatch::testing::StatusIs;

TEST(SqliteStatusTest, MapsResultCodesToStatusCodes) {
  struct Case {
    int rc;
    absl::StatusCode code;
  } cases[] = {
      {SQLITE_OK, absl::StatusCode::kOk},
      {SQLITE_DONE, absl::StatusCode::kOk},
      {SQLITE_BUSY, absl::StatusCode::kUnavailable},
      {SQLITE_BUSY_SNAPSHOT, absl::StatusCode::kUnavailable},
      {SQLITE_LOCKED, absl::StatusCode::kUnavailable},
      {SQLITE_CORRUPT, absl::StatusCode::kDataLoss},
      {SQLITE_CORRUPT_VTAB, absl::StatusCode::kDataLoss},
      {SQLITE_NOTADB, absl::StatusCode::kDataLoss},
      {SQLITE_FULL, absl::StatusCode::kResourceExhausted},
      {SQLITE_CANTOPEN, absl::StatusCode::kFailedPrecondition},
      {SQLITE_READONLY, absl::StatusCode::kFailedPrecondition},
      {SQLITE_PERM, absl::StatusCode::kFailedPrecondition},
      {SQLITE_TOOBIG, absl::StatusCode::kInvalidArgument},
      {SQLITE_IOERR_WRITE, absl::StatusCode::kInternal},
      {SQLITE_CONSTRAINT_UNIQUE, absl::StatusCode::kInternal},
      {SQLITE_MISUSE, absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.rc);
    absl::Status s = SqliteStatus(c.rc, "doing x", "detail y");
    EXPECT_EQ(s.code(), c.code);
    if (!s.ok()) {
      EXPECT_THAT(std::string(s.message()), HasSubstr("doing x: detail y"));
      EXPECT_THAT(std::string(s.message()), HasSubstr(sqlite3_errstr(c.rc)));
    }
  }
}

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Connection::Open(":memory:", {});
    ASSERT_OK(db.status());
    db_ = *std::move(db);
    ASSERT_OK(
        db_->Execute("CREATE TABLE t (k TEXT PRIMARY KEY, i INTEGER, b BLOB)"));
  }
  std::unique_ptr<Connection> db_;
};

TEST_F(ConnectionTest, BindsAndReadsEveryType) {
  ASSERT_OK_AND_ASSIGN(
      Statement ins,
      db_->Prepare("INSERT INTO t (k, i, b) VALUES (?1, ?2, ?3)"));
  const std::string blob("a\0b\xff", 4);
  ins.BindText(1, "key");
  ins.BindInt64(2, int64_t{1} << 62);
  ins.BindBlob(3, blob);
  ASSERT_OK(ins.Run());
  // Rebinding after a run resets the statement: a second row.
  ins.BindText(1, "");
  ins.BindNull(2);
  ins.BindBlob(3, "");
  ASSERT_OK(ins.Run());

  ASSERT_OK_AND_ASSIGN(
      Statement sel,
      db_->Prepare("SELECT k, i, b, typeof(k) FROM t ORDER BY k DESC"));
  ASSERT_OK_AND_ASSIGN(bool row, sel.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(sel.ColumnText(0), "key");
  EXPECT_EQ(sel.ColumnInt64(1), int64_t{1} << 62);
  EXPECT_EQ(sel.ColumnBlob(2), blob);
  ASSERT_OK_AND_ASSIGN(row, sel.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(sel.ColumnText(0), "");
  EXPECT_EQ(sel.ColumnText(3), "text");  // "" binds as text, not NULL
  EXPECT_TRUE(sel.ColumnIsNull(1));
  EXPECT_EQ(sel.ColumnTime(1), absl::InfinitePast());
  ASSERT_OK_AND_ASSIGN(row, sel.Step());
  EXPECT_FALSE(row);
}

TEST_F(ConnectionTest, BindErrorsSurfaceAtStep) {
  ASSERT_OK_AND_ASSIGN(Statement st, db_->Prepare("SELECT ?1"));
  st.BindInt64(7, 1);  // no such parameter
  EXPECT_THAT(st.Step(), StatusIs(absl::StatusCode::kInternal,
                                  HasSubstr("binding parameter 7")));
}

TEST_F(ConnectionTest, SyntaxErrorIsInternalWithTheSqlliteMessage) {
  EXPECT_THAT(db_->Prepare("SELEC 1"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("syntax error")));
  EXPECT_THAT(
      db_->Execute("CREATE TABLE t (x)"),
      StatusIs(absl::StatusCode::kInternal, HasSubstr("already exists")));
}

TEST_F(ConnectionTest, ConstraintViolationIsReportedNotCrashing) {
  ASSERT_OK(db_->Execute("INSERT INTO t (k) VALUES ('a')"));
  EXPECT_THAT(db_->Execute("INSERT INTO t (k) VALUES ('a')"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("UNIQUE")));
}

TEST_F(ConnectionTest, NestedUseOfOneCachedStatementIsRefused) {
  ASSERT_OK_AND_ASSIGN(Statement outer, db_->Prepare("SELECT 1"));
  EXPECT_THAT(db_->Prepare("SELECT 1"), StatusIs(absl::StatusCode::kInternal));
}

TEST_F(ConnectionTest, StatementIsReusableAfterItGoesOutOfScope) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(Statement st, db_->Prepare("SELECT ?1 + 1"));
    st.BindInt64(1, i);
    ASSERT_OK_AND_ASSIGN(bool row, st.Step());
    ASSERT_TRUE(row);
    EXPECT_EQ(st.ColumnInt64(0), i + 1);
    // Not stepped to completion: the destructor resets it.
  }
}

TEST_F(ConnectionTest, TransactionRollsBackUnlessCommitted) {
  {
    ASSERT_OK_AND_ASSIGN(Transaction txn,
                         Transaction::Begin(*db_, TransactionMode::kImmediate));
    ASSERT_OK(db_->Execute("INSERT INTO t (k) VALUES ('gone')"));
    EXPECT_TRUE(db_->in_transaction());
  }
  EXPECT_FALSE(db_->in_transaction());
  {
    ASSERT_OK_AND_ASSIGN(Transaction txn,
                         Transaction::Begin(*db_, TransactionMode::kImmediate));
    ASSERT_OK(db_->Execute("INSERT INTO t (k) VALUES ('kept')"));
    ASSERT_OK(txn.Commit());
    EXPECT_THAT(txn.Commit(), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  ASSERT_OK_AND_ASSIGN(std::string keys,
                       db_->QueryString("SELECT group_concat(k) FROM t"));
  EXPECT_EQ(keys, "kept");
}

TEST(ConnectionFileTest, SecondWriterGetsUnavailableWhenLocked) {
  trialmatch::testing::TempDir dir;
  const std::string path = dir.File("db").string();
  ASSERT_OK_AND_ASSIGN(auto a, Connection::Open(path, {}));
  ASSERT_OK_AND_ASSIGN(auto b, Connection::Open(path, {}));
  ASSERT_OK(a->Execute("PRAGMA journal_mode = WAL; CREATE TABLE t (x)"));
  ASSERT_OK(b->Execute("PRAGMA busy_timeout = 0"));
  ASSERT_OK_AND_ASSIGN(Transaction txn,
                       Transaction::Begin(*a, TransactionMode::kImmediate));
  EXPECT_THAT(Transaction::Begin(*b, TransactionMode::kImmediate),
              StatusIs(absl::StatusCode::kUnavailable));
  // A reader is not blocked by the writer (WAL).
  EXPECT_THAT(b->QueryInt64("SELECT count(*) FROM t"), IsOk());
}

TEST(ConnectionFileTest, NotADatabaseIsDataLoss) {
  trialmatch::testing::TempDir dir;
  const std::string path = dir.File("junk.db").string();
  std::ofstream(path) << "this is not a database file, just some text......"
                         "..............................................";
  ASSERT_OK_AND_ASSIGN(auto db, Connection::Open(path, {}));
  EXPECT_THAT(db->QueryInt64("SELECT count(*) FROM sqlite_schema"),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(ConnectionFileTest, MissingFileWithoutCreateFails) {
  trialmatch::testing::TempDir dir;
  ConnectionOptions options;
  options.create_if_missing = false;
  EXPECT_THAT(Connection::Open(dir.File("nope.db").string(), options),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace trialmatch::store::sqlite
