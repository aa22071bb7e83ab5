// The matcher on the recorded corpus: every study of
// shared/data/ctgov_v2/studies compiled with the real rules (rules/), one
// snapshot per test binary.
//  * index correctness: candidate generation returns exactly what a brute-
//    force scan returns, for patients with conditions;
//  * missing data never excludes, on real compiled criteria;
//  * known facts of the records (structured minimum age, MeSH terms) come out
//    as the records say.
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "criteria/compiler.h"
#include "criteria/rule_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "match/matcher.h"
#include "match/snapshot.h"
#include "match_test_util.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::match::testing {
namespace {

using ::trialmatch::testing::ReadFile;
using ::trialmatch::testing::SourceDir;
using ::trialmatch::testing::StudiesDir;

struct Corpus {
  std::shared_ptr<const Snapshot> snapshot;
  // Ground truth read straight from the JSON: NCT id -> condition MeSH ids
  // (normalised) of conditionBrowseModule.meshes.
  std::map<std::string, std::set<std::string>> meshes;
};

const Corpus& LoadCorpus() {
  static const Corpus* corpus = [] {
    auto* c = new Corpus();
    absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> rules =
        criteria::RuleSet::LoadDirectory(SourceDir() / "rules");
    EXPECT_TRUE(rules.ok()) << rules.status();
    if (!rules.ok()) return c;
    criteria::Compiler compiler(*rules);
    SnapshotBuilder builder({.rules = *rules});
    std::vector<std::filesystem::path> files;
    for (const auto& entry :
         std::filesystem::directory_iterator(StudiesDir())) {
      if (entry.path().extension() == ".json") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const std::filesystem::path& f : files) {
      const std::string text = ReadFile(f);
      absl::StatusOr<model::Study> study = model::ParseStudy(text);
      EXPECT_TRUE(study.ok()) << f << ": " << study.status();
      if (!study.ok()) continue;
      absl::Status added = builder.Add(*study, compiler.Compile(*study));
      EXPECT_TRUE(added.ok()) << f << ": " << added;
      const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
      std::set<std::string>& m = c->meshes[study->nct_id];
      const nlohmann::json* meshes = &j;
      for (const char* key :
           {"derivedSection", "conditionBrowseModule", "meshes"}) {
        if (meshes == nullptr || !meshes->is_object() ||
            !meshes->contains(key)) {
          meshes = nullptr;
          break;
        }
        meshes = &(*meshes)[key];
      }
      if (meshes != nullptr && meshes->is_array()) {
        for (const nlohmann::json& x : *meshes) {
          if (x.contains("id") && x["id"].is_string()) {
            m.insert(patient::NormalizeMeshId(x["id"].get<std::string>()));
          }
        }
      }
    }
    c->snapshot = std::move(builder).Build();
    return c;
  }();
  return *corpus;
}

class CorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    corpus_ = &LoadCorpus();
    ASSERT_NE(corpus_->snapshot, nullptr);
    ASSERT_GE(corpus_->snapshot->size(), 1000u);
  }
  const Snapshot& snap() const { return *corpus_->snapshot; }
  const Corpus* corpus_ = nullptr;
};

MatchOptions Everything() {
  MatchOptions o = AllOptions();
  o.top_k = kMaxTopK;
  o.include_explanations = false;
  o.require_condition_match = true;
  return o;
}

patient::Profile CodedPatient(patient::CodeSystem system, std::string code,
                              std::string text, double age, patient::Sex sex) {
  patient::Profile p;
  p.age_years = age;
  p.sex = sex;
  patient::Condition c;
  c.text = std::move(text);
  c.codes.push_back({system, "", std::move(code), ""});
  p.conditions.push_back(std::move(c));
  patient::ReaderOptions o;
  o.reference_date = absl::CivilDay(2025, 6, 15);
  absl::StatusOr<patient::Profile> n =
      patient::NormalizeProfile(std::move(p), o);
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? *std::move(n) : patient::Profile{};
}

