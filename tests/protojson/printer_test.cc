// protojson::AppendJson against protobuf's own printer
// (google::protobuf::util::MessageToJsonString), which it must equal byte
// for byte: every Unicode code point in a string, random doubles and floats,
// random messages over every covered field type, both field-name styles;
// and kUnimplemented, out untouched, for what it does not cover (PrintJson
// then still equals protobuf). The messages are dynamic, built from a
// descriptor written here (no generated code).
#include "protojson/printer.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace trialmatch::protojson {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::DynamicMessageFactory;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptorProto;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Every covered field type, singular, repeated, in a oneof and `optional`;
// plus the shapes that are not covered.
constexpr char kTestFile[] = R"pb(
  name: "protojson_test.proto"
  package: "protojson.test"
  syntax: "proto3"
  dependency: "google/protobuf/timestamp.proto"
  enum_type {
    name: "Color"
    value { name: "COLOR_UNSPECIFIED" number: 0 }
    value { name: "RED" number: 1 }
    value { name: "GREEN" number: 2 }
  }
  message_type {
    name: "Nested"
    field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "b_text" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  }
  message_type {
    name: "All"
    field { name: "f_int32" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "f_int64" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 }
    field { name: "f_uint32" number: 3 label: LABEL_OPTIONAL type: TYPE_UINT32 }
    field { name: "f_uint64" number: 4 label: LABEL_OPTIONAL type: TYPE_UINT64 }
    field { name: "f_sint32" number: 5 label: LABEL_OPTIONAL type: TYPE_SINT32 }
    field { name: "f_sint64" number: 6 label: LABEL_OPTIONAL type: TYPE_SINT64 }
    field {
      name: "f_fixed32"
      number: 7
      label: LABEL_OPTIONAL
      type: TYPE_FIXED32
    }
    field {
      name: "f_fixed64"
      number: 8
      label: LABEL_OPTIONAL
      type: TYPE_FIXED64
    }
    field {
      name: "f_sfixed32"
      number: 9
      label: LABEL_OPTIONAL
      type: TYPE_SFIXED32
    }
    field {
      name: "f_sfixed64"
      number: 10
      label: LABEL_OPTIONAL
      type: TYPE_SFIXED64
    }
    field { name: "f_float" number: 11 label: LABEL_OPTIONAL type: TYPE_FLOAT }
    field {
      name: "f_double"
      number: 12
      label: LABEL_OPTIONAL
      type: TYPE_DOUBLE
    }
    field { name: "f_bool" number: 13 label: LABEL_OPTIONAL type: TYPE_BOOL }
    field {
      name: "f_string"
      number: 14
      label: LABEL_OPTIONAL
      type: TYPE_STRING
    }
    field {
      name: "f_enum"
      number: 15
      label: LABEL_OPTIONAL
      type: TYPE_ENUM
      type_name: ".protojson.test.Color"
    }
    field {
      name: "f_nested"
      number: 16
      label: LABEL_OPTIONAL
      type: TYPE_MESSAGE
      type_name: ".protojson.test.Nested"
    }
    field {
      name: "f_time"
      number: 17
      label: LABEL_OPTIONAL
      type: TYPE_MESSAGE
      type_name: ".google.protobuf.Timestamp"
    }
    field {
      name: "o_int32"
      number: 18
      label: LABEL_OPTIONAL
      type: TYPE_INT32
      oneof_index: 0
    }
    field {
      name: "o_string"
      number: 19
      label: LABEL_OPTIONAL
      type: TYPE_STRING
      oneof_index: 0
    }
    field {
      name: "p_int32"
      number: 20
      label: LABEL_OPTIONAL
      type: TYPE_INT32
      oneof_index: 1
      proto3_optional: true
    }
    field { name: "r_int32" number: 21 label: LABEL_REPEATED type: TYPE_INT32 }
    field { name: "r_int64" number: 22 label: LABEL_REPEATED type: TYPE_INT64 }
    field {
      name: "r_double"
      number: 23
      label: LABEL_REPEATED
      type: TYPE_DOUBLE
    }
    field { name: "r_float" number: 24 label: LABEL_REPEATED type: TYPE_FLOAT }
    field {
      name: "r_string"
      number: 25
      label: LABEL_REPEATED
      type: TYPE_STRING
    }
    field {
      name: "r_enum"
      number: 26
      label: LABEL_REPEATED
      type: TYPE_ENUM
      type_name: ".protojson.test.Color"
    }
    field {
      name: "r_nested"
      number: 27
      label: LABEL_REPEATED
      type: TYPE_MESSAGE
      type_name: ".protojson.test.Nested"
    }
    field { name: "r_bool" number: 28 label: LABEL_REPEATED type: TYPE_BOOL }
    field {
      name: "r_uint64"
      number: 29
      label: LABEL_REPEATED
      type: TYPE_UINT64
    }
    oneof_decl { name: "choice" }
    oneof_decl { name: "_p_int32" }
  }
  message_type {
    name: "WithBytes"
    field { name: "b" number: 1 label: LABEL_OPTIONAL type: TYPE_BYTES }
  }
  message_type {
    name: "WithMap"
    field {
      name: "m"
      number: 1
      label: LABEL_REPEATED
      type: TYPE_MESSAGE
      type_name: ".protojson.test.WithMap.MEntry"
    }
    nested_type {
      name: "MEntry"
      field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
      field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_INT32 }
      options { map_entry: true }
    }
  }
  message_type {
    name: "OutOfOrder"
    field { name: "second" number: 2 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "first" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
  }
)pb";

class PrinterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pool_ = new DescriptorPool();
    FileDescriptorProto timestamp;
    google::protobuf::Timestamp::descriptor()->file()->CopyTo(&timestamp);
    ASSERT_NE(pool_->BuildFile(timestamp), nullptr);
    FileDescriptorProto file;
    ASSERT_TRUE(
        google::protobuf::TextFormat::ParseFromString(kTestFile, &file));
    ASSERT_NE(pool_->BuildFile(file), nullptr);
    factory_ = new DynamicMessageFactory(pool_);
  }

  std::unique_ptr<Message> New(const std::string& name) {
    const Descriptor* d =
        pool_->FindMessageTypeByName("protojson.test." + name);
    EXPECT_NE(d, nullptr) << name;
    return std::unique_ptr<Message>(factory_->GetPrototype(d)->New());
  }

  static const FieldDescriptor* Field(const Message& m,
                                      const std::string& name) {
    const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
    EXPECT_NE(f, nullptr) << name;
    return f;
  }

  // protobuf's printer.
  static std::string Protobuf(const Message& m, bool proto_names) {
    google::protobuf::util::JsonPrintOptions o;
    o.preserve_proto_field_names = proto_names;
    std::string json;
    const auto status =
        google::protobuf::util::MessageToJsonString(m, &json, o);
    EXPECT_TRUE(status.ok()) << status.ToString();
    return json;
  }

  // Ours, after a prefix that must stay.
  static std::string Ours(const Message& m, bool proto_names) {
    std::string out = "prefix";
    PrintOptions o;
    o.preserve_proto_field_names = proto_names;
    const absl::Status s = AppendJson(m, o, &out);
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(out.substr(0, 6), "prefix");
    return out.substr(6);
  }

  static DescriptorPool* pool_;
  static DynamicMessageFactory* factory_;
};

DescriptorPool* PrinterTest::pool_ = nullptr;
DynamicMessageFactory* PrinterTest::factory_ = nullptr;

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

TEST_F(PrinterTest, EveryCodePointIsEscapedAsProtobufDoes) {
  std::unique_ptr<Message> m = New("All");
  const FieldDescriptor* f = Field(*m, "f_string");
  // 128 code points per string; a difference is then narrowed to one.
  size_t checked = 0;
  for (uint32_t begin = 0; begin <= 0x10ffff; begin += 128) {
    std::string text;
    for (uint32_t cp = begin; cp < begin + 128 && cp <= 0x10ffff; ++cp) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;  // surrogates: not UTF-8
      AppendUtf8(cp, &text);
      ++checked;
    }
    if (text.empty()) continue;
    m->GetReflection()->SetString(m.get(), f, text);
    if (Ours(*m, true) == Protobuf(*m, true)) continue;
    for (uint32_t cp = begin; cp < begin + 128; ++cp) {
      std::string one;
      AppendUtf8(cp, &one);
      m->GetReflection()->SetString(m.get(), f, one);
      EXPECT_EQ(Ours(*m, true), Protobuf(*m, true))
          << "code point U+" << absl::StrCat(absl::Hex(cp));
    }
    FAIL() << "differs in [U+" << absl::StrCat(absl::Hex(begin)) << ", +128)";
  }
  EXPECT_EQ(checked, 0x110000u - 0x800u);
}

TEST_F(PrinterTest, InvalidUtf8IsNotCoveredAndOutIsUntouched) {
  std::unique_ptr<Message> m = New("All");
  for (const std::string& bad :
       {std::string("\xff"), std::string("a\xc3"), std::string("\xc0\xaf"),
        std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
        std::string("\xe2\x82")}) {
    m->GetReflection()->SetString(m.get(), Field(*m, "f_string"), bad);
    std::string out = "kept";
    const absl::Status s = AppendJson(*m, {}, &out);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
    EXPECT_EQ(out, "kept");
  }
}

