#include "ctgov/retry.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/fake_clock.h"
#include "testing/status_matchers.h"

namespace trialmatch::ctgov {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::trialmatch::testing::FakeClock;
using ::trialmatch::testing::IsOk;
using ::trialmatch::testing::StatusIs;

// ---- ExponentialBackoff -----------------------------------------------------

TEST(ExponentialBackoffTest, CapGrowsGeometricallyAndDelaysStayUnderIt) {
  ExponentialBackoff backoff(absl::Seconds(1), absl::Seconds(60), 2.0, 7);
  const absl::Duration caps[] = {
      absl::Seconds(1),  absl::Seconds(2),  absl::Seconds(4),
      absl::Seconds(8),  absl::Seconds(16), absl::Seconds(32),
      absl::Seconds(60), absl::Seconds(60), absl::Seconds(60)};
  for (absl::Duration cap : caps) {
    ASSERT_EQ(backoff.CurrentCap(), cap);
    const absl::Duration d = backoff.NextDelay();
    EXPECT_GE(d, absl::ZeroDuration());
    EXPECT_LE(d, cap);
  }
}

TEST(ExponentialBackoffTest, FullJitterSpreadsOverTheWholeRange) {
  // 2000 draws under a fixed 10 s cap: all in [0, 10], mean near 5, and
  // both the lowest and highest tenth of the range are hit.
  double sum = 0;
  bool low = false, high = false;
  for (std::uint64_t seed = 0; seed < 2000; ++seed) {
    ExponentialBackoff b(absl::Seconds(10), absl::Seconds(10), 2.0, seed);
    const double s = absl::ToDoubleSeconds(b.NextDelay());
    ASSERT_GE(s, 0.0);
    ASSERT_LE(s, 10.0);
    sum += s;
    low |= s < 1.0;
    high |= s > 9.0;
  }
  EXPECT_NEAR(sum / 2000, 5.0, 0.5);
  EXPECT_TRUE(low);
  EXPECT_TRUE(high);
}

TEST(ExponentialBackoffTest, SameSeedSameDelays) {
  ExponentialBackoff a(absl::Seconds(1), absl::Seconds(60), 2.0, 123);
  ExponentialBackoff b(absl::Seconds(1), absl::Seconds(60), 2.0, 123);
  ExponentialBackoff c(absl::Seconds(1), absl::Seconds(60), 2.0, 124);
  bool differs = false;
  for (int i = 0; i < 8; ++i) {
    const absl::Duration da = a.NextDelay();
    EXPECT_EQ(da, b.NextDelay());
    differs |= da != c.NextDelay();
  }
  EXPECT_TRUE(differs);
}

// ---- ParseRetryAfter
// ----------------------------------------------------------

TEST(ParseRetryAfterTest, DeltaSeconds) {
  const absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  EXPECT_EQ(ParseRetryAfter("120", now), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("99999999999999999999", now),
            absl::Seconds(1'000'000'000));
  for (const char* bad : {"", "-1", "1.5", "12s", "soon", "0x10"}) {
    EXPECT_FALSE(ParseRetryAfter(bad, now).has_value()) << bad;
  }
}

TEST(ParseRetryAfterTest, HttpDatesInAllThreeFormats) {
  // Sun, 06 Nov 1994 08:49:37 GMT, and "now" 37 seconds earlier.
  const absl::Time date = absl::FromUnixSeconds(784111777);
  const absl::Time now = date - absl::Seconds(37);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now),
            absl::Seconds(37));
  EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now),
            absl::Seconds(37));
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:37 1994", now),
            absl::Seconds(37));
  // A date in the past means "now".
  EXPECT_EQ(
      ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", date + absl::Hours(1)),
      absl::ZeroDuration());
  EXPECT_FALSE(ParseRetryAfter("Sun, 06 Nov 1994 25:49:37 GMT", now));
  EXPECT_FALSE(ParseRetryAfter("06 Nov 1994", now));
}

// ---- RateLimiter ------------------------------------------------------------

TEST(RateLimiterTest, OneRequestPerSecondSleepsBetweenRequests) {
  FakeClock clock;
  RateLimiter limiter(1.0, clock);
  EXPECT_EQ(limiter.Acquire(), absl::ZeroDuration());
  EXPECT_EQ(limiter.Acquire(), absl::Seconds(1));
  EXPECT_EQ(limiter.Acquire(), absl::Seconds(1));
  clock.Advance(absl::Seconds(5));  // idle: the next request goes at once
  EXPECT_EQ(limiter.Acquire(), absl::ZeroDuration());
  clock.Advance(absl::Milliseconds(300));
  EXPECT_EQ(limiter.Acquire(), absl::Milliseconds(700));
  EXPECT_THAT(clock.sleeps(), ElementsAre(absl::Seconds(1), absl::Seconds(1),
                                          absl::Milliseconds(700)));
}

