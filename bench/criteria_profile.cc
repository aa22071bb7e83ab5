// Deterministic cost of the eligibility compiler, for profiling on a loaded
// machine where wall-clock benchmarks are noisy:
//
//   valgrind --tool=callgrind --collect-atstart=no
//       build/<dir>/bench/criteria_profile [--warm=1] [--passes=1] [--mem_mb=N]
//           [--dump=FILE] [--rules=DIR]
//   callgrind_annotate callgrind.out.<pid>
//
// Parses every recorded study, compiles the corpus --warm times (RE2's DFA
// caches fill as in a long-running server), then compiles it --passes times
// with callgrind's collection switched on (when run under callgrind): the
// instruction count is the steady-state cost of --passes corpus passes. Also
// prints the CPU time of the measured passes (studies/s). --dump=FILE writes
// ToJson of every compiled study, one per line, so that a speed change can be
// checked to leave the output byte-identical (diff two dumps). --rules=DIR
// loads the rule files from DIR instead of the source tree's rules/ (to time
// a rule edit against a copy of the previous rules with the same binary).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "criteria/compiler.h"
#include "criteria/json.h"
#include "criteria/rule_set.h"
#include "model/study.h"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define TRIALMATCH_CALLGRIND_TOGGLE() CALLGRIND_TOGGLE_COLLECT
#else
#define TRIALMATCH_CALLGRIND_TOGGLE() \
  do {                                \
  } while (false)
#endif

namespace {

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) +
         static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  int warm = 1;
  int passes = 1;
  std::string dump_path;
  fs::path rules_dir = fs::path(TRIALMATCH_SOURCE_DIR) / "rules";
  trialmatch::criteria::RuleSetOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--warm=", 0) == 0) {
      warm = std::atoi(a.c_str() + 7);
    } else if (a.rfind("--passes=", 0) == 0) {
      passes = std::max(1, std::atoi(a.c_str() + 9));
    } else if (a.rfind("--dump=", 0) == 0) {
      dump_path = a.substr(7);
    } else if (a.rfind("--rules=", 0) == 0) {
      rules_dir = a.substr(8);
    } else if (a.rfind("--mem_mb=", 0) == 0) {
      // RE2 budgets (per rule pattern, prefilter set, dictionary), in MiB.
      const int64_t mb = std::max(1, std::atoi(a.c_str() + 9));
      options.max_mem_per_pattern = mb << 20;
      options.set_max_mem = mb << 20;
      options.dictionary_max_mem = mb << 20;
    } else {
      std::fprintf(stderr, "usage: %s [--warm=N] [--passes=N] [--mem_mb=N] "
                   "[--dump=FILE] [--rules=DIR]\n",
                   argv[0]);
      return 2;
    }
  }
  auto rules = trialmatch::criteria::RuleSet::LoadDirectory(rules_dir, options);
  if (!rules.ok()) {
    std::fprintf(stderr, "%s\n", std::string(rules.status().message()).c_str());
    return 1;
  }
  const trialmatch::criteria::Compiler compiler(*rules);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(
           fs::path(TRIALMATCH_SHARED_DATA_DIR) / "ctgov_v2" / "studies")) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<trialmatch::model::Study> studies;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    auto s = trialmatch::model::ParseStudy(ss.str());
    if (s.ok()) studies.push_back(*std::move(s));
  }
  if (!dump_path.empty()) {
    std::ofstream out(dump_path, std::ios::binary);
    for (const auto& s : studies)
      out << trialmatch::criteria::ToJson(compiler.Compile(s)) << '\n';
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", dump_path.c_str());
      return 1;
    }
  }
  size_t predicates = 0;
  for (int w = 0; w < warm; ++w) {
    for (const auto& s : studies)
      predicates += compiler.Compile(s).predicates.size();
  }
  const double start = CpuSeconds();
  TRIALMATCH_CALLGRIND_TOGGLE();
  for (int p = 0; p < passes; ++p) {
    for (const auto& s : studies)
      predicates += compiler.Compile(s).predicates.size();
  }
  TRIALMATCH_CALLGRIND_TOGGLE();
  const double cpu = CpuSeconds() - start;
  std::printf(
      "%zu studies x %d passes: %.3f s CPU, %.0f studies/s (%zu predicates)\n",
      studies.size(), passes, cpu,
      static_cast<double>(studies.size()) * passes / cpu, predicates);
  return 0;
}
