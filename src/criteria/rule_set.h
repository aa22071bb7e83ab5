// RuleSet: the eligibility compiler's rules, loaded from the text-format
// protobuf files in rules/ (schema: proto/trialmatch/rules/v1/rule_set.proto;
// the language is documented with examples in rules/README.md), compiled
// once, immutable afterwards and shared by std::shared_ptr<const RuleSet>.
//
// THE RULE LANGUAGE IN ONE SCREEN
//
//   # A stand-alone rule: an RE2 pattern whose named groups carry values.
//   rule {
//     id: "age.at_least"
//     kind: KIND_AGE  quantity: "age"
//     pattern: '\\bage[ds]?\\s*:?\\s*(?P<cmp>{{CMP}})\\s*(?P<value>{{NUM}})\\s*(?P<unit>{{UNIT:age}})?'
//     example { text: "Age >= 18 years"  expect { low: 18 } }     # matches
//     example { text: "18 months of therapy" no_match: true }     # does not
//   }
//
//   # A measurement: an analyte read with shared templates (BOUND, RANGE...).
//   measurement {
//     id: "lab.hemoglobin"  quantity: "hemoglobin"
//     name: '\\b(?:ha?emoglobin|hgb|hb)\\b'  form: "BOUND"  form: "RANGE"
//     example { text: "Hemoglobin >= 9 g/dL"  expect { low: 9 unit: "g/dL" } }
//   }
//
// Patterns are RE2 syntax, case-insensitive unless `case_sensitive`, with
// {{MACRO}} references expanded before compiling: macros declared in any
// file, plus {{CMP}} (all comparators), {{UNIT:<quantity>}}, {{ANY_UNIT}},
// and inside templates {{NAME}} / {{UNIT}} (the measurement's name and
// units). Named groups: value, cmp, unit, low, low_cmp, low_unit, high,
// high_cmp, uln, list, value_b; "value_2" is a second alternative for the
// role "value" (the first group that took part in the match is used).
//
// LOADING AND SAFETY. Every pattern is compiled with explicit RE2::Options
// (UTF-8, log_errors=false, max_mem from RuleSetOptions, case handling as
// declared); a pattern that fails to compile, exceeds max_program_size
// (repetition blow-ups such as "((a{100}){10}){10}"), references an unknown
// macro or group role, or expands beyond max_expanded_pattern_bytes is
// rejected. Errors are kInvalidArgument and name "file:line", the rule id
// and RE2's error_arg(). Each rule family contributes one trigger to an
// RE2::Set so the compiler finds candidate rules in one pass per criterion.
//
// VERSIONING. version() is "<declared version>+<16 hex digits>", the digits
// a 64-bit FNV-1a hash of the file names and bytes: any edit changes it.
//
// Thread-safety: a loaded RuleSet is immutable; all const methods are safe
// to call concurrently (RE2 and RE2::Set matching are thread-safe).
#ifndef TRIALMATCH_CRITERIA_RULE_SET_H_
#define TRIALMATCH_CRITERIA_RULE_SET_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "criteria/compiled_study.h"
#include "re2/re2.h"
#include "re2/set.h"

