// ToGrpcStatus: the one place where an absl::Status becomes the grpc::Status
// a client sees.
//
// The codes are numerically identical (both mirror google.rpc.Code), so the
// code is passed through. The message is passed through too — trialmatch's
// own messages are written for clients (they name the bad field, the allowed
// values, the upstream operation) — except for the codes that signal a bug
// or broken data on our side:
//
//   kInternal, kDataLoss, kUnknown (and any code outside 0..16)
//     → the same code (kUnknown for out-of-range) with the generic message
//       "internal error (incident <id>)"; the original status is logged at
//       ERROR with the same incident id, so an operator can find it. SQL
//       text, file paths and SQLite messages never reach a client.
//
// Messages longer than 1 KiB are cut (a defence against echoing large
// inputs). kOk → grpc::Status::OK.
//
// Pure apart from the log line; thread-safe.
#ifndef TRIALMATCH_SERVER_GRPC_STATUS_H_
#define TRIALMATCH_SERVER_GRPC_STATUS_H_

#include <string_view>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace trialmatch::server {

inline constexpr std::size_t kMaxStatusMessageBytes = 1024;

grpc::Status ToGrpcStatus(const absl::Status& status);

// True for the codes whose message ToGrpcStatus replaces.
bool IsInternalCode(absl::StatusCode code);

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_GRPC_STATUS_H_
