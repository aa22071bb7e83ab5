// Helpers shared by the patient tests:
//  * TestOptions(): reader options with a fixed reference date (2025-06-15),
//    so ages do not depend on the day the tests run;
//  * PatientFile(name): a file of tests/data/patients/ as text;
//  * Dump(profile): a canonical text rendering of every field, so tests can
//    compare two profiles (e.g. the same patient read from JSON and from
//    proto) and show the difference on failure. Test-only: it prints patient
//    values, which production code must never log.
#ifndef TRIALMATCH_TESTS_PATIENT_PATIENT_TEST_UTIL_H_
#define TRIALMATCH_TESTS_PATIENT_PATIENT_TEST_UTIL_H_

#include <sstream>
#include <string>

#include "absl/time/civil_time.h"
#include "patient/normalize.h"
#include "patient/profile.h"
#include "testing/test_paths.h"

namespace trialmatch::patient {

inline ReaderOptions TestOptions() {
  ReaderOptions o;
  o.reference_date = absl::CivilDay(2025, 6, 15);
  return o;
}

inline std::string PatientFile(const std::string& name) {
  return ::trialmatch::testing::ReadFile(::trialmatch::testing::TestDataDir() /
                                         "patients" / name);
}

inline std::string DumpCodes(const std::vector<Code>& codes) {
  std::ostringstream s;
  for (const Code& c : codes) {
    s << "{" << CodeSystemName(c.system) << "|" << c.system_uri << "|"
      << c.code << "|" << c.display << "}";
  }
  return s.str();
}

template <typename T>
std::string DumpOpt(const std::optional<T>& v) {
  if (!v.has_value()) return "-";
  std::ostringstream s;
  s.precision(17);
  s << *v;
  return s.str();
}

inline std::string Dump(const Profile& p) {
  std::ostringstream s;
  s.precision(17);
  s << "id=" << p.id << "\nage=" << DumpOpt(p.age_years)
    << "\nbirth=" << DumpOpt(p.birth_date)
    << "\nreference=" << DumpOpt(p.reference_date) << "\nsex=" << SexName(p.sex)
    << "\nconditions_complete=" << p.conditions_complete
    << "\necog=" << DumpOpt(p.ecog) << "\nkarnofsky=" << DumpOpt(p.karnofsky)
    << "\npregnant=" << TristateName(p.pregnant)
    << "\nbreastfeeding=" << TristateName(p.breastfeeding)
    << "\nhealthy_volunteer=" << TristateName(p.healthy_volunteer) << "\n";
  if (p.location.has_value()) {
    s << "location=" << p.location->latitude << "," << p.location->longitude
      << "," << DumpOpt(p.location->max_distance_km) << "\n";
  }
  for (const Condition& c : p.conditions) {
    s << "condition " << c.text << " " << DumpCodes(c.codes) << " status="
      << static_cast<int>(c.clinical_status) << " onset=" << c.onset
      << " source=" << c.source << " mesh=";
    for (const auto& m : c.mesh) s << m.id << ":" << m.term << ";";
    s << "\n";
  }
  for (const Observation& o : p.observations) {
    s << "observation " << o.loinc << "|" << o.name << "|" << DumpOpt(o.value)
      << "|" << o.unit << "|" << o.comparator << "|" << o.date << "|"
      << o.source << " -> " << o.quantity << "|" << DumpOpt(o.canonical_value)
      << "|" << o.canonical_unit << "|" << o.note << "\n";
  }
  for (const Measurement& m : p.measurements) {
    s << "measurement " << m.quantity << "=" << m.value << " " << m.unit
      << " @" << m.date << " #" << m.observation << "\n";
  }
  for (const Medication& m : p.medications) {
    s << "medication " << m.text << " " << DumpCodes(m.codes)
      << " active=" << TristateName(m.active) << " source=" << m.source
      << "\n";
  }
  for (const std::string& n : p.notes) s << "note " << n << "\n";
  return s.str();
}

}  // namespace trialmatch::patient

#endif  // TRIALMATCH_TESTS_PATIENT_PATIENT_TEST_UTIL_H_
