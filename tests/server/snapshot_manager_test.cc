// LoadSnapshot on a store of recorded studies (ACTIVE only, stored compiled
// entries reused, stale ones compiled, an empty store), SnapshotHolder swaps
// under concurrent readers, and the SnapshotManager's thread (first build,
// rebuild on request, coalescing, failures keep the current snapshot, Stop
// cancels a build), snapshot files (saved, read while fresh, refused once
// the store moved on or damaged) and the manager's initial load / persist /
// is_current hooks.
#include "server/snapshot_manager.h"

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/strings.h"
#include "criteria/compiler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "match/matcher.h"
#include "match/snapshot.h"
#include "match/snapshot_io.h"
#include "server/match_fixture.h"
#include "sync/criteria_refresh.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::server {
namespace {

using ::testing::HasSubstr;
using ::trialmatch::testing::StatusIs;
using ::trialmatch::testing::TempDir;
using namespace ::trialmatch::server::testing;  // NOLINT: fixture names

class LoadSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    ASSERT_NE(ProjectRules(), nullptr);
  }
  TempDir dir_;
};

TEST_F(LoadSnapshotTest, ActiveStudiesOnlyCompiledNowThenFromTheStore) {
  std::vector<std::string> ids = RecruitingIds();
  ids.push_back(kCompletedLymphoma);  // stored LEFT_SCOPE
  std::unique_ptr<store::StudyStore> store =
      SeededStore(dir_.File("s.db").string(), ids);
  ASSERT_NE(store, nullptr);

  // Nothing compiled is stored yet: every study is compiled now.
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot first,
                       LoadSnapshot(*store, ProjectRules(), {.threads = 2}));
  EXPECT_EQ(first.snapshot->size(), RecruitingIds().size());
  EXPECT_EQ(first.report.studies, static_cast<int64_t>(RecruitingIds().size()));
  EXPECT_EQ(first.report.compiled, first.report.studies);
  EXPECT_EQ(first.report.from_store, 0);
  EXPECT_EQ(first.report.failed, 0);
  EXPECT_EQ(first.rules_version, ProjectRules()->version());
  EXPECT_EQ(first.compiler_version, criteria::kCompilerVersion);
  EXPECT_EQ(first.generation, 0);  // set by the holder
  for (const std::string& id : RecruitingIds()) {
    EXPECT_TRUE(first.snapshot->Find(id).has_value()) << id;
  }
  EXPECT_FALSE(first.snapshot->Find(kCompletedLymphoma).has_value());

  // Once the refresher stored the compiled entries, they are used as is.
  const criteria::Compiler compiler(ProjectRules());
  ASSERT_OK(sync::RefreshCompiledCriteria(*store, compiler).status());
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot second,
                       LoadSnapshot(*store, ProjectRules(), {.threads = 1}));
  EXPECT_EQ(second.report.from_store, second.report.studies);
  EXPECT_EQ(second.report.compiled, 0);
  EXPECT_EQ(second.snapshot->size(), first.snapshot->size());
  EXPECT_THAT(second.report.Summary(),
              HasSubstr("snapshot of 6 studies (6 with stored compiled"));
}

TEST_F(LoadSnapshotTest, EmptyStoreGivesAnEmptySnapshot) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::StudyStore> store,
                       store::StudyStore::Open(dir_.File("e.db").string()));
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot loaded,
                       LoadSnapshot(*store, ProjectRules()));
  ASSERT_NE(loaded.snapshot, nullptr);
  EXPECT_EQ(loaded.snapshot->size(), 0u);
}

