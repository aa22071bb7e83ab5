// match_bench: the matcher on synthetic registries (bench/corpus_gen.h) of
// several sizes, as Google Benchmark benchmarks. docs/match_bench.md has the
// commands and the figures.
//
//   match_bench --sizes=1000,10000,100000 --patients=2000
//   match_bench --sizes=100000 --benchmark_filter='Match/'
//     (a size whose Build/N is filtered out is built untimed on first use)
//
// Per size N (registered in this order, so each reuses the snapshot the
// Build benchmark of its size made; a new size frees the previous one):
//  * Build/N: generate, parse and compile N studies (--build_threads), then
//    SnapshotBuilder::Add every one and Build(). The reported time is the
//    cold start (Add + Build from the in-memory compiled corpus: what a
//    server does at start-up); counters: add_s, build_s, compile_s (not in
//    the time), snapshot_mb (RSS growth after malloc_trim, the compiled
//    studies and the builder gone), kb_per_study.
//  * Match/N/top_k: MatchPatient in-process, one call per iteration over the
//    patient mix (each patient once; default top 50 with explanations,
//    recruiting statuses, ELIGIBLE + POSSIBLE); counters p50_ms, p90_ms,
//    p99_ms, p999_ms (wall clock), cpu_p50_ms, cpu_p99_ms (the thread's CPU
//    time: robust to other processes on a shared machine), the p50 per
//    patient kind, mean candidates / site searches / evaluated studies.
//  * Brute/N: the same calls with MatchOptions::evaluate_all (no index, no
//    ranking bound) on the first --brute_patients patients. Before timing,
//    every brute-force result list is compared with the indexed one (NCT
//    ids, verdicts, scores, explanation counts): any difference fails the
//    benchmark and the exit status.
//  * Batch/N (and BatchBrute/N): --threads threads matching patients
//    (items_per_second = patients/s).
// --callgrind: builds the largest size, runs the patient mix once with
// callgrind's collection switched on around it only, and exits:
//   valgrind --tool=callgrind --collect-atstart=no match_bench --callgrind
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/corpus_flags.h"
#include "bench/corpus_gen.h"
#include "benchmark/benchmark.h"
#include "criteria/compiler.h"
#include "criteria/rule_set.h"
#include "match/matcher.h"
#include "match/snapshot.h"
#include "match/snapshot_io.h"
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

ABSL_FLAG(std::string, rules, TRIALMATCH_SOURCE_DIR "/rules",
          "rules directory");
ABSL_FLAG(std::string, sizes, "1000,10000,100000",
          "registry sizes (studies), comma-separated");
ABSL_FLAG(std::string, top_k, "50",
          "MatchOptions::top_k values, comma-separated");
ABSL_FLAG(int64_t, patients, 2000, "patients in the mix");
ABSL_FLAG(int64_t, brute_patients, 200,
          "patients matched brute force (evaluate_all) too");
ABSL_FLAG(int, build_threads, 2, "threads generating and compiling studies");
ABSL_FLAG(int, threads, 2, "batch threads");
ABSL_FLAG(double, batch_seconds, 5, "minimum duration of each batch run");
ABSL_FLAG(bool, explanations, true, "MatchOptions::include_explanations");
ABSL_FLAG(int, tail, 0,
          "print the N slowest Match calls (CPU time) of each latency run "
          "with their MatchStats, to see what makes the tail");
ABSL_FLAG(std::string, only, "",
          "keep only one group of the patient mix, to measure or profile it: "
          "'limit' (located, with a distance limit), 'located' (without a "
          "limit), 'unlocated'; empty = all");
ABSL_FLAG(std::string, snapshot_file, "",
          "read the snapshot of the largest size from this file (the "
          "<store>.snapshot that `trialmatch match|serve` writes for a store "
          "imported from gen_corpus output with the same seed and size, "
          "--statuses=ALL) instead of generating and compiling it: seconds "
          "instead of minutes at 100k; its Build row is then skipped");
