#include "patient/json_reader.h"

#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "patient_test_util.h"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::patient {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::trialmatch::testing::StatusIs;

ReaderOptions Options() { return TestOptions(); }

std::string PlainProfileText() { return PatientFile("plain_profile.json"); }

TEST(FromJsonTest, ReadsTheHandWrittenProfile) {
  const std::string text = PlainProfileText();
  ASSERT_FALSE(text.empty());
  absl::StatusOr<Profile> p = FromJson(text, Options());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->id, "demo-0001");
  EXPECT_EQ(p->sex, Sex::kMale);
  // 1959-02-28 -> 2025-06-15: 66 years and 107 of 365 days.
  EXPECT_THAT(*p->age_years, DoubleNear(66 + 107.0 / 365, 1e-9));
  EXPECT_TRUE(p->conditions_complete);
  EXPECT_EQ(p->ecog, 1);
  EXPECT_FALSE(p->karnofsky.has_value());
  EXPECT_EQ(p->pregnant, Tristate::kUnknown);  // null
  EXPECT_EQ(p->breastfeeding, Tristate::kNo);
  EXPECT_EQ(p->healthy_volunteer, Tristate::kNo);
  ASSERT_TRUE(p->location.has_value());
  EXPECT_EQ(p->location->latitude, 40.7128);
  EXPECT_EQ(p->location->longitude, -74.006);
  EXPECT_EQ(p->location->max_distance_km, 150);

  ASSERT_EQ(p->conditions.size(), 3u);
  const Condition& nsclc = p->conditions[0];
  EXPECT_EQ(nsclc.clinical_status, ClinicalStatus::kActive);
  EXPECT_EQ(nsclc.onset, "2024-12");
  ASSERT_EQ(nsclc.codes.size(), 2u);
  EXPECT_EQ(nsclc.codes[0].system, CodeSystem::kSnomedCt);
  EXPECT_EQ(nsclc.codes[1].system, CodeSystem::kIcd10Cm);
  std::vector<std::string> ids;
  for (const auto& m : nsclc.mesh) ids.push_back(m.id);
  EXPECT_THAT(ids, ElementsAre("D000002289", "D000008175"));
  EXPECT_EQ(p->conditions[1].mesh.at(0).id, "D000029424");  // J44.9 -> COPD
  EXPECT_EQ(p->conditions[2].clinical_status, ClinicalStatus::kResolved);
  EXPECT_EQ(p->conditions[2].mesh.at(0).id, "D000009203");

  auto value = [&](const char* q) {
    const Measurement* m = p->FindMeasurement(q);
    return m == nullptr ? -1.0 : m->value;
  };
  EXPECT_EQ(value("hemoglobin"), 12.4);  // the 2025-06-01 value
  EXPECT_EQ(value("anc"), 4.2);
  EXPECT_THAT(value("platelets"), DoubleNear(180, 1e-9));
  EXPECT_EQ(value("creatinine"), 1.1);
  EXPECT_THAT(value("bilirubin_total"), DoubleNear(13.7 / 17.1, 1e-9));
  EXPECT_EQ(value("alt"), 31);  // by name
  EXPECT_THAT(value("fasting_glucose"), DoubleNear(5.8 * 18.016, 1e-9));
  EXPECT_EQ(value("inr"), 1.1);
  EXPECT_EQ(value("lvef"), 55);
  EXPECT_EQ(p->measurements.size(), 9u);  // heart rate is not a quantity
  EXPECT_EQ(p->observations.size(), 11u);
  ASSERT_EQ(p->medications.size(), 1u);
  EXPECT_EQ(p->medications[0].active, Tristate::kYes);
  EXPECT_EQ(p->medications[0].codes[0].system, CodeSystem::kRxNorm);
  EXPECT_THAT(p->notes, IsEmpty());
}

TEST(FromJsonTest, EmptyObjectIsAllUnknown) {
  absl::StatusOr<Profile> p = FromJson("{}", Options());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->age_years.has_value());
  EXPECT_EQ(p->sex, Sex::kUnknown);
  EXPECT_EQ(p->pregnant, Tristate::kUnknown);
  EXPECT_EQ(p->healthy_volunteer, Tristate::kUnknown);
  EXPECT_FALSE(p->conditions_complete);
}

TEST(FromJsonTest, TriStatesAreTrueFalseNullOrAbsent) {
  struct Case {
    const char* json;
    Tristate want;
  } cases[] = {
      {R"({"pregnant": true})", Tristate::kYes},
      {R"({"pregnant": false})", Tristate::kNo},
      {R"({"pregnant": null})", Tristate::kUnknown},
      {R"({})", Tristate::kUnknown},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.json);
    absl::StatusOr<Profile> p = FromJson(c.json, Options());
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->pregnant, c.want);
  }
  absl::StatusOr<Profile> p = FromJson(
      R"({"breastfeeding": true, "healthy_volunteer": true})", Options());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->breastfeeding, Tristate::kYes);
  EXPECT_EQ(p->healthy_volunteer, Tristate::kYes);
  EXPECT_EQ(p->pregnant, Tristate::kUnknown);
}

