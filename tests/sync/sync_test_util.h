// Helpers shared by the sync tests: the recorded corpus seen as the fake
// upstream serves it, and what a store holds.
#ifndef TRIALMATCH_TESTS_SYNC_SYNC_TEST_UTIL_H_
#define TRIALMATCH_TESTS_SYNC_SYNC_TEST_UTIL_H_

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "store/store_test_util.h"
#include "store/study_store.h"

namespace trialmatch::sync::testing {

// The recorded studies whose overallStatus is in `statuses`, sorted ids —
// read from the corpus index (ctgov_v2/studies_index.tsv: nct, overallStatus,
// ...), an oracle independent of our parser.
inline std::vector<std::string> CorpusIds(
    const std::set<std::string>& statuses) {
  std::vector<std::string> ids;
  std::istringstream in(trialmatch::testing::ReadFile(
      trialmatch::testing::SharedDataDir() / "ctgov_v2" / "studies_index.tsv"));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    const size_t tab = line.find('\t');
    const size_t tab2 = line.find('\t', tab + 1);
    if (tab == std::string::npos || tab2 == std::string::npos) continue;
    if (statuses.contains(line.substr(tab + 1, tab2 - tab - 1))) {
      ids.push_back(line.substr(0, tab));
    }
  }
  EXPECT_FALSE(ids.empty()) << "studies_index.tsv unreadable?";
  std::sort(ids.begin(), ids.end());
  return ids;
}

inline std::vector<std::string> InScopeCorpusIds() {
  return CorpusIds({"RECRUITING", "NOT_YET_RECRUITING"});
}

// Sorted ids of the stored studies in `lifecycle`.
inline std::vector<std::string> StoredIds(store::StudyStore& store,
                                          store::Lifecycle lifecycle) {
  std::vector<std::string> ids;
  store::StudyFilter filter;
  filter.lifecycles = {lifecycle};
  filter.include_raw_json = false;
  EXPECT_TRUE(store
                  .ForEachStudy(filter,
                                [&](const store::StudyView& v) {
                                  ids.emplace_back(v.nct_id);
                                  return absl::OkStatus();
                                })
                  .ok());
  return ids;
}

inline std::vector<std::string> ActiveIds(store::StudyStore& store) {
  return StoredIds(store, store::Lifecycle::kActive);
}

// A recorded study as compact JSON (one line).
inline std::string Compact(const std::string& raw_json) {
  return nlohmann::json::parse(raw_json).dump();
}

}  // namespace trialmatch::sync::testing

#endif  // TRIALMATCH_TESTS_SYNC_SYNC_TEST_UTIL_H_
