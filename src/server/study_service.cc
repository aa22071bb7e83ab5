#include "server/study_service.h"

#include <chrono>
#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "server/call_context.h"
#include "server/call_deadline.h"
#include "server/grpc_status.h"

namespace trialmatch::server {
namespace {

absl::Status Busy(std::string_view what) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "server busy: too many ", common::ToAbsl(what), "; retry later"));
}

// A unary call whose result is produced on an executor. The reactor stays
// alive (shared ownership) until both gRPC is done with it (OnDone) and the
// work has let go of it, so late work never touches freed memory; the
// response buffer, owned by gRPC, is only written by whoever finishes first.
template <typename Response>
class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  static std::shared_ptr<UnaryCall> Create(grpc::CallbackServerContext* context,
                                           Response* response) {
    std::shared_ptr<UnaryCall> call(
        new UnaryCall(CallDeadline(*context), response));
    call->self_ = call;
    return call;
  }

  CallToken& token() { return token_; }

  // Finishes the call with `result` unless it already finished (then the
  // result is dropped).
  void Complete(absl::StatusOr<Response> result) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      if (result.ok()) *response_ = *std::move(result);
    }
    Finish(ToGrpcStatus(result.status()));
  }

  void OnCancel() override {
    token_.Cancel();
    Complete(absl::CancelledError("the call was cancelled"));
  }
  void OnDone() override {
    std::shared_ptr<UnaryCall> self = std::move(self_);  // may delete this
  }

 private:
  UnaryCall(absl::Time deadline, Response* response)
      : token_(deadline), response_(response) {}

  CallToken token_;
  Response* const response_;
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<UnaryCall> self_;
};

// The ListAllStudies stream: a producer (executor thread) Emit()s messages,
// the reactor writes them one at a time (a single write in flight, gRPC's
// rule) and Finish()es after the last one. Lifetime as in UnaryCall.
class ListAllCall final
    : public grpc::ServerWriteReactor<v1::ListAllStudiesResponse> {
 public:
  static std::shared_ptr<ListAllCall> Create(
      grpc::CallbackServerContext* context, std::size_t buffer) {
    std::shared_ptr<ListAllCall> call(
        new ListAllCall(CallDeadline(*context), buffer));
    call->self_ = call;
    return call;
  }

  CallToken& token() { return token_; }

  // Queues `message`; blocks while the buffer is full. Returns false when
  // the call was cancelled or already finished (the message is dropped).
  bool Emit(v1::ListAllStudiesResponse message) {
    bool start = false;
    {
      absl::MutexLock lock(&mu_);
      auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return queue_.size() < buffer_ || stopped_;
      };
      mu_.Await(absl::Condition(&room));
      if (stopped_) return false;
      queue_.push_back(std::move(message));
      start = NextWriteLocked();
    }
    if (start) StartWrite(&current_);
    return true;
  }

  // No more messages: finish with `status` once the queued ones are written
  // (at once if the call is already over).
  void Close(const absl::Status& status) {
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      closed_ = true;
      close_status_ = status;
      finish = FinishDueLocked();
    }
    if (finish) Finish(ToGrpcStatus(status));
  }

  void OnWriteDone(bool ok) override {
    bool start = false;
    bool finish = false;
    grpc::Status finish_status;
    {
      absl::MutexLock lock(&mu_);
      in_flight_ = false;
      if (!ok) {
        // The stream is broken (client gone or call cancelled).
        stopped_ = true;
        queue_.clear();
        token_.Cancel();
        if (!finished_) {
          finished_ = true;
          finish = true;
          finish_status = grpc::Status(grpc::StatusCode::CANCELLED,
                                       "the stream was interrupted");
        }
      } else {
        start = NextWriteLocked();
        if (!start && FinishDueLocked()) {
          finish = true;
          finish_status = ToGrpcStatus(close_status_);
        }
      }
    }
    if (start) StartWrite(&current_);
    if (finish) Finish(finish_status);
  }

  void OnCancel() override {
    token_.Cancel();
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      stopped_ = true;
      queue_.clear();
      // With a write in flight, OnWriteDone(false) finishes the call.
      if (!in_flight_ && !finished_) {
        finished_ = true;
        finish = true;
      }
    }
    if (finish) {
      Finish(
          grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled"));
    }
  }

  void OnDone() override {
    std::shared_ptr<ListAllCall> self = std::move(self_);  // may delete this
  }

 private:
  ListAllCall(absl::Time deadline, std::size_t buffer)
      : token_(deadline), buffer_(std::max<std::size_t>(1, buffer)) {}

  // Moves the next queued message into current_ when no write is in flight;
  // true when the caller must StartWrite(&current_).
  bool NextWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (in_flight_ || queue_.empty() || finished_) return false;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    in_flight_ = true;
    return true;
  }

  // True (and marks finished) when everything is written after Close().
  bool FinishDueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!closed_ || finished_ || in_flight_ || !queue_.empty()) return false;
    finished_ = true;
    return true;
  }

  CallToken token_;
  const std::size_t buffer_;
  absl::Mutex mu_;
  std::deque<v1::ListAllStudiesResponse> queue_ ABSL_GUARDED_BY(mu_);
  v1::ListAllStudiesResponse current_;  // the write in flight
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // cancelled / broken
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<ListAllCall> self_;
};

}  // namespace

