// The `trialmatch` command: subcommand dispatch. main.cc only calls Main().
//
// Each subcommand is a function taking its arguments (after the subcommand
// name) and returning a process exit code; it parses its own flags with
// cli::FlagSet and prints errors to stderr. Subcommands are registered in
// cli.cc's table; each lives in its own file (serve.cc, sync_command.cc, ...).
// Exit codes: 0 success, 1 runtime failure, 2 usage error.
#ifndef TRIALMATCH_CLI_CLI_H_
#define TRIALMATCH_CLI_CLI_H_

#include <string>
#include <vector>

namespace trialmatch::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

using Subcommand = int (*)(const std::vector<std::string>& args);

struct SubcommandInfo {
  const char* name;
  const char* summary;
  Subcommand run;
};

// The registered subcommands, in help order.
const std::vector<SubcommandInfo>& Subcommands();

// Entry point: `trialmatch <subcommand> [flags] [args]`.
int Main(int argc, char** argv);

// Subcommands (each defined in its own file).
int VersionCommand(const std::vector<std::string>& args);
int SyncCommand(const std::vector<std::string>& args);    // sync_command.cc
int ImportCommand(const std::vector<std::string>& args);  // import_command.cc
int ServeCommand(const std::vector<std::string>& args);   // serve_command.cc
// criteria_command.cc
int CriteriaCommand(const std::vector<std::string>& args);
// match_command.cc
int MatchCommand(const std::vector<std::string>& args);

}  // namespace trialmatch::cli

#endif  // TRIALMATCH_CLI_CLI_H_
