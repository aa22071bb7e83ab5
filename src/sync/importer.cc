#include "sync/importer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/json_splitter.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "model/study.h"

namespace trialmatch::sync {
namespace {

namespace fs = std::filesystem;
using common::JsonSplitter;

constexpr char kLog[] = "import";
constexpr std::string_view kBom = "\xEF\xBB\xBF";

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// At most 24 printable characters of an untrusted id, for messages.
std::string SafeExcerpt(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 24)) {
    out += absl::ascii_isprint(static_cast<unsigned char>(c)) ? c : '?';
  }
  if (text.size() > 24) out += "...";
  return out;
}

// Reads a file (or stdin) in chunks; the first bytes can be peeked (for
// format detection) and are then handed out again by Next().
class ChunkReader {
 public:
  static absl::StatusOr<std::unique_ptr<ChunkReader>> Open(
      const std::string& path, std::size_t chunk_bytes) {
    if (path == "-") {
      return std::unique_ptr<ChunkReader>(
          new ChunkReader(stdin, /*owned=*/false, path, chunk_bytes));
    }
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
      const int err = errno;
      if (err == ENOENT) {
        return absl::NotFoundError(absl::StrCat(path, ": no such file"));
      }
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": cannot open: ", std::strerror(err)));
    }
    return std::unique_ptr<ChunkReader>(
        new ChunkReader(f, /*owned=*/true, path, chunk_bytes));
  }
  ~ChunkReader() {
    if (owned_) std::fclose(file_);
  }
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;

  // Reads ahead until `enough(peeked)` holds, the peeked bytes reach `cap`,
  // or the input ends. The peeked bytes are returned first by Next().
  template <typename Pred>
  absl::StatusOr<std::string_view> Peek(Pred enough, std::size_t cap) {
    while (!eof_ && peeked_.size() < cap &&
           !enough(std::string_view(peeked_))) {
      TRIALMATCH_ASSIGN_OR_RETURN(std::string_view chunk, ReadChunk());
      peeked_.append(chunk);
    }
    return std::string_view(peeked_);
  }

  // The next chunk; empty at the end of the input.
  absl::StatusOr<std::string_view> Next() {
    if (!peeked_.empty() && !peeked_given_) {
      peeked_given_ = true;
      return std::string_view(peeked_);
    }
    if (peeked_given_) {  // free the peeked copy once it was consumed
      std::string().swap(peeked_);
      peeked_given_ = false;
    }
    return ReadChunk();
  }

  int64_t bytes_read() const { return bytes_read_; }
  // The read error Next()/Peek() returned, if any.
  const absl::Status& error() const { return error_; }

 private:
  ChunkReader(std::FILE* file, bool owned, std::string path,
              std::size_t chunk_bytes)
      : file_(file),
        owned_(owned),
        path_(std::move(path)),
        buffer_(std::max<std::size_t>(chunk_bytes, 1), '\0') {}

  absl::StatusOr<std::string_view> ReadChunk() {
    if (eof_) return std::string_view();
    const std::size_t n = std::fread(buffer_.data(), 1, buffer_.size(), file_);
    if (n < buffer_.size()) {
      if (std::ferror(file_)) {
        error_ = absl::FailedPreconditionError(
            absl::StrCat(path_, ": read error after byte ", bytes_read_ + n));
        return error_;
      }
      eof_ = true;
    }
    bytes_read_ += static_cast<int64_t>(n);
    return std::string_view(buffer_.data(), n);
  }

  std::FILE* const file_;
  const bool owned_;
  const std::string path_;
  std::string buffer_;
  std::string peeked_;
  bool peeked_given_ = false;
  bool eof_ = false;
  int64_t bytes_read_ = 0;
  absl::Status error_;
};

// The first JSON string at text[pos] ('"' expected) without unescaping, or
// nullopt when it is not complete within `text`.
std::optional<std::string_view> LeadingKey(std::string_view text,
                                           std::size_t pos) {
  if (pos >= text.size() || text[pos] != '"') return std::nullopt;
  for (std::size_t i = pos + 1; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      return text.substr(pos + 1, i - pos - 1);
    }
  }
  return std::nullopt;
}

class Importer {
 public:
  Importer(store::StudyStore& store, const ImportOptions& options,
           const ProgressCallback& progress, common::Clock& clock,
           std::optional<int64_t> total_bytes)
      : store_(store),
        options_(options),
        progress_(progress),
        clock_(clock),
        started_(clock.Now()),
        total_bytes_(total_bytes) {
    upsert_.wanted_statuses = options.wanted_statuses;
  }

