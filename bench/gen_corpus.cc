// gen_corpus: writes the synthetic registry (bench/corpus_gen.h) as a file
// `trialmatch import` reads, and optionally synthetic patients as JSON Lines
// (`trialmatch match` input).
//
//   gen_corpus --studies=100000 --out=/tmp/registry.jsonl
//       --patients=10000 --patients_out=/tmp/patients.jsonl
//   trialmatch import --store=/tmp/registry.db /tmp/registry.jsonl
//
// Same --seed, same output, byte for byte.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/corpus_flags.h"
#include "bench/corpus_gen.h"

ABSL_FLAG(int64_t, studies, 100000, "studies to write");
ABSL_FLAG(std::string, out, "", "studies file ('-' = stdout)");
ABSL_FLAG(std::string, format, "jsonl",
          "jsonl (one study per line) or array (the website's download "
          "shape)");
ABSL_FLAG(int64_t, patients, 0, "patients to write");
ABSL_FLAG(std::string, patients_out, "", "patients file, JSON Lines");
ABSL_FLAG(bool, slim, true,
          "drop results, outcomes, references and detailed descriptions");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Writes a synthetic registry recombined from the recorded studies.");
  absl::ParseCommandLine(argc, argv);
  using trialmatch::bench::CorpusGenerator;
  trialmatch::bench::CorpusOptions options =
      trialmatch::bench::CorpusOptionsFromFlags();
  options.slim = absl::GetFlag(FLAGS_slim);
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format != "jsonl" && format != "array") {
    std::cerr << "gen_corpus: --format must be jsonl or array\n";
    return 2;
  }
  const int64_t n = absl::GetFlag(FLAGS_studies);
  const int64_t np = absl::GetFlag(FLAGS_patients);
  if (n < 0 || n > 10'000'000 || np < 0) {
    std::cerr << "gen_corpus: --studies must be in 0..10000000, --patients "
                 ">= 0\n";
    return 2;
  }
  auto gen = CorpusGenerator::Create(options);
  if (!gen.ok()) {
    std::cerr << "gen_corpus: " << gen.status() << "\n";
    return 1;
  }

  const std::string out_path = absl::GetFlag(FLAGS_out);
  if (n > 0) {
    if (out_path.empty()) {
      std::cerr << "gen_corpus: --out is required\n";
      return 2;
    }
    std::ofstream file;
    std::ostream* out = &std::cout;
    if (out_path != "-") {
      file.open(out_path, std::ios::binary | std::ios::trunc);
      if (!file) {
        std::cerr << "gen_corpus: cannot write " << out_path << "\n";
        return 1;
      }
      out = &file;
    }
    const bool array = format == "array";
    if (array) *out << "[\n";
    for (int64_t i = 0; i < n; ++i) {
      if (array && i > 0) *out << ",\n";
      *out << (*gen)->Study(static_cast<uint64_t>(i)).dump();
      if (!array) *out << "\n";
    }
    if (array) *out << "\n]\n";
    out->flush();
    if (!*out) {
      std::cerr << "gen_corpus: write failed\n";
      return 1;
    }
  }
  if (np > 0) {
    const std::string path = absl::GetFlag(FLAGS_patients_out);
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    if (path.empty() || !file) {
      std::cerr << "gen_corpus: --patients_out is required and writable\n";
      return 2;
    }
    for (int64_t j = 0; j < np; ++j) {
      file << (*gen)->Patient(static_cast<uint64_t>(j)).dump() << "\n";
    }
    if (!file.flush()) {
      std::cerr << "gen_corpus: write failed\n";
      return 1;
    }
  }
  std::cerr << "gen_corpus: " << n << " studies, " << np << " patients (seed "
            << options.seed << ", from " << (*gen)->seed_records()
            << " records)\n";
  return 0;
}
