#include "server/page_token.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace trialmatch::server {
namespace {

using ::testing::HasSubstr;
using ::trialmatch::testing::StatusIs;

v1::SearchStudiesRequest Query(const std::string& cond) {
  v1::SearchStudiesRequest r;
  r.mutable_query()->set_cond(cond);
  r.mutable_filter()->add_overall_status("RECRUITING");
  return r;
}

TEST(PageTokenTest, RoundTrip) {
  const SearchCursor in{CursorOrigin::kLocal, 0x1234abcd5678ef90ULL,
                        "inner/token+=", 7, 250};
  const std::string token = EncodeSearchCursor(in);
  EXPECT_EQ(token.substr(0, 3), "tm1");
  ASSERT_OK_AND_ASSIGN(SearchCursor out,
                       DecodeSearchCursor(token, in.fingerprint));
  EXPECT_EQ(out.origin, CursorOrigin::kLocal);
  EXPECT_EQ(out.fingerprint, in.fingerprint);
  EXPECT_EQ(out.inner, "inner/token+=");
  EXPECT_EQ(out.skip, 7);
  EXPECT_EQ(out.fetch_page_size, 250);

  ASSERT_OK_AND_ASSIGN(
      SearchCursor up,
      DecodeSearchCursor(
          EncodeSearchCursor({CursorOrigin::kUpstream, 5, "abc", 0, 0}), 5));
  EXPECT_EQ(up.origin, CursorOrigin::kUpstream);
  EXPECT_EQ(up.skip, 0);
}

TEST(PageTokenTest, GarbageIsInvalidArgument) {
  for (const std::string& token : std::vector<std::string>{
           "", "x", "tm1", "tm1!!!!", "tm1abc", "NF0fQ2dJQUFBQUE",
           "tm1eyJvIjoidSJ9", std::string(9000, 'a')}) {
    SCOPED_TRACE(token.substr(0, 40));
    EXPECT_THAT(DecodeSearchCursor(token, 1),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("not a token issued by this service")));
  }
}

TEST(PageTokenTest, DamagedTokenIsRejected) {
  const std::string token =
      EncodeSearchCursor({CursorOrigin::kUpstream, 99, "page-2", 0, 0});
  // (The last character may carry unused padding bits.)
  for (std::size_t i = 3; i + 1 < token.size(); ++i) {
    std::string damaged = token;
    damaged[i] = damaged[i] == 'A' ? 'B' : 'A';
    SCOPED_TRACE(i);
    EXPECT_THAT(DecodeSearchCursor(damaged, 99),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(PageTokenTest, TokenOfAnotherQueryIsRejected) {
  const uint64_t a = SearchFingerprint(Query("asthma"));
  const uint64_t b = SearchFingerprint(Query("melanoma"));
  ASSERT_NE(a, b);
  const std::string token =
      EncodeSearchCursor({CursorOrigin::kUpstream, a, "t", 0, 0});
  EXPECT_THAT(DecodeSearchCursor(token, b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("different query")));
}

TEST(PageTokenTest, FingerprintIgnoresPagingFieldsOnly) {
  const v1::SearchStudiesRequest base = Query("asthma");
  const uint64_t fp = SearchFingerprint(base);

  v1::SearchStudiesRequest paging = base;
  paging.set_page_size(500);
  paging.set_count_total(true);
  paging.set_page_token("whatever");
  EXPECT_EQ(SearchFingerprint(paging), fp);

  v1::SearchStudiesRequest status = base;
  status.mutable_filter()->set_overall_status(0, "COMPLETED");
  EXPECT_NE(SearchFingerprint(status), fp);
  v1::SearchStudiesRequest csv = base;
  csv.set_format(v1::FORMAT_CSV);
  EXPECT_NE(SearchFingerprint(csv), fp);
  v1::SearchStudiesRequest fields = base;
  fields.add_fields("NCTId");
  EXPECT_NE(SearchFingerprint(fields), fp);
  v1::SearchStudiesRequest sort = base;
  sort.add_sort("LastUpdatePostDate");
  EXPECT_NE(SearchFingerprint(sort), fp);
}

TEST(PageTokenTest, FingerprintIsStable) {
  // Pinned: tokens must survive restarts and replicas of the same build.
  EXPECT_EQ(SearchFingerprint(Query("asthma")),
            SearchFingerprint(Query("asthma")));
  EXPECT_EQ(SearchFingerprint(v1::SearchStudiesRequest()),
            0xcbf29ce484222325ULL);  // FNV-1a of the empty serialization
}

}  // namespace
}  // namespace trialmatch::server
