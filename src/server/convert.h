// Conversions from ClinicalTrials.gov API v2 JSON (as received or as cached)
// to the typed trialmatch.v1 messages of StudyService.
//
// Studies: the typed fields come from model::StudyFromJson (the same parse
// the store and the matcher use), `record_json` is the record text unchanged.
// A partial record (the request limited `fields`) fills what it has.
//
// Endpoints: each Parse* function reads the documented shape (OpenAPI 2.0.3)
// tolerantly — unknown members are ignored, members of the wrong JSON type
// are treated as absent — and returns kDataLoss only when the body is not
// JSON or its top level has the wrong type (array/object). Callers validate
// upstream bodies with these before caching them, so a cached body parses.
//
// Pure functions; thread-safe.
#ifndef TRIALMATCH_SERVER_CONVERT_H_
#define TRIALMATCH_SERVER_CONVERT_H_

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/study.h"
#include "trialmatch/v1/study.pb.h"
#include "trialmatch/v1/study_service.pb.h"

namespace trialmatch::server {

// Fills `out` (cleared first) from one study record's JSON text.
// kDataLoss when the text is not a JSON object. A record without a valid
// nctId (e.g. `fields` left it out) is not an error: only record_json and
// what can be read are set.
absl::Status StudyFromRecordJson(std::string_view record_json, v1::Study* out);

// The typed fields of an already parsed model::Study (record_json untouched).
void FillTypedStudy(const model::Study& study, v1::Study* out);

// Each returns kDataLoss when `json` is not valid JSON of the right top-level
// type; fills only the typed part (callers set json and freshness).
absl::Status ParseStudiesMetadata(std::string_view json,
                                  v1::GetStudiesMetadataResponse* out);
absl::Status ParseSearchAreas(std::string_view json,
                              v1::GetSearchAreasResponse* out);
absl::Status ParseEnums(std::string_view json, v1::GetEnumsResponse* out);
absl::Status ParseStatsSize(std::string_view json,
                            v1::GetStatsSizeResponse* out);
absl::Status ParseApiVersion(std::string_view json,
                             v1::GetApiVersionResponse* out);

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_CONVERT_H_
