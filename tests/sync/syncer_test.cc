// Syncer over a scripted transport (FakeHttpTransport) and a FakeClock: the
// decisions that are awkward to provoke through the fake server.
#include "sync/syncer.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "store/store_test_util.h"
#include "store/study_store.h"
#include "sync/dates.h"
#include "sync/sync_test_util.h"
#include "testing/fake_clock.h"
#include "testing/fake_http_transport.h"
#include "testing/status_matchers.h"

namespace trialmatch::sync {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::trialmatch::store::Lifecycle;
using ::trialmatch::store::StudyRecord;
using ::trialmatch::sync::testing::ActiveIds;
using ::trialmatch::sync::testing::Compact;
using ::trialmatch::sync::testing::StoredIds;
using ::trialmatch::testing::FakeClock;
using ::trialmatch::testing::FakeHttpTransport;
using ::trialmatch::testing::StatusIs;

std::string Version(const std::string& data_timestamp) {
  return absl::StrCat(R"({"apiVersion":"2.0.3","dataTimestamp":")",
                      data_timestamp, R"("})");
}

// A /studies page of `studies` (JSON texts).
std::string Page(const std::vector<std::string>& studies,
                 const std::string& next_token = "") {
  std::string out = "{\"studies\":[";
  for (size_t i = 0; i < studies.size(); ++i) {
    if (i > 0) out += ",";
    out += studies[i];
  }
  out += "]";
  if (!next_token.empty()) out += ",\"nextPageToken\":\"" + next_token + "\"";
  return out + "}";
}

class SyncerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    records_ = store::testing::LoadRecords(8);
    for (const StudyRecord& r : records_) {
      json_.push_back(Compact(r.raw_json));
      statuses_.push_back(r.study.overall_status);
    }
    store::StoreOptions options;
    options.clock = &clock_;
    ASSERT_OK_AND_ASSIGN(store_, store::StudyStore::Open(":memory:", options));
    transport_ = std::make_shared<FakeHttpTransport>();
    transport_->Handle("/version", [this](const ctgov::HttpRequest&) {
      absl::MutexLock lock(&mu_);
      return absl::StatusOr<ctgov::HttpResponse>(
          FakeHttpTransport::Json(Version(data_timestamp_)));
    });
  }

  // What GET /version reports from now on.
  void SetDataTimestamp(const std::string& t) {
    absl::MutexLock lock(&mu_);
    data_timestamp_ = t;
  }

  std::unique_ptr<Syncer> MakeSyncer(SyncOptions options = {}) {
    ctgov::CtgovOptions client_options;
    client_options.base_url = "http://ctgov.test/api/v2";
    client_options.requests_per_second = 0;
    client_options.retry.max_attempts = 2;
    client_options.random_seed = 1;
    auto client =
        ctgov::CtgovClient::Create(client_options, transport_, clock_);
    EXPECT_OK(client.status());
    if (options.wanted_statuses == DefaultWantedStatuses()) {
      options.wanted_statuses = {};  // every status, unless a test narrows it
    }
    auto syncer =
        Syncer::Create(*std::move(client), store_.get(), options, clock_);
    EXPECT_OK(syncer.status());
    return *std::move(syncer);
  }

  std::vector<std::string> Ids(std::initializer_list<int> indexes) const {
    std::vector<std::string> ids;
    for (int i : indexes) ids.push_back(records_[i].study.nct_id);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  // Runs a full sync of records [0, n) in one page.
  void FullSyncOf(Syncer& syncer, int n, const std::string& timestamp) {
    SetDataTimestamp(timestamp);
    transport_->Enqueue(
        "/studies?",
        FakeHttpTransport::Json(Page({json_.begin(), json_.begin() + n})));
    ASSERT_OK_AND_ASSIGN(SyncReport r, syncer.Sync(SyncMode::kFull));
    ASSERT_EQ(r.inserted + r.updated + r.unchanged, n);
  }

  std::vector<StudyRecord> records_;
  std::vector<std::string> json_;
  std::vector<std::string> statuses_;
  FakeClock clock_;
  std::unique_ptr<store::StudyStore> store_;
  std::shared_ptr<FakeHttpTransport> transport_;
  absl::Mutex mu_;
  std::string data_timestamp_ ABSL_GUARDED_BY(mu_) = "t0";
};

