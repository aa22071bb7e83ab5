#include "sync/syncer.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "model/study.h"
#include "sync/dates.h"

namespace trialmatch::sync {
namespace {

constexpr char kLog[] = "sync";

// `status` with `prefix` and `suffix` around its message, same code.
absl::Status Annotate(const absl::Status& status, std::string_view prefix,
                      std::string_view suffix = "") {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(common::ToAbsl(prefix), status.message(),
                                   common::ToAbsl(suffix)));
}

std::string Plural(int64_t n, std::string_view one, std::string_view many) {
  return absl::StrCat(n, " ", common::ToAbsl(n == 1 ? one : many));
}

}  // namespace

std::vector<std::string> WantedStatusesFromFlag(
    const std::vector<std::string>& values) {
  if (values.empty()) return DefaultWantedStatuses();
  if (values.size() == 1 && absl::AsciiStrToUpper(absl::StripAsciiWhitespace(
                                common::ToAbsl(values[0]))) == "ALL") {
    return {};
  }
  return values;
}

std::string_view SyncKindName(SyncKind kind) {
  switch (kind) {
    case SyncKind::kSkipped:
      return "skipped";
    case SyncKind::kFull:
      return "full";
    case SyncKind::kIncremental:
      return "incremental";
  }
  return "skipped";
}

std::string SyncReport::Summary() const {
  if (kind == SyncKind::kSkipped) {
    return absl::StrCat(
        "sync skipped: ClinicalTrials.gov data unchanged since the last sync "
        "(dataTimestamp ",
        data_timestamp.empty() ? "unknown" : data_timestamp, ")");
  }
  std::string line = absl::StrCat(
      common::ToAbsl(SyncKindName(kind)),
      " sync: ", Plural(fetched, "study", "studies"), " in ",
      Plural(pages, "page", "pages"), " (", inserted, " new, ", updated,
      " updated, ", unchanged, " unchanged, ", left_scope, " left scope, ",
      reactivated, " reactivated, ", vanished, " vanished");
  if (ignored > 0) absl::StrAppend(&line, ", ", ignored, " out of scope");
  if (skipped > 0)
    absl::StrAppend(&line, ", ", skipped, " bad records skipped");
  absl::StrAppend(&line, ") in ", FormatEta(elapsed));
  const double seconds = absl::ToDoubleSeconds(elapsed);
  if (seconds > 0) {
    absl::StrAppendFormat(&line, ", %.0f studies/s, %.1f MB/s",
                          static_cast<double>(fetched) / seconds,
                          static_cast<double>(json_bytes) / 1e6 / seconds);
  }
  if (resumed) {
    absl::StrAppend(&line, "; resumed after ",
                    Plural(resumed_pages, "page", "pages"));
  }
  if (restarted) absl::StrAppend(&line, "; restarted (stale page token)");
  if (reconcile_asked > 0) {
    absl::StrAppend(&line, "; reconciliation asked for ", reconcile_asked,
                    " ids, ", reconcile_returned, " returned");
  }
  if (!watermark.empty()) absl::StrAppend(&line, "; watermark ", watermark);
  return line;
}

// --- One run ----------------------------------------------------------------

class Syncer::Run {
 public:
  Run(Syncer& syncer, const SyncControl& control)
      : s_(syncer),
        control_(control),
        started_(syncer.clock_.Now()),
        wanted_(syncer.options_.wanted_statuses.begin(),
                syncer.options_.wanted_statuses.end()) {}

  absl::StatusOr<SyncReport> Execute(SyncMode mode);

 private:
  bool Cancelled() const {
    return control_.cancelled != nullptr && control_.cancelled->load();
  }
  bool Wanted(const std::string& status) const {
    return wanted_.empty() || wanted_.contains(status);
  }

  absl::Status Full();
  absl::Status FetchFullPages();
  // Asks the upstream for the ACTIVE studies this full sync did not return
  // and stores what comes back; returns how many are still unseen (those
  // ReconcileFullSync will mark VANISHED).
  absl::StatusOr<int64_t> Reconcile(int64_t sync_id);
  absl::Status Incremental();

  // Parses the page's raw studies (moving them out), skipping bad records
  // with a warning; raises *latest to the latest lastUpdatePostDate.
  std::vector<store::StudyRecord> ParseRecords(std::vector<std::string>& raw,
                                               std::string* latest);
  absl::StatusOr<store::UpsertCounts> Upsert(
      const std::vector<store::StudyRecord>& records,
      const store::UpsertOptions& options);
  void ShowProgress(std::string_view task);

