// SearchLocal against the whole recorded corpus, checked against a
// brute-force oracle written independently of the FTS5 index: it tokenizes
// the model::Study fields itself (ASCII letters/digits, case-folded).
#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/store_test_util.h"
#include "store/study_store.h"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::store {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::trialmatch::testing::StatusIs;

using Fields =
    std::map<std::string, std::vector<std::string>>;  // column -> items

std::string Lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// ASCII-alnum tokens; any other byte separates (so a word next to a non-ASCII
// letter may be missed here: the oracle is exact only in one direction, see
// Check below).
std::vector<std::string> Tokens(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (const char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      cur.push_back(
          static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (!cur.empty()) {
      out.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

Fields FieldsOf(const model::Study& s) {
  Fields f;
  f["nct_id"] = {s.nct_id};
  f["brief_title"] = {s.brief_title};
  f["official_title"] = {s.official_title};
  f["acronym"] = {s.acronym};
  f["lead_sponsor"] = {s.lead_sponsor};
  f["conditions"] = s.conditions;
  for (const auto& m : s.condition_meshes)
    f["condition_mesh"].push_back(m.term);
  for (const auto& m : s.condition_ancestors)
    f["condition_mesh"].push_back(m.term);
  f["interventions"] = s.interventions;
  f["keywords"] = s.keywords;
  return f;
}

const std::vector<std::string> kCondColumns = {"nct_id",         "brief_title",
                                               "official_title", "conditions",
                                               "condition_mesh", "keywords"};
const std::vector<std::string> kIntrColumns = {"brief_title", "official_title",
                                               "interventions", "keywords"};
const std::vector<std::string> kAllColumns = {
    "nct_id",         "acronym",    "brief_title",
    "official_title", "conditions", "condition_mesh",
    "interventions",  "keywords",   "lead_sponsor"};

// Whether the token sequence `phrase` occurs in one of `columns`.
bool HasPhrase(const Fields& f, const std::vector<std::string>& columns,
               const std::vector<std::string>& phrase) {
  for (const std::string& col : columns) {
    auto it = f.find(col);
    if (it == f.end()) continue;
    std::string joined;
    for (const std::string& item : it->second) joined += item + "\n";
    const std::vector<std::string> toks = Tokens(joined);
    if (toks.size() < phrase.size()) continue;
    for (size_t i = 0; i + phrase.size() <= toks.size(); ++i) {
      if (std::equal(phrase.begin(), phrase.end(),
                     toks.begin() + static_cast<long>(i))) {
        return true;
      }
    }
  }
  return false;
}

// Whether `needle` occurs as a substring (case-insensitive) in one of
// `columns`: the loose upper bound of what FTS may match.
bool ContainsText(const Fields& f, const std::vector<std::string>& columns,
                  const std::string& needle) {
  for (const std::string& col : columns) {
    auto it = f.find(col);
    if (it == f.end()) continue;
    for (const std::string& item : it->second) {
      if (Lower(item).find(needle) != std::string::npos) return true;
    }
  }
  return false;
}

constexpr size_t kCorpus = 420;

class LocalSearchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto store = StudyStore::Open(":memory:", {});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = store->release();
    // A third of the corpus: enough for every query below to have hits,
    // small enough that each test process (ctest runs one per test) loads
    // it quickly in a Debug build.
    records_ = new std::vector<StudyRecord>(testing::LoadRecords(kCorpus));
    ASSERT_TRUE(store_->UpsertStudies(*records_).ok());
  }
  static void TearDownTestSuite() {
    delete store_;
    delete records_;
    store_ = nullptr;
    records_ = nullptr;
  }
  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    ASSERT_NE(store_, nullptr);
    ASSERT_EQ(records_->size(), kCorpus);
  }

  // All hits of `q` (one big page), as NCT ids in result order.
  static std::vector<std::string> Search(LocalSearchQuery q) {
    q.page_size = 1000;
    std::vector<std::string> ids;
    while (true) {
      absl::StatusOr<LocalSearchPage> page = store_->SearchLocal(q);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) return ids;
      for (const LocalSearchHit& h : page->studies) ids.push_back(h.nct_id);
      if (page->next_page_token.empty()) return ids;
      q.page_token = page->next_page_token;
    }
  }

  // The oracle: studies having the phrase (exactly, by ASCII tokens) and
  // studies containing it as text at all.
  struct Expected {
    std::set<std::string> exact;
    std::set<std::string> loose;
  };
  static Expected Oracle(const std::vector<std::string>& columns,
                         const std::string& phrase) {
    Expected e;
    const std::vector<std::string> toks = Tokens(phrase);
    for (const StudyRecord& r : *records_) {
      const Fields f = FieldsOf(r.study);
      if (HasPhrase(f, columns, toks)) e.exact.insert(r.study.nct_id);
      if (ContainsText(f, columns, Lower(toks.front()))) {
        e.loose.insert(r.study.nct_id);
      }
    }
    return e;
  }

  // Exact-token matches must all be found; everything found must at least
  // contain the first word (FTS also folds diacritics and splits on Unicode
  // punctuation, which the ASCII oracle does not).
  static void Check(const std::vector<std::string>& got, const Expected& want) {
    const std::set<std::string> got_set(got.begin(), got.end());
    EXPECT_EQ(got_set.size(), got.size()) << "duplicate hits";
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end())) << "not in NCT order";
    for (const std::string& id : want.exact) {
      EXPECT_TRUE(got_set.count(id)) << "missed " << id;
    }
    for (const std::string& id : got) {
      EXPECT_TRUE(want.loose.count(id)) << "spurious " << id;
    }
    EXPECT_FALSE(want.exact.empty()) << "pick a query term the corpus has";
  }

  static StudyStore* store_;
  static std::vector<StudyRecord>* records_;
};

