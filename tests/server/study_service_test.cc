// StudyService through a real generated stub on an in-process channel: the
// store on a temp file, ClinicalTrials.gov scripted with FakeHttpTransport,
// time from a FakeClock (retries and ages never wait).
#include "server/study_service.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "criteria/compiler.h"
#include "criteria/criteria_test_util.h"
#include "criteria/json.h"
#include "ctgov/client.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/call_context.h"
#include "server/criteria_convert.h"
#include "server/grpc_server.h"
#include "server/upstream_monitor.h"
#include "store/study_store.h"
#include "testing/fake_clock.h"
#include "testing/fake_http_transport.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::server {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;
using ::trialmatch::testing::FakeClock;
using ::trialmatch::testing::FakeHttpTransport;
using ::trialmatch::testing::ReadFile;
using ::trialmatch::testing::RecordedIds;
using ::trialmatch::testing::StudiesDir;
using ::trialmatch::testing::TempDir;

constexpr char kStudy[] = "NCT04280705";  // recorded, COMPLETED

std::string StudyFile(const std::string& id) {
  return ReadFile(StudiesDir() / (id + ".json"));
}

// The value of query parameter `key` in `url` ("" when absent).
std::string Param(const std::string& url, const std::string& key) {
  const std::size_t q = url.find('?');
  if (q == std::string::npos) return "";
  for (std::size_t at = q + 1; at < url.size();) {
    std::size_t end = url.find('&', at);
    if (end == std::string::npos) end = url.size();
    const std::string pair = url.substr(at, end - at);
    if (pair.compare(0, key.size() + 1, key + "=") == 0) {
      return pair.substr(key.size() + 1);
    }
    at = end + 1;
  }
  return "";
}

// GET /studies over `bodies` (study JSON texts) in order: pageSize from the
// URL (default 10), pageToken "o<offset>", totalCount with countTotal=true.
FakeHttpTransport::Handler PagesOver(std::vector<std::string> bodies) {
  return [bodies = std::move(bodies)](const ctgov::HttpRequest& request)
             -> absl::StatusOr<ctgov::HttpResponse> {
    int size = 10;
    if (std::string p = Param(request.url, "pageSize"); !p.empty()) {
      EXPECT_TRUE(absl::SimpleAtoi(p, &size));
    }
    std::size_t offset = 0;
    if (std::string t = Param(request.url, "pageToken"); !t.empty()) {
      if (t[0] != 'o' || !absl::SimpleAtoi(t.substr(1), &offset)) {
        return FakeHttpTransport::Text(400, "bad pageToken");
      }
    }
    std::vector<std::string> page;
    for (std::size_t i = offset;
         i < bodies.size() && i < offset + static_cast<std::size_t>(size);
         ++i) {
      page.push_back(bodies[i]);
    }
    std::string body =
        absl::StrCat("{\"studies\":[", absl::StrJoin(page, ","), "]");
    if (offset + size < bodies.size()) {
      absl::StrAppend(&body, ",\"nextPageToken\":\"o", offset + size, "\"");
    }
    if (Param(request.url, "countTotal") == "true") {
      absl::StrAppend(&body, ",\"totalCount\":", bodies.size());
    }
    return FakeHttpTransport::Json(body + "}");
  };
}

std::vector<std::string> Bodies(const std::vector<std::string>& ids) {
  std::vector<std::string> out;
  for (const std::string& id : ids) out.push_back(StudyFile(id));
  return out;
}

std::vector<std::string> Ids(const v1::SearchStudiesResponse& r) {
  std::vector<std::string> ids;
  for (const v1::Study& s : r.studies()) ids.push_back(s.nct_id());
  return ids;
}

int CountUrls(const FakeHttpTransport& http, const std::string& part) {
  int n = 0;
  for (const std::string& url : http.urls()) {
    if (url.find(part) != std::string::npos) ++n;
  }
  return n;
}

class StudyServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { TM_REQUIRE_SHARED_DATA(); }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    if (service_ != nullptr) service_->Shutdown();
  }

  // Builds store, backend, service and an in-process server. Script http_
  // before calling (the client may be used at once).
  void Start(StudyBackendOptions options = {}, bool offline = false,
             bool attach_store = true) {
    store::StoreOptions store_options;
    store_options.clock = &clock_;
    absl::StatusOr<std::unique_ptr<store::StudyStore>> opened =
        store::StudyStore::Open(dir_.File("studies.db").string(),
                                store_options);
    ASSERT_OK(opened);
    store_ = *std::move(opened);
    std::optional<ctgov::CtgovClient> upstream;
    if (!offline) {
      ctgov::CtgovOptions o;
      o.base_url = "http://ctgov.test/api/v2";
      o.requests_per_second = 0;
      o.retry.max_attempts = 3;
      o.random_seed = 1;
      // As in production: the transport honours the call's token.
      absl::StatusOr<ctgov::CtgovClient> client = ctgov::CtgovClient::Create(
          o, std::make_shared<CallAwareTransport>(http_), clock_);
      ASSERT_OK(client);
      upstream = *std::move(client);
    }
    if (options.server_version.empty()) options.server_version = "test";
    backend_ =
        std::make_shared<StudyBackend>(options, upstream, &monitor_, clock_);
    if (attach_store) backend_->AttachStore(store_);
    service_ = std::make_unique<StudyService>(backend_);
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::StudyService::NewStub(
        server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void Seed(const std::vector<std::string>& ids) {
    std::vector<store::StudyRecord> batch;
    for (const std::string& id : ids) {
      absl::StatusOr<store::StudyRecord> r =
          store::MakeStudyRecord(StudyFile(id));
      ASSERT_OK(r);
      batch.push_back(*std::move(r));
    }
    ASSERT_OK(store_->UpsertStudies(batch));
  }

  grpc::Status GetStudy(const v1::GetStudyRequest& request,
                        v1::GetStudyResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    return stub_->GetStudy(&context, request, response);
  }
  grpc::Status GetStudy(const std::string& id, v1::GetStudyResponse* response) {
    v1::GetStudyRequest request;
    request.set_nct_id(id);
    return GetStudy(request, response);
  }
  grpc::Status Search(const v1::SearchStudiesRequest& request,
                      v1::SearchStudiesResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    return stub_->SearchStudies(&context, request, response);
  }
  // Reads a whole ListAllStudies stream.
  grpc::Status ListAll(const v1::ListAllStudiesRequest& request,
                       std::vector<v1::ListAllStudiesResponse>* out) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    auto reader = stub_->ListAllStudies(&context, request);
    v1::ListAllStudiesResponse message;
    while (reader->Read(&message)) out->push_back(message);
    return reader->Finish();
  }

  FakeClock clock_;
  TempDir dir_;
  std::shared_ptr<FakeHttpTransport> http_ =
      std::make_shared<FakeHttpTransport>();
  UpstreamMonitor monitor_{{.retry_interval = absl::Seconds(30)}, clock_};
  std::shared_ptr<store::StudyStore> store_;
  std::shared_ptr<StudyBackend> backend_;
  std::unique_ptr<StudyService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::StudyService::Stub> stub_;
};

// --- GetStudy ------------------------------------------------------------

