#include "patient/fhir_reader.h"

#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
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

constexpr std::string_view kLoincPregnancyStatus = "82810-3";
constexpr std::string_view kLoincBreastfeedingStatus = "63895-7";
constexpr std::string_view kLoincEcog = "89247-1";
constexpr std::string_view kUcum = "http://unitsofmeasure.org";
constexpr std::string_view kGeolocationExtension =
    "http://hl7.org/fhir/StructureDefinition/geolocation";

struct Coding {
  std::string system;
  std::string code;
  std::string display;
};

// A CodeableConcept: its codings and text.
struct Concept {
  std::vector<Coding> codings;
  std::string text;

  // The first code of `system`, or "".
  std::string_view CodeOf(CodeSystem system) const {
    for (const Coding& c : codings) {
      if (CodeSystemFromString(c.system) == system) return c.code;
    }
    return {};
  }
  // The text, else the first display.
  std::string Label() const {
    if (!text.empty()) return text;
    for (const Coding& c : codings) {
      if (!c.display.empty()) return c.display;
    }
    return {};
  }
};

absl::Status ReadConcept(const ObjectReader& r, std::string_view key,
                         Concept* out) {
  const json* value = nullptr;
  TRIALMATCH_RETURN_IF_ERROR(r.Object(key, &value));
  if (value == nullptr) return absl::OkStatus();
  ObjectReader cc(*value, r.Path(key));
  TRIALMATCH_RETURN_IF_ERROR(cc.String("text", &out->text));
  const json* codings = nullptr;
  TRIALMATCH_RETURN_IF_ERROR(cc.Array("coding", &codings));
  if (codings == nullptr) return absl::OkStatus();
  const std::string path = cc.Path("coding");
  for (size_t i = 0; i < codings->size(); ++i) {
    const std::string item = IndexPath(path, i);
    TRIALMATCH_RETURN_IF_ERROR(internal::ExpectObject((*codings)[i], item));
    ObjectReader c((*codings)[i], item);
    Coding coding;
    TRIALMATCH_RETURN_IF_ERROR(c.String("system", &coding.system));
    TRIALMATCH_RETURN_IF_ERROR(c.String("code", &coding.code));
    TRIALMATCH_RETURN_IF_ERROR(c.String("display", &coding.display));
    if (!coding.code.empty()) out->codings.push_back(std::move(coding));
  }
  return absl::OkStatus();
}

// Codes of a status CodeableConcept (clinicalStatus, verificationStatus).
absl::Status ReadStatusCodes(const ObjectReader& r, std::string_view key,
                             std::vector<std::string>* out) {
  Concept concept_value;
  TRIALMATCH_RETURN_IF_ERROR(ReadConcept(r, key, &concept_value));
  for (Coding& c : concept_value.codings) out->push_back(std::move(c.code));
  return absl::OkStatus();
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  for (const std::string& x : v) {
    if (x == s) return true;
  }
  return false;
}

std::vector<Code> ToCodes(const Concept& c) {
  std::vector<Code> codes;
  for (const Coding& coding : c.codings) {
    Code code;
    code.system = CodeSystemFromString(coding.system);
    if (code.system == CodeSystem::kOther) code.system_uri = coding.system;
    code.code = coding.code;
    code.display = coding.display;
    codes.push_back(std::move(code));
  }
  return codes;
}

// The observation's date: effective[x], else issued.
absl::Status ReadEffective(const ObjectReader& r, std::string* out) {
  TRIALMATCH_RETURN_IF_ERROR(r.String("effectiveDateTime", out));
  if (!out->empty()) return absl::OkStatus();
  TRIALMATCH_RETURN_IF_ERROR(r.String("effectiveInstant", out));
  if (!out->empty()) return absl::OkStatus();
  const json* period = nullptr;
  TRIALMATCH_RETURN_IF_ERROR(r.Object("effectivePeriod", &period));
  if (period != nullptr) {
    ObjectReader p(*period, r.Path("effectivePeriod"));
    TRIALMATCH_RETURN_IF_ERROR(p.String("end", out));
    if (out->empty()) TRIALMATCH_RETURN_IF_ERROR(p.String("start", out));
    if (!out->empty()) return absl::OkStatus();
  }
  return r.String("issued", out);
}

