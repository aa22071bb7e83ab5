// The matcher's accelerators (condition index, ranking bound, best-bound
// queue with the proximity bound, static order) against brute force on a
// synthetic registry (bench/corpus_gen.h: the recorded studies recombined,
// with jittered sites, mixed statuses and multi-condition studies) and the
// generator's patient mix (MeSH-coded, free-text, ICD-10/SNOMED and no
// conditions; located or not, with travel limits). For every patient and
// option set, the ranked results must be identical with and without
// MatchOptions::evaluate_all.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "bench/corpus_gen.h"
#include "criteria/compiler.h"
#include "criteria/rule_set.h"
#include "gtest/gtest.h"
#include "match/geo.h"
#include "match/matcher.h"
#include "match/snapshot.h"
#include "patient/json_reader.h"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::match {
namespace {

using ::trialmatch::testing::SourceDir;
using ::trialmatch::testing::StudiesDir;

constexpr int kStudies = 3000;
constexpr int kPatients = 150;

struct Generated {
  std::shared_ptr<const Snapshot> snapshot;
  std::vector<patient::Profile> patients;
};

const Generated& Load() {
  static const Generated* g = [] {
    auto* out = new Generated();
    absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> rules =
        criteria::RuleSet::LoadDirectory(SourceDir() / "rules");
    EXPECT_TRUE(rules.ok()) << rules.status();
    if (!rules.ok()) return out;
    absl::StatusOr<std::unique_ptr<bench::CorpusGenerator>> gen =
        bench::CorpusGenerator::Create(
            {.studies_dir = StudiesDir(),
             .condition_codes =
                 SourceDir() / "rules/patient/condition_codes.tsv",
             .seed = 7});
    EXPECT_TRUE(gen.ok()) << gen.status();
    if (!gen.ok()) return out;
    criteria::Compiler compiler(*rules);
    SnapshotBuilder builder({.rules = *rules});
    for (int i = 0; i < kStudies; ++i) {
      absl::StatusOr<model::Study> s =
          model::StudyFromJson((*gen)->Study(static_cast<uint64_t>(i)));
      EXPECT_TRUE(s.ok()) << i << ": " << s.status();
      if (!s.ok()) continue;
      EXPECT_TRUE(builder.Add(*s, compiler.Compile(*s)).ok()) << i;
    }
    out->snapshot = std::move(builder).Build();
    for (int j = 0; j < kPatients; ++j) {
      absl::StatusOr<patient::Profile> p =
          patient::FromJsonValue((*gen)->Patient(static_cast<uint64_t>(j)));
      EXPECT_TRUE(p.ok()) << j << ": " << p.status();
      if (p.ok()) out->patients.push_back(*std::move(p));
    }
    return out;
  }();
  return *g;
}

class GeneratedCorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    ASSERT_NE(Load().snapshot, nullptr);
    ASSERT_EQ(Load().snapshot->size(), static_cast<size_t>(kStudies));
    ASSERT_EQ(Load().patients.size(), static_cast<size_t>(kPatients));
  }
};

