#include "patient/json_fields.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace trialmatch::patient::internal {
namespace {

using nlohmann::json;

// Deepest nesting of arrays/objects, found by a scan that skips strings.
// Stops early once `limit` is exceeded.
int NestingDepth(std::string_view text, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        max_depth = std::max(max_depth, ++depth);
        if (max_depth > limit) return max_depth;
        break;
      case ']':
      case '}':
        --depth;
        break;
      default:
        break;
    }
  }
  return max_depth;
}

bool LooksLikeFieldName(std::string_view key) {
  return !key.empty() && key.size() <= 40 &&
         std::all_of(key.begin(), key.end(), [](char c) {
           return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                  c == '_';
         });
}

}  // namespace

absl::StatusOr<json> ParseJsonText(std::string_view text,
                                   const ReaderLimits& limits) {
  if (text.size() > limits.max_input_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input of ", text.size(), " bytes exceeds the limit of ",
        limits.max_input_bytes));
  }
  if (NestingDepth(text, limits.max_json_depth) > limits.max_json_depth) {
    return absl::InvalidArgumentError(absl::StrCat(
        "JSON nested deeper than ", limits.max_json_depth, " levels"));
  }
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed JSON at byte ", e.byte));
  } catch (const json::exception&) {
    return absl::InvalidArgumentError("malformed JSON");
  }
}

std::string MemberPath(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return absl::StrCat(common::ToAbsl(parent), ".", common::ToAbsl(key));
}

std::string IndexPath(std::string_view parent, size_t i) {
  return absl::StrCat(common::ToAbsl(parent), "[", i, "]");
}

absl::Status PathError(std::string_view path, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(
      path.empty() ? "(root)" : common::ToAbsl(path), ": ",
      common::ToAbsl(problem)));
}

absl::Status ExpectObject(const json& value, std::string_view path) {
  if (value.is_object()) return absl::OkStatus();
  return PathError(path, "must be an object");
}

const json* ObjectReader::Find(std::string_view key) const {
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status ObjectReader::String(std::string_view key,
                                  std::string* out) const {
  const json* v = Find(key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_string()) return PathError(Path(key), "must be a string");
  *out = v->get_ref<const std::string&>();
  return absl::OkStatus();
}

absl::Status ObjectReader::Number(std::string_view key,
                                  std::optional<double>* out) const {
  const json* v = Find(key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_number()) return PathError(Path(key), "must be a number");
  *out = v->get<double>();
  return absl::OkStatus();
}

absl::Status ObjectReader::Integer(std::string_view key,
                                   std::optional<int>* out) const {
  const json* v = Find(key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_number()) return PathError(Path(key), "must be an integer");
  const double d = v->get<double>();
  if (!std::isfinite(d) || std::floor(d) != d ||
      d < std::numeric_limits<int>::min() ||
      d > std::numeric_limits<int>::max()) {
    return PathError(Path(key), "must be an integer");
  }
  *out = static_cast<int>(d);
  return absl::OkStatus();
}

absl::Status ObjectReader::Bool(std::string_view key, Tristate* out) const {
  const json* v = Find(key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_boolean()) {
    return PathError(Path(key), "must be true, false or null");
  }
  *out = v->get<bool>() ? Tristate::kYes : Tristate::kNo;
  return absl::OkStatus();
}

absl::Status ObjectReader::Bool(std::string_view key, bool* out) const {
  const json* v = Find(key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_boolean()) return PathError(Path(key), "must be true or false");
  *out = v->get<bool>();
  return absl::OkStatus();
}

absl::Status ObjectReader::Array(std::string_view key, const json** out) const {
  *out = nullptr;
  const json* v = Find(key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_array()) return PathError(Path(key), "must be an array");
  *out = v;
  return absl::OkStatus();
}

absl::Status ObjectReader::Object(std::string_view key,
                                  const json** out) const {
  *out = nullptr;
  const json* v = Find(key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_object()) return PathError(Path(key), "must be an object");
  *out = v;
  return absl::OkStatus();
}

absl::Status ObjectReader::CheckKnown(
    std::initializer_list<std::string_view> known) const {
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    const std::string& key = it.key();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    if (LooksLikeFieldName(key)) {
      return PathError(Path(key), "unknown field");
    }
    return PathError(path_, "has an unknown field");
  }
  return absl::OkStatus();
}

}  // namespace trialmatch::patient::internal
