#include "sync/dates.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "common/strings.h"

namespace trialmatch::sync {
namespace {

// Parses exactly `width` ASCII digits at text[pos...].
bool Digits(std::string_view text, size_t pos, size_t width, int* out) {
  if (pos + width > text.size()) return false;
  int value = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  *out = value;
  return true;
}

}  // namespace

std::optional<std::string> NormalizeDate(std::string_view date) {
  int year = 0;
  int month = 1;
  int day = 1;
  if (!Digits(date, 0, 4, &year)) return std::nullopt;
  if (date.size() == 4) {
    // year only
  } else if (date.size() == 7 && date[4] == '-' && Digits(date, 5, 2, &month)) {
    // year and month
  } else if (date.size() == 10 && date[4] == '-' && date[7] == '-' &&
             Digits(date, 5, 2, &month) && Digits(date, 8, 2, &day)) {
    // full date
  } else {
    return std::nullopt;
  }
  // CivilDay normalises out-of-range fields (2024-02-30 -> 2024-03-01);
  // a date that does not survive the round trip is not a real date.
  const absl::CivilDay civil(year, month, day);
  if (civil.year() != year || civil.month() != month || civil.day() != day) {
    return std::nullopt;
  }
  return absl::FormatCivilTime(civil);
}

std::string LaterDate(std::string_view watermark, std::string_view date) {
  std::optional<std::string> normalized = NormalizeDate(date);
  if (!normalized.has_value() || *normalized <= watermark) {
    return std::string(watermark);
  }
  return *std::move(normalized);
}

std::string DayOf(absl::Time t) {
  return absl::FormatCivilTime(absl::ToCivilDay(t, absl::UTCTimeZone()));
}

absl::StatusOr<std::string> IncrementalStartDay(std::string_view watermark,
                                                absl::Duration overlap) {
  std::optional<std::string> normalized = NormalizeDate(watermark);
  if (!normalized.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sync watermark '", common::ToAbsl(watermark), "' is not a date"));
  }
  if (overlap < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("sync overlap must not be negative");
  }
  absl::CivilDay day;
  absl::ParseCivilTime(*normalized, &day);  // cannot fail: normalized
  const int64_t days =
      absl::ToInt64Hours(overlap + absl::Hours(24) - absl::Nanoseconds(1)) / 24;
  return absl::FormatCivilTime(day - days);
}

std::string UpdatedSinceFilter(std::string_view first_day) {
  return absl::StrCat("AREA[LastUpdatePostDate]RANGE[",
                      common::ToAbsl(first_day), ", MAX]");
}

}  // namespace trialmatch::sync
