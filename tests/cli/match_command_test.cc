// `trialmatch match` through the real binary, on a temp store seeded with
// `trialmatch import` of recorded studies: JSON Lines output in input order
// with bad records reported by position, the answers equal to the in-process
// MatchRequest on the same store, shards (flags and $JOB_COMPLETION_INDEX)
// that partition the patients exactly, CSV, stdin, FHIR bundles, usage and
// store errors.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/match_request.h"
#include "server/snapshot_manager.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::cli {
namespace {

using ::testing::HasSubstr;
using ::trialmatch::testing::ProcessResult;
using ::trialmatch::testing::ReadFile;
using ::trialmatch::testing::NonEmptyLines;
using ::trialmatch::testing::RunProcess;
using ::trialmatch::testing::SourceDir;
using ::trialmatch::testing::StudiesDir;
using ::trialmatch::testing::TempDir;
using ::trialmatch::testing::TestDataDir;
using ::trialmatch::testing::TrialmatchBinary;

// RECRUITING recorded studies (breast cancer x2, diabetes x2, lung cancer,
// asthma) and one COMPLETED (left out of the snapshot).
const std::vector<std::string>& StudyIds() {
  static const std::vector<std::string> ids = {
      "NCT02992574", "NCT03788213", "NCT03658512", "NCT03648918",
      "NCT04025515", "NCT04912596", "NCT00001579"};
  return ids;
}

std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

// Patients: line number -> JSON text ("" = blank line). Lines 4 and 9 are
// bad (a value out of range, truncated JSON), line 7 is blank, line 11 is
// a FHIR bundle.
std::map<int, std::string> PatientLines() {
  const std::vector<std::string> good = {
      R"({"id":"w52","age_years":52,"sex":"female","conditions":[{"text":"breast cancer","codes":[{"system":"icd10cm","code":"C50.911"}]}]})",
      R"({"id":"m60","age_years":60,"sex":"male","conditions":[{"text":"breast cancer"}]})",
      R"({"id":"c10","age_years":10,"conditions":[{"text":"diabetes mellitus","codes":[{"system":"mesh","code":"D003920"}]}]})",
      R"({"id":"dm","conditions":[{"text":"type 2 diabetes","codes":[{"system":"icd10cm","code":"E11.9"}]}]})",
      R"({"id":"a30","age_years":30,"sex":"male","conditions":[{"text":"asthma","codes":[{"system":"icd10cm","code":"J45.40"}]}]})",
      R"({"id":"l70","age_years":70,"sex":"female","conditions":[{"text":"non-small cell lung cancer"}],"location":{"latitude":40.71,"longitude":-74.0}})",
      R"({"id":"none"})",
  };
  std::map<int, std::string> lines;
  int g = 0;
  for (int line = 1; line <= 23; ++line) {
    if (line == 4) {
      lines[line] = R"({"id":"secret-x","age_years":987})";
    } else if (line == 9) {
      lines[line] = R"({"id":"y","age_years":)";
    } else if (line == 7) {
      lines[line] = "";
    } else if (line == 11) {
      lines[line] = OneLine(ReadFile(TestDataDir() / "patients" /
                                     "fhir_bundle_breast_cancer.json"));
    } else {
      lines[line] = good[g++ % good.size()];
    }
  }
  return lines;
}

class MatchCommandTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::filesystem::create_directories(dir_->File("seed"));
    for (const std::string& id : StudyIds()) {
      std::filesystem::copy_file(StudiesDir() / (id + ".json"),
                                 dir_->File("seed") / (id + ".json"));
    }
    import_ = new ProcessResult(
        RunProcess({TrialmatchBinary(), "import", "--store=" + StorePath(),
                    "--rules=" + (SourceDir() / "rules").string(),
                    dir_->File("seed").string()}));
    std::ofstream out(PatientsPath(), std::ios::binary);
    for (const auto& [line, text] : PatientLines()) out << text << "\n";
  }
  static void TearDownTestSuite() {
    delete import_;
    delete dir_;
  }
  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    ASSERT_EQ(import_->exit_code, 0) << import_->err << import_->out;
  }

  static std::string StorePath() { return dir_->File("s.db").string(); }
  static std::string PatientsPath() {
    return dir_->File("patients.jsonl").string();
  }

  ProcessResult Match(std::vector<std::string> flags,
                      std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv = {
        TrialmatchBinary(), "match",
        "--rules=" + (SourceDir() / "rules").string()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    if (env.count("JOB_COMPLETION_INDEX") == 0)
      env["JOB_COMPLETION_INDEX"] = "";
    return RunProcess(argv, env);
  }

  // position -> the output line's JSON.
  static std::map<int64_t, nlohmann::json> ByPosition(const std::string& out) {
    std::map<int64_t, nlohmann::json> by;
    for (const std::string& line : NonEmptyLines(out)) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << line;
      if (j.is_discarded()) continue;
      const int64_t position = j.value("position", int64_t{-1});
      EXPECT_EQ(by.count(position), 0u) << "twice: " << position;
      by[position] = j;
    }
    return by;
  }

  static TempDir* dir_;
  static ProcessResult* import_;
};

