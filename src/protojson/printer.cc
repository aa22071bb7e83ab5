#include "protojson/printer.h"

#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/utf8.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"

namespace trialmatch::protojson {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr char kHex[] = "0123456789abcdef";

void AppendUnit(uint32_t unit, std::string* out) {
  const char esc[6] = {'\\',
                       'u',
                       kHex[(unit >> 12) & 0xf],
                       kHex[(unit >> 8) & 0xf],
                       kHex[(unit >> 4) & 0xf],
                       kHex[unit & 0xf]};
  out->append(esc, sizeof esc);
}

// protobuf's JSON escapes of code points below 0x80 (json_escaping.cc):
// the C0 controls (\b \t \n \f \r by name, the rest as \u00XX), '"' and
// '\\' (JSON), '<' and '>' (HTML), DEL. 0 = copied as is; 'u' = \u00XX.
constexpr std::array<char, 128> kAsciiEscapes = [] {
  std::array<char, 128> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 'u';
  t['\b'] = 'b';
  t['\t'] = 't';
  t['\n'] = 'n';
  t['\f'] = 'f';
  t['\r'] = 'r';
  t['"'] = '"';
  t['\\'] = '\\';
  t['<'] = 'u';
  t['>'] = 'u';
  t[0x7f] = 'u';
  return t;
}();

// The code points from U+0080 up that protobuf escapes: the C1 controls,
// and format and invisible characters that would hide text (its comment:
// "used to prevent security bugs in javascript").
bool EscapedCodePoint(uint32_t cp) {
  if (cp < 0xa0) return true;  // C1 controls (cp >= 0x80 here)
  switch (cp) {
    case 0x00ad:
    case 0x06dd:
    case 0x070f:
    case 0x17b4:
    case 0x17b5:
    case 0xfeff:
    case 0xfff9:
    case 0xfffa:
    case 0xfffb:
    case 0xe0001:
      return true;
    default:
      break;
  }
  return (cp >= 0x0600 && cp <= 0x0603) || (cp >= 0x200b && cp <= 0x200f) ||
         (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) ||
         (cp >= 0x206a && cp <= 0x206f) || (cp >= 0x1d173 && cp <= 0x1d17a) ||
         (cp >= 0xe0020 && cp <= 0xe007f);
}

// A JSON string as protobuf writes it; false (out partly written) when
// `s` is not valid UTF-8.
bool AppendString(std::string_view s, std::string* out) {
  out->push_back('"');
  size_t run = 0;  // start of the bytes copied as they are
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      const char e = kAsciiEscapes[c];
      if (e == 0) {
        ++i;
        continue;
      }
      out->append(s.data() + run, i - run);
      if (e == 'u') {
        AppendUnit(c, out);
      } else {
        const char esc[2] = {'\\', e};
        out->append(esc, 2);
      }
      run = ++i;
      continue;
    }
    char32_t cp;
    const auto n = static_cast<size_t>(common::DecodeUtf8(s, i, &cp));
    if (n == 0) return false;
    if (EscapedCodePoint(cp)) {
      out->append(s.data() + run, i - run);
      if (cp >= 0x10000) {  // as a surrogate pair
        const uint32_t v = cp - 0x10000;
        AppendUnit(0xd800 + (v >> 10), out);
        AppendUnit(0xdc00 + (v & 0x3ff), out);
      } else {
        AppendUnit(cp, out);
      }
      run = i + n;
    }
    i += n;
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
  return true;
}

// protobuf's SimpleDtoa / SimpleFtoa: the shorter precision when it reads
// back exactly, else the longer one; std::to_chars with a precision is
// printf's "%.*g" without its cost. A float reads back with strtof, whose
// ERANGE on subnormal values protobuf counts as a failure (so those get
// the longer form); a double with strtod, whose errno it ignores.
template <typename T>
void AppendReal(T value, int short_digits, int long_digits, std::string* out) {
  if (std::isnan(value)) {
    out->append("\"NaN\"");
    return;
  }
  if (std::isinf(value)) {
    out->append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    return;
  }
  char buf[48];
  auto r = std::to_chars(buf, buf + sizeof buf - 1, value,
                         std::chars_format::general, short_digits);
  bool exact;
  if constexpr (std::is_same_v<T, float>) {
    *r.ptr = '\0';
    char* end = nullptr;
    errno = 0;
    const float back = std::strtof(buf, &end);
    exact = end == r.ptr && errno == 0 && back == value;
  } else {
    T back{};
    const auto parsed = std::from_chars(buf, r.ptr, back);
    exact = parsed.ec == std::errc() && back == value;
  }
  if (!exact) {
    r = std::to_chars(buf, buf + sizeof buf - 1, value,
                      std::chars_format::general, long_digits);
  }
  out->append(buf, r.ptr);
}