// value[x] of an Observation or component, as a number with unit.
struct NumericValue {
  std::optional<double> value;
  std::string unit;
  std::string comparator;
};

absl::Status ReadNumericValue(const ObjectReader& r, NumericValue* out) {
  const json* quantity = nullptr;
  TRIALMATCH_RETURN_IF_ERROR(r.Object("valueQuantity", &quantity));
  if (quantity != nullptr) {
    ObjectReader q(*quantity, r.Path("valueQuantity"));
    std::string system, code, unit;
    TRIALMATCH_RETURN_IF_ERROR(q.Number("value", &out->value));
    TRIALMATCH_RETURN_IF_ERROR(q.String("system", &system));
    TRIALMATCH_RETURN_IF_ERROR(q.String("code", &code));
    TRIALMATCH_RETURN_IF_ERROR(q.String("unit", &unit));
    TRIALMATCH_RETURN_IF_ERROR(q.String("comparator", &out->comparator));
    // The UCUM code is the machine-readable unit; `unit` is display text.
    out->unit = (system == kUcum && !code.empty()) ? code
                : !unit.empty()                    ? unit
                                                   : code;
    return absl::OkStatus();
  }
  std::optional<int> integer;
  TRIALMATCH_RETURN_IF_ERROR(r.Integer("valueInteger", &integer));
  if (integer.has_value()) out->value = *integer;
  return absl::OkStatus();
}

// Candidate for a status observation (pregnancy, breastfeeding).
struct StatusCandidate {
  std::tuple<bool, absl::Time, size_t> recency;
  Tristate value = Tristate::kUnknown;
};

std::tuple<bool, absl::Time, size_t> Recency(const std::string& date,
                                             size_t order) {
  if (!date.empty()) {
    absl::StatusOr<absl::Time> t = ParseIsoDateTime(date);
    if (t.ok()) return {true, *t, order};
  }
  return {false, absl::InfinitePast(), order};
}

class BundleReader {
 public:
  BundleReader(const json& bundle, const ReaderOptions& options)
      : bundle_(bundle),
        options_(options),
        terms_(options.terminology != nullptr ? *options.terminology
                                              : Terminology::Builtin()) {}

  absl::StatusOr<Profile> Read() {
    TRIALMATCH_RETURN_IF_ERROR(internal::ExpectObject(bundle_, ""));
    ObjectReader root(bundle_, "");
    std::string type;
    TRIALMATCH_RETURN_IF_ERROR(root.String("resourceType", &type));
    if (type != "Bundle") {
      return PathError("resourceType", "must be Bundle");
    }
    const json* entries = nullptr;
    TRIALMATCH_RETURN_IF_ERROR(root.Array("entry", &entries));
    if (entries == nullptr) return NormalizeProfile(std::move(p_), options_);
    if (entries->size() > options_.limits.max_bundle_entries) {
      return PathError("entry", absl::StrCat(entries->size(),
                                             " entries exceed the limit of ",
                                             options_.limits.max_bundle_entries));
    }
    // Pass 1: the Patient and the Medication resources (referenced by
    // medication statements anywhere in the bundle).
    for (size_t i = 0; i < entries->size(); ++i) {
      TRIALMATCH_ASSIGN_OR_RETURN(const json* resource, Resource(*entries, i));
      if (resource == nullptr) continue;
      const std::string type_name = ResourceType(*resource);
      if (type_name == "Patient") {
        TRIALMATCH_RETURN_IF_ERROR(ReadPatient(*entries, i, *resource));
      } else if (type_name == "Medication") {
        IndexMedication((*entries)[i], *resource, i);
      }
    }
    // Pass 2: clinical resources.
    for (size_t i = 0; i < entries->size(); ++i) {
      TRIALMATCH_ASSIGN_OR_RETURN(const json* resource, Resource(*entries, i));
      if (resource == nullptr) continue;
      const std::string type_name = ResourceType(*resource);
      ObjectReader r(*resource, ResourcePath(i));
      if (type_name == "Condition") {
        TRIALMATCH_RETURN_IF_ERROR(ReadCondition(r, i));
      } else if (type_name == "Observation") {
        TRIALMATCH_RETURN_IF_ERROR(ReadObservation(r, i));
      } else if (type_name == "MedicationStatement" ||
                 type_name == "MedicationRequest") {
        TRIALMATCH_RETURN_IF_ERROR(ReadMedication(r, i, type_name));
      }
    }
    if (pregnancy_.has_value()) p_.pregnant = pregnancy_->value;
    if (breastfeeding_.has_value()) p_.breastfeeding = breastfeeding_->value;
    p_.conditions_complete = options_.fhir_conditions_complete;
    if (skipped_conditions_ > 0) {
      p_.notes.push_back(absl::StrCat(
          skipped_conditions_,
          " Condition resources skipped (refuted, entered in error, or "
          "without code and text)"));
    }
    if (unmapped_observations_ > 0) {
      p_.notes.push_back(absl::StrCat(
          unmapped_observations_,
          " Observation values skipped (LOINC code not in the quantity table)"));
    }
    return NormalizeProfile(std::move(p_), options_);
  }

