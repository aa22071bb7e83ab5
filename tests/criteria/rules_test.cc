// Every example carried by the files in rules/ runs as its own test case
// (named "<rule id>_<n>"); a failure prints the rule id and file:line.
#include <algorithm>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "criteria/compiler.h"
#include "criteria/rule_examples.h"
#include "criteria/rule_set.h"
#include "gtest/gtest.h"
#include "testing/test_paths.h"

namespace trialmatch::criteria {
namespace {

// Loaded once for the whole test binary (the rules are immutable); not
// through ProjectRules() because parameters are generated before tests run.
const std::shared_ptr<const RuleSet>& Rules() {
  static const auto* const kRules = [] {
    auto loaded = RuleSet::LoadDirectory(testing::SourceDir() / "rules");
    return new std::shared_ptr<const RuleSet>(
        loaded.ok() ? *std::move(loaded) : nullptr);
  }();
  return *kRules;
}

struct Case {
  int index = 0;
  ExampleDef example;
};

// Readable test parameter output (instead of a byte dump).
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.example.owner_id << " at " << c.example.location.ToString();
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  if (Rules() == nullptr) return cases;
  for (const ExampleDef& ex : Rules()->examples()) {
    cases.push_back({static_cast<int>(cases.size()), ex});
  }
  return cases;
}

TEST(RulesDirectory, LoadsAndCarriesExamples) {
  auto loaded = RuleSet::LoadDirectory(testing::SourceDir() / "rules");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  // Every rule family and every condition has at least one example.
  std::vector<std::string> owners;
  for (const ExampleDef& ex : (*loaded)->examples()) owners.push_back(ex.owner_id);
  auto has = [&](const std::string& id) {
    return std::find(owners.begin(), owners.end(), id) != owners.end();
  };
  for (const RuleFamily& f : (*loaded)->families()) {
    EXPECT_TRUE(has(f.id)) << "no example for " << f.id;
  }
  EXPECT_GT((*loaded)->examples().size(), 200u);
}

class RuleExampleTest : public ::testing::TestWithParam<Case> {};

TEST_P(RuleExampleTest, Holds) {
  ASSERT_NE(Rules(), nullptr);
  static const Compiler compiler(Rules());
  const absl::Status st = CheckExample(GetParam().example, compiler);
  EXPECT_TRUE(st.ok()) << st.message();
}

INSTANTIATE_TEST_SUITE_P(
    Rules, RuleExampleTest, ::testing::ValuesIn(AllCases()),
    [](const ::testing::TestParamInfo<Case>& param_info) {
      return ExampleTestName(param_info.param.example, param_info.param.index);
    });

}  // namespace
}  // namespace trialmatch::criteria
