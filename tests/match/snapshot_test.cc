// Snapshot building: validation of inputs, order, normalised MeSH data,
// derived ancestry and term dictionary, site status, posting lists.
#include "match/snapshot.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "match_test_util.h"
#include "testing/status_matchers.h"

namespace trialmatch::match::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::trialmatch::testing::StatusIs;

TEST(SnapshotBuilderTest, RejectsBadInput) {
  SnapshotBuilder b;
  TestStudy bad_id("NCT123");
  EXPECT_THAT(b.Add(bad_id.study, bad_id.compiled),
              StatusIs(absl::StatusCode::kInvalidArgument));

  TestStudy mismatch("NCT00000001");
  mismatch.compiled.nct_id = "NCT00000002";
  EXPECT_THAT(
      b.Add(mismatch.study, mismatch.compiled),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("belong to")));

  TestStudy ok("NCT00000001");
  ok.Criterion({Age(18, std::nullopt)});
  EXPECT_OK(b.Add(ok.study, ok.compiled));
  EXPECT_THAT(b.Add(ok.study, ok.compiled),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(b.size(), 1u);
}

TEST(SnapshotBuilderTest, RejectsInconsistentCompiledIndexes) {
  auto check = [](TestStudy s, std::string_view what) {
    SCOPED_TRACE(what);
    SnapshotBuilder b;
    EXPECT_THAT(b.Add(s.study, s.compiled),
                StatusIs(absl::StatusCode::kInvalidArgument));
  };
  TestStudy base("NCT00000001");
  const int parent = base.Criterion({Age(18, std::nullopt)});
  base.Criterion({Lab("hemoglobin", 9, std::nullopt, "g/dL")}, parent);
  {
    SnapshotBuilder b;
    EXPECT_OK(b.Add(base.study, base.compiled));
  }
  TestStudy s = base;
  s.compiled.predicates[0].criterion = 7;
  check(s, "predicate criterion out of range");
  s = base;
  s.compiled.criteria[0].predicates.push_back(1);
  check(s, "predicate listed under a foreign criterion");
  s = base;
  s.compiled.criteria[0].predicates.clear();
  check(s, "predicate not listed by its criterion");
  s = base;
  s.compiled.criteria[1].children.push_back(0);
  s.compiled.criteria[0].parent = 1;
  check(s, "cycle");
  s = base;
  s.compiled.criteria[0].children.push_back(5);
  check(s, "child out of range");
  s = base;
  s.compiled.criteria[1].parent = -1;
  check(s, "child does not point back");
}

TEST(SnapshotTest, SortedByNctIdWithFind) {
  TestStudy b("NCT00000002");
  TestStudy a("NCT00000001");
  b.Criterion({Age(18, std::nullopt)});
  a.Criterion({Age(18, std::nullopt)});
  std::shared_ptr<const Snapshot> snap = SnapshotOf({b, a});
  ASSERT_EQ(snap->size(), 2u);
  EXPECT_EQ(snap->study(0).nct_id, "NCT00000001");
  EXPECT_EQ(snap->study(1).nct_id, "NCT00000002");
  EXPECT_EQ(snap->Find("NCT00000002"), 1u);
  EXPECT_EQ(snap->Find("NCT00000003"), std::nullopt);
  EXPECT_EQ(snap->stats().studies, 2u);
  EXPECT_EQ(snap->stats().predicates, 2u);
}

TEST(SnapshotTest, ConvenienceBuildReportsErrors) {
  TestStudy a("NCT00000001");
  std::vector<std::pair<model::Study, criteria::CompiledStudy>> v = {
      {a.study, a.compiled}, {a.study, a.compiled}};
  EXPECT_THAT(Snapshot::Build(v), StatusIs(absl::StatusCode::kAlreadyExists));
  v.pop_back();
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Snapshot> s, Snapshot::Build(v));
  EXPECT_EQ(s->size(), 1u);
}

