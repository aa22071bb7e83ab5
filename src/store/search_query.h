// Internal to store/: turns LocalSearchQuery text into an SQLite FTS5 MATCH
// expression, and encodes/validates the opaque keyset page tokens.
//
// User text never reaches FTS5 syntax directly: every word or phrase becomes
// a double-quoted FTS5 string (quotes doubled), so FTS5 operators, column
// filters, parentheses or NEAR in user input are searched as text, never
// interpreted, and cannot make a syntax error. Only these are recognised:
// "quoted phrases", an upper-case `OR` between two terms, a trailing `*`
// (prefix), and an upper-case `AND` (ignored: terms are ANDed anyway).
//
// Page tokens: web-safe base64 (no padding) of 21 bytes =
//   version (1) | last NCT rowid (8, LE) | query fingerprint (8, LE) |
//   check (4, LE: low bits of ContentHash of the preceding bytes).
// A token is accepted only for the query it was issued for (same cond, intr,
// term, statuses and lifecycles; page_size may change between pages).
// Not a security boundary: tokens are not secret, only validated.
//
// Pure functions, thread-safe.
#ifndef TRIALMATCH_STORE_SEARCH_QUERY_H_
#define TRIALMATCH_STORE_SEARCH_QUERY_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "store/store_types.h"

namespace trialmatch::store::internal {

// FTS5 expression for one text field; "" when it holds no searchable term.
std::string ToFtsExpression(std::string_view text);

// The MATCH expression for the query's cond/intr/term fields combined with
// AND, each restricted to its columns; "" when there is no text at all.
std::string BuildMatchExpression(const LocalSearchQuery& query);

// Stable fingerprint of what selects the result set (not page size/token).
uint64_t QueryFingerprint(const LocalSearchQuery& query);

std::string EncodePageToken(uint64_t fingerprint, int64_t last_rowid);

// The last rowid of the previous page. kInvalidArgument when the token is
// malformed, damaged, or was issued for another query.
absl::StatusOr<int64_t> DecodePageToken(std::string_view token,
                                        uint64_t fingerprint);

}  // namespace trialmatch::store::internal

#endif  // TRIALMATCH_STORE_SEARCH_QUERY_H_
