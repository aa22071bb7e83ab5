// The study store's SQLite schema, its version metadata and its migrations.
// Internal to store/ (StudyStore::Open calls EnsureSchema); tests use it to
// build old schemas and check migrations.
//
// Versioning follows Chromium's sql/meta_table.h: the `meta` table holds
//   version                  the schema version the file is at;
//   last_compatible_version  the oldest code schema version that can still
//                            read and write this file.
// Rules of thumb: bump `version` for every schema change and add a migration
// from the previous version; raise `last_compatible_version` only when older
// code would misbehave on the new layout (dropped/renamed columns, NOT NULL
// columns without defaults, changed meanings). Additive changes (new tables,
// nullable columns) keep it, so an older binary can still open the file.
//
// Version history:
//   1  first layout: studies(nct_id PK, raw_json inline, overall_status,
//      last_update_post_date, fetched_at, content_hash) and a key/value
//      sync_state (watermark, data_timestamp). No search index, no
//      lifecycle, no compiled criteria.
//   2  raw JSON split into study_json (so small-row scans and fetched_at
//      refreshes never touch multi-MB records); rowid = the NCT number;
//      lifecycle; FTS5 index kept by triggers; compiled_criteria;
//      typed sync_state with a full-sync cursor; endpoint_cache.
//   3  store_generation (store id, generation counter, random change token)
//      moved by triggers on studies, study_json and compiled_criteria
//      (StudyStore::GetGeneration). Additive: last_compatible_version stays
//      2, and version-2 code writing the file still moves the generation.
//
// Thread safety: functions take the connection exclusively.
#ifndef TRIALMATCH_STORE_SCHEMA_H_
#define TRIALMATCH_STORE_SCHEMA_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/sqlite.h"

namespace trialmatch::store::schema {

inline constexpr int kCurrentVersion = 3;
inline constexpr int kCompatibleVersion = 2;
// PRAGMA application_id of every study store file: "TMSS".
inline constexpr int64_t kApplicationId = 0x544D5353;

// Brings the database to kCurrentVersion inside one IMMEDIATE transaction:
// creates the schema in an empty database, or migrates an older one forward
// step by step (data preserved), or accepts a newer one whose
// last_compatible_version <= kCurrentVersion. Returns the version the file is
// at afterwards (kCurrentVersion, or the newer compatible version).
// Errors: kFailedPrecondition when the file is newer and incompatible, or is
// a SQLite database that is not a study store, or SQLite lacks FTS5;
// kDataLoss when the meta table is unreadable; SQLite errors otherwise. On
// error nothing is changed (the transaction rolls back).
absl::StatusOr<int> EnsureSchema(sqlite::Connection& db, absl::Time now);

}  // namespace trialmatch::store::schema

#endif  // TRIALMATCH_STORE_SCHEMA_H_
