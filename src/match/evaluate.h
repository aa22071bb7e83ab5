// Three-valued evaluation of one study's compiled criteria against
// PatientFacts (facts.h). The semantics per predicate kind are tabled in
// docs/match.md; in short: a missing fact is UNKNOWN, never NOT_MET; absent
// bounds are unbounded; informational predicates never decide; kOther is
// UNKNOWN ("needs review").
//
// Combination (criteria/compiler.h): a criterion is satisfied when each of
// its deciding predicates is and its children are (all of them; at least one
// for an any-of group). Three-valued: AND = worst, OR = best, with
// violated < unknown < satisfied. A study's root is the conjunction of its
// structured predicates and top-level criteria.
//
// Internal to match/. A StudyEvaluator holds scratch space: one per thread
// (per Match call); the snapshot and facts are only read.
#ifndef TRIALMATCH_MATCH_EVALUATE_H_
#define TRIALMATCH_MATCH_EVALUATE_H_

#include <cstdint>
#include <vector>

#include "match/facts.h"
#include "match/match_types.h"
#include "match/snapshot.h"

namespace trialmatch::match::internal {

// Why a predicate got its status (for explanations).
enum class Why : uint8_t {
  kDecided,             // compared a known value
  kNoValue,             // the fact is missing
  kNotAQuantity,        // the predicate's quantity is not one the profile knows
  kUnitMismatch,        // predicate unit is not the canonical one
  kUlnUnknown,          // ×ULN bound, no reference ULN
  kUlnDecided,          // ×ULN bound decided with the reference ULN
  kAgeAmbiguous,        // "older than N" between N and N+1 completed units
  kFromKarnofsky,       // ECOG decided from Karnofsky
  kFromEcog,            // Karnofsky decided from ECOG (unambiguous range)
  kMappingAmbiguous,    // ECOG -> Karnofsky range straddles the bound
  kMale,                // pregnancy / breastfeeding: patient is male
  kHvAccepted,          // study accepts healthy volunteers
  kHvHasConditions,     // patient lists conditions: not a healthy volunteer
  kCondMatched,         // patient has it (exact / broader match)
  kCondResolved,        // matched, but the patient's condition is resolved
  kCondStudyTopic,      // exclusion matched only by the study's own condition
  kCondAncestorOnly,    // only a broader patient condition
  kCondAbsentComplete,  // not listed; the list is complete
  kCondNotListed,       // not listed; the list is not complete
  kCondNotComparable,   // complete list, but not comparable by code
  kCondNoConcepts,      // predicate names no concept
  kNeedsReview,         // kOther / non-informational contraception
};

struct PredicateEval {
  TestStatus status = TestStatus::kUnknown;
  Why why = Why::kNoValue;
  double value = 0;   // patient value used (canonical units, or ×ULN)
  double value2 = 0;  // ECOG/Karnofsky mapping: the mapped value / range end
  double value3 = 0;  // reference ULN
  MatchStrength strength = MatchStrength::kNone;
  int condition = -1;            // PatientFacts::conditions index
  uint32_t concept_ref = kNoId;  // index into concept_refs() of the concept
  uint32_t key = kNoId;          // linking descriptor key
};

// Evaluates one predicate. `target` marks, per PatientFacts::conditions
// index, the patient conditions the study is about (relevance match); it
// guards exclusions (see Why::kCondStudyTopic). May be null.
PredicateEval EvaluatePredicate(const Snapshot& snapshot,
                                const PatientFacts& facts,
                                const CompactPredicate& p,
                                const uint8_t* target);

Outcome OutcomeOf(const CompactPredicate& p, TestStatus status);

struct StudyDetail {
  std::vector<PredicateEval> evals;         // by CompiledStudy predicate index
  std::vector<Outcome> outcomes;            // by predicate index
  std::vector<int> any_of_group;            // by predicate index; -1 none
  std::vector<Outcome> criterion_outcomes;  // by criterion index
};

struct StudyEval {
  Verdict verdict = Verdict::kPossible;
  OutcomeCounts counts;
  bool stopped = false;  // stopped at the first violated top-level item
  // Stopped because more units than `max_unfavourable` were violated or
  // UNKNOWN (the study cannot rank; verdict and counts are partial).
  bool abandoned = false;
  bool no_criteria_text = false;  // best verdict capped at POSSIBLE
};

class StudyEvaluator {
 public:
  StudyEvaluator(const Snapshot& snapshot, const PatientFacts& facts);

  // Relevance: the strongest match between the patient's conditions and the
  // study's condition concepts (conditions list, inclusion condition
  // criteria). Also records which patient conditions are the study's topic
  // (Evaluate computes that itself when an exclusion needs it).
  MatchStrength Relevance(uint32_t study);

  // Evaluates the study. With `stop_on_violation`, returns as soon as a
  // top-level item is violated (verdict INELIGIBLE, counts partial). With
  // `detail`, fills it (sized to the study's predicates and criteria).
  // With `stop_on_violation`, also returns (abandoned) as soon as more than
  // `max_unfavourable` counted units are violated or UNKNOWN.
  StudyEval Evaluate(uint32_t study, bool stop_on_violation,
                     StudyDetail* detail,
                     uint32_t max_unfavourable = 0xffffffffu);

 private:
  int EvalNode(uint32_t node, bool root, bool stop, bool counting, int group,
               StudyEval* out, StudyDetail* detail);

  bool Abandon(const StudyEval& e) const {
    return static_cast<uint32_t>(e.counts.violated + e.counts.unknown) >
           max_unfavourable_;
  }

  const Snapshot& snap_;
  const PatientFacts& facts_;
  std::vector<uint8_t> target_;     // by patient condition
  uint32_t target_study_ = kNoId;   // the study target_ was computed for
  uint32_t current_study_ = kNoId;  // the study being evaluated
  uint32_t max_unfavourable_ = 0xffffffffu;
};

}  // namespace trialmatch::match::internal

#endif  // TRIALMATCH_MATCH_EVALUATE_H_