// Random bit patterns (every exponent, subnormals, both zeros) and the
// values a score, a distance or a float-sized coordinate take.
std::vector<double> Doubles(std::mt19937_64& rng, size_t n) {
  std::vector<double> v = {0.0,
                           -0.0,
                           1.0,
                           -1.5,
                           0.1,
                           1e21,
                           1e-7,
                           123456789012345678.0,
                           std::numeric_limits<double>::max(),
                           std::numeric_limits<double>::min(),
                           std::numeric_limits<double>::denorm_min(),
                           std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity(),
                           std::numeric_limits<double>::quiet_NaN()};
  std::uniform_real_distribution<double> unit(0, 1);
  while (v.size() < n) {
    const uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    v.push_back(d);
    v.push_back(unit(rng));
    v.push_back(static_cast<double>(static_cast<float>(unit(rng) * 360 - 180)));
    v.push_back(std::round(unit(rng) * 1e6) / 100);
  }
  return v;
}

TEST_F(PrinterTest, DoublesAndFloatsReadAsProtobufWritesThem) {
  std::mt19937_64 rng(20261127);
  std::unique_ptr<Message> m = New("All");
  const Reflection* r = m->GetReflection();
  for (const double d : Doubles(rng, 20000)) {
    m->Clear();
    r->SetDouble(m.get(), Field(*m, "f_double"), d);
    r->SetFloat(m.get(), Field(*m, "f_float"), static_cast<float>(d));
    r->AddDouble(m.get(), Field(*m, "r_double"), d);
    r->AddFloat(m.get(), Field(*m, "r_float"), static_cast<float>(d));
    ASSERT_EQ(Ours(*m, false), Protobuf(*m, false)) << absl::StrCat(d);
  }
}

// A random message: each field set or not, values from every corner.
void Fill(std::mt19937_64& rng, const Reflection* r, Message* m,
          const std::vector<double>& reals, int depth);

std::string RandomText(std::mt19937_64& rng) {
  static const char* const kPieces[] = {
      "a", "Z",          " ",        "\"",       "\\",     "<",      ">",
      "&", "'",          "\n",       "\t",       "\x01",   "\x7f",   "é",
      "≥", "µmol/L",     "\xc2\x85", "\xc2\xad", "\u2028", "\u200b", "\ufeff",
      "😀", "\U000e0041", "𝅳",     "/",        "%"};
  std::string s;
  const size_t n = rng() % 12;
  for (size_t i = 0; i < n; ++i) {
    s += kPieces[rng() % (sizeof kPieces / sizeof kPieces[0])];
  }
  return s;
}

