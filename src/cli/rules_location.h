// Where the `trialmatch` subcommands find the eligibility rules
// (rules/*.textproto), and loading them with errors that say where they were
// looked for.
//
// Search order (the first that applies wins):
//   1. the --rules flag, when given;
//   2. $TRIALMATCH_RULES_DIR, when set and not empty;
//   3. the source tree's rules/ (compiled in for development builds, when the
//      directory exists; CMake option TRIALMATCH_SOURCE_RULES_FALLBACK);
//   4. /usr/share/trialmatch/rules (the Docker image and packages), when it
//      exists.
// A directory named by 1 or 2 is used as given: when it is missing the
// error says so rather than silently using another.
//
// Thread-safe (reads the environment and the filesystem only).
#ifndef TRIALMATCH_CLI_RULES_LOCATION_H_
#define TRIALMATCH_CLI_RULES_LOCATION_H_

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "criteria/rule_set.h"

namespace trialmatch::cli {

inline constexpr char kRulesDirEnv[] = "TRIALMATCH_RULES_DIR";
inline constexpr char kInstalledRulesDir[] = "/usr/share/trialmatch/rules";

struct RulesLocation {
  std::filesystem::path dir;
  // How it was chosen: "--rules", "$TRIALMATCH_RULES_DIR", "the source tree",
  // "the installed rules".
  std::string origin;
};

// Applies the search order. kNotFound when no candidate exists (the message
// lists the places tried).
absl::StatusOr<RulesLocation> FindRulesDir(const std::string& flag_value);

// Loads the rules at `location`. Errors as criteria::RuleSet::LoadDirectory
// (kNotFound, kUnavailable, kInvalidArgument with file:line and rule id),
// the message prefixed with the directory and its origin.
absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> LoadRules(
    const RulesLocation& location);

// FindRulesDir + LoadRules; `*location` (may be null) receives the directory.
absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> FindAndLoadRules(
    const std::string& flag_value, RulesLocation* location = nullptr);

}  // namespace trialmatch::cli

#endif  // TRIALMATCH_CLI_RULES_LOCATION_H_