// google.protobuf.Timestamp as protobuf's TimeUtil::ToString: RFC 3339 in
// UTC, with 0, 3, 6 or 9 fractional digits. False out of its range.
bool AppendTimestamp(const Message& m, std::string* out) {
  const Descriptor* d = m.GetDescriptor();
  const Reflection* r = m.GetReflection();
  const FieldDescriptor* fs = d->FindFieldByNumber(1);
  const FieldDescriptor* fn = d->FindFieldByNumber(2);
  if (fs == nullptr || fn == nullptr) return false;
  const int64_t seconds = r->GetInt64(m, fs);
  const int32_t nanos = r->GetInt32(m, fn);
  // 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
  if (seconds < -62135596800 || seconds > 253402300799 || nanos < 0 ||
      nanos > 999999999) {
    return false;
  }
  const absl::CivilSecond t =
      absl::ToCivilSecond(absl::FromUnixSeconds(seconds), absl::UTCTimeZone());
  absl::StrAppendFormat(out, "\"%04d-%02d-%02dT%02d:%02d:%02d", t.year(),
                        t.month(), t.day(), t.hour(), t.minute(), t.second());
  if (nanos != 0) {
    if (nanos % 1000000 == 0) {
      absl::StrAppendFormat(out, ".%03d", nanos / 1000000);
    } else if (nanos % 1000 == 0) {
      absl::StrAppendFormat(out, ".%06d", nanos / 1000);
    } else {
      absl::StrAppendFormat(out, ".%09d", nanos);
    }
  }
  out->append("Z\"");
  return true;
}

class Printer {
 public:
  Printer(const PrintOptions& options, std::string* out)
      : proto_names_(options.preserve_proto_field_names), out_(*out) {}