  Syncer& s_;
  const SyncControl& control_;
  const absl::Time started_;
  const absl::flat_hash_set<std::string> wanted_;
  SyncReport report_;
  store::SyncState state_;  // as stored; kept in step with every commit
  ctgov::CtgovClient::Version version_;
};

absl::StatusOr<SyncReport> Syncer::Run::Execute(SyncMode mode) {
  if (Cancelled()) return absl::CancelledError("sync cancelled");
  TRIALMATCH_ASSIGN_OR_RETURN(state_, s_.store_->GetSyncState());
  const absl::Time now = s_.clock_.Now();
  bool full = mode == SyncMode::kFull || state_.full_sync.has_value() ||
              !state_.last_full_sync_at.has_value();
  if (mode == SyncMode::kAuto && !full &&
      s_.options_.full_sync_interval > absl::ZeroDuration() &&
      now - *state_.last_full_sync_at >= s_.options_.full_sync_interval) {
    TM_LOG_INFO(kLog, "last full sync was ",
                FormatEta(now - *state_.last_full_sync_at),
                " ago: running a full sync with reconciliation");
    full = true;
  }

  absl::StatusOr<ctgov::CtgovClient::Version> version = s_.client_.GetVersion();
  if (!version.ok()) {
    return Annotate(version.status(), "sync: ClinicalTrials.gov: ",
                    "; nothing was changed in the store");
  }
  version_ = *std::move(version);
  report_.data_timestamp = version_.parsed.data_timestamp;

  // The wanted statuses may have changed since the studies were stored.
  TRIALMATCH_ASSIGN_OR_RETURN(
      store::ScopeCounts scope,
      s_.store_->ApplyScope(s_.options_.wanted_statuses));
  if (scope.left_scope + scope.reactivated > 0) {
    TM_LOG_INFO(kLog, "wanted statuses changed: ", scope.left_scope,
                " studies left the scope, ", scope.reactivated,
                " came back into it");
    report_.left_scope += scope.left_scope;
    report_.reactivated += scope.reactivated;
  }

  TRIALMATCH_RETURN_IF_ERROR(full ? Full() : Incremental());
  report_.watermark = state_.watermark;
  report_.elapsed = s_.clock_.Now() - started_;
  return report_;
}

std::vector<store::StudyRecord> Syncer::Run::ParseRecords(
    std::vector<std::string>& raw, std::string* latest) {
  std::vector<store::StudyRecord> records;
  records.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    ++report_.fetched;
    report_.json_bytes += static_cast<int64_t>(raw[i].size());
    absl::StatusOr<store::StudyRecord> record =
        store::MakeStudyRecord(std::move(raw[i]));
    if (record.ok() && !model::IsValidNctId(record->study.nct_id)) {
      record = absl::DataLossError("invalid NCT id");
    }
    if (!record.ok()) {
      ++report_.skipped;
      TM_LOG_WARNING(kLog, "skipping record ", i, " of page ",
                     report_.pages + 1, ": ", record.status().ToString());
      continue;
    }
    *latest = LaterDate(*latest, record->study.last_update_post_date);
    records.push_back(*std::move(record));
  }
  raw.clear();
  return records;
}

absl::StatusOr<store::UpsertCounts> Syncer::Run::Upsert(
    const std::vector<store::StudyRecord>& records,
    const store::UpsertOptions& options) {
  TRIALMATCH_ASSIGN_OR_RETURN(store::UpsertCounts n,
                              s_.store_->UpsertStudies(records, options));
  report_.inserted += n.inserted;
  report_.updated += n.updated;
  report_.unchanged += n.unchanged;
  report_.left_scope += n.left_scope;
  report_.reactivated += n.reactivated;
  return n;
}

void Syncer::Run::ShowProgress(std::string_view task) {
  if (!control_.on_progress) return;
  Progress p;
  p.task = std::string(task);
  p.pages = report_.pages;
  p.studies = report_.fetched;
  p.studies_before = report_.resumed_studies;
  p.bytes = report_.json_bytes;
  p.total_studies = report_.total_count;
  p.elapsed = s_.clock_.Now() - started_;
  control_.on_progress(p);
}

