#include "store/study_store.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "model/study.h"
#include "store/content_hash.h"
#include "store/schema.h"
#include "store/search_query.h"
#include "store/sqlite.h"
#include "store/study_rows.h"

namespace trialmatch::store {

using sqlite::Connection;
using sqlite::Statement;
using sqlite::Transaction;
using sqlite::TransactionMode;

namespace {

constexpr int kMaxPageSize = 1000;
constexpr int kDefaultPageSize = 10;
constexpr const char* kMemoryPath = ":memory:";

// Hash values are unsigned; SQLite integers are signed 64-bit. Stored as the
// same bits.
int64_t HashToSql(uint64_t h) { return static_cast<int64_t>(h); }
uint64_t HashFromSql(int64_t v) { return static_cast<uint64_t>(v); }

absl::Status CheckNctId(std::string_view nct_id) {
  if (!model::IsValidNctId(nct_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an NCT id (NCT + 8 digits): '",
                     common::ToAbsl(nct_id.substr(0, 32)), "'"));
  }
  return absl::OkStatus();
}

// "?first, ?first+1, ..." for an IN list of n values.
std::string Placeholders(int first, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    absl::StrAppend(&out, i == 0 ? "?" : ", ?", first + static_cast<int>(i));
  }
  return out;
}

// Appends " AND <column> IN (...)" for a non-empty filter; the values are
// bound later (BindStrings) from parameter `*next_param` on.
void AppendInFilter(std::string& sql, std::string_view column, size_t n,
                    int* next_param) {
  if (n == 0) return;
  absl::StrAppend(&sql, " AND ", common::ToAbsl(column), " IN (",
                  Placeholders(*next_param, n), ")");
  *next_param += static_cast<int>(n);
}

std::vector<std::string> LifecycleNames(const std::vector<Lifecycle>& ls) {
  std::vector<std::string> out;
  for (const Lifecycle l : ls) out.emplace_back(LifecycleName(l));
  return out;
}

void BindStrings(Statement& st, int first, const std::vector<std::string>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    st.BindText(first + static_cast<int>(i), v[i]);
  }
}

absl::StatusOr<Lifecycle> LifecycleColumn(const Statement& st, int column) {
  absl::StatusOr<Lifecycle> l = ParseLifecycle(st.ColumnText(column));
  if (!l.ok()) {
    return absl::DataLossError(
        absl::StrCat("stored study has ", l.status().message()));
  }
  return l;
}

// --- Sync state rows ---------------------------------------------------------

constexpr const char* kSelectSyncState =
    "SELECT watermark, data_timestamp, last_full_sync_at, "
    "last_incremental_sync_at, count_fetched, count_inserted, count_updated, "
    "count_unchanged, count_left_scope, count_vanished, cursor_sync_id, "
    "cursor_page_token, cursor_started_at, cursor_pages_done, "
    "cursor_studies_seen, last_full_sync_id FROM sync_state WHERE id = 1";

std::optional<absl::Time> OptionalTime(const Statement& st, int column) {
  if (st.ColumnIsNull(column)) return std::nullopt;
  return st.ColumnTime(column);
}

absl::StatusOr<SyncState> ReadSyncState(Connection& db,
                                        int64_t* last_full_sync_id = nullptr) {
  TRIALMATCH_ASSIGN_OR_RETURN(Statement st, db.Prepare(kSelectSyncState));
  TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
  SyncState s;
  if (!row) return s;
  s.watermark = std::string(st.ColumnText(0));
  s.data_timestamp = std::string(st.ColumnText(1));
  s.last_full_sync_at = OptionalTime(st, 2);
  s.last_incremental_sync_at = OptionalTime(st, 3);
  s.last_sync_counts.fetched = st.ColumnInt64(4);
  s.last_sync_counts.inserted = st.ColumnInt64(5);
  s.last_sync_counts.updated = st.ColumnInt64(6);
  s.last_sync_counts.unchanged = st.ColumnInt64(7);
  s.last_sync_counts.left_scope = st.ColumnInt64(8);
  s.last_sync_counts.vanished = st.ColumnInt64(9);
  if (!st.ColumnIsNull(10)) {
    FullSyncCursor c;
    c.sync_id = st.ColumnInt64(10);
    c.page_token = std::string(st.ColumnText(11));
    c.started_at = st.ColumnTime(12);
    c.pages_done = st.ColumnInt64(13);
    c.studies_seen = st.ColumnInt64(14);
    s.full_sync = std::move(c);
  }
  if (last_full_sync_id != nullptr) *last_full_sync_id = st.ColumnInt64(15);
  return s;
}

void BindOptionalTime(Statement& st, int index,
                      const std::optional<absl::Time>& t) {
  if (t.has_value()) {
    st.BindTime(index, *t);
  } else {
    st.BindNull(index);
  }
}

