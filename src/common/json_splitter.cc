// JsonSplitter: a byte-level state machine. Hand-written rather than built on
// nlohmann::json's SAX interface because SAX reports parsed tokens, not the
// byte ranges of elements, and it cannot be fed in chunks; the store must keep
// each record exactly as received and the importer must stream multi-GB files.
#include "common/json_splitter.h"

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"

namespace trialmatch::common {

enum class JsonSplitter::State {
  kStart,         // before the document (BOM / whitespace)
  kArrFirst,      // after '[': element or ']'
  kArrElem,       // after ',': element required
  kArrNext,       // after an element: ',' or ']'
  kObjFirst,      // after '{' (kMemberArray): key or '}'
  kObjKey,        // after ',': key required
  kKey,           // inside a key string
  kColon,         // after a key: ':'
  kObjValue,      // after ':': a member value
  kObjNext,       // after a member value: ',' or '}'
  kValue,         // inside a value (see value_kind_)
  kLinesBetween,  // kLines: between values
  kDone,          // after the document: whitespace only
};

namespace {

// Byte classes, looked up once per byte on the hot paths.
enum ByteClass : unsigned char {
  kPlain = 0,  // nothing to do
  kQuote,      // "
  kBackslash,  // \  (strings only)
  kControl,    // < 0x20 (strings only: forbidden raw)
  kOpen,       // { [
  kClose,      // } ]
  kBad,        // not allowed outside strings
};

constexpr bool IsSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}
constexpr bool IsScalarChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') || c == '-' || c == '+' || c == '.';
}

struct Tables {
  std::array<unsigned char, 256> in_string{};
  std::array<unsigned char, 256> in_container{};
  constexpr Tables() {
    for (int b = 0; b < 256; ++b) {
      const char c = static_cast<char>(b);
      in_string[b] = b < 0x20 ? kControl : kPlain;
      in_container[b] = (IsSpace(c) || IsScalarChar(c) || c == ',' || c == ':')
                            ? kPlain
                            : kBad;
    }
    in_string['"'] = kQuote;
    in_string['\\'] = kBackslash;
    in_container['"'] = kQuote;
    in_container['{'] = kOpen;
    in_container['['] = kOpen;
    in_container['}'] = kClose;
    in_container[']'] = kClose;
  }
};
constexpr Tables kTables;

inline unsigned char Cls(const std::array<unsigned char, 256>& t, char c) {
  return t[static_cast<unsigned char>(c)];
}

std::string Printable(char c) {
  const auto b = static_cast<unsigned char>(c);
  if (b >= 0x20 && b < 0x7f) return std::string("'") + c + "'";
  return absl::StrCat("byte 0x", absl::Hex(b, absl::kZeroPad2));
}

