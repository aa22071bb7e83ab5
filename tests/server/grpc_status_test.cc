#include "server/grpc_status.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trialmatch::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST(ToGrpcStatusTest, OkIsOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

// Every absl code maps to the gRPC code with the same meaning.
TEST(ToGrpcStatusTest, CodeTable) {
  struct Case {
    absl::StatusCode in;
    grpc::StatusCode out;
  };
  const Case kCases[] = {
      {absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
      {absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN},
      {absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
      {absl::StatusCode::kDeadlineExceeded,
       grpc::StatusCode::DEADLINE_EXCEEDED},
      {absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
      {absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
      {absl::StatusCode::kPermissionDenied,
       grpc::StatusCode::PERMISSION_DENIED},
      {absl::StatusCode::kResourceExhausted,
       grpc::StatusCode::RESOURCE_EXHAUSTED},
      {absl::StatusCode::kFailedPrecondition,
       grpc::StatusCode::FAILED_PRECONDITION},
      {absl::StatusCode::kAborted, grpc::StatusCode::ABORTED},
      {absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
      {absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
      {absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL},
      {absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
      {absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
      {absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(absl::StatusCodeToString(c.in));
    EXPECT_EQ(ToGrpcStatus(absl::Status(c.in, "m")).error_code(), c.out);
  }
}

TEST(ToGrpcStatusTest, ClientErrorsKeepTheirMessage) {
  const grpc::Status s = ToGrpcStatus(
      absl::InvalidArgumentError("page_size must be between 0 and 1000"));
  EXPECT_EQ(s.error_message(), "page_size must be between 0 and 1000");
  EXPECT_EQ(
      ToGrpcStatus(absl::UnavailableError("upstream down")).error_message(),
      "upstream down");
}

// Internal failures never leak their text (SQL, file paths, parser output).
TEST(ToGrpcStatusTest, InternalDetailsAreReplaced) {
  const std::string secret =
      "SELECT raw_json FROM study_json WHERE id=?1: disk I/O error at "
      "/var/lib/trialmatch/studies.db";
  for (absl::StatusCode code :
       {absl::StatusCode::kInternal, absl::StatusCode::kDataLoss,
        absl::StatusCode::kUnknown}) {
    SCOPED_TRACE(absl::StatusCodeToString(code));
    const grpc::Status s = ToGrpcStatus(absl::Status(code, secret));
    EXPECT_EQ(static_cast<int>(s.error_code()), static_cast<int>(code));
    EXPECT_THAT(s.error_message(), StartsWith("internal error (incident "));
    EXPECT_THAT(s.error_message(), Not(HasSubstr("SELECT")));
    EXPECT_THAT(s.error_message(), Not(HasSubstr("/var/lib")));
  }
}

TEST(ToGrpcStatusTest, IncidentIdsDiffer) {
  const std::string a = ToGrpcStatus(absl::InternalError("x")).error_message();
  const std::string b = ToGrpcStatus(absl::InternalError("x")).error_message();
  EXPECT_NE(a, b);
}

TEST(ToGrpcStatusTest, UnknownCodeValuesBecomeUnknown) {
  const grpc::Status s =
      ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(42), "weird"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_THAT(s.error_message(), Not(HasSubstr("weird")));
}

TEST(ToGrpcStatusTest, LongMessagesAreCut) {
  const std::string long_message(5000, 'x');
  const grpc::Status s = ToGrpcStatus(absl::NotFoundError(long_message));
  EXPECT_LE(s.error_message().size(), kMaxStatusMessageBytes);
  EXPECT_THAT(s.error_message(), testing::EndsWith("..."));
}

TEST(ToGrpcStatusTest, CutDoesNotSplitUtf8) {
  // "é" is two bytes; place one across the cut.
  std::string text(kMaxStatusMessageBytes - 4, 'a');
  for (int i = 0; i < 100; ++i) text += "\xC3\xA9";
  const std::string out =
      ToGrpcStatus(absl::InvalidArgumentError(text)).error_message();
  const std::string body = out.substr(0, out.size() - 3);  // without "..."
  // Every lead byte is followed by its continuation byte.
  for (std::size_t i = 0; i < body.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(body[i]);
    if (c == 0xC3) {
      ASSERT_LT(i + 1, body.size());
      EXPECT_EQ(static_cast<unsigned char>(body[i + 1]), 0xA9);
    }
  }
}

}  // namespace
}  // namespace trialmatch::server