void ExpectSameRanking(const MatchResponse& fast, const MatchResponse& full) {
  ASSERT_EQ(fast.results.size(), full.results.size());
  for (size_t i = 0; i < full.results.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "rank " << i);
    const MatchResult& a = fast.results[i];
    const MatchResult& b = full.results[i];
    EXPECT_EQ(a.nct_id, b.nct_id);
    EXPECT_EQ(a.verdict, b.verdict);
    EXPECT_EQ(a.score, b.score);
    EXPECT_EQ(a.counts.satisfied, b.counts.satisfied);
    EXPECT_EQ(a.counts.violated, b.counts.violated);
    EXPECT_EQ(a.counts.unknown, b.counts.unknown);
    ASSERT_EQ(a.explanations.size(), b.explanations.size());
    // The explanations come from the evaluation that ranked the study (its
    // recorded detail): the same as the full scan's, reason for reason.
    for (size_t j = 0; j < a.explanations.size(); ++j) {
      SCOPED_TRACE(::testing::Message() << "explanation " << j);
      EXPECT_EQ(a.explanations[j].predicate, b.explanations[j].predicate);
      EXPECT_EQ(a.explanations[j].status, b.explanations[j].status);
      EXPECT_EQ(a.explanations[j].outcome, b.explanations[j].outcome);
      EXPECT_EQ(a.explanations[j].reason, b.explanations[j].reason);
    }
    EXPECT_EQ(a.criterion_outcomes, b.criterion_outcomes);
    ASSERT_EQ(a.matched_conditions.size(), b.matched_conditions.size());
    for (size_t j = 0; j < a.matched_conditions.size(); ++j) {
      EXPECT_EQ(a.matched_conditions[j].study_condition,
                b.matched_conditions[j].study_condition);
      EXPECT_EQ(a.matched_conditions[j].patient_condition,
                b.matched_conditions[j].patient_condition);
    }
    EXPECT_EQ(a.nearest_site.has_value(), b.nearest_site.has_value());
    if (a.nearest_site && b.nearest_site) {
      EXPECT_EQ(a.nearest_site->distance_km, b.nearest_site->distance_km);
      EXPECT_EQ(a.nearest_site->site.facility, b.nearest_site->site.facility);
    }
  }
}

TEST_F(GeneratedCorpusTest, OptimisedRankingEqualsBruteForce) {
  struct Variant {
    const char* name;
    MatchOptions options;
  };
  std::vector<Variant> variants;
  {
    MatchOptions o;  // defaults: top 50, ELIGIBLE + POSSIBLE, recruiting
    o.include_explanations = true;
    variants.push_back({"top 50 + explanations", o});
    o = MatchOptions();
    o.top_k = 5;
    variants.push_back({"top 5", o});
    o = MatchOptions();
    o.top_k = 20;
    o.verdicts = {};
    o.statuses = {};
    variants.push_back({"top 20, every verdict and status", o});
    o = MatchOptions();
    o.top_k = 10;
    o.max_distance_km = 300;
    o.include_unlocated = false;
    variants.push_back({"top 10 within 300 km, located only", o});
  }
  const Generated& g = Load();
  size_t compared = 0;
  size_t pruned = 0;
  size_t fewer = 0;
  for (size_t j = 0; j < g.patients.size(); ++j) {
    for (const Variant& v : variants) {
      SCOPED_TRACE(::testing::Message() << "patient " << j << ", " << v.name);
      MatchOptions brute = v.options;
      brute.evaluate_all = true;
      ASSERT_OK_AND_ASSIGN(
          MatchResponse fast,
          Matcher().Match(*g.snapshot, g.patients[j], v.options));
      ASSERT_OK_AND_ASSIGN(MatchResponse full,
                           Matcher().Match(*g.snapshot, g.patients[j], brute));
      EXPECT_EQ(full.stats.pruned, 0u);
      EXPECT_LE(fast.stats.evaluated, full.stats.evaluated);
      ExpectSameRanking(fast, full);
      compared += full.results.size();
      pruned += fast.stats.pruned;
      if (fast.stats.evaluated < full.stats.evaluated) ++fewer;
    }
  }
  // The comparison is not vacuous: results were ranked, and the
  // accelerators skipped work for most calls.
  EXPECT_GT(compared, static_cast<size_t>(kPatients) * 20);
  EXPECT_GT(pruned, 0u);
  EXPECT_GT(fewer, g.patients.size() * variants.size() / 2);
}

