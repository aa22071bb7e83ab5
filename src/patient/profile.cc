#include "patient/profile.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "common/strings.h"

namespace trialmatch::patient {
namespace {

// Reads exactly `n` ASCII digits at `pos`; false when they are not there.
bool ReadDigits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

absl::Status BadDate() {
  return absl::InvalidArgumentError(
      "not an ISO 8601 date (YYYY, YYYY-MM, YYYY-MM-DD or "
      "YYYY-MM-DDThh:mm:ss[.fff][Z|+hh:mm])");
}

}  // namespace

const Measurement* Profile::FindMeasurement(std::string_view quantity) const {
  auto it = std::lower_bound(
      measurements.begin(), measurements.end(), quantity,
      [](const Measurement& m, std::string_view q) { return m.quantity < q; });
  if (it == measurements.end() || it->quantity != quantity) return nullptr;
  return &*it;
}

std::optional<double> Profile::QuantityValue(std::string_view quantity) const {
  if (quantity == "age") return age_years;
  if (quantity == "ecog") {
    if (!ecog.has_value()) return std::nullopt;
    return static_cast<double>(*ecog);
  }
  if (quantity == "karnofsky") {
    if (!karnofsky.has_value()) return std::nullopt;
    return static_cast<double>(*karnofsky);
  }
  const Measurement* m = FindMeasurement(quantity);
  if (m == nullptr) return std::nullopt;
  return m->value;
}

absl::StatusOr<double> AgeInYears(absl::CivilDay birth, absl::CivilDay on) {
  if (on < birth) {
    return absl::InvalidArgumentError("birth date is after the reference date");
  }
  // absl::CivilDay normalises Feb 29 of a common year to Mar 1.
  auto birthday = [&](int64_t years) {
    return absl::CivilDay(birth.year() + years, birth.month(), birth.day());
  };
  int64_t years = on.year() - birth.year();
  if (birthday(years) > on) --years;
  const absl::CivilDay last = birthday(years);
  const absl::CivilDay next = birthday(years + 1);
  const double fraction =
      static_cast<double>(on - last) / static_cast<double>(next - last);
  return static_cast<double>(years) + fraction;
}

absl::StatusOr<absl::CivilDay> ParseCivilDay(std::string_view text) {
  int y = 0, m = 0, d = 0;
  if (text.size() != 10 || !ReadDigits(text, 0, 4, &y) || text[4] != '-' ||
      !ReadDigits(text, 5, 2, &m) || text[7] != '-' ||
      !ReadDigits(text, 8, 2, &d) || m < 1 || m > 12 || d < 1 ||
      d > DaysInMonth(y, m)) {
    return absl::InvalidArgumentError("not a YYYY-MM-DD calendar date");
  }
  return absl::CivilDay(y, m, d);
}

absl::StatusOr<absl::Time> ParseIsoDateTime(std::string_view s) {
  int y = 0, mo = 1, d = 1, h = 0, mi = 0, sec = 0;
  if (!ReadDigits(s, 0, 4, &y)) return BadDate();
  size_t pos = 4;
  if (pos < s.size()) {
    if (s[pos] != '-' || !ReadDigits(s, pos + 1, 2, &mo) || mo < 1 || mo > 12) {
      return BadDate();
    }
    pos += 3;
  }
  if (pos < s.size()) {
    if (s[pos] != '-' || !ReadDigits(s, pos + 1, 2, &d) || d < 1 ||
        d > DaysInMonth(y, mo)) {
      return BadDate();
    }
    pos += 3;
  }
  absl::Duration offset = absl::ZeroDuration();
  if (pos < s.size()) {
    if (s[pos] != 'T' || !ReadDigits(s, pos + 1, 2, &h) || h > 23 ||
        pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !ReadDigits(s, pos + 4, 2, &mi) || mi > 59) {
      return BadDate();
    }
    pos += 6;
    if (pos < s.size() && s[pos] == ':') {
      // Seconds; 60 is a leap second, kept as 59.
      if (!ReadDigits(s, pos + 1, 2, &sec) || sec > 60) return BadDate();
      sec = std::min(sec, 59);
      pos += 3;
      if (pos < s.size() && s[pos] == '.') {
        size_t digits = 0;
        while (pos + 1 + digits < s.size() &&
               std::isdigit(static_cast<unsigned char>(s[pos + 1 + digits]))) {
          ++digits;
        }
        if (digits == 0) return BadDate();
        pos += 1 + digits;  // sub-second precision does not matter here
      }
    }
    if (pos < s.size()) {
      if (s[pos] == 'Z' && pos + 1 == s.size()) {
        pos += 1;
      } else if (s[pos] == '+' || s[pos] == '-') {
        int oh = 0, om = 0;
        if (pos + 6 != s.size() || !ReadDigits(s, pos + 1, 2, &oh) ||
            s[pos + 3] != ':' || !ReadDigits(s, pos + 4, 2, &om) || oh > 14 ||
            om > 59) {
          return BadDate();
        }
        offset = absl::Hours(oh) + absl::Minutes(om);
        if (s[pos] == '-') offset = -offset;
        pos = s.size();
      } else {
        return BadDate();
      }
    }
  }
  if (pos != s.size()) return BadDate();
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, sec),
                         absl::UTCTimeZone()) -
         offset;
}

