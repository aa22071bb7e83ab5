// Internal to the compiler: reading candidate predicates out of one
// criterion's text with the rules (numeric bounds, flags such as pregnancy,
// condition mentions), before the compiler's logic decides polarity and
// structure. Not a public API; see compiler.h.
//
// All offsets are local to the criterion text passed in. Pure functions;
// thread-safe given a shared const RuleSet.
#ifndef TRIALMATCH_CRITERIA_EXTRACT_H_
#define TRIALMATCH_CRITERIA_EXTRACT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "criteria/compiled_study.h"
#include "criteria/rule_set.h"

namespace trialmatch::criteria {

// Work counters (see Compiler); updated by extraction and logic.
struct CompileCounters {
  int64_t bytes = 0;         // normalized bytes compiled
  int64_t criteria = 0;      // criteria analysed
  int64_t rule_runs = 0;     // searches with individual rule patterns
  int64_t phrase_scans = 0;  // scans with phrase / dictionary patterns
  int64_t candidates = 0;    // candidate predicates read
  int64_t prefilter_degraded = 0;  // RE2::Set could not answer
};

namespace internal {

// A condition of the study itself (conditionsModule), searched literally.
struct StudyCondition {
  std::string lower;  // lower-cased text searched for
  ConditionConcept concept_value;
};

struct Candidate {
  int32_t begin = 0;
  int32_t end = 0;
  Kind kind = Kind::kOther;
  std::string rule_id;
  int rule = -1;    // MatchRule index in the RuleSet (-1: condition, nameless)
  int family = -1;
  int priority = 0;
  int rule_group_size = 1;  // quantities the rule reads at once (AST/ALT: 2)
  // Numeric (kAge, kLab, kPerformanceStatus).
  int quantity_index = -1;
  std::string quantity;
  std::optional<double> low;
  bool low_inclusive = true;
  std::optional<double> high;
  bool high_inclusive = true;
  std::string unit;
  bool relative_to_uln = false;
  std::string original_value;
  bool nameless = false;  // a bound continuing an earlier measurement
  // Read but not a predicate of its own: a restatement in another unit
  // ("(90 g/L)") or the end of a range folded into the bound before it.
  bool absorbed = false;
  // Flags.
  model::Sex sex = model::Sex::kAll;
  bool rule_negated = false;
  bool informational = false;
  bool cue_only = false;
  bool covers_criterion = false;
  bool subject_position = false;
  std::string note;
  // kCondition.
  ConditionConcept concept_value;
  bool from_dictionary = false;
};

struct ExtractOptions {
  bool exclusion_section = false;  // criterion sits under Exclusion
  const std::vector<StudyCondition>* study_conditions = nullptr;
  // `text` in ASCII lower case (same length) when the caller has it.
  std::string_view lower;
};

// Appends every candidate found in `text` (`scan` is rules.Scan(text)). Overlaps are resolved (a match
// inside a longer match of the same kind is dropped; on equal spans the
// higher `priority` wins); vetoed matches are dropped. Condition mentions are
// returned unfiltered (the compiler's logic checks their context).
void ExtractCandidates(std::string_view text, const RuleSet& rules,
                       const RuleSet::ScanResult& scan,
                       const ExtractOptions& options,
                       std::vector<Candidate>* out,
                       CompileCounters* counters);

// Parses a number as written in criteria: "1,500" (thousands), "1,5"
// (decimal comma), "1.5", "100 000" is not accepted. nullopt when not a
// number.
std::optional<double> ParseNumber(std::string_view text);

// Rounds to 6 significant digits (keeps converted values readable and
// stable across platforms).
double RoundSignificant(double v);

}  // namespace internal
}  // namespace trialmatch::criteria

#endif  // TRIALMATCH_CRITERIA_EXTRACT_H_
