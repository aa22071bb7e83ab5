// A Clock for tests: time moves only when told to. SleepFor() does not block;
// it advances the clock and records the requested duration, so retry/backoff
// and rate-limit tests run instantly and can assert on the delays.
// Thread-safe.
#ifndef TRIALMATCH_TESTING_FAKE_CLOCK_H_
#define TRIALMATCH_TESTING_FAKE_CLOCK_H_

#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace trialmatch::testing {

class FakeClock final : public common::Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void SleepFor(absl::Duration d) override {
    absl::MutexLock lock(&mu_);
    sleeps_.push_back(d);
    if (d > absl::ZeroDuration()) now_ += d;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  std::vector<absl::Duration> sleeps() const {
    absl::MutexLock lock(&mu_);
    return sleeps_;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_;
  std::vector<absl::Duration> sleeps_;
};

}  // namespace trialmatch::testing

#endif  // TRIALMATCH_TESTING_FAKE_CLOCK_H_
