// Per-kind evaluation semantics (docs/match.md "Semantics per kind") on
// hand-built compiled studies: MET / NOT_MET / UNKNOWN, outcomes, reasons.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "match/matcher.h"
#include "match_test_util.h"
#include "testing/status_matchers.h"

namespace trialmatch::match::testing {
namespace {

using patient::Tristate;
using ::testing::HasSubstr;

// An explanation with the result its views (reason, rule id, evidence)
// point into: an Explanation must not outlive its result (match_types.h).
struct HeldExplanation : Explanation {
  HeldExplanation(MatchResult r, int index)
      : Explanation(ExplanationOf(r, index)), result(std::move(r)) {}
  MatchResult result;
};

// A study with one criterion holding `p`; returns the explanation of `p`.
HeldExplanation EvalOne(Predicate p, const patient::Profile& profile,
                        const Matcher& matcher = Matcher()) {
  TestStudy s("NCT00000001");
  s.Criterion({std::move(p)});
  return HeldExplanation(MatchOne(s, profile, AllOptions(), matcher), 0);
}

HeldExplanation EvalStructured(Predicate p, const patient::Profile& profile) {
  TestStudy s("NCT00000001");
  s.Structured(std::move(p));
  return HeldExplanation(MatchOne(s, profile), 0);
}

// --- Age --------------------------------------------------------------------

TEST(AgeTest, MinimumAgeMetWithReason) {
  HeldExplanation e = EvalStructured(Age(18, std::nullopt, kIncl, "18 Years"),
                                     PatientBuilder().Age(54.4).Build());
  EXPECT_EQ(e.status, TestStatus::kMet);
  EXPECT_EQ(e.outcome, Outcome::kSatisfied);
  EXPECT_EQ(e.reason, "requires age ≥ 18 years; patient is 54 years old");
}

TEST(AgeTest, EighteenthBirthdayCounts) {
  // Born 2007-06-15: exactly 18.0 on the reference date.
  EXPECT_EQ(
      EvalStructured(Age(18, std::nullopt, kIncl, "18 Years"),
                     PatientBuilder().Born(absl::CivilDay(2007, 6, 15)).Build())
          .status,
      TestStatus::kMet);
  EXPECT_EQ(
      EvalStructured(Age(18, std::nullopt, kIncl, "18 Years"),
                     PatientBuilder().Born(absl::CivilDay(2007, 6, 16)).Build())
          .status,
      TestStatus::kNotMet);
}

TEST(AgeTest, MaximumAgeInCompletedYears) {
  // "maximumAge 65 Years" admits every 65-year-old, up to the 66th birthday.
  const Predicate max65 = Age(std::nullopt, 65, kIncl, "65 Years");
  EXPECT_EQ(EvalStructured(max65, PatientBuilder().Age(65.95).Build()).status,
            TestStatus::kMet);
  EXPECT_EQ(EvalStructured(max65, PatientBuilder().Age(66.0).Build()).status,
            TestStatus::kNotMet);
  EXPECT_EQ(
      EvalStructured(max65,
                     PatientBuilder().Born(absl::CivilDay(1959, 6, 16)).Build())
          .status,
      TestStatus::kMet);  // one day before the 66th birthday
}

TEST(AgeTest, MonthBoundsToleratePartialMonths) {
  // minimumAge "6 Months" = 0.5 years. A baby born 2024-12-15 is exactly six
  // calendar months old on 2025-06-15 (182 days: 0.4986 years).
  const Predicate min6m = Age(0.5, std::nullopt, kIncl, "6 Months");
  EXPECT_EQ(
      EvalStructured(
          min6m, PatientBuilder().Born(absl::CivilDay(2024, 12, 15)).Build())
          .status,
      TestStatus::kMet);
  // Two weeks short of six months: not within the tolerance.
  EXPECT_EQ(
      EvalStructured(
          min6m, PatientBuilder().Born(absl::CivilDay(2024, 12, 29)).Build())
          .status,
      TestStatus::kNotMet);
  // maximumAge "6 Months": 6 months and 20 days is still "6 months old";
  // 7 months and 5 days is not.
  const Predicate max6m = Age(std::nullopt, 0.5, kIncl, "6 Months");
  EXPECT_EQ(
      EvalStructured(
          max6m, PatientBuilder().Born(absl::CivilDay(2024, 11, 25)).Build())
          .status,
      TestStatus::kMet);
  EXPECT_EQ(
      EvalStructured(
          max6m, PatientBuilder().Born(absl::CivilDay(2024, 11, 10)).Build())
          .status,
      TestStatus::kNotMet);
}

TEST(AgeTest, OlderThanIsDecidedOnlyWhereReadingsAgree) {
  Predicate older18 = Age(18, std::nullopt, kIncl, "18 years");
  older18.low_inclusive = false;
  EXPECT_EQ(EvalOne(older18, PatientBuilder().Age(17).Build()).status,
            TestStatus::kNotMet);
  EXPECT_EQ(EvalOne(older18, PatientBuilder().Age(18.0).Build()).status,
            TestStatus::kNotMet);
  HeldExplanation mid = EvalOne(older18, PatientBuilder().Age(18.5).Build());
  EXPECT_EQ(mid.status, TestStatus::kUnknown);
  EXPECT_THAT(mid.reason, HasSubstr("may or may not include"));
  EXPECT_EQ(EvalOne(older18, PatientBuilder().Age(19.2).Build()).status,
            TestStatus::kMet);
}

TEST(AgeTest, AbsentBoundsAreUnbounded) {
  EXPECT_EQ(
      EvalOne(Age(std::nullopt, std::nullopt), PatientBuilder().Age(3).Build())
          .status,
      TestStatus::kMet);
  EXPECT_EQ(
      EvalOne(Age(18, std::nullopt), PatientBuilder().Age(99).Build()).status,
      TestStatus::kMet);
  EXPECT_EQ(
      EvalOne(Age(std::nullopt, 75), PatientBuilder().Age(0.1).Build()).status,
      TestStatus::kMet);
}

TEST(AgeTest, ExclusionAgeBelow) {
  // Exclusion "age < 18": the test holds for a 17-year-old, who is excluded.
  Predicate under18 = Age(std::nullopt, 18, kExcl);
  under18.high_inclusive = false;
  HeldExplanation e = EvalOne(under18, PatientBuilder().Age(17.5).Build());
  EXPECT_EQ(e.status, TestStatus::kMet);
  EXPECT_EQ(e.outcome, Outcome::kViolated);
  EXPECT_EQ(e.reason, "excludes age < 18 years; patient is 17 years old");
  HeldExplanation adult = EvalOne(under18, PatientBuilder().Age(18).Build());
  EXPECT_EQ(adult.status, TestStatus::kNotMet);
  EXPECT_EQ(adult.outcome, Outcome::kSatisfied);
}

TEST(AgeTest, MissingAgeIsUnknown) {
  HeldExplanation e =
      EvalStructured(Age(18, 65, kIncl, "18 Years"), PatientBuilder().Build());
  EXPECT_EQ(e.status, TestStatus::kUnknown);
  EXPECT_THAT(e.reason, HasSubstr("age is not known"));
}

// --- Labs -------------------------------------------------------------------

TEST(LabTest, ComparesCanonicalValues) {
  // 121 g/L is 12.1 g/dL.
  const Predicate hb = Lab("hemoglobin", 9, std::nullopt, "g/dL");
  HeldExplanation ok =
      EvalOne(hb, PatientBuilder().Lab("718-7", 121, "g/L").Build());
  EXPECT_EQ(ok.status, TestStatus::kMet);
  EXPECT_EQ(ok.reason,
            "requires hemoglobin ≥ 9 g/dL; patient's hemoglobin is 12.1 g/dL");
  EXPECT_EQ(
      EvalOne(hb, PatientBuilder().Lab("718-7", 85, "g/L").Build()).status,
      TestStatus::kNotMet);
}

TEST(LabTest, BoundsInclusiveAndExclusive) {
  // 100,000 /uL = 100 x10^9/L exactly at the bound.
  const patient::Profile p =
      PatientBuilder().Lab("777-3", 100000, "/uL").Build();
  EXPECT_EQ(EvalOne(Lab("platelets", 100, std::nullopt, "10^9/L"), p).status,
            TestStatus::kMet);
  Predicate gt = Lab("platelets", 100, std::nullopt, "10^9/L");
  gt.low_inclusive = false;
  EXPECT_EQ(EvalOne(gt, p).status, TestStatus::kNotMet);
}

TEST(LabTest, MissingValueIsUnknown) {
  HeldExplanation e =
      EvalOne(Lab("hba1c", std::nullopt, 10, "%"),
              PatientBuilder().Lab("718-7", 121, "g/L").Build());
  EXPECT_EQ(e.status, TestStatus::kUnknown);
  EXPECT_EQ(e.reason, "requires HbA1c ≤ 10%; no HbA1c value in the profile");
}

TEST(LabTest, NonCanonicalPredicateUnitIsUnknown) {
  HeldExplanation e =
      EvalOne(Lab("hemoglobin", 90, std::nullopt, "g/L"),
              PatientBuilder().Lab("718-7", 121, "g/L").Build());
  EXPECT_EQ(e.status, TestStatus::kUnknown);
}

TEST(LabTest, UlnBoundsNeedAReferenceUln) {
  const patient::Profile p = PatientBuilder().Lab("1742-6", 50, "U/L").Build();
  HeldExplanation unknown = EvalOne(Uln("alt", 2.5), p);
  EXPECT_EQ(unknown.status, TestStatus::kUnknown);
  EXPECT_EQ(unknown.reason,
            "requires ALT ≤ 2.5 × ULN; patient's ALT is 50 U/L but the upper "
            "limit of normal is not known");

  absl::StatusOr<Matcher> m = Matcher::Create({.reference_uln = {{"alt", 40}}});
  ASSERT_OK(m);
  HeldExplanation decided = EvalOne(Uln("alt", 2.5), p, *m);
  EXPECT_EQ(decided.status, TestStatus::kMet);  // 1.25 x ULN
  EXPECT_THAT(decided.reason,
              HasSubstr("50 U/L = 1.25 × ULN (reference ULN 40 U/L)"));
  EXPECT_EQ(EvalOne(Uln("alt", 2.5),
                    PatientBuilder().Lab("1742-6", 120, "U/L").Build(), *m)
                .status,
            TestStatus::kNotMet);  // 3 x ULN
  // A reference ULN for another quantity does not help.
  EXPECT_EQ(EvalOne(Uln("ast", 2.5),
                    PatientBuilder().Lab("1920-8", 50, "U/L").Build(), *m)
                .status,
            TestStatus::kUnknown);
}

// --- Performance status -----------------------------------------------------

TEST(PerformanceTest, EcogFromKarnofsky) {
  const Predicate ecog01 = Performance("ecog", std::nullopt, 1);
  HeldExplanation e = EvalOne(ecog01, PatientBuilder().Karnofsky(80).Build());
  EXPECT_EQ(e.status, TestStatus::kMet);
  EXPECT_EQ(e.reason,
            "requires ECOG ≤ 1; patient's Karnofsky 80 corresponds to ECOG 1");
  EXPECT_EQ(EvalOne(ecog01, PatientBuilder().Karnofsky(90).Build()).status,
            TestStatus::kMet);
  EXPECT_EQ(EvalOne(ecog01, PatientBuilder().Karnofsky(60).Build()).status,
            TestStatus::kNotMet);
}

TEST(PerformanceTest, KarnofskyFromEcogOnlyWhenUnambiguous) {
  const Predicate kps70 = Performance("karnofsky", 70, std::nullopt);
  EXPECT_EQ(EvalOne(kps70, PatientBuilder().Ecog(1).Build()).status,
            TestStatus::kMet);
  EXPECT_EQ(EvalOne(kps70, PatientBuilder().Ecog(2).Build()).status,
            TestStatus::kNotMet);
  // ECOG 2 ~ Karnofsky 50-60: "Karnofsky >= 60" holds for 60, not for 50.
  HeldExplanation e = EvalOne(Performance("karnofsky", 60, std::nullopt),
                              PatientBuilder().Ecog(2).Build());
  EXPECT_EQ(e.status, TestStatus::kUnknown);
  EXPECT_THAT(e.reason, HasSubstr("Karnofsky 50–60, on both sides"));
}

TEST(PerformanceTest, DirectScoreWins) {
  EXPECT_EQ(EvalOne(Performance("ecog", std::nullopt, 1),
                    PatientBuilder().Ecog(2).Karnofsky(80).Build())
                .status,
            TestStatus::kNotMet);
  EXPECT_EQ(
      EvalOne(Performance("ecog", std::nullopt, 1), PatientBuilder().Build())
          .status,
      TestStatus::kUnknown);
}

// --- Sex, pregnancy, breastfeeding, healthy volunteers
// ------------------------

TEST(SexTest, RequiredSex) {
  const Predicate female = SexIs(model::Sex::kFemale);
  EXPECT_EQ(EvalStructured(female,
                           PatientBuilder().Sex(patient::Sex::kFemale).Build())
                .status,
            TestStatus::kMet);
  HeldExplanation male =
      EvalStructured(female, PatientBuilder().Sex(patient::Sex::kMale).Build());
  EXPECT_EQ(male.status, TestStatus::kNotMet);
  EXPECT_EQ(male.reason, "requires female participants; patient is male");
  EXPECT_EQ(EvalStructured(female, PatientBuilder().Build()).status,
            TestStatus::kUnknown);
}

TEST(PregnancyTest, Tristates) {
  const Predicate pregnant = Simple(Kind::kPregnancy, kExcl);
  const auto female = [] {
    return PatientBuilder().Sex(patient::Sex::kFemale);
  };
  HeldExplanation yes =
      EvalOne(pregnant, female().Pregnant(Tristate::kYes).Build());
  EXPECT_EQ(yes.status, TestStatus::kMet);
  EXPECT_EQ(yes.outcome, Outcome::kViolated);
  EXPECT_EQ(yes.reason, "excludes pregnant patients; patient is pregnant");
  EXPECT_EQ(EvalOne(pregnant, female().Pregnant(Tristate::kNo).Build()).outcome,
            Outcome::kSatisfied);
  EXPECT_EQ(EvalOne(pregnant, female().Build()).status, TestStatus::kUnknown);
  // A male patient is not pregnant.
  HeldExplanation male =
      EvalOne(pregnant, PatientBuilder().Sex(patient::Sex::kMale).Build());
  EXPECT_EQ(male.status, TestStatus::kNotMet);
  EXPECT_EQ(male.reason, "excludes pregnant patients; patient is male");
}

TEST(PregnancyTest, Breastfeeding) {
  const Predicate bf = Simple(Kind::kBreastfeeding, kExcl);
  EXPECT_EQ(EvalOne(bf, PatientBuilder().Breastfeeding(Tristate::kYes).Build())
                .status,
            TestStatus::kMet);
  EXPECT_EQ(
      EvalOne(bf, PatientBuilder().Breastfeeding(Tristate::kNo).Build()).status,
      TestStatus::kNotMet);
  EXPECT_EQ(EvalOne(bf, PatientBuilder().Build()).status, TestStatus::kUnknown);
}

TEST(HealthyVolunteersTest, Flag) {
  const Predicate no_hv = HealthyVolunteers(false);
  HeldExplanation hv = EvalStructured(
      no_hv, PatientBuilder().HealthyVolunteer(Tristate::kYes).Build());
  EXPECT_EQ(hv.status, TestStatus::kNotMet);
  EXPECT_EQ(hv.outcome, Outcome::kViolated);
  EXPECT_EQ(EvalStructured(
                no_hv, PatientBuilder().HealthyVolunteer(Tristate::kNo).Build())
                .status,
            TestStatus::kMet);
  EXPECT_EQ(EvalStructured(no_hv, PatientBuilder().Build()).status,
            TestStatus::kUnknown);
  // A patient who lists conditions is not a healthy volunteer.
  EXPECT_EQ(
      EvalStructured(no_hv, PatientBuilder().Text("asthma").Build()).status,
      TestStatus::kMet);
  // A study accepting healthy volunteers restricts nobody.
  EXPECT_EQ(
      EvalStructured(HealthyVolunteers(true),
                     PatientBuilder().HealthyVolunteer(Tristate::kYes).Build())
          .status,
      TestStatus::kMet);
}

// --- Other kinds
// --------------------------------------------------------------

TEST(OtherTest, UnparsedNeedsReview) {
  HeldExplanation e =
      EvalOne(Simple(Kind::kOther, kIncl), PatientBuilder().Age(40).Build());
  EXPECT_EQ(e.status, TestStatus::kUnknown);
  EXPECT_EQ(e.outcome, Outcome::kUnknown);
  EXPECT_EQ(e.reason, "needs review; criterion not machine-readable");
}

TEST(OtherTest, InformationalNeverDecides) {
  TestStudy s("NCT00000001");
  s.Criterion({Simple(Kind::kContraception, kIncl, /*informational=*/true),
               Simple(Kind::kOther, kIncl, /*informational=*/true),
               Age(18, std::nullopt)});
  MatchResult r = MatchOne(s, PatientBuilder().Age(30).Build());
  EXPECT_EQ(r.verdict, Verdict::kEligible);
  EXPECT_EQ(ExplanationOf(r, 0).outcome, Outcome::kInformational);
  EXPECT_EQ(ExplanationOf(r, 1).outcome, Outcome::kInformational);
  EXPECT_THAT(ExplanationOf(r, 0).reason, HasSubstr("for information: "));
  EXPECT_EQ(r.counts.informational, 2);
  EXPECT_EQ(r.counts.satisfied, 1);
}

// --- Missing data never excludes ---------------------------------------------

struct MissingCase {
  std::string name;
  Predicate predicate;
  bool structured = false;
};

std::vector<MissingCase> MissingCases() {
  std::vector<MissingCase> c;
  for (Polarity pol : {kIncl, kExcl}) {
    const std::string tag = pol == kIncl ? "incl_" : "excl_";
    c.push_back({tag + "age", Age(18, 65, pol, "18 Years")});
    c.push_back({tag + "age_months", Age(0.5, std::nullopt, pol, "6 Months")});
    c.push_back({tag + "sex_female", SexIs(model::Sex::kFemale, pol)});
    c.push_back({tag + "sex_male", SexIs(model::Sex::kMale, pol)});
    c.push_back({tag + "lab", Lab("hemoglobin", 9, std::nullopt, "g/dL", pol)});
    c.push_back({tag + "lab_uln", Uln("ast", 2.5, pol)});
    c.push_back({tag + "ecog", Performance("ecog", std::nullopt, 1, pol)});
    c.push_back(
        {tag + "karnofsky", Performance("karnofsky", 70, std::nullopt, pol)});
    c.push_back({tag + "pregnancy", Simple(Kind::kPregnancy, pol)});
    c.push_back({tag + "breastfeeding", Simple(Kind::kBreastfeeding, pol)});
    c.push_back({tag + "contraception", Simple(Kind::kContraception, pol)});
    c.push_back({tag + "other", Simple(Kind::kOther, pol)});
    c.push_back({tag + "condition_mesh",
                 HasCondition({Concept("stroke", {"D020521"})}, pol)});
    c.push_back(
        {tag + "condition_text", HasCondition({Concept("long covid")}, pol)});
  }
  c.push_back({"healthy_volunteers_no", HealthyVolunteers(false), true});
  c.push_back({"healthy_volunteers_yes", HealthyVolunteers(true), true});
  Predicate study_conditions =
      HasCondition({Concept("Diabetes Mellitus, Type 2", {"D003924"})}, kIncl);
  study_conditions.rule_id = "structured.conditions";
  c.push_back({"study_conditions", study_conditions, true});
  return c;
}

// Profiles that lack the facts the predicates test: an empty one, and one
// with other facts (age, sex, an incomplete condition list) but no labs,
// scores, pregnancy, breastfeeding or volunteer status.
std::vector<patient::Profile> MissingProfiles() {
  return {PatientBuilder().Build(), PatientBuilder()
                                        .Text("seasonal allergy")
                                        .Lab("2345-7", 99, "mg/dL")
                                        .Build()};
}

TEST(MissingDataTest, NeverNotMetNeverIneligible) {
  for (const patient::Profile& profile : MissingProfiles()) {
    for (const MissingCase& mc : MissingCases()) {
      SCOPED_TRACE(mc.name +
                   (profile.conditions.empty() ? " (empty)" : " (partial)"));
      TestStudy s("NCT00000001");
      if (mc.structured) {
        s.Structured(mc.predicate);
      } else {
        s.Criterion({mc.predicate});
      }
      MatchResult r = MatchOne(s, profile);
      EXPECT_NE(r.verdict, Verdict::kIneligible);
      const Explanation e = ExplanationOf(r, 0);
      EXPECT_NE(e.outcome, Outcome::kViolated) << e.reason;
      // A trivially satisfied test (healthy volunteers accepted; a study
      // that names its conditions and a patient who lists one) may be MET;
      // nothing that depends on a missing fact is NOT_MET.
      EXPECT_NE(e.status, TestStatus::kNotMet) << e.reason;
      if (mc.predicate.polarity == kExcl) {
        EXPECT_EQ(e.status, TestStatus::kUnknown) << e.reason;
      }
    }
  }
}

}  // namespace
}  // namespace trialmatch::match::testing