// The site index the matcher walks for located patients without a linked
// condition (Snapshot::site_cells): every study in exactly one cell, ranks
// in unlinked_order(complete) within a cell (both variants), and every open
// site of every study inside its cell's cap (the matcher allows 5 km for the
// floats; the cap itself must hold within 1 km).
TEST_F(GeneratedCorpusTest, SiteCellsHoldEveryStudyOnceAndEveryOpenSite) {
  const Snapshot& s = *Load().snapshot;
  const std::vector<internal::SiteCell>& cells = s.site_cells();
  ASSERT_GE(cells.size(), 2u);
  EXPECT_EQ(cells[0].sites, internal::kSitesNone);
  EXPECT_EQ(cells[1].sites, internal::kSitesAnywhere);
  std::vector<int> seen(s.size(), 0);
  // Each cell's ranks follow unlinked_order(complete), in both variants.
  std::vector<size_t> position[2];
  for (const bool complete : {true, false}) {
    const std::vector<uint32_t>& order = s.unlinked_order(complete);
    ASSERT_EQ(order.size(), s.size());
    ASSERT_EQ(s.cell_ranks(complete).size(), s.size());
    position[complete].resize(s.size());
    for (size_t j = 0; j < s.size(); ++j) position[complete][order[j]] = j;
  }
  size_t capped_cells = 0;
  size_t studies_in_caps = 0;
  for (size_t c = 0; c < cells.size(); ++c) {
    SCOPED_TRACE(::testing::Message() << "cell " << c);
    const internal::SiteCell& cell = cells[c];
    ASSERT_LE(cell.ranks_begin + cell.ranks_count, s.size());
    for (uint32_t i = 0; i < cell.ranks_count; ++i) {
      // The complete-list variant: the same studies per cell, its order.
      const std::vector<uint32_t>& complete = s.cell_ranks(true);
      ASSERT_LT(complete[cell.ranks_begin + i], s.size());
      EXPECT_EQ(s.cell_of_rank()[complete[cell.ranks_begin + i]], c);
      if (i > 0) {
        EXPECT_LT(position[1][complete[cell.ranks_begin + i - 1]],
                  position[1][complete[cell.ranks_begin + i]]);
      }
      const std::vector<uint32_t>& ranks = s.cell_ranks(false);
      const uint32_t rank = ranks[cell.ranks_begin + i];
      ASSERT_LT(rank, s.size());
      ++seen[rank];
      EXPECT_EQ(s.cell_of_rank()[rank], c);
      if (i > 0) {
        EXPECT_LT(position[0][ranks[cell.ranks_begin + i - 1]],
                  position[0][rank]);
      }
      const internal::CompactStudy& cs = s.compact()[s.by_bound()[rank]];
      if (cell.sites == internal::kSitesNone) {
        EXPECT_EQ(cs.sites_count, 0u);
        continue;
      }
      EXPECT_GT(cs.sites_count, 0u);
      if (cell.sites != internal::kSitesCap) continue;
      ++studies_in_caps;
      const double radius_km =
          std::acos(
              std::clamp(static_cast<double>(cell.cap.cos_radius), -1.0, 1.0)) *
          kEarthRadiusKm;
      const UnitVector center{cell.cap.center_x, cell.cap.center_y,
                              cell.cap.center_z};
      for (uint32_t o = cs.sites_begin; o < cs.sites_begin + cs.sites_count;
           ++o) {
        const double km =
            ChordSquaredToKm(ChordSquared(center, s.open_sites()[o].v));
        EXPECT_LE(km, radius_km + 1.0) << "open site " << o;
      }
    }
    if (cell.sites == internal::kSitesCap && cell.ranks_count > 0)
      ++capped_cells;
  }
  for (size_t r = 0; r < seen.size(); ++r)
    EXPECT_EQ(seen[r], 1) << "rank " << r;
  // Not vacuous: most located studies sit in capped cells of their region.
  EXPECT_GT(capped_cells, 20u);
  EXPECT_GT(studies_in_caps, s.size() / 4);
  // The variants for patients without an age: the same cells, each in the
  // order of unlinked_order(complete, without_age = true).
  for (const bool complete : {true, false}) {
    SCOPED_TRACE(complete ? "without age, complete" : "without age");
    const std::vector<uint32_t>& order = s.unlinked_order(complete, true);
    const std::vector<uint32_t>& ranks = s.cell_ranks(complete, true);
    ASSERT_EQ(order.size(), s.size());
    ASSERT_EQ(ranks.size(), s.size());
    std::vector<size_t> at(s.size());
    for (size_t j = 0; j < s.size(); ++j) at[order[j]] = j;
    std::vector<int> once(s.size(), 0);
    for (size_t c = 0; c < cells.size(); ++c) {
      for (uint32_t i = 0; i < cells[c].ranks_count; ++i) {
        const uint32_t rank = ranks[cells[c].ranks_begin + i];
        ASSERT_LT(rank, s.size());
        ++once[rank];
        EXPECT_EQ(s.cell_of_rank()[rank], c);
        if (i > 0) {
          EXPECT_LT(at[ranks[cells[c].ranks_begin + i - 1]], at[rank]);
        }
      }
    }
    for (size_t r = 0; r < once.size(); ++r)
      EXPECT_EQ(once[r], 1) << "rank " << r;
  }
}

