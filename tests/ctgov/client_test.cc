#include "ctgov/client.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/fake_clock.h"
#include "testing/fake_http_transport.h"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::ctgov {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::trialmatch::testing::FakeClock;
using ::trialmatch::testing::FakeHttpTransport;
using ::trialmatch::testing::IsOk;
using ::trialmatch::testing::StatusIs;

constexpr char kBase[] = "https://ctgov.test/api/v2";

std::string Page(std::vector<std::string> ids, std::string token = "",
                 std::optional<int> total = std::nullopt) {
  nlohmann::json page;
  page["studies"] = nlohmann::json::array();
  for (const auto& id : ids) {
    page["studies"].push_back(
        {{"protocolSection", {{"identificationModule", {{"nctId", id}}}}}});
  }
  if (!token.empty()) page["nextPageToken"] = token;
  if (total.has_value()) page["totalCount"] = *total;
  return page.dump();
}

std::string StudyJson(const std::string& id) {
  return nlohmann::json(
             {{"protocolSection", {{"identificationModule", {{"nctId", id}}}}}})
      .dump();
}

class CtgovClientTest : public ::testing::Test {
 protected:
  CtgovOptions Options() {
    CtgovOptions o;
    o.base_url = kBase;
    o.requests_per_second = 0;  // most tests look at retry sleeps only
    o.retry.max_attempts = 4;
    o.retry.initial_backoff = absl::Seconds(1);
    o.retry.max_backoff = absl::Seconds(8);
    o.random_seed = 42;
    return o;
  }
  CtgovClient Client(CtgovOptions o) {
    absl::StatusOr<CtgovClient> c =
        CtgovClient::Create(std::move(o), fake_, clock_);
    EXPECT_OK(c);
    return *std::move(c);
  }
  CtgovClient Client() { return Client(Options()); }

  std::shared_ptr<FakeHttpTransport> fake_ =
      std::make_shared<FakeHttpTransport>();
  FakeClock clock_;
};

// ---- Create ----------------------------------------------------------------

