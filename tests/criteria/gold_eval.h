// Scoring of compiled studies against the hand-labelled gold set
// tests/data/criteria_gold/gold.jsonl (labels made by reading the texts, not
// by this code; conventions in tests/data/criteria_gold/README.md). Shared by
// the gold-threshold test (gold_eval_test.cc) and the report tool
// criteria_gold_report, which lists every false positive and false negative
// with its study and text.
//
// Header-only; no gtest dependency. Pure functions, thread-compatible.
#ifndef TRIALMATCH_TESTS_CRITERIA_GOLD_EVAL_H_
#define TRIALMATCH_TESTS_CRITERIA_GOLD_EVAL_H_

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "criteria/compiled_study.h"
#include "model/study.h"
#include "nlohmann/json.hpp"

namespace trialmatch::criteria::gold {

using Json = nlohmann::json;

// One gold record per line; unparsable lines are skipped (the validator,
// tests/data/criteria_gold/validate.py, rejects them separately).
inline std::vector<Json> LoadGold(const std::filesystem::path& jsonl) {
  std::vector<Json> out;
  std::ifstream in(jsonl);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    Json j = Json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

struct Score {
  int tp = 0;
  int fn = 0;
  int fp = 0;
  double Recall() const {
    return tp + fn == 0 ? 1 : static_cast<double>(tp) / (tp + fn);
  }
  double Precision() const {
    return tp + fp == 0 ? 1 : static_cast<double>(tp) / (tp + fp);
  }
};

// A disagreement with the gold set.
struct Mismatch {
  std::string nct_id;
  std::string family;  // "labs", "performance", "pregnancy", "age", "sex"...
  bool false_positive = false;  // else a false negative (or a wrong value)
  std::string detail;           // what was expected or produced
  std::string evidence;         // the compiler's evidence, or the gold evidence
};

struct Report {
  Score labs, performance, pregnancy, breastfeeding, age_bounds;
  int studies = 0;
  int age_exact = 0;  // studies whose applicable age bounds equal expected_age
  int sex_exact = 0;  // studies whose applicable sex equals expected_sex
  std::vector<Mismatch> mismatches;

  double AgeExactRate() const {
    return studies == 0 ? 1 : static_cast<double>(age_exact) / studies;
  }
  double SexExactRate() const {
    return studies == 0 ? 1 : static_cast<double>(sex_exact) / studies;
  }

  std::string Summary() const {
    std::string out;
    auto line = [&](const char* what, const Score& s) {
      char buf[160];
      std::snprintf(buf, sizeof(buf),
                    "%-14s tp %4d fn %4d fp %4d  recall %.3f precision %.3f\n",
                    what, s.tp, s.fn, s.fp, s.Recall(), s.Precision());
      out += buf;
    };
    line("labs", labs);
    line("performance", performance);
    line("pregnancy", pregnancy);
    line("breastfeeding", breastfeeding);
    line("age bounds", age_bounds);
    char buf[160];
    std::snprintf(buf, sizeof(buf), "age exact      %d/%d studies (%.3f)\n",
                  age_exact, studies, AgeExactRate());
    out += buf;
    std::snprintf(buf, sizeof(buf), "sex exact      %d/%d studies (%.3f)\n",
                  sex_exact, studies, SexExactRate());
    out += buf;
    return out;
  }

  std::string Listing() const {
    std::string out;
    for (const Mismatch& m : mismatches) {
      out += m.nct_id + "  " + m.family +
             (m.false_positive ? "  FP  " : "  FN  ") + m.detail;
      if (!m.evidence.empty()) out += "\n      \"" + m.evidence + "\"";
      out += "\n";
    }
    return out;
  }
};

namespace internal {

inline bool Close(double a, double b) {
  return std::fabs(a - b) <= 0.02 * std::max(1.0, std::fabs(b));
}

inline std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

inline std::string PolarityName(Polarity p) {
  return p == Polarity::kExclusion ? "exclusion" : "inclusion";
}

struct Bound {
  std::string quantity;
  Polarity polarity;
  bool low;
  double value;
  bool uln;
  const Predicate* predicate;
};

// True when the predicate belongs to one alternative of an any-of group (or
// to an any-of lead-in): it is not a requirement of the whole study.
inline bool InAlternative(const CompiledStudy& cs, const Predicate& p) {
  for (int c = p.criterion; c >= 0 && c < static_cast<int>(cs.criteria.size());
       c = cs.criteria[c].parent) {
    if (cs.criteria[c].any_of) return true;
  }
  return false;
}

// The age range and sex a patient must satisfy according to the compiled
// study: non-informational age and sex predicates (structured or text) that
// hold unconditionally (not inside an any-of alternative).
struct Applicable {
  std::optional<double> min_age;
  std::optional<double> max_age;
  model::Sex sex = model::Sex::kAll;
};

inline Applicable ApplicableBounds(const CompiledStudy& cs) {
  Applicable a;
  auto raise_min = [&](double v) {
    a.min_age = a.min_age ? std::max(*a.min_age, v) : v;
  };
  auto lower_max = [&](double v) {
    a.max_age = a.max_age ? std::min(*a.max_age, v) : v;
  };
  for (const Predicate& p : cs.predicates) {
    if (p.informational || InAlternative(cs, p)) continue;
    if (p.kind == Kind::kAge && !p.relative_to_uln) {
      if (p.polarity == Polarity::kInclusion) {
        if (p.low) raise_min(*p.low);
        if (p.high) lower_max(*p.high);
      } else if (p.low.has_value() != p.high.has_value()) {
        // "Age < 18" excludes: the minimum is 18; "age > 75" excludes: the
        // maximum is 75.
        if (p.high) raise_min(*p.high);
        if (p.low) lower_max(*p.low);
      }
    }
    if (p.kind == Kind::kSex && p.polarity == Polarity::kInclusion &&
        p.sex != model::Sex::kAll) {
      a.sex = p.sex;
    }
  }
  return a;
}

inline std::string SexName(model::Sex s) {
  switch (s) {
    case model::Sex::kFemale:
      return "FEMALE";
    case model::Sex::kMale:
      return "MALE";
    default:
      return "ALL";
  }
}

}  // namespace internal

// Scores one compiled study against its gold record and adds to `report`.
inline void ScoreStudy(const Json& g, const CompiledStudy& cs, Report* report) {
  using internal::Bound;
  using internal::Close;
  using internal::Num;
  const std::string nct = g["nct_id"].get<std::string>();
  ++report->studies;
  auto mismatch = [&](std::string family, bool fp, std::string detail,
                      std::string evidence) {
    report->mismatches.push_back(Mismatch{
        nct, std::move(family), fp, std::move(detail), std::move(evidence)});
  };

  std::vector<Bound> predicted;
  std::vector<const Predicate*> perf_pred;
  const Predicate* preg_pred = nullptr;
  const Predicate* breast_pred = nullptr;
  for (const Predicate& p : cs.predicates) {
    if (p.informational || p.evidence.source != EvidenceSource::kCriteriaText)
      continue;
    if (p.kind == Kind::kLab) {
      if (p.low)
        predicted.push_back(
            {p.quantity, p.polarity, true, *p.low, p.relative_to_uln, &p});
      if (p.high)
        predicted.push_back(
            {p.quantity, p.polarity, false, *p.high, p.relative_to_uln, &p});
    }
    if (p.kind == Kind::kPerformanceStatus) perf_pred.push_back(&p);
    if (p.kind == Kind::kPregnancy && p.polarity == Polarity::kExclusion &&
        preg_pred == nullptr) {
      preg_pred = &p;
    }
    if (p.kind == Kind::kBreastfeeding && p.polarity == Polarity::kExclusion &&
        breast_pred == nullptr) {
      breast_pred = &p;
    }
  }

  // Labs: one gold entry per (quantity, bound side).
  std::vector<bool> used(predicted.size(), false);
  for (const Json& lab : g["labs"]) {
    const std::string cmp = lab["comparator"].get<std::string>();
    const bool low = cmp == ">=" || cmp == ">";
    const Polarity pol = lab["polarity"] == "exclusion" ? Polarity::kExclusion
                                                        : Polarity::kInclusion;
    const bool uln = lab["relative_to_uln"].get<bool>();
    const double value = lab["canonical_value"].get<double>();
    bool found = false;
    for (size_t i = 0; i < predicted.size() && !found; ++i) {
      const Bound& b = predicted[i];
      if (!used[i] && b.quantity == lab["quantity"] && b.polarity == pol &&
          b.low == low && b.uln == uln && Close(b.value, value)) {
        used[i] = true;
        found = true;
      }
    }
    const bool lenient =
        lab.value("conditional", false) || lab.value("uncertain", false);
    if (found) {
      ++report->labs.tp;
    } else if (!lenient) {
      ++report->labs.fn;
      mismatch("labs", false,
               lab["quantity"].get<std::string>() + " " +
                   internal::PolarityName(pol) + " " + cmp + " " + Num(value) +
                   (uln ? " xULN" : ""),
               lab["evidence"].get<std::string>());
    }
  }
  for (size_t i = 0; i < predicted.size(); ++i) {
    if (used[i]) continue;
    ++report->labs.fp;
    const Bound& b = predicted[i];
    mismatch("labs", true,
             b.quantity + " " + internal::PolarityName(b.polarity) +
                 (b.low ? " low " : " high ") + Num(b.value) +
                 (b.uln ? " xULN" : "") + "  [" + b.predicate->rule_id + "]",
             b.predicate->evidence.text);
  }

  // Performance status: one predicate per gold entry of the same scale.
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
      ++report->performance.tp;
    } else if (!pf.value("conditional", false)) {
      ++report->performance.fn;
      mismatch("performance", false, pf["scale"].get<std::string>(),
               pf["evidence"].get<std::string>());
    }
  }
  for (size_t i = 0; i < perf_pred.size(); ++i) {
    if (perf_used[i]) continue;
    ++report->performance.fp;
    mismatch("performance", true,
             perf_pred[i]->quantity + "  [" + perf_pred[i]->rule_id + "]",
             perf_pred[i]->evidence.text);
  }

