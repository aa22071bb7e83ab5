// JSON form of a CompiledStudy: the blob the store keeps, the CLI's --json
// output and what the gRPC layer converts from. Stable field names; enums as
// upper-case strings ("EXCLUSION", "PERFORMANCE_STATUS"); default values are
// omitted (false, empty strings and lists, absent bounds, low/high_inclusive
// true). ToJson followed by FromJson gives back an equal CompiledStudy.
//
//   {"format": 1, "nct_id": "NCT01234567", "compiler_version": "1.0.0",
//    "rules_version": "2026.11.1+3f2a...", "criteria": [{"section":
//    "INCLUSION", "polarity": "INCLUSION", "span": [0, 24], "text": "Age >= 18
//    years", "predicates": [2]}], "predicates": [{"kind": "AGE", "rule_id":
//    "age.bound", "criterion": 0, "quantity": "age", "low": 18, "unit":
//    "years", "evidence": {"source": "CRITERIA_TEXT", "field": "...",
//    "span": [0, 15], "text": "Age \\>= 18 years"}}], "conflicts": [],
//    "notes": []}
//
// Pure functions; thread-safe.
#ifndef TRIALMATCH_CRITERIA_JSON_H_
#define TRIALMATCH_CRITERIA_JSON_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "criteria/compiled_study.h"
#include "nlohmann/json_fwd.hpp"

namespace trialmatch::criteria {

// Version of the JSON layout (the "format" member). FromJson accepts this
// version only.
inline constexpr int kJsonFormat = 1;

// Enum names as used in JSON (and handy for logs and the CLI).
std::string_view KindName(Kind kind);                  // "AGE", "LAB", ...
std::string_view PolarityName(Polarity polarity);      // "INCLUSION" ...
std::string_view SectionName(Section section);         // "UNSPECIFIED" ...
std::string_view EvidenceSourceName(EvidenceSource s); // "CRITERIA_TEXT" ...
std::optional<Kind> ParseKind(std::string_view name);

nlohmann::json ToJsonValue(const CompiledStudy& study);
// `indent` < 0: compact single line.
std::string ToJson(const CompiledStudy& study, int indent = -1);

// Errors: kDataLoss when the text is not JSON, the format is not kJsonFormat,
// a member has the wrong type or an unknown enum value, or an index
// (criterion, parent, children, predicates) is out of range; the message
// names the JSON pointer.
absl::StatusOr<CompiledStudy> FromJsonValue(const nlohmann::json& value);
absl::StatusOr<CompiledStudy> FromJson(std::string_view json);

}  // namespace trialmatch::criteria

#endif  // TRIALMATCH_CRITERIA_JSON_H_
