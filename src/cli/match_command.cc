// `trialmatch match`: matches a batch of patients against the studies of a
// local store (in process) or of a running server (MatchingService over
// gRPC), streaming: records are read, matched and written one window at a
// time, so millions of patients never sit in memory.
//
// Input (cli/batch_input.h): JSON Lines of profiles or FHIR Bundles, one
// JSON document, or a directory of *.json; "-" = stdin. --shard/--shards
// (default index: $JOB_COMPLETION_INDEX, Kubernetes Indexed Jobs) keep every
// n-th record, so n processes partition the input exactly.
//
// Output, in input order, one line per record of the shard:
//   JSON Lines (default):
//     {"position":3,"where":"line 3","match":{<MatchPatientResponse JSON>}}
//     {"position":4,"where":"line 4","error":{"code":3,"code_name":
//      "INVALID_ARGUMENT","message":"patient.profile_json: age_years: ..."}}
//   --csv: one row per ranked study (columns in kCsvHeader), a record that
//     failed gives one row with `error` set, a patient with no result none.
// The answers are those of MatchPatient (server/match_request.h is shared),
// whichever of --store / --server is used. A bad record is reported by
// position (on its output line, and counted on stderr) and skipped; it never
// stops the batch. Messages never quote patient values.
//
// With --store, the matcher's snapshot comes from the snapshot file beside
// the store when it is fresh (server/snapshot_manager.h, LoadSnapshotFile),
// else it is built from the store and saved there for the next run (a
// directory that is not writable only means the next run builds again).
//
// Exit: 0 when every record of the shard was read (bad records included), 1
// when the input, the store, the rules or the server failed, 2 for a usage
// error.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/batch_input.h"
#include "cli/cli.h"
#include "cli/command_flags.h"
#include "cli/flags.h"
#include "cli/rules_location.h"
#include "common/clock.h"
#include "common/logging.h"
#include "google/protobuf/arena.h"
#include "grpcpp/grpcpp.h"
#include "match/matcher.h"
#include "nlohmann/json.hpp"
#include "protojson/printer.h"
#include "server/grpc_status.h"
#include "server/match_request.h"
#include "server/snapshot_manager.h"
#include "store/study_store.h"
#include "sync/progress.h"
#include "trialmatch/v1/matching_service.grpc.pb.h"