TEST(SnapshotTest, MeshIdsNormalisedAndAncestryFromSingleConditionStudies) {
  TestStudy single("NCT00000001");
  single.Conditions({{"D003924", "Diabetes Mellitus, Type 2"}},
                    {{"D000003920", "Diabetes Mellitus"},
                     {"D004700", "Endocrine System Diseases"}});
  TestStudy multi("NCT00000002");
  multi.Conditions(
      {{"D001943", "Breast Neoplasms"},
       {"D000003924", "Diabetes Mellitus, Type 2"}},
      {{"D009369", "Neoplasms"}, {"D003920", "Diabetes Mellitus"}});
  std::shared_ptr<const Snapshot> snap = SnapshotOf({single, multi});
  auto ids = [&](const std::vector<uint32_t>& keys) {
    std::vector<std::string> out;
    for (uint32_t k : keys) out.push_back(snap->MeshId(k));
    return out;
  };
  EXPECT_THAT(ids(snap->study(0).condition_meshes), ElementsAre("D000003924"));
  EXPECT_THAT(ids(snap->study(0).ancestors),
              ElementsAre("D000003920", "D000004700"));
  EXPECT_THAT(ids(snap->study(1).condition_meshes),
              ElementsAre("D000001943", "D000003924"));

  const uint32_t t2d = snap->MeshKey("D000003924");
  ASSERT_NE(t2d, internal::kNoId);
  const std::vector<uint32_t>* anc = snap->Ancestors(t2d);
  ASSERT_NE(anc, nullptr);
  std::vector<std::string> anc_ids = ids(*anc);
  std::sort(anc_ids.begin(), anc_ids.end());
  // Not Neoplasms: the two-condition study does not say whose ancestor it is.
  EXPECT_THAT(anc_ids, ElementsAre("D000003920", "D000004700"));
  EXPECT_EQ(snap->Ancestors(snap->MeshKey("D000001943")), nullptr);
  // Terms of meshes and ancestors map to their descriptors.
  const std::vector<uint32_t>* by_term =
      snap->MeshForTerm(snap->TermKey(NormalizeTerm("diabetes mellitus")));
  ASSERT_NE(by_term, nullptr);
  ASSERT_EQ(by_term->size(), 1u);
  EXPECT_EQ(snap->MeshId((*by_term)[0]), "D000003920");
}

TEST(SnapshotTest, PostingLists) {
  TestStudy a("NCT00000001");
  a.Conditions({kType2Diabetes}, {kDiabetes});
  TestStudy b("NCT00000002");
  b.Conditions({kDiabetes});
  TestStudy c("NCT00000003");
  c.Criterion({HasCondition({Concept("long covid")}, kIncl)});
  TestStudy d("NCT00000004");  // an exclusion does not make a study relevant
  d.Criterion({HasCondition({Concept("type 2 diabetes", {"D003924"})}, kExcl)});
  std::shared_ptr<const Snapshot> snap = SnapshotOf({a, b, c, d});
  // The lists hold by_bound ranks; as study indexes:
  auto studies = [&](const std::vector<uint32_t>* ranks) {
    std::vector<uint32_t> out;
    if (ranks == nullptr) return out;
    EXPECT_TRUE(std::is_sorted(ranks->begin(), ranks->end()));
    for (uint32_t r : *ranks) out.push_back(snap->by_bound().at(r));
    return out;
  };
  EXPECT_THAT(studies(snap->RanksWithMesh(snap->MeshKey("D000003924"))),
              ElementsAre(0u));
  EXPECT_THAT(studies(snap->RanksWithMesh(snap->MeshKey("D000003920"))),
              ElementsAre(1u));
  EXPECT_THAT(studies(snap->RanksWithAncestor(snap->MeshKey("D000003920"))),
              ElementsAre(0u));
  EXPECT_THAT(studies(snap->RanksWithTerm(snap->TermKey("long covid"))),
              ElementsAre(2u));
  std::optional<uint16_t> rec = snap->StatusIndex("RECRUITING");
  ASSERT_TRUE(rec.has_value());
  EXPECT_THAT(snap->StudiesWithStatus(*rec), ElementsAre(0u, 1u, 2u, 3u));
  EXPECT_EQ(snap->StatusIndex("WITHDRAWN"), std::nullopt);
}

