#include "cli/batch_input.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"

namespace trialmatch::cli {
namespace {

constexpr char kJobIndexEnv[] = "JOB_COMPLETION_INDEX";
constexpr std::string_view kResourceTypeKey = "\"resourceType\"";

bool IsBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
           c == '\v';
  });
}

// Reads one line (without its '\n' and a trailing '\r') into *out, keeping
// at most `max` bytes: a longer line sets *too_long and the rest is skipped.
// False at the end of the stream with nothing read. In chunks through
// istream::getline, which scans the stream's buffer for the delimiter (a
// byte-at-a-time loop was ~15x slower).
bool ReadLine(std::istream& in, size_t max, std::string* out, bool* too_long) {
  out->clear();
  *too_long = false;
  constexpr std::streamsize kChunk = 1 << 16;
  char chunk[kChunk];
  bool any = false;
  auto keep = [&](std::streamsize stored) {
    const size_t n = static_cast<size_t>(stored);
    const size_t room = max - std::min(max, out->size());
    out->append(chunk, std::min(n, room));
    if (n > room) *too_long = true;
  };
  while (true) {
    in.getline(chunk, kChunk);
    const std::streamsize got = in.gcount();
    if (got > 0) any = true;
    if (in.eof()) {  // the last line, without '\n'
      keep(got);
      break;
    }
    if (in.fail()) {
      if (got == kChunk - 1) {  // the chunk is full: the line goes on
        in.clear(in.rdstate() & ~std::ios::failbit);
        keep(got);
        continue;
      }
      break;  // nothing more could be read
    }
    keep(got - 1);  // the '\n' was counted, not stored
    break;
  }
  if (!out->empty() && out->back() == '\r') out->pop_back();
  return any;
}

// Skips to the next line, holding nothing; false at the end of the stream.
bool SkipLine(std::istream& in) {
  std::string nothing;
  bool too_long = false;
  return ReadLine(in, 0, &nothing, &too_long);
}

bool IsJsonValue(std::string_view text) { return nlohmann::json::accept(text); }

}  // namespace

absl::StatusOr<PatientForm> ParsePatientForm(std::string_view text) {
  if (text == "auto") return PatientForm::kAuto;
  if (text == "profile") return PatientForm::kProfileJson;
  if (text == "fhir") return PatientForm::kFhirBundle;
  return absl::InvalidArgumentError("--format must be auto, profile or fhir");
}

PatientForm DetectPatientForm(std::string_view text) {
  // The plain profile shape has no "resourceType" member (unknown members
  // are rejected), and inside a JSON string the quotes would be escaped.
  return text.find(kResourceTypeKey) != std::string_view::npos
             ? PatientForm::kFhirBundle
             : PatientForm::kProfileJson;
}

absl::StatusOr<ShardSpec> ResolveShard(int flag_index, int count) {
  if (count < 1) {
    return absl::InvalidArgumentError("--shards must be >= 1");
  }
  ShardSpec shard{.index = 0, .count = count};
  if (flag_index >= 0) {
    shard.index = flag_index;
  } else if (const char* env = std::getenv(kJobIndexEnv);
             env != nullptr && *env != '\0') {
    if (!absl::SimpleAtoi(env, &shard.index) || shard.index < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("$", kJobIndexEnv, " is not a shard index"));
    }
  } else if (count > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shards=", count, " needs --shard or $", kJobIndexEnv));
  }
  if (shard.index >= count) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shard index ", shard.index, " is not below --shards=", count));
  }
  return shard;
}

std::string BatchRecord::Where() const {
  return file.empty() ? absl::StrCat("line ", position)
                      : absl::StrCat("file ", file);
}

absl::StatusOr<BatchReader> BatchReader::Open(const std::string& path,
                                              BatchReaderOptions options) {
  BatchReader reader;
  reader.options_ = options;
  reader.path_ = path;
  if (path == "-") {
    reader.is_stdin_ = true;
    reader.in_ = &std::cin;
  } else {
    std::error_code ec;
    const std::filesystem::file_status st = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(st)) {
      return absl::NotFoundError(
          absl::StrCat("no such file or directory: ", path));
    }
    if (std::filesystem::is_directory(st)) {
      reader.directory_ = true;
      for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
        const std::string name = entry.path().filename().string();
        if (entry.is_regular_file() && name.size() > 5 && name[0] != '.' &&
            name.substr(name.size() - 5) == ".json") {
          reader.files_.push_back(entry.path());
        }
      }
      if (ec) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot list ", path, ": ", ec.message()));
      }
      std::sort(reader.files_.begin(), reader.files_.end());
      return reader;
    }
    reader.file_ = std::make_unique<std::ifstream>(path, std::ios::binary);
    if (!*reader.file_) {
      return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
    }
    reader.in_ = reader.file_.get();
  }
  // Detect JSON Lines vs one document from the first non-blank line.
  std::string line;
  bool too_long = false;
  while (ReadLine(*reader.in_, kMaxRecordBytes, &line, &too_long)) {
    ++reader.line_;
    if (!too_long && IsBlank(line)) continue;
    reader.pending_ = std::move(line);
    reader.pending_too_long_ = too_long;
    if (too_long || reader.is_stdin_ || IsJsonValue(*reader.pending_)) break;
    // Not a value by itself: maybe the first line of one pretty-printed
    // document. Read on; if the whole is not one value, go back to line 2.
    const std::streampos after_first = reader.in_->tellg();
    std::string whole = *reader.pending_ + "\n";
    std::string chunk(1 << 16, '\0');
    while (whole.size() <= kMaxRecordBytes) {
      reader.in_->read(chunk.data(),
                       static_cast<std::streamsize>(chunk.size()));
      const std::streamsize got = reader.in_->gcount();
      if (got <= 0) break;
      whole.append(chunk.data(), static_cast<size_t>(got));
    }
    if (whole.size() <= kMaxRecordBytes && IsJsonValue(whole)) {
      reader.single_document_ = true;
      reader.pending_ = std::move(whole);
    } else {
      reader.in_->clear();
      reader.in_->seekg(after_first);
    }
    break;
  }
  return reader;
}