namespace trialmatch::cli {
namespace {

constexpr char kCmd[] = "trialmatch match";

constexpr char kCsvHeader[] =
    "position,patient_id,rank,nct_id,verdict,score,satisfied,violated,"
    "unknown,nearest_site_km,overall_status,title,error\n";

struct MatchFlags {
  std::string patients;
  std::string out = "-";
  bool csv = false;
  std::string store;
  std::string snapshot_file;  // "" = <store>.snapshot, "none" = no file
  std::string server;
  int threads = 0;
  int limit = 0;
  int shard = -1;
  int shards = 1;
  std::string format = "auto";
  std::vector<std::string> verdicts;
  std::vector<std::string> statuses;
  bool any_status = false;
  double max_distance_km = -1;
  bool exclude_unlocated = false;
  bool explain = false;
  bool include_unrelated = false;
  bool fhir_conditions_complete = false;
  std::string reference_date;
  std::string rules;
  int window = 0;
  absl::Duration connect_timeout = absl::Seconds(10);
  std::string log_level = "warning";
};

// One record on its way through the pipeline, written in input order.
struct Job {
  int64_t position = 0;
  std::string where;
  // Set when the answer is known.
  bool done = false;
  v1::MatchPatientsResponse response;
  // Or the output already rendered (ResultWriter::Render, by a local
  // matching thread: `response` stays empty), with what it counts.
  std::optional<std::string> rendered;
  bool rendered_matched = false;
  int rendered_results = 0;
};

std::string CsvField(std::string_view text) {
  bool quote = false;
  for (char c : text) {
    if (c == ',' || c == '"' || c == '\n' || c == '\r') quote = true;
  }
  if (!quote) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string VerdictText(v1::Verdict v) {
  std::string name = v1::Verdict_Name(v);
  constexpr std::string_view kPrefix = "VERDICT_";
  if (name.rfind(kPrefix, 0) == 0) name.erase(0, kPrefix.size());
  return name;
}

// Writes results in order, JSON Lines or CSV; counts what it wrote. Render
// is const and may run on any thread; the rest is the writer's.
class ResultWriter {
 public:
  ResultWriter(std::ostream* out, bool csv) : out_(out), csv_(csv) {
    json_options_.preserve_proto_field_names = true;
    if (csv_) *out_ << kCsvHeader;
  }

  // The output of record `position` (read from `where`) with answer `r`
  // into `text`, replaced; false when it is an error record (the answer's,
  // or one that could not be printed).
  bool Render(int64_t position, std::string_view where,
              const v1::MatchPatientsResponse& r, std::string* text) const {
    text->clear();
    if (csv_) {
      RenderCsv(position, r, text);
      return !r.has_error();
    }
    return RenderJson(position, where, r, text);
  }

  void Write(const Job& job) {
    bool matched;
    int results;
    const std::string* text;
    if (job.rendered.has_value()) {
      matched = job.rendered_matched;
      results = job.rendered_results;
      text = &*job.rendered;
    } else {
      matched = Render(job.position, job.where, job.response, &line_);
      results = job.response.match().results_size();
      text = &line_;
    }
    out_->write(text->data(), static_cast<std::streamsize>(text->size()));
    if (matched) {
      ++matched_;
      results_ += results;
    } else {
      ++errors_;
    }
    if (on_written_) on_written_(matched_ + errors_);
  }

  // Called after each record is written, with the records written so far.
  void set_on_written(std::function<void(int64_t)> on_written) {
    on_written_ = std::move(on_written);
  }

  bool ok() const { return out_->good(); }
  int64_t matched() const { return matched_; }
  int64_t errors() const { return errors_; }
  int64_t results() const { return results_; }

 private:
  bool RenderJson(int64_t position, std::string_view where,
                  const v1::MatchPatientsResponse& r, std::string* line) const {
    absl::StrAppend(line, "{\"position\":", position,
                    ",\"where\":", nlohmann::json(where).dump());
    const size_t head = line->size();
    bool matched = false;
    if (!r.has_error()) {
      line->append(",\"match\":");
      // protobuf's JSON mapping, byte for byte (protojson/printer.h).
      matched = protojson::PrintJson(r.match(), json_options_, line).ok();
      if (matched) {
        line->append("}\n");
      } else {
        line->resize(head);
      }
    }
    if (!matched) {
      nlohmann::json e =
          r.has_error()
              ? nlohmann::json{{"code", r.error().code()},
                               {"code_name", r.error().code_name()},
                               {"message", r.error().message()}}
              : nlohmann::json{{"code", 13},
                               {"code_name", "INTERNAL"},
                               {"message", "the answer could not be printed"}};
      absl::StrAppend(line, ",\"error\":", e.dump(), "}\n");
    }
    return matched;
  }

  void RenderCsv(int64_t position, const v1::MatchPatientsResponse& r,
                 std::string* line) const {
    if (r.has_error()) {
      absl::StrAppend(line, position, ",,,,,,,,,,,,",
                      CsvField(absl::StrCat(r.error().code_name(), ": ",
                                            r.error().message())),
                      "\n");
    } else {
      const std::string id = CsvField(r.match().patient_id());
      for (const v1::MatchResult& m : r.match().results()) {
        absl::StrAppend(line, position, ",", id, ",", m.rank(), ",", m.nct_id(),
                        ",", VerdictText(m.verdict()), ",",
                        absl::StrFormat("%.4f", m.score()), ",",
                        m.counts().satisfied(), ",", m.counts().violated(), ",",
                        m.counts().unknown(), ",");
        if (m.has_nearest_site()) {
          absl::StrAppend(
              line, absl::StrFormat("%.1f", m.nearest_site().distance_km()));
        }
        absl::StrAppend(line, ",", m.overall_status(), ",", CsvField(m.title()),
                        ",\n");
      }
    }
  }

  std::ostream* const out_;
  const bool csv_;
  protojson::PrintOptions json_options_;
  std::string line_;
  int64_t matched_ = 0;
  int64_t errors_ = 0;
  int64_t results_ = 0;
  std::function<void(int64_t)> on_written_;
};

// The jobs in input order, at most `window` of them in flight: the producer
// (the reader) blocks while the window is full, the consumer (the writer)
// takes the front once it is done. Thread-safe.
class OrderedWindow {
 public:
  explicit OrderedWindow(size_t window) : window_(window) {}

  // Blocks while the window is full (or until Abort). Null after Abort.
  // `answer`, when given, is the job's answer already (e.g. a record that
  // could not be read): the job is added done.
  std::shared_ptr<Job> Add(
      int64_t position, std::string where,
      std::optional<v1::MatchPatientsResponse> answer = std::nullopt) {
    absl::MutexLock lock(&mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return jobs_.size() < window_ || aborted_;
    };
    mu_.Await(absl::Condition(&room));
    if (aborted_) return nullptr;
    auto job = std::make_shared<Job>();
    job->position = position;
    job->where = std::move(where);
    if (answer.has_value()) {
      job->response = *std::move(answer);
      job->done = true;
    }
    jobs_.push_back(job);
    return job;
  }

  // Publishes an answer.
  void Complete(Job* job, v1::MatchPatientsResponse response) {
    absl::MutexLock lock(&mu_);
    job->response = std::move(response);
    job->done = true;
  }
  // Publishes an answer already rendered (ResultWriter::Render).
  void Complete(Job* job, std::string rendered, bool matched, int results) {
    absl::MutexLock lock(&mu_);
    job->rendered = std::move(rendered);
    job->rendered_matched = matched;
    job->rendered_results = results;
    job->done = true;
  }

  // No more Add().
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  // Wakes everyone; Add returns null, Front returns null.
  void Abort() {
    absl::MutexLock lock(&mu_);
    aborted_ = true;
  }

  // The front job once it is done (`wait_done`) or merely present; null at
  // the end (closed and empty) or after Abort.
  std::shared_ptr<Job> Front(bool wait_done) {
    absl::MutexLock lock(&mu_);
    auto ready = [this, wait_done]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (aborted_) return true;
      if (jobs_.empty()) return closed_;
      return !wait_done || jobs_.front()->done;
    };
    mu_.Await(absl::Condition(&ready));
    if (aborted_ || jobs_.empty()) return nullptr;
    return jobs_.front();
  }
  void PopFront() {
    absl::MutexLock lock(&mu_);
    jobs_.pop_front();
  }

 private:
  const size_t window_;
  absl::Mutex mu_;
  std::deque<std::shared_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
};

// A bounded queue of work for the local matching threads.
class WorkQueue {
 public:
  void Push(std::shared_ptr<Job> job, v1::PatientInput input) {
    absl::MutexLock lock(&mu_);
    items_.emplace_back(std::move(job), std::move(input));
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  bool Pop(std::shared_ptr<Job>* job, v1::PatientInput* input) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !items_.empty() || closed_;
    };
    mu_.Await(absl::Condition(&ready));
    if (items_.empty()) return false;
    *job = std::move(items_.front().first);
    *input = std::move(items_.front().second);
    items_.pop_front();
    return true;
  }

