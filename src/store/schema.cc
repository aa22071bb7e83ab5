#include "store/schema.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "model/study.h"
#include "store/content_hash.h"
#include "store/study_rows.h"

namespace trialmatch::store::schema {
namespace {

using sqlite::Connection;
using sqlite::Statement;

// The version-2 schema, frozen: a later version changes it through a
// migration, never by editing this text.
constexpr const char* kSchemaV2Ddl = R"sql(
CREATE TABLE studies (
  id INTEGER PRIMARY KEY,  -- the number in the NCT id
  nct_id TEXT NOT NULL CHECK (nct_id = printf('NCT%08d', id)),
  overall_status TEXT NOT NULL,
  last_update_post_date TEXT NOT NULL,
  study_type TEXT NOT NULL,
  phases TEXT NOT NULL,          -- newline-joined
  brief_title TEXT NOT NULL,
  official_title TEXT NOT NULL,
  acronym TEXT NOT NULL,
  lead_sponsor TEXT NOT NULL,
  conditions TEXT NOT NULL,      -- newline-joined
  condition_mesh TEXT NOT NULL,  -- newline-joined MeSH terms then ancestors
  interventions TEXT NOT NULL,   -- newline-joined names
  keywords TEXT NOT NULL,        -- newline-joined
  lifecycle TEXT NOT NULL
    CHECK (lifecycle IN ('ACTIVE', 'LEFT_SCOPE', 'VANISHED')),
  lifecycle_changed_at INTEGER NOT NULL,  -- unix microseconds
  content_hash INTEGER NOT NULL,          -- FNV-1a 64 of raw_json, as int64
  raw_size INTEGER NOT NULL,              -- bytes of raw_json
  fetched_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  seen_full_sync INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX studies_by_lifecycle_status ON studies (lifecycle, overall_status);
-- Covering index probed once per full-text match when counting search hits
-- (a few MB for the whole registry, so it stays in cache; the table is ~80 MB).
CREATE INDEX studies_search_filter ON studies (id, lifecycle, overall_status);

CREATE TABLE study_json (
  id INTEGER PRIMARY KEY REFERENCES studies (id) ON DELETE CASCADE,
  raw_json TEXT NOT NULL
);

CREATE VIRTUAL TABLE studies_fts USING fts5 (
  nct_id, acronym, brief_title, official_title, conditions, condition_mesh,
  interventions, keywords, lead_sponsor,
  content = 'studies', content_rowid = 'id',
  tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER studies_fts_insert AFTER INSERT ON studies BEGIN
  INSERT INTO studies_fts (rowid, nct_id, acronym, brief_title, official_title,
                           conditions, condition_mesh, interventions, keywords,
                           lead_sponsor)
  VALUES (new.id, new.nct_id, new.acronym, new.brief_title, new.official_title,
          new.conditions, new.condition_mesh, new.interventions, new.keywords,
          new.lead_sponsor);
END;
CREATE TRIGGER studies_fts_delete AFTER DELETE ON studies BEGIN
  INSERT INTO studies_fts (studies_fts, rowid, nct_id, acronym, brief_title,
                           official_title, conditions, condition_mesh,
                           interventions, keywords, lead_sponsor)
  VALUES ('delete', old.id, old.nct_id, old.acronym, old.brief_title,
          old.official_title, old.conditions, old.condition_mesh,
          old.interventions, old.keywords, old.lead_sponsor);
END;
CREATE TRIGGER studies_fts_update
AFTER UPDATE OF acronym, brief_title, official_title, conditions, condition_mesh,
                interventions, keywords, lead_sponsor ON studies
WHEN old.acronym IS NOT new.acronym OR old.brief_title IS NOT new.brief_title
  OR old.official_title IS NOT new.official_title
  OR old.conditions IS NOT new.conditions
  OR old.condition_mesh IS NOT new.condition_mesh
  OR old.interventions IS NOT new.interventions
  OR old.keywords IS NOT new.keywords OR old.lead_sponsor IS NOT new.lead_sponsor
BEGIN
  INSERT INTO studies_fts (studies_fts, rowid, nct_id, acronym, brief_title,
                           official_title, conditions, condition_mesh,
                           interventions, keywords, lead_sponsor)
  VALUES ('delete', old.id, old.nct_id, old.acronym, old.brief_title,
          old.official_title, old.conditions, old.condition_mesh,
          old.interventions, old.keywords, old.lead_sponsor);
  INSERT INTO studies_fts (rowid, nct_id, acronym, brief_title, official_title,
                           conditions, condition_mesh, interventions, keywords,
                           lead_sponsor)
  VALUES (new.id, new.nct_id, new.acronym, new.brief_title, new.official_title,
          new.conditions, new.condition_mesh, new.interventions, new.keywords,
          new.lead_sponsor);
END;

CREATE TABLE compiled_criteria (
  id INTEGER PRIMARY KEY REFERENCES studies (id) ON DELETE CASCADE,
  compiler_version TEXT NOT NULL,
  rules_version TEXT NOT NULL,
  content_hash INTEGER NOT NULL,
  compiled_at INTEGER NOT NULL,
  blob BLOB NOT NULL
);

CREATE TABLE sync_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  watermark TEXT NOT NULL DEFAULT '',
  data_timestamp TEXT NOT NULL DEFAULT '',
  last_full_sync_at INTEGER,
  last_incremental_sync_at INTEGER,
  count_fetched INTEGER NOT NULL DEFAULT 0,
  count_inserted INTEGER NOT NULL DEFAULT 0,
  count_updated INTEGER NOT NULL DEFAULT 0,
  count_unchanged INTEGER NOT NULL DEFAULT 0,
  count_left_scope INTEGER NOT NULL DEFAULT 0,
  count_vanished INTEGER NOT NULL DEFAULT 0,
  last_full_sync_id INTEGER NOT NULL DEFAULT 0,
  cursor_sync_id INTEGER,  -- NULL: no full sync in progress
  cursor_page_token TEXT,
  cursor_started_at INTEGER,
  cursor_pages_done INTEGER,
  cursor_studies_seen INTEGER
);
INSERT INTO sync_state (id) VALUES (1);

CREATE TABLE endpoint_cache (
  operation TEXT NOT NULL,
  params TEXT NOT NULL,
  body BLOB NOT NULL,
  fetched_at INTEGER NOT NULL,
  UNIQUE (operation, params)
);
)sql";

// Version 3, additive: the store generation, moved by triggers on every
// change that can alter what is built from the store (the matcher's
// snapshot: study rows appearing or going, their records, lifecycles and
// content hashes, compiled criteria). Refreshing fetched_at or the full-sync
// stamp does not move it. The triggers live in the file, so writes by older
// binaries (schema 2 code) move it too.
#define TRIALMATCH_BUMP_GENERATION                                        \
  " BEGIN UPDATE store_generation SET generation = generation + 1, " \
  "token = random() WHERE id = 1; END;\n"
constexpr const char* kSchemaV3Ddl =
    "CREATE TABLE store_generation (\n"
    "  id INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "  store_id TEXT NOT NULL,\n"
    "  generation INTEGER NOT NULL,\n"
    "  token INTEGER NOT NULL\n"
    ");\n"
    "INSERT INTO store_generation (id, store_id, generation, token) VALUES "
    "(1, lower(hex(randomblob(16))), 0, random());\n"
    "CREATE TRIGGER generation_studies_insert AFTER INSERT ON studies"
    TRIALMATCH_BUMP_GENERATION
    "CREATE TRIGGER generation_studies_delete AFTER DELETE ON studies"
    TRIALMATCH_BUMP_GENERATION
    "CREATE TRIGGER generation_studies_update "
    "AFTER UPDATE OF id, nct_id, lifecycle, content_hash ON studies "
    "WHEN old.id IS NOT new.id OR old.nct_id IS NOT new.nct_id "
    "OR old.lifecycle IS NOT new.lifecycle "
    "OR old.content_hash IS NOT new.content_hash"
    TRIALMATCH_BUMP_GENERATION
    "CREATE TRIGGER generation_json_insert AFTER INSERT ON study_json"
    TRIALMATCH_BUMP_GENERATION
    "CREATE TRIGGER generation_json_delete AFTER DELETE ON study_json"
    TRIALMATCH_BUMP_GENERATION
    "CREATE TRIGGER generation_json_update AFTER UPDATE ON study_json"
    TRIALMATCH_BUMP_GENERATION
    "CREATE TRIGGER generation_compiled_insert AFTER INSERT ON "
    "compiled_criteria" TRIALMATCH_BUMP_GENERATION
    "CREATE TRIGGER generation_compiled_delete AFTER DELETE ON "
    "compiled_criteria" TRIALMATCH_BUMP_GENERATION
    "CREATE TRIGGER generation_compiled_update AFTER UPDATE ON "
    "compiled_criteria" TRIALMATCH_BUMP_GENERATION;
#undef TRIALMATCH_BUMP_GENERATION

absl::Status MigrateV2ToV3(Connection& db) {
  return db.Execute(kSchemaV3Ddl);
}

absl::Status WriteMeta(Connection& db, int version, int compatible) {
  TRIALMATCH_ASSIGN_OR_RETURN(
      Statement st,
      db.Prepare("INSERT INTO meta (key, value) VALUES (?1, ?2) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value"));
  st.BindText(1, "version");
  const std::string v = absl::StrCat(version);
  st.BindText(2, v);
  TRIALMATCH_RETURN_IF_ERROR(st.Run());
  st.BindText(1, "last_compatible_version");
  const std::string c = absl::StrCat(compatible);
  st.BindText(2, c);
  return st.Run();
}

absl::StatusOr<int> ReadMetaInt(Connection& db, std::string_view key) {
  TRIALMATCH_ASSIGN_OR_RETURN(
      Statement st, db.Prepare("SELECT value FROM meta WHERE key = ?1"));
  st.BindText(1, key);
  TRIALMATCH_ASSIGN_OR_RETURN(bool row, st.Step());
  int value = 0;
  if (!row || !absl::SimpleAtoi(common::ToAbsl(st.ColumnText(0)), &value) ||
      value <= 0) {
    return absl::DataLossError(absl::StrCat(
        "study store meta table has no valid '", common::ToAbsl(key), "'"));
  }
  return value;
}

absl::Status CreateFresh(Connection& db, absl::Time now) {
  TRIALMATCH_RETURN_IF_ERROR(db.Execute(
      "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"));
  TRIALMATCH_RETURN_IF_ERROR(db.Execute(kSchemaV2Ddl));
  TRIALMATCH_RETURN_IF_ERROR(MigrateV2ToV3(db));
  TRIALMATCH_RETURN_IF_ERROR(
      db.Execute(absl::StrCat("PRAGMA application_id = ", kApplicationId)));
  TRIALMATCH_ASSIGN_OR_RETURN(Statement st,
                              db.Prepare("INSERT INTO meta (key, value) VALUES "
                                         "('created_at', ?1)"));
  const std::string created = absl::FormatTime(now, absl::UTCTimeZone());
  st.BindText(1, created);
  TRIALMATCH_RETURN_IF_ERROR(st.Run());
  return WriteMeta(db, kCurrentVersion, kCompatibleVersion);
}

// v1 -> v2: moves raw JSON into study_json, derives the search columns by
// parsing every stored record, fills the FTS index (via the insert trigger)
// and converts the key/value sync state. A v1 record that no longer parses
// is dropped with a warning: the store is a cache and the next sync fetches
// it again, whereas refusing to open would stop the service.
absl::Status MigrateV1ToV2(Connection& db) {
  TRIALMATCH_RETURN_IF_ERROR(
      db.Execute("ALTER TABLE studies RENAME TO studies_v1;"
                 "ALTER TABLE sync_state RENAME TO sync_state_v1;"));
  TRIALMATCH_RETURN_IF_ERROR(db.Execute(kSchemaV2Ddl));

  int64_t moved = 0;
  int64_t dropped = 0;
  {  // statements reset before the old tables are dropped
    TRIALMATCH_ASSIGN_OR_RETURN(
        Statement read,
        db.Prepare("SELECT nct_id, raw_json, fetched_at FROM studies_v1 "
                   "ORDER BY nct_id"));
    TRIALMATCH_ASSIGN_OR_RETURN(
        Statement insert,
        db.Prepare(
            "INSERT INTO studies (id, nct_id, overall_status, "
            "last_update_post_date, study_type, phases, brief_title, "
            "official_title, acronym, lead_sponsor, conditions, "
            "condition_mesh, "
            "interventions, keywords, lifecycle, lifecycle_changed_at, "
            "content_hash, raw_size, fetched_at, updated_at) VALUES (?1, ?2, "
            "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'ACTIVE', "
            "?15, ?16, ?17, ?15, ?15)"));
    TRIALMATCH_ASSIGN_OR_RETURN(
        Statement insert_json,
        db.Prepare("INSERT INTO study_json (id, raw_json) VALUES (?1, ?2)"));
    while (true) {
      TRIALMATCH_ASSIGN_OR_RETURN(bool row, read.Step());
      if (!row) break;
      const std::string nct_id(read.ColumnText(0));
      const std::string_view raw = read.ColumnText(1);
      const int64_t fetched_at = read.ColumnInt64(2);
      absl::StatusOr<model::Study> study = model::ParseStudy(raw);
      if (!study.ok() || study->nct_id != nct_id) {
        TM_LOG_WARNING("store", "migration v1->v2 drops ", nct_id,
                       ": stored record does not parse as that study");
        ++dropped;
        continue;
      }
      const internal::StudyColumns c = internal::DeriveColumns(*study);
      const int64_t id = internal::StudyRowId(nct_id);
      insert.BindInt64(1, id);
      insert.BindText(2, nct_id);
      insert.BindText(3, study->overall_status);
      insert.BindText(4, study->last_update_post_date);
      insert.BindText(5, study->study_type);
      insert.BindText(6, c.phases);
      insert.BindText(7, study->brief_title);
      insert.BindText(8, study->official_title);
      insert.BindText(9, study->acronym);
      insert.BindText(10, study->lead_sponsor);
      insert.BindText(11, c.conditions);
      insert.BindText(12, c.condition_mesh);
      insert.BindText(13, c.interventions);
      insert.BindText(14, c.keywords);
      insert.BindInt64(15, fetched_at);
      insert.BindInt64(16, static_cast<int64_t>(ContentHash(raw)));
      insert.BindInt64(17, static_cast<int64_t>(raw.size()));
      TRIALMATCH_RETURN_IF_ERROR(insert.Run());
      insert_json.BindInt64(1, id);
      insert_json.BindText(2, raw);
      TRIALMATCH_RETURN_IF_ERROR(insert_json.Run());
      ++moved;
    }
  }

  TRIALMATCH_RETURN_IF_ERROR(db.Execute(
      "UPDATE sync_state SET "
      "watermark = COALESCE((SELECT value FROM sync_state_v1 "
      "                      WHERE key = 'watermark'), ''), "
      "data_timestamp = COALESCE((SELECT value FROM sync_state_v1 "
      "                           WHERE key = 'data_timestamp'), '') "
      "WHERE id = 1;"
      "DROP TABLE studies_v1;"
      "DROP TABLE sync_state_v1;"));
  TM_LOG_INFO("store", "migrated schema v1 -> v2: ", moved, " studies moved, ",
              dropped, " dropped");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int> EnsureSchema(Connection& db, absl::Time now) {
  TRIALMATCH_ASSIGN_OR_RETURN(
      sqlite::Transaction txn,
      sqlite::Transaction::Begin(db, sqlite::TransactionMode::kImmediate));
  TRIALMATCH_ASSIGN_OR_RETURN(const int64_t app_id,
                              db.QueryInt64("PRAGMA application_id"));
  TRIALMATCH_ASSIGN_OR_RETURN(const bool has_meta, db.TableExists("meta"));
  if (app_id != 0 && app_id != kApplicationId) {
    return absl::FailedPreconditionError(
        "the file is a SQLite database of another application "
        "(application_id differs), not a trialmatch study store");
  }
  if (!has_meta) {
    TRIALMATCH_ASSIGN_OR_RETURN(
        const int64_t tables,
        db.QueryInt64("SELECT count(*) FROM sqlite_schema"));
    if (tables != 0) {
      return absl::FailedPreconditionError(
          "the file is a SQLite database without a trialmatch meta table; "
          "refusing to modify it");
    }
    absl::Status created = CreateFresh(db, now);
    if (!created.ok()) {
      if (absl::StrContains(created.message(), "no such module: fts5")) {
        return absl::FailedPreconditionError(
            "this SQLite library lacks FTS5, which the study store needs");
      }
      return created;
    }
    TRIALMATCH_RETURN_IF_ERROR(txn.Commit());
    return kCurrentVersion;
  }

  TRIALMATCH_ASSIGN_OR_RETURN(const int version, ReadMetaInt(db, "version"));
  TRIALMATCH_ASSIGN_OR_RETURN(const int compatible,
                              ReadMetaInt(db, "last_compatible_version"));
  if (compatible > kCurrentVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("study store schema version ", version,
                     " needs code that supports "
                     "schema version >= ",
                     compatible, "; this build supports ", kCurrentVersion,
                     " (use a newer trialmatch or a fresh store file)"));
  }
  if (version >= kCurrentVersion) {
    // Current, or newer but declared compatible: use as is, never downgrade.
    TRIALMATCH_RETURN_IF_ERROR(txn.Commit());
    return version;
  }
  int at = version;
  if (at == 1) {
    TRIALMATCH_RETURN_IF_ERROR(MigrateV1ToV2(db));
    at = 2;
  }
  if (at == 2) {
    TRIALMATCH_RETURN_IF_ERROR(MigrateV2ToV3(db));
    at = 3;
  }
  if (at != kCurrentVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("no migration from study store schema version ", at));
  }
  TRIALMATCH_RETURN_IF_ERROR(
      db.Execute(absl::StrCat("PRAGMA application_id = ", kApplicationId)));
  TRIALMATCH_RETURN_IF_ERROR(
      WriteMeta(db, kCurrentVersion, kCompatibleVersion));
  TRIALMATCH_RETURN_IF_ERROR(txn.Commit());
  return kCurrentVersion;
}

}  // namespace trialmatch::store::schema
