#include "store/search_query.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "store/content_hash.h"

namespace trialmatch::store::internal {
namespace {

constexpr char kTokenVersion = 1;
constexpr size_t kTokenBytes = 1 + 8 + 8 + 4;

// Column sets per search area (after the API's search-areas document,
// limited to the columns the store indexes).
constexpr const char* kCondColumns =
    "{nct_id brief_title official_title conditions condition_mesh keywords}";
constexpr const char* kIntrColumns =
    "{brief_title official_title interventions keywords}";

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

// Whether FTS5's unicode61 tokenizer can find a token in `s`: ASCII letters
// and digits always count; non-ASCII bytes are given the benefit of the
// doubt (letters of other scripts).
bool HasWordChar(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x80 || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') ||
           (u >= 'A' && u <= 'Z');
  });
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

uint64_t GetLe(std::string_view in, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(in[static_cast<size_t>(i)]);
  }
  return v;
}

uint32_t TokenCheck(std::string_view bytes) {
  return static_cast<uint32_t>(
      ContentHash(bytes, ContentHash("trialmatch.page")));
}

}  // namespace

std::string ToFtsExpression(std::string_view text) {
  std::vector<std::string> out;  // terms and "OR"
  bool pending_or = false;
  size_t i = 0;
  auto emit = [&](std::string term) {
    if (!out.empty()) {
      if (pending_or) out.push_back("OR");
    }
    pending_or = false;
    out.push_back(std::move(term));
  };
  while (i < text.size()) {
    if (IsSpace(text[i])) {
      ++i;
      continue;
    }
    if (text[i] == '"') {
      const size_t close = text.find('"', i + 1);
      const size_t end = close == std::string_view::npos ? text.size() : close;
      const std::string_view phrase = text.substr(i + 1, end - i - 1);
      i = close == std::string_view::npos ? text.size() : close + 1;
      if (HasWordChar(phrase)) emit(Quote(phrase));
      continue;
    }
    size_t end = i;
    while (end < text.size() && !IsSpace(text[end]) && text[end] != '"') ++end;
    std::string_view word = text.substr(i, end - i);
    i = end;
    if (word == "OR") {
      pending_or = !out.empty();
      continue;
    }
    if (word == "AND") continue;
    bool prefix = false;
    while (!word.empty() && word.back() == '*') {
      word.remove_suffix(1);
      prefix = true;
    }
    if (!HasWordChar(word)) continue;
    std::string term = Quote(word);
    if (prefix) term.push_back('*');
    emit(std::move(term));
  }
  std::string expr;
  for (const std::string& part : out) {
    if (!expr.empty()) expr.push_back(' ');
    expr += part;
  }
  return expr;
}

std::string BuildMatchExpression(const LocalSearchQuery& query) {
  std::vector<std::string> parts;
  if (std::string e = ToFtsExpression(query.cond); !e.empty()) {
    parts.push_back(absl::StrCat("(", kCondColumns, " : (", e, "))"));
  }
  if (std::string e = ToFtsExpression(query.intr); !e.empty()) {
    parts.push_back(absl::StrCat("(", kIntrColumns, " : (", e, "))"));
  }
  if (std::string e = ToFtsExpression(query.term); !e.empty()) {
    parts.push_back(absl::StrCat("(", e, ")"));
  }
  std::string expr;
  for (const std::string& p : parts) {
    if (!expr.empty()) expr += " AND ";
    expr += p;
  }
  return expr;
}

uint64_t QueryFingerprint(const LocalSearchQuery& query) {
  std::vector<std::string> statuses = query.statuses;
  std::sort(statuses.begin(), statuses.end());
  statuses.erase(std::unique(statuses.begin(), statuses.end()), statuses.end());
  std::vector<int> lifecycles;
  for (const Lifecycle l : query.lifecycles)
    lifecycles.push_back(static_cast<int>(l));
  std::sort(lifecycles.begin(), lifecycles.end());
  lifecycles.erase(std::unique(lifecycles.begin(), lifecycles.end()),
                   lifecycles.end());
  // Fields separated by bytes that cannot appear in the values' meaning.
  std::string canonical =
      absl::StrCat("cond\x1f", common::ToAbsl(query.cond), "\x1eintr\x1f",
                   common::ToAbsl(query.intr), "\x1eterm\x1f",
                   common::ToAbsl(query.term), "\x1estatus");
  for (const std::string& s : statuses) absl::StrAppend(&canonical, "\x1f", s);
  absl::StrAppend(&canonical, "\x1elifecycle");
  for (const int l : lifecycles) absl::StrAppend(&canonical, "\x1f", l);
  return ContentHash(canonical);
}

std::string EncodePageToken(uint64_t fingerprint, int64_t last_rowid) {
  std::string raw;
  raw.push_back(kTokenVersion);
  PutLe(raw, static_cast<uint64_t>(last_rowid), 8);
  PutLe(raw, fingerprint, 8);
  PutLe(raw, TokenCheck(raw), 4);
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<int64_t> DecodePageToken(std::string_view token,
                                        uint64_t fingerprint) {
  std::string raw;
  if (token.size() > 64 ||
      !absl::WebSafeBase64Unescape(common::ToAbsl(token), &raw) ||
      raw.size() != kTokenBytes || raw[0] != kTokenVersion ||
      GetLe(std::string_view(raw).substr(17), 4) !=
          TokenCheck(std::string_view(raw).substr(0, 17))) {
    return absl::InvalidArgumentError("page_token is not a valid page token");
  }
  if (GetLe(std::string_view(raw).substr(9), 8) != fingerprint) {
    return absl::InvalidArgumentError(
        "page_token was issued for a different query");
  }
  const auto last =
      static_cast<int64_t>(GetLe(std::string_view(raw).substr(1), 8));
  if (last <= 0) {
    return absl::InvalidArgumentError("page_token is not a valid page token");
  }
  return last;
}

}  // namespace trialmatch::store::internal
