// The deadline of a gRPC server call as an absl::Time, for the CallToken of
// the call (server/call_context.h). No deadline (gRPC's "infinite",
// time_point::max) becomes absl::InfiniteFuture().
//
// Pure; thread-safe.
#ifndef TRIALMATCH_SERVER_CALL_DEADLINE_H_
#define TRIALMATCH_SERVER_CALL_DEADLINE_H_

#include <chrono>

#include "absl/time/time.h"
#include "grpcpp/server_context.h"

namespace trialmatch::server {

inline absl::Time CallDeadline(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline >= std::chrono::system_clock::time_point::max() -
                      std::chrono::hours(24 * 365 * 100)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_CALL_DEADLINE_H_
