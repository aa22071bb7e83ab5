// `trialmatch import PATH`: loads studies from files into the local store.
#include <unistd.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/command_flags.h"
#include "cli/criteria_step.h"
#include "cli/flags.h"
#include "store/study_store.h"
#include "sync/importer.h"
#include "sync/progress.h"

namespace trialmatch::cli {

int ImportCommand(const std::vector<std::string>& args) {
  std::string store_path = store::DefaultStorePath();
  sync::ImportOptions options;
  std::vector<std::string> statuses;
  std::string format = "auto";
  std::string log_level = "info";

  FlagSet flags(
      "trialmatch import",
      "Loads studies into the local store from the website's download "
      "(ctg-studies.json, a JSON array), a saved /studies response, a JSON "
      "Lines file, a file of JSON objects, or a directory of *.json files "
      "(format detected). Bad records are reported by position and "
      "skipped.");
  flags.set_positional_help("PATH (a file, a directory, or - for stdin)");
  flags.String("store", &store_path, "SQLite study store path");
  flags.StringList(
      "statuses", &statuses,
      "overall statuses to keep active (comma-separated; "
      "default RECRUITING,NOT_YET_RECRUITING; ALL = every status); others are "
      "stored as LEFT_SCOPE");
  flags.Int("batch_size", &options.batch_size, "studies per store transaction");
  flags.String("format", &format,
               "auto, array, page, jsonl, values or directory");
  flags.String("log_level", &log_level, "debug, info, warning or error");
  CriteriaStep criteria_step;
  criteria_step.RegisterFlags(flags);
  std::vector<std::string> rest;
  if (std::optional<int> exit = ParseFlagsOrExit(flags, args, &rest)) {
    return *exit;
  }
  if (rest.size() != 1) {
    std::cerr << "trialmatch import: expected one PATH\n" << flags.Usage();
    return kExitUsage;
  }
  if (!ApplyLogLevelFlag("trialmatch import", log_level)) return kExitUsage;
  absl::StatusOr<sync::ImportFormat> parsed_format =
      sync::ParseImportFormat(format);
  if (!parsed_format.ok()) {
    std::cerr << "trialmatch import: " << parsed_format.status().message()
              << "\n";
    return kExitUsage;
  }
  if (!criteria_step.LoadRules("trialmatch import")) return kExitFailure;
  options.format = *parsed_format;
  options.wanted_statuses = sync::WantedStatusesFromFlag(statuses);
  if (options.batch_size < 1) {
    std::cerr << "trialmatch import: --batch_size must be >= 1\n";
    return kExitUsage;
  }

  absl::StatusOr<std::unique_ptr<store::StudyStore>> store =
      store::StudyStore::Open(store_path);
  if (!store.ok()) {
    std::cerr << "trialmatch import: cannot open the store: "
              << store.status().ToString() << "\n";
    return kExitFailure;
  }
  sync::ProgressPrinter printer({.terminal = ::isatty(STDERR_FILENO) == 1},
                                common::SystemClock::Default());
  absl::StatusOr<sync::ImportReport> report =
      sync::ImportStudies(rest[0], **store, options, printer.AsCallback());
  printer.Done();
  if (!report.ok()) {
    std::cerr << "trialmatch import: " << report.status().message() << "\n";
    return kExitFailure;
  }
  std::cout << report->Summary() << "\n";
  for (const sync::ImportProblem& p : report->problems) {
    std::cout << "  skipped " << p.where << ": " << p.error.message() << "\n";
  }
  if (report->problems_total > static_cast<int64_t>(report->problems.size())) {
    std::cout << "  ... and "
              << report->problems_total -
                     static_cast<int64_t>(report->problems.size())
              << " more\n";
  }
  // What was stored gets compiled, also after an import that stopped early.
  const int compiled = criteria_step.Run("trialmatch import", **store);
  return report->stopped.ok() ? compiled : kExitFailure;
}

}  // namespace trialmatch::cli
