#include "ctgov/responses.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/json_splitter.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"

namespace trialmatch::ctgov {

using common::ToAbsl;
using nlohmann::json;

absl::Status ValidateJson(std::string_view body) {
  if (json::accept(body.begin(), body.end())) return absl::OkStatus();
  // Ask the parser where it failed, for the message (rare path).
  try {
    const json unused = json::parse(body.begin(), body.end());
    (void)unused;
  } catch (const json::parse_error& e) {
    return absl::DataLossError(
        absl::StrCat("malformed JSON at byte ", e.byte, " of ", body.size()));
  } catch (const std::exception&) {
  }
  return absl::DataLossError("malformed JSON");
}

absl::StatusOr<StudyPage> ParseStudiesPage(std::string_view body) {
  StudyPage page;
  common::JsonSplitter::Options options;
  options.mode = common::JsonSplitter::kMemberArray;
  options.member = "studies";
  common::JsonSplitter splitter(
      options, [&page](const common::JsonSplitter::Element& e) {
        if (e.bytes.front() != '{') {
          return absl::DataLossError(absl::StrCat("studies[", e.index,
                                                  "] at byte ", e.offset,
                                                  " is not an object"));
        }
        if (!json::accept(e.bytes.begin(), e.bytes.end())) {
          return absl::DataLossError(absl::StrCat("studies[", e.index,
                                                  "] at byte ", e.offset,
                                                  " is not well-formed JSON"));
        }
        page.studies.emplace_back(e.bytes);
        return absl::OkStatus();
      });
  absl::Status s = splitter.Feed(body);
  if (s.ok()) s = splitter.Finish();
  if (!s.ok()) return s;

  // The rest is small: {"studies":[],"nextPageToken":"...","totalCount":N}.
  const json rest = json::parse(splitter.Remainder(), nullptr, false);
  if (rest.is_discarded() || !rest.is_object()) {
    return absl::DataLossError("malformed JSON around the studies array");
  }
  if (auto it = rest.find("nextPageToken");
      it != rest.end() && !it->is_null()) {
    if (!it->is_string()) {
      return absl::DataLossError("nextPageToken is not a string");
    }
    page.next_page_token = it->get<std::string>();
  }
  if (auto it = rest.find("totalCount"); it != rest.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0) {
      return absl::DataLossError("totalCount is not a non-negative integer");
    }
    page.total_count = it->get<std::int64_t>();
  }
  return page;
}

absl::StatusOr<ApiVersion> ParseVersion(std::string_view body) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError("version: body is not a JSON object");
  }
  auto api = j.find("apiVersion");
  if (api == j.end() || !api->is_string()) {
    return absl::DataLossError("version: no string apiVersion");
  }
  ApiVersion v;
  v.api_version = api->get<std::string>();
  if (auto ts = j.find("dataTimestamp"); ts != j.end() && ts->is_string()) {
    v.data_timestamp = ts->get<std::string>();
    absl::Time t;
    std::string err;
    for (const char* format : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%E*S",
                               "%Y-%m-%dT%H:%M:%E*S%Ez"}) {
      if (absl::ParseTime(format, v.data_timestamp, absl::UTCTimeZone(), &t,
                          &err)) {
        v.data_time = t;
        break;
      }
    }
  }
  return v;
}

std::optional<std::string> StudyNctIdOf(std::string_view study_json) {
  const json j = json::parse(study_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  const json* node = &j;
  for (const char* key : {"protocolSection", "identificationModule", "nctId"}) {
    if (!node->is_object()) return std::nullopt;
    auto it = node->find(key);
    if (it == node->end()) return std::nullopt;
    node = &*it;
  }
  if (!node->is_string()) return std::nullopt;
  return node->get<std::string>();
}

}  // namespace trialmatch::ctgov
