// Every study of the recorded corpus compiles into a well-formed
// CompiledStudy: spans in range and matching their evidence text, every
// criterion with at least one predicate, a consistent tree, and a JSON form
// that reads back identically.
#include <filesystem>
#include <string>
#include <vector>

#include "criteria/json.h"
#include "criteria/stats.h"
#include "criteria_test_util.h"
#include "gtest/gtest.h"

namespace trialmatch::criteria {
namespace {

using testing::ProjectCompiler;
using testing::SpanText;

std::vector<std::filesystem::path> StudyFiles() {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(::trialmatch::testing::StudiesDir())) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(CorpusTest, EveryStudyCompilesWellFormed) {
  TM_REQUIRE_SHARED_DATA();
  const std::vector<std::filesystem::path> files = StudyFiles();
  ASSERT_GE(files.size(), 1000u);
  CoverageStats stats;
  for (const auto& path : files) {
    auto study = model::ParseStudy(::trialmatch::testing::ReadFile(path));
    ASSERT_TRUE(study.ok()) << path;
    const std::string& original = study->eligibility.criteria;
    const CompiledStudy cs = ProjectCompiler().Compile(*study);
    SCOPED_TRACE(study->nct_id);
    stats.Add(cs);
    const auto nc = static_cast<int>(cs.criteria.size());
    const auto np = static_cast<int>(cs.predicates.size());
    for (int i = 0; i < nc; ++i) {
      const Criterion& c = cs.criteria[i];
      ASSERT_FALSE(c.predicates.empty()) << "criterion " << i << ": " << c.text;
      ASSERT_GE(c.span.begin, 0);
      ASSERT_LE(c.span.begin, c.span.end);
      ASSERT_LE(c.span.end, static_cast<int32_t>(original.size()));
      ASSERT_GE(c.parent, -1);
      ASSERT_LT(c.parent, nc);
      if (c.parent >= 0) {
        const Criterion& parent = cs.criteria[c.parent];
        EXPECT_EQ(c.depth, parent.depth + 1);
        EXPECT_NE(std::find(parent.children.begin(), parent.children.end(), i),
                  parent.children.end());
      }
      for (int child : c.children) {
        ASSERT_GE(child, 0);
        ASSERT_LT(child, nc);
        EXPECT_EQ(cs.criteria[child].parent, i);
      }
      for (int pi : c.predicates) {
        ASSERT_GE(pi, 0);
        ASSERT_LT(pi, np);
        EXPECT_EQ(cs.predicates[pi].criterion, i);
      }
      // An any-of group has alternatives to choose from.
      if (c.any_of) {
        EXPECT_FALSE(c.children.empty()) << c.text;
      }
    }
    for (const Predicate& p : cs.predicates) {
      EXPECT_FALSE(p.rule_id.empty());
      if (p.evidence.source == EvidenceSource::kCriteriaText) {
        ASSERT_GE(p.criterion, 0);
        EXPECT_EQ(SpanText(original, p.evidence.span), p.evidence.text);
        // The evidence lies inside its criterion's text.
        const Criterion& c = cs.criteria[p.criterion];
        EXPECT_GE(p.evidence.span.begin, c.span.begin) << p.rule_id;
        EXPECT_LE(p.evidence.span.end, c.span.end) << p.rule_id;
      } else {
        EXPECT_EQ(p.criterion, -1);
      }
      if (p.low && p.high) {
        EXPECT_LE(*p.low, *p.high) << p.rule_id;
      }
      if (p.kind == Kind::kCondition) {
        EXPECT_FALSE(p.concepts.empty());
      }
    }
    auto back = FromJson(ToJson(cs));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(ToJson(*back), ToJson(cs));
  }
  // The corpus is mostly read: a regression guard, not a goal.
  EXPECT_GT(stats.criteria(), 20000);
  EXPECT_GT(stats.criteria_read() + stats.criteria_partial(), stats.criteria() / 4);
  EXPECT_GT(stats.kind(Kind::kLab).from_text, 1000);
  EXPECT_GT(stats.kind(Kind::kCondition).from_text, 1000);
  EXPECT_GT(stats.kind(Kind::kPregnancy).from_text, 400);
}

}  // namespace
}  // namespace trialmatch::criteria