TEST(FromJsonTest, EnumSpellings) {
  const std::pair<const char*, Sex> sexes[] = {
      {"female", Sex::kFemale}, {"FEMALE", Sex::kFemale},
      {"SEX_FEMALE", Sex::kFemale}, {"male", Sex::kMale},
      {"unknown", Sex::kUnknown}, {"other", Sex::kUnknown}};
  for (const auto& [text, want] : sexes) {
    absl::StatusOr<Profile> p =
        FromJson(std::string(R"({"sex": ")") + text + "\"}", Options());
    ASSERT_TRUE(p.ok()) << text << ": " << p.status();
    EXPECT_EQ(p->sex, want) << text;
  }
  absl::StatusOr<Profile> p = FromJson(
      R"({"conditions": [{"text": "a", "clinical_status": "remission"},
                         {"text": "b", "clinical_status": "relapse"},
                         {"text": "c", "codes": [{"system": "CODE_SYSTEM_OTHER",
                           "system_uri": "http://www.whocc.no/atc", "code": "A10"}]}]})",
      Options());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->conditions[0].clinical_status, ClinicalStatus::kResolved);
  EXPECT_EQ(p->conditions[1].clinical_status, ClinicalStatus::kActive);
  EXPECT_EQ(p->conditions[2].codes[0].system, CodeSystem::kOther);
  EXPECT_EQ(p->conditions[2].codes[0].system_uri, "http://www.whocc.no/atc");
}

struct BadJson {
  const char* json;
  const char* path;        // expected at the start of the message
  const char* forbidden;   // a patient value that must not be echoed
};

TEST(FromJsonTest, ErrorsNameTheFieldAndNeverEchoValues) {
  const BadJson cases[] = {
      {R"({"age_years": "fifty-four"})", "age_years: must be a number", "fifty"},
      {R"({"age_years": 212})", "age_years:", "212"},
      {R"({"birth_date": "1961-02-30"})", "birth_date: must be a YYYY-MM-DD",
       "1961"},
      {R"({"birth_date": "2039-04-04"})", "birth_date: is after", "2039"},
      {R"({"reference_date": "04/04/2025"})", "reference_date:", "04/04"},
      {R"({"sex": "woman-ish"})", "sex: must be", "woman"},
      {R"({"ecog": 1.5})", "ecog: must be an integer", "1.5"},
      {R"({"ecog": 9})", "ecog:", "9"},
      {R"({"karnofsky": 65})", "karnofsky:", "65"},
      {R"({"pregnant": "no"})", "pregnant: must be true, false or null", "\"no"},
      {R"({"conditions_complete": null, "conditions": {"text": "x"}})",
       "conditions: must be an array", "x"},
      {R"({"conditions": [{"text": "gout", "clinical_status": "chronic"}]})",
       "conditions[0].clinical_status:", "chronic"},
      {R"({"conditions": [{}]})", "conditions[0]: needs a text", "{"},
      {R"({"conditions": [{"codes": [{"system": "snomed"}]}]})",
       "conditions[0].codes[0].code: is required", "snomed"},
      {R"({"observations": [{"loinc": "718-7", "value": 12}, {"value": 3}]})",
       "observations[1]: needs a loinc code or a name", "3"},
      {R"({"observations": [{"loinc": "718-7", "value": "12.5", "unit": "g/dL"}]})",
       "observations[0].value: must be a number", "12.5"},
      {R"({"observations": [{"loinc": "718-7", "value": 1}, {"loinc": "718-7", "value": -12.5, "unit": "g/dL"}]})",
       "observations[1].value: must not be negative", "12.5"},
      {R"({"observations": [{"loinc": "718-7", "value": 12, "date": "May 2025"}]})",
       "observations[0].date:", "May"},
      {R"({"location": {"latitude": 95.5, "longitude": 10}})",
       "location.latitude:", "95.5"},
      {R"({"location": {"latitude": 45}})", "location.longitude: is required",
       "45"},
      {R"({"location": {"latitude": 45, "longitude": 10, "max_distance_km": -50.5}})",
       "location.max_distance_km:", "50.5"},
      {R"({"medications": [{"active": true}]})", "medications[0]: needs a text",
       "true"},
      {R"({"pregant": true})", "pregant: unknown field", "true"},
      {R"({"conditions": [{"text": "x", "sevrity": "mild"}]})",
       "conditions[0].sevrity: unknown field", "mild"},
      {R"({"Type 2 diabetes, since 2011": true})", "(root): has an unknown field",
       "diabetes"},
      {R"([{"age_years": 5}])", "(root): must be an object", "5"},
      {R"({"age_years": 54, "sex": "fem)", "malformed JSON at byte", "fem"},
      {R"({"id": "x", "age_years": 54})" "trailing", "malformed JSON at byte",
       "trailing"},
  };
  for (const BadJson& c : cases) {
    SCOPED_TRACE(c.json);
    absl::StatusOr<Profile> p = FromJson(c.json, Options());
    ASSERT_THAT(p, StatusIs(absl::StatusCode::kInvalidArgument,
                            ::testing::StartsWith(c.path)));
    EXPECT_THAT(std::string(p.status().message()), Not(HasSubstr(c.forbidden)));
  }
}