absl::Status WriteSyncState(Connection& db, const SyncState& s) {
  TRIALMATCH_ASSIGN_OR_RETURN(
      Statement st,
      db.Prepare(
          "UPDATE sync_state SET watermark = ?1, data_timestamp = ?2, "
          "last_full_sync_at = ?3, last_incremental_sync_at = ?4, "
          "count_fetched = ?5, count_inserted = ?6, count_updated = ?7, "
          "count_unchanged = ?8, count_left_scope = ?9, count_vanished = ?10, "
          "cursor_sync_id = ?11, cursor_page_token = ?12, "
          "cursor_started_at = ?13, cursor_pages_done = ?14, "
          "cursor_studies_seen = ?15, "
          "last_full_sync_id = max(last_full_sync_id, coalesce(?11, 0)) "
          "WHERE id = 1"));
  st.BindText(1, s.watermark);
  st.BindText(2, s.data_timestamp);
  BindOptionalTime(st, 3, s.last_full_sync_at);
  BindOptionalTime(st, 4, s.last_incremental_sync_at);
  st.BindInt64(5, s.last_sync_counts.fetched);
  st.BindInt64(6, s.last_sync_counts.inserted);
  st.BindInt64(7, s.last_sync_counts.updated);
  st.BindInt64(8, s.last_sync_counts.unchanged);
  st.BindInt64(9, s.last_sync_counts.left_scope);
  st.BindInt64(10, s.last_sync_counts.vanished);
  if (s.full_sync.has_value()) {
    if (s.full_sync->sync_id <= 0) {
      return absl::InvalidArgumentError(
          "full_sync cursor needs a sync_id > 0 (from BeginFullSync)");
    }
    st.BindInt64(11, s.full_sync->sync_id);
    st.BindText(12, s.full_sync->page_token);
    st.BindTime(13, s.full_sync->started_at);
    st.BindInt64(14, s.full_sync->pages_done);
    st.BindInt64(15, s.full_sync->studies_seen);
  } else {
    for (int i = 11; i <= 15; ++i) st.BindNull(i);
  }
  TRIALMATCH_RETURN_IF_ERROR(st.Run());
  if (st.Changes() != 1) {
    return absl::DataLossError("study store has no sync_state row");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ActiveFullSyncId(Connection& db) {
  TRIALMATCH_ASSIGN_OR_RETURN(
      Statement st,
      db.Prepare(
          "SELECT coalesce(cursor_sync_id, 0) FROM sync_state WHERE id = 1"));
  TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
  return row ? st.ColumnInt64(0) : 0;
}

// --- Pragmas -----------------------------------------------------------------

absl::Status ConfigureConnection(Connection& db, const StoreOptions& options,
                                 bool reader) {
  TRIALMATCH_RETURN_IF_ERROR(db.Execute(absl::StrCat(
      "PRAGMA busy_timeout = ", absl::ToInt64Milliseconds(options.busy_timeout),
      ";PRAGMA cache_size = ", -options.cache_size_kib,
      ";PRAGMA mmap_size = ", options.mmap_size_bytes,
      ";PRAGMA temp_store = MEMORY"
      ";PRAGMA foreign_keys = ON"
      ";PRAGMA synchronous = ",
      options.durability == StoreOptions::Durability::kPowerLoss ? "FULL"
                                                                 : "NORMAL")));
  if (reader) return db.Execute("PRAGMA query_only = ON");
  return absl::OkStatus();
}

}  // namespace

// --- Default path ------------------------------------------------------------

std::string DefaultStorePath() {
  const char* xdg = std::getenv("XDG_STATE_HOME");
  if (xdg != nullptr && xdg[0] == '/') {
    return (std::filesystem::path(xdg) / "trialmatch" / "studies.db").string();
  }
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != '\0') {
    return (std::filesystem::path(home) / ".local" / "state" / "trialmatch" /
            "studies.db")
        .string();
  }
  return "/var/lib/trialmatch/studies.db";
}

// --- Reader pool -------------------------------------------------------------

// Idle read-only connections. A connection is leased to one thread at a time.
class StudyStore::ReaderPool {
 public:
  explicit ReaderPool(std::vector<std::unique_ptr<Connection>> connections)
      : idle_(std::move(connections)) {}

  // Blocks until a connection is idle.
  std::unique_ptr<Connection> Acquire() {
    absl::MutexLock lock(&mu_, absl::Condition(this, &ReaderPool::HasIdle));
    std::unique_ptr<Connection> c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  void Release(std::unique_ptr<Connection> c) {
    absl::MutexLock lock(&mu_);
    idle_.push_back(std::move(c));
  }

 private:
  bool HasIdle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !idle_.empty();
  }

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
};

// --- Open --------------------------------------------------------------------

StudyStore::StudyStore(std::string path, const StoreOptions& options,
                       std::unique_ptr<Connection> writer,
                       std::unique_ptr<ReaderPool> readers, int schema_version)
    : path_(std::move(path)),
      options_(options),
      clock_(options.clock),
      schema_version_(schema_version),
      writer_(std::move(writer)),
      readers_(std::move(readers)) {}

StudyStore::~StudyStore() = default;

absl::StatusOr<std::unique_ptr<StudyStore>> StudyStore::Open(
    const std::string& path, const StoreOptions& options) {
  if (path.empty()) {
    return absl::InvalidArgumentError("study store path is empty");
  }
  if (options.clock == nullptr) {
    return absl::InvalidArgumentError("StoreOptions::clock is null");
  }
  const bool in_memory = path == kMemoryPath;
  if (!in_memory) {
    std::error_code ec;
    const std::filesystem::path p(path);
    if (!std::filesystem::exists(p, ec)) {
      if (!options.create_if_missing) {
        return absl::NotFoundError(
            absl::StrCat("study store ", path, " does not exist"));
      }
      if (p.has_parent_path()) {
        std::filesystem::create_directories(p.parent_path(), ec);
        if (ec) {
          return absl::FailedPreconditionError(
              absl::StrCat("cannot create the directory of study store ", path,
                           ": ", ec.message()));
        }
      }
    }
  }

  sqlite::ConnectionOptions copts;
  copts.create_if_missing = options.create_if_missing;
  TRIALMATCH_ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer,
                              Connection::Open(path, copts));
  TRIALMATCH_RETURN_IF_ERROR(ConfigureConnection(*writer, options, false));
  TRIALMATCH_ASSIGN_OR_RETURN(const std::string journal,
                              writer->QueryString("PRAGMA journal_mode = WAL"));
  if (!in_memory && journal != "wal") {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot enable WAL on study store ", path, " (journal_mode is '",
        journal, "'); is it on a network filesystem?"));
  }
  // Keep the WAL file from staying huge after a big sync has been
  // checkpointed.
  TRIALMATCH_RETURN_IF_ERROR(
      writer->Execute("PRAGMA journal_size_limit = 67108864"));
  TRIALMATCH_ASSIGN_OR_RETURN(
      const int version, schema::EnsureSchema(*writer, options.clock->Now()));

  std::unique_ptr<ReaderPool> readers;
  if (!in_memory && options.read_connections > 0) {
    std::vector<std::unique_ptr<Connection>> conns;
    sqlite::ConnectionOptions ropts;
    ropts.create_if_missing = false;
    for (int i = 0; i < options.read_connections; ++i) {
      TRIALMATCH_ASSIGN_OR_RETURN(std::unique_ptr<Connection> c,
                                  Connection::Open(path, ropts));
      TRIALMATCH_RETURN_IF_ERROR(ConfigureConnection(*c, options, true));
      conns.push_back(std::move(c));
    }
    readers = std::make_unique<ReaderPool>(std::move(conns));
  }
  TM_LOG_INFO("store", "opened study store ", path, " (schema v", version, ")");
  return std::unique_ptr<StudyStore>(new StudyStore(
      path, options, std::move(writer), std::move(readers), version));
}