 private:
  absl::Mutex mu_;
  std::deque<std::pair<std::shared_ptr<Job>, v1::PatientInput>> items_
      ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

v1::PatientInput InputOf(BatchRecord& record) {
  v1::PatientInput input;
  if (record.form == PatientForm::kFhirBundle) {
    input.set_fhir_bundle_json(std::move(record.text));
  } else {
    input.set_profile_json(std::move(record.text));
  }
  return input;
}

v1::MatchPatientsResponse ErrorResponse(const absl::Status& status) {
  v1::MatchPatientsResponse r;
  server::MatchErrorToProto(status, r.mutable_error());
  return r;
}

// The options every request carries, from the flags. kInvalidArgument as
// server::OptionsFromProto (checked once up front).
absl::StatusOr<v1::MatchOptions> OptionsFromFlags(const MatchFlags& f) {
  v1::MatchOptions o;
  o.set_top_k(f.limit);
  for (const std::string& v : f.verdicts) {
    v1::Verdict verdict;
    std::string name = absl::AsciiStrToUpper(v);
    if (!v1::Verdict_Parse("VERDICT_" + name, &verdict) ||
        verdict == v1::VERDICT_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          "--verdicts: each must be eligible, possible or ineligible");
    }
    o.add_verdicts(verdict);
  }
  for (const std::string& s : f.statuses) o.add_overall_statuses(s);
  o.set_any_overall_status(f.any_status);
  if (f.max_distance_km >= 0) o.set_max_distance_km(f.max_distance_km);
  o.set_exclude_unlocated(f.exclude_unlocated);
  o.set_include_explanations(f.explain);
  o.set_include_unrelated(f.include_unrelated);
  o.set_fhir_conditions_complete(f.fhir_conditions_complete);
  o.set_reference_date(f.reference_date);
  absl::StatusOr<server::RequestOptions> checked = server::OptionsFromProto(o);
  if (!checked.ok()) return checked.status();
  return o;
}

// Totals for the summary line.
struct BatchTotals {
  int64_t records = 0;
  // When the reading began (after the snapshot load or the connection).
  absl::Time started = absl::InfinitePast();
};

// Reads every record of the shard into `window`; `submit` takes each
// readable one (its input), read errors are completed here.
absl::Status ReadAll(
    BatchReader& reader, OrderedWindow& window, const std::atomic<bool>& stop,
    BatchTotals* totals,
    const std::function<void(std::shared_ptr<Job>, v1::PatientInput)>& submit) {
  totals->started = absl::Now();
  while (!stop.load(std::memory_order_acquire)) {
    std::optional<BatchRecord> record = reader.Next();
    if (!record.has_value()) break;
    ++totals->records;
    if (!record->error.ok()) {
      if (window.Add(record->position, record->Where(),
                     ErrorResponse(record->error)) == nullptr) {
        break;  // aborted
      }
      continue;
    }
    std::shared_ptr<Job> job = window.Add(record->position, record->Where());
    if (job == nullptr) break;  // aborted
    submit(std::move(job), InputOf(*record));
  }
  window.Close();
  return reader.status();
}

// Writes the window's jobs in order until it is closed and drained.
// `next_remote` answers a job that is not done locally (remote mode); null
// in local mode (then the writer waits for the workers).
absl::Status WriteAll(OrderedWindow& window, ResultWriter& writer,
                      const std::function<absl::Status(Job*)>& next_remote) {
  while (true) {
    std::shared_ptr<Job> job = window.Front(/*wait_done=*/!next_remote);
    if (job == nullptr) return absl::OkStatus();
    // Local mode: Front() waited for `done` under the window's lock. Remote
    // mode: a job is either added done (a record that could not be read) or
    // answered here, by the next response of the stream.
    if (!job->done && next_remote) {
      absl::Status got = next_remote(job.get());
      if (!got.ok()) {
        window.Abort();
        return got;
      }
    }
    writer.Write(*job);
    window.PopFront();
    if (!writer.ok()) {
      window.Abort();
      return absl::DataLossError("writing the output failed");
    }
  }
}

// Local: the store's snapshot, matched on `threads` threads.
absl::Status RunLocal(const MatchFlags& f, const v1::MatchOptions& options,
                      BatchReader& reader, ResultWriter& writer,
                      const std::atomic<bool>& stop, BatchTotals* totals) {
  absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> rules =
      FindAndLoadRules(f.rules);
  if (!rules.ok()) {
    return absl::Status(rules.status().code(),
                        absl::StrCat("cannot load the eligibility rules: ",
                                     rules.status().message()));
  }
  store::StoreOptions store_options;
  store_options.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<store::StudyStore>> store =
      store::StudyStore::Open(f.store, store_options);
  if (!store.ok()) {
    return absl::Status(store.status().code(),
                        absl::StrCat("cannot open the store ", f.store, ": ",
                                     store.status().message()));
  }
  // The snapshot file when fresh; else built, then saved for the next run
  // (best effort: a read-only directory only costs the next run the build).
  const std::string snapshot_file =
      server::SnapshotFilePath(f.snapshot_file, f.store);
  absl::StatusOr<server::LoadedSnapshot> loaded =
      server::LoadSnapshotFile(**store, *rules, snapshot_file);
  if (!loaded.ok()) {
    if (!snapshot_file.empty() &&
        loaded.status().code() != absl::StatusCode::kNotFound) {
      std::cerr << kCmd
                << ": snapshot file not used: " << loaded.status().message()
                << "\n";
    }
    server::SnapshotLoadOptions load;
    load.threads = f.threads;
    load.cancelled = &stop;
    loaded = server::LoadSnapshot(**store, *rules, load);
    if (!loaded.ok()) return loaded.status();
    if (!snapshot_file.empty()) {
      if (absl::Status saved = server::SaveSnapshotFile(*loaded, snapshot_file);
          !saved.ok()) {
        std::cerr << kCmd << ": snapshot file not saved: " << saved.message()
                  << "\n";
      }
    }
  }
  std::cerr << kCmd << ": " << loaded->report.Summary() << "\n";
  loaded->generation = 1;
  const server::LoadedSnapshot& snapshot = *loaded;
  const match::Matcher matcher;

  const int threads =
      f.threads > 0
          ? f.threads
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  OrderedWindow window(f.window > 0 ? static_cast<size_t>(f.window)
                                    : static_cast<size_t>(threads) * 16);
  WorkQueue work;
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&] {
      // Each answer is built on this thread's arena, printed, and dropped
      // with the arena's Reset: its thousands of strings cost no malloc or
      // free of their own. The first block is kept across Resets (a top 50
      // with explanations fits in it).
      constexpr size_t kFirstBlock = size_t{1} << 20;
      auto first_block = std::make_unique<char[]>(kFirstBlock);
      google::protobuf::ArenaOptions arena_options;
      arena_options.initial_block = first_block.get();
      arena_options.initial_block_size = kFirstBlock;
      arena_options.max_block_size = kFirstBlock;
      google::protobuf::Arena arena(arena_options);
      std::shared_ptr<Job> job;
      v1::PatientInput input;
      while (work.Pop(&job, &input)) {
        auto* response =
            google::protobuf::Arena::CreateMessage<v1::MatchPatientsResponse>(
                &arena);
        const absl::Status matched = server::MatchRequestInto(
            snapshot, matcher, input, options,
            [&stop]() -> absl::Status {
              return stop.load(std::memory_order_acquire)
                         ? absl::CancelledError("interrupted")
                         : absl::OkStatus();
            },
            response->mutable_match());
        if (!matched.ok()) {
          server::MatchErrorToProto(matched, response->mutable_error());
        }
        // Rendered here, not by the writer: the answer is printed by the
        // thread that built it, in parallel (one writer thread printing and
        // freeing every answer bounded the batch), and the writer only
        // writes the text.
        std::string text;
        const bool ok =
            writer.Render(job->position, job->where, *response, &text);
        window.Complete(job.get(), std::move(text), ok,
                        response->match().results_size());
        arena.Reset();
      }
    });
  }
  absl::Status read_status;
  std::thread producer([&] {
    read_status = ReadAll(reader, window, stop, totals,
                          [&](std::shared_ptr<Job> job, v1::PatientInput in) {
                            work.Push(std::move(job), std::move(in));
                          });
    work.Close();
  });
  absl::Status write_status = WriteAll(window, writer, nullptr);
  work.Close();
  producer.join();
  for (std::thread& t : workers) t.join();
  if (!write_status.ok()) return write_status;
  return read_status;
}

