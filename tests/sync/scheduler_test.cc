#include "sync/scheduler.h"

#include <atomic>
#include <deque>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/fake_clock.h"
#include "testing/status_matchers.h"

namespace trialmatch::sync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::trialmatch::testing::FakeClock;
using ::trialmatch::testing::StatusIs;

SyncReport Changed(int inserted) {
  SyncReport r;
  r.kind = SyncKind::kIncremental;
  r.fetched = inserted;
  r.inserted = inserted;
  return r;
}

SyncReport NoChange() {
  SyncReport r;
  r.kind = SyncKind::kSkipped;
  return r;
}

// A sync function that returns scripted results and counts its calls.
class ScriptedSync {
 public:
  void Push(absl::StatusOr<SyncReport> r) {
    absl::MutexLock lock(&mu_);
    script_.push_back(std::move(r));
  }
  SyncScheduler::SyncFn Fn() {
    return [this](const std::atomic<bool>&) -> absl::StatusOr<SyncReport> {
      absl::MutexLock lock(&mu_);
      ++calls_;
      if (script_.empty()) return NoChange();
      absl::StatusOr<SyncReport> r = std::move(script_.front());
      script_.pop_front();
      return r;
    };
  }
  int calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  mutable absl::Mutex mu_;
  std::deque<absl::StatusOr<SyncReport>> script_;
  int calls_ = 0;
};

SchedulerOptions Options() {
  return {.interval = absl::Hours(1),
          .initial_retry = absl::Minutes(1),
          .max_retry = absl::Minutes(10)};
}

TEST(SyncSchedulerTest, BacksOffExponentiallyUpToTheCapThenBackToInterval) {
  FakeClock clock;
  ScriptedSync sync;
  for (int i = 0; i < 6; ++i) {
    sync.Push(absl::UnavailableError("GET /version: connection refused"));
  }
  sync.Push(Changed(3));
  SyncScheduler scheduler(sync.Fn(), Options(), clock, nullptr);
  std::vector<absl::Duration> delays;
  for (int i = 0; i < 7; ++i) {
    delays.push_back(scheduler.RunOnce());
    clock.Advance(delays.back());
  }
  EXPECT_EQ(delays, (std::vector<absl::Duration>{
                        absl::Minutes(1), absl::Minutes(2), absl::Minutes(4),
                        absl::Minutes(8), absl::Minutes(10), absl::Minutes(10),
                        absl::Hours(1)}));
}

TEST(SyncSchedulerTest, StatusTracksSuccessesAndFailures) {
  FakeClock clock;
  ScriptedSync sync;
  sync.Push(Changed(2));
  sync.Push(absl::UnavailableError("down"));
  sync.Push(absl::DataLossError("bad page"));
  SyncScheduler scheduler(sync.Fn(), Options(), clock, nullptr);

  const absl::Time t0 = clock.Now();
  scheduler.RunOnce();
  SchedulerStatus s = scheduler.status();
  EXPECT_FALSE(s.running);
  EXPECT_EQ(s.attempts, 1);
  EXPECT_EQ(s.successes, 1);
  EXPECT_EQ(s.last_success_at, t0);
  ASSERT_TRUE(s.last_report.has_value());
  EXPECT_EQ(s.last_report->inserted, 2);
  EXPECT_OK(s.last_error);

  clock.Advance(absl::Hours(1));
  scheduler.RunOnce();
  clock.Advance(absl::Minutes(1));
  scheduler.RunOnce();
  s = scheduler.status();
  EXPECT_EQ(s.attempts, 3);
  EXPECT_EQ(s.failures, 2);
  EXPECT_EQ(s.consecutive_failures, 2);
  EXPECT_EQ(s.last_success_at, t0);  // kept across failures
  EXPECT_EQ(s.last_failure_at, clock.Now());
  EXPECT_THAT(s.last_error, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(s.last_report->inserted, 2);  // the last success's
}

TEST(SyncSchedulerTest, CallbackOnlyAfterSyncsThatChangedTheStore) {
  FakeClock clock;
  ScriptedSync sync;
  sync.Push(Changed(5));
  sync.Push(NoChange());
  sync.Push(absl::UnavailableError("down"));
  SyncReport left;
  left.kind = SyncKind::kFull;
  left.unchanged = 10;
  left.vanished = 1;
  sync.Push(left);
  std::vector<SyncReport> seen;
  SyncScheduler scheduler(sync.Fn(), Options(), clock,
                          [&](const SyncReport& r) { seen.push_back(r); });
  for (int i = 0; i < 4; ++i) scheduler.RunOnce();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].inserted, 5);
  EXPECT_EQ(seen[1].vanished, 1);
}