// The orders the matcher walks patients without a linked condition in
// (Snapshot::unlinked_order): permutations of the ranks, best first by the
// bound with the required-condition units counted (and, without a complete
// condition list, the excluded-condition units), ties by study index (the
// walk drops a stream at its first head that cannot rank).
TEST_F(GeneratedCorpusTest, UnlinkedOrderIsBestFirstByItsBound) {
  const Snapshot& s = *Load().snapshot;
  size_t tighter[2] = {0, 0};  // [complete]
  for (const bool without_age : {false, true})
    for (const bool complete : {true, false}) {
      SCOPED_TRACE(::testing::Message()
                   << (complete ? "complete list" : "incomplete list")
                   << (without_age ? ", without age" : ""));
      const std::vector<uint32_t>& order =
          s.unlinked_order(complete, without_age);
      const std::vector<uint32_t>& certain =
          s.unlinked_certain(complete, without_age);
      ASSERT_EQ(order.size(), s.size());
      ASSERT_EQ(certain.size(), s.size());
      for (size_t r = 0; r < s.size(); ++r) {
        EXPECT_GE(certain[r], s.keys_by_bound()[r].always_unknown);
        if (!without_age && certain[r] > s.keys_by_bound()[r].always_unknown) {
          ++tighter[complete];
        }
      }
      auto key = [&](uint32_t r) {
        const internal::StudyKey& k = s.keys_by_bound()[r];
        return std::make_tuple(!(k.has_criteria_text && certain[r] == 0),
                               -internal::MaxShare(k, certain[r]),
                               s.by_bound()[r]);
      };
      std::vector<int> seen(s.size(), 0);
      for (size_t j = 0; j < s.size(); ++j) {
        ++seen[order[j]];
        if (j > 0) {
          EXPECT_LT(key(order[j - 1]), key(order[j])) << "position " << j;
        }
      }
      for (size_t r = 0; r < seen.size(); ++r)
        EXPECT_EQ(seen[r], 1) << "rank " << r;
    }
  // Without a complete list every count is at least the complete one's.
  for (size_t r = 0; r < s.size(); ++r) {
    EXPECT_GE(s.unlinked_certain(false)[r], s.unlinked_certain(true)[r]);
  }
  EXPECT_GT(tighter[true], s.size() / 4);    // most studies require a condition
  EXPECT_GT(tighter[false], tighter[true]);  // and many exclude some
  // Without an age, the age units count too: most studies have an age
  // bound, so most counts grow.
  ASSERT_NE(s.age_fact(), 0u);
  for (const bool complete : {true, false}) {
    size_t more = 0;
    for (size_t r = 0; r < s.size(); ++r) {
      EXPECT_GE(s.unlinked_certain(complete, true)[r],
                s.unlinked_certain(complete)[r]);
      more += s.unlinked_certain(complete, true)[r] >
              s.unlinked_certain(complete)[r];
    }
    EXPECT_GT(more, s.size() / 2);
  }
}

}  // namespace
}  // namespace trialmatch::match
