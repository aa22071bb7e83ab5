#include "common/huge_pages.h"

#include <sys/mman.h>

// Linux 6.1; glibc 2.36's headers do not have it yet.
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

namespace trialmatch::common {

std::pair<uintptr_t, size_t> HugePageRange(const void* data, size_t bytes) {
  const auto begin = reinterpret_cast<uintptr_t>(data);
  if (data == nullptr || bytes > UINTPTR_MAX - begin) return {begin, 0};
  const uintptr_t first = (begin + kHugePageSize - 1) & ~(kHugePageSize - 1);
  const uintptr_t last = (begin + bytes) & ~(kHugePageSize - 1);
  if (last <= first) return {first, 0};
  return {first, last - first};
}

size_t AdviseHugePages(const void* data, size_t bytes) {
  const auto [first, size] = HugePageRange(data, bytes);
  if (size == 0) return 0;
  return ::madvise(reinterpret_cast<void*>(first), size, MADV_HUGEPAGE) == 0
             ? size
             : 0;
}

size_t CollapseHugePages(const void* data, size_t bytes) {
  if (AdviseHugePages(data, bytes) == 0) return 0;
  const auto [first, size] = HugePageRange(data, bytes);
  return ::madvise(reinterpret_cast<void*>(first), size, MADV_COLLAPSE) == 0
             ? size
             : 0;
}

}  // namespace trialmatch::common
