// Synthetic registry and patients for the matching benchmarks: a
// deterministic (seeded) recombination of the real study records in
// shared/data/ctgov_v2/studies, at any size (100,000 studies for issue #4).
//
//   ASSIGN_OR_RETURN(auto gen, CorpusGenerator::Create({.studies_dir = dir}));
//   nlohmann::json study = gen->Study(i);        // API v2 study object
//   nlohmann::json patient = gen->Patient(j);    // docs/patient.md plain shape
//
// Study i is a recombination of real records, each part kept whole so that it
// stays coherent:
//  * the eligibility module (criteria text, hence the compiled predicates) of
//    a "base" record; sometimes the ages / sex of another record;
//  * the conditions (conditionsModule plus the derivedSection's condition
//    browse module: MeSH meshes and ancestors together) and the titles of a
//    "topic" record — the base itself half of the time — occasionally merged
//    with a second topic (multi-condition studies);
//  * the sites of a "sites" record (its real site-count distribution, from
//    one site to hundreds), every geoPoint jittered by up to ~25 km, site
//    statuses drawn to fit the study's status;
//  * a status drawn from a registry-like mix (mostly RECRUITING and
//    NOT_YET_RECRUITING);
//  * a fresh NCT id, NCT8xxxxxxx (never a real one): NctId(i).
// The result parses with model::ParseStudy and imports with `trialmatch
// import` (gen_corpus writes JSON Lines or a JSON array).
//
// Patient j draws its conditions from the same records (MeSH-coded, free
// text as studies write it, ICD-10-CM / SNOMED CT codes from
// rules/patient/condition_codes.tsv, comorbidities, none at all), an age
// and sex (sometimes missing), labs with realistic values in canonical and
// other units (some out of range), ECOG or Karnofsky, pregnancy status, a
// location near a real site with an occasional travel limit, and sometimes
// a complete condition list.
//
// Both are pure functions of (seed, index): any index can be generated on
// any thread in any order. A CorpusGenerator is immutable after Create and
// thread-safe.
#ifndef TRIALMATCH_BENCH_CORPUS_GEN_H_
#define TRIALMATCH_BENCH_CORPUS_GEN_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace trialmatch::bench {

struct CorpusOptions {
  // The real records (ctgov_v2/studies/NCT*.json).
  std::filesystem::path studies_dir;
  // rules/patient/condition_codes.tsv, for coded patient conditions; empty =
  // patients get MeSH codes and text only.
  std::filesystem::path condition_codes;
  uint64_t seed = 1;
  // Drop what matching never reads and the registry's records carry in bulk
  // (resultsSection, documentSection, outcomes, references, the detailed
  // description): ~45 % smaller files, same matching.
  bool slim = true;
};

// A small deterministic PRNG (SplitMix64): the same sequence on every
// platform and standard library, unlike <random>'s distributions.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  Rng(uint64_t seed, uint64_t stream, uint64_t index);
  uint64_t Next();
  double Uniform();                     // [0, 1)
  double Uniform(double lo, double hi);  // [lo, hi)
  uint64_t Below(uint64_t n);           // [0, n), n > 0
  bool Chance(double p) { return Uniform() < p; }
  double Normal(double mean, double sd);

 private:
  uint64_t state_;
};

class CorpusGenerator {
 public:
  // Reads every record of options.studies_dir. kNotFound when the directory
  // (or condition_codes, when given) does not exist or holds no record;
  // kDataLoss when a record is not valid JSON.
  static absl::StatusOr<std::unique_ptr<CorpusGenerator>> Create(
      CorpusOptions options);
  ~CorpusGenerator();

  // The i-th study of the synthetic registry (API v2 study object).
  nlohmann::json Study(uint64_t i) const;
  // Its NCT id: "NCT8" followed by 7 digits (i < 10,000,000).
  static std::string NctId(uint64_t i);

  // The j-th patient profile (docs/patient.md plain JSON shape, for
  // patient::FromJsonValue / `trialmatch match`), id "synthetic-<j>".
  // reference_date is fixed (2025-06-15) so ages are reproducible.
  nlohmann::json Patient(uint64_t j) const;

  size_t seed_records() const;

 private:
  struct Seeds;
  explicit CorpusGenerator(CorpusOptions options, std::unique_ptr<Seeds> s);
  CorpusOptions options_;
  std::unique_ptr<Seeds> seeds_;
};

}  // namespace trialmatch::bench

#endif  // TRIALMATCH_BENCH_CORPUS_GEN_H_
