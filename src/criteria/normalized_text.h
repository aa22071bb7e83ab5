// NormalizedText: the eligibility text as the rules read it, with a map back
// to byte offsets of the ORIGINAL text (what Span in compiled_study.h holds).
//
// ClinicalTrials.gov sends eligibilityCriteria as markdown written by
// thousands of authors. Normalize() makes one pass over it and:
//   * removes markdown escapes: "\>=" -> ">=", "\<" -> "<", "1\." -> "1.",
//     "\*" -> "*", "\[" -> "[" (a backslash before ASCII punctuation);
//   * decodes HTML entities seen in the registry: &gt; &lt; &amp; &ge; &le;
//     &nbsp; &quot; &#39; (also when escaped, "\&lt;");
//   * folds typography to ASCII: "≥" -> ">=", "≤" -> "<=", "×" -> "x",
//     "µ"/"μ" -> "u", superscripts "10⁹" -> "10^9", "m²" -> "m^2", dashes ->
//     "-", curly quotes, no-break/ideographic spaces, full-width ASCII
//     ("；" -> ";", "（" -> "("), bullets ("●", "▪" ...) -> "•";
//   * turns CRLF/CR into LF, drops zero-width characters and the BOM;
//   * replaces each invalid UTF-8 byte by a space and counts it.
// Letter case is kept (rules match case-insensitively).
//
// Every normalized byte i comes from the original bytes
// [source_begin(i), source_end(i)); a normalized span maps back with
// ToOriginal(), which always yields a valid, in-range original span. The map
// is stored sparsely: one anchor per run of bytes copied unchanged and per
// rewritten unit (escape, entity, folded character), so most texts need a
// few dozen anchors; lookups are a binary search.
//
// Plain value type; thread-compatible. Normalize() is linear in the input.
#ifndef TRIALMATCH_CRITERIA_NORMALIZED_TEXT_H_
#define TRIALMATCH_CRITERIA_NORMALIZED_TEXT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "criteria/compiled_study.h"

namespace trialmatch::criteria {

class NormalizedText {
 public:
  NormalizedText() = default;

  const std::string& text() const { return text_; }
  int32_t size() const { return static_cast<int32_t>(text_.size()); }
  int32_t original_size() const { return original_size_; }

  // Number of invalid UTF-8 bytes that were replaced by a space.
  int invalid_utf8_bytes() const { return invalid_utf8_bytes_; }

  // Original range that produced normalized byte i (0 <= i < size()).
  int32_t source_begin(int32_t i) const;
  int32_t source_end(int32_t i) const;

  // Maps the normalized range [begin, end) to the original text. Arguments
  // are clamped to [0, size()]; an empty range maps to an empty span at the
  // corresponding original position.
  Span ToOriginal(int32_t begin, int32_t end) const;

 private:
  friend NormalizedText Normalize(std::string_view original);

  // Bytes from `norm` on come from the original at `src_begin`: copied one
  // to one (identity) until the next anchor, or all from [src_begin,
  // src_end) (a rewritten unit).
  struct Anchor {
    int32_t norm = 0;
    int32_t src_begin = 0;
    int32_t src_end = 0;
    bool identity = false;
  };
  const Anchor& AnchorFor(int32_t i) const;

  std::string text_;
  std::vector<Anchor> anchors_;
  int32_t original_size_ = 0;
  int invalid_utf8_bytes_ = 0;
};

// Normalizes `original` as described above. Never fails. Texts longer than
// INT32_MAX bytes are not supported (callers cap input size).
NormalizedText Normalize(std::string_view original);

}  // namespace trialmatch::criteria

#endif  // TRIALMATCH_CRITERIA_NORMALIZED_TEXT_H_
