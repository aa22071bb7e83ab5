#include "server/page_token.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/strings.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "nlohmann/json.hpp"
#include "store/content_hash.h"

namespace trialmatch::server {
namespace {

constexpr std::string_view kPrefix = "tm1";

absl::Status NotOurs() {
  return absl::InvalidArgumentError(
      "page_token is not a token issued by this service (use the "
      "next_page_token of a previous response, unchanged)");
}

std::string Hex(uint64_t v) { return absl::StrFormat("%016x", v); }

}  // namespace

uint64_t SearchFingerprint(const v1::SearchStudiesRequest& request) {
  v1::SearchStudiesRequest key = request;
  key.clear_page_token();
  key.clear_page_size();
  key.clear_count_total();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    key.SerializeToCodedStream(&coded);
  }
  return store::ContentHash(bytes);
}

std::string EncodeSearchCursor(const SearchCursor& cursor) {
  nlohmann::json j = {
      {"o", cursor.origin == CursorOrigin::kLocal ? "l" : "u"},
      {"f", Hex(cursor.fingerprint)},
      {"t", cursor.inner},
  };
  if (cursor.skip > 0) {
    j["s"] = cursor.skip;
    j["p"] = cursor.fetch_page_size;
  }
  const std::string payload =
      j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string checked =
      absl::StrCat(payload, ".", Hex(store::ContentHash(payload)));
  return absl::StrCat(common::ToAbsl(kPrefix),
                      absl::WebSafeBase64Escape(checked));
}

absl::StatusOr<SearchCursor> DecodeSearchCursor(std::string_view token,
                                                uint64_t expected_fingerprint) {
  if (token.size() > 8192 || token.substr(0, kPrefix.size()) != kPrefix) {
    return NotOurs();
  }
  std::string checked;
  if (!absl::WebSafeBase64Unescape(common::ToAbsl(token.substr(kPrefix.size())),
                                   &checked)) {
    return NotOurs();
  }
  const std::size_t dot = checked.rfind('.');
  if (dot == std::string::npos) return NotOurs();
  const std::string_view payload(checked.data(), dot);
  if (Hex(store::ContentHash(payload)) != checked.substr(dot + 1)) {
    return NotOurs();
  }
  const nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return NotOurs();
  auto o = j.find("o");
  auto f = j.find("f");
  auto t = j.find("t");
  if (o == j.end() || f == j.end() || t == j.end() || !o->is_string() ||
      !f->is_string() || !t->is_string()) {
    return NotOurs();
  }
  SearchCursor cursor;
  const std::string origin = o->get<std::string>();
  if (origin == "u") {
    cursor.origin = CursorOrigin::kUpstream;
  } else if (origin == "l") {
    cursor.origin = CursorOrigin::kLocal;
  } else {
    return NotOurs();
  }
  if (!absl::SimpleHexAtoi(f->get<std::string>(), &cursor.fingerprint)) {
    return NotOurs();
  }
  cursor.inner = t->get<std::string>();
  if (auto s = j.find("s"); s != j.end()) {
    auto p = j.find("p");
    if (!s->is_number_integer() || p == j.end() || !p->is_number_integer()) {
      return NotOurs();
    }
    cursor.skip = s->get<int64_t>();
    const int64_t page_size = p->get<int64_t>();
    if (cursor.skip <= 0 || page_size < 1 || page_size > 1000) {
      return NotOurs();
    }
    cursor.fetch_page_size = static_cast<int32_t>(page_size);
  }
  if (cursor.fingerprint != expected_fingerprint) {
    return absl::InvalidArgumentError(
        "page_token was issued for a different query: send the same query "
        "parameters as the request that returned it (only page_size and "
        "count_total may change)");
  }
  return cursor;
}

}  // namespace trialmatch::server
