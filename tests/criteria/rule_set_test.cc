#include "criteria/rule_set.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "criteria/compiler.h"
#include "criteria_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::criteria {
namespace {

using ::testing::HasSubstr;
using ::trialmatch::testing::StatusIs;

std::vector<RuleSource> ProjectSources() {
  std::vector<RuleSource> out;
  for (const auto& e : std::filesystem::directory_iterator(
           ::trialmatch::testing::SourceDir() / "rules")) {
    if (e.path().extension() == ".textproto") {
      out.push_back({"rules/" + e.path().filename().string(),
                     ::trialmatch::testing::ReadFile(e.path())});
    }
  }
  return out;
}

// The project's rules plus one more file.
absl::StatusOr<std::shared_ptr<const RuleSet>> LoadWith(
    const std::string& extra, const RuleSetOptions& options = {}) {
  std::vector<RuleSource> sources = ProjectSources();
  sources.push_back({"rules/zz_test.textproto", extra});
  return RuleSet::LoadSources(sources, options);
}

TEST(RuleSetTest, ProjectRulesLoad) {
  auto rs = RuleSet::LoadDirectory(::trialmatch::testing::SourceDir() / "rules");
  ASSERT_TRUE(rs.ok()) << rs.status();
  EXPECT_FALSE((*rs)->rules().empty());
  EXPECT_FALSE((*rs)->concepts().empty());
  EXPECT_FALSE((*rs)->quantities().empty());
  EXPECT_EQ((*rs)->version().substr(0, (*rs)->declared_version().size() + 1),
            (*rs)->declared_version() + "+");
  EXPECT_EQ((*rs)->version().size(), (*rs)->declared_version().size() + 17);
}

TEST(RuleSetTest, VersionHashFollowsContent) {
  auto a = RuleSet::LoadSources(ProjectSources());
  auto b = RuleSet::LoadSources(ProjectSources());
  auto c = LoadWith("# a comment changes the bytes\n");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ((*a)->version(), (*b)->version());
  EXPECT_NE((*a)->version(), (*c)->version());
  EXPECT_EQ((*a)->declared_version(), (*c)->declared_version());
}

TEST(RuleSetTest, SyntaxErrorNamesFileAndLine) {
  EXPECT_THAT(LoadWith("rule {\n  id: \"x.y\"\n  bogus_field: 1\n}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("rules/zz_test.textproto:3:")));
}

TEST(RuleSetTest, BadPatternNamesRuleFileLineAndFragment) {
  auto st = LoadWith(
      "\n\nrule {\n  id: \"test.bad\"\n  kind: KIND_PREGNANCY\n"
      "  pattern: 'pregnan(t'\n}\n");
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument,
                           HasSubstr("rules/zz_test.textproto:3: test.bad")));
  EXPECT_THAT(st.status().message(), HasSubstr("missing )"));
}

TEST(RuleSetTest, RejectsRepetitionBlowUps) {
  // RE2 itself rejects a repeat count over 1000 ...
  EXPECT_THAT(LoadWith("rule { id: \"test.rep\" kind: KIND_PREGNANCY "
                       "pattern: '(a{1000}){1000}' }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("{1000}")));
  // ... and nested repeats whose product exceeds it ...
  EXPECT_THAT(LoadWith("rule { id: \"test.rep2\" kind: KIND_PREGNANCY "
                       "pattern: '((a{100}){10}){10}' }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("invalid repetition size")));
  // ... and a program larger than max_program_size is refused by the loader.
  std::string big;
  for (int i = 0; i < 40; ++i) big += "[a-z]{1000}";
  EXPECT_THAT(LoadWith("rule { id: \"test.rep3\" kind: KIND_PREGNANCY "
                       "pattern: '" + big + "' }"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("pattern too large: program size")));
}

TEST(RuleSetTest, RejectsMacroBombs) {
  std::string file = "macro { name: \"B0\" pattern: 'ab' }\n";
  for (int i = 1; i < 12; ++i) {
    file += "macro { name: \"B" + std::to_string(i) + "\" pattern: '{{B" +
            std::to_string(i - 1) + "}}{{B" + std::to_string(i - 1) + "}}' }\n";
  }
  file += "rule { id: \"test.bomb\" kind: KIND_PREGNANCY pattern: '{{B11}}' }\n";
  RuleSetOptions options;
  options.max_expanded_pattern_bytes = 8 << 10;
  EXPECT_THAT(LoadWith(file, options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("too long after macro expansion")));
}

TEST(RuleSetTest, RejectsMacroCycles) {
  EXPECT_THAT(LoadWith("macro { name: \"CYC_A\" pattern: '{{CYC_B}}' }\n"
                       "macro { name: \"CYC_B\" pattern: '{{CYC_A}}' }\n"
                       "rule { id: \"test.cycle\" kind: KIND_PREGNANCY pattern: '{{CYC_A}}' }"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cycle")));
}

TEST(RuleSetTest, SchemaErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"rule { id: \"test.x\" kind: KIND_PREGNANCY pattern: '{{NOPE}}' }",
       "unknown macro {{NOPE}}"},
      {"rule { id: \"test.x\" kind: KIND_LAB quantity: \"unobtainium\" "
       "pattern: '(?P<value>\\\\d+)' default_op: OP_GE }",
       "unknown quantity"},
      {"rule { id: \"test.x\" kind: KIND_LAB quantity: \"hemoglobin\" "
       "pattern: 'hb (?P<valeu>\\\\d+)' }",
       "unknown capture group name 'valeu'"},
      {"rule { id: \"test.x\" kind: KIND_LAB quantity: \"hemoglobin\" "
       "pattern: 'hb (?P<value>\\\\d+)' }",
       "needs default_op"},
      {"rule { id: \"pregnancy.pregnant\" kind: KIND_PREGNANCY pattern: 'x' }",
       "duplicate id"},
      {"rule { id: \"test.x\" kind: KIND_CONDITION pattern: 'x' }",
       "conditions live in"},
      {"condition { id: \"condition.t\" name: \"t\" synonym: 'x?' }",
       "matches empty text"},
      {"condition { id: \"condition.t\" name: \"t\" synonym: 'tt' mesh_id: \"X12\" }",
       "bad MeSH id"},
      {"version: \"again\"", "version declared again"},
      {"phrase { id: \"test.p\" role: ROLE_NEGATION pattern: 'a*' }",
       "matches empty text"},
      {"quantity { name: \"q\" kind: KIND_LAB unit: \"u\" min: 1 max: 0 "
       "units { name: \"u\" pattern: 'u' factor: 1 } }",
       "needs min < max"},
  };
  for (const auto& [file, message] : cases) {
    EXPECT_THAT(LoadWith(file),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << file;
  }
}

TEST(RuleSetTest, DirectoryErrors) {
  ::trialmatch::testing::TempDir dir;
  EXPECT_THAT(RuleSet::LoadDirectory(dir.path() / "missing"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(RuleSet::LoadDirectory(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no *.textproto")));
  std::ofstream(dir.path() / "only.textproto") << "rule { id: \"a.b\" }\n";
  EXPECT_THAT(RuleSet::LoadDirectory(dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RuleSetTest, PrefilterFindsCandidateFamilies) {
  const RuleSet& rules = *testing::ProjectRules();
  RuleSet::ScanResult scan;
  rules.Scan("Platelets >= 100,000/mm3", &scan);
  std::vector<std::string> ids;
  for (int f : scan.families) ids.push_back(rules.families()[f].id);
  EXPECT_THAT(ids, ::testing::Contains("lab.platelets"));
  EXPECT_THAT(ids, ::testing::Not(::testing::Contains("lab.hemoglobin")));
  EXPECT_FALSE(scan.degraded);
  rules.Scan("Signed informed consent", &scan);
  EXPECT_TRUE(scan.families.empty());
  EXPECT_TRUE(scan.administrative);
}

TEST(RuleSetTest, TinySetBudgetDegradesToAllFamiliesNotToMisses) {
  // With a DFA budget too small for the set, matching reports every family
  // (nothing missed) and flags it, or the set refuses to compile.
  RuleSetOptions options;
  options.set_max_mem = 1 << 12;
  auto rs = RuleSet::LoadSources(ProjectSources(), options);
  if (!rs.ok()) {
    EXPECT_THAT(rs, StatusIs(absl::StatusCode::kInvalidArgument,
                             HasSubstr("memory budget")));
    return;
  }
  RuleSet::ScanResult scan;
  (*rs)->Scan(std::string(2000, 'x') + " platelets >= 100 x 10^9/L", &scan);
  if (scan.degraded) {
    EXPECT_EQ(scan.families.size(), (*rs)->families().size());
  } else {
    EXPECT_FALSE(scan.families.empty());
  }
}

// A stand-alone rule runs only where its family's trigger matches, so a
// trigger must match wherever the rule's pattern does: a tighter trigger
// that misses a text the pattern reads would silently lose that reading.
// Checked on every example text of the rule files and on texts near the
// edges of the tightened age, pregnancy-test and breastfeeding triggers.
TEST(RuleSetTest, TriggersMatchWhereverTheirRulesDo) {
  const RuleSet& rules = *testing::ProjectRules();
  std::vector<std::string> texts;
  for (const ExampleDef& ex : rules.examples()) texts.push_back(ex.text);
  for (const char* t : {
           "Aged over 65", "aged>=18 years", "AGE: 18 and over.", "Ages:18+",
           "Age (years) >= 18", "Age at the time of screening: 18 to 75",
           "Subjects over the age of 65", "above the age 21",
           ">=18 years of age", "> 18 years-old, no upper limit", "Over 18 years, any sex",
           "At least 18 years (inclusive).", "Minimum 18 years at consent",
           "Positive pregnancy test at screening", "positive serum beta-hCG",
           "Pregnancy test result is positive", "pregnancy test (serum) positive",
           "Breast-feeding women", "breast- feeding", "breast feeding", "breastfeeding",
           "Lactating or nursing mothers", "lactation",
       }) {
    texts.emplace_back(t);
  }
  int checked = 0;
  RuleSet::ScanResult scan;
  for (const std::string& text : texts) {
    rules.Scan(text, &scan);
    ASSERT_FALSE(scan.degraded);
    for (const RuleFamily& fam : rules.families()) {
      if (fam.name_re != nullptr) continue;  // measurements: the name is the trigger's
      const int f = static_cast<int>(&fam - rules.families().data());
      for (int r : fam.rules) {
        const MatchRule& rule = rules.rules()[r];
        if (!RE2::PartialMatch(text, *rule.re)) continue;
        ++checked;
        EXPECT_TRUE(std::binary_search(scan.families.begin(), scan.families.end(), f))
            << rule.id << " matches but its trigger does not: " << text;
      }
    }
  }
  EXPECT_GE(checked, 150);
}

TEST(RuleSetTest, ComparatorsClassify) {
  const RuleSet& rules = *testing::ProjectRules();
  EXPECT_EQ(rules.ClassifyComparator(">="), Comparison::kGe);
  EXPECT_EQ(rules.ClassifyComparator("no more than"), Comparison::kLe);
  EXPECT_EQ(rules.ClassifyComparator("greater than or equal to"), Comparison::kGe);
  EXPECT_EQ(rules.ClassifyComparator("<"), Comparison::kLt);
  EXPECT_EQ(rules.ClassifyComparator("above"), Comparison::kGt);
  EXPECT_FALSE(rules.ClassifyComparator("at").has_value());
}

TEST(RuleSetHolderTest, FailedReloadKeepsThePreviousSet) {
  ::trialmatch::testing::TempDir dir;
  for (const RuleSource& src : ProjectSources()) {
    std::ofstream(dir.path() / std::filesystem::path(src.name).filename()) << src.content;
  }
  auto first = RuleSet::LoadDirectory(dir.path());
  ASSERT_TRUE(first.ok()) << first.status();
  RuleSetHolder holder(*first);
  const std::string v1 = holder.Get()->version();

  std::ofstream(dir.path() / "zz_bad.textproto") << "rule { id: \"bad.x\" kind: KIND_PREGNANCY pattern: '(' }\n";
  EXPECT_THAT(holder.ReloadFromDirectory(dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad.x")));
  EXPECT_EQ(holder.Get()->version(), v1);

  std::filesystem::remove(dir.path() / "zz_bad.textproto");
  std::ofstream(dir.path() / "zz_good.textproto") << "# edited\n";
  EXPECT_TRUE(holder.ReloadFromDirectory(dir.path()).ok());
  EXPECT_NE(holder.Get()->version(), v1);
}

// MatchRule::after_name must give exactly the rule's own submatches wherever
// it is used: at each occurrence of the measurement's name where the rule
// matches and the rest matches after the name's own match.
TEST(RuleSetTest, AfterNameReadsTheRulesOwnSubmatches) {
  auto rs = RuleSet::LoadSources(ProjectSources());
  ASSERT_TRUE(rs.ok()) << rs.status();
  const RuleSet& set = **rs;
  std::vector<std::string> texts;
  for (const ExampleDef& ex : set.examples()) texts.push_back(ex.text);
  for (const char* t : {
           "Hb >= 9 g/dL; ANC >= 1,500/mm3 and platelets >= 100 x 10^9/L",
           "AST (SGOT) and ALT (SGPT) <= 2.5 x ULN (<= 5 x ULN with liver metastases)",
           "serum creatinine level of 1.5 mg/dL or less, bilirubin within normal limits",
           "ECOG performance status 0-1; Karnofsky 70-100%; BMI 18.5 - 35 kg/m2",
           "hemoglobin level greater than or equal to (>=) 10 g/dl",
       }) {
    texts.emplace_back(t);
  }
  int rules_with_rest = 0;
  int compared = 0;
  for (const RuleFamily& fam : set.families()) {
    if (fam.name_re == nullptr) continue;
    for (int r : fam.rules) {
      const MatchRule& rule = set.rules()[r];
      if (rule.after_name == nullptr) continue;
      ++rules_with_rest;
      ASSERT_TRUE(rule.anchored_at_name) << rule.id;
      const int n = rule.re->NumberOfCapturingGroups() + 1;
      ASSERT_EQ(rule.after_name->NumberOfCapturingGroups() + 1, n) << rule.id;
      for (const std::string& text : texts) {
        re2::StringPiece name;
        size_t pos = 0;
        while (pos <= text.size() &&
               fam.name_re->Match(text, pos, text.size(), RE2::UNANCHORED, &name, 1)) {
          const size_t b = static_cast<size_t>(name.data() - text.data());
          const size_t e = b + name.size();
          pos = e > b ? e : b + 1;
          re2::StringPiece whole;
          if (e == b || !rule.re->Match(text, b, text.size(), RE2::ANCHOR_START, &whole, 1)) {
            continue;
          }
          const size_t end = b + whole.size();
          std::vector<re2::StringPiece> full(n);
          std::vector<re2::StringPiece> rest(n);
          ASSERT_TRUE(rule.re->Match(text, b, end, RE2::ANCHOR_BOTH, full.data(), n));
          if (e > end || !rule.after_name->Match(text, e, end, RE2::ANCHOR_BOTH,
                                                 rest.data(), n)) {
            continue;
          }
          ++compared;
          for (int g = 1; g < n; ++g) {
            EXPECT_EQ(full[g].data(), rest[g].data()) << rule.id << " group " << g << ": " << text;
            EXPECT_EQ(full[g].size(), rest[g].size()) << rule.id << " group " << g << ": " << text;
          }
        }
      }
    }
  }
  EXPECT_GE(rules_with_rest, 40);
  EXPECT_GE(compared, 100);
}

// The rest after the name is only used when the rule is the name followed by
// it: not after an alternation at the top level, a repetition of the name,
// or a name with its own capturing group.
TEST(RuleSetTest, AfterNameOnlyForANameFollowedByTheRest) {
  auto rs = LoadWith(R"pb(
    template { name: "ZZ_ALT"
               pattern: '{{NAME}}\\s*(?P<cmp>>=)\\s*(?P<value>\\d+)|zz\\s*(?P<value_2>\\d+)' }
    template { name: "ZZ_REPEAT"
               pattern: '{{NAME}}+\\s*(?P<cmp>>=)\\s*(?P<value>\\d+)' }
    measurement { id: "lab.zz_plain"  quantity: "hemoglobin"  name: '\\bzzname\\b'
                  form: "ZZ_ALT"  form: "ZZ_REPEAT"  form: "BOUND" }
    measurement { id: "lab.zz_group"  quantity: "hemoglobin"  name: '\\b(zz)group\\b'
                  form: "BOUND" }
  )pb");
  ASSERT_TRUE(rs.ok()) << rs.status();
  auto rule = [&](std::string_view id) -> const MatchRule* {
    for (const MatchRule& r : (*rs)->rules()) {
      if (r.id == id) return &r;
    }
    return nullptr;
  };
  for (const char* id : {"lab.zz_plain.zz_alt", "lab.zz_plain.zz_repeat",
                         "lab.zz_plain.bound", "lab.zz_group.bound"}) {
    ASSERT_NE(rule(id), nullptr) << id;
    EXPECT_TRUE(rule(id)->anchored_at_name) << id;
  }
  EXPECT_EQ(rule("lab.zz_plain.zz_alt")->after_name, nullptr);
  EXPECT_EQ(rule("lab.zz_plain.zz_repeat")->after_name, nullptr);
  EXPECT_NE(rule("lab.zz_plain.bound")->after_name, nullptr);
  EXPECT_EQ(rule("lab.zz_group.bound")->after_name, nullptr);
}

TEST(RuleSetHolderTest, ConcurrentReadersDuringSwaps) {
  auto rs = RuleSet::LoadSources(ProjectSources());
  ASSERT_TRUE(rs.ok());
  RuleSetHolder holder(*rs);
  std::atomic<bool> stop{false};
  std::atomic<int> compiled{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        Compiler compiler(holder.Get());
        const CompiledStudy cs = compiler.CompileText("Age >= 18 years\n* Hemoglobin >= 9 g/dL");
        if (cs.predicates.size() >= 2) compiled.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 20; ++i) holder.Set(*rs);
  while (compiled.load() < 30) std::this_thread::yield();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GE(compiled.load(), 30);
}

}  // namespace
}  // namespace trialmatch::criteria
