#include "common/logging.h"

#include "gtest/gtest.h"

namespace trialmatch::common {
namespace {

TEST(LoggingTest, ParsesLevels) {
  LogLevel level = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("DEBUG", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("warn", &level));
  EXPECT_EQ(level, LogLevel::kWarning);
  EXPECT_FALSE(ParseLogLevel("loud", &level));
  EXPECT_EQ(level, LogLevel::kWarning);  // untouched on failure
}

TEST(LoggingTest, MinimumLevelFiltersLines) {
  SetMinLogLevel(LogLevel::kError);
  ::testing::internal::CaptureStderr();
  TM_LOG_INFO("test", "dropped ", 1);
  TM_LOG_ERROR("test", "kept ", 2);
  std::string out = ::testing::internal::GetCapturedStderr();
  SetMinLogLevel(LogLevel::kInfo);
  EXPECT_EQ(out.find("dropped"), std::string::npos);
  EXPECT_NE(out.find("ERROR test: kept 2"), std::string::npos);
}

}  // namespace
}  // namespace trialmatch::common
