#include "patient/fhir_reader.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/fake_clock.h"
#include "patient_test_util.h"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::patient {
namespace {

using ::testing::Contains;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;
using ::trialmatch::testing::StatusIs;
using nlohmann::json;

ReaderOptions Options() { return TestOptions(); }

std::string BundleText() {
  return PatientFile("fhir_bundle_breast_cancer.json");
}

json Bundle() { return json::parse(BundleText()); }

class FhirBundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Profile> p = FromFhirBundle(BundleText(), Options());
    ASSERT_TRUE(p.ok()) << p.status();
    profile_ = *std::move(p);
  }
  double Value(const char* quantity) const {
    const Measurement* m = profile_.FindMeasurement(quantity);
    return m == nullptr ? -1 : m->value;
  }
  Profile profile_;
};

TEST_F(FhirBundleTest, Patient) {
  EXPECT_EQ(profile_.sex, Sex::kFemale);
  EXPECT_EQ(profile_.birth_date, absl::CivilDay(1968, 9, 21));
  EXPECT_THAT(*profile_.age_years, DoubleNear(56 + 267.0 / 365, 1e-9));
  ASSERT_TRUE(profile_.location.has_value());
  EXPECT_EQ(profile_.location->latitude, 42.3389);
  EXPECT_EQ(profile_.location->longitude, -71.1028);
  EXPECT_FALSE(profile_.location->max_distance_km.has_value());
  EXPECT_FALSE(profile_.conditions_complete);
  EXPECT_EQ(profile_.healthy_volunteer, Tristate::kUnknown);
}

TEST_F(FhirBundleTest, ConditionsSkipRefutedAndEnteredInError) {
  ASSERT_EQ(profile_.conditions.size(), 3u);
  const Condition& cancer = profile_.conditions[0];
  EXPECT_EQ(cancer.text, "Left breast cancer");
  EXPECT_EQ(cancer.clinical_status, ClinicalStatus::kActive);
  EXPECT_EQ(cancer.onset, "2024-11-04");
  EXPECT_EQ(cancer.source, "entry[1]");
  ASSERT_EQ(cancer.codes.size(), 2u);
  EXPECT_EQ(cancer.codes[0].system, CodeSystem::kSnomedCt);
  EXPECT_EQ(cancer.codes[0].code, "254837009");
  EXPECT_EQ(cancer.codes[1].system, CodeSystem::kIcd10Cm);
  EXPECT_EQ(cancer.codes[1].code, "C50.912");
  ASSERT_EQ(cancer.mesh.size(), 1u);  // SNOMED and ICD agree: one descriptor
  EXPECT_EQ(cancer.mesh[0].id, "D000001943");

  const Condition& diabetes = profile_.conditions[1];
  EXPECT_EQ(diabetes.text, "Type 2 diabetes mellitus without complications");
  EXPECT_EQ(diabetes.mesh.at(0).id, "D000003924");
  const Condition& htn = profile_.conditions[2];
  EXPECT_EQ(htn.clinical_status, ClinicalStatus::kResolved);
  EXPECT_EQ(htn.mesh.at(0).id, "D000006973");
  for (const Condition& c : profile_.conditions) {
    EXPECT_THAT(c.text, Not(HasSubstr("immunodeficiency")));
    EXPECT_THAT(c.text, Not(HasSubstr("fibrillation")));
  }
  EXPECT_THAT(profile_.notes, Contains(StartsWith("2 Condition resources skipped")));
}

