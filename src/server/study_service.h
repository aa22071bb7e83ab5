// StudyService: trialmatch.v1.StudyService on gRPC's callback API, over a
// StudyBackend (server/study_backend.h holds the rules: caching, fallbacks,
// validation, error model).
//
// Threads. gRPC's callback threads only create a reactor and queue work;
// nothing blocks them. The work runs on two bounded executors:
//   store pool     the `*Local` phase of each RPC: validation and store reads
//                  (GetStudy cache hits are answered here; GetStudyCriteria
//                  entirely, compiling when the stored entry is stale);
//   upstream pool  the `*Upstream` phase, which may block for seconds on
//                  ClinicalTrials.gov (rate limit, retries), and the
//                  producers of ListAllStudies streams.
// Keeping them apart means cache hits never queue behind slow upstream calls.
// A full queue answers RESOURCE_EXHAUSTED ("server busy") at once; at most
// `max_streams` ListAllStudies streams run at a time (more →
// RESOURCE_EXHAUSTED).
//
// Cancellation and deadlines. Each call gets a CallToken with the client's
// deadline; OnCancel (client cancel, deadline, server shutdown) cancels it
// and finishes the call at once. The work sees the token (ScopedCallToken):
// the ctgov client built with CallAwareClock/CallAwareTransport stops at its
// next sleep or request, and its result is dropped.
//
// ListAllStudies honours flow control: one write in flight; the producer
// blocks when `stream_buffer` messages are queued, so a slow reader slows
// the paging instead of filling memory. Each message carries one study
// (the largest registry study, 3.6 MB, fits a default client's 4 MiB).
//
// Thread safety: thread-safe. Shutdown() (or the destructor) must run after
// the grpc::Server has shut down (no new calls); it drains the executors.
#ifndef TRIALMATCH_SERVER_STUDY_SERVICE_H_
#define TRIALMATCH_SERVER_STUDY_SERVICE_H_

#include <atomic>
#include <cstddef>
#include <memory>

#include "server/executor.h"
#include "server/study_backend.h"
#include "trialmatch/v1/study_service.grpc.pb.h"

namespace trialmatch::server {

struct StudyServiceOptions {
  int store_threads = 4;
  int upstream_threads = 8;
  std::size_t max_queue = 256;    // per pool
  int max_streams = 8;            // concurrent ListAllStudies
  std::size_t stream_buffer = 8;  // messages queued per stream
};

class StudyService final : public v1::StudyService::CallbackService {
 public:
  // `backend` must not be null.
  StudyService(std::shared_ptr<StudyBackend> backend,
               StudyServiceOptions options = {});
  ~StudyService() override;

  StudyService(const StudyService&) = delete;
  StudyService& operator=(const StudyService&) = delete;

  // Drains and joins the executors (queued work still runs and finishes its
  // calls). Idempotent; call after the server shut down.
  void Shutdown();

  StudyBackend& backend() { return *backend_; }

  grpc::ServerUnaryReactor* SearchStudies(
      grpc::CallbackServerContext* context,
      const v1::SearchStudiesRequest* request,
      v1::SearchStudiesResponse* response) override;
  grpc::ServerUnaryReactor* GetStudy(grpc::CallbackServerContext* context,
                                     const v1::GetStudyRequest* request,
                                     v1::GetStudyResponse* response) override;
  grpc::ServerWriteReactor<v1::ListAllStudiesResponse>* ListAllStudies(
      grpc::CallbackServerContext* context,
      const v1::ListAllStudiesRequest* request) override;
  grpc::ServerUnaryReactor* GetStudiesMetadata(
      grpc::CallbackServerContext* context,
      const v1::GetStudiesMetadataRequest* request,
      v1::GetStudiesMetadataResponse* response) override;
  grpc::ServerUnaryReactor* GetSearchAreas(
      grpc::CallbackServerContext* context,
      const v1::GetSearchAreasRequest* request,
      v1::GetSearchAreasResponse* response) override;
  grpc::ServerUnaryReactor* GetEnums(grpc::CallbackServerContext* context,
                                     const v1::GetEnumsRequest* request,
                                     v1::GetEnumsResponse* response) override;
  grpc::ServerUnaryReactor* GetStatsSize(
      grpc::CallbackServerContext* context,
      const v1::GetStatsSizeRequest* request,
      v1::GetStatsSizeResponse* response) override;
  grpc::ServerUnaryReactor* GetApiVersion(
      grpc::CallbackServerContext* context,
      const v1::GetApiVersionRequest* request,
      v1::GetApiVersionResponse* response) override;
  grpc::ServerUnaryReactor* GetStudyCriteria(
      grpc::CallbackServerContext* context,
      const v1::GetStudyCriteriaRequest* request,
      v1::GetStudyCriteriaResponse* response) override;

 private:
  // Runs local(request) on the store pool and, when it returns nullopt,
  // upstream(request) on the upstream pool; finishes the call with the
  // result.
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Dispatch(
      grpc::CallbackServerContext* context, const Request* request,
      Response* response,
      StudyBackend::Maybe<Response> (StudyBackend::*local)(const Request&),
      absl::StatusOr<Response> (StudyBackend::*upstream)(const Request&));

  const StudyServiceOptions options_;
  const std::shared_ptr<StudyBackend> backend_;
  Executor store_pool_;
  Executor upstream_pool_;
  std::shared_ptr<std::atomic<int>> streams_;
};

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_STUDY_SERVICE_H_