TEST(SyncSchedulerTest, WarnsOncePerFailureStreakAndWhenTheKindChanges) {
  FakeClock clock;
  ScriptedSync sync;
  sync.Push(absl::UnavailableError("refused 1"));
  sync.Push(absl::UnavailableError("refused 2"));
  sync.Push(absl::DeadlineExceededError("timeout 3"));  // another kind
  sync.Push(Changed(1));
  sync.Push(absl::UnavailableError("refused 5"));  // a new streak
  SyncScheduler scheduler(sync.Fn(), Options(), clock, nullptr);
  std::vector<std::string> logs;
  for (int i = 0; i < 5; ++i) {
    ::testing::internal::CaptureStderr();
    scheduler.RunOnce();
    logs.push_back(::testing::internal::GetCapturedStderr());
  }
  EXPECT_THAT(logs[0], HasSubstr("WARNING sync: ClinicalTrials.gov is "
                                 "unreachable: UNAVAILABLE: refused 1"));
  EXPECT_THAT(logs[1], Not(HasSubstr("WARNING")));
  EXPECT_THAT(logs[2], HasSubstr("WARNING sync: ClinicalTrials.gov is "
                                 "unreachable: DEADLINE_EXCEEDED: timeout 3"));
  EXPECT_THAT(logs[3], HasSubstr("syncing works again after 3 failed"));
  EXPECT_THAT(logs[4], HasSubstr("WARNING sync: ClinicalTrials.gov is "
                                 "unreachable: UNAVAILABLE: refused 5"));
}

TEST(SyncSchedulerTest, OtherFailuresAreReportedAsSyncFailures) {
  FakeClock clock;
  ScriptedSync sync;
  sync.Push(absl::ResourceExhaustedError("disk full"));
  SyncScheduler scheduler(sync.Fn(), Options(), clock, nullptr);
  ::testing::internal::CaptureStderr();
  scheduler.RunOnce();
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("WARNING sync: sync failed: RESOURCE_EXHAUSTED: disk "
                        "full"));
}

TEST(SyncSchedulerTest, ThreadSyncsAtStartOnRequestAndStopsPromptly) {
  FakeClock clock;  // frozen: only RequestSync() can start another run
  std::atomic<int> calls{0};
  absl::Mutex mu;
  auto fn = [&](const std::atomic<bool>&) -> absl::StatusOr<SyncReport> {
    absl::MutexLock lock(&mu);
    ++calls;
    return Changed(1);
  };
  std::atomic<int> callbacks{0};
  SyncScheduler scheduler(fn, Options(), clock,
                          [&](const SyncReport&) { ++callbacks; });
  scheduler.Start();
  scheduler.Start();  // no second thread
  auto wait_for_calls = [&](int n) {
    absl::MutexLock lock(&mu);
    const auto reached = [&] { return calls.load() >= n; };
    mu.Await(absl::Condition(&reached));
  };
  wait_for_calls(1);
  scheduler.RequestSync();
  wait_for_calls(2);
  scheduler.Stop();  // the thread waits for a 1 h interval: Stop wakes it
  scheduler.Stop();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(callbacks.load(), 2);
  EXPECT_EQ(scheduler.RunOnce(), absl::Hours(1));  // stopped: no sync
  EXPECT_EQ(calls.load(), 2);
}

TEST(SyncSchedulerTest, StopCancelsASyncInProgress) {
  FakeClock clock;
  absl::Notification started;
  auto fn =
      [&](const std::atomic<bool>& cancelled) -> absl::StatusOr<SyncReport> {
    started.Notify();
    cancelled.wait(false);  // blocks until Stop() cancels
    return absl::CancelledError("sync cancelled");
  };
  SyncScheduler scheduler(fn, Options(), clock, nullptr);
  scheduler.Start();
  started.WaitForNotification();
  EXPECT_TRUE(scheduler.status().running);
  ::testing::internal::CaptureStderr();
  scheduler.Stop();
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("sync stopped by shutdown"));
  EXPECT_THAT(log, Not(HasSubstr("WARNING")));
  EXPECT_FALSE(scheduler.status().running);
  EXPECT_EQ(scheduler.status().failures, 0);
}

TEST(SyncSchedulerTest, NoSyncAtStartWaitsForTheInterval) {
  FakeClock clock;
  std::atomic<int> calls{0};
  SchedulerOptions options = Options();
  options.sync_at_start = false;
  SyncScheduler scheduler(
      [&](const std::atomic<bool>&) -> absl::StatusOr<SyncReport> {
        ++calls;
        return NoChange();
      },
      options, clock, nullptr);
  scheduler.Start();
  // The thread is waiting; its next run is an interval away.
  absl::Time next;
  for (;;) {
    SchedulerStatus s = scheduler.status();
    if (s.next_run_at.has_value()) {
      next = *s.next_run_at;
      break;
    }
    std::this_thread::yield();
  }
  EXPECT_EQ(next, clock.Now() + absl::Hours(1));
  scheduler.Stop();
  EXPECT_EQ(calls.load(), 0);
}

}  // namespace
}  // namespace trialmatch::sync
