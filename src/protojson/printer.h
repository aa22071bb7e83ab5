// protojson: protobuf messages as JSON, byte for byte what protobuf writes,
// twice as fast.
//
//   std::string out;
//   protojson::PrintOptions options;
//   options.preserve_proto_field_names = true;
//   absl::Status s = protojson::PrintJson(response, options, &out);
//
// AppendJson writes what google::protobuf::util::MessageToJsonString (3.21)
// writes for the same message with the same options (compact, fields with
// default values omitted), byte for byte: field number order, 64-bit
// integers quoted, doubles and floats as protobuf's SimpleDtoa/SimpleFtoa
// ("%.15g" or "%.17g", "%.6g" or "%.9g", whichever reads back exactly),
// non-finite ones as "NaN"/"Infinity"/"-Infinity", enums by name (by number
// when the value has no name), strings with protobuf's escapes (control
// characters, '"', '\\', '<', '>', and the invisible and format code points
// it lists). It reads the fields by reflection straight into `out` (each
// value once), where protobuf serialises the message to binary and parses
// it back through a type resolver: on real match answers (~110 KB of JSON
// each) 455 against 224 MB/s (bench/protojson_bench, BENCHMARKS.md).
// tests/protojson checks the equality on every Unicode code point, random
// doubles and floats, every field type, and real match answers.
//
// Covered: proto3 messages with scalar, string, enum, message, repeated,
// oneof and `optional` fields, and google.protobuf.Timestamp. Not covered
// (AppendJson returns kUnimplemented and leaves `out` as it was): maps,
// bytes, other well-known types (Any, Struct, Value, Duration, wrappers,
// FieldMask, ...), proto2 messages, strings that are not valid UTF-8, and
// timestamps out of protobuf's range. PrintJson falls back to
// MessageToJsonString for those, so it prints every message.
//
// Thread-safety: stateless; the message is only read.
#ifndef TRIALMATCH_PROTOJSON_PRINTER_H_
#define TRIALMATCH_PROTOJSON_PRINTER_H_

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace trialmatch::protojson {

struct PrintOptions {
  // Field names as in the .proto ("nct_id"), else their JSON names
  // ("nctId"), as google::protobuf::util::JsonPrintOptions.
  bool preserve_proto_field_names = false;
};

// Appends `message` as JSON to `out`. kUnimplemented (out unchanged) for
// what is not covered (see above).
absl::Status AppendJson(const google::protobuf::Message& message,
                        const PrintOptions& options, std::string* out);

// Appends `message` as JSON to `out`: AppendJson, else protobuf's
// MessageToJsonString (then its error, if any, with out unchanged).
absl::Status PrintJson(const google::protobuf::Message& message,
                       const PrintOptions& options, std::string* out);

}  // namespace trialmatch::protojson

#endif  // TRIALMATCH_PROTOJSON_PRINTER_H_
