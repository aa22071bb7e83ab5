// Graceful-shutdown signal handling for the serve command (grpc.io
// "server graceful stop"): SIGTERM / SIGINT are blocked in every thread and
// received synchronously by one watcher thread, which then calls back (e.g.
// GrpcServer::Shutdown(now + grace)). No async signal handler runs, so the
// callback may do anything.
//
//   BlockTerminationSignals();               // first, before any thread
//   SignalWatcher watcher([&](int sig) { server->Shutdown(grace); });
//   server->Wait();
//   watcher.Stop();
//
// BlockTerminationSignals must run before gRPC (or anything else) starts
// threads: new threads inherit the signal mask, and a thread that does not
// block the signals could receive one and die with the default action.
//
// Thread safety: SignalWatcher is thread-compatible (construct/stop from one
// thread); the callback runs on the watcher thread, at most once.
#ifndef TRIALMATCH_SERVER_SIGNALS_H_
#define TRIALMATCH_SERVER_SIGNALS_H_

#include <atomic>
#include <functional>
#include <thread>

#include "absl/status/status.h"

namespace trialmatch::server {

// Blocks SIGTERM and SIGINT in the calling thread (and so in threads it
// creates later). kInternal if pthread_sigmask fails.
absl::Status BlockTerminationSignals();

class SignalWatcher {
 public:
  // Starts a thread that waits for SIGTERM or SIGINT and calls
  // `on_signal(signo)` once.
  explicit SignalWatcher(std::function<void(int)> on_signal);
  ~SignalWatcher();  // Stop()

  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  // Ends the thread (within ~100 ms) without calling back if no signal
  // came. Idempotent.
  void Stop();
  // The signal received, 0 if none.
  int received() const { return received_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> received_{0};
  std::thread thread_;
};

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_SIGNALS_H_
