// PatientFacts: a patient::Profile resolved against one Snapshot, once per
// Match call, so that evaluating a study reads numbers and interned keys only.
//
// Condition resolution (per profile condition):
//  * MeSH descriptors: the profile's (codes crosswalked by the patient
//    module), plus descriptors whose MeSH term equals the condition's text
//    (normalised, from the snapshot's term dictionary), plus the descriptors
//    of the rules' condition concepts named in the text (when the snapshot
//    has a rule set; skipped for text that negates or hedges: "no ...",
//    "family history of ...", "suspected ...");
//  * names: the normalised text, the descriptors' MeSH terms, the names of
//    the concepts found in the text;
//  * ancestors: the union of the snapshot's known ancestry of each
//    descriptor. A condition is `resolved` when at least one of its
//    descriptors has known ancestry: only then can "the patient does not
//    have X" be concluded from a complete list (docs/match.md).
//
// Internal to match/ (used by the matcher and its tests). Plain values;
// thread-compatible.
#ifndef TRIALMATCH_MATCH_FACTS_H_
#define TRIALMATCH_MATCH_FACTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "match/geo.h"
#include "match/match_types.h"
#include "match/snapshot.h"
#include "patient/profile.h"

namespace trialmatch::match::internal {

struct PatientCondition {
  int index = -1;                   // into Profile::conditions
  std::vector<uint32_t> ids;        // descriptor keys, sorted
  std::vector<uint32_t> ancestors;  // descriptor keys, sorted
  std::vector<uint32_t> names;      // term keys, sorted
  bool resolved = false;
  patient::ClinicalStatus status = patient::ClinicalStatus::kUnknown;
};

struct PatientFacts {
  const patient::Profile* profile = nullptr;
  // Values by Snapshot::quantities() index, canonical units.
  std::vector<std::optional<double>> quantity;
  // ULN by quantity index (from MatcherOptions::reference_uln).
  std::vector<std::optional<double>> uln;
  uint8_t age_q = kUnknownQuantity;
  uint8_t ecog_q = kUnknownQuantity;
  uint8_t karnofsky_q = kUnknownQuantity;
  std::vector<PatientCondition> conditions;
  // Unions over `conditions`, sorted, and the same as bitsets over the
  // snapshot's key spaces (a cheap first test: one bit per key).
  std::vector<uint32_t> all_ids;
  std::vector<uint32_t> all_ancestors;
  std::vector<uint32_t> all_names;
  std::vector<uint64_t> id_bits;        // by descriptor key
  std::vector<uint64_t> ancestor_bits;  // by descriptor key
  std::vector<uint64_t> name_bits;      // by term key
  // MayMatch's answers by Snapshot::concepts() index (0 = not asked yet,
  // 1 = no, 2 = yes), sized by BuildFacts when there are conditions. A
  // memo, hence mutable: a PatientFacts serves one Match call on one thread.
  mutable std::vector<uint8_t> may_match;
  bool all_resolved = false;  // every condition resolved (and at least one)
  bool conditions_complete = false;
  std::optional<UnitVector> location;
};

// Resolves `profile` against `snapshot`. `uln` maps quantity names to upper
// limits of normal in canonical units (already validated).
PatientFacts BuildFacts(const Snapshot& snapshot,
                        const patient::Profile& profile,
                        const std::vector<std::pair<std::string, double>>& uln);

// How one concept relates to one patient condition.
struct ConceptMatch {
  MatchStrength strength = MatchStrength::kNone;
  int condition = -1;    // index into PatientFacts::conditions
  uint32_t key = kNoId;  // linking descriptor key; kNoId for a name match
};

ConceptMatch MatchConceptToCondition(const Snapshot& snapshot, const Concept& c,
                                     const PatientCondition& cond);

// Cheap test: can concept `concept_index` (into snapshot.concepts()) match
// any of the patient's conditions at all? Remembered per concept in
// facts.may_match: a concept shared by many studies is tested once per call
// (MayMatchUncached is the test itself).
bool MayMatchUncached(const Snapshot& snapshot, const PatientFacts& facts,
                      uint32_t concept_index);
inline bool MayMatch(const Snapshot& snapshot, const PatientFacts& facts,
                     uint32_t concept_index) {
  if (facts.conditions.empty()) return false;
  uint8_t& memo = facts.may_match[concept_index];
  if (memo == 0) {
    memo = MayMatchUncached(snapshot, facts, concept_index) ? 2 : 1;
  }
  return memo == 2;
}

// Text that negates or hedges a condition ("no ...", "family history of").
bool NegatedConditionText(std::string_view text);

}  // namespace trialmatch::match::internal

#endif  // TRIALMATCH_MATCH_FACTS_H_