ABSL_FLAG(bool, callgrind, false,
          "only the patient mix on the largest size, once, with callgrind "
          "collection around it");

namespace trialmatch::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double LoadAverage1() {
  std::ifstream in("/proc/loadavg");
  double a = 0;
  in >> a;
  return a;
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

// This thread's CPU time in ms: on a shared machine, wall-clock latency
// includes the time other processes held the core.
double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 +
         static_cast<double>(ts.tv_nsec) / 1e6;
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(
      v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

struct PatientCase {
  patient::Profile profile;
  std::string kind;  // counter suffix
};

std::string KindOf(const nlohmann::json& j) {
  if (!j.contains("conditions")) return "none";
  for (const auto& c : j["conditions"]) {
    if (c.contains("codes")) {
      return c["codes"][0].value("system", "") == "mesh" ? "mesh" : "coded";
    }
  }
  return "text";
}

// --only: whether the patient belongs to the group.
bool KeepFor(std::string_view only, const patient::Profile& p) {
  const bool located = p.location.has_value();
  const bool limit = located && p.location->max_distance_km.has_value();
  if (only == "limit") return limit;
  if (only == "located") return located && !limit;
  if (only == "unlocated") return !located;
  return true;
}

// Everything the benchmarks share; set up in main before they run.
struct World {
  std::unique_ptr<CorpusGenerator> gen;
  std::shared_ptr<const criteria::RuleSet> rules;
  std::vector<PatientCase> cases;
  match::Matcher matcher;
  match::MatchOptions options;
  // The snapshot of the size being benchmarked (Build/N replaces it).
  int64_t size = -1;
  std::shared_ptr<const match::Snapshot> snap;
  int64_t largest = -1;  // the last of --sizes (--snapshot_file)
};
World* world = nullptr;

struct BuildTimes {
  double compile_s = 0;
  double add_s = 0;
  double build_s = 0;
  int64_t failed = 0;
};

// Generates, parses and compiles studies in chunks on `threads` threads; adds
// each chunk to the builder on this thread (Add is the timed cold start).
std::shared_ptr<const match::Snapshot> BuildSnapshot(int64_t n, int threads,
                                                     BuildTimes* times) {
  criteria::Compiler compiler(world->rules);
  match::SnapshotBuilder builder({.rules = world->rules});
  constexpr int64_t kChunk = 4096;
  std::vector<std::optional<std::pair<model::Study, criteria::CompiledStudy>>>
      slot(kChunk);
  for (int64_t base = 0; base < n; base += kChunk) {
    const int64_t count = std::min(kChunk, n - base);
    std::atomic<int64_t> next{0};
    auto work = [&] {
      for (int64_t k; (k = next.fetch_add(1)) < count;) {
        absl::StatusOr<model::Study> s = model::StudyFromJson(
            world->gen->Study(static_cast<uint64_t>(base + k)));
        if (!s.ok()) {
          slot[k].reset();
          continue;
        }
        criteria::CompiledStudy c = compiler.Compile(*s);
        slot[k].emplace(std::move(*s), std::move(c));
      }
    };
    const auto c0 = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
    const auto a0 = Clock::now();
    times->compile_s += Seconds(c0, a0);
    for (int64_t k = 0; k < count; ++k) {
      if (!slot[k] || !builder.Add(slot[k]->first, slot[k]->second).ok()) {
        ++times->failed;
      }
    }
    times->add_s += Seconds(a0, Clock::now());
    for (int64_t k = 0; k < count; ++k) slot[k].reset();
  }
  const auto b0 = Clock::now();
  std::shared_ptr<const match::Snapshot> snap = std::move(builder).Build();
  times->build_s = Seconds(b0, Clock::now());
  return snap;
}

bool SameResults(const match::MatchResponse& a, const match::MatchResponse& b) {
  if (a.results.size() != b.results.size()) return false;
  for (size_t i = 0; i < a.results.size(); ++i) {
    const match::MatchResult& x = a.results[i];
    const match::MatchResult& y = b.results[i];
    if (x.nct_id != y.nct_id || x.verdict != y.verdict || x.score != y.score ||
        x.explanations.size() != y.explanations.size() ||
        x.counts.satisfied != y.counts.satisfied ||
        x.counts.violated != y.counts.violated ||
        x.counts.unknown != y.counts.unknown ||
        x.nearest_site.has_value() != y.nearest_site.has_value() ||
        x.matched_conditions.size() != y.matched_conditions.size()) {
      return false;
    }
    if (x.nearest_site &&
        (x.nearest_site->distance_km != y.nearest_site->distance_km ||
         x.nearest_site->site.facility != y.nearest_site->site.facility)) {
      return false;
    }
    for (size_t j = 0; j < x.explanations.size(); ++j) {
      const match::Explanation& e = x.explanations[j];
      const match::Explanation& f = y.explanations[j];
      if (e.predicate != f.predicate || e.outcome != f.outcome ||
          e.status != f.status || e.reason != f.reason) {
        return false;
      }
    }
    for (size_t j = 0; j < x.matched_conditions.size(); ++j) {
      const match::ConditionMatch& c = x.matched_conditions[j];
      const match::ConditionMatch& d = y.matched_conditions[j];
      if (c.study_condition != d.study_condition ||
          c.patient_condition != d.patient_condition ||
          c.strength != d.strength) {
        return false;
      }
    }
  }
  return true;
}

bool brute_mismatch = false;  // any Brute/N found a difference

void Rebuild(int64_t n, BuildTimes* t) {
  world->snap.reset();
  world->size = -1;
  world->snap = BuildSnapshot(n, absl::GetFlag(FLAGS_build_threads), t);
  world->size = n;
}

// The snapshot of `size`, built here (untimed) when Build/size did not run
// (--benchmark_filter).
void Ready(int64_t size) {
  if (world->snap != nullptr && world->size == size) return;
  if (const std::string path = absl::GetFlag(FLAGS_snapshot_file);
      !path.empty() && size == world->largest) {
    world->snap.reset();
    world->size = -1;
    const auto t0 = Clock::now();
    absl::StatusOr<match::SnapshotKey> key = match::ReadSnapshotKey(path);
    absl::StatusOr<std::shared_ptr<const match::Snapshot>> snap =
        key.ok() ? match::ReadSnapshot(path, *key, {.rules = world->rules})
                 : absl::StatusOr<std::shared_ptr<const match::Snapshot>>(
                       key.status());
    if (!snap.ok() || (*snap)->size() != static_cast<size_t>(size)) {
      std::fprintf(stderr, "match_bench: --snapshot_file %s: %s\n",
                   path.c_str(),
                   snap.ok() ? "holds another number of studies than the size"
                             : snap.status().ToString().c_str());
      std::exit(1);
    }
    world->snap = *std::move(snap);
    world->size = size;
    const match::SnapshotStats& st = world->snap->stats();
    std::fprintf(stderr,
                 "match_bench: read %" PRId64
                 " studies in %.2f s (%zu predicates, %zu concepts, %zu "
                 "descriptors, %zu open sites, %zu site cells)\n",
                 size, Seconds(t0, Clock::now()), st.predicates, st.concepts,
                 st.mesh_keys, st.open_sites, world->snap->site_cells().size());
    return;
  }
  BuildTimes t;
  Rebuild(size, &t);
  std::fprintf(stderr,
               "match_bench: built %" PRId64
               " studies (add %.2f s, "
               "build %.2f s)\n",
               size, t.add_s, t.build_s);
}

void BM_Build(benchmark::State& state) {
  const int64_t n = state.range(0);
  for (auto _ : state) {
    world->snap.reset();
    world->size = -1;
    const double rss0 = RssMb();
    BuildTimes t;
    Rebuild(n, &t);
    const double rss1 = RssMb();
    state.SetIterationTime(t.add_s + t.build_s);
    state.counters["compile_s"] = t.compile_s;
    state.counters["add_s"] = t.add_s;
    state.counters["build_s"] = t.build_s;
    state.counters["snapshot_mb"] = rss1 - rss0;
    state.counters["kb_per_study"] =
        (rss1 - rss0) * 1024 / static_cast<double>(n);
    state.counters["peak_rss_mb"] = ProcStatusMb("VmHWM");
    state.counters["failed"] = static_cast<double>(t.failed);
  }
  const match::SnapshotStats& st = world->snap->stats();
  state.counters["predicates"] = static_cast<double>(st.predicates);
  state.counters["open_sites"] = static_cast<double>(st.open_sites);
  state.counters["load1"] = LoadAverage1();
}

// One Match per iteration, cycling over `limit` patients; per-call latency
// percentiles as counters.
void RunLatency(benchmark::State& state, const match::MatchOptions& options,
                size_t limit) {
  std::vector<double> all;
  std::vector<double> cpu;
  std::map<std::string, std::vector<double>> by_kind;
  double candidates = 0, searches = 0, evaluated = 0, results = 0;
  struct Slow {
    double cpu_ms;
    size_t patient;
    match::MatchStats stats;
    size_t results;
  };
  std::vector<Slow> slow;
  size_t i = 0;
  for (auto _ : state) {
    const size_t patient = i % limit;
    const PatientCase& c = world->cases[i++ % limit];
    const double cpu0 = ThreadCpuMs();
    const auto a = Clock::now();
    absl::StatusOr<match::MatchResponse> r =
        world->matcher.Match(*world->snap, c.profile, options);
    const double ms = Seconds(a, Clock::now()) * 1e3;
    cpu.push_back(ThreadCpuMs() - cpu0);
    if (!r.ok()) {
      state.SkipWithError("Match failed");
      return;
    }
    all.push_back(ms);
    by_kind[c.kind].push_back(ms);
    if (absl::GetFlag(FLAGS_tail) > 0) {
      slow.push_back({cpu.back(), patient, r->stats, r->results.size()});
    }
    candidates += static_cast<double>(r->stats.candidates);
    searches += static_cast<double>(r->stats.site_searches);
    evaluated += static_cast<double>(r->stats.evaluated);
    results += static_cast<double>(r->results.size());
    benchmark::DoNotOptimize(r);
  }
  if (!slow.empty()) {
    const size_t n = std::min<size_t>(
        slow.size(), static_cast<size_t>(absl::GetFlag(FLAGS_tail)));
    std::partial_sort(
        slow.begin(), slow.begin() + static_cast<std::ptrdiff_t>(n), slow.end(),
        [](const Slow& a, const Slow& b) { return a.cpu_ms > b.cpu_ms; });
    const std::string label = absl::StrCat(
        "top_k ", options.top_k, options.evaluate_all ? " brute" : "");
    for (size_t j = 0; j < n; ++j) {
      const Slow& s = slow[j];
      const patient::Profile& p = world->cases[s.patient].profile;
      std::fprintf(stderr,
                   "[tail] %s cpu %.2f ms patient %zu kind %s conditions %zu "
                   "located %d limit %d index %d candidates %zu "
                   "outside %zu pruned %zu searches %zu evaluated %zu "
                   "eligible %zu possible %zu ineligible %zu results %zu\n",
                   label.c_str(), s.cpu_ms, s.patient,
                   world->cases[s.patient].kind.c_str(), p.conditions.size(),
                   p.location.has_value() ? 1 : 0,
                   p.location && p.location->max_distance_km ? 1 : 0,
                   s.stats.used_index ? 1 : 0, s.stats.candidates,
                   s.stats.outside_distance, s.stats.pruned,
                   s.stats.site_searches, s.stats.evaluated, s.stats.eligible,
                   s.stats.possible, s.stats.ineligible, s.results);
    }
  }
  const double m = static_cast<double>(all.size());
  state.counters["p50_ms"] = Quantile(all, 0.5);
  state.counters["p90_ms"] = Quantile(all, 0.9);
  state.counters["p99_ms"] = Quantile(all, 0.99);
  state.counters["p999_ms"] = Quantile(all, 0.999);
  state.counters["cpu_p50_ms"] = Quantile(cpu, 0.5);
  state.counters["cpu_p99_ms"] = Quantile(cpu, 0.99);
  for (const auto& [kind, v] : by_kind) {
    state.counters["p50_ms_" + kind] = Quantile(v, 0.5);
  }
  state.counters["candidates"] = candidates / m;
  state.counters["site_searches"] = searches / m;
  state.counters["evaluated"] = evaluated / m;
  state.counters["results"] = results / m;
  state.counters["load1"] = LoadAverage1();
}

void BM_Match(benchmark::State& state) {
  Ready(state.range(0));
  match::MatchOptions options = world->options;
  options.top_k = static_cast<int>(state.range(1));
  // Warm-up: a tenth of the mix.
  for (size_t i = 0; i < world->cases.size() / 10; ++i) {
    (void)world->matcher.Match(*world->snap, world->cases[i].profile, options);
  }
  RunLatency(state, options, world->cases.size());
}

size_t BrutePatients() {
  return std::max<size_t>(
      1, std::min<size_t>(
             world->cases.size(),
             static_cast<size_t>(absl::GetFlag(FLAGS_brute_patients))));
}

void BM_Brute(benchmark::State& state) {
  Ready(state.range(0));
  match::MatchOptions brute = world->options;
  brute.evaluate_all = true;
  const size_t nb = BrutePatients();
  // The index and the bound are accelerators: the results must not change.
  size_t mismatches = 0;
  for (size_t i = 0; i < nb; ++i) {
    auto r = world->matcher.Match(*world->snap, world->cases[i].profile, brute);
    auto x = world->matcher.Match(*world->snap, world->cases[i].profile,
                                  world->options);
    if (!r.ok() || !x.ok() || !SameResults(*r, *x)) ++mismatches;
  }
  if (mismatches > 0) {
    std::fprintf(stderr,
                 "match_bench: brute force differs for %zu of %zu "
                 "patients\n",
                 mismatches, nb);
    brute_mismatch = true;
    state.SkipWithError("brute-force results differ from the index's");
    return;
  }
  RunLatency(state, brute, nb);
  state.counters["checked_patients"] = static_cast<double>(nb);
}

void RunBatch(benchmark::State& state, const match::MatchOptions& options,
              size_t limit) {
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    auto r = world->matcher.Match(*world->snap,
                                  world->cases[i++ % limit].profile, options);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Batch(benchmark::State& state) {
  Ready(state.range(0));
  RunBatch(state, world->options, world->cases.size());
}

void BM_BatchBrute(benchmark::State& state) {
  Ready(state.range(0));
  match::MatchOptions brute = world->options;
  brute.evaluate_all = true;
  RunBatch(state, brute, BrutePatients());
}

std::vector<int64_t> ParseList(const std::string& text) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(part, &v) || v <= 0) return {};
    out.push_back(v);
  }
  return out;
}