TEST_F(CtgovClientTest, CreateValidatesOptions) {
  EXPECT_THAT(
      CtgovClient::Create(Options(), nullptr, clock_),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("transport")));
  for (const char* url : {"", "ftp://x", "clinicaltrials.gov/api/v2",
                          "https://", "https://x/api?x=1"}) {
    CtgovOptions o = Options();
    o.base_url = url;
    EXPECT_THAT(
        CtgovClient::Create(o, fake_, clock_),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("base_url")))
        << url;
  }
  CtgovOptions attempts = Options();
  attempts.retry.max_attempts = 0;
  EXPECT_THAT(CtgovClient::Create(attempts, fake_, clock_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  CtgovOptions negative = Options();
  negative.timeout = absl::Seconds(-1);
  EXPECT_THAT(CtgovClient::Create(negative, fake_, clock_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  CtgovOptions multiplier = Options();
  multiplier.retry.backoff_multiplier = 0.5;
  EXPECT_THAT(CtgovClient::Create(multiplier, fake_, clock_),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(CtgovClientTest, DefaultOptionsAreThePoliteOnes) {
  const CtgovOptions o;
  EXPECT_EQ(o.base_url, "https://clinicaltrials.gov/api/v2");
  EXPECT_LE(o.requests_per_second, 1.0);
  EXPECT_GT(o.requests_per_second, 0.0);
  EXPECT_EQ(o.retry.max_retry_after, absl::Seconds(60));
  EXPECT_GE(o.retry.max_attempts, 3);
}

TEST_F(CtgovClientTest,
       TrailingSlashOfBaseUrlIsIgnoredAndRequestCarriesOptions) {
  CtgovOptions o = Options();
  o.base_url = std::string(kBase) + "/";
  o.connect_timeout = absl::Seconds(3);
  o.timeout = absl::Seconds(40);
  o.low_speed_bytes_per_second = 10;
  o.low_speed_time = absl::Seconds(7);
  o.max_response_bytes = 1234;
  fake_->Always("/version",
                FakeHttpTransport::Json(R"({"apiVersion":"2.0.3"})"));
  ASSERT_OK(Client(o).GetVersion());
  const auto requests = fake_->requests();
  ASSERT_THAT(requests, SizeIs(1));
  const HttpRequest& r = requests[0];
  EXPECT_EQ(r.url, "https://ctgov.test/api/v2/version");
  EXPECT_EQ(r.headers.Get("accept").value_or(""), "application/json");
  EXPECT_EQ(r.connect_timeout, absl::Seconds(3));
  EXPECT_EQ(r.timeout, absl::Seconds(40));
  EXPECT_EQ(r.low_speed_bytes_per_second, 10);
  EXPECT_EQ(r.low_speed_time, absl::Seconds(7));
  EXPECT_EQ(r.max_body_bytes, 1234u);
}

// ---- SearchStudies
// -----------------------------------------------------------

TEST_F(CtgovClientTest, SearchStudiesReturnsRecordedPageElementsExactly) {
  TM_REQUIRE_SHARED_DATA();
  const auto path = ::trialmatch::testing::SharedDataDir() / "ctgov_v2" /
                    "search_responses" / "biomcp" /
                    "search_melanoma_recruiting_limit3_20260811.json";
  const std::string body = ::trialmatch::testing::ReadFile(path);
  fake_->Enqueue("/studies?", FakeHttpTransport::Json(body));
  SearchParams p;
  p.query.cond = "melanoma";
  p.filter.overall_status = {"RECRUITING"};
  p.count_total = true;
  p.page_size = 3;
  ASSERT_OK_AND_ASSIGN(StudyPage page, Client().SearchStudies(p));
  const nlohmann::json dom = nlohmann::json::parse(body);
  ASSERT_EQ(page.studies.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NE(body.find(page.studies[i]), std::string::npos);
    EXPECT_EQ(nlohmann::json::parse(page.studies[i]), dom["studies"][i]);
  }
  EXPECT_EQ(page.next_page_token, dom["nextPageToken"]);
  EXPECT_EQ(page.total_count, 480);
  EXPECT_THAT(fake_->urls(),
              ElementsAre("https://ctgov.test/api/v2/studies?format=json"
                          "&query.cond=melanoma&filter.overallStatus=RECRUITING"
                          "&countTotal=true&pageSize=3"));
}

TEST_F(CtgovClientTest, SearchStudiesRejectsBadPageSizeWithoutARequest) {
  SearchParams p;
  p.page_size = 1001;
  EXPECT_THAT(
      Client().SearchStudies(p),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("pageSize")));
  EXPECT_EQ(fake_->request_count(), 0u);
}

TEST_F(CtgovClientTest, TransientFailuresOfEveryKindAreRetriedThenSucceed) {
  CtgovOptions o = Options();
  o.retry.max_attempts = 8;
  fake_->Enqueue("/studies?", FakeHttpTransport::Reply(503))
      .Enqueue("/studies?", FakeHttpTransport::Reply(429, "slow down",
                                                     {{"Retry-After", "5"}}))
      .Enqueue("/studies?", absl::UnavailableError("connection reset by peer"))
      .Enqueue("/studies?", absl::DeadlineExceededError("timeout"))
      .Enqueue("/studies?", FakeHttpTransport::Html(200))
      .Enqueue("/studies?", FakeHttpTransport::Json(R"({"studies":[{"a":1},)"))
      .Enqueue("/studies?", FakeHttpTransport::Json(Page({"NCT00000001"})));
  ASSERT_OK_AND_ASSIGN(StudyPage page, Client(o).SearchStudies({}));
  EXPECT_THAT(page.studies, SizeIs(1));
  EXPECT_EQ(fake_->request_count(), 7u);
  EXPECT_EQ(fake_->pending(), 0u);
  const auto sleeps = clock_.sleeps();
  ASSERT_EQ(sleeps.size(), 6u);
  // Backoff caps 1, 2, 4, 8, 8, 8 s; the 429's Retry-After (5 s) wins over
  // a 2 s cap.
  EXPECT_LE(sleeps[0], absl::Seconds(1));
  EXPECT_EQ(sleeps[1], absl::Seconds(5));
  EXPECT_LE(sleeps[2], absl::Seconds(4));
  EXPECT_LE(sleeps[3], absl::Seconds(8));
  EXPECT_LE(sleeps[4], absl::Seconds(8));
  EXPECT_LE(sleeps[5], absl::Seconds(8));
}

TEST_F(CtgovClientTest, PersistentServerErrorsExhaustToUnavailable) {
  fake_->Always("/studies?", FakeHttpTransport::Reply(502, "bad gateway"));
  EXPECT_THAT(
      Client().SearchStudies({}),
      StatusIs(absl::StatusCode::kUnavailable,
               AllOf(HasSubstr("GET /studies: gave up after 4 attempts"),
                     HasSubstr("HTTP 502 Bad Gateway: bad gateway"))));
  EXPECT_EQ(fake_->request_count(), 4u);
  EXPECT_EQ(clock_.sleeps().size(), 3u);
}

TEST_F(CtgovClientTest, PersistentTransportErrorsExhaustToUnavailable) {
  fake_->Always("/studies?", absl::DeadlineExceededError("stalled"));
  EXPECT_THAT(Client().SearchStudies({}),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("4 attempts"),
                             HasSubstr("DEADLINE_EXCEEDED: stalled"))));
  EXPECT_EQ(fake_->request_count(), 4u);
}

TEST_F(CtgovClientTest, PersistentHtmlPagesExhaustToUnavailable) {
  fake_->Always("/studies?", FakeHttpTransport::Html(200));
  EXPECT_THAT(Client().SearchStudies({}),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("HTML page where JSON was expected")));
  EXPECT_EQ(fake_->request_count(), 4u);
}

TEST_F(CtgovClientTest, HtmlBodyWithoutContentTypeIsDetectedToo) {
  fake_
      ->Enqueue("/version",
                FakeHttpTransport::Reply(
                    200, "\n<!DOCTYPE html><title>Maintenance</title>"))
      .Enqueue("/version",
               FakeHttpTransport::Json(R"({"apiVersion":"2.0.3"})"));
  EXPECT_OK(Client().GetVersion());
  EXPECT_EQ(fake_->request_count(), 2u);
}

TEST_F(CtgovClientTest, PersistentMalformedJsonExhaustsToDataLoss) {
  fake_->Always("/studies?",
                FakeHttpTransport::Json(R"({"studies":[{"a":1}])"));
  EXPECT_THAT(Client().SearchStudies({}),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("gave up after 4 attempts"),
                             HasSubstr("truncated"))));
  EXPECT_EQ(fake_->request_count(), 4u);
}