TempDir* MatchCommandTest::dir_ = nullptr;
ProcessResult* MatchCommandTest::import_ = nullptr;

TEST_F(MatchCommandTest, JsonLinesInInputOrderWithBadRecordsByPosition) {
  const std::string out = dir_->File("all.jsonl").string();
  ProcessResult r =
      Match({"--store=" + StorePath(), "--patients=" + PatientsPath(),
             "--out=" + out, "--threads=2", "--explain"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = NonEmptyLines(ReadFile(out));
  const std::map<int, std::string> patients = PatientLines();
  ASSERT_EQ(lines.size(), patients.size() - 1);  // the blank line
  int64_t last = 0;
  for (const std::string& line : lines) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    const int64_t position = j["position"];
    EXPECT_GT(position, last);  // input order
    last = position;
    EXPECT_EQ(j["where"], "line " + std::to_string(position));
    if (position == 4 || position == 9) {
      ASSERT_TRUE(j.contains("error")) << line;
      EXPECT_EQ(j["error"]["code_name"], "INVALID_ARGUMENT");
      // Never a patient value.
      EXPECT_THAT(line, ::testing::Not(HasSubstr("987")));
      EXPECT_THAT(line, ::testing::Not(HasSubstr("secret-x")));
    } else {
      ASSERT_TRUE(j.contains("match")) << line;
      // The patient's own id: answers are not shuffled between patients.
      nlohmann::json input = nlohmann::json::parse(patients.at(position));
      if (input.contains("resourceType")) {  // the FHIR bundle
        EXPECT_FALSE(j["match"]["results"].empty());
      } else {
        EXPECT_EQ(j["match"]["patient_id"], input["id"]);
      }
      EXPECT_EQ(j["match"]["snapshot"]["study_count"], "6");  // int64: text
    }
  }
  EXPECT_THAT(r.err, HasSubstr("22 patients, 20 matched, 2 failed"));
  EXPECT_THAT(r.err, HasSubstr("snapshot of 6 studies"));
}

TEST_F(MatchCommandTest, AnswersEqualTheInProcessMatch) {
  ProcessResult r =
      Match({"--store=" + StorePath(), "--patients=" + PatientsPath(),
             "--limit=3", "--verdicts=eligible,possible,ineligible"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<std::unique_ptr<store::StudyStore>> store =
      store::StudyStore::Open(StorePath());
  ASSERT_OK(store.status());
  absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> rules =
      criteria::RuleSet::LoadDirectory(SourceDir() / "rules");
  ASSERT_OK(rules.status());
  ASSERT_OK_AND_ASSIGN(server::LoadedSnapshot snapshot,
                       server::LoadSnapshot(**store, *rules));
  v1::MatchOptions options;
  options.set_top_k(3);
  for (v1::Verdict v :
       {v1::VERDICT_ELIGIBLE, v1::VERDICT_POSSIBLE, v1::VERDICT_INELIGIBLE}) {
    options.add_verdicts(v);
  }
  const std::map<int64_t, nlohmann::json> by = ByPosition(r.out);
  int compared = 0;
  for (const auto& [line, text] : PatientLines()) {
    if (text.empty() || line == 4 || line == 9 || line == 11) continue;
    v1::PatientInput input;
    input.set_profile_json(text);
    ASSERT_OK_AND_ASSIGN(
        v1::MatchPatientResponse want,
        server::MatchRequest(snapshot, match::Matcher(), input, options));
    ASSERT_EQ(by.count(line), 1u) << line;
    v1::MatchPatientResponse got;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                    by.at(line)["match"].dump(), &got)
                    .ok());
    // Same results and notes; the snapshot info differs (built_at).
    got.clear_snapshot();
    want.clear_snapshot();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got, want))
        << "line " << line;
    EXPECT_LE(got.results_size(), 3);
    ++compared;
  }
  EXPECT_EQ(compared, 19);
}

