#include "common/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"

namespace trialmatch::common {
namespace {

// A fake address: HugePageRange only does arithmetic on it.
const void* At(uintptr_t address) {
  return reinterpret_cast<const void*>(address);
}

constexpr uintptr_t kBase = uintptr_t{0x7f00} << 32;  // huge-page aligned

TEST(HugePageRangeTest, WholeHugePagesInsideTheRangeOnly) {
  // Aligned start: every whole page, the partial one at the end left out.
  EXPECT_EQ(HugePageRange(At(kBase), 2 * kHugePageSize + 100),
            std::make_pair(kBase, 2 * kHugePageSize));
  // Unaligned start: the first whole page begins at the next boundary.
  EXPECT_EQ(HugePageRange(At(kBase + 1), 4 * kHugePageSize),
            std::make_pair(kBase + kHugePageSize, 3 * kHugePageSize));
  EXPECT_EQ(HugePageRange(At(kBase + 4096), 2 * kHugePageSize),
            std::make_pair(kBase + kHugePageSize, kHugePageSize));
  // Exactly one page.
  EXPECT_EQ(HugePageRange(At(kBase), kHugePageSize).second, kHugePageSize);
}

TEST(HugePageRangeTest, NoWholePageIsAnEmptyRange) {
  EXPECT_EQ(HugePageRange(At(kBase), kHugePageSize - 1).second, 0u);
  // Two partial pages, no whole one.
  EXPECT_EQ(HugePageRange(At(kBase + 4096), kHugePageSize).second, 0u);
  EXPECT_EQ(HugePageRange(At(kBase), 0).second, 0u);
  EXPECT_EQ(HugePageRange(nullptr, 8 * kHugePageSize).second, 0u);
  // A length that would wrap around the address space.
  EXPECT_EQ(HugePageRange(At(kBase), SIZE_MAX).second, 0u);
}

TEST(HugePagesTest, SmallRangesAreLeftAlone) {
  std::vector<char> small(1000, 'x');
  EXPECT_EQ(AdviseHugePages(small.data(), small.size()), 0u);
  EXPECT_EQ(CollapseHugePages(small.data(), small.size()), 0u);
}

TEST(HugePagesTest, AdviceAndCollapseKeepTheData) {
  constexpr size_t kCount = 3 * kHugePageSize / sizeof(uint64_t) + 12345;
  std::vector<uint64_t> v;
  ReserveOnHugePages(&v, kCount);
  ASSERT_GE(v.capacity(), kCount);
  const uint64_t* reserved = v.data();
  v.resize(kCount);
  EXPECT_EQ(v.data(), reserved);  // filled in place, no reallocation
  std::iota(v.begin(), v.end(), uint64_t{7});
  const size_t collapsed = CollapseHugePages(v.data(), kCount * sizeof(v[0]));
  // Best effort, but never more than the whole pages inside.
  EXPECT_EQ(collapsed % kHugePageSize, 0u);
  EXPECT_LE(collapsed, HugePageRange(v.data(), kCount * sizeof(v[0])).second);
  for (size_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(v[i], i + 7) << i;
  }
}

TEST(HugePagesTest, TheKernelTakesTheAdviceWhereItHasHugePages) {
  if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0) {
    GTEST_SKIP() << "this kernel has no transparent huge pages";
  }
  const size_t bytes = 4 * kHugePageSize;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  const size_t advised = AdviseHugePages(p, bytes);
  EXPECT_EQ(advised, HugePageRange(p, bytes).second);
  EXPECT_GE(advised, 3 * kHugePageSize);  // at most one lost to alignment
  munmap(p, bytes);
}

}  // namespace
}  // namespace trialmatch::common
