// Where test data lives. Paths come from CMake cache variables compiled in
// (tests/CMakeLists.txt), never from the current directory.
//
// SharedDataDir() points at the read-only recorded data (../shared/data beside
// the checkout by default; -DTRIALMATCH_SHARED_DATA_DIR=... to move it). A
// test that needs it calls RequireSharedData() first, which FAILS the test when
// the data is missing — it never passes silently.
#ifndef TRIALMATCH_TESTING_TEST_PATHS_H_
#define TRIALMATCH_TESTING_TEST_PATHS_H_

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace trialmatch::testing {

inline std::filesystem::path SharedDataDir() {
  return TRIALMATCH_SHARED_DATA_DIR;
}
inline std::filesystem::path StudiesDir() {
  return SharedDataDir() / "ctgov_v2" / "studies";
}
inline std::filesystem::path TestDataDir() { return TRIALMATCH_TEST_DATA_DIR; }
inline std::filesystem::path SourceDir() { return TRIALMATCH_SOURCE_DIR; }
inline std::filesystem::path BinaryDir() { return TRIALMATCH_BINARY_DIR; }

// Fails the current test (fatally) when the recorded data is not present.
#define TM_REQUIRE_SHARED_DATA()                                             \
  ASSERT_TRUE(std::filesystem::is_directory(                                 \
      ::trialmatch::testing::StudiesDir()))                                  \
      << "recorded data missing at " << ::trialmatch::testing::StudiesDir() \
      << " (set -DTRIALMATCH_SHARED_DATA_DIR)"

// The first `n` recorded study ids (file names under StudiesDir()), in NCT
// order.
inline std::vector<std::string> RecordedIds(std::size_t n) {
  std::vector<std::string> ids;
  for (const auto& e : std::filesystem::directory_iterator(StudiesDir())) {
    ids.push_back(e.path().stem().string());
  }
  std::sort(ids.begin(), ids.end());
  if (ids.size() > n) ids.resize(n);
  return ids;
}

// Reads a whole file; returns "" if it cannot be read (callers assert).
inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace trialmatch::testing

#endif  // TRIALMATCH_TESTING_TEST_PATHS_H_
