// Compares trialmatch's numeric criteria with the output of Facebook's
// Clinical-Trial-Parser CFG parser on that project's own input
// (../shared/data/annotated/facebook_clinical_trial_parser/: the COVID trials'
// criteria in input_clinical_trials.csv, the parser's numeric relations in
// output_cfg_parsed_clinical_trials.tsv). Method and figures:
// docs/criteria_comparison.md.
//
//   facebook_compare [--data_dir=DIR] [--rules=DIR] [--max_examples=N]
//                    [--all_pairs] [--dump=NCT] [--min_rows=N] [--min_pairs=N]
//                    [--min_value_agreement=F]
//
// Both sides are reduced to the ELIGIBLE RANGE of one variable per criterion,
// which is what the CFG parser writes (for an exclusion "Age < 18" it writes
// lower >= 18): trialmatch's kExclusion predicates are complemented. Values
// go to trialmatch's canonical units (criteria/compiled_study.h). Tuples of
// one trial and variable are paired one-to-one, preferring those from the
// same criterion text, then equal ranges, then the same section. Printed: per
// variable, tuples found by both / only trialmatch / only CFG, range (value)
// agreement, bound-strictness agreement and reference agreement (absolute vs
// "x ULN", which the CFG grammar cannot express) among the pairs, the CFG
// variables trialmatch has no quantity for, and a capped sample of
// disagreements.
//
// Exit status: 0; 1 when the data or rules cannot be read (the message names
// the path); 2 on a usage error; 3 when a --min_* check fails (the ctest
// criteria_facebook_compare uses them).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "criteria/compiled_study.h"
#include "criteria/compiler.h"
#include "criteria/rule_set.h"
#include "nlohmann/json.hpp"