TEST_F(LoadSnapshotTest, CancelledAndBadOptions) {
  std::unique_ptr<store::StudyStore> store =
      SeededStore(dir_.File("c.db").string(), RecruitingIds());
  ASSERT_NE(store, nullptr);
  std::atomic<bool> cancelled{true};
  SnapshotLoadOptions options;
  options.cancelled = &cancelled;
  EXPECT_EQ(LoadSnapshot(*store, ProjectRules(), options).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(
      LoadSnapshot(*store, ProjectRules(), {.threads = -1}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadSnapshot(*store, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A snapshot of `n` hand-made studies (their count identifies it).
LoadedSnapshot SnapshotOfSize(int n) {
  match::SnapshotBuilder builder;
  for (int i = 0; i < n; ++i) {
    model::Study study;
    study.nct_id = absl::StrFormat("NCT%08d", i + 1);
    study.overall_status = "RECRUITING";
    criteria::CompiledStudy compiled;
    compiled.nct_id = study.nct_id;
    EXPECT_OK(builder.Add(study, compiled));
  }
  LoadedSnapshot loaded;
  loaded.snapshot = std::move(builder).Build();
  return loaded;
}

TEST(SnapshotHolderTest, GenerationsAndReadersKeepTheirSnapshot) {
  SnapshotHolder holder;
  EXPECT_EQ(holder.Current(), nullptr);
  std::shared_ptr<const LoadedSnapshot> one = holder.Install(SnapshotOfSize(1));
  EXPECT_EQ(one->generation, 1);
  EXPECT_EQ(holder.Current(), one);
  std::shared_ptr<const LoadedSnapshot> reader = holder.Current();
  std::weak_ptr<const LoadedSnapshot> watch = reader;
  one.reset();
  std::shared_ptr<const LoadedSnapshot> two = holder.Install(SnapshotOfSize(2));
  EXPECT_EQ(two->generation, 2);
  EXPECT_EQ(holder.Current()->snapshot->size(), 2u);
  // The reader still has generation 1, intact, until it lets go.
  EXPECT_EQ(reader->generation, 1);
  EXPECT_EQ(reader->snapshot->size(), 1u);
  EXPECT_FALSE(watch.expired());
  reader.reset();
  EXPECT_TRUE(watch.expired());
}

TEST(SnapshotHolderTest, SwapsUnderConcurrentReaders) {
  // Generation g holds g % 5 + 1 studies; readers check every snapshot they
  // see is whole and generations never go back.
  SnapshotHolder holder;
  holder.Install(SnapshotOfSize(2));  // generation 1
  std::vector<LoadedSnapshot> prepared;
  constexpr int kSwaps = 200;
  for (int g = 2; g <= kSwaps + 1; ++g)
    prepared.push_back(SnapshotOfSize(g % 5 + 1));
  std::atomic<bool> done{false};
  std::atomic<int64_t> reads{0};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      int64_t last = 0;
      while (!done.load(std::memory_order_acquire)) {
        std::shared_ptr<const LoadedSnapshot> s = holder.Current();
        if (s == nullptr || s->generation < last ||
            s->snapshot->size() != static_cast<size_t>(s->generation % 5 + 1) ||
            !s->snapshot->Find("NCT00000001").has_value()) {
          bad.fetch_add(1);
        }
        last = s == nullptr ? last : s->generation;
        reads.fetch_add(1);
      }
    });
  }
  for (LoadedSnapshot& p : prepared) holder.Install(std::move(p));
  // Let the readers see the last one too.
  while (reads.load() < 1000) std::this_thread::yield();
  done.store(true, std::memory_order_release);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(holder.Current()->generation, kSwaps + 1);
}

// A load function the test drives: counts calls, can fail, can block.
class ScriptedLoad {
 public:
  SnapshotManager::LoadFn Fn() {
    return [this](const std::atomic<bool>& cancelled)
               -> absl::StatusOr<LoadedSnapshot> {
      absl::MutexLock lock(&mu_);
      ++calls_;
      if (block_) {
        auto released = [this, &cancelled]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                            mu_) { return !block_ || cancelled.load(); };
        blocked_ = true;
        // `cancelled` is not under mu_: look again every millisecond.
        while (!mu_.AwaitWithTimeout(absl::Condition(&released),
                                     absl::Milliseconds(1))) {
        }
        blocked_ = false;
        if (cancelled.load()) return absl::CancelledError("stopped");
      }
      if (!fail_.ok()) return fail_;
      return SnapshotOfSize(calls_);
    };
  }
  void Fail(absl::Status s) {
    absl::MutexLock lock(&mu_);
    fail_ = std::move(s);
  }
  void Block(bool b) {
    absl::MutexLock lock(&mu_);
    block_ = b;
  }
  void AwaitBlocked() {
    absl::MutexLock lock(&mu_);
    auto is = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return blocked_; };
    mu_.Await(absl::Condition(&is));
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_ ABSL_GUARDED_BY(mu_);
  bool block_ ABSL_GUARDED_BY(mu_) = false;
  bool blocked_ ABSL_GUARDED_BY(mu_) = false;
};

// Collects installed generations.
class Installed {
 public:
  SnapshotManager::InstalledFn Fn() {
    return [this](const LoadedSnapshot& s) {
      absl::MutexLock lock(&mu_);
      generations_.push_back(s.generation);
    };
  }
  void AwaitCount(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return generations_.size() >= n;
    };
    mu_.Await(absl::Condition(&enough));
  }
  std::vector<int64_t> generations() {
    absl::MutexLock lock(&mu_);
    return generations_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int64_t> generations_ ABSL_GUARDED_BY(mu_);
};

TEST(SnapshotManagerTest, BuildsAtStartAndOnRequest) {
  SnapshotHolder holder;
  ScriptedLoad load;
  Installed installed;
  SnapshotManager manager(&holder, load.Fn(), {}, nullptr, installed.Fn());
  EXPECT_EQ(holder.Current(), nullptr);  // not started
  manager.Start();
  installed.AwaitCount(1);
  EXPECT_EQ(holder.Current()->generation, 1);
  manager.RequestRebuild();
  installed.AwaitCount(2);
  EXPECT_EQ(holder.Current()->generation, 2);
  EXPECT_EQ(holder.Current()->snapshot->size(), 2u);  // the second load's
  manager.Stop();
  EXPECT_EQ(manager.status().builds, 2);
  EXPECT_EQ(installed.generations(), (std::vector<int64_t>{1, 2}));
}

TEST(SnapshotManagerTest, RequestsDuringPrepareAreServedByThatBuild) {
  SnapshotHolder holder;
  ScriptedLoad load;
  absl::Notification in_prepare;
  absl::Notification release;
  std::atomic<int> prepares{0};
  SnapshotManager manager(&holder, load.Fn(), {}, [&] {
    if (prepares.fetch_add(1) == 0) {
      in_prepare.Notify();
      release.WaitForNotification();
    }
  });
  manager.Start();
  in_prepare.WaitForNotification();
  manager.RequestRebuild();  // e.g. the refresher's "recompiled" callback
  manager.RequestRebuild();
  release.Notify();
  // RebuildNow serialises with the thread's build: once it returns, the
  // thread's build is over, and the requests it absorbed caused no other.
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const LoadedSnapshot> now,
                       manager.RebuildNow());
  EXPECT_EQ(now->generation, 2);
  manager.Stop();
  EXPECT_EQ(load.calls(), 2);
}