// --- Connection access -------------------------------------------------------

absl::Status StudyStore::Read(absl::FunctionRef<absl::Status(Connection&)> fn) {
  auto run = [&fn](Connection& db) -> absl::Status {
    TRIALMATCH_ASSIGN_OR_RETURN(
        Transaction txn, Transaction::Begin(db, TransactionMode::kDeferred));
    TRIALMATCH_RETURN_IF_ERROR(fn(db));
    return txn.Commit();
  };
  if (readers_ == nullptr) {
    absl::MutexLock lock(&write_mu_);
    return run(*writer_);
  }
  std::unique_ptr<Connection> reader = readers_->Acquire();
  absl::Status status = run(*reader);
  readers_->Release(std::move(reader));
  return status;
}

absl::Status StudyStore::Write(
    absl::FunctionRef<absl::Status(Connection&)> fn) {
  absl::MutexLock lock(&write_mu_);
  TRIALMATCH_ASSIGN_OR_RETURN(
      Transaction txn,
      Transaction::Begin(*writer_, TransactionMode::kImmediate));
  TRIALMATCH_RETURN_IF_ERROR(fn(*writer_));
  return txn.Commit();
}

template <typename T>
absl::StatusOr<T> StudyStore::Transact(
    Access access, absl::FunctionRef<absl::StatusOr<T>(Connection&)> fn) {
  std::optional<T> out;
  auto body = [&](Connection& db) -> absl::Status {
    absl::StatusOr<T> value = fn(db);
    if (!value.ok()) return value.status();
    out = *std::move(value);
    return absl::OkStatus();
  };
  absl::Status status = access == Access::kRead ? Read(body) : Write(body);
  if (!status.ok()) return status;
  return *std::move(out);
}

// --- Studies -----------------------------------------------------------------

absl::StatusOr<UpsertCounts> StudyStore::UpsertStudies(
    absl::Span<const StudyRecord> batch, const UpsertOptions& options) {
  for (size_t i = 0; i < batch.size(); ++i) {
    absl::Status id_ok = CheckNctId(batch[i].study.nct_id);
    if (!id_ok.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("record ", i, ": ", id_ok.message()));
    }
    if (batch[i].raw_json.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "record ", i, " (", batch[i].study.nct_id, "): raw JSON is empty"));
    }
  }
  const absl::flat_hash_set<std::string> wanted(options.wanted_statuses.begin(),
                                                options.wanted_statuses.end());
  const int64_t now = absl::ToUnixMicros(clock_->Now());
  return Transact<UpsertCounts>(
      Access::kWrite, [&](Connection& db) -> absl::StatusOr<UpsertCounts> {
        UpsertCounts counts;
        if (options.full_sync_id != 0) {
          TRIALMATCH_ASSIGN_OR_RETURN(const int64_t active,
                                      ActiveFullSyncId(db));
          if (active == 0 || active != options.full_sync_id) {
            return absl::FailedPreconditionError(absl::StrCat(
                "full sync ", options.full_sync_id, " is not in progress"));
          }
        }
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement select,
            db.Prepare("SELECT content_hash, raw_size, lifecycle FROM studies "
                       "WHERE id = ?1"));
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement insert,
            db.Prepare(
                "INSERT INTO studies (id, nct_id, overall_status, "
                "last_update_post_date, study_type, phases, brief_title, "
                "official_title, acronym, lead_sponsor, conditions, "
                "condition_mesh, interventions, keywords, lifecycle, "
                "lifecycle_changed_at, content_hash, raw_size, fetched_at, "
                "updated_at, seen_full_sync) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                "?7, "
                "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?16, "
                "?16, "
                "?19)"));
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement update,
            db.Prepare(
                "UPDATE studies SET overall_status = ?3, "
                "last_update_post_date = ?4, study_type = ?5, phases = ?6, "
                "brief_title = ?7, official_title = ?8, acronym = ?9, "
                "lead_sponsor = ?10, conditions = ?11, condition_mesh = ?12, "
                "interventions = ?13, keywords = ?14, lifecycle = ?15, "
                "lifecycle_changed_at = CASE WHEN lifecycle = ?15 "
                "  THEN lifecycle_changed_at ELSE ?16 END, "
                "content_hash = ?17, raw_size = ?18, fetched_at = ?16, "
                "updated_at = ?16, "
                "seen_full_sync = CASE WHEN ?19 > 0 THEN ?19 ELSE "
                "seen_full_sync "
                "END "
                "WHERE id = ?1 AND nct_id = ?2"));
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement touch,
            db.Prepare("UPDATE studies SET fetched_at = ?2, lifecycle = ?3, "
                       "lifecycle_changed_at = CASE WHEN lifecycle = ?3 "
                       "  THEN lifecycle_changed_at ELSE ?2 END, "
                       "seen_full_sync = CASE WHEN ?4 > 0 THEN ?4 ELSE "
                       "seen_full_sync END "
                       "WHERE id = ?1"));
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement put_json,
            db.Prepare(
                "INSERT INTO study_json (id, raw_json) VALUES (?1, ?2) "
                "ON CONFLICT (id) DO UPDATE SET raw_json = excluded.raw_json"));

        for (const StudyRecord& record : batch) {
          const model::Study& study = record.study;
          const int64_t id = internal::StudyRowId(study.nct_id);
          const uint64_t hash = ContentHash(record.raw_json);
          const auto size = static_cast<int64_t>(record.raw_json.size());
          const Lifecycle lifecycle =
              wanted.empty() || wanted.contains(study.overall_status)
                  ? Lifecycle::kActive
                  : Lifecycle::kLeftScope;
          const std::string_view lifecycle_name = LifecycleName(lifecycle);

          select.BindInt64(1, id);
          TRIALMATCH_ASSIGN_OR_RETURN(const bool exists, select.Step());
          std::optional<Lifecycle> old_lifecycle;
          bool same_content = false;
          if (exists) {
            TRIALMATCH_ASSIGN_OR_RETURN(old_lifecycle,
                                        LifecycleColumn(select, 2));
            same_content = HashFromSql(select.ColumnInt64(0)) == hash &&
                           select.ColumnInt64(1) == size;
          }
          select.Reset();  // done reading before the row is modified

          if (same_content) {
            touch.BindInt64(1, id);
            touch.BindInt64(2, now);
            touch.BindText(3, lifecycle_name);
            touch.BindInt64(4, options.full_sync_id);
            TRIALMATCH_RETURN_IF_ERROR(touch.Run());
            ++counts.unchanged;
          } else {
            const internal::StudyColumns c = internal::DeriveColumns(study);
            Statement& st = exists ? update : insert;
            st.BindInt64(1, id);
            st.BindText(2, study.nct_id);
            st.BindText(3, study.overall_status);
            st.BindText(4, study.last_update_post_date);
            st.BindText(5, study.study_type);
            st.BindText(6, c.phases);
            st.BindText(7, study.brief_title);
            st.BindText(8, study.official_title);
            st.BindText(9, study.acronym);
            st.BindText(10, study.lead_sponsor);
            st.BindText(11, c.conditions);
            st.BindText(12, c.condition_mesh);
            st.BindText(13, c.interventions);
            st.BindText(14, c.keywords);
            st.BindText(15, lifecycle_name);
            st.BindInt64(16, now);
            st.BindInt64(17, HashToSql(hash));
            st.BindInt64(18, size);
            st.BindInt64(19, options.full_sync_id);
            TRIALMATCH_RETURN_IF_ERROR(st.Run());
            put_json.BindInt64(1, id);
            put_json.BindText(2, record.raw_json);
            TRIALMATCH_RETURN_IF_ERROR(put_json.Run());
            if (exists) {
              ++counts.updated;
            } else {
              ++counts.inserted;
            }
          }
          if (old_lifecycle != lifecycle) {
            if (lifecycle == Lifecycle::kLeftScope) ++counts.left_scope;
            if (lifecycle == Lifecycle::kActive && old_lifecycle.has_value()) {
              ++counts.reactivated;
            }
          }
        }
        if (options.sync_state.has_value()) {
          TRIALMATCH_RETURN_IF_ERROR(WriteSyncState(db, *options.sync_state));
        }
        return counts;
      });
}

