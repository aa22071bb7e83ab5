// Syncer against the fake ClinicalTrials.gov (tests/fake_ctgov, the recorded
// corpus on 127.0.0.1) through the real libcurl transport, into a SQLite
// store in a temporary directory. Retries wait on a FakeClock, so faults
// cost no real time.
#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ctgov/client.h"
#include "ctgov/curl_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "store/study_store.h"
#include "sync/dates.h"
#include "sync/sync_test_util.h"
#include "sync/syncer.h"
#include "testing/fake_clock.h"
#include "testing/fake_ctgov_server.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::sync {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Each;
using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Le;
using ::testing::Not;
using ::trialmatch::store::Lifecycle;
using ::trialmatch::sync::testing::ActiveIds;
using ::trialmatch::sync::testing::CorpusIds;
using ::trialmatch::sync::testing::InScopeCorpusIds;
using ::trialmatch::sync::testing::StoredIds;
using ::trialmatch::testing::FakeClock;
using ::trialmatch::testing::FakeCtgovServer;
using ::trialmatch::testing::StatusIs;

// Most tests sync the 102 NOT_YET_RECRUITING studies, 20 per page (6
// pages): enough pages to fail and resume in the middle, small enough to
// keep a Debug build quick. One test syncs the whole default scope.
constexpr int kPageSize = 20;
const std::vector<std::string> kNotYetRecruiting = {"NOT_YET_RECRUITING"};
constexpr int kNyrPages = 6;  // ceil(102 / 20)

class SyncIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto fake = FakeCtgovServer::Start();
    ASSERT_OK(fake.status());
    fake_ = fake->release();
  }
  static void TearDownTestSuite() {
    delete fake_;
    fake_ = nullptr;
  }

  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    ASSERT_NE(fake_, nullptr);
    ASSERT_OK(fake_->Reset());
    store_path_ = dir_.File("studies.db").string();
    ASSERT_OK_AND_ASSIGN(store_, store::StudyStore::Open(store_path_));
  }

  ctgov::CtgovOptions ClientOptions(std::string base_url = "") const {
    ctgov::CtgovOptions o;
    o.base_url = base_url.empty() ? fake_->base_url() : base_url;
    o.requests_per_second = 0;
    o.retry.max_attempts = 3;
    o.timeout = absl::Seconds(30);
    o.random_seed = 1;
    return o;
  }

  std::unique_ptr<Syncer> MakeSyncer(
      std::vector<std::string> statuses = kNotYetRecruiting,
      std::string base_url = "") {
    auto curl = ctgov::CurlTransport::Create();
    EXPECT_OK(curl.status());
    auto client =
        ctgov::CtgovClient::Create(ClientOptions(base_url), *curl, clock_);
    EXPECT_OK(client.status());
    SyncOptions options;
    options.wanted_statuses = std::move(statuses);
    options.page_size = kPageSize;
    auto syncer =
        Syncer::Create(*std::move(client), store_.get(), options, clock_);
    EXPECT_OK(syncer.status());
    return *std::move(syncer);
  }

  static int Requests(const std::string& path) {
    absl::StatusOr<int> n = fake_->RequestCount(path);
    EXPECT_OK(n.status());
    return n.value_or(-1);
  }
  static int StudiesRequests() { return Requests("/api/v2/studies"); }
  static void ResetStats() {
    ASSERT_OK(fake_->Control("stats/reset").status());
  }
  // The query strings of the /studies requests since the last ResetStats.
  static std::vector<std::string> StudiesQueries() {
    std::vector<std::string> out;
    absl::StatusOr<std::string> stats = fake_->StatsJson();
    EXPECT_OK(stats.status());
    const nlohmann::json parsed = nlohmann::json::parse(*stats);
    for (const auto& r : parsed["requests"]) {
      if (r["path"] == "/api/v2/studies") {
        out.push_back(r["query"].is_string() ? r["query"].get<std::string>()
                                             : std::string());
      }
    }
    return out;
  }

  // A new study for the fake: recorded study `from` with another id, status
  // and last update date.
  static std::string NewStudy(const std::string& from, const std::string& id,
                              const std::string& status,
                              const std::string& date) {
    nlohmann::json j = nlohmann::json::parse(trialmatch::testing::ReadFile(
        trialmatch::testing::StudiesDir() / (from + ".json")));
    auto& p = j["protocolSection"];
    p["identificationModule"]["nctId"] = id;
    p["statusModule"]["overallStatus"] = status;
    p["statusModule"]["lastUpdatePostDateStruct"]["date"] = date;
    return j.dump();
  }

  void ExpectStoreHealthy() { EXPECT_OK(store_->IntegrityCheck()); }

  static FakeCtgovServer* fake_;
  trialmatch::testing::TempDir dir_;
  std::string store_path_;
  FakeClock clock_;
  std::unique_ptr<store::StudyStore> store_;
};

