#include "criteria/compiler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/strings.h"
#include "criteria/byte_words.h"
#include "criteria/normalized_text.h"
#include "criteria/structure.h"

namespace trialmatch::criteria {
namespace {

using internal::Candidate;
using internal::StudyCondition;
using Range = std::pair<int32_t, int32_t>;

constexpr std::string_view kMinAgeField =
    "protocolSection.eligibilityModule.minimumAge";
constexpr std::string_view kMaxAgeField =
    "protocolSection.eligibilityModule.maximumAge";
constexpr std::string_view kSexField = "protocolSection.eligibilityModule.sex";
constexpr std::string_view kHealthyField =
    "protocolSection.eligibilityModule.healthyVolunteers";
constexpr std::string_view kConditionsField =
    "protocolSection.conditionsModule.conditions";

bool IsNumericKind(Kind k) {
  return k == Kind::kAge || k == Kind::kLab || k == Kind::kPerformanceStatus;
}

bool Overlaps(int32_t a0, int32_t a1, int32_t b0, int32_t b1) {
  return a0 < b1 && b0 < a1;
}

// Two numeric candidates stating the same bound on the same quantity.
bool SameBound(const Candidate& a, const Candidate& b) {
  return a.kind == b.kind && a.quantity_index == b.quantity_index &&
         a.relative_to_uln == b.relative_to_uln && a.low == b.low &&
         a.high == b.high && (!a.low || a.low_inclusive == b.low_inclusive) &&
         (!a.high || a.high_inclusive == b.high_inclusive);
}

using internal::BytesEqual;
using internal::ControlBytes;
using internal::LoadWord;

// True when CollapseSpace(s) == s: no control byte (tab, newline...), no two
// spaces in a row, no space at either end. Eight bytes at a time.
bool SpaceCollapsed(std::string_view s) {
  if (s.empty()) return true;
  if (s.front() == ' ' || s.back() == ' ') return false;
  size_t i = 0;
  // Windows of 8 bytes advancing by 7 see every pair of neighbours.
  for (; i + 8 <= s.size(); i += 7) {
    const uint64_t w = LoadWord(s.data() + i);
    const uint64_t space = BytesEqual(w, ' ');
    if ((ControlBytes(w) | (space & (space >> 8))) != 0) return false;
  }
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || (c == ' ' && i + 1 < s.size() && s[i + 1] == ' ')) return false;
  }
  return true;
}

// `s` with runs of white space turned into one space and no leading or
// trailing white space.
std::string CollapseSpace(std::string_view s) {
  if (SpaceCollapsed(s)) return std::string(s);  // most criteria
  std::string out(s.size(), '\0');
  size_t w = 0;
  bool pending = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      pending = w > 0;
      continue;
    }
    if (pending) out[w++] = ' ';
    pending = false;
    out[w++] = c;
  }
  out.resize(w);
  return out;
}

// ASCII lower case of `s` into `out` (same length; other bytes unchanged),
// eight bytes at a time: the same as absl::AsciiStrToLower.
void AsciiLowerInto(std::string_view s, std::string* out) {
  out->resize(s.size());
  char* d = out->data();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    const uint64_t w = internal::LowerWord(LoadWord(s.data() + i));
    std::memcpy(d + i, &w, sizeof w);
  }
  for (; i < s.size(); ++i) {
    d[i] = absl::ascii_tolower(static_cast<unsigned char>(s[i]));
  }
}

struct Token {
  int32_t begin = 0;
  int32_t end = 0;
  std::string_view lower;  // into the analyzer's lower-cased copy
  bool number = false;
};

// Words (letters, digits, inner apostrophes) of `t`; `lower` is `t` lower-
// cased (same length), which the tokens' `lower` views point into.
void Tokenize(std::string_view t, std::string_view lower,
              std::vector<Token>* out) {
  const auto n = static_cast<int32_t>(t.size());
  int32_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(t[i]);
    if (absl::ascii_isalnum(c) || c >= 0x80) {
      int32_t j = i;
      while (j < n) {
        const auto d = static_cast<unsigned char>(t[j]);
        if (absl::ascii_isalnum(d) || d >= 0x80 ||
            (d == '\'' && j + 1 < n &&
             absl::ascii_isalpha(static_cast<unsigned char>(t[j + 1])))) {
          ++j;
        } else {
          break;
        }
      }
      Token tok;
      tok.begin = i;
      tok.end = j;
      tok.lower = lower.substr(i, j - i);
      tok.number = absl::ascii_isdigit(c);
      out->push_back(tok);
      i = j;
    } else {
      ++i;
    }
  }
}

// --- The plan of one criterion ------------------------------------------

// A predicate-to-be: a candidate with its final polarity, or unread text.
struct Leaf {
  int cand = -1;  // index into the criterion's candidates; -1 = unknown
  Polarity polarity = Polarity::kInclusion;
  bool informational = false;
  bool scoped = false;      // under a sub-population or alternatives heading
  bool permission = false;  // from a "... is allowed" statement
  bool condition = false;   // the condition of its alternative ("for X")
  std::string rule_id;  // for unknowns
  std::string note;
  int32_t begin = 0;
  int32_t end = 0;
};

struct Alternative {
  std::vector<Leaf> leaves;
  int32_t begin = 0;
  int32_t end = 0;
};

struct Group {
  std::vector<Alternative> alts;
  int32_t begin = 0;
  int32_t end = 0;
};

struct Plan {
  std::vector<Leaf> leaves;   // conjunction (plus informational ones)
  std::vector<Group> groups;  // any-of groups, each a conjunct
};

// Where a block sits, as inherited from its ancestors.
struct BlockContext {
  bool exclusion = false;      // the block states an exclusion
  bool informational = false;  // nothing in it decides (sub-population...)
  std::string note;            // why informational
  bool exclusion_section = false;
};

Leaf Unknown(std::string rule_id, int32_t b, int32_t e, std::string note = "") {
  Leaf l;
  l.rule_id = std::move(rule_id);
  l.begin = b;
  l.end = e;
  l.note = std::move(note);
  return l;
}

// --- Text analysis of one criterion --------------------------------------

// Reads one criterion at a time. Reused across the criteria of a study so
// its buffers keep their capacity (few allocations per criterion).
class CriterionAnalyzer {
 public:
  CriterionAnalyzer(const RuleSet& rules, CompileCounters* counters)
      : rules_(rules), counters_(counters) {}

  // Reads `text` in context `ctx`; `cands` receives the candidates the plan
  // refers to.
  Plan Analyze(std::string_view text, const BlockContext& ctx,
               const std::vector<StudyCondition>* study_conditions,
               std::vector<Candidate>* cands);

 private:
  struct Statement {
    int32_t begin = 0;
    int32_t end = 0;
    bool exclusion = false;
    bool permission = false;
  };
  struct Scope {
    int32_t cue_begin = 0;
    int32_t cue_end = 0;
    int32_t end = 0;
    bool leading = false;  // conditional opening its statement
  };
  struct PieceInfo {
    int32_t begin = 0;
    int32_t end = 0;
    std::vector<int> literals;       // candidate indexes
    std::vector<int> cond_literals;  // inside a conditional scope
    bool unknown = false;
    bool cond_unknown = false;
    bool has_cond = false;
    bool has_content = false;
    bool qualifier_only = true;
  };
  enum class Sep { kAnd, kOr, kList };


  void SplitStatements();
  int StatementOf(int32_t pos) const;
  int32_t ParenEnd(int32_t from, int32_t limit) const;
  void FindScopes();
  bool InScopes(const std::vector<Scope>& scopes, int32_t pos) const;
  const Scope* ScopeAt(const std::vector<Scope>& scopes, int32_t pos) const;
  bool Covered(int32_t b, int32_t e) const;
  void Cover(int32_t b, int32_t e);
  bool AllowedPrefix(int32_t from, int32_t to) const;
  void DecideNegation();
  void AcceptCandidates();
  void BuildStatementPlan(const Statement& st, Plan* plan);
  void DropComplementConditions(std::vector<Alternative>* alts) const;
  bool ResidualIn(int32_t b, int32_t e, bool skip_scopes) const;
  // Classifies tokens for ResidualIn once coverage and scopes are final
  // (called lazily by the first ResidualIn).
  void PrepareResidual();
  // Some word of the text is neither a stop word nor a one-letter token
  // (used before tokens and coverage exist).
  bool HasContentWord() const;
  void AddAll(Plan* plan, bool informational, const std::string& note);

  const RuleSet& rules_;
  CompileCounters* counters_;
  std::string_view t_;
  BlockContext ctx_;
  std::vector<Candidate>* cands_ = nullptr;
  RuleSet::ScanResult scan_;
  std::vector<uint8_t> accepted_;
  std::vector<uint8_t> negated_;
  std::vector<uint8_t> in_candidate_;  // byte covered by an accepted candidate
  std::vector<uint8_t> depth_;  // bracket depth before each byte (per statement)
  std::string lower_;
  std::vector<Token> tokens_;
  std::vector<Statement> statements_;
  RuleSet::PhraseMatches found_;
  std::vector<Range>& Role(PhraseRole r) { return found_[static_cast<int>(r)]; }
  std::vector<Range>& negations_ = Role(PhraseRole::kNegation);
  std::vector<Range>& pseudo_ = Role(PhraseRole::kPseudoNegation);
  std::vector<Range>& post_neg_ = Role(PhraseRole::kPostNegation);
  std::vector<Range>& exceptions_ = Role(PhraseRole::kException);
  std::vector<Range>& conditionals_ = Role(PhraseRole::kConditional);
  std::vector<Range>& fillers_ = Role(PhraseRole::kFiller);
  std::vector<Range>& breaks_ = Role(PhraseRole::kClauseBreak);
  std::vector<Range>& excl_markers_ = Role(PhraseRole::kExclusionMarker);
  std::vector<Range>& permissions_ = Role(PhraseRole::kPermission);
  std::vector<Range>& vetoes_ = Role(PhraseRole::kConditionVeto);
  std::vector<Range>& examples_ = Role(PhraseRole::kExamples);
  std::vector<Range>& time_windows_ = Role(PhraseRole::kTimeWindow);
  std::vector<Range>& administrative_ = Role(PhraseRole::kAdministrative);
  std::vector<Scope> exception_scopes_, conditional_scopes_;
  std::vector<uint8_t> covered_;
  std::vector<uint8_t> token_content_;
  bool residual_ready_ = false;
  bool covers_all_ = false;
};

