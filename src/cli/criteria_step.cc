#include "cli/criteria_step.h"

#include <unistd.h>

#include <iostream>

#include "cli/cli.h"
#include "cli/rules_location.h"
#include "common/clock.h"
#include "criteria/compiler.h"
#include "sync/progress.h"

namespace trialmatch::cli {

void CriteriaStep::RegisterFlags(FlagSet& flags) {
  flags.String("rules", &rules_flag_,
               "eligibility rules directory (default: $TRIALMATCH_RULES_DIR, "
               "the source tree's rules/, /usr/share/trialmatch/rules)");
  flags.Bool("compile_criteria", &compile_,
             "compile the eligibility criteria of new or changed studies "
             "(and of all after a compiler/rules change) into the store");
  flags.Int("compile_threads", &threads_,
            "threads compiling criteria (0 = one per CPU)");
}

bool CriteriaStep::LoadRules(std::string_view command) {
  if (!compile_) return true;
  if (threads_ < 0) {
    std::cerr << command << ": --compile_threads must be >= 0\n";
    return false;
  }
  absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> rules =
      FindAndLoadRules(rules_flag_);
  if (!rules.ok()) {
    std::cerr << command << ": " << rules.status().message()
              << " (--nocompile_criteria skips compiling)\n";
    return false;
  }
  rules_ = *std::move(rules);
  return true;
}

int CriteriaStep::Run(std::string_view command, store::StudyStore& store,
                      const std::atomic<bool>* cancelled, bool force) {
  if (!compile_ || rules_ == nullptr) return kExitOk;
  return RefreshWithProgress(command, store, rules_, threads_, force,
                             cancelled);
}

int RefreshWithProgress(std::string_view command, store::StudyStore& store,
                        std::shared_ptr<const criteria::RuleSet> rules,
                        int threads, bool force,
                        const std::atomic<bool>* cancelled) {
  const criteria::Compiler compiler(std::move(rules));
  sync::ProgressPrinter printer({.terminal = ::isatty(STDERR_FILENO) == 1},
                                common::SystemClock::Default());
  sync::RefreshOptions options;
  options.threads = threads;
  options.force = force;
  options.cancelled = cancelled;
  options.progress = printer.AsCallback();
  absl::StatusOr<sync::RefreshReport> report =
      sync::RefreshCompiledCriteria(store, compiler, options);
  printer.Done();
  if (!report.ok()) {
    std::cerr << command
              << ": compiling criteria: " << report.status().message()
              << "; the stored studies are kept, `trialmatch criteria "
                 "--recompile` finishes the job\n";
    return kExitFailure;
  }
  std::cout << report->Summary() << "\n";
  for (const std::string& failure : report->failures) {
    std::cout << "  not compiled: " << failure << "\n";
  }
  return kExitOk;
}

}  // namespace trialmatch::cli