  // Imports one input. `prefix` goes before every position ("dir/a.json: ").
  // Returns only fatal errors (store failures, unreadable input, an empty
  // single file); bad records and broken structure become problems.
  absl::Status ImportOne(const std::string& path, std::string_view prefix,
                         bool in_directory);

  absl::Status Flush();
  ImportReport Finish() {
    if (report_.problems_total >
        static_cast<int64_t>(report_.problems.size())) {
      TM_LOG_WARNING(kLog,
                     report_.problems_total -
                         static_cast<int64_t>(report_.problems.size()),
                     " more problems not shown");
    }
    report_.elapsed = clock_.Now() - started_;
    return std::move(report_);
  }

 private:
  absl::StatusOr<ImportFormat> Detect(ChunkReader& reader);
  absl::Status SplitStream(ChunkReader& reader, ImportFormat format,
                           std::string_view prefix);
  absl::Status ReadLines(ChunkReader& reader, std::string_view prefix);
  absl::Status Line(std::string_view line, int64_t line_no,
                    std::string_view prefix);
  // One record; returns only fatal (store) errors.
  absl::Status Record(std::string_view bytes, const std::string& where);
  void Problem(std::string where, absl::Status error);
  void Stopped(std::string_view prefix, const absl::Status& error);
  void ShowProgress();

  store::StudyStore& store_;
  const ImportOptions& options_;
  const ProgressCallback& progress_;
  common::Clock& clock_;
  const absl::Time started_;
  const std::optional<int64_t> total_bytes_;
  store::UpsertOptions upsert_;
  std::vector<store::StudyRecord> batch_;
  int64_t batches_ = 0;
  int64_t bytes_before_file_ = 0;  // bytes of the files already finished
  ChunkReader* current_ = nullptr;
  ImportReport report_;
};

void Importer::Problem(std::string where, absl::Status error) {
  ++report_.problems_total;
  if (report_.problems.size() < options_.max_problems_kept) {
    TM_LOG_WARNING(kLog, "skipped ", where, ": ", error.ToString());
    report_.problems.push_back({std::move(where), std::move(error)});
  }
}

void Importer::Stopped(std::string_view prefix, const absl::Status& error) {
  const absl::Status stopped(error.code(),
                             absl::StrCat(common::ToAbsl(prefix),
                                          "file structure broken, rest of "
                                          "the file not read: ",
                                          error.message()));
  Problem(absl::StrCat(common::ToAbsl(prefix), "file"), stopped);
  if (report_.stopped.ok()) report_.stopped = stopped;
}

absl::Status Importer::Record(std::string_view bytes,
                              const std::string& where) {
  ++report_.read;
  if (bytes.size() > options_.max_record_bytes) {
    Problem(where, absl::ResourceExhaustedError(absl::StrCat(
                       "record of ", bytes.size(), " bytes is larger than ",
                       options_.max_record_bytes)));
    ++report_.skipped;
    return absl::OkStatus();
  }
  absl::StatusOr<store::StudyRecord> record =
      store::MakeStudyRecord(std::string(bytes));
  if (record.ok() && !model::IsValidNctId(record->study.nct_id)) {
    record = absl::InvalidArgumentError(absl::StrCat(
        "invalid NCT id '", SafeExcerpt(record->study.nct_id), "'"));
  }
  if (!record.ok()) {
    Problem(where, record.status());
    ++report_.skipped;
    return absl::OkStatus();
  }
  batch_.push_back(*std::move(record));
  if (batch_.size() >= static_cast<std::size_t>(options_.batch_size)) {
    return Flush();
  }
  return absl::OkStatus();
}

absl::Status Importer::Flush() {
  if (batch_.empty()) return absl::OkStatus();
  TRIALMATCH_ASSIGN_OR_RETURN(store::UpsertCounts n,
                              store_.UpsertStudies(batch_, upsert_));
  batch_.clear();
  ++batches_;
  report_.inserted += n.inserted;
  report_.updated += n.updated;
  report_.unchanged += n.unchanged;
  report_.left_scope += n.left_scope;
  report_.reactivated += n.reactivated;
  ShowProgress();
  return absl::OkStatus();
}