BatchRecord BatchReader::MakeRecord(int64_t position, std::string text) const {
  BatchRecord r;
  r.position = position;
  r.form = options_.form == PatientForm::kAuto ? DetectPatientForm(text)
                                               : options_.form;
  r.text = std::move(text);
  return r;
}

std::optional<BatchRecord> BatchReader::Next() {
  return directory_ ? NextFile() : NextLine();
}

std::optional<BatchRecord> BatchReader::NextLine() {
  if (pending_.has_value()) {
    std::string text = std::move(*pending_);
    pending_.reset();
    const int64_t position = single_document_ ? 1 : line_;
    if (options_.shard.Owns(position)) {
      if (pending_too_long_) {
        BatchRecord r;
        r.position = position;
        r.error =
            absl::InvalidArgumentError("line longer than 64 MiB; skipped");
        return r;
      }
      return MakeRecord(position, std::move(text));
    }
  }
  if (single_document_ || done_ || in_ == nullptr) return std::nullopt;
  std::string line;
  bool too_long = false;
  while (true) {
    if (!options_.shard.Owns(line_ + 1)) {
      if (!SkipLine(*in_)) break;
      ++line_;
      continue;
    }
    if (!ReadLine(*in_, kMaxRecordBytes, &line, &too_long)) break;
    ++line_;
    if (too_long) {
      BatchRecord r;
      r.position = line_;
      r.error = absl::InvalidArgumentError("line longer than 64 MiB; skipped");
      return r;
    }
    if (IsBlank(line)) continue;
    return MakeRecord(line_, std::move(line));
  }
  if (in_->bad()) {
    status_ = absl::DataLossError(
        absl::StrCat("reading ", is_stdin_ ? "stdin" : path_, " failed after ",
                     line_, " lines"));
  }
  done_ = true;
  return std::nullopt;
}

std::optional<BatchRecord> BatchReader::NextFile() {
  while (next_file_ < files_.size()) {
    const size_t index = next_file_++;
    const int64_t position = static_cast<int64_t>(index) + 1;
    if (!options_.shard.Owns(position)) continue;
    const std::filesystem::path& path = files_[index];
    BatchRecord r;
    r.position = position;
    r.file = path.filename().string();
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) {
      r.error = absl::FailedPreconditionError("cannot read the file");
      return r;
    }
    if (size > kMaxRecordBytes) {
      r.error = absl::InvalidArgumentError("file larger than 64 MiB; skipped");
      return r;
    }
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    if (in.bad()) {
      r.error = absl::FailedPreconditionError("cannot read the file");
      return r;
    }
    BatchRecord made = MakeRecord(position, std::move(text));
    made.file = std::move(r.file);
    return made;
  }
  return std::nullopt;
}

std::optional<int64_t> BatchReader::CountRecords() const {
  if (directory_) {
    int64_t n = 0;
    for (size_t i = 0; i < files_.size(); ++i) {
      if (options_.shard.Owns(static_cast<int64_t>(i) + 1)) ++n;
    }
    return n;
  }
  if (is_stdin_) return std::nullopt;
  if (single_document_) return options_.shard.Owns(1) ? 1 : 0;
  std::ifstream in(path_, std::ios::binary);
  if (!in) return std::nullopt;
  std::string chunk(1 << 20, '\0');
  int64_t line = 1;
  bool content = false;
  int64_t n = 0;
  while (true) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    for (std::streamsize i = 0; i < got; ++i) {
      const char c = chunk[static_cast<size_t>(i)];
      if (c == '\n') {
        if (content && options_.shard.Owns(line)) ++n;
        ++line;
        content = false;
      } else if (!content && c != ' ' && c != '\t' && c != '\r') {
        content = true;
      }
    }
  }
  if (content && options_.shard.Owns(line)) ++n;
  return n;
}

}  // namespace trialmatch::cli
