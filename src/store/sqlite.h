// A thin RAII layer over the SQLite C API, used only inside store/.
//
//   ASSIGN_OR_RETURN(auto db, Connection::Open("studies.db", {}));
//   ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(*db,
//   TransactionMode::kImmediate)); ASSIGN_OR_RETURN(Statement st,
//   db->Prepare("UPDATE t SET v = ?1 WHERE k = ?2")); st.BindInt64(1, v);
//   st.BindText(2, key);
//   RETURN_IF_ERROR(st.Run());
//   RETURN_IF_ERROR(txn.Commit());
//
// Ownership: handles live in std::unique_ptr with the matching SQLite cleanup
// function as deleter (google-cloud-cpp curl_wrappers.h). A Connection caches
// its prepared statements (keyed by SQL text); a Statement is a borrowed view
// of a cached one that resets itself and clears its bindings when it goes out
// of scope, so it must not outlive its Connection.
//
// Thread safety: none. A Connection and its Statements must be used by one
// thread at a time (the store serialises access with a mutex or leases a
// connection to one thread). Connections are opened with SQLITE_OPEN_NOMUTEX
// for that reason.
//
// Errors: every SQLite result code is turned into an absl::Status by
// SqliteStatus() (see there for the mapping). Messages carry the operation
// context and SQLite's own error text (table/column names, never bound
// values), so they are fine for logs but not meant for clients.
#ifndef TRIALMATCH_STORE_SQLITE_H_
#define TRIALMATCH_STORE_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace trialmatch::store::sqlite {

// Maps a SQLite result code (primary or extended) to a status:
//   SQLITE_OK/ROW/DONE                 -> OK
//   SQLITE_BUSY, SQLITE_LOCKED          -> kUnavailable (transient: retry
//   later) SQLITE_CORRUPT, SQLITE_NOTADB       -> kDataLoss (the file is
//   damaged) SQLITE_FULL                         -> kResourceExhausted (disk
//   full) SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY, SQLITE_AUTH        ->
//   kFailedPrecondition (fix the file/dir) SQLITE_TOOBIG -> kInvalidArgument
//   (value too large) anything else (IOERR, CONSTRAINT, MISUSE, NOMEM, ...) ->
//   kInternal
// The message is "<context>: <detail> (<sqlite3_errstr>, code <rc>)".
absl::Status SqliteStatus(int rc, std::string_view context,
                          std::string_view detail = {});

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};
using DbHandle = std::unique_ptr<sqlite3, SqliteCloser>;
using StatementHandle = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// A borrowed, cached prepared statement. Movable, not copyable. On
// destruction it is reset and its bindings cleared, ready for the next user.
//
// Bind* report failures lazily: the first binding error is kept and returned
// by the next Step()/Run(), so call sites read as straight-line code.
// Binding after stepping resets the statement first (keeping the other
// bindings), so one Statement can be run repeatedly in a loop: rebind every
// parameter each time.
// Text and blob bindings are NOT copied (SQLITE_STATIC): the bound bytes must
// stay alive until the statement has been stepped to completion or destroyed.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameter indexes are 1-based, as in SQL (?1, ?2, ...).
  void BindInt64(int index, int64_t value);
  void BindText(int index, std::string_view value);
  void BindBlob(int index, std::string_view bytes);
  void BindNull(int index);
  void BindTime(int index, absl::Time t);  // unix microseconds

  // Advances to the next row: true when a row is available, false when the
  // statement is done. Errors as SqliteStatus().
  absl::StatusOr<bool> Step();
  // Steps to completion, ignoring any rows (for INSERT/UPDATE/DELETE/DDL).
  absl::Status Run();
  // Ends the current execution (releases its read position); bindings stay.
  void Reset();

  // Column accessors for the current row (0-based, as in sqlite3_column_*).
  // Text/blob views point into SQLite's memory and are valid until the next
  // Step(), reset, or destruction.
  bool ColumnIsNull(int column) const;
  int64_t ColumnInt64(int column) const;
  std::string_view ColumnText(int column) const;
  std::string_view ColumnBlob(int column) const;
  absl::Time ColumnTime(
      int column) const;  // unix microseconds; NULL -> InfinitePast

  // Rows changed by the last completed INSERT/UPDATE/DELETE on the connection.
  int64_t Changes() const;

 private:
  friend class Connection;
  Statement(sqlite3_stmt* stmt, sqlite3* db, bool* in_use)
      : stmt_(stmt), db_(db), in_use_(in_use) {}
  void NoteBindResult(int rc, int index);
  void ResetIfStepped();

  sqlite3_stmt* stmt_;  // owned by the Connection's cache
  sqlite3* db_;
  bool* in_use_;  // the cache entry's flag, cleared on destruction
  int bind_error_ = SQLITE_OK;
  int bind_error_index_ = 0;
  bool stepped_ = false;
};