// Bytes that SplitStatements acts on (brackets and statement breaks).
constexpr std::array<bool, 256> kStatementBytes = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : std::string_view("([)];\n.:")) t[c] = true;
  return t;
}();

// Bytes that can cut a statement into pieces (brackets, ',' and '/').
constexpr std::array<bool, 256> kCutBytes = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : std::string_view("([)],/")) t[c] = true;
  return t;
}();

void CriterionAnalyzer::SplitStatements() {
  const auto n = static_cast<int32_t>(t_.size());
  int32_t start = 0;
  int depth = 0;
  depth_.assign(t_.size() + 1, 0);
  for (int32_t i = 0; i < n; ++i) {
    // Other bytes only record the depth: a run of them at once.
    int32_t run_end = i;
    while (run_end < n &&
           !kStatementBytes[static_cast<unsigned char>(t_[run_end])]) {
      ++run_end;
    }
    if (run_end > i) {
      std::memset(depth_.data() + i, std::min(depth, 255),
                  static_cast<size_t>(run_end - i));
      i = run_end;
      if (i >= n) break;
    }
    const char c = t_[i];
    depth_[i] = static_cast<uint8_t>(std::min(depth, 255));
    if (c == '(' || c == '[') ++depth;
    if ((c == ')' || c == ']') && depth > 0) --depth;
    bool brk = false;
    if (c == ';' || c == '\n') {
      brk = true;
    } else if (c == '.' && i + 1 < n && (t_[i + 1] == ' ' || t_[i + 1] == '\t')) {
      int32_t j = i + 1;
      while (j < n && (t_[j] == ' ' || t_[j] == '\t')) ++j;
      // Not "e.g. ", "approx. 5", "vs. x": the next word starts a sentence.
      const bool prev_short = i >= 2 && !absl::ascii_isalpha(static_cast<unsigned char>(t_[i - 2])) ;
      brk = j >= n || absl::ascii_isupper(static_cast<unsigned char>(t_[j])) ||
            t_[j] == '(';
      if (prev_short && i >= 1 && absl::ascii_isalpha(static_cast<unsigned char>(t_[i - 1]))) {
        brk = false;  // "e.g." "i.e."
      }
    } else if (c == '.' && i + 1 == n) {
      brk = true;
    } else if (c == ':' && depth == 0 && i + 1 < n && t_[i + 1] == ' ') {
      brk = true;
    }
    if (brk) {
      if (i > start) statements_.push_back({start, i});
      start = i + 1;
      depth = 0;
    }
  }
  if (n > start) statements_.push_back({start, n});
  if (statements_.empty()) statements_.push_back({0, n});
}

int CriterionAnalyzer::StatementOf(int32_t pos) const {
  for (size_t i = 0; i < statements_.size(); ++i) {
    if (pos >= statements_[i].begin && pos < statements_[i].end) {
      return static_cast<int>(i);
    }
  }
  return statements_.empty() ? 0 : static_cast<int>(statements_.size()) - 1;
}

// If `from` is inside parentheses, the position of the closing one (or
// `limit`), else `limit`.
int32_t CriterionAnalyzer::ParenEnd(int32_t from, int32_t limit) const {
  const Statement& st = statements_[StatementOf(from)];
  int depth = 0;
  for (int32_t i = st.begin; i < from; ++i) {
    if (t_[i] == '(') ++depth;
    if (t_[i] == ')' && depth > 0) --depth;
  }
  if (depth == 0) return limit;
  for (int32_t i = from; i < limit; ++i) {
    if (t_[i] == '(') ++depth;
    if (t_[i] == ')') {
      if (--depth == 0) return i;
    }
  }
  return limit;
}

void CriterionAnalyzer::FindScopes() {
  for (const Range& r : exceptions_) {
    const Statement& st = statements_[StatementOf(r.first)];
    exception_scopes_.push_back({r.first, r.second, ParenEnd(r.first, st.end), false});
  }
  for (const Range& r : conditionals_) {
    const Statement& st = statements_[StatementOf(r.first)];
    Scope s{r.first, r.second, ParenEnd(r.first, st.end), false};
    // A conditional opening its statement ("If creatinine > ULN, ...",
    // "For patients with liver metastases: ...") ends at the first comma.
    if (AllowedPrefix(st.begin, r.first)) {
      s.leading = true;
      for (int32_t i = r.second; i < s.end; ++i) {
        if (t_[i] == ',') {
          s.end = i;
          break;
        }
      }
    }
    conditional_scopes_.push_back(s);
  }
}

bool CriterionAnalyzer::InScopes(const std::vector<Scope>& scopes,
                                 int32_t pos) const {
  return ScopeAt(scopes, pos) != nullptr;
}

const CriterionAnalyzer::Scope* CriterionAnalyzer::ScopeAt(
    const std::vector<Scope>& scopes, int32_t pos) const {
  for (const Scope& s : scopes) {
    if (pos >= s.cue_begin && pos < s.end) return &s;
  }
  return nullptr;
}

bool CriterionAnalyzer::Covered(int32_t b, int32_t e) const {
  for (int32_t i = b; i < e; ++i) {
    if (covered_[i]) return true;
  }
  return false;
}

void CriterionAnalyzer::Cover(int32_t b, int32_t e) {
  b = std::max<int32_t>(b, 0);
  e = std::min<int32_t>(e, static_cast<int32_t>(covered_.size()));
  for (int32_t i = b; i < e; ++i) covered_[i] = 1;
}

// True if every word in [from, to) is a stop word, a qualifier, or covered
// (by a phrase, filler or accepted candidate): "Known history of" before a
// condition, "Women who are" before "pregnant".
bool CriterionAnalyzer::AllowedPrefix(int32_t from, int32_t to) const {
  for (const Token& tok : tokens_) {
    if (tok.end <= from || tok.begin >= to) continue;
    if (Covered(tok.begin, tok.end)) continue;
    if (rules_.IsStopword(tok.lower) || rules_.IsQualifier(tok.lower)) continue;
    if (tok.lower.size() < 2 && !tok.number) continue;
    return false;
  }
  return true;
}

void CriterionAnalyzer::DecideNegation() {
  std::vector<Candidate>& c = *cands_;
  negated_.assign(c.size(), 0);
  for (size_t i = 0; i < c.size(); ++i) {
    if (!accepted_[i] || IsNumericKind(c[i].kind)) continue;
    const int st = StatementOf(c[i].begin);
    for (const Range& m : negations_) {
      if (m.second > c[i].begin || StatementOf(m.first) != st) continue;
      bool pseudo = false;
      for (const Range& p : pseudo_) {
        if (Overlaps(p.first, p.second, m.first, m.second)) pseudo = true;
      }
      if (pseudo) continue;
      bool broken = false;
      for (const Range& b : breaks_) {
        if (b.first >= m.second && b.second <= c[i].begin) broken = true;
      }
      for (const Scope& s : exception_scopes_) {
        if (s.cue_begin >= m.second && s.cue_begin < c[i].begin) broken = true;
      }
      for (const Scope& s : conditional_scopes_) {
        if (s.cue_begin >= m.second && s.cue_begin < c[i].begin) broken = true;
      }
      // A numeric bound between the cue and the candidate ends the cue.
      for (size_t j = 0; j < c.size(); ++j) {
        if (accepted_[j] && IsNumericKind(c[j].kind) && c[j].begin >= m.second &&
            c[j].end <= c[i].begin) {
          broken = true;
        }
      }
      if (!broken) negated_[i] = true;
    }
    for (const Range& m : post_neg_) {
      if (m.first >= c[i].end && m.first - c[i].end <= 3) {
        std::string_view gap = t_.substr(c[i].end, m.first - c[i].end);
        if (gap.find_first_not_of(" -:(") == std::string_view::npos) {
          negated_[i] = true;
        }
      }
    }
    if (c[i].rule_negated) negated_[i] = !negated_[i];
  }
}

