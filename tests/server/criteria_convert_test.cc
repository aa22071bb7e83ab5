// criteria::CompiledStudy -> trialmatch.v1.CompiledStudy on real compiled
// studies: every field carried over, indexes kept, -1 as absent, absent
// bounds absent, no _UNSPECIFIED enum produced.
#include "server/criteria_convert.h"

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "criteria/criteria_test_util.h"
#include "criteria/json.h"
#include "gtest/gtest.h"
#include "testing/test_paths.h"

namespace trialmatch::server {
namespace {

using ::trialmatch::criteria::testing::LoadStudy;
using ::trialmatch::criteria::testing::ProjectCompiler;
using ::trialmatch::criteria::testing::ProjectRules;

void ExpectEvidence(const criteria::Evidence& e, const v1::Evidence& p) {
  EXPECT_EQ(p.source(), e.source == criteria::EvidenceSource::kStructuredField
                            ? v1::EVIDENCE_SOURCE_STRUCTURED_FIELD
                            : v1::EVIDENCE_SOURCE_CRITERIA_TEXT);
  EXPECT_EQ(p.field(), e.field);
  EXPECT_EQ(p.span().begin(), e.span.begin);
  EXPECT_EQ(p.span().end(), e.span.end);
  EXPECT_EQ(p.text(), e.text);
}

// Field by field; enum names compared through the JSON names (an independent
// table: criteria/json.h) with the proto's value names.
void ExpectSame(const criteria::CompiledStudy& cs, const v1::CompiledStudy& p) {
  EXPECT_EQ(p.nct_id(), cs.nct_id);
  EXPECT_EQ(p.compiler_version(), cs.compiler_version);
  EXPECT_EQ(p.rules_version(), cs.rules_version);
  ASSERT_EQ(p.criteria_size(), static_cast<int>(cs.criteria.size()));
  for (int i = 0; i < p.criteria_size(); ++i) {
    SCOPED_TRACE("criterion " + std::to_string(i));
    const criteria::Criterion& c = cs.criteria[i];
    const v1::Criterion& pc = p.criteria(i);
    EXPECT_EQ(v1::CriteriaSection_Name(pc.section()),
              c.section == criteria::Section::kUnspecified
                  ? "CRITERIA_SECTION_NONE"
                  : "CRITERIA_SECTION_" +
                        std::string(criteria::SectionName(c.section)));
    EXPECT_EQ(v1::Polarity_Name(pc.polarity()),
              "POLARITY_" + std::string(criteria::PolarityName(c.polarity)));
    EXPECT_EQ(pc.span().begin(), c.span.begin);
    EXPECT_EQ(pc.span().end(), c.span.end);
    EXPECT_EQ(pc.text(), c.text);
    EXPECT_EQ(pc.has_parent(), c.parent >= 0);
    if (c.parent >= 0) {
      EXPECT_EQ(pc.parent(), c.parent);
    }
    EXPECT_EQ(pc.depth(), c.depth);
    EXPECT_EQ(pc.any_of(), c.any_of);
    EXPECT_EQ(std::vector<int>(pc.children().begin(), pc.children().end()),
              c.children);
    EXPECT_EQ(std::vector<int>(pc.predicates().begin(), pc.predicates().end()),
              c.predicates);
  }
  ASSERT_EQ(p.predicates_size(), static_cast<int>(cs.predicates.size()));
  for (int i = 0; i < p.predicates_size(); ++i) {
    SCOPED_TRACE("predicate " + std::to_string(i));
    const criteria::Predicate& c = cs.predicates[i];
    const v1::Predicate& pp = p.predicates(i);
    EXPECT_EQ(v1::PredicateKind_Name(pp.kind()),
              "PREDICATE_KIND_" + std::string(criteria::KindName(c.kind)));
    EXPECT_EQ(v1::Polarity_Name(pp.polarity()),
              "POLARITY_" + std::string(criteria::PolarityName(c.polarity)));
    EXPECT_EQ(pp.informational(), c.informational);
    EXPECT_EQ(pp.rule_id(), c.rule_id);
    ExpectEvidence(c.evidence, pp.evidence());
    EXPECT_EQ(pp.has_criterion(), c.criterion >= 0);
    if (c.criterion >= 0) {
      EXPECT_EQ(pp.criterion(), c.criterion);
    }
    EXPECT_EQ(pp.quantity(), c.quantity);
    EXPECT_EQ(pp.has_low(), c.low.has_value());
    if (c.low) {
      EXPECT_EQ(pp.low(), *c.low);
    }
    EXPECT_EQ(pp.has_high(), c.high.has_value());
    if (c.high) {
      EXPECT_EQ(pp.high(), *c.high);
    }
    EXPECT_EQ(pp.low_inclusive(), c.low_inclusive);
    EXPECT_EQ(pp.high_inclusive(), c.high_inclusive);
    EXPECT_EQ(pp.unit(), c.unit);
    EXPECT_EQ(pp.relative_to_uln(), c.relative_to_uln);
    EXPECT_EQ(pp.original_value(), c.original_value);
    if (c.kind == criteria::Kind::kSex) {
      EXPECT_EQ(v1::Predicate::Sex_Name(pp.sex()),
                "SEX_" + std::string(model::SexName(c.sex)));
    } else {
      EXPECT_EQ(pp.sex(), v1::Predicate::SEX_UNSPECIFIED);
    }
    ASSERT_EQ(pp.concepts_size(), static_cast<int>(c.concepts.size()));
    for (int k = 0; k < pp.concepts_size(); ++k) {
      EXPECT_EQ(pp.concepts(k).text(), c.concepts[k].text);
      EXPECT_EQ(pp.concepts(k).normalized(), c.concepts[k].normalized);
      EXPECT_EQ(std::vector<std::string>(pp.concepts(k).mesh_ids().begin(),
                                         pp.concepts(k).mesh_ids().end()),
                c.concepts[k].mesh_ids);
      EXPECT_EQ(
          std::vector<std::string>(pp.concepts(k).ancestor_mesh_ids().begin(),
                                   pp.concepts(k).ancestor_mesh_ids().end()),
          c.concepts[k].ancestor_mesh_ids);
    }
    EXPECT_EQ(pp.accepts_healthy_volunteers(), c.accepts_healthy_volunteers);
    EXPECT_EQ(pp.note(), c.note);
  }
  ASSERT_EQ(p.conflicts_size(), static_cast<int>(cs.conflicts.size()));
  for (int i = 0; i < p.conflicts_size(); ++i) {
    EXPECT_EQ(v1::PredicateKind_Name(p.conflicts(i).kind()),
              "PREDICATE_KIND_" +
                  std::string(criteria::KindName(cs.conflicts[i].kind)));
    EXPECT_EQ(p.conflicts(i).description(), cs.conflicts[i].description);
    ExpectEvidence(cs.conflicts[i].structured, p.conflicts(i).structured());
    ExpectEvidence(cs.conflicts[i].text, p.conflicts(i).text());
  }
  EXPECT_EQ(std::vector<std::string>(p.notes().begin(), p.notes().end()),
            cs.notes);
}

TEST(CriteriaConvertTest, RecordedStudiesConvertFieldByField) {
  TM_REQUIRE_SHARED_DATA();
  ASSERT_NE(ProjectRules(), nullptr);
  const std::vector<std::string> ids =
      trialmatch::testing::RecordedIds(SIZE_MAX);
  int with_sex = 0;
  int with_bounds = 0;
  // Every 10th study: a spread over the corpus, fast enough in debug builds.
  for (std::size_t i = 0; i < ids.size(); i += 10) {
    SCOPED_TRACE(ids[i]);
    const criteria::CompiledStudy cs =
        ProjectCompiler().Compile(LoadStudy(ids[i]));
    v1::CompiledStudy proto;
    proto.add_notes("stale content, cleared by the conversion");
    CompiledStudyToProto(cs, &proto);
    ExpectSame(cs, proto);
    for (const criteria::Predicate& p : cs.predicates) {
      with_sex += p.kind == criteria::Kind::kSex;
      with_bounds += p.low.has_value() || p.high.has_value();
    }
  }
  // The sample exercises the optional parts.
  EXPECT_GT(with_sex, 0);
  EXPECT_GT(with_bounds, 0);
}

TEST(CriteriaConvertTest, SectionsAndDefaultsOfABareText) {
  criteria::CompiledStudy cs;
  cs.criteria.push_back({});  // section kUnspecified, parent -1
  criteria::Predicate p;      // kOther, no criterion, no bounds
  cs.predicates.push_back(p);
  v1::CompiledStudy proto;
  CompiledStudyToProto(cs, &proto);
  EXPECT_EQ(proto.criteria(0).section(), v1::CRITERIA_SECTION_NONE);
  EXPECT_FALSE(proto.criteria(0).has_parent());
  EXPECT_EQ(proto.predicates(0).kind(), v1::PREDICATE_KIND_OTHER);
  EXPECT_EQ(proto.predicates(0).polarity(), v1::POLARITY_INCLUSION);
  EXPECT_FALSE(proto.predicates(0).has_criterion());
  EXPECT_FALSE(proto.predicates(0).has_low());
  EXPECT_FALSE(proto.predicates(0).has_high());
  EXPECT_TRUE(proto.predicates(0).low_inclusive());
  EXPECT_EQ(proto.predicates(0).evidence().source(),
            v1::EVIDENCE_SOURCE_CRITERIA_TEXT);
}

}  // namespace
}  // namespace trialmatch::server
