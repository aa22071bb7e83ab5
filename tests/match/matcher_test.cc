// Matcher: verdict paths, any-of groups, ranking and tie-breaks, top_k,
// verdict and status filters, distance filter and nearest recruiting site,
// cancellation, option validation, concurrent use.
#include "match/matcher.h"

#include <atomic>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "match/geo.h"
#include "match_test_util.h"
#include "testing/status_matchers.h"

namespace trialmatch::match::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::trialmatch::testing::StatusIs;

std::vector<std::string> Ids(const MatchResponse& r) {
  std::vector<std::string> ids;
  for (const MatchResult& m : r.results) ids.emplace_back(m.nct_id);
  return ids;
}

// --- Verdict paths
// --------------------------------------------------------------

TEST(VerdictTest, EligibleWhenEverythingDecidedInFavour) {
  TestStudy s("NCT00000001");
  s.Structured(Age(18, 75, kIncl, "18 Years"));
  s.Criterion({Lab("hemoglobin", 9, std::nullopt, "g/dL")});
  s.Criterion({Simple(Kind::kPregnancy, kExcl)});
  MatchResult r = MatchOne(s, PatientBuilder()
                                  .Age(40)
                                  .Sex(patient::Sex::kFemale)
                                  .Pregnant(patient::Tristate::kNo)
                                  .Lab("718-7", 13, "g/dL")
                                  .Build());
  EXPECT_EQ(r.verdict, Verdict::kEligible);
  EXPECT_EQ(r.counts.satisfied, 3);
  EXPECT_EQ(r.counts.violated, 0);
  EXPECT_EQ(r.counts.unknown, 0);
  EXPECT_EQ(r.explanations.size(), 3u);
  EXPECT_EQ(r.criterion_outcomes,
            std::vector<Outcome>({Outcome::kSatisfied, Outcome::kSatisfied}));
}

TEST(VerdictTest, PossibleListsItsUnknowns) {
  TestStudy s("NCT00000001");
  s.Structured(Age(18, std::nullopt, kIncl, "18 Years"));
  s.Criterion({Lab("hemoglobin", 9, std::nullopt, "g/dL")});
  s.Criterion({Simple(Kind::kOther, kIncl)}, -1, false,
              "Able to swallow tablets");
  MatchOptions options = AllOptions();
  options.include_explanations = false;  // only what makes the verdict
  MatchResult r = MatchOne(s, PatientBuilder().Age(40).Build(), options);
  EXPECT_EQ(r.verdict, Verdict::kPossible);
  EXPECT_EQ(r.counts.satisfied, 1);
  EXPECT_EQ(r.counts.unknown, 2);
  ASSERT_EQ(r.explanations.size(), 2u);
  EXPECT_EQ(r.explanations[0].predicate, 1);
  EXPECT_EQ(r.explanations[0].kind, Kind::kLab);
  EXPECT_THAT(r.explanations[0].reason, HasSubstr("no hemoglobin value"));
  EXPECT_EQ(r.explanations[1].predicate, 2);
  EXPECT_EQ(r.explanations[1].kind, Kind::kOther);
  EXPECT_EQ(r.explanations[1].evidence.text, "Able to swallow tablets");
  EXPECT_TRUE(r.criterion_outcomes.empty());
}

TEST(VerdictTest, IneligibleNamesTheViolatedCriterionAndItsEvidence) {
  TestStudy s("NCT00000001");
  s.Criterion({Lab("hemoglobin", 9, std::nullopt, "g/dL")});
  s.Criterion({Lab("platelets", 100, std::nullopt, "10^9/L")}, -1, false,
              "Platelets >= 100,000/mm3");
  MatchOptions options = AllOptions();
  options.include_explanations = false;
  MatchResult r = MatchOne(s,
                           PatientBuilder()
                               .Lab("718-7", 13, "g/dL")
                               .Lab("777-3", 80, "10*9/L")
                               .Build(),
                           options);
  EXPECT_EQ(r.verdict, Verdict::kIneligible);
  ASSERT_EQ(r.explanations.size(), 1u);
  const Explanation& e = r.explanations[0];
  EXPECT_EQ(e.outcome, Outcome::kViolated);
  EXPECT_EQ(e.status, TestStatus::kNotMet);
  EXPECT_EQ(e.criterion, 1);
  EXPECT_EQ(e.rule_id, "test.platelets");
  EXPECT_EQ(e.evidence.field,
            "protocolSection.eligibilityModule.eligibilityCriteria");
  EXPECT_EQ(e.evidence.text, "Platelets >= 100,000/mm3");
  const std::string& text = s.criteria_text;
  EXPECT_EQ(text.substr(e.evidence.span.begin,
                        e.evidence.span.end - e.evidence.span.begin),
            "Platelets >= 100,000/mm3");
  EXPECT_EQ(
      e.reason,
      "requires platelets ≥ 100 10^9/L; patient's platelets is 80 10^9/L");
}

TEST(VerdictTest, NoCriteriaTextIsAtBestPossible) {
  TestStudy s("NCT00000001");
  s.Structured(Age(18, std::nullopt, kIncl, "18 Years"));
  MatchResult r = MatchOne(s, PatientBuilder().Age(40).Build());
  EXPECT_EQ(r.verdict, Verdict::kPossible);
  ASSERT_FALSE(r.explanations.empty());
  EXPECT_EQ(r.explanations.back().rule_id, "match.no_criteria_text");
  EXPECT_EQ(r.explanations.back().outcome, Outcome::kUnknown);
}

TEST(VerdictTest, ConflictsAreReported) {
  TestStudy s("NCT00000001");
  s.Criterion({Age(18, std::nullopt)});
  criteria::Conflict c;
  c.kind = Kind::kAge;
  c.description = "text says minimum age 21 years; minimumAge is 18 Years";
  s.compiled.conflicts.push_back(c);
  MatchResult r = MatchOne(s, PatientBuilder().Age(19).Build());
  EXPECT_THAT(r.conflicts, ElementsAre(c.description));
  EXPECT_EQ(r.verdict, Verdict::kEligible);  // reported, never applied
}

// --- Any-of groups
// --------------------------------------------------------------

// "At least one of: hemoglobin >= 9 g/dL; ECOG <= 1" as the compiler builds
// it: a group criterion (any_of) with one child criterion per alternative.
TestStudy AnyOfStudy() {
  TestStudy s("NCT00000001");
  const int group = s.Criterion({}, -1, /*any_of=*/true, "At least one of:");
  s.Criterion({Lab("hemoglobin", 9, std::nullopt, "g/dL")}, group);
  s.Criterion({Performance("ecog", std::nullopt, 1)}, group);
  s.Criterion({Age(18, std::nullopt)});
  return s;
}

TestStudy AnyOfStudyWithId(std::string id) {
  TestStudy s = AnyOfStudy();
  s.study.nct_id = id;
  s.compiled.nct_id = id;
  return s;
}