namespace trialmatch::criteria {
namespace {

namespace fs = std::filesystem;

// One eligible range of one variable, from either side.
struct Range {
  std::string nct;
  std::string variable;  // trialmatch quantity name
  Section section = Section::kUnspecified;
  std::optional<double> low;
  bool low_incl = true;
  std::optional<double> high;
  bool high_incl = true;
  // Eligible OUTSIDE [high, low] (an excluded two-sided range).
  bool outside = false;
  bool uln = false;      // trialmatch: bound relative to the ULN
  std::string text;      // the criterion's text (each side's own splitting)
  std::string evidence;  // trialmatch evidence slice; CFG relation JSON
  std::string source;    // trialmatch rule id; CFG variable and unit
};

std::string ReadAll(const fs::path& p, bool* ok) {
  std::ifstream in(p, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Minimal RFC 4180 reader (quoted fields span lines, "" escapes a quote).
// Hand-written: Debian has no C++ CSV library package, and this is ~25 lines.
std::vector<std::vector<std::string>> ParseCsv(std::string_view s) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted) {
      if (c == '"' && i + 1 < s.size() && s[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      row.push_back(std::move(field));
      field.clear();
      if (!(row.size() == 1 && row[0].empty())) rows.push_back(std::move(row));
      row.clear();
    } else {
      field += c;
    }
  }
  if (!field.empty() || !row.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string Collapse(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

// CFG variable name -> trialmatch quantity (variables both handle).
const std::map<std::string, std::string>& CfgNames() {
  static const auto* m = new std::map<std::string, std::string>{
      {"age", "age"},
      {"a1c", "hba1c"},
      {"anc", "anc"},
      {"alt", "alt"},
      {"ast", "ast"},
      {"bmi", "bmi"},
      {"calculated_creatinine_clearance", "creatinine_clearance"},
      {"creatinine_level", "creatinine"},
      {"dbp", "diastolic_bp"},
      {"sbp", "systolic_bp"},
      {"ecog", "ecog"},
      {"karnofsky", "karnofsky"},
      {"fasting_blood_sugar_level", "fasting_glucose"},
      {"glomerular_filtration_rate", "egfr"},
      {"hb_count", "hemoglobin"},
      {"inr", "inr"},
      {"lvef", "lvef"},
      {"platelet_count", "platelets"},
      {"total_bilirubin_level", "bilirubin_total"},
      {"wbc", "wbc"},
      {"weight", "weight"},
  };
  return *m;
}

// Factor from a CFG value in `unit` to trialmatch's canonical unit.
double CfgFactor(const std::string& quantity, const std::string& unit,
                 double value) {
  if (quantity == "anc" || quantity == "platelets" || quantity == "wbc") {
    if (unit == "cells/ul" || unit == "cells/mm3" || unit == "/mm3")
      return 1e-3;
    if (unit == "cells/l" || (unit.empty() && value >= 1e6)) return 1e-9;
  }
  if (quantity == "fasting_glucose" && (unit == "mm" || unit == "mmol/l")) {
    return 18.016;
  }
  if (quantity == "hemoglobin" && unit == "g/l") return 0.1;
  if (quantity == "creatinine" && unit == "umol/l") return 1 / 88.42;
  if (quantity == "bilirubin_total" && unit == "umol/l") return 1 / 17.1;
  if (quantity == "age" && unit == "month") return 1.0 / 12;
  return 1;
}

// Bounds at a scale's own end say nothing ("ECOG 0-1" == "ECOG <= 1").
void DropScaleEnds(Range& r) {
  if (r.variable != "ecog" && r.variable != "karnofsky") return;
  const double top = r.variable == "ecog" ? 5 : 100;
  if (r.low && *r.low <= 0 && r.low_incl) r.low.reset();
  if (r.high && *r.high >= top && r.high_incl) r.high.reset();
}

struct CfgData {
  std::vector<Range> ranges;               // variables both handle
  std::map<std::string, int> other_names;  // CFG-only variables -> count
  int rows = 0;
  int bad_rows = 0;
};

bool ParseBound(const nlohmann::json& j, const char* key,
                std::optional<double>* v, bool* incl) {
  auto it = j.find(key);
  if (it == j.end()) return true;
  if (!it->is_object() || !it->contains("value")) return false;
  const auto& val = (*it)["value"];
  const std::string s = val.is_string() ? val.get<std::string>()
                                        : (val.is_number() ? val.dump() : "");
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) return false;
  *v = d;
  *incl = it->value("incl", true);
  return true;
}

CfgData LoadCfg(std::string_view tsv) {
  CfgData out;
  std::istringstream in{std::string(tsv)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    ++out.rows;
    std::vector<std::string> cols;
    std::stringstream ls(line);
    std::string c;
    while (std::getline(ls, c, '\t')) cols.push_back(c);
    if (cols.size() < 7) {
      ++out.bad_rows;
      continue;
    }
    const auto j = nlohmann::json::parse(cols[6], nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("name")) {
      ++out.bad_rows;
      continue;
    }
    const std::string name = j.value("name", "");
    const auto known = CfgNames().find(name);
    if (known == CfgNames().end()) {
      ++out.other_names[name];
      continue;
    }
    Range r;
    r.nct = cols[0];
    r.variable = known->second;
    r.section = cols[1] == "inclusion"   ? Section::kInclusion
                : cols[1] == "exclusion" ? Section::kExclusion
                                         : Section::kUnspecified;
    r.text = cols[4];
    r.evidence = cols[6];
    const std::string unit = j.value("unit", "");
    r.source = name + (unit.empty() ? "" : " [" + unit + "]");
    bool ok = true;
    if (j.value("variableType", "") == "ordinal") {
      // {"value":["0","1"]}: the listed grades, read as [min, max].
      auto it = j.find("value");
      if (it == j.end() || !it->is_array() || it->empty()) {
        ok = false;
      } else {
        for (const auto& v : *it) {
          const std::string s = v.is_string() ? v.get<std::string>() : v.dump();
          const double d = std::strtod(s.c_str(), nullptr);
          if (!r.low || d < *r.low) r.low = d;
          if (!r.high || d > *r.high) r.high = d;
        }
      }
    } else {
      ok = ParseBound(j, "lower", &r.low, &r.low_incl) &&
           ParseBound(j, "upper", &r.high, &r.high_incl) && (r.low || r.high);
    }
    if (!ok) {
      ++out.bad_rows;
      continue;
    }
    if (r.low) *r.low *= CfgFactor(r.variable, unit, *r.low);
    if (r.high) *r.high *= CfgFactor(r.variable, unit, *r.high);
    DropScaleEnds(r);
    out.ranges.push_back(std::move(r));
  }
  return out;
}

// trialmatch's numeric predicates as eligible ranges.
std::vector<Range> TrialmatchRanges(const std::string& nct,
                                    const CompiledStudy& cs) {
  std::vector<Range> out;
  for (const Predicate& p : cs.predicates) {
    if (p.kind != Kind::kAge && p.kind != Kind::kLab &&
        p.kind != Kind::kPerformanceStatus) {
      continue;
    }
    if (!p.low && !p.high) continue;
    Range r;
    r.nct = nct;
    r.variable = p.quantity;
    r.uln = p.relative_to_uln;
    r.evidence = p.evidence.text;
    r.source = p.rule_id;
    if (p.criterion >= 0 &&
        p.criterion < static_cast<int>(cs.criteria.size())) {
      const Criterion& c = cs.criteria[p.criterion];
      r.section = c.section;
      r.text = c.text;
    }
    if (p.polarity == Polarity::kInclusion) {
      r.low = p.low;
      r.low_incl = p.low_inclusive;
      r.high = p.high;
      r.high_incl = p.high_inclusive;
    } else if (p.low && p.high) {
      r.outside = true;  // eligible below low or above high
      r.high = p.low;
      r.high_incl = !p.low_inclusive;
      r.low = p.high;
      r.low_incl = !p.high_inclusive;
    } else if (p.low) {
      r.high = p.low;
      r.high_incl = !p.low_inclusive;
    } else {
      r.low = p.high;
      r.low_incl = !p.high_inclusive;
    }
    DropScaleEnds(r);
    out.push_back(std::move(r));
  }
  return out;
}

bool Close(const std::optional<double>& a, const std::optional<double>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return std::fabs(*a - *b) <=
         0.01 * std::max({1e-9, std::fabs(*a), std::fabs(*b)});
}

bool ValuesAgree(const Range& a, const Range& b) {
  return a.outside == b.outside && Close(a.low, b.low) && Close(a.high, b.high);
}

bool StrictnessAgrees(const Range& a, const Range& b) {
  return (!a.low || a.low_incl == b.low_incl) &&
         (!a.high || a.high_incl == b.high_incl);
}

bool SameText(const Range& tm, const Range& cfg) {
  const std::string c = Collapse(cfg.text);
  const std::string t = Collapse(tm.text);
  const std::string e = Collapse(tm.evidence);
  if (c.empty()) return false;
  return (!t.empty() &&
          (c.find(t) != std::string::npos || t.find(c) != std::string::npos)) ||
         (!e.empty() && c.find(e) != std::string::npos);
}

std::string Show(const Range& r) {
  auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  std::string s = r.variable + " ";
  if (r.outside) {
    s += "outside (" + num(*r.high) + (r.high_incl ? "]" : ")") + ".." +
         num(*r.low) + (r.low_incl ? "[" : ")");
  } else {
    if (r.low) s += (r.low_incl ? ">=" : ">") + num(*r.low);
    if (r.low && r.high) s += " & ";
    if (r.high) s += (r.high_incl ? "<=" : "<") + num(*r.high);
  }
  if (r.uln) s += " xULN";
  return s;
}

std::string Cut(std::string_view s, size_t n) {
  std::string c = Collapse(s);
  if (c.size() > n) c = c.substr(0, n) + "...";
  return c;
}

const char* SectionName(Section s) {
  return s == Section::kInclusion   ? "incl"
         : s == Section::kExclusion ? "excl"
                                    : "unsp";
}

struct Pair {
  const Range* tm = nullptr;   // null: only CFG
  const Range* cfg = nullptr;  // null: only trialmatch
};

// One-to-one pairing within each (trial, variable).
std::vector<Pair> PairUp(const std::vector<Range>& tm,
                         const std::vector<Range>& cfg) {
  struct Cand {
    int score;
    size_t t, c;
  };
  std::vector<Cand> cands;
  for (size_t t = 0; t < tm.size(); ++t) {
    for (size_t c = 0; c < cfg.size(); ++c) {
      if (tm[t].nct != cfg[c].nct || tm[t].variable != cfg[c].variable)
        continue;
      const bool text = SameText(tm[t], cfg[c]);
      const bool value = ValuesAgree(tm[t], cfg[c]);
      if (!text && !value) continue;
      const int score = (text ? 4 : 0) + (value ? 2 : 0) +
                        (tm[t].section == cfg[c].section ? 1 : 0);
      cands.push_back({score, t, c});
    }
  }
  std::stable_sort(
      cands.begin(), cands.end(),
      [](const Cand& a, const Cand& b) { return a.score > b.score; });
  std::vector<bool> tu(tm.size()), cu(cfg.size());
  std::vector<Pair> out;
  for (const Cand& k : cands) {
    if (tu[k.t] || cu[k.c]) continue;
    tu[k.t] = cu[k.c] = true;
    out.push_back({&tm[k.t], &cfg[k.c]});
  }
  for (size_t t = 0; t < tm.size(); ++t) {
    if (!tu[t]) out.push_back({&tm[t], nullptr});
  }
  for (size_t c = 0; c < cfg.size(); ++c) {
    if (!cu[c]) out.push_back({nullptr, &cfg[c]});
  }
  return out;
}

// Every predicate of one compiled trial (--dump=NCT), for reading misses.
void Dump(const CompiledStudy& cs) {
  for (const Predicate& p : cs.predicates) {
    std::string range;
    char b[64];
    if (p.low) {
      std::snprintf(b, sizeof b, "%s%g ", p.low_inclusive ? ">=" : ">", *p.low);
      range += b;
    }
    if (p.high) {
      std::snprintf(b, sizeof b, "%s%g ", p.high_inclusive ? "<=" : "<",
                    *p.high);
      range += b;
    }
    std::printf("dump: %s %-28s %-14s %s%s| %s\n",
                p.polarity == Polarity::kInclusion ? "incl" : "excl",
                p.rule_id.c_str(), p.quantity.c_str(), range.c_str(),
                p.relative_to_uln ? "xULN " : "",
                Cut(p.evidence.text, 120).c_str());
  }
}

struct Counts {
  int tm = 0, cfg = 0, both = 0, only_tm = 0, only_cfg = 0, value = 0,
      strict = 0, full = 0;
};

int Run(int argc, char** argv) {
  fs::path data_dir = fs::path(TRIALMATCH_SHARED_DATA_DIR) / "annotated" /
                      "facebook_clinical_trial_parser";
  fs::path rules_dir = fs::path(TRIALMATCH_SOURCE_DIR) / "rules";
  int max_examples = 40;
  bool all_pairs = false;
  int min_rows = 0, min_pairs = 0;
  double min_value_agreement = 0;
  std::string dump;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const size_t eq = a.find('=');
    const std::string flag = a.substr(0, eq);
    const std::string v = eq == std::string::npos ? "" : a.substr(eq + 1);
    if (flag == "--data_dir" && !v.empty()) {
      data_dir = v;
    } else if (flag == "--rules" && !v.empty()) {
      rules_dir = v;
    } else if (flag == "--max_examples" && !v.empty()) {
      max_examples = std::atoi(v.c_str());
    } else if (flag == "--min_rows" && !v.empty()) {
      min_rows = std::atoi(v.c_str());
    } else if (flag == "--min_pairs" && !v.empty()) {
      min_pairs = std::atoi(v.c_str());
    } else if (flag == "--min_value_agreement" && !v.empty()) {
      min_value_agreement = std::atof(v.c_str());
    } else if (flag == "--dump" && !v.empty()) {
      dump = v;
    } else if (a == "--all_pairs") {
      all_pairs = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--data_dir=DIR] [--rules=DIR] "
                   "[--max_examples=N] [--all_pairs] [--dump=NCT] "
                   "[--min_rows=N] [--min_pairs=N] [--min_value_agreement=F]\n",
                   argv[0]);
      return 2;
    }
  }
  bool ok_in = false, ok_cfg = false;
  const std::string csv =
      ReadAll(data_dir / "input_clinical_trials.csv", &ok_in);
  const std::string tsv =
      ReadAll(data_dir / "output_cfg_parsed_clinical_trials.tsv", &ok_cfg);
  if (!ok_in || !ok_cfg) {
    std::fprintf(stderr,
                 "FAIL: Facebook Clinical-Trial-Parser data missing at %s "
                 "(set -DTRIALMATCH_SHARED_DATA_DIR)\n",
                 data_dir.string().c_str());
    return 1;
  }
  auto rules = RuleSet::LoadDirectory(rules_dir);
  if (!rules.ok()) {
    std::fprintf(stderr, "FAIL: rules: %s\n",
                 std::string(rules.status().message()).c_str());
    return 1;
  }
  const Compiler compiler(*rules);
  std::printf("compiler %s, rules %s\n", std::string(kCompilerVersion).c_str(),
              (*rules)->version().c_str());

  // Their input: #nct_id,title,has_us_facility,conditions,eligibility_criteria
  std::vector<Range> tm;
  int rows = 0, rows_with_tuples = 0, criteria = 0;
  for (const auto& row : ParseCsv(csv)) {
    if (!row.empty() && !row[0].empty() && row[0][0] == '#') continue;
    if (row.size() != 5) {
      std::fprintf(stderr, "input row with %zu fields skipped\n", row.size());
      continue;
    }
    ++rows;
    const CompiledStudy cs = compiler.CompileText(row[4]);
    if (row[0] == dump) Dump(cs);
    criteria += static_cast<int>(cs.criteria.size());
    auto r = TrialmatchRanges(row[0], cs);
    rows_with_tuples += r.empty() ? 0 : 1;
    for (auto& x : r) tm.push_back(std::move(x));
  }
  const CfgData cfg = LoadCfg(tsv);
  // Only trials both saw count (the CFG file covers a subset of the input).
  std::vector<std::string> cfg_ncts;
  {
    std::istringstream in{tsv};
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line[0] != '#')
        cfg_ncts.push_back(line.substr(0, 11));
    }
    std::sort(cfg_ncts.begin(), cfg_ncts.end());
    cfg_ncts.erase(std::unique(cfg_ncts.begin(), cfg_ncts.end()),
                   cfg_ncts.end());
  }