TEST_F(CtgovClientTest, BadRequestIsNotRetriedAndSurfacesTheUpstreamMessage) {
  fake_->Always("/studies?",
                FakeHttpTransport::Text(
                    400, "Field 'Foo' not found in fields parameter"));
  SearchParams p;
  p.query.cond = "private-query-text";
  p.fields = {"Foo"};
  const absl::StatusOr<StudyPage> page = Client().SearchStudies(p);
  EXPECT_THAT(page, StatusIs(absl::StatusCode::kInvalidArgument,
                             "GET /studies: HTTP 400 Bad Request: Field 'Foo' "
                             "not found in fields parameter"));
  // The query string (possibly patient-derived) is not in the message.
  EXPECT_THAT(std::string(page.status().message()),
              Not(HasSubstr("private-query-text")));
  EXPECT_EQ(fake_->request_count(), 1u);
  EXPECT_TRUE(clock_.sleeps().empty());
}

TEST_F(CtgovClientTest, RetryAfterIsCappedByTheOption) {
  CtgovOptions o = Options();
  o.retry.max_retry_after = absl::Seconds(20);
  o.retry.initial_backoff = absl::Milliseconds(1);
  fake_
      ->Enqueue("/version",
                FakeHttpTransport::Reply(503, "", {{"Retry-After", "3600"}}))
      .Enqueue("/version",
               FakeHttpTransport::Reply(
                   429, "",
                   {{"retry-after",
                     absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT",
                                      clock_.Now() + absl::Seconds(20 + 12),
                                      absl::UTCTimeZone())}}))
      .Enqueue("/version",
               FakeHttpTransport::Json(R"({"apiVersion":"2.0.3"})"));
  ASSERT_OK(Client(o).GetVersion());
  // 3600 s capped to 20 s; then the HTTP-date is 12 s away after that sleep.
  EXPECT_THAT(clock_.sleeps(),
              ElementsAre(absl::Seconds(20), absl::Seconds(12)));
}

TEST_F(CtgovClientTest, RateLimiterSpacesEveryRequestOfTheClient) {
  CtgovOptions o = Options();
  o.requests_per_second = 1.0;
  fake_->Always("/version",
                FakeHttpTransport::Json(R"({"apiVersion":"2.0.3"})"));
  fake_->Always("/studies/enums", FakeHttpTransport::Json("[]"));
  CtgovClient client = Client(o);
  CtgovClient copy = client;  // copies share the limiter
  ASSERT_OK(client.GetVersion());
  ASSERT_OK(copy.GetEnums());
  ASSERT_OK(client.GetVersion());
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Seconds(1), absl::Seconds(1)));
}