CodeSystem CodeSystemFromString(std::string_view system) {
  std::string s = absl::AsciiStrToLower(common::ToAbsl(system));
  while (!s.empty() && s.back() == '/') s.pop_back();
  if (s == "mesh" || s == "code_system_mesh" ||
      s == "http://id.nlm.nih.gov/mesh" || s == "https://id.nlm.nih.gov/mesh" ||
      s == "http://www.nlm.nih.gov/mesh" ||
      s == "urn:oid:2.16.840.1.113883.6.177") {
    return CodeSystem::kMesh;
  }
  if (s == "snomed" || s == "snomed_ct" || s == "snomedct" || s == "sct" ||
      s == "code_system_snomed_ct" || s == "http://snomed.info/sct" ||
      s == "urn:oid:2.16.840.1.113883.6.96") {
    return CodeSystem::kSnomedCt;
  }
  if (s == "icd10cm" || s == "icd-10-cm" || s == "icd10_cm" ||
      s == "code_system_icd10_cm" || s == "http://hl7.org/fhir/sid/icd-10-cm" ||
      s == "urn:oid:2.16.840.1.113883.6.90") {
    return CodeSystem::kIcd10Cm;
  }
  if (s == "loinc" || s == "code_system_loinc" || s == "http://loinc.org" ||
      s == "urn:oid:2.16.840.1.113883.6.1") {
    return CodeSystem::kLoinc;
  }
  if (s == "rxnorm" || s == "code_system_rxnorm" ||
      s == "http://www.nlm.nih.gov/research/umls/rxnorm" ||
      s == "urn:oid:2.16.840.1.113883.6.88") {
    return CodeSystem::kRxNorm;
  }
  return CodeSystem::kOther;
}

std::string_view CodeSystemName(CodeSystem system) {
  switch (system) {
    case CodeSystem::kMesh:
      return "mesh";
    case CodeSystem::kSnomedCt:
      return "snomed";
    case CodeSystem::kIcd10Cm:
      return "icd10cm";
    case CodeSystem::kLoinc:
      return "loinc";
    case CodeSystem::kRxNorm:
      return "rxnorm";
    case CodeSystem::kOther:
      break;
  }
  return "other";
}

std::string NormalizeMeshId(std::string_view id) {
  std::string s = absl::AsciiStrToUpper(
      absl::StripAsciiWhitespace(common::ToAbsl(id)));
  const bool letter = !s.empty() && std::isalpha(static_cast<unsigned char>(s[0]));
  const bool digits =
      s.size() > 1 && std::all_of(s.begin() + 1, s.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      });
  if (letter && digits && s.size() == 7) s.insert(1, "000");
  return s;
}

std::string_view SexName(Sex sex) {
  switch (sex) {
    case Sex::kFemale:
      return "female";
    case Sex::kMale:
      return "male";
    case Sex::kUnknown:
      break;
  }
  return "unknown";
}

std::string_view TristateName(Tristate t) {
  switch (t) {
    case Tristate::kYes:
      return "yes";
    case Tristate::kNo:
      return "no";
    case Tristate::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace trialmatch::patient
