// store_bench: StudyStore throughput and latency on the recorded corpus
// (1,267 real API v2 studies, ~37 MB of raw JSON).
//
//   build/<dir>/bench/store_bench --benchmark_counters_tabular=true
//
//   STORE_BENCH_SCALE=100000 build/<dir>/bench/store_bench
//       --benchmark_filter=Scaled     (the registry-sized run, ~3 GB on disk)
//
// Parsing the JSON (model::ParseStudy) is done once up front and is not
// measured: UpsertStudies receives parsed records, as the sync module gives
// them. Stores live in a fresh directory under $TMPDIR (default /tmp); note
// whether that is tmpfs when reading the kPowerLoss (fsync) figures.
#include <stdlib.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "benchmark/benchmark.h"
#include "common/logging.h"
#include "store/study_store.h"

namespace trialmatch::store {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::vector<StudyRecord>& Corpus() {
  static const auto* corpus = [] {
    common::SetMinLogLevel(common::LogLevel::kWarning);
    auto* out = new std::vector<StudyRecord>();
    std::vector<std::filesystem::path> files;
    const std::filesystem::path dir =
        std::filesystem::path(TRIALMATCH_SHARED_DATA_DIR) / "ctgov_v2" /
        "studies";
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.path().extension() == ".json") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      absl::StatusOr<StudyRecord> r = MakeStudyRecord(ReadFile(f));
      if (r.ok()) out->push_back(*std::move(r));
    }
    return out;
  }();
  return *corpus;
}

int64_t CorpusBytes() {
  int64_t n = 0;
  for (const StudyRecord& r : Corpus())
    n += static_cast<int64_t>(r.raw_json.size());
  return n;
}

// A fresh directory for one store, removed on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "store-bench-XXXXXX")
            .string();
    path_ = mkdtemp(tmpl.data());
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string db() const { return (path_ / "studies.db").string(); }

 private:
  std::filesystem::path path_;
};

std::unique_ptr<StudyStore> OpenOrDie(const std::string& path,
                                      const StoreOptions& options = {}) {
  absl::StatusOr<std::unique_ptr<StudyStore>> store =
      StudyStore::Open(path, options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    std::abort();
  }
  return *std::move(store);
}

void UpsertAll(StudyStore& store, absl::Span<const StudyRecord> records,
               size_t batch) {
  for (size_t i = 0; i < records.size(); i += batch) {
    absl::StatusOr<UpsertCounts> c = store.UpsertStudies(
        records.subspan(i, std::min(batch, records.size() - i)));
    if (!c.ok()) {
      std::fprintf(stderr, "upsert: %s\n", c.status().ToString().c_str());
      std::abort();
    }
  }
}

void SetThroughput(benchmark::State& state, int64_t studies, int64_t bytes) {
  state.SetItemsProcessed(state.iterations() * studies);
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["studies/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * studies),
                         benchmark::Counter::kIsRate);
}

