#include "sync/cancellation.h"

#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/fake_http_transport.h"
#include "testing/status_matchers.h"

namespace trialmatch::sync {
namespace {

using ::trialmatch::testing::FakeHttpTransport;
using ::trialmatch::testing::StatusIs;

TEST(CancellationTest, FlagAndWait) {
  Cancellation c;
  EXPECT_FALSE(c.cancelled());
  EXPECT_FALSE(c.flag()->load());
  EXPECT_FALSE(c.WaitFor(absl::ZeroDuration()));
  c.Cancel();
  c.Cancel();  // idempotent
  EXPECT_TRUE(c.cancelled());
  EXPECT_TRUE(c.flag()->load());
  // Already cancelled: returns at once even for a long wait.
  EXPECT_TRUE(c.WaitFor(absl::Hours(1)));
}

TEST(CancellationTest, CancelWakesASleeper) {
  auto c = std::make_shared<Cancellation>();
  InterruptibleClock clock(c);
  absl::Notification slept;
  std::thread sleeper([&] {
    clock.SleepFor(absl::Hours(1));  // would hang the test if not woken
    slept.Notify();
  });
  c->Cancel();
  sleeper.join();
  EXPECT_TRUE(slept.HasBeenNotified());
  clock.SleepFor(absl::Hours(1));  // after Cancel(): returns at once
}

TEST(CancellableTransportTest, ForwardsUntilCancelledThenRefuses) {
  auto fake = std::make_shared<FakeHttpTransport>();
  fake->Always("/version", FakeHttpTransport::Json("{}"));
  auto c = std::make_shared<Cancellation>();
  CancellableTransport transport(fake, c);
  ctgov::HttpRequest request;
  request.url = "http://127.0.0.1:1/api/v2/version";
  ASSERT_OK_AND_ASSIGN(ctgov::HttpResponse r, transport.Get(request));
  EXPECT_EQ(r.status, 200);
  c->Cancel();
  EXPECT_THAT(transport.Get(request), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(fake->request_count(), 1u);  // the refused one never went out
}

}  // namespace
}  // namespace trialmatch::sync
