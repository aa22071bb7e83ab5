// Eligibility compiler throughput.
//
//   cmake --preset dev -B build/criteria-rel -DCMAKE_BUILD_TYPE=RelWithDebInfo
//   cmake --build build/criteria-rel --target criteria_bench
//   build/criteria-rel/bench/criteria_bench --benchmark_counters_tabular=true
//
// BM_CompileCorpus compiles every recorded study (parsed once, up front) per
// iteration on one thread: items_per_second is studies/s. The first
// iterations warm RE2's DFA caches, as a long-running server would.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "criteria/compiler.h"
#include "criteria/rule_set.h"
#include "model/study.h"

namespace {

using trialmatch::criteria::Compiler;
using trialmatch::criteria::RuleSet;

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::vector<trialmatch::model::Study>& Studies() {
  static const auto* const kStudies = [] {
    auto* v = new std::vector<trialmatch::model::Study>();
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(
             std::filesystem::path(TRIALMATCH_SHARED_DATA_DIR) / "ctgov_v2" / "studies")) {
      if (e.path().extension() == ".json") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      auto s = trialmatch::model::ParseStudy(Read(f));
      if (s.ok()) v->push_back(*std::move(s));
    }
    return v;
  }();
  return *kStudies;
}

const Compiler& TheCompiler() {
  static const Compiler* const kCompiler = [] {
    auto rules = RuleSet::LoadDirectory(std::filesystem::path(TRIALMATCH_SOURCE_DIR) / "rules");
    if (!rules.ok()) {
      std::fprintf(stderr, "%s\n", std::string(rules.status().message()).c_str());
      std::abort();
    }
    return new Compiler(*std::move(rules));
  }();
  return *kCompiler;
}

void BM_CompileCorpus(benchmark::State& state) {
  const auto& studies = Studies();
  const Compiler& compiler = TheCompiler();
  size_t bytes = 0;
  for (const auto& s : studies) bytes += s.eligibility.criteria.size();
  int64_t predicates = 0;
  for (auto _ : state) {
    for (const auto& s : studies) {
      auto cs = compiler.Compile(s);
      predicates += static_cast<int64_t>(cs.predicates.size());
      benchmark::DoNotOptimize(cs);
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(studies.size()));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
  state.counters["studies"] = static_cast<double>(studies.size());
  state.counters["predicates_per_study"] =
      static_cast<double>(predicates) / static_cast<double>(state.iterations() * studies.size());
}
BENCHMARK(BM_CompileCorpus)->Unit(benchmark::kMillisecond)->MinTime(5.0);

void BM_CompileLargestStudy(benchmark::State& state) {
  const auto& studies = Studies();
  const auto& largest = *std::max_element(
      studies.begin(), studies.end(), [](const auto& a, const auto& b) {
        return a.eligibility.criteria.size() < b.eligibility.criteria.size();
      });
  for (auto _ : state) benchmark::DoNotOptimize(TheCompiler().Compile(largest));
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(largest.eligibility.criteria.size()));
}
BENCHMARK(BM_CompileLargestStudy)->Unit(benchmark::kMicrosecond);

void BM_LoadRules(benchmark::State& state) {
  for (auto _ : state) {
    auto rules = RuleSet::LoadDirectory(std::filesystem::path(TRIALMATCH_SOURCE_DIR) / "rules");
    benchmark::DoNotOptimize(rules);
  }
}
BENCHMARK(BM_LoadRules)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