  const std::vector<Pair> pairs = PairUp(tm, cfg.ranges);
  std::map<std::string, Counts> by_var;
  Counts total;
  std::vector<const Pair*> disagreements;
  for (const Pair& p : pairs) {
    const Range* any = p.tm ? p.tm : p.cfg;
    Counts& c = by_var[any->variable];
    if (p.tm) ++c.tm, ++total.tm;
    if (p.cfg) ++c.cfg, ++total.cfg;
    if (p.tm && p.cfg) {
      ++c.both, ++total.both;
      const bool v = ValuesAgree(*p.tm, *p.cfg);
      const bool s = v && StrictnessAgrees(*p.tm, *p.cfg);
      c.value += v, total.value += v;
      c.strict += s, total.strict += s;
      // The CFG grammar has no "x ULN": a trialmatch ULN-relative bound
      // paired with a CFG bound is a reference disagreement.
      const bool f = s && !p.tm->uln;
      c.full += f, total.full += f;
      if (!f) disagreements.push_back(&p);
    } else if (p.tm) {
      ++c.only_tm, ++total.only_tm;
      disagreements.push_back(&p);
    } else {
      ++c.only_cfg, ++total.only_cfg;
      disagreements.push_back(&p);
    }
  }

  std::printf(
      "input trials compiled: %d (%d criteria; %d with >= 1 numeric "
      "tuple); CFG rows: %d (%d unreadable) over %zu trials\n",
      rows, criteria, rows_with_tuples, cfg.rows, cfg.bad_rows,
      cfg_ncts.size());
  std::printf("\n%-22s %5s %5s %5s %7s %8s %7s %9s %9s\n", "variable", "tm",
              "cfg", "both", "only_tm", "only_cfg", "values", "+strict",
              "+uln_ref");
  auto line = [](const std::string& name, const Counts& c) {
    auto frac = [&](int n) {
      return std::to_string(n) + "/" + std::to_string(c.both);
    };
    std::printf("%-22s %5d %5d %5d %7d %8d %7s %9s %9s\n", name.c_str(), c.tm,
                c.cfg, c.both, c.only_tm, c.only_cfg, frac(c.value).c_str(),
                frac(c.strict).c_str(), frac(c.full).c_str());
  };
  for (const auto& [name, c] : by_var) line(name, c);
  line("TOTAL", total);
  const double value_rate =
      total.both ? static_cast<double>(total.value) / total.both : 0;
  const double strict_rate =
      total.both ? static_cast<double>(total.strict) / total.both : 0;
  std::printf(
      "value agreement on pairs: %.3f; with bound strictness: %.3f; "
      "also same reference (absolute vs x ULN): %.3f\n",
      value_rate, strict_rate,
      total.both ? static_cast<double>(total.full) / total.both : 0);
  int other = 0;
  std::string other_list;
  for (const auto& [name, n] : cfg.other_names) {
    other += n;
    other_list += " " + name + "=" + std::to_string(n);
  }
  std::printf(
      "CFG tuples on variables trialmatch has no quantity for: %d "
      "(%s )\n",
      other, other_list.c_str());

