// The compiler against the hand-labelled gold set in
// tests/data/criteria_gold/gold.jsonl (labels made by reading the texts, not
// by this code): recall and precision of lab thresholds, performance status,
// pregnancy and breastfeeding exclusions, and the applicable age bounds.
// Thresholds guard against regressions; the measured figures are printed.
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "criteria_test_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace trialmatch::criteria {
namespace {

using Json = nlohmann::json;
using testing::LoadStudy;
using testing::ProjectCompiler;

std::vector<Json> Gold() {
  std::vector<Json> out;
  std::ifstream in(::trialmatch::testing::TestDataDir() / "criteria_gold" / "gold.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    Json j = Json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

bool Close(double a, double b) { return std::fabs(a - b) <= 0.02 * std::max(1.0, std::fabs(b)); }

struct Score {
  int tp = 0;
  int fn = 0;
  int fp = 0;
  double Recall() const { return tp + fn == 0 ? 1 : static_cast<double>(tp) / (tp + fn); }
  double Precision() const { return tp + fp == 0 ? 1 : static_cast<double>(tp) / (tp + fp); }
};

struct Bound {
  std::string quantity;
  Polarity polarity;
  bool low;
  double value;
  bool uln;
};

TEST(GoldEvalTest, MeetsThresholds) {
  TM_REQUIRE_SHARED_DATA();
  const std::vector<Json> gold = Gold();
  ASSERT_GE(gold.size(), 200u) << "gold set missing";
  Score labs, perf, preg, breast, age;
  for (const Json& g : gold) {
    const std::string nct = g["nct_id"].get<std::string>();
    const CompiledStudy cs = ProjectCompiler().Compile(LoadStudy(nct));
    // Predicted lab bounds, one per side.
    std::vector<Bound> predicted;
    std::vector<const Predicate*> perf_pred;
    bool has_preg = false;
    bool has_breast = false;
    std::optional<double> min_age, max_age;
    for (const Predicate& p : cs.predicates) {
      if (p.kind == Kind::kAge && !p.informational && p.polarity == Polarity::kInclusion) {
        if (p.low) min_age = min_age ? std::max(*min_age, *p.low) : *p.low;
        if (p.high) max_age = max_age ? std::min(*max_age, *p.high) : *p.high;
      }
      if (p.informational || p.evidence.source != EvidenceSource::kCriteriaText) continue;
      if (p.kind == Kind::kLab) {
        if (p.low) predicted.push_back({p.quantity, p.polarity, true, *p.low, p.relative_to_uln});
        if (p.high) predicted.push_back({p.quantity, p.polarity, false, *p.high, p.relative_to_uln});
      }
      if (p.kind == Kind::kPerformanceStatus) perf_pred.push_back(&p);
      if (p.kind == Kind::kPregnancy && p.polarity == Polarity::kExclusion) has_preg = true;
      if (p.kind == Kind::kBreastfeeding && p.polarity == Polarity::kExclusion) has_breast = true;
    }
    std::vector<bool> used(predicted.size(), false);
    for (const Json& lab : g["labs"]) {
      const std::string cmp = lab["comparator"].get<std::string>();
      const bool low = cmp == ">=" || cmp == ">";
      const Polarity pol = lab["polarity"] == "exclusion" ? Polarity::kExclusion : Polarity::kInclusion;
      bool found = false;
      for (size_t i = 0; i < predicted.size() && !found; ++i) {
        const Bound& b = predicted[i];
        if (!used[i] && b.quantity == lab["quantity"] && b.polarity == pol && b.low == low &&
            b.uln == lab["relative_to_uln"].get<bool>() &&
            Close(b.value, lab["canonical_value"].get<double>())) {
          used[i] = true;
          found = true;
        }
      }
      const bool lenient = lab.value("conditional", false) || lab.value("uncertain", false);
      if (found) {
        ++labs.tp;
      } else if (!lenient) {
        ++labs.fn;
      }
    }
    for (bool u : used) labs.fp += u ? 0 : 1;
    std::vector<bool> perf_used(perf_pred.size(), false);
    for (const Json& pf : g["performance"]) {
      bool found = false;
      for (size_t i = 0; i < perf_pred.size() && !found; ++i) {
        if (!perf_used[i] && perf_pred[i]->quantity == pf["scale"]) {
          perf_used[i] = true;
          found = true;
        }
      }
      if (found) {
        ++perf.tp;
      } else if (!pf.value("conditional", false)) {
        ++perf.fn;
      }
    }
    for (bool u : perf_used) perf.fp += u ? 0 : 1;
    auto flag = [](Score* s, bool gold_value, bool predicted_value) {
      if (gold_value && predicted_value) ++s->tp;
      if (gold_value && !predicted_value) ++s->fn;
      if (!gold_value && predicted_value) ++s->fp;
    };
    flag(&preg, g["pregnancy_exclusion"].get<bool>(), has_preg);
    flag(&breast, g["breastfeeding_exclusion"].get<bool>(), has_breast);
    // Applicable age bounds: structured when present, else the text's.
    const Json& ea = g["expected_age"];
    auto age_side = [&](const char* key, const std::optional<double>& got) {
      if (ea[key].is_null()) {
        if (got) ++age.fp;
        return;
      }
      if (got && Close(*got, ea[key].get<double>())) {
        ++age.tp;
      } else {
        ++age.fn;
      }
    };
    age_side("min_years", min_age);
    age_side("max_years", max_age);
  }
  auto report = [](const char* what, const Score& s) {
    std::printf("%-14s tp %4d fn %4d fp %4d  recall %.3f precision %.3f\n", what, s.tp,
                s.fn, s.fp, s.Recall(), s.Precision());
  };
  report("labs", labs);
  report("performance", perf);
  report("pregnancy", preg);
  report("breastfeeding", breast);
  report("age bounds", age);
  EXPECT_GE(labs.Recall(), 0.88);
  EXPECT_GE(labs.Precision(), 0.88);
  EXPECT_GE(perf.Recall(), 0.90);
  EXPECT_GE(perf.Precision(), 0.95);
  EXPECT_GE(preg.Recall(), 0.88);
  EXPECT_GE(preg.Precision(), 0.95);
  EXPECT_GE(breast.Recall(), 0.85);
  EXPECT_GE(breast.Precision(), 0.95);
  EXPECT_GE(age.Recall(), 0.90);
  EXPECT_GE(age.Precision(), 0.90);
}

}  // namespace
}  // namespace trialmatch::criteria
