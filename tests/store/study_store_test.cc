#include "store/study_store.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/content_hash.h"
#include "store/store_test_util.h"
#include "testing/fake_clock.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;
using ::trialmatch::store::testing::LoadRecords;
using ::trialmatch::store::testing::Modified;
using ::trialmatch::testing::FakeClock;
using ::trialmatch::testing::IsOk;
using ::trialmatch::testing::StatusIs;

enum class Backend { kMemory, kFile };

// Every functional test runs on ":memory:" (one connection) and on a file
// (writer + reader pool), the two code paths of StudyStore::Read.
class StudyStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    Reopen();
  }
  void Reopen() {
    store_.reset();
    StoreOptions options;
    options.clock = &clock_;
    const std::string path = GetParam() == Backend::kMemory
                                 ? ":memory:"
                                 : dir_.File("studies.db").string();
    auto store = StudyStore::Open(path, options);
    ASSERT_OK(store.status());
    store_ = *std::move(store);
  }

  std::vector<std::string> AllIds(StudyFilter filter = {}) {
    filter.include_raw_json = false;
    std::vector<std::string> ids;
    EXPECT_OK(store_->ForEachStudy(filter, [&](const StudyView& v) {
      ids.emplace_back(v.nct_id);
      return absl::OkStatus();
    }));
    return ids;
  }

  static std::vector<std::string> Ids(const std::vector<StudyRecord>& rs) {
    std::vector<std::string> ids;
    for (const StudyRecord& r : rs) ids.push_back(r.study.nct_id);
    return ids;
  }

  trialmatch::testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<StudyStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StudyStoreTest,
                         ::testing::Values(Backend::kMemory, Backend::kFile),
                         [](const ::testing::TestParamInfo<Backend>& p) {
                           return p.param == Backend::kMemory ? "Memory"
                                                              : "File";
                         });

// --- Upsert / Get ------------------------------------------------------------

TEST_P(StudyStoreTest, UpsertThenGetReturnsTheRecordByteForByte) {
  const std::vector<StudyRecord> records = LoadRecords(5);
  ASSERT_OK_AND_ASSIGN(UpsertCounts counts, store_->UpsertStudies(records));
  EXPECT_EQ(counts.inserted, 5);
  EXPECT_EQ(counts.updated + counts.unchanged, 0);
  for (const StudyRecord& r : records) {
    ASSERT_OK_AND_ASSIGN(StoredStudy s, store_->GetStudy(r.study.nct_id));
    EXPECT_EQ(s.nct_id, r.study.nct_id);
    EXPECT_EQ(s.raw_json, r.raw_json);
    EXPECT_EQ(s.content_hash, ContentHash(r.raw_json));
    EXPECT_EQ(s.overall_status, r.study.overall_status);
    EXPECT_EQ(s.last_update_post_date, r.study.last_update_post_date);
    EXPECT_EQ(s.lifecycle, Lifecycle::kActive);
    EXPECT_EQ(s.fetched_at, clock_.Now());
    EXPECT_EQ(s.updated_at, clock_.Now());
  }
}

