// The deterministic batch plan shared by tests/store/crash_writer.cc (which
// writes it, batch by batch, until it is killed) and crash_test.cc (which
// checks what survived). Both sides derive everything from the sorted list
// of recorded study files, so the test knows exactly what each committed
// batch contained.
//
//   files[0]            the marker study: rewritten by EVERY batch k with
//                       "trialmatchCrashBatch": k injected, so a torn commit
//                       (new studies without the new marker, or the reverse)
//                       is visible;
//   files[1 + kB ...]   batch k's new studies (B = kBatchSize);
//   sync state          after batch k (P = k + 1 committed): full-sync cursor
//                       page_token "page-P", pages_done P, studies_seen =
//                       studies written so far, data_timestamp
//                       "after-batch-P"; after reconciliation the cursor is
//                       cleared and data_timestamp is "reconciled".
#ifndef TRIALMATCH_TESTS_STORE_CRASH_PLAN_H_
#define TRIALMATCH_TESTS_STORE_CRASH_PLAN_H_

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace trialmatch::store::crash {

inline constexpr size_t kBatchSize = 20;

struct Plan {
  std::vector<std::filesystem::path> files;  // sorted; files[0] = marker

  int num_batches() const {
    return static_cast<int>((files.size() - 1 + kBatchSize - 1) / kBatchSize);
  }
  // Indexes into `files` of batch k's new studies.
  size_t begin(int k) const { return 1 + static_cast<size_t>(k) * kBatchSize; }
  size_t end(int k) const {
    return std::min(files.size(), begin(k) + kBatchSize);
  }
  // Studies written by the first `p` batches (new ones plus the marker).
  int64_t studies_seen(int p) const {
    return p == 0 ? 0 : static_cast<int64_t>(end(p - 1) - 1) + p;
  }
};

// The first `n` recorded study files of `dir`, sorted by name.
inline Plan MakePlan(const std::filesystem::path& dir, size_t n) {
  Plan plan;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".json") plan.files.push_back(e.path());
  }
  std::sort(plan.files.begin(), plan.files.end());
  if (plan.files.size() > n) plan.files.resize(n);
  return plan;
}

inline std::string NctIdOf(const std::filesystem::path& file) {
  return file.stem().string();
}

// The marker's raw JSON as batch k writes it.
inline std::string MarkerJson(const std::string& raw, int k) {
  std::string out = raw;
  out.insert(1, "\"trialmatchCrashBatch\":" + std::to_string(k) + ",");
  return out;
}

inline std::string PageToken(int p) { return "page-" + std::to_string(p); }
inline std::string DataTimestamp(int p) {
  return "after-batch-" + std::to_string(p);
}
inline constexpr const char* kReconciled = "reconciled";

}  // namespace trialmatch::store::crash

#endif  // TRIALMATCH_TESTS_STORE_CRASH_PLAN_H_