// --- Full sync --------------------------------------------------------------

absl::Status Syncer::Run::Full() {
  report_.kind = SyncKind::kFull;
  TRIALMATCH_ASSIGN_OR_RETURN(store::FullSyncCursor cursor,
                              s_.store_->BeginFullSync());
  state_.full_sync = cursor;
  // After the last page the cursor has no token but pages behind it: only
  // the reconciliation is left.
  const bool pages_complete =
      cursor.pages_done > 0 && cursor.page_token.empty();
  if (cursor.pages_done > 0 || !cursor.page_token.empty()) {
    report_.resumed = true;
    report_.resumed_pages = cursor.pages_done;
    report_.resumed_studies = cursor.studies_seen;
    TM_LOG_INFO(kLog, "resuming full sync ", cursor.sync_id, " after ",
                Plural(cursor.pages_done, "page", "pages"), " (",
                cursor.studies_seen, " studies stored by the interrupted run)");
  } else {
    TM_LOG_INFO(kLog, "full sync ", cursor.sync_id, " of statuses ",
                s_.options_.wanted_statuses.empty()
                    ? std::string("(all)")
                    : absl::StrJoin(s_.options_.wanted_statuses, "|"),
                ", ", s_.options_.page_size, " studies per page");
  }

  if (!pages_complete) {
    const std::string resumed_token = cursor.page_token;
    absl::Status fetched = FetchFullPages();
    if (fetched.code() == absl::StatusCode::kInvalidArgument &&
        !resumed_token.empty() &&
        state_.full_sync->page_token == resumed_token) {
      // No page of this run was accepted: the saved token itself was
      // refused (tokens expire, or the query changed). Start over, under a
      // new sync id so that nothing stamped by the stale run counts as seen.
      TM_LOG_WARNING(kLog, "ClinicalTrials.gov rejected the saved page token (",
                     fetched.message(),
                     "); restarting the full sync from the first page");
      store::FullSyncCursor fresh;
      fresh.sync_id = state_.full_sync->sync_id + 1;
      fresh.started_at = s_.clock_.Now();
      store::SyncState restarted = state_;
      restarted.full_sync = fresh;
      TRIALMATCH_RETURN_IF_ERROR(s_.store_->PutSyncState(restarted));
      state_ = std::move(restarted);
      report_.restarted = true;
      report_.resumed_pages = 0;
      report_.resumed_studies = 0;
      fetched = FetchFullPages();
    }
    if (!fetched.ok()) {
      const int64_t done = state_.full_sync->pages_done;
      return Annotate(
          fetched, "full sync: ",
          absl::StrCat("; stopped after ", done, done == 1 ? " page" : " pages",
                       " in all; stored pages are kept and the "
                       "next sync resumes at page ",
                       done + 1));
    }
  }

  const int64_t sync_id = state_.full_sync->sync_id;
  absl::StatusOr<int64_t> to_vanish = Reconcile(sync_id);
  TRIALMATCH_RETURN_IF_ERROR(
      Annotate(to_vanish.status(), "full sync reconciliation: ",
               "; every page is stored, the next sync resumes the "
               "reconciliation"));

  store::SyncState final_state = state_;
  final_state.full_sync.reset();
  final_state.data_timestamp = version_.parsed.data_timestamp;
  final_state.last_full_sync_at = s_.clock_.Now();
  if (final_state.watermark.empty()) {
    final_state.watermark = DayOf(state_.full_sync->started_at);
  }
  final_state.last_sync_counts = {
      .fetched = report_.fetched,
      .inserted = report_.inserted,
      .updated = report_.updated,
      .unchanged = report_.unchanged,
      .left_scope = report_.left_scope,
      .vanished = *to_vanish,
  };
  TRIALMATCH_ASSIGN_OR_RETURN(
      store::ReconcileCounts reconciled,
      s_.store_->ReconcileFullSync(sync_id, final_state));
  report_.vanished = reconciled.vanished;
  state_ = std::move(final_state);
  if (absl::Status s = s_.store_->Checkpoint(); !s.ok()) {
    TM_LOG_WARNING(kLog,
                   "checkpoint after the full sync failed: ", s.ToString());
  }
  return absl::OkStatus();
}

