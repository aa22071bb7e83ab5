// Page tokens of StudyService.SearchStudies, bound to their query and origin.
//
// A SearchStudies page comes either from ClinicalTrials.gov (whose
// nextPageToken is an opaque upstream cursor) or from the local store (whose
// SearchLocal token is a keyset cursor). The token handed to clients wraps
// either one in a SearchCursor:
//
//   origin       kUpstream | kLocal: where the next page must come from (a
//                result set is never switched between sources mid-way)
//   fingerprint  of the query (every request field except page_token,
//                page_size and count_total): a token presented with another
//                query is refused
//   inner        the upstream / local token of the page to fetch ("" = the
//                first page)
//   skip         results of that page already returned: a page larger than
//                the response size budget is handed out in parts, each part
//                re-fetching the same page and skipping what was sent
//   fetch_page_size  the page size the inner page was fetched with (a
//                re-fetch must use it to get the same page); 0 when skip = 0
//
// Encoding: "tm1" + web-safe base64 (no padding) of a small JSON object plus
// an FNV-1a check of it. Garbage, a damaged token, a token of another
// version, or one for another query → kInvalidArgument. The check detects
// accidents, not forgery: a forged token can at worst ask the upstream or
// the store for a page of the same query (both validate their own tokens).
//
// Pure functions; thread-safe.
#ifndef TRIALMATCH_SERVER_PAGE_TOKEN_H_
#define TRIALMATCH_SERVER_PAGE_TOKEN_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "trialmatch/v1/study_service.pb.h"

namespace trialmatch::server {

enum class CursorOrigin { kUpstream, kLocal };

struct SearchCursor {
  CursorOrigin origin = CursorOrigin::kUpstream;
  uint64_t fingerprint = 0;
  std::string inner = {};
  int64_t skip = 0;
  int32_t fetch_page_size = 0;
};

// Fingerprint of `request` ignoring page_token, page_size and count_total.
// Stable across processes and builds of the same API version (FNV-1a over a
// deterministic serialization), so tokens survive a server restart or a hop
// to another replica.
uint64_t SearchFingerprint(const v1::SearchStudiesRequest& request);

std::string EncodeSearchCursor(const SearchCursor& cursor);

// Decodes a client's page_token. kInvalidArgument when it is not a token this
// server issued (malformed, damaged, other version) or when its fingerprint
// differs from `expected_fingerprint` ("issued for a different query").
absl::StatusOr<SearchCursor> DecodeSearchCursor(std::string_view token,
                                                uint64_t expected_fingerprint);

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_PAGE_TOKEN_H_
