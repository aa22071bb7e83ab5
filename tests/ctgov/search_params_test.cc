#include "ctgov/search_params.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace trialmatch::ctgov {
namespace {

using ::testing::HasSubstr;
using ::trialmatch::testing::StatusIs;

TEST(UrlEncodeTest, KeepsUnreservedEncodesEverythingElse) {
  EXPECT_EQ(UrlEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(UrlEncode("lung cancer"), "lung%20cancer");
  EXPECT_EQ(UrlEncode("a+b&c=d?e#f/g%h|i,j:k"),
            "a%2Bb%26c%3Dd%3Fe%23f%2Fg%25h%7Ci%2Cj%3Ak");
  EXPECT_EQ(UrlEncode("AREA[StartDate]RANGE[2023-01-15,MAX]"),
            "AREA%5BStartDate%5DRANGE%5B2023-01-15%2CMAX%5D");
  EXPECT_EQ(UrlEncode("\"quoted\" (x)"), "%22quoted%22%20%28x%29");
  EXPECT_EQ(UrlEncode("Sjögren ≥"), "Sj%C3%B6gren%20%E2%89%A5");
  EXPECT_EQ(UrlEncode(std::string("\0\n", 2)), "%00%0A");
  EXPECT_EQ(UrlEncode(""), "");
}

TEST(QueryStringTest, SkipsEmptyValuesAndPipeJoinsLists) {
  QueryString q;
  q.Add("a", "").Add("b", "1").AddList("c", {}).AddList("d", {"x", "", "y z"});
  EXPECT_EQ(q.str(), "b=1&d=x%7Cy%20z");
}

TEST(BuildSearchQueryTest, DefaultsSendOnlyTheFormat) {
  ASSERT_OK_AND_ASSIGN(std::string q, BuildSearchQuery(SearchParams{}));
  EXPECT_EQ(q, "format=json");
}

TEST(BuildSearchQueryTest, EveryParameterInSpecOrder) {
  SearchParams p;
  p.markup_format = MarkupFormat::kLegacy;
  p.query.cond = "lung cancer";
  p.query.term = "AREA[LastUpdatePostDate]RANGE[2023-01-15,MAX]";
  p.query.locn = "Boston";
  p.query.titles = "TITAN";
  p.query.intr = "pembrolizumab";
  p.query.outc = "survival";
  p.query.spons = "NCI";
  p.query.lead = "Pfizer";
  p.query.id = "NCT01234567";
  p.query.patient = "diabetes";
  p.filter.overall_status = {"RECRUITING", "NOT_YET_RECRUITING"};
  p.filter.geo = "distance(39.0035707,-77.1013313,50mi)";
  p.filter.ids = {"NCT04852770", "NCT01728545"};
  p.filter.advanced = "AREA[StartDate]2022";
  p.filter.synonyms = {"ConditionSearch:1651367", "BasicSearch:2013558"};
  p.post_filter.overall_status = {"COMPLETED"};
  p.post_filter.geo = "distance(1,2,3km)";
  p.post_filter.ids = {"NCT02109302"};
  p.post_filter.advanced = "AREA[Phase]PHASE3";
  p.post_filter.synonyms = {"BasicSearch:1"};
  p.agg_filters = "results:with,status:com";
  p.geo_decay = "func:linear,scale:100km,offset:10km,decay:0.1";
  p.fields = {"NCTId", "BriefTitle", "OverallStatus"};
  p.sort = {"EnrollmentCount:desc", "@relevance"};
  p.count_total = true;
  p.page_size = 1000;
  p.page_token = "ZVt07cGHkvI2wRk2CJf6_LLq14bEL8swd6-r3_cfnzeRvfE";
  ASSERT_OK_AND_ASSIGN(std::string q, BuildSearchQuery(p));
  EXPECT_EQ(
      q,
      "format=json&markupFormat=legacy"
      "&query.cond=lung%20cancer"
      "&query.term=AREA%5BLastUpdatePostDate%5DRANGE%5B2023-01-15%2CMAX%5D"
      "&query.locn=Boston&query.titles=TITAN&query.intr=pembrolizumab"
      "&query.outc=survival&query.spons=NCI&query.lead=Pfizer"
      "&query.id=NCT01234567&query.patient=diabetes"
      "&filter.overallStatus=RECRUITING%7CNOT_YET_RECRUITING"
      "&filter.geo=distance%2839.0035707%2C-77.1013313%2C50mi%29"
      "&filter.ids=NCT04852770%7CNCT01728545"
      "&filter.advanced=AREA%5BStartDate%5D2022"
      "&filter.synonyms=ConditionSearch%3A1651367%7CBasicSearch%3A2013558"
      "&postFilter.overallStatus=COMPLETED"
      "&postFilter.geo=distance%281%2C2%2C3km%29"
      "&postFilter.ids=NCT02109302"
      "&postFilter.advanced=AREA%5BPhase%5DPHASE3"
      "&postFilter.synonyms=BasicSearch%3A1"
      "&aggFilters=results%3Awith%2Cstatus%3Acom"
      "&geoDecay=func%3Alinear%2Cscale%3A100km%2Coffset%3A10km%2Cdecay%3A0.1"
      "&fields=NCTId%7CBriefTitle%7COverallStatus"
      "&sort=EnrollmentCount%3Adesc%7C%40relevance"
      "&countTotal=true&pageSize=1000"
      "&pageToken=ZVt07cGHkvI2wRk2CJf6_LLq14bEL8swd6-r3_cfnzeRvfE");
}

TEST(BuildSearchQueryTest, CsvFormatOmitsMarkupFormat) {
  SearchParams p;
  p.format = SearchFormat::kCsv;
  p.markup_format = MarkupFormat::kMarkdown;
  ASSERT_OK_AND_ASSIGN(std::string q, BuildSearchQuery(p));
  EXPECT_EQ(q, "format=csv");
}

TEST(BuildSearchQueryTest, PageSizeMustBeOneToAThousand) {
  for (int ok : {1, 10, 999, 1000}) {
    SearchParams p;
    p.page_size = ok;
    ASSERT_OK_AND_ASSIGN(std::string q, BuildSearchQuery(p));
    EXPECT_THAT(q, HasSubstr("pageSize=" + std::to_string(ok)));
  }
  for (int bad : {0, -1, 1001, 1'000'000}) {
    SearchParams p;
    p.page_size = bad;
    EXPECT_THAT(BuildSearchQuery(p),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("pageSize must be in 1..1000")))
        << bad;
  }
}

TEST(FormatNameTest, NamesMatchTheSpec) {
  EXPECT_EQ(FormatName(SearchFormat::kJson), "json");
  EXPECT_EQ(FormatName(SearchFormat::kCsv), "csv");
  EXPECT_EQ(FormatName(StudyFormat::kJson), "json");
  EXPECT_EQ(FormatName(StudyFormat::kCsv), "csv");
  EXPECT_EQ(FormatName(StudyFormat::kFhirJson), "fhir.json");
  EXPECT_EQ(FormatName(StudyFormat::kRis), "ris");
}

}  // namespace
}  // namespace trialmatch::ctgov
