#include "sync/criteria_refresh.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "criteria/json.h"
#include "model/study.h"
#include "store/content_hash.h"

namespace trialmatch::sync {
namespace {

constexpr char kLog[] = "criteria";
constexpr std::size_t kMaxListedFailures = 10;

using common::ToAbsl;

// A study to compile.
struct Work {
  std::string nct_id;
};

// State shared by the workers of one pass.
class Pass {
 public:
  Pass(store::StudyStore& store, const criteria::Compiler& compiler,
       const RefreshOptions& options, std::vector<Work> work,
       RefreshReport* report)
      : store_(store),
        compiler_(compiler),
        options_(options),
        work_(std::move(work)),
        report_(report),
        start_(absl::Now()) {}

  // Runs `threads` workers (the calling thread is one of them).
  absl::Status Run(int threads) {
    const std::size_t batches =
        (work_.size() + options_.batch_size - 1) / options_.batch_size;
    threads = static_cast<int>(std::min<std::size_t>(
        std::max(1, threads), std::max<std::size_t>(1, batches)));
    std::vector<std::thread> helpers;
    for (int i = 1; i < threads; ++i)
      helpers.emplace_back([this] { Worker(); });
    Worker();
    for (std::thread& t : helpers) t.join();
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  bool Stopped() {
    if (options_.cancelled != nullptr &&
        options_.cancelled->load(std::memory_order_acquire)) {
      absl::MutexLock lock(&mu_);
      if (error_.ok()) {
        error_ = absl::CancelledError(
            "compiling criteria was cancelled; the batches stored so far are "
            "kept");
      }
    }
    return stop_.load(std::memory_order_acquire) || HasError();
  }
  bool HasError() {
    absl::MutexLock lock(&mu_);
    return !error_.ok();
  }
  void Fail(absl::Status status) {
    absl::MutexLock lock(&mu_);
    if (error_.ok()) error_ = std::move(status);
    stop_.store(true, std::memory_order_release);
  }
  void NoteFailure(const std::string& nct_id, const absl::Status& status) {
    TM_LOG_WARNING(kLog, "not compiling ", nct_id, ": ", status.ToString());
    absl::MutexLock lock(&mu_);
    ++report_->failed;
    if (report_->failures.size() < kMaxListedFailures) {
      report_->failures.push_back(absl::StrCat(nct_id, ": ", status.message()));
    }
  }

  void Worker() {
    const std::size_t size = static_cast<std::size_t>(options_.batch_size);
    while (!Stopped()) {
      const std::size_t begin = next_.fetch_add(size);
      if (begin >= work_.size()) return;
      const std::size_t end = std::min(work_.size(), begin + size);
      std::vector<store::CompiledEntry> entries;
      entries.reserve(end - begin);
      int64_t bytes = 0;
      for (std::size_t i = begin; i < end; ++i) {
        absl::StatusOr<store::StoredStudy> stored =
            store_.GetStudy(work_[i].nct_id);
        if (!stored.ok()) {
          if (stored.status().code() == absl::StatusCode::kNotFound) {
            absl::MutexLock lock(&mu_);
            ++report_->vanished;
            continue;
          }
          Fail(stored.status());
          return;
        }
        bytes += static_cast<int64_t>(stored->raw_json.size());
        absl::StatusOr<model::Study> study =
            model::ParseStudy(stored->raw_json);
        if (!study.ok()) {
          NoteFailure(work_[i].nct_id, study.status());
          continue;
        }
        criteria::CompiledStudy compiled = compiler_.Compile(*study);
        store::CompiledEntry entry;
        entry.nct_id = work_[i].nct_id;
        entry.compiler_version = compiled.compiler_version;
        entry.rules_version = compiled.rules_version;
        entry.content_hash = stored->content_hash;
        entry.blob = criteria::ToJson(compiled);
        entries.push_back(std::move(entry));
      }
      absl::StatusOr<int64_t> written = Store(entries);
      if (!written.ok()) {
        Fail(written.status());
        return;
      }
      absl::MutexLock lock(&mu_);
      report_->compiled += *written;
      done_ += static_cast<int64_t>(end - begin);
      bytes_ += bytes;
      ++batches_;
      if (options_.progress) {
        Progress p;
        p.task = "compile criteria";
        p.step = "batch";
        p.pages = batches_;
        p.studies = done_;
        p.bytes = bytes_;
        p.total_studies = static_cast<int64_t>(work_.size());
        p.elapsed = absl::Now() - start_;
        options_.progress(p);
      }
    }
  }

  // PutCompiled in one transaction; when a study vanished meanwhile (the
  // whole batch is refused with kNotFound), entry by entry.
  absl::StatusOr<int64_t> Store(
      const std::vector<store::CompiledEntry>& entries) {
    if (entries.empty()) return 0;
    absl::Status s = store_.PutCompiled(entries);
    if (s.ok()) return static_cast<int64_t>(entries.size());
    if (s.code() != absl::StatusCode::kNotFound) return s;
    int64_t written = 0;
    for (const store::CompiledEntry& e : entries) {
      absl::Status one = store_.PutCompiled({e});
      if (one.ok()) {
        ++written;
      } else if (one.code() == absl::StatusCode::kNotFound) {
        absl::MutexLock lock(&mu_);
        ++report_->vanished;
      } else {
        return one;
      }
    }
    return written;
  }

  store::StudyStore& store_;
  const criteria::Compiler& compiler_;
  const RefreshOptions& options_;
  const std::vector<Work> work_;
  RefreshReport* const report_;  // counters guarded by mu_ while running
  const absl::Time start_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  int64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
};

std::string Thousands(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return n < 0 ? "-" + out : out;
}

bool IsFresh(const store::CompiledEntry& entry,
             const criteria::Compiler& compiler, uint64_t content_hash) {
  return entry.compiler_version == criteria::kCompilerVersion &&
         entry.rules_version == compiler.rules().version() &&
         entry.content_hash == content_hash;
}

store::StaleReason ReasonFor(const store::CompiledEntry& entry,
                             const criteria::Compiler& compiler) {
  if (entry.compiler_version != criteria::kCompilerVersion ||
      entry.rules_version != compiler.rules().version()) {
    return store::StaleReason::kVersionChanged;
  }
  return store::StaleReason::kContentChanged;
}

// The shared tail of LoadOrCompile / LoadOrCompileRecord.
absl::StatusOr<LoadedCriteria> FromEntryOrCompile(
    store::StudyStore* store, const criteria::Compiler& compiler,
    const model::Study& study, uint64_t content_hash,
    const LoadOptions& options) {
  LoadedCriteria out;
  out.eligibility_criteria = study.eligibility.criteria;
  if (store != nullptr) {
    absl::StatusOr<store::CompiledEntry> entry =
        store->GetCompiled(study.nct_id);
    if (entry.ok()) {
      if (IsFresh(*entry, compiler, content_hash)) {
        absl::StatusOr<criteria::CompiledStudy> parsed =
            criteria::FromJson(entry->blob);
        if (parsed.ok()) {
          out.compiled = *std::move(parsed);
          out.from_store = true;
          out.compiled_at = entry->compiled_at;
          return out;
        }
        TM_LOG_WARNING(
            kLog, "the stored compiled criteria of ", study.nct_id,
            " do not parse (compiling again): ", parsed.status().ToString());
        out.stale_reason = store::StaleReason::kContentChanged;
      } else {
        out.stale_reason = ReasonFor(*entry, compiler);
      }
    } else if (entry.status().code() != absl::StatusCode::kNotFound) {
      return entry.status();
    }
  }
  out.compiled = compiler.Compile(study);
  out.compiled_at = options.clock->Now();
  if (store != nullptr && options.write_back) {
    store::CompiledEntry entry;
    entry.nct_id = study.nct_id;
    entry.compiler_version = out.compiled.compiler_version;
    entry.rules_version = out.compiled.rules_version;
    entry.content_hash = content_hash;
    entry.blob = criteria::ToJson(out.compiled);
    if (absl::Status s = store->PutCompiled({entry});
        !s.ok() && s.code() != absl::StatusCode::kNotFound) {
      TM_LOG_WARNING(kLog, "storing the compiled criteria of ", study.nct_id,
                     " failed: ", s.ToString());
    }
  }
  return out;
}

}  // namespace

std::string RefreshReport::Summary() const {
  if (stale == 0 && failed == 0) {
    return absl::StrCat("compiled criteria are up to date (compiler ",
                        compiler_version, ", rules ", rules_version, ")");
  }
  std::string line = absl::StrCat("compiled criteria of ", Thousands(compiled),
                                  compiled == 1 ? " study" : " studies");
  std::vector<std::string> reasons;
  if (missing > 0) reasons.push_back(absl::StrCat(Thousands(missing), " new"));
  if (version_changed > 0) {
    reasons.push_back(absl::StrCat(Thousands(version_changed),
                                   " for a new compiler/rules version"));
  }
  if (content_changed > 0) {
    reasons.push_back(absl::StrCat(Thousands(content_changed), " changed"));
  }
  if (stale > missing + version_changed + content_changed) {
    reasons.push_back(absl::StrCat(
        Thousands(stale - missing - version_changed - content_changed),
        " forced"));
  }
  if (!reasons.empty()) {
    absl::StrAppend(&line, " (", absl::StrJoin(reasons, ", "), ")");
  }
  absl::StrAppend(&line, " in ",
                  elapsed < absl::Minutes(1)
                      ? absl::StrFormat("%.1fs", absl::ToDoubleSeconds(elapsed))
                      : FormatEta(elapsed));
  const double seconds = absl::ToDoubleSeconds(elapsed);
  if (seconds > 0 && compiled > 0) {
    absl::StrAppendFormat(&line, " (%.0f studies/s)",
                          static_cast<double>(compiled) / seconds);
  }
  absl::StrAppend(&line, "; compiler ", compiler_version, ", rules ",
                  rules_version);
  if (failed > 0) {
    absl::StrAppend(&line, "; ", Thousands(failed), " not compiled (see log)");
  }
  if (vanished > 0) {
    absl::StrAppend(&line, "; ", Thousands(vanished), " deleted meanwhile");
  }
  return line;
}

absl::StatusOr<RefreshReport> RefreshCompiledCriteria(
    store::StudyStore& store, const criteria::Compiler& compiler,
    const RefreshOptions& options) {
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(
        "compile criteria: batch size must be >= 1");
  }
  if (options.threads < 0) {
    return absl::InvalidArgumentError("compile criteria: threads must be >= 0");
  }
  const absl::Time start = absl::Now();
  RefreshReport report;
  report.compiler_version = std::string(criteria::kCompilerVersion);
  report.rules_version = compiler.rules().version();

