// The patients of `trialmatch match --patients`: records read from a JSON
// Lines file (one profile or FHIR Bundle per line), a single JSON document,
// or a directory of JSON documents, with the shard filter of an Indexed Job.
//
//   BatchReader reader = BatchReader::Open(path, {.shard = {1, 4}}).value();
//   while (std::optional<BatchRecord> r = reader.Next()) {
//     if (!r->error.ok()) { report r->Where(); continue; }
//     ... r->text, r->form ...
//   }
//   if (!reader.status().ok()) ...  // the input itself failed
//
// Input forms:
//   * a file whose first non-blank line is a JSON value: JSON Lines. Each
//     non-blank line is a record; blank lines are skipped (but counted, so
//     line numbers are those of the file). "-" reads stdin;
//   * a file (not stdin) whose first non-blank line is not a JSON value by
//     itself but whose whole content is one (a pretty-printed profile or
//     bundle, up to 64 MiB): one record, line 1;
//   * a directory: each regular file ending in ".json" (sorted by name) is one
//     record, a document in either form.
//
// Form of a record (PatientForm): kAuto tells a FHIR Bundle by the key
// "resourceType" (which the plain profile shape does not have); the readers
// then validate the record fully. --format forces one.
//
// Sharding: record positions are the 1-based line number (JSON Lines) or the
// 1-based index of the file in the sorted directory; shard i of n keeps the
// positions p with (p - 1) % n == i. The n shards partition the input
// exactly, and each shard only parses its own records (the others are
// skipped unread but for their line breaks).
//
// A line longer than kMaxRecordBytes is a record with an error (the rest of
// it is skipped without being held in memory). Not thread-safe.
#ifndef TRIALMATCH_CLI_BATCH_INPUT_H_
#define TRIALMATCH_CLI_BATCH_INPUT_H_

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace trialmatch::cli {

inline constexpr size_t kMaxRecordBytes = size_t{64} << 20;

enum class PatientForm { kAuto, kProfileJson, kFhirBundle };

// "auto" | "profile" | "fhir"; kInvalidArgument otherwise.
absl::StatusOr<PatientForm> ParsePatientForm(std::string_view text);

// kAuto resolved for one record's text.
PatientForm DetectPatientForm(std::string_view text);

struct ShardSpec {
  int index = 0;  // 0 .. count-1
  int count = 1;  // >= 1
  bool Owns(int64_t position) const { return (position - 1) % count == index; }
};

// Resolves the shard: `flag_index` (-1 = not given) else the environment
// variable JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs) else 0 when
// `count` is 1. kInvalidArgument for count < 1, an index outside
// 0..count-1, a malformed JOB_COMPLETION_INDEX, or no index with count > 1.
absl::StatusOr<ShardSpec> ResolveShard(int flag_index, int count);

struct BatchRecord {
  int64_t position = 0;  // line number, or file index (directories)
  std::string file;      // directories: the file name; else empty
  std::string text;      // the JSON text
  PatientForm form = PatientForm::kProfileJson;  // resolved
  // Not OK when the record could not be read (too long, unreadable file);
  // the text is empty then. Messages never quote the content.
  absl::Status error;

  // "line 17" or "file p001.json".
  std::string Where() const;
};

struct BatchReaderOptions {
  ShardSpec shard;
  PatientForm form = PatientForm::kAuto;
};

class BatchReader {
 public:
  // Opens `path` ("-" = stdin). kNotFound when it does not exist;
  // kFailedPrecondition when it cannot be read.
  static absl::StatusOr<BatchReader> Open(const std::string& path,
                                          BatchReaderOptions options = {});

  BatchReader(BatchReader&&) = default;
  BatchReader& operator=(BatchReader&&) = default;

  // The next record of this shard; nullopt at the end or after a read error
  // (status()).
  std::optional<BatchRecord> Next();

  // kDataLoss when the input failed before its end.
  const absl::Status& status() const { return status_; }

  // Records of this shard in the input, counted without parsing (for a
  // progress bar): nullopt for stdin.
  std::optional<int64_t> CountRecords() const;

 private:
  BatchReader() = default;
  std::optional<BatchRecord> NextLine();
  std::optional<BatchRecord> NextFile();
  BatchRecord MakeRecord(int64_t position, std::string text) const;

  BatchReaderOptions options_;
  std::string path_;
  bool is_stdin_ = false;
  // JSON Lines / single document.
  std::unique_ptr<std::ifstream> file_;
  std::istream* in_ = nullptr;
  int64_t line_ = 0;
  std::optional<std::string> pending_;  // first line, read while detecting
  bool pending_too_long_ = false;
  bool single_document_ = false;
  bool done_ = false;
  // Directory.
  std::vector<std::filesystem::path> files_;
  size_t next_file_ = 0;
  bool directory_ = false;
  absl::Status status_;
};

}  // namespace trialmatch::cli

#endif  // TRIALMATCH_CLI_BATCH_INPUT_H_