TEST_F(CtgovClientTest, DefaultRateIsBelowFiftyPerMinute) {
  CtgovOptions o = Options();
  o.requests_per_second = CtgovOptions().requests_per_second;
  fake_->Always("/version",
                FakeHttpTransport::Json(R"({"apiVersion":"2.0.3"})"));
  CtgovClient client = Client(o);
  for (int i = 0; i < 51; ++i) ASSERT_OK(client.GetVersion());
  // 51 requests take more than one minute.
  EXPECT_GT(clock_.Now() - absl::FromUnixSeconds(1'700'000'000),
            absl::Minutes(1));
}

TEST_F(CtgovClientTest, ConcurrentCallsAllComplete) {
  fake_->Always("/version",
                FakeHttpTransport::Json(R"({"apiVersion":"2.0.3"})"));
  fake_->Always("/stats/size",
                FakeHttpTransport::Json(R"({"totalStudies":1})"));
  CtgovOptions o = Options();
  o.requests_per_second = 100;
  CtgovClient client = Client(o);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const bool good =
            t % 2 == 0 ? client.GetVersion().ok() : client.GetStatsSize().ok();
        if (good) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 120);
  EXPECT_EQ(fake_->request_count(), 120u);
}

// ---- CSV
// ---------------------------------------------------------------------

TEST_F(CtgovClientTest, CsvSearchTakesTokenAndTotalFromHeaders) {
  const std::string csv = "NCT Number,Study Title\nNCT00000001,\"A, b\"\n";
  fake_->Enqueue("format=csv",
                 FakeHttpTransport::Reply(200, csv,
                                          {{"Content-Type", "text/csv"},
                                           {"X-Next-Page-Token", "tok2"},
                                           {"x-total-count", "1234"}}));
  SearchParams p;
  p.format = SearchFormat::kCsv;
  p.count_total = true;
  ASSERT_OK_AND_ASSIGN(StudyPage page, Client().SearchStudies(p));
  EXPECT_EQ(page.csv, csv);
  EXPECT_TRUE(page.studies.empty());
  EXPECT_EQ(page.next_page_token, "tok2");
  EXPECT_EQ(page.total_count, 1234);
  EXPECT_EQ(fake_->requests()[0].headers.Get("Accept").value_or(""),
            "text/csv");
}

TEST_F(CtgovClientTest, CsvLastPageAndBadTotalHeader) {
  fake_->Enqueue("format=csv", FakeHttpTransport::Reply(200, "NCT Number\n"));
  SearchParams p;
  p.format = SearchFormat::kCsv;
  ASSERT_OK_AND_ASSIGN(StudyPage last, Client().SearchStudies(p));
  EXPECT_EQ(last.next_page_token, "");
  EXPECT_FALSE(last.total_count.has_value());

  fake_->Always("format=csv", FakeHttpTransport::Reply(
                                  200, "x\n", {{"x-total-count", "many"}}));
  EXPECT_THAT(Client().SearchStudies(p), StatusIs(absl::StatusCode::kDataLoss,
                                                  HasSubstr("x-total-count")));
}

// ---- GetStudy
// ------------------------------------------------------------------