FakeCtgovServer* SyncIntegrationTest::fake_ = nullptr;

TEST_F(SyncIntegrationTest, FullSyncStoresExactlyTheInScopeStudiesThenIsANoOp) {
  std::unique_ptr<Syncer> syncer = MakeSyncer(DefaultWantedStatuses());
  const std::vector<std::string> expected = InScopeCorpusIds();
  ASSERT_EQ(expected.size(), 614u);  // 512 RECRUITING + 102 NOT_YET_RECRUITING

  ASSERT_OK_AND_ASSIGN(SyncReport first, syncer->Sync());
  EXPECT_EQ(first.kind, SyncKind::kFull);
  EXPECT_EQ(first.fetched, 614);
  EXPECT_EQ(first.inserted, 614);
  EXPECT_EQ(first.total_count, 614);
  EXPECT_EQ(first.pages, 31);  // ceil(614 / 20)
  EXPECT_EQ(first.vanished, 0);
  EXPECT_EQ(ActiveIds(*store_), expected);
  EXPECT_THAT(StoredIds(*store_, Lifecycle::kLeftScope), IsEmpty());

  ASSERT_OK_AND_ASSIGN(store::SyncState state, store_->GetSyncState());
  EXPECT_FALSE(state.full_sync.has_value());
  EXPECT_EQ(state.last_full_sync_at, clock_.Now());
  EXPECT_EQ(state.data_timestamp, first.data_timestamp);
  EXPECT_FALSE(state.data_timestamp.empty());
  // The watermark is the latest lastUpdatePostDate among the stored studies.
  std::string latest;
  store::StudyFilter all;
  all.include_raw_json = false;
  ASSERT_OK(store_->ForEachStudy(all, [&](const store::StudyView& v) {
    latest = std::max(latest, std::string(v.last_update_post_date));
    return absl::OkStatus();
  }));
  EXPECT_EQ(state.watermark, latest);
  EXPECT_EQ(state.last_sync_counts.inserted, 614);
  ExpectStoreHealthy();

  // The request carried the status filter and countTotal on page 1 only.
  const std::vector<std::string> queries = StudiesQueries();
  ASSERT_EQ(queries.size(), 31u);
  EXPECT_THAT(queries[0],
              AllOf(HasSubstr("filter.overallStatus=RECRUITING%7CNOT_YET_"
                              "RECRUITING"),
                    HasSubstr("pageSize=20"), HasSubstr("countTotal=true")));
  EXPECT_THAT(queries[1],
              AllOf(HasSubstr("pageToken="), Not(HasSubstr("countTotal"))));

  // Again: nothing changes.
  ASSERT_OK_AND_ASSIGN(SyncReport second, syncer->Sync(SyncMode::kFull));
  EXPECT_EQ(second.kind, SyncKind::kFull);
  EXPECT_EQ(second.unchanged, 614);
  EXPECT_EQ(second.inserted + second.updated + second.left_scope +
                second.vanished + second.reactivated,
            0);
  EXPECT_FALSE(second.changed());
  EXPECT_EQ(ActiveIds(*store_), expected);
}

