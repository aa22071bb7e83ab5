// Reads a patient profile from an HL7 FHIR R4 Bundle (JSON) holding one
// patient's Patient, Condition, Observation, MedicationStatement /
// MedicationRequest (and referenced Medication) resources. Other resource
// types are ignored. The mapping is tabled in docs/patient.md; in short:
//
//   Patient.birthDate, .gender         -> birth_date (age), sex
//   Patient.address.extension geolocation -> location
//   Condition.code.coding / .text      -> condition codes / text; SNOMED CT,
//     ICD-10-CM and MeSH codings recognised; clinicalStatus -> active /
//     resolved; verificationStatus refuted or entered-in-error -> skipped
//   Observation with a LOINC coding in rules/patient/loinc.tsv and a
//     valueQuantity (UCUM) or valueInteger -> observation (components too,
//     e.g. the blood-pressure panel 85354-9 -> 8480-6 / 8462-4); ECOG 89247-1
//     also from its LOINC answer codes; pregnancy status 82810-3 and
//     breastfeeding status 63895-7 (answers in rules/patient/answers.tsv, or
//     valueBoolean) -> pregnant / breastfeeding, most recent wins
//   MedicationStatement / MedicationRequest -> medications (informational)
//
// Dates: effectiveDateTime, effectiveInstant, effectivePeriod (end, else
// start), else issued; the most recent value per quantity is matched.
// Observations whose LOINC code is not in the table are counted in a note and
// not kept. A bundle whose resources refer to more than one patient is
// rejected.
//
// Errors are kInvalidArgument naming the element by path
// ("entry[3].resource.valueQuantity.value: must be a number") and never
// quoting values. Thread-safe.
#ifndef TRIALMATCH_PATIENT_FHIR_READER_H_
#define TRIALMATCH_PATIENT_FHIR_READER_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "patient/normalize.h"
#include "patient/profile.h"

namespace trialmatch::patient {

// Parses the JSON text then FromFhirBundleValue. kInvalidArgument for
// malformed or oversized JSON.
absl::StatusOr<Profile> FromFhirBundle(std::string_view json_text,
                                       const ReaderOptions& options = {});

// Reads a parsed Bundle. Age is computed from birthDate on
// options.reference_date (default: today from options.clock). A partial
// birthDate ("1970", "1970-05") leaves the age unknown, with a note.
// Returns kInvalidArgument when the value is not a Bundle, has more than
// limits.max_bundle_entries entries, holds two different Patient resources
// or a resource whose subject is another patient, has an element of the wrong
// JSON type where the reader needs it, or anything NormalizeProfile rejects.
absl::StatusOr<Profile> FromFhirBundleValue(const nlohmann::json& bundle,
                                            const ReaderOptions& options = {});

}  // namespace trialmatch::patient

#endif  // TRIALMATCH_PATIENT_FHIR_READER_H_
