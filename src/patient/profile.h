// The patient profile: the facts about one patient that trial eligibility is
// evaluated against. Built by the readers (json_reader.h, proto_reader.h,
// fhir_reader.h), which all end in NormalizeProfile (normalize.h), so every
// Profile a reader returns is validated and normalised:
//  * observations carry their canonical quantity and value in the units of
//    criteria/compiled_study.h ("hemoglobin" in g/dL, "platelets" in 10^9/L ...);
//  * `measurements` holds the most recent canonical value of each quantity;
//  * conditions carry the MeSH descriptors their codes map to.
//
// Unknown is the default everywhere, never a value that could exclude: no age
// is std::nullopt (not 0), no pregnancy information is Tristate::kUnknown (not
// "no"), an empty condition list with `conditions_complete == false` says
// nothing about absent conditions.
//
// Plain value types: copyable, no hidden sharing, no protobuf types, thread-
// compatible (share across threads only as const).
#ifndef TRIALMATCH_PATIENT_PROFILE_H_
#define TRIALMATCH_PATIENT_PROFILE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "model/study.h"

namespace trialmatch::patient {

enum class Sex { kUnknown, kFemale, kMale };

// Yes / no / not known. Deliberately not std::optional<bool>, whose
// `if (pregnant)` tests presence rather than the answer.
enum class Tristate { kUnknown, kNo, kYes };

enum class ClinicalStatus { kUnknown, kActive, kResolved };

enum class CodeSystem {
  kOther,  // named by Code::system_uri (may be empty: not given)
  kMesh,
  kSnomedCt,
  kIcd10Cm,
  kLoinc,
  kRxNorm,
};

struct Code {
  CodeSystem system = CodeSystem::kOther;
  std::string system_uri;  // as given, for kOther; empty otherwise
  std::string code;
  std::string display;
};

struct Condition {
  std::string text;  // free text as given ("type 2 diabetes"); may be empty
  std::vector<Code> codes;
  ClinicalStatus clinical_status = ClinicalStatus::kUnknown;
  std::string onset;  // ISO 8601 date or date-time as given; "" = unknown
  // Where it came from in the input, for messages: "entry[4]" in a FHIR
  // bundle; empty for JSON and proto input (the index is the path).
  std::string source;

  // Filled by NormalizeProfile: MeSH descriptors of the codes (direct MeSH
  // codes and rules/patient/condition_codes.tsv), ids in NormalizeMeshId
  // form, terms as MeSH spells them; no duplicates, in code order.
  std::vector<model::MeshTerm> mesh;
};

// One measurement as reported, plus its normalised form.
struct Observation {
  std::string loinc;  // "718-7"; "" when not coded
  std::string name;   // "hemoglobin"; "" when not given
  std::optional<double> value;  // as reported, in `unit`
  std::string unit;             // as reported
  std::string comparator;       // "<", "<=", ">=", ">" or "" (exact)
  std::string date;             // ISO 8601 as given; "" = unknown
  std::string source;           // see Condition::source

  // Filled by NormalizeProfile.
  std::string quantity;  // canonical quantity; "" when the code/name is unknown
  std::optional<double> canonical_value;  // set only when `unit` converts
  std::string canonical_unit;             // the quantity's canonical unit
  // Why a recognised observation has no canonical value (unit not accepted,
  // not an exact value, no value); never contains the value itself.
  std::string note;
};

// The value the matcher uses for one quantity: the most recent observation
// with a canonical value (see NormalizeProfile for the ordering rule).
struct Measurement {
  std::string quantity;  // "hemoglobin"
  double value = 0;      // in `unit`
  std::string unit;      // canonical unit, "g/dL"
  std::string date;      // of the chosen observation; "" = undated
  int observation = -1;  // index into Profile::observations
};

struct Medication {
  std::string text;
  std::vector<Code> codes;
  Tristate active = Tristate::kUnknown;
  std::string source;  // see Condition::source
};

struct GeoLocation {
  double latitude = 0;   // degrees, [-90, 90]
  double longitude = 0;  // degrees, [-180, 180]
  std::optional<double> max_distance_km;  // nullopt = no limit given
};

struct Profile {
  std::string id;  // caller's opaque id; echoed, never interpreted