std::vector<std::pair<std::string, patient::Profile>> ConditionPatients() {
  using patient::CodeSystem;
  using patient::Sex;
  std::vector<std::pair<std::string, patient::Profile>> v;
  v.emplace_back("t2d_mesh", CodedPatient(CodeSystem::kMesh, "D003924", "", 55,
                                          Sex::kMale));
  v.emplace_back(
      "nsclc_snomed",
      CodedPatient(CodeSystem::kSnomedCt, "254637007", "", 67, Sex::kFemale));
  v.emplace_back("breast_icd10", CodedPatient(CodeSystem::kIcd10Cm, "C50.911",
                                              "", 48, Sex::kFemale));
  v.emplace_back("covid_mesh", CodedPatient(CodeSystem::kMesh, "D000086382", "",
                                            35, Sex::kMale));
  // Located patients (New York; London with a 500 km limit): distances,
  // the site-cap bound and the distance filter take part.
  v.emplace_back("breast_text_new_york", PatientBuilder()
                                             .Age(52)
                                             .Sex(Sex::kFemale)
                                             .Text("metastatic breast cancer")
                                             .At(40.7128, -74.0060)
                                             .Build());
  v.emplace_back("hypertension_ckd_text_london",
                 PatientBuilder()
                     .Age(70)
                     .Text("hypertension")
                     .Text("chronic kidney disease")
                     .Complete()
                     .At(51.5074, -0.1278, 500)
                     .Build());
  v.emplace_back(
      "depression_text",
      PatientBuilder().Age(30).Text("Major Depressive Disorder").Build());
  return v;
}

TEST_F(CorpusTest, IndexReturnsTheSameResultsAsABruteForceScan) {
  // Every related study (top_k larger than the corpus), and the top 50 / 5
  // with the default verdicts, where the ranking bound prunes.
  struct Variant {
    int top_k;
    std::vector<Verdict> verdicts;
  };
  const std::vector<Variant> variants = {
      {kMaxTopK, {}},
      {50, {Verdict::kEligible, Verdict::kPossible}},
      {5, {Verdict::kEligible, Verdict::kPossible}},
      {5, {Verdict::kIneligible}}};
  size_t total_pruned = 0;
  for (const auto& [name, profile] : ConditionPatients()) {
    for (const Variant& v : variants) {
      SCOPED_TRACE(name + " top " + std::to_string(v.top_k));
      MatchOptions indexed = Everything();
      indexed.top_k = v.top_k;
      indexed.verdicts = v.verdicts;
      MatchOptions brute = indexed;
      brute.evaluate_all = true;
      ASSERT_OK_AND_ASSIGN(MatchResponse a,
                           Matcher().Match(snap(), profile, indexed));
      ASSERT_OK_AND_ASSIGN(MatchResponse b,
                           Matcher().Match(snap(), profile, brute));
      EXPECT_TRUE(a.stats.used_index);
      EXPECT_FALSE(b.stats.used_index);
      EXPECT_EQ(b.stats.candidates, snap().size());
      EXPECT_EQ(b.stats.pruned, 0u);
      EXPECT_LT(a.stats.candidates, snap().size() / 2);
      EXPECT_FALSE(a.results.empty());
      ASSERT_EQ(a.results.size(), b.results.size());
      for (size_t i = 0; i < a.results.size(); ++i) {
        EXPECT_EQ(a.results[i].nct_id, b.results[i].nct_id);
        EXPECT_EQ(a.results[i].verdict, b.results[i].verdict);
        EXPECT_EQ(a.results[i].score, b.results[i].score);
        EXPECT_EQ(a.results[i].counts.unknown, b.results[i].counts.unknown);
        EXPECT_FALSE(a.results[i].matched_conditions.empty())
            << a.results[i].nct_id;
      }
      if (v.top_k == kMaxTopK) {
        EXPECT_EQ(a.stats.matched, b.stats.matched);
      }
      total_pruned += a.stats.pruned;
    }
  }
  EXPECT_GT(total_pruned, 0u);  // the bound was exercised
}

TEST_F(CorpusTest, WithoutConditionsTheBoundOrderReturnsTheBruteForceResults) {
  const std::vector<patient::Profile> patients = {
      PatientBuilder().Age(45).Sex(patient::Sex::kMale).Build(),
      PatientBuilder()
          .Age(8)
          .Sex(patient::Sex::kFemale)
          .At(48.8566, 2.3522)
          .Build(),
      PatientBuilder()
          .Age(70)
          .Ecog(1)
          .HealthyVolunteer(patient::Tristate::kYes)
          .At(40.7128, -74.0060, 300)
          .Build()};
  for (size_t i = 0; i < patients.size(); ++i) {
    for (int top_k : {1, 10, 50}) {
      SCOPED_TRACE(::testing::Message() << "patient " << i << " top " << top_k);
      MatchOptions o;  // default verdicts and statuses
      o.top_k = top_k;
      ASSERT_OK_AND_ASSIGN(MatchResponse fast,
                           Matcher().Match(snap(), patients[i], o));
      o.evaluate_all = true;
      ASSERT_OK_AND_ASSIGN(MatchResponse full,
                           Matcher().Match(snap(), patients[i], o));
      ASSERT_EQ(fast.results.size(), full.results.size());
      for (size_t j = 0; j < full.results.size(); ++j) {
        EXPECT_EQ(fast.results[j].nct_id, full.results[j].nct_id);
        EXPECT_EQ(fast.results[j].score, full.results[j].score);
      }
      // Fewer evaluations whenever the top_k fills (not for the child or
      // the distance-limited patient, whose wanted results are few).
      EXPECT_LE(fast.stats.evaluated, full.stats.evaluated);
      if (i == 0) {
        EXPECT_LT(fast.stats.evaluated, full.stats.evaluated);
      }
    }
  }
}