TEST(RateLimiterTest, FractionalRateAndDisabled) {
  FakeClock clock;
  RateLimiter slow(0.5, clock);
  slow.Acquire();
  EXPECT_EQ(slow.Acquire(), absl::Seconds(2));
  RateLimiter off(0, clock);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(off.Acquire(), absl::ZeroDuration());
}

TEST(RateLimiterTest, PauseUntilDelaysEveryCaller) {
  FakeClock clock;
  RateLimiter limiter(1.0, clock);
  limiter.Acquire();
  limiter.PauseUntil(clock.Now() + absl::Seconds(30));
  EXPECT_EQ(limiter.Acquire(), absl::Seconds(30));
  // An earlier pause never moves the schedule back.
  limiter.PauseUntil(clock.Now() - absl::Seconds(100));
  EXPECT_EQ(limiter.Acquire(), absl::Seconds(1));
}

// Time stands still: every Acquire() sees the same "now", so its wait is
// exactly its reserved slot's offset.
class FrozenClock final : public common::Clock {
 public:
  absl::Time Now() const override { return absl::FromUnixSeconds(0); }
  void SleepFor(absl::Duration) override {}
};

TEST(RateLimiterTest, ConcurrentCallersGetDistinctEvenlySpacedSlots) {
  FrozenClock clock;
  RateLimiter limiter(10.0, clock);
  absl::Mutex mu;
  std::vector<absl::Duration> waits;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        const absl::Duration w = limiter.Acquire();
        absl::MutexLock lock(&mu);
        waits.push_back(w);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::sort(waits.begin(), waits.end());
  ASSERT_EQ(waits.size(), 40u);
  for (int k = 0; k < 40; ++k) {
    EXPECT_EQ(waits[k], k * absl::Milliseconds(100)) << k;
  }
}

// ---- RetryLoop --------------------------------------------------------------

RetryOptions FastOptions() {
  RetryOptions o;
  o.max_attempts = 4;
  o.initial_backoff = absl::Seconds(1);
  o.max_backoff = absl::Seconds(8);
  o.backoff_multiplier = 2.0;
  o.max_retry_after = absl::Seconds(60);
  o.max_total_time = absl::Hours(1);
  return o;
}

TEST(RetryLoopTest, SucceedsFirstTimeWithoutSleeping) {
  FakeClock clock;
  ExponentialBackoff backoff(FastOptions(), 1);
  int calls = 0;
  EXPECT_OK(RetryLoop(FastOptions(), backoff, clock, nullptr, "op", [&](int n) {
    ++calls;
    EXPECT_EQ(n, 1);
    return AttemptOutcome::Success();
  }));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(clock.sleeps().empty());
}

TEST(RetryLoopTest, TransientThenSuccessSleepsWithGrowingJitteredBackoff) {
  FakeClock clock;
  ExponentialBackoff backoff(FastOptions(), 99);
  int calls = 0;
  EXPECT_OK(RetryLoop(FastOptions(), backoff, clock, nullptr, "op", [&](int) {
    if (++calls < 4) {
      return AttemptOutcome::Failure(absl::UnavailableError("503"), true);
    }
    return AttemptOutcome::Success();
  }));
  EXPECT_EQ(calls, 4);
  const auto sleeps = clock.sleeps();
  ASSERT_EQ(sleeps.size(), 3u);
  EXPECT_LE(sleeps[0], absl::Seconds(1));
  EXPECT_LE(sleeps[1], absl::Seconds(2));
  EXPECT_LE(sleeps[2], absl::Seconds(4));
  // The same seed replays the same delays (jitter is injectable).
  ExponentialBackoff replay(FastOptions(), 99);
  for (absl::Duration d : sleeps) EXPECT_EQ(d, replay.NextDelay());
}

TEST(RetryLoopTest, PermanentErrorIsReturnedAtOnceWithTheOperation) {
  FakeClock clock;
  ExponentialBackoff backoff(FastOptions(), 1);
  int calls = 0;
  EXPECT_THAT(RetryLoop(FastOptions(), backoff, clock, nullptr, "GET /studies",
                        [&](int) {
                          ++calls;
                          return AttemptOutcome::Failure(
                              absl::NotFoundError("HTTP 404 Not Found"), false);
                        }),
              StatusIs(absl::StatusCode::kNotFound,
                       "GET /studies: HTTP 404 Not Found"));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(clock.sleeps().empty());
}

