// protojson_bench: the two JSON printers on real answers.
//
//   trialmatch match --store=S --patients=P --out=answers.jsonl
//   protojson_bench --answers=answers.jsonl [--limit=500]
//
// Reads the `match` objects of a `trialmatch match` JSON Lines output back
// into v1::MatchPatientResponse (protobuf's parser), checks that both
// printers give the same bytes for each, then times them: BM_Protobuf
// (google::protobuf::util::MessageToJsonString) and BM_Protojson
// (protojson::AppendJson), one answer per iteration, bytes_per_second the
// JSON written.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "benchmark/benchmark.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "protojson/printer.h"
#include "trialmatch/v1/matching_service.pb.h"

ABSL_FLAG(std::string, answers, "",
          "JSON Lines written by `trialmatch match` (the `match` objects "
          "are read)");
ABSL_FLAG(int, limit, 500, "answers read at most");

namespace {

std::vector<trialmatch::v1::MatchPatientResponse>* answers = nullptr;

void BM_Protobuf(benchmark::State& state) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  size_t i = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    std::string out;
    (void)google::protobuf::util::MessageToJsonString(
        (*answers)[i++ % answers->size()], &out, o);
    bytes += static_cast<int64_t>(out.size());
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(bytes);
}

void BM_Protojson(benchmark::State& state) {
  size_t i = 0;
  int64_t bytes = 0;
  std::string out;
  for (auto _ : state) {
    out.clear();
    (void)trialmatch::protojson::AppendJson(
        (*answers)[i++ % answers->size()], {.preserve_proto_field_names = true},
        &out);
    bytes += static_cast<int64_t>(out.size());
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(bytes);
}

BENCHMARK(BM_Protobuf);
BENCHMARK(BM_Protojson);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  absl::ParseCommandLine(argc, argv);
  std::ifstream in(absl::GetFlag(FLAGS_answers));
  if (!in) {
    std::fprintf(stderr, "protojson_bench: cannot read --answers\n");
    return 2;
  }
  std::vector<trialmatch::v1::MatchPatientResponse> read;
  std::string line;
  while (static_cast<int>(read.size()) < absl::GetFlag(FLAGS_limit) &&
         std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("match")) continue;
    trialmatch::v1::MatchPatientResponse r;
    if (!google::protobuf::util::JsonStringToMessage(j["match"].dump(), &r)
             .ok()) {
      std::fprintf(stderr, "protojson_bench: an answer does not parse\n");
      return 1;
    }
    read.push_back(std::move(r));
  }
  if (read.empty()) {
    std::fprintf(stderr, "protojson_bench: no answers in --answers\n");
    return 2;
  }
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  for (const auto& r : read) {
    std::string theirs;
    std::string ours;
    (void)google::protobuf::util::MessageToJsonString(r, &theirs, o);
    if (!trialmatch::protojson::AppendJson(
             r, {.preserve_proto_field_names = true}, &ours)
             .ok() ||
        ours != theirs) {
      std::fprintf(stderr, "protojson_bench: the printers differ\n");
      return 1;
    }
  }
  std::printf("protojson_bench: %zu answers, identical JSON from both\n",
              read.size());
  answers = &read;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
