// store_bench: StudyStore throughput and latency on the recorded corpus
// (1,267 real API v2 studies, ~37 MB of raw JSON).
//
//   build/<dir>/bench/store_bench --benchmark_counters_tabular=true
//
// Parsing the JSON (model::ParseStudy) is done once up front and is not
// measured: UpsertStudies receives parsed records, as the sync module gives
// them. Stores live in a fresh directory under $TMPDIR (default /tmp); note
// whether that is tmpfs when reading the kPowerLoss (fsync) figures.
#include <stdlib.h>

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
        std::filesystem::path(TRIALMATCH_SHARED_DATA_DIR) / "ctgov_v2" / "studies";
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
  for (const StudyRecord& r : Corpus()) n += static_cast<int64_t>(r.raw_json.size());
  return n;
}

// A fresh directory for one store, removed on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "store-bench-XXXXXX").string();
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
  absl::StatusOr<std::unique_ptr<StudyStore>> store = StudyStore::Open(path, options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    std::abort();
  }
  return *std::move(store);
}

void UpsertAll(StudyStore& store, absl::Span<const StudyRecord> records,
               size_t batch) {
  for (size_t i = 0; i < records.size(); i += batch) {
    absl::StatusOr<UpsertCounts> c =
        store.UpsertStudies(records.subspan(i, std::min(batch, records.size() - i)));
    if (!c.ok()) {
      std::fprintf(stderr, "upsert: %s\n", c.status().ToString().c_str());
      std::abort();
    }
  }
}

void SetThroughput(benchmark::State& state, int64_t studies, int64_t bytes) {
  state.SetItemsProcessed(state.iterations() * studies);
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["studies/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * studies),
      benchmark::Counter::kIsRate);
}

// Insert the whole corpus into an empty file store, in batches of range(0)
// studies (one transaction each). range(1): 0 = synchronous NORMAL
// (kProcessCrash), 1 = FULL (kPowerLoss).
void BM_UpsertInsertCorpus(benchmark::State& state) {
  const auto& corpus = Corpus();
  StoreOptions options;
  options.durability = state.range(1) == 0 ? StoreOptions::Durability::kProcessCrash
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
BENCHMARK(BM_UpsertUnchangedCorpus)->Unit(benchmark::kMillisecond)->UseRealTime();

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

// Point lookups of random studies (raw JSON copied out), file store with the
// reader pool (range 0 = 0) or ":memory:" (range 0 = 1).
void BM_GetStudy(benchmark::State& state) {
  const auto& corpus = Corpus();
  ScratchDir dir;
  auto store = OpenOrDie(state.range(0) == 0 ? dir.db() : ":memory:");
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
BENCHMARK(BM_GetStudy)->ArgName("memory")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// Streaming every study with its raw JSON (what a snapshot build does).
void BM_ForEachStudyRaw(benchmark::State& state) {
  const auto& corpus = Corpus();
  ScratchDir dir;
  auto store = OpenOrDie(dir.db());
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
BENCHMARK(BM_ForEachStudyRaw)->Unit(benchmark::kMillisecond)->UseRealTime();

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

}  // namespace
}  // namespace trialmatch::store

BENCHMARK_MAIN();
