#include "patient/normalize.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/fake_clock.h"
#include "patient_test_util.h"
#include "testing/status_matchers.h"

namespace trialmatch::patient {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::trialmatch::testing::StatusIs;

ReaderOptions Options() { return TestOptions(); }

Observation Obs(std::string loinc, double value, std::string unit,
                std::string date = "") {
  Observation o;
  o.loinc = std::move(loinc);
  o.value = value;
  o.unit = std::move(unit);
  o.date = std::move(date);
  return o;
}

TEST(NormalizeTest, ComputesAgeFromBirthDateOnTheReferenceDate) {
  Profile p;
  p.birth_date = absl::CivilDay(2007, 6, 15);
  absl::StatusOr<Profile> r = NormalizeProfile(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->age_years, 18.0);
  EXPECT_EQ(r->reference_date, absl::CivilDay(2025, 6, 15));
}

TEST(NormalizeTest, ProfileReferenceDateWinsOverTheOptions) {
  Profile p;
  p.birth_date = absl::CivilDay(2007, 6, 15);
  p.reference_date = absl::CivilDay(2025, 6, 14);
  absl::StatusOr<Profile> r = NormalizeProfile(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(*r->age_years, 18.0);
}

TEST(NormalizeTest, DefaultReferenceDateIsTodayFromTheInjectedClock) {
  ::trialmatch::testing::FakeClock clock(absl::FromCivil(
      absl::CivilSecond(2030, 1, 1, 12, 0, 0), absl::UTCTimeZone()));
  ReaderOptions o;
  o.clock = &clock;
  Profile p;
  p.birth_date = absl::CivilDay(2000, 1, 1);
  absl::StatusOr<Profile> r = NormalizeProfile(p, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->age_years, 30.0);
  EXPECT_EQ(r->reference_date, absl::CivilDay(2030, 1, 1));
}

TEST(NormalizeTest, GivenAgeIsKeptAndNoAgeStaysUnknown) {
  Profile p;
  p.age_years = 33;
  p.birth_date = absl::CivilDay(1990, 1, 1);
  absl::StatusOr<Profile> r = NormalizeProfile(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->age_years, 33.0);
  absl::StatusOr<Profile> none = NormalizeProfile(Profile(), Options());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->age_years.has_value());
  EXPECT_FALSE(none->reference_date.has_value());
}

TEST(NormalizeTest, MostRecentObservationPerQuantityWins) {
  Profile p;
  p.observations = {
      Obs("718-7", 13.5, "g/dL", "2024-01-05"),
      Obs("718-7", 101, "g/L", "2025-05-01T10:00:00Z"),   // most recent
      Obs("718-7", 12.0, "g/dL", "2025-05-01T09:00:00Z"),
      Obs("718-7", 9.9, "g/dL"),                          // undated
      Obs("777-3", 90, "10*3/uL"),                        // undated only
      Obs("777-3", 95, "10*3/uL"),                        // later in input
  };
  absl::StatusOr<Profile> r = NormalizeProfile(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  const Measurement* hb = r->FindMeasurement("hemoglobin");
  ASSERT_NE(hb, nullptr);
  EXPECT_THAT(hb->value, DoubleNear(10.1, 1e-9));
  EXPECT_EQ(hb->unit, "g/dL");
  EXPECT_EQ(hb->date, "2025-05-01T10:00:00Z");
  EXPECT_EQ(hb->observation, 1);
  const Measurement* plt = r->FindMeasurement("platelets");
  ASSERT_NE(plt, nullptr);
  EXPECT_EQ(plt->value, 95);
  EXPECT_EQ(plt->observation, 5);
  // Every observation keeps its original value and unit.
  EXPECT_EQ(r->observations[1].value, 101);
  EXPECT_EQ(r->observations[1].unit, "g/L");
  EXPECT_THAT(*r->observations[1].canonical_value, DoubleNear(10.1, 1e-9));
}

TEST(NormalizeTest, TimeZonesAreComparedAsInstants) {
  Profile p;
  // 08:00-05:00 is 13:00Z, later than 12:00Z.
  p.observations = {Obs("718-7", 11, "g/dL", "2025-05-01T08:00:00-05:00"),
                    Obs("718-7", 12, "g/dL", "2025-05-01T12:00:00Z")};
  absl::StatusOr<Profile> r = NormalizeProfile(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->FindMeasurement("hemoglobin")->value, 11);
}

TEST(NormalizeTest, UnknownUnitStaysOutOfTheMatchedSetWithANote) {
  Profile p;
  p.observations = {Obs("718-7", 7.4, "mmol/mol", "2025-05-01"),
                    Obs("718-7", 11.0, "g/dL", "2024-01-01")};
  absl::StatusOr<Profile> r = NormalizeProfile(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->observations[0].quantity, "hemoglobin");
  EXPECT_FALSE(r->observations[0].canonical_value.has_value());
  EXPECT_EQ(r->observations[0].note, "unit not accepted");
  // The older, convertible value is used; the note names the observation
  // but not its value or unit.
  EXPECT_EQ(r->FindMeasurement("hemoglobin")->value, 11.0);
  ASSERT_THAT(r->notes, ElementsAre(HasSubstr("observations[0]")));
  EXPECT_THAT(r->notes[0], Not(HasSubstr("7.4")));
  EXPECT_THAT(r->notes[0], Not(HasSubstr("mmol")));
}

TEST(NormalizeTest, ComparatorsAndMissingValuesAreNotExact) {
  Profile p;
  Observation bili = Obs("1975-2", 0.2, "mg/dL", "2025-05-01");
  bili.comparator = "<";
  Observation novalue;
  novalue.loinc = "1920-8";
  p.observations = {bili, novalue};
  absl::StatusOr<Profile> r = NormalizeProfile(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->FindMeasurement("bilirubin_total"), nullptr);
  EXPECT_EQ(r->FindMeasurement("ast"), nullptr);
  EXPECT_THAT(r->observations[0].note, HasSubstr("comparator"));
  EXPECT_EQ(r->observations[1].note, "no value");
}

TEST(NormalizeTest, NameIsUsedOnlyWithoutALoincCode) {
  Profile p;
  Observation by_name;
  by_name.name = "Platelet count";
  by_name.value = 150000;
  by_name.unit = "/mm3";
  Observation unknown_code = Obs("2345-7", 180, "mg/dL");  // random glucose
  unknown_code.name = "fasting glucose";
  p.observations = {by_name, unknown_code};
  absl::StatusOr<Profile> r = NormalizeProfile(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->FindMeasurement("platelets")->value, 150);
  EXPECT_EQ(r->observations[1].quantity, "");
  EXPECT_EQ(r->FindMeasurement("fasting_glucose"), nullptr);
  EXPECT_THAT(r->notes, IsEmpty());
}

TEST(NormalizeTest, PerformanceStatusFromObservationsUnlessGivenDirectly) {
  Profile p;
  p.observations = {Obs("89247-1", 2, "{score}", "2024-01-01"),
                    Obs("89247-1", 1, "{score}", "2025-01-01"),
                    Obs("89243-0", 70, "", "2025-01-01")};
  absl::StatusOr<Profile> r = NormalizeProfile(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ecog, 1);
  EXPECT_EQ(r->karnofsky, 70);
  EXPECT_EQ(r->FindMeasurement("ecog"), nullptr);  // not duplicated there
  p.ecog = 3;
  r = NormalizeProfile(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ecog, 3);
}

TEST(NormalizeTest, ConditionCodesGetMeshDescriptorsWithoutDuplicates) {
  Profile p;
  Condition c;
  c.text = "breast cancer";
  c.codes = {{CodeSystem::kSnomedCt, "", "254837009", "Malignant neoplasm of breast"},
             {CodeSystem::kIcd10Cm, "", "C50.911", ""},
             {CodeSystem::kMesh, "", "D001943", "Breast Neoplasms"}};
  Condition free_text;
  free_text.text = "a rare thing";
  p.conditions = {c, free_text};
  absl::StatusOr<Profile> r = NormalizeProfile(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->conditions[0].mesh.size(), 1u);
  EXPECT_EQ(r->conditions[0].mesh[0].id, "D000001943");
  EXPECT_EQ(r->conditions[0].mesh[0].term, "Breast Neoplasms");
  EXPECT_THAT(r->conditions[1].mesh, IsEmpty());
}

// One impossible value per case: the error names the field by path and does
// not contain the value.
struct InvalidCase {
  const char* name;
  void (*mutate)(Profile&);
  const char* path;
  const char* value_text;  // must not appear in the message
};

TEST(NormalizeTest, ImpossibleValuesAreRejectedByPathWithoutTheirValues) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  static double s_nan, s_inf;
  s_nan = nan;
  s_inf = inf;
  const InvalidCase cases[] = {
      {"negative age", [](Profile& p) { p.age_years = -4.25; }, "age_years",
       "-4.25"},
      {"age over 150", [](Profile& p) { p.age_years = 151.75; }, "age_years",
       "151.75"},
      {"NaN age", [](Profile& p) { p.age_years = s_nan; }, "age_years", "nan"},
      {"future birth date",
       [](Profile& p) { p.birth_date = absl::CivilDay(2031, 7, 19); },
       "birth_date", "2031"},
      {"birth date 151 years ago",
       [](Profile& p) { p.birth_date = absl::CivilDay(1873, 7, 19); },
       "birth_date", "1873"},
      {"negative lab",
       [](Profile& p) {
         p.observations = {Obs("718-7", 12, "g/dL"), Obs("718-7", -3.75, "g/dL")};
       },
       "observations[1].value", "-3.75"},
      {"infinite lab",
       [](Profile& p) { p.observations = {Obs("777-3", s_inf, "10*9/L")}; },
       "observations[0].value", "inf"},
      {"NaN unknown lab",
       [](Profile& p) { p.observations = {Obs("8867-4", s_nan, "/min")}; },
       "observations[0].value", "nan"},
      {"overflow on conversion",
       [](Profile& p) { p.observations = {Obs("14771-0", 1.7e308, "mmol/L")}; },
       "observations[0].value", "1.7e"},
      {"ECOG 6", [](Profile& p) { p.ecog = 6; }, "ecog", "6"},
      {"ECOG -1", [](Profile& p) { p.ecog = -1; }, "ecog", "-1"},
      {"ECOG observation 1.5",
       [](Profile& p) { p.observations = {Obs("89247-1", 1.5, "{score}")}; },
       "observations[0].value", "1.5"},
      {"Karnofsky 85", [](Profile& p) { p.karnofsky = 85; }, "karnofsky", "85"},
      {"Karnofsky 110", [](Profile& p) { p.karnofsky = 110; }, "karnofsky",
       "110"},
      {"Karnofsky observation 75",
       [](Profile& p) { p.observations = {Obs("89243-0", 75, "{score}")}; },
       "observations[0].value", "75"},
      {"latitude 91.5",
       [](Profile& p) { p.location = GeoLocation{91.5, 0, std::nullopt}; },
       "location.latitude", "91.5"},
      {"longitude -181.5",
       [](Profile& p) { p.location = GeoLocation{0, -181.5, std::nullopt}; },
       "location.longitude", "181.5"},
      {"NaN latitude",
       [](Profile& p) { p.location = GeoLocation{s_nan, 0, std::nullopt}; },
       "location.latitude", "nan"},
      {"negative distance",
       [](Profile& p) { p.location = GeoLocation{10, 10, -12.5}; },
       "location.max_distance_km", "12.5"},
      {"infinite distance",
       [](Profile& p) { p.location = GeoLocation{10, 10, s_inf}; },
       "location.max_distance_km", "inf"},
      {"bad observation date",
       [](Profile& p) { p.observations = {Obs("718-7", 12, "g/dL", "2025-13-44")}; },
       "observations[0].date", "2025-13-44"},
      {"bad comparator",
       [](Profile& p) {
         p.observations = {Obs("718-7", 12, "g/dL")};
         p.observations[0].comparator = "~";
       },
       "observations[0].comparator", "~"},
      {"bad onset",
       [](Profile& p) {
         p.conditions.resize(1);
         p.conditions[0].text = "asthma";
         p.conditions[0].onset = "last spring";
       },
       "conditions[0].onset", "spring"},
  };
  for (const InvalidCase& c : cases) {
    SCOPED_TRACE(c.name);
    Profile p;
    c.mutate(p);
    absl::StatusOr<Profile> r = NormalizeProfile(p, Options());
    ASSERT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument,
                            HasSubstr(std::string(c.path) + ":")));
    EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr(c.value_text)));
  }
}

