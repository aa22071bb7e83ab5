// Compiled criteria kept in step with the stored studies and the rules.
//
// Every stored study has a compiled entry (store::CompiledEntry: the JSON of
// criteria::CompiledStudy, with the compiler version, the rules version and
// the content hash of the record it was compiled from). An entry is fresh when
// all three equal the current ones; otherwise (missing, another compiler or
// rules version, a changed record) it is stale and is recompiled here.
//
//   RefreshCompiledCriteria(store, compiler, options)
//       One pass: lists the stale studies (store::ListStaleCompiled), loads,
//       compiles (across options.threads threads: the compiler is const and
//       thread-safe) and stores them (one PutCompiled transaction per batch).
//       Incremental: a second run with nothing changed does nothing but the
//       listing. Called by `trialmatch sync` / `import` after they store
//       studies, by `trialmatch criteria --recompile`, and by the
//       CriteriaRefresher below inside `serve`.
//
//   LoadOrCompile(store, compiler, nct_id)
//       One study's compiled criteria for a reader (CLI, gRPC): the stored
//       entry when fresh, else compiled now (optionally written back).
//
//   CriteriaRefresher
//       The background of `serve`: refreshes at start, whenever asked
//       (RequestRefresh: the sync scheduler's change callback), and when the
//       rule files change (a periodic check of the rules directory's file
//       names, sizes and modification times; a reload that fails keeps the
//       current rules and is logged once per change of the files).
//
// Nothing here decides eligibility; it only keeps compiled forms current. A
// record that does not parse is reported (WARNING with its NCT id, counted
// in `failed`) and left without an entry; it is retried by the next pass.
//
// Thread safety: RefreshCompiledCriteria and LoadOrCompile are thread-safe
// (the store is); concurrent refreshes do duplicate work but stay correct
// (each entry records the versions and content it was made from). The
// CriteriaRefresher is thread-safe.
#ifndef TRIALMATCH_SYNC_CRITERIA_REFRESH_H_
#define TRIALMATCH_SYNC_CRITERIA_REFRESH_H_

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "criteria/compiled_study.h"
#include "criteria/compiler.h"
#include "criteria/rule_set.h"
#include "store/study_store.h"
#include "sync/progress.h"

namespace trialmatch::sync {

struct RefreshOptions {
  // Compile threads; 0 = one per hardware thread. 1 compiles on the calling
  // thread.
  int threads = 1;
  // Studies per PutCompiled transaction.
  int batch_size = 200;
  // Recompile every study in `lifecycles`, fresh or not (e.g. after changing
  // the compiler without bumping kCompilerVersion during development).
  bool force = false;
  // Which stored studies get compiled entries.
  std::vector<store::Lifecycle> lifecycles = {store::Lifecycle::kActive};
  // Called after each stored batch (task "compile criteria", step "batch"),
  // from the worker threads, one call at a time.
  ProgressCallback progress;
  // When it turns true the pass stops after the batches in progress
  // (kCancelled). May be null.
  const std::atomic<bool>* cancelled = nullptr;
};

// What one RefreshCompiledCriteria pass did.
struct RefreshReport {
  std::string compiler_version;
  std::string rules_version;
  // Studies found stale, by reason (with force, `stale` counts every study
  // and the reasons only the really stale ones).
  int64_t stale = 0;
  int64_t missing = 0;
  int64_t version_changed = 0;
  int64_t content_changed = 0;
  // Entries written.
  int64_t compiled = 0;
  // Records that could not be loaded or parsed (no entry written).
  int64_t failed = 0;
  // Studies deleted between the listing and the write.
  int64_t vanished = 0;
  // The first few failures, "NCT...: message".
  std::vector<std::string> failures;
  absl::Duration elapsed;

