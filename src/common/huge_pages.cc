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

namespace {

// madvise over the whole huge pages inside the range, each advice in turn;
// the bytes advised, or 0 when there are none or the kernel refuses one.
template <typename... Advice>
size_t MadviseHuge(const void* data, size_t bytes, Advice... advice) {
  const auto [first, size] = HugePageRange(data, bytes);
  if (size == 0) return 0;
  void* const p = reinterpret_cast<void*>(first);
  return ((::madvise(p, size, advice) == 0) && ...) ? size : 0;
}

}  // namespace

size_t AdviseHugePages(const void* data, size_t bytes) {
  return MadviseHuge(data, bytes, MADV_HUGEPAGE);
}

size_t CollapseHugePages(const void* data, size_t bytes) {
  return MadviseHuge(data, bytes, MADV_HUGEPAGE, MADV_COLLAPSE);
}

}  // namespace trialmatch::common
