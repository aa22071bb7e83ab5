// The vocabulary of matching: criterion statuses, verdicts, condition match
// strengths, and the result records the Matcher returns (matcher.h).
//
// Everything here goes to the CLIENT, which owns the patient data: reasons
// may quote patient values ("patient is 54"). None of it may be logged.
//
// Plain value types: copyable, thread-compatible. Study-side strings (NCT id,
// title, rule ids, evidence, notes, study conditions, sites, conflicts) are
// std::string_views into the Snapshot the result came from, not copies (a
// returned trial with its explanations used to cost ~150 allocations):
// MatchResult::snapshot keeps that snapshot alive, so they stay valid as
// long as the result (or a copy of it) does; an Explanation, ConditionMatch
// or Site copied out of its result must not outlive it. Patient-side
// strings (reasons, patient condition labels) are views into the result's
// own text (MatchResult::text: one buffer per result, not one allocation
// per reason), under the same rule.
#ifndef TRIALMATCH_MATCH_MATCH_TYPES_H_
#define TRIALMATCH_MATCH_MATCH_TYPES_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "criteria/compiled_study.h"

namespace trialmatch::match {

class Snapshot;

// Whether a predicate's TEST holds for the patient ("age >= 18": MET for a
// 54-year-old). Polarity is applied separately (Outcome): an exclusion test
// that is MET excludes.
enum class TestStatus { kMet, kNotMet, kUnknown };

// What a predicate (or criterion) means for this patient's eligibility.
enum class Outcome {
  kSatisfied,      // decided in the patient's favour
  kViolated,       // definitely violated: the study is INELIGIBLE
  kUnknown,        // missing fact, ambiguous, or needs review
  kInformational,  // shown, never decides
};

enum class Verdict { kEligible, kPossible, kIneligible };

// How a patient's condition relates to a study's condition concept, from the
// strongest down. Only kExact and kBroader make a condition test MET.
enum class MatchStrength {
  kNone,
  // The patient's condition is an ancestor of (broader than) the study's:
  // patient "lung cancer", study "non-small cell lung cancer". The patient
  // may have the study's form; not decidable (UNKNOWN), but relevant.
  kAncestor,
  // The study's concept is broader than the patient's condition (the
  // patient's condition is a MeSH descendant of it): study "diabetes
  // mellitus", patient "type 2 diabetes". The patient has it.
  kBroader,
  // Same MeSH descriptor, or the same normalised name.
  kExact,
};

std::string_view TestStatusName(TestStatus s);  // "MET" | "NOT_MET" | "UNKNOWN"
std::string_view OutcomeName(
    Outcome o);  // "SATISFIED" | "VIOLATED" | "UNKNOWN" | "INFORMATIONAL"
std::string_view VerdictName(
    Verdict v);  // "ELIGIBLE" | "POSSIBLE" | "INELIGIBLE"
std::string_view MatchStrengthName(
    MatchStrength m);  // "NONE" | "ANCESTOR" | "BROADER" | "EXACT"

// Where a predicate came from (criteria::Evidence, as views into the
// snapshot).
struct EvidenceRef {
  criteria::EvidenceSource source = criteria::EvidenceSource::kCriteriaText;
  std::string_view field;  // API field path
  criteria::Span span;     // meaningful for kCriteriaText
  std::string_view text;   // field value or text slice
};

// One predicate's evaluation, explained.
struct Explanation {
  int predicate = -1;  // index into CompiledStudy::predicates; -1 = synthetic
  int criterion = -1;  // index into CompiledStudy::criteria; -1 = structured
  criteria::Kind kind = criteria::Kind::kOther;
  criteria::Polarity polarity = criteria::Polarity::kInclusion;
  TestStatus status = TestStatus::kUnknown;
  Outcome outcome = Outcome::kUnknown;
  // The nearest enclosing any-of group (criterion index), or -1. A violated
  // predicate inside a group does not make the study ineligible unless every
  // alternative of the group is violated.
  int any_of_group = -1;
  // Short human reason: "requires age ≥ 18 years; patient is 54" (a view
  // into MatchResult::text, or a static string).
  std::string_view reason;
  std::string_view rule_id;
  EvidenceRef evidence;
  std::string_view note;  // the compiler's note, if any
};

// A patient condition matched to a study condition (the study's own
// conditions list, or a condition the inclusion criteria require).
struct ConditionMatch {
  std::string_view study_condition;  // as the study writes it
  // The patient's text, else its MeSH term (a view into MatchResult::text).
  std::string_view patient_condition;
  int patient_condition_index = -1;  // into Profile::conditions
  MatchStrength strength = MatchStrength::kNone;
  // The MeSH descriptor that linked them (normalised form), "" for a match
  // by name.
  std::string_view mesh_id;
  bool from_criteria =
      false;  // an inclusion criterion, not the conditions list
};

// A site as the registry lists it (snapshot.h keeps the located ones).
struct Site {
  std::string_view facility;
  std::string_view city;
  std::string_view state;
  std::string_view country;
  std::string_view status;  // the site's own status; "" = not given
  double latitude = 0;
  double longitude = 0;
  // Counts for "nearest site": the site's status (or, when it has none, the
  // study's) is RECRUITING, or NOT_YET_RECRUITING while the study itself is
  // NOT_YET_RECRUITING.
  bool open = false;
};

struct NearestSite {
  Site site;
  double distance_km = 0;  // haversine from the patient's location
};

// Per-predicate tallies over deciding (non-informational) predicates, by
// Outcome. `informational` counts the others.
struct OutcomeCounts {
  int satisfied = 0;
  int violated = 0;
  int unknown = 0;
  int informational = 0;
};

struct MatchResult {
  // The snapshot the string views below point into, kept alive by every
  // result (a result copied out of its response stays valid).
  std::shared_ptr<const Snapshot> snapshot;
  // The patient-side text the views below point into (reasons, condition
  // labels), shared by copies of the result.
  std::shared_ptr<const char[]> text;
  std::string_view nct_id;
  std::string_view title;
  std::string_view overall_status;
  Verdict verdict = Verdict::kPossible;
  double score = 0;  // in [0, 1]; see docs/match.md
  OutcomeCounts counts;
  std::vector<ConditionMatch> matched_conditions;  // strongest first
  std::optional<NearestSite> nearest_site;  // nearest open site, when located
  // Always: the violated and unknown predicates (what makes the verdict).
  // With MatchOptions::include_explanations: every predicate, in
  // CompiledStudy order, synthetic items last.
  std::vector<Explanation> explanations;
  // Outcome of each CompiledStudy::criteria entry (include_explanations only).
  std::vector<Outcome> criterion_outcomes;
  // Text statements that disagree with structured fields (never applied).
  std::vector<std::string_view> conflicts;
};

// What one Match call did. Unless MatchOptions::evaluate_all, studies that
// cannot rank into the top_k are not evaluated (`pruned`), so the verdict
// tallies and `matched` cover the evaluated studies only.
struct MatchStats {
  size_t studies = 0;           // in the snapshot
  size_t candidates = 0;        // considered (index hits, or every study)
  size_t outside_distance = 0;  // related, but dropped by the distance limit
  size_t pruned = 0;            // skipped: could not rank into the top_k
  // Skipped: the patient's age, sex or healthy-volunteer status certainly
  // fails the study's structured eligibility (INELIGIBLE), when INELIGIBLE
  // is not wanted (never with evaluate_all).
  size_t gated = 0;
  size_t site_searches = 0;  // nearest-site searches (patient located)
  size_t evaluated = 0;      // fully evaluated
  size_t eligible = 0;       // verdict tallies over the evaluated studies
  size_t possible = 0;
  size_t ineligible = 0;  // (including early-stopped ones)
  size_t matched = 0;     // evaluated and of a wanted verdict
  bool used_index = false;
};

struct MatchResponse {
  std::vector<MatchResult> results;  // ranked
  MatchStats stats;
  // What the matcher could not use, by position only (never a patient
  // value): "conditions[2]: not linked to any study condition".
  std::vector<std::string> notes;
};

}  // namespace trialmatch::match

#endif  // TRIALMATCH_MATCH_MATCH_TYPES_H_