TEST_F(FhirBundleTest, LabsAreNormalisedAndTheMostRecentIsUsed) {
  EXPECT_THAT(Value("hemoglobin"), DoubleNear(11.8, 1e-9));  // 118 g/L, May
  EXPECT_EQ(Value("platelets"), 212);
  EXPECT_THAT(Value("anc"), DoubleNear(3.1, 1e-9));          // 3100 {cells}/uL
  EXPECT_THAT(Value("creatinine"), DoubleNear(79.6 / 88.42, 1e-9));
  EXPECT_EQ(Value("egfr"), 78);
  EXPECT_THAT(Value("hba1c"), DoubleNear(53 * 0.09148 + 2.152, 1e-9));
  EXPECT_EQ(Value("ast"), 24);
  EXPECT_EQ(Value("systolic_bp"), 132);
  EXPECT_EQ(Value("diastolic_bp"), 84);
  EXPECT_THAT(Value("weight"), DoubleNear(154 * 0.45359237, 1e-9));
  EXPECT_EQ(Value("bmi"), 26.4);
  // "<0.2" is a bound, "mmol/s/L" is not an accepted ALT unit: both kept as
  // observations with a note, neither matched.
  EXPECT_EQ(profile_.FindMeasurement("bilirubin_total"), nullptr);
  EXPECT_EQ(profile_.FindMeasurement("alt"), nullptr);
  EXPECT_EQ(profile_.measurements.size(), 11u);

  const Measurement* hb = profile_.FindMeasurement("hemoglobin");
  EXPECT_EQ(hb->date, "2025-05-28T07:40:00-04:00");
  const Observation& source = profile_.observations[hb->observation];
  EXPECT_EQ(source.value, 118);
  EXPECT_EQ(source.unit, "g/L");
  EXPECT_EQ(source.source, "entry[7]");

  bool saw_bound = false, saw_unit = false;
  for (const Observation& o : profile_.observations) {
    if (o.quantity == "bilirubin_total") {
      saw_bound = true;
      EXPECT_EQ(o.comparator, "<");
      EXPECT_THAT(o.note, HasSubstr("comparator"));
    }
    if (o.quantity == "alt") {
      saw_unit = true;
      EXPECT_EQ(o.note, "unit not accepted");
    }
    EXPECT_NE(o.value, 15);  // the entered-in-error platelet count
  }
  EXPECT_TRUE(saw_bound);
  EXPECT_TRUE(saw_unit);
  // Heart rate (8867-4) is not a matched quantity: counted, not kept.
  EXPECT_EQ(profile_.observations.size(), 16u);
  EXPECT_THAT(profile_.notes, Contains(StartsWith("1 Observation values skipped")));
}

TEST_F(FhirBundleTest, PerformanceStatusAndPregnancy) {
  EXPECT_EQ(profile_.ecog, 1);       // LOINC answer LA9623-5
  EXPECT_EQ(profile_.karnofsky, 80); // valueInteger
  EXPECT_EQ(profile_.pregnant, Tristate::kNo);  // 2025 "not pregnant" beats 2024 "unknown"
  EXPECT_EQ(profile_.breastfeeding, Tristate::kUnknown);
}

TEST_F(FhirBundleTest, Medications) {
  ASSERT_EQ(profile_.medications.size(), 2u);
  EXPECT_EQ(profile_.medications[0].text, "metformin ER 500 mg");
  EXPECT_EQ(profile_.medications[0].active, Tristate::kYes);
  EXPECT_EQ(profile_.medications[0].codes.at(0).system, CodeSystem::kRxNorm);
  EXPECT_EQ(profile_.medications[1].text, "letrozole");  // by reference
  EXPECT_EQ(profile_.medications[1].codes.at(0).code, "72965");
  EXPECT_EQ(profile_.medications[1].active, Tristate::kNo);
}

TEST_F(FhirBundleTest, NotesCarryNoPatientValues) {
  for (const std::string& note : profile_.notes) {
    for (const char* value : {"0.2", "0.4", "mmol/s", "1968", "C50", "118"}) {
      EXPECT_THAT(note, Not(HasSubstr(value))) << note;
    }
  }
}

TEST(FhirReaderTest, ReferenceDateDefaultsToTheClock) {
  ::trialmatch::testing::FakeClock clock(absl::FromCivil(
      absl::CivilSecond(2028, 9, 21, 0, 30, 0), absl::UTCTimeZone()));
  ReaderOptions o;
  o.clock = &clock;
  absl::StatusOr<Profile> p = FromFhirBundle(BundleText(), o);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->age_years, 60.0);
}

