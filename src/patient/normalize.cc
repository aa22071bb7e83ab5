#include "patient/normalize.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace trialmatch::patient {
namespace {

constexpr double kMaxAgeYears = 150;

std::string Item(std::string_view list, size_t i) {
  return absl::StrCat(common::ToAbsl(list), "[", i, "]");
}

// " (entry[7])" for FHIR-sourced items, "" otherwise.
std::string SourceSuffix(const std::string& source) {
  return source.empty() ? std::string() : absl::StrCat(" (", source, ")");
}

absl::Status FieldError(std::string_view path, std::string_view problem,
                        const std::string& source = std::string()) {
  return absl::InvalidArgumentError(absl::StrCat(
      common::ToAbsl(path), ": ", common::ToAbsl(problem),
      SourceSuffix(source)));
}

absl::Status CheckCount(std::string_view field, size_t n, size_t limit) {
  if (n <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      common::ToAbsl(field), ": ", n, " entries exceed the limit of ", limit));
}

absl::Status CheckString(const std::string& value, std::string_view path,
                         const ReaderLimits& limits,
                         const std::string& source = std::string()) {
  if (value.size() <= limits.max_string_bytes) return absl::OkStatus();
  return FieldError(path,
                    absl::StrCat("longer than ", limits.max_string_bytes,
                                 " bytes"),
                    source);
}

absl::Status CheckCodes(const std::vector<Code>& codes,
                        const std::string& item, const ReaderLimits& limits,
                        const std::string& source) {
  if (codes.size() > limits.max_codes) {
    return FieldError(absl::StrCat(item, ".codes"),
                      absl::StrCat(codes.size(), " entries exceed the limit of ",
                                   limits.max_codes),
                      source);
  }
  for (size_t j = 0; j < codes.size(); ++j) {
    const std::string path = absl::StrCat(item, ".codes[", j, "]");
    TRIALMATCH_RETURN_IF_ERROR(CheckString(
        codes[j].code, absl::StrCat(path, ".code"), limits, source));
    TRIALMATCH_RETURN_IF_ERROR(CheckString(
        codes[j].display, absl::StrCat(path, ".display"), limits, source));
    TRIALMATCH_RETURN_IF_ERROR(CheckString(
        codes[j].system_uri, absl::StrCat(path, ".system"), limits, source));
  }
  return absl::OkStatus();
}

bool IsIntegerIn(double v, double lo, double hi) {
  return std::isfinite(v) && v >= lo && v <= hi && std::floor(v) == v;
}

absl::Status CheckEcog(double v, std::string_view path,
                       const std::string& source = std::string()) {
  if (IsIntegerIn(v, 0, 5)) return absl::OkStatus();
  return FieldError(path, "ECOG must be an integer from 0 to 5", source);
}

absl::Status CheckKarnofsky(double v, std::string_view path,
                            const std::string& source = std::string()) {
  if (IsIntegerIn(v, 0, 100) && std::fmod(v, 10) == 0) return absl::OkStatus();
  return FieldError(path,
                    "Karnofsky must be a multiple of 10 from 0 to 100", source);
}

absl::Status CheckDate(const std::string& date, std::string_view path,
                       const std::string& source) {
  if (date.empty() || ParseIsoDateTime(date).ok()) return absl::OkStatus();
  return FieldError(path,
                    "not an ISO 8601 date (YYYY, YYYY-MM, YYYY-MM-DD or "
                    "YYYY-MM-DDThh:mm:ss[Z|+hh:mm])",
                    source);
}

absl::Status CheckObservation(const Observation& o, size_t i,
                              const ReaderLimits& limits) {
  const std::string item = Item("observations", i);
  const std::string& src = o.source;
  TRIALMATCH_RETURN_IF_ERROR(
      CheckString(o.loinc, absl::StrCat(item, ".loinc"), limits, src));
  TRIALMATCH_RETURN_IF_ERROR(
      CheckString(o.name, absl::StrCat(item, ".name"), limits, src));
  TRIALMATCH_RETURN_IF_ERROR(
      CheckString(o.unit, absl::StrCat(item, ".unit"), limits, src));
  TRIALMATCH_RETURN_IF_ERROR(
      CheckDate(o.date, absl::StrCat(item, ".date"), src));
  if (!o.comparator.empty() && o.comparator != "<" && o.comparator != "<=" &&
      o.comparator != ">=" && o.comparator != ">") {
    return FieldError(absl::StrCat(item, ".comparator"),
                      "must be one of <, <=, >=, > or empty", src);
  }
  if (!o.value.has_value()) return absl::OkStatus();
  const std::string value_path = absl::StrCat(item, ".value");
  const double v = *o.value;
  if (!std::isfinite(v)) {
    return FieldError(value_path, "must be a finite number", src);
  }
  if (o.quantity.empty()) return absl::OkStatus();
  if (v < 0) return FieldError(value_path, "must not be negative", src);
  if (o.canonical_value.has_value() && !std::isfinite(*o.canonical_value)) {
    return FieldError(value_path, "out of range after unit conversion", src);
  }
  if (o.canonical_value.has_value() && o.comparator.empty()) {
    if (o.quantity == "ecog") {
      return CheckEcog(*o.canonical_value, value_path, src);
    }
    if (o.quantity == "karnofsky") {
      return CheckKarnofsky(*o.canonical_value, value_path, src);
    }
  }
  return absl::OkStatus();
}

