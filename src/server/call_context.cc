#include "server/call_context.h"

#include <algorithm>
#include <utility>

namespace trialmatch::server {
namespace {
thread_local CallToken* current_token = nullptr;
}  // namespace

void CallToken::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_.store(true, std::memory_order_release);
}

absl::Status CallToken::Check() const {
  if (cancelled()) return absl::CancelledError("the call was cancelled");
  if (absl::Now() >= deadline_) {
    return absl::DeadlineExceededError("the call's deadline passed");
  }
  return absl::OkStatus();
}

bool CallToken::SleepUntil(absl::Time t) {
  const absl::Time until = std::min(t, deadline_);
  absl::MutexLock lock(&mu_);
  // Await with a deadline re-evaluates the condition on every Cancel()
  // (which takes mu_).
  auto cancelled = [this] {
    return cancelled_.load(std::memory_order_acquire);
  };
  mu_.AwaitWithDeadline(absl::Condition(&cancelled), until);
  return !cancelled_.load(std::memory_order_acquire) && until == t &&
         absl::Now() >= t;
}

CallToken* CurrentCallToken() { return current_token; }

ScopedCallToken::ScopedCallToken(CallToken* token) : previous_(current_token) {
  current_token = token;
}

ScopedCallToken::~ScopedCallToken() { current_token = previous_; }

void CallAwareClock::SleepFor(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return;
  CallToken* token = CurrentCallToken();
  if (token == nullptr) {
    base_.SleepFor(d);
    return;
  }
  token->SleepUntil(absl::Now() + d);
}

absl::StatusOr<ctgov::HttpResponse> CallAwareTransport::Get(
    const ctgov::HttpRequest& request) {
  CallToken* token = CurrentCallToken();
  if (token == nullptr) return inner_->Get(request);
  if (token->cancelled()) {
    return absl::CancelledError("request not sent: the call was cancelled");
  }
  const absl::Duration left = token->deadline() - absl::Now();
  if (left <= absl::ZeroDuration()) {
    // kCancelled, not kDeadlineExceeded: the retry loop must not retry it.
    return absl::CancelledError("request not sent: the call's deadline passed");
  }
  if (left == absl::InfiniteDuration()) return inner_->Get(request);
  ctgov::HttpRequest capped = request;
  // Whole milliseconds, at least 1 (0 would mean "no limit" to libcurl).
  const absl::Duration cap =
      std::max(absl::Milliseconds(1), absl::Floor(left, absl::Milliseconds(1)));
  capped.timeout = capped.timeout == absl::ZeroDuration()
                       ? cap
                       : std::min(capped.timeout, cap);
  capped.connect_timeout = std::min(capped.connect_timeout, cap);
  return inner_->Get(capped);
}

}  // namespace trialmatch::server