 private:
  static std::string EntryPath(size_t i) { return IndexPath("entry", i); }
  static std::string ResourcePath(size_t i) {
    return absl::StrCat(EntryPath(i), ".resource");
  }

  static std::string ResourceType(const json& resource) {
    auto it = resource.find("resourceType");
    if (it == resource.end() || !it->is_string()) return {};
    return it->get<std::string>();
  }

  // The entry's resource, or nullptr when the entry has none (e.g. a
  // transaction response entry).
  absl::StatusOr<const json*> Resource(const json& entries, size_t i) const {
    TRIALMATCH_RETURN_IF_ERROR(
        internal::ExpectObject(entries[i], EntryPath(i)));
    const json* resource = nullptr;
    TRIALMATCH_RETURN_IF_ERROR(
        ObjectReader(entries[i], EntryPath(i)).Object("resource", &resource));
    return resource;
  }

  absl::Status ReadPatient(const json& entries, size_t i,
                           const json& resource) {
    ObjectReader r(resource, ResourcePath(i));
    std::string id, full_url;
    TRIALMATCH_RETURN_IF_ERROR(r.String("id", &id));
    TRIALMATCH_RETURN_IF_ERROR(
        ObjectReader(entries[i], EntryPath(i)).String("fullUrl", &full_url));
    if (patient_entry_.has_value()) {
      if (!id.empty() && id == patient_id_) return absl::OkStatus();
      return PathError(ResourcePath(i),
                       "a second Patient: a bundle must describe one patient");
    }
    patient_entry_ = i;
    patient_id_ = id;
    if (!id.empty()) patient_refs_.push_back(absl::StrCat("Patient/", id));
    if (!full_url.empty()) patient_refs_.push_back(full_url);

    std::string gender;
    TRIALMATCH_RETURN_IF_ERROR(r.String("gender", &gender));
    if (gender == "female") {
      p_.sex = Sex::kFemale;
    } else if (gender == "male") {
      p_.sex = Sex::kMale;
    } else if (!gender.empty() && gender != "other" && gender != "unknown") {
      return PathError(r.Path("gender"),
                       "must be male, female, other or unknown");
    }

    std::string birth;
    TRIALMATCH_RETURN_IF_ERROR(r.String("birthDate", &birth));
    if (!birth.empty()) {
      absl::StatusOr<absl::CivilDay> day = ParseCivilDay(birth);
      if (day.ok()) {
        p_.birth_date = *day;
      } else if ((birth.size() == 4 || birth.size() == 7) &&
                 ParseIsoDateTime(birth).ok()) {
        p_.notes.push_back(
            "Patient.birthDate has no day: age left unknown");
      } else {
        return PathError(r.Path("birthDate"),
                         "must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)");
      }
    }
    return ReadGeolocation(r);
  }

