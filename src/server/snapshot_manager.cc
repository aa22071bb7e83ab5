#include "server/snapshot_manager.h"

#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "criteria/compiler.h"
#include "criteria/json.h"
#include "model/study.h"

namespace trialmatch::server {
namespace {

constexpr char kLog[] = "snapshot";
constexpr size_t kMaxFailuresListed = 10;

// One stored study as read, owned (the store's views die with the callback).
struct Item {
  std::string nct_id;
  std::string raw_json;
  std::string blob;  // the stored compiled entry when fresh, else empty
  bool fresh = false;
};

// Builds the snapshot from decoded items; thread-safe.
class Assembler {
 public:
  Assembler(std::shared_ptr<const criteria::RuleSet> rules)
      : compiler_(rules), builder_(match::SnapshotOptions{.rules = rules}) {}

  // Parses the record, takes or makes the compiled criteria, adds them.
  void Decode(const Item& item) {
    absl::StatusOr<model::Study> study = model::ParseStudy(item.raw_json);
    if (!study.ok()) {
      Fail(item.nct_id, study.status());
      return;
    }
    if (item.fresh) {
      absl::StatusOr<criteria::CompiledStudy> stored =
          criteria::FromJson(item.blob);
      if (stored.ok()) {
        absl::MutexLock lock(&mu_);
        absl::Status added = builder_.Add(*study, *stored);
        if (added.ok()) {
          ++report_.from_store;
          return;
        }
        if (added.code() == absl::StatusCode::kAlreadyExists) {
          FailLocked(item.nct_id, added);
          return;
        }
      }
      // An unusable stored entry: compile instead.
    }
    criteria::CompiledStudy compiled = compiler_.Compile(*study);
    absl::MutexLock lock(&mu_);
    absl::Status added = builder_.Add(*study, compiled);
    if (!added.ok()) {
      FailLocked(item.nct_id, added);
      return;
    }
    ++report_.compiled;
  }

  SnapshotLoadReport TakeReport() {
    absl::MutexLock lock(&mu_);
    return report_;
  }
  std::shared_ptr<const match::Snapshot> Build() {
    absl::MutexLock lock(&mu_);
    report_.studies = static_cast<int64_t>(builder_.size());
    return std::move(builder_).Build();
  }

 private:
  void Fail(const std::string& nct_id, const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    FailLocked(nct_id, status);
  }
  void FailLocked(const std::string& nct_id, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++report_.failed;
    TM_LOG_WARNING(kLog, nct_id,
                   " left out of the snapshot: ", status.ToString());
    if (report_.failures.size() < kMaxFailuresListed) {
      report_.failures.push_back(absl::StrCat(nct_id, ": ", status.message()));
    }
  }

  const criteria::Compiler compiler_;
  absl::Mutex mu_;
  match::SnapshotBuilder builder_ ABSL_GUARDED_BY(mu_);
  SnapshotLoadReport report_ ABSL_GUARDED_BY(mu_);
};

// A bounded FIFO feeding the decoding threads.
class WorkQueue {
 public:
  explicit WorkQueue(size_t capacity) : capacity_(capacity) {}

  // Blocks while full.
  void Push(Item item) {
    absl::MutexLock lock(&mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return items_.size() < capacity_;
    };
    mu_.Await(absl::Condition(&room));
    items_.push_back(std::move(item));
  }
  // nullopt once closed and drained.
  std::optional<Item> Pop() {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !items_.empty() || closed_;
    };
    mu_.Await(absl::Condition(&ready));
    if (items_.empty()) return std::nullopt;
    Item item = std::move(items_.front());
    items_.pop_front();
    return item;
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