void CriterionAnalyzer::AcceptCandidates() {
  std::vector<Candidate>& c = *cands_;
  accepted_.assign(c.size(), 1);
  for (size_t i = 0; i < c.size(); ++i) {
    // Candidates inside examples ("(e.g. lupus, psoriasis)") are not
    // requirements of their own.
    for (const Range& f : examples_) {
      if (c[i].begin >= f.first && c[i].end <= f.second) accepted_[i] = false;
    }
    if (c[i].kind == Kind::kCondition) {
      const int st = StatementOf(c[i].begin);
      for (const Range& v : vetoes_) {
        if (StatementOf(v.first) != st) continue;
        // A veto before the mention in its statement, or just after it.
        if (v.second <= c[i].begin ||
            (v.first >= c[i].end && v.first - c[i].end <= 25) ||
            Overlaps(v.first, v.second, c[i].begin, c[i].end)) {
          accepted_[i] = false;
        }
      }
    }
  }
  // Mark what is certainly not content, then check the context of mentions
  // and of rules that need a clear subject position, left to right.
  for (const auto* list : {&negations_, &pseudo_, &post_neg_, &exceptions_,
                           &conditionals_, &fillers_, &breaks_, &excl_markers_,
                           &permissions_, &examples_, &administrative_}) {
    for (const Range& r : *list) Cover(r.first, r.second);
  }
  for (size_t i = 0; i < c.size(); ++i) {
    if (!accepted_[i]) continue;
    if (c[i].subject_position) {
      const Statement& st = statements_[StatementOf(c[i].begin)];
      int32_t from = st.begin;
      if (const Scope* s = ScopeAt(conditional_scopes_, c[i].begin)) {
        from = std::max(from, s->cue_end);
      }
      // After a top-level "or" a new alternative starts: "pregnant, planning
      // to become pregnant, or breastfeeding".
      for (const Token& tok : tokens_) {
        if (tok.begin >= c[i].begin) break;
        if (tok.begin >= from && depth_[tok.begin] == 0 &&
            (tok.lower == "or" || tok.lower == "nor")) {
          from = tok.end;
        }
      }
      if (!AllowedPrefix(from, c[i].begin)) {
        accepted_[i] = false;
        continue;
      }
    }
    Cover(c[i].begin, c[i].end);
    if (c[i].covers_criterion) covers_all_ = true;
    if (c[i].absorbed) accepted_[i] = 0;  // covered, not a predicate
  }
  // A named bound restated in the same statement ("TBL > 1.5 mg/dL (TBL >
  // 1.5 mg/dL is allowed if ...)", "Hgb >= 10 g/dL ... (transfusion to
  // achieve Hgb >= 10 g/dL is acceptable)") is one requirement.
  for (size_t j = 0; j < c.size(); ++j) {
    if (!accepted_[j] || !IsNumericKind(c[j].kind) || c[j].nameless) continue;
    for (size_t i = 0; i < j; ++i) {
      if (accepted_[i] && !c[i].nameless && SameBound(c[i], c[j]) &&
          StatementOf(c[i].begin) == StatementOf(c[j].begin)) {
        accepted_[j] = 0;
        break;
      }
    }
  }
  in_candidate_.assign(t_.size(), 0);
  for (size_t i = 0; i < c.size(); ++i) {
    if (!accepted_[i]) continue;
    for (int32_t k = c[i].begin; k < c[i].end; ++k) in_candidate_[k] = 1;
  }
}

void CriterionAnalyzer::PrepareResidual() {
  // Per token: bit 0 = content (not covered, not a stop word, not a lone
  // letter); bit 1 = content outside exception / conditional scopes.
  token_content_.assign(tokens_.size(), 0);
  for (size_t k = 0; k < tokens_.size(); ++k) {
    const Token& tok = tokens_[k];
    if (Covered(tok.begin, tok.end)) continue;
    if (tok.lower.size() < 2 && !tok.number) continue;
    if (rules_.IsStopword(tok.lower)) continue;
    uint8_t bits = 1;
    if (!InScopes(exception_scopes_, tok.begin) &&
        !InScopes(conditional_scopes_, tok.begin)) {
      bits |= 2;
    }
    token_content_[k] = bits;
  }
  residual_ready_ = true;
}

bool CriterionAnalyzer::ResidualIn(int32_t b, int32_t e, bool skip_scopes) const {
  if (!residual_ready_) const_cast<CriterionAnalyzer*>(this)->PrepareResidual();
  const uint8_t want = skip_scopes ? 2 : 1;
  // Tokens are in text order: start at the first one ending after b.
  auto it = std::partition_point(tokens_.begin(), tokens_.end(),
                                 [&](const Token& t) { return t.end <= b; });
  for (; it != tokens_.end() && it->begin < e; ++it) {
    if (token_content_[it - tokens_.begin()] & want) return true;
  }
  return false;
}

bool CriterionAnalyzer::HasContentWord() const {
  char word[64];
  const auto n = static_cast<int32_t>(t_.size());
  int32_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(t_[i]);
    if (!(absl::ascii_isalnum(c) || c >= 0x80)) {
      ++i;
      continue;
    }
    int32_t j = i;
    size_t len = 0;
    while (j < n) {
      const auto d = static_cast<unsigned char>(t_[j]);
      if (!(absl::ascii_isalnum(d) || d >= 0x80)) break;
      if (len < sizeof(word)) word[len++] = absl::ascii_tolower(d);
      ++j;
    }
    const std::string_view w(word, len);
    if (absl::ascii_isdigit(c) || (len >= 2 && len < sizeof(word) && !rules_.IsStopword(w))) {
      return true;
    }
    i = j;
  }
  return false;
}

void CriterionAnalyzer::AddAll(Plan* plan, bool informational,
                               const std::string& note) {
  bool any = false;
  for (size_t i = 0; i < cands_->size(); ++i) {
    if (!accepted_[i]) continue;
    Leaf l;
    l.cand = static_cast<int>(i);
    l.polarity = ctx_.exclusion ? Polarity::kExclusion : Polarity::kInclusion;
    if (negated_[i] && !ctx_.exclusion) l.polarity = Polarity::kExclusion;
    l.informational = informational || (*cands_)[i].informational;
    l.scoped = informational;
    l.note = note;
    l.begin = (*cands_)[i].begin;
    l.end = (*cands_)[i].end;
    plan->leaves.push_back(std::move(l));
    any = true;
  }
  if (!any || ResidualIn(0, static_cast<int32_t>(t_.size()), false)) {
    Leaf u = Unknown(any ? "text.residual" : "text.unparsed", 0,
                     static_cast<int32_t>(t_.size()), note);
    u.informational = informational;
    plan->leaves.push_back(std::move(u));
  }
}

// A or (B and C) where C holds whenever A does not is A or B: "total
// bilirubin <= 1.5 x ULN OR direct bilirubin <= ULN for subjects with total
// bilirubin > 1.5 x ULN". Drops such conditions C (numeric, one-sided, same
// quantity as a one-literal alternative A).
void CriterionAnalyzer::DropComplementConditions(std::vector<Alternative>* alts) const {
  const std::vector<Candidate>& c = *cands_;
  auto one_sided = [&](const Leaf& l) {
    return l.cand >= 0 && l.polarity == Polarity::kInclusion && IsNumericKind(c[l.cand].kind) &&
           c[l.cand].low.has_value() != c[l.cand].high.has_value();
  };
  // Together the two one-sided bounds admit every value.
  auto cover_all = [&](const Candidate& a, const Candidate& b) {
    if (a.quantity_index != b.quantity_index || a.relative_to_uln != b.relative_to_uln) {
      return false;
    }
    const Candidate& lo = a.low ? a : b;   // "x > v"
    const Candidate& hi = a.low ? b : a;   // "x < w"
    if (!lo.low || !hi.high) return false;
    return *lo.low < *hi.high ||
           (*lo.low == *hi.high && (lo.low_inclusive || hi.high_inclusive));
  };
  for (size_t b = 0; b < alts->size(); ++b) {
    std::vector<Leaf>& leaves = (*alts)[b].leaves;
    for (size_t k = 0; k < leaves.size() && leaves.size() > 1;) {
      bool drop = false;
      if (leaves[k].condition && one_sided(leaves[k])) {
        for (size_t a = 0; a < alts->size() && !drop; ++a) {
          const std::vector<Leaf>& other = (*alts)[a].leaves;
          drop = a != b && other.size() == 1 && !other[0].condition && one_sided(other[0]) &&
                 cover_all(c[other[0].cand], c[leaves[k].cand]);
        }
      }
      if (drop) {
        leaves.erase(leaves.begin() + static_cast<long>(k));
      } else {
        ++k;
      }
    }
  }
}