int Run() {
  const std::vector<int64_t> sizes = ParseList(absl::GetFlag(FLAGS_sizes));
  const std::vector<int64_t> top_ks = ParseList(absl::GetFlag(FLAGS_top_k));
  if (sizes.empty() || top_ks.empty() || sizes.back() > 10'000'000) {
    std::fprintf(stderr,
                 "match_bench: --sizes and --top_k must be lists of "
                 "positive numbers (sizes up to 10,000,000)\n");
    return 2;
  }
  const CorpusOptions copt = CorpusOptionsFromFlags();
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
  World w;
  world = &w;
  w.gen = *std::move(gen);
  w.rules = *std::move(rules);
  w.options.include_explanations = absl::GetFlag(FLAGS_explanations);

  const int64_t np = absl::GetFlag(FLAGS_patients);
  const std::string only = absl::GetFlag(FLAGS_only);
  if (!only.empty() && only != "limit" && only != "located" &&
      only != "unlocated") {
    std::fprintf(stderr, "match_bench: unknown --only=%s\n", only.c_str());
    return 2;
  }
  std::map<std::string, int> kinds;
  for (int64_t j = 0; j < np; ++j) {
    const nlohmann::json pj = w.gen->Patient(static_cast<uint64_t>(j));
    absl::StatusOr<patient::Profile> p = patient::FromJsonValue(pj);
    if (!p.ok()) {
      std::fprintf(stderr, "match_bench: patient %" PRId64 ": %s\n", j,
                   p.status().ToString().c_str());
      return 1;
    }
    if (!KeepFor(only, *p)) continue;
    w.cases.push_back({*std::move(p), KindOf(pj)});
    ++kinds[w.cases.back().kind];
  }
  if (w.cases.empty()) {
    std::fprintf(stderr, "match_bench: --patients must be positive\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("match_bench: seed %" PRIu64
              ", %zu records, rules %s; %zu "
              "patients:",
              copt.seed, w.gen->seed_records(), w.rules->version().c_str(),
              w.cases.size());
  for (const auto& [k, c] : kinds) std::printf(" %s %d;", k.c_str(), c);
  std::printf(" explanations %s\n",
              w.options.include_explanations ? "on" : "off");
  std::fflush(stdout);

  w.largest = sizes.back();
  if (absl::GetFlag(FLAGS_callgrind)) {
    Ready(sizes.back());
    match::MatchOptions options = w.options;
    options.top_k = static_cast<int>(top_ks.front());
    size_t results = 0;
    TRIALMATCH_CALLGRIND_TOGGLE();
    for (const PatientCase& c : w.cases) {
      auto r = w.matcher.Match(*w.snap, c.profile, options);
      if (r.ok()) results += r->results.size();
    }
    TRIALMATCH_CALLGRIND_TOGGLE();
    std::printf("[callgrind] %zu calls, %zu results\n", w.cases.size(),
                results);
    return 0;
  }

  const auto iterations =
      static_cast<benchmark::IterationCount>(w.cases.size());
  const auto brute_iterations =
      static_cast<benchmark::IterationCount>(BrutePatients());
  const int threads = absl::GetFlag(FLAGS_threads);
  const double batch_seconds = absl::GetFlag(FLAGS_batch_seconds);
  const bool from_file = !absl::GetFlag(FLAGS_snapshot_file).empty();
  for (int64_t n : sizes) {
    if (!from_file || n != w.largest) {
      benchmark::RegisterBenchmark("Build", BM_Build)
          ->ArgName("studies")
          ->Arg(n)
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kSecond);
    }
    for (int64_t k : top_ks) {
      benchmark::RegisterBenchmark("Match", BM_Match)
          ->ArgNames({"studies", "top_k"})
          ->Args({n, k})
          ->Iterations(iterations)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark("Brute", BM_Brute)
        ->ArgName("studies")
        ->Arg(n)
        ->Iterations(brute_iterations)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("Batch", BM_Batch)
        ->ArgName("studies")
        ->Arg(n)
        ->Threads(threads)
        ->MinTime(batch_seconds)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BatchBrute", BM_BatchBrute)
        ->ArgName("studies")
        ->Arg(n)
        ->Threads(threads)
        ->MinTime(batch_seconds)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return brute_mismatch ? 1 : 0;
}

}  // namespace
}  // namespace trialmatch::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  absl::SetProgramUsageMessage(
      "Matcher benchmarks on synthetic registries (docs/match_bench.md).");
  absl::ParseCommandLine(argc, argv);
  return trialmatch::bench::Run();
}
