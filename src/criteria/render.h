// Human-readable views of a CompiledStudy (`trialmatch criteria`): each
// criterion as written, with the evidence of its predicates marked, and the
// predicates read from it in plain words.
//
//   INCLUSION
//   [3] * [[Age >= 18 years]]
//         - requires age >= 18 years (informational: text age bound; ...)
//             [age.bound]
//   EXCLUSION
//   [9] * [[Pregnant]] or [[breastfeeding]] women
//         - excludes: pregnant                       [pregnancy.pregnant]
//         - excludes: breastfeeding        [breastfeeding.breastfeeding]
//
// Pure functions; thread-safe.
#ifndef TRIALMATCH_CRITERIA_RENDER_H_
#define TRIALMATCH_CRITERIA_RENDER_H_

#include <string>
#include <string_view>

#include "criteria/compiled_study.h"

namespace trialmatch::criteria {

struct RenderOptions {
  // Mark evidence with ANSI bold/colour (for a terminal) instead of [[...]].
  bool ansi = false;
  // Also list the structured-field predicates, conflicts and notes.
  bool show_structured = true;
  // Show rule ids after each predicate.
  bool show_rule_ids = true;
};

// One predicate in plain words: "requires age >= 18 years", "excludes: has
// condition HIV infection (D015658)", "needs review: <text>".
std::string DescribePredicate(const Predicate& predicate);

// The whole study. `original_criteria` is the eligibilityCriteria text the
// study was compiled from (spans point into it); spans outside it are
// ignored rather than trusted.
std::string Render(const CompiledStudy& study,
                   std::string_view original_criteria,
                   const RenderOptions& options = {});

}  // namespace trialmatch::criteria

#endif  // TRIALMATCH_CRITERIA_RENDER_H_