void CriterionAnalyzer::BuildStatementPlan(const Statement& st, Plan* plan) {
  std::vector<Candidate>& c = *cands_;
  const bool excl = st.exclusion;
  auto in_stmt = [&](size_t i) {
    return accepted_[i] && c[i].begin >= st.begin && c[i].begin < st.end;
  };
  // Informational candidates are shown, never part of the logic.
  bool any_candidate = false;
  for (size_t i = 0; i < c.size(); ++i) {
    if (!in_stmt(i)) continue;
    any_candidate = true;
    if (c[i].informational || st.permission) {
      Leaf l;
      l.cand = static_cast<int>(i);
      l.polarity = excl ? Polarity::kExclusion : Polarity::kInclusion;
      if (negated_[i]) {
        l.polarity = excl ? Polarity::kInclusion : Polarity::kExclusion;
      }
      l.informational = true;
      l.permission = st.permission;
      l.note = st.permission ? "permission, not a requirement" : c[i].note;
      l.begin = c[i].begin;
      l.end = c[i].end;
      plan->leaves.push_back(std::move(l));
    }
  }
  if (st.permission) return;

  // Connectors outside parentheses, candidates and scopes split the
  // statement into pieces.
  struct Cut {
    int32_t pos;
    int32_t end;
    Sep sep;
  };
  std::vector<Cut> cuts;
  int depth = 0;
  for (int32_t i = st.begin; i < st.end; ++i) {
    const char ch = t_[i];
    // Only brackets, ',' and '/' change the depth or cut.
    if (!kCutBytes[static_cast<unsigned char>(ch)]) continue;
    if (ch == '(' || ch == '[') ++depth;
    if ((ch == ')' || ch == ']') && depth > 0) --depth;
    if (depth > 0) continue;
    if (in_candidate_[i] || InScopes(exception_scopes_, i)) continue;
    const Scope* cs = ScopeAt(conditional_scopes_, i);
    if (cs != nullptr && !cs->leading) continue;
    if (ch == ',') {
      cuts.push_back({i, i + 1, Sep::kList});
      continue;
    }
    if (ch == '/' && i > st.begin && i + 1 < st.end) {
      // "pregnant/lactating" is an or; "kg/m2", "mg/dL", "and/or" are not.
      auto word_len = [&](int32_t from, int step) {
        int n = 0;
        for (int32_t k = from; k >= st.begin && k < st.end &&
                               absl::ascii_isalpha(static_cast<unsigned char>(t_[k]));
             k += step) {
          ++n;
        }
        return n;
      };
      if (word_len(i - 1, -1) >= 4 && word_len(i + 1, 1) >= 4) {
        cuts.push_back({i, i + 1, Sep::kOr});
      }
      continue;
    }
  }
  for (const Token& tok : tokens_) {
    if (tok.begin < st.begin || tok.end > st.end) continue;
    Sep sep;
    if (tok.lower == "or" || tok.lower == "nor") {
      sep = Sep::kOr;
    } else if (tok.lower == "and" || tok.lower == "with" || tok.lower == "plus") {
      sep = Sep::kAnd;
      // "and/or" is an or.
      if (tok.end + 3 <= st.end && t_.substr(tok.end, 3) == "/or") sep = Sep::kOr;
    } else {
      continue;
    }
    const int d = depth_[tok.begin];
    const bool in_cand = in_candidate_[tok.begin] != 0;
    const Scope* cs = ScopeAt(conditional_scopes_, tok.begin);
    if (d > 0 || in_cand || InScopes(exception_scopes_, tok.begin) ||
        (cs != nullptr && !cs->leading)) {
      continue;
    }
    cuts.push_back({tok.begin, tok.end, sep});
  }
  // A bound continuing the previous one inside parentheses is an
  // alternative: "AST <= 2.5 x ULN (<= 5 x ULN for liver metastases)".
  for (size_t k = 0; k < c.size(); ++k) {
    if (!in_stmt(k) || !c[k].nameless || c[k].informational) continue;
    int32_t open = -1;
    for (int32_t i = c[k].begin - 1; i >= st.begin && i >= c[k].begin - 3; --i) {
      if (t_[i] == '(') open = i;
    }
    if (open >= 0) cuts.push_back({open, open + 1, Sep::kOr});
  }
  std::sort(cuts.begin(), cuts.end(),
            [](const Cut& a, const Cut& b) { return a.pos < b.pos; });

  // Pieces between cuts.
  std::vector<PieceInfo> pieces;
  std::vector<Sep> seps;  // seps[i] joins pieces[i] and pieces[i+1]
  int32_t start = st.begin;
  for (size_t k = 0; k <= cuts.size(); ++k) {
    const int32_t end = k < cuts.size() ? cuts[k].pos : st.end;
    PieceInfo p;
    p.begin = start;
    p.end = end;
    for (size_t i = 0; i < c.size(); ++i) {
      if (!in_stmt(i) || c[i].informational) continue;
      if (c[i].begin < start || c[i].begin >= end) continue;
      if (InScopes(exception_scopes_, c[i].begin)) continue;
      const Scope* cs = ScopeAt(conditional_scopes_, c[i].begin);
      if (cs != nullptr) {
        p.cond_literals.push_back(static_cast<int>(i));
        p.has_cond = true;
      } else {
        p.literals.push_back(static_cast<int>(i));
      }
    }
    for (const Scope& s : conditional_scopes_) {
      if (s.cue_begin >= start && s.cue_begin < end) {
        p.has_cond = true;
        if (ResidualIn(s.cue_end, s.end, false)) p.cond_unknown = true;
      }
    }
    p.unknown = ResidualIn(start, end, true);
    p.has_content = !p.literals.empty() || !p.cond_literals.empty() || p.unknown;
    // Only qualifiers ("Severe," "active or") describe the next piece.
    for (const Token& tok : tokens_) {
      if (tok.begin < start || tok.end > end) continue;
      if (Covered(tok.begin, tok.end) || rules_.IsStopword(tok.lower)) continue;
      if (!rules_.IsQualifier(tok.lower)) p.qualifier_only = false;
    }
    if (!p.literals.empty() || !p.cond_literals.empty()) p.qualifier_only = false;
    pieces.push_back(std::move(p));
    if (k < cuts.size()) {
      seps.push_back(cuts[k].sep);
      start = cuts[k].end;
    }
  }
  // Merge pieces without content, and qualifier-only ones, into the next.
  for (size_t i = 0; i + 1 < pieces.size();) {
    if (!pieces[i].has_content || pieces[i].qualifier_only) {
      PieceInfo& next = pieces[i + 1];
      next.begin = pieces[i].begin;
      next.unknown = next.unknown || (pieces[i].unknown && !pieces[i].qualifier_only);
      if (pieces[i].qualifier_only && pieces[i].unknown) next.unknown = true;
      next.has_content = next.has_content || pieces[i].has_content;
      if (i > 0 && seps[i - 1] == Sep::kList) seps[i - 1] = seps[i];
      pieces.erase(pieces.begin() + static_cast<long>(i));
      seps.erase(seps.begin() + static_cast<long>(i));
    } else {
      ++i;
    }
  }
  if (pieces.size() > 1 && !pieces.back().has_content) {
    pieces[pieces.size() - 2].end = pieces.back().end;
    pieces.pop_back();
    seps.pop_back();
  }
  // Words before the first literal or after the last one qualify the whole
  // list: "active hepatitis B, hepatitis C or HIV", "stroke or MI within 6
  // months".
  if (pieces.size() > 1) {
    auto first_literal = [&](const PieceInfo& p) {
      int32_t b = p.end;
      for (int l : p.literals) b = std::min(b, c[l].begin);
      return b;
    };
    auto last_literal = [&](const PieceInfo& p) {
      int32_t e = p.begin;
      for (int l : p.literals) e = std::max(e, c[l].end);
      return e;
    };
    const PieceInfo& head = pieces.front();
    const PieceInfo& tail = pieces.back();
    const bool shared =
        (!head.literals.empty() && ResidualIn(head.begin, first_literal(head), true)) ||
        (!tail.literals.empty() && ResidualIn(last_literal(tail), tail.end, true));
    if (shared) {
      for (PieceInfo& p : pieces) p.unknown = true;
    }
  }
  // Negation distributes: "No history of stroke or MI" = neither.
  for (size_t i = 0; i < seps.size(); ++i) {
    auto all_negated = [&](const PieceInfo& p) {
      if (p.literals.empty()) return false;
      for (int l : p.literals) {
        if (!negated_[l]) return false;
      }
      return true;
    };
    if (all_negated(pieces[i]) && all_negated(pieces[i + 1])) seps[i] = Sep::kAnd;
  }
  // Commas take the next explicit connector of their list; otherwise items
  // are independent statements.
  for (size_t i = 0; i < seps.size(); ++i) {
    if (seps[i] != Sep::kList) continue;
    Sep resolved = Sep::kList;
    for (size_t j = i + 1; j < seps.size(); ++j) {
      if (seps[j] != Sep::kList) {
        resolved = seps[j];
        break;
      }
    }
    seps[i] = resolved;
  }

  const bool any_deciding = std::any_of(pieces.begin(), pieces.end(), [](const PieceInfo& p) {
    return !p.literals.empty() || !p.cond_literals.empty();
  });
  const bool has_exception = std::any_of(
      exception_scopes_.begin(), exception_scopes_.end(),
      [&](const Scope& s) { return s.cue_begin >= st.begin && s.cue_begin < st.end; });
  const bool stmt_unknown = std::any_of(pieces.begin(), pieces.end(),
                                        [](const PieceInfo& p) { return p.unknown || p.cond_unknown; });
  if (!any_deciding) {
    if ((stmt_unknown || has_exception) && !covers_all_) {
      plan->leaves.push_back(Unknown(any_candidate ? "text.residual" : "text.unparsed",
                                     st.begin, st.end));
    }
    return;
  }

  auto literal = [&](int i, bool flip) {
    Leaf l;
    l.cand = i;
    bool neg = negated_[i];
    if (flip) neg = !neg;
    l.polarity = neg ? Polarity::kExclusion : Polarity::kInclusion;
    l.begin = c[i].begin;
    l.end = c[i].end;
    return l;
  };
  const bool ignore_unknown = covers_all_;

  // "X is eligible if she is not pregnant": the condition is the
  // requirement when nothing outside it was read.
  {
    bool outside = false;
    for (const PieceInfo& p : pieces) {
      for (int l : p.literals) outside = outside || c[l].kind != Kind::kSex;
    }
    if (!outside && !excl) {
      for (PieceInfo& p : pieces) {
        p.literals.insert(p.literals.end(), p.cond_literals.begin(),
                          p.cond_literals.end());
        p.cond_literals.clear();
        p.has_cond = false;
        p.unknown = p.unknown || p.cond_unknown;
        p.cond_unknown = false;
      }
    }
  }
  // Runs: pieces joined by AND (or by list commas in an inclusion).
  struct Run {
    std::vector<int> pieces;
  };
  std::vector<Run> runs(1);
  runs[0].pieces.push_back(0);
  for (size_t i = 0; i < seps.size(); ++i) {
    const bool join = seps[i] == Sep::kAnd || (seps[i] == Sep::kList && !excl);
    if (join) {
      runs.back().pieces.push_back(static_cast<int>(i) + 1);
    } else {
      runs.push_back(Run{{static_cast<int>(i) + 1}});
    }
  }

  if (!excl) {
    // Inclusion: F = OR over runs; each run a conjunction.
    std::vector<Alternative> alts;
    bool implication = false;
    std::vector<Leaf> negated_conditions;
    bool condition_unknown = false;
    for (const Run& run : runs) {
      Alternative alt;
      bool unknown = false;
      alt.begin = pieces[run.pieces.front()].begin;
      alt.end = pieces[run.pieces.back()].end;
      bool else_branch = false;
      for (int pi : run.pieces) {
        const PieceInfo& p = pieces[pi];
        for (int l : p.literals) {
          alt.leaves.push_back(literal(l, false));
          if (c[l].nameless) else_branch = true;
        }
        unknown = unknown || p.unknown;
        if (p.has_cond) {
          if (else_branch || runs.size() > 1) {
            // "(<= 5 x ULN for patients with liver metastases)": the
            // condition is part of this alternative.
            for (int l : p.cond_literals) {
              alt.leaves.push_back(literal(l, false));
              alt.leaves.back().condition = true;
            }
            unknown = unknown || p.cond_unknown;
          } else {
            // "If creatinine > ULN, creatinine clearance >= 60": either the
            // condition does not hold, or the requirement does.
            implication = true;
            for (int l : p.cond_literals) negated_conditions.push_back(literal(l, true));
            condition_unknown = condition_unknown || p.cond_unknown ||
                                p.cond_literals.empty();
          }
        }
      }
      if (unknown && !ignore_unknown) {
        alt.leaves.push_back(Unknown("text.residual", alt.begin, alt.end));
      }
      if (alt.leaves.empty()) {
        alt.leaves.push_back(Unknown("text.residual", alt.begin, alt.end));
      }
      alts.push_back(std::move(alt));
    }
    DropComplementConditions(&alts);
    if (implication && !ignore_unknown) {
      for (Leaf& l : negated_conditions) {
        Alternative a;
        a.begin = l.begin;
        a.end = l.end;
        a.leaves.push_back(std::move(l));
        alts.push_back(std::move(a));
      }
      if (condition_unknown) {
        Alternative a;
        a.begin = st.begin;
        a.end = st.end;
        a.leaves.push_back(Unknown("text.residual", st.begin, st.end,
                                   "condition under which the requirement applies"));
        alts.push_back(std::move(a));
      }
    }
    if (has_exception && !ignore_unknown) {
      Alternative a;
      for (const Scope& s : exception_scopes_) {
        if (s.cue_begin >= st.begin && s.cue_begin < st.end) {
          a.begin = s.cue_begin;
          a.end = s.end;
          break;
        }
      }
      a.leaves.push_back(Unknown("text.residual", a.begin, a.end, "exception"));
      alts.push_back(std::move(a));
    }
    if (alts.size() == 1) {
      for (Leaf& l : alts[0].leaves) plan->leaves.push_back(std::move(l));
    } else {
      Group g;
      g.begin = st.begin;
      g.end = st.end;
      g.alts = std::move(alts);
      plan->groups.push_back(std::move(g));
    }
    return;
  }

  // Exclusion: F = AND over runs of NOT(run); NOT(run) = OR over the run's
  // negated literals (and unknown when part of the run was not read).
  std::vector<Group> groups;
  std::vector<Leaf> direct;
  for (const Run& run : runs) {
    std::vector<Leaf> options;
    bool unknown = false;
    bool ambiguous = false;
    for (int pi : run.pieces) {
      const PieceInfo& p = pieces[pi];
      for (int l : p.literals) {
        // "No X" listed under Exclusion is ambiguous: keep it for review.
        if (negated_[l] && !c[l].rule_negated && ctx_.exclusion_section &&
            !IsNumericKind(c[l].kind)) {
          ambiguous = true;
          continue;
        }
        options.push_back(literal(l, true));
      }
      for (int l : p.cond_literals) options.push_back(literal(l, true));
      unknown = unknown || p.unknown || p.cond_unknown;
    }
    if (ambiguous) unknown = true;
    const int32_t rb = pieces[run.pieces.front()].begin;
    const int32_t re = pieces[run.pieces.back()].end;
    if (options.empty()) {
      if (unknown && !ignore_unknown) {
        direct.push_back(Unknown("text.residual", rb, re));
      }
      continue;
    }
    if (options.size() == 1 && (!unknown || ignore_unknown)) {
      direct.push_back(std::move(options[0]));
      continue;
    }
    Group g;
    g.begin = rb;
    g.end = re;
    for (Leaf& l : options) {
      Alternative a;
      a.begin = l.begin;
      a.end = l.end;
      a.leaves.push_back(std::move(l));
      g.alts.push_back(std::move(a));
    }
    if (unknown && !ignore_unknown) {
      Alternative a;
      a.begin = rb;
      a.end = re;
      a.leaves.push_back(Unknown("text.residual", rb, re,
                                 "the rest of the exclusion was not read"));
      g.alts.push_back(std::move(a));
    }
    groups.push_back(std::move(g));
  }
  if (has_exception && !ignore_unknown) {
    // (AND of requirements) OR exception: representable when it is one
    // requirement; otherwise keep everything for review.
    Range ex{st.begin, st.end};
    for (const Scope& s : exception_scopes_) {
      if (s.cue_begin >= st.begin && s.cue_begin < st.end) ex = {s.cue_begin, s.end};
    }
    Alternative exc;
    exc.begin = ex.first;
    exc.end = ex.second;
    exc.leaves.push_back(Unknown("text.residual", ex.first, ex.second, "exception"));
    if (direct.size() + groups.size() == 1) {
      Group g;
      if (!groups.empty()) {
        g = std::move(groups[0]);
        groups.clear();
      } else {
        Alternative a;
        a.begin = direct[0].begin;
        a.end = direct[0].end;
        a.leaves.push_back(std::move(direct[0]));
        direct.clear();
        g.begin = st.begin;
        g.end = st.end;
        g.alts.push_back(std::move(a));
      }
      g.alts.push_back(std::move(exc));
      groups.push_back(std::move(g));
    } else {
      for (Leaf& l : direct) {
        if (l.cand >= 0) {
          l.informational = true;
          l.note = "exclusion with an exception; needs review";
        }
      }
      for (Group& g : groups) {
        for (Alternative& a : g.alts) {
          for (Leaf& l : a.leaves) {
            if (l.cand >= 0) {
              l.informational = true;
              l.note = "exclusion with an exception; needs review";
              direct.push_back(l);
            }
          }
        }
      }
      groups.clear();
      direct.push_back(Unknown("text.residual", st.begin, st.end, "exception"));
    }
  }
  for (Leaf& l : direct) plan->leaves.push_back(std::move(l));
  for (Group& g : groups) plan->groups.push_back(std::move(g));
}

