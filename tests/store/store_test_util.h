// Helpers shared by the store tests: loading real recorded studies from the
// shared data directory (sorted by file name, so every run sees the same
// records in the same order).
#ifndef TRIALMATCH_TESTS_STORE_STORE_TEST_UTIL_H_
#define TRIALMATCH_TESTS_STORE_STORE_TEST_UTIL_H_

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "store/store_types.h"
#include "testing/test_paths.h"

namespace trialmatch::store::testing {

// Every NCT*.json of the recorded corpus, sorted by name.
inline std::vector<std::filesystem::path> StudyFiles() {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(
           trialmatch::testing::StudiesDir(), ec)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Records [offset, offset + n) of StudyFiles(), parsed. Fails the test (and
// returns fewer) when a file cannot be read or parsed.
inline std::vector<StudyRecord> LoadRecords(size_t n, size_t offset = 0) {
  std::vector<StudyRecord> out;
  const std::vector<std::filesystem::path> files = StudyFiles();
  for (size_t i = offset; i < files.size() && out.size() < n; ++i) {
    absl::StatusOr<StudyRecord> r =
        MakeStudyRecord(trialmatch::testing::ReadFile(files[i]));
    EXPECT_TRUE(r.ok()) << files[i] << ": " << r.status();
    if (r.ok()) out.push_back(*std::move(r));
  }
  EXPECT_EQ(out.size(), n) << "not enough recorded studies";
  return out;
}

// The same record with its raw JSON changed (a new top-level member), as a
// re-fetch of an updated study would be. The parse is unaffected.
inline StudyRecord Modified(const StudyRecord& r, const std::string& tag) {
  StudyRecord m = r;
  m.raw_json.insert(1, "\"trialmatchTestTag\":\"" + tag + "\",");
  return m;
}

}  // namespace trialmatch::store::testing

#endif  // TRIALMATCH_TESTS_STORE_STORE_TEST_UTIL_H_
