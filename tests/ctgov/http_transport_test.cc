#include "ctgov/http_transport.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace trialmatch::ctgov {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using ::trialmatch::testing::IsOk;
using ::trialmatch::testing::StatusIs;

HttpResponse Response(int status, std::string body = "") {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

TEST(AsStatusTest, MapsEveryClassOfCode) {
  using Code = absl::StatusCode;
  const struct {
    int http;
    Code code;
  } table[] = {
      {200, Code::kOk},
      {201, Code::kOk},
      {204, Code::kOk},
      {299, Code::kOk},
      {301, Code::kUnknown},
      {302, Code::kUnknown},
      {304, Code::kUnknown},
      {400, Code::kInvalidArgument},
      {401, Code::kUnauthenticated},
      {403, Code::kPermissionDenied},
      {404, Code::kNotFound},
      {405, Code::kFailedPrecondition},
      {408, Code::kUnavailable},
      {409, Code::kAborted},
      {410, Code::kNotFound},
      {412, Code::kFailedPrecondition},
      {413, Code::kInvalidArgument},
      {414, Code::kInvalidArgument},
      {418, Code::kFailedPrecondition},
      {422, Code::kInvalidArgument},
      {429, Code::kUnavailable},
      {500, Code::kUnavailable},
      {501, Code::kUnimplemented},
      {502, Code::kUnavailable},
      {503, Code::kUnavailable},
      {504, Code::kUnavailable},
      {505, Code::kInternal},
      {599, Code::kInternal},
      {0, Code::kUnknown},
      {100, Code::kUnknown},
      {600, Code::kUnknown},
  };
  for (const auto& row : table) {
    SCOPED_TRACE(row.http);
    EXPECT_EQ(AsStatus(Response(row.http)).code(), row.code);
  }
}

TEST(AsStatusTest, TransientCodesAreExactlyTheRetriedOnes) {
  for (int code = 100; code < 600; ++code) {
    const bool expected = code == 408 || code == 429 || code == 500 ||
                          code == 502 || code == 503 || code == 504;
    EXPECT_EQ(IsTransientHttpStatus(code), expected) << code;
  }
}

TEST(AsStatusTest, MessageHasCodeReasonAndUpstreamText) {
  EXPECT_THAT(AsStatus(Response(400, "Unknown field 'Foo' in fields\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "HTTP 400 Bad Request: Unknown field 'Foo' in fields"));
  EXPECT_THAT(
      AsStatus(Response(
          404, R"({"message":"Study NCT00000000 not found","code":404})")),
      StatusIs(absl::StatusCode::kNotFound,
               "HTTP 404 Not Found: Study NCT00000000 not found"));
  EXPECT_THAT(AsStatus(Response(503, "<!DOCTYPE html><html>secret</html>")),
              StatusIs(absl::StatusCode::kUnavailable,
                       "HTTP 503 Service Unavailable: (HTML page)"));
  EXPECT_THAT(AsStatus(Response(301, "moved")),
              StatusIs(absl::StatusCode::kUnknown,
                       "HTTP 301 Moved Permanently (unexpected redirect)"));
  EXPECT_THAT(AsStatus(Response(599)),
              StatusIs(absl::StatusCode::kInternal, "HTTP 599"));
  EXPECT_THAT(AsStatus(Response(200, "whatever")), IsOk());
}

TEST(BodyExcerptTest, IsShortAndSafe) {
  EXPECT_EQ(BodyExcerpt("  a\n\n  b\tc  "), "a b c");
  EXPECT_EQ(BodyExcerpt("bell\x07 and\x1b[31m escape"), "bell and[31m escape");
  EXPECT_EQ(BodyExcerpt(std::string(500, 'x'), 10), "xxxxxxxxxx...");
  EXPECT_EQ(BodyExcerpt(""), "");
  EXPECT_EQ(BodyExcerpt("<html><body>x</body></html>"), "(HTML page)");
  EXPECT_EQ(BodyExcerpt(R"({"error":"bad pageToken"})"), "bad pageToken");
  EXPECT_EQ(BodyExcerpt(R"({"other":1})"), R"({"other":1})");
  // A multi-byte character at the cut is dropped whole, not halved.
  EXPECT_EQ(BodyExcerpt("ab\xC3\xA9", 3), "ab...");
  EXPECT_EQ(BodyExcerpt("abc\xE2\x89\xA5", 5), "abc...");
  EXPECT_EQ(BodyExcerpt("a\xE2\x89\xA5z", 4), "a\xE2\x89\xA5...");
}

TEST(LooksLikeHtmlTest, ByContentTypeOrBody) {
  HttpResponse json = Response(200, R"({"a":1})");
  json.headers.Add("Content-Type", "application/json");
  EXPECT_FALSE(LooksLikeHtml(json));

  HttpResponse typed = Response(200, R"({"a":1})");
  typed.headers.Add("content-type", "Text/HTML; charset=UTF-8");
  EXPECT_TRUE(LooksLikeHtml(typed));

  EXPECT_TRUE(LooksLikeHtml(Response(200, "\n  <!doctype html><p>down")));
  EXPECT_TRUE(LooksLikeHtml(Response(200, "\xEF\xBB\xBF<HTML>")));
  EXPECT_FALSE(LooksLikeHtml(Response(200, "NCT Number,Study Title\n")));
  EXPECT_FALSE(LooksLikeHtml(Response(200, "")));
}

TEST(HttpHeadersTest, LookupIgnoresCaseAndReturnsTheFirst) {
  HttpHeaders h{{"X-Next-Page-Token", "abc"}, {"Set-Cookie", "1"}};
  h.Add("set-cookie", "2");
  EXPECT_EQ(h.Get("x-next-page-token").value_or(""), "abc");
  EXPECT_EQ(h.Get("SET-COOKIE").value_or(""), "1");
  EXPECT_FALSE(h.Get("x-total-count").has_value());
  EXPECT_TRUE(h.Has("X-NEXT-PAGE-TOKEN"));
  EXPECT_FALSE(HttpHeaders().Has("a"));
  EXPECT_THAT(std::string(HttpReasonPhrase(429)), StartsWith("Too Many"));
  EXPECT_THAT(std::string(HttpReasonPhrase(299)), Not(HasSubstr(" ")));
}

}  // namespace
}  // namespace trialmatch::ctgov