TEST(RetryLoopTest, ExhaustedAttemptsGiveUnavailableNamingTheLastCause) {
  FakeClock clock;
  ExponentialBackoff backoff(FastOptions(), 1);
  int calls = 0;
  const absl::Status s = RetryLoop(
      FastOptions(), backoff, clock, nullptr, "GET /version", [&](int n) {
        ++calls;
        return AttemptOutcome::Failure(
            n < 4 ? absl::DeadlineExceededError("timeout")
                  : absl::UnavailableError("HTTP 502 Bad Gateway"),
            true);
      });
  EXPECT_THAT(
      s, StatusIs(absl::StatusCode::kUnavailable,
                  AllOf(HasSubstr("GET /version: gave up after 4 attempts"),
                        HasSubstr("last error: UNAVAILABLE: HTTP 502"))));
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(clock.sleeps().size(), 3u);
}

TEST(RetryLoopTest, ExhaustedOnMalformedDataIsDataLoss) {
  FakeClock clock;
  ExponentialBackoff backoff(FastOptions(), 1);
  EXPECT_THAT(RetryLoop(FastOptions(), backoff, clock, nullptr, "op",
                        [&](int) {
                          return AttemptOutcome::Failure(
                              absl::DataLossError("malformed JSON at byte 9"),
                              true);
                        }),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("malformed JSON at byte 9")));
}

TEST(RetryLoopTest, RetryAfterIsHonouredAndCapped) {
  FakeClock clock;
  RetryOptions o = FastOptions();
  o.max_attempts = 3;
  o.max_retry_after = absl::Seconds(30);
  o.initial_backoff = absl::Milliseconds(1);  // backoff alone would be tiny
  ExponentialBackoff backoff(o, 1);
  int calls = 0;
  EXPECT_OK(RetryLoop(o, backoff, clock, nullptr, "op", [&](int) {
    ++calls;
    AttemptOutcome out =
        AttemptOutcome::Failure(absl::UnavailableError("429"), true);
    if (calls == 1) out.retry_after = absl::Seconds(7);
    if (calls == 2) out.retry_after = absl::Hours(2);  // capped at 30 s
    if (calls == 3) out = AttemptOutcome::Success();
    return out;
  }));
  EXPECT_THAT(clock.sleeps(), ElementsAre(absl::Seconds(7), absl::Seconds(30)));
}

TEST(RetryLoopTest, RetryAfterPausesTheSharedLimiter) {
  FakeClock clock;
  RateLimiter limiter(1.0, clock);
  RetryOptions o = FastOptions();
  o.initial_backoff = absl::ZeroDuration();
  ExponentialBackoff backoff(o, 1);
  int calls = 0;
  EXPECT_OK(RetryLoop(o, backoff, clock, &limiter, "op", [&](int) {
    if (++calls == 1) {
      AttemptOutcome out =
          AttemptOutcome::Failure(absl::UnavailableError("503"), true);
      out.retry_after = absl::Seconds(10);
      return out;
    }
    return AttemptOutcome::Success();
  }));
  // First attempt: no wait. Then 10 s Retry-After; the limiter's own 1 s
  // spacing is already covered by it.
  EXPECT_THAT(clock.sleeps(), ElementsAre(absl::Seconds(10)));
  // Another caller sharing the limiter waits its normal 1 s spacing.
  EXPECT_EQ(limiter.Acquire(), absl::Seconds(1));
}

TEST(RetryLoopTest, TimeBudgetStopsRetriesBeforeOversleeping) {
  FakeClock clock;
  RetryOptions o = FastOptions();
  o.max_attempts = 100;
  o.max_total_time = absl::Seconds(20);
  o.initial_backoff = absl::Seconds(8);
  o.max_backoff = absl::Seconds(8);
  ExponentialBackoff backoff(o, 5);
  int calls = 0;
  const absl::Status s = RetryLoop(o, backoff, clock, nullptr, "op", [&](int) {
    ++calls;
    clock.Advance(absl::Seconds(3));  // each attempt takes 3 s
    AttemptOutcome out =
        AttemptOutcome::Failure(absl::UnavailableError("down"), true);
    out.retry_after = absl::Seconds(8);  // makes every wait exactly 8 s
    return out;
  });
  // t=3 fail, wait 8 -> t=11, fail at 14, next wait would end at 22 > 20.
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable,
                          HasSubstr("retry budget of 20s exhausted")));
  EXPECT_EQ(calls, 2);
  EXPECT_LE(clock.Now() - absl::FromUnixSeconds(1'700'000'000),
            absl::Seconds(20));
}

TEST(RetryLoopTest, SingleAttemptNeverRetries) {
  FakeClock clock;
  RetryOptions o = FastOptions();
  o.max_attempts = 1;
  ExponentialBackoff backoff(o, 1);
  EXPECT_THAT(RetryLoop(o, backoff, clock, nullptr, "op",
                        [&](int) {
                          return AttemptOutcome::Failure(
                              absl::UnavailableError("x"), true);
                        }),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("gave up after 1 attempt in")));
  EXPECT_TRUE(clock.sleeps().empty());
}

}  // namespace
}  // namespace trialmatch::ctgov
