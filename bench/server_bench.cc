// server_bench: GetStudy latency from the cache, over gRPC on loopback.
//
// By default it builds the whole serving path in this process — a store on a
// temp file seeded with recorded studies, StudyService in offline mode (no
// upstream: every answer is a cache hit), GrpcServer on 127.0.0.1:0 — and
// runs a closed-loop load: `--concurrency` client threads, each with its own
// channel and a blocking generated stub, calling GetStudy for random stored
// ids for `--seconds`. With `--target=host:port` it loads an external
// `trialmatch serve` instead (ids from --ids=NCT..,NCT.. or the recorded
// corpus; they must be cached there).
//
// Prints requests/s and latency percentiles (p50/p90/p99/p99.9/max) of the
// calls that succeeded, and the count of failures. Client and server share
// the machine's cores: on a 2-core box the figures are a lower bound.
//
//   build/<dir>/bench/server_bench --concurrency=4 --seconds=10 --studies=500
//   --typed_cache_mb=0 turns the typed-field cache off (every hit parses).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "server/grpc_server.h"
#include "server/study_backend.h"
#include "server/study_service.h"
#include "store/study_store.h"
#include "trialmatch/v1/study_service.grpc.pb.h"

namespace {

using trialmatch::server::GrpcServer;
using trialmatch::server::StudyBackend;
using trialmatch::server::StudyService;

struct Flags {
  int concurrency = 4;
  double seconds = 10;
  double warmup_seconds = 1;
  int studies = 500;
  std::string target;
  std::string ids;
  int typed_cache_mb = 64;
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::size_t eq = arg.find('=');
    const std::string key = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    bool ok = true;
    if (key == "--concurrency")
      ok = absl::SimpleAtoi(value, &f->concurrency);
    else if (key == "--seconds")
      ok = absl::SimpleAtod(value, &f->seconds);
    else if (key == "--warmup")
      ok = absl::SimpleAtod(value, &f->warmup_seconds);
    else if (key == "--studies")
      ok = absl::SimpleAtoi(value, &f->studies);
    else if (key == "--target")
      f->target = value;
    else if (key == "--ids")
      f->ids = value;
    else if (key == "--typed_cache_mb")
      ok = absl::SimpleAtoi(value, &f->typed_cache_mb);
    else
      ok = false;
    if (!ok) {
      std::fprintf(stderr,
                   "usage: server_bench [--concurrency=N] [--seconds=S] "
                   "[--warmup=S] [--studies=N] [--target=host:port] "
                   "[--ids=NCT..,NCT..] [--typed_cache_mb=N]\n");
      return false;
    }
  }
  return f->concurrency > 0 && f->seconds > 0 && f->studies > 0;
}

