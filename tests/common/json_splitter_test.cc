#include "common/json_splitter.h"

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::common {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::trialmatch::testing::IsOk;
using ::trialmatch::testing::StatusIs;

struct Out {
  std::vector<std::string> elements;
  std::vector<std::uint64_t> offsets;
  std::vector<std::uint64_t> indexes;
  std::string remainder;
  absl::Status status;
};

JsonSplitter::Options Opts(JsonSplitter::Mode mode,
                           std::string member = "studies") {
  JsonSplitter::Options o;
  o.mode = mode;
  o.member = std::move(member);
  return o;
}

// Feeds `input` cut at the given positions (sorted, within [0, size]).
Out SplitAt(std::string_view input, const JsonSplitter::Options& options,
            const std::vector<std::size_t>& cuts) {
  Out out;
  JsonSplitter splitter(options, [&](const JsonSplitter::Element& e) {
    out.elements.emplace_back(e.bytes);
    out.offsets.push_back(e.offset);
    out.indexes.push_back(e.index);
    return absl::OkStatus();
  });
  std::size_t prev = 0;
  for (std::size_t cut : cuts) {
    out.status = splitter.Feed(input.substr(prev, cut - prev));
    if (!out.status.ok()) return out;
    prev = cut;
  }
  out.status = splitter.Feed(input.substr(prev));
  if (out.status.ok()) out.status = splitter.Finish();
  out.remainder = splitter.Remainder();
  return out;
}

absl::Status IgnoreElements(const JsonSplitter::Element&) {
  return absl::OkStatus();
}

Out Split(std::string_view input, const JsonSplitter::Options& options) {
  return SplitAt(input, options, {});
}

Out SplitBytewise(std::string_view input,
                  const JsonSplitter::Options& options) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
  return SplitAt(input, options, cuts);
}

// The result must not depend on where the input is cut: checks one cut at
// every byte, and all bytes fed one by one.
void ExpectChunkingInvariant(std::string_view input,
                             const JsonSplitter::Options& options) {
  const Out whole = Split(input, options);
  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    SCOPED_TRACE(cut);
    const Out part = SplitAt(input, options, {cut});
    ASSERT_EQ(part.status, whole.status);
    ASSERT_EQ(part.elements, whole.elements);
    ASSERT_EQ(part.offsets, whole.offsets);
    ASSERT_EQ(part.remainder, whole.remainder);
  }
  const Out bytewise = SplitBytewise(input, options);
  EXPECT_EQ(bytewise.status, whole.status);
  EXPECT_EQ(bytewise.elements, whole.elements);
  EXPECT_EQ(bytewise.remainder, whole.remainder);
}

TEST(JsonSplitterTest, SplitsAnArrayIntoExactElementBytes) {
  const std::string input =
      R"( [ {"a": 1} ,{"b":[1,2,{"c":"}"}]},  "s" , 12.5e3, true ,null, [] ] )";
  const Out out = Split(input, Opts(JsonSplitter::kArray));
  ASSERT_OK(out.status);
  EXPECT_THAT(out.elements,
              ElementsAre(R"({"a": 1})", R"({"b":[1,2,{"c":"}"}]})", R"("s")",
                          "12.5e3", "true", "null", "[]"));
  EXPECT_THAT(out.indexes, ElementsAre(0, 1, 2, 3, 4, 5, 6));
  for (std::size_t i = 0; i < out.elements.size(); ++i) {
    EXPECT_EQ(input.substr(out.offsets[i], out.elements[i].size()),
              out.elements[i]);
  }
  ExpectChunkingInvariant(input, Opts(JsonSplitter::kArray));
}

