// Coverage report of the eligibility compiler on the recorded corpus, for
// rule authors:
//
//   criteria_corpus_report [--rules=DIR] [--studies=DIR] [--grep=WORD]
//                          [--samples=N] [--json]
//
// Prints CoverageStats (per kind; criteria read / partly read / unparsed)
// and up to N criteria that still need review and contain WORD
// (case-insensitive), with their study id: the next rules to write.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "criteria/compiler.h"
#include "criteria/stats.h"
#include "model/study.h"
#include "nlohmann/json.hpp"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  fs::path rules_dir = fs::path(TRIALMATCH_SOURCE_DIR) / "rules";
  fs::path studies_dir = fs::path(TRIALMATCH_SHARED_DATA_DIR) / "ctgov_v2" / "studies";
  std::string grep;
  int samples = 20;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      const std::string f = std::string(flag) + "=";
      return a.rfind(f, 0) == 0 ? argv[i] + f.size() : nullptr;
    };
    if (const char* r = value("--rules")) {
      rules_dir = r;
    } else if (const char* s = value("--studies")) {
      studies_dir = s;
    } else if (const char* g = value("--grep")) {
      grep = absl::AsciiStrToLower(g);
    } else if (const char* n = value("--samples")) {
      samples = std::atoi(n);
    } else if (a == "--json") {
      json = true;
    } else {
      std::cerr << "usage: " << argv[0]
                << " [--rules=DIR] [--studies=DIR] [--grep=WORD] [--samples=N] [--json]\n";
      return 2;
    }
  }
  auto rules = trialmatch::criteria::RuleSet::LoadDirectory(rules_dir);
  if (!rules.ok()) {
    std::cerr << rules.status() << "\n";
    return 1;
  }
  const trialmatch::criteria::Compiler compiler(*rules);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(studies_dir)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  trialmatch::criteria::CoverageStats stats;
  std::vector<std::string> shown;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    auto study = trialmatch::model::ParseStudy(ss.str());
    if (!study.ok()) continue;
    const auto cs = compiler.Compile(*study);
    stats.Add(cs);
    if (static_cast<int>(shown.size()) >= samples) continue;
    for (const auto& c : cs.criteria) {
      bool review = false;
      for (int pi : c.predicates) {
        const auto& p = cs.predicates[pi];
        review = review || (p.kind == trialmatch::criteria::Kind::kOther && !p.informational &&
                            !absl::StartsWith(p.rule_id, "structure."));
      }
      if (review && (grep.empty() || absl::StrContains(absl::AsciiStrToLower(c.text), grep)) &&
          static_cast<int>(shown.size()) < samples) {
        shown.push_back(cs.nct_id + "  " + c.text.substr(0, 240));
      }
    }
  }
  if (json) {
    nlohmann::json j = stats.ToJsonValue();
    j["samples"] = shown;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "rules " << (*rules)->version() << "\n" << stats.Render();
  std::cout << "\nneeds review" << (grep.empty() ? "" : " (containing '" + grep + "')") << ":\n";
  for (const std::string& s : shown) std::cout << "  " << s << "\n";
  return 0;
}