TEST_F(CtgovClientTest, GetStudyValidatesTheIdBeforeAnyRequest) {
  for (const char* bad : {"", "NCT1234567", "nct01234567", "NCT012345678",
                          "NCT0123456X", "../version", "NCT01234567?x=1"}) {
    EXPECT_THAT(Client().GetStudy(bad),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
  EXPECT_EQ(fake_->request_count(), 0u);
}

TEST_F(CtgovClientTest, GetStudyReturnsTheRecordAsSent) {
  TM_REQUIRE_SHARED_DATA();
  const std::string body = ::trialmatch::testing::ReadFile(
      ::trialmatch::testing::StudiesDir() / "NCT00184067.json");
  ASSERT_FALSE(body.empty());
  fake_->Enqueue("/studies/NCT00184067", FakeHttpTransport::Json(body));
  ASSERT_OK_AND_ASSIGN(StudyRecord r, Client().GetStudy("NCT00184067"));
  EXPECT_EQ(r.body, body);
  EXPECT_EQ(r.nct_id, "NCT00184067");
  EXPECT_EQ(r.requested_id, "NCT00184067");
  EXPECT_FALSE(r.redirected);
  EXPECT_THAT(
      fake_->urls(),
      ElementsAre("https://ctgov.test/api/v2/studies/NCT00184067?format=json"));
}

TEST_F(CtgovClientTest, GetStudyFromTheRecordedCorpus) {
  TM_REQUIRE_SHARED_DATA();
  fake_->ServeStudyFiles(::trialmatch::testing::StudiesDir());
  CtgovClient client = Client();
  for (const char* id : {"NCT00000410", "NCT05814159", "NCT02513394"}) {
    ASSERT_OK_AND_ASSIGN(StudyRecord r, client.GetStudy(id));
    EXPECT_EQ(r.nct_id, id);
    EXPECT_EQ(r.body, ::trialmatch::testing::ReadFile(
                          ::trialmatch::testing::StudiesDir() /
                          (std::string(id) + ".json")));
  }
  EXPECT_THAT(
      client.GetStudy("NCT00000001"),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("Study not found")));
}

TEST_F(CtgovClientTest, GetStudyFieldsAndFormats) {
  fake_->Always("/studies/NCT00000001?format=csv",
                FakeHttpTransport::Reply(200, "NCT Number\nNCT00000001\n",
                                         {{"Content-Type", "text/csv"}}));
  fake_->Always("/studies/NCT00000001?format=fhir.json",
                FakeHttpTransport::Json(R"({"resourceType":"ResearchStudy"})"));
  fake_->Always("/studies/NCT00000001?format=ris",
                FakeHttpTransport::Reply(200, "TY  - CTR\nER  - \n"));
  fake_->Always("/studies/NCT00000001?format=json",
                FakeHttpTransport::Json(R"({"protocolSection":{}})"));
  GetStudyOptions csv{.format = StudyFormat::kCsv,
                      .fields = {"NCTId", "BriefTitle"}};
  ASSERT_OK_AND_ASSIGN(StudyRecord c, Client().GetStudy("NCT00000001", csv));
  EXPECT_EQ(c.body, "NCT Number\nNCT00000001\n");
  GetStudyOptions fhir;
  fhir.format = StudyFormat::kFhirJson;
  ASSERT_OK_AND_ASSIGN(StudyRecord f, Client().GetStudy("NCT00000001", fhir));
  EXPECT_EQ(f.nct_id, "NCT00000001");
  GetStudyOptions ris;
  ris.format = StudyFormat::kRis;
  ASSERT_OK(Client().GetStudy("NCT00000001", ris));
  GetStudyOptions legacy{.markup_format = MarkupFormat::kLegacy,
                         .fields = {"ConditionsModule", "EligibilityModule"}};
  ASSERT_OK(Client().GetStudy("NCT00000001", legacy));
  EXPECT_THAT(
      fake_->urls(),
      ElementsAre(
          "https://ctgov.test/api/v2/studies/"
          "NCT00000001?format=csv&fields=NCTId%7CBriefTitle",
          "https://ctgov.test/api/v2/studies/NCT00000001?format=fhir.json",
          "https://ctgov.test/api/v2/studies/NCT00000001?format=ris",
          "https://ctgov.test/api/v2/studies/"
          "NCT00000001?format=json&markupFormat=legacy"
          "&fields=ConditionsModule%7CEligibilityModule"));
}

TEST_F(CtgovClientTest, GetStudyNotFoundIsNotRetried) {
  fake_->Always("/studies/NCT09999999",
                FakeHttpTransport::Text(404, "Study not found: NCT09999999"));
  EXPECT_THAT(
      Client().GetStudy("NCT09999999"),
      StatusIs(absl::StatusCode::kNotFound,
               "GET /studies/NCT09999999: HTTP 404 Not Found: Study not "
               "found: NCT09999999"));
  EXPECT_EQ(fake_->request_count(), 1u);
}

TEST_F(CtgovClientTest, GetStudyFollowsOneAliasRedirectToItsOwnBaseUrl) {
  // The Location points elsewhere; only the id is taken from it.
  fake_->Enqueue(
      "/studies/NCT00000001",
      FakeHttpTransport::Reply(
          301, "",
          {{"Location",
            "https://elsewhere.example/api/v2/studies/NCT00000002?x=1"}}));
  fake_->Enqueue("/studies/NCT00000002",
                 FakeHttpTransport::Json(StudyJson("NCT00000002")));
  ASSERT_OK_AND_ASSIGN(StudyRecord r, Client().GetStudy("NCT00000001"));
  EXPECT_EQ(r.requested_id, "NCT00000001");
  EXPECT_EQ(r.nct_id, "NCT00000002");
  EXPECT_TRUE(r.redirected);
  EXPECT_EQ(r.body, StudyJson("NCT00000002"));
  EXPECT_THAT(
      fake_->urls(),
      ElementsAre("https://ctgov.test/api/v2/studies/NCT00000001?format=json",
                  "https://ctgov.test/api/v2/studies/NCT00000002?format=json"));
}

TEST_F(CtgovClientTest, GetStudyRelativeLocationAndRetriedTarget) {
  fake_->Enqueue("/studies/NCT00000001",
                 FakeHttpTransport::Reply(
                     301, "", {{"location", "/api/v2/studies/nct00000003"}}));
  fake_->Enqueue("/studies/NCT00000003", FakeHttpTransport::Reply(503));
  fake_->Enqueue("/studies/NCT00000003",
                 FakeHttpTransport::Json(StudyJson("NCT00000003")));
  ASSERT_OK_AND_ASSIGN(StudyRecord r, Client().GetStudy("NCT00000001"));
  EXPECT_EQ(r.nct_id, "NCT00000003");
  EXPECT_EQ(fake_->request_count(), 3u);
}

TEST_F(CtgovClientTest, GetStudyRedirectErrors) {
  fake_->Enqueue(
      "/studies/NCT00000001",
      FakeHttpTransport::Reply(301, "", {{"Location", "/api/v2/studies/"}}));
  EXPECT_THAT(Client().GetStudy("NCT00000001"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("Location")));
  fake_->Enqueue("/studies/NCT00000001", FakeHttpTransport::Reply(301));
  EXPECT_THAT(Client().GetStudy("NCT00000001"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("Location")));

  fake_->Enqueue("/studies/NCT00000001",
                 FakeHttpTransport::Reply(
                     301, "", {{"Location", "/studies/NCT00000002"}}));
  fake_->Enqueue("/studies/NCT00000002",
                 FakeHttpTransport::Reply(
                     301, "", {{"Location", "/studies/NCT00000001"}}));
  EXPECT_THAT(Client().GetStudy("NCT00000001"),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("only one redirect is followed")));
  // A redirect where none is expected is an error, not followed.
  fake_->Enqueue("/version",
                 FakeHttpTransport::Reply(301, "", {{"Location", "/v3"}}));
  EXPECT_THAT(
      Client().GetVersion(),
      StatusIs(absl::StatusCode::kUnknown, HasSubstr("unexpected redirect")));
  EXPECT_EQ(fake_->pending(), 0u);
}