TEST(JsonSplitterTest, StringsMayContainQuotesBracketsAndEscapes) {
  const std::string input =
      R"([{"t":"say \"hi\" [not a bracket] {nor this}"},)"
      R"({"u":"\\"},{"v":"\\\"]"},{"w":"\u005d\/\b\f\n\r\t"},)"
      R"({"k\"]":"x"},"]",{"utf8":"é ≥ 😀"}])";
  const Out out = Split(input, Opts(JsonSplitter::kArray));
  ASSERT_OK(out.status);
  ASSERT_EQ(out.elements.size(), 7u);
  EXPECT_EQ(out.elements[1], R"({"u":"\\"})");
  EXPECT_EQ(out.elements[2], R"({"v":"\\\"]"})");
  EXPECT_EQ(out.elements[5], R"("]")");
  // Every element is valid JSON equal to what a DOM parser sees.
  const nlohmann::json dom = nlohmann::json::parse(input);
  for (std::size_t i = 0; i < out.elements.size(); ++i) {
    EXPECT_EQ(nlohmann::json::parse(out.elements[i]), dom[i]);
  }
  ExpectChunkingInvariant(input, Opts(JsonSplitter::kArray));
}

TEST(JsonSplitterTest, EmptyArraysAndWhitespaceAndBom) {
  for (const char* input : {"[]", " [ ] ", "\n\t[\r\n]\n", "\xEF\xBB\xBF[]"}) {
    SCOPED_TRACE(input);
    const Out out = Split(input, Opts(JsonSplitter::kArray));
    EXPECT_OK(out.status);
    EXPECT_TRUE(out.elements.empty());
    ExpectChunkingInvariant(input, Opts(JsonSplitter::kArray));
  }
  const Out bom = Split("\xEF\xBB\xBF[{}]", Opts(JsonSplitter::kArray));
  ASSERT_OK(bom.status);
  EXPECT_THAT(bom.offsets, ElementsAre(4));
}

TEST(JsonSplitterTest, DeeplyNestedElementsAreOneElement) {
  std::string deep = "[";
  for (int i = 0; i < 100; ++i) deep += "[{\"a\":";
  deep += "0";
  for (int i = 0; i < 100; ++i) deep += "}]";
  deep += ",{}]";
  const Out out = Split(deep, Opts(JsonSplitter::kArray));
  ASSERT_OK(out.status);
  ASSERT_EQ(out.elements.size(), 2u);
  EXPECT_EQ(out.elements[0], deep.substr(1, deep.size() - 5));

  JsonSplitter::Options shallow = Opts(JsonSplitter::kArray);
  shallow.max_depth = 10;
  EXPECT_THAT(Split(deep, shallow).status,
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("nesting deeper than 10")));
}

TEST(JsonSplitterTest, MalformedStructureIsDataLossWithOffset) {
  struct Case {
    const char* input;
    const char* message;
  } cases[] = {
      {R"([{}{}])", "byte 3: unexpected '{', expected ',' or ']'"},
      {R"([{},])", "byte 4: unexpected ']', expected an element after ','"},
      {R"([,{}])", "byte 1: unexpected ','"},
      {R"([{]})", "byte 2: unexpected ']'"},
      {R"([[}])", "byte 2: unexpected '}'"},
      {R"([] x)", "byte 3: unexpected 'x', expected end of input"},
      {R"({"a":1})", "byte 0: unexpected '{', expected '[' (a JSON array)"},
      {R"([{'a':1}])", "byte 2: unexpected '''"},
      {R"([tru])", "byte 1: invalid literal or number"},
      {R"([01])", "byte 1: invalid literal or number"},
      {"[\"a\nb\"]", "byte 3: raw control character"},
      {"[{\"a\":\"\x01\"}]", "byte 7: raw control character"},
      {R"([<html>])", "byte 1: unexpected '<', expected a JSON value"},
      {"<!DOCTYPE html>", "byte 0: unexpected '<'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    const Out out = Split(c.input, Opts(JsonSplitter::kArray));
    EXPECT_THAT(out.status,
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(c.message)));
    ExpectChunkingInvariant(c.input, Opts(JsonSplitter::kArray));
  }
}