void Fill(std::mt19937_64& rng, const Reflection* r, Message* m,
          const std::vector<double>& reals, int depth) {
  const Descriptor* d = m->GetDescriptor();
  auto chance = [&rng]() { return rng() % 3 != 0; };
  auto int64 = [&rng]() -> int64_t {
    switch (rng() % 4) {
      case 0:
        return std::numeric_limits<int64_t>::min();
      case 1:
        return std::numeric_limits<int64_t>::max();
      case 2:
        return static_cast<int64_t>(rng() % 2000) - 1000;
      default:
        return static_cast<int64_t>(rng());
    }
  };
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (!chance()) continue;
    const int n = f->is_repeated() ? static_cast<int>(rng() % 4) : 1;
    for (int k = 0; k < n; ++k) {
      const bool add = f->is_repeated();
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_INT32: {
          const auto v = static_cast<int32_t>(int64());
          add ? r->AddInt32(m, f, v) : r->SetInt32(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_INT64: {
          const int64_t v = int64();
          add ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_UINT32: {
          const auto v = static_cast<uint32_t>(int64());
          add ? r->AddUInt32(m, f, v) : r->SetUInt32(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_UINT64: {
          const auto v = static_cast<uint64_t>(int64());
          add ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_DOUBLE: {
          const double v = reals[rng() % reals.size()];
          add ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_FLOAT: {
          const auto v = static_cast<float>(reals[rng() % reals.size()]);
          add ? r->AddFloat(m, f, v) : r->SetFloat(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_BOOL: {
          const bool v = rng() % 2 == 0;
          add ? r->AddBool(m, f, v) : r->SetBool(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_ENUM: {
          // 0..2 named, 3 and -4 without a name (open proto3 enums).
          static constexpr int kValues[] = {0, 1, 2, 3, -4};
          const int v = kValues[rng() % 5];
          add ? r->AddEnumValue(m, f, v) : r->SetEnumValue(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_STRING: {
          const std::string v = RandomText(rng);
          add ? r->AddString(m, f, v) : r->SetString(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_MESSAGE: {
          Message* sub = add ? r->AddMessage(m, f) : r->MutableMessage(m, f);
          if (f->message_type()->full_name() == "google.protobuf.Timestamp") {
            const Reflection* tr = sub->GetReflection();
            const Descriptor* td = sub->GetDescriptor();
            // 0001-01-01 .. 9999-12-31, nanos of every precision class.
            tr->SetInt64(
                sub, td->FindFieldByName("seconds"),
                -62135596800 + static_cast<int64_t>(rng() % 315537897600));
            static constexpr int32_t kNanos[] = {0, 5000000, 123000, 1,
                                                 999999999};
            tr->SetInt32(sub, td->FindFieldByName("nanos"), kNanos[rng() % 5]);
          } else if (depth < 2) {
            Fill(rng, sub->GetReflection(), sub, reals, depth + 1);
          }
          break;
        }
      }
    }
  }
}

TEST_F(PrinterTest, RandomMessagesPrintAsProtobufPrintsThem) {
  std::mt19937_64 rng(4);
  const std::vector<double> reals = Doubles(rng, 64);
  std::unique_ptr<Message> m = New("All");
  for (int i = 0; i < 5000; ++i) {
    m->Clear();
    Fill(rng, m->GetReflection(), m.get(), reals, 0);
    const bool proto_names = i % 2 == 0;
    ASSERT_EQ(Ours(*m, proto_names), Protobuf(*m, proto_names))
        << m->ShortDebugString();
  }
}

TEST_F(PrinterTest, SetDefaultsAndPresenceFollowProtobuf) {
  std::unique_ptr<Message> m = New("All");
  const Reflection* r = m->GetReflection();
  EXPECT_EQ(Ours(*m, true), "{}");
  // Implicit presence: a default value is not printed; a oneof member or an
  // `optional` field set to its default is.
  r->SetInt32(m.get(), Field(*m, "f_int32"), 0);
  r->SetInt32(m.get(), Field(*m, "o_int32"), 0);
  r->SetInt32(m.get(), Field(*m, "p_int32"), 0);
  r->MutableMessage(m.get(), Field(*m, "f_nested"));
  EXPECT_EQ(Ours(*m, true), R"({"f_nested":{},"o_int32":0,"p_int32":0})");
  EXPECT_EQ(Ours(*m, true), Protobuf(*m, true));
  EXPECT_EQ(Ours(*m, false), R"({"fNested":{},"oInt32":0,"pInt32":0})");
  EXPECT_EQ(Ours(*m, false), Protobuf(*m, false));
}

TEST_F(PrinterTest, UncoveredShapesAreUnimplementedAndPrintJsonFallsBack) {
  std::vector<std::unique_ptr<Message>> uncovered;
  uncovered.push_back(New("WithBytes"));
  uncovered.back()->GetReflection()->SetString(
      uncovered.back().get(), Field(*uncovered.back(), "b"), "\x01\xff");
  uncovered.push_back(New("WithMap"));
  {
    Message* entry = uncovered.back()->GetReflection()->AddMessage(
        uncovered.back().get(), Field(*uncovered.back(), "m"));
    entry->GetReflection()->SetString(entry, Field(*entry, "key"), "k");
    entry->GetReflection()->SetInt32(entry, Field(*entry, "value"), 7);
  }
  uncovered.push_back(New("OutOfOrder"));
  uncovered.back()->GetReflection()->SetInt32(
      uncovered.back().get(), Field(*uncovered.back(), "first"), 1);
  uncovered.back()->GetReflection()->SetInt32(
      uncovered.back().get(), Field(*uncovered.back(), "second"), 2);
  // proto2 (descriptor.proto).
  auto proto2 = std::make_unique<FileDescriptorProto>();
  proto2->set_name("x.proto");
  uncovered.push_back(std::move(proto2));
  // A timestamp beyond year 9999 (protobuf refuses it).
  std::unique_ptr<Message> late = New("All");
  {
    Message* t = late->GetReflection()->MutableMessage(late.get(),
                                                       Field(*late, "f_time"));
    t->GetReflection()->SetInt64(t, Field(*t, "seconds"), 253402300800);
  }
  for (const auto& m : uncovered) {
    std::string out = "kept";
    EXPECT_EQ(AppendJson(*m, {}, &out).code(), absl::StatusCode::kUnimplemented)
        << m->GetDescriptor()->full_name();
    EXPECT_EQ(out, "kept");
    std::string printed = "kept";
    EXPECT_TRUE(PrintJson(*m, {}, &printed).ok());
    EXPECT_EQ(printed, "kept" + Protobuf(*m, false));
  }
  std::string out = "kept";
  EXPECT_EQ(AppendJson(*late, {}, &out).code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(out, "kept");
  // protobuf's own error, out untouched.
  EXPECT_FALSE(PrintJson(*late, {}, &out).ok());
  EXPECT_EQ(out, "kept");
}

}  // namespace
}  // namespace trialmatch::protojson
