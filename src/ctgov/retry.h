// Politeness and resilience for the ClinicalTrials.gov client: retry options,
// exponential backoff with full jitter, Retry-After parsing, a shared rate
// limiter, and the generic retry loop (google-cloud-cpp internal/retry_loop.h
// shape). Time comes from an injected common::Clock, so tests that use
// tests/testing/fake_clock.h never sleep and can assert every delay.
//
// Thread safety: RetryOptions is a value. ExponentialBackoff is
// thread-compatible (one per call). RateLimiter is thread-safe and is meant
// to be shared by every call of one client. RetryLoop is reentrant.
#ifndef TRIALMATCH_CTGOV_RETRY_H_
#define TRIALMATCH_CTGOV_RETRY_H_

#include <cstdint>
#include <optional>
#include <random>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace trialmatch::ctgov {

struct RetryOptions {
  // Attempts per call, the first included (1 = never retry).
  int max_attempts = 6;
  // Budget for one call from its first attempt: no retry is started when its
  // wait would end after this much time has passed.
  absl::Duration max_total_time = absl::Minutes(10);
  // Backoff before retry n (n = 0, 1, ...) is uniform in
  // [0, min(max_backoff, initial_backoff * backoff_multiplier^n)].
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(60);
  double backoff_multiplier = 2.0;
  // A server's Retry-After is honoured up to this cap.
  absl::Duration max_retry_after = absl::Seconds(60);
};

// Exponential backoff with "full jitter" (AWS architecture blog, 2015): each
// delay is drawn uniformly between zero and a cap that grows geometrically.
// Deterministic for a given seed.
class ExponentialBackoff {
 public:
  ExponentialBackoff(absl::Duration initial, absl::Duration maximum,
                     double multiplier, std::uint64_t seed);
  explicit ExponentialBackoff(const RetryOptions& options, std::uint64_t seed)
      : ExponentialBackoff(options.initial_backoff, options.max_backoff,
                           options.backoff_multiplier, seed) {}

  // The cap the next NextDelay() draws under.
  absl::Duration CurrentCap() const { return cap_; }
  // A delay in [0, CurrentCap()]; then grows the cap.
  absl::Duration NextDelay();

 private:
  absl::Duration cap_;
  absl::Duration maximum_;
  double multiplier_;
  std::mt19937_64 rng_;
};

// Parses an HTTP Retry-After value (RFC 9110 §10.2.3): delta-seconds
// ("120") or an HTTP-date in any of the three formats HTTP allows
// ("Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
// "Sun Nov  6 08:49:37 1994"). Returns the wait measured from `now` — zero
// for a date in the past — or nullopt when the value is not valid.
// Huge delta-seconds saturate (callers cap them).
std::optional<absl::Duration> ParseRetryAfter(std::string_view value,
                                              absl::Time now);

// Spaces requests evenly: at most `requests_per_second` request starts per
// second across all threads sharing the limiter (no bursts: the first request
// goes at once, each next one no sooner than 1/rate after the previous slot).
// A rate <= 0 disables limiting. Thread-safe; blocks only the caller, via
// Clock::SleepFor.
class RateLimiter {
 public:
  RateLimiter(double requests_per_second, common::Clock& clock);

  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Reserves the next slot and sleeps until it. Returns the time slept.
  absl::Duration Acquire();

  // No slot starts before `t` (used when the server says "Retry-After"):
  // every caller sharing the limiter backs off, not only the one that was
  // told.
  void PauseUntil(absl::Time t);

  absl::Duration interval() const { return interval_; }

 private:
  common::Clock& clock_;
  const absl::Duration interval_;  // ZeroDuration() = unlimited
  absl::Mutex mu_;
  absl::Time next_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// What one attempt of a retried operation produced.
struct AttemptOutcome {
  absl::Status status = {};  // OK: success, the loop ends
  bool transient = false;    // for a non-OK status: may a retry succeed?
  // The server's Retry-After (uncapped), if it sent one.
  std::optional<absl::Duration> retry_after = {};

  static AttemptOutcome Success() { return AttemptOutcome(); }
  static AttemptOutcome Failure(absl::Status status, bool transient) {
    AttemptOutcome o;
    o.status = std::move(status);
    o.transient = transient;
    return o;
  }
};

// Runs `attempt(n)` (n = 1, 2, ...) until it succeeds, fails permanently, or
// the retry budget runs out. Before every attempt the call waits for
// `limiter` (if not null). Between attempts it sleeps on `clock` for
// max(backoff.NextDelay(), min(retry_after, options.max_retry_after)); a
// Retry-After also pauses the shared limiter.
//
// Returns:
//   OK                    an attempt succeeded
//   the attempt's status  for a permanent failure, message prefixed with
//                         "<operation>: "
//   kUnavailable          transient failures exhausted max_attempts or
//                         max_total_time; the message names the operation,
//                         the attempt count and the last cause
//   kDataLoss             the same, when the last cause was kDataLoss (the
//                         server kept answering with malformed data)
absl::Status RetryLoop(const RetryOptions& options, ExponentialBackoff& backoff,
                       common::Clock& clock, RateLimiter* limiter,
                       std::string_view operation,
                       absl::FunctionRef<AttemptOutcome(int attempt)> attempt);

}  // namespace trialmatch::ctgov

#endif  // TRIALMATCH_CTGOV_RETRY_H_