// Insert the whole corpus into an empty file store, in batches of range(0)
// studies (one transaction each). range(1): 0 = synchronous NORMAL
// (kProcessCrash), 1 = FULL (kPowerLoss).
void BM_UpsertInsertCorpus(benchmark::State& state) {
  const auto& corpus = Corpus();
  StoreOptions options;
  options.durability = state.range(1) == 0
                           ? StoreOptions::Durability::kProcessCrash
                           : StoreOptions::Durability::kPowerLoss;
  for (auto _ : state) {
    state.PauseTiming();
    auto dir = std::make_unique<ScratchDir>();
    auto store = OpenOrDie(dir->db(), options);
    state.ResumeTiming();
    UpsertAll(*store, corpus, static_cast<size_t>(state.range(0)));
    state.PauseTiming();
    store.reset();
    dir.reset();
    state.ResumeTiming();
  }
  SetThroughput(state, static_cast<int64_t>(corpus.size()), CorpusBytes());
}
BENCHMARK(BM_UpsertInsertCorpus)
    ->ArgNames({"batch", "full_sync"})
    ->Args({1, 0})
    ->Args({100, 0})
    ->Args({1000, 0})
    ->Args({100, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Re-upsert the identical corpus (the idempotent path: hash compare and a
// fetched_at refresh), batches of 1000.
void BM_UpsertUnchangedCorpus(benchmark::State& state) {
  const auto& corpus = Corpus();
  ScratchDir dir;
  auto store = OpenOrDie(dir.db());
  UpsertAll(*store, corpus, 1000);
  for (auto _ : state) UpsertAll(*store, corpus, 1000);
  SetThroughput(state, static_cast<int64_t>(corpus.size()), CorpusBytes());
}
BENCHMARK(BM_UpsertUnchangedCorpus)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Every study changed since the last sync (raw JSON rewritten, search index
// updated), batches of 1000.
void BM_UpsertChangedCorpus(benchmark::State& state) {
  const auto& corpus = Corpus();
  std::vector<StudyRecord> a = corpus, b = corpus;
  for (StudyRecord& r : a) r.raw_json.insert(1, "\"v\":1,");
  for (StudyRecord& r : b) r.raw_json.insert(1, "\"v\":2,");
  ScratchDir dir;
  auto store = OpenOrDie(dir.db());
  UpsertAll(*store, corpus, 1000);
  bool flip = false;
  for (auto _ : state) {
    UpsertAll(*store, flip ? a : b, 1000);
    flip = !flip;
  }
  SetThroughput(state, static_cast<int64_t>(corpus.size()), CorpusBytes());
}
BENCHMARK(BM_UpsertChangedCorpus)->Unit(benchmark::kMillisecond)->UseRealTime();

// Store kinds for the read benchmarks: 0 file (reader pool), 1 ":memory:",
// 2 file with StoreOptions::mmap_size_bytes = 1 GiB.
std::unique_ptr<StudyStore> OpenKind(const ScratchDir& dir, int64_t kind) {
  StoreOptions options;
  if (kind == 2) options.mmap_size_bytes = int64_t{1} << 30;
  return OpenOrDie(kind == 1 ? ":memory:" : dir.db(), options);
}

// Point lookups of random studies (raw JSON copied out).
void BM_GetStudy(benchmark::State& state) {
  const auto& corpus = Corpus();
  ScratchDir dir;
  auto store = OpenKind(dir, state.range(0));
  UpsertAll(*store, corpus, 1000);
  std::mt19937 rng(1);
  int64_t bytes = 0;
  for (auto _ : state) {
    const StudyRecord& r = corpus[rng() % corpus.size()];
    absl::StatusOr<StoredStudy> s = store->GetStudy(r.study.nct_id);
    if (!s.ok()) std::abort();
    bytes += static_cast<int64_t>(s->raw_json.size());
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_GetStudy)
    ->ArgName("file0_mem1_mmap2")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond);

// Streaming every study with its raw JSON (what a snapshot build does).
void BM_ForEachStudyRaw(benchmark::State& state) {
  const auto& corpus = Corpus();
  ScratchDir dir;
  auto store = OpenKind(dir, state.range(0));
  UpsertAll(*store, corpus, 1000);
  StudyFilter all;
  all.lifecycles.clear();
  for (auto _ : state) {
    int64_t n = 0;
    absl::Status s = store->ForEachStudy(all, [&](const StudyView& v) {
      n += static_cast<int64_t>(v.raw_json.size());
      return absl::OkStatus();
    });
    if (!s.ok()) std::abort();
    benchmark::DoNotOptimize(n);
  }
  SetThroughput(state, static_cast<int64_t>(corpus.size()), CorpusBytes());
}
BENCHMARK(BM_ForEachStudyRaw)
    ->ArgName("file0_mem1_mmap2")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One page (10 hits + total count) of an offline search.
void BM_SearchLocal(benchmark::State& state) {
  const auto& corpus = Corpus();
  ScratchDir dir;
  auto store = OpenOrDie(dir.db());
  UpsertAll(*store, corpus, 1000);
  LocalSearchQuery q;
  switch (state.range(0)) {
    case 0:
      q.cond = "cancer";
      break;
    case 1:
      q.term = "\"breast cancer\" OR lymphoma";
      q.statuses = {"RECRUITING"};
      break;
    default:
      q.statuses = {"RECRUITING"};  // listing without text
      break;
  }
  for (auto _ : state) {
    absl::StatusOr<LocalSearchPage> page = store->SearchLocal(q);
    if (!page.ok()) std::abort();
    benchmark::DoNotOptimize(page);
  }
}
BENCHMARK(BM_SearchLocal)
    ->ArgName("query")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond);

// --- Registry scale (opt-in: STORE_BENCH_SCALE=<studies>) --------------------
//
// The recorded corpus cycled to N studies under fresh NCT ids (the raw JSON
// is unchanged; the store does not read ids from it), upserted in batches of
// 1000 into one file store, then streamed back with ForEachStudy. Peak RSS
// is reported to show that a full scan holds one record at a time.

struct Scaled {
  ScratchDir dir;
  std::unique_ptr<StudyStore> store;
  int64_t studies = 0;
  int64_t bytes = 0;
};
Scaled& ScaledStore() {
  static auto* s = new Scaled();
  return *s;
}

double MaxRssMb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

void BM_ScaledUpsert(benchmark::State& state) {
  const auto& corpus = Corpus();
  Scaled& sc = ScaledStore();
  const int64_t n = state.range(0);
  for (auto _ : state) {
    sc.store = OpenOrDie(sc.dir.db());
    std::vector<StudyRecord> batch;
    for (int64_t i = 0; i < n; ++i) {
      StudyRecord r = corpus[static_cast<size_t>(i) % corpus.size()];
      r.study.nct_id = "NCT" + std::to_string(10'000'000 + i);
      sc.bytes += static_cast<int64_t>(r.raw_json.size());
      batch.push_back(std::move(r));
      if (batch.size() == 1000 || i + 1 == n) {
        UpsertAll(*sc.store, batch, batch.size());
        batch.clear();
      }
    }
    sc.studies = n;
  }
  SetThroughput(state, sc.studies, sc.bytes);
  absl::StatusOr<StoreStats> stats = sc.store->GetStats();
  if (stats.ok()) {
    state.counters["file_MB"] = static_cast<double>(stats->file_bytes) / 1e6;
  }
}

void BM_ScaledForEachStudy(benchmark::State& state) {
  Scaled& sc = ScaledStore();
  if (sc.store == nullptr) {
    state.SkipWithError("run BM_ScaledUpsert first");
    return;
  }
  StudyFilter all;
  all.lifecycles.clear();
  const double rss_before = MaxRssMb();
  for (auto _ : state) {
    int64_t n = 0;
    absl::Status s = sc.store->ForEachStudy(all, [&](const StudyView& v) {
      n += static_cast<int64_t>(v.raw_json.size());
      return absl::OkStatus();
    });
    if (!s.ok()) std::abort();
    benchmark::DoNotOptimize(n);
  }
  SetThroughput(state, sc.studies, sc.bytes);
  state.counters["maxrss_MB_before"] = rss_before;
  state.counters["maxrss_MB_after"] = MaxRssMb();
}

void BM_ScaledGetStudy(benchmark::State& state) {
  Scaled& sc = ScaledStore();
  if (sc.store == nullptr) {
    state.SkipWithError("run BM_ScaledUpsert first");
    return;
  }
  std::mt19937 rng(1);
  for (auto _ : state) {
    const std::string id =
        "NCT" +
        std::to_string(10'000'000 + rng() % static_cast<uint32_t>(sc.studies));
    absl::StatusOr<StoredStudy> s = sc.store->GetStudy(id);
    if (!s.ok()) std::abort();
    benchmark::DoNotOptimize(s);
  }
}

void BM_ScaledSearchLocal(benchmark::State& state) {
  Scaled& sc = ScaledStore();
  if (sc.store == nullptr) {
    state.SkipWithError("run BM_ScaledUpsert first");
    return;
  }
  LocalSearchQuery q;
  q.cond = "cancer";
  int64_t total = 0;
  for (auto _ : state) {
    absl::StatusOr<LocalSearchPage> page = sc.store->SearchLocal(q);
    if (!page.ok()) std::abort();
    total = page->total_count.value_or(0);
  }
  state.counters["total_count"] = static_cast<double>(total);
}

}  // namespace
}  // namespace trialmatch::store

int main(int argc, char** argv) {
  using namespace trialmatch::store;  // NOLINT: benchmark registration
  if (const char* scale = std::getenv("STORE_BENCH_SCALE"); scale != nullptr) {
    const int64_t n = std::atoll(scale);
    benchmark::RegisterBenchmark("BM_ScaledUpsert", BM_ScaledUpsert)
        ->Arg(n)
        ->Iterations(1)
        ->Unit(benchmark::kSecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark("BM_ScaledForEachStudy", BM_ScaledForEachStudy)
        ->Iterations(2)
        ->Unit(benchmark::kSecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark("BM_ScaledGetStudy", BM_ScaledGetStudy)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_ScaledSearchLocal", BM_ScaledSearchLocal)
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