void Importer::ShowProgress() {
  if (!progress_) return;
  Progress p;
  p.task = "import";
  p.step = "batch";
  p.pages = batches_;
  p.studies = report_.read;
  p.bytes =
      bytes_before_file_ + (current_ != nullptr ? current_->bytes_read() : 0);
  p.total_bytes = total_bytes_;
  p.elapsed = clock_.Now() - started_;
  progress_(p);
}

absl::StatusOr<ImportFormat> Importer::Detect(ChunkReader& reader) {
  // The first significant byte (after a BOM and whitespace).
  std::size_t first = 0;
  auto find_first = [&](std::string_view data) {
    std::size_t i = data.substr(0, kBom.size()) == kBom ? kBom.size() : 0;
    while (i < data.size() && IsJsonSpace(data[i])) ++i;
    first = i;
    return i < data.size();
  };
  TRIALMATCH_ASSIGN_OR_RETURN(std::string_view head,
                              reader.Peek(find_first, SIZE_MAX));
  if (!find_first(head)) {
    return absl::InvalidArgumentError(
        "empty: no JSON in the file, nothing imported");
  }
  if (head[first] == '[') return ImportFormat::kArray;
  if (head[first] != '{') return ImportFormat::kJsonLines;  // fails per line

  // An object: a /studies page starts with one of its members.
  std::size_t key_pos = 0;
  auto find_key = [&](std::string_view data) {
    std::size_t i = first + 1;
    while (i < data.size() && IsJsonSpace(data[i])) ++i;
    key_pos = i;
    return i < data.size() && (data[i] != '"' || LeadingKey(data, i));
  };
  TRIALMATCH_ASSIGN_OR_RETURN(head, reader.Peek(find_key, 1 << 16));
  if (find_key(head)) {
    const std::optional<std::string_view> key = LeadingKey(head, key_pos);
    if (key == "studies" || key == "totalCount" || key == "nextPageToken") {
      return ImportFormat::kStudiesPage;
    }
  }
  // Objects one per line (JSON Lines) or spread over lines (pretty-printed):
  // JSON Lines when the first line holds a whole value.
  auto has_line = [&](std::string_view data) {
    return data.find('\n', first) != std::string_view::npos;
  };
  TRIALMATCH_ASSIGN_OR_RETURN(head,
                              reader.Peek(has_line, options_.max_record_bytes));
  std::size_t end = head.find('\n', first);
  if (end == std::string_view::npos) end = head.size();
  const bool whole =
      JsonSplitter::SplitAll(
          head.substr(first, end - first), {.mode = JsonSplitter::kLines},
          [](const JsonSplitter::Element&) { return absl::OkStatus(); })
          .ok();
  return whole ? ImportFormat::kJsonLines : ImportFormat::kJsonValues;
}

absl::Status Importer::SplitStream(ChunkReader& reader, ImportFormat format,
                                   std::string_view prefix) {
  JsonSplitter::Options split;
  // Oversized records are skipped one by one (Record); only beyond the
  // splitter's own limit does the file stop.
  split.max_element_bytes = std::max(options_.max_record_bytes,
                                     JsonSplitter::Options().max_element_bytes);
  std::string_view label = "value ";
  if (format == ImportFormat::kArray) {
    split.mode = JsonSplitter::kArray;
    label = "element ";
  } else if (format == ImportFormat::kStudiesPage) {
    split.mode = JsonSplitter::kMemberArray;
    split.member = "studies";
  } else {
    split.mode = JsonSplitter::kLines;
  }
  absl::Status fatal;
  JsonSplitter splitter(split, [&](const JsonSplitter::Element& e) {
    const std::string where =
        format == ImportFormat::kStudiesPage
            ? absl::StrCat(common::ToAbsl(prefix), "studies[", e.index,
                           "] (byte ", e.offset, ")")
            : absl::StrCat(common::ToAbsl(prefix), common::ToAbsl(label),
                           e.index, " (byte ", e.offset, ")");
    fatal = Record(e.bytes, where);
    return fatal;
  });
  absl::Status status;
  while (status.ok()) {
    TRIALMATCH_ASSIGN_OR_RETURN(std::string_view chunk, reader.Next());
    if (chunk.empty()) break;
    status = splitter.Feed(chunk);
  }
  if (status.ok()) status = splitter.Finish();
  if (!fatal.ok()) return fatal;
  if (!status.ok()) Stopped(prefix, status);
  return absl::OkStatus();
}