TEST_F(SyncerTest, CreateValidatesAndNormalisesOptions) {
  ctgov::CtgovOptions o;
  o.base_url = "http://ctgov.test/api/v2";
  ASSERT_OK_AND_ASSIGN(ctgov::CtgovClient client,
                       ctgov::CtgovClient::Create(o, transport_, clock_));
  const auto create = [&](SyncOptions s) {
    return Syncer::Create(client, store_.get(), std::move(s), clock_);
  };
  EXPECT_THAT(create({.page_size = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(create({.page_size = 1001}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(create({.reconcile_batch_size = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(create({.overlap = -absl::Hours(1)}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Syncer::Create(client, nullptr, {}, clock_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Syncer> syncer,
                       create({.wanted_statuses = {" recruiting", "RECRUITING",
                                                   "", "Completed"}}));
  EXPECT_THAT(syncer->options().wanted_statuses,
              ElementsAre("RECRUITING", "COMPLETED"));
}

TEST_F(SyncerTest, BadRecordsFromTheUpstreamAreSkippedNotStored) {
  std::string invalid_id = json_[2];
  invalid_id.replace(invalid_id.find(records_[2].study.nct_id), 11, "NCT1");
  SetDataTimestamp("t1");
  transport_->Enqueue(
      "/studies?",
      FakeHttpTransport::Json(
          Page({json_[0], R"({"hasResults":false})", invalid_id, json_[1]})));
  std::unique_ptr<Syncer> syncer = MakeSyncer();
  ASSERT_OK_AND_ASSIGN(SyncReport report, syncer->Sync());
  EXPECT_EQ(report.fetched, 4);
  EXPECT_EQ(report.skipped, 2);
  EXPECT_EQ(report.inserted, 2);
  EXPECT_THAT(report.Summary(), HasSubstr("2 bad records skipped"));
  EXPECT_EQ(ActiveIds(*store_), Ids({0, 1}));
}

TEST_F(SyncerTest, FailedIncrementalKeepsTheWatermarkAndRunsAgainFromIt) {
  std::unique_ptr<Syncer> syncer = MakeSyncer();
  FullSyncOf(*syncer, 4, "t1");
  ASSERT_OK_AND_ASSIGN(store::SyncState before, store_->GetSyncState());

  SetDataTimestamp("t2");
  transport_->Enqueue("/studies?",
                      FakeHttpTransport::Json(Page({json_[4]}, "next-page")));
  transport_->Enqueue("/studies?", FakeHttpTransport::Text(400, "bad token"));
  EXPECT_THAT(syncer->Sync(), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("watermark is unchanged")));
  ASSERT_OK_AND_ASSIGN(store::SyncState failed, store_->GetSyncState());
  EXPECT_EQ(failed.watermark, before.watermark);
  EXPECT_EQ(failed.data_timestamp, "t1");    // so the next sync is not skipped
  EXPECT_EQ(ActiveIds(*store_).size(), 5u);  // the stored page stays

  transport_->Enqueue("/studies?",
                      FakeHttpTransport::Json(Page({json_[4], json_[5]})));
  ASSERT_OK_AND_ASSIGN(SyncReport report, syncer->Sync());
  EXPECT_EQ(report.kind, SyncKind::kIncremental);
  EXPECT_EQ(report.unchanged, 1);
  EXPECT_EQ(report.inserted, 1);
  const std::vector<std::string> urls = transport_->urls();
  const std::string range = absl::StrCat(
      "RANGE%5B", *IncrementalStartDay(before.watermark, absl::Hours(72)));
  EXPECT_THAT(urls[urls.size() - 1], HasSubstr(range));  // the same start
  EXPECT_THAT(urls[urls.size() - 3], HasSubstr(range));
  ASSERT_OK_AND_ASSIGN(store::SyncState after, store_->GetSyncState());
  EXPECT_EQ(after.data_timestamp, "t2");
  EXPECT_EQ(after.watermark,
            LaterDate(LaterDate(before.watermark,
                                records_[4].study.last_update_post_date),
                      records_[5].study.last_update_post_date));
}

TEST_F(SyncerTest, AFullSyncIsDueAfterTheInterval) {
  std::unique_ptr<Syncer> syncer =
      MakeSyncer({.full_sync_interval = absl::Hours(24 * 7)});
  FullSyncOf(*syncer, 3, "t1");
  SetDataTimestamp("t2");

  clock_.Advance(absl::Hours(24 * 6));
  transport_->Enqueue("/studies?", FakeHttpTransport::Json(Page({})));
  ASSERT_OK_AND_ASSIGN(SyncReport incremental, syncer->Sync());
  EXPECT_EQ(incremental.kind, SyncKind::kIncremental);
  EXPECT_THAT(transport_->urls().back(), HasSubstr("filter.advanced"));

  clock_.Advance(absl::Hours(24));
  transport_->Enqueue("/studies?", FakeHttpTransport::Json(
                                       Page({json_[0], json_[1], json_[2]})));
  ASSERT_OK_AND_ASSIGN(SyncReport full, syncer->Sync());
  EXPECT_EQ(full.kind, SyncKind::kFull);
  EXPECT_EQ(full.unchanged, 3);
  EXPECT_THAT(transport_->urls().back(), Not(HasSubstr("filter.advanced")));
}

TEST_F(SyncerTest, OutOfScopeStudiesAreStoredOnlyWhenAlreadyKnown) {
  // Scope: the status of record 0. Records of other statuses exist among
  // the first eight recorded studies (asserted).
  const std::string wanted = statuses_[0];
  int other = -1;
  for (int i = 1; i < 8; ++i) {
    if (statuses_[i] != wanted) other = i;
  }
  ASSERT_GE(other, 0);
  std::unique_ptr<Syncer> syncer = MakeSyncer({.wanted_statuses = {wanted}});
  FullSyncOf(*syncer, 1, "t1");

  // Record 0 now has an unwanted status; record `other` was never stored.
  nlohmann::json changed = nlohmann::json::parse(json_[0]);
  changed["protocolSection"]["statusModule"]["overallStatus"] =
      statuses_[other];
  SetDataTimestamp("t2");
  transport_->Enqueue("/studies?", FakeHttpTransport::Json(
                                       Page({changed.dump(), json_[other]})));
  ASSERT_OK_AND_ASSIGN(SyncReport report, syncer->Sync());
  EXPECT_EQ(report.left_scope, 1);
  EXPECT_EQ(report.ignored, 1);
  EXPECT_THAT(StoredIds(*store_, Lifecycle::kLeftScope),
              ElementsAre(Ids({0})[0]));
  EXPECT_THAT(store_->GetStudy(records_[other].study.nct_id),
              StatusIs(absl::StatusCode::kNotFound));

  // With store_unknown_out_of_scope they are kept (as LEFT_SCOPE).
  std::unique_ptr<Syncer> keep = MakeSyncer(
      {.wanted_statuses = {wanted}, .store_unknown_out_of_scope = true});
  SetDataTimestamp("t3");
  transport_->Enqueue("/studies?",
                      FakeHttpTransport::Json(Page({json_[other]})));
  ASSERT_OK_AND_ASSIGN(SyncReport kept, keep->Sync());
  EXPECT_EQ(kept.inserted, 1);
  ASSERT_OK_AND_ASSIGN(store::StoredStudy s,
                       store_->GetStudy(records_[other].study.nct_id));
  EXPECT_EQ(s.lifecycle, Lifecycle::kLeftScope);
}

TEST_F(SyncerTest, AnInterruptedReconciliationResumesWithoutRefetchingPages) {
  std::unique_ptr<Syncer> syncer = MakeSyncer({.reconcile_batch_size = 2});
  FullSyncOf(*syncer, 6, "t1");

  // The next full sync returns only records 0-1; 2-5 are asked for by id in
  // two batches; the second batch fails.
  transport_->Enqueue("/studies?",
                      FakeHttpTransport::Json(Page({json_[0], json_[1]})));
  transport_->Enqueue("filter.ids=", FakeHttpTransport::Json(Page({json_[2]})));
  transport_->Enqueue("filter.ids=", FakeHttpTransport::Reply(503));
  transport_->Enqueue("filter.ids=", FakeHttpTransport::Reply(503));
  EXPECT_THAT(syncer->Sync(SyncMode::kFull),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("resumes the reconciliation")));
  ASSERT_OK_AND_ASSIGN(store::SyncState state, store_->GetSyncState());
  ASSERT_TRUE(state.full_sync.has_value());
  EXPECT_EQ(state.full_sync->page_token, "");
  EXPECT_EQ(state.full_sync->pages_done, 1);

  // Resumed: no /studies page again, only the ids still unseen (3, 4, 5).
  const size_t before = transport_->request_count();
  transport_->Enqueue("filter.ids=", FakeHttpTransport::Json(Page({json_[3]})));
  transport_->Enqueue("filter.ids=", FakeHttpTransport::Json(Page({})));
  ASSERT_OK_AND_ASSIGN(SyncReport report, syncer->Sync());
  EXPECT_EQ(report.kind, SyncKind::kFull);
  EXPECT_TRUE(report.resumed);
  EXPECT_EQ(report.reconcile_asked, 3);
  EXPECT_EQ(report.reconcile_returned, 1);
  EXPECT_EQ(report.vanished, 2);
  const std::vector<std::string> urls = transport_->urls();
  ASSERT_EQ(urls.size(), before + 3);  // /version + two id batches
  EXPECT_THAT(urls[before + 1], AllOf(HasSubstr("filter.ids=" + Ids({3, 4})[0]),
                                      Not(HasSubstr("pageToken"))));
  EXPECT_EQ(StoredIds(*store_, Lifecycle::kVanished), Ids({4, 5}));
  EXPECT_EQ(ActiveIds(*store_), Ids({0, 1, 2, 3}));
}

}  // namespace
}  // namespace trialmatch::sync

namespace trialmatch::sync {
namespace {

TEST(WantedStatusesFromFlagTest, DefaultsAllAndLists) {
  EXPECT_EQ(WantedStatusesFromFlag({}), DefaultWantedStatuses());
  EXPECT_TRUE(WantedStatusesFromFlag({"ALL"}).empty());
  EXPECT_TRUE(WantedStatusesFromFlag({" all "}).empty());
  EXPECT_EQ(WantedStatusesFromFlag({"COMPLETED", "ALL"}),
            (std::vector<std::string>{"COMPLETED", "ALL"}));
  EXPECT_EQ(WantedStatusesFromFlag({"RECRUITING"}),
            (std::vector<std::string>{"RECRUITING"}));
}

}  // namespace
}  // namespace trialmatch::sync