TEST(FhirReaderTest, PregnancyAnswersAndBooleans) {
  auto with_pregnancy = [](json value, const char* date) {
    json obs = {{"resourceType", "Observation"},
                {"status", "final"},
                {"code", {{"coding", {{{"system", "http://loinc.org"},
                                       {"code", "82810-3"}}}}}},
                {"effectiveDateTime", date}};
    for (auto& [k, v] : value.items()) obs[k] = v;
    return json{{"resource", obs}};
  };
  json bundle = {{"resourceType", "Bundle"}, {"type", "collection"}};
  bundle["entry"] = json::array(
      {with_pregnancy({{"valueCodeableConcept",
                        {{"coding", {{{"system", "http://snomed.info/sct"},
                                      {"code", "60001007"}}}}}}},
                      "2024-01-01"),
       with_pregnancy({{"valueCodeableConcept",
                        {{"coding", {{{"system", "http://snomed.info/sct"},
                                      {"code", "77386006"}}}}}}},
                      "2025-03-01")});
  absl::StatusOr<Profile> p = FromFhirBundleValue(bundle, Options());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->pregnant, Tristate::kYes);
  bundle["entry"].push_back(
      with_pregnancy({{"valueBoolean", false}}, "2025-04-01T10:00:00Z"));
  p = FromFhirBundleValue(bundle, Options());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->pregnant, Tristate::kNo);
  bundle["entry"].push_back(with_pregnancy(
      {{"valueCodeableConcept",
        {{"coding", {{{"system", "http://loinc.org"}, {"code", "LA4489-6"}}}}}}},
      "2025-05-01"));
  p = FromFhirBundleValue(bundle, Options());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->pregnant, Tristate::kUnknown);  // the latest says unknown
}

TEST(FhirReaderTest, PartialBirthDateLeavesAgeUnknown) {
  json bundle = Bundle();
  bundle["entry"][0]["resource"]["birthDate"] = "1968";
  absl::StatusOr<Profile> p = FromFhirBundleValue(bundle, Options());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->age_years.has_value());
  EXPECT_FALSE(p->birth_date.has_value());
  EXPECT_THAT(p->notes, Contains(HasSubstr("age left unknown")));
}

TEST(FhirReaderTest, GenderOtherIsUnknownSex) {
  json bundle = Bundle();
  bundle["entry"][0]["resource"]["gender"] = "other";
  absl::StatusOr<Profile> p = FromFhirBundleValue(bundle, Options());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->sex, Sex::kUnknown);
}

TEST(FhirReaderTest, ConditionsCompleteOnlyWhenTheCallerSaysSo) {
  ReaderOptions o = Options();
  o.fhir_conditions_complete = true;
  absl::StatusOr<Profile> p = FromFhirBundle(BundleText(), o);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->conditions_complete);
}

TEST(FhirReaderTest, WithoutPatientResourceEverythingElseIsRead) {
  json bundle = Bundle();
  bundle["entry"].erase(bundle["entry"].begin());
  // Without the Patient, "urn:uuid:..." and "Patient/pt-..." cannot be told
  // to be the same patient: mixed subjects are rejected.
  EXPECT_THAT(FromFhirBundleValue(bundle, Options()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("refers to another patient")));
  bundle["entry"][0]["resource"]["subject"]["reference"] = "Patient/pt-4f1c2a8e";
  absl::StatusOr<Profile> p = FromFhirBundleValue(bundle, Options());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->age_years.has_value());
  EXPECT_EQ(p->sex, Sex::kUnknown);
  EXPECT_EQ(p->conditions.size(), 3u);
}

struct BadBundle {
  const char* name;
  void (*mutate)(json&);
  const char* prefix;
  const char* forbidden;
};