  store::StaleQuery query;
  query.compiler_version = report.compiler_version;
  query.rules_version = report.rules_version;
  query.lifecycles = options.lifecycles;
  TRIALMATCH_ASSIGN_OR_RETURN(std::vector<store::StaleStudy> stale,
                              store.ListStaleCompiled(query));
  std::vector<Work> work;
  work.reserve(stale.size());
  for (const store::StaleStudy& s : stale) {
    switch (s.reason) {
      case store::StaleReason::kMissing:
        ++report.missing;
        break;
      case store::StaleReason::kVersionChanged:
        ++report.version_changed;
        break;
      case store::StaleReason::kContentChanged:
        ++report.content_changed;
        break;
    }
    work.push_back({s.nct_id});
  }
  if (options.force) {
    work.clear();
    store::StudyFilter filter;
    filter.lifecycles = options.lifecycles;
    filter.include_raw_json = false;
    TRIALMATCH_RETURN_IF_ERROR(
        store.ForEachStudy(filter, [&](const store::StudyView& v) {
          work.push_back({std::string(v.nct_id)});
          return absl::OkStatus();
        }));
  }
  report.stale = static_cast<int64_t>(work.size());
  if (!work.empty()) {
    int threads = options.threads;
    if (threads == 0) {
      threads = std::max(1u, std::thread::hardware_concurrency());
    }
    Pass pass(store, compiler, options, std::move(work), &report);
    absl::Status s = pass.Run(threads);
    report.elapsed = absl::Now() - start;
    if (!s.ok()) {
      TM_LOG_WARNING(kLog, "compiling criteria stopped after ", report.compiled,
                     " studies: ", s.ToString());
      return s;
    }
  }
  report.elapsed = absl::Now() - start;
  return report;
}

absl::StatusOr<LoadedCriteria> LoadOrCompile(store::StudyStore& store,
                                             const criteria::Compiler& compiler,
                                             std::string_view nct_id,
                                             const LoadOptions& options) {
  TRIALMATCH_ASSIGN_OR_RETURN(store::StoredStudy stored,
                              store.GetStudy(nct_id));
  absl::StatusOr<model::Study> study = model::ParseStudy(stored.raw_json);
  if (!study.ok()) {
    return absl::DataLossError(
        absl::StrCat("the stored record of ", stored.nct_id,
                     " does not parse: ", study.status().message()));
  }
  return FromEntryOrCompile(&store, compiler, *study, stored.content_hash,
                            options);
}

absl::StatusOr<LoadedCriteria> LoadOrCompileRecord(
    store::StudyStore* store, const criteria::Compiler& compiler,
    std::string_view raw_json, const LoadOptions& options) {
  absl::StatusOr<model::Study> study = model::ParseStudy(raw_json);
  if (!study.ok()) {
    return absl::DataLossError(
        absl::StrCat("the record is not a study: ", study.status().message()));
  }
  return FromEntryOrCompile(store, compiler, *study,
                            store::ContentHash(raw_json), options);
}

absl::StatusOr<std::string> RulesDirFingerprint(
    const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("no rules directory ", dir.string()));
  }
  std::map<std::string, std::string> files;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::filesystem::path& p = it->path();
    if (p.extension() != ".textproto") continue;
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) continue;  // a dangling link: no file
    files[p.filename().string()] =
        absl::StrCat(st.st_size, ":", st.st_mtim.tv_sec, ".",
                     st.st_mtim.tv_nsec, ":", st.st_ino);
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat(
        "cannot list the rules directory ", dir.string(), ": ", ec.message()));
  }
  std::string out;
  for (const auto& [name, stamp] : files) {
    absl::StrAppend(&out, name, "=", stamp, ";");
  }
  return out;
}

