// The "compile criteria" step of the commands that store studies
// (`trialmatch sync`, `trialmatch import`) and of `trialmatch criteria
// --recompile`: after studies are stored, their compiled eligibility
// criteria are brought up to date (sync/criteria_refresh.h: only missing or
// stale entries are compiled; a second run does nothing).
//
//   CriteriaStep step;
//   step.RegisterFlags(flags);                 // --rules, --compile_criteria,
//                                              // --compile_threads
//   if (!step.LoadRules("trialmatch import")) return kExitFailure;  // early
//   ... store studies ...
//   return step.Run("trialmatch import", *store, &interrupted);
//
// The rules are loaded before the command does its work, so a rules error
// stops it before it touches the store. Not thread-safe (one command).
#ifndef TRIALMATCH_CLI_CRITERIA_STEP_H_
#define TRIALMATCH_CLI_CRITERIA_STEP_H_

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "cli/flags.h"
#include "criteria/rule_set.h"
#include "store/study_store.h"
#include "sync/criteria_refresh.h"

namespace trialmatch::cli {

// RefreshCompiledCriteria with a progress line on stderr and the summary on
// stdout; returns kExitOk, or kExitFailure after printing the error to
// stderr (entries stored so far stay).
int RefreshWithProgress(std::string_view command, store::StudyStore& store,
                        std::shared_ptr<const criteria::RuleSet> rules,
                        int threads, bool force,
                        const std::atomic<bool>* cancelled);

class CriteriaStep {
 public:
  // --rules, --compile_criteria (default on), --compile_threads.
  void RegisterFlags(FlagSet& flags);

  // Finds and loads the rules unless --nocompile_criteria. Returns false
  // after printing "<command>: cannot load the eligibility rules ..." to
  // stderr.
  bool LoadRules(std::string_view command);

  // Refreshes the store's compiled criteria (nothing when
  // --nocompile_criteria) with a progress line on stderr and the summary on
  // stdout. Returns kExitOk, or kExitFailure after printing the error (the
  // studies stored stay stored).
  int Run(std::string_view command, store::StudyStore& store,
          const std::atomic<bool>* cancelled = nullptr, bool force = false);

  bool enabled() const { return compile_; }
  const std::shared_ptr<const criteria::RuleSet>& rules() const {
    return rules_;
  }

 private:
  std::string rules_flag_;
  bool compile_ = true;
  int threads_ = 0;
  std::shared_ptr<const criteria::RuleSet> rules_;
};

}  // namespace trialmatch::cli

#endif  // TRIALMATCH_CLI_CRITERIA_STEP_H_