namespace trialmatch::criteria {

struct RuleSetOptions {
  // RE2 memory budget of each compiled pattern (RE2's default is 8 MiB).
  int64_t max_mem_per_pattern = 64 << 20;
  // Largest accepted RE2 program (instructions) of a rule pattern.
  int max_program_size = 30000;
  // DFA budget of the RE2::Set prefilter.
  int64_t set_max_mem = 64 << 20;
  // Budget and size cap of the condition dictionary (all synonyms).
  int64_t dictionary_max_mem = 64 << 20;
  int max_dictionary_program_size = 600000;
  // Input limits.
  size_t max_file_bytes = 8 << 20;
  size_t max_expanded_pattern_bytes = 64 << 10;
  int max_macro_depth = 12;
};

// One rules file given by content (tests, fuzzers, embedded defaults).
struct RuleSource {
  std::string name;  // shown in errors, e.g. "rules/labs.textproto"
  std::string content;
};

struct SourceLocation {
  std::string file;
  int line = 0;  // 1-based; 0 when unknown
  std::string ToString() const;
};

enum class Comparison { kGe, kGt, kLe, kLt };

// Roles of named capture groups.
enum class CaptureRole {
  kValue, kCmp, kUnit, kLow, kLowCmp, kLowUnit, kHigh, kHighCmp, kUln,
  kList, kValueB,
};
inline constexpr int kNumCaptureRoles = 11;

// Where a rule applies.
enum class RuleSection { kAny, kInclusion, kExclusion };

struct UnitDef {
  std::string name;
  std::unique_ptr<RE2> re;  // matches the whole written unit
  double factor = 1;
  double offset = 0;
  double assume_min = 0;
  double assume_max = 0;
};

struct QuantityDef {
  std::string name;
  Kind kind = Kind::kLab;
  std::string unit;
  double min = 0;
  double max = 0;
  double uln_max = 0;
  std::vector<UnitDef> units;
};

// A compiled matching rule: a stand-alone `rule` or one form of a
// `measurement`.
struct MatchRule {
  std::string id;
  SourceLocation location;
  Kind kind = Kind::kOther;
  std::vector<int> quantities;  // indexes into RuleSet::quantities()
  std::unique_ptr<RE2> re;
  // Capture group indexes for each role, in pattern order.
  std::array<std::vector<int>, kNumCaptureRoles> groups;
  std::optional<Comparison> default_op;
  bool negated = false;
  bool informational = false;
  bool covers_criterion = false;
  bool subject_position = false;
  bool cue_only = false;  // always informational, never a conflict
  model::Sex sex = model::Sex::kAll;
  RuleSection section = RuleSection::kAny;
  int priority = 0;
  std::vector<std::unique_ptr<RE2>> vetoes;
  std::string note;
  int family = -1;
  bool from_measurement = false;
  // The pattern begins with the measurement's name: the compiler runs it
  // anchored at each occurrence of the name (RuleFamily::name_re), which is
  // much cheaper than an unanchored search.
  bool anchored_at_name = false;
  // For an anchored_at_name rule whose name has no capturing group: the
  // pattern without its leading name, with the same groups in the same
  // order (null otherwise). When the rule matches [b, e) and the name's own
  // leftmost-first match at b ends at n, RE2's submatches of the rule are
  // the name followed by this pattern's submatches on [n, e) whenever it
  // matches there (the rule's first-priority parse takes the name's
  // first-priority parse if the rest can follow it). The program is a
  // fraction of the rule's, small enough for RE2's bit-state engine where
  // the whole rule needs the NFA.
  std::unique_ptr<RE2> after_name;
};

// A set of rules sharing one trigger in the RE2::Set.
struct RuleFamily {
  std::string id;
  std::vector<int> rules;  // indexes into RuleSet::rules()
  // For measurements: the name pattern alone (coordinated names such as
  // "bilirubin and creatinine <= 1.5 x ULN"); null otherwise.
  std::unique_ptr<RE2> name_re;
};

struct ConceptDef {
  std::string id;
  std::string name;
  std::vector<std::string> mesh_ids;
  std::vector<std::string> ancestor_mesh_ids;  // of parent, grandparent...
  int parent = -1;
  SourceLocation location;
};

enum class PhraseRole {
  kSectionInclusion, kSectionExclusion, kSectionNeutral, kCohort, kAnyOf,
  kKOfN, kAllOf, kExclusionMarker, kPermission, kNegation, kPseudoNegation,
  kException, kConditional, kFiller, kConditionVeto, kClauseBreak,
  kPostNegation, kExamples, kTimeWindow, kAdministrative,
};
inline constexpr int kNumPhraseRoles = 20;

struct PhraseDef {
  std::string id;
  PhraseRole role = PhraseRole::kFiller;
  std::unique_ptr<RE2> re;
  SourceLocation location;
};

// What an example expects of one predicate (unset members are not checked).
struct ExpectDef {
  std::optional<Kind> kind;
  std::string quantity;
  std::optional<double> low;
  std::optional<double> high;
  std::optional<bool> low_inclusive;
  std::optional<bool> high_inclusive;
  std::string unit;
  std::optional<bool> relative_to_uln;
  std::optional<Polarity> polarity;
  std::optional<bool> informational;
  std::optional<model::Sex> sex;
  std::string condition;
  bool no_low = false;
  bool no_high = false;
};

// An example carried by a rule file (run by tests/criteria/rules_test.cc).
struct ExampleDef {
  enum class Target { kRule, kMeasurement, kConcept, kPhrase, kComparator };
  Target target = Target::kRule;
  std::string owner_id;  // rule / measurement / concept / phrase id
  SourceLocation location;
  std::string text;
  Section section = Section::kInclusion;
  bool no_match = false;
  std::vector<ExpectDef> expects;
};

// A lower-case word list (stop words, qualifiers). Most words asked about
// are not in the list, and the lists are short: the words are kept in
// buckets by length and first byte, so a lookup compares at most a few
// words of the same length instead of hashing.
class WordList {
 public:
  void Insert(std::string word);
  bool Contains(std::string_view word) const {
    if (word.size() >= kMaxSize) return overflow_.contains(ToAbsl(word));
    const auto first = word.empty() ? 0 : static_cast<unsigned char>(word[0]);
    const Bucket& b = buckets_[word.size()][first & 63];
    for (const std::string& w : b) {
      if (w.size() == word.size() && std::memcmp(w.data(), word.data(), word.size()) == 0) {
        return true;
      }
    }
    return false;
  }

