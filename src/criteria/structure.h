// Sectioning: the layout of an eligibility text as blocks (one per bullet,
// numbered item or paragraph) with their section, nesting and role.
//
// Handled shapes (all seen in the registry):
//   * section headings in their variants ("Inclusion Criteria:", "Key
//     Exclusion Criteria", "INCLUSION CRITERIA", "Inclusion:", "Exclusion
//     criteria include ...:", lead-in sentences such as "Participants are
//     excluded if any of the following apply:"), also with text on the same
//     line ("Exclusion criteria: No pregnancy.") and no heading at all
//     (everything kUnspecified). The heading vocabulary is data: phrases of
//     roles SECTION_INCLUSION / SECTION_EXCLUSION / SECTION_NEUTRAL in rules/;
//   * sub-headings that do not switch the section: topical ("Hematopoietic:",
//     "DISEASE CHARACTERISTICS:") and sub-population ones ("Part A:",
//     "Cohort 2", "For participants with X:", phrases of role COHORT);
//   * bullets "*", "-", "+", "•", "·", "o"; numbers "1.", "1)", "1\.", "5.2.1";
//     letters and roman numerals "a.", "b)", "i.", "(iv)"; circled numbers;
//   * nesting by indentation, and a lead-in ending with ':' followed by items
//     (at the same indentation or below) owning them as children;
//   * wrapped lines (continuations) and a standalone "OR" line between groups
//     of items (alternative sub-populations).
//
// Pure function of the text and the rules; linear in the text length.
#ifndef TRIALMATCH_CRITERIA_STRUCTURE_H_
#define TRIALMATCH_CRITERIA_STRUCTURE_H_

#include <cstdint>
#include <vector>

#include "criteria/compiled_study.h"
#include "criteria/normalized_text.h"
#include "criteria/rule_set.h"

namespace trialmatch::criteria {

enum class BlockType {
  kItem,          // a bullet, numbered item or paragraph
  kHeading,       // a topical sub-heading (groups what follows)
  kCohort,        // a sub-population heading (what follows applies to it)
  kAlternatives,  // a standalone "OR" between groups of items
};

struct Block {
  BlockType type = BlockType::kItem;
  Section section = Section::kUnspecified;
  // The block's own text in NormalizedText coordinates, list marker and
  // surrounding white space excluded; continuation lines included.
  int32_t begin = 0;
  int32_t end = 0;
  int parent = -1;
  int depth = 0;
  std::vector<int> children;
  bool lead_in = false;  // ends with ':' (introduces its children)
};

struct TextStructure {
  std::vector<Block> blocks;  // in text order; parents before children
  bool has_headings = false;  // some section heading was seen
};

TextStructure ParseStructure(const NormalizedText& text, const RuleSet& rules);

}  // namespace trialmatch::criteria

#endif  // TRIALMATCH_CRITERIA_STRUCTURE_H_
