// Throughput of the JSON splitter (the import and sync hot path) and of
// /studies page parsing, on the 1,267 recorded study records.
//
//   cmake --build build/<dir> --target ctgov_bench
//   build/<dir>/bench/ctgov_bench
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/json_splitter.h"
#include "ctgov/responses.h"
#include "nlohmann/json.hpp"

namespace trialmatch {
namespace {

std::vector<std::string> LoadStudies() {
  std::vector<std::string> out;
  const std::filesystem::path dir =
      std::filesystem::path(TRIALMATCH_SHARED_DATA_DIR) / "ctgov_v2" /
      "studies";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

// ctg-studies.json shape: one array of every recorded study.
const std::string& AllStudiesArray() {
  static const std::string* array = [] {
    auto* s = new std::string("[");
    const auto studies = LoadStudies();
    for (std::size_t i = 0; i < studies.size(); ++i) {
      if (i > 0) s->push_back(',');
      *s += studies[i];
    }
    s->push_back(']');
    return s;
  }();
  return *array;
}

// A /studies page of up to 1000 studies.
const std::string& Page1000() {
  static const std::string* page = [] {
    auto* s = new std::string("{\"studies\":[");
    const auto studies = LoadStudies();
    for (std::size_t i = 0; i < studies.size() && i < 1000; ++i) {
      if (i > 0) s->push_back(',');
      *s += studies[i];
    }
    *s += "],\"nextPageToken\":\"abc\",\"totalCount\":123456}";
    return s;
  }();
  return *page;
}

void BM_SplitArrayInChunks(benchmark::State& state) {
  const std::string& input = AllStudiesArray();
  const std::size_t chunk = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    std::size_t n = 0;
    common::JsonSplitter splitter({},
                                  [&](const common::JsonSplitter::Element&) {
                                    ++n;
                                    return absl::OkStatus();
                                  });
    for (std::size_t at = 0; at < input.size(); at += chunk) {
      if (!splitter.Feed(std::string_view(input).substr(at, chunk)).ok()) {
        state.SkipWithError("feed failed");
      }
    }
    if (!splitter.Finish().ok()) state.SkipWithError("finish failed");
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(
      static_cast<int64_t>(state.iterations() * input.size()));
}
BENCHMARK(BM_SplitArrayInChunks)->Arg(4096)->Arg(1 << 20);

// Reference: a DOM parse of the same bytes.
void BM_NlohmannDomParseArray(benchmark::State& state) {
  const std::string& input = AllStudiesArray();
  for (auto _ : state) {
    auto j = nlohmann::json::parse(input);
    benchmark::DoNotOptimize(j.size());
  }
  state.SetBytesProcessed(
      static_cast<int64_t>(state.iterations() * input.size()));
}
BENCHMARK(BM_NlohmannDomParseArray);

// What the client does per page: split + validate every element + parse the
// rest.
void BM_ParseStudiesPage1000(benchmark::State& state) {
  const std::string& page = Page1000();
  for (auto _ : state) {
    auto parsed = ctgov::ParseStudiesPage(page);
    if (!parsed.ok()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(parsed->studies.size());
  }
  state.SetBytesProcessed(
      static_cast<int64_t>(state.iterations() * page.size()));
}
BENCHMARK(BM_ParseStudiesPage1000);

}  // namespace
}  // namespace trialmatch

BENCHMARK_MAIN();