 private:
  static constexpr size_t kMaxSize = 24;
  using Bucket = std::vector<std::string>;
  static absl::string_view ToAbsl(std::string_view s) {
    return absl::string_view(s.data(), s.size());
  }
  // By length, then by the low 6 bits of the first byte.
  std::array<std::array<Bucket, 64>, kMaxSize> buckets_;
  absl::flat_hash_set<std::string> overflow_;  // words of kMaxSize bytes or more
};

class RuleSet {
 public:
  // Loads every *.textproto file directly in `dir` (name order).
  // Errors: kNotFound (no such directory or no rule files), kUnavailable
  // (a file cannot be read), kInvalidArgument (syntax, schema or pattern
  // errors, with file:line and rule id; see the header comment).
  static absl::StatusOr<std::shared_ptr<const RuleSet>> LoadDirectory(
      const std::filesystem::path& dir, const RuleSetOptions& options = {});

  // Same from contents. Errors: kInvalidArgument as above.
  static absl::StatusOr<std::shared_ptr<const RuleSet>> LoadSources(
      const std::vector<RuleSource>& sources,
      const RuleSetOptions& options = {});

  RuleSet(const RuleSet&) = delete;
  RuleSet& operator=(const RuleSet&) = delete;
  ~RuleSet();

  const std::string& version() const { return version_; }
  const std::string& declared_version() const { return declared_version_; }

  const std::vector<QuantityDef>& quantities() const { return quantities_; }
  const std::vector<MatchRule>& rules() const { return rules_; }
  const std::vector<RuleFamily>& families() const { return families_; }
  const std::vector<ConceptDef>& concepts() const { return concepts_; }
  const std::vector<PhraseDef>& phrases() const { return phrases_; }
  const std::vector<ExampleDef>& examples() const { return examples_; }

  // Index of the quantity or concept with this name / id, or -1.
  int FindQuantity(std::string_view name) const;
  int FindConcept(std::string_view id) const;

  // What one pass of the RE2::Set over `text` finds: the rule families
  // whose trigger matches (sorted), whether a condition synonym occurs, and
  // whether the optional macro ADMINISTRATIVE_TRIGGER (keywords of
  // administrative phrasing) matches. When the RE2::Set cannot answer (DFA
  // out of memory) everything is reported present and `degraded` is set, so
  // nothing is missed.
  struct ScanResult {
    std::vector<int> families;
    bool mentions = false;       // some condition synonym may occur
    bool administrative = false; // the macro ADMINISTRATIVE_TRIGGER matched
    bool degraded = false;
  };
  void Scan(std::string_view text, ScanResult* out) const;

  // The phrases of the text-level roles (negation, pseudo-negation,
  // post-negation, exception, conditional, clause break, filler, condition
  // veto, examples, time window, administrative, exclusion marker,
  // permission) found in ONE pass with a combined pattern: leftmost-first,
  // non-overlapping, earlier roles in that list winning ties in this order:
  // examples, administrative, pseudo-negation, exclusion marker, permission,
  // time window, filler, exception, conditional, condition veto, negation,
  // post-negation, clause break. out[role] receives [begin, end) ranges
  // (appended).
  using PhraseMatches =
      std::array<std::vector<std::pair<int32_t, int32_t>>, kNumPhraseRoles>;
  void FindTextPhrases(std::string_view text, PhraseMatches* out) const;

  // Classifies a captured comparator text; nullopt when none matches.
  std::optional<Comparison> ClassifyComparator(std::string_view text) const;

  // Condition dictionary: appends [begin, end) of every synonym occurrence
  // in `text` (leftmost-longest, non-overlapping) and the concept it names.
  struct Mention {
    int32_t begin = 0;
    int32_t end = 0;
    int concept_index = -1;
  };
  void FindMentions(std::string_view text, std::vector<Mention>* out) const;

