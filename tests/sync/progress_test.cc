#include "sync/progress.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/fake_clock.h"

namespace trialmatch::sync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::trialmatch::testing::FakeClock;

TEST(FormatEtaTest, Units) {
  EXPECT_EQ(FormatEta(absl::ZeroDuration()), "0s");
  EXPECT_EQ(FormatEta(absl::Seconds(53)), "53s");
  EXPECT_EQ(FormatEta(absl::Seconds(185)), "3m05s");
  EXPECT_EQ(FormatEta(absl::Seconds(3720)), "1h02m");
  EXPECT_EQ(FormatEta(-absl::Seconds(5)), "0s");
}

TEST(FormatProgressTest, SyncWithTotalHasPercentRatesAndEta) {
  Progress p;
  p.task = "full sync";
  p.pages = 12;
  p.studies = 11000;
  p.bytes = 220'000'000;
  p.total_studies = 61234;
  p.elapsed = absl::Seconds(10);
  // 1,100 studies/s over the 50,234 left: 45.7 s.
  EXPECT_EQ(FormatProgress(p),
            "full sync: page 12, 11,000/61,234 studies (18.0%), 1,100 "
            "studies/s, 22.0 MB/s, ETA 46s");
}

TEST(FormatProgressTest, ResumedStudiesCountTowardsTheTotalNotTheRate) {
  Progress p;
  p.task = "full sync";
  p.pages = 1;
  p.studies = 100;
  p.studies_before = 400;
  p.bytes = 1'000'000;
  p.total_studies = 1000;
  p.elapsed = absl::Seconds(1);
  EXPECT_EQ(FormatProgress(p),
            "full sync: page 1, 500/1,000 studies (50.0%), 100 studies/s, "
            "1.0 MB/s, ETA 5s");
}

TEST(FormatProgressTest, OtherItemsWithoutStepsOrBytes) {
  Progress p;
  p.task = "match";
  p.step = "";
  p.items = "patients";
  p.show_bytes = false;
  p.studies = 2500;
  p.total_studies = 10000;
  p.elapsed = absl::Seconds(5);
  // 500 patients/s over the 7,500 left: 15 s.
  EXPECT_EQ(FormatProgress(p),
            "match: 2,500/10,000 patients (25.0%), 500 patients/s, ETA 15s");
}

TEST(FormatProgressTest, ImportUsesBytesForTheEtaAndNoTotalMeansNoEta) {
  Progress p;
  p.task = "import";
  p.step = "batch";
  p.pages = 3;
  p.studies = 1500;
  p.bytes = 250'000'000;
  p.total_bytes = 1'000'000'000;
  p.elapsed = absl::Seconds(5);
  EXPECT_EQ(FormatProgress(p),
            "import: batch 3, 1,500 studies, 250.0 MB of 1.00 GB (25.0%), 300 "
            "studies/s, 50.0 MB/s, ETA 15s");
  p.total_bytes.reset();
  EXPECT_THAT(FormatProgress(p), Not(HasSubstr("ETA")));
  p.elapsed = absl::ZeroDuration();
  EXPECT_EQ(FormatProgress(p), "import: batch 3, 1,500 studies");
}

// Reads what the printer wrote to a pipe.
class PipeCapture {
 public:
  PipeCapture() { EXPECT_EQ(::pipe2(fds_, O_NONBLOCK | O_CLOEXEC), 0); }
  ~PipeCapture() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int write_fd() const { return fds_[1]; }
  std::string Drain() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds_[0], buf, sizeof buf)) > 0) out.append(buf, n);
    return out;
  }

 private:
  int fds_[2];
};

Progress Page(int n) {
  Progress p;
  p.task = "full sync";
  p.pages = n;
  p.studies = n * 10;
  p.elapsed = absl::Seconds(n);
  return p;
}

TEST(ProgressPrinterTest, TerminalRedrawsOneLineThrottledAndEndsIt) {
  PipeCapture pipe;
  FakeClock clock;
  ProgressPrinter printer({.fd = pipe.write_fd(),
                           .terminal = true,
                           .redraw_every = absl::Milliseconds(100)},
                          clock);
  printer.Update(Page(1));
  EXPECT_EQ(pipe.Drain(), "\r" + FormatProgress(Page(1)) + "\x1b[K");
  clock.Advance(absl::Milliseconds(10));
  printer.Update(Page(2));  // too soon: held back
  EXPECT_EQ(pipe.Drain(), "");
  clock.Advance(absl::Milliseconds(100));
  printer.Update(Page(3));
  EXPECT_EQ(pipe.Drain(), "\r" + FormatProgress(Page(3)) + "\x1b[K");
  clock.Advance(absl::Milliseconds(1));
  printer.Update(Page(4));
  printer.Done();  // shows the held-back state, then ends the line
  EXPECT_EQ(pipe.Drain(), "\r" + FormatProgress(Page(4)) + "\x1b[K\n");
  printer.Done();
  EXPECT_EQ(pipe.Drain(), "");
}

TEST(ProgressPrinterTest, NotATerminalWritesNothingToTheFd) {
  PipeCapture pipe;
  FakeClock clock;
  ProgressPrinter printer({.fd = pipe.write_fd(), .terminal = false}, clock);
  ::testing::internal::CaptureStderr();
  printer.Update(Page(1));
  printer.Update(Page(2));  // within log_every: held back
  clock.Advance(absl::Seconds(11));
  printer.Update(Page(3));
  printer.Done();
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(pipe.Drain(), "");
  EXPECT_THAT(log, HasSubstr("INFO sync: " + FormatProgress(Page(1)) + "\n"));
  EXPECT_THAT(log, Not(HasSubstr(FormatProgress(Page(2)))));
  EXPECT_THAT(log, HasSubstr(FormatProgress(Page(3))));
}

}  // namespace
}  // namespace trialmatch::sync