  auto flag = [&](Score* s, const char* family, bool gold_value,
                  const Predicate* predicted_p, const char* evidence_key) {
    if (gold_value && predicted_p != nullptr) ++s->tp;
    if (gold_value && predicted_p == nullptr) {
      ++s->fn;
      mismatch(family, false, "exclusion not found",
               g[evidence_key].is_string() ? g[evidence_key].get<std::string>()
                                           : "");
    }
    if (!gold_value && predicted_p != nullptr) {
      ++s->fp;
      mismatch(family, true, "[" + predicted_p->rule_id + "]",
               predicted_p->evidence.text);
    }
  };
  flag(&report->pregnancy, "pregnancy", g["pregnancy_exclusion"].get<bool>(),
       preg_pred, "pregnancy_evidence");
  flag(&report->breastfeeding, "breastfeeding",
       g["breastfeeding_exclusion"].get<bool>(), breast_pred,
       "breastfeeding_evidence");

  // Applicable age bounds (structured when present, else the text's) and sex.
  const internal::Applicable a = internal::ApplicableBounds(cs);
  const Json& ea = g["expected_age"];
  bool age_exact = true;
  auto age_side = [&](const char* key, const std::optional<double>& got) {
    const bool expected = !ea[key].is_null();
    if (!expected) {
      if (got) {
        ++report->age_bounds.fp;
        age_exact = false;
        mismatch("age", true, std::string(key) + " " + Num(*got), "");
      }
      return;
    }
    const double want = ea[key].get<double>();
    if (got && std::fabs(*got - want) <= 0.01) {
      ++report->age_bounds.tp;
      return;
    }
    ++report->age_bounds.fn;
    age_exact = false;
    mismatch("age", false,
             std::string(key) + " expected " + Num(want) + ", got " +
                 (got ? Num(*got) : std::string("none")),
             "");
  };
  age_side("min_years", a.min_age);
  age_side("max_years", a.max_age);
  if (age_exact) ++report->age_exact;
  const std::string expected_sex = g["expected_sex"].get<std::string>();
  if (internal::SexName(a.sex) == expected_sex) {
    ++report->sex_exact;
  } else {
    mismatch("sex", false,
             "expected " + expected_sex + ", got " + internal::SexName(a.sex),
             "");
  }
}

// Scores every gold record; `compile` returns the compiled study of an NCT id.
inline Report Evaluate(
    const std::vector<Json>& gold,
    const std::function<CompiledStudy(const std::string&)>& compile) {
  Report report;
  for (const Json& g : gold) {
    ScoreStudy(g, compile(g["nct_id"].get<std::string>()), &report);
  }
  return report;
}

}  // namespace trialmatch::criteria::gold

#endif  // TRIALMATCH_TESTS_CRITERIA_GOLD_EVAL_H_
