// Internal to the criteria module: byte tests eight bytes at a time on
// 64-bit words ("SWAR"), for the per-byte loops of the compiler that run
// over every criterion (normalization fast path, lower-casing, white-space
// checks). Hand-written because neither Abseil nor the standard library
// offers these classifications on words; each helper is exact (no false
// positives), so callers may rely on a zero result.
//
// Pure functions; thread-safe.
#ifndef TRIALMATCH_CRITERIA_BYTE_WORDS_H_
#define TRIALMATCH_CRITERIA_BYTE_WORDS_H_

#include <cstdint>
#include <cstring>

namespace trialmatch::criteria::internal {

inline constexpr uint64_t kLowBits = 0x7F7F7F7F7F7F7F7FULL;
inline constexpr uint64_t kHighBits = 0x8080808080808080ULL;

// `b` in every byte.
constexpr uint64_t RepeatByte(uint8_t b) { return 0x0101010101010101ULL * b; }

// Eight bytes at `p` (unaligned).
inline uint64_t LoadWord(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// The high bit of each byte of `w` that is zero.
inline uint64_t ZeroBytes(uint64_t w) {
  return ~(((w & kLowBits) + kLowBits) | w) & kHighBits;
}

// The high bit of each byte of `w` equal to `b`.
inline uint64_t BytesEqual(uint64_t w, uint8_t b) {
  return ZeroBytes(w ^ RepeatByte(b));
}

// The high bit of each byte of `w` below 0x20 (ASCII control characters).
inline uint64_t ControlBytes(uint64_t w) {
  return ~(((w & kLowBits) + RepeatByte(0x80 - 0x20)) | w) & kHighBits;
}

// The high bit of each byte of `w` that is 0x7F or above (DEL, non-ASCII).
inline uint64_t HighBytes(uint64_t w) {
  return (((w & kLowBits) + RepeatByte(1)) | w) & kHighBits;
}

// `w` with its ASCII upper-case letters lower-cased, other bytes unchanged.
inline uint64_t LowerWord(uint64_t w) {
  const uint64_t low = w & kLowBits;
  // High bit set where the 7-bit value is >= 'A', resp. > 'Z'.
  const uint64_t ge_a = low + RepeatByte(0x80 - 'A');
  const uint64_t gt_z = low + RepeatByte(0x80 - 'Z' - 1);
  const uint64_t upper = ge_a & ~gt_z & ~w & kHighBits;
  return w | (upper >> 2);  // 0x80 >> 2 == 0x20, the case bit
}

}  // namespace trialmatch::criteria::internal

#endif  // TRIALMATCH_CRITERIA_BYTE_WORDS_H_
