// Lists every disagreement between the eligibility compiler and the
// hand-labelled gold set (tests/data/criteria_gold/), with the study and the
// text, after the precision/recall summary that the gold test asserts:
//
//   criteria_gold_report [--rules=DIR] [--family=labs|performance|...]
//                        [--fp | --fn]
//
// Exit status 0; 1 when the rules or the gold set cannot be read.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "criteria/compiler.h"
#include "criteria/rule_set.h"
#include "gold_eval.h"
#include "model/study.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  namespace tc = trialmatch::criteria;
  fs::path rules_dir = fs::path(TRIALMATCH_SOURCE_DIR) / "rules";
  const fs::path studies =
      fs::path(TRIALMATCH_SHARED_DATA_DIR) / "ctgov_v2" / "studies";
  std::string family;
  int only = 0;  // 1: false positives, 2: false negatives
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--rules=", 0) == 0) {
      rules_dir = a.substr(8);
    } else if (a.rfind("--family=", 0) == 0) {
      family = a.substr(9);
    } else if (a == "--fp") {
      only = 1;
    } else if (a == "--fn") {
      only = 2;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--rules=DIR] [--family=NAME] [--fp|--fn]\n",
                   argv[0]);
      return 2;
    }
  }
  auto rules = tc::RuleSet::LoadDirectory(rules_dir);
  if (!rules.ok()) {
    std::fprintf(stderr, "%s\n", std::string(rules.status().message()).c_str());
    return 1;
  }
  const tc::Compiler compiler(*rules);
  const auto records = tc::gold::LoadGold(fs::path(TRIALMATCH_TEST_DATA_DIR) /
                                          "criteria_gold" / "gold.jsonl");
  if (records.empty()) {
    std::fprintf(stderr, "no gold records\n");
    return 1;
  }
  tc::gold::Report r = tc::gold::Evaluate(records, [&](const std::string& nct) {
    std::ifstream in(studies / (nct + ".json"), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    auto study = trialmatch::model::ParseStudy(ss.str());
    if (!study.ok()) {
      std::fprintf(stderr, "%s: %s\n", nct.c_str(),
                   std::string(study.status().message()).c_str());
      return tc::CompiledStudy{};
    }
    return compiler.Compile(*study);
  });
  std::erase_if(r.mismatches, [&](const tc::gold::Mismatch& m) {
    return (!family.empty() && m.family != family) ||
           (only == 1 && !m.false_positive) || (only == 2 && m.false_positive);
  });
  std::printf("%s\n%s", r.Summary().c_str(), r.Listing().c_str());
  return 0;
}