absl::Status Syncer::Run::FetchFullPages() {
  ctgov::SearchParams params;
  params.filter.overall_status = s_.options_.wanted_statuses;
  params.page_size = s_.options_.page_size;
  params.count_total = true;
  params.page_token = state_.full_sync->page_token;
  const int64_t sync_id = state_.full_sync->sync_id;
  return s_.client_
      .ForEachPage(
          params, {.cancelled = control_.cancelled},
          [&](ctgov::StudyPage& page) -> absl::Status {
            if (page.total_count.has_value()) {
              report_.total_count = page.total_count;
            }
            const int64_t received = static_cast<int64_t>(page.studies.size());
            store::SyncState next = state_;
            std::vector<store::StudyRecord> records =
                ParseRecords(page.studies, &next.watermark);
            next.full_sync->page_token = page.next_page_token;
            next.full_sync->pages_done += 1;
            next.full_sync->studies_seen += received;
            store::UpsertOptions options;
            options.wanted_statuses = s_.options_.wanted_statuses;
            options.full_sync_id = sync_id;
            options.sync_state = next;
            TRIALMATCH_RETURN_IF_ERROR(Upsert(records, options).status());
            state_ = std::move(next);  // committed: page and cursor together
            ++report_.pages;
            ShowProgress("full sync");
            return absl::OkStatus();
          })
      .status();
}

absl::StatusOr<int64_t> Syncer::Run::Reconcile(int64_t sync_id) {
  TRIALMATCH_ASSIGN_OR_RETURN(std::vector<std::string> unseen,
                              s_.store_->ListActiveNotSeen(sync_id));
  if (unseen.empty()) return 0;
  TM_LOG_INFO(kLog, "asking ClinicalTrials.gov about ", unseen.size(),
              " stored studies the full sync did not return");
  const size_t batch = static_cast<size_t>(s_.options_.reconcile_batch_size);
  for (size_t begin = 0; begin < unseen.size(); begin += batch) {
    if (Cancelled()) return absl::CancelledError("sync cancelled");
    const size_t end = std::min(unseen.size(), begin + batch);
    ctgov::SearchParams params;
    params.filter.ids.assign(unseen.begin() + static_cast<ptrdiff_t>(begin),
                             unseen.begin() + static_cast<ptrdiff_t>(end));
    params.page_size = ctgov::kMaxPageSize;
    report_.reconcile_asked += static_cast<int64_t>(end - begin);
    const auto store_page = [&](ctgov::StudyPage& page) -> absl::Status {
      std::string ignored_date;
      std::vector<store::StudyRecord> records =
          ParseRecords(page.studies, &ignored_date);
      report_.reconcile_returned += static_cast<int64_t>(records.size());
      store::UpsertOptions options;
      options.wanted_statuses = s_.options_.wanted_statuses;
      options.full_sync_id = sync_id;
      TRIALMATCH_RETURN_IF_ERROR(Upsert(records, options).status());
      ++report_.pages;
      ShowProgress("reconciliation");
      return absl::OkStatus();
    };
    absl::StatusOr<ctgov::PagingSummary> paged = s_.client_.ForEachPage(
        params, {.cancelled = control_.cancelled}, store_page);
    if (!paged.ok()) return paged.status();
  }
  // Those still unseen were not returned at all: they are gone.
  TRIALMATCH_ASSIGN_OR_RETURN(unseen, s_.store_->ListActiveNotSeen(sync_id));
  return static_cast<int64_t>(unseen.size());
}

// --- Incremental sync -------------------------------------------------------

