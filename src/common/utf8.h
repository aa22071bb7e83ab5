// UTF-8 decoding, one sequence at a time (shared by the criteria text
// normaliser and the JSON printer).
//
// DecodeUtf8(s, p, &cp) decodes the sequence that starts at s[p] (p <
// s.size()): returns its length (1-4) and sets *cp, or returns 0 when the
// bytes at p are not well-formed UTF-8 (overlong forms, surrogates, code
// points above U+10FFFF, a truncated sequence). Header-only, no state.
#ifndef TRIALMATCH_COMMON_UTF8_H_
#define TRIALMATCH_COMMON_UTF8_H_

#include <cstddef>
#include <string_view>

namespace trialmatch::common {

inline int DecodeUtf8(std::string_view s, size_t p, char32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[p]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  int len;
  char32_t c;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    c = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    c = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    c = b0 & 0x07;
  } else {
    return 0;
  }
  if (p + static_cast<size_t>(len) > s.size()) return 0;
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[p + static_cast<size_t>(k)]);
    if ((b & 0xC0) != 0x80) return 0;
    c = (c << 6) | (b & 0x3F);
  }
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < kMin[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  *cp = c;
  return len;
}

}  // namespace trialmatch::common

#endif  // TRIALMATCH_COMMON_UTF8_H_
