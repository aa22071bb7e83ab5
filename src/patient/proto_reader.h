// Reads a patient profile from the proto message trialmatch.v1.PatientProfile
// (proto/trialmatch/v1/patient.proto): copies it into a plain Profile (no
// protobuf type leaves this module), then NormalizeProfile.
//
// Errors are kInvalidArgument naming the field by path
// ("observations[2].value: must not be negative", "sex: unknown enum value")
// and never quoting patient values. Thread-safe.
#ifndef TRIALMATCH_PATIENT_PROTO_READER_H_
#define TRIALMATCH_PATIENT_PROTO_READER_H_

#include "absl/status/statusor.h"
#include "patient/normalize.h"
#include "patient/profile.h"
#include "trialmatch/v1/patient.pb.h"

namespace trialmatch::patient {

// Returns kInvalidArgument for an enum value outside the declared ones, a
// malformed birth_date / reference_date (not YYYY-MM-DD), a condition with
// neither text nor codes, an observation with neither loinc nor name, a code
// without its code string, or anything NormalizeProfile rejects.
absl::StatusOr<Profile> FromProto(const trialmatch::v1::PatientProfile& proto,
                                  const ReaderOptions& options = {});

}  // namespace trialmatch::patient

#endif  // TRIALMATCH_PATIENT_PROTO_READER_H_
