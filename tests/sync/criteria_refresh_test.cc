// The compiled-criteria pipeline over a real store file and the real rules:
// first compile, no-op rerun, changed study, changed rules version, threads,
// failures (unreadable record, locked store, cancellation), LoadOrCompile,
// and the CriteriaRefresher (rules reloads, callbacks, its thread).
#include "sync/criteria_refresh.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "criteria/compiler.h"
#include "criteria/criteria_test_util.h"
#include "criteria/json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "store/study_store.h"
#include "testing/fake_clock.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::sync {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::trialmatch::testing::FakeClock;
using ::trialmatch::testing::ReadFile;
using ::trialmatch::testing::SourceDir;
using ::trialmatch::testing::StudiesDir;
using ::trialmatch::testing::TempDir;

constexpr int kStudies = 24;

std::shared_ptr<const criteria::RuleSet> SourceRules() {
  return criteria::testing::ProjectRules();
}

// A copy of rules/*.textproto in `dir` (which the test may then edit).
void CopyRules(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  for (const auto& e :
       std::filesystem::directory_iterator(SourceDir() / "rules")) {
    if (e.path().extension() == ".textproto") {
      std::filesystem::copy_file(e.path(), dir / e.path().filename());
    }
  }
}

void AppendTo(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::app);
  out << text;
}

// The study's eligibility text with `line` appended.
std::string WithExtraCriterion(const std::string& raw_json,
                               const std::string& line) {
  nlohmann::json j = nlohmann::json::parse(raw_json);
  std::string& text =
      j["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
          .get_ref<std::string&>();
  text += "\n* " + line;
  return j.dump();
}

bool HasQuantity(const criteria::CompiledStudy& cs, const std::string& q) {
  return std::any_of(
      cs.predicates.begin(), cs.predicates.end(),
      [&](const criteria::Predicate& p) { return p.quantity == q; });
}

class CriteriaRefreshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    ASSERT_NE(SourceRules(), nullptr);
    store::StoreOptions options;
    options.clock = &clock_;
    options.busy_timeout = absl::Milliseconds(50);
    ASSERT_OK_AND_ASSIGN(
        store_,
        store::StudyStore::Open(dir_.File("studies.db").string(), options));
    ids_ = trialmatch::testing::RecordedIds(kStudies);
    std::vector<store::StudyRecord> batch;
    for (const std::string& id : ids_) {
      ASSERT_OK_AND_ASSIGN(
          store::StudyRecord r,
          store::MakeStudyRecord(ReadFile(StudiesDir() / (id + ".json"))));
      batch.push_back(std::move(r));
    }
    ASSERT_OK(store_->UpsertStudies(batch));
  }

  // The stored entry, decoded.
  criteria::CompiledStudy Stored(const std::string& id) {
    absl::StatusOr<store::CompiledEntry> e = store_->GetCompiled(id);
    EXPECT_OK(e);
    if (!e.ok()) return {};
    absl::StatusOr<criteria::CompiledStudy> cs = criteria::FromJson(e->blob);
    EXPECT_OK(cs);
    return cs.ok() ? *cs : criteria::CompiledStudy{};
  }

  FakeClock clock_;
  TempDir dir_;
  std::unique_ptr<store::StudyStore> store_;
  std::vector<std::string> ids_;
  criteria::Compiler compiler_{SourceRules()};
};