TEST_F(CtgovClientTest,
       GetStudyReportsTheRecordsOwnIdWhenTheServerResolvedAnAlias) {
  fake_->Enqueue("/studies/NCT00000001",
                 FakeHttpTransport::Json(StudyJson("NCT00000009")));
  ASSERT_OK_AND_ASSIGN(StudyRecord r, Client().GetStudy("NCT00000001"));
  EXPECT_EQ(r.nct_id, "NCT00000009");
  EXPECT_FALSE(r.redirected);
}

TEST_F(CtgovClientTest, GetStudyMalformedJsonIsRetried) {
  fake_
      ->Enqueue("/studies/NCT00000001",
                FakeHttpTransport::Json("{\"protocolSection\":"))
      .Enqueue("/studies/NCT00000001",
               FakeHttpTransport::Json(StudyJson("NCT00000001")));
  ASSERT_OK(Client().GetStudy("NCT00000001"));
  EXPECT_EQ(fake_->request_count(), 2u);
}

// ---- The other endpoints
// ---------------------------------------------------------

TEST_F(CtgovClientTest, MetadataSearchAreasEnumsStatsAndVersion) {
  TM_REQUIRE_SHARED_DATA();
  const auto endpoints =
      ::trialmatch::testing::SharedDataDir() / "ctgov_v2" / "endpoints";
  const std::string metadata = ::trialmatch::testing::ReadFile(
      endpoints / "studies_metadata_2025-05_metamonk.json");
  const std::string areas = ::trialmatch::testing::ReadFile(
      endpoints / "studies_search-areas_2025-05_metamonk.json");
  ASSERT_FALSE(metadata.empty());
  fake_->Enqueue("/studies/metadata", FakeHttpTransport::Json(metadata))
      .Enqueue("/studies/metadata", FakeHttpTransport::Json(metadata))
      .Enqueue("/studies/search-areas", FakeHttpTransport::Json(areas))
      .Enqueue("/studies/enums",
               FakeHttpTransport::Json(
                   R"([{"type":"Status","pieces":[],"values":[]}])"))
      .Enqueue(
          "/stats/size",
          FakeHttpTransport::Json(
              R"({"averageSizeBytes":1,"largestStudies":[],"percentiles":{},"ranges":[],"totalStudies":2})"))
      .Enqueue("/stats/field/values", FakeHttpTransport::Json("[]"))
      .Enqueue("/stats/field/sizes", FakeHttpTransport::Json("[]"))
      .Enqueue(
          "/version",
          FakeHttpTransport::Json(
              R"({"apiVersion":"2.0.3","dataTimestamp":"2025-06-17T09:00:05"})"));
  CtgovClient client = Client();
  ASSERT_OK_AND_ASSIGN(std::string m, client.GetStudiesMetadata());
  EXPECT_EQ(m, metadata);
  ASSERT_OK(client.GetStudiesMetadata(true, true));
  ASSERT_OK_AND_ASSIGN(std::string a, client.GetSearchAreas());
  EXPECT_EQ(a, areas);
  ASSERT_OK(client.GetEnums());
  ASSERT_OK_AND_ASSIGN(std::string size, client.GetStatsSize());
  EXPECT_THAT(size, HasSubstr("totalStudies"));
  ASSERT_OK(client.GetFieldValuesStats({"ENUM", "BOOLEAN"}, {"Phase"}));
  ASSERT_OK(client.GetListFieldSizes({"Condition", "Intervention"}));
  ASSERT_OK_AND_ASSIGN(CtgovClient::Version v, client.GetVersion());
  EXPECT_EQ(v.parsed.api_version, "2.0.3");
  EXPECT_EQ(v.parsed.data_timestamp, "2025-06-17T09:00:05");
  EXPECT_THAT(v.json, HasSubstr("dataTimestamp"));
  EXPECT_THAT(
      fake_->urls(),
      ElementsAre(
          "https://ctgov.test/api/v2/studies/metadata",
          "https://ctgov.test/api/v2/studies/metadata?includeIndexedOnly=true"
          "&includeHistoricOnly=true",
          "https://ctgov.test/api/v2/studies/search-areas",
          "https://ctgov.test/api/v2/studies/enums",
          "https://ctgov.test/api/v2/stats/size",
          "https://ctgov.test/api/v2/stats/field/values?types=ENUM%7CBOOLEAN"
          "&fields=Phase",
          "https://ctgov.test/api/v2/stats/field/"
          "sizes?fields=Condition%7CIntervention",
          "https://ctgov.test/api/v2/version"));
}

