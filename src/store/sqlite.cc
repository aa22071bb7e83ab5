#include "store/sqlite.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace trialmatch::store::sqlite {

using common::ToAbsl;

absl::Status SqliteStatus(int rc, std::string_view context,
                          std::string_view detail) {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) {
    return absl::OkStatus();
  }
  std::string message =
      detail.empty() ? absl::StrCat(ToAbsl(context), ": ", sqlite3_errstr(rc),
                                    " (code ", rc, ")")
                     : absl::StrCat(ToAbsl(context), ": ", ToAbsl(detail), " (",
                                    sqlite3_errstr(rc), ", code ", rc, ")");
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return absl::FailedPreconditionError(message);
    case SQLITE_TOOBIG:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

// --- Statement ---------------------------------------------------------------

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      db_(other.db_),
      in_use_(std::exchange(other.in_use_, nullptr)),
      bind_error_(other.bind_error_),
      bind_error_index_(other.bind_error_index_),
      stepped_(other.stepped_) {}

Statement::~Statement() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  if (in_use_ != nullptr) *in_use_ = false;
}

void Statement::ResetIfStepped() {
  if (stepped_) {
    sqlite3_reset(stmt_);
    stepped_ = false;
  }
}

void Statement::NoteBindResult(int rc, int index) {
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) {
    bind_error_ = rc;
    bind_error_index_ = index;
  }
}

void Statement::BindInt64(int index, int64_t value) {
  ResetIfStepped();
  NoteBindResult(sqlite3_bind_int64(stmt_, index, value), index);
}

void Statement::BindText(int index, std::string_view value) {
  ResetIfStepped();
  // A non-null pointer even for "" so the value binds as '' rather than NULL.
  NoteBindResult(
      sqlite3_bind_text64(stmt_, index, value.empty() ? "" : value.data(),
                          value.size(), SQLITE_STATIC, SQLITE_UTF8),
      index);
}

void Statement::BindBlob(int index, std::string_view bytes) {
  ResetIfStepped();
  NoteBindResult(
      sqlite3_bind_blob64(stmt_, index, bytes.empty() ? "" : bytes.data(),
                          bytes.size(), SQLITE_STATIC),
      index);
}

void Statement::BindNull(int index) {
  ResetIfStepped();
  NoteBindResult(sqlite3_bind_null(stmt_, index), index);
}

void Statement::BindTime(int index, absl::Time t) {
  BindInt64(index, absl::ToUnixMicros(t));
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) {
    return SqliteStatus(bind_error_,
                        absl::StrCat("binding parameter ", bind_error_index_),
                        sqlite3_sql(stmt_));
  }
  stepped_ = true;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteStatus(
      rc, "executing statement",
      absl::StrCat(sqlite3_errmsg(db_), " in: ", sqlite3_sql(stmt_)));
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  stepped_ = false;
}

bool Statement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Statement::ColumnInt64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::string_view Statement::ColumnText(int column) const {
  const auto* text =
      reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  // Size after the pointer: sqlite3_column_bytes may convert the value.
  const int size = sqlite3_column_bytes(stmt_, column);
  return text == nullptr ? std::string_view()
                         : std::string_view(text, static_cast<size_t>(size));
}

std::string_view Statement::ColumnBlob(int column) const {
  const auto* bytes =
      static_cast<const char*>(sqlite3_column_blob(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  return bytes == nullptr ? std::string_view()
                          : std::string_view(bytes, static_cast<size_t>(size));
}

absl::Time Statement::ColumnTime(int column) const {
  if (ColumnIsNull(column)) return absl::InfinitePast();
  return absl::FromUnixMicros(ColumnInt64(column));
}

int64_t Statement::Changes() const { return sqlite3_changes64(db_); }

// --- Connection --------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(
    const std::string& path, const ConnectionOptions& options) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (options.create_if_missing) flags |= SQLITE_OPEN_CREATE;
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  DbHandle db(raw);  // closes even on failure (sqlite3_open_v2 may allocate)
  if (rc != SQLITE_OK) {
    return SqliteStatus(rc, "opening the study store",
                        db != nullptr ? sqlite3_errmsg(db.get()) : "");
  }
  sqlite3_extended_result_codes(db.get(), 1);
  return std::unique_ptr<Connection>(new Connection(std::move(db)));
}