TEST_P(StudyStoreTest, GetStudyErrors) {
  EXPECT_THAT(store_->GetStudy("NCT99999999"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->GetStudy("NCT123"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->GetStudy("'; DROP TABLE studies; --"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(StudyStoreTest, UpsertIsIdempotentButRefreshesFetchedAt) {
  const std::vector<StudyRecord> records = LoadRecords(4);
  ASSERT_OK(store_->UpsertStudies(records).status());
  const absl::Time first = clock_.Now();
  clock_.Advance(absl::Hours(2));
  ASSERT_OK_AND_ASSIGN(UpsertCounts again, store_->UpsertStudies(records));
  EXPECT_EQ(again.unchanged, 4);
  EXPECT_EQ(
      again.inserted + again.updated + again.left_scope + again.reactivated, 0);
  ASSERT_OK_AND_ASSIGN(StoredStudy s,
                       store_->GetStudy(records[0].study.nct_id));
  EXPECT_EQ(s.fetched_at, first + absl::Hours(2));
  EXPECT_EQ(s.updated_at, first);
  EXPECT_EQ(s.raw_json, records[0].raw_json);
}

TEST_P(StudyStoreTest, ChangedContentIsAnUpdate) {
  const std::vector<StudyRecord> records = LoadRecords(2);
  ASSERT_OK(store_->UpsertStudies(records).status());
  clock_.Advance(absl::Minutes(5));
  const StudyRecord changed = Modified(records[1], "v2");
  ASSERT_OK_AND_ASSIGN(UpsertCounts counts,
                       store_->UpsertStudies({records[0], changed}));
  EXPECT_EQ(counts.updated, 1);
  EXPECT_EQ(counts.unchanged, 1);
  ASSERT_OK_AND_ASSIGN(StoredStudy s, store_->GetStudy(changed.study.nct_id));
  EXPECT_EQ(s.raw_json, changed.raw_json);
  EXPECT_EQ(s.content_hash, ContentHash(changed.raw_json));
  EXPECT_EQ(s.updated_at, clock_.Now());
}

TEST_P(StudyStoreTest, LaterDuplicateInABatchWins) {
  const StudyRecord r = LoadRecords(1)[0];
  const StudyRecord newer = Modified(r, "newer");
  ASSERT_OK_AND_ASSIGN(UpsertCounts counts, store_->UpsertStudies({r, newer}));
  EXPECT_EQ(counts.inserted, 1);
  EXPECT_EQ(counts.updated, 1);
  ASSERT_OK_AND_ASSIGN(StoredStudy s, store_->GetStudy(r.study.nct_id));
  EXPECT_EQ(s.raw_json, newer.raw_json);
}

TEST_P(StudyStoreTest, InvalidRecordRejectsTheWholeBatch) {
  std::vector<StudyRecord> records = LoadRecords(3);
  records[2].study.nct_id = "NCT1";
  EXPECT_THAT(
      store_->UpsertStudies(records),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record 2")));
  records[2] = LoadRecords(3)[2];
  records[1].raw_json.clear();
  EXPECT_THAT(store_->UpsertStudies(records),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(AllIds(), IsEmpty());
}

TEST_P(StudyStoreTest, MultiMegabyteRecordRoundTrips) {
  // The largest recorded study, padded to ~3.6 MB with text that exercises
  // escapes and multi-byte UTF-8, must come back byte for byte.
  const std::string base = trialmatch::testing::ReadFile(
      trialmatch::testing::StudiesDir() / "NCT02513394.json");
  ASSERT_FALSE(base.empty());
  std::string padding;
  while (padding.size() < 2'200'000) {
    padding += "Sjögren \\\"quoted\\\" \\u00e9t\\u00e9 \\n 測試 ";
    padding += std::to_string(padding.size());
  }
  std::string raw = base;
  raw.insert(1, "\"trialmatchPadding\":\"" + padding + "\",");
  ASSERT_GT(raw.size(), 3'600'000u);
  ASSERT_OK_AND_ASSIGN(StudyRecord record, MakeStudyRecord(raw));
  ASSERT_OK(store_->UpsertStudies({record}).status());
  ASSERT_OK_AND_ASSIGN(StoredStudy s, store_->GetStudy(record.study.nct_id));
  EXPECT_EQ(s.raw_json.size(), raw.size());
  EXPECT_TRUE(s.raw_json == raw);
  EXPECT_EQ(s.content_hash, ContentHash(raw));
  size_t seen = 0;
  ASSERT_OK(store_->ForEachStudy({}, [&](const StudyView& v) {
    seen = v.raw_json.size();
    EXPECT_TRUE(v.raw_json == raw);
    return absl::OkStatus();
  }));
  EXPECT_EQ(seen, raw.size());
  ASSERT_OK_AND_ASSIGN(StoreStats stats, store_->GetStats());
  EXPECT_EQ(stats.raw_json_bytes, static_cast<int64_t>(raw.size()));
}

// --- ForEachStudy ------------------------------------------------------------

TEST_P(StudyStoreTest, ForEachStudyFiltersStreamsInIdOrderAndStops) {
  std::vector<StudyRecord> records = LoadRecords(30);
  ASSERT_OK(store_->UpsertStudies(records).status());
  std::vector<std::string> expected = Ids(records);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(AllIds(), expected);

  StudyFilter recruiting;
  recruiting.statuses = {"RECRUITING"};
  std::vector<std::string> want;
  for (const StudyRecord& r : records) {
    if (r.study.overall_status == "RECRUITING") want.push_back(r.study.nct_id);
  }
  std::sort(want.begin(), want.end());
  ASSERT_FALSE(want.empty()) << "test data should have recruiting studies";
  EXPECT_EQ(AllIds(recruiting), want);

  int calls = 0;
  EXPECT_THAT(store_->ForEachStudy(
                  {},
                  [&](const StudyView& v) {
                    EXPECT_FALSE(v.raw_json.empty());
                    EXPECT_EQ(ContentHash(v.raw_json), v.content_hash);
                    return ++calls == 3 ? absl::CancelledError("enough")
                                        : absl::OkStatus();
                  }),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(calls, 3);
}

// --- Lifecycle ---------------------------------------------------------------

TEST_P(StudyStoreTest, UnwantedStatusIsStoredAsLeftScope) {
  const std::vector<StudyRecord> records = LoadRecords(40);
  UpsertOptions options;
  options.wanted_statuses = {"RECRUITING", "NOT_YET_RECRUITING"};
  ASSERT_OK_AND_ASSIGN(UpsertCounts counts,
                       store_->UpsertStudies(records, options));
  int64_t unwanted = 0;
  for (const StudyRecord& r : records) {
    const bool wanted = r.study.overall_status == "RECRUITING" ||
                        r.study.overall_status == "NOT_YET_RECRUITING";
    if (!wanted) ++unwanted;
    ASSERT_OK_AND_ASSIGN(StoredStudy s, store_->GetStudy(r.study.nct_id));
    EXPECT_EQ(s.lifecycle, wanted ? Lifecycle::kActive : Lifecycle::kLeftScope)
        << r.study.nct_id;
  }
  ASSERT_GT(unwanted, 0);
  ASSERT_LT(unwanted, 40);
  EXPECT_EQ(counts.left_scope, unwanted);
  ASSERT_OK_AND_ASSIGN(StoreStats stats, store_->GetStats());
  EXPECT_EQ(stats.left_scope, unwanted);
  EXPECT_EQ(stats.active, 40 - unwanted);
  // The default filter serves ACTIVE studies only.
  EXPECT_EQ(AllIds().size(), static_cast<size_t>(40 - unwanted));
}

TEST_P(StudyStoreTest, ApplyScopeMovesStudiesBothWays) {
  const std::vector<StudyRecord> records = LoadRecords(40);
  ASSERT_OK(store_->UpsertStudies(records).status());
  int64_t recruiting = 0;
  for (const StudyRecord& r : records) {
    recruiting += r.study.overall_status == "RECRUITING";
  }
  ASSERT_GT(recruiting, 0);
  const std::vector<std::string> narrow = {"RECRUITING"};
  ASSERT_OK_AND_ASSIGN(ScopeCounts n, store_->ApplyScope(narrow));
  EXPECT_EQ(n.left_scope, 40 - recruiting);
  EXPECT_EQ(n.reactivated, 0);
  ASSERT_OK_AND_ASSIGN(ScopeCounts wide, store_->ApplyScope({}));
  EXPECT_EQ(wide.left_scope, 0);
  EXPECT_EQ(wide.reactivated, 40 - recruiting);
  EXPECT_EQ(AllIds().size(), 40u);
}

TEST_P(StudyStoreTest, FullSyncReconcileMarksUnseenStudiesVanished) {
  const std::vector<StudyRecord> records = LoadRecords(10);
  ASSERT_OK(store_->UpsertStudies(records).status());

  ASSERT_OK_AND_ASSIGN(FullSyncCursor cursor, store_->BeginFullSync());
  EXPECT_GT(cursor.sync_id, 0);
  EXPECT_EQ(cursor.started_at, clock_.Now());
  EXPECT_EQ(cursor.pages_done, 0);
  // Two pages; the second also carries the cursor forward atomically.
  const std::vector<StudyRecord> page1(records.begin(), records.begin() + 3);
  const std::vector<StudyRecord> page2(records.begin() + 3,
                                       records.begin() + 6);
  UpsertOptions options;
  options.full_sync_id = cursor.sync_id;
  ASSERT_OK(store_->UpsertStudies(page1, options).status());
  ASSERT_OK_AND_ASSIGN(SyncState state, store_->GetSyncState());
  state.full_sync->page_token = "page-2";
  state.full_sync->pages_done = 1;
  options.sync_state = state;
  ASSERT_OK(store_->UpsertStudies(page2, options).status());

  // Resuming returns the stored cursor, not a new sync.
  ASSERT_OK_AND_ASSIGN(FullSyncCursor resumed, store_->BeginFullSync());
  EXPECT_EQ(resumed.sync_id, cursor.sync_id);
  EXPECT_EQ(resumed.page_token, "page-2");
  EXPECT_EQ(resumed.pages_done, 1);

  SyncState done;
  done.last_full_sync_at = clock_.Now();
  done.full_sync = resumed;  // cleared by ReconcileFullSync
  ASSERT_OK_AND_ASSIGN(ReconcileCounts rc,
                       store_->ReconcileFullSync(cursor.sync_id, done));
  EXPECT_EQ(rc.vanished, 4);
  EXPECT_EQ(rc.seen, 6);
  for (size_t i = 0; i < records.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(StoredStudy s,
                         store_->GetStudy(records[i].study.nct_id));
    EXPECT_EQ(s.lifecycle, i < 6 ? Lifecycle::kActive : Lifecycle::kVanished);
  }
  ASSERT_OK_AND_ASSIGN(SyncState after, store_->GetSyncState());
  EXPECT_FALSE(after.full_sync.has_value());
  EXPECT_EQ(after.last_full_sync_at, clock_.Now());

  // The sync is over: its id is refused now, and the next one gets a new id.
  EXPECT_THAT(store_->ReconcileFullSync(cursor.sync_id, done),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store_->UpsertStudies(page1, options),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK_AND_ASSIGN(FullSyncCursor next, store_->BeginFullSync());
  EXPECT_GT(next.sync_id, cursor.sync_id);

  // A vanished study that comes back is active again.
  clock_.Advance(absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(UpsertCounts back, store_->UpsertStudies({records[9]}));
  EXPECT_EQ(back.reactivated, 1);
  EXPECT_EQ(back.unchanged, 1);
  ASSERT_OK_AND_ASSIGN(StoredStudy s,
                       store_->GetStudy(records[9].study.nct_id));
  EXPECT_EQ(s.lifecycle, Lifecycle::kActive);
  EXPECT_EQ(s.lifecycle_changed_at, clock_.Now());
}

TEST_P(StudyStoreTest, ListActiveNotSeenIsWhatReconcileWouldVanish) {
  const std::vector<StudyRecord> records = LoadRecords(6);
  ASSERT_OK(store_->UpsertStudies(records).status());
  ASSERT_OK_AND_ASSIGN(FullSyncCursor cursor, store_->BeginFullSync());
  EXPECT_THAT(store_->ListActiveNotSeen(cursor.sync_id + 1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  UpsertOptions seen;
  seen.full_sync_id = cursor.sync_id;
  ASSERT_OK(store_->UpsertStudies({records[1], records[3]}, seen).status());

  std::vector<std::string> expected;
  for (const StudyRecord& r : records) {
    if (r.study.nct_id != records[1].study.nct_id &&
        r.study.nct_id != records[3].study.nct_id) {
      expected.push_back(r.study.nct_id);
    }
  }
  std::sort(expected.begin(), expected.end());
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> unseen,
                       store_->ListActiveNotSeen(cursor.sync_id));
  EXPECT_EQ(unseen, expected);

  ASSERT_OK_AND_ASSIGN(ReconcileCounts rc,
                       store_->ReconcileFullSync(cursor.sync_id, {}));
  EXPECT_EQ(rc.vanished, static_cast<int64_t>(expected.size()));
  EXPECT_THAT(store_->ListActiveNotSeen(cursor.sync_id),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_P(StudyStoreTest, FailedBatchDoesNotWriteItsSyncState) {
  const std::vector<StudyRecord> records = LoadRecords(2);
  UpsertOptions options;
  options.full_sync_id = 77;  // no such full sync in progress
  SyncState state;
  state.watermark = "2030-01-01";
  options.sync_state = state;
  EXPECT_THAT(store_->UpsertStudies(records, options),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK_AND_ASSIGN(SyncState stored, store_->GetSyncState());
  EXPECT_EQ(stored.watermark, "");
  EXPECT_THAT(AllIds(), IsEmpty());
}

TEST_P(StudyStoreTest, PurgeInactiveDeletesOldNonActiveStudiesEverywhere) {
  const std::vector<StudyRecord> records = LoadRecords(6);
  ASSERT_OK(store_->UpsertStudies(records).status());
  CompiledEntry e;
  e.nct_id = records[5].study.nct_id;
  e.blob = "x";
  ASSERT_OK(store_->PutCompiled({e}));
  ASSERT_OK_AND_ASSIGN(FullSyncCursor c, store_->BeginFullSync());
  UpsertOptions options;
  options.full_sync_id = c.sync_id;
  ASSERT_OK(
      store_->UpsertStudies(absl::MakeConstSpan(records).first(4), options)
          .status());
  ASSERT_OK(store_->ReconcileFullSync(c.sync_id, {}).status());  // 4, 5 vanish
  clock_.Advance(absl::Hours(24 * 31));
  ASSERT_OK_AND_ASSIGN(
      int64_t purged,
      store_->PurgeInactive(clock_.Now() - absl::Hours(24 * 30)));
  EXPECT_EQ(purged, 2);
  EXPECT_THAT(store_->GetStudy(records[5].study.nct_id),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->GetCompiled(records[5].study.nct_id),
              StatusIs(absl::StatusCode::kNotFound));
  LocalSearchQuery q;
  q.term = records[5].study.nct_id;
  q.lifecycles.clear();
  ASSERT_OK_AND_ASSIGN(LocalSearchPage page, store_->SearchLocal(q));
  EXPECT_THAT(page.studies, IsEmpty());
  EXPECT_OK(store_->IntegrityCheck());
  ASSERT_OK_AND_ASSIGN(StoreStats stats, store_->GetStats());
  EXPECT_EQ(stats.studies, 4);
  EXPECT_EQ(stats.compiled_entries, 0);
}

// --- Sync state --------------------------------------------------------------

TEST_P(StudyStoreTest, SyncStateRoundTrips) {
  ASSERT_OK_AND_ASSIGN(SyncState empty, store_->GetSyncState());
  EXPECT_EQ(empty.watermark, "");
  EXPECT_FALSE(empty.last_full_sync_at.has_value());
  EXPECT_FALSE(empty.full_sync.has_value());

  SyncState s;
  s.watermark = "2025-05-01";
  s.data_timestamp = "2025-05-02T09:00:04";
  s.last_full_sync_at = absl::FromUnixSeconds(1'700'000'000);
  s.last_incremental_sync_at = absl::FromUnixMicros(1'700'000'123'456'789);
  s.last_sync_counts = {1, 2, 3, 4, 5, 6};
  s.full_sync = FullSyncCursor{9, "tok==", absl::FromUnixSeconds(5), 7, 700};
  ASSERT_OK(store_->PutSyncState(s));
  if (GetParam() == Backend::kFile) Reopen();
  ASSERT_OK_AND_ASSIGN(SyncState got, store_->GetSyncState());
  EXPECT_EQ(got.watermark, s.watermark);
  EXPECT_EQ(got.data_timestamp, s.data_timestamp);
  EXPECT_EQ(got.last_full_sync_at, s.last_full_sync_at);
  EXPECT_EQ(got.last_incremental_sync_at, s.last_incremental_sync_at);
  EXPECT_EQ(got.last_sync_counts.fetched, 1);
  EXPECT_EQ(got.last_sync_counts.vanished, 6);
  ASSERT_TRUE(got.full_sync.has_value());
  EXPECT_EQ(got.full_sync->sync_id, 9);
  EXPECT_EQ(got.full_sync->page_token, "tok==");
  EXPECT_EQ(got.full_sync->started_at, absl::FromUnixSeconds(5));
  EXPECT_EQ(got.full_sync->pages_done, 7);
  EXPECT_EQ(got.full_sync->studies_seen, 700);

  // BeginFullSync resumes that cursor; once cleared, ids keep increasing.
  ASSERT_OK_AND_ASSIGN(FullSyncCursor c, store_->BeginFullSync());
  EXPECT_EQ(c.sync_id, 9);
  s.full_sync.reset();
  ASSERT_OK(store_->PutSyncState(s));
  ASSERT_OK_AND_ASSIGN(FullSyncCursor next, store_->BeginFullSync());
  EXPECT_EQ(next.sync_id, 10);

  SyncState bad;
  bad.full_sync = FullSyncCursor{};
  EXPECT_THAT(store_->PutSyncState(bad),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- Compiled criteria -------------------------------------------------------

TEST_P(StudyStoreTest, CompiledEntriesRoundTripAndStalenessIsListed) {
  std::vector<StudyRecord> records = LoadRecords(4);
  ASSERT_OK(store_->UpsertStudies(records).status());
  std::vector<CompiledEntry> entries;
  for (int i = 0; i < 3; ++i) {
    CompiledEntry e;
    e.nct_id = records[i].study.nct_id;
    e.compiler_version = "c1";
    e.rules_version = "r1";
    e.content_hash = ContentHash(records[i].raw_json);
    e.blob = std::string("\0binary\xff", 8) + e.nct_id;
    entries.push_back(e);
  }
  clock_.Advance(absl::Seconds(30));
  ASSERT_OK(store_->PutCompiled(entries));
  ASSERT_OK_AND_ASSIGN(CompiledEntry got,
                       store_->GetCompiled(entries[1].nct_id));
  EXPECT_EQ(got.blob, entries[1].blob);
  EXPECT_EQ(got.compiler_version, "c1");
  EXPECT_EQ(got.rules_version, "r1");
  EXPECT_EQ(got.content_hash, entries[1].content_hash);
  EXPECT_EQ(got.compiled_at, clock_.Now());
  EXPECT_THAT(store_->GetCompiled(records[3].study.nct_id),
              StatusIs(absl::StatusCode::kNotFound));

  StaleQuery current{"c1", "r1"};
  ASSERT_OK_AND_ASSIGN(std::vector<StaleStudy> stale,
                       store_->ListStaleCompiled(current));
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].nct_id, records[3].study.nct_id);
  EXPECT_EQ(stale[0].reason, StaleReason::kMissing);

  // The study changes upstream: its entry is now stale by content.
  ASSERT_OK(store_->UpsertStudies({Modified(records[0], "x")}).status());
  ASSERT_OK_AND_ASSIGN(stale, store_->ListStaleCompiled(current));
  ASSERT_EQ(stale.size(), 2u);
  EXPECT_EQ(stale[0].nct_id, records[0].study.nct_id);
  EXPECT_EQ(stale[0].reason, StaleReason::kContentChanged);
  EXPECT_EQ(stale[0].content_hash,
            ContentHash(Modified(records[0], "x").raw_json));

  // New rules: every compiled entry is stale by version.
  ASSERT_OK_AND_ASSIGN(stale,
                       store_->ListStaleCompiled(StaleQuery{"c1", "r2"}));
  ASSERT_EQ(stale.size(), 4u);
  EXPECT_EQ(stale[1].reason, StaleReason::kVersionChanged);
  EXPECT_EQ(stale[3].reason, StaleReason::kMissing);
  StaleQuery limited{"c1", "r2"};
  limited.limit = 2;
  ASSERT_OK_AND_ASSIGN(stale, store_->ListStaleCompiled(limited));
  EXPECT_EQ(stale.size(), 2u);

  // Recompiling makes it fresh again.
  entries[0].content_hash = ContentHash(Modified(records[0], "x").raw_json);
  ASSERT_OK(store_->PutCompiled({entries[0]}));
  ASSERT_OK_AND_ASSIGN(stale, store_->ListStaleCompiled(current));
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].nct_id, records[3].study.nct_id);

  // ForEachStudy can hand out the compiled blob with each study.
  StudyFilter with_compiled;
  with_compiled.include_compiled = true;
  with_compiled.include_raw_json = false;
  int with = 0;
  ASSERT_OK(store_->ForEachStudy(with_compiled, [&](const StudyView& v) {
    if (v.has_compiled) {
      ++with;
      EXPECT_EQ(v.compiled_blob.substr(8), v.nct_id);
      EXPECT_EQ(v.compiler_version, "c1");
    }
    return absl::OkStatus();
  }));
  EXPECT_EQ(with, 3);
}

TEST_P(StudyStoreTest, PutCompiledForAnUnknownStudyWritesNothing) {
  const std::vector<StudyRecord> records = LoadRecords(1);
  ASSERT_OK(store_->UpsertStudies(records).status());
  CompiledEntry known{records[0].study.nct_id, "c", "r", 1, "blob", {}};
  CompiledEntry unknown{"NCT99999998", "c", "r", 1, "blob", {}};
  EXPECT_THAT(store_->PutCompiled({known, unknown}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("NCT99999998")));
  EXPECT_THAT(store_->GetCompiled(known.nct_id),
              StatusIs(absl::StatusCode::kNotFound));
  CompiledEntry malformed{"nct1", "c", "r", 1, "blob", {}};
  EXPECT_THAT(store_->PutCompiled({malformed}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- Endpoint cache ----------------------------------------------------------

TEST_P(StudyStoreTest, EndpointCacheReportsAge) {
  EXPECT_THAT(store_->GetCachedResponse("metadata", ""),
              StatusIs(absl::StatusCode::kNotFound));
  const absl::Time t0 = clock_.Now();
  const std::string body = std::string("{\"a\":1}\0tail", 12);
  ASSERT_OK(store_->PutCachedResponse("metadata", "", body));
  ASSERT_OK(store_->PutCachedResponse("enums", "", "[1]"));
  ASSERT_OK(store_->PutCachedResponse("enums", "types=Phase", "[2]"));
  clock_.Advance(absl::Seconds(90));
  ASSERT_OK_AND_ASSIGN(CachedResponse got,
                       store_->GetCachedResponse("metadata", ""));
  EXPECT_EQ(got.body, body);
  EXPECT_EQ(got.fetched_at, t0);
  EXPECT_EQ(got.age, absl::Seconds(90));
  ASSERT_OK_AND_ASSIGN(got, store_->GetCachedResponse("enums", "types=Phase"));
  EXPECT_EQ(got.body, "[2]");
  ASSERT_OK(store_->PutCachedResponse("enums", "types=Phase", "[3]"));
  ASSERT_OK_AND_ASSIGN(got, store_->GetCachedResponse("enums", "types=Phase"));
  EXPECT_EQ(got.body, "[3]");
  EXPECT_EQ(got.age, absl::ZeroDuration());
  // A clock that went backwards never yields a negative age.
  clock_.Advance(-absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(got, store_->GetCachedResponse("enums", ""));
  EXPECT_EQ(got.age, absl::ZeroDuration());
  EXPECT_THAT(store_->PutCachedResponse("", "", "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(StoreStats stats, store_->GetStats());
  EXPECT_EQ(stats.endpoint_entries, 3);
}

// --- Maintenance -------------------------------------------------------------

TEST_P(StudyStoreTest, IntegrityCheckAndCheckpointPassOnAFreshStore) {
  ASSERT_OK(store_->UpsertStudies(LoadRecords(20)).status());
  EXPECT_OK(store_->IntegrityCheck());
  EXPECT_OK(store_->Checkpoint());
  ASSERT_OK_AND_ASSIGN(StoreStats stats, store_->GetStats());
  EXPECT_EQ(stats.studies, 20);
  EXPECT_GT(stats.file_bytes, stats.raw_json_bytes);
}

}  // namespace
}  // namespace trialmatch::store
