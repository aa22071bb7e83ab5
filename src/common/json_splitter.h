// JsonSplitter: an incremental splitter for streams of JSON values that hands
// out each top-level element as its exact bytes, without building a DOM.
//
// Three input shapes (JsonSplitter::Mode):
//   kArray       `[ v0 , v1 , ... ]`        — e.g. the website's
//   ctg-studies.json kLines       `v0 \n v1 \n ...`          — JSON Lines /
//   NDJSON / concatenated
//                                               values separated by whitespace
//   kMemberArray `{ ..., "<key>": [ v0, v1, ... ], ... }` — e.g. a `/studies`
//                page (key "studies"); the other members of the top-level
//                object are kept in Remainder() with the array emptied, so
//                `{"studies":[...],"nextPageToken":"x"}` leaves
//                `{"studies":[],"nextPageToken":"x"}` for a DOM parser.
//
// Feed the input in chunks of any size (a byte, a socket read, a 1 MiB file
// block), then call Finish(). Each complete element is passed to the callback
// as an Element{bytes, offset, index} while Feed() runs. `bytes` is valid only
// during the callback (copy it to keep it). Elements that lie wholly inside
// one chunk are handed out without copying; an element spanning chunks is
// assembled in an internal buffer, so memory stays bounded by the largest
// element (plus, in kMemberArray mode, the size of the other members).
//
//   JsonSplitter splitter(JsonSplitter::Options{.mode = JsonSplitter::kArray},
//       [&](const JsonSplitter::Element& e) -> absl::Status {
//         TRIALMATCH_ASSIGN_OR_RETURN(auto study, model::ParseStudy(e.bytes));
//         return store.Put(study, e.bytes);
//       });
//   while (ReadChunk(&chunk)) TRIALMATCH_RETURN_IF_ERROR(splitter.Feed(chunk));
//   TRIALMATCH_RETURN_IF_ERROR(splitter.Finish());
//
// What it checks: the structure around and between elements exactly (brackets,
// commas, colons, keys, trailing garbage, truncation), and inside elements the
// balance and kind of brackets, string/escape boundaries, raw control
// characters in strings, and the characters of bare scalars. It does NOT fully
// validate the grammar inside an element (e.g. `{"a" 1}` passes as one
// element): callers parse each element anyway (nlohmann::json::accept or
// model::ParseStudy). Keys are compared on their raw bytes (no unescaping).
// A UTF-8 byte order mark at the very start is skipped.
//
// Errors are sticky: after a non-OK return every later call returns the same
// status. Codes:
//   kDataLoss          malformed or truncated input; the message names the
//                      byte offset (0-based, counted from the first byte fed)
//   kResourceExhausted an element (or the kMemberArray remainder) exceeds the
//                      configured maximum size, or nesting exceeds max_depth
//   any code           returned by the callback, passed through unchanged
//
// Thread-compatible: one splitter per stream, no internal synchronisation.
#ifndef TRIALMATCH_COMMON_JSON_SPLITTER_H_
#define TRIALMATCH_COMMON_JSON_SPLITTER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace trialmatch::common {

class JsonSplitter {
 public:
  enum Mode { kArray, kLines, kMemberArray };

  struct Options {
    Mode mode = kArray;
    // kMemberArray only: the top-level member whose array value is split.
    std::string member = "studies";
    // Largest element accepted (bytes); larger -> kResourceExhausted.
    std::size_t max_element_bytes = std::size_t{1} << 30;  // 1 GiB
    // kMemberArray only: largest Remainder() accepted (bytes).
    std::size_t max_remainder_bytes = std::size_t{16} << 20;  // 16 MiB
    // Deepest nesting of arrays/objects accepted (the document's own
    // brackets included).
    int max_depth = 512;
  };

  struct Element {
    std::string_view bytes =
        {};                    // exact bytes of the value, no surrounding space
    std::uint64_t offset = 0;  // byte offset of bytes[0] in the whole input
    std::uint64_t index = 0;   // 0-based position in the array / stream
  };

  // Called once per complete element, in order. A non-OK return stops the
  // splitter; Feed()/Finish() then return that status.
  using Callback = std::function<absl::Status(const Element&)>;

  JsonSplitter(Options options, Callback callback);

  JsonSplitter(const JsonSplitter&) = delete;
  JsonSplitter& operator=(const JsonSplitter&) = delete;

  // Consumes `chunk` (may be empty, may split a token anywhere).
  absl::Status Feed(std::string_view chunk);

  // Declares the end of input. Returns kDataLoss if the input is truncated
  // (inside an element, an unterminated array/object, no document at all in
  // kArray/kMemberArray mode, or the member was not found in kMemberArray
  // mode). Idempotent.
  absl::Status Finish();

  // Splits a whole buffer: Feed(input) + Finish().
  static absl::Status SplitAll(std::string_view input, Options options,
                               Callback callback);

  // kMemberArray: the top-level object with the member's array emptied
  // (`[]`), byte-for-byte otherwise. Complete only after Finish() returned OK.
  const std::string& Remainder() const { return remainder_; }
  // kMemberArray: whether the member was seen.
  bool member_found() const { return member_found_; }

  std::uint64_t elements_emitted() const { return index_; }
  std::uint64_t bytes_consumed() const { return offset_; }
  // The largest element seen so far (bytes).
  std::size_t largest_element() const { return largest_element_; }

 private:
  enum class State;

  absl::Status Fail(absl::StatusCode code, std::uint64_t at, std::string what);
  absl::Status Unexpected(std::uint64_t at, char c, std::string_view expected);
  // Scans a value starting at data[i] whose kind was set by BeginValue.
  // Advances i; returns true when the value completed.
  absl::Status ScanValue(std::string_view data, std::size_t& i, bool& done);
  absl::Status BeginValue(std::string_view data, std::size_t i, bool emit);
  absl::Status FinishValue(std::string_view data, std::size_t end);
  absl::Status AppendRemainder(std::string_view bytes);

  Options options_;
  Callback callback_;
  State state_;
  absl::Status error_;
  bool finished_ = false;

  std::uint64_t offset_ = 0;  // bytes consumed before the current chunk
  std::uint64_t index_ = 0;
  std::size_t largest_element_ = 0;

  // The value being scanned.
  enum class ValueKind { kContainer, kString, kScalar };
  ValueKind value_kind_ = ValueKind::kContainer;
  State after_value_;        // state to enter when the value completes
  bool value_emit_ = false;  // element (true) or skipped member value
  std::vector<char> stack_;  // open brackets of the whole document
  std::size_t value_base_depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  std::uint64_t value_offset_ = 0;
  std::size_t value_start_ = 0;  // start in the current chunk (if !carried_)
  bool carried_ = false;         // value began in an earlier chunk
  std::string pending_;          // bytes of a carried value

  // kMemberArray bookkeeping.
  std::string key_;  // the key being read
  bool key_is_member_ = false;
  bool member_found_ = false;
  bool capturing_ = false;  // copying bytes into remainder_
  std::size_t capture_start_ = 0;
  std::string remainder_;
  std::size_t bom_seen_ = 0;
};

}  // namespace trialmatch::common

#endif  // TRIALMATCH_COMMON_JSON_SPLITTER_H_
