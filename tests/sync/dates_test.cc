#include "sync/dates.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace trialmatch::sync {
namespace {

using ::trialmatch::testing::StatusIs;

TEST(NormalizeDateTest, FullAndPartialDates) {
  EXPECT_EQ(NormalizeDate("2024-03-15"), "2024-03-15");
  EXPECT_EQ(NormalizeDate("2024-03"), "2024-03-01");
  EXPECT_EQ(NormalizeDate("2024"), "2024-01-01");
  EXPECT_EQ(NormalizeDate("2024-02-29"), "2024-02-29");  // leap year
}

TEST(NormalizeDateTest, RejectsWhatIsNotADate) {
  for (const char* bad :
       {"", "24-03-15", "2024-3-15", "2024-02-30", "2023-02-29", "2024-13-01",
        "2024-00-10", "2024/03/15", "2024-03-15T00:00", " 2024-03-15",
        "abcd-ef-gh"}) {
    EXPECT_EQ(NormalizeDate(bad), std::nullopt) << bad;
  }
}

TEST(LaterDateTest, KeepsTheMaximumAndIgnoresGarbage) {
  EXPECT_EQ(LaterDate("", "2024-03-15"), "2024-03-15");
  EXPECT_EQ(LaterDate("2024-03-15", "2024-03-14"), "2024-03-15");
  EXPECT_EQ(LaterDate("2024-03-15", "2024-03-16"), "2024-03-16");
  EXPECT_EQ(LaterDate("2024-03-15", "2024-04"), "2024-04-01");
  EXPECT_EQ(LaterDate("2024-03-15", "2024-03"), "2024-03-15");
  EXPECT_EQ(LaterDate("2024-03-15", "not a date"), "2024-03-15");
  EXPECT_EQ(LaterDate("2024-03-15", ""), "2024-03-15");
}

TEST(IncrementalStartDayTest, SubtractsWholeDaysRoundingTheOverlapUp) {
  EXPECT_EQ(*IncrementalStartDay("2024-03-15", absl::ZeroDuration()),
            "2024-03-15");
  EXPECT_EQ(*IncrementalStartDay("2024-03-15", absl::Hours(1)), "2024-03-14");
  EXPECT_EQ(*IncrementalStartDay("2024-03-15", absl::Hours(24)), "2024-03-14");
  EXPECT_EQ(*IncrementalStartDay("2024-03-15", absl::Hours(36)), "2024-03-13");
  EXPECT_EQ(*IncrementalStartDay("2024-03-02", absl::Hours(72)), "2024-02-28");
  EXPECT_EQ(*IncrementalStartDay("2024-01-01", absl::Hours(24)), "2023-12-31");
  EXPECT_EQ(*IncrementalStartDay("2024-03", absl::Hours(24)), "2024-02-29");
}

TEST(IncrementalStartDayTest, Errors) {
  EXPECT_THAT(IncrementalStartDay("", absl::Hours(1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(IncrementalStartDay("2024-03-15", -absl::Hours(1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DatesTest, DayOfAndFilter) {
  EXPECT_EQ(DayOf(absl::FromUnixSeconds(1'700'000'000)), "2023-11-14");
  EXPECT_EQ(DayOf(absl::FromUnixSeconds(0) - absl::Seconds(1)), "1969-12-31");
  EXPECT_EQ(UpdatedSinceFilter("2024-03-12"),
            "AREA[LastUpdatePostDate]RANGE[2024-03-12, MAX]");
}

}  // namespace
}  // namespace trialmatch::sync