  auto print = [](const char* what, const Pair& p) {
    const Range* any = p.cfg ? p.cfg : p.tm;
    std::printf("\n[%s] %s %s\n", what, any->nct.c_str(),
                SectionName(any->section));
    if (p.cfg) {
      std::printf("  cfg: %-34s  %s\n", Show(*p.cfg).c_str(),
                  p.cfg->source.c_str());
      std::printf("       \"%s\"\n", Cut(p.cfg->text, 220).c_str());
    }
    if (p.tm) {
      std::printf("  tm:  %-34s  %s\n", Show(*p.tm).c_str(),
                  p.tm->source.c_str());
      std::printf("       \"%s\"\n", Cut(p.tm->evidence, 220).c_str());
    }
  };
  if (all_pairs) {
    std::printf("\n== all pairs ==\n");
    for (const Pair& p : pairs) {
      const char* what = !p.cfg                        ? "only-tm"
                         : !p.tm                       ? "only-cfg"
                         : !ValuesAgree(*p.tm, *p.cfg) ? "value-differs"
                         : !StrictnessAgrees(*p.tm, *p.cfg)
                             ? "strictness-differs"
                         : p.tm->uln ? "uln-reference-differs"
                                     : "agree";
      print(what, p);
    }
  } else {
    std::printf("\n== disagreements (%zu, first %d) ==\n", disagreements.size(),
                max_examples);
    int shown = 0;
    for (const Pair* p : disagreements) {
      if (shown++ >= max_examples) break;
      print(!p->cfg                              ? "only-tm"
            : !p->tm                             ? "only-cfg"
            : !ValuesAgree(*p->tm, *p->cfg)      ? "value-differs"
            : !StrictnessAgrees(*p->tm, *p->cfg) ? "strictness-differs"
                                                 : "uln-reference-differs",
            *p);
    }
  }

  int failed = 0;
  if (rows < min_rows) {
    std::fprintf(stderr, "CHECK FAILED: %d input trials compiled < %d\n", rows,
                 min_rows);
    ++failed;
  }
  const bool checking =
      min_rows > 0 || min_pairs > 0 || min_value_agreement > 0;
  if (checking && cfg.bad_rows > 0) {
    std::fprintf(stderr, "CHECK FAILED: %d CFG rows unreadable\n",
                 cfg.bad_rows);
    ++failed;
  }
  if (total.both < min_pairs) {
    std::fprintf(stderr, "CHECK FAILED: %d tuples found by both < %d\n",
                 total.both, min_pairs);
    ++failed;
  }
  if (value_rate < min_value_agreement) {
    std::fprintf(stderr, "CHECK FAILED: value agreement %.3f < %.3f\n",
                 value_rate, min_value_agreement);
    ++failed;
  }
  return failed ? 3 : 0;
}

}  // namespace
}  // namespace trialmatch::criteria

int main(int argc, char** argv) {
  return trialmatch::criteria::Run(argc, argv);
}