absl::StatusOr<StoredStudy> StudyStore::GetStudy(std::string_view nct_id) {
  TRIALMATCH_RETURN_IF_ERROR(CheckNctId(nct_id));
  return Transact<StoredStudy>(
      Access::kRead, [&](Connection& db) -> absl::StatusOr<StoredStudy> {
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement st,
            db.Prepare(
                "SELECT s.nct_id, s.overall_status, s.last_update_post_date, "
                "s.lifecycle, s.content_hash, s.fetched_at, s.updated_at, "
                "s.lifecycle_changed_at, j.raw_json FROM studies s "
                "JOIN study_json j ON j.id = s.id WHERE s.id = ?1"));
        st.BindInt64(1, internal::StudyRowId(nct_id));
        TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
        if (!row) {
          return absl::NotFoundError(absl::StrCat(
              common::ToAbsl(nct_id), " is not in the study store"));
        }
        StoredStudy out;
        out.nct_id = std::string(st.ColumnText(0));
        out.overall_status = std::string(st.ColumnText(1));
        out.last_update_post_date = std::string(st.ColumnText(2));
        TRIALMATCH_ASSIGN_OR_RETURN(out.lifecycle, LifecycleColumn(st, 3));
        out.content_hash = HashFromSql(st.ColumnInt64(4));
        out.fetched_at = st.ColumnTime(5);
        out.updated_at = st.ColumnTime(6);
        out.lifecycle_changed_at = st.ColumnTime(7);
        out.raw_json = std::string(st.ColumnText(8));
        return out;
      });
}

