#include "server/matching_service.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "google/protobuf/arena.h"
#include "grpcpp/support/message_allocator.h"
#include "server/call_context.h"
#include "server/call_deadline.h"
#include "server/grpc_status.h"
#include "server/match_request.h"

namespace trialmatch::server {

struct MatchingService::Core {
  Core(const SnapshotHolder* s, match::Matcher m, MatchingServiceOptions o)
      : snapshots(s), matcher(std::move(m)), options(o) {
    if (options.threads > 0) {
      executor = std::make_unique<Executor>(ExecutorOptions{
          .name = "match",
          .threads = options.threads,
          .max_queue = std::max<std::size_t>(1, options.max_queue)});
    }
  }

  // Runs `task` on the executor, or here when matching inline. False when
  // the executor refused it (full or shutting down; the task is destroyed).
  bool Run(absl::AnyInvocable<void() &&> task) {
    if (executor == nullptr) {
      std::move(task)();
      return true;
    }
    return executor->TrySchedule(std::move(task));
  }

  // One patient on the current snapshot, written into `*out`.
  absl::Status MatchInto(const v1::PatientInput& patient,
                         const v1::MatchOptions& match_options,
                         CallToken& token,
                         v1::MatchPatientResponse* out) const {
    TRIALMATCH_RETURN_IF_ERROR(token.Check());
    std::shared_ptr<const LoadedSnapshot> snapshot = snapshots->Current();
    if (snapshot == nullptr) return NotReady();
    return MatchRequestInto(
        *snapshot, matcher, patient, match_options,
        [&token] { return token.Check(); }, out);
  }

  static absl::Status NotReady() {
    return absl::UnavailableError(
        "the study snapshot is not ready yet (the server is starting); retry "
        "later");
  }

  const SnapshotHolder* const snapshots;
  const match::Matcher matcher;
  const MatchingServiceOptions options;
  std::unique_ptr<Executor> executor;
  std::atomic<int> streams{0};
};

namespace {

bool EndsTheCall(const absl::Status& status, const CallToken& token) {
  return token.Expired() &&
         (status.code() == absl::StatusCode::kCancelled ||
          status.code() == absl::StatusCode::kDeadlineExceeded);
}

// MatchPatient on the executor. The call object stays alive (shared
// ownership) until gRPC is done with it (OnDone) and the work has let go of
// it; whoever finishes first writes the response.
class MatchCall final : public grpc::ServerUnaryReactor {
 public:
  static std::shared_ptr<MatchCall> Create(grpc::CallbackServerContext* context,
                                           v1::MatchPatientResponse* response) {
    std::shared_ptr<MatchCall> call(
        new MatchCall(CallDeadline(*context), response));
    call->self_ = call;
    return call;
  }

  CallToken& token() { return token_; }

  // The response gRPC sends on OK: only the work writes it, before it
  // calls Complete (nothing else finishes a call whose work was queued).
  v1::MatchPatientResponse* response() { return response_; }

  void Complete(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(ToGrpcStatus(status));
  }

  // Only stops the work: the request stays gRPC's until Finish, so the call
  // is finished by the work itself (queued work always runs, Executor
  // contract), which sees the token and ends within 256 candidates.
  void OnCancel() override { token_.Cancel(); }
  void OnDone() override {
    std::shared_ptr<MatchCall> self = std::move(self_);  // may delete this
  }

 private:
  MatchCall(absl::Time deadline, v1::MatchPatientResponse* response)
      : token_(deadline), response_(response) {}

  CallToken token_;
  v1::MatchPatientResponse* const response_;
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<MatchCall> self_;
};

// Answers are built on arenas: one holds hundreds of sub-messages and
// thousands of strings (a top 50 with explanations), which an arena
// allocates by moving a pointer and frees at once.
google::protobuf::ArenaOptions ResponseArenaOptions() {
  google::protobuf::ArenaOptions o;
  o.start_block_size = 16 << 10;
  o.max_block_size = 256 << 10;
  return o;
}

// One MatchPatients answer on its own arena, freed with it (once written,
// or dropped). Movable; never empty until moved from.
class ArenaResponse {
 public:
  ArenaResponse()
      : arena_(
            std::make_unique<google::protobuf::Arena>(ResponseArenaOptions())),
        message_(
            google::protobuf::Arena::CreateMessage<v1::MatchPatientsResponse>(
                arena_.get())) {}
  v1::MatchPatientsResponse* operator->() const { return message_; }
  v1::MatchPatientsResponse* get() const { return message_; }