  bool PrintMessage(const Message& m) {
    const Descriptor* d = m.GetDescriptor();
    if (d->well_known_type() != Descriptor::WELLKNOWNTYPE_UNSPECIFIED) {
      return d->well_known_type() == Descriptor::WELLKNOWNTYPE_TIMESTAMP &&
             AppendTimestamp(m, &out_);
    }
    if (d->file()->syntax() != FileDescriptor::SYNTAX_PROTO3) return false;
    const Reflection* r = m.GetReflection();
    out_.push_back('{');
    bool first = true;
    int previous = 0;
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      // protobuf prints in field number order (the binary's): declaration
      // order is that order in our protos; any other is not covered.
      if (f->number() < previous) return false;
      previous = f->number();
      if (!f->is_repeated() && !f->has_presence()) {
        if (!PrintImplicit(m, r, f, &first)) return false;
        continue;
      }
      if (f->is_repeated() ? r->FieldSize(m, f) == 0 : !r->HasField(m, f)) {
        continue;
      }
      Key(f, &first);
      if (!PrintField(m, r, f)) return false;
    }
    out_.push_back('}');
    return true;
  }

 private:
  void Key(const FieldDescriptor* f, bool* first) {
    if (!*first) out_.push_back(',');
    *first = false;
    out_.push_back('"');
    out_.append(proto_names_ ? f->name() : f->json_name());
    out_.append("\":");
  }

  // A singular proto3 field without presence, printed unless it holds its
  // default: protobuf's own test (Reflection::HasField), on the raw bits
  // for floating point (-0.0 is printed), with the value read once.
  bool PrintImplicit(const Message& m, const Reflection* r,
                     const FieldDescriptor* f, bool* first) {
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        return PutUnlessDefault(r->GetInt32(m, f), f, first);
      case FieldDescriptor::CPPTYPE_UINT32:
        return PutUnlessDefault(r->GetUInt32(m, f), f, first);
      case FieldDescriptor::CPPTYPE_INT64:
        return PutUnlessDefault(r->GetInt64(m, f), f, first);
      case FieldDescriptor::CPPTYPE_UINT64:
        return PutUnlessDefault(r->GetUInt64(m, f), f, first);
      case FieldDescriptor::CPPTYPE_DOUBLE:
        return PutUnlessDefault(r->GetDouble(m, f), f, first);
      case FieldDescriptor::CPPTYPE_FLOAT:
        return PutUnlessDefault(r->GetFloat(m, f), f, first);
      case FieldDescriptor::CPPTYPE_BOOL:
        return PutUnlessDefault(r->GetBool(m, f), f, first);
      case FieldDescriptor::CPPTYPE_ENUM:
        if (const int v = r->GetEnumValue(m, f); v != 0) {
          Key(f, first);
          return PrintEnum(f, v);
        }
        return true;
      case FieldDescriptor::CPPTYPE_STRING: {
        if (f->type() == FieldDescriptor::TYPE_BYTES) return false;
        std::string scratch;
        const std::string& v = r->GetStringReference(m, f, &scratch);
        if (v.empty()) return true;
        Key(f, first);
        return AppendString(v, &out_);
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;  // messages always have presence
    }
    return false;
  }

  template <typename T>
  bool PutUnlessDefault(T v, const FieldDescriptor* f, bool* first) {
    bool is_default;
    if constexpr (std::is_same_v<T, double>) {
      is_default = std::bit_cast<uint64_t>(v) == 0;
    } else if constexpr (std::is_same_v<T, float>) {
      is_default = std::bit_cast<uint32_t>(v) == 0;
    } else {
      is_default = v == T{};
    }
    if (!is_default) {
      Key(f, first);
      Put(v);
    }
    return true;
  }

  // Scalars as protobuf writes them: 64-bit integers quoted, doubles and
  // floats at their shortest round-trip precision.
  void Put(int32_t v) { absl::StrAppend(&out_, v); }
  void Put(uint32_t v) { absl::StrAppend(&out_, v); }
  void Put(int64_t v) { absl::StrAppend(&out_, "\"", v, "\""); }
  void Put(uint64_t v) { absl::StrAppend(&out_, "\"", v, "\""); }
  void Put(double v) { AppendReal(v, 15, 17, &out_); }
  void Put(float v) { AppendReal(v, 6, 9, &out_); }
  void Put(bool v) { out_.append(v ? "true" : "false"); }

  // An enum value by name, by number when it has none (open enums).
  bool PrintEnum(const FieldDescriptor* f, int v) {
    if (f->enum_type()->full_name() == "google.protobuf.NullValue") {
      return false;
    }
    const EnumValueDescriptor* e = f->enum_type()->FindValueByNumber(v);
    if (e == nullptr) {
      absl::StrAppend(&out_, v);
    } else {
      out_.push_back('"');
      out_.append(e->name());
      out_.push_back('"');
    }
    return true;
  }

  bool PrintField(const Message& m, const Reflection* r,
                  const FieldDescriptor* f) {
    if (f->is_map()) return false;
    if (!f->is_repeated()) return PrintValue(m, r, f, -1);
    out_.push_back('[');
    const int n = r->FieldSize(m, f);
    for (int i = 0; i < n; ++i) {
      if (i > 0) out_.push_back(',');
      if (!PrintValue(m, r, f, i)) return false;
    }
    out_.push_back(']');
    return true;
  }

  // Field f of m: singular (index -1) or element `index`.
  bool PrintValue(const Message& m, const Reflection* r,
                  const FieldDescriptor* f, int index) {
    const bool one = index < 0;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        Put(one ? r->GetInt32(m, f) : r->GetRepeatedInt32(m, f, index));
        return true;
      case FieldDescriptor::CPPTYPE_UINT32:
        Put(one ? r->GetUInt32(m, f) : r->GetRepeatedUInt32(m, f, index));
        return true;
      case FieldDescriptor::CPPTYPE_INT64:
        Put(one ? r->GetInt64(m, f) : r->GetRepeatedInt64(m, f, index));
        return true;
      case FieldDescriptor::CPPTYPE_UINT64:
        Put(one ? r->GetUInt64(m, f) : r->GetRepeatedUInt64(m, f, index));
        return true;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        Put(one ? r->GetDouble(m, f) : r->GetRepeatedDouble(m, f, index));
        return true;
      case FieldDescriptor::CPPTYPE_FLOAT:
        Put(one ? r->GetFloat(m, f) : r->GetRepeatedFloat(m, f, index));
        return true;
      case FieldDescriptor::CPPTYPE_BOOL:
        Put(one ? r->GetBool(m, f) : r->GetRepeatedBool(m, f, index));
        return true;
      case FieldDescriptor::CPPTYPE_ENUM:
        return PrintEnum(f, one ? r->GetEnumValue(m, f)
                                : r->GetRepeatedEnumValue(m, f, index));
      case FieldDescriptor::CPPTYPE_STRING: {
        if (f->type() == FieldDescriptor::TYPE_BYTES) return false;
        std::string scratch;
        const std::string& s =
            one ? r->GetStringReference(m, f, &scratch)
                : r->GetRepeatedStringReference(m, f, index, &scratch);
        return AppendString(s, &out_);
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        return PrintMessage(one ? r->GetMessage(m, f)
                                : r->GetRepeatedMessage(m, f, index));
    }
    return false;
  }

  const bool proto_names_;
  std::string& out_;
};

}  // namespace

absl::Status AppendJson(const Message& message, const PrintOptions& options,
                        std::string* out) {
  const size_t size = out->size();
  Printer printer(options, out);
  if (!printer.PrintMessage(message)) {
    out->resize(size);
    return absl::UnimplementedError(
        absl::StrCat("protojson: ", message.GetDescriptor()->full_name(),
                     " holds something the fast printer does not cover"));
  }
  return absl::OkStatus();
}

absl::Status PrintJson(const Message& message, const PrintOptions& options,
                       std::string* out) {
  if (AppendJson(message, options, out).ok()) return absl::OkStatus();
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = options.preserve_proto_field_names;
  std::string json;
  const auto status =
      google::protobuf::util::MessageToJsonString(message, &json, o);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.code()),
                        std::string(status.message()));
  }
  out->append(json);
  return absl::OkStatus();
}

}  // namespace trialmatch::protojson