StudyStore* LocalSearchTest::store_ = nullptr;
std::vector<StudyRecord>* LocalSearchTest::records_ = nullptr;

TEST_F(LocalSearchTest, EachFieldSearchesItsColumnsOnly) {
  struct Case {
    std::string LocalSearchQuery::*field;
    const std::vector<std::string>* columns;
    std::vector<const char*> words;
  } cases[] = {
      {&LocalSearchQuery::cond,
       &kCondColumns,
       {"diabetes", "asthma", "leukemia", "neoplasms"}},
      {&LocalSearchQuery::intr,
       &kIntrColumns,
       {"placebo", "cisplatin", "radiation"}},
      {&LocalSearchQuery::term,
       &kAllColumns,
       {"university", "vaccine", "children"}},
  };
  for (const Case& c : cases) {
    for (const char* word : c.words) {
      SCOPED_TRACE(word);
      LocalSearchQuery q;
      q.*c.field = word;
      Check(Search(q), Oracle(*c.columns, word));
    }
  }
}

TEST_F(LocalSearchTest, PhraseIsStricterThanItsWords) {
  LocalSearchQuery phrase;
  phrase.cond = "\"breast cancer\"";
  const std::vector<std::string> got = Search(phrase);
  Check(got, Oracle(kCondColumns, "breast cancer"));
  LocalSearchQuery words;
  words.cond = "breast cancer";
  const std::vector<std::string> both = Search(words);
  EXPECT_TRUE(std::includes(both.begin(), both.end(), got.begin(), got.end()));
  // Words are ANDed: the intersection of the single-word searches.
  LocalSearchQuery breast, cancer;
  breast.cond = "breast";
  cancer.cond = "cancer";
  const std::vector<std::string> b = Search(breast), c = Search(cancer);
  std::vector<std::string> inter;
  std::set_intersection(b.begin(), b.end(), c.begin(), c.end(),
                        std::back_inserter(inter));
  EXPECT_EQ(both, inter);
}

TEST_F(LocalSearchTest, OrIsTheUnionAndPrefixWidens) {
  LocalSearchQuery a, b, either;
  a.cond = "asthma";
  b.cond = "diabetes";
  either.cond = "asthma OR diabetes";
  const std::vector<std::string> x = Search(a), y = Search(b);
  std::vector<std::string> uni;
  std::set_union(x.begin(), x.end(), y.begin(), y.end(),
                 std::back_inserter(uni));
  EXPECT_EQ(Search(either), uni);

  LocalSearchQuery prefix;
  prefix.cond = "diabet*";
  const std::vector<std::string> p = Search(prefix);
  LocalSearchQuery diabetic;
  diabetic.cond = "diabetic";
  const std::vector<std::string> d = Search(diabetic);
  ASSERT_FALSE(d.empty());
  EXPECT_TRUE(std::includes(p.begin(), p.end(), y.begin(), y.end()));
  EXPECT_TRUE(std::includes(p.begin(), p.end(), d.begin(), d.end()));
  const std::set<std::string> loose = Oracle(kCondColumns, "diabet").loose;
  for (const std::string& id : p) EXPECT_TRUE(loose.count(id)) << id;
}

TEST_F(LocalSearchTest, FieldsCombineWithAnd) {
  LocalSearchQuery cond, intr, both;
  cond.cond = "cancer";
  intr.intr = "placebo";
  both.cond = "cancer";
  both.intr = "placebo";
  const std::vector<std::string> c = Search(cond), i = Search(intr);
  std::vector<std::string> inter;
  std::set_intersection(c.begin(), c.end(), i.begin(), i.end(),
                        std::back_inserter(inter));
  EXPECT_EQ(Search(both), inter);
}