TEST_F(CtgovClientTest, VersionWithoutApiVersionIsRetriedThenDataLoss) {
  fake_->Always("/version",
                FakeHttpTransport::Json(R"({"dataTimestamp":"x"})"));
  EXPECT_THAT(Client().GetVersion(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("apiVersion")));
  EXPECT_EQ(fake_->request_count(), 4u);
}

// ---- ForEachPage
// -------------------------------------------------------------

TEST_F(CtgovClientTest, ForEachPageFollowsTokensAndSendsCountTotalOnce) {
  fake_
      ->Enqueue("/studies?", FakeHttpTransport::Json(
                                 Page({"NCT00000001", "NCT00000002"}, "t1", 5)))
      .Enqueue("pageToken=t1", FakeHttpTransport::Json(
                                   Page({"NCT00000003", "NCT00000004"}, "t2")))
      .Enqueue("pageToken=t2", FakeHttpTransport::Json(Page({"NCT00000005"})));
  SearchParams p;
  p.filter.overall_status = {"RECRUITING"};
  p.count_total = true;
  p.page_size = 2;
  std::vector<std::string> ids;
  ASSERT_OK_AND_ASSIGN(PagingSummary s,
                       Client().ForEachPage(p, {}, [&](StudyPage& page) {
                         for (auto& study : page.studies)
                           ids.push_back(*StudyNctIdOf(study));
                         return absl::OkStatus();
                       }));
  EXPECT_THAT(ids, ElementsAre("NCT00000001", "NCT00000002", "NCT00000003",
                               "NCT00000004", "NCT00000005"));
  EXPECT_EQ(s.pages, 3);
  EXPECT_EQ(s.studies, 5);
  EXPECT_EQ(s.total_count, 5);
  EXPECT_TRUE(s.complete);
  EXPECT_EQ(s.next_page_token, "");
  EXPECT_THAT(fake_->urls(),
              ElementsAre("https://ctgov.test/api/v2/"
                          "studies?format=json&filter.overallStatus=RECRUITING"
                          "&countTotal=true&pageSize=2",
                          "https://ctgov.test/api/v2/"
                          "studies?format=json&filter.overallStatus=RECRUITING"
                          "&pageSize=2&pageToken=t1",
                          "https://ctgov.test/api/v2/"
                          "studies?format=json&filter.overallStatus=RECRUITING"
                          "&pageSize=2&pageToken=t2"));
}

TEST_F(CtgovClientTest, ForEachPageStopsOnALoopingToken) {
  fake_->Enqueue("/studies?",
                 FakeHttpTransport::Json(Page({"NCT00000001"}, "a")));
  fake_->Enqueue("pageToken=a",
                 FakeHttpTransport::Json(Page({"NCT00000002"}, "b")));
  // From here on the server keeps answering token "a" again.
  fake_->Always("pageToken=b",
                FakeHttpTransport::Json(Page({"NCT00000003"}, "a")));
  int pages = 0;
  EXPECT_THAT(Client().ForEachPage({}, {},
                                   [&](StudyPage&) {
                                     ++pages;
                                     return absl::OkStatus();
                                   }),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("repeated a page token after 3 pages")));
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(fake_->request_count(), 3u);
}

