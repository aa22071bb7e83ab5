// `trialmatch criteria`, the compile step of `trialmatch import`, and the
// rules errors of `criteria` / `import` / `serve`, through the real binary on
// recorded studies. Output is checked for structure (markers, headings, JSON
// that parses and equals what the compiler makes in-process), not against
// golden text.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "criteria/criteria_test_util.h"
#include "criteria/json.h"
#include "criteria/stats.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::trialmatch::criteria::testing::LoadStudy;
using ::trialmatch::criteria::testing::ProjectCompiler;
using ::trialmatch::testing::NonEmptyLines;
using ::trialmatch::testing::ProcessResult;
using ::trialmatch::testing::ReadFile;
using ::trialmatch::testing::RecordedIds;
using ::trialmatch::testing::RunProcess;
using ::trialmatch::testing::SourceDir;
using ::trialmatch::testing::StudiesDir;
using ::trialmatch::testing::TempDir;
using ::trialmatch::testing::TrialmatchBinary;

constexpr char kStudy[] = "NCT04280705";  // markdown escapes, nesting
// Multi-byte UTF-8 ("≥") before its lab bounds: spans count bytes.
constexpr char kUtf8Study[] = "NCT01785420";

std::string StudyPath(const std::string& id) {
  return (StudiesDir() / (id + ".json")).string();
}

// The [[...]] regions of rendered output.
std::vector<std::string> Marked(const std::string& out) {
  std::vector<std::string> marks;
  for (std::size_t at = out.find("[["); at != std::string::npos;
       at = out.find("[[", at)) {
    const std::size_t end = out.find("]]", at + 2);
    if (end == std::string::npos) break;
    marks.push_back(out.substr(at + 2, end - at - 2));
    at = end + 2;
  }
  return marks;
}

// As the renderer shows text: on one line.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return text;
}

// The eligibilityCriteria of a recorded record, read with nlohmann/json (not
// through model::ParseStudy).
std::string RecordedCriteria(const std::string& id) {
  const nlohmann::json j =
      nlohmann::json::parse(ReadFile(StudyPath(id)), nullptr, false);
  if (j.is_discarded()) return "";
  const nlohmann::json::json_pointer at(
      "/protocolSection/eligibilityModule/eligibilityCriteria");
  return j.contains(at) ? j[at].get<std::string>() : "";
}

// The criterion lines of rendered output ("[12] (any of) text" at any
// indent), with the [[...]] marks removed: the text as written.
std::vector<std::string> CriterionTexts(const std::string& out) {
  std::vector<std::string> texts;
  for (const std::string& line : NonEmptyLines(out)) {
    std::size_t at = line.find_first_not_of(' ');
    if (at == std::string::npos || line[at] != '[' || at + 1 >= line.size() ||
        !std::isdigit(static_cast<unsigned char>(line[at + 1]))) {
      continue;
    }
    at = line.find("] ", at);
    if (at == std::string::npos) continue;
    std::string text = line.substr(at + 2);
    if (text.rfind("(any of) ", 0) == 0) text.erase(0, 9);
    for (const char* mark : {"[[", "]]"}) {
      for (std::size_t m = text.find(mark); m != std::string::npos;
           m = text.find(mark, m)) {
        text.erase(m, 2);
      }
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    texts.push_back(text);
  }
  return texts;
}

// Rendered output of `id`: every criterion shown is a piece of the recorded
// eligibility text (as written, on one line), and so is every marked
// evidence.
void ExpectShowsTheRecordedText(const std::string& out, const std::string& id,
                                std::size_t criteria) {
  const std::string recorded = OneLine(RecordedCriteria(id));
  ASSERT_FALSE(recorded.empty()) << id;
  const std::vector<std::string> texts = CriterionTexts(out);
  EXPECT_THAT(texts, SizeIs(criteria)) << out;
  for (const std::string& text : texts) {
    EXPECT_NE(recorded.find(text), std::string::npos)
        << id << ": not in the recorded text: " << text;
  }
  const std::vector<std::string> marks = Marked(out);
  EXPECT_FALSE(marks.empty()) << out;
  for (const std::string& mark : marks) {
    EXPECT_NE(recorded.find(mark), std::string::npos)
        << id << ": marked text not in the recorded text: " << mark;
  }
}

// A copy of rules/ with a rule that does not compile.
std::filesystem::path BrokenRules(const TempDir& dir) {
  const std::filesystem::path rules = dir.File("broken_rules");
  std::filesystem::create_directories(rules);
  for (const auto& e :
       std::filesystem::directory_iterator(SourceDir() / "rules")) {
    if (e.path().extension() == ".textproto") {
      std::filesystem::copy_file(e.path(), rules / e.path().filename());
    }
  }
  std::ofstream(rules / "labs.textproto", std::ios::app)
      << "\nrule { id: \"lab.broken\" kind: KIND_LAB quantity: \"hemoglobin\" "
         "pattern: 'hemoglobin (' }\n";
  return rules;
}

class CriteriaCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    ASSERT_TRUE(std::filesystem::exists(TrialmatchBinary()))
        << TrialmatchBinary();
    ASSERT_NE(criteria::testing::ProjectRules(), nullptr);
  }

  // `trialmatch <args>` with the default rules search (source tree).
  ProcessResult Run(std::vector<std::string> args,
                    std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), TrialmatchBinary());
    env.emplace("TRIALMATCH_RULES_DIR", "");  // unset unless given
    env.emplace("NO_COLOR", "");
    return RunProcess(args, env);
  }

  std::string store() const { return dir_.File("studies.db").string(); }

  // Imports the first `n` recorded studies into store().
  void Import(int n) {
    const std::filesystem::path input = dir_.File("input");
    std::filesystem::create_directories(input);
    for (const std::string& id : RecordedIds(n)) {
      std::filesystem::copy_file(StudyPath(id), input / (id + ".json"));
    }
    ProcessResult r = Run({"import", "--store=" + store(), "--statuses=ALL",
                           "--log_level=error", input.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("compiled criteria of " + std::to_string(n) +
                                 " studies (" + std::to_string(n) + " new)"));
  }

  TempDir dir_;
};