absl::Status StudyStore::ForEachStudy(
    const StudyFilter& filter,
    absl::FunctionRef<absl::Status(const StudyView&)> fn) {
  std::string sql =
      "SELECT s.nct_id, s.overall_status, s.last_update_post_date, "
      "s.lifecycle, s.content_hash, s.fetched_at";
  int raw_col = -1;
  int compiled_col = -1;
  int next_col = 6;
  if (filter.include_raw_json) {
    sql += ", j.raw_json";
    raw_col = next_col++;
  }
  if (filter.include_compiled) {
    sql +=
        ", c.id IS NOT NULL, c.blob, c.compiler_version, c.rules_version, "
        "c.content_hash";
    compiled_col = next_col;
  }
  sql += " FROM studies s";
  if (filter.include_raw_json) sql += " JOIN study_json j ON j.id = s.id";
  if (filter.include_compiled) {
    sql += " LEFT JOIN compiled_criteria c ON c.id = s.id";
  }
  sql += " WHERE 1";
  const std::vector<std::string> lifecycles = LifecycleNames(filter.lifecycles);
  int next_param = 1;
  // Unary + keeps the planner off the (lifecycle, status) index: with it,
  // rows would come out of id order and be sorted in a temporary B-tree,
  // raw JSON included (gigabytes for the whole registry). A scan in rowid
  // order streams instead; the studies rows it filters are small.
  AppendInFilter(sql, "+s.lifecycle", lifecycles.size(), &next_param);
  AppendInFilter(sql, "+s.overall_status", filter.statuses.size(), &next_param);
  sql += " ORDER BY s.id";

  return Read([&](Connection& db) -> absl::Status {
    TRIALMATCH_ASSIGN_OR_RETURN(Statement st, db.Prepare(sql));
    BindStrings(st, 1, lifecycles);
    BindStrings(st, 1 + static_cast<int>(lifecycles.size()), filter.statuses);
    while (true) {
      TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
      if (!row) return absl::OkStatus();
      StudyView v;
      v.nct_id = st.ColumnText(0);
      v.overall_status = st.ColumnText(1);
      v.last_update_post_date = st.ColumnText(2);
      TRIALMATCH_ASSIGN_OR_RETURN(v.lifecycle, LifecycleColumn(st, 3));
      v.content_hash = HashFromSql(st.ColumnInt64(4));
      v.fetched_at = st.ColumnTime(5);
      if (raw_col >= 0) v.raw_json = st.ColumnText(raw_col);
      if (compiled_col >= 0 && st.ColumnInt64(compiled_col) != 0) {
        v.has_compiled = true;
        v.compiled_blob = st.ColumnBlob(compiled_col + 1);
        v.compiler_version = st.ColumnText(compiled_col + 2);
        v.rules_version = st.ColumnText(compiled_col + 3);
        v.compiled_content_hash = HashFromSql(st.ColumnInt64(compiled_col + 4));
      }
      TRIALMATCH_RETURN_IF_ERROR(fn(v));
    }
  });
}

absl::StatusOr<LocalSearchPage> StudyStore::SearchLocal(
    const LocalSearchQuery& query) {
  if (query.page_size < 0) {
    return absl::InvalidArgumentError("page_size must not be negative");
  }
  const int page_size = query.page_size == 0
                            ? kDefaultPageSize
                            : std::min(query.page_size, kMaxPageSize);
  const uint64_t fingerprint = internal::QueryFingerprint(query);
  int64_t after_id = 0;
  if (!query.page_token.empty()) {
    TRIALMATCH_ASSIGN_OR_RETURN(
        after_id, internal::DecodePageToken(query.page_token, fingerprint));
  }
  const std::string match = internal::BuildMatchExpression(query);
  const std::vector<std::string> lifecycles = LifecycleNames(query.lifecycles);

  // ?1 match expression (text queries only), ?2 after id, ?3 limit, then
  // the IN-list values. CROSS JOIN fixes the join order: the full-text match
  // drives and rows are looked up by id. Left to itself the planner may
  // scan studies by lifecycle and run the full-text query once per row
  // (50x slower for the count on the recorded corpus). The count, which
  // visits every match, reads lifecycle and status from a small covering
  // index instead of the table (3x faster at 100k studies).
  auto from = [&](bool count) {
    if (match.empty()) return std::string(" FROM studies s WHERE s.id > ?2");
    return absl::StrCat(
        " FROM studies_fts CROSS JOIN studies s",
        count ? " INDEXED BY studies_search_filter" : "",
        " ON s.id = studies_fts.rowid WHERE studies_fts MATCH ?1 AND "
        "studies_fts.rowid > ?2");
  };
  // The page walks studies in id order and stops when it is full (unary +
  // keeps the planner from collecting every match through the
  // (lifecycle, status) index and sorting them, once per page); the count
  // uses that index. The count ignores the keyset bound (?2 = 0) and has no
  // limit (?3 unused).
  auto filters = [&](bool use_index) {
    std::string f;
    int next_param = 4;
    const std::string plus = use_index ? "" : "+";
    AppendInFilter(f, plus + "s.lifecycle", lifecycles.size(), &next_param);
    AppendInFilter(f, plus + "s.overall_status", query.statuses.size(),
                   &next_param);
    return f;
  };
  const std::string order = match.empty()
                                ? " ORDER BY s.id LIMIT ?3"
                                : " ORDER BY studies_fts.rowid LIMIT ?3";
  const std::string page_sql = absl::StrCat(
      "SELECT s.id, s.nct_id, s.brief_title, s.overall_status, "
      "s.last_update_post_date, s.study_type, s.phases, s.conditions, "
      "s.interventions, s.lifecycle",
      from(false), filters(false), order);
  const std::string count_sql =
      absl::StrCat("SELECT count(*)", from(true), filters(true));

  auto bind = [&](Statement& st, int64_t after, int64_t limit) {
    if (!match.empty()) st.BindText(1, match);
    st.BindInt64(2, after);
    if (limit >= 0) st.BindInt64(3, limit);
    BindStrings(st, 4, lifecycles);
    BindStrings(st, 4 + static_cast<int>(lifecycles.size()), query.statuses);
  };

  return Transact<LocalSearchPage>(
      Access::kRead, [&](Connection& db) -> absl::StatusOr<LocalSearchPage> {
        LocalSearchPage page;
        {
          TRIALMATCH_ASSIGN_OR_RETURN(Statement st, db.Prepare(page_sql));
          bind(st, after_id, page_size + 1);
          int64_t last_id = 0;
          while (true) {
            TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
            if (!row) break;
            if (static_cast<int>(page.studies.size()) == page_size) {
              page.next_page_token =
                  internal::EncodePageToken(fingerprint, last_id);
              break;
            }
            LocalSearchHit hit;
            last_id = st.ColumnInt64(0);
            hit.nct_id = std::string(st.ColumnText(1));
            hit.brief_title = std::string(st.ColumnText(2));
            hit.overall_status = std::string(st.ColumnText(3));
            hit.last_update_post_date = std::string(st.ColumnText(4));
            hit.study_type = std::string(st.ColumnText(5));
            hit.phases = internal::SplitLines(st.ColumnText(6));
            hit.conditions = internal::SplitLines(st.ColumnText(7));
            hit.interventions = internal::SplitLines(st.ColumnText(8));
            TRIALMATCH_ASSIGN_OR_RETURN(hit.lifecycle, LifecycleColumn(st, 9));
            page.studies.push_back(std::move(hit));
          }
        }
        if (query.count_total) {
          TRIALMATCH_ASSIGN_OR_RETURN(Statement st, db.Prepare(count_sql));
          bind(st, 0, -1);
          TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
          page.total_count = row ? st.ColumnInt64(0) : 0;
        }
        return page;
      });
}

