#include "cli/cli.h"

#include <iostream>
#include <string_view>

#include "cli/flags.h"
#include "trialmatch/version.h"

namespace trialmatch::cli {

const std::vector<SubcommandInfo>& Subcommands() {
  // Add a subcommand: declare it in cli.h, define it in its own file, list it
  // here.
  static const std::vector<SubcommandInfo>* const kSubcommands =
      new std::vector<SubcommandInfo>{
          {"version", "Print trialmatch's version.", &VersionCommand},
          {"serve",
           "Run the gRPC server (StudyService, MatchingService, health, "
           "reflection).",
           &ServeCommand},
          {"sync", "Sync the local study store from ClinicalTrials.gov.",
           &SyncCommand},
          {"import", "Load studies from files into the local store.",
           &ImportCommand},
          {"criteria",
           "Show studies' compiled eligibility criteria; coverage; "
           "recompile.",
           &CriteriaCommand},
          {"match",
           "Match a batch of patients against the studies (local store or "
           "server).",
           &MatchCommand},
      };
  return *kSubcommands;
}

int VersionCommand(const std::vector<std::string>& args) {
  FlagSet flags("trialmatch version", "Prints trialmatch's version.");
  auto rest = flags.Parse(args);
  if (!rest.ok()) {
    if (rest.status().code() == absl::StatusCode::kCancelled) return kExitOk;
    std::cerr << rest.status().message() << "\n";
    return kExitUsage;
  }
  std::cout << "trialmatch " << TRIALMATCH_VERSION << "\n";
  return kExitOk;
}

namespace {

void PrintUsage(std::ostream& out) {
  out << "usage: trialmatch <command> [flags] [args]\n\ncommands:\n";
  for (const SubcommandInfo& s : Subcommands()) {
    out << "  " << s.name << std::string(12 - std::min<size_t>(11, std::string_view(s.name).size()), ' ')
        << s.summary << "\n";
  }
  out << "\n`trialmatch <command> --help` lists a command's flags.\n";
}

}  // namespace

int Main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage(std::cerr);
    return kExitUsage;
  }
  const std::string_view name = argv[1];
  if (name == "help" || name == "--help" || name == "-h") {
    PrintUsage(std::cout);
    return kExitOk;
  }
  if (name == "--version") return VersionCommand({});
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const SubcommandInfo& s : Subcommands()) {
    if (name == s.name) return s.run(args);
  }
  std::cerr << "trialmatch: unknown command '" << name << "'\n\n";
  PrintUsage(std::cerr);
  return kExitUsage;
}

}  // namespace trialmatch::cli