absl::Status Importer::Line(std::string_view line, int64_t line_no,
                            std::string_view prefix) {
  while (!line.empty() && IsJsonSpace(line.back())) line.remove_suffix(1);
  while (!line.empty() && IsJsonSpace(line.front())) line.remove_prefix(1);
  if (line.empty()) return absl::OkStatus();
  const std::string where =
      absl::StrCat(common::ToAbsl(prefix), "line ", line_no);
  absl::Status fatal;
  const absl::Status split =
      JsonSplitter::SplitAll(line, {.mode = JsonSplitter::kLines},
                             [&](const JsonSplitter::Element& e) {
                               fatal = Record(e.bytes, where);
                               return fatal;
                             });
  if (!fatal.ok()) return fatal;
  if (!split.ok()) {  // not a complete JSON value: one bad record
    ++report_.read;
    ++report_.skipped;
    Problem(where, split);
  }
  return absl::OkStatus();
}

absl::Status Importer::ReadLines(ChunkReader& reader, std::string_view prefix) {
  std::string pending;  // a line spanning chunks
  bool too_long = false;
  int64_t line_no = 1;
  while (true) {
    TRIALMATCH_ASSIGN_OR_RETURN(std::string_view chunk, reader.Next());
    if (chunk.empty()) break;
    while (!chunk.empty()) {
      const std::size_t nl = chunk.find('\n');
      const std::string_view piece = chunk.substr(0, nl);
      if (!too_long) {
        if (pending.size() + piece.size() > options_.max_record_bytes) {
          too_long = true;
          std::string().swap(pending);
          ++report_.read;
          ++report_.skipped;
          Problem(
              absl::StrCat(common::ToAbsl(prefix), "line ", line_no),
              absl::ResourceExhaustedError(absl::StrCat(
                  "line longer than ", options_.max_record_bytes, " bytes")));
        } else if (nl != std::string_view::npos && pending.empty()) {
          TRIALMATCH_RETURN_IF_ERROR(Line(piece, line_no, prefix));
        } else {
          pending.append(piece);
          if (nl != std::string_view::npos) {
            TRIALMATCH_RETURN_IF_ERROR(Line(pending, line_no, prefix));
            pending.clear();
          }
        }
      }
      if (nl == std::string_view::npos) break;
      too_long = false;
      ++line_no;
      chunk.remove_prefix(nl + 1);
    }
  }
  if (!too_long) return Line(pending, line_no, prefix);
  return absl::OkStatus();
}

absl::Status Importer::ImportOne(const std::string& path,
                                 std::string_view prefix, bool in_directory) {
  absl::StatusOr<std::unique_ptr<ChunkReader>> opened =
      ChunkReader::Open(path, options_.chunk_bytes);
  if (!opened.ok()) {
    if (!in_directory) return opened.status();
    // Vanished or unreadable since the listing: one bad file.
    Problem(absl::StrCat(common::ToAbsl(prefix), "file"), opened.status());
    return absl::OkStatus();
  }
  ChunkReader& reader = **opened;
  current_ = &reader;
  ++report_.files;
  absl::Status status;
  ImportFormat format = options_.format;
  if (format == ImportFormat::kAuto) {
    absl::StatusOr<ImportFormat> detected = Detect(reader);
    if (detected.ok()) {
      format = *detected;
    } else if (absl::IsInvalidArgument(detected.status())) {  // empty
      status = absl::InvalidArgumentError(
          absl::StrCat(path, ": ", detected.status().message()));
    } else {
      status = detected.status();
    }
  }
  if (status.ok()) {
    if (report_.format == ImportFormat::kAuto) report_.format = format;
    status = format == ImportFormat::kJsonLines
                 ? ReadLines(reader, prefix)
                 : SplitStream(reader, format, prefix);
  }
  bytes_before_file_ += reader.bytes_read();
  report_.bytes += reader.bytes_read();
  current_ = nullptr;
  if (!status.ok() && in_directory &&
      (!reader.error().ok() || absl::IsInvalidArgument(status))) {
    // An empty or unreadable file of a directory: reported, not fatal.
    Problem(absl::StrCat(common::ToAbsl(prefix), "file"), status);
    if (!reader.error().ok() && report_.stopped.ok()) report_.stopped = status;
    return absl::OkStatus();
  }
  return status;
}

}  // namespace

