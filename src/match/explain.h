// Human reasons for predicate evaluations: "requires age ≥ 18 years; patient
// is 54 years old". Built only for results that are returned. Reasons may
// quote patient values: they go to the client, never to logs.
//
// Internal to match/. Pure functions; thread-safe.
#ifndef TRIALMATCH_MATCH_EXPLAIN_H_
#define TRIALMATCH_MATCH_EXPLAIN_H_

#include <string>
#include <string_view>

#include "criteria/compiled_study.h"
#include "match/evaluate.h"
#include "match/facts.h"
#include "match/snapshot.h"

namespace trialmatch::match::internal {

// Appends to *out the reason for predicate `predicate` (CompiledStudy
// order) of study `study`, evaluated to `e`.
void AppendReason(std::string* out, const Snapshot& snapshot,
                  const PatientFacts& facts, uint32_t study, uint32_t predicate,
                  const CompactPredicate& cp, const PredicateEval& e);

// Display name of a canonical quantity: "hemoglobin", "HbA1c", "ECOG".
std::string QuantityLabel(std::string_view quantity);
// The same, appended to *out (no allocation of its own).
void AppendQuantityLabel(std::string* out, std::string_view quantity);

// "%g"-like with at most 4 significant digits and no trailing zeros.
std::string FormatNumber(double v);

// The patient's condition as shown: its text, else its first MeSH term,
// else its first code's display or code (a view into `c`, or a static
// string).
std::string_view ConditionLabel(const patient::Condition& c);

}  // namespace trialmatch::match::internal

#endif  // TRIALMATCH_MATCH_EXPLAIN_H_
