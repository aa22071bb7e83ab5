#include "server/convert.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace trialmatch::server {
namespace {

using Json = nlohmann::json;

const Json* Member(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}
std::string Str(const Json& j, const char* key) {
  const Json* m = Member(j, key);
  return m != nullptr && m->is_string() ? m->get<std::string>() : std::string();
}
bool Bool(const Json& j, const char* key) {
  const Json* m = Member(j, key);
  return m != nullptr && m->is_boolean() && m->get<bool>();
}
int64_t Int(const Json& j, const char* key) {
  const Json* m = Member(j, key);
  if (m == nullptr || !m->is_number()) return 0;
  if (m->is_number_float()) return static_cast<int64_t>(m->get<double>());
  return m->get<int64_t>();
}
double Double(const Json& j, const char* key) {
  const Json* m = Member(j, key);
  return m != nullptr && m->is_number() ? m->get<double>() : 0.0;
}
// A member holding a list (array) of elements; null when absent/not a list.
const Json* List(const Json& j, const char* key) {
  const Json* m = Member(j, key);
  return m != nullptr && m->is_array() ? m : nullptr;
}
template <typename Repeated>
void Strings(const Json& j, const char* key, Repeated* out) {
  if (const Json* list = List(j, key)) {
    for (const Json& v : *list) {
      if (v.is_string()) out->Add(v.get<std::string>());
    }
  }
}

absl::StatusOr<Json> ParseTop(std::string_view text, bool want_array,
                              const char* what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::DataLossError(absl::StrCat(what, ": not valid JSON"));
  }
  if (want_array ? !j.is_array() : !j.is_object()) {
    return absl::DataLossError(absl::StrCat(what, ": expected a JSON ",
                                            want_array ? "array" : "object"));
  }
  return j;
}

void FillField(const Json& j, v1::FieldNode* out) {
  out->set_name(Str(j, "name"));
  out->set_piece(Str(j, "piece"));
  out->set_title(Str(j, "title"));
  out->set_type(Str(j, "type"));
  out->set_source_type(Str(j, "sourceType"));
  out->set_is_enum(Bool(j, "isEnum"));
  out->set_synonyms(Bool(j, "synonyms"));
  out->set_description(Str(j, "description"));
  out->set_max_chars(static_cast<int32_t>(Int(j, "maxChars")));
  out->set_indexed_only(Bool(j, "indexedOnly"));
  out->set_historic_only(Bool(j, "historicOnly"));
  Strings(j, "altPieceNames", out->mutable_alt_piece_names());
  out->set_rules(Str(j, "rules"));
  out->set_nested(Bool(j, "nested"));
  if (const Json* children = List(j, "children")) {
    for (const Json& c : *children) {
      if (c.is_object()) FillField(c, out->add_children());
    }
  }
}

}  // namespace

void FillTypedStudy(const model::Study& s, v1::Study* out) {
  out->set_nct_id(s.nct_id);
  out->set_brief_title(s.brief_title);
  out->set_official_title(s.official_title);
  out->set_acronym(s.acronym);
  out->set_overall_status(s.overall_status);
  out->set_last_update_post_date(s.last_update_post_date);
  out->set_study_type(s.study_type);
  for (const std::string& p : s.phases) out->add_phases(p);
  out->set_lead_sponsor(s.lead_sponsor);
  for (const std::string& c : s.conditions) out->add_conditions(c);
  for (const std::string& k : s.keywords) out->add_keywords(k);
  for (const std::string& i : s.interventions) out->add_interventions(i);
  for (const model::MeshTerm& m : s.condition_meshes) {
    v1::MeshTerm* t = out->add_condition_meshes();
    t->set_id(m.id);
    t->set_term(m.term);
  }
  for (const model::MeshTerm& m : s.condition_ancestors) {
    v1::MeshTerm* t = out->add_condition_ancestors();
    t->set_id(m.id);
    t->set_term(m.term);
  }
  if (s.eligibility.present) {
    const model::Eligibility& e = s.eligibility;
    v1::Eligibility* pe = out->mutable_eligibility();
    pe->set_criteria(e.criteria);
    if (e.healthy_volunteers.has_value()) {
      pe->set_healthy_volunteers(*e.healthy_volunteers);
    }
    if (e.sex_present) pe->set_sex(std::string(model::SexName(e.sex)));
    if (e.gender_based.has_value()) pe->set_gender_based(*e.gender_based);
    pe->set_gender_description(e.gender_description);
    if (e.minimum_age.has_value()) pe->set_minimum_age(e.minimum_age->text);
    if (e.maximum_age.has_value()) pe->set_maximum_age(e.maximum_age->text);
    for (const std::string& a : e.std_ages) pe->add_std_ages(a);
  }
  for (const model::Location& l : s.locations) {
    v1::Location* pl = out->add_locations();
    pl->set_facility(l.facility);
    pl->set_city(l.city);
    pl->set_state(l.state);
    pl->set_zip(l.zip);
    pl->set_country(l.country);
    pl->set_status(l.status);
    if (l.geo.has_value()) {
      pl->mutable_geo_point()->set_lat(l.geo->lat);
      pl->mutable_geo_point()->set_lon(l.geo->lon);
    }
  }
  out->set_has_results(s.has_results);
}

