#include "criteria/normalized_text.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/utf8.h"
#include "criteria/byte_words.h"

namespace trialmatch::criteria {
namespace {

// Superscript digit value, or -1.
int SuperscriptDigit(char32_t c) {
  switch (c) {
    case 0x2070: return 0;
    case 0x00B9: return 1;
    case 0x00B2: return 2;
    case 0x00B3: return 3;
    default:
      if (c >= 0x2074 && c <= 0x2079) return static_cast<int>(c - 0x2070);
      return -1;
  }
}

// Fixed replacements for code points; nullptr = keep the character.
const char* Replacement(char32_t c) {
  switch (c) {
    case 0x2265: case 0x2267: case 0x2A7E: return ">=";
    case 0x2264: case 0x2266: case 0x2A7D: return "<=";
    case 0x02C3: case 0xFE65: return ">";
    case 0x02C2: case 0xFE64: return "<";
    case 0x2260: return "!=";
    case 0x2248: return "~";
    case 0x00D7: case 0x2715: case 0x2A2F: return "x";
    case 0x22C5: case 0x2217: return "*";
    case 0x00B5: case 0x03BC: return "u";
    case 0x207B: return "-";
    case 0x207A: return "+";
    case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014:
    case 0x2015: case 0x2212: case 0xFE63: return "-";
    case 0x00A0: case 0x202F: case 0x205F: case 0x3000: case 0x1680:
      return " ";
    case 0x200B: case 0x200C: case 0x200D: case 0x2060: case 0xFEFF:
      return "";
    case 0x2018: case 0x2019: case 0x201A: case 0x201B: case 0x2032:
    case 0x00B4: return "'";
    case 0x201C: case 0x201D: case 0x201E: case 0x2033: return "\"";
    case 0x3001: case 0xFF64: return ",";
    case 0x3002: case 0xFF61: return ".";
    case 0x25CF: case 0x25AA: case 0x25A0: case 0x25E6: case 0x2023:
    case 0x2043: case 0x27A2: case 0x25BA: case 0x25B6: case 0x2219:
    case 0x25CB: case 0x2027: case 0xF0B7: case 0xF0A7: case 0x27A4:
    case 0x2666: case 0x25C6: case 0x2713: case 0x2714: return "\xE2\x80\xA2";
    case 0x2103: return "\xC2\xB0" "C";
    case 0x338E: return "mg";
    case 0x338F: return "kg";
    case 0x3397: return "dl";
    case 0x3396: return "ml";
    case 0x3395: return "ul";
    case 0x339C: return "mm";
    case 0x33A1: return "m^2";
    case 0xFB01: return "fi";
    case 0xFB02: return "fl";
    case 0x2160: return "I";
    case 0x2161: return "II";
    case 0x2162: return "III";
    case 0x2163: return "IV";
    case 0x2164: return "V";
    case 0x2165: return "VI";
    case 0x2166: return "VII";
    case 0x2167: return "VIII";
    case 0x2168: return "IX";
    case 0x2169: return "X";
    default:
      return nullptr;
  }
}

struct Entity {
  const char* name;  // including '&' and ';'
  size_t length;
  const char* value;
};
constexpr Entity kEntities[] = {
    {"&gt;", 4, ">"},     {"&lt;", 4, "<"},     {"&amp;", 5, "&"},
    {"&ge;", 4, ">="},    {"&le;", 4, "<="},    {"&nbsp;", 6, " "},
    {"&quot;", 6, "\""},  {"&#39;", 5, "'"},    {"&apos;", 6, "'"},
    {"&#34;", 5, "\""},   {"&#62;", 5, ">"},    {"&#60;", 5, "<"},
};

bool IsAsciiPunct(char c) {
  return c != '\0' && std::strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c);
}

}  // namespace

const NormalizedText::Anchor& NormalizedText::AnchorFor(int32_t i) const {
  // The last anchor at or before i (anchors_[0].norm == 0 when non-empty).
  auto it = std::upper_bound(
      anchors_.begin(), anchors_.end(), i,
      [](int32_t v, const Anchor& a) { return v < a.norm; });
  return *(it - 1);
}

int32_t NormalizedText::source_begin(int32_t i) const {
  const Anchor& a = AnchorFor(i);
  return a.identity ? a.src_begin + (i - a.norm) : a.src_begin;
}

int32_t NormalizedText::source_end(int32_t i) const {
  const Anchor& a = AnchorFor(i);
  return a.identity ? a.src_begin + (i - a.norm) + 1 : a.src_end;
}

Span NormalizedText::ToOriginal(int32_t begin, int32_t end) const {
  const int32_t n = size();
  begin = std::clamp(begin, 0, n);
  end = std::clamp(end, begin, n);
  if (begin == end) {
    const int32_t pos = begin < n ? source_begin(begin) : original_size_;
    return Span{pos, pos};
  }
  const int32_t b = source_begin(begin);
  return Span{b, std::max(b, source_end(end - 1))};
}

