// Time, injected. Code that waits or timestamps takes a `Clock&` so tests can
// run without real time passing (google-cloud-cpp internal/clock.h shape).
//
// Clock::Now() reads wall time; Clock::SleepFor() blocks the caller. The
// SystemClock is stateless and safe from any thread. Test clocks live in
// tests/testing/fake_clock.h.
#ifndef TRIALMATCH_COMMON_CLOCK_H_
#define TRIALMATCH_COMMON_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace trialmatch::common {

// trialmatch::common::Clock
//
// Abstract time source. Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Blocks the calling thread for `d` (no-op for d <= 0).
  virtual void SleepFor(absl::Duration d) = 0;
};

// trialmatch::common::SystemClock
//
// The real clock. `Default()` returns a process-wide instance that must not be
// deleted.
class SystemClock final : public Clock {
 public:
  static SystemClock& Default() {
    static SystemClock* clock = new SystemClock();
    return *clock;
  }
  absl::Time Now() const override { return absl::Now(); }
  void SleepFor(absl::Duration d) override {
    if (d > absl::ZeroDuration()) absl::SleepFor(d);
  }
};

}  // namespace trialmatch::common

#endif  // TRIALMATCH_COMMON_CLOCK_H_