TEST(FhirReaderTest, ErrorsNameTheElementWithoutValues) {
  const BadBundle cases[] = {
      {"not a bundle",
       [](json& b) { b["resourceType"] = "Patient"; }, "resourceType: must be Bundle",
       "Patient"},
      {"entry not an array", [](json& b) { b["entry"] = "x"; },
       "entry: must be an array", "\"x"},
      {"future birth date",
       [](json& b) { b["entry"][0]["resource"]["birthDate"] = "2031-03-09"; },
       "birth_date: is after the reference date", "2031"},
      {"garbage birth date",
       [](json& b) { b["entry"][0]["resource"]["birthDate"] = "March 1968"; },
       "entry[0].resource.birthDate:", "March"},
      {"bad gender",
       [](json& b) { b["entry"][0]["resource"]["gender"] = "f"; },
       "entry[0].resource.gender:", "\"f"},
      {"value not a number",
       [](json& b) {
         b["entry"][7]["resource"]["valueQuantity"]["value"] = "118";
       },
       "entry[7].resource.valueQuantity.value: must be a number", "118"},
      {"negative lab",
       [](json& b) { b["entry"][7]["resource"]["valueQuantity"]["value"] = -118.5; },
       "observations[1].value: must not be negative (entry[7])", "118"},
      {"second patient",
       [](json& b) {
         json other = b["entry"][0];
         other["resource"]["id"] = "someone-else";
         other["fullUrl"] = "urn:uuid:other";
         b["entry"].push_back(other);
       },
       "entry[29].resource: a second Patient", "someone-else"},
      {"other patient's observation",
       [](json& b) {
         b["entry"][8]["resource"]["subject"]["reference"] = "Patient/p-999";
       },
       "entry[8].resource.subject.reference: refers to another patient", "999"},
      {"ECOG grade 7",
       [](json& b) {
         json& r = b["entry"][20]["resource"];
         r.erase("valueCodeableConcept");
         r["valueInteger"] = 7;
       },
       "observations[14].value: ECOG must be an integer from 0 to 5 (entry[20])",
       "7"},
      {"bad effective date",
       [](json& b) { b["entry"][8]["resource"]["effectiveDateTime"] = "yesterday"; },
       "entry[8].resource: effective date", "yesterday"},
      {"bad onset",
       [](json& b) { b["entry"][1]["resource"]["onsetDateTime"] = "in 2019"; },
       "conditions[0].onset:", "2019"},
      {"coding not an array",
       [](json& b) { b["entry"][1]["resource"]["code"]["coding"] = json::object(); },
       "entry[1].resource.code.coding: must be an array", "{"},
      {"entry not an object", [](json& b) { b["entry"][3] = 5; },
       "entry[3]: must be an object", "5"},
  };
  for (const BadBundle& c : cases) {
    SCOPED_TRACE(c.name);
    json bundle = Bundle();
    c.mutate(bundle);
    absl::StatusOr<Profile> p = FromFhirBundleValue(bundle, Options());
    ASSERT_THAT(p, StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(c.prefix)));
    EXPECT_THAT(std::string(p.status().message()), Not(HasSubstr(c.forbidden)));
  }
}

TEST(FhirReaderTest, AbsoluteSubjectUrlOfTheSamePatientIsAccepted) {
  json bundle = Bundle();
  bundle["entry"][8]["resource"]["subject"]["reference"] =
      "https://fhir.example.org/r4/Patient/pt-4f1c2a8e";
  EXPECT_OK(FromFhirBundleValue(bundle, Options()));
}

TEST(FhirReaderTest, TooManyEntriesAndMalformedText) {
  ReaderOptions o = Options();
  o.limits.max_bundle_entries = 10;
  EXPECT_THAT(FromFhirBundle(BundleText(), o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("entry: 29 entries exceed the limit of 10")));
  EXPECT_THAT(FromFhirBundle(R"({"resourceType": "Bundle", "entry": [)", Options()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("malformed JSON")));
  absl::StatusOr<Profile> empty =
      FromFhirBundle(R"({"resourceType": "Bundle", "type": "searchset"})", Options());
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_THAT(empty->conditions, IsEmpty());
}

}  // namespace
}  // namespace trialmatch::patient