TEST_F(StudyServiceTest, GetStudyFetchesUpstreamWritesBackThenServesCache) {
  http_->ServeStudyFiles(StudiesDir());
  Start();
  const std::string recorded = StudyFile(kStudy);

  v1::GetStudyResponse first;
  ASSERT_TRUE(GetStudy(kStudy, &first).ok());
  EXPECT_EQ(first.freshness().source(), v1::DATA_SOURCE_UPSTREAM);
  EXPECT_FALSE(first.freshness().upstream_unavailable());
  EXPECT_EQ(first.study().nct_id(), kStudy);
  EXPECT_EQ(first.study().overall_status(), "COMPLETED");
  EXPECT_EQ(first.study().record_json(), recorded);
  EXPECT_EQ(http_->request_count(), 1u);
  ASSERT_OK_AND_ASSIGN(store::StoredStudy stored, store_->GetStudy(kStudy));
  EXPECT_EQ(stored.fetched_at, clock_.Now());
  EXPECT_EQ(stored.raw_json, recorded);

  clock_.Advance(absl::Minutes(5));
  v1::GetStudyResponse second;
  ASSERT_TRUE(GetStudy(kStudy, &second).ok());
  EXPECT_EQ(second.freshness().source(), v1::DATA_SOURCE_CACHE);
  EXPECT_EQ(second.freshness().age().seconds(), 300);
  EXPECT_FALSE(second.freshness().upstream_unavailable());
  EXPECT_EQ(second.study().SerializeAsString(),
            first.study().SerializeAsString());
  EXPECT_EQ(http_->request_count(), 1u);  // no upstream call
}

// The typed fields of a cache hit always match the stored record, also after
// the record changed (the typed-field cache is keyed by content hash).
TEST_F(StudyServiceTest, CacheHitsFollowChangesOfTheStoredRecord) {
  Start({}, /*offline=*/true);
  Seed({kStudy});
  v1::GetStudyResponse r;
  ASSERT_TRUE(GetStudy(kStudy, &r).ok());
  ASSERT_TRUE(GetStudy(kStudy, &r).ok());  // typed fields now cached
  const std::string old_title = r.study().brief_title();

  nlohmann::json j = nlohmann::json::parse(StudyFile(kStudy));
  j["protocolSection"]["identificationModule"]["briefTitle"] = "Renamed";
  j["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING";
  ASSERT_OK_AND_ASSIGN(store::StudyRecord changed,
                       store::MakeStudyRecord(j.dump()));
  ASSERT_OK(store_->UpsertStudies({changed}));
  ASSERT_TRUE(GetStudy(kStudy, &r).ok());
  EXPECT_NE(old_title, "Renamed");
  EXPECT_EQ(r.study().brief_title(), "Renamed");
  EXPECT_EQ(r.study().overall_status(), "RECRUITING");
  EXPECT_EQ(r.study().record_json(), j.dump());
}

TEST_F(StudyServiceTest, GetStudyMaxCacheAgeAndPerRequestOverride) {
  http_->ServeStudyFiles(StudiesDir());
  StudyBackendOptions options;
  options.max_cache_age = absl::Hours(24);
  Start(options);
  v1::GetStudyResponse r;
  ASSERT_TRUE(GetStudy(kStudy, &r).ok());
  ASSERT_EQ(http_->request_count(), 1u);

  clock_.Advance(absl::Hours(2));
  ASSERT_TRUE(GetStudy(kStudy, &r).ok());  // 2 h < 24 h
  EXPECT_EQ(r.freshness().source(), v1::DATA_SOURCE_CACHE);

  v1::GetStudyRequest strict;
  strict.set_nct_id(kStudy);
  strict.set_max_cache_age_seconds(3600);  // 2 h > 1 h: refetch
  ASSERT_TRUE(GetStudy(strict, &r).ok());
  EXPECT_EQ(r.freshness().source(), v1::DATA_SOURCE_UPSTREAM);
  EXPECT_EQ(http_->request_count(), 2u);

  strict.set_max_cache_age_seconds(0);  // 0 forces upstream, even when fresh
  ASSERT_TRUE(GetStudy(strict, &r).ok());
  EXPECT_EQ(r.freshness().source(), v1::DATA_SOURCE_UPSTREAM);
  EXPECT_EQ(http_->request_count(), 3u);

  clock_.Advance(absl::Hours(25));  // past the server's maximum
  ASSERT_TRUE(GetStudy(kStudy, &r).ok());
  EXPECT_EQ(r.freshness().source(), v1::DATA_SOURCE_UPSTREAM);
  EXPECT_EQ(http_->request_count(), 4u);

  v1::GetStudyRequest lenient;
  lenient.set_nct_id(kStudy);
  lenient.set_max_cache_age_seconds(10 * 24 * 3600);
  clock_.Advance(absl::Hours(48));
  ASSERT_TRUE(GetStudy(lenient, &r).ok());
  EXPECT_EQ(r.freshness().source(), v1::DATA_SOURCE_CACHE);
  EXPECT_EQ(r.freshness().age().seconds(), 48 * 3600);
  EXPECT_EQ(http_->request_count(), 4u);
}

TEST_F(StudyServiceTest, GetStudyUpstreamDownServesTheStoredCopyFlagged) {
  for (int i = 0; i < 3; ++i) {
    http_->Enqueue("/studies/NCT", FakeHttpTransport::Reply(503, "busy"));
  }
  Start();
  Seed({kStudy});
  clock_.Advance(absl::Hours(72));  // stale by any maximum age

  v1::GetStudyResponse r;
  ASSERT_TRUE(GetStudy(kStudy, &r).ok());
  EXPECT_EQ(r.freshness().source(), v1::DATA_SOURCE_CACHE);
  EXPECT_TRUE(r.freshness().upstream_unavailable());
  EXPECT_GE(r.freshness().age().seconds(), 72 * 3600);
  EXPECT_THAT(r.freshness().note(), HasSubstr("unavailable"));
  EXPECT_EQ(r.study().record_json(), StudyFile(kStudy));
  EXPECT_EQ(http_->request_count(), 3u);  // bounded retries
  EXPECT_FALSE(monitor_.up());

  // While the circuit is open, requests do not wait for the upstream.
  ASSERT_TRUE(GetStudy(kStudy, &r).ok());
  EXPECT_TRUE(r.freshness().upstream_unavailable());
  EXPECT_THAT(r.freshness().note(), HasSubstr("unreachable since"));
  EXPECT_EQ(http_->request_count(), 3u);

  // After the retry interval one request tries again, and it works now.
  http_->ServeStudyFiles(StudiesDir());
  clock_.Advance(absl::Seconds(31));
  ASSERT_TRUE(GetStudy(kStudy, &r).ok());
  EXPECT_EQ(r.freshness().source(), v1::DATA_SOURCE_UPSTREAM);
  EXPECT_TRUE(monitor_.up());
}

TEST_F(StudyServiceTest, GetStudyUpstreamDownAndNothingCachedIsUnavailable) {
  http_->Always("/studies/NCT", absl::UnavailableError("connection refused"));
  Start();
  v1::GetStudyResponse r;
  const grpc::Status s = GetStudy(kStudy, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr("not in the local store"),
                                       HasSubstr("ClinicalTrials.gov")));
}

TEST_F(StudyServiceTest, GetStudyUnknownStudyIsNotFoundWithoutRetries) {
  http_->ServeStudyFiles(StudiesDir());
  Start();
  v1::GetStudyResponse r;
  const grpc::Status s = GetStudy("NCT99999999", &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("NCT99999999"));
  EXPECT_EQ(http_->request_count(), 1u);
  EXPECT_TRUE(monitor_.up());  // an answer, not an outage
}

