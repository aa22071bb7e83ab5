// The compiled form of one study's eligibility: criteria (one per bullet or
// line of the free text, plus the structured fields) and the typed predicates
// read from them, each pointing at its evidence. Produced by the eligibility
// compiler (criteria/compiler.h), stored by the store, evaluated by match/.
//
// Semantics (the contract between compiler and matcher):
//  * A Predicate is a test on one patient fact ("age in [18, 75] years",
//    "HbA1c <= 10 %", "has condition breast cancer", "is pregnant").
//  * Polarity says what the test means for eligibility: kInclusion — the test
//    must hold; kExclusion — if the test holds, the patient is excluded.
//    Polarity is already resolved by the compiler: "No history of stroke" under
//    Inclusion becomes a kExclusion predicate "has condition stroke";
//    "Age less than 18 years" under Exclusion becomes kExclusion age < 18.
//  * Predicates are independent requirements, except those whose criterion
//    (or an ancestor) is an any-of group (`Criterion::any_of`): such a group
//    holds when at least one child criterion holds.
//  * `informational` predicates are shown but never decide a verdict
//    (contraception requirements; a text age bound when the structured field
//    exists — disagreement with it is listed in `conflicts`, never applied).
//  * A criterion the rules cannot read gets one kOther predicate, so the
//    matcher reports it as needing review. Nothing is dropped or invented.
//  * Absent numeric bounds are unbounded (`low`/`high` nullopt).
//
// Plain value types: copyable, thread-compatible; share across threads only
// as const (e.g. inside a shared_ptr<const ...> snapshot).
#ifndef TRIALMATCH_CRITERIA_COMPILED_STUDY_H_
#define TRIALMATCH_CRITERIA_COMPILED_STUDY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/study.h"

namespace trialmatch::criteria {

enum class Kind {
  kAge,                // quantity "age", unit "years"
  kSex,                // `sex` (FEMALE or MALE) required (inclusion)
  kHealthyVolunteers,  // study accepts healthy volunteers (structured flag)
  kCondition,          // patient has one of `concepts`
  kLab,                // numeric measurement, `quantity` below
  kPerformanceStatus,  // quantity "ecog" (0-5) or "karnofsky" (0-100)
  kPregnancy,          // patient is pregnant
  kBreastfeeding,      // patient is breastfeeding
  kContraception,      // must use contraception (informational)
  kOther,              // unparsed criterion: needs review
};

enum class Polarity { kInclusion, kExclusion };

// Where a criterion sits in the text.
enum class Section { kUnspecified, kInclusion, kExclusion };

enum class EvidenceSource { kStructuredField, kCriteriaText };

// Byte offsets [begin, end) into the ORIGINAL eligibilityCriteria string as
// the registry sent it (markdown escapes included).
struct Span {
  int32_t begin = 0;
  int32_t end = 0;
};

struct Evidence {
  EvidenceSource source = EvidenceSource::kCriteriaText;
  // For structured evidence, the API field path, e.g.
  // "protocolSection.eligibilityModule.minimumAge"; for text,
  // "protocolSection.eligibilityModule.eligibilityCriteria".
  std::string field;
  Span span;         // meaningful for kCriteriaText
  std::string text;  // the evidence itself: field value or text slice
};

// A condition the predicate refers to, normalised.
struct ConditionConcept {
  std::string text;        // as written in the evidence ("type 2 diabetes")
  std::string normalized;  // canonical name from rules/ synonym tables, or
                           // the lower-cased text when no table knows it
  std::vector<std::string> mesh_ids;  // descriptors it was linked to (may be empty)
  // Broader descriptors: for a concept from the rules' synonym table, those of
  // its parent concepts; for the study's own conditions, the registry's
  // conditionBrowseModule ancestors. Lets the matcher tell an exact match
  // (patient descriptor in mesh_ids) from a broader one. (Added by the
  // compiler; may be empty.)
  std::vector<std::string> ancestor_mesh_ids;
};

// Canonical quantities and units for kAge / kLab / kPerformanceStatus:
//   age "years" · hba1c "%" · egfr "mL/min/1.73m2" · creatinine "mg/dL" ·
//   creatinine_clearance "mL/min" · bmi "kg/m2" · hemoglobin "g/dL" ·
//   platelets "10^9/L" · anc "10^9/L" · wbc "10^9/L" · bilirubin_total "mg/dL" ·
//   ast "U/L" · alt "U/L" · inr "ratio" · lvef "%" · systolic_bp "mmHg" ·
//   diastolic_bp "mmHg" · fasting_glucose "mg/dL" · weight "kg" ·
//   ecog "score" · karnofsky "score".
// Bounds relative to the upper limit of normal ("<= 2.5 x ULN") carry
// relative_to_uln = true and unit "xULN".
struct Predicate {
  Kind kind = Kind::kOther;
  Polarity polarity = Polarity::kInclusion;
  bool informational = false;
  std::string rule_id;  // e.g. "structured.minimum_age", "lab.hemoglobin.ge"
  Evidence evidence;
  int criterion = -1;   // index into CompiledStudy::criteria, -1 for none

  // Numeric test (kAge, kLab, kPerformanceStatus): value within [low, high].
  std::string quantity;
  std::optional<double> low;
  bool low_inclusive = true;
  std::optional<double> high;
  bool high_inclusive = true;
  std::string unit;
  bool relative_to_uln = false;
  // The value and unit as written, before conversion (e.g. "1,500 /mm3").
  std::string original_value;

  model::Sex sex = model::Sex::kAll;        // kSex
  std::vector<ConditionConcept> concepts;   // kCondition: any of these
  bool accepts_healthy_volunteers = false;  // kHealthyVolunteers

  // Why the predicate is informational or what limits it, in plain words
  // ("applies only to: Part A", "text age bound; minimumAge is authoritative").
  // Empty when there is nothing to say. (Added by the compiler.)
  std::string note;
};

struct Criterion {
  Section section = Section::kUnspecified;
  Polarity polarity = Polarity::kInclusion;
  Span span;         // the criterion's text in the original string
  std::string text;  // unescaped, list marker removed
  int parent = -1;   // enclosing criterion for nested bullets
  int depth = 0;
  bool any_of = false;  // children form an OR group ("at least one of")
  std::vector<int> children;
  std::vector<int> predicates;  // indexes into CompiledStudy::predicates
};

// A text statement that disagrees with an authoritative structured field.
struct Conflict {
  Kind kind = Kind::kOther;
  std::string description;  // "text says minimum age 21 years; minimumAge is 18 Years"
  Evidence structured;
  Evidence text;
};

struct CompiledStudy {
  std::string nct_id;
  std::string compiler_version;
  std::string rules_version;
  std::vector<Criterion> criteria;
  std::vector<Predicate> predicates;
  std::vector<Conflict> conflicts;
  // Plain notes on what could not be read: "no eligibility module",
  // "invalid UTF-8 replaced at 3 places", ...
  std::vector<std::string> notes;
};

}  // namespace trialmatch::criteria

#endif  // TRIALMATCH_CRITERIA_COMPILED_STUDY_H_
