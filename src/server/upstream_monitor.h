// UpstreamMonitor: what the server currently believes about
// ClinicalTrials.gov's reachability — a small circuit breaker in front of the
// request path, plus a background prober.
//
// States:
//   up     (initial) requests go upstream.
//   down   after an outage was reported (ReportOutage: retries exhausted,
//          timeouts, unusable bodies). Requests do NOT go upstream — they are
//          answered from the store at once (flagged upstream_unavailable)
//          instead of each one waiting out the retry budget — except one
//          trial request per `retry_interval` (half-open), and the prober's
//          probes. Any success (ReportSuccess) brings it back up.
//
// The prober (StartProber) runs `probe` (e.g. GET /version) once at start
// and then every `retry_interval` while down (every `up_interval` while up,
// 0 = not while up), logging each transition once: "ClinicalTrials.gov
// unreachable ... serving the local store" / "reachable again".
//
// Thread safety: thread-safe. `probe` runs on the prober's own thread.
#ifndef TRIALMATCH_SERVER_UPSTREAM_MONITOR_H_
#define TRIALMATCH_SERVER_UPSTREAM_MONITOR_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/call_context.h"

namespace trialmatch::server {

struct UpstreamMonitorOptions {
  // While down: one trial request (and one probe) per interval.
  absl::Duration retry_interval = absl::Seconds(30);
  // While up: a probe per interval (0 = none; request outcomes suffice).
  absl::Duration up_interval = absl::ZeroDuration();
};

class UpstreamMonitor {
 public:
  // `clock` must outlive the monitor.
  explicit UpstreamMonitor(
      UpstreamMonitorOptions options = {},
      common::Clock& clock = common::SystemClock::Default());
  ~UpstreamMonitor();  // stops the prober

  UpstreamMonitor(const UpstreamMonitor&) = delete;
  UpstreamMonitor& operator=(const UpstreamMonitor&) = delete;

  // Whether a request should call the upstream now: true when up; when down,
  // true for one caller per retry_interval (the half-open trial).
  bool ShouldTry();

  void ReportSuccess();
  // `cause` is logged (at the transition only) and kept for notes.
  void ReportOutage(const absl::Status& cause);

  bool up() const;
  // When the current outage began (InfinitePast() while up).
  absl::Time down_since() const;
  // The outage's cause as "CODE: message" ("" while up).
  std::string last_cause() const;

  // Starts the background prober thread (at most once). `probe` returns OK
  // when the upstream answered usefully.
  void StartProber(std::function<absl::Status()> probe);
  // Stops and joins the prober (idempotent; also done by the destructor).
  // A probe in progress runs under a CallToken that this cancels, so a ctgov
  // client built over CallAwareClock/CallAwareTransport stops at its next
  // backoff sleep or request.
  void StopProber();

 private:
  void ProberLoop();

  const UpstreamMonitorOptions options_;
  common::Clock& clock_;
  mutable absl::Mutex mu_;
  bool up_ ABSL_GUARDED_BY(mu_) = true;
  absl::Time down_since_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time next_trial_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string last_cause_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::function<absl::Status()> probe_;
  CallToken prober_token_;
  std::thread prober_;
};

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_UPSTREAM_MONITOR_H_