std::string_view ImportFormatName(ImportFormat format) {
  switch (format) {
    case ImportFormat::kAuto:
      return "auto";
    case ImportFormat::kArray:
      return "array";
    case ImportFormat::kStudiesPage:
      return "page";
    case ImportFormat::kJsonLines:
      return "jsonl";
    case ImportFormat::kJsonValues:
      return "values";
    case ImportFormat::kDirectory:
      return "directory";
  }
  return "auto";
}

absl::StatusOr<ImportFormat> ParseImportFormat(std::string_view name) {
  for (ImportFormat f : {ImportFormat::kAuto, ImportFormat::kArray,
                         ImportFormat::kStudiesPage, ImportFormat::kJsonLines,
                         ImportFormat::kJsonValues, ImportFormat::kDirectory}) {
    if (ImportFormatName(f) == name) return f;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown import format '", common::ToAbsl(name),
                   "' (auto, array, page, jsonl, values, directory)"));
}

std::string ImportReport::Summary() const {
  std::string line =
      absl::StrCat("import: ", read, " records read from ", files,
                   files == 1 ? " file" : " files", ", ", stored(), " stored (",
                   inserted, " new, ", updated, " updated");
  if (left_scope > 0) {
    absl::StrAppend(&line, "; ", left_scope,
                    " not in the wanted statuses: LEFT_SCOPE");
  }
  absl::StrAppend(&line, "), ", unchanged, " unchanged, ", skipped, " skipped");
  absl::StrAppendFormat(&line, ", %.1f MB in %s",
                        static_cast<double>(bytes) / 1e6,
                        FormatEta(elapsed).c_str());
  const double seconds = absl::ToDoubleSeconds(elapsed);
  if (seconds > 0) {
    absl::StrAppendFormat(&line, " (%.0f studies/s, %.1f MB/s)",
                          static_cast<double>(read) / seconds,
                          static_cast<double>(bytes) / 1e6 / seconds);
  }
  if (!stopped.ok())
    absl::StrAppend(&line, "; INCOMPLETE: ", stopped.message());
  return line;
}

absl::StatusOr<ImportReport> ImportStudies(const std::string& path,
                                           store::StudyStore& store,
                                           const ImportOptions& options,
                                           const ProgressCallback& progress,
                                           common::Clock& clock) {
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError("import: batch size must be >= 1");
  }
  if (options.chunk_bytes < 1 || options.max_record_bytes < 1) {
    return absl::InvalidArgumentError(
        "import: chunk and record sizes must be >= 1");
  }
  std::error_code ec;
  const bool is_directory = path != "-" && fs::is_directory(path, ec);
  if (path != "-" && !is_directory && !fs::exists(path, ec)) {
    return absl::NotFoundError(
        absl::StrCat(path, ": no such file or directory"));
  }
  ImportOptions normalized = options;
  for (std::string& s : normalized.wanted_statuses) {
    s = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(s));
  }

  if (!is_directory) {
    if (options.format == ImportFormat::kDirectory) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is not a directory"));
    }
    std::optional<int64_t> size;
    if (path != "-") {
      const std::uintmax_t n = fs::file_size(path, ec);
      if (!ec) size = static_cast<int64_t>(n);
    }
    Importer importer(store, normalized, progress, clock, size);
    TRIALMATCH_RETURN_IF_ERROR(importer.ImportOne(path, "", false));
    TRIALMATCH_RETURN_IF_ERROR(importer.Flush());
    return importer.Finish();
  }

  // A directory: every *.json below it, in path order.
  std::vector<fs::path> files;
  int64_t total = 0;
  for (fs::recursive_directory_iterator
           it(path, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string ext = it->path().extension().string();
    if (absl::AsciiStrToLower(ext) != ".json") continue;
    files.push_back(it->path());
    total += static_cast<int64_t>(it->file_size(ec));
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": cannot list: ", ec.message()));
  }
  if (files.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no *.json files below it, nothing imported"));
  }
  std::sort(files.begin(), files.end());
  if (normalized.format == ImportFormat::kDirectory) {
    normalized.format = ImportFormat::kAuto;
  }
  Importer importer(store, normalized, progress, clock, total);
  for (const fs::path& file : files) {
    const std::string relative = file.lexically_relative(path).string();
    TRIALMATCH_RETURN_IF_ERROR(
        importer.ImportOne(file.string(), absl::StrCat(relative, ": "), true));
  }
  TRIALMATCH_RETURN_IF_ERROR(importer.Flush());
  ImportReport report = importer.Finish();
  report.format = ImportFormat::kDirectory;
  return report;
}

}  // namespace trialmatch::sync