Plan CriterionAnalyzer::Analyze(std::string_view text, const BlockContext& ctx,
                                const std::vector<StudyCondition>* study_conditions,
                                std::vector<Candidate>* cands) {
  t_ = text;
  ctx_ = ctx;
  cands_ = cands;
  tokens_.clear();
  statements_.clear();
  for (auto& v : found_) v.clear();
  exception_scopes_.clear();
  conditional_scopes_.clear();
  covers_all_ = false;
  residual_ready_ = false;
  AsciiLowerInto(t_, &lower_);
  internal::ExtractOptions eo;
  eo.exclusion_section = ctx_.exclusion_section;
  eo.study_conditions = study_conditions;
  eo.lower = lower_;
  rules_.Scan(t_, &scan_);
  if (counters_ != nullptr) {
    ++counters_->phrase_scans;
    if (scan_.degraded) ++counters_->prefilter_degraded;
  }
  internal::ExtractCandidates(t_, rules_, scan_, eo, cands, counters_);
  if (cands->empty() && !scan_.administrative && !ctx_.informational) {
    // Fast path (most unread criteria): nothing was read and no
    // administrative wording is present, so the criterion is unread unless
    // it has no content word at all ("None", "-").
    Plan plan;
    if (HasContentWord()) {
      plan.leaves.push_back(Unknown("text.unparsed", 0, static_cast<int32_t>(t_.size())));
    }
    return plan;
  }
  covered_.assign(t_.size(), 0);
  tokens_.reserve(t_.size() / 5 + 4);
  Tokenize(t_, lower_, &tokens_);
  SplitStatements();
  // A criterion without candidates needs the phrases only to tell
  // administrative text or filler from unread requirements.
  if (!cands->empty() || scan_.administrative) {
    rules_.FindTextPhrases(t_, &found_);
    if (counters_ != nullptr) ++counters_->phrase_scans;
  }
  // Phrases inside candidates are part of them ("no more than" inside a
  // bound, "non-small cell" inside a synonym).
  auto drop_inside = [&](std::vector<Range>* v) {
    v->erase(std::remove_if(v->begin(), v->end(),
                            [&](const Range& r) {
                              for (const Candidate& c : *cands) {
                                if (r.first >= c.begin && r.second <= c.end &&
                                    !(r.first == c.begin && r.second == c.end)) {
                                  return true;
                                }
                              }
                              return false;
                            }),
             v->end());
  };
  drop_inside(&negations_);
  drop_inside(&exceptions_);
  drop_inside(&conditionals_);
  drop_inside(&post_neg_);
  FindScopes();
  // Markers inside parentheses ("(use of growth factors is acceptable)")
  // speak about a detail, not about the statement.
  auto depth_at = [&](const Statement&, int32_t pos) {
    return static_cast<int>(depth_[pos]);
  };
  for (Statement& st : statements_) {
    for (const Range& r : excl_markers_) {
      if (r.first >= st.begin && r.first < st.end && depth_at(st, r.first) == 0) {
        st.exclusion = true;
      }
    }
    for (const Range& r : permissions_) {
      if (r.first >= st.begin && r.first < st.end && depth_at(st, r.first) == 0) {
        st.permission = true;
      }
    }
    st.exclusion = st.exclusion || ctx_.exclusion;
  }
  AcceptCandidates();
  // A time window next to a measurement says when it is taken; next to a
  // condition ("stroke within 6 months") it narrows it and stays unread.
  for (const Range& tw : time_windows_) {
    const int st = StatementOf(tw.first);
    bool condition = false;
    for (size_t i = 0; i < cands->size(); ++i) {
      if (accepted_[i] && (*cands)[i].kind == Kind::kCondition &&
          StatementOf((*cands)[i].begin) == st) {
        condition = true;
      }
    }
    if (!condition) Cover(tw.first, tw.second);
  }
  DecideNegation();

  Plan plan;
  if (ctx_.informational) {
    AddAll(&plan, true, ctx_.note);
    return plan;
  }
  bool any = false;
  for (size_t i = 0; i < cands->size(); ++i) any = any || accepted_[i];
  if (!any) {
    const auto n = static_cast<int32_t>(t_.size());
    if (ResidualIn(0, n, false)) {
      plan.leaves.push_back(Unknown("text.unparsed", 0, n));
    } else if (!administrative_.empty()) {
      Leaf l = Unknown("text.administrative", 0, n,
                       "administrative requirement; not checked against a "
                       "patient record");
      l.informational = true;
      plan.leaves.push_back(std::move(l));
    }
    return plan;
  }
  for (const Statement& st : statements_) BuildStatementPlan(st, &plan);
  return plan;
}

// --- Assembling the CompiledStudy ---------------------------------------

struct StructuredAges {
  std::optional<double> min_years;
  std::optional<double> max_years;
  std::string min_text;
  std::string max_text;
};

