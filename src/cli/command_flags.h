// Steps every subcommand repeats around its FlagSet: parse (with --help and
// usage errors turned into exit codes) and apply --log_level.
// Not thread-safe (process-wide settings; called from main's thread).
#ifndef TRIALMATCH_CLI_COMMAND_FLAGS_H_
#define TRIALMATCH_CLI_COMMAND_FLAGS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/flags.h"

namespace trialmatch::cli {

// Parses `args` with `flags`. Returns the exit code the subcommand must
// return now — kExitOk after --help, kExitUsage after a flag error (printed
// to stderr) — or nullopt with the positional arguments in *positional.
std::optional<int> ParseFlagsOrExit(FlagSet& flags,
                                    const std::vector<std::string>& args,
                                    std::vector<std::string>* positional);

// Applies a --log_level value ("debug", "info", "warning", "error").
// Returns false after printing "<command>: bad --log_level ..." to stderr.
bool ApplyLogLevelFlag(std::string_view command, const std::string& level);

}  // namespace trialmatch::cli

#endif  // TRIALMATCH_CLI_COMMAND_FLAGS_H_
