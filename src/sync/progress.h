// Progress of a sync or an import, and its rendering for people.
//
// The syncer and the importer report a Progress after each page / batch
// through a ProgressCallback. ProgressPrinter renders it:
//   * on a terminal: one line redrawn in place ("\r" + line + erase to end
//     of line), at most every `redraw_every`, ended by Done();
//   * otherwise (a log file, a pipe, a container's stderr): a plain INFO log
//     line at most every `log_every`, plus the final state at Done().
// The line holds counts, rates and an ETA only — never study content (and
// trialmatch has no patient data here to leak).
//
//   full sync: page 12, 11,000/61,234 studies (18.0%), 950 studies/s,
//   24.1 MB/s, ETA 53s
//
// Thread safety: Progress and FormatProgress are values / pure.
// ProgressPrinter is thread-compatible (a sync calls it from one thread).
#ifndef TRIALMATCH_SYNC_PROGRESS_H_
#define TRIALMATCH_SYNC_PROGRESS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/clock.h"

namespace trialmatch::sync {

struct Progress {
  std::string task;           // "full sync", "incremental sync", "import" ...
  std::string step = "page";  // what `pages` counts: "page", "batch"
  int64_t pages = 0;          // pages (sync) or batches (import) this run
  int64_t studies = 0;        // studies handled this run
  // Studies handled by an earlier, interrupted run that this one resumes
  // (counted towards total_studies, not towards the rates).
  int64_t studies_before = 0;
  int64_t bytes = 0;  // JSON bytes handled this run
  // Expected studies in all (the upstream's totalCount), when known.
  std::optional<int64_t> total_studies;
  // Expected bytes in all (an import's file size), when known. The ETA uses
  // total_studies when set, else total_bytes.
  std::optional<int64_t> total_bytes;
  absl::Duration elapsed;  // since this run started
  // What `studies` counts, as shown ("studies"; `trialmatch match` shows
  // "patients"). An empty `step` leaves the step count out of the line, and
  // show_bytes = false the MB/s (for work that is not measured in bytes).
  std::string items = "studies";
  bool show_bytes = true;
};

using ProgressCallback = std::function<void(const Progress&)>;

// One line, no newline, e.g. "import: batch 3, 1,500 studies, 12.0 MB of
// 1.0 GB (1.2%), 2,400 studies/s, 19.2 MB/s, ETA 1m22s".
std::string FormatProgress(const Progress& progress);

// "53s", "3m05s", "1h02m".
std::string FormatEta(absl::Duration d);

class ProgressPrinter {
 public:
  struct Options {
    int fd = 2;             // where a terminal line is drawn (stderr)
    bool terminal = false;  // the caller decides, e.g. isatty(fd)
    absl::Duration redraw_every = absl::Milliseconds(100);
    absl::Duration log_every = absl::Seconds(10);
  };

  // `clock` paces the redraws / log lines; must outlive the printer.
  ProgressPrinter(Options options, common::Clock& clock);
  ProgressPrinter(const ProgressPrinter&) = delete;
  ProgressPrinter& operator=(const ProgressPrinter&) = delete;

  void Update(const Progress& progress);
  // Shows the last state (if it was not shown) and, on a terminal, ends the
  // line. Idempotent; Update() afterwards starts a new line.
  void Done();

  // A callback that forwards to Update(); valid while the printer lives.
  ProgressCallback AsCallback() {
    return [this](const Progress& p) { Update(p); };
  }

 private:
  void Show(const Progress& progress);

  const Options options_;
  common::Clock& clock_;
  std::optional<absl::Time> last_shown_;
  std::optional<Progress> pending_;  // updated but not shown yet
  bool line_open_ = false;           // terminal: a line is drawn, no newline
};

}  // namespace trialmatch::sync

#endif  // TRIALMATCH_SYNC_PROGRESS_H_