  // Age in years with the fraction of the current year of life (see
  // AgeInYears). Given directly, or computed from `birth_date` on the
  // reference date by NormalizeProfile. nullopt = unknown.
  std::optional<double> age_years;
  std::optional<absl::CivilDay> birth_date;
  // The day the age was (or is to be) computed on; set by NormalizeProfile
  // whenever it computes an age.
  std::optional<absl::CivilDay> reference_date;

  Sex sex = Sex::kUnknown;

  std::vector<Condition> conditions;
  // The condition list is complete: a condition not listed is absent.
  bool conditions_complete = false;

  std::vector<Observation> observations;
  // Derived by NormalizeProfile: one per quantity, sorted by quantity. ECOG
  // and Karnofsky are not here but in `ecog` / `karnofsky`.
  std::vector<Measurement> measurements;

  std::optional<int> ecog;       // 0-5
  std::optional<int> karnofsky;  // 0-100, multiple of 10

  Tristate pregnant = Tristate::kUnknown;
  Tristate breastfeeding = Tristate::kUnknown;
  Tristate healthy_volunteer = Tristate::kUnknown;

  std::optional<GeoLocation> location;

  std::vector<Medication> medications;  // informational

  // What the reader could not use, e.g. "observations[3]: unit not accepted
  // for hemoglobin". Never contains patient values.
  std::vector<std::string> notes;

  // The measurement of `quantity` ("hemoglobin"), or nullptr.
  const Measurement* FindMeasurement(std::string_view quantity) const;

  // The value of any quantity of criteria/compiled_study.h in its canonical
  // unit: "age" (years), "ecog", "karnofsky", or a measurement quantity.
  // nullopt when unknown.
  std::optional<double> QuantityValue(std::string_view quantity) const;
};

// Exact age in years on day `on` of someone born on `birth`: completed years
// plus the elapsed fraction of the current year of life, so it is exactly
// 18.0 on the 18th birthday and below 18 the day before. Someone born on
// 29 February has their birthday on 1 March in common years (the civil-day
// normalisation of Feb 29). Returns kInvalidArgument when `on` precedes
// `birth` (the message names no date).
absl::StatusOr<double> AgeInYears(absl::CivilDay birth, absl::CivilDay on);

// Parses a strict "YYYY-MM-DD" calendar date (no normalisation: "2023-02-30"
// is rejected). kInvalidArgument otherwise; the message echoes no input.
absl::StatusOr<absl::CivilDay> ParseCivilDay(std::string_view text);

// Parses an ISO 8601 / FHIR date or dateTime: "YYYY", "YYYY-MM",
// "YYYY-MM-DD", or "YYYY-MM-DDThh:mm[:ss[.fff]][Z|(+|-)hh:mm]" (no zone =
// UTC). Returns the start of the period it denotes, for ordering.
// kInvalidArgument otherwise; the message echoes no input.
absl::StatusOr<absl::Time> ParseIsoDateTime(std::string_view text);

// Recognises a code system from a FHIR system URI ("http://snomed.info/sct"),
// a short name ("snomed", "icd10cm", "mesh", "loinc", "rxnorm", any case) or
// the proto enum name ("CODE_SYSTEM_SNOMED_CT"). Anything else is kOther.
CodeSystem CodeSystemFromString(std::string_view system);

// Short lower-case name: "mesh", "snomed", "icd10cm", "loinc", "rxnorm",
// "other".
std::string_view CodeSystemName(CodeSystem system);

// MeSH ids appear both as "D003924" (MeSH's own form) and zero-padded as
// "D000003924" (newer ClinicalTrials.gov records). Returns the 10-character
// padded form ("D000003924") for a letter followed by 6 or 9 digits, so ids
// compare equal whichever form they came in; anything else is returned
// upper-cased and otherwise unchanged.
std::string NormalizeMeshId(std::string_view id);

std::string_view SexName(Sex sex);            // "female" | "male" | "unknown"
std::string_view TristateName(Tristate t);    // "yes" | "no" | "unknown"

}  // namespace trialmatch::patient

#endif  // TRIALMATCH_PATIENT_PROFILE_H_