TEST(FromJsonTest, UnknownFieldsCanBeAllowed) {
  ReaderOptions o = Options();
  o.allow_unknown_fields = true;
  absl::StatusOr<Profile> p = FromJson(R"({"age_years": 30, "extra": 1})", o);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->age_years, 30.0);
}

TEST(FromJsonTest, LimitsAreEnforcedBeforeReading) {
  ReaderOptions o = Options();
  o.limits.max_observations = 2;
  EXPECT_THAT(FromJson(R"({"observations": [{"name": "alt", "value": 1},
      {"name": "alt", "value": 1}, {"name": "alt", "value": 1}]})", o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("observations: 3 entries exceed the limit of 2")));
  o = Options();
  o.limits.max_input_bytes = 10;
  EXPECT_THAT(FromJson(R"({"age_years": 30})", o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exceeds")));
  // Deep nesting is refused before the parser recurses.
  std::string deep = R"({"id": "x", "codes": )" + std::string(100'000, '[') +
                     std::string(100'000, ']') + "}";
  EXPECT_THAT(FromJson(deep, Options()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("nested deeper than 64")));
  // Brackets inside strings do not count.
  EXPECT_OK(FromJson(R"({"id": ")" + std::string(200, '[') + R"("})", Options()));
}

TEST(JsonlReaderTest, ReportsEachLineAndSkipsBadOnes) {
  std::istringstream in(PatientFile("profiles.jsonl"));
  JsonlReader reader(in, Options());
  std::vector<int64_t> ok_lines, bad_lines;
  std::vector<std::string> ids, errors;
  while (std::optional<JsonlRecord> r = reader.Next()) {
    if (r->profile.ok()) {
      ok_lines.push_back(r->line);
      ids.push_back(r->profile->id);
    } else {
      bad_lines.push_back(r->line);
      errors.emplace_back(r->profile.status().message());
    }
  }
  EXPECT_OK(reader.status());
  EXPECT_THAT(ok_lines, ElementsAre(1, 4, 6));
  EXPECT_THAT(ids, ElementsAre("p1", "p3", "p5"));
  EXPECT_THAT(bad_lines, ElementsAre(3, 5));
  EXPECT_THAT(errors[0], HasSubstr("age_years:"));
  EXPECT_THAT(errors[1], HasSubstr("malformed JSON"));
  EXPECT_EQ(reader.lines_read(), 6);
}

TEST(JsonlReaderTest, OverlongLinesAreRejectedAndReadingGoesOn) {
  ReaderOptions o = Options();
  o.limits.max_input_bytes = 64;
  std::istringstream in("{\"id\": \"" + std::string(500, 'a') +
                        "\"}\r\n{\"id\": \"b\"}\r\n");
  JsonlReader reader(in, o);
  std::optional<JsonlRecord> first = reader.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->line, 1);
  EXPECT_THAT(first->profile, StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("exceeds the limit of 64")));
  std::optional<JsonlRecord> second = reader.Next();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->line, 2);
  ASSERT_TRUE(second->profile.ok()) << second->profile.status();
  EXPECT_EQ(second->profile->id, "b");
  EXPECT_FALSE(reader.Next().has_value());
}

TEST(JsonlReaderTest, LastLineWithoutNewlineAndEmptyStream) {
  std::istringstream in("{\"id\": \"a\"}\n\n{\"id\": \"z\"}");
  JsonlReader reader(in, Options());
  std::optional<JsonlRecord> a = reader.Next();
  std::optional<JsonlRecord> z = reader.Next();
  ASSERT_TRUE(a.has_value() && z.has_value());
  EXPECT_EQ(z->line, 3);
  EXPECT_EQ(z->profile->id, "z");
  EXPECT_FALSE(reader.Next().has_value());
  std::istringstream empty("");
  JsonlReader none(empty, Options());
  EXPECT_FALSE(none.Next().has_value());
  EXPECT_OK(none.status());
}

}  // namespace
}  // namespace trialmatch::patient