TEST_F(CorpusTest, EveryStudyListingTheDescriptorIsFoundExactly) {
  // Ground truth from the JSON: studies whose conditionBrowseModule lists
  // type 2 diabetes are exactly those matched exactly through their
  // conditions (more match through inclusion criteria naming it).
  std::set<std::string> expected;
  for (const auto& [id, meshes] : corpus_->meshes) {
    if (meshes.count("D000003924") != 0) expected.insert(id);
  }
  ASSERT_GE(expected.size(), 5u);
  const patient::Profile p = CodedPatient(patient::CodeSystem::kMesh, "D003924",
                                          "T2DM", 55, patient::Sex::kMale);
  ASSERT_OK_AND_ASSIGN(MatchResponse r,
                       Matcher().Match(snap(), p, Everything()));
  std::set<std::string> exact;
  for (const MatchResult& m : r.results) {
    for (const ConditionMatch& c : m.matched_conditions) {
      if (c.strength == MatchStrength::kExact && c.mesh_id == "D000003924" &&
          !c.from_criteria) {
        exact.emplace(m.nct_id);
      }
    }
  }
  EXPECT_EQ(exact, expected);
}

TEST_F(CorpusTest, PatientTextIsReadWithTheRulesSynonyms) {
  // "carcinoma of the breast" is no MeSH term, but the rules' synonym table
  // knows it: the same studies as for the MeSH term itself.
  const patient::Profile synonym = PatientBuilder()
                                       .Age(50)
                                       .Sex(patient::Sex::kFemale)
                                       .Text("carcinoma of the breast")
                                       .Build();
  const patient::Profile term = PatientBuilder()
                                    .Age(50)
                                    .Sex(patient::Sex::kFemale)
                                    .Text("Breast Neoplasms")
                                    .Build();
  ASSERT_OK_AND_ASSIGN(MatchResponse a,
                       Matcher().Match(snap(), synonym, Everything()));
  ASSERT_OK_AND_ASSIGN(MatchResponse b,
                       Matcher().Match(snap(), term, Everything()));
  EXPECT_GE(a.results.size(), 20u);
  std::set<std::string> ids_a;
  std::set<std::string> ids_b;
  for (const MatchResult& m : a.results) ids_a.emplace(m.nct_id);
  for (const MatchResult& m : b.results) ids_b.emplace(m.nct_id);
  // Every study about breast neoplasms by MeSH is found through the synonym.
  for (const auto& [id, meshes] : corpus_->meshes) {
    if (meshes.count("D000001943") != 0) {
      EXPECT_EQ(ids_a.count(id), 1u) << id;
      EXPECT_EQ(ids_b.count(id), 1u) << id;
    }
  }
  // Negated or hedged text names no condition of the patient's: nothing
  // links, so every study is considered and none matches a condition.
  for (const char* text : {"family history of breast cancer",
                           "no breast cancer", "suspected breast cancer"}) {
    ASSERT_OK_AND_ASSIGN(
        MatchResponse none,
        Matcher().Match(snap(), PatientBuilder().Age(50).Text(text).Build(),
                        Everything()));
    EXPECT_EQ(none.results.size(), snap().size()) << text;
    for (const MatchResult& m : none.results) {
      EXPECT_TRUE(m.matched_conditions.empty()) << text << " " << m.nct_id;
    }
    EXPECT_THAT(none.notes,
                ::testing::Contains(
                    "conditions[0]: not linked to any study condition"));
  }
}

TEST_F(CorpusTest, CompiledUnitsAreTheCanonicalOnes) {
  // The compiler converts bounds to the canonical units the profile uses; a
  // mismatch would leave a predicate UNKNOWN for every patient.
  size_t numeric = 0;
  for (const internal::CompactPredicate& p : snap().predicates()) {
    if (p.kind() != Kind::kAge && p.kind() != Kind::kLab &&
        p.kind() != Kind::kPerformanceStatus) {
      continue;
    }
    ++numeric;
    EXPECT_TRUE(p.unit_ok) << (p.quantity < snap().quantities().size()
                                   ? snap().quantities()[p.quantity]
                                   : std::string("?"));
  }
  EXPECT_GT(numeric, 1000u);
}

