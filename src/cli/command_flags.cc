#include "cli/command_flags.h"

#include <iostream>

#include "cli/cli.h"
#include "common/logging.h"

namespace trialmatch::cli {

std::optional<int> ParseFlagsOrExit(FlagSet& flags,
                                    const std::vector<std::string>& args,
                                    std::vector<std::string>* positional) {
  absl::StatusOr<std::vector<std::string>> rest = flags.Parse(args);
  if (!rest.ok()) {
    if (rest.status().code() == absl::StatusCode::kCancelled) return kExitOk;
    std::cerr << rest.status().message() << "\n";
    return kExitUsage;
  }
  *positional = *std::move(rest);
  return std::nullopt;
}

bool ApplyLogLevelFlag(std::string_view command, const std::string& level) {
  common::LogLevel parsed;
  if (!common::ParseLogLevel(level, &parsed)) {
    std::cerr << command << ": bad --log_level '" << level
              << "' (debug, info, warning, error)\n";
    return false;
  }
  common::SetMinLogLevel(parsed);
  return true;
}

}  // namespace trialmatch::cli
