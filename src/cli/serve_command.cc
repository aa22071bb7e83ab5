// `trialmatch serve`: the gRPC server (StudyService, MatchingService, health,
// reflection) over the local study store, with ClinicalTrials.gov behind it
// and an optional periodic sync. Flags and behaviour: docs/server.md; the
// matching service and its snapshot: docs/matching.md.
//
// Start-up order (each step logged):
//   1. flags → option structs (usage errors exit 2 before anything starts);
//      the eligibility rules load (--rules, else the search of
//      cli/rules_location.h); a rules error is fatal: exit 1, nothing starts;
//   2. SIGTERM/SIGINT blocked before any thread exists (server/signals.h);
//   3. the gRPC server starts listening with health NOT_SERVING; the bound
//      port is logged ("listening on HOST:PORT") and written to --port_file;
//   4. the upstream prober starts (ClinicalTrials.gov may be down: the
//      server says so and keeps serving the store);
//   5. the store opens — retried while another process holds its lock;
//   6. the criteria refresher starts (sync/criteria_refresh.h): in the
//      background it compiles the studies whose stored entry is missing or
//      stale (new compiler or rules version, changed record), then again
//      after each sync that changed the store and when the rule files change
//      (checked every --rules_check_interval; a failed reload keeps the
//      current rules). Health does not wait for it: GetStudyCriteria and
//      include_criteria compile on the fly whatever is not compiled yet;
//   7. the matcher's snapshot is read from the snapshot file when it is
//      fresh (--snapshot_file, default "<store>.snapshot": built from the
//      store's current generation with the current compiler and rules), else
//      built (server/snapshot_manager.h: the ACTIVE studies with their
//      compiled criteria, after a refresher pass) and then saved to the file;
//      health turns SERVING; it is rebuilt (and saved), and swapped
//      atomically under running calls, after each sync that changed the
//      store and after the refresher recompiled (new rules);
//   8. the sync scheduler starts when --sync_interval > 0.
// SIGTERM/SIGINT: health NOT_SERVING, Shutdown(now + --shutdown_grace),
// background work stopped, exit 0.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "cli/cli.h"
#include "cli/command_flags.h"
#include "cli/flags.h"
#include "cli/rules_location.h"
#include "common/logging.h"
#include "criteria/rule_set.h"
#include "ctgov/client.h"
#include "ctgov/curl_transport.h"
#include "server/call_context.h"
#include "server/grpc_server.h"
#include "server/matching_service.h"
#include "server/signals.h"
#include "server/snapshot_manager.h"
#include "server/study_backend.h"
#include "server/study_service.h"
#include "store/study_store.h"
#include "sync/criteria_refresh.h"
#include "sync/scheduler.h"
#include "sync/syncer.h"
#include "trialmatch/version.h"

