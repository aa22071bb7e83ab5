// Hand-written percent-encoding: curl_easy_escape needs a CURL handle (or
// NULL since 7.82, but it allocates per call and ties the pure URL code to
// libcurl); the encoding itself is six lines.
#include "ctgov/search_params.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace trialmatch::ctgov {

std::string_view FormatName(SearchFormat f) {
  return f == SearchFormat::kCsv ? "csv" : "json";
}

std::string_view FormatName(StudyFormat f) {
  switch (f) {
    case StudyFormat::kCsv:
      return "csv";
    case StudyFormat::kFhirJson:
      return "fhir.json";
    case StudyFormat::kRis:
      return "ris";
    case StudyFormat::kJson:
      break;
  }
  return "json";
}

std::string UrlEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    const auto b = static_cast<unsigned char>(c);
    if ((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
        (b >= '0' && b <= '9') || b == '-' || b == '.' || b == '_' ||
        b == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xF]);
    }
  }
  return out;
}

QueryString& QueryString::Add(std::string_view key, std::string_view value) {
  if (value.empty()) return *this;
  if (!query_.empty()) query_.push_back('&');
  query_ += UrlEncode(key);
  query_.push_back('=');
  query_ += UrlEncode(value);
  return *this;
}

QueryString& QueryString::AddList(std::string_view key,
                                  const std::vector<std::string>& values) {
  std::string joined;
  for (const std::string& v : values) {
    if (v.empty()) continue;
    if (!joined.empty()) joined.push_back('|');
    joined += v;
  }
  return Add(key, joined);
}

namespace {

std::string_view MarkupName(MarkupFormat m) {
  switch (m) {
    case MarkupFormat::kMarkdown:
      return "markdown";
    case MarkupFormat::kLegacy:
      return "legacy";
    case MarkupFormat::kDefault:
      break;
  }
  return "";
}

void AddFilters(QueryString& q, std::string_view prefix,
                const StudyFilters& f) {
  const std::string p(prefix);
  q.AddList(p + ".overallStatus", f.overall_status);
  q.Add(p + ".geo", f.geo);
  q.AddList(p + ".ids", f.ids);
  q.Add(p + ".advanced", f.advanced);
  q.AddList(p + ".synonyms", f.synonyms);
}

}  // namespace

absl::StatusOr<std::string> BuildSearchQuery(const SearchParams& params) {
  if (params.page_size.has_value() &&
      (*params.page_size < 1 || *params.page_size > kMaxPageSize)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pageSize must be in 1..", kMaxPageSize, ", got ", *params.page_size));
  }
  QueryString q;
  q.Add("format", FormatName(params.format));
  if (params.format == SearchFormat::kJson) {
    q.Add("markupFormat", MarkupName(params.markup_format));
  }
  const StudyQuery& query = params.query;
  q.Add("query.cond", query.cond);
  q.Add("query.term", query.term);
  q.Add("query.locn", query.locn);
  q.Add("query.titles", query.titles);
  q.Add("query.intr", query.intr);
  q.Add("query.outc", query.outc);
  q.Add("query.spons", query.spons);
  q.Add("query.lead", query.lead);
  q.Add("query.id", query.id);
  q.Add("query.patient", query.patient);
  AddFilters(q, "filter", params.filter);
  AddFilters(q, "postFilter", params.post_filter);
  q.Add("aggFilters", params.agg_filters);
  q.Add("geoDecay", params.geo_decay);
  q.AddList("fields", params.fields);
  q.AddList("sort", params.sort);
  if (params.count_total) q.Add("countTotal", "true");
  if (params.page_size.has_value()) {
    q.Add("pageSize", std::to_string(*params.page_size));
  }
  q.Add("pageToken", params.page_token);
  return q.str();
}

}  // namespace trialmatch::ctgov
