#include "server/convert.h"

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/study.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::server {
namespace {

using ::trialmatch::testing::ReadFile;
using ::trialmatch::testing::StatusIs;
using ::trialmatch::testing::StudiesDir;

// Typed fields equal what the recorded JSON says (read here with nlohmann,
// independently of model::StudyFromJson), and record_json is the text as is.
TEST(ConvertTest, RecordedStudyTypedFieldsMatchTheJson) {
  TM_REQUIRE_SHARED_DATA();
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(StudiesDir())) {
    if (++checked > 60) break;
    const std::string text = ReadFile(entry.path());
    SCOPED_TRACE(entry.path().filename().string());
    v1::Study s;
    ASSERT_OK(StudyFromRecordJson(text, &s));
    EXPECT_EQ(s.record_json(), text);
    const nlohmann::json j = nlohmann::json::parse(text);
    const auto& p = j["protocolSection"];
    EXPECT_EQ(s.nct_id(), p["identificationModule"]["nctId"]);
    EXPECT_EQ(s.brief_title(),
              p["identificationModule"].value("briefTitle", ""));
    EXPECT_EQ(s.overall_status(), p["statusModule"].value("overallStatus", ""));
    EXPECT_EQ(s.has_results(), j.value("hasResults", false));
    if (p.contains("conditionsModule") &&
        p["conditionsModule"].contains("conditions")) {
      EXPECT_EQ(s.conditions_size(),
                p["conditionsModule"]["conditions"].size());
    }
    if (p.contains("eligibilityModule")) {
      const auto& em = p["eligibilityModule"];
      EXPECT_EQ(s.eligibility().criteria(),
                em.value("eligibilityCriteria", ""));
      EXPECT_EQ(s.eligibility().minimum_age(), em.value("minimumAge", ""));
      EXPECT_EQ(s.eligibility().maximum_age(), em.value("maximumAge", ""));
      EXPECT_EQ(s.eligibility().sex(), em.value("sex", ""));
      EXPECT_EQ(s.eligibility().has_healthy_volunteers(),
                em.contains("healthyVolunteers"));
    }
    if (p.contains("contactsLocationsModule") &&
        p["contactsLocationsModule"].contains("locations")) {
      const auto& locs = p["contactsLocationsModule"]["locations"];
      ASSERT_EQ(s.locations_size(), locs.size());
      for (int i = 0; i < s.locations_size(); ++i) {
        EXPECT_EQ(s.locations(i).city(), locs[i].value("city", ""));
        EXPECT_EQ(s.locations(i).has_geo_point(), locs[i].contains("geoPoint"));
      }
    }
  }
}

TEST(ConvertTest, PartialRecordKeepsWhatItHas) {
  v1::Study s;
  ASSERT_OK(StudyFromRecordJson(
      R"({"protocolSection":{"identificationModule":{"briefTitle":"T"}}})",
      &s));
  EXPECT_EQ(s.brief_title(), "T");
  EXPECT_EQ(s.nct_id(), "");
  ASSERT_OK(StudyFromRecordJson(R"({"hasResults":true})", &s));
  EXPECT_EQ(s.record_json(), R"({"hasResults":true})");
}

TEST(ConvertTest, NotAnObjectIsDataLoss) {
  v1::Study s;
  EXPECT_THAT(StudyFromRecordJson("[1,2]", &s),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(StudyFromRecordJson("{oops", &s),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(ConvertTest, RecordedMetadataAndSearchAreas) {
  TM_REQUIRE_SHARED_DATA();
  const auto endpoints =
      ::trialmatch::testing::SharedDataDir() / "ctgov_v2" / "endpoints";
  v1::GetStudiesMetadataResponse meta;
  ASSERT_OK(ParseStudiesMetadata(
      ReadFile(endpoints / "studies_metadata_2025-05_metamonk.json"), &meta));
  ASSERT_GT(meta.fields_size(), 0);
  EXPECT_EQ(meta.fields(0).name(), "protocolSection");
  EXPECT_EQ(meta.fields(0).piece(), "ProtocolSection");
  const v1::FieldNode& ident = meta.fields(0).children(0);
  EXPECT_EQ(ident.name(), "identificationModule");
  EXPECT_EQ(ident.children(0).piece(), "NCTId");
  EXPECT_EQ(ident.children(0).max_chars(), 11);
  EXPECT_THAT(ident.children(0).alt_piece_names(),
              ::testing::Contains("NCT-ID"));

  v1::GetSearchAreasResponse areas;
  ASSERT_OK(ParseSearchAreas(
      ReadFile(endpoints / "studies_search-areas_2025-05_metamonk.json"),
      &areas));
  ASSERT_GT(areas.documents_size(), 0);
  EXPECT_EQ(areas.documents(0).name(), "Study");
  const v1::SearchArea& basic = areas.documents(0).areas(0);
  EXPECT_EQ(basic.name(), "BasicSearch");
  EXPECT_EQ(basic.param(), "term");
  EXPECT_EQ(basic.parts(0).pieces(0), "NCTId");
  EXPECT_DOUBLE_EQ(basic.parts(2).weight(), 0.89);
}

TEST(ConvertTest, EnumsStatsAndVersionShapes) {
  v1::GetEnumsResponse enums;
  ASSERT_OK(ParseEnums(
      R"([{"type":"Status","pieces":["OverallStatus"],"values":[
          {"value":"RECRUITING","legacyValue":"Recruiting"},
          {"value":"X","legacyValue":"x","exceptions":{"P":"y"}}]}])",
      &enums));
  ASSERT_EQ(enums.enums_size(), 1);
  EXPECT_EQ(enums.enums(0).type(), "Status");
  EXPECT_EQ(enums.enums(0).values(0).legacy_value(), "Recruiting");
  EXPECT_EQ(enums.enums(0).values(1).exceptions_json(), R"({"P":"y"})");

  v1::GetStatsSizeResponse stats;
  ASSERT_OK(ParseStatsSize(
      R"({"totalStudies":3,"averageSizeBytes":20,"largestStudies":[
          {"id":"NCT1","sizeBytes":99}],"percentiles":{"50":12},
          "ranges":[{"sizeRange":"0KB-1KB","studiesCount":2}]})",
      &stats));
  EXPECT_EQ(stats.total_studies(), 3);
  EXPECT_EQ(stats.largest_studies(0).size_bytes(), 99);
  EXPECT_EQ(stats.percentiles().at("50"), 12);
  EXPECT_EQ(stats.ranges(0).studies_count(), 2);

  v1::GetApiVersionResponse version;
  ASSERT_OK(ParseApiVersion(
      R"({"apiVersion":"2.0.3","dataTimestamp":"2026-01-02T03:04:05"})",
      &version));
  EXPECT_EQ(version.api_version(), "2.0.3");
  EXPECT_THAT(ParseApiVersion(R"({"dataTimestamp":"x"})", &version),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(ConvertTest, WrongTopLevelIsDataLoss) {
  v1::GetStudiesMetadataResponse meta;
  EXPECT_THAT(ParseStudiesMetadata(R"({"a":1})", &meta),
              StatusIs(absl::StatusCode::kDataLoss));
  v1::GetStatsSizeResponse stats;
  EXPECT_THAT(ParseStatsSize("[]", &stats),
              StatusIs(absl::StatusCode::kDataLoss));
  v1::GetEnumsResponse enums;
  EXPECT_THAT(ParseEnums("<html>", &enums),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(ConvertTest, WrongTypedMembersAreIgnored) {
  v1::GetStatsSizeResponse stats;
  ASSERT_OK(ParseStatsSize(
      R"({"totalStudies":"many","largestStudies":{},"percentiles":[1]})",
      &stats));
  EXPECT_EQ(stats.total_studies(), 0);
  EXPECT_EQ(stats.largest_studies_size(), 0);
}

}  // namespace
}  // namespace trialmatch::server