  // All matches of the phrases of `role` in `text`, as [begin, end) ranges
  // in order (non-overlapping, leftmost-first).
  void FindPhrases(PhraseRole role, std::string_view text,
                   std::vector<std::pair<int32_t, int32_t>>* out) const;
  // True if some phrase of `role` matches in `text`; with `anchor_start`
  // the match must begin at offset 0 and *match_end receives its end.
  bool MatchesPhrase(PhraseRole role, std::string_view text,
                     bool anchor_start = false,
                     int32_t* match_end = nullptr) const;
  bool HasPhrases(PhraseRole role) const;
  // True when some section-heading phrase (inclusion, exclusion, neutral)
  // matches at the start of `line`: one DFA pass, a prefilter for the three
  // MatchesPhrase calls of the sectioner.
  bool MaybeSectionHeading(std::string_view line) const;

  // True when a unit of any quantity (or "%") is written at `pos` of `text`
  // (after white space): a number followed by a unit that the rule's quantity
  // does not accept must not be read in an assumed unit ("weight loss > 10%").
  bool UnitAt(std::string_view text, size_t pos) const;

  // Lower-case word lists.
  bool IsStopword(std::string_view lower_word) const {
    return stopwords_.Contains(lower_word);
  }
  bool IsQualifier(std::string_view lower_word) const {
    return qualifiers_.Contains(lower_word);
  }

  // The rule reading a bound written without an analyte name ("<= 5 x ULN
  // for patients with liver metastases" after "AST <= 2.5 x ULN"), compiled
  // from the macro NAMELESS_BOUND; null when the rules do not declare it.
  // Its `quantities` are empty: the compiler takes them from the measurement
  // the bound continues.
  const MatchRule* nameless_bound() const { return nameless_bound_.get(); }

  // Number of patterns compiled (rules, phrases, units, comparators, concept
  // synonym groups): for stats and logs.
  int pattern_count() const { return pattern_count_; }

 private:
  friend class RuleSetBuilder;
  RuleSet();

  std::string version_;
  std::string declared_version_;
  std::vector<QuantityDef> quantities_;
  std::vector<MatchRule> rules_;
  std::vector<RuleFamily> families_;
  std::vector<ConceptDef> concepts_;
  std::vector<PhraseDef> phrases_;
  std::vector<ExampleDef> examples_;
  std::vector<std::pair<Comparison, std::unique_ptr<RE2>>> comparators_;
  std::unique_ptr<MatchRule> nameless_bound_;
  std::unique_ptr<RE2::Set> trigger_set_;  // families, dictionary, admin
  int dictionary_slot_ = -1;
  int administrative_slot_ = -1;
  std::unique_ptr<RE2> text_phrases_;      // combined text-level roles
  std::unique_ptr<RE2> section_headings_;  // the three section roles
  std::unique_ptr<RE2> any_unit_;         // every unit pattern
  std::unique_ptr<RE2::Set> text_phrase_roles_set_;  // anchored both
  int text_phrase_groups_ = 0;  // capture groups of text_phrases_ (+1)
  // (outer capture group index, role) for each role in text_phrases_.
  std::vector<std::pair<int, PhraseRole>> text_phrase_roles_;
  std::unique_ptr<RE2> dictionary_;          // all synonyms, leftmost-longest
  std::unique_ptr<RE2::Set> concept_set_;    // per concept, anchored both
  std::array<std::unique_ptr<RE2>, kNumPhraseRoles> phrase_union_;
  WordList stopwords_;
  WordList qualifiers_;
  absl::flat_hash_map<std::string, int> quantity_index_;
  absl::flat_hash_map<std::string, int> concept_index_;
  int pattern_count_ = 0;
};

// Holds the current rule set of a running process. A reload that fails keeps
// the previous set. Thread-safe.
class RuleSetHolder {
 public:
  explicit RuleSetHolder(std::shared_ptr<const RuleSet> initial);

  // The current set (never null).
  std::shared_ptr<const RuleSet> Get() const ABSL_LOCKS_EXCLUDED(mu_);

  // Loads `dir`; on success makes it current. On failure returns the load
  // error (see RuleSet::LoadDirectory) and keeps the current set.
  absl::Status ReloadFromDirectory(const std::filesystem::path& dir,
                                   const RuleSetOptions& options = {})
      ABSL_LOCKS_EXCLUDED(mu_);

  // Replaces the current set. `rules` must not be null.
  void Set(std::shared_ptr<const RuleSet> rules) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const RuleSet> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace trialmatch::criteria

#endif  // TRIALMATCH_CRITERIA_RULE_SET_H_