// --- CriteriaRefresher -------------------------------------------------------

CriteriaRefresher::CriteriaRefresher(store::StudyStore* store,
                                     criteria::RuleSetHolder* rules,
                                     CriteriaRefresherOptions options,
                                     RefreshedFn on_refreshed)
    : store_(store),
      rules_(rules),
      options_(std::move(options)),
      on_refreshed_(std::move(on_refreshed)) {
  status_.rules_version = rules_->Get()->version();
  if (!options_.rules_dir.empty()) {
    absl::StatusOr<std::string> fp = RulesDirFingerprint(options_.rules_dir);
    absl::MutexLock lock(&run_mu_);
    // The holder's rules were loaded from this directory just before: take
    // the current files as the baseline.
    if (fp.ok()) rules_fingerprint_ = *fp;
  }
}

CriteriaRefresher::~CriteriaRefresher() { Stop(); }

void CriteriaRefresher::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stop_) return;
  started_ = true;
  requested_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void CriteriaRefresher::Stop() {
  cancelled_.store(true, std::memory_order_release);
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void CriteriaRefresher::RequestRefresh() {
  absl::MutexLock lock(&mu_);
  requested_ = true;
}

RefresherStatus CriteriaRefresher::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

bool CriteriaRefresher::CheckRules() {
  absl::MutexLock lock(&run_mu_);
  return CheckRulesLocked();
}

bool CriteriaRefresher::CheckRulesLocked() {
  if (options_.rules_dir.empty()) return false;
  absl::StatusOr<std::string> fp = RulesDirFingerprint(options_.rules_dir);
  std::string current = fp.ok() ? *fp : std::string("error");
  if (current == rules_fingerprint_) return false;
  rules_fingerprint_ = current;  // one attempt (and one log line) per change
  const std::string before = rules_->Get()->version();
  absl::Status s =
      fp.ok() ? rules_->ReloadFromDirectory(options_.rules_dir) : fp.status();
  if (!s.ok()) {
    TM_LOG_ERROR(kLog, "reloading the rules from ", options_.rules_dir.string(),
                 " failed; keeping rules version ", before, ": ", s.ToString());
    absl::MutexLock lock(&mu_);
    status_.last_rules_error = s;
    return false;
  }
  const std::string after = rules_->Get()->version();
  {
    absl::MutexLock lock(&mu_);
    status_.last_rules_error = absl::OkStatus();
    status_.rules_version = after;
  }
  if (after == before) return false;
  TM_LOG_INFO(kLog, "rules reloaded from ", options_.rules_dir.string(), ": ",
              before, " -> ", after, "; recompiling");
  rules_changed_ = true;
  return true;
}

absl::StatusOr<RefreshReport> CriteriaRefresher::RunOnce() {
  absl::MutexLock run(&run_mu_);
  CheckRulesLocked();
  criteria::Compiler compiler(rules_->Get());
  RefreshOptions options = options_.refresh;
  options.cancelled = &cancelled_;
  absl::StatusOr<RefreshReport> report =
      RefreshCompiledCriteria(*store_, compiler, options);
  bool notify = false;
  {
    absl::MutexLock lock(&mu_);
    status_.first_pass_done = true;
    ++status_.passes;
    if (report.ok()) {
      status_.last_report = *report;
      status_.last_error = absl::OkStatus();
      notify = !had_success_ || report->changed() || rules_changed_;
    } else {
      ++status_.failures;
      status_.last_error = report.status();
    }
  }
  if (report.ok()) {
    if (report->stale > 0 || report->failed > 0) {
      TM_LOG_INFO(kLog, report->Summary());
    }
    had_success_ = true;
    rules_changed_ = false;
    if (notify && on_refreshed_) on_refreshed_(*report);
  } else if (report.status().code() != absl::StatusCode::kCancelled) {
    TM_LOG_WARNING(kLog, "compiling criteria failed (retrying in ",
                   absl::FormatDuration(options_.retry_interval),
                   "): ", report.status().ToString());
  }
  return report;
}

void CriteriaRefresher::Loop() {
  absl::Time next_rules_check =
      options_.rules_check_interval > absl::ZeroDuration()
          ? absl::Now() + options_.rules_check_interval
          : absl::InfiniteFuture();
  std::optional<absl::Time> retry_at;
  while (true) {
    bool run = false;
    {
      absl::MutexLock lock(&mu_);
      absl::Time wake = next_rules_check;
      if (retry_at.has_value()) wake = std::min(wake, *retry_at);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || requested_;
      };
      mu_.AwaitWithDeadline(absl::Condition(&woken), wake);
      if (stop_) return;
      run = requested_;
      requested_ = false;
    }
    const absl::Time now = absl::Now();
    if (now >= next_rules_check) {
      if (CheckRules()) run = true;
      next_rules_check = now + options_.rules_check_interval;
    }
    if (retry_at.has_value() && now >= *retry_at) run = true;
    if (!run) continue;
    absl::StatusOr<RefreshReport> report = RunOnce();
    if (report.ok()) {
      retry_at.reset();
    } else {
      retry_at = absl::Now() + options_.retry_interval;
    }
  }
}

}  // namespace trialmatch::sync