StudyService::StudyService(std::shared_ptr<StudyBackend> backend,
                           StudyServiceOptions options)
    : options_(options),
      backend_(std::move(backend)),
      store_pool_({.name = "store",
                   .threads = options.store_threads,
                   .max_queue = options.max_queue}),
      upstream_pool_({.name = "upstream",
                      .threads = options.upstream_threads,
                      .max_queue = options.max_queue}),
      streams_(std::make_shared<std::atomic<int>>(0)) {}

StudyService::~StudyService() { Shutdown(); }

void StudyService::Shutdown() {
  store_pool_.Shutdown();
  upstream_pool_.Shutdown();
}

template <typename Request, typename Response>
grpc::ServerUnaryReactor* StudyService::Dispatch(
    grpc::CallbackServerContext* context, const Request* request,
    Response* response,
    StudyBackend::Maybe<Response> (StudyBackend::*local)(const Request&),
    absl::StatusOr<Response> (StudyBackend::*upstream)(const Request&)) {
  std::shared_ptr<UnaryCall<Response>> call =
      UnaryCall<Response>::Create(context, response);
  grpc::ServerUnaryReactor* reactor = call.get();
  const bool queued = store_pool_.TrySchedule(
      [this, call, request = *request, local, upstream]() mutable {
        if (absl::Status s = call->token().Check(); !s.ok()) {
          call->Complete(s);
          return;
        }
        StudyBackend::Maybe<Response> answer;
        {
          ScopedCallToken scope(&call->token());
          answer = (backend_.get()->*local)(request);
        }
        if (answer.has_value()) {
          call->Complete(*std::move(answer));
          return;
        }
        const bool handed_over = upstream_pool_.TrySchedule(
            [this, call, request = std::move(request), upstream]() {
              if (absl::Status s = call->token().Check(); !s.ok()) {
                call->Complete(s);
                return;
              }
              ScopedCallToken scope(&call->token());
              call->Complete((backend_.get()->*upstream)(request));
            });
        if (!handed_over) {
          call->Complete(Busy("requests waiting for ClinicalTrials.gov"));
        }
      });
  if (!queued) call->Complete(Busy("requests"));
  return reactor;
}

grpc::ServerUnaryReactor* StudyService::SearchStudies(
    grpc::CallbackServerContext* context,
    const v1::SearchStudiesRequest* request,
    v1::SearchStudiesResponse* response) {
  return Dispatch(context, request, response, &StudyBackend::SearchStudiesLocal,
                  &StudyBackend::SearchStudiesUpstream);
}

grpc::ServerUnaryReactor* StudyService::GetStudy(
    grpc::CallbackServerContext* context, const v1::GetStudyRequest* request,
    v1::GetStudyResponse* response) {
  return Dispatch(context, request, response, &StudyBackend::GetStudyLocal,
                  &StudyBackend::GetStudyUpstream);
}