class StudyAssembler {
 public:
  StudyAssembler(const RuleSet& rules, CompiledStudy* out,
                 CompileCounters* counters)
      : rules_(rules), out_(out), counters_(counters) {}

  void CompileText(std::string_view original, Section default_section,
                   const std::vector<StudyCondition>* study_conditions,
                   const StructuredAges& ages, bool sex_present,
                   model::Sex sex);

  // Text statements that disagree with the structured fields.
  void AddConflicts();

 private:
  int NewCriterion(Section section, Polarity polarity, int32_t nb, int32_t ne,
                   int parent);
  int AddPredicate(int criterion, const Candidate* c, const Leaf& leaf,
                   int32_t offset);
  void EmitPlan(int criterion, const Plan& plan,
                const std::vector<Candidate>& cands, int32_t offset,
                bool has_structural_children);
  BlockContext ContextFor(const TextStructure& st, int b,
                          const std::vector<BlockContext>& ctxs,
                          Section default_section);
  // Whether a lead-in block's text matches a phrase role, looked up once per
  // block (every child of a lead-in asks about the same text).
  bool LeadInMatches(int block, std::string_view text, PhraseRole role,
                     bool anchor_start = false);

  const RuleSet& rules_;
  CompiledStudy* out_;
  CompileCounters* counters_;
  // Per predicate (same index): text statements that cannot conflict with
  // the structured fields as plain statements.
  std::vector<uint8_t> scoped_;     // sub-population / alternatives / permission
  std::vector<uint8_t> cue_only_;   // a hint, never a restriction
  const NormalizedText* nt_ = nullptr;
  // Per block of the text being compiled: LeadInMatches answers, by role
  // and anchoring (-1 not asked yet, 0 no, 1 yes).
  std::vector<std::array<int8_t, 2 * kNumPhraseRoles>> lead_in_;
  // Per section: some top-level block of it is a stand-alone "OR".
  std::array<bool, 3> root_alternatives_{};
  std::string_view original_;
  StructuredAges ages_;
  bool sex_present_ = false;
  model::Sex sex_ = model::Sex::kAll;
};

int StudyAssembler::NewCriterion(Section section, Polarity polarity, int32_t nb,
                                 int32_t ne, int parent) {
  Criterion c;
  c.section = section;
  c.polarity = polarity;
  c.span = nt_->ToOriginal(nb, ne);
  c.text = CollapseSpace(std::string_view(nt_->text()).substr(nb, ne - nb));
  c.parent = parent;
  if (parent >= 0) {
    c.depth = out_->criteria[parent].depth + 1;
  }
  out_->criteria.push_back(std::move(c));
  const int idx = static_cast<int>(out_->criteria.size()) - 1;
  if (parent >= 0) out_->criteria[parent].children.push_back(idx);
  return idx;
}

std::string FormatNumber(double v) { return absl::StrFormat("%g", v); }

int StudyAssembler::AddPredicate(int criterion, const Candidate* c,
                                 const Leaf& leaf, int32_t offset) {
  // Built in place (a predicate is large to move).
  out_->predicates.emplace_back();
  Predicate* p = &out_->predicates.back();
  p->polarity = leaf.polarity;
  p->informational = leaf.informational;
  p->criterion = criterion;
  p->note = leaf.note;
  p->evidence.source = EvidenceSource::kCriteriaText;
  p->evidence.field = std::string(kCriteriaField);
  p->evidence.span = nt_->ToOriginal(offset + leaf.begin, offset + leaf.end);
  p->evidence.text = std::string(
      original_.substr(p->evidence.span.begin, p->evidence.span.end - p->evidence.span.begin));
  if (c == nullptr) {
    p->kind = Kind::kOther;
    p->rule_id = leaf.rule_id;
    p->polarity = out_->criteria[criterion].polarity;
  } else {
    p->kind = c->kind;
    p->rule_id = c->rule_id;
    if (p->note.empty()) p->note = c->note;
    p->quantity = c->quantity;
    p->low = c->low;
    p->low_inclusive = c->low_inclusive;
    p->high = c->high;
    p->high_inclusive = c->high_inclusive;
    p->unit = c->unit;
    p->relative_to_uln = c->relative_to_uln;
    p->original_value = c->original_value;
    p->sex = c->sex;
    if (c->kind == Kind::kCondition) p->concepts.push_back(c->concept_value);
    // Text ages next to the authoritative structured fields: the sides the
    // structured fields state are informational. An inclusion range with
    // only one side structured is split in two predicates.
    if (c->kind == Kind::kAge && !p->informational) {
      constexpr std::string_view kNote =
          "text age bound; the structured age fields are authoritative";
      const bool incl = p->polarity == Polarity::kInclusion;
      // Eligible side of the bound: an exclusion "age < 18" is the lower
      // limit 18.
      const bool states_min = incl ? p->low.has_value() : p->high.has_value();
      const bool states_max = incl ? p->high.has_value() : p->low.has_value();
      const bool min_known = ages_.min_years.has_value();
      const bool max_known = ages_.max_years.has_value();
      if ((!states_min || min_known) && (!states_max || max_known) &&
          (states_min || states_max)) {
        p->informational = true;
        p->note = std::string(kNote);
      } else if (incl && states_min && states_max && min_known != max_known) {
        // The known side goes first, then this predicate.
        Predicate copy = *p;
        out_->predicates.push_back(std::move(copy));
        Predicate& known = out_->predicates[out_->predicates.size() - 2];
        p = &out_->predicates.back();
        known.informational = true;
        known.note = std::string(kNote);
        if (min_known) {
          known.high.reset();
          p->low.reset();
        } else {
          known.low.reset();
          p->high.reset();
        }
        out_->criteria[criterion].predicates.push_back(
            static_cast<int>(out_->predicates.size()) - 2);
      }
    }
    if (c->kind == Kind::kSex && (sex_present_ || c->cue_only)) {
      p->informational = true;
      if (!leaf.scoped) {
        p->note = c->cue_only
                     ? "a cue in the text, not a restriction"
                     : "text sex cue; the structured sex field is authoritative";
      }
    }
  }
  const int idx = static_cast<int>(out_->predicates.size()) - 1;
  out_->criteria[criterion].predicates.push_back(idx);
  scoped_.resize(out_->predicates.size(), 0);
  cue_only_.resize(out_->predicates.size(), 0);
  scoped_[idx] = leaf.scoped || leaf.permission;
  cue_only_[idx] = c != nullptr && c->cue_only;
  return idx;
}

void StudyAssembler::EmitPlan(int criterion, const Plan& plan,
                              const std::vector<Candidate>& cands,
                              int32_t offset, bool has_structural_children) {
  const Section section = out_->criteria[criterion].section;
  const Polarity polarity = out_->criteria[criterion].polarity;
  bool deciding_leaves = false;
  for (const Leaf& l : plan.leaves) {
    if (has_structural_children && l.cand < 0) continue;  // children tell
    AddPredicate(criterion, l.cand >= 0 ? &cands[l.cand] : nullptr, l, offset);
    deciding_leaves = deciding_leaves || !l.informational;
  }
  const bool self_group = plan.groups.size() == 1 && !deciding_leaves &&
                          !has_structural_children &&
                          !out_->criteria[criterion].any_of;
  for (const Group& g : plan.groups) {
    int group_crit = criterion;
    if (!self_group) {
      group_crit = NewCriterion(section, polarity, offset + g.begin,
                                offset + g.end, criterion);
    }
    out_->criteria[group_crit].any_of = true;
    for (const Alternative& a : g.alts) {
      const int alt = NewCriterion(section, polarity, offset + a.begin,
                                   offset + a.end, group_crit);
      for (const Leaf& l : a.leaves) {
        AddPredicate(alt, l.cand >= 0 ? &cands[l.cand] : nullptr, l, offset);
      }
    }
    if (out_->criteria[group_crit].predicates.empty()) {
      Leaf marker = Unknown("structure.any_of", g.begin, g.end,
                            "holds when one of its children holds");
      marker.informational = true;
      AddPredicate(group_crit, nullptr, marker, offset);
    }
  }
  if (!plan.groups.empty() && !self_group &&
      out_->criteria[criterion].predicates.empty()) {
    // Only groups below: the criterion is their conjunction.
    Leaf marker = Unknown("structure.all_of", 0,
                          static_cast<int32_t>(out_->criteria[criterion].text.size()),
                          "holds when each of its children holds");
    marker.informational = true;
    marker.begin = plan.groups.front().begin;
    marker.end = plan.groups.back().end;
    AddPredicate(criterion, nullptr, marker, offset);
  }
}

bool StudyAssembler::LeadInMatches(int block, std::string_view text,
                                   PhraseRole role, bool anchor_start) {
  int8_t& known = lead_in_[static_cast<size_t>(block)]
                          [2 * static_cast<int>(role) + (anchor_start ? 1 : 0)];
  if (known < 0) known = rules_.MatchesPhrase(role, text, anchor_start) ? 1 : 0;
  return known == 1;
}

