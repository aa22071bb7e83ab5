#include "model/study.h"

#include <cmath>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"

namespace trialmatch::model {
namespace {

using Json = nlohmann::json;

// Returns the member `key` of `obj` if `obj` is an object holding it, else null.
const Json* Find(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string GetString(const Json& obj, const char* key) {
  const Json* v = Find(obj, key);
  return (v != nullptr && v->is_string()) ? v->get<std::string>() : std::string();
}

std::optional<bool> GetBool(const Json& obj, const char* key) {
  const Json* v = Find(obj, key);
  if (v == nullptr || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

std::vector<std::string> GetStrings(const Json& obj, const char* key) {
  std::vector<std::string> out;
  const Json* v = Find(obj, key);
  if (v == nullptr || !v->is_array()) return out;
  for (const Json& e : *v) {
    if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

std::vector<MeshTerm> GetMeshTerms(const Json& obj, const char* key) {
  std::vector<MeshTerm> out;
  const Json* v = Find(obj, key);
  if (v == nullptr || !v->is_array()) return out;
  for (const Json& e : *v) {
    MeshTerm t{GetString(e, "id"), GetString(e, "term")};
    if (!t.id.empty() || !t.term.empty()) out.push_back(std::move(t));
  }
  return out;
}

const Json& Child(const Json& obj, const char* key) {
  static const Json* const kNull = new Json();
  const Json* v = Find(obj, key);
  return v == nullptr ? *kNull : *v;
}

}  // namespace

double Age::Years() const {
  switch (unit) {
    case AgeUnit::kYears:
      return value;
    case AgeUnit::kMonths:
      return value / 12.0;
    case AgeUnit::kWeeks:
      return value * 7.0 / 365.25;
    case AgeUnit::kDays:
      return value / 365.25;
    case AgeUnit::kHours:
      return value / (365.25 * 24.0);
    case AgeUnit::kMinutes:
      return value / (365.25 * 24.0 * 60.0);
  }
  return value;
}

absl::StatusOr<Age> ParseAge(std::string_view text) {
  const absl::string_view trimmed =
      absl::StripAsciiWhitespace(common::ToAbsl(text));
  std::vector<absl::string_view> parts =
      absl::StrSplit(trimmed, ' ', absl::SkipEmpty());
  if (parts.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("age must be '<number> <unit>', got '", trimmed, "'"));
  }
  Age age;
  if (!absl::SimpleAtod(parts[0], &age.value) || age.value < 0 ||
      !std::isfinite(age.value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("age value is not a non-negative number: '", trimmed, "'"));
  }
  std::string unit = absl::AsciiStrToLower(parts[1]);
  if (!unit.empty() && unit.back() == 's') unit.pop_back();
  if (unit == "year") age.unit = AgeUnit::kYears;
  else if (unit == "month") age.unit = AgeUnit::kMonths;
  else if (unit == "week") age.unit = AgeUnit::kWeeks;
  else if (unit == "day") age.unit = AgeUnit::kDays;
  else if (unit == "hour") age.unit = AgeUnit::kHours;
  else if (unit == "minute") age.unit = AgeUnit::kMinutes;
  else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown age unit in '", trimmed, "'"));
  }
  age.text = std::string(trimmed);
  return age;
}

bool IsValidNctId(std::string_view id) {
  if (id.size() != 11 || id.substr(0, 3) != "NCT") return false;
  for (char c : id.substr(3)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string_view SexName(Sex sex) {
  switch (sex) {
    case Sex::kAll:
      return "ALL";
    case Sex::kFemale:
      return "FEMALE";
    case Sex::kMale:
      return "MALE";
  }
  return "ALL";
}

absl::StatusOr<Study> StudyFromJson(const Json& j) {
  if (!j.is_object()) {
    return absl::DataLossError("study is not a JSON object");
  }
  const Json& protocol = Child(j, "protocolSection");
  const Json& ident = Child(protocol, "identificationModule");
  Study s;
  s.nct_id = GetString(ident, "nctId");
  if (s.nct_id.empty()) {
    return absl::DataLossError(
        "study has no /protocolSection/identificationModule/nctId");
  }
  if (!IsValidNctId(s.nct_id)) {
    return absl::DataLossError(absl::StrCat(
        "/protocolSection/identificationModule/nctId is not an NCT id: '",
        s.nct_id.substr(0, 32), "'"));
  }
  s.brief_title = GetString(ident, "briefTitle");
  s.official_title = GetString(ident, "officialTitle");
  s.acronym = GetString(ident, "acronym");

  const Json& status = Child(protocol, "statusModule");
  s.overall_status = GetString(status, "overallStatus");
  s.last_update_post_date =
      GetString(Child(status, "lastUpdatePostDateStruct"), "date");

  const Json& design = Child(protocol, "designModule");
  s.study_type = GetString(design, "studyType");
  s.phases = GetStrings(design, "phases");

  s.lead_sponsor = GetString(
      Child(Child(protocol, "sponsorCollaboratorsModule"), "leadSponsor"),
      "name");

  const Json& conditions = Child(protocol, "conditionsModule");
  s.conditions = GetStrings(conditions, "conditions");
  s.keywords = GetStrings(conditions, "keywords");

  const Json* interventions =
      Find(Child(protocol, "armsInterventionsModule"), "interventions");
  if (interventions != nullptr && interventions->is_array()) {
    for (const Json& i : *interventions) {
      std::string name = GetString(i, "name");
      if (!name.empty()) s.interventions.push_back(std::move(name));
    }
  }

  const Json& browse = Child(Child(j, "derivedSection"), "conditionBrowseModule");
  s.condition_meshes = GetMeshTerms(browse, "meshes");
  s.condition_ancestors = GetMeshTerms(browse, "ancestors");

  if (const Json* em = Find(protocol, "eligibilityModule");
      em != nullptr && em->is_object()) {
    Eligibility& e = s.eligibility;
    e.present = true;
    e.criteria = GetString(*em, "eligibilityCriteria");
    e.healthy_volunteers = GetBool(*em, "healthyVolunteers");
    const std::string sex = GetString(*em, "sex");
    e.sex_present = !sex.empty();
    if (sex == "FEMALE") e.sex = Sex::kFemale;
    else if (sex == "MALE") e.sex = Sex::kMale;
    else e.sex = Sex::kAll;
    e.gender_based = GetBool(*em, "genderBased");
    e.gender_description = GetString(*em, "genderDescription");
    // An unparseable bound is treated as absent (no bound): missing data never
    // excludes. The raw text stays in the stored record.
    if (std::string min = GetString(*em, "minimumAge"); !min.empty()) {
      if (auto age = ParseAge(min); age.ok()) e.minimum_age = *std::move(age);
    }
    if (std::string max = GetString(*em, "maximumAge"); !max.empty()) {
      if (auto age = ParseAge(max); age.ok()) e.maximum_age = *std::move(age);
    }
    e.std_ages = GetStrings(*em, "stdAges");
  }

  const Json* locations =
      Find(Child(protocol, "contactsLocationsModule"), "locations");
  if (locations != nullptr && locations->is_array()) {
    for (const Json& l : *locations) {
      Location loc;
      loc.facility = GetString(l, "facility");
      loc.city = GetString(l, "city");
      loc.state = GetString(l, "state");
      loc.zip = GetString(l, "zip");
      loc.country = GetString(l, "country");
      loc.status = GetString(l, "status");
      const Json& geo = Child(l, "geoPoint");
      const Json* lat = Find(geo, "lat");
      const Json* lon = Find(geo, "lon");
      if (lat != nullptr && lon != nullptr && lat->is_number() &&
          lon->is_number()) {
        loc.geo = GeoPoint{lat->get<double>(), lon->get<double>()};
      }
      s.locations.push_back(std::move(loc));
    }
  }

  s.has_results = GetBool(j, "hasResults").value_or(false);
  return s;
}

absl::StatusOr<Study> ParseStudy(std::string_view json_text) {
  Json j = Json::parse(json_text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::DataLossError("study is not valid JSON");
  }
  return StudyFromJson(j);
}

}  // namespace trialmatch::model