absl::StatusOr<ScopeCounts> StudyStore::ApplyScope(
    absl::Span<const std::string> wanted_statuses) {
  const std::vector<std::string> wanted(wanted_statuses.begin(),
                                        wanted_statuses.end());
  const int64_t now = absl::ToUnixMicros(clock_->Now());
  return Transact<ScopeCounts>(
      Access::kWrite, [&](Connection& db) -> absl::StatusOr<ScopeCounts> {
        ScopeCounts counts;
        // ?1 now, then the wanted statuses.
        const std::string in =
            absl::StrCat("(", Placeholders(2, wanted.size()), ")");
        if (!wanted.empty()) {
          TRIALMATCH_ASSIGN_OR_RETURN(
              Statement leave,
              db.Prepare(absl::StrCat(
                  "UPDATE studies SET lifecycle = 'LEFT_SCOPE', "
                  "lifecycle_changed_at = ?1 WHERE lifecycle = 'ACTIVE' AND "
                  "overall_status NOT IN ",
                  in)));
          leave.BindInt64(1, now);
          BindStrings(leave, 2, wanted);
          TRIALMATCH_RETURN_IF_ERROR(leave.Run());
          counts.left_scope = leave.Changes();
        }
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement back,
            db.Prepare(absl::StrCat(
                "UPDATE studies SET lifecycle = 'ACTIVE', lifecycle_changed_at "
                "= ?1 "
                "WHERE lifecycle = 'LEFT_SCOPE'",
                wanted.empty() ? ""
                               : absl::StrCat(" AND overall_status IN ", in))));
        back.BindInt64(1, now);
        BindStrings(back, 2, wanted);
        TRIALMATCH_RETURN_IF_ERROR(back.Run());
        counts.reactivated = back.Changes();
        return counts;
      });
}

absl::StatusOr<int64_t> StudyStore::PurgeInactive(absl::Time cutoff) {
  return Transact<int64_t>(
      Access::kWrite, [&](Connection& db) -> absl::StatusOr<int64_t> {
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement st,
            db.Prepare("DELETE FROM studies WHERE lifecycle != 'ACTIVE' AND "
                       "lifecycle_changed_at < ?1"));
        st.BindTime(1, cutoff);
        TRIALMATCH_RETURN_IF_ERROR(st.Run());
        return st.Changes();
      });
}

absl::StatusOr<StoreGeneration> StudyStore::GetGeneration() {
  return Transact<StoreGeneration>(
      Access::kRead, [&](Connection& db) -> absl::StatusOr<StoreGeneration> {
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement st,
            db.Prepare("SELECT store_id, generation, token FROM "
                       "store_generation WHERE id = 1"));
        TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
        if (!row) {
          return absl::DataLossError("study store has no generation row");
        }
        StoreGeneration g;
        g.store_id = std::string(st.ColumnText(0));
        g.generation = st.ColumnInt64(1);
        g.token = st.ColumnInt64(2);
        return g;
      });
}

absl::StatusOr<StoreStats> StudyStore::GetStats() {
  return Transact<StoreStats>(
      Access::kRead, [&](Connection& db) -> absl::StatusOr<StoreStats> {
        StoreStats stats;
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement st,
            db.Prepare(
                "SELECT count(*), total(lifecycle = 'ACTIVE'), "
                "total(lifecycle = 'LEFT_SCOPE'), total(lifecycle = "
                "'VANISHED'), "
                "total(raw_size), (SELECT count(*) FROM compiled_criteria), "
                "(SELECT count(*) FROM endpoint_cache) FROM studies"));
        TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
        if (row) {
          stats.studies = st.ColumnInt64(0);
          stats.active = st.ColumnInt64(1);
          stats.left_scope = st.ColumnInt64(2);
          stats.vanished = st.ColumnInt64(3);
          stats.raw_json_bytes = st.ColumnInt64(4);
          stats.compiled_entries = st.ColumnInt64(5);
          stats.endpoint_entries = st.ColumnInt64(6);
        }
        TRIALMATCH_ASSIGN_OR_RETURN(const int64_t pages,
                                    db.QueryInt64("PRAGMA page_count"));
        TRIALMATCH_ASSIGN_OR_RETURN(const int64_t page_size,
                                    db.QueryInt64("PRAGMA page_size"));
        stats.file_bytes = pages * page_size;
        return stats;
      });
}

// --- Sync state --------------------------------------------------------------

absl::StatusOr<SyncState> StudyStore::GetSyncState() {
  return Transact<SyncState>(Access::kRead,
                             [](Connection& db) -> absl::StatusOr<SyncState> {
                               return ReadSyncState(db);
                             });
}

absl::Status StudyStore::PutSyncState(const SyncState& state) {
  return Write([&](Connection& db) { return WriteSyncState(db, state); });
}

