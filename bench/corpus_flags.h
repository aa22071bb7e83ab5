// The command-line flags every tool built on the synthetic corpus shares
// (gen_corpus, match_bench, load_client): --data_dir (the recorded studies
// to recombine), --condition_codes (the ICD-10-CM / SNOMED CT crosswalk for
// coded patient conditions) and --seed. Defined once here so the three
// tools agree on names and defaults.
//
// CorpusOptionsFromFlags() reads them after absl::ParseCommandLine; the
// caller sets the other CorpusOptions fields. Thread-safe once parsing is
// done (absl flags).
#ifndef TRIALMATCH_BENCH_CORPUS_FLAGS_H_
#define TRIALMATCH_BENCH_CORPUS_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "bench/corpus_gen.h"

ABSL_DECLARE_FLAG(std::string, data_dir);
ABSL_DECLARE_FLAG(std::string, condition_codes);
ABSL_DECLARE_FLAG(uint64_t, seed);

namespace trialmatch::bench {

CorpusOptions CorpusOptionsFromFlags();

}  // namespace trialmatch::bench

#endif  // TRIALMATCH_BENCH_CORPUS_FLAGS_H_