TEST_F(MatchCommandTest, ShardsPartitionThePatientsExactly) {
  ProcessResult whole =
      Match({"--store=" + StorePath(), "--patients=" + PatientsPath()});
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  const std::map<int64_t, nlohmann::json> all = ByPosition(whole.out);
  constexpr int kShards = 3;
  std::map<int64_t, nlohmann::json> united;
  for (int i = 0; i < kShards; ++i) {
    SCOPED_TRACE(i);
    // Shard 1 takes its index from the environment, as in an Indexed Job.
    ProcessResult part =
        i == 1
            ? Match({"--store=" + StorePath(), "--patients=" + PatientsPath(),
                     "--shards=" + std::to_string(kShards)},
                    {{"JOB_COMPLETION_INDEX", "1"}})
            : Match({"--store=" + StorePath(), "--patients=" + PatientsPath(),
                     "--shards=" + std::to_string(kShards),
                     "--shard=" + std::to_string(i)});
    ASSERT_EQ(part.exit_code, 0) << part.err;
    EXPECT_THAT(part.err, HasSubstr("shard " + std::to_string(i) + "/3"));
    for (auto& [position, j] : ByPosition(part.out)) {
      EXPECT_EQ((position - 1) % kShards, i);
      EXPECT_EQ(united.count(position), 0u) << "in two shards: " << position;
      united[position] = j;
    }
  }
  ASSERT_EQ(united.size(), all.size());
  for (auto& [position, j] : all) {
    ASSERT_EQ(united.count(position), 1u) << position;
    nlohmann::json a = j;
    nlohmann::json b = united[position];
    if (a.contains("match")) a["match"].erase("snapshot");
    if (b.contains("match")) b["match"].erase("snapshot");
    EXPECT_EQ(a, b) << position;
  }
}

TEST_F(MatchCommandTest, CsvStdinAndFhir) {
  // stdin, CSV: a header, one row per ranked study, one for each bad record.
  ProcessResult r = RunProcess(
      {"/bin/sh", "-c",
       "\"$0\" match --rules=\"$1\" --store=\"$2\" --patients=- --csv < "
       "\"$3\"",
       TrialmatchBinary(), (SourceDir() / "rules").string(), StorePath(),
       PatientsPath()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> rows = NonEmptyLines(r.out);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0],
            "position,patient_id,rank,nct_id,verdict,score,satisfied,"
            "violated,unknown,nearest_site_km,overall_status,title,error");
  std::set<std::string> error_positions;
  int results = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    const std::string position = rows[i].substr(0, rows[i].find(','));
    if (rows[i].find("INVALID_ARGUMENT") != std::string::npos) {
      error_positions.insert(position);
    } else {
      EXPECT_THAT(rows[i],
                  ::testing::MatchesRegex("[0-9]+,[^,]*,[0-9]+,NCT[0-9]{8},"
                                          "(ELIGIBLE|POSSIBLE),.*"));
      ++results;
    }
  }
  EXPECT_EQ(error_positions, (std::set<std::string>{"4", "9"}));
  EXPECT_GT(results, 0);

  // A directory holding one FHIR bundle, --format=fhir.
  TempDir dir;
  std::filesystem::create_directories(dir.File("in"));
  std::filesystem::copy_file(
      TestDataDir() / "patients" / "fhir_bundle_breast_cancer.json",
      dir.File("in") / "jane.json");
  ProcessResult fhir =
      Match({"--store=" + StorePath(), "--patients=" + dir.File("in").string(),
             "--format=fhir", "--reference_date=2025-06-15"});
  ASSERT_EQ(fhir.exit_code, 0) << fhir.err;
  std::map<int64_t, nlohmann::json> by = ByPosition(fhir.out);
  ASSERT_EQ(by.size(), 1u);
  EXPECT_EQ(by[1]["where"], "file jane.json");
  EXPECT_FALSE(by[1]["match"]["results"].empty());
}

TEST_F(MatchCommandTest, UsageAndRuntimeErrors) {
  // Which shard?
  ProcessResult r = Match(
      {"--store=" + StorePath(), "--patients=" + PatientsPath(), "--shards=2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("JOB_COMPLETION_INDEX"));
  r = Match({"--patients=" + PatientsPath(), "--store=" + StorePath(),
             "--server=127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 2);
  r = Match({"--store=" + StorePath()});
  EXPECT_EQ(r.exit_code, 2);
  r = Match(
      {"--store=" + StorePath(), "--patients=" + PatientsPath(), "--limit=-1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("top_k"));
  // A store that does not exist is not created.
  TempDir dir;
  r = Match({"--store=" + dir.File("none.db").string(),
             "--patients=" + PatientsPath()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot open the store"));
  EXPECT_FALSE(std::filesystem::exists(dir.File("none.db")));
  r = Match({"--store=" + StorePath(), "--patients=/nonexistent.jsonl"});
  EXPECT_EQ(r.exit_code, 1);
  // No server there.
  r = Match({"--server=127.0.0.1:1", "--patients=" + PatientsPath(),
             "--connect_timeout=1s"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot connect"));
}

}  // namespace
}  // namespace trialmatch::cli
