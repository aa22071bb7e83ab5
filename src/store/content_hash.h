// A stable 64-bit fingerprint of a study record's raw JSON text.
//
// The value is persisted (studies.content_hash, compiled_criteria.content_hash)
// and compared across processes, builds and machines, so its definition must
// never change: it is FNV-1a 64 (offset basis 0xcbf29ce484222325, prime
// 0x100000001b3) over the exact bytes, as specified at
// http://www.isthe.com/chongo/tech/comp/fnv/ and checked against the published
// test vectors in tests/store/content_hash_test.cc.
//
// Why hand-written rather than a library: absl::Hash is deliberately salted
// and unstable across runs; Abseil's CityHash is internal; xxHash has a Debian
// package (libxxhash-dev) but would add a build dependency and a runtime
// library for ten lines of code whose output we must pin forever anyway. The
// hash detects changed records (not adversaries), so FNV-1a's ~1 GB/s and
// 2^-64 accidental-collision odds are ample; the store also compares sizes.
//
// Pure function, thread-safe.
#ifndef TRIALMATCH_STORE_CONTENT_HASH_H_
#define TRIALMATCH_STORE_CONTENT_HASH_H_

#include <cstdint>
#include <string_view>

namespace trialmatch::store {

inline constexpr uint64_t kFnv1a64OffsetBasis = 0xcbf29ce484222325ULL;
inline constexpr uint64_t kFnv1a64Prime = 0x100000001b3ULL;

// FNV-1a 64 of `bytes`, continuing from `seed` (pass a previous result to hash
// pieces as if concatenated).
constexpr uint64_t ContentHash(std::string_view bytes,
                               uint64_t seed = kFnv1a64OffsetBasis) {
  uint64_t h = seed;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= kFnv1a64Prime;
  }
  return h;
}

}  // namespace trialmatch::store

#endif  // TRIALMATCH_STORE_CONTENT_HASH_H_