grpc::ServerUnaryReactor* StudyService::GetStudiesMetadata(
    grpc::CallbackServerContext* context,
    const v1::GetStudiesMetadataRequest* request,
    v1::GetStudiesMetadataResponse* response) {
  return Dispatch(context, request, response,
                  &StudyBackend::GetStudiesMetadataLocal,
                  &StudyBackend::GetStudiesMetadataUpstream);
}

grpc::ServerUnaryReactor* StudyService::GetSearchAreas(
    grpc::CallbackServerContext* context,
    const v1::GetSearchAreasRequest* request,
    v1::GetSearchAreasResponse* response) {
  return Dispatch(context, request, response,
                  &StudyBackend::GetSearchAreasLocal,
                  &StudyBackend::GetSearchAreasUpstream);
}

grpc::ServerUnaryReactor* StudyService::GetEnums(
    grpc::CallbackServerContext* context, const v1::GetEnumsRequest* request,
    v1::GetEnumsResponse* response) {
  return Dispatch(context, request, response, &StudyBackend::GetEnumsLocal,
                  &StudyBackend::GetEnumsUpstream);
}

grpc::ServerUnaryReactor* StudyService::GetStatsSize(
    grpc::CallbackServerContext* context,
    const v1::GetStatsSizeRequest* request,
    v1::GetStatsSizeResponse* response) {
  return Dispatch(context, request, response, &StudyBackend::GetStatsSizeLocal,
                  &StudyBackend::GetStatsSizeUpstream);
}

grpc::ServerUnaryReactor* StudyService::GetApiVersion(
    grpc::CallbackServerContext* context,
    const v1::GetApiVersionRequest* request,
    v1::GetApiVersionResponse* response) {
  return Dispatch(context, request, response, &StudyBackend::GetApiVersionLocal,
                  &StudyBackend::GetApiVersionUpstream);
}

grpc::ServerWriteReactor<v1::ListAllStudiesResponse>*
StudyService::ListAllStudies(grpc::CallbackServerContext* context,
                             const v1::ListAllStudiesRequest* request) {
  std::shared_ptr<ListAllCall> call =
      ListAllCall::Create(context, options_.stream_buffer);
  grpc::ServerWriteReactor<v1::ListAllStudiesResponse>* reactor = call.get();
  if (absl::Status s = backend_->ValidateListAll(*request); !s.ok()) {
    call->Close(s);
    return reactor;
  }
  if (streams_->fetch_add(1) >= options_.max_streams) {
    streams_->fetch_sub(1);
    call->Close(Busy("ListAllStudies streams"));
    return reactor;
  }
  const bool queued = upstream_pool_.TrySchedule(
      [backend = backend_, call, request = *request, streams = streams_]() {
        absl::StatusOr<v1::ListAllStudiesSummary> summary;
        {
          ScopedCallToken scope(&call->token());
          summary = backend->ListAllStudies(
              request, call->token(), [&](v1::Study&& study) {
                v1::ListAllStudiesResponse message;
                *message.mutable_study() = std::move(study);
                return call->Emit(std::move(message));
              });
        }
        if (summary.ok()) {
          v1::ListAllStudiesResponse last;
          *last.mutable_summary() = *std::move(summary);
          call->Emit(std::move(last));
          call->Close(absl::OkStatus());
        } else {
          call->Close(summary.status());
        }
        streams->fetch_sub(1);
      });
  if (!queued) {
    streams_->fetch_sub(1);
    call->Close(Busy("requests waiting for ClinicalTrials.gov"));
  }
  return reactor;
}

grpc::ServerUnaryReactor* StudyService::GetStudyCriteria(
    grpc::CallbackServerContext* context,
    const v1::GetStudyCriteriaRequest* request,
    v1::GetStudyCriteriaResponse* response) {
  return Dispatch(context, request, response,
                  &StudyBackend::GetStudyCriteriaLocal,
                  &StudyBackend::GetStudyCriteria);
}

}  // namespace trialmatch::server