TEST(NormalizeTest, NegativeValuesOfUnknownQuantitiesAreKept) {
  Profile p;
  p.observations = {Obs("11555-0", -2.5, "mmol/L")};  // base excess
  absl::StatusOr<Profile> r = NormalizeProfile(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->observations[0].quantity, "");
}

TEST(NormalizeTest, BoundaryValuesAreAccepted) {
  Profile p;
  p.age_years = 150;
  p.ecog = 5;
  p.karnofsky = 0;
  p.location = GeoLocation{-90, 180, 0};
  p.observations = {Obs("718-7", 0, "g/dL")};
  EXPECT_OK(NormalizeProfile(p, Options()));
  p.age_years = 0;
  p.karnofsky = 100;
  EXPECT_OK(NormalizeProfile(p, Options()));
}

TEST(NormalizeTest, OversizedProfilesAreRejected) {
  ReaderOptions o = Options();
  Profile p;
  p.observations.assign(10'001, Obs("718-7", 12, "g/dL"));
  EXPECT_THAT(NormalizeProfile(p, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("observations: 10001 entries exceed the limit "
                                 "of 10000")));
  p.observations.assign(10'000, Obs("718-7", 12, "g/dL"));
  EXPECT_OK(NormalizeProfile(p, o));
  Profile q;
  q.conditions.resize(3);
  for (Condition& c : q.conditions) c.text = "x";
  o.limits.max_conditions = 2;
  EXPECT_THAT(NormalizeProfile(q, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("conditions:")));
  Profile s;
  s.id = std::string(20'000, 'x');
  EXPECT_THAT(NormalizeProfile(s, Options()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id:")));
}

TEST(NormalizeTest, FhirSourcedItemsNameTheirEntry) {
  Profile p;
  p.observations = {Obs("718-7", -1, "g/dL")};
  p.observations[0].source = "entry[7]";
  EXPECT_THAT(NormalizeProfile(p, Options()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("observations[0].value: must not be negative "
                                 "(entry[7])")));
}

}  // namespace
}  // namespace trialmatch::patient
