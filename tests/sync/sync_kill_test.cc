// The real `trialmatch` binary: `sync` SIGKILLed mid-sync (several moments),
// then resumed; and the exit codes / messages of `sync` and `import`.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/study_store.h"
#include "sync/sync_test_util.h"
#include "testing/fake_ctgov_server.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::sync {
namespace {

using ::testing::HasSubstr;
using ::trialmatch::sync::testing::ActiveIds;
using ::trialmatch::sync::testing::CorpusIds;
using ::trialmatch::testing::FakeCtgovServer;

std::string Binary() {
  return (trialmatch::testing::BinaryDir() / "trialmatch").string();
}

// Starts `args` with stdout and stderr going to `output` (a file).
pid_t Spawn(const std::vector<std::string>& args, const std::string& output) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int in = ::open("/dev/null", O_RDONLY);
    if (out < 0 || in < 0) ::_exit(126);
    ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// The exit code (128 + signal when killed), or nullopt after `timeout` (the
// child is then killed).
std::optional<int> Wait(pid_t pid, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

struct RunResult {
  std::optional<int> exit_code;
  std::string output;
};

RunResult RunBinary(const std::vector<std::string>& args,
                    const std::string& log) {
  std::remove(log.c_str());
  RunResult r;
  r.exit_code = Wait(Spawn(args, log), std::chrono::seconds(120));
  r.output = trialmatch::testing::ReadFile(log);
  return r;
}

class SyncBinaryTest : public ::testing::Test {
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
    ASSERT_TRUE(std::filesystem::exists(Binary())) << Binary();
    store_path_ = dir_.File("studies.db").string();
    log_ = dir_.File("out.log").string();
  }

  std::vector<std::string> SyncArgs(int page_size) const {
    return {Binary(),
            "sync",
            "--store=" + store_path_,
            "--ctgov_base_url=" + fake_->base_url(),
            "--requests_per_second=0",
            "--statuses=NOT_YET_RECRUITING",
            "--page_size=" + std::to_string(page_size),
            "--log_level=warning"};
  }

  static int StudiesRequests() {
    absl::StatusOr<int> n = fake_->RequestCount("/api/v2/studies");
    EXPECT_OK(n.status());
    return n.value_or(0);
  }

  static FakeCtgovServer* fake_;
  trialmatch::testing::TempDir dir_;
  std::string store_path_;
  std::string log_;
};

FakeCtgovServer* SyncBinaryTest::fake_ = nullptr;

TEST_F(SyncBinaryTest, KilledMidSyncLeavesWholePagesAndTheNextRunCompletes) {
  constexpr int kPageSize = 5;  // 102 studies: 21 pages
  // Every /studies answer is delayed, so each run is mid-sync for seconds.
  ASSERT_OK(fake_->AddFault(
      R"({"path":"/api/v2/studies","kind":"latency","latency_ms":150,)"
      R"("probability":1,"seed":1})"));
  const std::vector<std::string> corpus = CorpusIds({"NOT_YET_RECRUITING"});
  ASSERT_EQ(corpus.size(), 102u);

  // Kill once the n-th page of that run was requested, then a little later
  // (landing in the latency, the parsing or the commit of a page).
  struct Kill {
    int pages;
    int delay_ms;
  };
  int64_t pages_before = 0;
  int kills_mid_sync = 0;
  for (const Kill& k : {Kill{1, 0}, Kill{3, 60}, Kill{2, 130}, Kill{5, 20},
                        Kill{4, 200}, Kill{3, 90}}) {
    SCOPED_TRACE("kill after " + std::to_string(k.pages) + " pages + " +
                 std::to_string(k.delay_ms) + " ms");
    const int base = StudiesRequests();
    const pid_t pid = Spawn(SyncArgs(kPageSize), log_);
    ASSERT_GT(pid, 0);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool exited = false;
    while (StudiesRequests() < base + k.pages) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      ASSERT_LT(std::chrono::steady_clock::now(), deadline)
          << trialmatch::testing::ReadFile(log_);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (exited) break;  // finished before the kill: nothing left to kill
    std::this_thread::sleep_for(std::chrono::milliseconds(k.delay_ms));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    ASSERT_EQ(Wait(pid, std::chrono::seconds(10)), 128 + SIGKILL);
    ++kills_mid_sync;

    ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::StudyStore> store,
                         store::StudyStore::Open(store_path_));
    ASSERT_OK(store->IntegrityCheck());
    ASSERT_OK_AND_ASSIGN(store::SyncState state, store->GetSyncState());
    const std::vector<std::string> active = ActiveIds(*store);
    EXPECT_TRUE(std::includes(corpus.begin(), corpus.end(), active.begin(),
                              active.end()));
    if (!state.full_sync.has_value()) {  // killed after it finished
      EXPECT_EQ(active, corpus);
      break;
    }
    // Whole pages only: what is stored is exactly what the cursor counts.
    EXPECT_EQ(static_cast<int64_t>(active.size()),
              state.full_sync->studies_seen);
    EXPECT_EQ(state.full_sync->studies_seen,
              std::min<int64_t>(102, state.full_sync->pages_done * kPageSize));
    EXPECT_GE(state.full_sync->pages_done, pages_before);  // never goes back
    pages_before = state.full_sync->pages_done;
  }
  EXPECT_GE(kills_mid_sync, 4);
  EXPECT_GT(pages_before, 0);

