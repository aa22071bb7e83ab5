// `trialmatch sync`: one sync of the local store from ClinicalTrials.gov.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/cli.h"
#include "cli/command_flags.h"
#include "cli/criteria_step.h"
#include "cli/flags.h"
#include "ctgov/client.h"
#include "store/study_store.h"
#include "sync/progress.h"
#include "sync/syncer.h"

namespace trialmatch::cli {
namespace {

// Set by SIGINT/SIGTERM: the sync stops before its next request. The
// handler is reset after the first signal, so a second Ctrl-C kills.
std::atomic<bool> g_sync_interrupted{false};

extern "C" void OnSyncInterrupt(int) { g_sync_interrupted.store(true); }

void InstallInterruptHandlers() {
  struct sigaction action = {};
  action.sa_handler = &OnSyncInterrupt;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

}  // namespace

int SyncCommand(const std::vector<std::string>& args) {
  std::string store_path = store::DefaultStorePath();
  ctgov::CtgovOptions ctgov_options;
  sync::SyncOptions sync_options;
  std::vector<std::string> statuses;
  bool full = false;
  std::string log_level = "info";

  FlagSet flags("trialmatch sync",
                "Brings the local study store up to date with "
                "ClinicalTrials.gov: a full sync the first time (and every "
                "--full_sync_interval), else an incremental one. An "
                "interrupted full sync resumes where it stopped.");
  flags.String("store", &store_path, "SQLite study store path");
  flags.String("ctgov_base_url", &ctgov_options.base_url,
               "ClinicalTrials.gov API v2 root");
  flags.Double("requests_per_second", &ctgov_options.requests_per_second,
               "request rate limit towards ClinicalTrials.gov (0 = none)");
  flags.Int("max_attempts", &ctgov_options.retry.max_attempts,
            "attempts per request before giving up (retries back off)");
  flags.Bool("full", &full,
             "force a full sync with reconciliation (resumes one in progress)");
  flags.StringList(
      "statuses", &statuses,
      "overall statuses to keep active (comma-separated; "
      "default RECRUITING,NOT_YET_RECRUITING; ALL = every status)");
  flags.Duration("overlap", &sync_options.overlap,
                 "how far before the watermark an incremental sync starts");
  flags.Duration("full_sync_interval", &sync_options.full_sync_interval,
                 "a full sync runs when the last one is older (0 = only the "
                 "first time)");
  flags.Int("page_size", &sync_options.page_size, "studies per page (1-1000)");
  flags.String("log_level", &log_level, "debug, info, warning or error");
  CriteriaStep criteria_step;
  criteria_step.RegisterFlags(flags);
  std::vector<std::string> rest;
  if (std::optional<int> exit = ParseFlagsOrExit(flags, args, &rest)) {
    return *exit;
  }
  if (!rest.empty()) {
    std::cerr << "trialmatch sync: unexpected argument '" << rest[0] << "'\n";
    return kExitUsage;
  }
  if (!ApplyLogLevelFlag("trialmatch sync", log_level)) return kExitUsage;
  sync_options.wanted_statuses = sync::WantedStatusesFromFlag(statuses);
  if (!criteria_step.LoadRules("trialmatch sync")) return kExitFailure;

  absl::StatusOr<ctgov::CtgovClient> client =
      ctgov::CtgovClient::CreateDefault(ctgov_options);
  if (!client.ok()) {
    std::cerr << "trialmatch sync: " << client.status().message() << "\n";
    return absl::IsInvalidArgument(client.status()) ? kExitUsage : kExitFailure;
  }
  absl::StatusOr<std::unique_ptr<store::StudyStore>> store =
      store::StudyStore::Open(store_path);
  if (!store.ok()) {
    std::cerr << "trialmatch sync: cannot open the store: "
              << store.status().ToString() << "\n";
    return kExitFailure;
  }
  absl::StatusOr<std::unique_ptr<sync::Syncer>> syncer =
      sync::Syncer::Create(*std::move(client), store->get(), sync_options);
  if (!syncer.ok()) {
    std::cerr << "trialmatch sync: " << syncer.status().message() << "\n";
    return kExitUsage;
  }

  InstallInterruptHandlers();
  sync::ProgressPrinter printer({.terminal = ::isatty(STDERR_FILENO) == 1},
                                common::SystemClock::Default());
  absl::StatusOr<sync::SyncReport> report = (*syncer)->Sync(
      full ? sync::SyncMode::kFull : sync::SyncMode::kAuto,
      {.cancelled = &g_sync_interrupted, .on_progress = printer.AsCallback()});
  printer.Done();
  if (!report.ok()) {
    const absl::Status& s = report.status();
    if (s.code() == absl::StatusCode::kUnavailable ||
        s.code() == absl::StatusCode::kDeadlineExceeded) {
      std::cerr << "trialmatch sync: ClinicalTrials.gov is unreachable ("
                << s.ToString()
                << "). Nothing stored was lost; run it again later to "
                   "continue.\n";
    } else if (s.code() == absl::StatusCode::kCancelled) {
      std::cerr << "trialmatch sync: interrupted (" << s.message()
                << "). What was stored is kept; run it again to continue.\n";
    } else {
      std::cerr << "trialmatch sync: failed: " << s.ToString() << "\n";
    }
    return kExitFailure;
  }
  std::cout << report->Summary() << "\n";
  return criteria_step.Run("trialmatch sync", **store, &g_sync_interrupted);
}

}  // namespace trialmatch::cli
