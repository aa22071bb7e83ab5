#include "cli/rules_location.h"

#include <cstdlib>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace trialmatch::cli {
namespace {

bool IsDir(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_directory(p, ec);
}

}  // namespace

absl::StatusOr<RulesLocation> FindRulesDir(const std::string& flag_value) {
  if (!flag_value.empty()) return RulesLocation{flag_value, "--rules"};
  if (const char* env = std::getenv(kRulesDirEnv);
      env != nullptr && *env != '\0') {
    return RulesLocation{env, absl::StrCat("$", kRulesDirEnv)};
  }
  std::vector<std::string> tried = {
      absl::StrCat("--rules (not given)"),
      absl::StrCat("$", kRulesDirEnv, " (not set)")};
#ifdef TRIALMATCH_SOURCE_RULES_DIR
  if (IsDir(TRIALMATCH_SOURCE_RULES_DIR)) {
    return RulesLocation{TRIALMATCH_SOURCE_RULES_DIR, "the source tree"};
  }
  tried.push_back(TRIALMATCH_SOURCE_RULES_DIR);
#endif
  if (IsDir(kInstalledRulesDir)) {
    return RulesLocation{kInstalledRulesDir, "the installed rules"};
  }
  tried.push_back(kInstalledRulesDir);
  return absl::NotFoundError(
      absl::StrCat("no eligibility rules directory found (tried ",
                   absl::StrJoin(tried, ", "), "); pass --rules=DIR"));
}

absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> LoadRules(
    const RulesLocation& location) {
  absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> rules =
      criteria::RuleSet::LoadDirectory(location.dir);
  if (!rules.ok()) {
    return absl::Status(
        rules.status().code(),
        absl::StrCat("cannot load the eligibility rules from ",
                     location.dir.string(), " (", location.origin,
                     "): ", rules.status().message()));
  }
  return rules;
}

absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> FindAndLoadRules(
    const std::string& flag_value, RulesLocation* location) {
  TRIALMATCH_ASSIGN_OR_RETURN(RulesLocation found, FindRulesDir(flag_value));
  if (location != nullptr) *location = found;
  return LoadRules(found);
}

}  // namespace trialmatch::cli