TEST_F(CtgovClientTest, ForEachPageResumesFromAToken) {
  fake_->Enqueue("pageToken=resume",
                 FakeHttpTransport::Json(Page({"NCT00000001"}, "resume")));
  SearchParams p;
  p.page_token = "resume";
  EXPECT_THAT(
      Client().ForEachPage(p, {}, [](StudyPage&) { return absl::OkStatus(); }),
      StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(fake_->request_count(), 1u);
}

TEST_F(CtgovClientTest, ForEachPageLimitsReturnWhereToResume) {
  // Rules match in order: the more specific one first.
  fake_->Always("pageToken=t1", FakeHttpTransport::Json(Page(
                                    {"NCT00000003", "NCT00000004"}, "t2")));
  fake_->Always("/studies?", FakeHttpTransport::Json(
                                 Page({"NCT00000001", "NCT00000002"}, "t1")));
  auto ignore = [](StudyPage&) { return absl::OkStatus(); };
  PagingOptions one_page{.max_pages = 1};
  ASSERT_OK_AND_ASSIGN(PagingSummary a,
                       Client().ForEachPage({}, one_page, ignore));
  EXPECT_EQ(a.pages, 1);
  EXPECT_FALSE(a.complete);
  EXPECT_EQ(a.next_page_token, "t1");

  PagingOptions three_studies{.max_studies = 3};
  ASSERT_OK_AND_ASSIGN(PagingSummary b,
                       Client().ForEachPage({}, three_studies, ignore));
  EXPECT_EQ(b.pages, 2);  // the page crossing the limit is delivered whole
  EXPECT_EQ(b.studies, 4);
  EXPECT_EQ(b.next_page_token, "t2");
}

TEST_F(CtgovClientTest, ForEachPageCancellationAndCallbackErrors) {
  fake_->Enqueue("pageToken=t2", FakeHttpTransport::Text(400, "bad token"));
  fake_->Always("pageToken=t1",
                FakeHttpTransport::Json(Page({"NCT00000002"}, "t2")));
  fake_->Always("/studies?",
                FakeHttpTransport::Json(Page({"NCT00000001"}, "t1")));
  std::atomic<bool> cancelled{false};
  PagingOptions paging{.cancelled = &cancelled};
  int pages = 0;
  EXPECT_THAT(
      Client().ForEachPage({}, paging,
                           [&](StudyPage&) {
                             if (++pages == 2) cancelled = true;
                             return absl::OkStatus();
                           }),
      StatusIs(absl::StatusCode::kCancelled, HasSubstr("after 2 pages")));
  EXPECT_EQ(pages, 2);

  EXPECT_THAT(
      Client().ForEachPage(
          {}, {}, [](StudyPage&) { return absl::AbortedError("store full"); }),
      StatusIs(absl::StatusCode::kAborted, "store full"));

  EXPECT_THAT(
      Client().ForEachPage({}, {}, [](StudyPage&) { return absl::OkStatus(); }),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad token")));
}

TEST_F(CtgovClientTest, ForEachPageOverRecordedPhelanPages) {
  TM_REQUIRE_SHARED_DATA();
  const auto dir = ::trialmatch::testing::SharedDataDir() / "ctgov_v2" /
                   "search_responses" / "biomcp";
  const std::string first = ::trialmatch::testing::ReadFile(
      dir / "search_phelan_limit5_20260811.json");
  const std::string next =
      ::trialmatch::testing::ReadFile(dir / "search_phelan_next_20260811.json");
  const std::string token =
      nlohmann::json::parse(first)["nextPageToken"].get<std::string>();
  fake_->Enqueue("/studies?", FakeHttpTransport::Json(first));
  fake_->Enqueue("pageToken=" + UrlEncode(token),
                 FakeHttpTransport::Json(next));
  PagingOptions two{.max_pages = 2};
  std::int64_t studies = 0;
  ASSERT_OK_AND_ASSIGN(
      PagingSummary s, Client().ForEachPage({}, two, [&](StudyPage& page) {
        studies += static_cast<std::int64_t>(page.studies.size());
        for (const auto& study : page.studies) {
          EXPECT_TRUE(StudyNctIdOf(study).has_value());
        }
        return absl::OkStatus();
      }));
  EXPECT_EQ(s.pages, 2);
  EXPECT_EQ(studies, 10);
  EXPECT_EQ(s.total_count, 21);
  EXPECT_EQ(s.next_page_token,
            nlohmann::json::parse(next)["nextPageToken"].get<std::string>());
}

}  // namespace
}  // namespace trialmatch::ctgov