TEST_F(LocalSearchTest, StatusFilterAndListingWithoutText) {
  std::vector<std::string> recruiting;
  for (const StudyRecord& r : *records_) {
    if (r.study.overall_status == "RECRUITING")
      recruiting.push_back(r.study.nct_id);
  }
  std::sort(recruiting.begin(), recruiting.end());
  LocalSearchQuery q;
  q.statuses = {"RECRUITING"};
  EXPECT_EQ(Search(q), recruiting);

  LocalSearchQuery text = q;
  text.term = "cancer";
  LocalSearchQuery unfiltered;
  unfiltered.term = "cancer";
  std::vector<std::string> want;
  for (const std::string& id : Search(unfiltered)) {
    if (std::binary_search(recruiting.begin(), recruiting.end(), id))
      want.push_back(id);
  }
  EXPECT_EQ(Search(text), want);
  EXPECT_FALSE(want.empty());
}

TEST_F(LocalSearchTest, PagingVisitsEveryHitExactlyOnce) {
  LocalSearchQuery q;
  q.term = "cancer";
  const std::vector<std::string> all = Search(q);
  ASSERT_GT(all.size(), 30u);
  q.page_size = 7;
  std::vector<std::string> paged;
  int pages = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(LocalSearchPage page, store_->SearchLocal(q));
    ++pages;
    ASSERT_TRUE(page.total_count.has_value());
    EXPECT_EQ(*page.total_count, static_cast<int64_t>(all.size()));
    EXPECT_LE(page.studies.size(), 7u);
    for (const LocalSearchHit& h : page.studies) paged.push_back(h.nct_id);
    if (page.next_page_token.empty()) break;
    EXPECT_EQ(page.studies.size(), 7u);
    q.page_token = page.next_page_token;
  }
  EXPECT_EQ(paged, all);
  EXPECT_EQ(pages, static_cast<int>((all.size() + 6) / 7));
}

TEST_F(LocalSearchTest, HitsCarryTheListFields) {
  LocalSearchQuery q;
  q.term = records_->at(5).study.nct_id;
  ASSERT_OK_AND_ASSIGN(LocalSearchPage page, store_->SearchLocal(q));
  ASSERT_EQ(page.studies.size(), 1u);
  const LocalSearchHit& h = page.studies[0];
  const model::Study& s = records_->at(5).study;
  EXPECT_EQ(h.nct_id, s.nct_id);
  EXPECT_EQ(h.brief_title, s.brief_title);
  EXPECT_EQ(h.overall_status, s.overall_status);
  EXPECT_EQ(h.last_update_post_date, s.last_update_post_date);
  EXPECT_EQ(h.study_type, s.study_type);
  EXPECT_EQ(h.phases, s.phases);
  EXPECT_EQ(h.conditions, s.conditions);
  EXPECT_EQ(h.interventions, s.interventions);
  EXPECT_EQ(h.lifecycle, Lifecycle::kActive);
  EXPECT_EQ(page.total_count, 1);
}

TEST_F(LocalSearchTest, BadInputIsInvalidArgumentNeverACrash) {
  LocalSearchQuery q;
  q.cond = "asthma";
  q.page_size = 2;
  ASSERT_OK_AND_ASSIGN(LocalSearchPage first, store_->SearchLocal(q));
  ASSERT_FALSE(first.next_page_token.empty());

  LocalSearchQuery other = q;
  other.cond = "diabetes";
  other.page_token = first.next_page_token;
  EXPECT_THAT(store_->SearchLocal(other),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("different query")));
  for (const char* garbage : {"garbage", "AAAA", "%%%", "eyJsYXN0IjoxfQ"}) {
    LocalSearchQuery g = q;
    g.page_token = garbage;
    EXPECT_THAT(store_->SearchLocal(g),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  LocalSearchQuery negative = q;
  negative.page_size = -1;
  EXPECT_THAT(store_->SearchLocal(negative),
              StatusIs(absl::StatusCode::kInvalidArgument));

  // Text that would be FTS5 syntax is searched as text, never an error.
  for (const char* text : {"\"unterminated", "{brief_title}: x", "NEAR(a b)",
                           "a OR", "OR", "***", "\"\"", "-", "NOT cancer",
                           "(((", "title:asthma", "^asthma", "\x01\x02"}) {
    SCOPED_TRACE(text);
    LocalSearchQuery t;
    t.term = text;
    EXPECT_OK(store_->SearchLocal(t).status());
  }
}

TEST_F(LocalSearchTest, UnknownWordFindsNothing) {
  LocalSearchQuery q;
  q.term = "zzzqqqxxyy";
  ASSERT_OK_AND_ASSIGN(LocalSearchPage page, store_->SearchLocal(q));
  EXPECT_THAT(page.studies, IsEmpty());
  EXPECT_EQ(page.total_count, 0);
  EXPECT_TRUE(page.next_page_token.empty());
}

}  // namespace
}  // namespace trialmatch::store
