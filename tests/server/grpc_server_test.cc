#include "server/grpc_server.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace trialmatch::server {
namespace {

using ::trialmatch::testing::StatusIs;

// Records what the readiness gate publishes.
class RecordingHealth final : public grpc::HealthCheckServiceInterface {
 public:
  void SetServingStatus(const std::string& service, bool serving) override {
    status[service] = serving;
  }
  void SetServingStatus(bool serving) override { status[""] = serving; }
  std::map<std::string, bool> status;
};

TEST(ReadinessTest, ServingOnlyWhenEveryConditionIsReady) {
  RecordingHealth health;
  Readiness readiness(&health, {"trialmatch.v1.StudyService"}, {"store"});
  EXPECT_FALSE(readiness.serving());
  EXPECT_FALSE(health.status[""]);
  EXPECT_FALSE(health.status["trialmatch.v1.StudyService"]);

  readiness.Require("snapshot");
  readiness.MarkReady("store");
  EXPECT_FALSE(readiness.serving());  // the snapshot is still missing
  readiness.MarkReady("snapshot");
  EXPECT_TRUE(readiness.serving());
  EXPECT_TRUE(health.status[""]);
  EXPECT_TRUE(health.status["trialmatch.v1.StudyService"]);

  readiness.MarkNotReady("snapshot");  // e.g. a rebuild failed
  EXPECT_FALSE(health.status[""]);
  readiness.MarkReady("snapshot");
  readiness.SetShuttingDown();
  EXPECT_FALSE(readiness.serving());
  EXPECT_FALSE(health.status[""]);
  readiness.MarkReady("store");  // nothing brings it back
  EXPECT_FALSE(health.status["trialmatch.v1.StudyService"]);
}

TEST(GrpcServerTest, BindsAFreePortAndReportsIt) {
  GrpcServer::Options options;
  options.listen_address = "127.0.0.1:0";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GrpcServer> server,
                       GrpcServer::Start(options, {}));
  EXPECT_GT(server->port(), 0);
  EXPECT_EQ(server->address(), "127.0.0.1:" + std::to_string(server->port()));
  // The port is taken now.
  options.listen_address = server->address();
  EXPECT_THAT(GrpcServer::Start(options, {}),
              StatusIs(absl::StatusCode::kUnavailable));
  server->Shutdown(absl::ZeroDuration());
  server->Shutdown(absl::ZeroDuration());  // twice is fine
  server->Wait();
}

TEST(GrpcServerTest, MalformedAddressIsInvalidArgument) {
  for (const std::string address :
       {"", "localhost", ":50051", "host:99999", "host:port"}) {
    SCOPED_TRACE(address);
    GrpcServer::Options options;
    options.listen_address = address;
    EXPECT_THAT(GrpcServer::Start(options, {}),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

}  // namespace
}  // namespace trialmatch::server
