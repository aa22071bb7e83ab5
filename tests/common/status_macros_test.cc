#include "common/status_macros.h"

#include <string>

#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace trialmatch {
namespace {

using ::trialmatch::testing::StatusIs;

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x, int* evaluations) {
  TRIALMATCH_ASSIGN_OR_RETURN(int h, Half(x));
  ++*evaluations;
  TRIALMATCH_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

absl::Status Check(int x, int* calls) {
  TRIALMATCH_RETURN_IF_ERROR((++*calls, Half(x)));
  TRIALMATCH_RETURN_IF_ERROR(absl::OkStatus());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, AssignOrReturnPropagatesTheFirstError) {
  int evaluations = 0;
  EXPECT_EQ(*Quarter(8, &evaluations), 2);
  EXPECT_EQ(evaluations, 1);
  EXPECT_THAT(Quarter(3, &evaluations),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(evaluations, 1);  // stopped before the second step
  EXPECT_THAT(Quarter(6, &evaluations),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(evaluations, 2);
}

TEST(StatusMacrosTest, ReturnIfErrorEvaluatesOnce) {
  int calls = 0;
  EXPECT_TRUE(Check(2, &calls).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(Check(1, &calls), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace trialmatch