// Ordering key of an observation for "most recent": (dated, time, index).
using RecencyKey = std::tuple<bool, absl::Time, size_t>;

RecencyKey Recency(const Observation& o, size_t index) {
  if (!o.date.empty()) {
    absl::StatusOr<absl::Time> t = ParseIsoDateTime(o.date);
    if (t.ok()) return {true, *t, index};
  }
  return {false, absl::InfinitePast(), index};
}

void NormalizeObservation(Observation& o, size_t i, const Terminology& terms,
                          std::vector<std::string>& notes) {
  o.quantity.clear();
  o.canonical_value.reset();
  o.canonical_unit.clear();
  o.note.clear();
  std::string_view quantity = !o.loinc.empty()
                                  ? terms.QuantityForLoinc(o.loinc)
                                  : terms.QuantityForName(o.name);
  if (quantity.empty()) return;
  o.quantity = std::string(quantity);
  o.canonical_unit = std::string(terms.CanonicalUnit(quantity));
  if (!o.value.has_value()) {
    o.note = "no value";
  } else if (!o.comparator.empty()) {
    o.note = "not an exact value (has a comparator)";
  } else {
    o.canonical_value = terms.ToCanonical(quantity, o.unit, *o.value);
    if (!o.canonical_value.has_value()) {
      o.note = o.unit.empty() ? "no unit given" : "unit not accepted";
    }
  }
  if (!o.note.empty()) {
    notes.push_back(absl::StrCat(Item("observations", i),
                                 SourceSuffix(o.source), ": ", o.quantity,
                                 " left out: ", o.note));
  }
}

void MapConditionCodes(Condition& c, const Terminology& terms) {
  c.mesh.clear();
  absl::flat_hash_set<std::string> seen;
  auto add = [&](model::MeshTerm term) {
    term.id = NormalizeMeshId(term.id);
    if (term.id.empty() || !seen.insert(term.id).second) return;
    c.mesh.push_back(std::move(term));
  };
  for (const Code& code : c.codes) {
    if (code.system == CodeSystem::kMesh) {
      add(model::MeshTerm{code.code, code.display});
      continue;
    }
    for (model::MeshTerm& term : terms.MeshForCode(code.system, code.code)) {
      add(std::move(term));
    }
  }
}

absl::CivilDay Today(const ReaderOptions& options) {
  const common::Clock& clock =
      options.clock != nullptr ? *options.clock
                               : common::SystemClock::Default();
  return absl::ToCivilDay(clock.Now(), absl::UTCTimeZone());
}

}  // namespace

