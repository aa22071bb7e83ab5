#include "patient/json_reader.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"
#include "patient/json_fields.h"

namespace trialmatch::patient {
namespace {

using internal::IndexPath;
using internal::ObjectReader;
using internal::PathError;
using nlohmann::json;

std::string Lower(const std::string& s) {
  return absl::AsciiStrToLower(s);
}

absl::Status ReadSex(const ObjectReader& r, Sex* out) {
  std::string text;
  TRIALMATCH_RETURN_IF_ERROR(r.String("sex", &text));
  if (r.Find("sex") == nullptr) return absl::OkStatus();
  const std::string s = Lower(text);
  if (s == "female" || s == "sex_female") {
    *out = Sex::kFemale;
  } else if (s == "male" || s == "sex_male") {
    *out = Sex::kMale;
  } else if (s == "unknown" || s == "other" || s == "sex_unspecified") {
    *out = Sex::kUnknown;
  } else {
    return PathError(r.Path("sex"), "must be female, male, other or unknown");
  }
  return absl::OkStatus();
}

absl::Status ReadClinicalStatus(const ObjectReader& r, ClinicalStatus* out) {
  std::string text;
  TRIALMATCH_RETURN_IF_ERROR(r.String("clinical_status", &text));
  if (r.Find("clinical_status") == nullptr) return absl::OkStatus();
  const std::string s = Lower(text);
  if (s == "active" || s == "recurrence" || s == "relapse" ||
      s == "clinical_status_active") {
    *out = ClinicalStatus::kActive;
  } else if (s == "resolved" || s == "inactive" || s == "remission" ||
             s == "clinical_status_resolved") {
    *out = ClinicalStatus::kResolved;
  } else if (s == "unknown" || s == "clinical_status_unspecified") {
    *out = ClinicalStatus::kUnknown;
  } else {
    return PathError(r.Path("clinical_status"),
                     "must be active, resolved or unknown (FHIR recurrence, "
                     "relapse, inactive and remission are accepted too)");
  }
  return absl::OkStatus();
}

// Reads the array member `key` of `r`, calling read(element, path) for each
// element, which must be an object.
template <typename Fn>
absl::Status ForEachObject(const ObjectReader& r, std::string_view key,
                           Fn read) {
  const json* array = nullptr;
  TRIALMATCH_RETURN_IF_ERROR(r.Array(key, &array));
  if (array == nullptr) return absl::OkStatus();
  const std::string path = r.Path(key);
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string item = IndexPath(path, i);
    TRIALMATCH_RETURN_IF_ERROR(internal::ExpectObject((*array)[i], item));
    TRIALMATCH_RETURN_IF_ERROR(read(ObjectReader((*array)[i], item)));
  }
  return absl::OkStatus();
}

class Reader {
 public:
  explicit Reader(const ReaderOptions& options) : options_(options) {}

  absl::Status Check(const ObjectReader& r,
                     std::initializer_list<std::string_view> known) const {
    if (options_.allow_unknown_fields) return absl::OkStatus();
    return r.CheckKnown(known);
  }

  // Refuses arrays longer than `limit` before reading their elements.
  absl::Status CheckArraySize(const ObjectReader& r, std::string_view key,
                              size_t limit) const {
    const json* array = nullptr;
    TRIALMATCH_RETURN_IF_ERROR(r.Array(key, &array));
    if (array != nullptr && array->size() > limit) {
      return PathError(r.Path(key), absl::StrCat(array->size(),
                                                  " entries exceed the limit of ",
                                                  limit));
    }
    return absl::OkStatus();
  }

  absl::Status ReadCondition(const ObjectReader& c, Profile* p) const {
    TRIALMATCH_RETURN_IF_ERROR(
        Check(c, {"text", "codes", "clinical_status", "onset"}));
    Condition condition;
    TRIALMATCH_RETURN_IF_ERROR(c.String("text", &condition.text));
    TRIALMATCH_RETURN_IF_ERROR(c.String("onset", &condition.onset));
    TRIALMATCH_RETURN_IF_ERROR(
        ReadClinicalStatus(c, &condition.clinical_status));
    TRIALMATCH_RETURN_IF_ERROR(ReadCodes(c, &condition.codes));
    if (condition.text.empty() && condition.codes.empty()) {
      return PathError(c.path(), "needs a text or at least one code");
    }
    p->conditions.push_back(std::move(condition));
    return absl::OkStatus();
  }