namespace trialmatch::cli {
namespace {

constexpr char kLog[] = "serve";

struct ServeFlags {
  std::string listen = "0.0.0.0:50051";
  std::string port_file;
  std::string store_path = store::DefaultStorePath();
  std::string ctgov_base_url = ctgov::kDefaultBaseUrl;
  double requests_per_second = 0.8;
  absl::Duration max_cache_age = absl::Hours(24);
  absl::Duration sync_interval = absl::ZeroDuration();
  bool offline = false;
  absl::Duration shutdown_grace = absl::Seconds(20);
  std::string log_level = "info";
  std::vector<std::string> statuses;
  std::string rules;
  absl::Duration rules_check_interval = absl::Seconds(30);
  int compile_threads = 1;
  int upstream_attempts = 3;
  absl::Duration upstream_timeout = absl::Seconds(30);
  absl::Duration upstream_retry_budget = absl::Seconds(20);
  absl::Duration upstream_probe_interval = absl::Seconds(30);
  int64_t max_response_bytes = server::kDefaultClientReceiveLimit;
  int store_threads = 4;
  int upstream_threads = 8;
  int match_threads = server::DefaultMatchingThreads();
  int snapshot_threads = 0;
  std::string snapshot_file;  // "" = <store>.snapshot, "none" = no file
  bool brute_force = false;
};

// Writes "<port>\n" atomically (temp file + rename), so a reader never sees
// a partial file.
bool WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

// The ctgov options of the request path: a short retry budget (a caller is
// waiting; the store answers when the upstream cannot) and timeouts no
// longer than the per-attempt limit.
ctgov::CtgovOptions RequestPathOptions(const ServeFlags& f, double rate) {
  ctgov::CtgovOptions o;
  o.base_url = f.ctgov_base_url;
  o.requests_per_second = rate;
  o.retry.max_attempts = f.upstream_attempts;
  o.retry.max_total_time = f.upstream_retry_budget;
  o.retry.initial_backoff = absl::Milliseconds(500);
  o.retry.max_backoff = absl::Seconds(10);
  o.retry.max_retry_after = absl::Seconds(10);
  o.timeout = f.upstream_timeout;
  o.connect_timeout = std::min(absl::Seconds(10), f.upstream_timeout);
  o.low_speed_time = std::max(absl::Seconds(1),
                              std::min(absl::Seconds(30), f.upstream_timeout));
  return o;
}

}  // namespace

int ServeCommand(const std::vector<std::string>& args) {
  ServeFlags f;
  FlagSet flags("trialmatch serve",
                "Serves trialmatch.v1.StudyService (a cached mirror of "
                "ClinicalTrials.gov API v2) over gRPC, with grpc.health.v1 "
                "and server reflection.");
  flags.String("listen", &f.listen,
               "host:port to listen on; port 0 picks a free port");
  flags.String("port_file", &f.port_file,
               "write the bound port to this file once listening");
  flags.String("store", &f.store_path, "SQLite study store path");
  flags.String("ctgov_base_url", &f.ctgov_base_url,
               "ClinicalTrials.gov API v2 root");
  flags.Double("requests_per_second", &f.requests_per_second,
               "request rate limit towards ClinicalTrials.gov, shared by "
               "requests and sync (0 = none)");
  flags.Duration("max_cache_age", &f.max_cache_age,
                 "GetStudy serves a stored copy younger than this (requests "
                 "may override)");
  flags.Duration("sync_interval", &f.sync_interval,
                 "sync the store from ClinicalTrials.gov at start and then "
                 "this often (0 = no periodic sync)");
  flags.Bool("offline", &f.offline,
             "never call ClinicalTrials.gov; serve the store only");
  flags.Duration("shutdown_grace", &f.shutdown_grace,
                 "on SIGTERM/SIGINT, time given to in-flight calls");
  flags.String("log_level", &f.log_level, "debug, info, warning or error");
  flags.StringList("statuses", &f.statuses,
                   "overall statuses in scope for sync and cached studies "
                   "(comma-separated; default RECRUITING,NOT_YET_RECRUITING)");
  flags.String("rules", &f.rules,
               "eligibility rules directory (default: $TRIALMATCH_RULES_DIR, "
               "the source tree's rules/, /usr/share/trialmatch/rules); a "
               "rules error at start-up is fatal");
  flags.Duration("rules_check_interval", &f.rules_check_interval,
                 "check the rules directory for changes this often and "
                 "reload (a failed reload keeps the current rules; 0 = never)");
  flags.Int("compile_threads", &f.compile_threads,
            "threads compiling eligibility criteria in the background");
  flags.Int("upstream_attempts", &f.upstream_attempts,
            "attempts per upstream call on the request path (1 = no retry)");
  flags.Duration("upstream_timeout", &f.upstream_timeout,
                 "time limit of one upstream HTTP exchange (request path)");
  flags.Duration("upstream_retry_budget", &f.upstream_retry_budget,
                 "no upstream retry starts after this much time in a call");
  flags.Duration("upstream_probe_interval", &f.upstream_probe_interval,
                 "while ClinicalTrials.gov is unreachable, probe it (and let "
                 "one request try it) this often");
  flags.Int("max_response_bytes", &f.max_response_bytes,
            "largest response built (default 4 MiB: what a default gRPC "
            "client accepts); larger search pages are split");
  flags.Int("store_threads", &f.store_threads,
            "threads answering from the store");
  flags.Int("upstream_threads", &f.upstream_threads,
            "threads waiting on ClinicalTrials.gov");
  flags.Int("match_threads", &f.match_threads,
            "threads matching patients (default: one per core; 0 = match "
            "inline in gRPC's threads)");
  flags.Int("snapshot_threads", &f.snapshot_threads,
            "threads decoding studies while the matcher's snapshot is built "
            "(0 = one per core)");
  flags.String("snapshot_file", &f.snapshot_file,
               "the matcher's snapshot saved after each build and read at "
               "start when still fresh (default: <store>.snapshot; 'none': "
               "always build from the store, save nothing)");
  flags.Bool("brute_force", &f.brute_force,
             "benchmarks: evaluate every study on every match, without the "
             "condition index or the ranking bound (the same answers, ~25x "
             "the CPU at 100k studies)");
  std::vector<std::string> rest;
  if (std::optional<int> exit = ParseFlagsOrExit(flags, args, &rest)) {
    return *exit;
  }
  constexpr char kCmd[] = "trialmatch serve";
  if (!rest.empty()) {
    std::cerr << kCmd << ": unexpected argument '" << rest[0] << "'\n";
    return kExitUsage;
  }
  if (!ApplyLogLevelFlag(kCmd, f.log_level)) return kExitUsage;
  if (f.upstream_attempts < 1 || f.store_threads < 1 ||
      f.upstream_threads < 1 || f.compile_threads < 1 || f.match_threads < 0 ||
      f.snapshot_threads < 0 || f.rules_check_interval < absl::ZeroDuration() ||
      f.max_response_bytes < (64 << 10) || f.max_response_bytes > (64 << 20) ||
      f.shutdown_grace < absl::ZeroDuration() ||
      f.max_cache_age < absl::ZeroDuration() ||
      f.sync_interval < absl::ZeroDuration() ||
      f.upstream_timeout <= absl::ZeroDuration() ||
      f.upstream_probe_interval <= absl::ZeroDuration()) {
    std::cerr << kCmd
              << ": --upstream_attempts, --store_threads, --upstream_threads "
                 "and --compile_threads must be >= 1, --match_threads and "
                 "--snapshot_threads >= 0, --max_response_bytes in "
                 "64 KiB..64 MiB, durations not negative (timeouts and the "
                 "probe interval > 0)\n";
    return kExitUsage;
  }

  // 1b. The rules: a start-up error is fatal.
  RulesLocation rules_location;
  absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> loaded_rules =
      FindAndLoadRules(f.rules, &rules_location);
  if (!loaded_rules.ok()) {
    TM_LOG_ERROR(kLog, loaded_rules.status().message(), "; refusing to start");
    return kExitFailure;
  }
  TM_LOG_INFO(kLog, "eligibility rules ", (*loaded_rules)->version(), " from ",
              rules_location.dir.string(), " (", rules_location.origin, ")");
  criteria::RuleSetHolder rules(*std::move(loaded_rules));

  // 2. Before any thread exists (gRPC, curl, the prober ...).
  if (absl::Status s = server::BlockTerminationSignals(); !s.ok()) {
    std::cerr << kCmd << ": " << s.message() << "\n";
    return kExitFailure;
  }

  std::vector<std::string> scope =
      f.statuses.empty() ? sync::DefaultWantedStatuses() : f.statuses;
  const bool syncing = !f.offline && f.sync_interval > absl::ZeroDuration();
  // Requests and sync share the rate: each gets half when both run.
  const double request_rate =
      syncing ? f.requests_per_second / 2 : f.requests_per_second;

  std::optional<ctgov::CtgovClient> upstream;
  static server::CallAwareClock* const kClock = new server::CallAwareClock();
  if (!f.offline) {
    absl::StatusOr<std::shared_ptr<ctgov::CurlTransport>> curl =
        ctgov::CurlTransport::Create();
    if (!curl.ok()) {
      std::cerr << kCmd << ": " << curl.status().message() << "\n";
      return kExitFailure;
    }
    absl::StatusOr<ctgov::CtgovClient> client = ctgov::CtgovClient::Create(
        RequestPathOptions(f, request_rate),
        std::make_shared<server::CallAwareTransport>(*std::move(curl)),
        *kClock);
    if (!client.ok()) {
      std::cerr << kCmd << ": " << client.status().message() << "\n";
      return kExitUsage;
    }
    upstream = *std::move(client);
  }

  server::UpstreamMonitor monitor(
      {.retry_interval = f.upstream_probe_interval});
  server::StudyBackendOptions backend_options;
  backend_options.max_cache_age = f.max_cache_age;
  backend_options.wanted_statuses = scope;
  backend_options.max_response_bytes =
      static_cast<std::size_t>(f.max_response_bytes);
  backend_options.server_version = TRIALMATCH_VERSION;
  backend_options.rules = &rules;
  auto backend = std::make_shared<server::StudyBackend>(
      backend_options, upstream, &monitor, common::SystemClock::Default());
  server::StudyService service(backend,
                               {.store_threads = f.store_threads,
                                .upstream_threads = f.upstream_threads});

  server::SnapshotHolder snapshot_holder;
  absl::StatusOr<match::Matcher> matcher =
      match::Matcher::Create({.evaluate_all = f.brute_force});
  if (!matcher.ok()) {
    std::cerr << kCmd << ": " << matcher.status().message() << "\n";
    return kExitFailure;
  }
  server::MatchingService matching(&snapshot_holder, *std::move(matcher),
                                   {.threads = f.match_threads});

  // 3. Listen, NOT_SERVING until the store is open and the snapshot built.
  server::GrpcServer::Options server_options;
  server_options.listen_address = f.listen;
  server_options.max_send_message_bytes = static_cast<int>(
      std::max<int64_t>(16 << 20, f.max_response_bytes + (1 << 20)));
  server_options.health_service_names = {
      v1::StudyService::service_full_name(),
      v1::MatchingService::service_full_name()};
  server_options.required_conditions = {"store", "snapshot"};
  absl::StatusOr<std::unique_ptr<server::GrpcServer>> grpc_server =
      server::GrpcServer::Start(server_options, {&service, &matching});
  if (!grpc_server.ok()) {
    TM_LOG_ERROR(kLog, grpc_server.status().message());
    return grpc_server.status().code() == absl::StatusCode::kInvalidArgument
               ? kExitUsage
               : kExitFailure;
  }
  server::GrpcServer& srv = **grpc_server;
  TM_LOG_INFO(kLog, "trialmatch ", TRIALMATCH_VERSION, " listening on ",
              srv.address(), f.offline ? " (offline mode)" : "");
  if (!f.port_file.empty() && !WritePortFile(f.port_file, srv.port())) {
    TM_LOG_ERROR(kLog, "cannot write --port_file ", f.port_file);
    srv.Shutdown(absl::ZeroDuration());
    srv.Wait();
    return kExitFailure;
  }

  absl::Notification stopping;
  server::SignalWatcher watcher([&](int sig) {
    TM_LOG_INFO(kLog, sig == SIGTERM ? "SIGTERM" : "SIGINT",
                ": shutting down (grace ",
                absl::FormatDuration(f.shutdown_grace), ")");
    stopping.Notify();
    srv.Shutdown(f.shutdown_grace);
  });

  // 4. Probe ClinicalTrials.gov in the background.
  if (!f.offline) {
    monitor.StartProber([backend] { return backend->ProbeUpstream(); });
  }

  // 5. Open the store; another process may hold its lock for a while.
  std::shared_ptr<store::StudyStore> store;
  bool said_waiting = false;
  while (!stopping.HasBeenNotified()) {
    store::StoreOptions store_options;
    store_options.read_connections = std::max(2, f.store_threads);
    absl::StatusOr<std::unique_ptr<store::StudyStore>> opened =
        store::StudyStore::Open(f.store_path, store_options);
    if (opened.ok()) {
      store = *std::move(opened);
      break;
    }
    if (opened.status().code() != absl::StatusCode::kUnavailable) {
      TM_LOG_ERROR(kLog, "cannot open the store ", f.store_path, ": ",
                   opened.status().ToString());
      srv.Shutdown(absl::ZeroDuration());
      srv.Wait();
      return kExitFailure;
    }
    if (!said_waiting) {
      TM_LOG_WARNING(kLog, "the store ", f.store_path,
                     " is locked by another process; NOT_SERVING until it "
                     "opens (",
                     opened.status().message(), ")");
      said_waiting = true;
    }
    stopping.WaitForNotificationWithTimeout(absl::Seconds(1));
  }
  std::unique_ptr<sync::SyncScheduler> scheduler;
  std::unique_ptr<sync::CriteriaRefresher> refresher;
  std::unique_ptr<server::SnapshotManager> snapshots;
  if (store != nullptr) {
    backend->AttachStore(store);
    srv.readiness().MarkReady("store");
    TM_LOG_INFO(kLog, "store ready; building the matcher's snapshot");

    // 6. Compiled criteria in the background.
    sync::CriteriaRefresherOptions refresher_options;
    refresher_options.refresh.threads = f.compile_threads;
    refresher_options.rules_dir = rules_location.dir;
    refresher_options.rules_check_interval = f.rules_check_interval;
    refresher = std::make_unique<sync::CriteriaRefresher>(
        store.get(), &rules, refresher_options,
        [&snapshots](const sync::RefreshReport& report) {
          if (report.stale == 0) {
            TM_LOG_INFO(kLog, report.Summary());
          }
          // Recompiled (or new rules): the snapshot follows.
          if (snapshots != nullptr) snapshots->RequestRebuild();
        });

    // 7. The matcher's snapshot: each build first lets the refresher compile
    // what is stale (RunOnce, serialised with its own passes), so entries
    // are compiled once and stored; SERVING after the first one.
    // A fresh snapshot file skips the first build (and its refresher pass:
    // the refresher's own start-up pass still runs, and a rebuild follows
    // when it recompiles anything).
    server::SnapshotManagerOptions snapshot_options;
    // The refresher's first pass asks for a rebuild; with a snapshot read
    // from the file (or built) from the store as it still is, none is made.
    snapshot_options.is_current = [&snapshot_holder, &store, &rules] {
      return server::IsCurrent(snapshot_holder.Current().get(), *store,
                               *rules.Get());
    };
    const std::string snapshot_file =
        server::SnapshotFilePath(f.snapshot_file, f.store_path);
    if (!snapshot_file.empty()) {
      snapshot_options.initial_load = [&store, &rules, snapshot_file] {
        return server::LoadSnapshotFile(*store, rules.Get(), snapshot_file);
      };
      snapshot_options.persist = [snapshot_file](
                                     const server::LoadedSnapshot& loaded) {
        if (absl::Status s = server::SaveSnapshotFile(loaded, snapshot_file);
            !s.ok()) {
          TM_LOG_WARNING(kLog, "snapshot file not saved: ", s.ToString());
        }
      };
    }
    snapshots = std::make_unique<server::SnapshotManager>(
        &snapshot_holder,
        [&store, &rules, &f](const std::atomic<bool>& cancelled) {
          server::SnapshotLoadOptions load;
          load.threads = f.snapshot_threads;
          load.cancelled = &cancelled;
          return server::LoadSnapshot(*store, rules.Get(), load);
        },
        std::move(snapshot_options),
        [r = refresher.get()] { (void)r->RunOnce(); },
        [&srv, &store, &f,
         r = refresher.get()](const server::LoadedSnapshot& loaded) {
          if (loaded.generation == 1) {
            srv.readiness().MarkReady("snapshot");
            TM_LOG_INFO(kLog, "SERVING");
            // The refresher's own passes from now on (before the first
            // build, the prepare step ran one; a snapshot file needs none):
            // they would only compete with the first snapshot for the CPU.
            r->Start();
            // Counting the store's rows takes seconds at 100k studies: after
            // SERVING, not before.
            if (absl::StatusOr<store::StoreStats> stats = store->GetStats();
                stats.ok()) {
              TM_LOG_INFO(kLog, "store ", f.store_path, ": ", stats->studies,
                          " studies (", stats->active, " active)");
            }
          }
        });
    snapshots->Start();

    // 8. Periodic sync.
    if (syncing) {
      sync::SchedulerConfig config;
      config.ctgov.base_url = f.ctgov_base_url;
      config.ctgov.requests_per_second = f.requests_per_second / 2;
      config.sync.wanted_statuses = scope;
      config.schedule.interval = f.sync_interval;
      absl::StatusOr<std::unique_ptr<sync::SyncScheduler>> created =
          sync::SyncScheduler::Create(
              store.get(), config,
              [r = refresher.get(),
               m = snapshots.get()](const sync::SyncReport& report) {
                TM_LOG_INFO(kLog, "store changed by sync: ", report.Summary());
                r->RequestRefresh();  // compiles the new and changed studies
                m->RequestRebuild();  // after a refresher pass (prepare)
              });
      if (created.ok()) {
        scheduler = *std::move(created);
        scheduler->Start();
      } else {
        TM_LOG_ERROR(kLog, "sync disabled: ", created.status().ToString());
      }
    }
  }

  srv.Wait();
  TM_LOG_INFO(kLog, "server stopped; finishing background work");
  if (scheduler != nullptr) scheduler->Stop();
  if (refresher != nullptr) refresher->Stop();  // also ends a RunOnce
  if (snapshots != nullptr) snapshots->Stop();
  matching.Shutdown();
  monitor.StopProber();
  service.Shutdown();
  watcher.Stop();
  TM_LOG_INFO(kLog, "bye");
  return kExitOk;
}

}  // namespace trialmatch::cli