absl::Status Syncer::Run::Incremental() {
  if (s_.options_.skip_when_data_unchanged &&
      !version_.parsed.data_timestamp.empty() &&
      version_.parsed.data_timestamp == state_.data_timestamp) {
    report_.kind = SyncKind::kSkipped;
    return absl::OkStatus();
  }
  report_.kind = SyncKind::kIncremental;
  std::string watermark = state_.watermark;
  if (watermark.empty()) watermark = DayOf(*state_.last_full_sync_at);
  TRIALMATCH_ASSIGN_OR_RETURN(
      const std::string first_day,
      IncrementalStartDay(watermark, s_.options_.overlap));
  TM_LOG_INFO(kLog, "incremental sync of studies updated since ", first_day,
              " (watermark ", watermark, ", dataTimestamp ",
              state_.data_timestamp.empty() ? "unknown" : state_.data_timestamp,
              " -> ", version_.parsed.data_timestamp, ")");

  ctgov::SearchParams params;
  params.filter.advanced = UpdatedSinceFilter(first_day);
  params.page_size = s_.options_.page_size;
  params.count_total = true;
  std::string latest = state_.watermark;
  absl::Status status =
      s_.client_
          .ForEachPage(
              params, {.cancelled = control_.cancelled},
              [&](ctgov::StudyPage& page) -> absl::Status {
                if (page.total_count.has_value()) {
                  report_.total_count = page.total_count;
                }
                std::vector<store::StudyRecord> parsed =
                    ParseRecords(page.studies, &latest);
                std::vector<store::StudyRecord> records;
                records.reserve(parsed.size());
                for (store::StudyRecord& r : parsed) {
                  if (!Wanted(r.study.overall_status) &&
                      !s_.options_.store_unknown_out_of_scope) {
                    absl::StatusOr<store::StoredStudy> known =
                        s_.store_->GetStudy(r.study.nct_id);
                    if (absl::IsNotFound(known.status())) {
                      ++report_.ignored;
                      continue;
                    }
                    TRIALMATCH_RETURN_IF_ERROR(known.status());
                  }
                  records.push_back(std::move(r));
                }
                store::UpsertOptions options;
                options.wanted_statuses = s_.options_.wanted_statuses;
                TRIALMATCH_RETURN_IF_ERROR(Upsert(records, options).status());
                ++report_.pages;
                ShowProgress("incremental sync");
                return absl::OkStatus();
              })
          .status();
  if (!status.ok()) {
    return Annotate(status, "incremental sync: ",
                    absl::StrCat("; stopped after ", report_.pages,
                                 report_.pages == 1 ? " page" : " pages",
                                 "; what was stored is kept, the watermark is "
                                 "unchanged and the next sync starts over"));
  }
  // Every page is stored: move the watermark. (A crash before this commit
  // only means the next incremental sync repeats this one; upserts are
  // idempotent.)
  store::SyncState final_state = state_;
  final_state.watermark = latest;
  final_state.data_timestamp = version_.parsed.data_timestamp;
  final_state.last_incremental_sync_at = s_.clock_.Now();
  final_state.last_sync_counts = {
      .fetched = report_.fetched,
      .inserted = report_.inserted,
      .updated = report_.updated,
      .unchanged = report_.unchanged,
      .left_scope = report_.left_scope,
      .vanished = 0,
  };
  TRIALMATCH_RETURN_IF_ERROR(s_.store_->PutSyncState(final_state));
  state_ = std::move(final_state);
  return absl::OkStatus();
}

// --- Syncer -----------------------------------------------------------------

Syncer::Syncer(ctgov::CtgovClient client, store::StudyStore* store,
               SyncOptions options, common::Clock& clock)
    : client_(std::move(client)),
      store_(store),
      options_(std::move(options)),
      clock_(clock) {}

absl::StatusOr<std::unique_ptr<Syncer>> Syncer::Create(
    ctgov::CtgovClient client, store::StudyStore* store, SyncOptions options,
    common::Clock& clock) {
  if (store == nullptr) return absl::InvalidArgumentError("sync: no store");
  if (options.page_size < 1 || options.page_size > ctgov::kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sync: page size must be 1..1000, got ", options.page_size));
  }
  if (options.reconcile_batch_size < 1 ||
      options.reconcile_batch_size > ctgov::kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("sync: reconcile batch size must be 1..1000, got ",
                     options.reconcile_batch_size));
  }
  if (options.overlap < absl::ZeroDuration() ||
      options.full_sync_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "sync: overlap and full sync interval must not be negative");
  }
  std::vector<std::string> statuses;
  for (const std::string& s : options.wanted_statuses) {
    std::string status =
        absl::AsciiStrToUpper(absl::StripAsciiWhitespace(common::ToAbsl(s)));
    if (status.empty()) continue;
    if (std::find(statuses.begin(), statuses.end(), status) == statuses.end()) {
      statuses.push_back(std::move(status));
    }
  }
  options.wanted_statuses = std::move(statuses);
  return std::unique_ptr<Syncer>(
      new Syncer(std::move(client), store, std::move(options), clock));
}

absl::StatusOr<SyncReport> Syncer::Sync(SyncMode mode,
                                        const SyncControl& control) {
  absl::MutexLock lock(&sync_mu_);
  Run run(*this, control);
  return run.Execute(mode);
}

}  // namespace trialmatch::sync
