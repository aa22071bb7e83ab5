// Cancellation: a one-way "stop now" signal for a running sync, and the two
// decorators that make a ctgov::CtgovClient honour it promptly.
//
// A sync checks the flag between pages (ctgov::PagingOptions::cancelled).
// That alone could leave it blocked for minutes inside one client call: the
// rate limiter and the retry backoff sleep (up to 60 s per wait, 10 min per
// call). Building the client over
//   CancellableTransport  — every request after Cancel() fails at once with
//                           kCancelled, which the retry loop does not retry;
//   InterruptibleClock    — real time, but SleepFor() returns as soon as
//                           Cancel() is called;
// ends a cancelled call after at most the HTTP exchange already in flight
// (bounded by CtgovOptions::timeout / the low-speed limit).
//
//   auto cancel = std::make_shared<Cancellation>();
//   InterruptibleClock clock(cancel);
//   auto transport = std::make_shared<CancellableTransport>(curl, cancel);
//   auto client = ctgov::CtgovClient::Create(options, transport, clock);
//   ... another thread: cancel->Cancel();
//
// Thread safety: all three classes are thread-safe. Cancellation is not
// resettable: a new run needs a new Cancellation.
#ifndef TRIALMATCH_SYNC_CANCELLATION_H_
#define TRIALMATCH_SYNC_CANCELLATION_H_

#include <atomic>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "ctgov/http_transport.h"

namespace trialmatch::sync {

// trialmatch::sync::Cancellation
class Cancellation {
 public:
  Cancellation() = default;
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  // Sets the flag and wakes every WaitFor(). Idempotent.
  void Cancel();
  bool cancelled() const { return flag_.load(std::memory_order_acquire); }
  // The flag itself, for ctgov::PagingOptions::cancelled and friends. Valid
  // as long as this object lives.
  const std::atomic<bool>* flag() const { return &flag_; }

  // Blocks the caller for up to `d` of real time, or until Cancel(). Returns
  // true when cancelled.
  bool WaitFor(absl::Duration d) const;

 private:
  std::atomic<bool> flag_{false};
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// trialmatch::sync::InterruptibleClock
//
// The system clock, except that SleepFor() ends early (at once after)
// Cancel(). `cancellation` must not be null.
class InterruptibleClock final : public common::Clock {
 public:
  explicit InterruptibleClock(std::shared_ptr<const Cancellation> cancellation);
  absl::Time Now() const override { return absl::Now(); }
  void SleepFor(absl::Duration d) override;

 private:
  const std::shared_ptr<const Cancellation> cancellation_;
};

// trialmatch::sync::CancellableTransport
//
// Forwards Get() to `inner` until Cancel(); afterwards returns kCancelled
// without a request. Neither argument may be null.
class CancellableTransport final : public ctgov::HttpTransport {
 public:
  CancellableTransport(std::shared_ptr<ctgov::HttpTransport> inner,
                       std::shared_ptr<const Cancellation> cancellation);
  absl::StatusOr<ctgov::HttpResponse> Get(
      const ctgov::HttpRequest& request) override;

 private:
  const std::shared_ptr<ctgov::HttpTransport> inner_;
  const std::shared_ptr<const Cancellation> cancellation_;
};

}  // namespace trialmatch::sync

#endif  // TRIALMATCH_SYNC_CANCELLATION_H_
