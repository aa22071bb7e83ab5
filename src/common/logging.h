// Minimal leveled logging to stderr (Debian's Abseil has no absl/log).
//
// Contract: callers never log patient data (names, dates of birth, diagnoses,
// lab values) — log counts, ids of studies, durations and error codes only.
// Each line is "<RFC3339 time> <LEVEL> <component>: <message>". Thread-safe:
// one write(2) per line, so lines from concurrent threads do not interleave.
//
//   common::Log(common::LogLevel::kInfo, "sync", absl::StrCat("page ", n));
//   TM_LOG_INFO("sync", "stored ", n, " studies");
#ifndef TRIALMATCH_COMMON_LOGGING_H_
#define TRIALMATCH_COMMON_LOGGING_H_

#include <string_view>

#include "absl/strings/str_cat.h"

namespace trialmatch::common {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Lines below the minimum level are dropped. Default: kInfo. Thread-safe.
void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();

// Parses "debug" | "info" | "warning" | "error"; returns false otherwise.
bool ParseLogLevel(std::string_view text, LogLevel* level);

void Log(LogLevel level, std::string_view component, std::string_view message);

}  // namespace trialmatch::common

#define TM_LOG_AT_(level, component, ...)                                 \
  do {                                                                    \
    if (static_cast<int>(level) >=                                        \
        static_cast<int>(::trialmatch::common::MinLogLevel())) {          \
      ::trialmatch::common::Log(level, component, absl::StrCat(__VA_ARGS__)); \
    }                                                                     \
  } while (false)
#define TM_LOG_DEBUG(component, ...) \
  TM_LOG_AT_(::trialmatch::common::LogLevel::kDebug, component, __VA_ARGS__)
#define TM_LOG_INFO(component, ...) \
  TM_LOG_AT_(::trialmatch::common::LogLevel::kInfo, component, __VA_ARGS__)
#define TM_LOG_WARNING(component, ...) \
  TM_LOG_AT_(::trialmatch::common::LogLevel::kWarning, component, __VA_ARGS__)
#define TM_LOG_ERROR(component, ...) \
  TM_LOG_AT_(::trialmatch::common::LogLevel::kError, component, __VA_ARGS__)

#endif  // TRIALMATCH_COMMON_LOGGING_H_