// How an explicit transaction starts. kImmediate takes the write lock at
// BEGIN (use it for every write transaction: no lock upgrade, no deadlock
// between two writers); kDeferred is for read transactions.
enum class TransactionMode { kDeferred, kImmediate };

struct ConnectionOptions {
  bool create_if_missing = true;
};

// One SQLite database connection plus its statement cache.
class Connection {
 public:
  // Opens (or creates) the database at `path`; ":memory:" opens a private
  // in-memory database. Extended result codes are enabled.
  // Errors: kFailedPrecondition (cannot open: missing dir, permissions),
  // kDataLoss (not a database), kInternal.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& path, const ConnectionOptions& options);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Runs one or more SQL statements with no parameters and no result rows
  // wanted (DDL, pragmas, BEGIN/COMMIT). Errors as SqliteStatus().
  absl::Status Execute(std::string_view sql);

  // Returns the cached prepared statement for `sql`, preparing it on first
  // use. Errors as SqliteStatus() (a syntax error is kInternal: it is a bug);
  // kInternal when the same SQL is already in use by a live Statement.
  absl::StatusOr<Statement> Prepare(std::string_view sql);

  // Prepare(sql) (cached) and Run() it: for one parameterless statement run
  // often (BEGIN, COMMIT).
  absl::Status Run(std::string_view sql);

  // Runs a pragma or query returning a single value as text ("" when no row).
  absl::StatusOr<std::string> QueryString(std::string_view sql);
  absl::StatusOr<int64_t> QueryInt64(std::string_view sql);

  // Whether a table (or view / virtual table) exists in the main schema.
  absl::StatusOr<bool> TableExists(std::string_view name);

  bool in_transaction() const { return sqlite3_get_autocommit(db_.get()) == 0; }
  sqlite3* handle() const { return db_.get(); }

  // Builds a status from `rc` with this connection's current error message.
  absl::Status Error(int rc, std::string_view context) const;

 private:
  explicit Connection(DbHandle db) : db_(std::move(db)) {}

  DbHandle db_;
  // Declared after db_ so statements are finalised before the connection
  // closes.
  struct CachedStatement {
    StatementHandle handle;
    bool in_use = false;
  };
  // Node map: Statement keeps a pointer to the entry's `in_use`.
  absl::node_hash_map<std::string, CachedStatement> statements_;
};

// An explicit transaction. Commit() ends it; destruction without a successful
// Commit() rolls it back (errors during rollback are ignored: SQLite has
// already undone the work or will on the next open). Not movable once begun
// into a different connection; holds a reference to the Connection.
class Transaction {
 public:
  // Errors: kUnavailable when the database is locked by another process past
  // the busy timeout; others as SqliteStatus().
  static absl::StatusOr<Transaction> Begin(Connection& db,
                                           TransactionMode mode);

  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  absl::Status Commit();

 private:
  explicit Transaction(Connection* db) : db_(db) {}
  Connection* db_;  // nullptr once committed, rolled back or moved from
};

}  // namespace trialmatch::store::sqlite

#endif  // TRIALMATCH_STORE_SQLITE_H_