TEST(JsonSplitterTest, TruncatedInputIsDataLossOnFinish) {
  struct Case {
    const char* input;
    const char* message;
  } cases[] = {
      {"", "empty input"},
      {"   ", "empty input"},
      {"[", "unterminated array or object"},
      {R"([{"a":1})", "unterminated"},
      {R"([{"a":1},)", "unterminated"},
      {R"([{"a":1}, {"b":)",
       "truncated inside element 1 which starts at byte 10"},
      {R"([{"a":"abc)", "truncated inside element 0 which starts at byte 1"},
      {R"([12)", "unterminated"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    const Out out = Split(c.input, Opts(JsonSplitter::kArray));
    EXPECT_THAT(out.status,
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(c.message)));
  }
  // The complete elements before the truncation were delivered.
  const Out partial = Split(R"([{"a":1}, {"b":)", Opts(JsonSplitter::kArray));
  EXPECT_THAT(partial.elements, ElementsAre(R"({"a":1})"));
}

TEST(JsonSplitterTest, CallbackErrorStopsAndIsSticky) {
  int calls = 0;
  JsonSplitter splitter(Opts(JsonSplitter::kArray),
                        [&](const JsonSplitter::Element& e) {
                          ++calls;
                          if (e.index == 1) return absl::AbortedError("stop");
                          return absl::OkStatus();
                        });
  EXPECT_THAT(splitter.Feed("[1,2,3,4]"),
              StatusIs(absl::StatusCode::kAborted, "stop"));
  EXPECT_EQ(calls, 2);
  EXPECT_THAT(splitter.Feed("x"), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(splitter.Finish(), StatusIs(absl::StatusCode::kAborted));
}

TEST(JsonSplitterTest, ErrorsAreSticky) {
  JsonSplitter splitter(Opts(JsonSplitter::kArray), IgnoreElements);
  EXPECT_THAT(splitter.Feed("[}"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(splitter.Feed("]"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(splitter.Finish(), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(JsonSplitterTest, FeedAfterFinishIsRejected) {
  JsonSplitter splitter(Opts(JsonSplitter::kArray), IgnoreElements);
  ASSERT_OK(splitter.Feed("[]"));
  ASSERT_OK(splitter.Finish());
  EXPECT_OK(splitter.Finish());
  EXPECT_THAT(splitter.Feed(" "),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(JsonSplitterTest, ElementSizeLimit) {
  JsonSplitter::Options o = Opts(JsonSplitter::kArray);
  o.max_element_bytes = 8;
  EXPECT_OK(Split(R"([{"a":12},{"b":1}])", o).status);  // exactly 8 bytes
  EXPECT_THAT(Split(R"([{"a":123}])", o).status,
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("element 0 is larger than 8 bytes")));
  // Also when the oversized element arrives in pieces.
  EXPECT_THAT(SplitBytewise(R"([{"a":"0123456789"}])", o).status,
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(JsonSplitterTest, ElementsInsideOneChunkAreNotCopied) {
  const std::string input = R"([{"a":1},{"b":2}])";
  std::vector<const char*> data;
  JsonSplitter splitter(Opts(JsonSplitter::kArray),
                        [&](const JsonSplitter::Element& e) {
                          data.push_back(e.bytes.data());
                          return absl::OkStatus();
                        });
  ASSERT_OK(splitter.Feed(input));
  ASSERT_OK(splitter.Finish());
  EXPECT_THAT(data, ElementsAre(input.data() + 1, input.data() + 9));
}

TEST(JsonSplitterTest, LinesModeSplitsNdjson) {
  const std::string input =
      "{\"a\":1}\n\n{\"b\":[1,\n2]}\r\n  \"s\"\n7\ntrue {}{}\n";
  const Out out = Split(input, Opts(JsonSplitter::kLines));
  ASSERT_OK(out.status);
  EXPECT_THAT(out.elements, ElementsAre(R"({"a":1})", "{\"b\":[1,\n2]}",
                                        R"("s")", "7", "true", "{}", "{}"));
  ExpectChunkingInvariant(input, Opts(JsonSplitter::kLines));

  EXPECT_OK(Split("", Opts(JsonSplitter::kLines)).status);
  EXPECT_OK(Split(" \n ", Opts(JsonSplitter::kLines)).status);
  EXPECT_THAT(Split("{}\n{", Opts(JsonSplitter::kLines)).status,
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("truncated inside element 1")));
  EXPECT_THAT(Split("{},{}", Opts(JsonSplitter::kLines)).status,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("byte 2")));
  // A scalar ended by the end of input.
  const Out last = SplitBytewise("1 22", Opts(JsonSplitter::kLines));
  ASSERT_OK(last.status);
  EXPECT_THAT(last.elements, ElementsAre("1", "22"));
}

TEST(JsonSplitterTest, MemberArrayModeSplitsTheMemberAndKeepsTheRest) {
  const std::string input =
      R"({"totalCount": 3, "meta": {"studies": [9]}, "studies" : [ {"x":"]"} , {"y":2} ] ,"nextPageToken":"abc"})";
  const Out out = Split(input, Opts(JsonSplitter::kMemberArray));
  ASSERT_OK(out.status);
  EXPECT_THAT(out.elements, ElementsAre(R"({"x":"]"})", R"({"y":2})"));
  EXPECT_EQ(
      out.remainder,
      R"({"totalCount": 3, "meta": {"studies": [9]}, "studies" : [] ,"nextPageToken":"abc"})");
  const nlohmann::json rest = nlohmann::json::parse(out.remainder);
  EXPECT_EQ(rest["nextPageToken"], "abc");
  ExpectChunkingInvariant(input, Opts(JsonSplitter::kMemberArray));

  const Out other = Split(R"({"items":[1,2],"studies":[3]})",
                          Opts(JsonSplitter::kMemberArray, "items"));
  ASSERT_OK(other.status);
  EXPECT_THAT(other.elements, ElementsAre("1", "2"));
  EXPECT_EQ(other.remainder, R"({"items":[],"studies":[3]})");
}

TEST(JsonSplitterTest, MemberArrayModeErrors) {
  const auto mode = Opts(JsonSplitter::kMemberArray);
  EXPECT_THAT(Split(R"({"totalCount":0})", mode).status,
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("no member \"studies\"")));
  EXPECT_THAT(Split(R"({})", mode).status,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("no member")));
  EXPECT_THAT(
      Split(R"({"studies":null})", mode).status,
      StatusIs(absl::StatusCode::kDataLoss,
               HasSubstr("byte 11: member \"studies\" is not an array")));
  EXPECT_THAT(Split(R"({"studies":[],"studies":[]})", mode).status,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("duplicate")));
  EXPECT_THAT(Split(R"({"studies":[]})", mode).status, IsOk());
  EXPECT_THAT(Split(R"({"studies" []})", mode).status,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("expected ':'")));
  EXPECT_THAT(Split(R"({"studies":[],})", mode).status,
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("expected a member name")));
  EXPECT_THAT(Split(R"([{}])", mode).status,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'{'")));
  EXPECT_THAT(Split(R"({"studies":[{}])", mode).status,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
  // A longer or shorter key is not the member.
  EXPECT_THAT(Split(R"({"studiesX":[1],"studie":[2]})", mode).status,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("no member")));

  JsonSplitter::Options small = mode;
  small.max_remainder_bytes = 16;
  EXPECT_THAT(
      Split(R"({"studies":[],"nextPageToken":"0123456789"})", small).status,
      StatusIs(absl::StatusCode::kResourceExhausted));
}

// ---- Real recorded API responses -------------------------------------------

std::vector<std::filesystem::path> RecordedPages() {
  std::vector<std::filesystem::path> pages;
  const auto dir =
      ::trialmatch::testing::SharedDataDir() / "ctgov_v2" / "search_responses";
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("search_", 0) == 0 || name.rfind("studies_", 0) == 0 ||
        name == "kylevogeler_sampleResponse.json") {
      pages.push_back(entry.path());
    }
  }
  std::sort(pages.begin(), pages.end());
  return pages;
}

