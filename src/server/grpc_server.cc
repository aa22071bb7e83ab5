#include "server/grpc_server.h"

#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"

namespace trialmatch::server {

Readiness::Readiness(grpc::HealthCheckServiceInterface* health,
                     std::vector<std::string> service_names,
                     const std::vector<std::string>& required)
    : health_(health), service_names_(std::move(service_names)) {
  absl::MutexLock lock(&mu_);
  pending_.insert(required.begin(), required.end());
  PublishLocked();
}

void Readiness::Require(const std::string& condition) {
  absl::MutexLock lock(&mu_);
  pending_.insert(condition);
  PublishLocked();
}

void Readiness::MarkReady(const std::string& condition) {
  absl::MutexLock lock(&mu_);
  pending_.erase(condition);
  PublishLocked();
}

void Readiness::MarkNotReady(const std::string& condition) {
  Require(condition);
}

void Readiness::SetShuttingDown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  PublishLocked();
}

bool Readiness::serving() const {
  absl::MutexLock lock(&mu_);
  return pending_.empty() && !shutting_down_;
}

void Readiness::PublishLocked() {
  const bool serving = pending_.empty() && !shutting_down_;
  if (health_ == nullptr) return;
  health_->SetServingStatus(serving);  // "" and every registered name
  for (const std::string& name : service_names_) {
    health_->SetServingStatus(name, serving);
  }
}

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const Options& options, const std::vector<grpc::Service*>& services) {
  const std::string& address = options.listen_address;
  const std::size_t colon = address.rfind(':');
  int requested_port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &requested_port) ||
      requested_port < 0 || requested_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen address must be host:port (port 0 = any free port), got '",
        address, "'"));
  }
  grpc::EnableDefaultHealthCheckService(true);
  if (options.enable_reflection) {
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  }
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxSendMessageSize(options.max_send_message_bytes);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // gRPC sets SO_REUSEPORT by default: a second server on a busy port would
  // silently share it. A busy port must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || port == 0) {
    if (server->server_ != nullptr) {
      server->server_->Shutdown();
      server->server_->Wait();
      server->server_.reset();
    }
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address,
                     " (address in use, or not an address of this host)"));
  }
  server->port_ = port;
  server->address_ = absl::StrCat(address.substr(0, colon), ":", port);
  server->readiness_ = std::make_unique<Readiness>(
      server->server_->GetHealthCheckService(), options.health_service_names,
      options.required_conditions);
  return server;
}

GrpcServer::~GrpcServer() {
  if (server_ == nullptr) return;  // failed start
  Shutdown(absl::ZeroDuration());
  Wait();
}

void GrpcServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  if (readiness_ != nullptr) readiness_->SetShuttingDown();
  const auto deadline =
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(absl::ToInt64Milliseconds(grace));
  server_->Shutdown(deadline);
}

void GrpcServer::Wait() { server_->Wait(); }

}  // namespace trialmatch::server
