#include "sync/cancellation.h"

#include <utility>

namespace trialmatch::sync {

void Cancellation::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  flag_.store(true, std::memory_order_release);
  // Wakes std::atomic::wait()ers of flag(): without it a waiter already
  // blocked in the kernel never sees the store (StopCancelsASyncInProgress
  // hung that way).
  flag_.notify_all();
}

bool Cancellation::WaitFor(absl::Duration d) const {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&cancelled_), d);
  return cancelled_;
}

InterruptibleClock::InterruptibleClock(
    std::shared_ptr<const Cancellation> cancellation)
    : cancellation_(std::move(cancellation)) {}

void InterruptibleClock::SleepFor(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return;
  cancellation_->WaitFor(d);
}

CancellableTransport::CancellableTransport(
    std::shared_ptr<ctgov::HttpTransport> inner,
    std::shared_ptr<const Cancellation> cancellation)
    : inner_(std::move(inner)), cancellation_(std::move(cancellation)) {}

absl::StatusOr<ctgov::HttpResponse> CancellableTransport::Get(
    const ctgov::HttpRequest& request) {
  if (cancellation_->cancelled()) {
    return absl::CancelledError("sync cancelled: request not sent");
  }
  return inner_->Get(request);
}

}  // namespace trialmatch::sync