TEST_F(CriteriaRefreshTest, FirstRunCompilesEveryStudyAsTheCompilerDoes) {
  std::vector<Progress> progress;
  RefreshOptions options;
  options.batch_size = 5;
  options.progress = [&](const Progress& p) { progress.push_back(p); };
  ASSERT_OK_AND_ASSIGN(RefreshReport report,
                       RefreshCompiledCriteria(*store_, compiler_, options));
  EXPECT_EQ(report.stale, kStudies);
  EXPECT_EQ(report.missing, kStudies);
  EXPECT_EQ(report.compiled, kStudies);
  EXPECT_EQ(report.failed, 0);
  EXPECT_TRUE(report.changed());
  EXPECT_EQ(report.rules_version, SourceRules()->version());
  EXPECT_THAT(report.Summary(),
              HasSubstr("compiled criteria of 24 studies (24 new)"));

  for (const std::string& id : ids_) {
    SCOPED_TRACE(id);
    ASSERT_OK_AND_ASSIGN(store::CompiledEntry e, store_->GetCompiled(id));
    ASSERT_OK_AND_ASSIGN(store::StoredStudy s, store_->GetStudy(id));
    EXPECT_EQ(e.compiler_version, criteria::kCompilerVersion);
    EXPECT_EQ(e.rules_version, SourceRules()->version());
    EXPECT_EQ(e.content_hash, s.content_hash);
    ASSERT_OK_AND_ASSIGN(model::Study study, model::ParseStudy(s.raw_json));
    EXPECT_EQ(e.blob, criteria::ToJson(compiler_.Compile(study)));
  }
  // Progress after each batch of 5, counting up to the total.
  ASSERT_THAT(progress, SizeIs(5));
  EXPECT_EQ(progress.back().studies, kStudies);
  EXPECT_EQ(progress.back().total_studies, kStudies);
  EXPECT_EQ(progress.back().task, "compile criteria");
  for (std::size_t i = 1; i < progress.size(); ++i) {
    EXPECT_GT(progress[i].studies, progress[i - 1].studies);
  }
}

TEST_F(CriteriaRefreshTest, SecondRunDoesNothing) {
  ASSERT_OK(RefreshCompiledCriteria(*store_, compiler_));
  ASSERT_OK_AND_ASSIGN(store::CompiledEntry before,
                       store_->GetCompiled(ids_[3]));
  clock_.Advance(absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(RefreshReport report,
                       RefreshCompiledCriteria(*store_, compiler_));
  EXPECT_EQ(report.stale, 0);
  EXPECT_EQ(report.compiled, 0);
  EXPECT_FALSE(report.changed());
  EXPECT_THAT(report.Summary(), HasSubstr("up to date"));
  ASSERT_OK_AND_ASSIGN(store::CompiledEntry after,
                       store_->GetCompiled(ids_[3]));
  EXPECT_EQ(after.compiled_at, before.compiled_at);  // not rewritten
}

TEST_F(CriteriaRefreshTest, ChangedStudyIsRecompiledAlone) {
  ASSERT_OK(RefreshCompiledCriteria(*store_, compiler_));
  // A study whose criteria say nothing of platelets gets a platelet bound.
  std::string target;
  for (const std::string& id : ids_) {
    if (!HasQuantity(Stored(id), "platelets")) {
      target = id;
      break;
    }
  }
  ASSERT_FALSE(target.empty());
  ASSERT_OK_AND_ASSIGN(store::StoredStudy old, store_->GetStudy(target));
  ASSERT_OK_AND_ASSIGN(store::CompiledEntry old_entry,
                       store_->GetCompiled(target));
  ASSERT_OK_AND_ASSIGN(store::StudyRecord changed,
                       store::MakeStudyRecord(WithExtraCriterion(
                           old.raw_json, "Platelet count >= 100,000/mm3")));
  ASSERT_OK(store_->UpsertStudies({changed}));
  clock_.Advance(absl::Minutes(1));

  ASSERT_OK_AND_ASSIGN(RefreshReport report,
                       RefreshCompiledCriteria(*store_, compiler_));
  EXPECT_EQ(report.stale, 1);
  EXPECT_EQ(report.content_changed, 1);
  EXPECT_EQ(report.compiled, 1);
  ASSERT_OK_AND_ASSIGN(store::CompiledEntry e, store_->GetCompiled(target));
  ASSERT_OK_AND_ASSIGN(store::StoredStudy now, store_->GetStudy(target));
  EXPECT_EQ(e.content_hash, now.content_hash);
  EXPECT_NE(e.content_hash, old_entry.content_hash);
  EXPECT_EQ(e.compiled_at, clock_.Now());
  EXPECT_TRUE(HasQuantity(Stored(target), "platelets"));
  // The others were left alone.
  for (const std::string& id : ids_) {
    if (id == target) continue;
    ASSERT_OK_AND_ASSIGN(store::CompiledEntry other, store_->GetCompiled(id));
    EXPECT_EQ(other.compiled_at, old_entry.compiled_at) << id;
  }
}

TEST_F(CriteriaRefreshTest, NewRulesVersionRecompilesEverything) {
  ASSERT_OK(RefreshCompiledCriteria(*store_, compiler_));
  const std::filesystem::path rules_dir = dir_.File("rules");
  CopyRules(rules_dir);
  AppendTo(rules_dir / "manifest.textproto", "\n# an edit\n");
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const criteria::RuleSet> edited,
                       criteria::RuleSet::LoadDirectory(rules_dir));
  ASSERT_NE(edited->version(), SourceRules()->version());
  const criteria::Compiler compiler(edited);

  RefreshOptions options;
  options.threads = 3;
  options.batch_size = 4;
  ASSERT_OK_AND_ASSIGN(RefreshReport report,
                       RefreshCompiledCriteria(*store_, compiler, options));
  EXPECT_EQ(report.stale, kStudies);
  EXPECT_EQ(report.version_changed, kStudies);
  EXPECT_EQ(report.compiled, kStudies);
  for (const std::string& id : ids_) {
    ASSERT_OK_AND_ASSIGN(store::CompiledEntry e, store_->GetCompiled(id));
    EXPECT_EQ(e.rules_version, edited->version()) << id;
  }
  // Back on the old rules: stale again, for the version.
  ASSERT_OK_AND_ASSIGN(report, RefreshCompiledCriteria(*store_, compiler_));
  EXPECT_EQ(report.version_changed, kStudies);
}