  // A following sync completes, resuming rather than starting over.
  const int base = StudiesRequests();
  const RunResult done = RunBinary(SyncArgs(kPageSize), log_);
  ASSERT_EQ(done.exit_code, 0) << done.output;
  EXPECT_THAT(done.output, HasSubstr("full sync: "));
  EXPECT_THAT(done.output, HasSubstr("resumed after"));
  EXPECT_EQ(StudiesRequests() - base, 21 - pages_before);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::StudyStore> store,
                       store::StudyStore::Open(store_path_));
  ASSERT_OK(store->IntegrityCheck());
  EXPECT_EQ(ActiveIds(*store), corpus);
  ASSERT_OK_AND_ASSIGN(store::SyncState state, store->GetSyncState());
  EXPECT_FALSE(state.full_sync.has_value());
  EXPECT_TRUE(state.last_full_sync_at.has_value());
}

TEST_F(SyncBinaryTest, SyncSucceedsThenSkips) {
  RunResult r = RunBinary(SyncArgs(50), log_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr("full sync: 102 studies in 3 pages (102 new"));
  r = RunBinary(SyncArgs(50), log_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("sync skipped: ClinicalTrials.gov data "
                                  "unchanged"));
}

TEST_F(SyncBinaryTest, UnreachableUpstreamExitsNonZeroWithAClearMessage) {
  const RunResult r = RunBinary({Binary(), "sync", "--store=" + store_path_,
                                 "--ctgov_base_url=http://127.0.0.1:1/api/v2",
                                 "--max_attempts=2", "--log_level=error"},
                                log_);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("ClinicalTrials.gov is unreachable"));
  EXPECT_THAT(r.output, HasSubstr("Nothing stored was lost"));
}

TEST_F(SyncBinaryTest, UsageErrorsExitTwo) {
  EXPECT_EQ(
      RunBinary({Binary(), "sync", "--store=" + store_path_, "--page_size=0"},
                log_)
          .exit_code,
      2);
  EXPECT_EQ(RunBinary({Binary(), "sync", "--no_such_flag"}, log_).exit_code, 2);
  EXPECT_EQ(
      RunBinary({Binary(), "import", "--store=" + store_path_}, log_).exit_code,
      2);
  EXPECT_EQ(
      RunBinary({Binary(), "import", "--format=xml", "x"}, log_).exit_code, 2);
}

TEST_F(SyncBinaryTest, ImportReportsBadRecordsAndMissingFiles) {
  const std::string good = trialmatch::testing::ReadFile(
      trialmatch::testing::StudiesDir() / "NCT00000410.json");
  const std::string path = dir_.File("bad.json").string();
  const std::string text = "[" + good + ",\n{\"not\": \"a study\"}]";
  std::ofstream(path) << text;
  RunResult r = RunBinary(
      {Binary(), "import", "--store=" + store_path_, "--log_level=error", path},
      log_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("import: 2 records read from 1 file, 1 "
                                  "stored"));
  EXPECT_THAT(r.output, HasSubstr("skipped element 1 (byte " +
                                  std::to_string(text.find("{\"not\"")) + ")"));

  r = RunBinary({Binary(), "import", "--store=" + store_path_,
                 dir_.File("missing.json").string()},
                log_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("missing.json: no such file"));

  std::ofstream(dir_.File("empty.json").string()).flush();
  r = RunBinary({Binary(), "import", "--store=" + store_path_,
                 dir_.File("empty.json").string()},
                log_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("empty"));
}

}  // namespace
}  // namespace trialmatch::sync
