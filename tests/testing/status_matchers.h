// gMock matchers for absl::Status and absl::StatusOr<T> (Debian's Abseil lacks
// absl/status/status_matchers.h). Shape of google-cloud-cpp's
// testing_util/status_matchers.h:
//
//   EXPECT_THAT(store->Get("NCT00000000"), StatusIs(absl::StatusCode::kNotFound));
//   EXPECT_THAT(DoIt(), IsOk());
//   ASSERT_OK(DoIt());  ASSERT_OK_AND_ASSIGN(auto v, Compute());
#ifndef TRIALMATCH_TESTING_STATUS_MATCHERS_H_
#define TRIALMATCH_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trialmatch::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::trialmatch::testing::GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code,
          "has status code " + ::testing::PrintToString(code)) {
  const absl::Status& s = ::trialmatch::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + ::testing::PrintToString(code) +
               " and a matching message") {
  const absl::Status& s = ::trialmatch::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher,
                                       std::string(s.message()),
                                       result_listener);
}

}  // namespace trialmatch::testing

#define TM_TESTING_CONCAT_INNER_(a, b) a##b
#define TM_TESTING_CONCAT_(a, b) TM_TESTING_CONCAT_INNER_(a, b)

#define ASSERT_OK(expr) \
  ASSERT_THAT((expr), ::trialmatch::testing::IsOk())
#define EXPECT_OK(expr) \
  EXPECT_THAT((expr), ::trialmatch::testing::IsOk())

#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                 \
  auto TM_TESTING_CONCAT_(tm_statusor_, __LINE__) = (expr);             \
  ASSERT_THAT(TM_TESTING_CONCAT_(tm_statusor_, __LINE__).status(),      \
              ::trialmatch::testing::IsOk());                           \
  lhs = std::move(TM_TESTING_CONCAT_(tm_statusor_, __LINE__)).value()

#endif  // TRIALMATCH_TESTING_STATUS_MATCHERS_H_
