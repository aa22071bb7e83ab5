#include "server/executor.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace trialmatch::server {
namespace {

TEST(ExecutorTest, RunsTasks) {
  std::atomic<int> ran{0};
  {
    Executor pool({.name = "t", .threads = 3, .max_queue = 100});
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(pool.TrySchedule([&] { ran.fetch_add(1); }));
    }
  }  // destructor drains
  EXPECT_EQ(ran.load(), 50);
}

TEST(ExecutorTest, RefusesWhenTheQueueIsFull) {
  Executor pool({.name = "t", .threads = 1, .max_queue = 2});
  absl::Notification release;
  absl::Notification started;
  ASSERT_TRUE(pool.TrySchedule([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  started.WaitForNotification();  // the thread is busy; the queue is empty
  EXPECT_TRUE(pool.TrySchedule([] {}));
  EXPECT_TRUE(pool.TrySchedule([] {}));
  EXPECT_FALSE(pool.TrySchedule([] {}));  // two waiting: full
  EXPECT_EQ(pool.queued(), 2u);
  EXPECT_EQ(pool.running(), 1);
  release.Notify();
}

TEST(ExecutorTest, ShutdownRunsQueuedTasksThenRefuses) {
  std::atomic<int> ran{0};
  Executor pool({.name = "t", .threads = 1, .max_queue = 10});
  absl::Notification release;
  ASSERT_TRUE(pool.TrySchedule([&] { release.WaitForNotification(); }));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool.TrySchedule([&] { ++ran; }));
  release.Notify();
  pool.Shutdown();
  EXPECT_EQ(ran.load(), 5);
  EXPECT_FALSE(pool.TrySchedule([] {}));
  pool.Shutdown();  // idempotent
}

}  // namespace
}  // namespace trialmatch::server