  bool changed() const { return compiled > 0; }
  // "compiled criteria of 1,267 studies (1,267 missing) in 1.2s ..." or
  // "compiled criteria are up to date (compiler 1.0.0, rules ...)".
  std::string Summary() const;
};

// One refresh pass (see the file comment). Entries of the batches stored
// before an error stay. Errors: the store's (kUnavailable when it stays
// locked, kDataLoss, kResourceExhausted, kInternal); kCancelled when
// options.cancelled turned true; kInvalidArgument for options.batch_size < 1
// or options.threads < 0.
absl::StatusOr<RefreshReport> RefreshCompiledCriteria(
    store::StudyStore& store, const criteria::Compiler& compiler,
    const RefreshOptions& options = {});

// One study's compiled criteria, for readers.
struct LoadedCriteria {
  criteria::CompiledStudy compiled;
  // The eligibilityCriteria text the spans point into.
  std::string eligibility_criteria;
  // True when the stored entry was fresh and used; false when compiled now.
  bool from_store = false;
  // Why it was compiled now (when !from_store).
  store::StaleReason stale_reason = store::StaleReason::kMissing;
  // When the returned criteria were compiled (now, for compiled ones).
  absl::Time compiled_at;
};

struct LoadOptions {
  // Store what was compiled now (ignored when the entry was fresh). A
  // failed write is logged, not returned.
  bool write_back = false;
  // Time of compiled_at for what was compiled now.
  common::Clock* clock = &common::SystemClock::Default();
};

// The stored study's criteria. Errors: kInvalidArgument for a malformed NCT
// id; kNotFound when the study is not stored; kDataLoss when its record does
// not parse; the store's errors. A stored entry whose blob does not parse is
// treated as stale (compiled again), not as an error.
absl::StatusOr<LoadedCriteria> LoadOrCompile(store::StudyStore& store,
                                             const criteria::Compiler& compiler,
                                             std::string_view nct_id,
                                             const LoadOptions& options = {});

// Same for a record the caller already has (e.g. just fetched from
// ClinicalTrials.gov): the stored entry is used when it is fresh for this
// record's content hash. `store` may be null (then always compiled). Errors:
// kDataLoss when `raw_json` is not a study; the store's errors (not
// kNotFound).
absl::StatusOr<LoadedCriteria> LoadOrCompileRecord(
    store::StudyStore* store, const criteria::Compiler& compiler,
    std::string_view raw_json, const LoadOptions& options = {});

// A fingerprint of the rule files of `dir` (*.textproto directly in it: names,
// sizes, modification times): changes when a file is edited, added, removed
// or replaced (also through the symlink swap of a Kubernetes ConfigMap).
// kNotFound when the directory does not exist.
absl::StatusOr<std::string> RulesDirFingerprint(
    const std::filesystem::path& dir);

struct CriteriaRefresherOptions {
  RefreshOptions refresh = {};
  // Rules directory watched for changes; empty = no reloads.
  std::filesystem::path rules_dir = {};
  // How often the rules directory is checked (0 = never).
  absl::Duration rules_check_interval = absl::Seconds(30);
  // After a failed refresh (e.g. the store locked by another process), the
  // next attempt.
  absl::Duration retry_interval = absl::Minutes(1);
};

// What the refresher can report.
struct RefresherStatus {
  bool first_pass_done = false;  // a pass has completed (ok or not)
  int64_t passes = 0;
  int64_t failures = 0;
  std::string rules_version;                   // of the current rules
  std::optional<RefreshReport> last_report;    // of the last successful pass
  absl::Status last_error = absl::OkStatus();  // of the last pass
  absl::Status last_rules_error = absl::OkStatus();  // of the last reload
};

class CriteriaRefresher {
 public:
  // Called after a pass that compiled something, after the first successful
  // pass (even when nothing was stale: a snapshot can be built now) and after
  // the rules changed. Runs on the refresher's thread (or RunOnce's caller);
  // must not call Stop().
  using RefreshedFn = std::function<void(const RefreshReport&)>;

  // `store` and `rules` are not owned and must outlive the refresher; the
  // refresher reloads `rules` from options.rules_dir. Not started.
  CriteriaRefresher(store::StudyStore* store, criteria::RuleSetHolder* rules,
                    CriteriaRefresherOptions options, RefreshedFn on_refreshed);
  CriteriaRefresher(const CriteriaRefresher&) = delete;
  CriteriaRefresher& operator=(const CriteriaRefresher&) = delete;
  ~CriteriaRefresher();  // Stop()

  // Starts the thread: a pass at once, then passes on RequestRefresh(), on a
  // rules change, and after failures. At most once.
  void Start();
  // Cancels a pass in progress (after its current batches) and joins.
  // Idempotent; no restart.
  void Stop();
  // Makes the thread run a pass now (or right after the one in progress).
  void RequestRefresh();

  // On the calling thread (serialised with the thread's passes): checks the
  // rules directory (reloading the rules when its fingerprint changed), then
  // runs a refresh pass. Returns the pass's result.
  absl::StatusOr<RefreshReport> RunOnce();
  // Only the rules check; true when the rules were reloaded with a new
  // version.
  bool CheckRules();

  RefresherStatus status() const;

 private:
  void Loop();
  bool CheckRulesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_);

  store::StudyStore* const store_;
  criteria::RuleSetHolder* const rules_;
  const CriteriaRefresherOptions options_;
  const RefreshedFn on_refreshed_;
  std::atomic<bool> cancelled_{false};

  absl::Mutex run_mu_;  // one pass at a time
  std::string rules_fingerprint_ ABSL_GUARDED_BY(run_mu_);
  bool had_success_ ABSL_GUARDED_BY(run_mu_) = false;
  bool rules_changed_ ABSL_GUARDED_BY(run_mu_) = false;

  mutable absl::Mutex mu_;
  RefresherStatus status_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace trialmatch::sync

#endif  // TRIALMATCH_SYNC_CRITERIA_REFRESH_H_
