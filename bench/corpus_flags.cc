#include "bench/corpus_flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, data_dir, TRIALMATCH_SHARED_DATA_DIR "/ctgov_v2/studies",
          "the real records the generator recombines");
ABSL_FLAG(std::string, condition_codes,
          TRIALMATCH_SOURCE_DIR "/rules/patient/condition_codes.tsv",
          "ICD-10-CM / SNOMED CT crosswalk for coded patient conditions");
ABSL_FLAG(uint64_t, seed, 1, "generator seed");

namespace trialmatch::bench {

CorpusOptions CorpusOptionsFromFlags() {
  CorpusOptions options;
  options.studies_dir = absl::GetFlag(FLAGS_data_dir);
  options.condition_codes = absl::GetFlag(FLAGS_condition_codes);
  options.seed = absl::GetFlag(FLAGS_seed);
  return options;
}

}  // namespace trialmatch::bench
