#include "ctgov/retry.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/strings.h"

namespace trialmatch::ctgov {

using common::ToAbsl;

ExponentialBackoff::ExponentialBackoff(absl::Duration initial,
                                       absl::Duration maximum,
                                       double multiplier, std::uint64_t seed)
    : cap_(std::max(initial, absl::ZeroDuration())),
      maximum_(std::max(maximum, absl::ZeroDuration())),
      multiplier_(std::max(multiplier, 1.0)),
      rng_(seed) {
  cap_ = std::min(cap_, maximum_);
}

absl::Duration ExponentialBackoff::NextDelay() {
  const double cap_s = absl::ToDoubleSeconds(cap_);
  std::uniform_real_distribution<double> dist(0.0, cap_s);
  const absl::Duration delay = cap_s > 0 ? absl::Seconds(dist(rng_)) : cap_;
  cap_ = std::min(maximum_, cap_ * multiplier_);
  return std::min(delay, maximum_);
}

std::optional<absl::Duration> ParseRetryAfter(std::string_view value,
                                              absl::Time now) {
  const std::string v(absl::StripAsciiWhitespace(ToAbsl(value)));
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(),
                  [](char c) { return c >= '0' && c <= '9'; })) {
    std::int64_t seconds = 0;
    for (char c : v) {
      seconds = seconds * 10 + (c - '0');
      if (seconds > 1'000'000'000) return absl::Seconds(1'000'000'000);
    }
    return absl::Seconds(seconds);
  }
  // HTTP-date: IMF-fixdate, then the two obsolete forms. asctime's day is
  // space-padded ("Nov  6"): collapse runs of spaces first.
  std::string collapsed;
  for (char c : v) {
    if (c == ' ' && !collapsed.empty() && collapsed.back() == ' ') continue;
    collapsed.push_back(c);
  }
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %d %H:%M:%S %Y"}) {
    absl::Time t;
    std::string err;
    if (absl::ParseTime(format, collapsed, absl::UTCTimeZone(), &t, &err)) {
      return std::max(absl::ZeroDuration(), t - now);
    }
  }
  return std::nullopt;
}

RateLimiter::RateLimiter(double requests_per_second, common::Clock& clock)
    : clock_(clock),
      interval_(requests_per_second > 0 && std::isfinite(requests_per_second)
                    ? absl::Seconds(1.0 / requests_per_second)
                    : absl::ZeroDuration()) {}

absl::Duration RateLimiter::Acquire() {
  const absl::Time now = clock_.Now();
  absl::Time slot;
  {
    absl::MutexLock lock(&mu_);
    slot = std::max(now, next_);
    if (interval_ > absl::ZeroDuration()) {
      next_ = slot + interval_;
    } else {
      next_ = std::max(next_, slot);
    }
  }
  const absl::Duration wait = slot - now;
  if (wait > absl::ZeroDuration()) clock_.SleepFor(wait);
  return wait;
}

void RateLimiter::PauseUntil(absl::Time t) {
  absl::MutexLock lock(&mu_);
  next_ = std::max(next_, t);
}

absl::Status RetryLoop(const RetryOptions& options, ExponentialBackoff& backoff,
                       common::Clock& clock, RateLimiter* limiter,
                       std::string_view operation,
                       absl::FunctionRef<AttemptOutcome(int attempt)> attempt) {
  const absl::Time start = clock.Now();
  const int max_attempts = std::max(1, options.max_attempts);
  AttemptOutcome last;
  int n = 0;
  std::string why_stopped;
  while (true) {
    ++n;
    if (limiter != nullptr) limiter->Acquire();
    last = attempt(n);
    if (last.status.ok()) return last.status;
    if (!last.transient) {
      return absl::Status(
          last.status.code(),
          absl::StrCat(ToAbsl(operation), ": ", last.status.message()));
    }
    if (n >= max_attempts) {
      why_stopped = "";
      break;
    }
    absl::Duration delay = backoff.NextDelay();
    if (last.retry_after.has_value()) {
      delay =
          std::max(delay, std::min(*last.retry_after, options.max_retry_after));
    }
    const absl::Time now = clock.Now();
    if (now + delay - start > options.max_total_time) {
      why_stopped = absl::StrCat(" (retry budget of ",
                                 absl::FormatDuration(options.max_total_time),
                                 " exhausted)");
      break;
    }
    TM_LOG_WARNING("ctgov", ToAbsl(operation), ": attempt ", n, "/",
                   max_attempts, " failed (", last.status.ToString(),
                   "); retrying in ", absl::FormatDuration(delay));
    if (last.retry_after.has_value() && limiter != nullptr) {
      limiter->PauseUntil(now + delay);
    }
    clock.SleepFor(delay);
  }
  const absl::StatusCode code =
      last.status.code() == absl::StatusCode::kDataLoss
          ? absl::StatusCode::kDataLoss
          : absl::StatusCode::kUnavailable;
  return absl::Status(
      code, absl::StrCat(
                ToAbsl(operation), ": gave up after ", n,
                n == 1 ? " attempt" : " attempts", " in ",
                absl::FormatDuration(clock.Now() - start), why_stopped,
                "; last error: ", absl::StatusCodeToString(last.status.code()),
                ": ", last.status.message()));
}

}  // namespace trialmatch::ctgov
