// GrpcServer: the process's gRPC server — listening port, message size
// limits, the standard health service (grpc.health.v1) gated by readiness
// conditions, server reflection, and graceful shutdown.
//
//   GrpcServer::Options o;  o.listen_address = "127.0.0.1:0";
//   ASSIGN_OR_RETURN(auto server, GrpcServer::Start(o, {&study_service}));
//   server->readiness().Require("store");      // NOT_SERVING until ...
//   ... open the store ...
//   server->readiness().MarkReady("store");    // ... now SERVING
//   server->Shutdown(absl::Seconds(20));        // from a signal thread
//   server->Wait();
//
// Health. The default health service answers for "" (the whole server) and
// for each registered service name. Both report NOT_SERVING until every
// required readiness condition is ready (the serve command requires "store";
// the matcher will add "snapshot" — the hook is Require()), SERVING while
// they all are, and NOT_SERVING again from the start of Shutdown (so load
// balancers stop sending before the listener closes).
//
// Message sizes. Responses are built to fit `max_send_message_bytes`; the
// default (16 MiB) exceeds the StudyService response budget (4 MiB, what a
// default client accepts) so the budget, not gRPC, decides; requests are
// small, the receive limit stays at gRPC's 4 MiB default.
//
// Shutdown(grace) = grpc.io "graceful stop": health goes NOT_SERVING, the
// listener closes, in-flight calls get until the deadline to finish, then
// they are cancelled. Wait() returns once the server has stopped.
//
// Thread safety: thread-safe; Shutdown may be called from any thread (e.g.
// the signal thread), more than once.
#ifndef TRIALMATCH_SERVER_GRPC_SERVER_H_
#define TRIALMATCH_SERVER_GRPC_SERVER_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"

namespace trialmatch::server {

// Health status as the conjunction of named readiness conditions.
class Readiness {
 public:
  // `health` may be null (then only serving() reports); not owned.
  // `required` conditions start not ready.
  Readiness(grpc::HealthCheckServiceInterface* health,
            std::vector<std::string> service_names,
            const std::vector<std::string>& required = {});

  // Adds a condition that must be ready before SERVING (NOT_SERVING now).
  void Require(const std::string& condition);
  void MarkReady(const std::string& condition);
  void MarkNotReady(const std::string& condition);
  // NOT_SERVING for good (shutdown began).
  void SetShuttingDown();
  bool serving() const;

 private:
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  grpc::HealthCheckServiceInterface* const health_;
  const std::vector<std::string> service_names_;
  mutable absl::Mutex mu_;
  std::set<std::string> pending_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

class GrpcServer {
 public:
  struct Options {
    // host:port; port 0 picks a free port (see port()).
    std::string listen_address = "0.0.0.0:50051";
    int max_send_message_bytes = 16 << 20;
    int max_receive_message_bytes = 4 << 20;
    bool enable_reflection = true;
    // Names answered by the health service besides "" (e.g.
    // "trialmatch.v1.StudyService").
    std::vector<std::string> health_service_names = {};
    // Readiness conditions required from the start (e.g. {"store"}): health
    // is NOT_SERVING from the moment the server starts until each is
    // MarkReady()'d.
    std::vector<std::string> required_conditions = {};
  };

  // Builds and starts the server with `services` (not owned; they must
  // outlive the server). Errors: kInvalidArgument for a
  // malformed address; kUnavailable when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const Options& options, const std::vector<grpc::Service*>& services);

  ~GrpcServer();  // Shutdown(0) + Wait() if still running

  // The bound port (the chosen one when the address asked for port 0).
  int port() const { return port_; }
  // The listen address with the bound port, e.g. "127.0.0.1:40123".
  const std::string& address() const { return address_; }
  Readiness& readiness() { return *readiness_; }
  grpc::Server* server() { return server_.get(); }

  void Shutdown(absl::Duration grace);
  void Wait();

 private:
  GrpcServer() = default;

  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Readiness> readiness_;
  int port_ = 0;
  std::string address_;
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_GRPC_SERVER_H_
