// Reader throughput on the hand-written profiles of tests/data/patients/.
//
//   cmake --build build/<dir> --target patient_bench
//   build/<dir>/bench/patient_bench
#include <fstream>
#include <sstream>
#include <string>

#include "benchmark/benchmark.h"
#include "google/protobuf/text_format.h"
#include "patient/fhir_reader.h"
#include "patient/json_reader.h"
#include "patient/proto_reader.h"

namespace trialmatch::patient {
namespace {

std::string ReadData(const char* name) {
  std::ifstream in(std::string(TRIALMATCH_TEST_DATA_DIR) + "/patients/" + name,
                   std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ReaderOptions Options() {
  ReaderOptions o;
  o.reference_date = absl::CivilDay(2025, 6, 15);
  return o;
}

void BM_FromJson(benchmark::State& state) {
  const std::string text = ReadData("plain_profile.json");
  const ReaderOptions options = Options();
  for (auto _ : state) {
    absl::StatusOr<Profile> p = FromJson(text, options);
    if (!p.ok()) state.SkipWithError("read failed");
    benchmark::DoNotOptimize(p);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_FromJson);

void BM_FromProto(benchmark::State& state) {
  v1::PatientProfile proto;
  google::protobuf::TextFormat::ParseFromString(
      ReadData("plain_profile.textproto"), &proto);
  const ReaderOptions options = Options();
  for (auto _ : state) {
    absl::StatusOr<Profile> p = FromProto(proto, options);
    if (!p.ok()) state.SkipWithError("read failed");
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_FromProto);

void BM_FromFhirBundle(benchmark::State& state) {
  const std::string text = ReadData("fhir_bundle_breast_cancer.json");
  const ReaderOptions options = Options();
  for (auto _ : state) {
    absl::StatusOr<Profile> p = FromFhirBundle(text, options);
    if (!p.ok()) state.SkipWithError("read failed");
    benchmark::DoNotOptimize(p);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_FromFhirBundle);

// 1,000 single-line copies of the plain profile through JsonlReader.
void BM_JsonlReader1000(benchmark::State& state) {
  std::string line = ReadData("plain_profile.json");
  for (char& c : line) {
    if (c == '\n') c = ' ';
  }
  std::string text;
  for (int i = 0; i < 1000; ++i) text += line + "\n";
  const ReaderOptions options = Options();
  for (auto _ : state) {
    std::istringstream in(text);
    JsonlReader reader(in, options);
    int ok = 0;
    while (std::optional<JsonlRecord> r = reader.Next()) ok += r->profile.ok();
    if (ok != 1000) state.SkipWithError("a line failed");
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_JsonlReader1000);

}  // namespace
}  // namespace trialmatch::patient

BENCHMARK_MAIN();