 private:
  const size_t capacity_;
  absl::Mutex mu_;
  std::deque<Item> items_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::string SnapshotLoadReport::Summary() const {
  if (!file.empty()) {
    return absl::StrCat(
        "snapshot of ", studies, " studies read from ", file, " in ",
        absl::FormatDuration(absl::Trunc(elapsed, absl::Milliseconds(1))));
  }
  return absl::StrCat(
      "snapshot of ", studies, " studies (", from_store,
      " with stored compiled criteria, ", compiled, " compiled now, ", failed,
      " failed) in ",
      absl::FormatDuration(absl::Trunc(elapsed, absl::Milliseconds(1))));
}

absl::StatusOr<LoadedSnapshot> LoadSnapshot(
    store::StudyStore& store, std::shared_ptr<const criteria::RuleSet> rules,
    const SnapshotLoadOptions& options) {
  if (rules == nullptr) {
    return absl::InvalidArgumentError("LoadSnapshot: rules must not be null");
  }
  if (options.threads < 0) {
    return absl::InvalidArgumentError("LoadSnapshot: threads must be >= 0");
  }
  const absl::Time start = absl::Now();
  int threads = options.threads;
  if (threads == 0) {
    threads =
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  const std::string rules_version = rules->version();
  const std::string compiler_version(criteria::kCompilerVersion);
  // The key first: a change made while the store is read then shows as a
  // newer generation than the file's (stale), never an older one.
  std::optional<match::SnapshotKey> key;
  if (absl::StatusOr<match::SnapshotKey> k = SnapshotKeyOf(store, *rules);
      k.ok()) {
    key = *std::move(k);
  } else {
    TM_LOG_WARNING(kLog,
                   "store generation unreadable (the snapshot will not "
                   "be saved): ",
                   k.status().ToString());
  }
  Assembler assembler(rules);

  WorkQueue queue(static_cast<size_t>(threads) * 4);
  std::vector<std::thread> workers;
  if (threads > 1) {
    for (int i = 0; i < threads; ++i) {
      workers.emplace_back([&] {
        while (std::optional<Item> item = queue.Pop()) assembler.Decode(*item);
      });
    }
  }

  store::StudyFilter filter;
  filter.lifecycles = {store::Lifecycle::kActive};
  filter.include_raw_json = true;
  filter.include_compiled = true;
  int64_t read = 0;
  absl::Status scanned = store.ForEachStudy(
      filter, [&](const store::StudyView& v) -> absl::Status {
        if (options.cancelled != nullptr &&
            options.cancelled->load(std::memory_order_acquire)) {
          return absl::CancelledError("snapshot load cancelled");
        }
        Item item;
        item.nct_id = std::string(v.nct_id);
        item.raw_json = std::string(v.raw_json);
        item.fresh = v.has_compiled && v.compiler_version == compiler_version &&
                     v.rules_version == rules_version &&
                     v.compiled_content_hash == v.content_hash;
        if (item.fresh) item.blob = std::string(v.compiled_blob);
        if (workers.empty()) {
          assembler.Decode(item);
        } else {
          queue.Push(std::move(item));
        }
        ++read;
        if (options.progress && options.progress_every > 0 &&
            read % options.progress_every == 0) {
          options.progress(read);
        }
        return absl::OkStatus();
      });
  queue.Close();
  for (std::thread& t : workers) t.join();
  TRIALMATCH_RETURN_IF_ERROR(scanned);
  if (options.progress) options.progress(read);

  LoadedSnapshot loaded;
  loaded.snapshot = assembler.Build();
  loaded.report = assembler.TakeReport();
  loaded.built_at = options.clock->Now();
  loaded.compiler_version = compiler_version;
  loaded.rules_version = rules_version;
  loaded.key = std::move(key);
  loaded.report.elapsed = absl::Now() - start;
  return loaded;
}

absl::StatusOr<match::SnapshotKey> SnapshotKeyOf(
    store::StudyStore& store, const criteria::RuleSet& rules) {
  TRIALMATCH_ASSIGN_OR_RETURN(store::StoreGeneration g, store.GetGeneration());
  match::SnapshotKey key;
  key.store_id = std::move(g.store_id);
  key.store_generation = g.generation;
  key.store_token = g.token;
  key.compiler_version = std::string(criteria::kCompilerVersion);
  key.rules_version = rules.version();
  return key;
}

bool IsCurrent(const LoadedSnapshot* loaded, store::StudyStore& store,
               const criteria::RuleSet& rules) {
  if (loaded == nullptr || !loaded->key.has_value()) return false;
  absl::StatusOr<match::SnapshotKey> now = SnapshotKeyOf(store, rules);
  return now.ok() && *now == *loaded->key;
}

std::string DefaultSnapshotPath(const std::string& store_path) {
  if (store_path.empty() || store_path == ":memory:") return "";
  return store_path + ".snapshot";
}

std::string SnapshotFilePath(const std::string& flag,
                             const std::string& store_path) {
  if (flag.empty()) return DefaultSnapshotPath(store_path);
  if (flag == "none") return "";
  return flag;
}

absl::StatusOr<LoadedSnapshot> LoadSnapshotFile(
    store::StudyStore& store, std::shared_ptr<const criteria::RuleSet> rules,
    const std::string& path) {
  if (rules == nullptr) {
    return absl::InvalidArgumentError(
        "LoadSnapshotFile: rules must not be null");
  }
  if (path.empty()) {
    return absl::NotFoundError("no snapshot file (empty path)");
  }
  const absl::Time start = absl::Now();
  TRIALMATCH_ASSIGN_OR_RETURN(match::SnapshotKey key,
                              SnapshotKeyOf(store, *rules));
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("no snapshot file ", path));
  }
  match::SnapshotReadOptions read;
  read.rules = rules;
  TRIALMATCH_ASSIGN_OR_RETURN(std::shared_ptr<const match::Snapshot> snapshot,
                              match::ReadSnapshot(path, key, read));
  LoadedSnapshot loaded;
  loaded.snapshot = std::move(snapshot);
  loaded.built_at =
      absl::FromUnixNanos(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                          st.st_mtim.tv_nsec);
  loaded.compiler_version = key.compiler_version;
  loaded.rules_version = key.rules_version;
  loaded.key = std::move(key);
  loaded.from_file = true;
  loaded.report.studies = static_cast<int64_t>(loaded.snapshot->size());
  loaded.report.file = path;
  loaded.report.elapsed = absl::Now() - start;
  return loaded;
}

absl::Status SaveSnapshotFile(const LoadedSnapshot& loaded,
                              const std::string& path) {
  if (!loaded.key.has_value() || loaded.snapshot == nullptr) {
    return absl::FailedPreconditionError(
        "the snapshot has no key (store generation unknown): not saved");
  }
  const absl::Time start = absl::Now();
  TRIALMATCH_RETURN_IF_ERROR(
      match::WriteSnapshot(*loaded.snapshot, *loaded.key, path));
  struct stat st;
  const double mb = ::stat(path.c_str(), &st) == 0
                        ? static_cast<double>(st.st_size) / 1e6
                        : 0;
  TM_LOG_INFO(kLog, "snapshot file written: ", path, " (",
              absl::StrFormat("%.1f MB", mb), ", store generation ",
              loaded.key->store_generation, ") in ",
              absl::FormatDuration(
                  absl::Trunc(absl::Now() - start, absl::Milliseconds(1))));
  return absl::OkStatus();
}

std::shared_ptr<const LoadedSnapshot> SnapshotHolder::Install(
    LoadedSnapshot loaded) {
  absl::MutexLock lock(&install_mu_);
  loaded.generation = ++generation_;
  auto shared = std::make_shared<const LoadedSnapshot>(std::move(loaded));
  current_.store(shared, std::memory_order_release);
  return shared;
}

SnapshotManager::SnapshotManager(SnapshotHolder* holder, LoadFn load,
                                 SnapshotManagerOptions options,
                                 PrepareFn prepare, InstalledFn on_installed)
    : holder_(holder),
      load_(std::move(load)),
      options_(options),
      prepare_(std::move(prepare)),
      on_installed_(std::move(on_installed)) {}

SnapshotManager::~SnapshotManager() { Stop(); }

void SnapshotManager::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stop_) return;
  started_ = true;
  requested_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void SnapshotManager::Stop() {
  cancelled_.store(true, std::memory_order_release);
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void SnapshotManager::RequestRebuild() {
  absl::MutexLock lock(&mu_);
  requested_ = true;
}

SnapshotManagerStatus SnapshotManager::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

absl::StatusOr<std::shared_ptr<const LoadedSnapshot>>
SnapshotManager::RebuildNow() {
  absl::MutexLock build(&build_mu_);
  return BuildLocked();
}

absl::StatusOr<std::shared_ptr<const LoadedSnapshot>>
SnapshotManager::BuildLocked(bool skip_if_current) {
  if (prepare_) prepare_();
  {
    // What was asked until now is served by this build.
    absl::MutexLock lock(&mu_);
    requested_ = false;
  }
  if (skip_if_current && options_.is_current) {
    std::shared_ptr<const LoadedSnapshot> current = holder_->Current();
    if (current != nullptr && options_.is_current()) {
      TM_LOG_INFO(kLog, "snapshot generation ", current->generation,
                  " is up to date with the store; not rebuilt");
      return current;
    }
  }
  absl::StatusOr<LoadedSnapshot> loaded = load_(cancelled_);
  if (!loaded.ok()) {
    absl::MutexLock lock(&mu_);
    ++status_.failures;
    status_.last_error = loaded.status();
    return loaded.status();
  }
  std::shared_ptr<const LoadedSnapshot> installed =
      InstallLocked(*std::move(loaded));
  if (options_.persist && !installed->from_file) options_.persist(*installed);
  return installed;
}

std::shared_ptr<const LoadedSnapshot> SnapshotManager::InstallLocked(
    LoadedSnapshot loaded) {
  const SnapshotLoadReport report = loaded.report;
  std::shared_ptr<const LoadedSnapshot> installed =
      holder_->Install(std::move(loaded));
  {
    absl::MutexLock lock(&mu_);
    ++status_.builds;
    status_.last_error = absl::OkStatus();
    status_.last_report = report;
  }
  TM_LOG_INFO(kLog, "generation ", installed->generation, ": ",
              report.Summary());
  if (on_installed_) on_installed_(*installed);
  return installed;
}

bool SnapshotManager::InitialLoadLocked() {
  {
    // The request made by Start() is served by the file when it loads;
    // requests made from now on are kept.
    absl::MutexLock lock(&mu_);
    requested_ = false;
  }
  absl::StatusOr<LoadedSnapshot> loaded = options_.initial_load();
  if (!loaded.ok()) {
    TM_LOG_INFO(kLog, "building the snapshot (", loaded.status().message(),
                ")");
    absl::MutexLock lock(&mu_);
    requested_ = true;
    return false;
  }
  InstallLocked(*std::move(loaded));
  return true;
}

void SnapshotManager::Loop() {
  if (options_.initial_load) {
    absl::MutexLock build(&build_mu_);
    InitialLoadLocked();
  }
  std::optional<absl::Time> retry_at;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || requested_;
      };
      mu_.AwaitWithDeadline(absl::Condition(&woken),
                            retry_at.value_or(absl::InfiniteFuture()));
      if (stop_) return;
      if (!requested_ && !(retry_at.has_value() && absl::Now() >= *retry_at)) {
        continue;
      }
    }
    absl::MutexLock build(&build_mu_);
    absl::StatusOr<std::shared_ptr<const LoadedSnapshot>> built =
        BuildLocked(/*skip_if_current=*/true);
    if (built.ok()) {
      retry_at.reset();
    } else if (built.status().code() == absl::StatusCode::kCancelled &&
               cancelled_.load(std::memory_order_acquire)) {
      return;
    } else {
      TM_LOG_WARNING(kLog,
                     "building the snapshot failed (keeping the current "
                     "one; retrying in ",
                     absl::FormatDuration(options_.retry_interval),
                     "): ", built.status().ToString());
      retry_at = absl::Now() + options_.retry_interval;
    }
  }
}

}  // namespace trialmatch::server