  absl::Status ReadObservation(const ObjectReader& o, Profile* p) const {
    TRIALMATCH_RETURN_IF_ERROR(
        Check(o, {"loinc", "name", "value", "unit", "comparator", "date"}));
    Observation obs;
    TRIALMATCH_RETURN_IF_ERROR(o.String("loinc", &obs.loinc));
    TRIALMATCH_RETURN_IF_ERROR(o.String("name", &obs.name));
    TRIALMATCH_RETURN_IF_ERROR(o.Number("value", &obs.value));
    TRIALMATCH_RETURN_IF_ERROR(o.String("unit", &obs.unit));
    TRIALMATCH_RETURN_IF_ERROR(o.String("comparator", &obs.comparator));
    TRIALMATCH_RETURN_IF_ERROR(o.String("date", &obs.date));
    if (obs.loinc.empty() && obs.name.empty()) {
      return PathError(o.path(), "needs a loinc code or a name");
    }
    p->observations.push_back(std::move(obs));
    return absl::OkStatus();
  }

  absl::Status ReadMedication(const ObjectReader& m, Profile* p) const {
    TRIALMATCH_RETURN_IF_ERROR(Check(m, {"text", "codes", "active"}));
    Medication med;
    TRIALMATCH_RETURN_IF_ERROR(m.String("text", &med.text));
    TRIALMATCH_RETURN_IF_ERROR(m.Bool("active", &med.active));
    TRIALMATCH_RETURN_IF_ERROR(ReadCodes(m, &med.codes));
    if (med.text.empty() && med.codes.empty()) {
      return PathError(m.path(), "needs a text or at least one code");
    }
    p->medications.push_back(std::move(med));
    return absl::OkStatus();
  }

  absl::Status ReadCode(const ObjectReader& c, std::vector<Code>* out) const {
    TRIALMATCH_RETURN_IF_ERROR(
        Check(c, {"system", "system_uri", "code", "display"}));
    Code code;
    std::string system, system_uri;
    TRIALMATCH_RETURN_IF_ERROR(c.String("system", &system));
    TRIALMATCH_RETURN_IF_ERROR(c.String("system_uri", &system_uri));
    TRIALMATCH_RETURN_IF_ERROR(c.String("code", &code.code));
    TRIALMATCH_RETURN_IF_ERROR(c.String("display", &code.display));
    code.system = CodeSystemFromString(system);
    if (code.system == CodeSystem::kOther) {
      code.system_uri = system_uri.empty() ? system : system_uri;
      if (code.system_uri.rfind("CODE_SYSTEM_", 0) == 0) {
        code.system_uri.clear();  // CODE_SYSTEM_OTHER / _UNSPECIFIED
      }
      if (!code.system_uri.empty()) {
        code.system = CodeSystemFromString(code.system_uri);
        if (code.system != CodeSystem::kOther) code.system_uri.clear();
      }
    }
    if (code.code.empty()) return PathError(c.Path("code"), "is required");
    out->push_back(std::move(code));
    return absl::OkStatus();
  }

  absl::Status ReadCodes(const ObjectReader& r, std::vector<Code>* out) const {
    TRIALMATCH_RETURN_IF_ERROR(
        CheckArraySize(r, "codes", options_.limits.max_codes));
    return ForEachObject(
        r, "codes", [&](const ObjectReader& c) { return ReadCode(c, out); });
  }

  absl::Status ReadDay(const ObjectReader& r, std::string_view key,
                       std::optional<absl::CivilDay>* out) const {
    std::string text;
    TRIALMATCH_RETURN_IF_ERROR(r.String(key, &text));
    if (text.empty()) return absl::OkStatus();
    absl::StatusOr<absl::CivilDay> day = ParseCivilDay(text);
    if (!day.ok()) return PathError(r.Path(key), "must be a YYYY-MM-DD date");
    *out = *day;
    return absl::OkStatus();
  }

