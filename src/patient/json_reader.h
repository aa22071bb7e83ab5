// Reads patient profiles from trialmatch's plain JSON shape (documented in
// docs/patient.md; the field names and nesting mirror the proto message
// trialmatch.v1.PatientProfile in lower_snake_case), one profile per document
// or one per line (JSONL).
//
//   absl::StatusOr<Profile> p = FromJson(R"({"age_years": 54, "sex": "female",
//       "observations": [{"loinc": "718-7", "value": 12.1, "unit": "g/dL"}]})");
//
// Errors are kInvalidArgument naming the member by path
// ("observations[2].value: must be a number") and never quote input values.
// Stateless functions: thread-safe. JsonlReader is thread-compatible.
#ifndef TRIALMATCH_PATIENT_JSON_READER_H_
#define TRIALMATCH_PATIENT_JSON_READER_H_

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "patient/normalize.h"
#include "patient/profile.h"

namespace trialmatch::patient {

// Parses one JSON document and reads it (FromJsonValue). kInvalidArgument
// for malformed or oversized JSON ("malformed JSON at byte 17").
absl::StatusOr<Profile> FromJson(std::string_view text,
                                 const ReaderOptions& options = {});

// Reads an already-parsed JSON object, then NormalizeProfile. Returns
// kInvalidArgument for a member of the wrong type, an unknown member (unless
// options.allow_unknown_fields), an unknown enum spelling, a malformed date,
// or anything NormalizeProfile rejects.
absl::StatusOr<Profile> FromJsonValue(const nlohmann::json& value,
                                      const ReaderOptions& options = {});

// One line's outcome in a JSONL stream.
struct JsonlRecord {
  int64_t line = 0;  // 1-based line number in the stream
  // The profile, or why this line was rejected (kInvalidArgument as for
  // FromJson; the message does not repeat the line number).
  absl::StatusOr<Profile> profile;
};

// Reads a JSONL stream (one JSON profile per line; blank lines and lines
// holding only whitespace are skipped but counted) one record at a time, so a
// batch can report and skip a bad line and go on:
//
//   JsonlReader reader(std::cin, options);
//   while (std::optional<JsonlRecord> r = reader.Next()) {
//     if (!r->profile.ok()) { log line r->line; continue; }
//     Match(*r->profile);
//   }
//   if (!reader.status().ok()) ...  // the stream itself failed
//
// A line longer than options.limits.max_input_bytes is rejected without being
// held in memory. Not thread-safe; `in` must outlive the reader.
class JsonlReader {
 public:
  JsonlReader(std::istream& in, ReaderOptions options = {});

  // The next non-blank line's record; nullopt at end of stream or after a
  // read error (see status()).
  std::optional<JsonlRecord> Next();

  // kDataLoss if the stream failed (bad()) before its end; OK otherwise.
  const absl::Status& status() const { return status_; }

  // Lines consumed so far, blank ones included.
  int64_t lines_read() const { return line_; }

 private:
  std::istream& in_;
  ReaderOptions options_;
  int64_t line_ = 0;
  absl::Status status_;
};

}  // namespace trialmatch::patient

#endif  // TRIALMATCH_PATIENT_JSON_READER_H_
