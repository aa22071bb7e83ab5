#include "patient/proto_reader.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace trialmatch::patient {
namespace {

using v1::PatientProfile;

absl::Status Error(const std::string& path, std::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": ", absl::string_view(problem.data(), problem.size())));
}

std::string At(std::string_view list, int i) {
  return absl::StrCat(absl::string_view(list.data(), list.size()), "[", i, "]");
}

absl::Status CheckSize(std::string_view field, int n, size_t limit) {
  if (static_cast<size_t>(n) <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(absl::string_view(field.data(), field.size()), ": ", n,
                   " entries exceed the limit of ", limit));
}

Tristate FromOptionalBool(bool has, bool value) {
  if (!has) return Tristate::kUnknown;
  return value ? Tristate::kYes : Tristate::kNo;
}

absl::Status ReadCodes(
    const google::protobuf::RepeatedPtrField<PatientProfile::Code>& codes,
    const std::string& item, const ReaderLimits& limits,
    std::vector<Code>* out) {
  TRIALMATCH_RETURN_IF_ERROR(
      CheckSize(absl::StrCat(item, ".codes"), codes.size(), limits.max_codes));
  for (int j = 0; j < codes.size(); ++j) {
    const PatientProfile::Code& c = codes[j];
    const std::string path = absl::StrCat(item, ".codes[", j, "]");
    Code code;
    code.code = c.code();
    code.display = c.display();
    switch (c.system()) {
      case PatientProfile::CODE_SYSTEM_MESH:
        code.system = CodeSystem::kMesh;
        break;
      case PatientProfile::CODE_SYSTEM_SNOMED_CT:
        code.system = CodeSystem::kSnomedCt;
        break;
      case PatientProfile::CODE_SYSTEM_ICD10_CM:
        code.system = CodeSystem::kIcd10Cm;
        break;
      case PatientProfile::CODE_SYSTEM_LOINC:
        code.system = CodeSystem::kLoinc;
        break;
      case PatientProfile::CODE_SYSTEM_RXNORM:
        code.system = CodeSystem::kRxNorm;
        break;
      case PatientProfile::CODE_SYSTEM_UNSPECIFIED:
      case PatientProfile::CODE_SYSTEM_OTHER:
        // A recognisable URI in system_uri still names a known system.
        code.system = CodeSystemFromString(c.system_uri());
        if (code.system == CodeSystem::kOther) code.system_uri = c.system_uri();
        break;
      default:
        return Error(absl::StrCat(path, ".system"), "unknown enum value");
    }
    if (code.code.empty()) return Error(absl::StrCat(path, ".code"), "is required");
    out->push_back(std::move(code));
  }
  return absl::OkStatus();
}

absl::Status ReadDay(const std::string& text, std::string_view path,
                     std::optional<absl::CivilDay>* out) {
  if (text.empty()) return absl::OkStatus();
  absl::StatusOr<absl::CivilDay> day = ParseCivilDay(text);
  if (!day.ok()) {
    return Error(std::string(path), "must be a YYYY-MM-DD date");
  }
  *out = *day;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Profile> FromProto(const PatientProfile& in,
                                  const ReaderOptions& options) {
  const ReaderLimits& limits = options.limits;
  TRIALMATCH_RETURN_IF_ERROR(CheckSize("observations", in.observations_size(),
                                       limits.max_observations));
  TRIALMATCH_RETURN_IF_ERROR(
      CheckSize("conditions", in.conditions_size(), limits.max_conditions));
  TRIALMATCH_RETURN_IF_ERROR(
      CheckSize("medications", in.medications_size(), limits.max_medications));

  Profile p;
  p.id = in.id();
  if (in.has_age_years()) p.age_years = in.age_years();
  TRIALMATCH_RETURN_IF_ERROR(ReadDay(in.birth_date(), "birth_date", &p.birth_date));
  TRIALMATCH_RETURN_IF_ERROR(
      ReadDay(in.reference_date(), "reference_date", &p.reference_date));
  switch (in.sex()) {
    case PatientProfile::SEX_FEMALE:
      p.sex = Sex::kFemale;
      break;
    case PatientProfile::SEX_MALE:
      p.sex = Sex::kMale;
      break;
    case PatientProfile::SEX_UNSPECIFIED:
      p.sex = Sex::kUnknown;
      break;
    default:
      return Error("sex", "unknown enum value");
  }
  p.conditions_complete = in.conditions_complete();
  if (in.has_ecog()) p.ecog = in.ecog();
  if (in.has_karnofsky()) p.karnofsky = in.karnofsky();
  p.pregnant = FromOptionalBool(in.has_pregnant(), in.pregnant());
  p.breastfeeding = FromOptionalBool(in.has_breastfeeding(), in.breastfeeding());
  p.healthy_volunteer =
      FromOptionalBool(in.has_healthy_volunteer(), in.healthy_volunteer());

  p.conditions.reserve(in.conditions_size());
  for (int i = 0; i < in.conditions_size(); ++i) {
    const PatientProfile::Condition& c = in.conditions(i);
    const std::string item = At("conditions", i);
    Condition condition;
    condition.text = c.text();
    condition.onset = c.onset();
    switch (c.clinical_status()) {
      case PatientProfile::CLINICAL_STATUS_ACTIVE:
        condition.clinical_status = ClinicalStatus::kActive;
        break;
      case PatientProfile::CLINICAL_STATUS_RESOLVED:
        condition.clinical_status = ClinicalStatus::kResolved;
        break;
      case PatientProfile::CLINICAL_STATUS_UNSPECIFIED:
        condition.clinical_status = ClinicalStatus::kUnknown;
        break;
      default:
        return Error(absl::StrCat(item, ".clinical_status"),
                     "unknown enum value");
    }
    TRIALMATCH_RETURN_IF_ERROR(
        ReadCodes(c.codes(), item, limits, &condition.codes));
    if (condition.text.empty() && condition.codes.empty()) {
      return Error(item, "needs a text or at least one code");
    }
    p.conditions.push_back(std::move(condition));
  }

  p.observations.reserve(in.observations_size());
  for (int i = 0; i < in.observations_size(); ++i) {
    const PatientProfile::Observation& o = in.observations(i);
    Observation obs;
    obs.loinc = o.loinc();
    obs.name = o.name();
    if (o.has_value()) obs.value = o.value();
    obs.unit = o.unit();
    obs.comparator = o.comparator();
    obs.date = o.date();
    if (obs.loinc.empty() && obs.name.empty()) {
      return Error(At("observations", i), "needs a loinc code or a name");
    }
    p.observations.push_back(std::move(obs));
  }

  p.medications.reserve(in.medications_size());
  for (int i = 0; i < in.medications_size(); ++i) {
    const PatientProfile::Medication& m = in.medications(i);
    const std::string item = At("medications", i);
    Medication med;
    med.text = m.text();
    med.active = FromOptionalBool(m.has_active(), m.active());
    TRIALMATCH_RETURN_IF_ERROR(ReadCodes(m.codes(), item, limits, &med.codes));
    if (med.text.empty() && med.codes.empty()) {
      return Error(item, "needs a text or at least one code");
    }
    p.medications.push_back(std::move(med));
  }

  if (in.has_location()) {
    GeoLocation geo;
    geo.latitude = in.location().latitude();
    geo.longitude = in.location().longitude();
    if (in.location().has_max_distance_km()) {
      geo.max_distance_km = in.location().max_distance_km();
    }
    p.location = geo;
  }
  return NormalizeProfile(std::move(p), options);
}

}  // namespace trialmatch::patient