TEST(JsonSplitterRecordedTest, SplitsEveryRecordedStudiesPageLikeADomParser) {
  TM_REQUIRE_SHARED_DATA();
  const auto pages = RecordedPages();
  ASSERT_GE(pages.size(), 8u);
  std::mt19937 rng(42);
  for (const auto& path : pages) {
    SCOPED_TRACE(path.string());
    const std::string body = ::trialmatch::testing::ReadFile(path);
    ASSERT_FALSE(body.empty());
    const nlohmann::json dom = nlohmann::json::parse(body);
    ASSERT_TRUE(dom.contains("studies"));

    // Random chunk sizes between 1 and 4 KiB.
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0;;) {
      at += 1 + rng() % 4096;
      if (at >= body.size()) break;
      cuts.push_back(at);
    }
    const Out out = SplitAt(body, Opts(JsonSplitter::kMemberArray), cuts);
    ASSERT_OK(out.status);
    ASSERT_EQ(out.elements.size(), dom["studies"].size());
    for (std::size_t i = 0; i < out.elements.size(); ++i) {
      EXPECT_EQ(nlohmann::json::parse(out.elements[i]), dom["studies"][i]);
      EXPECT_EQ(body.substr(out.offsets[i], out.elements[i].size()),
                out.elements[i]);
    }
    nlohmann::json rest = nlohmann::json::parse(out.remainder);
    nlohmann::json expected_rest = dom;
    expected_rest["studies"] = nlohmann::json::array();
    EXPECT_EQ(rest, expected_rest);
  }
}

