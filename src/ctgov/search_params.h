// Parameters of ClinicalTrials.gov API v2 `GET /studies` (OpenAPI 2.0.3
// operation "listStudies") and their encoding into a URL query string.
//
// Every parameter the API has is here, named after it: `query.cond` is
// `params.query.cond`, `filter.overallStatus` is
// `params.filter.overall_status`, `postFilter.geo` is
// `params.post_filter.geo`. Empty strings and empty lists are omitted from the
// URL (the API's defaults apply). List parameters are sent pipe-separated
// (the spec's `style: pipeDelimited`). Values are not re-validated here — the
// server owns its query language (Essie) and answers 400 with a message —
// except pageSize, which the API would silently coerce.
//
//   SearchParams p;
//   p.query.cond = "lung cancer";
//   p.filter.overall_status = {"RECRUITING", "NOT_YET_RECRUITING"};
//   p.fields = {"NCTId", "BriefTitle"};
//   p.page_size = 1000;
//   BuildSearchQuery(p)  // "format=json&query.cond=lung%20cancer&filter.
//                        //  overallStatus=RECRUITING%7CNOT_YET_RECRUITING&..."
//
// Plain values; thread-compatible.
#ifndef TRIALMATCH_CTGOV_SEARCH_PARAMS_H_
#define TRIALMATCH_CTGOV_SEARCH_PARAMS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace trialmatch::ctgov {

// `format` of /studies.
enum class SearchFormat { kJson, kCsv };
// `format` of /studies/{nctId} (json.zip is not mirrored: it is a zip file).
enum class StudyFormat { kJson, kCsv, kFhirJson, kRis };
// `markupFormat` (JSON formats only); kDefault omits it (server: markdown).
enum class MarkupFormat { kDefault, kMarkdown, kLegacy };

std::string_view FormatName(SearchFormat f);  // "json" | "csv"
std::string_view FormatName(
    StudyFormat f);  // "json" | "csv" | "fhir.json" | "ris"

// The `query.*` parameters (Essie expression syntax).
struct StudyQuery {
  std::string cond = {};     // query.cond    conditions or disease
  std::string term = {};     // query.term    other terms
  std::string locn = {};     // query.locn    location terms
  std::string titles = {};   // query.titles  title / acronym
  std::string intr = {};     // query.intr    intervention / treatment
  std::string outc = {};     // query.outc    outcome measure
  std::string spons = {};    // query.spons   sponsor / collaborator
  std::string lead = {};     // query.lead    lead sponsor name
  std::string id = {};       // query.id      study ids
  std::string patient = {};  // query.patient patient search area
};

// The `filter.*` and `postFilter.*` parameters (same set).
struct StudyFilters {
  std::vector<std::string> overall_status = {};  // e.g. {"RECRUITING"}
  std::string geo = {};                          // "distance(39.0,-77.1,50mi)"
  std::vector<std::string> ids = {};             // NCT ids
  std::string advanced = {};               // Essie, e.g. "AREA[StartDate]2022"
  std::vector<std::string> synonyms = {};  // "area:synonym_id"
};

inline constexpr int kMaxPageSize = 1000;

struct SearchParams {
  SearchFormat format = SearchFormat::kJson;
  MarkupFormat markup_format = MarkupFormat::kDefault;
  StudyQuery query = {};
  StudyFilters filter = {};       // filter.*
  StudyFilters post_filter = {};  // postFilter.*
  std::string agg_filters = {};   // aggFilters, e.g. "results:with,status:com"
  std::string geo_decay = {};     // geoDecay, e.g. "func:exp,scale:300mi,..."
  std::vector<std::string> fields = {};  // e.g. {"NCTId", "BriefTitle"}
  std::vector<std::string> sort = {};    // e.g. {"LastUpdatePostDate:desc"}
  bool count_total = false;           // countTotal (honoured on the first page)
  std::optional<int> page_size = {};  // 1..1000; nullopt = server default (10)
  std::string page_token = {};        // nextPageToken of the previous page
};

// Percent-encodes everything except RFC 3986 unreserved characters
// (A-Z a-z 0-9 - . _ ~); a space becomes %20. Bytes >= 0x80 (UTF-8) are
// encoded byte by byte.
std::string UrlEncode(std::string_view value);

// Builds an encoded query string ("k=v&k=v", no leading '?').
class QueryString {
 public:
  // Adds key=value; an empty value is skipped.
  QueryString& Add(std::string_view key, std::string_view value);
  // Adds key=v1|v2|...; an empty list is skipped.
  QueryString& AddList(std::string_view key,
                       const std::vector<std::string>& values);
  const std::string& str() const { return query_; }

 private:
  std::string query_;
};

// The query string for `GET /studies` with `params`, parameters in the
// OpenAPI spec's order. Returns kInvalidArgument when page_size is set and
// not in 1..1000.
absl::StatusOr<std::string> BuildSearchQuery(const SearchParams& params);

}  // namespace trialmatch::ctgov

#endif  // TRIALMATCH_CTGOV_SEARCH_PARAMS_H_
