// Executor: a small bounded thread pool on which the StudyService runs the
// work of its RPCs, so that gRPC's callback threads never block on SQLite or
// on ClinicalTrials.gov (grpc.io best practices: "reactions should be fast").
//
//   Executor pool({.name = "upstream", .threads = 8, .max_queue = 128});
//   if (!pool.TrySchedule([=] { ...; reactor->Finish(status); })) {
//     reactor->Finish(grpc::Status(RESOURCE_EXHAUSTED, "server busy"));
//   }
//
// A fixed number of threads take tasks from a FIFO queue of bounded length;
// TrySchedule refuses work (returns false, the task is destroyed unrun) when
// the queue is full or the pool is shutting down, so overload is reported to
// the caller at once instead of piling up in memory.
//
// Hand-written: Debian 12's Abseil has no public thread pool and gRPC's
// executors are internal; this is ~80 lines with absl::Mutex.
//
// Thread safety: all methods are thread-safe. Tasks run concurrently on the
// pool's threads. Shutdown() (also run by the destructor) stops accepting
// tasks, lets the queued and running ones finish, and joins the threads; it
// must not be called from a task of the same pool, nor from two threads at
// once (the owner calls it; a second call returns at once).
#ifndef TRIALMATCH_SERVER_EXECUTOR_H_
#define TRIALMATCH_SERVER_EXECUTOR_H_

#include <cstddef>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace trialmatch::server {

struct ExecutorOptions {
  std::string name = "executor";  // for logs
  int threads = 4;                // >= 1
  std::size_t max_queue = 128;    // tasks waiting for a thread; >= 1
};

class Executor {
 public:
  explicit Executor(ExecutorOptions options);
  ~Executor();

  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `task`. Returns false (and destroys the task without running it)
  // when max_queue tasks are already waiting or Shutdown() has begun.
  bool TrySchedule(absl::AnyInvocable<void() &&> task);

  // Stops accepting tasks, runs the queued ones, joins the threads.
  // Idempotent (owner thread only).
  void Shutdown();

  // Tasks waiting for a thread / running now (for tests and metrics).
  std::size_t queued() const;
  int running() const;

 private:
  void Loop();

  const ExecutorOptions options_;
  mutable absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_EXECUTOR_H_