TEST(SnapshotManagerTest, FailedRebuildKeepsTheCurrentSnapshotAndRetries) {
  SnapshotHolder holder;
  ScriptedLoad load;
  Installed installed;
  SnapshotManager manager(&holder, load.Fn(),
                          {.retry_interval = absl::Milliseconds(1)}, nullptr,
                          installed.Fn());
  manager.Start();
  installed.AwaitCount(1);
  load.Fail(absl::UnavailableError("store locked"));
  EXPECT_EQ(manager.RebuildNow().status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(holder.Current()->generation, 1);  // kept
  EXPECT_EQ(manager.status().failures, 1);
  EXPECT_THAT(manager.status().last_error.message(), HasSubstr("locked"));
  // The thread's own failure schedules a retry, which succeeds once the
  // store is back.
  manager.RequestRebuild();
  while (manager.status().failures < 2) std::this_thread::yield();
  load.Fail(absl::OkStatus());
  installed.AwaitCount(2);
  EXPECT_EQ(holder.Current()->generation, 2);
  EXPECT_TRUE(manager.status().last_error.ok());
  manager.Stop();
}

TEST(SnapshotManagerTest, StopCancelsABuildInProgress) {
  SnapshotHolder holder;
  ScriptedLoad load;
  load.Block(true);
  SnapshotManager manager(&holder, load.Fn());
  manager.Start();
  load.AwaitBlocked();
  manager.Stop();  // returns: the load saw `cancelled`
  EXPECT_EQ(holder.Current(), nullptr);
  manager.Stop();  // idempotent
}

// --- Snapshot files ----------------------------------------------------------

// Ranked NCT ids and scores of one patient, for comparing snapshots.
std::string Ranking(const match::Snapshot& snap) {
  patient::Profile p;
  p.age_years = 50;
  p.sex = patient::Sex::kFemale;
  match::MatchOptions o;
  o.verdicts.clear();
  o.statuses.clear();
  o.require_condition_match = false;
  o.include_explanations = true;
  absl::StatusOr<match::MatchResponse> r = match::Matcher().Match(snap, p, o);
  EXPECT_TRUE(r.ok()) << r.status();
  std::string out;
  if (!r.ok()) return out;
  for (const match::MatchResult& m : r->results) {
    absl::StrAppend(&out, common::ToAbsl(m.nct_id), " ",
                    absl::StrFormat("%.17g", m.score), " ",
                    m.explanations.size(), "\n");
  }
  return out;
}

TEST_F(LoadSnapshotTest, SavedFileIsReadWhileFreshAndRefusedOnceStale) {
  const std::string store_path = dir_.File("s.db").string();
  std::unique_ptr<store::StudyStore> store =
      SeededStore(store_path, RecruitingIds());
  ASSERT_NE(store, nullptr);
  const std::string path = DefaultSnapshotPath(store_path);
  EXPECT_EQ(path, store_path + ".snapshot");
  EXPECT_EQ(DefaultSnapshotPath(":memory:"), "");
  EXPECT_EQ(SnapshotFilePath("", store_path), path);
  EXPECT_EQ(SnapshotFilePath("none", store_path), "");
  EXPECT_EQ(SnapshotFilePath("/x/y", store_path), "/x/y");

  ASSERT_OK_AND_ASSIGN(LoadedSnapshot built,
                       LoadSnapshot(*store, ProjectRules(), {.threads = 2}));
  ASSERT_TRUE(built.key.has_value());
  ASSERT_OK_AND_ASSIGN(match::SnapshotKey key,
                       SnapshotKeyOf(*store, *ProjectRules()));
  EXPECT_EQ(*built.key, key);
  EXPECT_EQ(key.rules_version, ProjectRules()->version());
  EXPECT_TRUE(IsCurrent(&built, *store, *ProjectRules()));
  EXPECT_FALSE(IsCurrent(nullptr, *store, *ProjectRules()));

  EXPECT_THAT(LoadSnapshotFile(*store, ProjectRules(), path),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(SaveSnapshotFile(built, path));
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot read,
                       LoadSnapshotFile(*store, ProjectRules(), path));
  EXPECT_TRUE(read.from_file);
  EXPECT_FALSE(built.from_file);
  EXPECT_EQ(read.key, built.key);
  EXPECT_EQ(read.snapshot->size(), built.snapshot->size());
  EXPECT_EQ(read.snapshot->options().rules, ProjectRules());
  EXPECT_EQ(read.report.studies, built.report.studies);
  EXPECT_THAT(read.report.Summary(),
              HasSubstr("snapshot of 6 studies read from " + path));
  EXPECT_EQ(Ranking(*read.snapshot), Ranking(*built.snapshot));
  EXPECT_FALSE(Ranking(*read.snapshot).empty());
  EXPECT_TRUE(IsCurrent(&read, *store, *ProjectRules()));

  // The refresher stores compiled entries: the store moved on.
  const criteria::Compiler compiler(ProjectRules());
  ASSERT_OK(sync::RefreshCompiledCriteria(*store, compiler).status());
  EXPECT_FALSE(IsCurrent(&read, *store, *ProjectRules()));
  EXPECT_THAT(
      LoadSnapshotFile(*store, ProjectRules(), path),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("stale")));
  // Rebuilt and saved: fresh again; a lifecycle change makes it stale.
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot rebuilt,
                       LoadSnapshot(*store, ProjectRules(), {.threads = 1}));
  ASSERT_OK(SaveSnapshotFile(rebuilt, path));
  ASSERT_OK(LoadSnapshotFile(*store, ProjectRules(), path).status());
  ASSERT_OK(store->ApplyScope({"COMPLETED"}).status());  // all leave
  EXPECT_THAT(LoadSnapshotFile(*store, ProjectRules(), path),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  LoadedSnapshot keyless = built;
  keyless.key.reset();
  EXPECT_THAT(SaveSnapshotFile(keyless, path),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(LoadSnapshotTest, DamagedFileIsDataLoss) {
  const std::string store_path = dir_.File("s.db").string();
  std::unique_ptr<store::StudyStore> store =
      SeededStore(store_path, RecruitingIds());
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot built,
                       LoadSnapshot(*store, ProjectRules(), {.threads = 1}));
  const std::string path = DefaultSnapshotPath(store_path);
  ASSERT_OK(SaveSnapshotFile(built, path));
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 100);
  EXPECT_THAT(LoadSnapshotFile(*store, ProjectRules(), path),
              StatusIs(absl::StatusCode::kDataLoss));
}