 private:
  std::unique_ptr<google::protobuf::Arena> arena_;
  v1::MatchPatientsResponse* message_;
};

// A MatchPatients stream (see the header for the flow control).
class MatchStream final
    : public grpc::ServerBidiReactor<v1::MatchPatientsRequest,
                                     v1::MatchPatientsResponse> {
 public:
  static std::shared_ptr<MatchStream> Create(
      grpc::CallbackServerContext* context,
      std::shared_ptr<MatchingService::Core> core) {
    std::shared_ptr<MatchStream> stream(
        new MatchStream(CallDeadline(*context), std::move(core)));
    stream->self_ = stream;
    return stream;
  }

  // Starts the first read (from the method handler).
  void Begin() {
    {
      absl::MutexLock lock(&mu_);
      reading_ = true;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        absl::MutexLock lock(&mu_);
        reading_ = false;
        reads_done_ = true;  // the client half-closed (or the call ended)
      }
      Pump();
      return;
    }
    v1::MatchPatientsRequest request = std::move(request_);
    int64_t sequence = 0;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      sequence = next_sequence_++;
      ++in_work_;
    }
    std::shared_ptr<MatchStream> self = shared_from_self();
    const bool queued =
        core_->Run([self, sequence, request = std::move(request)]() mutable {
          self->Work(sequence, request);
        });
    if (!queued) {
      ArenaResponse busy;
      MatchErrorToProto(absl::ResourceExhaustedError(
                            "server busy: too many patients queued; retry "
                            "this one later"),
                        busy->mutable_error());
      Deliver(sequence, std::move(busy));
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) StopLocked(absl::CancelledError("the stream was interrupted"));
    }
    Pump();
  }

  void OnCancel() override {
    token_.Cancel();
    {
      absl::MutexLock lock(&mu_);
      StopLocked(absl::CancelledError("the call was cancelled"));
    }
    Pump();
  }

  void OnDone() override {
    core_->streams.fetch_sub(1, std::memory_order_acq_rel);
    std::shared_ptr<MatchStream> self = std::move(self_);  // may delete this
  }

 private:
  MatchStream(absl::Time deadline, std::shared_ptr<MatchingService::Core> core)
      : token_(deadline), core_(std::move(core)) {}

  std::shared_ptr<MatchStream> shared_from_self() {
    absl::MutexLock lock(&mu_);
    return self_;
  }

  // Matches one request (executor thread, or the reaction when inline).
  void Work(int64_t sequence, const v1::MatchPatientsRequest& request) {
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) {
        --in_work_;
        return;
      }
    }
    ArenaResponse response;
    response->set_correlation_id(request.correlation_id());
    response->set_sequence(sequence);
    const absl::Status matched =
        core_->MatchInto(request.patient(), request.options(), token_,
                         response->mutable_match());
    if (!matched.ok()) {
      if (EndsTheCall(matched, token_) ||
          matched.code() == absl::StatusCode::kUnavailable) {
        {
          absl::MutexLock lock(&mu_);
          --in_work_;
          StopLocked(matched);
        }
        Pump();
        return;
      }
      MatchErrorToProto(matched, response->mutable_error());
    }
    Deliver(sequence, std::move(response));
  }

  // A response is ready (in any order); written in sequence order.
  void Deliver(int64_t sequence, ArenaResponse response) {
    {
      absl::MutexLock lock(&mu_);
      --in_work_;
      if (!stopped_) ready_.emplace(sequence, std::move(response));
    }
    Pump();
  }

  // Ends the stream with `status` (the first reason wins); queued responses
  // are dropped, work in progress is skipped or discarded.
  void StopLocked(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stopped_) return;
    stopped_ = true;
    end_status_ = status;
    ready_.clear();
    token_.Cancel();
  }

  // Everything written (or the stream stopped) and nothing in progress that
  // forbids finishing: marks finished and returns true once.
  bool FinishDueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_) return false;
    const bool drained = reads_done_ && in_work_ == 0 && ready_.empty();
    if (!stopped_ && !drained) return false;
    finished_ = true;
    return true;
  }

  // Starts the next write, the next read, or the Finish, as due.
  void Pump() {
    bool write = false;
    bool read = false;
    bool finish = false;
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (!finished_ && !stopped_ && !writing_ && !ready_.empty() &&
          ready_.begin()->first == next_write_) {
        current_ = std::move(ready_.begin()->second);
        ready_.erase(ready_.begin());
        ++next_write_;
        writing_ = true;
        write = true;
      }
      const int64_t outstanding =
          in_work_ + static_cast<int64_t>(ready_.size()) + (writing_ ? 1 : 0);
      if (!finished_ && !stopped_ && !reading_ && !reads_done_ &&
          outstanding < core_->options.stream_window) {
        reading_ = true;
        read = true;
      }
      finish = FinishDueLocked();
      if (finish) status = end_status_;
    }
    if (write) StartWrite(current_->get());
    if (read) StartRead(&request_);
    if (finish) Finish(ToGrpcStatus(status));
  }

  CallToken token_;
  const std::shared_ptr<MatchingService::Core> core_;
  // Only the read in flight writes it; moved out in OnReadDone.
  v1::MatchPatientsRequest request_;
  // The write in flight (the previous one until the next starts).
  std::optional<ArenaResponse> current_;

  absl::Mutex mu_;
  std::shared_ptr<MatchStream> self_ ABSL_GUARDED_BY(mu_);
  int64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_write_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t in_work_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int64_t, ArenaResponse> ready_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);
};

