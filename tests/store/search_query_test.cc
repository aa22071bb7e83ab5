#include "store/search_query.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace trialmatch::store::internal {
namespace {

using ::trialmatch::testing::StatusIs;

TEST(ToFtsExpressionTest, QuotesEveryTermSoUserTextIsNeverSyntax) {
  struct Case {
    const char* text;
    const char* expr;
  } cases[] = {
      {"", ""},
      {"   ", ""},
      {"diabetes", "\"diabetes\""},
      {"breast cancer", "\"breast\" \"cancer\""},
      {"\"breast cancer\" stage", "\"breast cancer\" \"stage\""},
      {"asthma OR copd", "\"asthma\" OR \"copd\""},
      {"asthma or copd", "\"asthma\" \"or\" \"copd\""},  // lower case: a word
      {"OR asthma OR", "\"asthma\""},                    // dangling OR dropped
      {"a OR OR b", "\"a\" OR \"b\""},
      {"heart AND failure", "\"heart\" \"failure\""},
      {"diabet*", "\"diabet\"*"},
      {"***", ""},
      {"- -- ()", ""},
      {"NEAR(a b)", "\"NEAR(a\" \"b)\""},
      {"{brief_title}: x", "\"{brief_title}:\" \"x\""},
      {"say \"hi", "\"say\" \"hi\""},  // unterminated quote runs to the end
      {"a\"\"b", "\"a\" \"b\""},       // empty phrase dropped
      {"COVID-19", "\"COVID-19\""},
      {"x\"y", "\"x\" \"y\""},
      {"Sjögren", "\"Sjögren\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(ToFtsExpression(c.text), c.expr);
  }
}

TEST(BuildMatchExpressionTest, CombinesFieldsWithTheirColumns) {
  LocalSearchQuery q;
  EXPECT_EQ(BuildMatchExpression(q), "");
  q.cond = "asthma";
  q.intr = "placebo";
  q.term = "child";
  EXPECT_EQ(BuildMatchExpression(q),
            "({nct_id brief_title official_title conditions condition_mesh "
            "keywords} : (\"asthma\")) AND ({brief_title official_title "
            "interventions keywords} : (\"placebo\")) AND (\"child\")");
}

TEST(PageTokenTest, RoundTripsForTheSameQuery) {
  LocalSearchQuery q;
  q.cond = "asthma";
  q.statuses = {"RECRUITING", "COMPLETED"};
  const uint64_t fp = QueryFingerprint(q);
  const std::string token = EncodePageToken(fp, 4567890);
  ASSERT_OK_AND_ASSIGN(const int64_t last, DecodePageToken(token, fp));
  EXPECT_EQ(last, 4567890);

  // Page size, token and status order do not change the fingerprint.
  LocalSearchQuery same = q;
  same.page_size = 99;
  same.page_token = token;
  same.statuses = {"COMPLETED", "RECRUITING", "COMPLETED"};
  EXPECT_EQ(QueryFingerprint(same), fp);
}

TEST(PageTokenTest, RejectsTokensOfOtherQueries) {
  LocalSearchQuery q;
  q.cond = "asthma";
  const std::string token = EncodePageToken(QueryFingerprint(q), 12);
  for (auto change : {+[](LocalSearchQuery& x) { x.cond = "asthmas"; },
                      +[](LocalSearchQuery& x) { x.intr = "asthma"; },
                      +[](LocalSearchQuery& x) { x.statuses = {"RECRUITING"}; },
                      +[](LocalSearchQuery& x) { x.lifecycles.clear(); }}) {
    LocalSearchQuery other = q;
    change(other);
    EXPECT_THAT(DecodePageToken(token, QueryFingerprint(other)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         ::testing::HasSubstr("different query")));
  }
}

TEST(PageTokenTest, RejectsGarbageAndTampering) {
  const uint64_t fp = 42;
  const std::string token = EncodePageToken(fp, 12);
  std::string tampered = token;
  tampered[3] = tampered[3] == 'A' ? 'B' : 'A';
  for (const std::string& bad :
       {std::string("x"), std::string("!!!!"), std::string(""), tampered,
        token + "A", token.substr(1), std::string(200, 'A'),
        EncodePageToken(fp, 0), EncodePageToken(fp, -5)}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(DecodePageToken(bad, fp),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

}  // namespace
}  // namespace trialmatch::store::internal
