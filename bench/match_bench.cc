// match_bench: the matcher on a synthetic registry (bench/corpus_gen.h).
//
//   match_bench --studies=100000 --patients=2000
//
// Phases (each prints its figures and the load average around it):
//  1. build: generate, parse, compile (--build_threads) and add every study
//     to a SnapshotBuilder; Build(). Time and the snapshot's memory (RSS
//     growth after malloc_trim; the builder and compiled studies are gone).
//  2. latency: MatchPatient in-process (default top 50 with explanations,
//     recruiting statuses), one call at a time over the patient mix, with
//     the index; p50/p90/p99/p99.9/max overall and per patient kind.
//  3. brute: the same calls with evaluate_all (no index, no pruning) on the
//     first --brute_patients patients; every result list is compared with
//     the indexed one (must be identical).
//  4. batch: --threads threads matching patients for --batch_seconds
//     (patients/s), with the index and brute force.
// --callgrind: after the build, runs the latency loop once with callgrind's
// collection switched on around it only:
//   valgrind --tool=callgrind --collect-atstart=no match_bench --callgrind ...
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/corpus_gen.h"
#include "criteria/compiler.h"
#include "criteria/rule_set.h"
#include "match/matcher.h"
#include "match/snapshot.h"
#include "model/study.h"
#include "patient/json_reader.h"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define TRIALMATCH_CALLGRIND_TOGGLE() CALLGRIND_TOGGLE_COLLECT
#else
#define TRIALMATCH_CALLGRIND_TOGGLE() \
  do {                                \
  } while (0)
#endif

ABSL_FLAG(std::string, data_dir, TRIALMATCH_SHARED_DATA_DIR "/ctgov_v2/studies",
          "the real records to recombine");
ABSL_FLAG(std::string, rules, TRIALMATCH_SOURCE_DIR "/rules", "rules directory");
ABSL_FLAG(std::string, condition_codes,
          TRIALMATCH_SOURCE_DIR "/rules/patient/condition_codes.tsv",
          "crosswalk for coded patient conditions");
ABSL_FLAG(int64_t, studies, 100000, "studies in the registry");
ABSL_FLAG(int64_t, patients, 2000, "patients in the mix");
ABSL_FLAG(int64_t, brute_patients, 200,
          "patients matched brute force (evaluate_all) too");
ABSL_FLAG(uint64_t, seed, 1, "generator seed");
ABSL_FLAG(int, build_threads, 2, "threads generating and compiling studies");
ABSL_FLAG(int, threads, 2, "batch threads");
ABSL_FLAG(double, batch_seconds, 10, "duration of each batch run");
ABSL_FLAG(int, top_k, 50, "MatchOptions::top_k");
ABSL_FLAG(bool, explanations, true, "MatchOptions::include_explanations");
ABSL_FLAG(std::string, phases, "latency,brute,batch",
          "phases after the build: latency, brute, batch");
ABSL_FLAG(bool, callgrind, false,
          "only the latency loop, once, with callgrind collection around it");

namespace trialmatch::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// VmRSS / VmHWM in MB.
double ProcStatusMb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      return std::stod(line.substr(prefix.size())) / 1024.0;
    }
  }
  return 0;
}

double RssMb() {
  malloc_trim(0);
  return ProcStatusMb("VmRSS");
}

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};

Percentiles Compute(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const size_t i = std::min(
        v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
    return v[i];
  };
  p.p50 = at(0.5);
  p.p90 = at(0.9);
  p.p99 = at(0.99);
  p.p999 = at(0.999);
  p.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  p.mean = sum / static_cast<double>(v.size());
  return p;
}

void PrintLatency(const char* label, const std::vector<double>& ms) {
  const Percentiles p = Compute(ms);
  std::printf(
      "  %-28s n=%-6zu p50 %7.3f  p90 %7.3f  p99 %7.3f  p99.9 %7.3f  max "
      "%7.3f  mean %7.3f ms\n",
      label, ms.size(), p.p50, p.p90, p.p99, p.p999, p.max, p.mean);
}