// true / false / null / a JSON number.
bool IsJsonScalar(std::string_view s) {
  if (s == "true" || s == "false" || s == "null") return true;
  std::size_t i = 0;
  const std::size_t n = s.size();
  auto digits = [&] {
    const std::size_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < n && s[i] == '-') ++i;
  if (i < n && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

constexpr char kBom[] = "\xEF\xBB\xBF";

}  // namespace

JsonSplitter::JsonSplitter(Options options, Callback callback)
    : options_(std::move(options)),
      callback_(std::move(callback)),
      state_(State::kStart),
      after_value_(State::kDone) {}

absl::Status JsonSplitter::SplitAll(std::string_view input, Options options,
                                    Callback callback) {
  JsonSplitter splitter(std::move(options), std::move(callback));
  if (absl::Status s = splitter.Feed(input); !s.ok()) return s;
  return splitter.Finish();
}

absl::Status JsonSplitter::Fail(absl::StatusCode code, std::uint64_t at,
                                std::string what) {
  error_ = absl::Status(code, absl::StrCat("JSON at byte ", at, ": ", what));
  return error_;
}

absl::Status JsonSplitter::Unexpected(std::uint64_t at, char c,
                                      std::string_view expected) {
  return Fail(
      absl::StatusCode::kDataLoss, at,
      absl::StrCat("unexpected ", Printable(c), ", expected ",
                   absl::string_view(expected.data(), expected.size())));
}

absl::Status JsonSplitter::AppendRemainder(std::string_view bytes) {
  if (remainder_.size() + bytes.size() > options_.max_remainder_bytes) {
    return Fail(
        absl::StatusCode::kResourceExhausted, offset_,
        absl::StrCat("members other than \"", options_.member, "\" exceed ",
                     options_.max_remainder_bytes, " bytes"));
  }
  remainder_.append(bytes);
  return absl::OkStatus();
}

absl::Status JsonSplitter::BeginValue(std::string_view data, std::size_t i,
                                      bool emit) {
  const char c = data[i];
  value_emit_ = emit;
  value_offset_ = offset_ + i;
  value_start_ = i;
  carried_ = false;
  in_string_ = false;
  escape_ = false;
  value_base_depth_ = stack_.size();
  // The first byte is not consumed here: ScanValue reads it (an opening
  // bracket pushes, a quote enters the string, a scalar byte is scanned).
  if (c == '{' || c == '[') {
    value_kind_ = ValueKind::kContainer;
  } else if (c == '"') {
    value_kind_ = ValueKind::kString;
  } else if (IsScalarChar(c)) {
    value_kind_ = ValueKind::kScalar;
  } else {
    return Unexpected(offset_ + i, c, "a JSON value");
  }
  state_ = State::kValue;
  return absl::OkStatus();
}

absl::Status JsonSplitter::FinishValue(std::string_view data, std::size_t end) {
  state_ = after_value_;
  if (!value_emit_) return absl::OkStatus();
  std::string_view bytes;
  if (carried_) {
    pending_.append(data.data(), end);
    bytes = pending_;
  } else {
    bytes = data.substr(value_start_, end - value_start_);
  }
  if (bytes.size() > options_.max_element_bytes) {
    return Fail(absl::StatusCode::kResourceExhausted, value_offset_,
                absl::StrCat("element ", index_, " is larger than ",
                             options_.max_element_bytes, " bytes"));
  }
  if (value_kind_ == ValueKind::kScalar && !IsJsonScalar(bytes)) {
    return Fail(absl::StatusCode::kDataLoss, value_offset_,
                "invalid literal or number");
  }
  if (bytes.size() > largest_element_) largest_element_ = bytes.size();
  Element element{bytes, value_offset_, index_};
  ++index_;
  absl::Status s = callback_(element);
  if (carried_) {
    pending_.clear();
    // Do not keep a huge buffer alive after a rare huge element.
    if (pending_.capacity() > (std::size_t{8} << 20))
      std::string().swap(pending_);
    carried_ = false;
  }
  if (!s.ok()) error_ = s;
  return s;
}

absl::Status JsonSplitter::ScanValue(std::string_view data, std::size_t& i,
                                     bool& done) {
  const std::size_t n = data.size();
  done = false;
  switch (value_kind_) {
    case ValueKind::kScalar: {
      while (i < n && IsScalarChar(data[i])) ++i;
      if (i < n) {
        done = true;
        return FinishValue(data, i);  // data[i] is re-read by the next state
      }
      return absl::OkStatus();
    }
    case ValueKind::kString:
    case ValueKind::kContainer: {
      // A string value is scanned as a container whose only content is the
      // string: in_string_ is set on the opening quote.
      while (i < n) {
        if (in_string_) {
          if (escape_) {
            escape_ = false;
            ++i;
            continue;
          }
          const auto& t = kTables.in_string;
          while (i < n && Cls(t, data[i]) == kPlain) ++i;
          if (i == n) break;
          switch (Cls(t, data[i])) {
            case kQuote:
              in_string_ = false;
              ++i;
              if (stack_.size() == value_base_depth_) {
                done = true;
                return FinishValue(data, i);
              }
              continue;
            case kBackslash:
              escape_ = true;
              ++i;
              continue;
            default:
              return Fail(absl::StatusCode::kDataLoss, offset_ + i,
                          absl::StrCat("raw control character ",
                                       Printable(data[i]), " in a string"));
          }
        }
        const auto& t = kTables.in_container;
        while (i < n && Cls(t, data[i]) == kPlain) ++i;
        if (i == n) break;
        const char c = data[i];
        switch (Cls(t, c)) {
          case kQuote:
            in_string_ = true;
            ++i;
            continue;
          case kOpen:
            if (static_cast<int>(stack_.size()) >= options_.max_depth) {
              return Fail(
                  absl::StatusCode::kResourceExhausted, offset_ + i,
                  absl::StrCat("nesting deeper than ", options_.max_depth));
            }
            stack_.push_back(c);
            ++i;
            continue;
          case kClose: {
            const char open = c == '}' ? '{' : '[';
            if (stack_.size() <= value_base_depth_ || stack_.back() != open) {
              return Unexpected(
                  offset_ + i, c,
                  stack_.size() > value_base_depth_ && stack_.back() == '{'
                      ? "'}'"
                      : "']'");
            }
            stack_.pop_back();
            ++i;
            if (stack_.size() == value_base_depth_) {
              done = true;
              return FinishValue(data, i);
            }
            continue;
          }
          default:
            return Unexpected(offset_ + i, c, "JSON");
        }
      }
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::Status JsonSplitter::Feed(std::string_view data) {
  if (!error_.ok()) return error_;
  if (finished_) {
    return absl::FailedPreconditionError("JsonSplitter: Feed after Finish");
  }
  if (capturing_) capture_start_ = 0;
  const std::size_t n = data.size();
  std::size_t i = 0;
  absl::Status s;
  while (i < n) {
    if (state_ == State::kValue) {
      bool done = false;
      s = ScanValue(data, i, done);
      if (!s.ok()) return s;
      continue;
    }
    if (state_ == State::kKey) {
      // Keys are read raw; only their first member.size()+1 bytes are kept.
      while (i < n) {
        const char c = data[i];
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          break;
        } else if (static_cast<unsigned char>(c) < 0x20) {
          return Fail(absl::StatusCode::kDataLoss, offset_ + i,
                      "raw control character in a key");
        }
        if (key_.size() <= options_.member.size()) key_.push_back(c);
        ++i;
      }
      if (i == n) break;
      key_is_member_ = key_ == options_.member;
      state_ = State::kColon;
      ++i;
      continue;
    }
    const char c = data[i];
    const std::uint64_t at = offset_ + i;
    if (IsSpace(c)) {
      ++i;
      continue;
    }
    switch (state_) {
      case State::kStart:
        if (at == bom_seen_ && bom_seen_ < 3 &&
            c == kBom[static_cast<std::size_t>(bom_seen_)]) {
          ++bom_seen_;
          ++i;
          continue;
        }
        if (options_.mode == kLines) {
          state_ = State::kLinesBetween;
          continue;
        }
        if (options_.mode == kArray) {
          if (c != '[') return Unexpected(at, c, "'[' (a JSON array)");
          stack_.push_back('[');
          state_ = State::kArrFirst;
        } else {
          if (c != '{') return Unexpected(at, c, "'{' (a JSON object)");
          stack_.push_back('{');
          capturing_ = true;
          capture_start_ = i;
          state_ = State::kObjFirst;
        }
        ++i;
        continue;
      case State::kLinesBetween:
        after_value_ = State::kLinesBetween;
        s = BeginValue(data, i, /*emit=*/true);
        if (!s.ok()) return s;
        continue;
      case State::kArrFirst:
      case State::kArrElem:
        if (c == ']') {
          if (state_ == State::kArrElem) {
            return Unexpected(at, c, "an element after ','");
          }
          // fallthrough to close below
        } else {
          after_value_ = State::kArrNext;
          s = BeginValue(data, i, /*emit=*/true);
          if (!s.ok()) return s;
          continue;
        }
        [[fallthrough]];
      case State::kArrNext:
        if (c == ',' && state_ == State::kArrNext) {
          state_ = State::kArrElem;
          ++i;
          continue;
        }
        if (c != ']') return Unexpected(at, c, "',' or ']'");
        stack_.pop_back();
        if (options_.mode == kMemberArray) {
          capturing_ = true;
          capture_start_ = i;
          state_ = State::kObjNext;
        } else {
          state_ = State::kDone;
        }
        ++i;
        continue;
      case State::kObjFirst:
      case State::kObjKey:
        if (c == '"') {
          key_.clear();
          escape_ = false;
          state_ = State::kKey;
          ++i;
          continue;
        }
        if (c == '}' && state_ == State::kObjFirst) {
          // Empty object: close it like kObjNext does.
          state_ = State::kObjNext;
          continue;
        }
        return Unexpected(at, c, "a member name");
      case State::kColon:
        if (c != ':') return Unexpected(at, c, "':'");
        state_ = State::kObjValue;
        ++i;
        continue;
      case State::kObjValue:
        if (key_is_member_) {
          if (member_found_) {
            return Fail(
                absl::StatusCode::kDataLoss, at,
                absl::StrCat("duplicate member \"", options_.member, "\""));
          }
          if (c != '[') {
            return Fail(absl::StatusCode::kDataLoss, at,
                        absl::StrCat("member \"", options_.member,
                                     "\" is not an array"));
          }
          member_found_ = true;
          stack_.push_back('[');
          s = AppendRemainder(
              data.substr(capture_start_, i + 1 - capture_start_));
          if (!s.ok()) return s;
          capturing_ = false;
          state_ = State::kArrFirst;
          ++i;
          continue;
        }
        after_value_ = State::kObjNext;
        s = BeginValue(data, i, /*emit=*/false);
        if (!s.ok()) return s;
        continue;
      case State::kObjNext:
        if (c == ',') {
          state_ = State::kObjKey;
          ++i;
          continue;
        }
        if (c != '}') return Unexpected(at, c, "',' or '}'");
        stack_.pop_back();
        s = AppendRemainder(
            data.substr(capture_start_, i + 1 - capture_start_));
        if (!s.ok()) return s;
        capturing_ = false;
        state_ = State::kDone;
        ++i;
        continue;
      case State::kDone:
        return Unexpected(at, c, "end of input");
      case State::kValue:
      case State::kKey:
        break;  // handled above
    }
  }
  // End of chunk: carry a partial element, flush captured remainder bytes.
  if (state_ == State::kValue && value_emit_) {
    const std::string_view tail = carried_ ? data : data.substr(value_start_);
    if (pending_.size() + tail.size() > options_.max_element_bytes) {
      return Fail(absl::StatusCode::kResourceExhausted, value_offset_,
                  absl::StrCat("element ", index_, " is larger than ",
                               options_.max_element_bytes, " bytes"));
    }
    pending_.append(tail);
    carried_ = true;
  }
  if (capturing_) {
    s = AppendRemainder(data.substr(capture_start_));
    if (!s.ok()) return s;
  }
  offset_ += n;
  return absl::OkStatus();
}

absl::Status JsonSplitter::Finish() {
  if (!error_.ok()) return error_;
  if (finished_) return absl::OkStatus();
  finished_ = true;
  if (state_ == State::kValue && value_kind_ == ValueKind::kScalar) {
    // A bare scalar is delimited by the end of input.
    absl::Status s = FinishValue(std::string_view(), 0);
    if (!s.ok()) return s;
  }
  switch (state_) {
    case State::kDone:
      break;
    case State::kStart:
    case State::kLinesBetween:
      if (options_.mode == kLines) break;
      return Fail(absl::StatusCode::kDataLoss, offset_,
                  "empty input (no JSON document)");
    case State::kValue:
      return Fail(absl::StatusCode::kDataLoss, offset_,
                  absl::StrCat("input truncated inside element ", index_,
                               " which starts at byte ", value_offset_));
    default:
      return Fail(absl::StatusCode::kDataLoss, offset_,
                  "input truncated (unterminated array or object)");
  }
  if (options_.mode == kMemberArray && !member_found_) {
    return Fail(absl::StatusCode::kDataLoss, offset_,
                absl::StrCat("no member \"", options_.member,
                             "\" in the top-level object"));
  }
  return absl::OkStatus();
}

}  // namespace trialmatch::common