absl::Status StudyFromRecordJson(std::string_view record_json, v1::Study* out) {
  out->Clear();
  absl::StatusOr<Json> j = ParseTop(record_json, /*want_array=*/false, "study");
  if (!j.ok()) return j.status();
  absl::StatusOr<model::Study> study = model::StudyFromJson(*j);
  if (study.ok()) {
    FillTypedStudy(*study, out);
    // The model drops an age bound it cannot parse (no bound); the client
    // still gets the text as written.
    const Json* protocol = Member(*j, "protocolSection");
    const Json* em =
        protocol != nullptr ? Member(*protocol, "eligibilityModule") : nullptr;
    if (em != nullptr && em->is_object()) {
      if (!study->eligibility.minimum_age.has_value()) {
        out->mutable_eligibility()->set_minimum_age(Str(*em, "minimumAge"));
      }
      if (!study->eligibility.maximum_age.has_value()) {
        out->mutable_eligibility()->set_maximum_age(Str(*em, "maximumAge"));
      }
    }
  } else {
    // A partial record (fields=...): keep what identifies it.
    const Json* protocol = Member(*j, "protocolSection");
    const Json* ident = protocol != nullptr
                            ? Member(*protocol, "identificationModule")
                            : nullptr;
    if (ident != nullptr) {
      out->set_nct_id(Str(*ident, "nctId"));
      out->set_brief_title(Str(*ident, "briefTitle"));
    }
  }
  out->set_record_json(std::string(record_json));
  return absl::OkStatus();
}

absl::Status ParseStudiesMetadata(std::string_view json,
                                  v1::GetStudiesMetadataResponse* out) {
  absl::StatusOr<Json> j = ParseTop(json, true, "/studies/metadata");
  if (!j.ok()) return j.status();
  for (const Json& f : *j) {
    if (f.is_object()) FillField(f, out->add_fields());
  }
  return absl::OkStatus();
}

absl::Status ParseSearchAreas(std::string_view json,
                              v1::GetSearchAreasResponse* out) {
  absl::StatusOr<Json> j = ParseTop(json, true, "/studies/search-areas");
  if (!j.ok()) return j.status();
  for (const Json& d : *j) {
    if (!d.is_object()) continue;
    v1::SearchDocument* doc = out->add_documents();
    doc->set_name(Str(d, "name"));
    const Json* areas = List(d, "areas");
    if (areas == nullptr) continue;
    for (const Json& a : *areas) {
      if (!a.is_object()) continue;
      v1::SearchArea* area = doc->add_areas();
      area->set_name(Str(a, "name"));
      area->set_ui_label(Str(a, "uiLabel"));
      area->set_param(Str(a, "param"));
      const Json* parts = List(a, "parts");
      if (parts == nullptr) continue;
      for (const Json& p : *parts) {
        if (!p.is_object()) continue;
        v1::SearchPart* part = area->add_parts();
        Strings(p, "pieces", part->mutable_pieces());
        part->set_type(Str(p, "type"));
        part->set_is_enum(Bool(p, "isEnum"));
        part->set_is_synonyms(Bool(p, "isSynonyms"));
        part->set_weight(Double(p, "weight"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ParseEnums(std::string_view json, v1::GetEnumsResponse* out) {
  absl::StatusOr<Json> j = ParseTop(json, true, "/studies/enums");
  if (!j.ok()) return j.status();
  for (const Json& e : *j) {
    if (!e.is_object()) continue;
    v1::EnumInfo* info = out->add_enums();
    info->set_type(Str(e, "type"));
    Strings(e, "pieces", info->mutable_pieces());
    const Json* values = List(e, "values");
    if (values == nullptr) continue;
    for (const Json& v : *values) {
      if (!v.is_object()) continue;
      v1::EnumValue* value = info->add_values();
      value->set_value(Str(v, "value"));
      value->set_legacy_value(Str(v, "legacyValue"));
      if (const Json* ex = Member(v, "exceptions");
          ex != nullptr && ex->is_object() && !ex->empty()) {
        value->set_exceptions_json(
            ex->dump(-1, ' ', false, Json::error_handler_t::replace));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ParseStatsSize(std::string_view json,
                            v1::GetStatsSizeResponse* out) {
  absl::StatusOr<Json> j = ParseTop(json, false, "/stats/size");
  if (!j.ok()) return j.status();
  out->set_total_studies(Int(*j, "totalStudies"));
  out->set_average_size_bytes(Int(*j, "averageSizeBytes"));
  if (const Json* largest = List(*j, "largestStudies")) {
    for (const Json& s : *largest) {
      if (!s.is_object()) continue;
      v1::StudySize* size = out->add_largest_studies();
      size->set_id(Str(s, "id"));
      size->set_size_bytes(Int(s, "sizeBytes"));
    }
  }
  if (const Json* p = Member(*j, "percentiles");
      p != nullptr && p->is_object()) {
    for (auto it = p->begin(); it != p->end(); ++it) {
      if (it.value().is_number()) {
        (*out->mutable_percentiles())[it.key()] =
            it.value().is_number_float()
                ? static_cast<int64_t>(it.value().get<double>())
                : it.value().get<int64_t>();
      }
    }
  }
  if (const Json* ranges = List(*j, "ranges")) {
    for (const Json& r : *ranges) {
      if (!r.is_object()) continue;
      v1::SizeRange* range = out->add_ranges();
      range->set_size_range(Str(r, "sizeRange"));
      range->set_studies_count(Int(r, "studiesCount"));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseApiVersion(std::string_view json,
                             v1::GetApiVersionResponse* out) {
  absl::StatusOr<Json> j = ParseTop(json, false, "/version");
  if (!j.ok()) return j.status();
  const std::string api_version = Str(*j, "apiVersion");
  if (api_version.empty()) {
    return absl::DataLossError("/version: no apiVersion");
  }
  out->set_api_version(api_version);
  out->set_data_timestamp(Str(*j, "dataTimestamp"));
  return absl::OkStatus();
}

}  // namespace trialmatch::server