BlockContext StudyAssembler::ContextFor(const TextStructure& st, int b,
                                        const std::vector<BlockContext>& ctxs,
                                        Section default_section) {
  const Block& blk = st.blocks[b];
  BlockContext ctx;
  Section s = blk.section == Section::kUnspecified ? default_section : blk.section;
  ctx.exclusion_section = s == Section::kExclusion;
  ctx.exclusion = ctx.exclusion_section;
  if (blk.parent >= 0) {
    const BlockContext& pc = ctxs[blk.parent];
    ctx.exclusion = pc.exclusion;
    ctx.informational = pc.informational;
    ctx.note = pc.note;
    const Block& parent = st.blocks[blk.parent];
    const std::string_view ptext =
        std::string_view(nt_->text()).substr(parent.begin, parent.end - parent.begin);
    if (parent.type == BlockType::kCohort) {
      ctx.informational = true;
      ctx.note = "applies only to: " + CollapseSpace(ptext);
    } else if (!ctx.informational) {
      // Lead-ins: "None of the following:", "Patients with any of the
      // following are excluded:", "The following are allowed:".
      // The phrase answers are the parent's, asked once for all children.
      auto lead_matches = [&](PhraseRole role, bool anchor_start = false) {
        return LeadInMatches(blk.parent, ptext, role, anchor_start);
      };
      if (lead_matches(PhraseRole::kPermission)) {
        ctx.informational = true;
        ctx.note = "listed as allowed, not required";
      } else if (lead_matches(PhraseRole::kKOfN)) {
        ctx.informational = true;
        ctx.note = "some (not all) of these are required: " + CollapseSpace(ptext);
      } else if (!ctx.exclusion &&
                 ((lead_matches(PhraseRole::kNegation, true) &&
                   !lead_matches(PhraseRole::kPseudoNegation, true)) ||
                  lead_matches(PhraseRole::kExclusionMarker))) {
        ctx.exclusion = true;
      }
    }
  }
  // Siblings of a standalone "OR" are alternative groups of requirements.
  if (blk.type != BlockType::kAlternatives && !ctx.informational) {
    bool alternatives = false;
    if (blk.parent >= 0) {
      for (int sib : st.blocks[blk.parent].children) {
        alternatives = alternatives || st.blocks[sib].type == BlockType::kAlternatives;
      }
    } else {
      alternatives = root_alternatives_[static_cast<int>(blk.section)];
    }
    if (alternatives) {
      ctx.informational = true;
      ctx.note = "one of several alternative groups (\"OR\")";
    }
  }
  return ctx;
}

void StudyAssembler::CompileText(std::string_view original,
                                 Section default_section,
                                 const std::vector<StudyCondition>* study_conditions,
                                 const StructuredAges& ages, bool sex_present,
                                 model::Sex sex) {
  original_ = original;
  ages_ = ages;
  sex_present_ = sex_present;
  sex_ = sex;
  const NormalizedText nt = Normalize(original);
  nt_ = &nt;
  if (counters_ != nullptr) counters_->bytes += nt.size();
  if (nt.invalid_utf8_bytes() > 0) {
    out_->notes.push_back(absl::StrCat(
        "invalid UTF-8 replaced (", nt.invalid_utf8_bytes(), " bytes)"));
  }
  const TextStructure st = ParseStructure(nt, rules_);
  {
    std::array<int8_t, 2 * kNumPhraseRoles> unknown;
    unknown.fill(-1);
    lead_in_.assign(st.blocks.size(), unknown);
  }
  root_alternatives_.fill(false);
  for (const Block& blk : st.blocks) {
    if (blk.parent < 0 && blk.type == BlockType::kAlternatives) {
      root_alternatives_[static_cast<int>(blk.section)] = true;
    }
  }
  out_->criteria.reserve(out_->criteria.size() + st.blocks.size() * 3 / 2 + 4);
  // Room for the usual number of predicates per block (moving predicates
  // on reallocation costs more than the spare capacity).
  out_->predicates.reserve(out_->predicates.size() + st.blocks.size() * 4 + 16);
  CriterionAnalyzer analyzer(rules_, counters_);
  std::vector<Candidate> cands;
  std::vector<BlockContext> ctxs(st.blocks.size());
  std::vector<int> crit_of(st.blocks.size(), -1);
  for (size_t b = 0; b < st.blocks.size(); ++b) {
    const Block& blk = st.blocks[b];
    ctxs[b] = ContextFor(st, static_cast<int>(b), ctxs, default_section);
    const BlockContext& ctx = ctxs[b];
    const Section section =
        blk.section == Section::kUnspecified ? default_section : blk.section;
    const Polarity polarity =
        ctx.exclusion ? Polarity::kExclusion : Polarity::kInclusion;
    const int parent = blk.parent >= 0 ? crit_of[blk.parent] : -1;
    const int ci = NewCriterion(blk.section, polarity, blk.begin, blk.end, parent);
    (void)section;
    crit_of[b] = ci;
    if (counters_ != nullptr) ++counters_->criteria;
    const std::string_view text =
        std::string_view(nt.text()).substr(blk.begin, blk.end - blk.begin);
    const bool has_children = !blk.children.empty();

    if (blk.type == BlockType::kCohort) {
      Leaf l = Unknown("structure.cohort", 0, static_cast<int32_t>(text.size()),
                       "requirements below apply to this sub-population only");
      l.informational = ctx.informational;
      AddPredicate(ci, nullptr, l, blk.begin);
      continue;
    }
    if (blk.type == BlockType::kAlternatives) {
      Leaf l = Unknown("structure.alternatives", 0,
                       static_cast<int32_t>(text.size()),
                       "the groups around it are alternatives");
      l.informational = ctx.informational;
      AddPredicate(ci, nullptr, l, blk.begin);
      continue;
    }
    if (has_children && !ctx.informational) {
      auto matches = [&](PhraseRole role) {
        return LeadInMatches(static_cast<int>(b), text, role);
      };
      const bool any = matches(PhraseRole::kAnyOf);
      const bool all = matches(PhraseRole::kAllOf);
      const bool k_of_n = matches(PhraseRole::kKOfN);
      const bool child_exclusion =
          ctx.exclusion || matches(PhraseRole::kExclusionMarker);
      // "At least one of the following" groups an inclusion; for an
      // exclusion it is the default (each child excludes) unless "all of".
      if (!k_of_n && ((any && !child_exclusion) || (all && child_exclusion))) {
        out_->criteria[ci].any_of = true;
      }
      if (k_of_n) {
        Leaf l = Unknown("structure.k_of_n", 0, static_cast<int32_t>(text.size()),
                         "requires several (not all) of its children");
        AddPredicate(ci, nullptr, l, blk.begin);
        continue;
      }
    }
    cands.clear();
    Plan plan = analyzer.Analyze(text, ctx, study_conditions, &cands);
    if (has_children) {
      // A lead-in's own typed literals stay; when it is an any-of group they
      // cannot also be conjuncts of it.
      if (out_->criteria[ci].any_of) {
        for (Leaf& l : plan.leaves) {
          if (!l.informational && l.cand >= 0) {
            l.informational = true;
            l.note = "stated in a lead-in to alternatives; needs review";
          }
        }
        plan.groups.clear();
      }
    }
    EmitPlan(ci, plan, cands, blk.begin, has_children);
    if (out_->criteria[ci].predicates.empty() && out_->criteria[ci].children.empty() &&
        !has_children) {
      // Nothing to require ("None", "Not specified", filler only).
      Leaf l = Unknown("text.no_requirement", 0, static_cast<int32_t>(text.size()),
                       "states no requirement");
      l.informational = true;
      AddPredicate(ci, nullptr, l, blk.begin);
    }
    if (out_->criteria[ci].predicates.empty() && has_children) {
      Leaf l = Unknown(out_->criteria[ci].any_of ? "structure.any_of" : "structure.lead_in",
                       0, static_cast<int32_t>(text.size()),
                       out_->criteria[ci].any_of ? "holds when one of its children holds"
                                                 : "introduces the criteria below it");
      l.informational = true;
      AddPredicate(ci, nullptr, l, blk.begin);
    }
  }
  if (st.blocks.empty()) {
    bool blank = true;
    for (char ch : nt.text()) {
      if (!absl::ascii_isspace(static_cast<unsigned char>(ch))) blank = false;
    }
    if (!blank) out_->notes.push_back("eligibility text has headings only");
  }
  nt_ = nullptr;
}

// --- Structured fields ----------------------------------------------------

Predicate StructuredPredicate(Kind kind, std::string rule_id,
                              std::string_view field, std::string text) {
  Predicate p;
  p.kind = kind;
  p.rule_id = std::move(rule_id);
  p.evidence.source = EvidenceSource::kStructuredField;
  p.evidence.field = std::string(field);
  p.evidence.text = std::move(text);
  return p;
}

std::string Lower(std::string_view s) {
  return absl::AsciiStrToLower(std::string(s));
}

void StudyAssembler::AddConflicts() {
  CompiledStudy* cs = out_;
  const StructuredAges& ages = ages_;
  scoped_.resize(cs->predicates.size(), 0);
  cue_only_.resize(cs->predicates.size(), 0);
  // Several different text age statements (cohorts written without
  // headings: "age 1-9 ... age 10-30") are read like sub-populations: only
  // bounds outside the structured range conflict.
  std::vector<std::pair<int32_t, int32_t>> statements;  // evidence spans
  for (const Predicate& p : cs->predicates) {
    if (p.kind != Kind::kAge || p.evidence.source != EvidenceSource::kCriteriaText) continue;
    const std::pair<int32_t, int32_t> r{p.evidence.span.begin, p.evidence.span.end};
    if (std::find(statements.begin(), statements.end(), r) == statements.end()) {
      statements.push_back(r);
    }
  }
  const bool several = statements.size() > 1;
  for (size_t i = 0; i < cs->predicates.size(); ++i) {
    const Predicate& p = cs->predicates[i];
    if (p.evidence.source != EvidenceSource::kCriteriaText || cue_only_[i]) continue;
    const bool scoped = scoped_[i] != 0 || several;
    if (p.kind == Kind::kAge && p.criterion >= 0 && !p.relative_to_uln) {
      const bool incl = p.polarity == Polarity::kInclusion;
      // Eligible bounds stated by the text.
      std::optional<double> tmin = incl ? p.low : p.high;
      std::optional<double> tmax = incl ? p.high : p.low;
      if (p.low && p.high && !incl) continue;  // "excluded if 18 to 65"?
      auto conflict = [&](std::string_view which, double text_v,
                          const std::optional<double>& structured,
                          const std::string& structured_text,
                          std::string_view field) {
        Conflict c;
        c.kind = Kind::kAge;
        c.description = absl::StrCat(
            "text says ", common::ToAbsl(which), " age ", FormatNumber(text_v), " years; ",
            field == kMinAgeField ? "minimumAge" : "maximumAge", " is ",
            structured ? structured_text : std::string("not set"));
        c.structured = StructuredPredicate(Kind::kAge, "", field, structured_text).evidence;
        c.text = p.evidence;
        cs->conflicts.push_back(std::move(c));
      };
      const double tol = 0.05;
      if (tmin && ages.min_years) {
        const double s = *ages.min_years;
        const bool bad = scoped ? (*tmin + tol < s) : std::fabs(*tmin - s) > tol;
        if (bad) conflict("minimum", *tmin, ages.min_years, ages.min_text, kMinAgeField);
      }
      if (tmax && ages.max_years) {
        const double s = *ages.max_years;
        // "under 18" (< 18) next to maximumAge "17 Years" agrees.
        const bool exclusive = incl ? !p.high_inclusive : !p.low_inclusive;
        const double t_eff = exclusive ? *tmax - 1 : *tmax;
        const bool bad = scoped ? (t_eff > s + 1 + tol)
                                : (std::fabs(t_eff - s) > tol &&
                                   std::fabs(*tmax - s) > tol);
        if (bad) conflict("maximum", *tmax, ages.max_years, ages.max_text, kMaxAgeField);
      }
    }
    if (p.kind == Kind::kSex && sex_present_ && !scoped &&
        p.polarity == Polarity::kInclusion && p.sex != model::Sex::kAll &&
        p.sex != sex_) {
      Conflict c;
      c.kind = Kind::kSex;
      c.description = absl::StrCat("text restricts to ",
                                   common::ToAbsl(model::SexName(p.sex)),
                                   "; sex is ",
                                   common::ToAbsl(model::SexName(sex_)));
      c.structured = StructuredPredicate(Kind::kSex, "", kSexField,
                                         std::string(model::SexName(sex_))).evidence;
      c.text = p.evidence;
      cs->conflicts.push_back(std::move(c));
    }
  }
}

}  // namespace