TEST(JsonSplitterRecordedTest, EveryCutOfARecordedPage) {
  TM_REQUIRE_SHARED_DATA();
  const std::string body = ::trialmatch::testing::ReadFile(
      ::trialmatch::testing::SharedDataDir() / "ctgov_v2" / "search_responses" /
      "biomcp" / "search_nsclc_egfr_l858r_20260811.json");
  ASSERT_FALSE(body.empty());
  ExpectChunkingInvariant(body, Opts(JsonSplitter::kMemberArray));
  EXPECT_FALSE(Split(body, Opts(JsonSplitter::kMemberArray)).elements.empty());
}

TEST(JsonSplitterRecordedTest, StreamsAnArrayOfRecordedStudies) {
  TM_REQUIRE_SHARED_DATA();
  // Build a ctg-studies.json-like array (and the JSONL form) from 200 files.
  std::vector<std::string> studies;
  for (const auto& entry : std::filesystem::directory_iterator(
           ::trialmatch::testing::StudiesDir())) {
    // Some recorded files have CRLF line ends or leading blanks: an element
    // is the value without the whitespace around it.
    std::string text = ::trialmatch::testing::ReadFile(entry.path());
    const auto first = text.find_first_not_of(" \t\r\n");
    const auto last = text.find_last_not_of(" \t\r\n");
    ASSERT_NE(first, std::string::npos);
    studies.push_back(text.substr(first, last + 1 - first));
    if (studies.size() == 200) break;
  }
  ASSERT_EQ(studies.size(), 200u);
  std::string array = "[\n";
  std::string lines;
  for (std::size_t i = 0; i < studies.size(); ++i) {
    array += studies[i];
    array += i + 1 < studies.size() ? ",\n" : "\n]\n";
    lines += nlohmann::json::parse(studies[i]).dump() + "\n";
  }
  std::vector<std::size_t> cuts;
  for (std::size_t at = 65536; at < array.size(); at += 65536)
    cuts.push_back(at);
  const Out out = SplitAt(array, Opts(JsonSplitter::kArray), cuts);
  ASSERT_OK(out.status);
  ASSERT_EQ(out.elements.size(), studies.size());
  for (std::size_t i = 0; i < studies.size(); ++i) {
    EXPECT_TRUE(out.elements[i] == studies[i]) << "element " << i;
  }

  const Out jsonl = Split(lines, Opts(JsonSplitter::kLines));
  ASSERT_OK(jsonl.status);
  ASSERT_EQ(jsonl.elements.size(), studies.size());
  EXPECT_EQ(nlohmann::json::parse(jsonl.elements[7]),
            nlohmann::json::parse(studies[7]));
}

// ---- Property: agreement with a real parser
// -----------------------------------

