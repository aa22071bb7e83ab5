// Shared fixtures for the criteria tests: the project's rules (loaded once)
// and real studies from the recorded corpus.
#ifndef TRIALMATCH_TESTS_CRITERIA_CRITERIA_TEST_UTIL_H_
#define TRIALMATCH_TESTS_CRITERIA_CRITERIA_TEST_UTIL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "criteria/compiled_study.h"
#include "criteria/compiler.h"
#include "criteria/rule_set.h"
#include "gtest/gtest.h"
#include "model/study.h"
#include "testing/test_paths.h"

namespace trialmatch::criteria::testing {

// rules/ of this checkout, loaded once; null (and the error printed) if it
// does not load.
inline const std::shared_ptr<const RuleSet>& ProjectRules() {
  static const auto* const kRules = [] {
    auto loaded = RuleSet::LoadDirectory(::trialmatch::testing::SourceDir() / "rules");
    if (!loaded.ok()) ADD_FAILURE() << loaded.status();
    return new std::shared_ptr<const RuleSet>(loaded.ok() ? *std::move(loaded)
                                                          : nullptr);
  }();
  return *kRules;
}

inline const Compiler& ProjectCompiler() {
  static const auto* const kCompiler = new Compiler(ProjectRules());
  return *kCompiler;
}

// A recorded study by NCT id (fails the test when missing).
inline model::Study LoadStudy(std::string_view nct_id) {
  const auto path = ::trialmatch::testing::StudiesDir() /
                    (std::string(nct_id) + ".json");
  auto study = model::ParseStudy(::trialmatch::testing::ReadFile(path));
  EXPECT_TRUE(study.ok()) << path << ": " << study.status();
  return study.ok() ? *std::move(study) : model::Study{};
}

// Compiles `text` as eligibility criteria under `section`.
inline CompiledStudy CompileIn(std::string_view text,
                               Section section = Section::kInclusion) {
  TextOptions options;
  options.default_section = section;
  return ProjectCompiler().CompileText(text, options);
}

// The text predicates (evidence from the criteria text) of a kind.
inline std::vector<Predicate> TextPredicates(const CompiledStudy& cs, Kind kind) {
  std::vector<Predicate> out;
  for (const Predicate& p : cs.predicates) {
    if (p.kind == kind && p.evidence.source == EvidenceSource::kCriteriaText) {
      out.push_back(p);
    }
  }
  return out;
}

inline std::string SpanText(std::string_view original, const Span& span) {
  if (span.begin < 0 || span.end < span.begin ||
      static_cast<size_t>(span.end) > original.size()) {
    return "<span out of range>";
  }
  return std::string(original.substr(span.begin, span.end - span.begin));
}

}  // namespace trialmatch::criteria::testing

#endif  // TRIALMATCH_TESTS_CRITERIA_CRITERIA_TEST_UTIL_H_