  // Patient.address[].extension[geolocation].extension[latitude|longitude].
  absl::Status ReadGeolocation(const ObjectReader& patient) {
    const json* addresses = nullptr;
    TRIALMATCH_RETURN_IF_ERROR(patient.Array("address", &addresses));
    if (addresses == nullptr) return absl::OkStatus();
    for (size_t a = 0; a < addresses->size(); ++a) {
      const std::string apath = IndexPath(patient.Path("address"), a);
      TRIALMATCH_RETURN_IF_ERROR(internal::ExpectObject((*addresses)[a], apath));
      const json* extensions = nullptr;
      TRIALMATCH_RETURN_IF_ERROR(
          ObjectReader((*addresses)[a], apath).Array("extension", &extensions));
      if (extensions == nullptr) continue;
      for (size_t e = 0; e < extensions->size(); ++e) {
        const std::string epath = IndexPath(MemberPath(apath, "extension"), e);
        TRIALMATCH_RETURN_IF_ERROR(
            internal::ExpectObject((*extensions)[e], epath));
        ObjectReader ext((*extensions)[e], epath);
        std::string url;
        TRIALMATCH_RETURN_IF_ERROR(ext.String("url", &url));
        if (url != kGeolocationExtension) continue;
        const json* parts = nullptr;
        TRIALMATCH_RETURN_IF_ERROR(ext.Array("extension", &parts));
        if (parts == nullptr) continue;
        std::optional<double> lat, lon;
        for (size_t k = 0; k < parts->size(); ++k) {
          const std::string ppath = IndexPath(ext.Path("extension"), k);
          TRIALMATCH_RETURN_IF_ERROR(
              internal::ExpectObject((*parts)[k], ppath));
          ObjectReader part((*parts)[k], ppath);
          std::string part_url;
          TRIALMATCH_RETURN_IF_ERROR(part.String("url", &part_url));
          if (part_url == "latitude") {
            TRIALMATCH_RETURN_IF_ERROR(part.Number("valueDecimal", &lat));
          } else if (part_url == "longitude") {
            TRIALMATCH_RETURN_IF_ERROR(part.Number("valueDecimal", &lon));
          }
        }
        if (lat.has_value() && lon.has_value()) {
          p_.location = GeoLocation{*lat, *lon, std::nullopt};
          return absl::OkStatus();  // the first geolocated address
        }
      }
    }
    return absl::OkStatus();
  }

  static std::string MemberPath(std::string_view parent, std::string_view key) {
    return internal::MemberPath(parent, key);
  }

  void IndexMedication(const json& entry, const json& resource, size_t i) {
    auto id = resource.find("id");
    if (id != resource.end() && id->is_string()) {
      medications_[absl::StrCat("Medication/", id->get<std::string>())] = i;
    }
    auto url = entry.find("fullUrl");
    if (url != entry.end() && url->is_string()) {
      medications_[url->get<std::string>()] = i;
    }
  }

  // Rejects a resource whose subject is not the bundle's patient. Without a
  // Patient resource, the first subject seen is the patient.
  absl::Status CheckSubject(const ObjectReader& r) {
    const json* subject = nullptr;
    TRIALMATCH_RETURN_IF_ERROR(r.Object("subject", &subject));
    if (subject == nullptr) return absl::OkStatus();
    std::string ref;
    TRIALMATCH_RETURN_IF_ERROR(
        ObjectReader(*subject, r.Path("subject")).String("reference", &ref));
    if (ref.empty()) return absl::OkStatus();
    if (patient_refs_.empty()) {
      patient_refs_.push_back(ref);
      return absl::OkStatus();
    }
    for (const std::string& known : patient_refs_) {
      if (ref == known) return absl::OkStatus();
    }
    if (!patient_id_.empty() &&
        absl::EndsWith(ref, absl::StrCat("/Patient/", patient_id_))) {
      return absl::OkStatus();  // absolute URL of the same patient
    }
    return PathError(MemberPath(r.Path("subject"), "reference"),
                     "refers to another patient than the bundle's");
  }

  absl::Status ReadCondition(const ObjectReader& r, size_t i) {
    TRIALMATCH_RETURN_IF_ERROR(CheckSubject(r));
    std::vector<std::string> verification, clinical;
    TRIALMATCH_RETURN_IF_ERROR(
        ReadStatusCodes(r, "verificationStatus", &verification));
    if (Contains(verification, "refuted") ||
        Contains(verification, "entered-in-error")) {
      ++skipped_conditions_;
      return absl::OkStatus();
    }
    Concept code;
    TRIALMATCH_RETURN_IF_ERROR(ReadConcept(r, "code", &code));
    if (code.codings.empty() && code.text.empty()) {
      ++skipped_conditions_;
      return absl::OkStatus();
    }
    Condition c;
    c.text = code.Label();
    c.codes = ToCodes(code);
    c.source = EntryPath(i);
    TRIALMATCH_RETURN_IF_ERROR(ReadStatusCodes(r, "clinicalStatus", &clinical));
    for (const std::string& s : clinical) {
      if (s == "active" || s == "recurrence" || s == "relapse") {
        c.clinical_status = ClinicalStatus::kActive;
      } else if (s == "inactive" || s == "remission" || s == "resolved") {
        c.clinical_status = ClinicalStatus::kResolved;
      }
    }
    TRIALMATCH_RETURN_IF_ERROR(r.String("onsetDateTime", &c.onset));
    p_.conditions.push_back(std::move(c));
    return absl::OkStatus();
  }

