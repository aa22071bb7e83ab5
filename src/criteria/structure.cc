#include "criteria/structure.h"

#include <cstring>
#include <string_view>

#include "absl/strings/ascii.h"

namespace trialmatch::criteria {
namespace {

enum class MarkerClass { kNone, kBullet, kNumber, kLetter, kRoman, kParen };

struct Marker {
  MarkerClass cls = MarkerClass::kNone;
  int32_t len = 0;  // marker plus the white space after it
};

bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Length of a roman numeral (i..xv) at the start of s, or 0.
int32_t RomanLength(std::string_view s) {
  // Every numeral starts with i, v or x (most lines start otherwise).
  if (s.empty()) return 0;
  const char first = absl::ascii_tolower(static_cast<unsigned char>(s[0]));
  if (first != 'i' && first != 'v' && first != 'x') return 0;
  static constexpr std::string_view kRomans[] = {
      "viii", "xiii", "iii", "vii", "xii", "xiv", "xv", "ii", "iv", "vi",
      "ix",   "xi",   "i",   "v",   "x"};
  for (std::string_view r : kRomans) {
    if (s.size() < r.size()) continue;
    bool eq = true;
    for (size_t k = 0; k < r.size() && eq; ++k) {
      eq = absl::ascii_tolower(static_cast<unsigned char>(s[k])) == r[k];
    }
    if (eq) return static_cast<int32_t>(r.size());
  }
  return 0;
}

// Returns end of white space starting at i.
int32_t SkipSpace(std::string_view s, int32_t i) {
  while (i < static_cast<int32_t>(s.size()) && IsSpace(s[i])) ++i;
  return i;
}

// A list marker at the start of `s` (which starts at a non-space char).
Marker ParseMarker(std::string_view s) {
  const auto n = static_cast<int32_t>(s.size());
  if (n == 0) return {};
  auto finish = [&](MarkerClass cls, int32_t end, bool need_space) -> Marker {
    if (end < n && !IsSpace(s[end])) {
      if (need_space) return {};
    }
    return Marker{cls, SkipSpace(s, end)};
  };
  const char c = s[0];
  // Bullets.
  if (c == '*' || c == '-' || c == '+') {
    if (n == 1 || IsSpace(s[1])) return finish(MarkerClass::kBullet, 1, true);
    return {};
  }
  if (s.substr(0, 3) == "\xE2\x80\xA2") {  // •
    return finish(MarkerClass::kBullet, 3, false);
  }
  if (s.substr(0, 2) == "\xC2\xB7") {  // ·
    return finish(MarkerClass::kBullet, 2, false);
  }
  if ((c == 'o' || c == 'O') && n >= 2 && IsSpace(s[1])) {
    return finish(MarkerClass::kBullet, 1, true);
  }
  // (1) (a) (iv)
  if (c == '(' || c == '[') {
    const char close = c == '(' ? ')' : ']';
    int32_t i = 1;
    while (i < n && i < 4 && IsDigit(s[i])) ++i;
    if (i > 1 && i < n && s[i] == close) return finish(MarkerClass::kParen, i + 1, true);
    const int32_t r = RomanLength(s.substr(1));
    if (r > 0 && 1 + r < n && s[1 + r] == close) {
      return finish(MarkerClass::kParen, 2 + r, true);
    }
    if (n > 2 && IsAlpha(s[1]) && s[2] == close) {
      return finish(MarkerClass::kParen, 3, true);
    }
    return {};
  }
  // 1. 1) 12. 5.2.1 1.Patients
  if (IsDigit(c)) {
    int32_t i = 0;
    while (i < n && i < 3 && IsDigit(s[i])) ++i;
    if (i < n && IsDigit(s[i])) return {};
    int dots = 0;
    while (i + 1 < n && s[i] == '.' && IsDigit(s[i + 1])) {
      int32_t j = i + 1;
      while (j < n && j - i <= 2 && IsDigit(s[j])) ++j;
      if (j < n && IsDigit(s[j])) return {};
      i = j;
      ++dots;
    }
    if (i < n && (s[i] == '.' || s[i] == ')')) {
      const int32_t end = i + 1;
      if (end >= n || IsSpace(s[end])) return finish(MarkerClass::kNumber, end, false);
      // "1.Patients with ..." (no space) but not "1.5 mg".
      if (s[i] == '.' && IsAlpha(s[end])) return Marker{MarkerClass::kNumber, end};
      if (s[i] == ')' ) return Marker{MarkerClass::kNumber, end};
      return {};
    }
    if (dots >= 2 && i < n && IsSpace(s[i])) {
      return finish(MarkerClass::kNumber, i, true);
    }
    return {};
  }
  // i. ii) iv.
  if (const int32_t r = RomanLength(s); r > 0 && r < n &&
                                         (s[r] == '.' || s[r] == ')')) {
    if (r + 1 >= n || IsSpace(s[r + 1])) {
      return finish(MarkerClass::kRoman, r + 1, true);
    }
  }
  // a. b) A.
  if (IsAlpha(c) && n >= 2 && (s[1] == '.' || s[1] == ')')) {
    if (n == 2 || IsSpace(s[2])) return finish(MarkerClass::kLetter, 2, true);
  }
  return {};
}

struct Line {
  int32_t begin = 0;          // first byte of the line
  int32_t content_begin = 0;  // after indentation and markers
  int32_t content_end = 0;    // trimmed end
  int indent = 0;             // columns (tab = 4)
  MarkerClass marker = MarkerClass::kNone;
  bool blank = true;
};

bool EndsWith(std::string_view s, char c) { return !s.empty() && s.back() == c; }

int WordCount(std::string_view s) {
  int words = 0;
  bool in = false;
  for (char c : s) {
    const bool w = !IsSpace(c);
    if (w && !in) ++words;
    in = w;
  }
  return words;
}

bool HasDigit(std::string_view s) {
  for (char c : s) {
    if (IsDigit(c)) return true;
  }
  return false;
}

// Upper-case letters only (at least 4 letters), e.g. "DISEASE CHARACTERISTICS".
bool IsAllCaps(std::string_view s) {
  int letters = 0;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') return false;
    if (c >= 'A' && c <= 'Z') ++letters;
  }
  return letters >= 4;
}

bool IsAlternativesWord(std::string_view s) {
  std::string_view t = s;
  while (!t.empty() && (t.back() == ':' || t.back() == '.')) t.remove_suffix(1);
  return t == "OR" || t == "Or" || t == "or";
}

}  // namespace