// Remote: one MatchPatients stream; the reader thread writes requests (gRPC
// flow control and the window bound what is in flight), this thread reads
// the responses, which come in request order.
absl::Status RunRemote(const MatchFlags& f, const v1::MatchOptions& options,
                       BatchReader& reader, ResultWriter& writer,
                       const std::atomic<bool>& stop, BatchTotals* totals) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      f.server, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(
          absl::ToChronoTime(absl::Now() + f.connect_timeout))) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", f.server, " within ",
                     absl::FormatDuration(f.connect_timeout)));
  }
  std::unique_ptr<v1::MatchingService::Stub> stub =
      v1::MatchingService::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->MatchPatients(&context);

  OrderedWindow window(f.window > 0 ? static_cast<size_t>(f.window) : 256);
  std::atomic<bool> write_failed{false};
  absl::Status read_status;
  std::thread producer([&] {
    read_status =
        ReadAll(reader, window, stop, totals,
                [&](std::shared_ptr<Job> job, v1::PatientInput in) {
                  if (write_failed.load(std::memory_order_acquire)) return;
                  v1::MatchPatientsRequest request;
                  request.set_correlation_id(job->where);
                  *request.mutable_patient() = std::move(in);
                  *request.mutable_options() = options;
                  if (!stream->Write(request)) {
                    // The stream ended; the reader below gets its status.
                    write_failed.store(true, std::memory_order_release);
                  }
                });
    stream->WritesDone();
  });
  // A Ctrl-C stops the reading; what was sent is still answered.
  absl::Status write_status =
      WriteAll(window, writer, [&](Job* job) -> absl::Status {
        v1::MatchPatientsResponse response;
        if (!stream->Read(&response)) {
          grpc::Status status = stream->Finish();
          if (status.ok()) {
            return absl::DataLossError(
                "the server ended the stream before answering every patient");
          }
          return absl::Status(
              static_cast<absl::StatusCode>(status.error_code()),
              absl::StrCat("from ", f.server, ": ", status.error_message()));
        }
        window.Complete(job, std::move(response));
        return absl::OkStatus();
      });
  if (!write_status.ok()) {
    context.TryCancel();
    producer.join();
    return write_status;
  }
  producer.join();
  grpc::Status finished = stream->Finish();
  if (!finished.ok()) {
    return absl::Status(
        static_cast<absl::StatusCode>(finished.error_code()),
        absl::StrCat("from ", f.server, ": ", finished.error_message()));
  }
  return read_status;
}

