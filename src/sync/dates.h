// Dates of ClinicalTrials.gov's `lastUpdatePostDate` and the incremental-sync
// watermark built from them.
//
// The registry states post dates as "YYYY-MM-DD" (older records sometimes
// "YYYY-MM"). The watermark is the latest such date a sync has seen, always
// in the full "YYYY-MM-DD" form, so that dates compare as strings. Pure
// functions; thread-safe.
#ifndef TRIALMATCH_SYNC_DATES_H_
#define TRIALMATCH_SYNC_DATES_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace trialmatch::sync {

// "YYYY-MM-DD" -> itself, "YYYY-MM" -> "YYYY-MM-01", "YYYY" -> "YYYY-01-01"
// (the earliest day the partial date can mean: a watermark must never be
// later than what it covers). nullopt for anything else, including
// impossible dates ("2024-02-30").
std::optional<std::string> NormalizeDate(std::string_view date);

// The later of `watermark` (normalized or "") and `date` (any form
// NormalizeDate accepts; ignored when it does not parse).
std::string LaterDate(std::string_view watermark, std::string_view date);

// The UTC calendar day of `t`, "YYYY-MM-DD".
std::string DayOf(absl::Time t);

// The first day an incremental sync asks for: `watermark` minus `overlap`,
// rounded up to whole days (an overlap of 36h goes back 2 days).
// kInvalidArgument when `watermark` is not a date or `overlap` is negative.
absl::StatusOr<std::string> IncrementalStartDay(std::string_view watermark,
                                                absl::Duration overlap);

// The `filter.advanced` expression selecting studies updated on or after
// `first_day`: "AREA[LastUpdatePostDate]RANGE[<first_day>, MAX]".
std::string UpdatedSinceFilter(std::string_view first_day);

}  // namespace trialmatch::sync

#endif  // TRIALMATCH_SYNC_DATES_H_