TextStructure ParseStructure(const NormalizedText& normalized,
                             const RuleSet& rules) {
  const std::string& text = normalized.text();
  const auto n = static_cast<int32_t>(text.size());
  TextStructure out;

  // Pass 1: lines.
  std::vector<Line> lines;
  for (int32_t p = 0; p <= n;) {
    const void* nl = p < n ? std::memchr(text.data() + p, '\n', static_cast<size_t>(n - p))
                           : nullptr;
    const int32_t e =
        nl == nullptr ? n : static_cast<int32_t>(static_cast<const char*>(nl) - text.data());
    Line line;
    line.begin = p;
    int32_t i = p;
    int indent = 0;
    while (i < e && IsSpace(text[i])) {
      indent += text[i] == '\t' ? 4 : 1;
      ++i;
    }
    int32_t end = e;
    while (end > i && (IsSpace(text[end - 1]))) --end;
    line.indent = indent;
    if (i < end) {
      line.blank = false;
      // Up to two stacked markers ("• 1. The patient ...").
      for (int k = 0; k < 2 && i < end; ++k) {
        const Marker m = ParseMarker(std::string_view(text).substr(i, end - i));
        if (m.cls == MarkerClass::kNone) break;
        if (line.marker == MarkerClass::kNone) line.marker = m.cls;
        i += m.len;
      }
    }
    line.content_begin = i;
    line.content_end = std::max(i, end);
    lines.push_back(line);
    if (e >= n) break;
    p = e + 1;
  }

  auto content = [&](const Line& l) {
    return std::string_view(text).substr(l.content_begin,
                                         l.content_end - l.content_begin);
  };
  auto next_nonblank = [&](size_t from) -> const Line* {
    for (size_t k = from; k < lines.size(); ++k) {
      if (!lines[k].blank) return &lines[k];
    }
    return nullptr;
  };

  struct Open {
    int indent_key;
    int block;
    MarkerClass marker;
  };
  std::vector<Open> stack;
  Section section = Section::kUnspecified;
  bool blank_before = true;
  int last_block = -1;        // block the previous non-blank line belongs to
  bool last_was_heading_line = false;

  auto add_block = [&](BlockType type, int32_t b, int32_t e, int parent) {
    Block blk;
    blk.type = type;
    blk.section = section;
    blk.begin = b;
    blk.end = e;
    blk.parent = parent;
    if (parent >= 0) {
      blk.depth = out.blocks[parent].depth + 1;
      out.blocks[parent].children.push_back(static_cast<int>(out.blocks.size()));
    }
    blk.lead_in = e > b && text[e - 1] == ':';
    out.blocks.push_back(std::move(blk));
    return static_cast<int>(out.blocks.size()) - 1;
  };
  auto pop_to = [&](int indent_key) {
    while (!stack.empty() && stack.back().indent_key >= indent_key) {
      stack.pop_back();
    }
  };

  for (size_t li = 0; li < lines.size(); ++li) {
    const Line& line = lines[li];
    if (line.blank || line.content_begin >= line.content_end) {
      if (line.blank) blank_before = true;
      continue;
    }
    const std::string_view c = content(line);

    // Section headings (also "* INCLUSION CRITERIA:" and inline text).
    // Headings are short; only lead-in sentences ending with ':' are long.
    if (c.size() <= 300 &&
        rules.MaybeSectionHeading(EndsWith(c, ':') ? c : c.substr(0, 100))) {
      int32_t hend = 0;
      Section switched = Section::kUnspecified;
      bool is_heading = false;
      if (rules.MatchesPhrase(PhraseRole::kSectionNeutral, c, true, &hend)) {
        is_heading = true;
        switched = Section::kUnspecified;
      } else if (rules.MatchesPhrase(PhraseRole::kSectionExclusion, c, true,
                                     &hend)) {
        is_heading = true;
        switched = Section::kExclusion;
      } else if (rules.MatchesPhrase(PhraseRole::kSectionInclusion, c, true,
                                     &hend)) {
        is_heading = true;
        switched = Section::kInclusion;
      }
      if (is_heading) {
        // The rest of the line must be empty or follow a colon.
        std::string_view rest = c.substr(hend);
        const bool colon = (hend > 0 && c[hend - 1] == ':') ||
                           (!rest.empty() && rest.front() == ':');
        size_t skip = 0;
        while (skip < rest.size() &&
               (IsSpace(rest[skip]) || rest[skip] == ':' || rest[skip] == '-')) {
          ++skip;
        }
        rest.remove_prefix(skip);
        if (rest.empty() || colon) {
          section = switched;
          out.has_headings = true;
          stack.clear();
          last_block = -1;
          last_was_heading_line = true;
          blank_before = true;
          if (!rest.empty()) {
            const auto rb = static_cast<int32_t>(rest.data() - text.data());
            // Inline content may itself start with a marker ("1. ...").
            const Marker m = ParseMarker(rest);
            const int32_t cb = rb + (m.cls == MarkerClass::kNone ? 0 : m.len);
            if (cb < line.content_end) {
              last_block = add_block(BlockType::kItem, cb, line.content_end, -1);
              stack.push_back({line.indent, last_block, MarkerClass::kNone});
              last_was_heading_line = false;
              blank_before = false;
            }
          }
          continue;
        }
      }
    }

    if (line.marker == MarkerClass::kNone && IsAlternativesWord(c)) {
      pop_to(line.indent);
      const int parent = stack.empty() ? -1 : stack.back().block;
      add_block(BlockType::kAlternatives, line.content_begin, line.content_end,
                parent);
      last_block = -1;
      blank_before = true;
      continue;
    }

    if (line.marker == MarkerClass::kNone) {
      // Continuation of the previous block (wrapped text)?
      if (!blank_before && last_block >= 0 && !last_was_heading_line) {
        const Block& prev = out.blocks[last_block];
        const bool lower = absl::ascii_islower(static_cast<unsigned char>(c[0]));
        const bool prev_open =
            prev.end > prev.begin &&
            std::string_view(".:;").find(text[prev.end - 1]) ==
                std::string_view::npos;
        const Open* top = stack.empty() ? nullptr : &stack.back();
        const bool deeper = top != nullptr && top->block == last_block &&
                            top->marker != MarkerClass::kNone &&
                            line.indent > top->indent_key;
        if (lower || deeper || (prev_open && !prev.lead_in && c[0] == '(')) {
          out.blocks[last_block].end = line.content_end;
          continue;
        }
      }
      // Sub-headings.
      const Line* next = next_nonblank(li + 1);
      const bool next_is_item = next != nullptr && next->marker != MarkerClass::kNone;
      const bool colon = EndsWith(c, ':');
      const bool short_title = WordCount(c) <= 6 && !HasDigit(c) &&
                               !EndsWith(c, '.') && !EndsWith(c, ';') &&
                               !EndsWith(c, ',');
      const bool cohort = c.size() <= 120 &&
                          rules.MatchesPhrase(PhraseRole::kCohort, c, true) &&
                          !EndsWith(c, '.');
      BlockType type = BlockType::kItem;
      if (cohort && (colon || next_is_item || WordCount(c) <= 8)) {
        type = BlockType::kCohort;
      } else if ((colon && WordCount(c) <= 4 && !HasDigit(c)) ||
                 (short_title && !colon && next_is_item) ||
                 (IsAllCaps(c) && c.size() <= 80 && (colon || next_is_item))) {
        type = BlockType::kHeading;
      }
      const bool heading = type != BlockType::kItem;
      const bool opens = heading || colon;
      while (!stack.empty()) {
        const Open& top = stack.back();
        const bool top_is_item = out.blocks[top.block].type == BlockType::kItem;
        if (top.indent_key >= line.indent ||
            ((heading || top_is_item) && top.indent_key >= line.indent - 1)) {
          stack.pop_back();
        } else {
          break;
        }
      }
      const int parent = stack.empty() ? -1 : stack.back().block;
      const int b = add_block(type, line.content_begin, line.content_end, parent);
      stack.push_back({opens ? line.indent - 1 : line.indent, b,
                       MarkerClass::kNone});
      last_block = b;
      last_was_heading_line = type != BlockType::kItem;
      blank_before = false;
      continue;
    }

    // A list item.
    while (!stack.empty() && stack.back().indent_key >= line.indent) {
      const Open& top = stack.back();
      const Block& tb = out.blocks[top.block];
      // "1. Adequate organ function:" followed by "* ANC ..." at the same
      // indentation: the bullets belong to the lead-in.
      if (top.indent_key == line.indent && tb.lead_in &&
          top.marker != MarkerClass::kNone && top.marker != line.marker) {
        break;
      }
      stack.pop_back();
    }
    const int parent = stack.empty() ? -1 : stack.back().block;
    BlockType type = BlockType::kItem;
    if (EndsWith(c, ':') && c.size() <= 120 &&
        rules.MatchesPhrase(PhraseRole::kCohort, c, true)) {
      type = BlockType::kCohort;
    }
    const int b = add_block(type, line.content_begin, line.content_end, parent);
    stack.push_back({line.indent, b, line.marker});
    last_block = b;
    last_was_heading_line = false;
    blank_before = false;
  }
  return out;
}

}  // namespace trialmatch::criteria