  absl::StatusOr<Profile> Read(const json& value) const {
    TRIALMATCH_RETURN_IF_ERROR(internal::ExpectObject(value, ""));
    ObjectReader r(value, "");
    TRIALMATCH_RETURN_IF_ERROR(
        Check(r, {"id", "age_years", "birth_date", "reference_date", "sex",
                  "conditions", "conditions_complete", "observations", "ecog",
                  "karnofsky", "pregnant", "breastfeeding",
                  "healthy_volunteer", "location", "medications"}));
    const ReaderLimits& limits = options_.limits;
    TRIALMATCH_RETURN_IF_ERROR(
        CheckArraySize(r, "observations", limits.max_observations));
    TRIALMATCH_RETURN_IF_ERROR(
        CheckArraySize(r, "conditions", limits.max_conditions));
    TRIALMATCH_RETURN_IF_ERROR(
        CheckArraySize(r, "medications", limits.max_medications));

    Profile p;
    TRIALMATCH_RETURN_IF_ERROR(r.String("id", &p.id));
    TRIALMATCH_RETURN_IF_ERROR(r.Number("age_years", &p.age_years));
    TRIALMATCH_RETURN_IF_ERROR(ReadDay(r, "birth_date", &p.birth_date));
    TRIALMATCH_RETURN_IF_ERROR(ReadDay(r, "reference_date", &p.reference_date));
    TRIALMATCH_RETURN_IF_ERROR(ReadSex(r, &p.sex));
    TRIALMATCH_RETURN_IF_ERROR(
        r.Bool("conditions_complete", &p.conditions_complete));
    TRIALMATCH_RETURN_IF_ERROR(r.Integer("ecog", &p.ecog));
    TRIALMATCH_RETURN_IF_ERROR(r.Integer("karnofsky", &p.karnofsky));
    TRIALMATCH_RETURN_IF_ERROR(r.Bool("pregnant", &p.pregnant));
    TRIALMATCH_RETURN_IF_ERROR(r.Bool("breastfeeding", &p.breastfeeding));
    TRIALMATCH_RETURN_IF_ERROR(
        r.Bool("healthy_volunteer", &p.healthy_volunteer));

    TRIALMATCH_RETURN_IF_ERROR(ForEachObject(
        r, "conditions",
        [&](const ObjectReader& c) { return ReadCondition(c, &p); }));
    TRIALMATCH_RETURN_IF_ERROR(ForEachObject(
        r, "observations",
        [&](const ObjectReader& o) { return ReadObservation(o, &p); }));
    TRIALMATCH_RETURN_IF_ERROR(ForEachObject(
        r, "medications",
        [&](const ObjectReader& m) { return ReadMedication(m, &p); }));

    const json* location = nullptr;
    TRIALMATCH_RETURN_IF_ERROR(r.Object("location", &location));
    if (location != nullptr) {
      ObjectReader l(*location, "location");
      TRIALMATCH_RETURN_IF_ERROR(
          Check(l, {"latitude", "longitude", "max_distance_km"}));
      std::optional<double> lat, lon;
      GeoLocation geo;
      TRIALMATCH_RETURN_IF_ERROR(l.Number("latitude", &lat));
      TRIALMATCH_RETURN_IF_ERROR(l.Number("longitude", &lon));
      TRIALMATCH_RETURN_IF_ERROR(
          l.Number("max_distance_km", &geo.max_distance_km));
      if (!lat.has_value()) return PathError(l.Path("latitude"), "is required");
      if (!lon.has_value()) {
        return PathError(l.Path("longitude"), "is required");
      }
      geo.latitude = *lat;
      geo.longitude = *lon;
      p.location = geo;
    }
    return NormalizeProfile(std::move(p), options_);
  }

 private:
  const ReaderOptions& options_;
};

}  // namespace

absl::StatusOr<Profile> FromJsonValue(const json& value,
                                      const ReaderOptions& options) {
  return Reader(options).Read(value);
}

absl::StatusOr<Profile> FromJson(std::string_view text,
                                 const ReaderOptions& options) {
  TRIALMATCH_ASSIGN_OR_RETURN(json value,
                              internal::ParseJsonText(text, options.limits));
  return FromJsonValue(value, options);
}

JsonlReader::JsonlReader(std::istream& in, ReaderOptions options)
    : in_(in), options_(std::move(options)) {}

std::optional<JsonlRecord> JsonlReader::Next() {
  std::string line;
  while (true) {
    if (!status_.ok()) return std::nullopt;
    // Read one line, keeping at most max_input_bytes + 1 of it.
    line.clear();
    bool too_long = false, any = false;
    const size_t keep = options_.limits.max_input_bytes;
    std::streambuf* buf = in_.rdbuf();
    if (buf == nullptr || in_.bad()) {
      status_ = absl::DataLossError("the JSONL stream cannot be read");
      return std::nullopt;
    }
    int c;
    while ((c = buf->sbumpc()) != std::char_traits<char>::eof()) {
      any = true;
      if (c == '\n') break;
      if (line.size() < keep) {
        line.push_back(static_cast<char>(c));
      } else {
        too_long = true;
      }
    }
    if (!any) {
      in_.setstate(std::ios::eofbit);
      return std::nullopt;
    }
    ++line_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (too_long) {
      return JsonlRecord{
          line_, absl::InvalidArgumentError(absl::StrCat(
                     "line exceeds the limit of ", keep, " bytes"))};
    }
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    return JsonlRecord{line_, FromJson(line, options_)};
  }
}

}  // namespace trialmatch::patient