TEST(AnyOfTest, OneAlternativeSuffices) {
  MatchResult r = MatchOne(
      AnyOfStudy(),
      PatientBuilder().Age(50).Lab("718-7", 8, "g/dL").Ecog(1).Build());
  EXPECT_EQ(r.verdict, Verdict::kEligible);
  // The violated alternative is shown, marked as part of group 0.
  const Explanation hb = ExplanationOf(r, 0);
  EXPECT_EQ(hb.outcome, Outcome::kViolated);
  EXPECT_EQ(hb.any_of_group, 0);
  EXPECT_EQ(r.criterion_outcomes[0], Outcome::kSatisfied);
  // The group counts once.
  EXPECT_EQ(r.counts.satisfied, 2);
  EXPECT_EQ(r.counts.violated, 0);
}

TEST(AnyOfTest, ViolatedOnlyWhenAllAlternativesAre) {
  MatchResult all = MatchOne(
      AnyOfStudy(),
      PatientBuilder().Age(50).Lab("718-7", 8, "g/dL").Ecog(3).Build());
  EXPECT_EQ(all.verdict, Verdict::kIneligible);
  EXPECT_EQ(all.criterion_outcomes[0], Outcome::kViolated);
  // One violated, one unknown: the group is unknown.
  MatchResult some = MatchOne(
      AnyOfStudy(), PatientBuilder().Age(50).Lab("718-7", 8, "g/dL").Build());
  EXPECT_EQ(some.verdict, Verdict::kPossible);
  EXPECT_EQ(some.criterion_outcomes[0], Outcome::kUnknown);
  EXPECT_EQ(some.counts.unknown, 1);
  EXPECT_EQ(some.counts.violated, 0);
}

TEST(AnyOfTest, NestedCriteriaAreConjunctions) {
  // A parent criterion with two children: both must hold.
  TestStudy s("NCT00000001");
  const int parent = s.Criterion({}, -1, false, "Adequate organ function:");
  s.Criterion({Lab("hemoglobin", 9, std::nullopt, "g/dL")}, parent);
  s.Criterion({Lab("platelets", 100, std::nullopt, "10^9/L")}, parent);
  EXPECT_EQ(MatchOne(s, PatientBuilder()
                            .Lab("718-7", 10, "g/dL")
                            .Lab("777-3", 50, "10*9/L")
                            .Build())
                .verdict,
            Verdict::kIneligible);
  EXPECT_EQ(MatchOne(s, PatientBuilder()
                            .Lab("718-7", 10, "g/dL")
                            .Lab("777-3", 150, "10*9/L")
                            .Build())
                .verdict,
            Verdict::kEligible);
}

// --- Ranking
// ----------------------------------------------------------------------

// Five studies with known outcomes for RankingPatient(): 01 POSSIBLE (1
// satisfied, 1 unknown), 02 ELIGIBLE, 03 INELIGIBLE, 04 POSSIBLE (2
// satisfied, 1 unknown), 05 POSSIBLE like 01.
std::vector<TestStudy> RankingStudies() {
  std::vector<TestStudy> v;
  auto possible_half = [](std::string id) {
    TestStudy s(std::move(id));
    s.Criterion({Age(18, std::nullopt)});
    s.Criterion({Simple(Kind::kOther, kIncl)});
    return s;
  };
  v.push_back(possible_half("NCT00000005"));
  v.push_back(possible_half("NCT00000001"));
  TestStudy eligible("NCT00000002");
  eligible.Criterion({Age(18, std::nullopt)});
  v.push_back(eligible);
  TestStudy ineligible("NCT00000003");
  ineligible.Criterion({Age(65, std::nullopt)});
  v.push_back(ineligible);
  TestStudy possible_two_thirds("NCT00000004");
  possible_two_thirds.Criterion({Age(18, std::nullopt)});
  possible_two_thirds.Criterion({Age(std::nullopt, 75)});
  possible_two_thirds.Criterion({Simple(Kind::kOther, kIncl)});
  v.push_back(possible_two_thirds);
  return v;
}

patient::Profile RankingPatient() { return PatientBuilder().Age(40).Build(); }

// Studies whose scores differ by distance (sites from London outwards).
std::vector<TestStudy> GeoStudiesForRanking() {
  std::vector<TestStudy> v;
  const double lats[] = {51.5, 52.0, 48.9, 53.5, 40.7, 55.9};
  for (int i = 0; i < 6; ++i) {
    TestStudy s(absl::StrFormat("NCT0000010%d", i));
    s.Criterion({Age(18, std::nullopt)});
    if (i % 2 == 1) s.Criterion({Simple(Kind::kOther, kIncl)});
    if (i == 4) s.Criterion({Age(50, std::nullopt)});  // ineligible
    s.Site("Site", lats[i], -0.1 * i);
    v.push_back(s);
  }
  return v;
}

TEST(RankingTest, VerdictThenScoreThenNctId) {
  std::shared_ptr<const Snapshot> snap = SnapshotOf(RankingStudies());
  ASSERT_OK_AND_ASSIGN(MatchResponse r,
                       Matcher().Match(*snap, RankingPatient(), AllOptions()));
  EXPECT_THAT(Ids(r), ElementsAre("NCT00000002", "NCT00000004", "NCT00000001",
                                  "NCT00000005", "NCT00000003"));
  // score = 0.6 x share of deciding criteria satisfied (no conditions, no
  // location: the other terms are 0).
  EXPECT_DOUBLE_EQ(r.results[0].score, 0.6 * 1.0);
  EXPECT_DOUBLE_EQ(r.results[1].score, 0.6 * 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.results[2].score, 0.6 * 0.5);
  EXPECT_DOUBLE_EQ(r.results[3].score, r.results[2].score);  // tie: by NCT id
  EXPECT_EQ(r.results[4].verdict, Verdict::kIneligible);
  EXPECT_EQ(r.stats.matched, 5u);
}

TEST(RankingTest, TopK) {
  std::shared_ptr<const Snapshot> snap = SnapshotOf(RankingStudies());
  MatchOptions o = AllOptions();
  o.top_k = 3;
  ASSERT_OK_AND_ASSIGN(MatchResponse r,
                       Matcher().Match(*snap, RankingPatient(), o));
  EXPECT_THAT(Ids(r), ElementsAre("NCT00000002", "NCT00000004", "NCT00000001"));
  // 05 ties with 01 at best and ranks after it: not evaluated.
  EXPECT_EQ(r.stats.pruned, 1u);
  EXPECT_EQ(r.stats.evaluated, 4u);
  o.evaluate_all = true;
  ASSERT_OK_AND_ASSIGN(MatchResponse all,
                       Matcher().Match(*snap, RankingPatient(), o));
  EXPECT_EQ(Ids(all), Ids(r));
  EXPECT_EQ(all.stats.pruned, 0u);
  EXPECT_EQ(all.stats.matched, 5u);
}

