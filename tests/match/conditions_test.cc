// Condition matching: exact vs MeSH-ancestry matches, complete vs
// incomplete condition lists, resolved conditions, the study-topic guard on
// exclusions, names and MeSH terms without codes.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "match/matcher.h"
#include "match_test_util.h"
#include "testing/status_matchers.h"

namespace trialmatch::match::testing {
namespace {

using ::testing::HasSubstr;

const std::vector<model::MeshTerm> kT2dAncestors = {
    kDiabetes, kEndocrine, kGlucoseMetabolism, kMetabolic};

// A study listing only type 2 diabetes: teaches the snapshot that
// descriptor's ancestry (as a registry record with one condition does).
TestStudy T2dReference() {
  TestStudy s("NCT09000001");
  s.Conditions({kType2Diabetes}, kT2dAncestors);
  s.Criterion({Age(18, std::nullopt)});
  return s;
}

TestStudy BreastReference() {
  TestStudy s("NCT09000002");
  s.Conditions({kBreastNeoplasms},
               {kNeoplasms, {"D001941", "Breast Diseases"}});
  s.Criterion({Age(18, std::nullopt)});
  return s;
}

// Matches `study` next to the reference studies; returns its result.
MatchResult MatchWithReferences(const TestStudy& study,
                                const patient::Profile& profile) {
  std::shared_ptr<const Snapshot> snap =
      SnapshotOf({study, T2dReference(), BreastReference()});
  absl::StatusOr<MatchResponse> r =
      Matcher().Match(*snap, profile, AllOptions());
  EXPECT_TRUE(r.ok()) << r.status();
  if (r.ok()) {
    for (const MatchResult& m : r->results) {
      if (m.nct_id == study.study.nct_id) return m;
    }
  }
  ADD_FAILURE() << "study not in the results";
  return MatchResult{};
}

TEST(ConditionTest, ExactMatchAcrossMeshIdSpellings) {
  TestStudy s("NCT00000001");
  s.Conditions({{"D000003924", "Diabetes Mellitus, Type 2"}}, kT2dAncestors);
  s.Criterion({Age(18, std::nullopt)});
  MatchResult r =
      MatchOne(s, PatientBuilder().Age(50).Mesh("D003924", "T2DM").Build());
  EXPECT_EQ(r.verdict, Verdict::kEligible);
  const Explanation e = ExplanationOf(r, 0);
  EXPECT_EQ(e.status, TestStatus::kMet);
  EXPECT_EQ(
      e.reason,
      "the study's conditions: Diabetes Mellitus, Type 2; patient has T2DM "
      "(MeSH D000003924)");
  ASSERT_FALSE(r.matched_conditions.empty());
  EXPECT_EQ(r.matched_conditions[0].strength, MatchStrength::kExact);
  EXPECT_EQ(r.matched_conditions[0].mesh_id, "D000003924");
  EXPECT_EQ(r.matched_conditions[0].patient_condition, "T2DM");
  EXPECT_EQ(r.matched_conditions[0].patient_condition_index, 0);
}

TEST(ConditionTest, StudyConditionBroaderThanPatients) {
  // Study about diabetes mellitus; patient has type 2 diabetes: a form of it.
  TestStudy s("NCT00000001");
  s.Conditions({kDiabetes}, {kEndocrine, kGlucoseMetabolism, kMetabolic});
  s.Criterion({Age(18, std::nullopt)});
  MatchResult r =
      MatchWithReferences(s, PatientBuilder().Age(50).Mesh("D003924").Build());
  EXPECT_EQ(r.verdict, Verdict::kEligible);
  const Explanation e = ExplanationOf(r, 0);
  EXPECT_EQ(e.status, TestStatus::kMet);
  EXPECT_THAT(e.reason,
              HasSubstr("is a form of Diabetes Mellitus (MeSH D000003920)"));
  ASSERT_FALSE(r.matched_conditions.empty());
  EXPECT_EQ(r.matched_conditions[0].strength, MatchStrength::kBroader);
}

TEST(ConditionTest, PatientConditionBroaderThanStudysIsUnknown) {
  // Study about type 2 diabetes; patient lists "diabetes mellitus": the
  // type is not known.
  TestStudy s("NCT00000001");
  s.Conditions({kType2Diabetes}, kT2dAncestors);
  s.Criterion({Age(18, std::nullopt)});
  MatchResult r =
      MatchOne(s, PatientBuilder().Age(50).Mesh("D003920").Complete().Build());
  EXPECT_EQ(r.verdict, Verdict::kPossible);
  const Explanation e = ExplanationOf(r, 0);
  EXPECT_EQ(e.status, TestStatus::kUnknown);
  EXPECT_THAT(e.reason, HasSubstr("broader than Diabetes Mellitus, Type 2"));
  ASSERT_FALSE(r.matched_conditions.empty());
  EXPECT_EQ(r.matched_conditions[0].strength, MatchStrength::kAncestor);
}

TEST(ConditionTest, MissingRequiredConditionDependsOnCompleteness) {
  TestStudy s("NCT00000001");
  s.Conditions({kBreastNeoplasms}, {kNeoplasms});
  s.Criterion({Age(18, std::nullopt)});
  // Incomplete list: the patient may simply not have listed it.
  MatchResult incomplete =
      MatchWithReferences(s, PatientBuilder().Age(50).Mesh("D003924").Build());
  EXPECT_EQ(incomplete.verdict, Verdict::kPossible);
  EXPECT_EQ(ExplanationOf(incomplete, 0).status, TestStatus::kUnknown);
  EXPECT_THAT(ExplanationOf(incomplete, 0).reason,
              HasSubstr("not declared complete"));
  // Complete list, every condition placed in MeSH: the patient does not have
  // it.
  MatchResult complete = MatchWithReferences(
      s, PatientBuilder().Age(50).Mesh("D003924").Complete().Build());
  EXPECT_EQ(complete.verdict, Verdict::kIneligible);
  const Explanation e = ExplanationOf(complete, 0);
  EXPECT_EQ(e.status, TestStatus::kNotMet);
  EXPECT_EQ(e.outcome, Outcome::kViolated);
  EXPECT_EQ(e.rule_id, "structured.conditions");
  EXPECT_EQ(e.evidence.field, "protocolSection.conditionsModule.conditions");
}

TEST(ConditionTest, CompleteListInWordsNeverLosesTheTrial) {
  // The patient's list is complete but written in words the snapshot cannot
  // place in MeSH ("sugar diabetes"): no definite "not met".
  TestStudy s("NCT00000001");
  s.Conditions({kType2Diabetes}, kT2dAncestors);
  s.Criterion({Age(18, std::nullopt)});
  MatchResult r = MatchOne(
      s, PatientBuilder().Age(50).Text("sugar diabetes").Complete().Build());
  EXPECT_EQ(r.verdict, Verdict::kPossible);
  EXPECT_EQ(ExplanationOf(r, 0).status, TestStatus::kUnknown);
  EXPECT_THAT(ExplanationOf(r, 0).reason, HasSubstr("compared by MeSH code"));
  // Nor when the study's condition has no descriptor.
  TestStudy free_text("NCT00000002");
  free_text.Conditions({{"", "Post-viral fatigue"}});
  free_text.Criterion({Age(18, std::nullopt)});
  MatchResult r2 = MatchWithReferences(
      free_text, PatientBuilder().Age(50).Mesh("D003924").Complete().Build());
  EXPECT_EQ(r2.verdict, Verdict::kPossible);
}

TEST(ConditionTest, CompleteEmptyListMeansNoConditions) {
  TestStudy s("NCT00000001");
  s.Criterion({HasCondition({Concept("stroke", {"D020521"})}, kExcl)});
  MatchResult r = MatchOne(s, PatientBuilder().Age(50).Complete().Build());
  EXPECT_EQ(r.verdict, Verdict::kEligible);
  EXPECT_EQ(ExplanationOf(r, 0).status, TestStatus::kNotMet);
}

TEST(ConditionTest, ExcludedCondition) {
  TestStudy s("NCT00000001");
  s.Criterion({HasCondition({Concept("stroke", {"D020521"})}, kExcl)}, -1,
              false, "No history of stroke");
  // Has it: excluded.
  MatchResult has =
      MatchOne(s, PatientBuilder().Mesh("D020521", "CVA 2019").Build());
  EXPECT_EQ(has.verdict, Verdict::kIneligible);
  EXPECT_EQ(ExplanationOf(has, 0).reason,
            "excludes stroke; patient has CVA 2019 (MeSH D000020521)");
  // Absent from a complete list: not excluded.
  MatchResult absent = MatchWithReferences(
      s, PatientBuilder().Mesh("D003924").Complete().Build());
  EXPECT_EQ(absent.verdict, Verdict::kEligible);
  EXPECT_EQ(ExplanationOf(absent, 0).status, TestStatus::kNotMet);
  // Absent from an incomplete list: unknown.
  MatchResult unknown =
      MatchWithReferences(s, PatientBuilder().Mesh("D003924").Build());
  EXPECT_EQ(unknown.verdict, Verdict::kPossible);
  EXPECT_EQ(ExplanationOf(unknown, 0).status, TestStatus::kUnknown);
}

TEST(ConditionTest, ResolvedConditionCountsOnlyForHistoryWording) {
  const patient::Profile resolved_stroke =
      PatientBuilder()
          .Mesh("D020521", "stroke", patient::ClinicalStatus::kResolved)
          .Build();
  TestStudy history("NCT00000001");
  history.Criterion({HasCondition({Concept("stroke", {"D020521"})}, kExcl)}, -1,
                    false, "History of stroke");
  EXPECT_EQ(MatchOne(history, resolved_stroke).verdict, Verdict::kIneligible);

  TestStudy active("NCT00000001");
  active.Criterion({HasCondition({Concept("stroke", {"D020521"})}, kExcl)}, -1,
                   false, "Acute stroke");
  MatchResult r = MatchOne(active, resolved_stroke);
  EXPECT_EQ(r.verdict, Verdict::kPossible);
  EXPECT_THAT(ExplanationOf(r, 0).reason, HasSubstr("is resolved"));
}

TEST(ConditionTest, ExclusionOfTheStudysOwnTopicNeedsReview) {
  // A breast cancer study excluding "other malignancy" (read as Neoplasms):
  // the patient's breast cancer is what the study is about, so the broader
  // exclusion cannot be applied to it; a second cancer can.
  TestStudy s("NCT00000001");
  s.Conditions({kBreastNeoplasms}, {kNeoplasms});
  s.Criterion({HasCondition({Concept("malignancy", {"D009369"})}, kExcl)}, -1,
              false, "Other malignancy within 5 years");
  MatchResult topic = MatchWithReferences(
      s, PatientBuilder().Mesh("D001943", "breast cancer").Build());
  EXPECT_EQ(topic.verdict, Verdict::kPossible);
  EXPECT_THAT(ExplanationOf(topic, 1).reason,
              HasSubstr("what the study is about"));

  // Melanoma (D008545) under Neoplasms, known from a one-condition study.
  TestStudy melanoma_ref("NCT09000003");
  melanoma_ref.Conditions({{"D008545", "Melanoma"}}, {kNeoplasms});
  std::shared_ptr<const Snapshot> snap =
      SnapshotOf({s, melanoma_ref, BreastReference()});
  absl::StatusOr<MatchResponse> r =
      Matcher().Match(*snap,
                      PatientBuilder()
                          .Mesh("D001943", "breast cancer")
                          .Mesh("D008545", "melanoma")
                          .Build(),
                      AllOptions());
  ASSERT_OK(r);
  ASSERT_FALSE(r->results.empty());
  const MatchResult* m = nullptr;
  for (const MatchResult& x : r->results) {
    if (x.nct_id == "NCT00000001") m = &x;
  }
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->verdict, Verdict::kIneligible);
  EXPECT_THAT(ExplanationOf(*m, 1).reason,
              HasSubstr("melanoma is a form of malignancy"));
}

TEST(ConditionTest, NameMatchWithoutCodes) {
  TestStudy s("NCT00000001");
  s.Criterion({HasCondition({Concept("long covid")}, kIncl)});
  MatchResult r = MatchOne(s, PatientBuilder().Text("Long COVID").Build());
  EXPECT_EQ(ExplanationOf(r, 0).status, TestStatus::kMet);
  EXPECT_THAT(ExplanationOf(r, 0).reason, HasSubstr("(same name)"));
  EXPECT_EQ(r.verdict, Verdict::kEligible);
}

TEST(ConditionTest, MeshTermInTextFindsTheDescriptor) {
  // No code, but the text is the MeSH term the registry uses.
  TestStudy s("NCT00000001");
  s.Conditions({kType2Diabetes}, kT2dAncestors);
  s.Criterion({Age(18, std::nullopt)});
  MatchResult r = MatchOne(
      s, PatientBuilder().Age(40).Text("diabetes mellitus type 2").Build());
  ASSERT_FALSE(r.matched_conditions.empty());
  EXPECT_EQ(r.matched_conditions[0].strength, MatchStrength::kExact);
  EXPECT_EQ(r.verdict, Verdict::kEligible);
}

TEST(ConditionTest, RequiredConditionFromCriteriaText) {
  // An inclusion criterion naming a condition counts like the conditions
  // list, and makes the study relevant.
  TestStudy s("NCT00000001");
  s.Criterion({HasCondition(
      {Concept("type 2 diabetes", {"D003924"}, {"D003920"})}, kIncl)});
  MatchResult r = MatchOne(s, PatientBuilder().Mesh("D003924").Build());
  EXPECT_EQ(ExplanationOf(r, 0).status, TestStatus::kMet);
  ASSERT_EQ(r.matched_conditions.size(), 1u);
  EXPECT_TRUE(r.matched_conditions[0].from_criteria);
}

}  // namespace
}  // namespace trialmatch::match::testing