  // Adds one coded value (the observation itself or a component).
  absl::Status AddValue(const ObjectReader& r, const Concept& code,
                        const std::string& date, size_t entry) {
    // The first LOINC coding that names a known quantity decides.
    std::string loinc;
    for (const Coding& c : code.codings) {
      if (CodeSystemFromString(c.system) != CodeSystem::kLoinc) continue;
      if (!terms_.QuantityForLoinc(c.code).empty()) {
        loinc = c.code;
        break;
      }
    }
    NumericValue value;
    TRIALMATCH_RETURN_IF_ERROR(ReadNumericValue(r, &value));
    if (loinc.empty()) {
      if (value.value.has_value()) ++unmapped_observations_;
      return absl::OkStatus();
    }
    Observation o;
    o.loinc = loinc;
    o.name = code.Label();
    o.value = value.value;
    o.unit = value.unit;
    o.comparator = value.comparator;
    o.date = date;
    o.source = EntryPath(entry);
    if (!o.value.has_value() && loinc == kLoincEcog) {
      // ECOG as a LOINC answer code (LL529-9).
      Concept answer;
      TRIALMATCH_RETURN_IF_ERROR(ReadConcept(r, "valueCodeableConcept", &answer));
      for (const Coding& c : answer.codings) {
        std::optional<Answer> a =
            terms_.LookupAnswer(loinc, CodeSystemFromString(c.system), c.code);
        if (a.has_value() && a->number.has_value()) {
          o.value = *a->number;
          o.unit = "{score}";
          break;
        }
      }
    }
    if (!o.value.has_value()) return absl::OkStatus();  // nothing to match
    p_.observations.push_back(std::move(o));
    return absl::OkStatus();
  }

  // Pregnancy / breastfeeding status observations.
  absl::Status ReadStatusObservation(const ObjectReader& r,
                                     std::string_view loinc,
                                     const std::string& date, size_t order,
                                     std::optional<StatusCandidate>* slot) {
    std::optional<Tristate> value;
    const json* boolean = r.Find("valueBoolean");
    if (boolean != nullptr) {
      if (!boolean->is_boolean()) {
        return PathError(r.Path("valueBoolean"), "must be true or false");
      }
      value = boolean->get<bool>() ? Tristate::kYes : Tristate::kNo;
    } else {
      Concept answer;
      TRIALMATCH_RETURN_IF_ERROR(ReadConcept(r, "valueCodeableConcept", &answer));
      for (const Coding& c : answer.codings) {
        std::optional<Answer> a =
            terms_.LookupAnswer(loinc, CodeSystemFromString(c.system), c.code);
        if (a.has_value() && !a->number.has_value()) {
          value = a->status;
          break;
        }
      }
    }
    if (!value.has_value()) {
      p_.notes.push_back(absl::StrCat(EntryPath(order),
                                      ": status answer not recognised"));
      return absl::OkStatus();
    }
    StatusCandidate candidate{Recency(date, order), *value};
    if (!slot->has_value() || (*slot)->recency < candidate.recency) {
      *slot = candidate;
    }
    return absl::OkStatus();
  }

