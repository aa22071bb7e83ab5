// load_client: an open-loop gRPC load generator for MatchingService.
// MatchPatient on a local server (proto/trialmatch/v1/matching_service.proto).
//
//   trialmatch serve --store=/tmp/registry.db --listen=127.0.0.1:50051 &
//   load_client --target=127.0.0.1:50051 --rate=200 --duration=30
//
// Requests go out on a fixed schedule (--rate per second, whatever the
// responses do: open loop), each carrying one synthetic patient
// (bench/corpus_gen.h, as profile_json) and default options (top 50).
// Latency is measured from each request's scheduled send time, so a server
// that falls behind shows it in the percentiles (no coordinated omission).
// At most --max_in_flight requests are outstanding; a request whose turn
// comes while the limit is reached is not sent and is counted as "skipped".
//
// Safety: the target must be a loopback address (127.0.0.1, [::1],
// localhost); the duration is at most 600 s and the rate at most 20,000/s.
// Prints the offered and achieved rates, latency percentiles of the OK
// responses, and the errors by status code.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/corpus_flags.h"
#include "bench/corpus_gen.h"
#include "grpcpp/grpcpp.h"
#include "trialmatch/v1/matching_service.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051",
          "server address; loopback only (127.0.0.1, [::1], localhost)");
ABSL_FLAG(double, rate, 100, "requests per second (open loop)");
ABSL_FLAG(double, duration, 10, "seconds of load (at most 600)");
ABSL_FLAG(int, max_in_flight, 1000, "outstanding requests at most");
ABSL_FLAG(int64_t, patients, 1000, "distinct synthetic patients, cycled");
ABSL_FLAG(int, top_k, 50, "MatchOptions.top_k");
ABSL_FLAG(double, deadline_ms, 5000, "per-request deadline");

namespace trialmatch::bench {
namespace {

using Clock = std::chrono::steady_clock;
namespace v1 = ::trialmatch::v1;

bool IsLoopback(const std::string& target) {
  for (const char* prefix : {"127.0.0.1:", "localhost:", "[::1]:",
                             "ipv4:127.0.0.1:", "ipv6:[::1]:"}) {
    if (target.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

struct Call {
  Clock::time_point scheduled;
  grpc::ClientContext context;
  v1::MatchPatientResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::MatchPatientResponse>>
      reader;
};

double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const size_t i = std::min(
      v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i),
                   v.end());
  return v[i];
}

int Run() {
  const std::string target = absl::GetFlag(FLAGS_target);
  const double rate = absl::GetFlag(FLAGS_rate);
  const double duration = absl::GetFlag(FLAGS_duration);
  const int max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  if (!IsLoopback(target)) {
    std::fprintf(stderr, "load_client: --target must be a loopback address "
                         "(127.0.0.1:PORT, [::1]:PORT, localhost:PORT)\n");
    return 2;
  }
  if (!(rate > 0 && rate <= 20000) || !(duration > 0 && duration <= 600) ||
      max_in_flight < 1 || absl::GetFlag(FLAGS_patients) < 1) {
    std::fprintf(stderr, "load_client: need 0 < --rate <= 20000, 0 < "
                         "--duration <= 600, --max_in_flight >= 1, "
                         "--patients >= 1\n");
    return 2;
  }
  auto gen = CorpusGenerator::Create(CorpusOptionsFromFlags());
  if (!gen.ok()) {
    std::fprintf(stderr, "load_client: %s\n", gen.status().ToString().c_str());
    return 1;
  }
  std::vector<v1::MatchPatientRequest> requests;
  for (int64_t j = 0; j < absl::GetFlag(FLAGS_patients); ++j) {
    v1::MatchPatientRequest r;
    r.mutable_patient()->set_profile_json(
        (*gen)->Patient(static_cast<uint64_t>(j)).dump());
    r.mutable_options()->set_top_k(absl::GetFlag(FLAGS_top_k));
    requests.push_back(std::move(r));
  }

  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  std::unique_ptr<v1::MatchingService::Stub> stub =
      v1::MatchingService::NewStub(channel);
  grpc::CompletionQueue cq;
  std::atomic<int> in_flight{0};
  std::vector<double> latencies_ms;
  std::map<int, int64_t> errors;  // by grpc::StatusCode
  int64_t ok = 0;

  // Receiver: drains completions until the queue is shut down and empty.
  std::thread receiver([&] {
    void* tag = nullptr;
    bool fine = false;
    while (cq.Next(&tag, &fine)) {
      std::unique_ptr<Call> call(static_cast<Call*>(tag));
      const double ms = std::chrono::duration<double, std::milli>(
                            Clock::now() - call->scheduled)
                            .count();
      if (call->status.ok()) {
        ++ok;
        latencies_ms.push_back(ms);
      } else {
        ++errors[static_cast<int>(call->status.error_code())];
      }
      in_flight.fetch_sub(1);
    }
  });

  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / rate));
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(duration));
  const auto deadline = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(
          absl::GetFlag(FLAGS_deadline_ms)));
  int64_t sent = 0;
  int64_t skipped = 0;
  for (int64_t i = 0;; ++i) {
    const auto when = start + i * interval;
    if (when >= end) break;
    std::this_thread::sleep_until(when);
    if (in_flight.load() >= max_in_flight) {
      ++skipped;
      continue;
    }
    auto call = std::make_unique<Call>();
    call->scheduled = when;
    call->context.set_deadline(std::chrono::system_clock::now() + deadline);
    call->reader = stub->PrepareAsyncMatchPatient(
        &call->context,
        requests[static_cast<size_t>(i) % requests.size()], &cq);
    call->reader->StartCall();
    in_flight.fetch_add(1);
    Call* raw = call.release();
    raw->reader->Finish(&raw->response, &raw->status, raw);
    ++sent;
  }
  const double send_s =
      std::chrono::duration<double>(Clock::now() - start).count();
  // Wait for the outstanding calls (bounded by their deadline).
  while (in_flight.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double total_s =
      std::chrono::duration<double>(Clock::now() - start).count();
  cq.Shutdown();
  receiver.join();

  std::printf("load_client: target %s, offered %.1f/s for %.1f s, %zu "
              "distinct patients, top_k %d\n",
              target.c_str(), rate, duration, requests.size(),
              absl::GetFlag(FLAGS_top_k));
  std::printf("  sent %" PRId64 " (%.1f/s), skipped %" PRId64
              " (max_in_flight), OK %" PRId64 " (%.1f/s over %.1f s)\n",
              sent, static_cast<double>(sent) / send_s, skipped, ok,
              static_cast<double>(ok) / total_s, total_s);
  std::printf("  latency from scheduled send, OK responses: p50 %.2f  p90 "
              "%.2f  p99 %.2f  p99.9 %.2f  max %.2f ms\n",
              Quantile(latencies_ms, 0.5), Quantile(latencies_ms, 0.9),
              Quantile(latencies_ms, 0.99), Quantile(latencies_ms, 0.999),
              latencies_ms.empty()
                  ? 0.0
                  : *std::max_element(latencies_ms.begin(), latencies_ms.end()));
  for (const auto& [code, n] : errors) {
    std::printf("  errors: status code %d x %" PRId64 "\n", code, n);
  }
  return errors.empty() && ok > 0 ? 0 : 1;
}

}  // namespace
}  // namespace trialmatch::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Open-loop MatchPatient load on a local trialmatch server "
      "(docs/match_bench.md).");
  absl::ParseCommandLine(argc, argv);
  return trialmatch::bench::Run();
}