TEST(RankingTest, BruteForceMatcherEvaluatesEverythingForEveryCall) {
  // MatcherOptions::evaluate_all (serve --brute_force) turns every call
  // into MatchOptions::evaluate_all: the same answers, nothing pruned.
  std::shared_ptr<const Snapshot> snap = SnapshotOf(RankingStudies());
  MatchOptions o = AllOptions();
  o.top_k = 3;
  ASSERT_OK_AND_ASSIGN(MatchResponse fast,
                       Matcher().Match(*snap, RankingPatient(), o));
  ASSERT_OK_AND_ASSIGN(Matcher brute, Matcher::Create({.evaluate_all = true}));
  ASSERT_OK_AND_ASSIGN(MatchResponse all,
                       brute.Match(*snap, RankingPatient(), o));
  EXPECT_EQ(Ids(all), Ids(fast));
  EXPECT_EQ(fast.stats.pruned, 1u);
  EXPECT_EQ(all.stats.pruned, 0u);
  EXPECT_EQ(all.stats.evaluated, 5u);
  EXPECT_EQ(all.stats.matched, 5u);
  // The call's own options are still checked.
  o.top_k = 0;
  EXPECT_EQ(brute.Match(*snap, RankingPatient(), o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RankingTest, PruningNeverChangesResults) {
  // Every top_k and verdict filter: the bound only skips studies that
  // could not have been returned.
  std::vector<TestStudy> studies = RankingStudies();
  for (const TestStudy& s : GeoStudiesForRanking()) studies.push_back(s);
  // Any-of groups and a study without criteria text, too.
  TestStudy any_of = AnyOfStudyWithId("NCT00000201");
  studies.push_back(any_of);
  TestStudy no_text("NCT00000202");
  no_text.Structured(Age(18, std::nullopt, kIncl, "18 Years"));
  studies.push_back(no_text);
  TestStudy no_text_other("NCT00000203");
  no_text_other.Structured(Age(18, std::nullopt, kIncl, "18 Years"))
      .Structured(HealthyVolunteers(false));
  studies.push_back(no_text_other);
  std::shared_ptr<const Snapshot> snap = SnapshotOf(studies);
  const patient::Profile p =
      PatientBuilder().Age(40).At(51.5074, -0.1278).Build();
  for (int k = 1; k <= 11; ++k) {
    for (const std::vector<Verdict>& verdicts :
         std::vector<std::vector<Verdict>>{
             {},
             {Verdict::kEligible, Verdict::kPossible},
             {Verdict::kPossible},
             {Verdict::kIneligible}}) {
      MatchOptions o = AllOptions();
      o.top_k = k;
      o.verdicts = verdicts;
      ASSERT_OK_AND_ASSIGN(MatchResponse pruned, Matcher().Match(*snap, p, o));
      o.evaluate_all = true;
      ASSERT_OK_AND_ASSIGN(MatchResponse full, Matcher().Match(*snap, p, o));
      ASSERT_EQ(Ids(pruned), Ids(full)) << "top_k " << k;
      for (size_t i = 0; i < full.results.size(); ++i) {
        EXPECT_EQ(pruned.results[i].score, full.results[i].score);
      }
    }
  }
}

// Matches with `o` and by brute force (evaluate_all): the same studies in
// the same order, with the same scores and verdicts. Returns how many
// studies the pruned call skipped.
size_t ExpectSameAsBruteForce(const Snapshot& snap, const patient::Profile& p,
                              MatchOptions o) {
  const absl::StatusOr<MatchResponse> fast = Matcher().Match(snap, p, o);
  o.evaluate_all = true;
  const absl::StatusOr<MatchResponse> full = Matcher().Match(snap, p, o);
  EXPECT_TRUE(fast.ok()) << fast.status();
  EXPECT_TRUE(full.ok()) << full.status();
  if (!fast.ok() || !full.ok()) return 0;
  EXPECT_EQ(Ids(*fast), Ids(*full));
  if (Ids(*fast) == Ids(*full)) {
    for (size_t i = 0; i < full->results.size(); ++i) {
      EXPECT_EQ(fast->results[i].score, full->results[i].score);
      EXPECT_EQ(fast->results[i].verdict, full->results[i].verdict);
    }
  }
  return fast->stats.pruned;
}

TEST(RankingTest, ConditionFactsInTheBoundNeverChangeResults) {
  // The bound counts excluded conditions as certainly unfavourable without a
  // complete condition list, and required conditions when no patient
  // condition links to anything: for every patient shape, top_k and verdict
  // filter, the pruned ranking is the brute-force one.
  std::vector<TestStudy> studies;
  auto with = [&](std::string id, std::vector<std::vector<Predicate>> crits,
                  std::vector<model::MeshTerm> conditions = {}) {
    TestStudy s(std::move(id));
    if (!conditions.empty()) s.Conditions(conditions);
    s.Criterion({Age(18, std::nullopt)});
    for (std::vector<Predicate>& c : crits) s.Criterion(std::move(c));
    studies.push_back(std::move(s));
  };
  const criteria::ConditionConcept t2d =
      Concept("type 2 diabetes", {"D003924"}, {"D003920"});
  const criteria::ConditionConcept hf = Concept("heart failure", {"D006333"});
  with("NCT00000301", {{HasCondition({t2d}, kIncl)}}, {kType2Diabetes});
  with("NCT00000302", {{HasCondition({hf}, kExcl)}});
  with("NCT00000303",
       {{HasCondition({t2d}, kIncl)}, {HasCondition({hf}, kExcl)}},
       {kType2Diabetes});
  with("NCT00000304", {{HasCondition({hf}, kExcl)},
                       {HasCondition({Concept("stroke")}, kExcl)},
                       {Simple(Kind::kOther, kIncl)}});
  with("NCT00000305", {});
  with("NCT00000306", {{Simple(Kind::kOther, kIncl)}});
  with("NCT00000307", {{HasCondition({t2d}, kIncl), HasCondition({hf}, kIncl)}},
       {kType2Diabetes});
  // First in every static order, POSSIBLE for a patient without the lab:
  // it fills the top 1 before the ELIGIBLE studies below are read, so their
  // bound decides whether they are (the bound of a complete condition list
  // must not count excluded conditions, even when nothing links).
  with("NCT00000300", {{Lab("hemoglobin", 10, std::nullopt, "g/dL")}});
  std::shared_ptr<const Snapshot> snap = SnapshotOf(studies);
  const std::vector<patient::Profile> patients = {
      PatientBuilder().Age(40).Build(),
      PatientBuilder().Age(40).Complete().Build(),
      PatientBuilder().Age(40).Mesh("D003924").Build(),
      PatientBuilder().Age(40).Mesh("D003924").Complete().Build(),
      PatientBuilder()
          .Age(40)
          .Mesh("D003924")
          .Mesh("D006333")
          .Complete()
          .Build(),
      PatientBuilder().Age(40).Text("no such condition anywhere").Build(),
  };
  size_t pruned_total = 0;
  for (size_t pi = 0; pi < patients.size(); ++pi) {
    for (bool related : {true, false}) {
      for (int k = 1; k <= 8; ++k) {
        for (const std::vector<Verdict>& verdicts :
             std::vector<std::vector<Verdict>>{
                 {}, {Verdict::kEligible, Verdict::kPossible}}) {
          SCOPED_TRACE(::testing::Message() << "patient " << pi << " top_k "
                                            << k << " related " << related);
          MatchOptions o = AllOptions();
          o.require_condition_match = related;
          o.top_k = k;
          o.verdicts = verdicts;
          pruned_total += ExpectSameAsBruteForce(*snap, patients[pi], o);
        }
      }
    }
  }
  EXPECT_GT(pruned_total, 0u);  // the bound was exercised
}

// An any-of group counts in the ranking bound as certainly unfavourable
// when every alternative is: always (unparsed alternatives), or on one fact
// the patient lacks; alternatives on different facts never count (the
// patient may have either). Checked on the counts the snapshot keeps, then
// against brute force for patients with each fact, both and neither.
TEST(RankingTest, AnyOfGroupsInTheBoundNeverChangeResults) {
  std::vector<TestStudy> studies;
  auto group_of = [&](std::string id,
                      std::vector<std::vector<Predicate>> alternatives) {
    TestStudy s(std::move(id));
    s.Criterion({Age(18, std::nullopt)});
    const int group = s.Criterion({}, -1, /*any_of=*/true, "At least one of:");
    for (std::vector<Predicate>& a : alternatives)
      s.Criterion(std::move(a), group);
    studies.push_back(std::move(s));
  };
  const Predicate other = Simple(Kind::kOther, kIncl);
  const Predicate hb = Lab("hemoglobin", 9, std::nullopt, "g/dL");
  const Predicate hb_high = Lab("hemoglobin", std::nullopt, 18, "g/dL");
  const Predicate ecog = Performance("ecog", std::nullopt, 1);
  for (int copy = 0; copy < 3; ++copy) {
    const std::string n = std::to_string(copy);
    group_of("NCT0000040" + n, {{other}, {other}});     // always
    group_of("NCT0000041" + n, {{hb}, {hb_high}});      // on hemoglobin
    group_of("NCT0000042" + n, {{hb, other}, {ecog}});  // on performance
    group_of("NCT0000043" + n, {{ecog}, {other, hb}});  // on performance
    // Never: with hemoglobin alone it is ELIGIBLE, and it comes after the
    // POSSIBLE ones above in the static order, so a bound that counted it
    // would cut it from the top k.
    group_of("NCT0000044" + n, {{hb}, {ecog}});
  }
  TestStudy plain("NCT00000450");
  plain.Criterion({Age(18, std::nullopt)});
  plain.Criterion({other});
  studies.push_back(plain);
  std::shared_ptr<const Snapshot> snap = SnapshotOf(studies);

  // The counts behind the bound.
  auto quantity = [&](std::string_view q) {
    const std::vector<std::string>& qs = snap->quantities();
    return static_cast<int>(std::find(qs.begin(), qs.end(), q) - qs.begin());
  };
  auto facts_of = [&](std::string_view id) {
    std::map<int, int> out;
    const std::optional<size_t> i = snap->Find(id);
    EXPECT_TRUE(i.has_value()) << id;
    if (!i) return out;
    const internal::StudyKey& k = snap->keys()[*i];
    out[-1] = k.always_unknown;
    for (uint32_t f = 0; f < k.facts_count; ++f) {
      const internal::FactCount& fc = snap->fact_counts()[k.facts_begin + f];
      out[fc.fact] = fc.count;
    }
    return out;
  };
  const int age = quantity("age");
  const int hemoglobin = quantity("hemoglobin");
  using Counts = std::map<int, int>;
  EXPECT_EQ(facts_of("NCT00000400"), (Counts{{-1, 1}, {age, 1}}));
  EXPECT_EQ(facts_of("NCT00000410"),
            (Counts{{-1, 0}, {age, 1}, {hemoglobin, 1}}));
  EXPECT_EQ(facts_of("NCT00000420"),
            (Counts{{-1, 0}, {age, 1}, {internal::kFactPerformance, 1}}));
  EXPECT_EQ(facts_of("NCT00000430"),
            (Counts{{-1, 0}, {age, 1}, {internal::kFactPerformance, 1}}));
  EXPECT_EQ(facts_of("NCT00000440"), (Counts{{-1, 0}, {age, 1}}));

  const std::vector<patient::Profile> patients = {
      PatientBuilder().Age(40).Build(),
      PatientBuilder().Age(40).Lab("718-7", 12, "g/dL").Build(),
      PatientBuilder().Age(40).Ecog(0).Build(),
      PatientBuilder().Age(40).Lab("718-7", 12, "g/dL").Ecog(0).Build(),
      PatientBuilder().Age(40).Lab("718-7", 7, "g/dL").Ecog(3).Build(),
  };
  size_t pruned_total = 0;
  for (size_t pi = 0; pi < patients.size(); ++pi) {
    for (int k = 1; k <= static_cast<int>(studies.size()); ++k) {
      for (const std::vector<Verdict>& verdicts :
           std::vector<std::vector<Verdict>>{
               {}, {Verdict::kEligible, Verdict::kPossible}}) {
        SCOPED_TRACE(::testing::Message()
                     << "patient " << pi << " top_k " << k);
        MatchOptions o = AllOptions();
        o.top_k = k;
        o.verdicts = verdicts;
        pruned_total += ExpectSameAsBruteForce(*snap, patients[pi], o);
      }
    }
  }
  EXPECT_GT(pruned_total, 0u);  // the bound was exercised
}

TEST(RankingTest, VerdictFilters) {
  std::shared_ptr<const Snapshot> snap = SnapshotOf(RankingStudies());
  MatchOptions o = AllOptions();
  o.verdicts = {Verdict::kIneligible};
  ASSERT_OK_AND_ASSIGN(MatchResponse inel,
                       Matcher().Match(*snap, RankingPatient(), o));
  EXPECT_THAT(Ids(inel), ElementsAre("NCT00000003"));
  o.verdicts = {Verdict::kEligible, Verdict::kPossible};  // the default
  ASSERT_OK_AND_ASSIGN(MatchResponse fine,
                       Matcher().Match(*snap, RankingPatient(), o));
  EXPECT_THAT(Ids(fine), ElementsAre("NCT00000002", "NCT00000004",
                                     "NCT00000001", "NCT00000005"));
  EXPECT_EQ(fine.stats.ineligible,
            1u);  // evaluated (stopped early), not returned
}

TEST(RankingTest, ScoreUsesConditionStrengthAndProximity) {
  // Two eligible studies about type 2 diabetes; the nearer one ranks first.
  TestStudy near("NCT00000002");
  near.Conditions({kType2Diabetes}).Criterion({Age(18, std::nullopt)});
  near.Site("Near", 51.5074, -0.1278);  // London
  TestStudy far("NCT00000001");
  far.Conditions({kType2Diabetes}).Criterion({Age(18, std::nullopt)});
  far.Site("Far", 48.8566, 2.3522);  // Paris
  std::shared_ptr<const Snapshot> snap = SnapshotOf({near, far});
  ASSERT_OK_AND_ASSIGN(
      MatchResponse r,
      Matcher().Match(
          *snap,
          PatientBuilder().Age(50).Mesh("D003924").At(51.5074, -0.1278).Build(),
          AllOptions()));
  ASSERT_EQ(r.results.size(), 2u);
  EXPECT_EQ(r.results[0].nct_id, "NCT00000002");
  // Both: every criterion satisfied (share 1), exact condition (1).
  EXPECT_DOUBLE_EQ(r.results[0].score, 0.6 + 0.25 + 0.15 * 1.0);
  const double paris_km = HaversineKm(51.5074, -0.1278, 48.8566, 2.3522);
  EXPECT_NEAR(r.results[1].score, 0.6 + 0.25 + 0.15 / (1 + paris_km / 100),
              1e-6);
}

// --- Status filter
// ----------------------------------------------------------------

TEST(StatusFilterTest, DefaultIsRecruitingAndNotYetRecruiting) {
  std::vector<TestStudy> v;
  for (auto [id, status] : std::vector<std::pair<std::string, std::string>>{
           {"NCT00000001", "RECRUITING"},
           {"NCT00000002", "NOT_YET_RECRUITING"},
           {"NCT00000003", "COMPLETED"},
           {"NCT00000004", "ACTIVE_NOT_RECRUITING"}}) {
    TestStudy s(id, status);
    s.Criterion({Age(18, std::nullopt)});
    v.push_back(s);
  }
  std::shared_ptr<const Snapshot> snap = SnapshotOf(v);
  const patient::Profile p = PatientBuilder().Age(30).Build();
  ASSERT_OK_AND_ASSIGN(MatchResponse def,
                       Matcher().Match(*snap, p, MatchOptions{}));
  EXPECT_THAT(Ids(def), ElementsAre("NCT00000001", "NCT00000002"));
  MatchOptions any;
  any.statuses.clear();
  ASSERT_OK_AND_ASSIGN(MatchResponse all, Matcher().Match(*snap, p, any));
  EXPECT_EQ(all.results.size(), 4u);
  MatchOptions completed;
  completed.statuses = {"COMPLETED"};
  ASSERT_OK_AND_ASSIGN(MatchResponse c, Matcher().Match(*snap, p, completed));
  EXPECT_THAT(Ids(c), ElementsAre("NCT00000003"));
}

// --- Geography
// ----------------------------------------------------------------------

// Real city coordinates.
constexpr double kLondon[] = {51.5074, -0.1278};
constexpr double kParis[] = {48.8566, 2.3522};
constexpr double kBerlin[] = {52.5200, 13.4050};
constexpr double kNewYork[] = {40.7128, -74.0060};
constexpr double kManchester[] = {53.4808, -2.2426};

std::vector<TestStudy> GeoStudies() {
  std::vector<TestStudy> v;
  TestStudy paris("NCT00000001");
  paris.Criterion({Age(18, std::nullopt)});
  paris.Site("Hôpital Paris", kParis[0], kParis[1], "RECRUITING", "Paris");
  v.push_back(paris);
  TestStudy ny("NCT00000002");
  ny.Criterion({Age(18, std::nullopt)});
  ny.Site("NY Clinic", kNewYork[0], kNewYork[1], "RECRUITING", "New York");
  v.push_back(ny);
  // A closed site in London, a recruiting one in Berlin.
  TestStudy berlin("NCT00000003");
  berlin.Criterion({Age(18, std::nullopt)});
  berlin.Site("London Closed", kLondon[0], kLondon[1], "COMPLETED", "London");
  berlin.Site("Charité", kBerlin[0], kBerlin[1], "RECRUITING", "Berlin");
  v.push_back(berlin);
  TestStudy unlocated("NCT00000004");
  unlocated.Criterion({Age(18, std::nullopt)});
  v.push_back(unlocated);
  // A site without a status inherits the study's (RECRUITING).
  TestStudy inherits("NCT00000005");
  inherits.Criterion({Age(18, std::nullopt)});
  inherits.Site("Manchester Royal", kManchester[0], kManchester[1], "",
                "Manchester");
  v.push_back(inherits);
  return v;
}

TEST(GeoTest, NearestOpenSiteAndDistanceFilter) {
  std::shared_ptr<const Snapshot> snap = SnapshotOf(GeoStudies());
  MatchOptions o = AllOptions();
  o.max_distance_km = 1000;
  const patient::Profile p =
      PatientBuilder().Age(40).At(kLondon[0], kLondon[1]).Build();
  ASSERT_OK_AND_ASSIGN(MatchResponse r, Matcher().Match(*snap, p, o));
  // New York is beyond 1000 km; everything else stays (the unlocated study
  // too: its distance is not known).
  std::map<std::string, const MatchResult*> by_id;
  for (const MatchResult& m : r.results) by_id[std::string(m.nct_id)] = &m;
  EXPECT_EQ(by_id.count("NCT00000002"), 0u);
  ASSERT_EQ(by_id.size(), 4u);
  ASSERT_TRUE(by_id["NCT00000001"]->nearest_site.has_value());
  EXPECT_EQ(by_id["NCT00000001"]->nearest_site->site.city, "Paris");
  EXPECT_NEAR(by_id["NCT00000001"]->nearest_site->distance_km, 343.5, 1.0);
  // Berlin, not the closed London site.
  ASSERT_TRUE(by_id["NCT00000003"]->nearest_site.has_value());
  EXPECT_EQ(by_id["NCT00000003"]->nearest_site->site.facility, "Charité");
  EXPECT_NEAR(by_id["NCT00000003"]->nearest_site->distance_km, 931.6, 2.0);
  EXPECT_FALSE(by_id["NCT00000004"]->nearest_site.has_value());
  ASSERT_TRUE(by_id["NCT00000005"]->nearest_site.has_value());
  EXPECT_EQ(by_id["NCT00000005"]->nearest_site->site.status, "");
  EXPECT_NEAR(by_id["NCT00000005"]->nearest_site->distance_km, 262.0, 1.0);
  EXPECT_EQ(r.stats.outside_distance, 1u);

  o.include_unlocated = false;
  ASSERT_OK_AND_ASSIGN(MatchResponse located, Matcher().Match(*snap, p, o));
  for (const MatchResult& m : located.results)
    EXPECT_NE(m.nct_id, "NCT00000004");
  EXPECT_EQ(located.results.size(), 3u);
}

TEST(GeoTest, StudiesBeyondTheLimitAreCandidatesOutsideTheDistance) {
  // The ranked walks skip whole site regions beyond the limit unread; the
  // stats still count their studies as candidates, outside the distance
  // (what a client reads to tell "none near you" from "none related").
  std::vector<TestStudy> studies = GeoStudies();
  for (TestStudy& s : studies)
    s.Conditions({{"D003924", "Diabetes Mellitus, Type 2"}});
  std::shared_ptr<const Snapshot> snap = SnapshotOf(studies);
  for (const bool related : {true, false}) {
    for (const int top_k : {10, 50}) {
      SCOPED_TRACE(absl::StrFormat("related %d top_k %d", related, top_k));
      MatchOptions o = AllOptions();
      o.require_condition_match = true;
      o.top_k = top_k;
      PatientBuilder b;
      b.Age(40).At(kLondon[0], kLondon[1], 1000);
      if (related) b.Mesh("D003924");
      ASSERT_OK_AND_ASSIGN(MatchResponse r,
                           Matcher().Match(*snap, b.Build(), o));
      EXPECT_EQ(r.stats.used_index, related);
      EXPECT_THAT(Ids(r), Not(Contains("NCT00000002")));  // New York
      EXPECT_EQ(r.results.size(), 4u);
      EXPECT_EQ(r.stats.outside_distance, 1u);
      EXPECT_EQ(r.stats.candidates, 5u);
    }
  }
}

TEST(GeoTest, ProfileLimitAndOptionLimitTheSmallerWins) {
  std::shared_ptr<const Snapshot> snap = SnapshotOf(GeoStudies());
  MatchOptions o = AllOptions();
  o.include_unlocated = false;
  o.max_distance_km = 5000;
  // Profile says 300 km: Manchester (263 km) only.
  ASSERT_OK_AND_ASSIGN(
      MatchResponse r,
      Matcher().Match(
          *snap,
          PatientBuilder().Age(40).At(kLondon[0], kLondon[1], 300).Build(), o));
  EXPECT_THAT(Ids(r), ElementsAre("NCT00000005"));
  o.max_distance_km = 100;  // now the option is smaller
  ASSERT_OK_AND_ASSIGN(
      MatchResponse none,
      Matcher().Match(
          *snap,
          PatientBuilder().Age(40).At(kLondon[0], kLondon[1], 300).Build(), o));
  EXPECT_TRUE(none.results.empty());
}

TEST(GeoTest, NoPatientLocationNoFilterNoDistance) {
  std::shared_ptr<const Snapshot> snap = SnapshotOf(GeoStudies());
  MatchOptions o = AllOptions();
  o.max_distance_km = 10;
  o.include_unlocated = false;
  ASSERT_OK_AND_ASSIGN(
      MatchResponse r,
      Matcher().Match(*snap, PatientBuilder().Age(40).Build(), o));
  EXPECT_EQ(r.results.size(), 5u);
  for (const MatchResult& m : r.results)
    EXPECT_FALSE(m.nearest_site.has_value());
}

TEST(GeoTest, NotYetRecruitingSitesCountOnlyWhenTheStudyIsNotYetRecruiting) {
  TestStudy upcoming("NCT00000001", "NOT_YET_RECRUITING");
  upcoming.Criterion({Age(18, std::nullopt)});
  upcoming.Site("Soon", kParis[0], kParis[1], "NOT_YET_RECRUITING");
  TestStudy running("NCT00000002", "RECRUITING");
  running.Criterion({Age(18, std::nullopt)});
  running.Site("Soon", kParis[0], kParis[1], "NOT_YET_RECRUITING");
  running.Site("Open", kBerlin[0], kBerlin[1], "RECRUITING");
  std::shared_ptr<const Snapshot> snap = SnapshotOf({upcoming, running});
  ASSERT_OK_AND_ASSIGN(
      MatchResponse r,
      Matcher().Match(
          *snap, PatientBuilder().Age(40).At(kLondon[0], kLondon[1]).Build(),
          AllOptions()));
  ASSERT_EQ(r.results.size(), 2u);
  for (const MatchResult& m : r.results) {
    ASSERT_TRUE(m.nearest_site.has_value()) << m.nct_id;
    EXPECT_EQ(m.nearest_site->site.facility,
              m.nct_id == "NCT00000001" ? "Soon" : "Open");
  }
}

TEST(GeoTest, NearestAmongManySitesIsTheTrueNearest) {
  // 300 sites spread over the globe (a fixed pseudo-random sequence), a
  // third of them closed; patients at several places. The reported site must
  // be at the smallest haversine distance over the open sites.
  TestStudy s("NCT00000001");
  s.Criterion({Age(18, std::nullopt)});
  uint64_t x = 12345;
  auto next = [&x] {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(x >> 11) / static_cast<double>(1ull << 53);
  };
  std::vector<std::pair<double, double>> open;
  for (int i = 0; i < 300; ++i) {
    const double lat = -80 + 160 * next();
    const double lon = -180 + 360 * next();
    const bool is_open = i % 3 != 0;
    s.Site(absl::StrFormat("Site %d", i), lat, lon,
           is_open ? "RECRUITING" : "COMPLETED");
    // The snapshot keeps coordinates as float.
    if (is_open)
      open.emplace_back(static_cast<float>(lat), static_cast<float>(lon));
  }
  std::shared_ptr<const Snapshot> snap = SnapshotOf({s});
  const double places[][2] = {{51.5, -0.1}, {-33.9, 151.2}, {0, 179.9},
                              {89, 0},      {-89, 45},      {40.7, -74},
                              {1.3, 103.8}};
  for (const auto& pl : places) {
    double best = 1e18;
    for (const auto& [lat, lon] : open)
      best = std::min(best, HaversineKm(pl[0], pl[1], lat, lon));
    ASSERT_OK_AND_ASSIGN(
        MatchResponse r,
        Matcher().Match(*snap,
                        PatientBuilder().Age(40).At(pl[0], pl[1]).Build(),
                        AllOptions()));
    ASSERT_EQ(r.results.size(), 1u);
    ASSERT_TRUE(r.results[0].nearest_site.has_value());
    EXPECT_NEAR(r.results[0].nearest_site->distance_km, best, 1e-6)
        << pl[0] << "," << pl[1];
    EXPECT_EQ(r.results[0].nearest_site->site.status, "RECRUITING");
  }
}

TEST(CandidatesTest, UnlinkedConditionsDoNotHideEveryStudy) {
  TestStudy t2d("NCT00000001");
  t2d.Conditions({kType2Diabetes}).Criterion({Age(18, std::nullopt)});
  TestStudy other("NCT00000002");
  other.Conditions({kStroke}).Criterion({Age(18, std::nullopt)});
  std::shared_ptr<const Snapshot> snap = SnapshotOf({t2d, other});
  MatchOptions o = AllOptions();
  o.require_condition_match = true;
  // One linked condition selects; the unlinked one is noted by position.
  ASSERT_OK_AND_ASSIGN(
      MatchResponse linked,
      Matcher().Match(
          *snap, PatientBuilder().Mesh("D003924").Text("zzz-unknown").Build(),
          o));
  EXPECT_THAT(Ids(linked), ElementsAre("NCT00000001"));
  EXPECT_THAT(linked.notes,
              ElementsAre("conditions[1]: not linked to any study condition"));
  // Nothing links: every study is considered rather than none.
  ASSERT_OK_AND_ASSIGN(
      MatchResponse none,
      Matcher().Match(*snap, PatientBuilder().Text("zzz-unknown").Build(), o));
  EXPECT_EQ(none.results.size(), 2u);
  EXPECT_EQ(none.notes.size(), 2u);
}

TEST(CandidatesTest, EmptySnapshot) {
  std::shared_ptr<const Snapshot> snap = SnapshotOf({});
  ASSERT_OK_AND_ASSIGN(MatchResponse r,
                       Matcher().Match(*snap, RankingPatient(), AllOptions()));
  EXPECT_TRUE(r.results.empty());
  ASSERT_OK_AND_ASSIGN(
      MatchResponse c,
      Matcher().Match(*snap,
                      PatientBuilder().Mesh("D003924").At(1, 2, 10).Build(),
                      AllOptions()));
  EXPECT_TRUE(c.results.empty());
}

// --- Cancellation and validation
// ---------------------------------------------------

std::shared_ptr<const Snapshot> ManyStudies(int n) {
  std::vector<TestStudy> v;
  for (int i = 1; i <= n; ++i) {
    TestStudy s(absl::StrFormat("NCT%08d", i));
    s.Criterion({Age(18, std::nullopt)});
    v.push_back(s);
  }
  return SnapshotOf(v);
}

TEST(CancellationTest, InterruptBeforeTheScan) {
  std::shared_ptr<const Snapshot> snap = ManyStudies(3);
  MatchOptions o = AllOptions();
  o.interrupt = [] { return absl::CancelledError("client went away"); };
  EXPECT_THAT(Matcher().Match(*snap, RankingPatient(), o),
              StatusIs(absl::StatusCode::kCancelled));
}

TEST(CancellationTest, InterruptDuringTheScan) {
  std::shared_ptr<const Snapshot> snap = ManyStudies(1000);
  MatchOptions o = AllOptions();
  o.evaluate_all = true;  // visit every study (the bound would stop at 51)
  int calls = 0;
  o.interrupt = [&calls] {
    return ++calls >= 3 ? absl::DeadlineExceededError("deadline")
                        : absl::OkStatus();
  };
  EXPECT_THAT(Matcher().Match(*snap, RankingPatient(), o),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(calls, 3);  // before the scan, after 256, after 512 candidates
  // Never interrupted: completes.
  o.interrupt = [] { return absl::OkStatus(); };
  ASSERT_OK_AND_ASSIGN(MatchResponse r,
                       Matcher().Match(*snap, RankingPatient(), o));
  EXPECT_EQ(r.stats.candidates, 1000u);
}

TEST(RankingTest, WithoutConditionsTheScanStopsAtTheFirstStudyThatCannotRank) {
  // 1000 identical studies: the top 50 are the first 50 by NCT id, and the
  // 51st bound already cannot beat them.
  std::shared_ptr<const Snapshot> snap = ManyStudies(1000);
  MatchOptions o = AllOptions();
  ASSERT_OK_AND_ASSIGN(MatchResponse r,
                       Matcher().Match(*snap, RankingPatient(), o));
  ASSERT_EQ(r.results.size(), 50u);
  EXPECT_EQ(r.results.front().nct_id, "NCT00000001");
  EXPECT_EQ(r.results.back().nct_id, "NCT00000050");
  EXPECT_EQ(r.stats.evaluated, 50u);
  EXPECT_EQ(r.stats.candidates, 51u);
  o.evaluate_all = true;
  ASSERT_OK_AND_ASSIGN(MatchResponse all,
                       Matcher().Match(*snap, RankingPatient(), o));
  EXPECT_EQ(Ids(all), Ids(r));
  EXPECT_EQ(all.stats.evaluated, 1000u);
}

// The first pass skips studies whose structured age/sex/healthy-volunteer
// eligibility the patient certainly fails (StudyKey's gate). Swept over ages
// on both sides of every kind of bound (years, months, weeks, days;
// inclusive and exclusive, whole and fractional), each sex and each
// volunteer status: the results equal brute force's, and every study the
// gate skipped is INELIGIBLE by full evaluation.
TEST(GateTest, SkipsOnlyStudiesTheEvaluatorRulesIneligible) {
  std::vector<TestStudy> studies;
  auto add = [&](Predicate age, std::optional<model::Sex> sex = std::nullopt) {
    TestStudy s(absl::StrFormat("NCT%08d", studies.size() + 1));
    s.Structured(std::move(age));
    if (sex) s.Structured(SexIs(*sex));
    s.Criterion({Lab("hemoglobin", 9, std::nullopt, "g/dL")});
    studies.push_back(std::move(s));
  };
  add(Age(18, 65));
  add(Age(18, 65, kIncl, "18 Years"));
  add(Age(0.5, 17, kIncl, "6 Months"));
  add(Age(1.0 / 12, 2, kIncl, "1 Month"));
  add(Age(28.0 / 365.25, 1, kIncl, "28 Days"));
  add(Age(2.0 * 7 / 365.25, 3, kIncl, "2 Weeks"));
  add(Age(std::nullopt, 40));
  add(Age(65, std::nullopt), model::Sex::kFemale);
  add(Age(12.5, 30.25));
  // A maximum in months whose next completed unit is a whole year (the
  // gate's tolerance matters), a minimum just above a whole number (the
  // evaluator rounds it down).
  add(Age(1.0 / 12, 23.0 / 12, kIncl, "1 Month"));
  add(Age(18.01, std::nullopt));
  {
    TestStudy s("NCT00000098");  // no healthy volunteers, adults
    s.Structured(Age(18, std::nullopt)).Structured(HealthyVolunteers(false));
    studies.push_back(std::move(s));
    TestStudy t("NCT00000099");  // healthy volunteers accepted
    t.Structured(HealthyVolunteers(true));
    studies.push_back(std::move(t));
  }
  {
    Predicate older = Age(18, std::nullopt);
    older.low_inclusive = false;  // "older than 18"
    Predicate younger = Age(std::nullopt, 50);
    younger.high_inclusive = false;  // "younger than 50"
    TestStudy s("NCT00000100");
    s.Structured(std::move(older)).Structured(std::move(younger));
    s.Structured(SexIs(model::Sex::kMale));
    studies.push_back(std::move(s));
  }
  std::shared_ptr<const Snapshot> snap = SnapshotOf(studies);
  const Matcher matcher;
  MatchOptions gated;  // default verdicts: ELIGIBLE and POSSIBLE
  gated.statuses.clear();
  gated.top_k = 100;
  MatchOptions brute = gated;
  brute.evaluate_all = true;
  MatchOptions all = brute;
  all.verdicts.clear();
  // Gated against brute force for one profile; returns how many the gate
  // skipped.
  auto check = [&](const patient::Profile& profile) -> size_t {
    absl::StatusOr<MatchResponse> g = matcher.Match(*snap, profile, gated);
    absl::StatusOr<MatchResponse> b = matcher.Match(*snap, profile, brute);
    absl::StatusOr<MatchResponse> a = matcher.Match(*snap, profile, all);
    EXPECT_TRUE(g.ok() && b.ok() && a.ok());
    if (!g.ok() || !b.ok() || !a.ok()) return 0;
    EXPECT_EQ(g->results.size(), b->results.size());
    for (size_t r = 0; r < g->results.size() && r < b->results.size(); ++r) {
      EXPECT_EQ(g->results[r].nct_id, b->results[r].nct_id);
      EXPECT_EQ(g->results[r].verdict, b->results[r].verdict);
    }
    EXPECT_EQ(b->stats.gated, 0u);
    // Everything not returned is INELIGIBLE by full evaluation, and the
    // gate skipped no more studies than that.
    size_t ineligible = 0;
    for (const MatchResult& r : a->results) {
      if (r.verdict == Verdict::kIneligible) ++ineligible;
    }
    EXPECT_EQ(ineligible + g->results.size(), studies.size());
    EXPECT_LE(g->stats.gated, ineligible);
    return g->stats.gated;
  };
  size_t gated_total = 0;
  for (patient::Sex sex :
       {patient::Sex::kFemale, patient::Sex::kMale, patient::Sex::kUnknown}) {
    for (int i = 0; i <= 6002; ++i) {
      const double age = (i / 3) * 0.05;
      const patient::Tristate volunteer =
          i % 3 == 0 ? patient::Tristate::kYes
                     : (i % 3 == 1 ? patient::Tristate::kNo
                                   : patient::Tristate::kUnknown);
      const patient::Profile profile = PatientBuilder()
                                           .Age(age)
                                           .Sex(sex)
                                           .HealthyVolunteer(volunteer)
                                           .Build();
      SCOPED_TRACE(absl::StrFormat("age %.2f sex %d volunteer %d", age,
                                   static_cast<int>(sex),
                                   static_cast<int>(volunteer)));
      gated_total += check(profile);
    }
  }
  // The gate does skip: most of the sweep is far outside most windows.
  EXPECT_GT(gated_total, 60'000u);

  // Day by day around every bound: where the gate's thresholds are.
  const double bounds[] = {18, 65,          0.5,   17,          1.0 / 12,
                           2,  28 / 365.25, 1,     14 / 365.25, 3,
                           40, 12.5,        30.25, 50};
  for (double bound : bounds) {
    for (int d = -48; d <= 48; ++d) {
      const double age = bound + d * 0.25 / 365.25;
      if (age < 0) continue;
      const patient::Profile profile = PatientBuilder().Age(age).Build();
      SCOPED_TRACE(absl::StrFormat("age %.6f", age));
      check(profile);
    }
  }
}

// The gate's thresholds are the evaluator's, to the day: a patient days
// short of a minimum in years, or past the last completed year of a
// maximum, is skipped unevaluated.
TEST(GateTest, ThresholdsAreTheEvaluatorsToTheDay) {
  TestStudy s("NCT00000001");
  s.Structured(Age(18, 65, kIncl, "18 Years"));
  s.Criterion({Lab("hemoglobin", 9, std::nullopt, "g/dL")});
  std::shared_ptr<const Snapshot> snap = SnapshotOf({s});
  MatchOptions o;
  o.statuses.clear();
  auto gated = [&](double age) {
    absl::StatusOr<MatchResponse> r =
        Matcher().Match(*snap, PatientBuilder().Age(age).Build(), o);
    EXPECT_TRUE(r.ok());
    return r.ok() && r->stats.gated == 1 && r->results.empty();
  };
  EXPECT_TRUE(gated(17.98));  // a week short of 18
  EXPECT_FALSE(gated(18.0));
  EXPECT_FALSE(gated(65.99));  // 65 completed years
  EXPECT_TRUE(gated(66.01));
}

TEST(ValidationTest, BadOptions) {
  std::shared_ptr<const Snapshot> snap = ManyStudies(1);
  const patient::Profile p = RankingPatient();
  MatchOptions o;
  o.top_k = 0;
  EXPECT_THAT(Matcher().Match(*snap, p, o),
              StatusIs(absl::StatusCode::kInvalidArgument));
  o.top_k = kMaxTopK + 1;
  EXPECT_THAT(Matcher().Match(*snap, p, o),
              StatusIs(absl::StatusCode::kInvalidArgument));
  o.top_k = 10;
  o.max_distance_km = -1;
  EXPECT_THAT(Matcher().Match(*snap, p, o),
              StatusIs(absl::StatusCode::kInvalidArgument));
  o.max_distance_km = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(Matcher().Match(*snap, p, o),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ValidationTest, BadMatcherOptions) {
  using Code = absl::StatusCode;
  EXPECT_THAT(Matcher::Create({.reference_uln = {{"alt", 0}}}),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(Matcher::Create({.reference_uln = {{"ecog", 5}}}),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(Matcher::Create({.reference_uln = {{"lactate", 2}}}),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(Matcher::Create({.reference_uln = {{"ast", 40}, {"ast", 35}}}),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(Matcher::Create({.weights = {0, 0, 0}}),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(Matcher::Create({.weights = {-1, 1, 1}}),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(Matcher::Create({.proximity_scale_km = 0}),
              StatusIs(Code::kInvalidArgument));
  EXPECT_OK(Matcher::Create({.reference_uln = {{"ast", 40}, {"alt", 40}}}));
}

TEST(ConcurrencyTest, ManyThreadsOneSnapshot) {
  std::shared_ptr<const Snapshot> snap = SnapshotOf(GeoStudies());
  const Matcher matcher;
  const patient::Profile p =
      PatientBuilder().Age(40).At(kLondon[0], kLondon[1]).Build();
  ASSERT_OK_AND_ASSIGN(MatchResponse expected,
                       matcher.Match(*snap, p, AllOptions()));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        absl::StatusOr<MatchResponse> r = matcher.Match(*snap, p, AllOptions());
        if (!r.ok() || Ids(*r) != Ids(expected) ||
            r->results[0].score != expected.results[0].score) {
          ++mismatches;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace trialmatch::match::testing