TEST_F(StudyServiceTest, GetStudyValidatesBeforeAnyUpstreamCall) {
  http_->ServeStudyFiles(StudiesDir());
  Start();
  v1::GetStudyResponse r;
  for (const std::string bad :
       {"", "NCT123", "NCT012345678", "ABC01234567", "NCT0428070x", "04280705",
        "NCT04280705; DROP TABLE studies"}) {
    SCOPED_TRACE(bad);
    const grpc::Status s = GetStudy(bad, &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("8 digits"));
  }
  v1::GetStudyRequest negative;
  negative.set_nct_id(kStudy);
  negative.set_max_cache_age_seconds(-1);
  EXPECT_EQ(GetStudy(negative, &r).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::GetStudyRequest format;
  format.set_nct_id(kStudy);
  format.set_format(static_cast<v1::Format>(7));
  EXPECT_EQ(GetStudy(format, &r).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(http_->request_count(), 0u);

  // Case and surrounding blanks are forgiven.
  ASSERT_TRUE(GetStudy(" nct04280705 ", &r).ok());
  EXPECT_EQ(r.study().nct_id(), kStudy);
}

TEST_F(StudyServiceTest, GetStudyAliasReportsTheCanonicalIdAndCachesIt) {
  http_->Enqueue("/studies/NCT00000001",
                 FakeHttpTransport::Reply(
                     301, "", {{"Location", "/api/v2/studies/NCT04280705"}}));
  http_->ServeStudyFiles(StudiesDir());
  Start();
  v1::GetStudyResponse r;
  ASSERT_TRUE(GetStudy("NCT00000001", &r).ok());
  EXPECT_EQ(r.canonical_nct_id(), kStudy);
  EXPECT_EQ(r.study().nct_id(), kStudy);
  EXPECT_OK(store_->GetStudy(kStudy));
}

TEST_F(StudyServiceTest, GetStudyCsvAndFieldsAreUpstreamOnlyAndNotCached) {
  http_->Enqueue(
      "format=csv",
      FakeHttpTransport::Reply(200, "NCT Number,Study Title\nNCT04280705,x\n",
                               {{"Content-Type", "text/csv"}}));
  http_->Enqueue(
      "fields=",
      FakeHttpTransport::Json(R"({"protocolSection":{"identificationModule":)"
                              R"({"nctId":"NCT04280705","briefTitle":"B"}}})"));
  Start();
  v1::GetStudyRequest csv;
  csv.set_nct_id(kStudy);
  csv.set_format(v1::FORMAT_CSV);
  v1::GetStudyResponse r;
  ASSERT_TRUE(GetStudy(csv, &r).ok());
  EXPECT_THAT(r.csv(), StartsWith("NCT Number,"));
  EXPECT_FALSE(r.has_study());

  v1::GetStudyRequest fields;
  fields.set_nct_id(kStudy);
  fields.add_fields("NCTId");
  fields.add_fields("BriefTitle");
  ASSERT_TRUE(GetStudy(fields, &r).ok());
  EXPECT_EQ(r.study().brief_title(), "B");
  EXPECT_THAT(http_->urls().back(), HasSubstr("fields=NCTId%7CBriefTitle"));
  // Partial records never enter the store.
  EXPECT_THAT(store_->GetStudy(kStudy),
              ::trialmatch::testing::StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StudyServiceTest, StoreNotOpenYetIsUnavailable) {
  http_->ServeStudyFiles(StudiesDir());
  Start({}, /*offline=*/false, /*attach_store=*/false);
  v1::GetStudyResponse r;
  const grpc::Status s = GetStudy(kStudy, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("starting"));
}

TEST_F(StudyServiceTest, OfflineModeServesTheStoreOnly) {
  Start({}, /*offline=*/true);
  const std::vector<std::string> ids = RecordedIds(30);
  Seed(ids);
  v1::GetStudyResponse r;
  ASSERT_TRUE(GetStudy(ids[3], &r).ok());  // fresh: a plain cache hit
  EXPECT_EQ(r.freshness().source(), v1::DATA_SOURCE_CACHE);
  EXPECT_FALSE(r.freshness().upstream_unavailable());
  clock_.Advance(absl::Hours(30));  // stale: served, and flagged
  ASSERT_TRUE(GetStudy(ids[3], &r).ok());
  EXPECT_EQ(r.freshness().source(), v1::DATA_SOURCE_CACHE);
  EXPECT_TRUE(r.freshness().upstream_unavailable());
  EXPECT_THAT(r.freshness().note(), HasSubstr("offline"));
  EXPECT_EQ(GetStudy("NCT99999999", &r).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::SearchStudiesRequest simple;
  simple.set_page_size(100);
  v1::SearchStudiesResponse page;
  ASSERT_TRUE(Search(simple, &page).ok());
  EXPECT_THAT(Ids(page), ElementsAreArray(ids));
  v1::SearchStudiesRequest geo;
  geo.mutable_query()->set_locn("Boston");
  EXPECT_EQ(Search(geo, &page).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(http_->request_count(), 0u);
}

// --- SearchStudies -----------------------------------------------------------

TEST_F(StudyServiceTest, SearchPagesUpstreamWithBoundTokens) {
  const std::vector<std::string> ids = RecordedIds(7);
  http_->Handle("/studies?", PagesOver(Bodies(ids)));
  Start();
  v1::SearchStudiesRequest request;
  request.mutable_query()->set_cond("cancer");
  request.set_page_size(3);
  request.set_count_total(true);
  std::vector<std::string> seen;
  std::vector<std::string> tokens;
  for (int pages = 0; pages < 10; ++pages) {
    v1::SearchStudiesResponse page;
    ASSERT_TRUE(Search(request, &page).ok());
    EXPECT_EQ(page.freshness().source(), v1::DATA_SOURCE_UPSTREAM);
    if (pages == 0) {
      EXPECT_EQ(page.total_count(), 7);
    }
    for (const std::string& id : Ids(page)) seen.push_back(id);
    if (page.next_page_token().empty()) break;
    EXPECT_THAT(page.next_page_token(), StartsWith("tm1"));
    tokens.push_back(page.next_page_token());
    request.set_page_token(page.next_page_token());
  }
  EXPECT_THAT(seen, ElementsAreArray(ids));
  // Our tokens wrap the upstream's: the upstream saw its own tokens.
  const std::vector<std::string> urls = http_->urls();
  ASSERT_EQ(urls.size(), 3u);
  EXPECT_EQ(Param(urls[0], "pageToken"), "");
  EXPECT_EQ(Param(urls[1], "pageToken"), "o3");
  EXPECT_EQ(Param(urls[2], "pageToken"), "o6");
  EXPECT_EQ(Param(urls[0], "query.cond"), "cancer");
  EXPECT_THAT(tokens[0], Not(HasSubstr("o3")));
}

TEST_F(StudyServiceTest, SearchRejectsForeignGarbageAndMismatchedTokens) {
  http_->Handle("/studies?", PagesOver(Bodies(RecordedIds(7))));
  Start();
  v1::SearchStudiesRequest request;
  request.mutable_query()->set_cond("cancer");
  request.set_page_size(3);
  v1::SearchStudiesResponse page;
  ASSERT_TRUE(Search(request, &page).ok());
  const std::size_t calls = http_->request_count();

  v1::SearchStudiesRequest other = request;
  other.mutable_query()->set_cond("asthma");
  other.set_page_token(page.next_page_token());
  grpc::Status s = Search(other, &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("different query"));

  for (const std::string token : {"o3", "garbage", "tm1AAAA", "CAESBgoEbzM="}) {
    SCOPED_TRACE(token);
    v1::SearchStudiesRequest bad = request;
    bad.set_page_token(token);
    s = Search(bad, &page);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_EQ(http_->request_count(), calls);  // none reached the upstream
}

TEST_F(StudyServiceTest, SearchValidation) {
  http_->Handle("/studies?", PagesOver(Bodies(RecordedIds(3))));
  Start();
  v1::SearchStudiesResponse page;
  for (int size : {-1, 1001, 100000}) {
    v1::SearchStudiesRequest r;
    r.set_page_size(size);
    const grpc::Status s = Search(r, &page);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << size;
    EXPECT_THAT(s.error_message(), HasSubstr("page_size"));
  }
  v1::SearchStudiesRequest status;
  status.mutable_filter()->add_overall_status("RECRUITNG");
  grpc::Status s = Search(status, &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              AllOf(HasSubstr("RECRUITNG"), HasSubstr("NOT_YET_RECRUITING"),
                    HasSubstr("ACTIVE_NOT_RECRUITING"), HasSubstr("WITHHELD")));
  v1::SearchStudiesRequest post;
  post.mutable_post_filter()->add_overall_status("open");
  EXPECT_EQ(Search(post, &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(http_->request_count(), 0u);

  // Spelling is normalised before it is sent.
  v1::SearchStudiesRequest lower;
  lower.mutable_filter()->add_overall_status("recruiting");
  lower.mutable_filter()->add_overall_status(" Not_Yet_Recruiting ");
  ASSERT_TRUE(Search(lower, &page).ok());
  EXPECT_EQ(Param(http_->urls().back(), "filter.overallStatus"),
            "RECRUITING%7CNOT_YET_RECRUITING");
}

TEST_F(StudyServiceTest, SearchUpstreamRejectionIsInvalidArgument) {
  http_->Enqueue("/studies?", FakeHttpTransport::Text(
                                  400, "`filter.phase` is unknown parameter"));
  Start();
  v1::SearchStudiesRequest r;
  r.mutable_filter()->set_advanced("AREA[Phase]PHASE9");
  v1::SearchStudiesResponse page;
  const grpc::Status s = Search(r, &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("unknown parameter"));
  EXPECT_TRUE(monitor_.up());
}

TEST_F(StudyServiceTest, SearchFallsBackToTheStoreWhenUpstreamIsDown) {
  std::atomic<bool> down{true};
  const std::vector<std::string> ids = RecordedIds(60);
  http_->Handle("/studies?",
                [&, pages = PagesOver(Bodies(ids))](const ctgov::HttpRequest& r)
                    -> absl::StatusOr<ctgov::HttpResponse> {
                  if (down) return FakeHttpTransport::Reply(503, "down");
                  return pages(r);
                });
  Start();
  Seed(ids);
  // What the store's own search says (tested in tests/store).
  store::LocalSearchQuery q;
  q.cond = "cancer";
  q.lifecycles = {store::Lifecycle::kActive, store::Lifecycle::kLeftScope};
  q.page_size = 1000;
  ASSERT_OK_AND_ASSIGN(store::LocalSearchPage all, store_->SearchLocal(q));
  std::vector<std::string> expected;
  for (const auto& hit : all.studies) expected.push_back(hit.nct_id);
  ASSERT_GE(expected.size(), 4u) << "need a few matches to page through";

  v1::SearchStudiesRequest request;
  request.mutable_query()->set_cond("cancer");
  request.set_page_size(3);
  request.set_count_total(true);
  std::vector<std::string> seen;
  int pages = 0;
  for (; pages < 100; ++pages) {
    v1::SearchStudiesResponse page;
    ASSERT_TRUE(Search(request, &page).ok());
    EXPECT_EQ(page.freshness().source(), v1::DATA_SOURCE_CACHE);
    if (pages == 0) {
      EXPECT_TRUE(page.freshness().upstream_unavailable());
      EXPECT_THAT(page.freshness().note(), HasSubstr("local store"));
      EXPECT_EQ(page.total_count(), static_cast<int64_t>(expected.size()));
      down = false;  // the upstream comes back: this result set stays local
    } else {
      EXPECT_FALSE(page.freshness().upstream_unavailable());
    }
    for (const std::string& id : Ids(page)) seen.push_back(id);
    if (page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  EXPECT_THAT(seen, ElementsAreArray(expected));
  EXPECT_EQ(CountUrls(*http_, "/studies?"), 3);  // only the first page tried

  // Not answerable from the store → UNAVAILABLE (upstream down again).
  down = true;
  clock_.Advance(absl::Minutes(1));
  v1::SearchStudiesRequest geo;
  geo.mutable_query()->set_locn("Boston");
  v1::SearchStudiesResponse page;
  const grpc::Status s = Search(geo, &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("query.cond"));
}

TEST_F(StudyServiceTest, UpstreamTokenCannotContinueWhileUpstreamIsDown) {
  std::atomic<bool> down{false};
  http_->Handle(
      "/studies?",
      [&, pages = PagesOver(Bodies(RecordedIds(6)))](
          const ctgov::HttpRequest& r) -> absl::StatusOr<ctgov::HttpResponse> {
        if (down) return absl::UnavailableError("reset");
        return pages(r);
      });
  Start();
  v1::SearchStudiesRequest request;
  request.set_page_size(2);
  v1::SearchStudiesResponse page;
  ASSERT_TRUE(Search(request, &page).ok());
  down = true;
  request.set_page_token(page.next_page_token());
  const grpc::Status s = Search(request, &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("next page must come from"));
}

// A page larger than the response budget comes in parts; every part fits,
// together they are the page, and each part re-reads the same upstream page.
TEST_F(StudyServiceTest, LargePagesAreSplitToFitTheResponseBudget) {
  const std::vector<std::string> ids = RecordedIds(40);
  std::size_t total = 0;
  std::size_t largest = 0;
  for (const std::string& id : ids) {
    total += StudyFile(id).size();
    largest = std::max(largest, StudyFile(id).size());
  }
  StudyBackendOptions options;
  options.max_response_bytes =
      std::max<std::size_t>(largest * 2 + 64 * 1024, total / 4);
  ASSERT_LT(options.max_response_bytes, total);
  http_->Handle("/studies?", PagesOver(Bodies(ids)));
  Start(options);

  v1::SearchStudiesRequest request;
  request.set_page_size(25);
  std::vector<std::string> seen;
  int responses = 0;
  for (; responses < 100; ++responses) {
    v1::SearchStudiesResponse page;
    ASSERT_TRUE(Search(request, &page).ok());
    EXPECT_LE(page.ByteSizeLong(), options.max_response_bytes);
    EXPECT_FALSE(page.studies().empty());
    for (const std::string& id : Ids(page)) seen.push_back(id);
    if (page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  EXPECT_THAT(seen, ElementsAreArray(ids));
  EXPECT_GT(responses + 1, 2);  // the 25-study page needed several parts
  for (const std::string& url : http_->urls()) {
    EXPECT_EQ(Param(url, "pageSize"), "25") << url;
  }
}

TEST_F(StudyServiceTest, CsvPagesAreSplitOnRecordBoundaries) {
  // Rows of ~4 KB, one with a quoted line break; the budget fits ~3 rows.
  const std::string header = "NCT Number,Brief Summary\n";
  std::vector<std::string> rows;
  for (int i = 0; i < 8; ++i) {
    rows.push_back(absl::StrCat("NCT0000000", i, ",\"", std::string(2000, 'a'),
                                i == 2 ? "\nsecond line" : "", "\"\"q\"\"",
                                std::string(2000, 'b'), "\"\n"));
  }
  http_->Handle(
      "/studies?",
      [&](const ctgov::HttpRequest& r) -> absl::StatusOr<ctgov::HttpResponse> {
        EXPECT_EQ(Param(r.url, "format"), "csv");
        const bool first = Param(r.url, "pageToken").empty();
        std::string body = first ? header : "";
        for (int i = first ? 0 : 4; i < (first ? 4 : 8); ++i) body += rows[i];
        ctgov::HttpHeaders headers{{"Content-Type", "text/csv"}};
        if (first) headers.Add("x-next-page-token", "o4");
        return FakeHttpTransport::Reply(200, body, headers);
      });
  StudyBackendOptions options;
  options.max_response_bytes = 16 * 1024 + 13 * 1024;
  Start(options);
  v1::SearchStudiesRequest request;
  request.set_format(v1::FORMAT_CSV);
  request.set_page_size(4);
  std::string all;
  for (int i = 0; i < 20; ++i) {
    v1::SearchStudiesResponse page;
    ASSERT_TRUE(Search(request, &page).ok());
    EXPECT_LE(page.ByteSizeLong(), options.max_response_bytes);
    if (i > 0) {
      EXPECT_THAT(page.csv(), Not(StartsWith("NCT Number")));
    }
    all += page.csv();
    if (page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  EXPECT_EQ(all, header + absl::StrJoin(rows, ""));
}

// --- ListAllStudies
// ------------------------------------------------------------

TEST_F(StudyServiceTest, ListAllStreamsUpToTheLimitThenASummary) {
  const std::vector<std::string> ids = RecordedIds(20);
  http_->Handle("/studies?", PagesOver(Bodies(ids)));
  Start();
  v1::ListAllStudiesRequest request;
  request.mutable_query()->set_cond("cancer");
  request.set_page_size(3);
  request.set_limit(7);
  std::vector<v1::ListAllStudiesResponse> messages;
  ASSERT_TRUE(ListAll(request, &messages).ok());
  ASSERT_EQ(messages.size(), 8u);
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(messages[i].has_study());
    EXPECT_EQ(messages[i].study().nct_id(), ids[i]);
  }
  ASSERT_TRUE(messages[7].has_summary());
  EXPECT_EQ(messages[7].summary().total_returned(), 7);
  EXPECT_EQ(messages[7].summary().freshness().source(),
            v1::DATA_SOURCE_UPSTREAM);
  EXPECT_EQ(CountUrls(*http_, "/studies?"), 3);  // 3 + 3 + 3 >= 7

  // limit smaller than the page size: the upstream page shrinks to it.
  messages.clear();
  request.set_page_size(0);
  request.set_limit(2);
  ASSERT_TRUE(ListAll(request, &messages).ok());
  EXPECT_EQ(messages.size(), 3u);
  EXPECT_EQ(Param(http_->urls().back(), "pageSize"), "2");

  // No limit: everything.
  messages.clear();
  request.set_limit(0);
  ASSERT_TRUE(ListAll(request, &messages).ok());
  EXPECT_EQ(messages.back().summary().total_returned(), 20);
}

TEST_F(StudyServiceTest, ListAllCancellationStopsThePaging) {
  // An endless listing: every page has a next page.
  const std::string study = StudyFile(kStudy);
  std::atomic<int> pages{0};
  http_->Handle(
      "/studies?",
      [&](const ctgov::HttpRequest&) -> absl::StatusOr<ctgov::HttpResponse> {
        const int n = ++pages;
        return FakeHttpTransport::Json(
            absl::StrCat("{\"studies\":[", study, ",", study,
                         "],\"nextPageToken\":\"o", n * 2, "\"}"));
      });
  Start();
  v1::ListAllStudiesRequest request;
  request.set_page_size(2);
  grpc::ClientContext context;
  auto reader = stub_->ListAllStudies(&context, request);
  v1::ListAllStudiesResponse message;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(reader->Read(&message));
  context.TryCancel();
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The producer stops (flow control held it to a few pages ahead); were it
  // still paging, this would not return.
  service_->Shutdown();
  const int after = pages.load();
  EXPECT_LT(after, 20);
}

TEST_F(StudyServiceTest, ListAllFallsBackToTheStoreForSimpleQueries) {
  http_->Always("/studies?", FakeHttpTransport::Reply(502, "bad gateway"));
  Start();
  const std::vector<std::string> ids = RecordedIds(12);
  Seed(ids);
  v1::ListAllStudiesRequest request;
  request.set_limit(5);
  std::vector<v1::ListAllStudiesResponse> messages;
  ASSERT_TRUE(ListAll(request, &messages).ok());
  ASSERT_EQ(messages.size(), 6u);
  EXPECT_EQ(messages[0].study().nct_id(), ids[0]);
  EXPECT_EQ(messages[0].study().record_json(), StudyFile(ids[0]));
  const v1::ListAllStudiesSummary& summary = messages.back().summary();
  EXPECT_EQ(summary.total_returned(), 5);
  EXPECT_EQ(summary.freshness().source(), v1::DATA_SOURCE_CACHE);
  EXPECT_TRUE(summary.freshness().upstream_unavailable());

  v1::ListAllStudiesRequest with_fields;
  with_fields.add_fields("NCTId");
  messages.clear();
  EXPECT_EQ(ListAll(with_fields, &messages).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(StudyServiceTest, ListAllValidation) {
  Start();
  std::vector<v1::ListAllStudiesResponse> messages;
  v1::ListAllStudiesRequest negative;
  negative.set_limit(-1);
  EXPECT_EQ(ListAll(negative, &messages).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::ListAllStudiesRequest big;
  big.set_page_size(5000);
  EXPECT_EQ(ListAll(big, &messages).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::ListAllStudiesRequest status;
  status.mutable_filter()->add_overall_status("DONE");
  EXPECT_EQ(ListAll(status, &messages).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(messages.empty());
  EXPECT_EQ(http_->request_count(), 0u);
}

// --- Endpoint operations -----------------------------------------------------

class EndpointTest : public StudyServiceTest {
 protected:
  void ScriptEndpoints() {
    const auto endpoints =
        ::trialmatch::testing::SharedDataDir() / "ctgov_v2" / "endpoints";
    http_->Handle("/studies/metadata",
                  [this, endpoints](const ctgov::HttpRequest&) {
                    if (down_) return FakeHttpTransport::Reply(503);
                    return FakeHttpTransport::JsonFile(
                        endpoints / "studies_metadata_2025-05_metamonk.json");
                  });
    http_->Handle(
        "/studies/search-areas", [this, endpoints](const ctgov::HttpRequest&) {
          if (down_) return FakeHttpTransport::Reply(503);
          return FakeHttpTransport::JsonFile(
              endpoints / "studies_search-areas_2025-05_metamonk.json");
        });
    http_->Handle("/studies/enums", [this](const ctgov::HttpRequest&) {
      if (down_) return FakeHttpTransport::Reply(503);
      return FakeHttpTransport::Json(
          R"([{"type":"Phase","pieces":["Phase"],"values":[{"value":"PHASE1","legacyValue":"Phase 1"}]}])");
    });
    http_->Handle("/stats/size", [this](const ctgov::HttpRequest&) {
      if (down_) return FakeHttpTransport::Reply(503);
      return FakeHttpTransport::Json(
          R"({"totalStudies":1267,"averageSizeBytes":21011,"largestStudies":[],"percentiles":{"50":9000},"ranges":[]})");
    });
    http_->Handle("/version", [this](const ctgov::HttpRequest&) {
      if (down_) return FakeHttpTransport::Reply(503);
      return FakeHttpTransport::Json(
          R"({"apiVersion":"2.0.3","dataTimestamp":"2026-08-13T00:00:00"})");
    });
  }

  // Calls every endpoint operation; returns their freshness in order.
  std::vector<v1::Freshness> CallAll(std::vector<grpc::Status>* statuses) {
    std::vector<v1::Freshness> out;
    auto call = [&](auto method, auto request, auto response) {
      grpc::ClientContext context;
      statuses->push_back(((*stub_).*method)(&context, request, &response));
      out.push_back(response.freshness());
      return response;
    };
    v1::GetStudiesMetadataResponse meta =
        call(&v1::StudyService::Stub::GetStudiesMetadata,
             v1::GetStudiesMetadataRequest(), v1::GetStudiesMetadataResponse());
    if (statuses->back().ok()) {
      EXPECT_EQ(meta.fields(0).name(), "protocolSection");
      EXPECT_THAT(meta.json(), StartsWith("["));
    }
    v1::GetSearchAreasResponse areas =
        call(&v1::StudyService::Stub::GetSearchAreas,
             v1::GetSearchAreasRequest(), v1::GetSearchAreasResponse());
    if (statuses->back().ok()) {
      EXPECT_EQ(areas.documents(0).areas(0).param(), "term");
    }
    v1::GetEnumsResponse enums =
        call(&v1::StudyService::Stub::GetEnums, v1::GetEnumsRequest(),
             v1::GetEnumsResponse());
    if (statuses->back().ok()) {
      EXPECT_EQ(enums.enums(0).values(0).legacy_value(), "Phase 1");
    }
    v1::GetStatsSizeResponse stats =
        call(&v1::StudyService::Stub::GetStatsSize, v1::GetStatsSizeRequest(),
             v1::GetStatsSizeResponse());
    if (statuses->back().ok()) {
      EXPECT_EQ(stats.total_studies(), 1267);
    }
    v1::GetApiVersionResponse version =
        call(&v1::StudyService::Stub::GetApiVersion, v1::GetApiVersionRequest(),
             v1::GetApiVersionResponse());
    if (statuses->back().ok()) {
      EXPECT_EQ(version.api_version(), "2.0.3");
      EXPECT_EQ(version.data_timestamp(), "2026-08-13T00:00:00");
      EXPECT_EQ(version.server_version(), "test");
    }
    return out;
  }

  std::atomic<bool> down_{false};
};

TEST_F(EndpointTest, CachedWithATtlEach) {
  ScriptEndpoints();
  StudyBackendOptions options;
  options.ttls.stats_size = absl::Hours(1);
  options.ttls.version = absl::Minutes(10);
  Start(options);
  std::vector<grpc::Status> statuses;
  for (const v1::Freshness& f : CallAll(&statuses)) {
    EXPECT_EQ(f.source(), v1::DATA_SOURCE_UPSTREAM);
  }
  EXPECT_EQ(http_->request_count(), 5u);

  clock_.Advance(absl::Minutes(5));
  for (const v1::Freshness& f : CallAll(&statuses)) {
    EXPECT_EQ(f.source(), v1::DATA_SOURCE_CACHE);
    EXPECT_EQ(f.age().seconds(), 300);
  }
  EXPECT_EQ(http_->request_count(), 5u);

  // 15 min: only /version (TTL 10 min) is refetched; 2 h: /stats/size too.
  clock_.Advance(absl::Minutes(10));
  std::vector<v1::Freshness> f = CallAll(&statuses);
  EXPECT_EQ(f[4].source(), v1::DATA_SOURCE_UPSTREAM);
  EXPECT_EQ(f[3].source(), v1::DATA_SOURCE_CACHE);
  clock_.Advance(absl::Hours(2));
  f = CallAll(&statuses);
  EXPECT_EQ(f[3].source(), v1::DATA_SOURCE_UPSTREAM);
  EXPECT_EQ(f[0].source(), v1::DATA_SOURCE_CACHE);  // metadata: 24 h
  for (const grpc::Status& s : statuses)
    EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST_F(EndpointTest, UpstreamDownServesExpiredCacheFlaggedOrUnavailable) {
  ScriptEndpoints();
  Start();
  std::vector<grpc::Status> statuses;
  CallAll(&statuses);  // cache everything
  clock_.Advance(absl::Hours(48));
  down_ = true;
  statuses.clear();
  for (const v1::Freshness& f : CallAll(&statuses)) {
    EXPECT_EQ(f.source(), v1::DATA_SOURCE_CACHE);
    EXPECT_TRUE(f.upstream_unavailable());
    // 48 h, plus the retry backoff the failed attempts slept on the clock.
    EXPECT_GE(f.age().seconds(), 48 * 3600);
    EXPECT_LT(f.age().seconds(), 48 * 3600 + 60);
  }
  for (const grpc::Status& s : statuses) EXPECT_TRUE(s.ok());
}

TEST_F(EndpointTest, NothingCachedAndUpstreamDownIsUnavailable) {
  ScriptEndpoints();
  down_ = true;
  Start();
  std::vector<grpc::Status> statuses;
  CallAll(&statuses);
  ASSERT_EQ(statuses.size(), 5u);
  for (const grpc::Status& s : statuses) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(s.error_message(), HasSubstr("no cached"));
  }
}

TEST_F(EndpointTest, UnusableUpstreamBodyIsNotCached) {
  http_->Always("/studies/enums",
                FakeHttpTransport::Json(R"({"not":"a list"})"));
  Start();
  grpc::ClientContext context;
  v1::GetEnumsResponse r;
  const grpc::Status s = stub_->GetEnums(&context, v1::GetEnumsRequest(), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(store_->GetCachedResponse("enums", ""),
              ::trialmatch::testing::StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(EndpointTest, InternalFailuresDoNotLeakDetails) {
  Start();
  // A damaged cache entry: the parse error must stay in the log.
  ASSERT_OK(store_->PutCachedResponse("enums", "", "{damaged json at /var/x"));
  grpc::ClientContext context;
  v1::GetEnumsResponse r;
  const grpc::Status s = stub_->GetEnums(&context, v1::GetEnumsRequest(), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(s.error_message(), StartsWith("internal error (incident "));
  EXPECT_THAT(s.error_message(), Not(HasSubstr("/var/x")));
  EXPECT_THAT(s.error_message(), Not(HasSubstr("JSON")));
}

// --- Deadlines
// -------------------------------------------------------------------

TEST_F(StudyServiceTest, DeadlineEndsACallWaitingForTheUpstream) {
  absl::Notification release;
  http_->Handle(
      "/studies/NCT",
      [&](const ctgov::HttpRequest&) -> absl::StatusOr<ctgov::HttpResponse> {
        release.WaitForNotificationWithTimeout(absl::Seconds(30));
        return FakeHttpTransport::Reply(503);
      });
  Start();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(200));
  v1::GetStudyRequest request;
  request.set_nct_id(kStudy);
  v1::GetStudyResponse r;
  const absl::Time start = absl::Now();
  const grpc::Status s = stub_->GetStudy(&context, request, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  release.Notify();
  service_->Shutdown();  // the abandoned work finishes without retrying
  EXPECT_EQ(http_->request_count(), 1u);
}

// --- The largest study, over TCP with default client limits
// ---------------------

// ClinicalTrials.gov's largest record is ~3.6 MB. Build one from a real
// record by enlarging its resultsSection.
std::string LargestStudy(std::size_t target_bytes) {
  nlohmann::json j = nlohmann::json::parse(StudyFile("NCT02513394"));
  nlohmann::json& measures =
      j["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"];
  const nlohmann::json copy = measures;
  std::size_t size = j.dump().size();
  // Append copies of the real measures (each costs its text plus a comma).
  for (std::size_t i = 0; size < target_bytes; ++i) {
    const nlohmann::json& m = copy[i % copy.size()];
    size += m.dump().size() + 1;
    measures.push_back(m);
  }
  return j.dump();
}

TEST_F(StudyServiceTest, LargestStudyFitsADefaultClient) {
  const std::string big = LargestStudy(3'774'874);  // 3.6 MiB
  ASSERT_GE(big.size(), 3'774'874u);
  ASSERT_LT(big.size(), std::size_t{4} << 20);
  http_->Handle("/studies/NCT02513394", [&](const ctgov::HttpRequest&) {
    return absl::StatusOr<ctgov::HttpResponse>(FakeHttpTransport::Json(big));
  });
  http_->Handle("/studies?", [&](const ctgov::HttpRequest&) {
    return absl::StatusOr<ctgov::HttpResponse>(FakeHttpTransport::Json(
        absl::StrCat("{\"studies\":[", big, ",", StudyFile(kStudy), "]}")));
  });
  Start();
  GrpcServer::Options options;
  options.listen_address = "127.0.0.1:0";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GrpcServer> tcp,
                       GrpcServer::Start(options, {service_.get()}));
  // Default channel arguments: 4 MiB receive limit.
  auto stub = v1::StudyService::NewStub(
      grpc::CreateChannel(tcp->address(), grpc::InsecureChannelCredentials()));

  for (const char* pass : {"upstream", "cache"}) {
    SCOPED_TRACE(pass);
    grpc::ClientContext context;
    v1::GetStudyRequest request;
    request.set_nct_id("NCT02513394");
    v1::GetStudyResponse r;
    const grpc::Status s = stub->GetStudy(&context, request, &r);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(r.study().record_json(), big);
    EXPECT_EQ(r.study().nct_id(), "NCT02513394");
  }
  {  // A search page holding it and another study: split, both arrive.
    std::vector<std::string> seen;
    v1::SearchStudiesRequest request;
    for (int i = 0; i < 5; ++i) {
      grpc::ClientContext context;
      v1::SearchStudiesResponse page;
      const grpc::Status s = stub->SearchStudies(&context, request, &page);
      ASSERT_TRUE(s.ok()) << s.error_message();
      for (const std::string& id : Ids(page)) seen.push_back(id);
      if (page.next_page_token().empty()) break;
      request.set_page_token(page.next_page_token());
    }
    EXPECT_THAT(seen, ElementsAreArray({"NCT02513394", kStudy}));
  }
  {  // One study per stream message.
    grpc::ClientContext context;
    auto reader = stub->ListAllStudies(&context, v1::ListAllStudiesRequest());
    v1::ListAllStudiesResponse m;
    int studies = 0;
    while (reader->Read(&m)) studies += m.has_study() ? 1 : 0;
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_EQ(studies, 2);
  }
  tcp->Shutdown(absl::ZeroDuration());
  tcp->Wait();
}

TEST_F(StudyServiceTest, AStudyOverTheBudgetIsResourceExhausted) {
  const std::string huge = LargestStudy(std::size_t{5} << 20);
  http_->Handle("/studies/NCT02513394", [&](const ctgov::HttpRequest&) {
    return absl::StatusOr<ctgov::HttpResponse>(FakeHttpTransport::Json(huge));
  });
  Start();
  v1::GetStudyResponse r;
  const grpc::Status s = GetStudy("NCT02513394", &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("fields"));
}

// --- GetStudyCriteria and GetStudy.include_criteria ------------------------

class StudyCriteriaTest : public StudyServiceTest {
 protected:
  void SetUp() override {
    StudyServiceTest::SetUp();
    ASSERT_NE(criteria::testing::ProjectRules(), nullptr);
  }
  void StartWithRules(bool offline = false) {
    StudyBackendOptions options;
    options.rules = &rules_;
    Start(options, offline);
  }
  grpc::Status GetCriteria(const std::string& id,
                           v1::GetStudyCriteriaResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    v1::GetStudyCriteriaRequest request;
    request.set_nct_id(id);
    return stub_->GetStudyCriteria(&context, request, response);
  }
  // What the compiler makes of the stored record, as the proto.
  v1::CompiledStudy Expected(const std::string& id) {
    absl::StatusOr<store::StoredStudy> stored = store_->GetStudy(id);
    EXPECT_OK(stored);
    absl::StatusOr<model::Study> study = model::ParseStudy(stored->raw_json);
    EXPECT_OK(study);
    v1::CompiledStudy out;
    CompiledStudyToProto(criteria::Compiler(rules_.Get()).Compile(*study),
                         &out);
    return out;
  }

  criteria::RuleSetHolder rules_{criteria::testing::ProjectRules()};
};

TEST_F(StudyCriteriaTest, CompilesOnRequestThenServesTheStoredEntry) {
  StartWithRules();
  Seed({kStudy});
  v1::GetStudyCriteriaResponse first;
  grpc::Status s = GetCriteria(kStudy, &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(first.origin(), v1::CRITERIA_ORIGIN_COMPILED_ON_REQUEST);
  EXPECT_EQ(first.criteria().nct_id(), kStudy);
  EXPECT_EQ(first.criteria().compiler_version(), criteria::kCompilerVersion);
  EXPECT_EQ(first.criteria().rules_version(), rules_.Get()->version());
  EXPECT_EQ(first.criteria().SerializeAsString(),
            Expected(kStudy).SerializeAsString());
  EXPECT_EQ(first.compiled_at().seconds(), absl::ToUnixSeconds(clock_.Now()));
  // The spans index the returned text (UTF-8 bytes) and give the evidence.
  ASSERT_OK_AND_ASSIGN(model::Study study,
                       model::ParseStudy(StudyFile(kStudy)));
  EXPECT_EQ(first.eligibility_criteria(), study.eligibility.criteria);
  int text_evidence = 0;
  for (const v1::Predicate& p : first.criteria().predicates()) {
    if (p.evidence().source() != v1::EVIDENCE_SOURCE_CRITERIA_TEXT) continue;
    ++text_evidence;
    EXPECT_EQ(first.eligibility_criteria().substr(
                  p.evidence().span().begin(),
                  p.evidence().span().end() - p.evidence().span().begin()),
              p.evidence().text());
  }
  EXPECT_GT(text_evidence, 0);
  EXPECT_EQ(http_->request_count(), 0u);  // the store only

  // Written back: the next call reads it.
  ASSERT_OK_AND_ASSIGN(store::CompiledEntry entry, store_->GetCompiled(kStudy));
  EXPECT_EQ(entry.rules_version, rules_.Get()->version());
  clock_.Advance(absl::Minutes(3));
  v1::GetStudyCriteriaResponse second;
  ASSERT_TRUE(GetCriteria(kStudy, &second).ok());
  EXPECT_EQ(second.origin(), v1::CRITERIA_ORIGIN_STORED);
  EXPECT_EQ(second.criteria().SerializeAsString(),
            first.criteria().SerializeAsString());
  EXPECT_EQ(second.compiled_at().seconds(),
            absl::ToUnixSeconds(entry.compiled_at));
}

TEST_F(StudyCriteriaTest, StaleOrChangedEntriesAreCompiledAgain) {
  StartWithRules();
  Seed({kStudy});
  ASSERT_OK_AND_ASSIGN(store::StoredStudy stored, store_->GetStudy(kStudy));
  store::CompiledEntry old;
  old.nct_id = kStudy;
  old.compiler_version = "0.0.1";
  old.rules_version = rules_.Get()->version();
  old.content_hash = stored.content_hash;
  old.blob = "{}";
  ASSERT_OK(store_->PutCompiled({old}));
  v1::GetStudyCriteriaResponse r;
  ASSERT_TRUE(GetCriteria(kStudy, &r).ok());
  EXPECT_EQ(r.origin(), v1::CRITERIA_ORIGIN_COMPILED_ON_REQUEST);
  EXPECT_EQ(r.criteria().SerializeAsString(),
            Expected(kStudy).SerializeAsString());
  ASSERT_OK_AND_ASSIGN(store::CompiledEntry entry, store_->GetCompiled(kStudy));
  EXPECT_EQ(entry.compiler_version, criteria::kCompilerVersion);

  // The record changes (a sync stored a new version): compiled again.
  nlohmann::json j = nlohmann::json::parse(stored.raw_json);
  j["protocolSection"]["eligibilityModule"]["eligibilityCriteria"] =
      "Inclusion Criteria:\n\n* Hemoglobin >= 9 g/dL\n";
  ASSERT_OK_AND_ASSIGN(store::StudyRecord changed,
                       store::MakeStudyRecord(j.dump()));
  ASSERT_OK(store_->UpsertStudies({changed}));
  ASSERT_TRUE(GetCriteria(kStudy, &r).ok());
  EXPECT_EQ(r.origin(), v1::CRITERIA_ORIGIN_COMPILED_ON_REQUEST);
  EXPECT_EQ(r.eligibility_criteria(),
            "Inclusion Criteria:\n\n* Hemoglobin >= 9 g/dL\n");
  bool hemoglobin = false;
  for (const v1::Predicate& p : r.criteria().predicates()) {
    if (p.quantity() == "hemoglobin") {
      hemoglobin = true;
      EXPECT_EQ(p.kind(), v1::PREDICATE_KIND_LAB);
      EXPECT_EQ(p.polarity(), v1::POLARITY_INCLUSION);
      EXPECT_TRUE(p.has_low());
      EXPECT_EQ(p.low(), 9);
      EXPECT_FALSE(p.has_high());
      EXPECT_EQ(p.unit(), "g/dL");
    }
  }
  EXPECT_TRUE(hemoglobin);
}

TEST_F(StudyCriteriaTest, ErrorCodes) {
  http_->ServeStudyFiles(StudiesDir());
  StartWithRules();
  v1::GetStudyCriteriaResponse r;
  grpc::Status s = GetCriteria("NCT123", &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  s = GetCriteria("", &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Not in the store: NOT_FOUND, without asking ClinicalTrials.gov.
  s = GetCriteria(kStudy, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("not in the local store"));
  EXPECT_EQ(http_->request_count(), 0u);
}

TEST_F(StudyCriteriaTest, WithoutRulesOrStore) {
  Start();  // no rules configured
  Seed({kStudy});
  v1::GetStudyCriteriaResponse r;
  EXPECT_EQ(GetCriteria(kStudy, &r).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  v1::GetStudyRequest request;
  request.set_nct_id(kStudy);
  request.set_include_criteria(true);
  v1::GetStudyResponse response;
  EXPECT_EQ(GetStudy(request, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(StudyCriteriaTest, UnavailableUntilTheStoreIsAttached) {
  StudyBackendOptions options;
  options.rules = &rules_;
  Start(options, /*offline=*/true, /*attach_store=*/false);
  v1::GetStudyCriteriaResponse r;
  EXPECT_EQ(GetCriteria(kStudy, &r).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(StudyCriteriaTest, GetStudyIncludesCriteriaFromCacheAndUpstream) {
  http_->ServeStudyFiles(StudiesDir());
  StartWithRules();
  const std::string cached_id = RecordedIds(1)[0];
  Seed({cached_id});

  // A cache hit.
  v1::GetStudyRequest request;
  request.set_nct_id(cached_id);
  request.set_include_criteria(true);
  v1::GetStudyResponse cached;
  ASSERT_TRUE(GetStudy(request, &cached).ok());
  EXPECT_EQ(cached.freshness().source(), v1::DATA_SOURCE_CACHE);
  EXPECT_EQ(cached.criteria_origin(), v1::CRITERIA_ORIGIN_COMPILED_ON_REQUEST);
  EXPECT_EQ(cached.criteria().SerializeAsString(),
            Expected(cached_id).SerializeAsString());
  ASSERT_TRUE(GetStudy(request, &cached).ok());
  EXPECT_EQ(cached.criteria_origin(), v1::CRITERIA_ORIGIN_STORED);

  // Fetched from ClinicalTrials.gov, written back with its criteria.
  request.set_nct_id(kStudy);
  v1::GetStudyResponse fetched;
  ASSERT_TRUE(GetStudy(request, &fetched).ok());
  EXPECT_EQ(fetched.freshness().source(), v1::DATA_SOURCE_UPSTREAM);
  EXPECT_EQ(fetched.criteria().nct_id(), kStudy);
  EXPECT_EQ(fetched.criteria().SerializeAsString(),
            Expected(kStudy).SerializeAsString());
  ASSERT_OK_AND_ASSIGN(store::CompiledEntry entry, store_->GetCompiled(kStudy));
  ASSERT_OK_AND_ASSIGN(store::StoredStudy stored, store_->GetStudy(kStudy));
  EXPECT_EQ(entry.content_hash, stored.content_hash);

  // Not asked: not attached.
  request.set_include_criteria(false);
  v1::GetStudyResponse plain;
  ASSERT_TRUE(GetStudy(request, &plain).ok());
  EXPECT_FALSE(plain.has_criteria());
  EXPECT_EQ(plain.criteria_origin(), v1::CRITERIA_ORIGIN_UNSPECIFIED);
}

TEST_F(StudyCriteriaTest, IncludeCriteriaNeedsTheWholeJsonRecord) {
  http_->ServeStudyFiles(StudiesDir());
  StartWithRules();
  v1::GetStudyRequest request;
  request.set_nct_id(kStudy);
  request.set_include_criteria(true);
  request.add_fields("NCTId");
  v1::GetStudyResponse response;
  grpc::Status s = GetStudy(request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("include_criteria"));
  request.clear_fields();
  request.set_format(v1::FORMAT_CSV);
  EXPECT_EQ(GetStudy(request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(http_->request_count(), 0u);  // refused before any upstream call
}

}  // namespace
}  // namespace trialmatch::server
