#include "sync/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "ctgov/curl_transport.h"
#include "sync/progress.h"

namespace trialmatch::sync {
namespace {

constexpr char kLog[] = "sync";

bool IsUnreachable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kDeadlineExceeded;
}

// Everything the production sync function's client and syncer point to.
struct ProductionParts {
  std::shared_ptr<InterruptibleClock> clock;
  std::shared_ptr<Syncer> syncer;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SyncScheduler>> SyncScheduler::Create(
    store::StudyStore* store, SchedulerConfig config, ChangedFn on_change) {
  auto cancellation = std::make_shared<Cancellation>();
  TRIALMATCH_ASSIGN_OR_RETURN(std::shared_ptr<ctgov::CurlTransport> curl,
                              ctgov::CurlTransport::Create());
  auto transport =
      std::make_shared<CancellableTransport>(std::move(curl), cancellation);
  auto parts = std::make_shared<ProductionParts>();
  parts->clock = std::make_shared<InterruptibleClock>(cancellation);
  TRIALMATCH_ASSIGN_OR_RETURN(
      ctgov::CtgovClient client,
      ctgov::CtgovClient::Create(std::move(config.ctgov), std::move(transport),
                                 *parts->clock));
  TRIALMATCH_ASSIGN_OR_RETURN(
      std::unique_ptr<Syncer> syncer,
      Syncer::Create(std::move(client), store, std::move(config.sync),
                     *parts->clock));
  parts->syncer = std::move(syncer);
  Syncer* raw = parts->syncer.get();
  SyncFn fn = [raw](const std::atomic<bool>& cancelled) {
    return raw->Sync(SyncMode::kAuto, {.cancelled = &cancelled});
  };
  auto scheduler = std::make_unique<SyncScheduler>(
      std::move(fn), config.schedule, common::SystemClock::Default(),
      std::move(on_change), std::move(cancellation));
  scheduler->keep_alive_ = std::move(parts);
  return scheduler;
}

SyncScheduler::SyncScheduler(SyncFn sync, SchedulerOptions options,
                             common::Clock& clock, ChangedFn on_change,
                             std::shared_ptr<Cancellation> cancellation)
    : sync_(std::move(sync)),
      options_(options),
      clock_(clock),
      on_change_(std::move(on_change)),
      cancellation_(cancellation != nullptr
                        ? std::move(cancellation)
                        : std::make_shared<Cancellation>()) {}

SyncScheduler::~SyncScheduler() { Stop(); }

void SyncScheduler::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stop_) return;
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void SyncScheduler::Stop() {
  std::thread thread;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    thread = std::move(thread_);
  }
  cancellation_->Cancel();
  if (thread.joinable()) thread.join();
}

void SyncScheduler::RequestSync() {
  absl::MutexLock lock(&mu_);
  requested_ = true;
}

SchedulerStatus SyncScheduler::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

void SyncScheduler::Loop() {
  absl::Duration delay =
      options_.sync_at_start ? absl::ZeroDuration() : options_.interval;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Time due = clock_.Now() + delay;
      status_.next_run_at = due;
      while (!stop_ && !requested_) {
        const absl::Duration left = due - clock_.Now();
        if (left <= absl::ZeroDuration()) break;
        mu_.AwaitWithTimeout(absl::Condition(this, &SyncScheduler::WakeUp),
                             left);
      }
      if (stop_) return;
      requested_ = false;
      status_.next_run_at.reset();
    }
    delay = RunOnce();
  }
}

absl::Duration SyncScheduler::RunOnce() {
  absl::MutexLock run_lock(&run_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return options_.interval;
    status_.running = true;
    status_.last_attempt_at = clock_.Now();
    ++status_.attempts;
  }
  absl::StatusOr<SyncReport> result = sync_(*cancellation_->flag());

  absl::Duration delay = options_.interval;
  bool call_back = false;
  {
    absl::MutexLock lock(&mu_);
    status_.running = false;
    const absl::Time now = clock_.Now();
    if (result.ok()) {
      TM_LOG_INFO(kLog, result->Summary());
      if (status_.consecutive_failures > 0) {
        TM_LOG_INFO(kLog, "syncing works again after ",
                    status_.consecutive_failures, " failed attempt",
                    status_.consecutive_failures == 1 ? "" : "s");
      }
      ++status_.successes;
      status_.consecutive_failures = 0;
      status_.last_success_at = now;
      status_.last_report = *result;
      reported_code_.reset();
      call_back = result->changed() && on_change_ != nullptr;
    } else if (result.status().code() == absl::StatusCode::kCancelled &&
               cancellation_->cancelled()) {
      TM_LOG_INFO(kLog, "sync stopped by shutdown; what was stored is kept");
    } else {
      ++status_.failures;
      ++status_.consecutive_failures;
      status_.last_failure_at = now;
      status_.last_error = result.status();
      const int shift = static_cast<int>(
          std::min<int64_t>(status_.consecutive_failures - 1, 30));
      delay =
          std::min(options_.max_retry, options_.initial_retry * (1LL << shift));
      const absl::StatusCode code = result.status().code();
      if (reported_code_ != code) {
        reported_code_ = code;
        TM_LOG_WARNING(
            kLog,
            IsUnreachable(code) ? "ClinicalTrials.gov is unreachable: "
                                : "sync failed: ",
            result.status().ToString(),
            ". Serving the stored studies; retrying with backoff (next in ",
            FormatEta(delay),
            "); further failures of this kind are logged at DEBUG level "
            "until a sync succeeds");
      } else {
        TM_LOG_DEBUG(kLog, "sync failed again (", status_.consecutive_failures,
                     " in a row): ", result.status().ToString(), "; next in ",
                     FormatEta(delay));
      }
    }
  }
  if (call_back) on_change_(*result);
  return delay;
}

}  // namespace trialmatch::sync