TEST_F(CriteriaCommandTest, FileShowsEachCriterionWithItsEvidenceMarked) {
  ProcessResult r = Run({"criteria", "--file", StudyPath(kStudy)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const criteria::CompiledStudy cs =
      ProjectCompiler().Compile(LoadStudy(kStudy));
  EXPECT_THAT(r.out, HasSubstr(std::string(kStudy) + "  compiler " +
                               std::string(criteria::kCompilerVersion) +
                               ", rules " + cs.rules_version));
  EXPECT_THAT(r.out, HasSubstr("\nINCLUSION\n"));
  EXPECT_THAT(r.out, HasSubstr("\nEXCLUSION\n"));
  EXPECT_THAT(r.out, HasSubstr("STRUCTURED FIELDS"));
  EXPECT_THAT(r.out, Not(HasSubstr("\033[")));  // not a terminal: plain
  // Every criterion is listed by index, and the evidence of each text
  // predicate is marked with [[...]].
  for (std::size_t i = 0; i < cs.criteria.size(); ++i) {
    EXPECT_THAT(r.out, HasSubstr("[" + std::to_string(i) + "] "));
  }
  // (Overlapping evidence shares one mark.)
  const std::vector<std::string> marks = Marked(r.out);
  int marked = 0;
  for (const criteria::Predicate& p : cs.predicates) {
    if (p.kind == criteria::Kind::kOther ||
        p.evidence.source != criteria::EvidenceSource::kCriteriaText) {
      continue;
    }
    EXPECT_THAT(r.out, HasSubstr("[" + p.rule_id + "]"));
    const std::string evidence = OneLine(p.evidence.text);
    EXPECT_TRUE(std::any_of(marks.begin(), marks.end(),
                            [&](const std::string& m) {
                              return m.find(evidence) != std::string::npos;
                            }))
        << "evidence not marked: " << evidence;
    ++marked;
  }
  EXPECT_GT(marked, 0);
  ExpectShowsTheRecordedText(r.out, kStudy, cs.criteria.size());

  r = Run({"criteria", "--file", StudyPath(kUtf8Study)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectShowsTheRecordedText(
      r.out, kUtf8Study,
      ProjectCompiler().Compile(LoadStudy(kUtf8Study)).criteria.size());
  // The lab bounds written after "≥", as marked evidence.
  EXPECT_THAT(Marked(r.out), ::testing::Contains(
                                 ::testing::StartsWith("Platelet count ≥100")));

  // On request, ANSI instead of the markers, and rule ids can be left out.
  r = Run({"criteria", "--file", StudyPath(kStudy), "--color=always",
           "--norule_ids"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\033["));
  EXPECT_THAT(r.out, Not(HasSubstr("[[")));
  EXPECT_THAT(r.out, Not(HasSubstr("[structured.")));
}

TEST_F(CriteriaCommandTest, JsonIsOneCompiledStudyPerLine) {
  const std::vector<std::string> ids = RecordedIds(3);
  std::string array = "[";
  for (const std::string& id : ids) {
    if (array.size() > 1) array += ",";
    array += ReadFile(StudyPath(id));
  }
  const std::string file = dir_.File("three.json").string();
  std::ofstream(file) << array << "]";
  ProcessResult r = Run({"criteria", "--json", "--file", file, "--file",
                         StudyPath(kStudy), "--file", StudyPath(kUtf8Study)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = NonEmptyLines(r.out);
  ASSERT_THAT(lines, SizeIs(5));
  std::vector<std::string> expected_ids = ids;
  expected_ids.push_back(kStudy);
  expected_ids.push_back(kUtf8Study);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(expected_ids[i]);
    absl::StatusOr<criteria::CompiledStudy> cs = criteria::FromJson(lines[i]);
    ASSERT_TRUE(cs.ok()) << cs.status();
    EXPECT_EQ(cs->nct_id, expected_ids[i]);
    // The binary and the library agree.
    EXPECT_EQ(lines[i], criteria::ToJson(ProjectCompiler().Compile(
                            LoadStudy(expected_ids[i]))));
    // Each text evidence is its span's bytes of the recorded text, and lies
    // in its criterion's span.
    const nlohmann::json j = nlohmann::json::parse(lines[i]);
    const std::string text = RecordedCriteria(expected_ids[i]);
    int from_text = 0;
    for (const nlohmann::json& p : j["predicates"]) {
      const nlohmann::json& e = p["evidence"];
      if (e["source"] != "CRITERIA_TEXT") continue;
      ++from_text;
      const int64_t begin = e["span"][0];
      const int64_t end = e["span"][1];
      ASSERT_LE(0, begin);
      ASSERT_LT(begin, end);
      ASSERT_LE(end, static_cast<int64_t>(text.size()));
      EXPECT_EQ(text.substr(begin, end - begin), e.value("text", ""))
          << p["rule_id"];
      const nlohmann::json& c = j["criteria"][p["criterion"].get<int>()];
      EXPECT_LE(c["span"][0].get<int64_t>(), begin) << p["rule_id"];
      EXPECT_GE(c["span"][1].get<int64_t>(), end) << p["rule_id"];
    }
    EXPECT_GT(from_text, 0);
  }
}

TEST_F(CriteriaCommandTest, BareTextCompilesUnderTheGivenSection) {
  const std::string file = dir_.File("criteria.txt").string();
  std::ofstream(file) << "* Platelet count >= 100,000/mm3\n* Pregnant women\n";
  ProcessResult r =
      Run({"criteria", "--json", "--text", file, "--section=exclusion"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_THAT(NonEmptyLines(r.out), SizeIs(1));
  nlohmann::json j = nlohmann::json::parse(NonEmptyLines(r.out)[0]);
  bool platelets = false;
  bool pregnancy = false;
  for (const nlohmann::json& p : j["predicates"]) {
    if (p.value("quantity", "") == "platelets") {
      platelets = true;
      EXPECT_EQ(p["polarity"], "EXCLUSION");
      EXPECT_EQ(p["low"], 100.0);  // 100,000/mm3 = 100 x 10^9/L
      EXPECT_EQ(p["unit"], "10^9/L");
    }
    if (p["kind"] == "PREGNANCY") {
      pregnancy = true;
      EXPECT_EQ(p["polarity"], "EXCLUSION");
    }
  }
  EXPECT_TRUE(platelets);
  EXPECT_TRUE(pregnancy);
}

TEST_F(CriteriaCommandTest, StoreImportCompilesAndCriteriaReadsTheEntries) {
  Import(5);
  const std::string id = RecordedIds(5)[2];
  ProcessResult r = Run({"criteria", "--store=" + store(), id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(id + "  compiler "));
  EXPECT_THAT(r.out, HasSubstr("(stored entry)"));
  ExpectShowsTheRecordedText(
      r.out, id, ProjectCompiler().Compile(LoadStudy(id)).criteria.size());

  // A second import of the same files compiles nothing.
  r = Run({"import", "--store=" + store(), "--statuses=ALL",
           "--log_level=error", dir_.File("input").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("compiled criteria are up to date"));

  r = Run({"criteria", "--store=" + store(), "--stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("5 from stored entries, 0 compiled now"));
  r = Run({"criteria", "--store=" + store(), "--stats", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json stats = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(stats.is_discarded()) << r.out;
  EXPECT_EQ(stats["from_stored_entries"], 5);
  EXPECT_EQ(stats["compiled_now"], 0);
  criteria::CoverageStats expected;
  for (const std::string& each : RecordedIds(5)) {
    expected.Add(ProjectCompiler().Compile(LoadStudy(each)));
  }
  nlohmann::json expected_json = expected.ToJsonValue();
  for (const auto& [key, value] : expected_json.items()) {
    EXPECT_EQ(stats[key], value) << key;
  }

  r = Run({"criteria", "--store=" + store(), "--recompile"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("compiled criteria are up to date"));
  r = Run({"criteria", "--store=" + store(), "--recompile", "--force",
           "--threads=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("compiled criteria of 5 studies (5 forced)"));
}

TEST_F(CriteriaCommandTest, ErrorsAndExitCodes) {
  Import(2);
  ProcessResult r = Run({"criteria", "--store=" + store(), "NCT09999999"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NCT09999999: not in the store " + store()));
  EXPECT_EQ(r.out, "");
  // A missing study among stored ones: the others are printed, exit 1.
  const std::string stored = RecordedIds(2)[1];
  r = Run({"criteria", "--store=" + store(), "NCT09999999", stored});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NCT09999999: not in the store"));
  EXPECT_THAT(r.err, Not(HasSubstr(stored)));
  EXPECT_THAT(r.out, HasSubstr(stored + "  compiler "));
  r = Run({"criteria", "--store=" + store(), "NCT123"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("'NCT123' is not an NCT id"));
  r = Run({"criteria"});
  EXPECT_EQ(r.exit_code, 2);
  r = Run({"criteria", "--color=sometimes", "--file", StudyPath(kStudy)});
  EXPECT_EQ(r.exit_code, 2);
  r = Run({"criteria", "--store=" + dir_.File("none.db").string(), kStudy});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot open the store " +
                               dir_.File("none.db").string()));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("none.db")));
  r = Run({"criteria", "--file", dir_.File("missing.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("missing.json"));
}

TEST_F(CriteriaCommandTest, RulesErrorsSayWhereTheRulesWereLookedFor) {
  ProcessResult r = Run(
      {"criteria", "--rules=/nonexistent/rules", "--file", StudyPath(kStudy)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot load the eligibility rules from "
                               "/nonexistent/rules (--rules)"));

  const std::filesystem::path broken = BrokenRules(dir_);
  r = Run({"criteria", "--file", StudyPath(kStudy)},
          {{"TRIALMATCH_RULES_DIR", broken.string()}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot load the eligibility rules from " +
                               broken.string() + " ($TRIALMATCH_RULES_DIR)"));
  EXPECT_THAT(r.err, HasSubstr("labs.textproto:"));
  EXPECT_THAT(r.err, HasSubstr("lab.broken"));

  // import checks the rules before it touches the store.
  r = Run({"import", "--store=" + store(), "--rules=" + broken.string(),
           StudyPath(kStudy)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--nocompile_criteria"));
  EXPECT_FALSE(std::filesystem::exists(store()));
  r = Run({"import", "--store=" + store(), "--rules=" + broken.string(),
           "--nocompile_criteria", "--log_level=error", StudyPath(kStudy)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("compiled criteria")));
}

// Start-up errors are fatal: serve with rules that do not load exits 1 with
// the reason, before it listens or opens the store.
TEST_F(CriteriaCommandTest, ServeRefusesToStartOnARulesError) {
  const std::filesystem::path broken = BrokenRules(dir_);
  const std::string port_file = dir_.File("port").string();
  ProcessResult r = Run({"serve", "--rules=" + broken.string(), "--offline",
                         "--listen=127.0.0.1:0", "--port_file=" + port_file,
                         "--store=" + store()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot load the eligibility rules from " +
                               broken.string() + " (--rules)"));
  EXPECT_THAT(r.err, HasSubstr("labs.textproto:"));
  EXPECT_THAT(r.err, HasSubstr("refusing to start"));
  EXPECT_FALSE(std::filesystem::exists(port_file));
  EXPECT_FALSE(std::filesystem::exists(store()));
}

}  // namespace
}  // namespace trialmatch::cli