// A random JSON value with awkward strings (quotes, brackets, escapes, UTF-8).
nlohmann::json RandomValue(std::mt19937& rng, int depth) {
  const int kind = static_cast<int>(rng() % (depth > 3 ? 5 : 7));
  switch (kind) {
    case 0:
      return nullptr;
    case 1:
      return rng() % 2 == 0;
    case 2:
      return static_cast<int>(rng() % 2000) - 1000;
    case 3:
      return (static_cast<double>(rng() % 100000) - 50000) / 7.0;
    case 4: {
      static const char* kPieces[] = {"a",  "\"", "\\", "[",    "]",
                                      "{",  "}",  ",",  ":",    " ",
                                      "\n", "é",  "≥",  "\x01", "/"};
      std::string s;
      const int n = static_cast<int>(rng() % 8);
      for (int i = 0; i < n; ++i) s += kPieces[rng() % std::size(kPieces)];
      return s;
    }
    case 5: {
      nlohmann::json a = nlohmann::json::array();
      const int n = static_cast<int>(rng() % 4);
      for (int i = 0; i < n; ++i) a.push_back(RandomValue(rng, depth + 1));
      return a;
    }
    default: {
      nlohmann::json o = nlohmann::json::object();
      const int n = static_cast<int>(rng() % 4);
      for (int i = 0; i < n; ++i) {
        o["k" + std::to_string(rng() % 10) + "\"]"] =
            RandomValue(rng, depth + 1);
      }
      return o;
    }
  }
}

// Re-indents dumped JSON: random whitespace after structural characters.
std::string Reflow(const std::string& compact, std::mt19937& rng) {
  static const char* kSpace[] = {"", "", " ", "\n", "\t", "\r\n  "};
  std::string out;
  bool in_string = false, escape = false;
  for (char c : compact) {
    out.push_back(c);
    if (in_string) {
      if (escape)
        escape = false;
      else if (c == '\\')
        escape = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (std::string_view("[]{},:").find(c) != std::string_view::npos) {
      out += kSpace[rng() % std::size(kSpace)];  // never inside a token
    }
  }
  return out;
}

// For any input: the splitter succeeds and every element parses
// <=> a DOM parser accepts the input as an array; and then the elements are
// the array's members. Checked on random documents and random one-byte
// mutations of them, each fed in random chunks.
TEST(JsonSplitterPropertyTest, AgreesWithNlohmannOnRandomAndMutatedArrays) {
  std::mt19937 rng(20240611);
  int accepted = 0, rejected = 0;
  static const char kMutations[] = "[]{}\",:\\ x0-e.tn";
  for (int round = 0; round < 3000; ++round) {
    nlohmann::json doc = nlohmann::json::array();
    const int n = static_cast<int>(rng() % 5);
    for (int i = 0; i < n; ++i) doc.push_back(RandomValue(rng, 0));
    std::string text = Reflow(doc.dump(), rng);
    if (round % 2 == 1 && !text.empty()) {
      const std::size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[at] = kMutations[rng() % (sizeof kMutations - 1)];
          break;
        case 1:
          text.erase(at, 1);
          break;
        default:
          text.insert(at, 1, kMutations[rng() % (sizeof kMutations - 1)]);
      }
    }
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0;;) {
      at += 1 + rng() % 16;
      if (at >= text.size()) break;
      cuts.push_back(at);
    }
    SCOPED_TRACE(text);
    const Out out = SplitAt(text, Opts(JsonSplitter::kArray), cuts);
    bool elements_parse = out.status.ok();
    for (const std::string& e : out.elements) {
      elements_parse = elements_parse && nlohmann::json::accept(e);
    }
    const nlohmann::json dom = nlohmann::json::parse(text, nullptr, false);
    const bool dom_ok = !dom.is_discarded() && dom.is_array();
    ASSERT_EQ(elements_parse, dom_ok) << out.status;
    if (dom_ok) {
      ++accepted;
      ASSERT_EQ(out.elements.size(), dom.size());
      for (std::size_t i = 0; i < dom.size(); ++i) {
        ASSERT_EQ(nlohmann::json::parse(out.elements[i]), dom[i]);
      }
    } else {
      ++rejected;
    }
  }
  // Both sides of the equivalence were exercised.
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(rejected, 300);
}

}  // namespace
}  // namespace trialmatch::common
