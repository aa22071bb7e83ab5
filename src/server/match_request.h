// The work of one matching request, at the proto edge: the patient and the
// options of a trialmatch.v1 request (proto/trialmatch/v1/
// matching_service.proto) are validated and converted to the plain structs of
// patient/ and match/, the matcher runs on a snapshot, and its answer becomes
// a v1::MatchPatientResponse. Shared by the MatchingService (server/
// matching_service.h) and the in-process `trialmatch match`, so both give
// identical answers.
//
//   ASSIGN_OR_RETURN(RequestOptions o, OptionsFromProto(request.options()));
//   ASSIGN_OR_RETURN(patient::Profile p, ProfileFromInput(request.patient(),
//                                                         o.reader));
//   ASSIGN_OR_RETURN(v1::MatchPatientResponse r,
//                    MatchProfile(*snapshot, matcher, p, o.match));
//   // or all three: MatchRequest(*snapshot, matcher, patient, options, ...)
//
// Errors are kInvalidArgument with the field by path, prefixed with where it
// sits in the request ("options.top_k: ...", "patient.profile_json:
// observations[2].value: must be a number"); messages never quote patient
// values (the patient readers guarantee it for theirs). Patient data is never
// logged here.
//
// Pure functions; thread-safe.
#ifndef TRIALMATCH_SERVER_MATCH_REQUEST_H_
#define TRIALMATCH_SERVER_MATCH_REQUEST_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "match/matcher.h"
#include "patient/normalize.h"
#include "patient/profile.h"
#include "server/snapshot_manager.h"
#include "trialmatch/v1/matching_service.pb.h"

namespace trialmatch::server {

// A request's options in the forms the reader and the matcher take.
struct RequestOptions {
  // top_k is offset + the page size: the matcher ranks the first pages too.
  match::MatchOptions match;
  patient::ReaderOptions reader;
  int offset = 0;  // results ranked before the page, dropped
};

// Validates and converts. kInvalidArgument ("options.<field>: ...") for
// top_k outside 0..kMaxTopK (0 = 50), VERDICT_UNSPECIFIED or an unknown
// verdict, an overall status not in the API's Status enum, statuses together
// with any_overall_status, a negative or non-finite max_distance_km, a
// malformed reference_date (not YYYY-MM-DD), a negative offset or offset +
// top_k over kMaxTopK.
absl::StatusOr<RequestOptions> OptionsFromProto(
    const v1::MatchOptions& options);

// Reads the patient with the reader of its form (patient/proto_reader.h,
// json_reader.h, fhir_reader.h). kInvalidArgument when no form is set
// ("patient: one of profile, profile_json, fhir_bundle_json is required")
// or the reader rejects it ("patient.<form>: <reader's message>").
absl::StatusOr<patient::Profile> ProfileFromInput(
    const v1::PatientInput& input, const patient::ReaderOptions& options);

// Runs the matcher and converts its answer (the results after the first
// `offset`, ranked from offset + 1; the profile's and the matcher's notes;
// the snapshot's info). Errors: the matcher's (kInvalidArgument for options
// out of range; the interrupt's status).
absl::StatusOr<v1::MatchPatientResponse> MatchProfile(
    const LoadedSnapshot& snapshot, const match::Matcher& matcher,
    const patient::Profile& profile, const match::MatchOptions& options,
    int offset = 0);

// The same, written into `*out` (cleared first), which may live on an
// arena (the service's responses do: its sub-messages are then allocated
// there). On an error `*out` holds nothing useful.
absl::Status MatchProfileInto(const LoadedSnapshot& snapshot,
                              const match::Matcher& matcher,
                              const patient::Profile& profile,
                              const match::MatchOptions& options, int offset,
                              v1::MatchPatientResponse* out);

// OptionsFromProto + ProfileFromInput + MatchProfile with `interrupt` set
// on the match options (may be empty).
absl::StatusOr<v1::MatchPatientResponse> MatchRequest(
    const LoadedSnapshot& snapshot, const match::Matcher& matcher,
    const v1::PatientInput& patient, const v1::MatchOptions& options,
    std::function<absl::Status()> interrupt = nullptr);

// MatchRequest written into `*out`, as MatchProfileInto.
absl::Status MatchRequestInto(const LoadedSnapshot& snapshot,
                              const match::Matcher& matcher,
                              const v1::PatientInput& patient,
                              const v1::MatchOptions& options,
                              std::function<absl::Status()> interrupt,
                              v1::MatchPatientResponse* out);

// Conversions (exposed for tests).
v1::Verdict VerdictToProto(match::Verdict verdict);
v1::CriterionStatus TestStatusToProto(match::TestStatus status);
v1::Outcome OutcomeToProto(match::Outcome outcome);
v1::MatchStrength MatchStrengthToProto(match::MatchStrength strength);
void SnapshotInfoToProto(const LoadedSnapshot& snapshot, v1::SnapshotInfo* out);
void MatchResultToProto(const match::MatchResult& result, int rank,
                        v1::MatchResult* out);

// A per-patient error of a MatchPatients stream.
void MatchErrorToProto(const absl::Status& status, v1::MatchError* out);

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_MATCH_REQUEST_H_