Connection::~Connection() {
  statements_.clear();  // finalise before sqlite3_close_v2 runs
}

absl::Status Connection::Error(int rc, std::string_view context) const {
  return SqliteStatus(rc, context, sqlite3_errmsg(db_.get()));
}

absl::Status Connection::Execute(std::string_view sql) {
  const std::string text(sql);  // sqlite3_exec needs NUL termination
  char* error = nullptr;
  const int rc =
      sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string detail = error != nullptr ? error : sqlite3_errmsg(db_.get());
    sqlite3_free(error);
    // The statement text helps debugging; it never contains bound values.
    return SqliteStatus(rc, "executing SQL",
                        absl::StrCat(detail, " in: ", text.substr(0, 200)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement> Connection::Prepare(std::string_view sql) {
  auto it = statements_.find(ToAbsl(sql));
  if (it == statements_.end()) {
    sqlite3_stmt* raw = nullptr;
    const int rc =
        sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    StatementHandle handle(raw);
    if (rc != SQLITE_OK) {
      return SqliteStatus(
          rc, "preparing statement",
          absl::StrCat(sqlite3_errmsg(db_.get()), " in: ", ToAbsl(sql)));
    }
    if (handle == nullptr) {
      return absl::InternalError(
          absl::StrCat("preparing statement: no SQL in: ", ToAbsl(sql)));
    }
    it = statements_
             .emplace(std::string(sql), CachedStatement{std::move(handle)})
             .first;
  }
  if (it->second.in_use) {
    return absl::InternalError(
        absl::StrCat("statement already in use (nested use of one SQL text): ",
                     ToAbsl(sql)));
  }
  it->second.in_use = true;
  return Statement(it->second.handle.get(), db_.get(), &it->second.in_use);
}

absl::Status Connection::Run(std::string_view sql) {
  absl::StatusOr<Statement> st = Prepare(sql);
  if (!st.ok()) return st.status();
  return st->Run();
}

absl::StatusOr<std::string> Connection::QueryString(std::string_view sql) {
  absl::StatusOr<Statement> st = Prepare(sql);
  if (!st.ok()) return st.status();
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::string();
  return std::string(st->ColumnText(0));
}

absl::StatusOr<int64_t> Connection::QueryInt64(std::string_view sql) {
  absl::StatusOr<Statement> st = Prepare(sql);
  if (!st.ok()) return st.status();
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row)
    return absl::NotFoundError(absl::StrCat("no row for: ", ToAbsl(sql)));
  return st->ColumnInt64(0);
}

absl::StatusOr<bool> Connection::TableExists(std::string_view name) {
  absl::StatusOr<Statement> st =
      Prepare("SELECT 1 FROM sqlite_schema WHERE name = ?1");
  if (!st.ok()) return st.status();
  st->BindText(1, name);
  return st->Step();
}

// --- Transaction -------------------------------------------------------------

absl::StatusOr<Transaction> Transaction::Begin(Connection& db,
                                               TransactionMode mode) {
  // Cached statements (Connection::Run): BEGIN and COMMIT run on every store
  // call, and sqlite3_exec would parse them each time.
  absl::Status s =
      db.Run(mode == TransactionMode::kImmediate ? "BEGIN IMMEDIATE"
                                                 : "BEGIN DEFERRED");
  if (!s.ok()) return s;
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  if (db_ != nullptr && db_->in_transaction()) {
    (void)db_->Run("ROLLBACK");
  }
}

absl::Status Transaction::Commit() {
  if (db_ == nullptr) {
    return absl::FailedPreconditionError("transaction already finished");
  }
  absl::Status s = db_->Run("COMMIT");
  if (s.ok()) db_ = nullptr;
  // On failure the destructor rolls back (COMMIT may fail with BUSY while the
  // transaction stays open).
  return s;
}

}  // namespace trialmatch::store::sqlite