std::atomic<bool>* g_stop = nullptr;
extern "C" void OnInterrupt(int) {
  if (g_stop != nullptr) g_stop->store(true);
}

}  // namespace

int MatchCommand(const std::vector<std::string>& args) {
  MatchFlags f;
  FlagSet flags(
      kCmd,
      "Matches patients (JSON Lines of profiles or FHIR Bundles, a JSON "
      "document, or a directory of *.json) against the studies of a local "
      "store (--store) or a running server (--server); writes one JSON line "
      "(or CSV rows) per patient, in input order. Bad records are reported "
      "by position and skipped.");
  flags.String("patients", &f.patients,
               "patients file, directory, or - for stdin (required)");
  flags.String("out", &f.out, "output file (- = stdout)");
  flags.Bool("csv", &f.csv, "CSV rows (one per ranked study) instead of JSON");
  flags.String("store", &f.store,
               "match in process on this study store (default: the default "
               "store, unless --server)");
  flags.String("snapshot_file", &f.snapshot_file,
               "with --store: the matcher's snapshot file, read when fresh, "
               "else written after building when the directory is writable "
               "(default: <store>.snapshot; 'none': build, save nothing)");
  flags.String("server", &f.server,
               "match on a trialmatch server, HOST:PORT (MatchingService)");
  flags.Int("threads", &f.threads,
            "matching threads, in process (0 = one per core)");
  flags.Int("limit", &f.limit, "results per patient (0 = 50)");
  flags.Int("shard", &f.shard,
            "this process's shard, 0..shards-1 (default: "
            "$JOB_COMPLETION_INDEX)");
  flags.Int("shards", &f.shards, "number of shards");
  flags.String("format", &f.format, "auto, profile or fhir");
  flags.StringList("verdicts", &f.verdicts,
                   "verdicts to return: eligible, possible, ineligible "
                   "(default eligible,possible)");
  flags.StringList("statuses", &f.statuses,
                   "study overall statuses (default "
                   "RECRUITING,NOT_YET_RECRUITING)");
  flags.Bool("any_status", &f.any_status, "consider every overall status");
  flags.Double("max_distance_km", &f.max_distance_km,
               "travel limit from the patient's location (< 0 = none)");
  flags.Bool("exclude_unlocated", &f.exclude_unlocated,
             "with a distance limit, drop studies without a located site");
  flags.Bool("explain", &f.explain,
             "explain every predicate, per-criterion outcomes");
  flags.Bool("include_unrelated", &f.include_unrelated,
             "also studies unrelated to the patient's conditions");
  flags.Bool("fhir_conditions_complete", &f.fhir_conditions_complete,
             "FHIR bundles hold the complete problem list");
  flags.String("reference_date", &f.reference_date,
               "the day ages are computed on (YYYY-MM-DD; default today)");
  flags.String("rules", &f.rules, "eligibility rules directory (--store)");
  flags.Duration("connect_timeout", &f.connect_timeout,
                 "how long to wait for --server to accept the connection");
  flags.Int("window", &f.window,
            "patients in flight (0 = 16 per thread locally, 256 remote)");
  flags.String("log_level", &f.log_level, "debug, info, warning or error");
  std::vector<std::string> rest;
  if (std::optional<int> exit = ParseFlagsOrExit(flags, args, &rest)) {
    return *exit;
  }
  if (!rest.empty() || f.patients.empty()) {
    std::cerr << kCmd << ": --patients is required (no positional "
              << "arguments)\n"
              << flags.Usage();
    return kExitUsage;
  }
  if (!ApplyLogLevelFlag(kCmd, f.log_level)) return kExitUsage;
  if (!f.store.empty() && !f.server.empty()) {
    std::cerr << kCmd << ": --store and --server are exclusive\n";
    return kExitUsage;
  }
  if (f.threads < 0 || f.window < 0) {
    std::cerr << kCmd << ": --threads and --window must be >= 0\n";
    return kExitUsage;
  }
  if (f.server.empty() && f.store.empty()) f.store = store::DefaultStorePath();
  absl::StatusOr<PatientForm> form = ParsePatientForm(f.format);
  absl::StatusOr<ShardSpec> shard = ResolveShard(f.shard, f.shards);
  absl::StatusOr<v1::MatchOptions> options = OptionsFromFlags(f);
  for (const absl::Status& s :
       {form.status(), shard.status(), options.status()}) {
    if (!s.ok()) {
      std::cerr << kCmd << ": " << s.message() << "\n";
      return kExitUsage;
    }
  }

  absl::StatusOr<BatchReader> reader =
      BatchReader::Open(f.patients, {.shard = *shard, .form = *form});
  if (!reader.ok()) {
    std::cerr << kCmd << ": --patients: " << reader.status().message() << "\n";
    return kExitFailure;
  }
  std::ofstream file;
  std::ostream* out = &std::cout;
  if (f.out != "-") {
    file.open(f.out, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << kCmd << ": cannot write " << f.out << "\n";
      return kExitFailure;
    }
    out = &file;
  }
  ResultWriter writer(out, f.csv);

  // Progress on stderr: a line redrawn in place on a terminal, a log line
  // every 10 s otherwise; counts and rates only, never patient data. The
  // total (for the percentage and the ETA) costs one extra pass over the
  // file without parsing; unknown for stdin.
  BatchTotals totals;
  sync::ProgressPrinter printer({.terminal = ::isatty(STDERR_FILENO) == 1},
                                common::SystemClock::Default());
  const std::optional<int64_t> total_records = reader->CountRecords();
  writer.set_on_written([&](int64_t written) {
    sync::Progress p;
    p.task = std::string(kCmd);
    p.step = "";
    p.items = "patients";
    p.show_bytes = false;
    p.studies = written;
    p.total_studies = total_records;
    p.elapsed = absl::Now() - totals.started;
    printer.Update(p);
  });

  std::atomic<bool> stop{false};
  g_stop = &stop;
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);

  absl::Status status =
      f.server.empty() ? RunLocal(f, *options, *reader, writer, stop, &totals)
                       : RunRemote(f, *options, *reader, writer, stop, &totals);
  out->flush();
  printer.Done();
  g_stop = nullptr;
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  // The matching alone (without the snapshot load).
  const double seconds =
      totals.started == absl::InfinitePast()
          ? 0
          : absl::ToDoubleSeconds(absl::Now() - totals.started);
  if (status.ok() || totals.records > 0) {
    std::cerr << kCmd << ": shard " << shard->index << "/" << shard->count
              << ": " << totals.records << " patients, " << writer.matched()
              << " matched, " << writer.errors() << " failed, "
              << writer.results() << " results in "
              << absl::StrFormat("%.2fs", seconds);
    if (seconds > 0 && totals.records > 0) {
      std::cerr << absl::StrFormat(
          " (%.0f patients/s)", static_cast<double>(totals.records) / seconds);
    }
    std::cerr << "\n";
  }
  if (!status.ok()) {
    std::cerr << kCmd << ": " << status.message() << "\n";
    return kExitFailure;
  }
  if (stop.load()) {
    std::cerr << kCmd << ": interrupted\n";
    return kExitFailure;
  }
  if (!writer.ok() || (file.is_open() && !file.good())) {
    std::cerr << kCmd << ": writing the output failed\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace trialmatch::cli