absl::StatusOr<FullSyncCursor> StudyStore::BeginFullSync() {
  const absl::Time now = clock_->Now();
  TRIALMATCH_ASSIGN_OR_RETURN(
      FullSyncCursor cursor,
      Transact<FullSyncCursor>(
          Access::kWrite,
          [&](Connection& db) -> absl::StatusOr<FullSyncCursor> {
            int64_t last_id = 0;
            TRIALMATCH_ASSIGN_OR_RETURN(SyncState state,
                                        ReadSyncState(db, &last_id));
            if (state.full_sync.has_value()) return *state.full_sync;
            FullSyncCursor fresh;
            fresh.sync_id = last_id + 1;
            fresh.started_at = now;
            state.full_sync = fresh;
            TRIALMATCH_RETURN_IF_ERROR(WriteSyncState(db, state));
            return fresh;
          }));
  if (cursor.pages_done > 0) {
    TM_LOG_INFO("store", "resuming full sync ", cursor.sync_id, " after ",
                cursor.pages_done, " pages");
  }
  return cursor;
}

absl::StatusOr<ReconcileCounts> StudyStore::ReconcileFullSync(
    int64_t sync_id, const SyncState& state) {
  const int64_t now = absl::ToUnixMicros(clock_->Now());
  return Transact<ReconcileCounts>(
      Access::kWrite, [&](Connection& db) -> absl::StatusOr<ReconcileCounts> {
        ReconcileCounts counts;
        TRIALMATCH_ASSIGN_OR_RETURN(const int64_t active, ActiveFullSyncId(db));
        if (active == 0 || active != sync_id) {
          return absl::FailedPreconditionError(
              absl::StrCat("full sync ", sync_id, " is not in progress"));
        }
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement vanish,
            db.Prepare(
                "UPDATE studies SET lifecycle = 'VANISHED', "
                "lifecycle_changed_at = ?2 WHERE lifecycle = 'ACTIVE' AND "
                "seen_full_sync != ?1"));
        vanish.BindInt64(1, sync_id);
        vanish.BindInt64(2, now);
        TRIALMATCH_RETURN_IF_ERROR(vanish.Run());
        counts.vanished = vanish.Changes();
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement seen,
            db.Prepare(
                "SELECT count(*) FROM studies WHERE seen_full_sync = ?1"));
        seen.BindInt64(1, sync_id);
        TRIALMATCH_ASSIGN_OR_RETURN(const bool row, seen.Step());
        counts.seen = row ? seen.ColumnInt64(0) : 0;
        SyncState final_state = state;
        final_state.full_sync.reset();
        TRIALMATCH_RETURN_IF_ERROR(WriteSyncState(db, final_state));
        return counts;
      });
}

absl::StatusOr<std::vector<std::string>> StudyStore::ListActiveNotSeen(
    int64_t sync_id) {
  return Transact<std::vector<std::string>>(
      Access::kRead,
      [&](Connection& db) -> absl::StatusOr<std::vector<std::string>> {
        TRIALMATCH_ASSIGN_OR_RETURN(const int64_t active, ActiveFullSyncId(db));
        if (active == 0 || active != sync_id) {
          return absl::FailedPreconditionError(
              absl::StrCat("full sync ", sync_id, " is not in progress"));
        }
        // Unary + on lifecycle: a scan in rowid (= NCT id) order, no sort.
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement st,
            db.Prepare("SELECT nct_id FROM studies WHERE +lifecycle = "
                       "'ACTIVE' AND seen_full_sync != ?1 ORDER BY id"));
        st.BindInt64(1, sync_id);
        std::vector<std::string> ids;
        while (true) {
          TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
          if (!row) return ids;
          ids.emplace_back(st.ColumnText(0));
        }
      });
}

// --- Compiled criteria -------------------------------------------------------