  absl::Status ReadObservation(const ObjectReader& r, size_t i) {
    std::string status;
    TRIALMATCH_RETURN_IF_ERROR(r.String("status", &status));
    if (status == "entered-in-error" || status == "cancelled") {
      return absl::OkStatus();
    }
    TRIALMATCH_RETURN_IF_ERROR(CheckSubject(r));
    Concept code;
    TRIALMATCH_RETURN_IF_ERROR(ReadConcept(r, "code", &code));
    std::string date;
    TRIALMATCH_RETURN_IF_ERROR(ReadEffective(r, &date));
    if (!date.empty() && !ParseIsoDateTime(date).ok()) {
      return PathError(r.path(), "effective date is not an ISO 8601 date");
    }
    const std::string_view loinc = code.CodeOf(CodeSystem::kLoinc);
    if (loinc == kLoincPregnancyStatus) {
      return ReadStatusObservation(r, loinc, date, i, &pregnancy_);
    }
    if (loinc == kLoincBreastfeedingStatus) {
      return ReadStatusObservation(r, loinc, date, i, &breastfeeding_);
    }
    TRIALMATCH_RETURN_IF_ERROR(AddValue(r, code, date, i));
    const json* components = nullptr;
    TRIALMATCH_RETURN_IF_ERROR(r.Array("component", &components));
    if (components == nullptr) return absl::OkStatus();
    for (size_t k = 0; k < components->size(); ++k) {
      const std::string cpath = IndexPath(r.Path("component"), k);
      TRIALMATCH_RETURN_IF_ERROR(
          internal::ExpectObject((*components)[k], cpath));
      ObjectReader component((*components)[k], cpath);
      Concept component_code;
      TRIALMATCH_RETURN_IF_ERROR(
          ReadConcept(component, "code", &component_code));
      TRIALMATCH_RETURN_IF_ERROR(AddValue(component, component_code, date, i));
    }
    return absl::OkStatus();
  }

  absl::Status ReadMedication(const ObjectReader& r, size_t i,
                              const std::string& type_name) {
    std::string status;
    TRIALMATCH_RETURN_IF_ERROR(r.String("status", &status));
    if (status == "entered-in-error" || status == "not-taken" ||
        status == "cancelled" || status == "draft") {
      return absl::OkStatus();
    }
    TRIALMATCH_RETURN_IF_ERROR(CheckSubject(r));
    Concept code;
    TRIALMATCH_RETURN_IF_ERROR(ReadConcept(r, "medicationCodeableConcept", &code));
    if (code.codings.empty() && code.text.empty()) {
      const json* reference = nullptr;
      TRIALMATCH_RETURN_IF_ERROR(r.Object("medicationReference", &reference));
      if (reference != nullptr) {
        std::string ref;
        TRIALMATCH_RETURN_IF_ERROR(
            ObjectReader(*reference, r.Path("medicationReference"))
                .String("reference", &ref));
        auto it = medications_.find(ref);
        if (it != medications_.end()) {
          const json& entries = bundle_["entry"];
          ObjectReader med(entries[it->second]["resource"],
                           ResourcePath(it->second));
          TRIALMATCH_RETURN_IF_ERROR(ReadConcept(med, "code", &code));
        }
      }
    }
    if (code.codings.empty() && code.text.empty()) return absl::OkStatus();
    Medication m;
    m.text = code.Label();
    m.codes = ToCodes(code);
    m.source = EntryPath(i);
    if (status == "active" || (type_name == "MedicationStatement" &&
                               status == "intended")) {
      m.active = Tristate::kYes;
    } else if (status == "completed" || status == "stopped") {
      m.active = Tristate::kNo;
    }
    p_.medications.push_back(std::move(m));
    return absl::OkStatus();
  }

  const json& bundle_;
  const ReaderOptions& options_;
  const Terminology& terms_;
  Profile p_;
  std::optional<size_t> patient_entry_;
  std::string patient_id_;
  std::vector<std::string> patient_refs_;
  absl::flat_hash_map<std::string, size_t> medications_;
  std::optional<StatusCandidate> pregnancy_;
  std::optional<StatusCandidate> breastfeeding_;
  size_t skipped_conditions_ = 0;
  size_t unmapped_observations_ = 0;
};

}  // namespace

absl::StatusOr<Profile> FromFhirBundleValue(const json& bundle,
                                            const ReaderOptions& options) {
  return BundleReader(bundle, options).Read();
}

absl::StatusOr<Profile> FromFhirBundle(std::string_view json_text,
                                       const ReaderOptions& options) {
  TRIALMATCH_ASSIGN_OR_RETURN(
      json bundle, internal::ParseJsonText(json_text, options.limits));
  return FromFhirBundleValue(bundle, options);
}

}  // namespace trialmatch::patient
