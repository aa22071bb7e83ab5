#include "server/upstream_monitor.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/call_context.h"
#include "testing/fake_clock.h"

namespace trialmatch::server {
namespace {

using ::trialmatch::testing::FakeClock;

TEST(UpstreamMonitorTest, OutageOpensTheCircuitWithOneTrialPerInterval) {
  FakeClock clock;
  UpstreamMonitor monitor({.retry_interval = absl::Seconds(30)}, clock);
  EXPECT_TRUE(monitor.up());
  EXPECT_TRUE(monitor.ShouldTry());

  monitor.ReportOutage(absl::UnavailableError("HTTP 503"));
  EXPECT_FALSE(monitor.up());
  EXPECT_EQ(monitor.down_since(), clock.Now());
  EXPECT_EQ(monitor.last_cause(), "UNAVAILABLE: HTTP 503");
  EXPECT_FALSE(monitor.ShouldTry());
  clock.Advance(absl::Seconds(29));
  EXPECT_FALSE(monitor.ShouldTry());
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(monitor.ShouldTry());   // the half-open trial
  EXPECT_FALSE(monitor.ShouldTry());  // only one per interval

  monitor.ReportSuccess();
  EXPECT_TRUE(monitor.up());
  EXPECT_TRUE(monitor.ShouldTry());
  EXPECT_EQ(monitor.last_cause(), "");
}

TEST(UpstreamMonitorTest, ProberReportsOutageAndRecovery) {
  UpstreamMonitor monitor({.retry_interval = absl::Milliseconds(10)});
  std::atomic<int> probes{0};
  absl::Notification recovered;
  monitor.StartProber([&]() -> absl::Status {
    const int n = ++probes;
    if (n < 3) return absl::UnavailableError("down");
    if (n == 3) recovered.Notify();
    return absl::OkStatus();
  });
  ASSERT_TRUE(recovered.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // The third probe has answered OK; the prober reports it after the probe
  // returns (stopping first would drop that report), so wait for it.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (!monitor.up() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_TRUE(monitor.up());
  monitor.StopProber();
  EXPECT_TRUE(monitor.up());
  EXPECT_GE(probes.load(), 3);
}

// A probe stuck in a backoff sleep (CallAwareClock) ends when the prober stops.
TEST(UpstreamMonitorTest, StopInterruptsAProbeInProgress) {
  UpstreamMonitor monitor({.retry_interval = absl::Seconds(30)});
  CallAwareClock clock;
  absl::Notification probing;
  monitor.StartProber([&]() -> absl::Status {
    probing.Notify();
    clock.SleepFor(absl::Minutes(10));
    return absl::UnavailableError("slow");
  });
  probing.WaitForNotification();
  const absl::Time start = absl::Now();
  monitor.StopProber();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

}  // namespace
}  // namespace trialmatch::server
