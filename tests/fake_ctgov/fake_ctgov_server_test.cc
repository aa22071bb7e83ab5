// FakeCtgovServer (tests/testing/fake_ctgov_server.h): starts the fake
// ClinicalTrials.gov API, serves it, obeys control commands, and never
// outlives its owner.
#include "testing/fake_ctgov_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// True when `pid` no longer runs (gone, or a zombie nobody reaped yet).
bool ProcessGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  stat >> pid_field >> comm >> state;
  return state == "Z";
}

bool WaitUntilGone(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ProcessGone(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ProcessGone(pid);
}

TEST(FakeCtgovServerTest, StartsAndServesVersion) {
  TM_REQUIRE_SHARED_DATA();
  FakeCtgovOptions options;
  options.data_timestamp = "2030-01-02T03:04:05";
  ASSERT_OK_AND_ASSIGN(auto fake, FakeCtgovServer::Start(options));
  EXPECT_GT(fake->port(), 0);
  EXPECT_EQ(fake->base_url(),
            "http://127.0.0.1:" + std::to_string(fake->port()) + "/api/v2");

  ASSERT_OK_AND_ASSIGN(FakeCtgovReply reply, fake->Get("/api/v2/version"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_THAT(reply.Header("content-type"), StartsWith("application/json"));
  EXPECT_EQ(reply.body,
            R"({"apiVersion":"2.0.3","dataTimestamp":"2030-01-02T03:04:05"})");
}

TEST(FakeCtgovServerTest, ControlHelpersChangeWhatItServes) {
  TM_REQUIRE_SHARED_DATA();
  ASSERT_OK_AND_ASSIGN(auto fake, FakeCtgovServer::Start());

  ASSERT_OK(fake->AddFault(
      R"({"path":"/api/v2/version","kind":"429","count":1,"retry_after":3})"));
  ASSERT_OK_AND_ASSIGN(FakeCtgovReply limited, fake->Get("/api/v2/version"));
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.Header("Retry-After"), "3");
  ASSERT_OK_AND_ASSIGN(FakeCtgovReply ok, fake->Get("/api/v2/version"));
  EXPECT_EQ(ok.status, 200);
  EXPECT_THAT(fake->RequestCount("/api/v2/version"), IsOk());
  EXPECT_EQ(fake->RequestCount("/api/v2/version").value(), 2);

  ASSERT_OK(fake->SetDataTimestamp("2031-02-03T04:05:06"));
  ASSERT_OK_AND_ASSIGN(FakeCtgovReply version, fake->Get("/api/v2/version"));
  EXPECT_THAT(version.body, HasSubstr("2031-02-03T04:05:06"));

  ASSERT_OK(fake->UpdateStudyStatus("NCT00000410", "WITHDRAWN", "2099-01-01"));
  ASSERT_OK_AND_ASSIGN(
      FakeCtgovReply study,
      fake->Get("/api/v2/studies/NCT00000410?fields=OverallStatus"));
  EXPECT_EQ(
      study.body,
      R"({"protocolSection":{"statusModule":{"overallStatus":"WITHDRAWN"}}})");

  ASSERT_OK(fake->DeleteStudy("NCT00000410"));
  ASSERT_OK_AND_ASSIGN(FakeCtgovReply gone,
                       fake->Get("/api/v2/studies/NCT00000410"));
  EXPECT_EQ(gone.status, 404);

  ASSERT_OK(fake->SetAlias("NCT00000001", "NCT00001579"));
  ASSERT_OK_AND_ASSIGN(FakeCtgovReply moved,
                       fake->Get("/api/v2/studies/NCT00000001"));
  EXPECT_EQ(moved.status, 301);
  EXPECT_THAT(moved.Header("location"),
              HasSubstr("/api/v2/studies/NCT00001579"));

  EXPECT_THAT(fake->DeleteStudy("NCT00000410"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(fake->Reset());
  ASSERT_OK_AND_ASSIGN(FakeCtgovReply back,
                       fake->Get("/api/v2/studies/NCT00000410"));
  EXPECT_EQ(back.status, 200);
  EXPECT_EQ(fake->RequestCount("/api/v2", /*prefix=*/true).value(), 1);
}

TEST(FakeCtgovServerTest, DestructorStopsTheProcess) {
  TM_REQUIRE_SHARED_DATA();
  pid_t pid = -1;
  int port = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto fake, FakeCtgovServer::Start());
    pid = fake->pid();
    port = fake->port();
    ASSERT_GT(pid, 0);
    EXPECT_FALSE(ProcessGone(pid));
  }
  EXPECT_TRUE(ProcessGone(pid));
  // Nothing listens on its port any more.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(
      ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
}

TEST(FakeCtgovServerTest, DiesWhenItsOwnerProcessDies) {
  TM_REQUIRE_SHARED_DATA();
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    // The owner starts the fake, reports its pid, and "crashes": _exit runs
    // no destructor, so only PR_SET_PDEATHSIG can stop the fake.
    ::close(pipe_fds[0]);
    auto fake = FakeCtgovServer::Start();
    pid_t fake_pid = fake.ok() ? (*fake)->pid() : -1;
    (void)!::write(pipe_fds[1], &fake_pid, sizeof fake_pid);
    ::_exit(fake.ok() ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  pid_t fake_pid = -1;
  ASSERT_EQ(::read(pipe_fds[0], &fake_pid, sizeof fake_pid),
            static_cast<ssize_t>(sizeof fake_pid));
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_GT(fake_pid, 0);
  EXPECT_TRUE(WaitUntilGone(fake_pid, std::chrono::seconds(15)))
      << "fake_ctgov pid " << fake_pid << " outlived its owner";
  if (!ProcessGone(fake_pid)) ::kill(fake_pid, SIGKILL);
}

TEST(FakeCtgovServerTest, ReportsMissingDataAndEarlyExit) {
  FakeCtgovOptions missing;
  missing.data_dir = "/nonexistent/ctgov_v2";
  EXPECT_THAT(FakeCtgovServer::Start(missing),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nonexistent")));

  TM_REQUIRE_SHARED_DATA();
  FakeCtgovOptions bad_flag;
  bad_flag.faults = {"kind=explode"};  // the fake refuses to start
  EXPECT_THAT(FakeCtgovServer::Start(bad_flag),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("exit status 2")));
}

}  // namespace
}  // namespace trialmatch::testing
