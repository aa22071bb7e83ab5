// Typed views of ClinicalTrials.gov API v2 response bodies, parsed without
// touching HTTP: a `/studies` page and `/version`, plus JSON validation.
// Pure functions over strings; thread-safe.
//
// Study records are NOT parsed here: a page keeps each element of `studies`
// as its exact bytes (common::JsonSplitter), so the store can keep the record
// as received and model::ParseStudy can read it later.
#ifndef TRIALMATCH_CTGOV_RESPONSES_H_
#define TRIALMATCH_CTGOV_RESPONSES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace trialmatch::ctgov {

// One page of `GET /studies`.
struct StudyPage {
  // format=json: each element of `studies`, exact bytes, in page order.
  std::vector<std::string> studies = {};
  // format=csv: the body as sent (the first page starts with the header row).
  std::string csv = {};
  // Token for the next page; empty on the last page. JSON: `nextPageToken`;
  // CSV: the `x-next-page-token` response header.
  std::string next_page_token = {};
  // JSON: `totalCount`; CSV: the `x-total-count` header. Present only when
  // countTotal was requested (the server sends it with the first page).
  std::optional<std::int64_t> total_count = {};
};

// Parses a format=json `/studies` body. Returns kDataLoss (message with the
// byte offset or member name) when the body is not JSON, not an object, has
// no `studies` array, an element is not a well-formed JSON object,
// `nextPageToken` is not a string or `totalCount` not a non-negative integer.
// Unknown members are ignored.
absl::StatusOr<StudyPage> ParseStudiesPage(std::string_view body);

// `GET /version`.
struct ApiVersion {
  std::string api_version = {};  // apiVersion, semver, e.g. "2.0.3"
  std::string data_timestamp =
      {};  // dataTimestamp as sent, "yyyy-MM-ddTHH:mm:ss"
  // dataTimestamp read as UTC; nullopt when absent or in another format.
  std::optional<absl::Time> data_time = {};
};

// Returns kDataLoss when the body is not a JSON object with a string
// `apiVersion` (the spec's only required member).
absl::StatusOr<ApiVersion> ParseVersion(std::string_view body);

// OK when `body` is exactly one JSON value (whitespace around allowed);
// kDataLoss otherwise. Validates without building a DOM.
absl::Status ValidateJson(std::string_view body);

// The nctId of a study record (protocolSection.identificationModule.nctId),
// or nullopt when the text is not JSON or the field is absent.
std::optional<std::string> StudyNctIdOf(std::string_view study_json);

}  // namespace trialmatch::ctgov

#endif  // TRIALMATCH_CTGOV_RESPONSES_H_