absl::Status StudyStore::PutCompiled(absl::Span<const CompiledEntry> entries) {
  for (const CompiledEntry& e : entries) {
    TRIALMATCH_RETURN_IF_ERROR(CheckNctId(e.nct_id));
  }
  const int64_t now = absl::ToUnixMicros(clock_->Now());
  return Write([&](Connection& db) -> absl::Status {
    TRIALMATCH_ASSIGN_OR_RETURN(
        Statement exists, db.Prepare("SELECT 1 FROM studies WHERE id = ?1"));
    TRIALMATCH_ASSIGN_OR_RETURN(
        Statement put,
        db.Prepare(
            "INSERT INTO compiled_criteria (id, compiler_version, "
            "rules_version, content_hash, compiled_at, blob) VALUES (?1, ?2, "
            "?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET "
            "compiler_version = excluded.compiler_version, "
            "rules_version = excluded.rules_version, "
            "content_hash = excluded.content_hash, "
            "compiled_at = excluded.compiled_at, blob = excluded.blob"));
    for (const CompiledEntry& e : entries) {
      const int64_t id = internal::StudyRowId(e.nct_id);
      exists.BindInt64(1, id);
      TRIALMATCH_ASSIGN_OR_RETURN(const bool found, exists.Step());
      if (!found) {
        return absl::NotFoundError(absl::StrCat(
            "cannot store compiled criteria: ", e.nct_id, " is not stored"));
      }
      put.BindInt64(1, id);
      put.BindText(2, e.compiler_version);
      put.BindText(3, e.rules_version);
      put.BindInt64(4, HashToSql(e.content_hash));
      put.BindInt64(5, now);
      put.BindBlob(6, e.blob);
      TRIALMATCH_RETURN_IF_ERROR(put.Run());
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<CompiledEntry> StudyStore::GetCompiled(std::string_view nct_id) {
  TRIALMATCH_RETURN_IF_ERROR(CheckNctId(nct_id));
  return Transact<CompiledEntry>(
      Access::kRead, [&](Connection& db) -> absl::StatusOr<CompiledEntry> {
        TRIALMATCH_ASSIGN_OR_RETURN(
            Statement st,
            db.Prepare(
                "SELECT compiler_version, rules_version, content_hash, "
                "compiled_at, blob FROM compiled_criteria WHERE id = ?1"));
        st.BindInt64(1, internal::StudyRowId(nct_id));
        TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
        if (!row) {
          return absl::NotFoundError(absl::StrCat(
              "no compiled criteria stored for ", common::ToAbsl(nct_id)));
        }
        CompiledEntry entry;
        entry.nct_id = std::string(nct_id);
        entry.compiler_version = std::string(st.ColumnText(0));
        entry.rules_version = std::string(st.ColumnText(1));
        entry.content_hash = HashFromSql(st.ColumnInt64(2));
        entry.compiled_at = st.ColumnTime(3);
        entry.blob = std::string(st.ColumnBlob(4));
        return entry;
      });
}

absl::StatusOr<std::vector<StaleStudy>> StudyStore::ListStaleCompiled(
    const StaleQuery& query) {
  const std::vector<std::string> lifecycles = LifecycleNames(query.lifecycles);
  std::string sql =
      "SELECT s.nct_id, s.content_hash, c.id IS NULL, "
      "c.compiler_version IS NOT ?1 OR c.rules_version IS NOT ?2 "
      "FROM studies s LEFT JOIN compiled_criteria c ON c.id = s.id "
      "WHERE (c.id IS NULL OR c.compiler_version != ?1 OR "
      "c.rules_version != ?2 OR c.content_hash != s.content_hash)";
  int next_param = 4;
  AppendInFilter(sql, "+s.lifecycle", lifecycles.size(),
                 &next_param);  // id order
  sql += " ORDER BY s.id LIMIT ?3";
  return Transact<std::vector<StaleStudy>>(
      Access::kRead,
      [&](Connection& db) -> absl::StatusOr<std::vector<StaleStudy>> {
        std::vector<StaleStudy> out;
        TRIALMATCH_ASSIGN_OR_RETURN(Statement st, db.Prepare(sql));
        st.BindText(1, query.compiler_version);
        st.BindText(2, query.rules_version);
        st.BindInt64(3, query.limit > 0 ? query.limit : -1);  // -1: no limit
        BindStrings(st, 4, lifecycles);
        while (true) {
          TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
          if (!row) return out;
          StaleStudy s;
          s.nct_id = std::string(st.ColumnText(0));
          s.content_hash = HashFromSql(st.ColumnInt64(1));
          s.reason = st.ColumnInt64(2) != 0   ? StaleReason::kMissing
                     : st.ColumnInt64(3) != 0 ? StaleReason::kVersionChanged
                                              : StaleReason::kContentChanged;
          out.push_back(std::move(s));
        }
      });
}

// --- Endpoint cache ----------------------------------------------------------

absl::Status StudyStore::PutCachedResponse(std::string_view operation,
                                           std::string_view params,
                                           std::string_view body) {
  if (operation.empty()) {
    return absl::InvalidArgumentError("endpoint cache operation is empty");
  }
  const int64_t now = absl::ToUnixMicros(clock_->Now());
  return Write([&](Connection& db) -> absl::Status {
    TRIALMATCH_ASSIGN_OR_RETURN(
        Statement st,
        db.Prepare("INSERT INTO endpoint_cache (operation, params, body, "
                   "fetched_at) VALUES (?1, ?2, ?3, ?4) "
                   "ON CONFLICT (operation, params) DO UPDATE SET "
                   "body = excluded.body, fetched_at = excluded.fetched_at"));
    st.BindText(1, operation);
    st.BindText(2, params);
    st.BindBlob(3, body);
    st.BindInt64(4, now);
    return st.Run();
  });
}

absl::StatusOr<CachedResponse> StudyStore::GetCachedResponse(
    std::string_view operation, std::string_view params) {
  TRIALMATCH_ASSIGN_OR_RETURN(
      CachedResponse out,
      Transact<CachedResponse>(
          Access::kRead, [&](Connection& db) -> absl::StatusOr<CachedResponse> {
            TRIALMATCH_ASSIGN_OR_RETURN(
                Statement st,
                db.Prepare("SELECT body, fetched_at FROM endpoint_cache "
                           "WHERE operation = ?1 AND params = ?2"));
            st.BindText(1, operation);
            st.BindText(2, params);
            TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
            if (!row) {
              return absl::NotFoundError(absl::StrCat(
                  "no cached response for ", common::ToAbsl(operation)));
            }
            CachedResponse response;
            response.body = std::string(st.ColumnBlob(0));
            response.fetched_at = st.ColumnTime(1);
            return response;
          }));
  out.age = std::max(absl::ZeroDuration(), clock_->Now() - out.fetched_at);
  return out;
}

// --- Maintenance -------------------------------------------------------------

absl::Status StudyStore::IntegrityCheck() {
  absl::MutexLock lock(&write_mu_);
  Connection& db = *writer_;
  {
    TRIALMATCH_ASSIGN_OR_RETURN(Statement st,
                                db.Prepare("PRAGMA integrity_check(20)"));
    std::vector<std::string> findings;
    while (true) {
      TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
      if (!row) break;
      findings.emplace_back(st.ColumnText(0));
    }
    if (findings.size() != 1 || findings[0] != "ok") {
      return absl::DataLossError(
          absl::StrCat("study store integrity check failed: ",
                       absl::StrJoin(findings, "; ")));
    }
  }
  {
    TRIALMATCH_ASSIGN_OR_RETURN(Statement st,
                                db.Prepare("PRAGMA foreign_key_check"));
    TRIALMATCH_ASSIGN_OR_RETURN(const bool row, st.Step());
    if (row) {
      return absl::DataLossError(
          absl::StrCat("study store foreign key check failed in table ",
                       common::ToAbsl(st.ColumnText(0))));
    }
  }
  absl::Status fts = db.Execute(
      "INSERT INTO studies_fts (studies_fts) VALUES ('integrity-check')");
  if (!fts.ok() && fts.code() != absl::StatusCode::kUnavailable) {
    return absl::DataLossError(
        absl::StrCat("study store search index check failed: ", fts.message()));
  }
  return fts;
}

absl::Status StudyStore::Checkpoint() {
  absl::MutexLock lock(&write_mu_);
  TRIALMATCH_ASSIGN_OR_RETURN(
      Statement st, writer_->Prepare("PRAGMA wal_checkpoint(TRUNCATE)"));
  return st.Run();
}

}  // namespace trialmatch::store
