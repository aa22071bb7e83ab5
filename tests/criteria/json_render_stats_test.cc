#include <string>

#include "criteria/json.h"
#include "criteria/render.h"
#include "criteria/stats.h"
#include "criteria_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"

namespace trialmatch::criteria {
namespace {

using ::testing::HasSubstr;
using ::trialmatch::testing::StatusIs;
using testing::LoadStudy;
using testing::ProjectCompiler;

TEST(JsonTest, RoundTripKeepsEverything) {
  const CompiledStudy cs = ProjectCompiler().Compile(LoadStudy("NCT02227251"));
  ASSERT_FALSE(cs.criteria.empty());
  const std::string json = ToJson(cs);
  auto back = FromJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->nct_id, "NCT02227251");
  EXPECT_EQ(back->rules_version, cs.rules_version);
  ASSERT_EQ(back->criteria.size(), cs.criteria.size());
  ASSERT_EQ(back->predicates.size(), cs.predicates.size());
  for (size_t i = 0; i < cs.predicates.size(); ++i) {
    const Predicate& a = cs.predicates[i];
    const Predicate& b = back->predicates[i];
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.polarity, b.polarity);
    EXPECT_EQ(a.informational, b.informational);
    EXPECT_EQ(a.rule_id, b.rule_id);
    EXPECT_EQ(a.low, b.low);
    EXPECT_EQ(a.high, b.high);
    EXPECT_EQ(a.low_inclusive, b.low_inclusive);
    EXPECT_EQ(a.evidence.span.begin, b.evidence.span.begin);
    EXPECT_EQ(a.evidence.text, b.evidence.text);
    EXPECT_EQ(a.concepts.size(), b.concepts.size());
  }
  EXPECT_EQ(ToJson(*back), json);
}

TEST(JsonTest, CompactOmitsDefaults) {
  CompiledStudy cs;
  cs.nct_id = "NCT00000000";
  Predicate p;
  p.kind = Kind::kAge;
  p.rule_id = "age.bound";
  p.low = 18;
  cs.predicates.push_back(p);
  const nlohmann::json j = ToJsonValue(cs);
  const nlohmann::json& pj = j["predicates"][0];
  EXPECT_EQ(pj["kind"], "AGE");
  EXPECT_EQ(pj["low"], 18);
  EXPECT_FALSE(pj.contains("high"));
  EXPECT_FALSE(pj.contains("low_inclusive"));
  EXPECT_FALSE(pj.contains("informational"));
  EXPECT_EQ(j["format"], kJsonFormat);
}

TEST(JsonTest, RejectsBadInputWithPointer) {
  EXPECT_THAT(FromJson("not json"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(FromJson("{\"format\": 99}"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("/format")));
  EXPECT_THAT(FromJson(R"({"format":1,"predicates":[{"kind":"NOPE"}]})"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("/predicates/0/kind")));
  EXPECT_THAT(FromJson(R"({"format":1,"criteria":[{"predicates":[3]}]})"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("/criteria/0/predicates")));
  EXPECT_THAT(FromJson(R"({"format":1,"predicates":[{"criterion":5}]})"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("out of range")));
  EXPECT_THAT(FromJson(R"({"format":1,"criteria":[{"span":[5,2]}]})"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("/criteria/0/span")));
}

TEST(JsonTest, EnumNames) {
  EXPECT_EQ(KindName(Kind::kPerformanceStatus), "PERFORMANCE_STATUS");
  EXPECT_EQ(ParseKind("BREASTFEEDING"), Kind::kBreastfeeding);
  EXPECT_FALSE(ParseKind("bogus").has_value());
}

TEST(RenderTest, MarksEvidenceAndDescribesPredicates) {
  const std::string text =
      "Inclusion Criteria:\n\n* Age \\>= 18 years\n\nExclusion Criteria:\n\n"
      "* Pregnant or breastfeeding women\n* Able to swallow tablets";
  const CompiledStudy cs = ProjectCompiler().CompileText(text);
  const std::string out = Render(cs, text);
  EXPECT_THAT(out, HasSubstr("INCLUSION"));
  EXPECT_THAT(out, HasSubstr("[[Age \\>= 18 years]]"));
  EXPECT_THAT(out, HasSubstr("requires: age >= 18 years  [age.bound]"));
  EXPECT_THAT(out, HasSubstr("[[Pregnant]] or [[breastfeeding]] women"));
  EXPECT_THAT(out, HasSubstr("excludes if: is pregnant"));
  EXPECT_THAT(out, HasSubstr("needs review  [text.unparsed]"));
  RenderOptions ansi;
  ansi.ansi = true;
  EXPECT_THAT(Render(cs, text, ansi), HasSubstr("\x1b[1;33mPregnant\x1b[0m"));
}

TEST(RenderTest, IgnoresSpansOutsideTheGivenText) {
  const CompiledStudy cs = ProjectCompiler().CompileText("* Hemoglobin >= 9 g/dL");
  EXPECT_THAT(Render(cs, "short"), HasSubstr("Hemoglobin >= 9 g/dL"));
}

TEST(RenderTest, DescribePredicate) {
  Predicate p;
  p.kind = Kind::kLab;
  p.quantity = "ast";
  p.high = 2.5;
  p.relative_to_uln = true;
  p.unit = "xULN";
  p.polarity = Polarity::kInclusion;
  EXPECT_EQ(DescribePredicate(p), "requires: ast <= 2.5 x ULN");
  p.polarity = Polarity::kExclusion;
  p.low = 1;
  p.low_inclusive = false;
  EXPECT_EQ(DescribePredicate(p), "excludes if: ast in (1, 2.5] x ULN");
}

TEST(StatsTest, CountsKindsAndCriteria) {
  CoverageStats stats;
  stats.Add(ProjectCompiler().CompileText(
      "* Hemoglobin >= 9 g/dL\n* Able to swallow tablets\n* Uncontrolled hypertension\n"
      "* Signed informed consent",
      TextOptions{Section::kInclusion}));
  EXPECT_EQ(stats.studies(), 1);
  EXPECT_EQ(stats.criteria(), 4);
  EXPECT_EQ(stats.criteria_read(), 1);           // hemoglobin
  EXPECT_EQ(stats.criteria_unparsed(), 1);       // swallow
  EXPECT_EQ(stats.criteria_partial(), 1);        // uncontrolled hypertension
  EXPECT_EQ(stats.criteria_no_requirement(), 1); // consent
  EXPECT_EQ(stats.kind(Kind::kLab).predicates, 1);
  CoverageStats merged;
  merged.Merge(stats);
  merged.Merge(stats);
  EXPECT_EQ(merged.criteria(), 8);
  EXPECT_THAT(merged.Render(), HasSubstr("lab.hemoglobin.bound"));
  EXPECT_EQ(merged.ToJsonValue()["kinds"]["LAB"]["predicates"], 2);
}

}  // namespace
}  // namespace trialmatch::criteria