absl::Status ValidateProfile(const Profile& p, const ReaderLimits& limits) {
  TRIALMATCH_RETURN_IF_ERROR(
      CheckCount("observations", p.observations.size(), limits.max_observations));
  TRIALMATCH_RETURN_IF_ERROR(
      CheckCount("conditions", p.conditions.size(), limits.max_conditions));
  TRIALMATCH_RETURN_IF_ERROR(
      CheckCount("medications", p.medications.size(), limits.max_medications));
  TRIALMATCH_RETURN_IF_ERROR(CheckString(p.id, "id", limits));

  if (p.birth_date.has_value() && p.reference_date.has_value()) {
    if (*p.birth_date > *p.reference_date) {
      return FieldError("birth_date", "is after the reference date");
    }
    absl::StatusOr<double> age = AgeInYears(*p.birth_date, *p.reference_date);
    if (!age.ok() || *age > kMaxAgeYears) {
      return FieldError("birth_date", "gives an age over 150 years");
    }
  }
  // After birth_date: an age computed from an impossible birth date names
  // the birth date.
  if (p.age_years.has_value() &&
      (!std::isfinite(*p.age_years) || *p.age_years < 0 ||
       *p.age_years > kMaxAgeYears)) {
    return FieldError("age_years", "must be a number from 0 to 150");
  }
  // Observations before ecog/karnofsky: those may come from an observation,
  // whose path is the more useful one.
  for (size_t i = 0; i < p.observations.size(); ++i) {
    TRIALMATCH_RETURN_IF_ERROR(CheckObservation(p.observations[i], i, limits));
  }
  if (p.ecog.has_value()) TRIALMATCH_RETURN_IF_ERROR(CheckEcog(*p.ecog, "ecog"));
  if (p.karnofsky.has_value()) {
    TRIALMATCH_RETURN_IF_ERROR(CheckKarnofsky(*p.karnofsky, "karnofsky"));
  }
  if (p.location.has_value()) {
    const GeoLocation& l = *p.location;
    if (!std::isfinite(l.latitude) || l.latitude < -90 || l.latitude > 90) {
      return FieldError("location.latitude", "must be within [-90, 90]");
    }
    if (!std::isfinite(l.longitude) || l.longitude < -180 ||
        l.longitude > 180) {
      return FieldError("location.longitude", "must be within [-180, 180]");
    }
    if (l.max_distance_km.has_value() &&
        (!std::isfinite(*l.max_distance_km) || *l.max_distance_km < 0)) {
      return FieldError("location.max_distance_km",
                        "must be a non-negative number");
    }
  }
  for (size_t i = 0; i < p.conditions.size(); ++i) {
    const Condition& c = p.conditions[i];
    const std::string item = Item("conditions", i);
    TRIALMATCH_RETURN_IF_ERROR(
        CheckString(c.text, absl::StrCat(item, ".text"), limits, c.source));
    TRIALMATCH_RETURN_IF_ERROR(
        CheckDate(c.onset, absl::StrCat(item, ".onset"), c.source));
    TRIALMATCH_RETURN_IF_ERROR(CheckCodes(c.codes, item, limits, c.source));
  }
  for (size_t i = 0; i < p.medications.size(); ++i) {
    const Medication& m = p.medications[i];
    const std::string item = Item("medications", i);
    TRIALMATCH_RETURN_IF_ERROR(
        CheckString(m.text, absl::StrCat(item, ".text"), limits, m.source));
    TRIALMATCH_RETURN_IF_ERROR(CheckCodes(m.codes, item, limits, m.source));
  }
  return absl::OkStatus();
}

absl::StatusOr<Profile> NormalizeProfile(Profile p,
                                         const ReaderOptions& options) {
  const ReaderLimits& limits = options.limits;
  // Sizes first, before any per-item work.
  TRIALMATCH_RETURN_IF_ERROR(
      CheckCount("observations", p.observations.size(), limits.max_observations));
  TRIALMATCH_RETURN_IF_ERROR(
      CheckCount("conditions", p.conditions.size(), limits.max_conditions));
  TRIALMATCH_RETURN_IF_ERROR(
      CheckCount("medications", p.medications.size(), limits.max_medications));
  const Terminology& terms = options.terminology != nullptr
                                 ? *options.terminology
                                 : Terminology::Builtin();

  // Age.
  if (p.birth_date.has_value()) {
    if (!p.reference_date.has_value()) {
      p.reference_date = options.reference_date.has_value()
                             ? *options.reference_date
                             : Today(options);
    }
    if (*p.birth_date > *p.reference_date) {
      return FieldError("birth_date", "is after the reference date");
    }
    if (!p.age_years.has_value()) {
      TRIALMATCH_ASSIGN_OR_RETURN(p.age_years,
                                  AgeInYears(*p.birth_date, *p.reference_date));
    }
  }

  // Observations -> canonical values -> most recent per quantity.
  absl::flat_hash_map<std::string, std::pair<RecencyKey, size_t>> latest;
  for (size_t i = 0; i < p.observations.size(); ++i) {
    Observation& o = p.observations[i];
    NormalizeObservation(o, i, terms, p.notes);
    if (!o.canonical_value.has_value()) continue;
    RecencyKey key = Recency(o, i);
    auto [it, inserted] = latest.emplace(o.quantity, std::make_pair(key, i));
    if (!inserted && it->second.first < key) it->second = {key, i};
  }
  p.measurements.clear();
  for (const auto& [quantity, chosen] : latest) {
    const Observation& o = p.observations[chosen.second];
    const double v = *o.canonical_value;
    if (quantity == "ecog" || quantity == "karnofsky") {
      std::optional<int>& field = quantity == "ecog" ? p.ecog : p.karnofsky;
      // Out-of-range values are reported by validation below.
      if (!field.has_value() && IsIntegerIn(v, 0, 100)) {
        field = static_cast<int>(v);
      }
      continue;
    }
    p.measurements.push_back(Measurement{quantity, v, o.canonical_unit, o.date,
                                         static_cast<int>(chosen.second)});
  }
  std::sort(p.measurements.begin(), p.measurements.end(),
            [](const Measurement& a, const Measurement& b) {
              return a.quantity < b.quantity;
            });

  for (Condition& c : p.conditions) MapConditionCodes(c, terms);

  TRIALMATCH_RETURN_IF_ERROR(ValidateProfile(p, limits));
  return p;
}

}  // namespace trialmatch::patient
