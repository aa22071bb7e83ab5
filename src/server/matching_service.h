// MatchingService: trialmatch.v1.MatchingService
// (proto/trialmatch/v1/matching_service.proto) on gRPC's callback API, over
// the snapshot of a SnapshotHolder (server/snapshot_manager.h). The work of
// one patient is MatchRequest (server/match_request.h).
//
// Snapshot. Each patient is matched on the holder's current snapshot, taken
// when its work starts and kept to its end (a swap never disturbs a running
// match). Before the first snapshot every call fails with UNAVAILABLE.
//
// Threads. Matching is CPU-bound: tens of microseconds to a few
// milliseconds per patient (docs/match.md, docs/matching.md for the
// figures). With `threads` > 0 it runs on a bounded Executor of that many
// threads (default: one per core), so gRPC's callback threads only hand
// work over and the number of matches running at once never exceeds the
// cores; a full queue answers RESOURCE_EXHAUSTED at once. With `threads` = 0
// it runs inline in the reaction (measured as an alternative; see
// docs/matching.md for why the executor is the default).
//
// Memory. MatchPatient's request and response live on one protobuf arena
// per call (a top-50 response with explanations is thousands of small
// messages and strings), freed at once when gRPC releases the call; the
// service must outlive the grpc::Server it is registered with.
//
// MatchPatients. Requests are read ahead up to `stream_window` at a time
// (counting those being matched, those matched but not yet written, and the
// one being written); they are matched concurrently, and the responses are
// written in request order, one write in flight. A slow reader of the
// responses therefore stops the reading of requests: memory per stream is
// bounded by the window. A patient that cannot be matched gets a response
// with `error` (INVALID_ARGUMENT naming the field; RESOURCE_EXHAUSTED when
// the executor is full) and the stream goes on. At most `max_streams`
// streams run at once (more: RESOURCE_EXHAUSTED).
//
// Deadlines and cancellation. Each call has a CallToken with the client's
// deadline, cancelled by OnCancel; the matcher's interrupt checks it every
// 256 candidates, so a cancelled or expired call stops matching within
// microseconds and finishes with CANCELLED / DEADLINE_EXCEEDED. Work queued
// for a finished call is skipped.
//
// Patient data is never logged: neither profiles nor results nor reader
// messages (which carry no values anyway).
//
// Thread safety: thread-safe. Shutdown() (or the destructor) must run after
// the grpc::Server has shut down; it drains the executor.
#ifndef TRIALMATCH_SERVER_MATCHING_SERVICE_H_
#define TRIALMATCH_SERVER_MATCHING_SERVICE_H_

#include <atomic>
#include <cstddef>
#include <memory>

#include "match/matcher.h"
#include "server/executor.h"
#include "server/snapshot_manager.h"
#include "trialmatch/v1/matching_service.grpc.pb.h"

namespace trialmatch::server {

struct MatchingServiceOptions {
  // Matching threads; 0 = match inline in gRPC's reactions.
  int threads = 0;              // see DefaultMatchingThreads()
  std::size_t max_queue = 512;  // patients waiting for a thread
  int max_streams = 64;         // concurrent MatchPatients streams
  int stream_window = 8;        // per stream, requests in progress (>= 1)
};

// One per hardware thread (at least 1): the default of `serve`.
int DefaultMatchingThreads();

class MatchingService final : public v1::MatchingService::CallbackService {
 public:
  // `snapshots` is not owned and must outlive the service.
  MatchingService(const SnapshotHolder* snapshots, match::Matcher matcher,
                  MatchingServiceOptions options = {});
  ~MatchingService() override;

  MatchingService(const MatchingService&) = delete;
  MatchingService& operator=(const MatchingService&) = delete;

  // Drains and joins the executor. Idempotent; after the server shut down.
  void Shutdown();

  grpc::ServerUnaryReactor* MatchPatient(
      grpc::CallbackServerContext* context,
      const v1::MatchPatientRequest* request,
      v1::MatchPatientResponse* response) override;
  grpc::ServerBidiReactor<v1::MatchPatientsRequest, v1::MatchPatientsResponse>*
  MatchPatients(grpc::CallbackServerContext* context) override;

  // Shared by the call objects (matching_service.cc).
  struct Core;

 private:
  // MatchPatient's messages on a per-call arena (matching_service.cc).
  class ArenaAllocator;

  std::shared_ptr<Core> core_;
  std::unique_ptr<ArenaAllocator> allocator_;
};

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_MATCHING_SERVICE_H_
