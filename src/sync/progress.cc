#include "sync/progress.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"

namespace trialmatch::sync {
namespace {

// 61234 -> "61,234".
std::string Thousands(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string Megabytes(int64_t bytes) {
  const double mb = static_cast<double>(bytes) / 1e6;
  if (mb >= 1000) return absl::StrFormat("%.2f GB", mb / 1000);
  return absl::StrFormat("%.1f MB", mb);
}

void WriteAll(int fd, const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n <= 0) return;  // progress is best effort
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

std::string FormatEta(absl::Duration d) {
  int64_t s = absl::ToInt64Seconds(d + absl::Milliseconds(500));
  if (s < 0) s = 0;
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

std::string FormatProgress(const Progress& p) {
  std::string line = absl::StrCat(p.task, ": ");
  if (!p.step.empty()) {
    absl::StrAppend(&line, p.step, " ", Thousands(p.pages), ", ");
  }
  const int64_t done = p.studies_before + p.studies;
  absl::StrAppend(&line, Thousands(done));
  std::optional<double> fraction;
  if (p.total_studies.has_value() && *p.total_studies > 0) {
    absl::StrAppend(&line, "/", Thousands(*p.total_studies));
    fraction =
        static_cast<double>(done) / static_cast<double>(*p.total_studies);
  }
  absl::StrAppend(&line, " ", p.items);
  if (!fraction.has_value() && p.total_bytes.has_value() &&
      *p.total_bytes > 0) {
    absl::StrAppend(&line, ", ", Megabytes(p.bytes), " of ",
                    Megabytes(*p.total_bytes));
    fraction =
        static_cast<double>(p.bytes) / static_cast<double>(*p.total_bytes);
  }
  if (fraction.has_value()) {
    absl::StrAppendFormat(&line, " (%.1f%%)", 100 * std::min(1.0, *fraction));
  }
  const double seconds = absl::ToDoubleSeconds(p.elapsed);
  if (seconds > 0) {
    absl::StrAppend(&line, ", ",
                    Thousands(static_cast<int64_t>(
                        static_cast<double>(p.studies) / seconds)),
                    " ", p.items, "/s");
    if (p.show_bytes) {
      absl::StrAppendFormat(&line, ", %.1f MB/s",
                            static_cast<double>(p.bytes) / 1e6 / seconds);
    }
    // ETA from this run's pace over the part still to do.
    if (fraction.has_value() && *fraction > 0 && *fraction < 1 &&
        p.studies > 0) {
      double remaining_seconds;
      if (p.total_studies.has_value() && *p.total_studies > 0) {
        remaining_seconds = static_cast<double>(*p.total_studies - done) *
                            seconds / static_cast<double>(p.studies);
      } else {
        remaining_seconds = seconds * (1 - *fraction) / *fraction;
      }
      absl::StrAppend(&line, ", ETA ",
                      FormatEta(absl::Seconds(remaining_seconds)));
    }
  }
  return line;
}

ProgressPrinter::ProgressPrinter(Options options, common::Clock& clock)
    : options_(options), clock_(clock) {}

void ProgressPrinter::Update(const Progress& progress) {
  const absl::Time now = clock_.Now();
  const absl::Duration every =
      options_.terminal ? options_.redraw_every : options_.log_every;
  if (last_shown_.has_value() && now - *last_shown_ < every) {
    pending_ = progress;
    return;
  }
  last_shown_ = now;
  pending_.reset();
  Show(progress);
}

void ProgressPrinter::Done() {
  if (pending_.has_value()) {
    Show(*pending_);
    pending_.reset();
  }
  if (line_open_) {
    WriteAll(options_.fd, "\n");
    line_open_ = false;
  }
  last_shown_.reset();
}

void ProgressPrinter::Show(const Progress& progress) {
  const std::string line = FormatProgress(progress);
  if (options_.terminal) {
    WriteAll(options_.fd, absl::StrCat("\r", line, "\x1b[K"));
    line_open_ = true;
  } else {
    TM_LOG_INFO("sync", line);
  }
}

}  // namespace trialmatch::sync