TEST(SnapshotTest, SitesKeepOnlyLocatedOnesAndMarkOpenOnes) {
  TestStudy s("NCT00000001");
  s.Site("A", 1, 2, "RECRUITING")
      .Site("B", 3, 4, "COMPLETED")
      .Site("C", 5, 6, "");
  model::Location nogeo;
  nogeo.facility = "No geo";
  s.study.locations.push_back(nogeo);
  std::shared_ptr<const Snapshot> snap = SnapshotOf({s});
  const StudyInfo& info = snap->study(0);
  EXPECT_EQ(info.listed_sites, 4u);
  ASSERT_EQ(info.sites.size(), 3u);
  EXPECT_TRUE(info.sites[0].open);
  EXPECT_FALSE(info.sites[1].open);
  EXPECT_TRUE(info.sites[2].open);  // inherits RECRUITING
  EXPECT_EQ(snap->stats().open_sites, 2u);
  const Site b = snap->SiteOf(0, 1);
  EXPECT_EQ(b.facility, "B");
  EXPECT_EQ(b.status, "COMPLETED");
  EXPECT_FLOAT_EQ(b.latitude, 3);
  EXPECT_FLOAT_EQ(b.longitude, 4);
}

TEST(SnapshotTest, KeepsWhatExplanationsQuote) {
  TestStudy s("NCT00000001");
  s.Structured(Age(18, std::nullopt, kIncl, "18 Years"));
  s.compiled.predicates[0].evidence.text = "18 Years";
  s.compiled.predicates[0].note = "a note";
  s.Criterion({Lab("hemoglobin", 9, std::nullopt, "g/dL")}, -1, false,
              "Hemoglobin >= 9 g/dL");
  criteria::Conflict c;
  c.description = "text says minimum age 21 years; minimumAge is 18 Years";
  s.compiled.conflicts.push_back(c);
  s.compiled.notes.push_back("eligibility text has headings only");
  std::shared_ptr<const Snapshot> snap = SnapshotOf({s});
  const StudyInfo& info = snap->study(0);
  ASSERT_EQ(info.predicates.size(), 2u);
  EXPECT_EQ(info.criteria_count, 1u);
  EXPECT_EQ(snap->String(info.predicates[0].rule_id), "test.age");
  EXPECT_EQ(snap->String(info.predicates[0].note), "a note");
  EXPECT_EQ(snap->EvidenceText(0, 0), "18 Years");
  // A text predicate's evidence is a slice of the criteria text.
  const EvidenceRef e = snap->EvidenceOf(0, 1);
  EXPECT_EQ(e.text, "Hemoglobin >= 9 g/dL");
  EXPECT_EQ(e.field, "protocolSection.eligibilityModule.eligibilityCriteria");
  EXPECT_EQ(e.span.begin, s.compiled.predicates[1].evidence.span.begin);
  EXPECT_EQ(info.predicates[1].text_begin, 0u);  // no copy
  EXPECT_EQ(info.predicates[1].criterion, 0);
  ASSERT_EQ(info.conflicts.size(), 1u);
  EXPECT_EQ(snap->String(info.conflicts[0]), c.description);
  ASSERT_EQ(info.notes.size(), 1u);
  EXPECT_EQ(snap->String(info.notes[0]), "eligibility text has headings only");
  EXPECT_EQ(snap->OverallStatus(0), "RECRUITING");
}

TEST(SnapshotTest, RepeatedStringsAreStoredOnce) {
  std::vector<TestStudy> v;
  for (int i = 1; i <= 50; ++i) {
    TestStudy s(absl::StrFormat("NCT%08d", i));
    s.Structured(Age(18, std::nullopt, kIncl, "18 Years"));
    s.Site("Mayo Clinic", 44.02, -92.47, "RECRUITING", "Rochester");
    v.push_back(s);
  }
  std::shared_ptr<const Snapshot> snap = SnapshotOf(v);
  EXPECT_EQ(snap->study(0).sites[0].facility,
            snap->study(49).sites[0].facility);
  EXPECT_EQ(snap->study(0).predicates[0].rule_id,
            snap->study(49).predicates[0].rule_id);
  EXPECT_LT(snap->stats().strings, 20u);
}

TEST(NormalizeTermTest, PunctuationCaseSpaces) {
  EXPECT_EQ(NormalizeTerm("Diabetes Mellitus, Type 2"),
            "diabetes mellitus type 2");
  EXPECT_EQ(NormalizeTerm("  Non-Small-Cell   Lung Cancer. "),
            "non small cell lung cancer");
  EXPECT_EQ(NormalizeTerm("Sjögren's"), "sjögren s");
  EXPECT_THAT(NormalizeTerm(" ,.; "), IsEmpty());
}

}  // namespace
}  // namespace trialmatch::match::testing