TEST_F(CriteriaRefreshTest, ThreadsGiveTheSameEntriesAsOneThread) {
  RefreshOptions one;
  one.batch_size = 3;
  ASSERT_OK(RefreshCompiledCriteria(*store_, compiler_, one));
  std::vector<std::string> blobs;
  for (const std::string& id : ids_) {
    ASSERT_OK_AND_ASSIGN(store::CompiledEntry e, store_->GetCompiled(id));
    blobs.push_back(e.blob);
  }
  RefreshOptions many;
  many.threads = 4;
  many.batch_size = 3;
  many.force = true;
  ASSERT_OK_AND_ASSIGN(RefreshReport report,
                       RefreshCompiledCriteria(*store_, compiler_, many));
  EXPECT_EQ(report.stale, kStudies);  // forced: all of them
  EXPECT_EQ(report.missing + report.version_changed + report.content_changed,
            0);
  EXPECT_EQ(report.compiled, kStudies);
  EXPECT_THAT(report.Summary(), HasSubstr("24 forced"));
  for (std::size_t i = 0; i < ids_.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(store::CompiledEntry e, store_->GetCompiled(ids_[i]));
    EXPECT_EQ(e.blob, blobs[i]) << ids_[i];
  }
}

TEST_F(CriteriaRefreshTest, OnlyTheRequestedLifecycles) {
  ASSERT_OK(store_->ApplyScope({"RECRUITING"}));  // others leave the scope
  ASSERT_OK_AND_ASSIGN(store::StoreStats stats, store_->GetStats());
  ASSERT_GT(stats.left_scope, 0);
  ASSERT_OK_AND_ASSIGN(RefreshReport report,
                       RefreshCompiledCriteria(*store_, compiler_));
  EXPECT_EQ(report.compiled, stats.active);
  RefreshOptions all;
  all.lifecycles = {};
  ASSERT_OK_AND_ASSIGN(report,
                       RefreshCompiledCriteria(*store_, compiler_, all));
  EXPECT_EQ(report.compiled, stats.left_scope);
}

TEST_F(CriteriaRefreshTest, UnreadableRecordIsReportedAndSkipped) {
  store::StudyRecord broken;
  broken.raw_json = R"({"protocolSection": "not an object"})";
  broken.study.nct_id = "NCT09999999";
  broken.study.overall_status = "RECRUITING";
  ASSERT_OK(store_->UpsertStudies({broken}));

  ASSERT_OK_AND_ASSIGN(RefreshReport report,
                       RefreshCompiledCriteria(*store_, compiler_));
  EXPECT_EQ(report.stale, kStudies + 1);
  EXPECT_EQ(report.compiled, kStudies);
  EXPECT_EQ(report.failed, 1);
  ASSERT_THAT(report.failures, SizeIs(1));
  EXPECT_THAT(report.failures[0], HasSubstr("NCT09999999"));
  EXPECT_THAT(report.Summary(), HasSubstr("1 not compiled"));
  EXPECT_EQ(store_->GetCompiled("NCT09999999").status().code(),
            absl::StatusCode::kNotFound);
  // Tried again next time (nothing was stored for it).
  ASSERT_OK_AND_ASSIGN(report, RefreshCompiledCriteria(*store_, compiler_));
  EXPECT_EQ(report.stale, 1);
  EXPECT_EQ(report.failed, 1);
}

