#include "cli/flags.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace trialmatch::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::trialmatch::testing::StatusIs;

struct Options {
  std::string store = "/var/lib/x.db";
  int64_t limit = 10;
  int port = 50051;
  double rate = 1.0;
  bool verbose = false;
  bool sync = true;
  absl::Duration interval = absl::Hours(1);
  std::vector<std::string> statuses = {"RECRUITING"};
};

FlagSet MakeFlags(Options* o) {
  FlagSet f("trialmatch test", "A test command.");
  f.String("store", &o->store, "store path");
  f.Int("limit", &o->limit, "limit");
  f.Int("port", &o->port, "port");
  f.Double("rate", &o->rate, "rate");
  f.Bool("verbose", &o->verbose, "verbose");
  f.Bool("sync", &o->sync, "sync");
  f.Duration("sync_interval", &o->interval, "interval");
  f.StringList("status", &o->statuses, "statuses");
  return f;
}

TEST(FlagSetTest, ParsesEveryFormAndKeepsPositionals) {
  Options o;
  FlagSet f = MakeFlags(&o);
  auto rest = f.Parse({"a.json", "--store=/tmp/s.db", "--limit", "5",
                       "--port=8080", "--rate", "0.5", "--verbose",
                       "--nosync", "--sync-interval=90s", "--status",
                       "RECRUITING,NOT_YET_RECRUITING", "--status=COMPLETED",
                       "b.json", "--", "--not-a-flag"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_THAT(*rest, ElementsAre("a.json", "b.json", "--not-a-flag"));
  EXPECT_EQ(o.store, "/tmp/s.db");
  EXPECT_EQ(o.limit, 5);
  EXPECT_EQ(o.port, 8080);
  EXPECT_DOUBLE_EQ(o.rate, 0.5);
  EXPECT_TRUE(o.verbose);
  EXPECT_FALSE(o.sync);
  EXPECT_EQ(o.interval, absl::Seconds(90));
  EXPECT_THAT(o.statuses,
              ElementsAre("RECRUITING", "NOT_YET_RECRUITING", "COMPLETED"));
}

TEST(FlagSetTest, DefaultsStayWhenFlagsAreAbsent) {
  Options o;
  FlagSet f = MakeFlags(&o);
  ASSERT_TRUE(f.Parse({}).ok());
  EXPECT_EQ(o.store, "/var/lib/x.db");
  EXPECT_THAT(o.statuses, ElementsAre("RECRUITING"));
}

TEST(FlagSetTest, ErrorsNameTheFlag) {
  Options o;
  FlagSet f = MakeFlags(&o);
  EXPECT_THAT(f.Parse({"--bogus=1"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--bogus")));
  EXPECT_THAT(f.Parse({"--limit=ten"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--limit")));
  EXPECT_THAT(f.Parse({"--limit"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing")));
  EXPECT_THAT(f.Parse({"--verbose=maybe"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(f.Parse({"--sync_interval=-5s"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(o.limit, 10);
}

TEST(FlagSetTest, HelpListsFlagsWithDefaults) {
  Options o;
  FlagSet f = MakeFlags(&o);
  std::ostringstream out;
  f.set_help_output(&out);
  EXPECT_THAT(f.Parse({"--help"}), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(out.str(), HasSubstr("--store"));
  EXPECT_THAT(out.str(), HasSubstr("/var/lib/x.db"));
  EXPECT_THAT(out.str(), HasSubstr("--sync_interval"));
}

}  // namespace
}  // namespace trialmatch::cli