Compiler::Compiler(std::shared_ptr<const RuleSet> rules, CompilerOptions options)
    : rules_(std::move(rules)), options_(options) {}

CompiledStudy Compiler::CompileText(std::string_view eligibility_criteria,
                                    const TextOptions& options,
                                    CompileCounters* counters) const {
  CompiledStudy cs;
  cs.compiler_version = std::string(kCompilerVersion);
  cs.rules_version = rules_->version();
  std::string_view text = eligibility_criteria;
  if (text.size() > options_.max_text_bytes) {
    size_t cut = text.rfind('\n', options_.max_text_bytes);
    if (cut == std::string_view::npos || cut == 0) cut = options_.max_text_bytes;
    text = text.substr(0, cut);
    cs.notes.push_back(absl::StrCat("eligibility text cut at ", cut, " of ",
                                    eligibility_criteria.size(), " bytes"));
  }
  StudyAssembler assembler(*rules_, &cs, counters);
  assembler.CompileText(text, options.default_section, nullptr, {}, false,
                        model::Sex::kAll);
  return cs;
}

CompiledStudy Compiler::Compile(const model::Study& study,
                                CompileCounters* counters) const {
  CompiledStudy cs;
  cs.nct_id = study.nct_id;
  cs.compiler_version = std::string(kCompilerVersion);
  cs.rules_version = rules_->version();
  const model::Eligibility& el = study.eligibility;

  StructuredAges ages;
  if (el.minimum_age) {
    ages.min_years = el.minimum_age->Years();
    ages.min_text = el.minimum_age->text;
    Predicate p = StructuredPredicate(Kind::kAge, "structured.minimum_age",
                                      kMinAgeField, el.minimum_age->text);
    p.quantity = "age";
    p.unit = "years";
    p.low = internal::RoundSignificant(el.minimum_age->Years());
    p.original_value = el.minimum_age->text;
    cs.predicates.push_back(std::move(p));
  }
  if (el.maximum_age) {
    ages.max_years = el.maximum_age->Years();
    ages.max_text = el.maximum_age->text;
    Predicate p = StructuredPredicate(Kind::kAge, "structured.maximum_age",
                                      kMaxAgeField, el.maximum_age->text);
    p.quantity = "age";
    p.unit = "years";
    p.high = internal::RoundSignificant(el.maximum_age->Years());
    p.original_value = el.maximum_age->text;
    p.note = "ages compare in completed units: a maximum of 65 Years admits "
             "a 65-year-old";
    cs.predicates.push_back(std::move(p));
  }
  if (el.sex_present && el.sex != model::Sex::kAll) {
    Predicate p = StructuredPredicate(Kind::kSex, "structured.sex", kSexField,
                                      std::string(model::SexName(el.sex)));
    p.sex = el.sex;
    if (el.gender_based.value_or(false) && !el.gender_description.empty()) {
      p.note = "gender-based eligibility: " + el.gender_description;
    }
    cs.predicates.push_back(std::move(p));
  }
  if (el.healthy_volunteers) {
    Predicate p = StructuredPredicate(
        Kind::kHealthyVolunteers, "structured.healthy_volunteers", kHealthyField,
        *el.healthy_volunteers ? "true" : "false");
    p.accepts_healthy_volunteers = *el.healthy_volunteers;
    cs.predicates.push_back(std::move(p));
  }

  // The study's conditions: one predicate "has one of these", linked to the
  // registry's MeSH terms and, through the synonym table, to MeSH ids.
  std::vector<StudyCondition> study_conditions;
  if (!study.conditions.empty()) {
    Predicate p = StructuredPredicate(Kind::kCondition, "structured.conditions",
                                      kConditionsField, "");
    // The record's ancestor ids once each, in first-seen order (a study can
    // list hundreds; every condition gets them all).
    std::vector<std::string> ancestors;
    {
      absl::flat_hash_set<absl::string_view> seen;
      for (const model::MeshTerm& a : study.condition_ancestors) {
        if (!a.id.empty() && seen.insert(common::ToAbsl(a.id)).second) {
          ancestors.push_back(a.id);
        }
      }
    }
    std::vector<std::string> mesh_lower;
    mesh_lower.reserve(study.condition_meshes.size());
    for (const model::MeshTerm& mt : study.condition_meshes) {
      mesh_lower.push_back(Lower(mt.term));
    }
    std::vector<bool> mesh_used(study.condition_meshes.size(), false);
    bool healthy_only = true;
    std::vector<RuleSet::Mention> mentions;
    for (const std::string& cond : study.conditions) {
      ConditionConcept cc;
      cc.text = cond;
      cc.normalized = Lower(cond);
      const std::string lower = Lower(cond);
      if (lower.find("healthy") == std::string::npos) healthy_only = false;
      // Synonym table: the whole condition names one concept.
      mentions.clear();
      rules_->FindMentions(cond, &mentions);
      if (mentions.size() == 1 && mentions[0].begin == 0 &&
          mentions[0].end == static_cast<int32_t>(cond.size())) {
        const ConceptDef& def = rules_->concepts()[mentions[0].concept_index];
        cc.normalized = def.name;
        cc.mesh_ids = def.mesh_ids;
        cc.ancestor_mesh_ids = def.ancestor_mesh_ids;
      }
      for (size_t m = 0; m < study.condition_meshes.size(); ++m) {
        const model::MeshTerm& mt = study.condition_meshes[m];
        if (mesh_lower[m] == lower ||
            std::find(cc.mesh_ids.begin(), cc.mesh_ids.end(), mt.id) != cc.mesh_ids.end()) {
          mesh_used[m] = true;
          if (std::find(cc.mesh_ids.begin(), cc.mesh_ids.end(), mt.id) == cc.mesh_ids.end()) {
            cc.mesh_ids.push_back(mt.id);
          }
        }
      }
      // `ancestors` has no repeats: only the concept's own ids can clash.
      const size_t own = cc.ancestor_mesh_ids.size();
      cc.ancestor_mesh_ids.reserve(own + ancestors.size());
      for (const std::string& a : ancestors) {
        const auto own_end = cc.ancestor_mesh_ids.begin() + static_cast<long>(own);
        if (std::find(cc.ancestor_mesh_ids.begin(), own_end, a) == own_end) {
          cc.ancestor_mesh_ids.push_back(a);
        }
      }
      if (!p.evidence.text.empty()) p.evidence.text += "; ";
      p.evidence.text += cond;
      if (lower.size() >= 4 && lower.find("healthy") == std::string::npos) {
        study_conditions.push_back(StudyCondition{lower, cc});
      }
      p.concepts.push_back(std::move(cc));
    }
    // MeSH terms of the record not tied to a listed condition.
    for (size_t m = 0; m < study.condition_meshes.size(); ++m) {
      if (mesh_used[m] || study.condition_meshes[m].id.empty()) continue;
      ConditionConcept cc;
      cc.text = study.condition_meshes[m].term;
      cc.normalized = mesh_lower[m];
      cc.mesh_ids.push_back(study.condition_meshes[m].id);
      cc.ancestor_mesh_ids = ancestors;
      p.concepts.push_back(std::move(cc));
    }
    if (el.healthy_volunteers.value_or(false) || healthy_only) {
      p.informational = true;
      p.note = "the study accepts healthy volunteers: its conditions describe "
               "the topic, not a requirement";
    } else {
      p.note = "the conditions the study is about; the patient should have "
               "one of them";
    }
    cs.predicates.push_back(std::move(p));
  }

  if (!el.present) {
    cs.notes.push_back("no eligibility module");
  } else if (el.criteria.empty()) {
    cs.notes.push_back("no eligibility criteria text");
  } else {
    std::string_view text = el.criteria;
    if (text.size() > options_.max_text_bytes) {
      size_t cut = text.rfind('\n', options_.max_text_bytes);
      if (cut == std::string_view::npos || cut == 0) cut = options_.max_text_bytes;
      text = text.substr(0, cut);
      cs.notes.push_back(absl::StrCat("eligibility text cut at ", cut, " of ",
                                      el.criteria.size(), " bytes"));
    }
    StudyAssembler assembler(*rules_, &cs, counters);
    assembler.CompileText(text, Section::kUnspecified, &study_conditions, ages,
                          el.sex_present, el.sex);
    assembler.AddConflicts();
  }
  return cs;
}

}  // namespace trialmatch::criteria