TEST_F(CriteriaRefreshTest, LockedStoreFailsAndTheNextRunFinishes) {
  RefreshOptions options;
  options.batch_size = 8;
  // Another process holds the write lock.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.File("studies.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_OK);
  absl::StatusOr<RefreshReport> failed =
      RefreshCompiledCriteria(*store_, compiler_, options);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable)
      << failed.status();
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(other);

  ASSERT_OK_AND_ASSIGN(RefreshReport report,
                       RefreshCompiledCriteria(*store_, compiler_, options));
  EXPECT_EQ(report.compiled, kStudies);
}

TEST_F(CriteriaRefreshTest, CancelledStopsAndKeepsWhatWasStored) {
  std::atomic<bool> cancelled{false};
  RefreshOptions options;
  options.batch_size = 5;
  options.cancelled = &cancelled;
  options.progress = [&](const Progress&) { cancelled = true; };
  absl::StatusOr<RefreshReport> r =
      RefreshCompiledCriteria(*store_, compiler_, options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  ASSERT_OK_AND_ASSIGN(RefreshReport rest,
                       RefreshCompiledCriteria(*store_, compiler_));
  EXPECT_EQ(rest.missing, kStudies - 5);  // the first batch was kept
}

TEST_F(CriteriaRefreshTest, BadOptions) {
  RefreshOptions options;
  options.batch_size = 0;
  EXPECT_EQ(
      RefreshCompiledCriteria(*store_, compiler_, options).status().code(),
      absl::StatusCode::kInvalidArgument);
  options.batch_size = 1;
  options.threads = -1;
  EXPECT_EQ(
      RefreshCompiledCriteria(*store_, compiler_, options).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(CriteriaRefreshTest, LoadOrCompileUsesFreshEntriesAndCompilesStaleOnes) {
  const std::string id = ids_[5];
  ASSERT_OK_AND_ASSIGN(LoadedCriteria now,
                       LoadOrCompile(*store_, compiler_, id));
  EXPECT_FALSE(now.from_store);
  EXPECT_EQ(now.stale_reason, store::StaleReason::kMissing);
  EXPECT_LT(absl::Now() - now.compiled_at, absl::Minutes(5));  // system clock
  EXPECT_EQ(store_->GetCompiled(id).status().code(),
            absl::StatusCode::kNotFound);  // no write-back asked

  ASSERT_OK(RefreshCompiledCriteria(*store_, compiler_));
  ASSERT_OK_AND_ASSIGN(LoadedCriteria stored,
                       LoadOrCompile(*store_, compiler_, id));
  EXPECT_TRUE(stored.from_store);
  EXPECT_EQ(criteria::ToJson(stored.compiled), criteria::ToJson(now.compiled));
  ASSERT_OK_AND_ASSIGN(store::StoredStudy s, store_->GetStudy(id));
  ASSERT_OK_AND_ASSIGN(model::Study study, model::ParseStudy(s.raw_json));
  EXPECT_EQ(stored.eligibility_criteria, study.eligibility.criteria);
  ASSERT_OK_AND_ASSIGN(store::CompiledEntry e, store_->GetCompiled(id));
  EXPECT_EQ(stored.compiled_at, e.compiled_at);

  // Other rules: stale for the version; compiled now and, asked to, stored.
  const std::filesystem::path rules_dir = dir_.File("rules");
  CopyRules(rules_dir);
  AppendTo(rules_dir / "manifest.textproto", "\n# an edit\n");
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const criteria::RuleSet> edited,
                       criteria::RuleSet::LoadDirectory(rules_dir));
  const criteria::Compiler compiler(edited);
  LoadOptions write;
  write.write_back = true;
  write.clock = &clock_;
  ASSERT_OK_AND_ASSIGN(LoadedCriteria recompiled,
                       LoadOrCompile(*store_, compiler, id, write));
  EXPECT_FALSE(recompiled.from_store);
  EXPECT_EQ(recompiled.stale_reason, store::StaleReason::kVersionChanged);
  EXPECT_EQ(recompiled.compiled_at, clock_.Now());
  EXPECT_EQ(recompiled.compiled.rules_version, edited->version());
  ASSERT_OK_AND_ASSIGN(LoadedCriteria again,
                       LoadOrCompile(*store_, compiler, id));
  EXPECT_TRUE(again.from_store);

  EXPECT_EQ(LoadOrCompile(*store_, compiler_, "NCT00000000").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadOrCompile(*store_, compiler_, "NCT123").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CriteriaRefreshTest, LoadOrCompileRecordMatchesTheContentHash) {
  ASSERT_OK(RefreshCompiledCriteria(*store_, compiler_));
  const std::string id = ids_[2];
  ASSERT_OK_AND_ASSIGN(store::StoredStudy s, store_->GetStudy(id));
  ASSERT_OK_AND_ASSIGN(
      LoadedCriteria same,
      LoadOrCompileRecord(store_.get(), compiler_, s.raw_json));
  EXPECT_TRUE(same.from_store);
  // A newer version of the record than the stored one: compiled now.
  const std::string newer =
      WithExtraCriterion(s.raw_json, "Hemoglobin >= 9 g/dL");
  ASSERT_OK_AND_ASSIGN(LoadedCriteria fresh,
                       LoadOrCompileRecord(store_.get(), compiler_, newer));
  EXPECT_FALSE(fresh.from_store);
  EXPECT_EQ(fresh.stale_reason, store::StaleReason::kContentChanged);
  EXPECT_TRUE(HasQuantity(fresh.compiled, "hemoglobin"));
  // Without a store.
  ASSERT_OK_AND_ASSIGN(LoadedCriteria alone,
                       LoadOrCompileRecord(nullptr, compiler_, s.raw_json));
  EXPECT_FALSE(alone.from_store);
  EXPECT_EQ(criteria::ToJson(alone.compiled), criteria::ToJson(same.compiled));
  EXPECT_EQ(LoadOrCompileRecord(nullptr, compiler_, "[1]").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(RulesDirFingerprintTest, ChangesWhenAFileChanges) {
  TempDir dir;
  const std::filesystem::path rules = dir.File("rules");
  EXPECT_EQ(RulesDirFingerprint(rules).status().code(),
            absl::StatusCode::kNotFound);
  std::filesystem::create_directories(rules);
  std::ofstream(rules / "a.textproto") << "# a\n";
  std::ofstream(rules / "notes.txt") << "ignored\n";
  ASSERT_OK_AND_ASSIGN(std::string first, RulesDirFingerprint(rules));
  ASSERT_OK_AND_ASSIGN(std::string same, RulesDirFingerprint(rules));
  EXPECT_EQ(first, same);
  std::ofstream(rules / "notes.txt") << "still ignored, longer\n";
  ASSERT_OK_AND_ASSIGN(same, RulesDirFingerprint(rules));
  EXPECT_EQ(first, same);
  AppendTo(rules / "a.textproto", "# more\n");
  ASSERT_OK_AND_ASSIGN(std::string edited, RulesDirFingerprint(rules));
  EXPECT_NE(edited, first);
  std::ofstream(rules / "b.textproto") << "# b\n";
  ASSERT_OK_AND_ASSIGN(std::string added, RulesDirFingerprint(rules));
  EXPECT_NE(added, edited);
  std::filesystem::remove(rules / "b.textproto");
  ASSERT_OK_AND_ASSIGN(std::string removed, RulesDirFingerprint(rules));
  EXPECT_EQ(removed, edited);
}

class CriteriaRefresherTest : public CriteriaRefreshTest {
 protected:
  void SetUp() override {
    CriteriaRefreshTest::SetUp();
    rules_dir_ = dir_.File("rules");
    CopyRules(rules_dir_);
    holder_ = std::make_unique<criteria::RuleSetHolder>(SourceRules());
  }

  std::unique_ptr<CriteriaRefresher> Make(
      absl::Duration check = absl::Seconds(30)) {
    CriteriaRefresherOptions options;
    options.rules_dir = rules_dir_;
    options.rules_check_interval = check;
    return std::make_unique<CriteriaRefresher>(
        store_.get(), holder_.get(), options, [this](const RefreshReport& r) {
          absl::MutexLock lock(&mu_);
          calls_.push_back(r);
        });
  }
  std::vector<RefreshReport> Calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

  std::filesystem::path rules_dir_;
  std::unique_ptr<criteria::RuleSetHolder> holder_;
  absl::Mutex mu_;
  std::vector<RefreshReport> calls_;
};

TEST_F(CriteriaRefresherTest, CallsBackOnFirstPassAndOnChangesOnly) {
  ASSERT_OK(RefreshCompiledCriteria(*store_, compiler_));  // all fresh
  auto refresher = Make();
  ASSERT_OK_AND_ASSIGN(RefreshReport first, refresher->RunOnce());
  EXPECT_EQ(first.stale, 0);
  ASSERT_THAT(Calls(), SizeIs(1));  // the first pass, even with nothing to do
  ASSERT_OK(refresher->RunOnce());
  EXPECT_THAT(Calls(), SizeIs(1));  // nothing changed: no call

  ASSERT_OK_AND_ASSIGN(store::StoredStudy s, store_->GetStudy(ids_[0]));
  ASSERT_OK_AND_ASSIGN(store::StudyRecord changed,
                       store::MakeStudyRecord(WithExtraCriterion(
                           s.raw_json, "Hemoglobin >= 9 g/dL")));
  ASSERT_OK(store_->UpsertStudies({changed}));
  ASSERT_OK_AND_ASSIGN(RefreshReport second, refresher->RunOnce());
  EXPECT_EQ(second.compiled, 1);
  ASSERT_THAT(Calls(), SizeIs(2));
  RefresherStatus status = refresher->status();
  EXPECT_TRUE(status.first_pass_done);
  EXPECT_EQ(status.passes, 3);
  EXPECT_EQ(status.rules_version, SourceRules()->version());
}

TEST_F(CriteriaRefresherTest, EditedRulesAreReloadedAndEverythingRecompiled) {
  auto refresher = Make();
  ASSERT_OK(refresher->RunOnce());
  EXPECT_FALSE(refresher->CheckRules());  // untouched files: nothing to do

  AppendTo(rules_dir_ / "manifest.textproto", "\n# reviewed\n");
  ASSERT_OK_AND_ASSIGN(RefreshReport report, refresher->RunOnce());
  EXPECT_NE(holder_->Get()->version(), SourceRules()->version());
  EXPECT_EQ(report.rules_version, holder_->Get()->version());
  EXPECT_EQ(report.version_changed, kStudies);
  EXPECT_EQ(refresher->status().rules_version, holder_->Get()->version());
  EXPECT_THAT(Calls(), SizeIs(2));
}

TEST_F(CriteriaRefresherTest, BrokenRulesKeepTheCurrentOnes) {
  auto refresher = Make();
  ASSERT_OK(refresher->RunOnce());
  const std::string version = holder_->Get()->version();
  AppendTo(rules_dir_ / "labs.textproto",
           "\nrule { id: \"broken\" pattern: '(' }\n");
  EXPECT_FALSE(refresher->CheckRules());
  EXPECT_EQ(holder_->Get()->version(), version);
  RefresherStatus status = refresher->status();
  EXPECT_EQ(status.last_rules_error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.last_rules_error.message(), HasSubstr("labs.textproto"));
  ASSERT_OK_AND_ASSIGN(RefreshReport report, refresher->RunOnce());
  EXPECT_EQ(report.stale, 0);  // nothing recompiled with broken rules
  EXPECT_THAT(Calls(), SizeIs(1));
}

TEST_F(CriteriaRefresherTest, ThreadRefreshesAtStartAndOnRequest) {
  auto refresher = Make(absl::ZeroDuration());
  refresher->Start();
  // Waits (bounded) for the n-th callback from the refresher's thread.
  auto calls_reach = [this](std::size_t n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return calls_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), absl::Minutes(2));
  };
  ASSERT_TRUE(calls_reach(1));
  EXPECT_EQ(Calls()[0].compiled, kStudies);

  ASSERT_OK_AND_ASSIGN(store::StoredStudy s, store_->GetStudy(ids_[1]));
  ASSERT_OK_AND_ASSIGN(store::StudyRecord changed,
                       store::MakeStudyRecord(WithExtraCriterion(
                           s.raw_json, "Hemoglobin >= 9 g/dL")));
  ASSERT_OK(store_->UpsertStudies({changed}));
  refresher->RequestRefresh();
  ASSERT_TRUE(calls_reach(2));
  EXPECT_EQ(Calls()[1].compiled, 1);
  refresher->Stop();
  refresher->Stop();  // idempotent
}

}  // namespace
}  // namespace trialmatch::sync
