// Transparent huge pages (2 MiB) for large, long-lived arrays that are read
// at random (the matcher's snapshot: at 100k studies its 4 KiB pages
// overflow the TLB). Linux only; best effort everywhere: a kernel without
// transparent huge pages, with them switched off, or without free huge
// pages leaves the memory as it is, and the data is never changed.
//
// Only the whole huge pages inside a range are advised (HugePageRange): a
// range's partial pages at either end stay as they are, so advising an
// array never changes the pages of its neighbours on the heap.
//
//   std::vector<Record> v;
//   common::ReserveOnHugePages(&v, n);  // before the pages are first touched
//   v.resize(n);                        // faults in 2 MiB at a time
//   ...
//   common::CollapseHugePages(v.data(), v.size() * sizeof(Record));  // if
//                                        // filled without the reservation
//
// Thread-safety: the functions are thread-safe (madvise on the caller's own
// memory).
#ifndef TRIALMATCH_COMMON_HUGE_PAGES_H_
#define TRIALMATCH_COMMON_HUGE_PAGES_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace trialmatch::common {

inline constexpr size_t kHugePageSize = size_t{2} << 20;

// The whole huge pages inside [data, data + bytes): {first, size}, size 0
// when there is none (size is a multiple of kHugePageSize).
std::pair<uintptr_t, size_t> HugePageRange(const void* data, size_t bytes);

// Marks the whole huge pages inside the range MADV_HUGEPAGE: pages touched
// for the first time afterwards are faulted in as huge pages. Returns the
// bytes the kernel accepted the advice for (0 for none).
size_t AdviseHugePages(const void* data, size_t bytes);

// AdviseHugePages, then MADV_COLLAPSE (Linux >= 6.1): the pages already
// present are copied into huge pages now. Returns the bytes collapsed (0
// when the kernel cannot). Costs a copy of the range: prefer
// ReserveOnHugePages for an array not yet filled.
size_t CollapseHugePages(const void* data, size_t bytes);

// v->reserve(n), then AdviseHugePages over the reserved capacity, so that
// filling it (resize, push_back) faults in huge pages directly, with no
// later copy. A reservation below kHugePageSize is a plain reserve.
template <typename T>
void ReserveOnHugePages(std::vector<T>* v, size_t n) {
  v->reserve(n);
  if (v->capacity() * sizeof(T) >= kHugePageSize) {
    (void)AdviseHugePages(v->data(), v->capacity() * sizeof(T));
  }
}

}  // namespace trialmatch::common

#endif  // TRIALMATCH_COMMON_HUGE_PAGES_H_