// A loaded snapshot of `n` studies with a key, as LoadSnapshotFile gives.
LoadedSnapshot FromFile(int n) {
  LoadedSnapshot l = SnapshotOfSize(n);
  l.from_file = true;
  l.key = match::SnapshotKey{};
  return l;
}

TEST(SnapshotManagerTest, InitialLoadServesFirstThenBuildsOnlyWhenStale) {
  SnapshotHolder holder;
  ScriptedLoad load;
  Installed installed;
  std::atomic<int> persisted{0};
  std::atomic<bool> current{true};
  std::atomic<int> prepares{0};
  SnapshotManagerOptions options;
  options.initial_load = [] { return FromFile(7); };
  options.persist = [&](const LoadedSnapshot& l) {
    EXPECT_FALSE(l.from_file);
    ++persisted;
  };
  std::atomic<int> checks{0};
  options.is_current = [&] {
    const bool answer = current.load();
    ++checks;  // after reading: the answer is given
    return answer;
  };
  SnapshotManager manager(
      &holder, load.Fn(), options, [&] { ++prepares; }, installed.Fn());
  manager.Start();
  installed.AwaitCount(1);
  EXPECT_EQ(holder.Current()->snapshot->size(), 7u);  // from the file
  EXPECT_TRUE(holder.Current()->from_file);
  // A rebuild request while the snapshot is current: prepare runs (the
  // refresher pass), no load, nothing installed or saved.
  manager.RequestRebuild();
  while (checks.load() < 1) std::this_thread::yield();
  EXPECT_EQ(prepares.load(), 1);
  current = false;
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const LoadedSnapshot> now,
                       manager.RebuildNow());
  EXPECT_EQ(load.calls(), 1);  // RebuildNow's only
  EXPECT_EQ(now->generation, 2);
  EXPECT_EQ(persisted.load(), 1);
  // Stale now: the thread builds and saves.
  manager.RequestRebuild();
  installed.AwaitCount(3);
  EXPECT_EQ(load.calls(), 2);
  manager.Stop();  // joins: the save after that install is done
  EXPECT_EQ(persisted.load(), 2);
}

TEST(SnapshotManagerTest, FailedInitialLoadFallsBackToABuild) {
  SnapshotHolder holder;
  ScriptedLoad load;
  Installed installed;
  std::atomic<int> persisted{0};
  SnapshotManagerOptions options;
  options.initial_load = []() -> absl::StatusOr<LoadedSnapshot> {
    return absl::DataLossError("snapshot file corrupt (CRC mismatch)");
  };
  options.persist = [&](const LoadedSnapshot&) { ++persisted; };
  SnapshotManager manager(&holder, load.Fn(), options, nullptr, installed.Fn());
  manager.Start();
  installed.AwaitCount(1);
  EXPECT_EQ(load.calls(), 1);
  EXPECT_FALSE(holder.Current()->from_file);
  EXPECT_EQ(holder.Current()->generation, 1);
  manager.Stop();
  EXPECT_EQ(persisted.load(), 1);
}

}  // namespace
}  // namespace trialmatch::server