// MatchPatient's request and response on one arena per call: a response
// holds thousands of small messages and strings (top 50 with their
// explanations), which the arena allocates by moving a pointer and frees
// all at once when gRPC releases the call (Release, after the response is
// sent).
class ArenaMessages final
    : public grpc::MessageHolder<v1::MatchPatientRequest,
                                 v1::MatchPatientResponse> {
 public:
  ArenaMessages() : arena_(ResponseArenaOptions()) {
    set_request(google::protobuf::Arena::CreateMessage<v1::MatchPatientRequest>(
        &arena_));
    set_response(
        google::protobuf::Arena::CreateMessage<v1::MatchPatientResponse>(
            &arena_));
  }
  void Release() override { delete this; }

 private:
  google::protobuf::Arena arena_;
};

}  // namespace

class MatchingService::ArenaAllocator final
    : public grpc::MessageAllocator<v1::MatchPatientRequest,
                                    v1::MatchPatientResponse> {
 public:
  grpc::MessageHolder<v1::MatchPatientRequest, v1::MatchPatientResponse>*
  AllocateMessages() override {
    return new ArenaMessages();
  }
};

int DefaultMatchingThreads() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

MatchingService::MatchingService(const SnapshotHolder* snapshots,
                                 match::Matcher matcher,
                                 MatchingServiceOptions options)
    : core_(std::make_shared<Core>(snapshots, std::move(matcher), options)),
      allocator_(std::make_unique<ArenaAllocator>()) {
  SetMessageAllocatorFor_MatchPatient(allocator_.get());
}

MatchingService::~MatchingService() { Shutdown(); }

void MatchingService::Shutdown() {
  if (core_->executor != nullptr) core_->executor->Shutdown();
}

grpc::ServerUnaryReactor* MatchingService::MatchPatient(
    grpc::CallbackServerContext* context,
    const v1::MatchPatientRequest* request,
    v1::MatchPatientResponse* response) {
  if (core_->snapshots->Current() == nullptr) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(Core::NotReady()));
    return reactor;
  }
  if (core_->executor == nullptr) {
    // Inline: the reaction does the work.
    CallToken token(CallDeadline(*context));
    const absl::Status status = core_->MatchInto(
        request->patient(), request->options(), token, response);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  std::shared_ptr<MatchCall> call = MatchCall::Create(context, response);
  std::shared_ptr<Core> core = core_;
  const bool queued = core_->Run([call, core, request] {
    if (call->token().Expired()) {  // skipped: nobody waits for it
      call->Complete(call->token().Check());
      return;
    }
    call->Complete(core->MatchInto(request->patient(), request->options(),
                                   call->token(), call->response()));
  });
  if (!queued) {
    call->Complete(absl::ResourceExhaustedError(
        "server busy: too many patients queued; retry later"));
  }
  return call.get();
}

grpc::ServerBidiReactor<v1::MatchPatientsRequest, v1::MatchPatientsResponse>*
MatchingService::MatchPatients(grpc::CallbackServerContext* context) {
  std::shared_ptr<MatchStream> stream = MatchStream::Create(context, core_);
  const int running = core_->streams.fetch_add(1, std::memory_order_acq_rel);
  if (running >= core_->options.max_streams) {
    stream->Finish(ToGrpcStatus(absl::ResourceExhaustedError(
        "server busy: too many MatchPatients streams; retry later")));
  } else if (core_->snapshots->Current() == nullptr) {
    stream->Finish(ToGrpcStatus(Core::NotReady()));
  } else {
    stream->Begin();
  }
  return stream.get();
}

}  // namespace trialmatch::server
