// The last step of every patient reader, public so that code building a
// Profile by hand (tests, other front ends) gets the same result:
//
//   Profile p;
//   p.birth_date = absl::CivilDay(1970, 5, 2);
//   p.observations.push_back({.loinc = "718-7", .value = 121, .unit = "g/L"});
//   absl::StatusOr<Profile> ready = NormalizeProfile(std::move(p), {});
//   // ready->age_years computed, ready->FindMeasurement("hemoglobin")->value
//   // == 12.1 (g/dL).
//
// NormalizeProfile, in order:
//  1. checks sizes against ReaderLimits;
//  2. computes age_years from birth_date on the reference date when age_years
//     is absent (the profile's own reference_date, else the options', else
//     today in UTC from the clock);
//  3. gives each observation its quantity (LOINC code; else name when no code)
//     and canonical value (units.tsv); a recognised observation whose unit is
//     not accepted, whose value is a bound ("<0.2") or missing, stays out of
//     the matched set with a note on the observation and in Profile::notes;
//  4. fills `measurements` with the most recent canonical value per quantity:
//     latest date wins; an undated observation is used only when no dated one
//     has a canonical value; ties go to the later one in input order. The most
//     recent ECOG / Karnofsky observation fills `ecog` / `karnofsky` unless
//     those were given directly (a direct value wins);
//  5. maps condition codes to MeSH descriptors (condition_codes.tsv);
//  6. validates (ValidateProfile).
//
// Pure functions; thread-safe.
#ifndef TRIALMATCH_PATIENT_NORMALIZE_H_
#define TRIALMATCH_PATIENT_NORMALIZE_H_

#include <cstddef>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "common/clock.h"
#include "patient/profile.h"
#include "patient/terminology.h"

namespace trialmatch::patient {

// Size limits; a profile over any of them is rejected with kInvalidArgument.
struct ReaderLimits {
  size_t max_input_bytes = size_t{64} << 20;  // one JSON document
  int max_json_depth = 64;                    // nesting of arrays/objects
  size_t max_observations = 10'000;
  size_t max_conditions = 10'000;
  size_t max_medications = 10'000;
  size_t max_codes = 100;            // per condition / medication
  size_t max_string_bytes = 16'384;  // any one string value
  size_t max_bundle_entries = 200'000;  // FHIR Bundle.entry
};

struct ReaderOptions {
  // The day ages are computed on when the profile carries no reference date.
  // nullopt = today (UTC) according to `clock`.
  std::optional<absl::CivilDay> reference_date;
  // nullptr = common::SystemClock::Default().
  const common::Clock* clock = nullptr;
  // nullptr = Terminology::Builtin().
  const Terminology* terminology = nullptr;
  ReaderLimits limits;
  // FromJson: accept (and ignore) fields the schema does not define. Off by
  // default so that a misspelt field ("pregant") is an error rather than a
  // silently unknown fact.
  bool allow_unknown_fields = false;
  // FromFhirBundle: the bundle holds the patient's complete problem list
  // (sets Profile::conditions_complete). FHIR has no field saying so.
  bool fhir_conditions_complete = false;
};

// Normalises and validates `profile` as described above. Returns
// kInvalidArgument naming the offending field by path ("observations[2].value",
// "birth_date", "location.latitude"; for FHIR input the entry is appended,
// "(entry[7])"). Messages never contain patient values.
absl::StatusOr<Profile> NormalizeProfile(Profile profile,
                                         const ReaderOptions& options);

// The validation step alone (NormalizeProfile calls it last). Rejects:
// age_years not in [0, 150] or not finite; a birth date after the reference
// date or giving an age over 150; a negative or non-finite value of a
// recognised quantity (observations of unknown quantities may be negative:
// base excess, z-scores); ECOG outside 0-5; Karnofsky outside 0-100 or not a
// multiple of 10 (direct or from observations); latitude outside [-90, 90],
// longitude outside [-180, 180], a negative or non-finite travel distance;
// more items than `limits` allow; a malformed observation/onset date.
absl::Status ValidateProfile(const Profile& profile,
                             const ReaderLimits& limits);

}  // namespace trialmatch::patient

#endif  // TRIALMATCH_PATIENT_NORMALIZE_H_