NormalizedText Normalize(std::string_view original) {
  NormalizedText nt;
  nt.original_size_ = static_cast<int32_t>(original.size());
  std::string text;
  text.reserve(original.size() + 16);
  std::vector<NormalizedText::Anchor> anchors;
  int invalid = 0;
  // Anchors are added when the kind of mapping changes.
  struct Sink {
    std::string& text;
    std::vector<NormalizedText::Anchor>& anchors;
    // A rewritten unit: every output byte comes from [b, e).
    void Emit(std::string_view s, int32_t b, int32_t e) {
      if (s.empty()) return;
      anchors.push_back({static_cast<int32_t>(text.size()), b, e, false});
      text.append(s.data(), s.size());
    }
    // Bytes copied unchanged from original position b on.
    void Copy(std::string_view bytes, int32_t b) {
      const auto at = static_cast<int32_t>(text.size());
      if (anchors.empty() || !anchors.back().identity ||
          anchors.back().src_begin + (at - anchors.back().norm) != b) {
        anchors.push_back({at, b, b + 1, true});
      }
      text.append(bytes.data(), bytes.size());
    }
  } out{text, anchors};
  bool in_superscript = false;
  size_t p = 0;
  const size_t n = original.size();
  std::string buf;
  while (p < n) {
    const auto b = static_cast<int32_t>(p);
    const char c = original[p];
    // Fast path: a run of printable ASCII other than '\\' and '&', LF, TAB.
    auto plain = [](char ch) {
      return (ch >= 0x20 && ch < 0x7F && ch != '\\' && ch != '&') ||
             ch == '\n' || ch == '\t';
    };
    if (plain(c)) {
      size_t q = p + 1;
      // Eight bytes at a time while all are printable ASCII other than
      // '\\' and '&'; LF and TAB one at a time.
      for (;;) {
        while (q + 8 <= n) {
          const uint64_t w = internal::LoadWord(original.data() + q);
          if ((internal::ControlBytes(w) | internal::HighBytes(w) |
               internal::BytesEqual(w, '\\') | internal::BytesEqual(w, '&')) != 0) {
            break;
          }
          q += 8;
        }
        if (q < n && plain(original[q])) {
          ++q;
          continue;
        }
        break;
      }
      out.Copy(original.substr(p, q - p), b);
      p = q;
      in_superscript = false;
      continue;
    }
    // Markdown escapes and (possibly escaped) HTML entities.
    if (c == '\\' || c == '&') {
      const size_t amp = (c == '&') ? p : p + 1;
      bool done = false;
      if (amp < n && original[amp] == '&') {
        for (const Entity& ent : kEntities) {
          const size_t len = ent.length;
          if (original.compare(amp, len, ent.name) == 0) {
            out.Emit(ent.value, b, static_cast<int32_t>(amp + len));
            p = amp + len;
            done = true;
            break;
          }
        }
      }
      if (done) {
        in_superscript = false;
        continue;
      }
      if (c == '\\' && p + 1 < n && IsAsciiPunct(original[p + 1])) {
        out.Emit(std::string_view(&original[p + 1], 1), b, b + 2);
        p += 2;
        in_superscript = false;
        continue;
      }
    }
    if (c == '\r') {
      const size_t len = (p + 1 < n && original[p + 1] == '\n') ? 2 : 1;
      out.Emit("\n", b, static_cast<int32_t>(p + len));
      p += len;
      in_superscript = false;
      continue;
    }
    char32_t cp = 0;
    const int len = common::DecodeUtf8(original, p, &cp);
    if (len == 0) {
      ++invalid;
      out.Emit(" ", b, b + 1);
      ++p;
      in_superscript = false;
      continue;
    }
    const auto e = static_cast<int32_t>(p + len);
    p += len;
    if (const int d = SuperscriptDigit(cp); d >= 0) {
      const char digit = static_cast<char>('0' + d);
      if (in_superscript) {
        out.Emit(std::string_view(&digit, 1), b, e);
      } else {
        const char pair[2] = {'^', digit};
        out.Emit(std::string_view(pair, 2), b, e);
      }
      in_superscript = true;
      continue;
    }
    in_superscript = false;
    if (cp < 0x20 && cp != '\n' && cp != '\t') {
      out.Emit(" ", b, e);
    } else if (cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
      out.Emit(" ", b, e);
    } else if (cp >= 0x2080 && cp <= 0x2089) {  // subscript digits
      const char digit = static_cast<char>('0' + (cp - 0x2080));
      out.Emit(std::string_view(&digit, 1), b, e);
    } else if (cp >= 0x2460 && cp <= 0x2473) {  // circled 1..20
      buf = "(" + std::to_string(cp - 0x2460 + 1) + ")";
      out.Emit(buf, b, e);
    } else if (cp >= 0x2000 && cp <= 0x200A) {  // typographic spaces
      out.Emit(" ", b, e);
    } else if (cp >= 0xFF01 && cp <= 0xFF5E) {  // full-width ASCII
      const char ascii = static_cast<char>(cp - 0xFEE0);
      out.Emit(std::string_view(&ascii, 1), b, e);
    } else if (const char* r = Replacement(cp); r != nullptr) {
      out.Emit(r, b, e);
    } else {
      out.Copy(original.substr(b, len), b);
    }
  }
  nt.text_ = std::move(text);
  nt.anchors_ = std::move(anchors);
  nt.invalid_utf8_bytes_ = invalid;
  return nt;
}

}  // namespace trialmatch::criteria
