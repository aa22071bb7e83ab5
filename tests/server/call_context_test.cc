#include "server/call_context.h"

#include <memory>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/fake_http_transport.h"
#include "testing/status_matchers.h"

namespace trialmatch::server {
namespace {

using ::trialmatch::testing::FakeHttpTransport;
using ::trialmatch::testing::StatusIs;

TEST(CallTokenTest, CheckReportsCancelAndDeadline) {
  CallToken open;
  EXPECT_OK(open.Check());
  open.Cancel();
  EXPECT_THAT(open.Check(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(open.cancel_flag()->load());

  CallToken past(absl::Now() - absl::Seconds(1));
  EXPECT_TRUE(past.Expired());
  EXPECT_FALSE(past.cancelled());
  EXPECT_THAT(past.Check(), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(CallTokenTest, CancelWakesASleeper) {
  CallToken token;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(20));
    token.Cancel();
  });
  const absl::Time start = absl::Now();
  EXPECT_FALSE(token.SleepUntil(start + absl::Seconds(30)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  canceller.join();
}

TEST(CallTokenTest, SleepEndsAtTheDeadline) {
  CallToken token(absl::Now() + absl::Milliseconds(30));
  const absl::Time start = absl::Now();
  EXPECT_FALSE(token.SleepUntil(start + absl::Seconds(30)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(CallAwareClockTest, SleepsAreCutByTheCurrentToken) {
  CallAwareClock clock;
  CallToken token;
  token.Cancel();
  ScopedCallToken scope(&token);
  const absl::Time start = absl::Now();
  clock.SleepFor(absl::Seconds(30));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(ScopedCallTokenTest, NestsAndRestores) {
  EXPECT_EQ(CurrentCallToken(), nullptr);
  CallToken a;
  CallToken b;
  {
    ScopedCallToken sa(&a);
    EXPECT_EQ(CurrentCallToken(), &a);
    {
      ScopedCallToken sb(&b);
      EXPECT_EQ(CurrentCallToken(), &b);
    }
    EXPECT_EQ(CurrentCallToken(), &a);
  }
  EXPECT_EQ(CurrentCallToken(), nullptr);
}

TEST(CallAwareTransportTest, RefusesCancelledCallsAndCapsTimeouts) {
  auto fake = std::make_shared<FakeHttpTransport>();
  fake->Always("/version", FakeHttpTransport::Json("{}"));
  CallAwareTransport transport(fake);
  ctgov::HttpRequest request;
  request.url = "http://h/api/v2/version";
  request.timeout = absl::Minutes(5);
  request.connect_timeout = absl::Seconds(10);

  // No token: passed through unchanged.
  ASSERT_OK(transport.Get(request));
  EXPECT_EQ(fake->requests().back().timeout, absl::Minutes(5));

  {  // A deadline 2 s away caps both timeouts.
    CallToken token(absl::Now() + absl::Seconds(2));
    ScopedCallToken scope(&token);
    ASSERT_OK(transport.Get(request));
    EXPECT_LE(fake->requests().back().timeout, absl::Seconds(2));
    EXPECT_GT(fake->requests().back().timeout, absl::ZeroDuration());
    EXPECT_LE(fake->requests().back().connect_timeout, absl::Seconds(2));
  }
  {  // Cancelled or expired: no request, kCancelled (not retried).
    CallToken token;
    token.Cancel();
    ScopedCallToken scope(&token);
    EXPECT_THAT(transport.Get(request), StatusIs(absl::StatusCode::kCancelled));
  }
  {
    CallToken token(absl::Now() - absl::Seconds(1));
    ScopedCallToken scope(&token);
    EXPECT_THAT(transport.Get(request), StatusIs(absl::StatusCode::kCancelled));
  }
  EXPECT_EQ(fake->request_count(), 2u);
}

}  // namespace
}  // namespace trialmatch::server
