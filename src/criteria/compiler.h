// The eligibility compiler: a study's eligibility (structured fields plus the
// free-text eligibilityCriteria) -> CompiledStudy (criteria/compiled_study.h).
//
//   auto rules = RuleSet::LoadDirectory("rules");          // once
//   Compiler compiler(*rules);
//   CompiledStudy cs = compiler.Compile(study);            // per study
//
// Pipeline: Normalize (markdown escapes, typography; offset map) ->
// ParseStructure (sections, items, nesting, sub-populations) -> per criterion:
// candidate predicates from the rules (RE2::Set prefilter, then each
// candidate rule's RE2 for captures; condition synonyms; the study's own
// conditions) -> logic (negation "No history of X", exclusion phrasing, "or"
// alternatives, exceptions "unless ...", conditions "... for patients with
// X", words left unread) -> predicates with polarity, any-of groups and kOther
// for what could not be read -> structured predicates (age, sex, healthy
// volunteers, conditions) and conflicts between text and structured fields.
//
// Semantics added to compiled_study.h's contract (documented there too):
// a criterion is satisfied when each of its non-informational predicates is
// satisfied (inclusion: the test holds; exclusion: it does not) and its
// children are (all of them; at least one when any_of). The compiler builds
// any_of groups for "A or B" requirements, for "unless"/"except" clauses and
// for exclusions that need more than one fact ("uncontrolled hypertension":
// the patient is cleared by not having hypertension, otherwise the rest needs
// review). Nothing is invented: every criterion keeps at least one predicate
// and text the rules cannot read becomes a kOther predicate (rule ids
// "text.unparsed" for a criterion read not at all, "text.residual" for the
// unread remainder of a partly read one).
//
// Robustness: never fails. An absent eligibility module, empty or malformed
// text, invalid UTF-8 (replaced, offsets kept valid) or a text over
// CompilerOptions::max_text_bytes (cut at a line end) yield a result with
// what could be read and a note. Linear in the text length.
//
// Thread-safety: Compile/CompileText are const and pure; one Compiler (and
// its RuleSet) may be used from many threads at once.
#ifndef TRIALMATCH_CRITERIA_COMPILER_H_
#define TRIALMATCH_CRITERIA_COMPILER_H_

#include <memory>
#include <string_view>

#include "criteria/compiled_study.h"
#include "criteria/extract.h"
#include "criteria/rule_set.h"
#include "model/study.h"

namespace trialmatch::criteria {

// Version of the compiler's logic. Stored with every compiled study together
// with RuleSet::version(); a change in either means "recompile".
inline constexpr std::string_view kCompilerVersion = "1.0.0";

struct CompilerOptions {
  // Longer eligibility texts are cut at a line end (with a note).
  size_t max_text_bytes = 4 << 20;
};

// Context for CompileText (which has no structured fields).
struct TextOptions {
  // Section assumed for text before any heading.
  Section default_section = Section::kUnspecified;
};

class Compiler {
 public:
  // `rules` must not be null.
  explicit Compiler(std::shared_ptr<const RuleSet> rules,
                    CompilerOptions options = {});

  // Compiles the study's eligibility. `counters`, if given, receives the work
  // done (added to its current values).
  CompiledStudy Compile(const model::Study& study,
                        CompileCounters* counters = nullptr) const;

  // Compiles a bare eligibility text (no structured fields, no study
  // conditions); nct_id stays empty.
  CompiledStudy CompileText(std::string_view eligibility_criteria,
                            const TextOptions& options = {},
                            CompileCounters* counters = nullptr) const;

  const RuleSet& rules() const { return *rules_; }
  const std::shared_ptr<const RuleSet>& shared_rules() const { return rules_; }

 private:
  std::shared_ptr<const RuleSet> rules_;
  CompilerOptions options_;
};

// Field paths used in Evidence::field.
inline constexpr std::string_view kCriteriaField =
    "protocolSection.eligibilityModule.eligibilityCriteria";

}  // namespace trialmatch::criteria

#endif  // TRIALMATCH_CRITERIA_COMPILER_H_
