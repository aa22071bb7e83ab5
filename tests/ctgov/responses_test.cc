#include "ctgov/responses.h"

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::ctgov {
namespace {

using ::testing::HasSubstr;
using ::trialmatch::testing::IsOk;
using ::trialmatch::testing::StatusIs;

std::filesystem::path Recorded(const std::string& rel) {
  return ::trialmatch::testing::SharedDataDir() / "ctgov_v2" /
         "search_responses" / rel;
}

TEST(ParseStudiesPageTest, RecordedPageWithTokenAndTotal) {
  TM_REQUIRE_SHARED_DATA();
  const std::string body = ::trialmatch::testing::ReadFile(
      Recorded("biomcp/search_phelan_limit5_20260811.json"));
  ASSERT_FALSE(body.empty());
  ASSERT_OK_AND_ASSIGN(StudyPage page, ParseStudiesPage(body));
  const nlohmann::json dom = nlohmann::json::parse(body);
  ASSERT_EQ(page.studies.size(), dom["studies"].size());
  EXPECT_EQ(page.next_page_token, dom["nextPageToken"].get<std::string>());
  ASSERT_TRUE(page.total_count.has_value());
  EXPECT_EQ(*page.total_count, dom["totalCount"].get<std::int64_t>());
  for (std::size_t i = 0; i < page.studies.size(); ++i) {
    // Exact bytes of the element: a substring of the body, equal as JSON.
    EXPECT_NE(body.find(page.studies[i]), std::string::npos);
    EXPECT_EQ(nlohmann::json::parse(page.studies[i]), dom["studies"][i]);
  }
  EXPECT_TRUE(page.csv.empty());
}

TEST(ParseStudiesPageTest, LastPageHasNoToken) {
  TM_REQUIRE_SHARED_DATA();
  ASSERT_OK_AND_ASSIGN(
      StudyPage page, ParseStudiesPage(::trialmatch::testing::ReadFile(Recorded(
                          "biomcp/search_phelan_limit50_20260811.json"))));
  EXPECT_EQ(page.studies.size(), 3u);
  EXPECT_EQ(page.next_page_token, "");
  EXPECT_EQ(page.total_count, 3);
}

TEST(ParseStudiesPageTest, PageWithoutTotal) {
  TM_REQUIRE_SHARED_DATA();
  ASSERT_OK_AND_ASSIGN(
      StudyPage page, ParseStudiesPage(::trialmatch::testing::ReadFile(Recorded(
                          "cyanheads/studies_2025-06-17T11-16-37-179Z.json"))));
  EXPECT_EQ(page.studies.size(), 2u);
  EXPECT_EQ(page.next_page_token, "NF0g5JCG");
  EXPECT_FALSE(page.total_count.has_value());
}

TEST(ParseStudiesPageTest, SmallShapes) {
  ASSERT_OK_AND_ASSIGN(StudyPage empty, ParseStudiesPage(R"({"studies":[]})"));
  EXPECT_TRUE(empty.studies.empty());
  EXPECT_EQ(empty.next_page_token, "");

  ASSERT_OK_AND_ASSIGN(
      StudyPage p,
      ParseStudiesPage(
          R"({"totalCount":0,"studies":[ {"a":"x]"} ],"nextPageToken":null,"unknown":{"b":[1]}})"));
  EXPECT_THAT(p.studies, ::testing::ElementsAre(R"({"a":"x]"})"));
  EXPECT_EQ(p.total_count, 0);
  EXPECT_EQ(p.next_page_token, "");
}

TEST(ParseStudiesPageTest, MalformedPagesAreDataLoss) {
  const char* bad[] = {
      "",
      "<!DOCTYPE html><html></html>",
      R"({"studies":[{"a":1},)",   // truncated
      R"({"studies":[{"a" 1}]})",  // bad element grammar
      R"({"studies":[1,2]})",      // elements are not objects
      R"({"studies":{}})",         // not an array
      R"({"nextPageToken":"x"})",  // no studies
      R"({"studies":[],"nextPageToken":5})",
      R"({"studies":[],"totalCount":-1})",
      R"({"studies":[],"totalCount":"12"})",
      R"({"studies":[],"totalCount":1.5})",
      R"({"studies":[],"nextPageToken" "x"})",
      R"({"studies":[],"a":tru})",  // bad member value
      R"([{"studies":[]}])",
  };
  for (const char* body : bad) {
    SCOPED_TRACE(body);
    EXPECT_THAT(ParseStudiesPage(body), StatusIs(absl::StatusCode::kDataLoss));
  }
}

TEST(ParseVersionTest, ReadsApiVersionAndTimestamp) {
  ASSERT_OK_AND_ASSIGN(
      ApiVersion v,
      ParseVersion(
          R"({"apiVersion":"2.0.3","dataTimestamp":"2024-05-30T09:00:05"})"));
  EXPECT_EQ(v.api_version, "2.0.3");
  EXPECT_EQ(v.data_timestamp, "2024-05-30T09:00:05");
  ASSERT_TRUE(v.data_time.has_value());
  EXPECT_EQ(*v.data_time,
            absl::FromCivil(absl::CivilSecond(2024, 5, 30, 9, 0, 5),
                            absl::UTCTimeZone()));

  ASSERT_OK_AND_ASSIGN(ApiVersion only,
                       ParseVersion(R"({"apiVersion":"2.0.0"})"));
  EXPECT_EQ(only.data_timestamp, "");
  EXPECT_FALSE(only.data_time.has_value());

  ASSERT_OK_AND_ASSIGN(
      ApiVersion odd,
      ParseVersion(R"({"apiVersion":"2","dataTimestamp":"yesterday"})"));
  EXPECT_EQ(odd.data_timestamp, "yesterday");
  EXPECT_FALSE(odd.data_time.has_value());

  for (const char* bad :
       {"", "[]", "{}", R"({"apiVersion":2})", "{\"apiVersion\":"}) {
    EXPECT_THAT(ParseVersion(bad), StatusIs(absl::StatusCode::kDataLoss))
        << bad;
  }
}

TEST(ValidateJsonTest, AcceptsOneValueOnly) {
  EXPECT_THAT(ValidateJson(R"( {"a":[1,2,{"b":null}]} )"), IsOk());
  EXPECT_THAT(ValidateJson("[]"), IsOk());
  EXPECT_THAT(ValidateJson(R"({"a":1} {"b":2})"),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ValidateJson(R"({"a":1)"),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("malformed JSON at byte")));
  EXPECT_THAT(ValidateJson(""), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ValidateJson("<html>"), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(StudyNctIdOfTest, FindsTheIdOrNothing) {
  EXPECT_EQ(
      StudyNctIdOf(
          R"({"protocolSection":{"identificationModule":{"nctId":"NCT01234567"}}})"),
      "NCT01234567");
  EXPECT_FALSE(StudyNctIdOf(R"({"protocolSection":[]})").has_value());
  EXPECT_FALSE(
      StudyNctIdOf(
          R"({"protocolSection":{"identificationModule":{"nctId":5}}})")
          .has_value());
  EXPECT_FALSE(StudyNctIdOf("nope").has_value());
}

}  // namespace
}  // namespace trialmatch::ctgov