struct PatientCase {
  patient::Profile profile;
  std::string kind;  // for the per-kind breakdown
};

std::string KindOf(const nlohmann::json& j) {
  if (!j.contains("conditions")) return "no conditions";
  for (const auto& c : j["conditions"]) {
    if (c.contains("codes")) {
      const std::string sys = c["codes"][0].value("system", "");
      if (sys == "mesh") return "MeSH-coded condition";
      return "ICD-10/SNOMED condition";
    }
  }
  return "free-text condition";
}

std::shared_ptr<const match::Snapshot> BuildSnapshot(
    const CorpusGenerator& gen, std::shared_ptr<const criteria::RuleSet> rules,
    int64_t n, int threads) {
  criteria::Compiler compiler(rules);
  match::SnapshotBuilder builder({.rules = rules});
  constexpr int64_t kChunk = 4096;
  std::vector<std::optional<std::pair<model::Study, criteria::CompiledStudy>>>
      slot(kChunk);
  int64_t failed = 0;
  double t_add = 0;
  for (int64_t base = 0; base < n; base += kChunk) {
    const int64_t count = std::min(kChunk, n - base);
    std::atomic<int64_t> next{0};
    auto work = [&] {
      for (int64_t k; (k = next.fetch_add(1)) < count;) {
        absl::StatusOr<model::Study> s = model::StudyFromJson(
            gen.Study(static_cast<uint64_t>(base + k)));
        if (!s.ok()) {
          slot[k].reset();
          continue;
        }
        criteria::CompiledStudy c = compiler.Compile(*s);
        slot[k].emplace(std::move(*s), std::move(c));
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
    const auto a0 = Clock::now();
    for (int64_t k = 0; k < count; ++k) {
      if (!slot[k] || !builder.Add(slot[k]->first, slot[k]->second).ok()) {
        ++failed;
      }
      slot[k].reset();
    }
    t_add += Seconds(a0, Clock::now());
  }
  const auto b0 = Clock::now();
  std::shared_ptr<const match::Snapshot> snap = std::move(builder).Build();
  std::printf("  of which SnapshotBuilder::Add %.1f s, Build() %.2f s; %" PRId64
              " failed\n",
              t_add, Seconds(b0, Clock::now()), failed);
  return snap;
}

bool SameResults(const match::MatchResponse& a, const match::MatchResponse& b) {
  if (a.results.size() != b.results.size()) return false;
  for (size_t i = 0; i < a.results.size(); ++i) {
    const match::MatchResult& x = a.results[i];
    const match::MatchResult& y = b.results[i];
    if (x.nct_id != y.nct_id || x.verdict != y.verdict || x.score != y.score ||
        x.explanations.size() != y.explanations.size()) {
      return false;
    }
  }
  return true;
}

int Run() {
  const int64_t n = absl::GetFlag(FLAGS_studies);
  CorpusOptions copt;
  copt.studies_dir = absl::GetFlag(FLAGS_data_dir);
  copt.condition_codes = absl::GetFlag(FLAGS_condition_codes);
  copt.seed = absl::GetFlag(FLAGS_seed);
  auto gen = CorpusGenerator::Create(copt);
  if (!gen.ok()) {
    std::fprintf(stderr, "match_bench: %s\n", gen.status().ToString().c_str());
    return 1;
  }
  auto rules = criteria::RuleSet::LoadDirectory(absl::GetFlag(FLAGS_rules));
  if (!rules.ok()) {
    std::fprintf(stderr, "match_bench: rules: %s\n",
                 rules.status().ToString().c_str());
    return 1;
  }
  std::printf("match_bench: %" PRId64 " studies (seed %" PRIu64
              ", %zu records), rules %s\n",
              n, copt.seed, (*gen)->seed_records(), (*rules)->version().c_str());

  // --- build --------------------------------------------------------------
  std::printf("[build] load %s\n", LoadAverage().c_str());
  const double rss0 = RssMb();
  const auto t0 = Clock::now();
  std::shared_ptr<const match::Snapshot> snap =
      BuildSnapshot(**gen, *rules, n, absl::GetFlag(FLAGS_build_threads));
  std::printf("  generate+parse+compile+build: %.1f s\n",
              Seconds(t0, Clock::now()));
  const double rss1 = RssMb();
  const match::SnapshotStats& st = snap->stats();
  std::printf(
      "  snapshot: %zu studies, %zu predicates, %zu criteria, %zu located "
      "sites (%zu open), %zu strings\n",
      st.studies, st.predicates, st.criteria, st.located_sites, st.open_sites,
      st.strings);
  std::printf("  RSS %.0f MB (snapshot +%.0f MB), peak %.0f MB; load %s\n",
              rss1, rss1 - rss0,
              ProcStatusMb("VmHWM"), LoadAverage().c_str());

  // --- patients -----------------------------------------------------------
  const int64_t np = absl::GetFlag(FLAGS_patients);
  std::vector<PatientCase> cases;
  std::map<std::string, int> kinds;
  for (int64_t j = 0; j < np; ++j) {
    const nlohmann::json pj = (*gen)->Patient(static_cast<uint64_t>(j));
    absl::StatusOr<patient::Profile> p = patient::FromJsonValue(pj);
    if (!p.ok()) {
      std::fprintf(stderr, "patient %" PRId64 ": %s\n", j,
                   p.status().ToString().c_str());
      continue;
    }
    cases.push_back({*std::move(p), KindOf(pj)});
    ++kinds[cases.back().kind];
  }
  std::printf("[patients] %zu:", cases.size());
  for (const auto& [k, c] : kinds) std::printf(" %s %d;", k.c_str(), c);
  std::printf("\n");

  match::Matcher matcher;
  match::MatchOptions options;
  options.top_k = absl::GetFlag(FLAGS_top_k);
  options.include_explanations = absl::GetFlag(FLAGS_explanations);
  match::MatchOptions brute = options;
  brute.evaluate_all = true;
  std::printf("options: top_k %d, explanations %s, statuses RECRUITING + "
              "NOT_YET_RECRUITING, verdicts ELIGIBLE + POSSIBLE\n",
              options.top_k, options.include_explanations ? "on" : "off");

  if (absl::GetFlag(FLAGS_callgrind)) {
    size_t results = 0;
    TRIALMATCH_CALLGRIND_TOGGLE();
    for (const PatientCase& c : cases) {
      auto r = matcher.Match(*snap, c.profile, options);
      if (r.ok()) results += r->results.size();
    }
    TRIALMATCH_CALLGRIND_TOGGLE();
    std::printf("[callgrind] %zu calls, %zu results\n", cases.size(), results);
    return 0;
  }

  const std::string phases = absl::GetFlag(FLAGS_phases);
  auto phase = [&](const char* name) {
    return phases.find(name) != std::string::npos;
  };

  if (phase("latency")) {
    // Warm-up: one pass over a tenth of the mix.
    for (size_t i = 0; i < cases.size() / 10; ++i) {
      (void)matcher.Match(*snap, cases[i].profile, options);
    }
    std::printf("[latency] in-process Match, one call at a time; load %s\n",
                LoadAverage().c_str());
    std::vector<double> all;
    std::map<std::string, std::vector<double>> by_kind;
    double candidates = 0, evaluated = 0, searches = 0, results = 0;
    for (const PatientCase& c : cases) {
      const auto a = Clock::now();
      auto r = matcher.Match(*snap, c.profile, options);
      const double ms = Seconds(a, Clock::now()) * 1e3;
      all.push_back(ms);
      by_kind[c.kind].push_back(ms);
      if (r.ok()) {
        candidates += static_cast<double>(r->stats.candidates);
        evaluated += static_cast<double>(r->stats.evaluated);
        searches += static_cast<double>(r->stats.site_searches);
        results += static_cast<double>(r->results.size());
      }
    }
    PrintLatency("all patients (index)", all);
    for (const auto& [k, v] : by_kind) PrintLatency(k.c_str(), v);
    const double m = static_cast<double>(cases.size());
    std::printf(
        "  per call: %.0f candidates, %.0f site searches, %.0f evaluated, "
        "%.1f results; load %s\n",
        candidates / m, searches / m, evaluated / m, results / m,
        LoadAverage().c_str());
  }

  if (phase("brute")) {
    const size_t nb = std::min<size_t>(
        cases.size(), static_cast<size_t>(absl::GetFlag(FLAGS_brute_patients)));
    std::printf("[brute] evaluate_all (no index, no pruning), %zu patients; "
                "load %s\n",
                nb, LoadAverage().c_str());
    std::vector<double> all;
    std::vector<double> indexed;
    size_t mismatches = 0;
    double evaluated = 0;
    for (size_t i = 0; i < nb; ++i) {
      const auto a = Clock::now();
      auto r = matcher.Match(*snap, cases[i].profile, brute);
      all.push_back(Seconds(a, Clock::now()) * 1e3);
      const auto b = Clock::now();
      auto x = matcher.Match(*snap, cases[i].profile, options);
      indexed.push_back(Seconds(b, Clock::now()) * 1e3);
      if (!r.ok() || !x.ok() || !SameResults(*r, *x)) ++mismatches;
      if (r.ok()) evaluated += static_cast<double>(r->stats.evaluated);
    }
    PrintLatency("brute force", all);
    PrintLatency("index (same patients)", indexed);
    std::printf("  %.0f evaluated per call; results differ for %zu of %zu "
                "patients; load %s\n",
                nb > 0 ? evaluated / static_cast<double>(nb) : 0.0, mismatches,
                nb, LoadAverage().c_str());
    if (mismatches > 0) return 1;
  }

  if (phase("batch")) {
    const int threads = absl::GetFlag(FLAGS_threads);
    const double secs = absl::GetFlag(FLAGS_batch_seconds);
    auto run = [&](const match::MatchOptions& o, size_t limit) {
      std::atomic<size_t> next{0};
      std::atomic<bool> stop{false};
      std::atomic<int64_t> done{0};
      auto work = [&] {
        int64_t mine = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          const size_t i = next.fetch_add(1) % limit;
          auto r = matcher.Match(*snap, cases[i].profile, o);
          if (r.ok()) ++mine;
        }
        done += mine;
      };
      const auto a = Clock::now();
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) pool.emplace_back(work);
      std::this_thread::sleep_for(std::chrono::duration<double>(secs));
      stop = true;
      for (std::thread& t : pool) t.join();
      return static_cast<double>(done.load()) / Seconds(a, Clock::now());
    };
    std::printf("[batch] %d threads, %.0f s each; load %s\n", threads, secs,
                LoadAverage().c_str());
    std::printf("  index:       %8.0f patients/s\n", run(options, cases.size()));
    match::MatchOptions lean = options;
    lean.include_explanations = false;
    std::printf("  index, without full explanations: %8.0f patients/s\n",
                run(lean, cases.size()));
    const size_t nb = std::max<size_t>(
        1, std::min<size_t>(cases.size(),
                            static_cast<size_t>(
                                absl::GetFlag(FLAGS_brute_patients))));
    std::printf("  brute force: %8.1f patients/s\n", run(brute, nb));
    std::printf("  load %s\n", LoadAverage().c_str());
  }
  return 0;
}

}  // namespace
}  // namespace trialmatch::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Matcher benchmark on a synthetic registry (docs/match_bench.md).");
  absl::ParseCommandLine(argc, argv);
  return trialmatch::bench::Run();
}
