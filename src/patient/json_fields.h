// Internal to patient/: typed, path-aware access to parsed JSON for the JSON
// and FHIR readers. Every error is kInvalidArgument and names the member by
// path ("observations[2].value: must be a number"); no message contains a
// value taken from the input.
#ifndef TRIALMATCH_PATIENT_JSON_FIELDS_H_
#define TRIALMATCH_PATIENT_JSON_FIELDS_H_

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "patient/normalize.h"
#include "patient/profile.h"

namespace trialmatch::patient::internal {

// Parses one JSON document. kInvalidArgument for text over
// limits.max_input_bytes, nesting deeper than limits.max_json_depth (checked
// before parsing, so hostile input cannot exhaust the stack), or malformed
// JSON ("malformed JSON at byte 17"; the parser's own message, which quotes
// the input, is not used).
absl::StatusOr<nlohmann::json> ParseJsonText(std::string_view text,
                                             const ReaderLimits& limits);

// "<parent>.<key>", or "<key>" at the root (parent "").
std::string MemberPath(std::string_view parent, std::string_view key);
// "<parent>[<i>]".
std::string IndexPath(std::string_view parent, size_t i);

absl::Status PathError(std::string_view path, std::string_view problem);

// Reads members of one JSON object. Absent and null members leave the output
// untouched (unknown stays unknown); a member of the wrong type is an error.
class ObjectReader {
 public:
  // `object` must outlive the reader. `path` names it ("" for the root).
  ObjectReader(const nlohmann::json& object, std::string path)
      : object_(object), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  std::string Path(std::string_view key) const { return MemberPath(path_, key); }

  // The member, or nullptr when absent or null.
  const nlohmann::json* Find(std::string_view key) const;

  absl::Status String(std::string_view key, std::string* out) const;
  absl::Status Number(std::string_view key, std::optional<double>* out) const;
  // A JSON number with an integral value in int range (1 and 1.0 accepted).
  absl::Status Integer(std::string_view key, std::optional<int>* out) const;
  absl::Status Bool(std::string_view key, Tristate* out) const;
  absl::Status Bool(std::string_view key, bool* out) const;
  // Array member; *out = nullptr when absent/null.
  absl::Status Array(std::string_view key, const nlohmann::json** out) const;
  // Object member; *out = nullptr when absent/null.
  absl::Status Object(std::string_view key, const nlohmann::json** out) const;

  // Fails on the first member not in `known`. The member's name is quoted
  // only when it looks like a field name (short [A-Za-z0-9_]), so a key that
  // is itself patient data is never echoed.
  absl::Status CheckKnown(std::initializer_list<std::string_view> known) const;

 private:
  const nlohmann::json& object_;
  std::string path_;
};

// Requires `value` to be an object; error "<path>: must be an object".
absl::Status ExpectObject(const nlohmann::json& value, std::string_view path);

}  // namespace trialmatch::patient::internal

#endif  // TRIALMATCH_PATIENT_JSON_FIELDS_H_
