// Runs the examples that rule files carry (`example { ... }` in rules,
// measurements and conditions, `match` / `no_match` in phrases, `example` in
// comparators), so every rule is tested by its own golden cases
// (tests/criteria/rules_test.cc runs each as a named test; a CLI can run
// them to check an edited rules directory before deploying it).
//
// Thread-safe (pure functions of const inputs).
#ifndef TRIALMATCH_CRITERIA_RULE_EXAMPLES_H_
#define TRIALMATCH_CRITERIA_RULE_EXAMPLES_H_

#include <string>

#include "absl/status/status.h"
#include "criteria/compiler.h"
#include "criteria/rule_set.h"

namespace trialmatch::criteria {

// OK when the example holds. Otherwise kFailedPrecondition with a message
// naming "file:line", the owner id, the example text and what was produced.
//   * rules, measurements, conditions: the text is compiled as a criterion in
//     the example's section; each `expect` must equal some predicate produced
//     by the owner (rule id equal to the owner id, or starting with
//     "<owner id>."), and a `no_match` example must produce none;
//   * phrases: the role's pattern must (not) match the text (section
//     headings: at its start);
//   * comparators: the text must be classified as the comparator's op.
absl::Status CheckExample(const ExampleDef& example, const Compiler& compiler);

// A name usable as a gtest parameter name: "<owner id>_<index>" with every
// character outside [A-Za-z0-9_] replaced by '_'.
std::string ExampleTestName(const ExampleDef& example, int index);

}  // namespace trialmatch::criteria

#endif  // TRIALMATCH_CRITERIA_RULE_EXAMPLES_H_
