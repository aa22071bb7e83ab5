#include "server/upstream_monitor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace trialmatch::server {

UpstreamMonitor::UpstreamMonitor(UpstreamMonitorOptions options,
                                 common::Clock& clock)
    : options_(options), clock_(clock) {}

UpstreamMonitor::~UpstreamMonitor() { StopProber(); }

bool UpstreamMonitor::ShouldTry() {
  absl::MutexLock lock(&mu_);
  if (up_) return true;
  const absl::Time now = clock_.Now();
  if (now < next_trial_) return false;
  next_trial_ = now + options_.retry_interval;
  return true;
}

void UpstreamMonitor::ReportSuccess() {
  absl::MutexLock lock(&mu_);
  if (!up_) {
    TM_LOG_INFO("upstream", "ClinicalTrials.gov reachable again after ",
                absl::FormatDuration(
                    absl::Trunc(clock_.Now() - down_since_, absl::Seconds(1))));
  }
  up_ = true;
  down_since_ = absl::InfinitePast();
  last_cause_.clear();
}

void UpstreamMonitor::ReportOutage(const absl::Status& cause) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  if (up_) {
    TM_LOG_WARNING("upstream", "ClinicalTrials.gov unreachable (",
                   cause.ToString(),
                   "); serving the local store, retrying every ",
                   absl::FormatDuration(options_.retry_interval));
    down_since_ = now;
  }
  up_ = false;
  next_trial_ = now + options_.retry_interval;
  last_cause_ = absl::StrCat(absl::StatusCodeToString(cause.code()), ": ",
                             cause.message());
  if (last_cause_.size() > 240)
    last_cause_ = last_cause_.substr(0, 237) + "...";
}

bool UpstreamMonitor::up() const {
  absl::MutexLock lock(&mu_);
  return up_;
}

absl::Time UpstreamMonitor::down_since() const {
  absl::MutexLock lock(&mu_);
  return down_since_;
}

std::string UpstreamMonitor::last_cause() const {
  absl::MutexLock lock(&mu_);
  return last_cause_;
}

void UpstreamMonitor::StartProber(std::function<absl::Status()> probe) {
  absl::MutexLock lock(&mu_);
  if (prober_.joinable() || stopping_) return;
  probe_ = std::move(probe);
  prober_ = std::thread([this] { ProberLoop(); });
}

void UpstreamMonitor::StopProber() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  prober_token_.Cancel();
  if (prober_.joinable()) prober_.join();
}

void UpstreamMonitor::ProberLoop() {
  ScopedCallToken scope(&prober_token_);
  for (;;) {
    const absl::Status status = probe_();
    if (prober_token_.cancelled()) return;
    if (status.ok()) {
      ReportSuccess();
    } else if (status.code() != absl::StatusCode::kCancelled) {
      ReportOutage(status);
    }
    absl::MutexLock lock(&mu_);
    const absl::Duration wait =
        up_ ? options_.up_interval : options_.retry_interval;
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_;
    };
    if (up_ && wait <= absl::ZeroDuration()) {
      // Nothing to do while up; wake when stopping or when a request reports
      // an outage.
      auto stop_or_down = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !up_;
      };
      mu_.Await(absl::Condition(&stop_or_down));
      if (stopping_) return;
      // Down now: wait one retry interval before probing.
      mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.retry_interval);
    } else {
      mu_.AwaitWithTimeout(absl::Condition(&stopping), wait);
    }
    if (stopping_) return;
  }
}

}  // namespace trialmatch::server
