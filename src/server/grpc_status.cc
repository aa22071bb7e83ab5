#include "server/grpc_status.h"

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/logging.h"

namespace trialmatch::server {
namespace {

// Short, unique-enough ids: process start time mixed with a counter.
std::string NextIncidentId() {
  static const uint64_t kBase =
      static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) *
      0x9E3779B97F4A7C15ULL;
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
  return absl::StrFormat("%012x",
                         (kBase + n * 0x100000001B3ULL) & 0xFFFFFFFFFFFFULL);
}

}  // namespace

bool IsInternalCode(absl::StatusCode code) {
  const int c = static_cast<int>(code);
  return code == absl::StatusCode::kInternal ||
         code == absl::StatusCode::kDataLoss ||
         code == absl::StatusCode::kUnknown || c < 0 || c > 16;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const int code = static_cast<int>(status.code());
  if (IsInternalCode(status.code())) {
    const std::string incident = NextIncidentId();
    TM_LOG_ERROR("server", "incident ", incident, ": ", status.ToString());
    const grpc::StatusCode out = (code < 0 || code > 16)
                                     ? grpc::StatusCode::UNKNOWN
                                     : static_cast<grpc::StatusCode>(code);
    return grpc::Status(
        out, absl::StrCat("internal error (incident ", incident, ")"));
  }
  std::string message(status.message());
  if (message.size() > kMaxStatusMessageBytes) {
    message.resize(kMaxStatusMessageBytes - 3);
    // Do not leave half a UTF-8 sequence.
    while (!message.empty() &&
           (static_cast<unsigned char>(message.back()) & 0xC0) == 0x80) {
      message.pop_back();
    }
    if (!message.empty() &&
        (static_cast<unsigned char>(message.back()) & 0x80) != 0) {
      message.pop_back();
    }
    message += "...";
  }
  return grpc::Status(static_cast<grpc::StatusCode>(code), message);
}

}  // namespace trialmatch::server
