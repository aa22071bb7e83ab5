// Cancellation and deadlines of one RPC, carried into the blocking work done
// for it: the ClinicalTrials.gov client's backoff sleeps and HTTP requests.
//
// A CallToken is created per RPC with the client's deadline. The gRPC
// reactor calls Cancel() from OnCancel (client cancelled, deadline passed,
// server shutting down); the work running on an Executor thread installs the
// token for its duration with ScopedCallToken. Two adapters then make the
// ctgov client honour it without the client knowing about gRPC:
//
//   CallAwareClock      a common::Clock whose SleepFor (backoff, rate-limit
//                       waits) returns early when the current token is
//                       cancelled or its deadline comes.
//   CallAwareTransport  an HttpTransport decorator that refuses to start a
//                       request for a cancelled/expired call (kCancelled,
//                       which the retry loop treats as final) and shortens
//                       each request's timeouts to the call's remaining time.
//
// So a cancelled or expired call stops at the next sleep or request instead
// of running out the retry budget (a transfer already in progress ends at its
// shortened timeout).
//
// Thread safety: CallToken is thread-safe. The current token is per thread
// (thread_local). CallAwareClock and CallAwareTransport are thread-safe.
#ifndef TRIALMATCH_SERVER_CALL_CONTEXT_H_
#define TRIALMATCH_SERVER_CALL_CONTEXT_H_

#include <atomic>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "ctgov/http_transport.h"

namespace trialmatch::server {

class CallToken {
 public:
  // `deadline` is wall-clock time (gRPC deadlines are); InfiniteFuture() =
  // none.
  explicit CallToken(absl::Time deadline = absl::InfiniteFuture())
      : deadline_(deadline) {}

  CallToken(const CallToken&) = delete;
  CallToken& operator=(const CallToken&) = delete;

  // Marks the call cancelled and wakes SleepUntil. Idempotent.
  void Cancel();
  // True once Cancel() was called (not on deadline expiry; see Expired()).
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // Cancelled, or the deadline has passed.
  bool Expired() const { return cancelled() || absl::Now() >= deadline_; }
  absl::Time deadline() const { return deadline_; }
  // The flag Cancel() sets (e.g. for ctgov::PagingOptions::cancelled).
  const std::atomic<bool>* cancel_flag() const { return &cancelled_; }

  // kCancelled when cancelled, kDeadlineExceeded when the deadline passed,
  // else OK.
  absl::Status Check() const;

  // Blocks until `t`, the deadline or Cancel(), whichever comes first.
  // Returns false when woken by cancellation or the deadline.
  bool SleepUntil(absl::Time t);

 private:
  const absl::Time deadline_;
  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;  // for the condition below
};

// The token of the call the current thread works for, or nullptr.
CallToken* CurrentCallToken();

// Installs `token` as the current thread's token for the scope's lifetime
// (restoring the previous one after).
class ScopedCallToken {
 public:
  explicit ScopedCallToken(CallToken* token);
  ~ScopedCallToken();
  ScopedCallToken(const ScopedCallToken&) = delete;
  ScopedCallToken& operator=(const ScopedCallToken&) = delete;

 private:
  CallToken* previous_;
};

// A clock over `base` whose SleepFor ends early for a cancelled/expired
// current call. Without a current token it is `base`.
class CallAwareClock final : public common::Clock {
 public:
  explicit CallAwareClock(common::Clock& base = common::SystemClock::Default())
      : base_(base) {}
  absl::Time Now() const override { return base_.Now(); }
  void SleepFor(absl::Duration d) override;

 private:
  common::Clock& base_;
};

// Decorates `inner` (not null): for a thread with a current token,
// a request is refused with kCancelled when the call is cancelled or
// expired, and its connect/total timeouts are capped at the time left.
class CallAwareTransport final : public ctgov::HttpTransport {
 public:
  explicit CallAwareTransport(std::shared_ptr<ctgov::HttpTransport> inner)
      : inner_(std::move(inner)) {}
  absl::StatusOr<ctgov::HttpResponse> Get(
      const ctgov::HttpRequest& request) override;

 private:
  std::shared_ptr<ctgov::HttpTransport> inner_;
};

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_CALL_CONTEXT_H_
