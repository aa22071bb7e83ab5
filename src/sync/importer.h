// ImportStudies: loads study records from files into the store — for
// air-gapped sites (no route to ClinicalTrials.gov) and for seeding a new
// replica. `trialmatch import PATH` is its command-line face.
//
// Inputs, detected from the first bytes (ImportFormat::kAuto):
//   kArray        a JSON array of studies: the website's "Download" file
//                 (ctg-studies.json)                          `[ {...}, ... ]`
//   kStudiesPage  a saved `GET /studies` response    `{"studies":[...], ...}`
//                 (first member named studies / totalCount / nextPageToken)
//   kJsonLines    one study per line (JSONL / NDJSON): the first line holds
//                 one complete JSON value
//   kJsonValues   JSON objects one after another, pretty-printed or not —
//                 e.g. one `GET /studies/{nctId}` response per file
//   kDirectory    every regular file named *.json below PATH (recursively,
//                 in path order), each detected as above
// Input is streamed in `chunk_bytes` reads through common::JsonSplitter, so
// memory is bounded by the largest record plus one batch (`batch_size`
// records per store transaction), not by the file: a multi-GB download
// imports in tens of MB of memory (docs/sync.md has the measurement).
//
// Bad records are reported by position and skipped; the import goes on:
//   kArray        "element 17 (byte 123456)"
//   kStudiesPage  "studies[17] (byte 123456)"
//   kJsonLines    "line 42"
//   kJsonValues   "value 3 (byte 2048)"
//   kDirectory    "<relative path>: <position as above>"
// A record is bad when it is not valid JSON, not a study object
// (model::ParseStudy fails) or its NCT id is invalid. Only a break in the
// file's own structure (an unterminated array, a truncated file) stops
// reading that file; everything before it is stored and
// ImportReport::stopped says where (a JSON Lines file resynchronises at the
// next line instead). Imported studies get the lifecycle their status
// implies (ACTIVE when wanted, else LEFT_SCOPE); the sync state is not
// touched, so the next `trialmatch sync` still does its full sync.
//
// Thread safety: a free function; the store serialises its writes.
#ifndef TRIALMATCH_SYNC_IMPORTER_H_
#define TRIALMATCH_SYNC_IMPORTER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "store/study_store.h"
#include "sync/progress.h"
#include "sync/syncer.h"

namespace trialmatch::sync {

enum class ImportFormat {
  kAuto,
  kArray,
  kStudiesPage,
  kJsonLines,
  kJsonValues,
  kDirectory
};

// "auto" | "array" | "page" | "jsonl" | "values" | "directory".
std::string_view ImportFormatName(ImportFormat format);
// Inverse of ImportFormatName; kInvalidArgument otherwise.
absl::StatusOr<ImportFormat> ParseImportFormat(std::string_view name);

struct ImportOptions {
  // Statuses in scope (see SyncOptions::wanted_statuses); empty = all.
  std::vector<std::string> wanted_statuses = DefaultWantedStatuses();
  // Records per store transaction (>= 1).
  int batch_size = 500;
  // kAuto detects per file. Forcing a format applies it to the file (or to
  // every file of a directory).
  ImportFormat format = ImportFormat::kAuto;
  // Bytes per read.
  std::size_t chunk_bytes = std::size_t{1} << 20;
  // Largest record accepted (bytes); larger ones are skipped as bad.
  std::size_t max_record_bytes = std::size_t{256} << 20;
  // Problems kept in ImportReport::problems (all are counted and logged
  // up to this many).
  std::size_t max_problems_kept = 100;
};

struct ImportProblem {
  std::string where;  // position, see the file comment
  absl::Status error;
};

struct ImportReport {
  ImportFormat format = ImportFormat::kAuto;  // detected (first file's)
  int64_t files = 0;                          // files read
  int64_t read = 0;      // records read (bad ones included)
  int64_t inserted = 0;  // new studies
  int64_t updated = 0;   // stored studies whose record changed
  int64_t unchanged = 0;
  int64_t skipped = 0;     // bad records
  int64_t left_scope = 0;  // stored as / moved to LEFT_SCOPE
  int64_t reactivated = 0;
  int64_t bytes = 0;  // bytes of input read
  int64_t problems_total = 0;
  std::vector<ImportProblem> problems;  // the first max_problems_kept
  // Non-OK when a file could not be read to its end (broken structure, read
  // error); what came before was stored. With a directory, the first such.
  absl::Status stopped = absl::OkStatus();
  absl::Duration elapsed;

  int64_t stored() const { return inserted + updated; }
  // "import: 1,267 records read, 1,267 stored (1,267 new, 0 updated, 653
  // not in the wanted statuses), 0 unchanged, 0 skipped, 37.0 MB in 4.1s".
  std::string Summary() const;
};

// Imports `path` ("-" = standard input) into `store`. Errors (the studies
// stored by batches before the error stay stored):
//   kNotFound         `path` does not exist
//   kInvalidArgument  bad options; an empty file (no JSON at all); a
//                     directory without *.json files; a format that does
//                     not fit (e.g. --format=array on a JSONL file, or
//                     kDirectory for a file)
//   kFailedPrecondition  `path` cannot be opened or read
//   store errors      (store/study_store.h) abort the import
// Bad records and broken files are not errors: see ImportReport.
// `progress` (optional) is called after each batch; `clock` times it.
absl::StatusOr<ImportReport> ImportStudies(
    const std::string& path, store::StudyStore& store,
    const ImportOptions& options = {}, const ProgressCallback& progress = {},
    common::Clock& clock = common::SystemClock::Default());

}  // namespace trialmatch::sync

#endif  // TRIALMATCH_SYNC_IMPORTER_H_