TEST_F(SyncIntegrationTest, AutoSyncIsSkippedWhileDataTimestampStandsStill) {
  std::unique_ptr<Syncer> syncer = MakeSyncer();
  ASSERT_OK(syncer->Sync().status());
  ResetStats();
  ASSERT_OK_AND_ASSIGN(SyncReport report, syncer->Sync());
  EXPECT_EQ(report.kind, SyncKind::kSkipped);
  EXPECT_FALSE(report.changed());
  EXPECT_EQ(StudiesRequests(), 0);
  EXPECT_EQ(Requests("/api/v2/version"), 1);
}

TEST_F(SyncIntegrationTest, IncrementalSeesStatusChangesAndNewStudies) {
  std::unique_ptr<Syncer> syncer = MakeSyncer();
  ASSERT_OK_AND_ASSIGN(SyncReport full, syncer->Sync());
  ASSERT_OK_AND_ASSIGN(store::SyncState before, store_->GetSyncState());
  const std::vector<std::string> active = ActiveIds(*store_);
  ASSERT_EQ(active.size(), 102u);
  const std::string completed = active[10];
  const std::string known_other = active[20];  // stays in scope
  ASSERT_OK(fake_->UpdateStudyStatus(completed, "COMPLETED", "2099-01-05"));
  ASSERT_OK(fake_->PatchStudy(absl::StrCat(R"({"nctId":")", known_other,
                                           R"(","touch":"2099-01-05"})")));
  ASSERT_OK(fake_->PutStudy(
      NewStudy(active[0], "NCT09999001", "NOT_YET_RECRUITING", "2099-01-06")));
  ASSERT_OK(fake_->PutStudy(
      NewStudy(active[0], "NCT09999002", "COMPLETED", "2099-01-06")));
  ASSERT_OK(fake_->SetDataTimestamp("2099-01-07T00:00:00"));
  ResetStats();

  ASSERT_OK_AND_ASSIGN(SyncReport report, syncer->Sync());
  EXPECT_EQ(report.kind, SyncKind::kIncremental);
  EXPECT_EQ(report.inserted, 1);
  EXPECT_EQ(report.updated, 2);
  EXPECT_EQ(report.left_scope, 1);
  EXPECT_GE(report.ignored, 1);  // NCT09999002 and older out-of-scope updates
  EXPECT_TRUE(report.changed());
  EXPECT_THAT(StoredIds(*store_, Lifecycle::kLeftScope),
              ::testing::ElementsAre(completed));
  ASSERT_OK_AND_ASSIGN(store::StoredStudy added,
                       store_->GetStudy("NCT09999001"));
  EXPECT_EQ(added.lifecycle, Lifecycle::kActive);
  EXPECT_THAT(store_->GetStudy("NCT09999002"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(ActiveIds(*store_).size(), 102u);  // one left, one came

  // No status filter; the range starts `overlap` (3 days) before the
  // watermark the full sync recorded.
  ASSERT_OK_AND_ASSIGN(const std::string first_day,
                       IncrementalStartDay(before.watermark, absl::Hours(72)));
  const std::vector<std::string> queries = StudiesQueries();
  ASSERT_FALSE(queries.empty());
  EXPECT_THAT(queries[0],
              AllOf(HasSubstr("filter.advanced=AREA%5BLastUpdatePostDate%5D"
                              "RANGE%5B" +
                              first_day + "%2C%20MAX%5D"),
                    Not(HasSubstr("overallStatus"))));

  ASSERT_OK_AND_ASSIGN(store::SyncState after, store_->GetSyncState());
  EXPECT_EQ(after.watermark, "2099-01-06");
  EXPECT_EQ(after.data_timestamp, "2099-01-07T00:00:00");
  EXPECT_EQ(after.last_incremental_sync_at, clock_.Now());
  EXPECT_EQ(after.last_full_sync_at, before.last_full_sync_at);

  // Nothing new upstream: skipped.
  ASSERT_OK_AND_ASSIGN(SyncReport again, syncer->Sync());
  EXPECT_EQ(again.kind, SyncKind::kSkipped);
  ExpectStoreHealthy();
}

TEST_F(SyncIntegrationTest, ReconciliationTellsLeftScopeFromVanished) {
  std::unique_ptr<Syncer> syncer = MakeSyncer();
  ASSERT_OK(syncer->Sync().status());
  const std::vector<std::string> active = ActiveIds(*store_);
  const std::string deleted = active[3];
  const std::string withdrawn = active[50];
  ASSERT_OK(fake_->DeleteStudy(deleted));
  ASSERT_OK(fake_->UpdateStudyStatus(withdrawn, "WITHDRAWN", "2026-09-01"));
  ResetStats();

  ASSERT_OK_AND_ASSIGN(SyncReport report, syncer->Sync(SyncMode::kFull));
  EXPECT_EQ(report.vanished, 1);
  EXPECT_EQ(report.left_scope, 1);
  EXPECT_EQ(report.reconcile_asked, 2);
  EXPECT_EQ(report.reconcile_returned, 1);
  EXPECT_THAT(StoredIds(*store_, Lifecycle::kVanished),
              ::testing::ElementsAre(deleted));
  EXPECT_THAT(StoredIds(*store_, Lifecycle::kLeftScope),
              ::testing::ElementsAre(withdrawn));
  ASSERT_OK_AND_ASSIGN(store::StoredStudy s, store_->GetStudy(withdrawn));
  EXPECT_EQ(s.overall_status, "WITHDRAWN");  // the new record was stored
  // The last request asked for both by id, without a status filter.
  const std::vector<std::string> queries = StudiesQueries();
  ASSERT_EQ(queries.size(), static_cast<size_t>(kNyrPages));  // 5 + 1 by id
  EXPECT_THAT(queries.back(),
              AllOf(HasSubstr("filter.ids="), HasSubstr(deleted),
                    HasSubstr(withdrawn), Not(HasSubstr("overallStatus"))));
  ASSERT_OK_AND_ASSIGN(store::SyncState state, store_->GetSyncState());
  EXPECT_EQ(state.last_sync_counts.vanished, 1);
  ExpectStoreHealthy();
}

TEST_F(SyncIntegrationTest, NarrowerStatusesApplyToStoredStudies) {
  ASSERT_OK(MakeSyncer()->Sync().status());
  ASSERT_OK_AND_ASSIGN(SyncReport report,
                       MakeSyncer({"RECRUITING"})->Sync());  // skipped
  EXPECT_EQ(report.left_scope, 102);
  EXPECT_TRUE(report.changed());
  EXPECT_THAT(ActiveIds(*store_), IsEmpty());
}

TEST_F(SyncIntegrationTest, StalePageTokenRestartsTheFullSync) {
  ASSERT_OK_AND_ASSIGN(store::FullSyncCursor cursor, store_->BeginFullSync());
  ASSERT_OK_AND_ASSIGN(store::SyncState state, store_->GetSyncState());
  state.full_sync->page_token = "bm90LWEtcmVhbC10b2tlbg";  // never issued
  state.full_sync->pages_done = 3;
  state.full_sync->studies_seen = 60;
  ASSERT_OK(store_->PutSyncState(state));

  ::testing::internal::CaptureStderr();
  ASSERT_OK_AND_ASSIGN(SyncReport report, MakeSyncer()->Sync());
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("rejected the saved page token"));
  EXPECT_TRUE(report.restarted);
  EXPECT_EQ(report.inserted, 102);
  EXPECT_EQ(ActiveIds(*store_), CorpusIds({"NOT_YET_RECRUITING"}));
  ASSERT_OK_AND_ASSIGN(store::SyncState after, store_->GetSyncState());
  EXPECT_FALSE(after.full_sync.has_value());
  EXPECT_TRUE(after.last_full_sync_at.has_value());
  (void)cursor;
}

TEST_F(SyncIntegrationTest, UnreachableUpstreamFailsWithoutTouchingTheStore) {
  // A port nobody listens on: connection refused at once.
  std::unique_ptr<Syncer> syncer =
      MakeSyncer(kNotYetRecruiting, "http://127.0.0.1:1/api/v2");
  EXPECT_THAT(syncer->Sync(), StatusIs(absl::StatusCode::kUnavailable,
                                       HasSubstr("nothing was changed")));
  ASSERT_OK_AND_ASSIGN(store::SyncState state, store_->GetSyncState());
  EXPECT_FALSE(state.full_sync.has_value());
  EXPECT_FALSE(state.last_full_sync_at.has_value());
}

TEST_F(SyncIntegrationTest, CancelledSyncResumesAtTheNextPage) {
  std::unique_ptr<Syncer> syncer = MakeSyncer();
  std::atomic<bool> cancel{false};
  SyncControl control;
  control.cancelled = &cancel;
  control.on_progress = [&](const Progress& p) {
    if (p.pages == 2) cancel = true;
  };
  EXPECT_THAT(syncer->Sync(SyncMode::kAuto, control),
              StatusIs(absl::StatusCode::kCancelled,
                       HasSubstr("next sync resumes at page 3")));
  EXPECT_EQ(ActiveIds(*store_).size(), 40u);
  ResetStats();
  ASSERT_OK_AND_ASSIGN(SyncReport report, syncer->Sync());
  EXPECT_TRUE(report.resumed);
  EXPECT_EQ(report.resumed_pages, 2);
  EXPECT_EQ(report.resumed_studies, 40);
  EXPECT_EQ(report.inserted, 62);
  EXPECT_EQ(report.vanished, 0);
  EXPECT_EQ(StudiesRequests(), kNyrPages - 2);
  EXPECT_EQ(ActiveIds(*store_), CorpusIds({"NOT_YET_RECRUITING"}));
}

// --- Faults
// -------------------------------------------------------------------

TEST_F(SyncIntegrationTest, RetryAfterIsHonouredAndCapped) {
  ASSERT_OK(fake_->AddFault(
      R"({"path":"/api/v2/studies","kind":"429","count":2,"retry_after":7})"));
  ASSERT_OK(fake_->AddFault(
      R"({"path":"/api/v2/studies","kind":"503","count":1,"skip":3,)"
      R"("retry_after":86400})"));
  ASSERT_OK_AND_ASSIGN(SyncReport report, MakeSyncer()->Sync());
  EXPECT_EQ(report.inserted, 102);
  const std::vector<absl::Duration> sleeps = clock_.sleeps();
  EXPECT_EQ(std::count_if(sleeps.begin(), sleeps.end(),
                          [](absl::Duration d) {
                            return d >= absl::Seconds(7) &&
                                   d < absl::Seconds(60);
                          }),
            2);
  // A day-long Retry-After waits the 60 s cap, not a day.
  EXPECT_THAT(sleeps, Contains(absl::Seconds(60)));
  EXPECT_THAT(sleeps, Each(Le(absl::Seconds(60))));
}

struct FaultCase {
  std::string name;
  std::string rule;  // applied to /studies requests after the first 2 pages
  bool recovers;     // the client's retries get past it
  absl::StatusCode code = absl::StatusCode::kOk;  // else the sync's error
};

// Names the case in ctest's list instead of dumping its bytes.
void PrintTo(const FaultCase& c, std::ostream* os) { *os << c.name; }

class SyncFaultTest : public SyncIntegrationTest,
                      public ::testing::WithParamInterface<FaultCase> {};

TEST_P(SyncFaultTest, StoreStaysIntactAndTheNextSyncResumes) {
  const FaultCase& c = GetParam();
  ASSERT_OK(fake_->AddFault(c.rule));
  std::unique_ptr<Syncer> syncer = MakeSyncer();
  absl::StatusOr<SyncReport> first = syncer->Sync();
  if (c.recovers) {
    ASSERT_OK(first.status());
    EXPECT_EQ(first->inserted, 102);
    EXPECT_EQ(ActiveIds(*store_), CorpusIds({"NOT_YET_RECRUITING"}));
    ExpectStoreHealthy();
    return;
  }
  EXPECT_THAT(first, StatusIs(c.code, HasSubstr("stored pages are kept")));
  // Whole pages only, all intact, the cursor after the last stored page.
  ExpectStoreHealthy();
  const std::vector<std::string> stored = ActiveIds(*store_);
  const std::vector<std::string> corpus = CorpusIds({"NOT_YET_RECRUITING"});
  ASSERT_OK_AND_ASSIGN(store::SyncState state, store_->GetSyncState());
  ASSERT_TRUE(state.full_sync.has_value());
  EXPECT_EQ(static_cast<int64_t>(stored.size()), state.full_sync->studies_seen);
  EXPECT_EQ(state.full_sync->studies_seen,
            state.full_sync->pages_done * kPageSize);
  EXPECT_GE(state.full_sync->pages_done, 2);
  EXPECT_TRUE(std::includes(corpus.begin(), corpus.end(), stored.begin(),
                            stored.end()));
  for (const std::string& id : stored) {
    ASSERT_OK_AND_ASSIGN(store::StoredStudy s, store_->GetStudy(id));
    EXPECT_EQ(s.raw_json.front(), '{');
    EXPECT_EQ(s.raw_json.back(), '}');
  }

  ASSERT_OK(fake_->ClearFaults());
  ResetStats();
  ASSERT_OK_AND_ASSIGN(SyncReport second, syncer->Sync());
  EXPECT_TRUE(second.resumed);
  EXPECT_EQ(StudiesRequests(), kNyrPages - 2);  // stored pages not refetched
  EXPECT_EQ(ActiveIds(*store_), corpus);
  EXPECT_EQ(second.vanished, 0);
  ExpectStoreHealthy();
}

INSTANTIATE_TEST_SUITE_P(
    Faults, SyncFaultTest,
    ::testing::Values(
        FaultCase{
            "ServerErrorsThenRecovery",
            R"({"path":"/api/v2/studies","kind":"503","count":2,"skip":2})",
            true},
        FaultCase{
            "TruncatedBodyOnce",
            R"({"path":"/api/v2/studies","kind":"truncate","count":1,"skip":2})",
            true},
        FaultCase{
            "MalformedJsonOnce",
            R"({"path":"/api/v2/studies","kind":"malformed_json","count":1,"skip":2})",
            true},
        FaultCase{
            "HtmlPageOnce",
            R"({"path":"/api/v2/studies","kind":"html","count":1,"skip":2})",
            true},
        FaultCase{
            "ServerErrorStreak",
            R"({"path":"/api/v2/studies","kind":"502","count":1000,"skip":2})",
            false, absl::StatusCode::kUnavailable},
        FaultCase{
            "TruncatedBodies",
            R"({"path":"/api/v2/studies","kind":"truncate","count":1000,"skip":2})",
            false, absl::StatusCode::kUnavailable},
        FaultCase{
            "MalformedJsonEveryTime",
            R"({"path":"/api/v2/studies","kind":"malformed_json","count":1000,"skip":2})",
            false, absl::StatusCode::kDataLoss},
        FaultCase{
            "HtmlPagesEveryTime",
            R"({"path":"/api/v2/studies","kind":"html","count":1000,"skip":2})",
            false, absl::StatusCode::kUnavailable},
        FaultCase{
            "LoopingPageToken",
            R"({"path":"/api/v2/studies","kind":"loop_token","count":1,"skip":2})",
            false, absl::StatusCode::kDataLoss}),
    [](const ::testing::TestParamInfo<FaultCase>& param) {
      return param.param.name;
    });

}  // namespace
}  // namespace trialmatch::sync