TEST_F(CorpusTest, MissingDataNeverExcludes) {
  // An empty profile: nothing is known, nothing may be violated.
  ASSERT_OK_AND_ASSIGN(
      MatchResponse empty,
      Matcher().Match(snap(), patient::Profile{}, Everything()));
  EXPECT_EQ(empty.results.size(), snap().size());
  for (const MatchResult& m : empty.results) {
    EXPECT_NE(m.verdict, Verdict::kIneligible) << m.nct_id;
  }
  // Only age and sex known: only age and sex can be violated.
  const patient::Profile p =
      PatientBuilder().Age(40).Sex(patient::Sex::kFemale).Build();
  ASSERT_OK_AND_ASSIGN(MatchResponse partial,
                       Matcher().Match(snap(), p, Everything()));
  size_t ineligible = 0;
  for (const MatchResult& m : partial.results) {
    if (m.verdict != Verdict::kIneligible) continue;
    ++ineligible;
    for (const Explanation& e : m.explanations) {
      if (e.outcome != Outcome::kViolated || e.any_of_group >= 0) continue;
      EXPECT_TRUE(e.kind == Kind::kAge || e.kind == Kind::kSex)
          << m.nct_id << " " << e.rule_id << ": " << e.reason;
    }
  }
  EXPECT_GT(ineligible, 0u);  // some studies are for men, or for children
}

TEST_F(CorpusTest, StructuredMinimumAgeExcludesTheYoung) {
  // Every study whose record has minimumAge "18 Years": a 16-year-old is
  // ineligible through structured.minimum_age, with the field as evidence.
  std::set<std::string> adult_only;
  for (size_t i = 0; i < snap().size(); ++i) {
    const StudyInfo& info = snap().study(i);
    for (size_t p = 0; p < info.predicates.size(); ++p) {
      if (snap().String(info.predicates[p].rule_id) ==
              "structured.minimum_age" &&
          snap().EvidenceText(i, p) == "18 Years") {
        adult_only.insert(info.nct_id);
      }
    }
  }
  ASSERT_GE(adult_only.size(), 100u);
  const patient::Profile teen = PatientBuilder().Age(16).Build();
  ASSERT_OK_AND_ASSIGN(MatchResponse r,
                       Matcher().Match(snap(), teen, Everything()));
  size_t checked = 0;
  for (const MatchResult& m : r.results) {
    if (adult_only.count(std::string(m.nct_id)) == 0) continue;
    ++checked;
    EXPECT_EQ(m.verdict, Verdict::kIneligible) << m.nct_id;
    bool found = false;
    for (const Explanation& e : m.explanations) {
      if (e.rule_id == "structured.minimum_age") {
        found = true;
        EXPECT_EQ(e.outcome, Outcome::kViolated);
        EXPECT_EQ(e.evidence.field,
                  "protocolSection.eligibilityModule.minimumAge");
        EXPECT_EQ(e.reason, "requires age ≥ 18 years; patient is 16 years old");
      }
    }
    EXPECT_TRUE(found) << m.nct_id;
  }
  EXPECT_EQ(checked, adult_only.size());
}

TEST_F(CorpusTest, DefaultOptionsReturnRankedRecruitingStudies) {
  const patient::Profile p = CodedPatient(patient::CodeSystem::kMesh, "D003924",
                                          "", 55, patient::Sex::kMale);
  MatchOptions o;  // defaults: top 50, eligible + possible, recruiting statuses
  o.include_explanations = true;
  ASSERT_OK_AND_ASSIGN(MatchResponse r, Matcher().Match(snap(), p, o));
  ASSERT_FALSE(r.results.empty());
  EXPECT_LE(r.results.size(), 50u);
  for (size_t i = 0; i < r.results.size(); ++i) {
    const MatchResult& m = r.results[i];
    EXPECT_TRUE(m.overall_status == "RECRUITING" ||
                m.overall_status == "NOT_YET_RECRUITING");
    EXPECT_NE(m.verdict, Verdict::kIneligible);
    EXPECT_FALSE(m.explanations.empty());
    const StudyInfo& info = snap().study(*snap().Find(m.nct_id));
    EXPECT_EQ(m.explanations.size(),
              info.predicates.size() + (info.criteria_count == 0 ? 1 : 0));
    for (const Explanation& e : m.explanations) EXPECT_FALSE(e.reason.empty());
    if (i > 0) {
      const MatchResult& prev = r.results[i - 1];
      const bool ordered =
          static_cast<int>(prev.verdict) < static_cast<int>(m.verdict) ||
          (prev.verdict == m.verdict &&
           (prev.score > m.score ||
            (prev.score == m.score && prev.nct_id < m.nct_id)));
      EXPECT_TRUE(ordered) << prev.nct_id << " before " << m.nct_id;
    }
  }
}

}  // namespace
}  // namespace trialmatch::match::testing
