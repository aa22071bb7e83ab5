#include "patient/profile.h"

#include <string>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace trialmatch::patient {
namespace {

using ::testing::DoubleEq;
using ::testing::DoubleNear;
using ::testing::Eq;
using ::trialmatch::testing::StatusIs;

double Age(absl::CivilDay birth, absl::CivilDay on) {
  absl::StatusOr<double> age = AgeInYears(birth, on);
  EXPECT_TRUE(age.ok()) << age.status();
  return age.value_or(-1);
}

TEST(AgeInYearsTest, ExactlyWholeOnBirthdaysAndBelowTheDayBefore) {
  const absl::CivilDay birth(2007, 6, 15);
  EXPECT_THAT(Age(birth, absl::CivilDay(2025, 6, 15)), DoubleEq(18.0));
  EXPECT_LT(Age(birth, absl::CivilDay(2025, 6, 14)), 18.0);
  EXPECT_GT(Age(birth, absl::CivilDay(2025, 6, 14)), 17.99);
  EXPECT_THAT(Age(birth, absl::CivilDay(2025, 6, 16)), DoubleNear(18 + 1.0 / 365, 1e-12));
  EXPECT_THAT(Age(birth, birth), DoubleEq(0.0));
}

TEST(AgeInYearsTest, FractionIsElapsedShareOfTheCurrentYearOfLife) {
  // 2024-09-21 .. 2025-09-21 has 365 days; 267 of them elapsed on 2025-06-15.
  EXPECT_THAT(Age(absl::CivilDay(1968, 9, 21), absl::CivilDay(2025, 6, 15)),
              DoubleNear(56 + 267.0 / 365, 1e-12));
  // A year of life containing Feb 29 has 366 days.
  EXPECT_THAT(Age(absl::CivilDay(2023, 7, 1), absl::CivilDay(2024, 3, 1)),
              DoubleNear(244.0 / 366, 1e-12));
}

TEST(AgeInYearsTest, LeapDayBirthsHaveTheirBirthdayOnMarchFirstInCommonYears) {
  const absl::CivilDay birth(2004, 2, 29);
  EXPECT_LT(Age(birth, absl::CivilDay(2022, 2, 28)), 18.0);
  EXPECT_THAT(Age(birth, absl::CivilDay(2022, 3, 1)), DoubleEq(18.0));
  EXPECT_THAT(Age(birth, absl::CivilDay(2024, 2, 29)), DoubleEq(20.0));
  EXPECT_LT(Age(birth, absl::CivilDay(2024, 2, 28)), 20.0);
  EXPECT_THAT(Age(birth, absl::CivilDay(2005, 3, 1)), DoubleEq(1.0));
}

TEST(AgeInYearsTest, ReferenceBeforeBirthIsAnErrorWithoutDates) {
  absl::StatusOr<double> age =
      AgeInYears(absl::CivilDay(2030, 1, 2), absl::CivilDay(2025, 1, 1));
  EXPECT_THAT(age, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(std::string(age.status().message()).find("2030"), std::string::npos);
}

TEST(ParseCivilDayTest, StrictCalendarDates) {
  absl::StatusOr<absl::CivilDay> d = ParseCivilDay("2024-02-29");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, absl::CivilDay(2024, 2, 29));
  for (const char* bad : {"2023-02-29", "2024-13-01", "2024-00-10", "2024-1-01",
                          "24-01-01", "2024/01/01", "2024-01-01T00:00:00Z",
                          "", "2024-01-32", "2024-04-31"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(ParseCivilDay(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(ParseIsoDateTimeTest, AcceptsFhirPrecisionsAndZones) {
  auto utc = [](int y, int m, int d, int h = 0, int mi = 0, int s = 0) {
    return absl::FromCivil(absl::CivilSecond(y, m, d, h, mi, s),
                           absl::UTCTimeZone());
  };
  struct Case {
    const char* text;
    absl::Time want;
  } cases[] = {
      {"2025", utc(2025, 1, 1)},
      {"2025-05", utc(2025, 5, 1)},
      {"2025-05-28", utc(2025, 5, 28)},
      {"2025-05-28T07:40:00Z", utc(2025, 5, 28, 7, 40)},
      {"2025-05-28T07:40:00-04:00", utc(2025, 5, 28, 11, 40)},
      {"2025-05-28T07:40:00.123+02:00", utc(2025, 5, 28, 5, 40)},
      {"2025-05-28T07:40", utc(2025, 5, 28, 7, 40)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<absl::Time> t = ParseIsoDateTime(c.text);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(*t, c.want);
  }
  for (const char* bad : {"", "25", "2025-13", "2025-02-30", "2025-05-28T25:00",
                          "2025-05-28 07:40", "2025-05-28T07:40:00+0400",
                          "2025-05-28T07:40:00Zjunk", "yesterday"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(ParseIsoDateTime(bad),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(NormalizeMeshIdTest, BothRegistrySpellingsCompareEqual) {
  EXPECT_EQ(NormalizeMeshId("D003924"), "D000003924");
  EXPECT_EQ(NormalizeMeshId("D000003924"), "D000003924");
  EXPECT_EQ(NormalizeMeshId(" d003924 "), "D000003924");
  EXPECT_EQ(NormalizeMeshId("D000072658"), "D000072658");
  EXPECT_EQ(NormalizeMeshId("C538445"), "C000538445");
  EXPECT_EQ(NormalizeMeshId("not-an-id"), "NOT-AN-ID");
}

TEST(CodeSystemTest, UrisShortNamesAndProtoNames) {
  struct Case {
    const char* text;
    CodeSystem want;
  } cases[] = {
      {"http://snomed.info/sct", CodeSystem::kSnomedCt},
      {"SNOMED", CodeSystem::kSnomedCt},
      {"CODE_SYSTEM_SNOMED_CT", CodeSystem::kSnomedCt},
      {"http://hl7.org/fhir/sid/icd-10-cm", CodeSystem::kIcd10Cm},
      {"icd10cm", CodeSystem::kIcd10Cm},
      {"http://id.nlm.nih.gov/mesh", CodeSystem::kMesh},
      {"urn:oid:2.16.840.1.113883.6.177", CodeSystem::kMesh},
      {"mesh", CodeSystem::kMesh},
      {"http://loinc.org", CodeSystem::kLoinc},
      {"http://www.nlm.nih.gov/research/umls/rxnorm", CodeSystem::kRxNorm},
      {"http://hl7.org/fhir/sid/icd-10", CodeSystem::kOther},
      {"", CodeSystem::kOther},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(CodeSystemFromString(c.text), c.want);
  }
}

TEST(ProfileTest, QuantityValueCoversAgeScoresAndMeasurements) {
  Profile p;
  EXPECT_EQ(p.QuantityValue("age"), std::nullopt);
  EXPECT_EQ(p.QuantityValue("ecog"), std::nullopt);
  EXPECT_EQ(p.QuantityValue("hemoglobin"), std::nullopt);
  p.age_years = 41.5;
  p.ecog = 2;
  p.karnofsky = 70;
  p.measurements = {{"anc", 1.9, "10^9/L", "", 0},
                    {"hemoglobin", 11.2, "g/dL", "", 1}};
  EXPECT_THAT(p.QuantityValue("age"), Eq(41.5));
  EXPECT_THAT(p.QuantityValue("ecog"), Eq(2.0));
  EXPECT_THAT(p.QuantityValue("karnofsky"), Eq(70.0));
  EXPECT_THAT(p.QuantityValue("hemoglobin"), Eq(11.2));
  EXPECT_THAT(p.QuantityValue("anc"), Eq(1.9));
  EXPECT_EQ(p.QuantityValue("platelets"), std::nullopt);
  EXPECT_EQ(p.FindMeasurement("ast"), nullptr);
}

TEST(ProfileTest, DefaultsAreUnknownNeverExcluding) {
  Profile p;
  EXPECT_FALSE(p.age_years.has_value());
  EXPECT_EQ(p.sex, Sex::kUnknown);
  EXPECT_EQ(p.pregnant, Tristate::kUnknown);
  EXPECT_EQ(p.breastfeeding, Tristate::kUnknown);
  EXPECT_EQ(p.healthy_volunteer, Tristate::kUnknown);
  EXPECT_FALSE(p.conditions_complete);
  EXPECT_FALSE(p.ecog.has_value());
  EXPECT_FALSE(p.location.has_value());
}

}  // namespace
}  // namespace trialmatch::patient