std::vector<std::filesystem::path> RecordedFiles(int n) {
  std::vector<std::filesystem::path> files;
  const std::filesystem::path dir =
      std::filesystem::path(TRIALMATCH_SHARED_DATA_DIR) / "ctgov_v2" /
      "studies";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (static_cast<int>(files.size()) > n) files.resize(n);
  return files;
}

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const std::size_t i = std::min(
      sorted.size() - 1, static_cast<std::size_t>(p / 100.0 * sorted.size()));
  return sorted[i];
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;

  std::vector<std::string> ids;
  std::unique_ptr<GrpcServer> server;
  std::unique_ptr<StudyService> service;
  std::shared_ptr<trialmatch::store::StudyStore> store;
  std::filesystem::path tmp;
  std::string target = flags.target;
  if (!flags.ids.empty()) {
    ids = absl::StrSplit(flags.ids, ',', absl::SkipEmpty());
  } else {
    for (const auto& f : RecordedFiles(flags.studies)) {
      ids.push_back(f.stem().string());
    }
  }
  if (ids.empty()) {
    std::fprintf(stderr, "no study ids (is the shared data there?)\n");
    return 1;
  }

  if (target.empty()) {
    tmp = std::filesystem::temp_directory_path() /
          ("server_bench-" + std::to_string(::getpid()));
    std::filesystem::create_directories(tmp);
    auto opened = trialmatch::store::StudyStore::Open((tmp / "s.db").string());
    if (!opened.ok()) {
      std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
      return 1;
    }
    store = *std::move(opened);
    std::vector<trialmatch::store::StudyRecord> batch;
    std::size_t bytes = 0;
    for (const auto& f : RecordedFiles(flags.studies)) {
      auto r = trialmatch::store::MakeStudyRecord(Slurp(f));
      if (!r.ok()) continue;
      bytes += r->raw_json.size();
      batch.push_back(*std::move(r));
    }
    if (auto n = store->UpsertStudies(batch); !n.ok()) {
      std::fprintf(stderr, "%s\n", n.status().ToString().c_str());
      return 1;
    }
    std::printf("seeded %zu studies (%.1f MB of JSON, mean %.1f KB)\n",
                batch.size(), bytes / 1e6, bytes / 1e3 / batch.size());
    trialmatch::server::StudyBackendOptions backend_options;
    backend_options.typed_cache_bytes =
        static_cast<std::size_t>(flags.typed_cache_mb) << 20;
    auto backend = std::make_shared<StudyBackend>(
        backend_options, std::nullopt, nullptr,
        trialmatch::common::SystemClock::Default());
    backend->AttachStore(store);
    service = std::make_unique<StudyService>(backend);
    GrpcServer::Options options;
    options.listen_address = "127.0.0.1:0";
    auto started = GrpcServer::Start(options, {service.get()});
    if (!started.ok()) {
      std::fprintf(stderr, "%s\n", started.status().ToString().c_str());
      return 1;
    }
    server = *std::move(started);
    target = server->address();
  }

  std::printf(
      "target %s, %d client threads, %zu ids, %.0f s (+%.0f s warm-up)\n",
      target.c_str(), flags.concurrency, ids.size(), flags.seconds,
      flags.warmup_seconds);
  using Clock = std::chrono::steady_clock;
  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> latencies(flags.concurrency);
  std::vector<int64_t> failures(flags.concurrency, 0);
  std::vector<int64_t> response_bytes(flags.concurrency, 0);
  std::vector<std::thread> clients;
  for (int t = 0; t < flags.concurrency; ++t) {
    clients.emplace_back([&, t] {
      // One channel per thread: separate HTTP/2 connections, as separate
      // clients would have.
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", t);  // no subchannel sharing
      auto stub =
          trialmatch::v1::StudyService::NewStub(grpc::CreateCustomChannel(
              target, grpc::InsecureChannelCredentials(), args));
      std::mt19937_64 rng(1234 + t);
      std::uniform_int_distribution<std::size_t> pick(0, ids.size() - 1);
      trialmatch::v1::GetStudyRequest request;
      trialmatch::v1::GetStudyResponse response;
      while (!stop.load(std::memory_order_relaxed)) {
        request.set_nct_id(ids[pick(rng)]);
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(10));
        const auto start = Clock::now();
        const grpc::Status s = stub->GetStudy(&context, request, &response);
        const double us =
            std::chrono::duration<double, std::micro>(Clock::now() - start)
                .count();
        if (!measuring.load(std::memory_order_relaxed)) continue;
        if (s.ok()) {
          latencies[t].push_back(us);
          response_bytes[t] += static_cast<int64_t>(response.ByteSizeLong());
        } else {
          ++failures[t];
        }
      }
    });
  }
  std::this_thread::sleep_for(
      std::chrono::duration<double>(flags.warmup_seconds));
  measuring = true;
  const auto begin = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(flags.seconds));
  measuring = false;
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - begin).count();
  stop = true;
  for (std::thread& c : clients) c.join();

  std::vector<double> all;
  int64_t failed = 0;
  int64_t bytes = 0;
  for (int t = 0; t < flags.concurrency; ++t) {
    all.insert(all.end(), latencies[t].begin(), latencies[t].end());
    failed += failures[t];
    bytes += response_bytes[t];
  }
  std::sort(all.begin(), all.end());
  std::printf(
      "requests: %zu ok, %lld failed in %.2f s -> %.0f requests/s, "
      "%.1f MB/s of responses\n",
      all.size(), static_cast<long long>(failed), elapsed, all.size() / elapsed,
      bytes / elapsed / 1e6);
  std::printf(
      "latency (us): p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n",
      Percentile(all, 50), Percentile(all, 90), Percentile(all, 99),
      Percentile(all, 99.9), all.empty() ? 0.0 : all.back());

  if (server != nullptr) {
    server->Shutdown(absl::ZeroDuration());
    server->Wait();
    service->Shutdown();
  }
  store.reset();
  if (!tmp.empty()) std::filesystem::remove_all(tmp);
  return failed == 0 ? 0 : 1;
}
