#include "model/study.h"

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::model {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::trialmatch::testing::StatusIs;

TEST(ParseAgeTest, AcceptsEveryUnitTheRegistryUses) {
  struct Case {
    const char* text;
    double years;
  } cases[] = {
      {"18 Years", 18},         {"1 Year", 1},       {"6 Months", 0.5},
      {"1 Month", 1.0 / 12},    {"2 Weeks", 14 / 365.25},
      {"28 Days", 28 / 365.25}, {"1 Day", 1 / 365.25},
      {"24 Hours", 1 / 365.25}, {"60 Minutes", 1 / (365.25 * 24)},
      {" 65 years ", 65},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<Age> age = ParseAge(c.text);
    ASSERT_TRUE(age.ok()) << age.status();
    EXPECT_THAT(age->Years(), DoubleNear(c.years, 1e-9));
  }
}

TEST(ParseAgeTest, RejectsWhatIsNotAnAge) {
  for (const char* text : {"", "N/A", "18", "Years", "-1 Years", "18 Decades",
                           "eighteen Years", "18 Years old"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(ParseAge(text), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(NctIdTest, Format) {
  EXPECT_TRUE(IsValidNctId("NCT01234567"));
  EXPECT_FALSE(IsValidNctId("NCT1234567"));
  EXPECT_FALSE(IsValidNctId("nct01234567"));
  EXPECT_FALSE(IsValidNctId("NCT0123456A"));
  EXPECT_FALSE(IsValidNctId("NCT012345678"));
  EXPECT_FALSE(IsValidNctId(""));
}

TEST(ParseStudyTest, MinimalRecordLeavesBoundsAbsent) {
  absl::StatusOr<Study> s = ParseStudy(R"({"protocolSection":{
      "identificationModule":{"nctId":"NCT00000001"},
      "eligibilityModule":{"eligibilityCriteria":"x"}}})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->nct_id, "NCT00000001");
  EXPECT_TRUE(s->eligibility.present);
  EXPECT_FALSE(s->eligibility.minimum_age.has_value());
  EXPECT_FALSE(s->eligibility.maximum_age.has_value());
  EXPECT_FALSE(s->eligibility.healthy_volunteers.has_value());
  EXPECT_FALSE(s->eligibility.sex_present);
  EXPECT_EQ(s->eligibility.sex, Sex::kAll);
}

TEST(ParseStudyTest, UnparseableAgeIsNoBoundNotAnError) {
  absl::StatusOr<Study> s = ParseStudy(R"({"protocolSection":{
      "identificationModule":{"nctId":"NCT00000001"},
      "eligibilityModule":{"minimumAge":"N/A","maximumAge":"65 Years"}}})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->eligibility.minimum_age.has_value());
  ASSERT_TRUE(s->eligibility.maximum_age.has_value());
  EXPECT_EQ(s->eligibility.maximum_age->Years(), 65);
}

TEST(ParseStudyTest, RejectsWhatIsNotAStudy) {
  EXPECT_THAT(ParseStudy("{not json"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ParseStudy("[]"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ParseStudy(R"({"protocolSection":{}})"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("nctId")));
  EXPECT_THAT(
      ParseStudy(
          R"({"protocolSection":{"identificationModule":{"nctId":"X1"}}})"),
      StatusIs(absl::StatusCode::kDataLoss));
  // Wrong types where optional fields are expected are tolerated.
  EXPECT_TRUE(ParseStudy(R"({"protocolSection":{
      "identificationModule":{"nctId":"NCT00000001"},
      "conditionsModule":{"conditions":"not a list"},
      "eligibilityModule":{"sex":7}}})")
                  .ok());
}

TEST(ParseStudyTest, RealRecordNCT00000410) {
  TM_REQUIRE_SHARED_DATA();
  std::string text = testing::ReadFile(testing::StudiesDir() / "NCT00000410.json");
  ASSERT_FALSE(text.empty());
  absl::StatusOr<Study> s = ParseStudy(text);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->nct_id, "NCT00000410");
  EXPECT_EQ(s->overall_status, "COMPLETED");
  EXPECT_THAT(s->conditions, ElementsAre("Herniated Disc", "Low Back Pain"));
  ASSERT_TRUE(s->eligibility.minimum_age.has_value());
  EXPECT_EQ(s->eligibility.minimum_age->Years(), 18);
  EXPECT_FALSE(s->eligibility.maximum_age.has_value());
  EXPECT_EQ(s->eligibility.healthy_volunteers, false);
  EXPECT_THAT(s->eligibility.criteria, HasSubstr("Inclusion Criteria:"));
  EXPECT_EQ(s->locations.size(), 13u);
  ASSERT_TRUE(s->locations[0].geo.has_value());
  EXPECT_NEAR(s->locations[0].geo->lat, 37.80437, 1e-6);
  EXPECT_EQ(s->condition_meshes.size(), 4u);
  EXPECT_EQ(s->condition_meshes[0].id, "D007405");
  EXPECT_EQ(s->condition_ancestors.size(), 6u);
}

// Every recorded study parses, and its id matches its file name.
TEST(ParseStudyTest, EveryRecordedStudyParses) {
  TM_REQUIRE_SHARED_DATA();
  int parsed = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(testing::StudiesDir())) {
    if (entry.path().extension() != ".json") continue;
    absl::StatusOr<Study> s = ParseStudy(testing::ReadFile(entry.path()));
    ASSERT_TRUE(s.ok()) << entry.path() << ": " << s.status();
    EXPECT_EQ(s->nct_id, entry.path().stem().string());
    ++parsed;
  }
  EXPECT_GE(parsed, 1267);
}

}  // namespace
}  // namespace trialmatch::model
