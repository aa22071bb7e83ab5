#include "criteria/extract.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace trialmatch::criteria::internal {
namespace {

using Piece = re2::StringPiece;

bool Participated(const Piece& p) { return p.data() != nullptr; }

// The captures of one match, addressed by role.
class Captures {
 public:
  // `pieces` must outlive this object.
  Captures(const MatchRule& rule, const std::vector<Piece>& pieces)
      : rule_(rule), pieces_(pieces) {}

  // First participating group of `role`, or a null piece.
  Piece Get(CaptureRole role) const {
    for (int idx : rule_.groups[static_cast<int>(role)]) {
      if (Participated(pieces_[idx])) return pieces_[idx];
    }
    return Piece();
  }
  bool Has(CaptureRole role) const { return Participated(Get(role)); }
  const Piece& whole() const { return pieces_[0]; }

 private:
  const MatchRule& rule_;
  const std::vector<Piece>& pieces_;
};

std::string_view View(const Piece& p) {
  return std::string_view(p.data(), p.size());
}

int32_t Offset(std::string_view text, const Piece& p) {
  return static_cast<int32_t>(p.data() - text.data());
}

// A comparator capture may carry an echo: "greater than or equal to (>=)".
std::string_view StripEcho(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (!s.empty() && s.back() == ')') {
    const size_t open = s.rfind('(');
    if (open != std::string_view::npos && open > 0) s = s.substr(0, open);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

struct Resolved {
  double value = 0;
  std::string unit;
  bool uln = false;
};

// Converts a raw number with its written unit (or none) to the quantity's
// canonical unit; nullopt when the unit is unknown for the quantity, no unit
// can be assumed, or the result is implausible.
std::optional<Resolved> Resolve(double raw, std::string_view unit_text,
                                bool uln, const QuantityDef& q) {
  if (uln) {
    if (q.uln_max <= 0 || raw <= 0 || raw > q.uln_max) return std::nullopt;
    return Resolved{raw, "xULN", true};
  }
  const UnitDef* unit = nullptr;
  if (!unit_text.empty()) {
    for (const UnitDef& u : q.units) {
      if (RE2::FullMatch(unit_text, *u.re)) {
        unit = &u;
        break;
      }
    }
  } else {
    for (const UnitDef& u : q.units) {
      if (u.assume_max > 0 && raw >= u.assume_min && raw <= u.assume_max) {
        unit = &u;
        break;
      }
    }
  }
  if (unit == nullptr) return std::nullopt;
  const double v = RoundSignificant(raw * unit->factor + unit->offset);
  if (v < q.min || v > q.max) return std::nullopt;
  return Resolved{v, q.unit, false};
}

// "100.000": digits in groups of three after dots, the way European texts
// write thousands.
bool DotThousands(std::string_view s) {
  const size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 3) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool at_dot = i >= dot && (i - dot) % 4 == 0;
    if (at_dot ? s[i] != '.' : !absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return (s.size() - dot) % 4 == 0;
}

// Resolve() of a number as written. When the decimal reading is implausible
// for the quantity and the number is written like European thousands
// ("thrombocytopenia < 100.000/uL"), the dots are read as thousands
// separators; a plausible decimal reading always wins ("1.500 mg/dL").
std::optional<Resolved> ResolveWritten(std::string_view number, std::string_view unit_text,
                                       bool uln, const QuantityDef& q) {
  const std::optional<double> raw = ParseNumber(number);
  if (!raw) return std::nullopt;
  std::optional<Resolved> r = Resolve(*raw, unit_text, uln, q);
  if (r || uln || !DotThousands(number)) return r;
  std::string digits;
  for (char ch : number) {
    if (ch != '.') digits.push_back(ch);
  }
  const std::optional<double> whole = ParseNumber(digits);
  if (!whole) return std::nullopt;
  return Resolve(*whole, unit_text, uln, q);
}

// All integers / decimals in `s` ("0, 1 or 2").
std::vector<double> NumbersIn(std::string_view s) {
  std::vector<double> out;
  size_t i = 0;
  while (i < s.size()) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) {
      size_t j = i;
      while (j < s.size() &&
             (absl::ascii_isdigit(static_cast<unsigned char>(s[j])) ||
              (s[j] == '.' && j + 1 < s.size() &&
               absl::ascii_isdigit(static_cast<unsigned char>(s[j + 1]))))) {
        ++j;
      }
      if (auto v = ParseNumber(s.substr(i, j - i))) out.push_back(*v);
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

bool ApplyOp(Comparison op, double v, Candidate* c) {
  switch (op) {
    case Comparison::kGe:
      c->low = v;
      c->low_inclusive = true;
      return true;
    case Comparison::kGt:
      c->low = v;
      c->low_inclusive = false;
      return true;
    case Comparison::kLe:
      c->high = v;
      c->high_inclusive = true;
      return true;
    case Comparison::kLt:
      c->high = v;
      c->high_inclusive = false;
      return true;
  }
  return false;
}

// Builds the numeric candidate of one match for quantity slot `slot` of the
// rule (`quantity` is the quantity index). Returns false when the match does
// not yield a plausible bound.
bool BuildNumeric(std::string_view text, const RuleSet& rules,
                  const MatchRule& rule, const Captures& cap, int quantity,
                  int slot, Candidate* c) {
  const QuantityDef& q = rules.quantities()[quantity];
  c->quantity_index = quantity;
  c->quantity = q.name;
  c->kind = q.kind;
  const bool uln = cap.Has(CaptureRole::kUln);
  const Piece unit = cap.Get(CaptureRole::kUnit);
  const std::string_view unit_text =
      Participated(unit) ? View(unit) : std::string_view();

  int32_t vbegin = INT32_MAX;
  int32_t vend = -1;
  auto note_span = [&](const Piece& p) {
    if (!Participated(p)) return;
    vbegin = std::min(vbegin, Offset(text, p));
    vend = std::max(vend, Offset(text, p) + static_cast<int32_t>(p.size()));
  };

  const Piece low = cap.Get(CaptureRole::kLow);
  const Piece high = cap.Get(CaptureRole::kHigh);
  const Piece list = cap.Get(CaptureRole::kList);
  const Piece value =
      slot == 1 && cap.Has(CaptureRole::kValueB) ? cap.Get(CaptureRole::kValueB)
                                                 : cap.Get(CaptureRole::kValue);

  if (Participated(low) || Participated(high)) {
    const Piece low_unit = cap.Get(CaptureRole::kLowUnit);
    std::string_view lu = Participated(low_unit) ? View(low_unit) : unit_text;
    std::string_view hu = unit_text.empty() ? lu : unit_text;
    if (Participated(low)) {
      auto r = ResolveWritten(View(low), lu, uln && !Participated(low_unit), q);
      if (!r) return false;
      c->low = r->value;
      c->unit = r->unit;
      c->relative_to_uln = r->uln;
      c->low_inclusive = true;
      if (cap.Has(CaptureRole::kLowCmp)) {
        auto op = rules.ClassifyComparator(StripEcho(View(cap.Get(CaptureRole::kLowCmp))));
        if (!op || (*op != Comparison::kLe && *op != Comparison::kLt)) return false;
        c->low_inclusive = *op == Comparison::kLe;
      }
      note_span(low);
      note_span(low_unit);
    }
    if (Participated(high)) {
      auto r = ResolveWritten(View(high), hu, uln, q);
      if (!r) return false;
      if (c->low && r->uln != c->relative_to_uln) return false;
      c->high = r->value;
      c->unit = r->unit;
      c->relative_to_uln = r->uln;
      c->high_inclusive = true;
      if (cap.Has(CaptureRole::kHighCmp)) {
        auto op = rules.ClassifyComparator(StripEcho(View(cap.Get(CaptureRole::kHighCmp))));
        if (!op || (*op != Comparison::kLe && *op != Comparison::kLt)) return false;
        c->high_inclusive = *op == Comparison::kLe;
      }
      note_span(high);
    }
    if (c->low && c->high && *c->low > *c->high) return false;
  } else if (Participated(list)) {
    const std::vector<double> nums = NumbersIn(View(list));
    if (nums.empty()) return false;
    const auto [mn, mx] = std::minmax_element(nums.begin(), nums.end());
    auto rl = Resolve(*mn, unit_text, uln, q);
    auto rh = Resolve(*mx, unit_text, uln, q);
    if (!rl || !rh) return false;
    c->low = rl->value;
    c->high = rh->value;
    c->unit = rl->unit;
    c->relative_to_uln = rl->uln;
    note_span(list);
  } else {
    double raw = 1;  // "<= ULN", "within normal limits"
    if (Participated(value)) {
      auto parsed = ParseNumber(View(value));
      if (!parsed) return false;
      raw = *parsed;
      note_span(value);
    } else if (!uln) {
      return false;
    }
    // A number with a unit this quantity does not know is not read in an
    // assumed unit ("weight loss > 10%").
    if (Participated(value) && !Participated(unit) && !uln) {
      const size_t after = static_cast<size_t>(Offset(text, value)) + value.size();
      if (rules.UnitAt(text, after)) return false;
    }
    std::optional<Comparison> op = rule.default_op;
    if (cap.Has(CaptureRole::kCmp)) {
      op = rules.ClassifyComparator(StripEcho(View(cap.Get(CaptureRole::kCmp))));
    }
    if (!op) return false;
    auto r = Participated(value) ? ResolveWritten(View(value), unit_text, uln, q)
                                 : Resolve(raw, unit_text, uln, q);
    if (!r) return false;
    c->unit = r->unit;
    c->relative_to_uln = r->uln;
    ApplyOp(*op, r->value, c);
  }
  note_span(unit);
  note_span(cap.Get(CaptureRole::kUln));
  if (vend > vbegin) {
    c->original_value = std::string(text.substr(vbegin, vend - vbegin));
  }
  return true;
}

bool Overlaps(int32_t a0, int32_t a1, int32_t b0, int32_t b1) {
  return a0 < b1 && b0 < a1;
}

bool VetoedBy(std::string_view text, const MatchRule& rule, int32_t begin,
              int32_t end) {
  for (const auto& veto : rule.vetoes) {
    Piece m;
    size_t pos = 0;
    while (pos <= text.size() &&
           veto->Match(text, pos, text.size(), RE2::UNANCHORED, &m, 1)) {
      const int32_t b = Offset(text, m);
      const int32_t e = b + static_cast<int32_t>(m.size());
      if (Overlaps(b, std::max(e, b + 1), begin, end)) return true;
      pos = static_cast<size_t>(e > b ? e : b + 1);
    }
  }
  return false;
}

// A comparator symbol right after "or" / "and" starts another bound, not the
// named one's: "BP > 160 mm Hg systolic or > 95 mm Hg diastolic" does not
// give "systolic > 95".
bool SymbolAfterConnector(std::string_view text, const Piece& cmp) {
  if (!Participated(cmp) || cmp.empty()) return false;
  const char first = cmp[0];
  if (first != '<' && first != '>' && first != '=') return false;
  size_t k = static_cast<size_t>(cmp.data() - text.data());
  while (k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\t')) --k;
  size_t w = k;
  while (w > 0 && absl::ascii_isalpha(static_cast<unsigned char>(text[w - 1]))) --w;
  if (w > 0 && (absl::ascii_isalnum(static_cast<unsigned char>(text[w - 1])) ||
                text[w - 1] == '/')) {
    return false;
  }
  const std::string_view word = text.substr(w, k - w);
  return absl::EqualsIgnoreCase(common::ToAbsl(word), "or") ||
         absl::EqualsIgnoreCase(common::ToAbsl(word), "and");
}

// Runs one rule over `text`: unanchored from left to right, or (when
// `starts` is given) anchored at each of those positions, where the name
// match at starts[i] ends at name_ends[i].
void RunRule(std::string_view text, const RuleSet& rules, int rule_index,
             const std::vector<int32_t>* starts,
             const std::vector<int32_t>* name_ends, std::vector<Piece>* scratch,
             std::vector<Candidate>* out, CompileCounters* counters) {
  const MatchRule& rule = rules.rules()[rule_index];
  const int ngroups = rule.re->NumberOfCapturingGroups() + 1;
  // Sized at the first match (most runs find none); the caller's buffer
  // keeps its capacity across rules.
  std::vector<Piece>& pieces = *scratch;
  size_t pos = 0;
  size_t next_start = 0;
  int32_t covered_until = -1;
  while (pos <= text.size()) {
    if (counters != nullptr) ++counters->rule_runs;
    // The extent first (DFA only), then the captures on exactly that extent
    // with the whole text as context: the same submatches, but RE2 can use
    // its bit-state engine on the short extent where a capture search over
    // the rest of a long criterion falls back to the much slower NFA.
    Piece whole;
    int32_t name_end = -1;
    if (starts != nullptr) {
      if (next_start >= starts->size()) break;
      name_end = (*name_ends)[next_start];
      const auto at = static_cast<size_t>((*starts)[next_start++]);
      if (static_cast<int32_t>(at) < covered_until) continue;
      if (!rule.re->Match(text, at, text.size(), RE2::ANCHOR_START, &whole, 1)) {
        continue;
      }
    } else if (!rule.re->Match(text, pos, text.size(), RE2::UNANCHORED, &whole,
                               1)) {
      break;
    }
    const int32_t begin = Offset(text, whole);
    const int32_t end = begin + static_cast<int32_t>(whole.size());
    pos = static_cast<size_t>(end > begin ? end : begin + 1);
    covered_until = end;
    if (end == begin) continue;
    if (VetoedBy(text, rule, begin, end)) continue;
    pieces.resize(static_cast<size_t>(ngroups));
    // The groups are all after the name: read them with the rest of the
    // pattern after the name's own match when that parse exists (see
    // MatchRule::after_name), else with the whole rule.
    if (ngroups > 1 &&
        !(rule.after_name != nullptr && name_end >= begin && name_end <= end &&
          rule.after_name->Match(text, static_cast<size_t>(name_end),
                                 static_cast<size_t>(end), RE2::ANCHOR_BOTH,
                                 pieces.data(), ngroups)) &&
        !rule.re->Match(text, static_cast<size_t>(begin), static_cast<size_t>(end),
                        RE2::ANCHOR_BOTH, pieces.data(), ngroups)) {
      continue;
    }
    pieces[0] = whole;
    Captures cap(rule, pieces);
    if (rule.anchored_at_name && SymbolAfterConnector(text, cap.Get(CaptureRole::kCmp))) {
      continue;
    }
    Candidate base;
    base.begin = begin;
    base.end = end;
    base.rule = rule_index;
    base.family = rule.family;
    base.rule_id = rule.id;
    base.priority = rule.priority;
    base.kind = rule.kind;
    base.sex = rule.sex;
    base.rule_negated = rule.negated;
    base.informational = rule.informational;
    base.cue_only = rule.cue_only;
    base.covers_criterion = rule.covers_criterion;
    base.subject_position = rule.subject_position;
    base.note = rule.note;
    base.rule_group_size = static_cast<int>(rule.quantities.size());
    if (rule.quantities.empty()) {
      out->push_back(std::move(base));
      continue;
    }
    for (size_t slot = 0; slot < rule.quantities.size(); ++slot) {
      const bool last = slot + 1 == rule.quantities.size();
      Candidate c = last ? std::move(base) : base;
      if (BuildNumeric(text, rules, rule, cap, rule.quantities[slot],
                       static_cast<int>(slot), &c)) {
        out->push_back(std::move(c));
      }
    }
  }
}

bool IsNumericKind(Kind k) {
  return k == Kind::kAge || k == Kind::kLab || k == Kind::kPerformanceStatus;
}

bool SameDirection(const Candidate& a, const Candidate& b) {
  return a.low.has_value() == b.low.has_value() &&
         a.high.has_value() == b.high.has_value();
}

bool Near(double a, double b) {
  return std::fabs(a - b) <= 0.03 * std::max(std::fabs(a), std::fabs(b)) + 1e-9;
}

// Drops matches contained in longer matches of the same kind, keeps the
// higher priority on equal spans, and drops condition mentions inside other
// candidates.
void ResolveOverlaps(std::vector<Candidate>* cands) {
  std::vector<Candidate>& v = *cands;
  if (v.size() < 2) return;
  // Order by start, longer first (indexes: candidates are large to move).
  std::vector<int> order(v.size());
  for (size_t i = 0; i < v.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
    if (v[x].begin != v[y].begin) return v[x].begin < v[y].begin;
    return (v[x].end - v[x].begin) > (v[y].end - v[y].begin);
  });
  std::vector<bool> drop(v.size(), false);
  for (size_t oi = 0; oi < order.size(); ++oi) {
    for (size_t oj = 0; oj < order.size(); ++oj) {
      const int i = order[oi];
      const int j = order[oj];
      if (i == j || drop[i] || drop[j]) continue;
      const Candidate& a = v[i];
      const Candidate& b = v[j];
      if (!Overlaps(a.begin, a.end, b.begin, b.end)) continue;
      const bool b_in_a = b.begin >= a.begin && b.end <= a.end;
      const bool same_span = a.begin == b.begin && a.end == b.end;
      const bool later = oj > oi;
      if (b.kind == Kind::kCondition && a.kind != Kind::kCondition && b_in_a) {
        drop[j] = true;
        continue;
      }
      if (a.kind == Kind::kCondition && b.kind == Kind::kCondition) {
        if (b_in_a && !same_span) drop[j] = true;
        if (same_span && later) drop[j] = true;
        continue;
      }
      if (a.kind != b.kind) continue;
      if (same_span) {
        if (b.priority < a.priority) {
          drop[j] = true;
        } else if (b.priority == a.priority && later &&
                   (b.quantity == a.quantity || !IsNumericKind(a.kind))) {
          drop[j] = true;
        }
        continue;
      }
      if (b_in_a) {
        // Two measurements ending on the same bound: the name nearer the
        // comparator owns it ("creatinine and cystatin C-based eGFR >= 15"
        // is eGFR's), unless the outer match names several analytes at once
        // ("AST and ALT <= 2.5 x ULN").
        const bool inner_wins =
            IsNumericKind(a.kind) && a.end == b.end && b.begin > a.begin &&
            a.rule >= 0 && b.rule >= 0 && a.rule_group_size == 1 &&
            a.quantity != b.quantity;
        if (inner_wins) {
          drop[i] = true;
        } else {
          drop[j] = true;  // the longer match reads more of the text
        }
        continue;
      }
      // Partial overlap of the same kind: keep the longer one.
      if ((a.end - a.begin) >= (b.end - b.begin)) {
        drop[j] = true;
      } else {
        drop[i] = true;
      }
    }
  }
  // Nothing dropped and already in order (the usual case): keep `v` as is
  // (candidates are large to move).
  bool identity = true;
  for (size_t k = 0; k < order.size() && identity; ++k) {
    identity = order[k] == static_cast<int>(k) && !drop[k];
  }
  if (identity) return;
  std::vector<Candidate> kept;
  kept.reserve(v.size());
  for (int i : order) {
    if (!drop[i]) kept.push_back(std::move(v[i]));
  }
  v = std::move(kept);
}

// A method named between two coordinated analytes, then the connector:
// "creatinine clearance [as per the Schwartz formula or] radioisotope GFR
// >= 60". `gap` is lower-case: an introducer ("per", "as per", "using",
// "by", "via", "according to", "calculated/measured/estimated by|per|
// using|with"), one to four words of letters, and "or" / "and" / "and/or".
bool MethodThenConnector(std::string_view gap) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < gap.size()) {
    while (i < gap.size() && (gap[i] == ' ' || gap[i] == '\t' || gap[i] == ',')) ++i;
    size_t j = i;
    while (j < gap.size() && gap[j] != ' ' && gap[j] != '\t' && gap[j] != ',') ++j;
    if (j > i) words.push_back(gap.substr(i, j - i));
    i = j;
  }
  if (words.size() < 3) return false;
  const std::string_view last = words.back();
  if (last != "or" && last != "and" && last != "and/or") return false;
  size_t k = 0;
  if (words[0] == "per" || words[0] == "using" || words[0] == "by" || words[0] == "via") {
    k = 1;
  } else if ((words[0] == "as" && words[1] == "per") ||
             (words[0] == "according" && words[1] == "to") ||
             ((words[0] == "calculated" || words[0] == "measured" || words[0] == "estimated") &&
              (words[1] == "by" || words[1] == "per" || words[1] == "using" ||
               words[1] == "with"))) {
    k = 2;
  } else {
    return false;
  }
  const size_t described = words.size() - 1 - k;
  if (described < 1 || described > 4) return false;
  for (size_t w = k; w + 1 < words.size(); ++w) {
    for (char ch : words[w]) {
      if (!absl::ascii_isalpha(static_cast<unsigned char>(ch)) && ch != '-' && ch != '\'' &&
          ch != '.') {
        return false;
      }
    }
  }
  return true;
}

bool IsWordChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         (static_cast<unsigned char>(c) >= 0x80);
}

}  // namespace

std::optional<double> ParseNumber(std::string_view s) {
  if (s.empty() || s.size() > 40) return std::nullopt;
  std::string buf;
  const size_t comma = s.find(',');
  if (comma != std::string_view::npos) {
    // Thousands separators when every comma group has exactly 3 digits.
    bool thousands = true;
    size_t i = comma;
    while (i != std::string_view::npos) {
      size_t j = i + 1;
      size_t digits = 0;
      while (j < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[j]))) {
        ++j;
        ++digits;
      }
      if (digits != 3) thousands = false;
      i = s.find(',', i + 1);
    }
    for (char c : s) {
      if (c == ',') {
        if (!thousands) buf.push_back('.');
      } else {
        buf.push_back(c);
      }
    }
  } else {
    buf.assign(s.data(), s.size());
  }
  int dots = 0;
  for (char c : buf) {
    if (c == '.') {
      ++dots;
    } else if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  if (dots > 1 || buf.front() == '.' || buf.back() == '.') return std::nullopt;
  return std::strtod(buf.c_str(), nullptr);
}

double RoundSignificant(double v) {
  if (v == 0 || !std::isfinite(v)) return v;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return std::strtod(buf, nullptr);
}

void ExtractCandidates(std::string_view text, const RuleSet& rules,
                       const RuleSet::ScanResult& scan,
                       const ExtractOptions& options,
                       std::vector<Candidate>* out,
                       CompileCounters* counters) {
  const std::vector<int>& families = scan.families;
  const RuleSection here =
      options.exclusion_section ? RuleSection::kExclusion : RuleSection::kInclusion;

  std::vector<Candidate> cands;
  std::vector<Piece> rule_pieces;  // capture buffer shared by the rule runs
  // Where each triggered measurement's name occurs (its forms run there).
  std::vector<std::pair<int, std::vector<int32_t>>> name_starts;
  // The end of the name match at each of those starts (same index): an
  // anchored match at a start found by the unanchored scan ends there too.
  std::vector<std::vector<int32_t>> name_ends;
  for (int f : families) {
    const RuleFamily& fam = rules.families()[f];
    const std::vector<int32_t>* starts = nullptr;
    if (fam.name_re != nullptr) {
      std::vector<int32_t> found;
      std::vector<int32_t> ends;
      Piece m;
      size_t pos = 0;
      while (pos <= text.size() &&
             fam.name_re->Match(text, pos, text.size(), RE2::UNANCHORED, &m, 1)) {
        if (counters != nullptr) ++counters->rule_runs;
        const int32_t b = Offset(text, m);
        const int32_t e = b + static_cast<int32_t>(m.size());
        if (e > b) {
          found.push_back(b);
          ends.push_back(e);
        }
        pos = static_cast<size_t>(e > b ? e : b + 1);
      }
      name_starts.emplace_back(f, std::move(found));
      name_ends.push_back(std::move(ends));
      starts = &name_starts.back().second;
    }
    for (int r : fam.rules) {
      const MatchRule& rule = rules.rules()[r];
      if (rule.section != RuleSection::kAny && rule.section != here) continue;
      RunRule(text, rules, r, rule.anchored_at_name ? starts : nullptr,
              starts != nullptr ? &name_ends.back() : nullptr, &rule_pieces,
              &cands, counters);
    }
  }

  // Condition mentions: the synonym table, then the study's own conditions.
  std::vector<RuleSet::Mention> mentions;
  if (scan.mentions) {
    rules.FindMentions(text, &mentions);
    if (counters != nullptr) ++counters->phrase_scans;
  }
  for (const RuleSet::Mention& m : mentions) {
    const ConceptDef& def = rules.concepts()[m.concept_index];
    Candidate c;
    c.begin = m.begin;
    c.end = m.end;
    c.kind = Kind::kCondition;
    c.rule_id = def.id;
    c.from_dictionary = true;
    c.subject_position = true;
    c.concept_value.text = std::string(text.substr(m.begin, m.end - m.begin));
    c.concept_value.normalized = def.name;
    c.concept_value.mesh_ids = def.mesh_ids;
    c.concept_value.ancestor_mesh_ids = def.ancestor_mesh_ids;
    cands.push_back(std::move(c));
  }
  if (options.study_conditions != nullptr && !options.study_conditions->empty()) {
    std::string lowered;
    std::string_view lower = options.lower;
    if (lower.size() != text.size()) {
      lowered = absl::AsciiStrToLower(common::ToAbsl(text));
      lower = lowered;
    }
    for (const StudyCondition& sc : *options.study_conditions) {
      size_t pos = 0;
      while ((pos = lower.find(sc.lower, pos)) != std::string_view::npos) {
        const size_t end = pos + sc.lower.size();
        const bool left_ok = pos == 0 || !IsWordChar(lower[pos - 1]);
        const bool right_ok = end >= lower.size() || !IsWordChar(lower[end]);
        if (left_ok && right_ok) {
          Candidate c;
          c.begin = static_cast<int32_t>(pos);
          c.end = static_cast<int32_t>(end);
          c.kind = Kind::kCondition;
          c.rule_id = "condition.study_condition";
          c.subject_position = true;
          c.concept_value = sc.concept_value;
          c.concept_value.text = std::string(text.substr(pos, end - pos));
          cands.push_back(std::move(c));
        }
        pos = end;
      }
    }
  }

  ResolveOverlaps(&cands);

  // "human immunodeficiency virus (HIV)": one mention, not two.
  for (size_t i = 0; i + 1 < cands.size(); ++i) {
    Candidate& a = cands[i];
    Candidate& b = cands[i + 1];
    if (a.kind != Kind::kCondition || b.kind != Kind::kCondition) continue;
    if (a.concept_value.normalized != b.concept_value.normalized) continue;
    const std::string_view gap = text.substr(a.end, std::max(0, b.begin - a.end));
    if (gap.find_first_not_of(" (") == std::string_view::npos &&
        gap.find('(') != std::string_view::npos && b.end < static_cast<int32_t>(text.size()) &&
        text[b.end] == ')') {
      a.end = b.end + 1;
      cands.erase(cands.begin() + static_cast<long>(i) + 1);
      --i;
    }
  }

  // Bounds written without a name continue the previous measurement:
  // "AST/ALT <= 2.5 x ULN (<= 5 x ULN for liver metastases)",
  // "HbA1c >= 7.0% and <= 10.5%", "Hb >= 9 g/dL or >= 5.6 mmol/L".
  if (const MatchRule* nb = rules.nameless_bound(); nb != nullptr) {
    bool any_measurement = false;
    for (const Candidate& c : cands) {
      any_measurement = any_measurement || (c.rule >= 0 && rules.rules()[c.rule].from_measurement);
    }
    if (any_measurement) {
      const int ngroups = nb->re->NumberOfCapturingGroups() + 1;
      std::vector<Piece> pieces(ngroups);
      std::vector<Candidate> extra;
      size_t pos = 0;
      while (pos <= text.size()) {
        if (counters != nullptr) ++counters->rule_runs;
        // Bounds first (DFA only); captures only for a bound not already
        // read as part of a named measurement.
        Piece whole;
        if (!nb->re->Match(text, pos, text.size(), RE2::UNANCHORED, &whole, 1)) {
          break;
        }
        const int32_t begin = Offset(text, whole);
        const int32_t end = begin + static_cast<int32_t>(whole.size());
        pos = static_cast<size_t>(end > begin ? end : begin + 1);
        bool inside = false;
        for (const Candidate& c : cands) {
          inside = inside || (Overlaps(c.begin, c.end, begin, end) && IsNumericKind(c.kind));
        }
        if (inside || end == begin ||
            !nb->re->Match(text, static_cast<size_t>(begin), static_cast<size_t>(end),
                           RE2::ANCHOR_BOTH, pieces.data(), ngroups)) {
          continue;
        }
        bool covered = false;
        const Candidate* prev = nullptr;
        for (const Candidate& c : cands) {
          if (Overlaps(c.begin, c.end, begin, end) && IsNumericKind(c.kind)) {
            covered = true;
          }
          if (c.end <= begin && c.rule >= 0 && IsNumericKind(c.kind) &&
              rules.rules()[c.rule].from_measurement &&
              (prev == nullptr || c.end >= prev->end)) {
            prev = &c;
          }
        }
        if (covered || prev == nullptr || begin - prev->end > 160) continue;
        const std::string_view between = text.substr(prev->end, begin - prev->end);
        if (between.find(';') != std::string_view::npos) continue;
        // Only right after a connector: "... or >= 5.6 mmol/L", "(<= 5 x
        // ULN", "and <= 10.5%". After another name ("prothrombin time (PT)
        // <= 1.5 x ULN") the bound is that (unknown) analyte's.
        {
          std::string_view before = between;
          while (!before.empty() && (before.back() == ' ' || before.back() == '\t')) {
            before.remove_suffix(1);
          }
          bool connector = before.empty() || before.back() == '(' ||
                           before.back() == ',' || before.back() == '[';
          if (!before.empty() && before.back() == '(') {
            // "neutropenia (< 1,000/mm3), or lymphopenia (< 500/mm3)": a
            // word right before the parenthesis names what it bounds.
            std::string_view w = before.substr(0, before.size() - 1);
            while (!w.empty() && (w.back() == ' ' || w.back() == '\t')) w.remove_suffix(1);
            size_t k = w.size();
            while (k > 0 && absl::ascii_isalpha(static_cast<unsigned char>(w[k - 1]))) --k;
            if (k < w.size()) {
              const std::string word = absl::AsciiStrToLower(std::string(w.substr(k)));
              if (word != "or" && word != "and" && word != "nor" && !rules.IsStopword(word) &&
                  !rules.IsQualifier(word)) {
                connector = false;
              }
            }
          }
          if (!connector) {
            size_t w = before.size();
            while (w > 0 && absl::ascii_isalpha(static_cast<unsigned char>(before[w - 1]))) --w;
            const std::string word = absl::AsciiStrToLower(std::string(before.substr(w)));
            connector = word == "or" || word == "and" || word == "nor" ||
                        word == "but" || word == "to" || word == "otherwise" ||
                        word == "else";
          }
          if (!connector) continue;
        }
        Captures cap(*nb, pieces);
        const MatchRule& prev_rule = rules.rules()[prev->rule];
        for (int q : prev_rule.quantities) {
          Candidate c;
          c.begin = begin;
          c.end = end;
          c.rule = -1;
          c.family = prev->family;
          c.rule_id = rules.families()[prev->family].id + ".continued";
          c.nameless = true;
          if (!BuildNumeric(text, rules, *nb, cap, q, 0, &c)) continue;
          // Same quantity as the previous bound: merge or restate.
          const Candidate* same = nullptr;
          for (const Candidate& p : cands) {
            if (p.family == prev->family && p.quantity_index == q &&
                p.end == prev->end) {
              same = &p;
            }
          }
          if (same != nullptr && same->relative_to_uln == c.relative_to_uln) {
            const bool restated =
                SameDirection(*same, c) &&
                ((c.low && same->low && Near(*c.low, *same->low)) ||
                 (c.high && same->high && Near(*c.high, *same->high)));
            if (restated) {
              c.absorbed = true;
              c.rule_id = rules.families()[prev->family].id + ".restated";
            } else if (!SameDirection(*same, c) &&
                       (!same->low || !same->high)) {
              std::string_view gap = between;
              while (!gap.empty() && (gap.front() == ' ' || gap.front() == ',')) gap.remove_prefix(1);
              while (!gap.empty() && gap.back() == ' ') gap.remove_suffix(1);
              const std::string g = absl::AsciiStrToLower(std::string(gap));
              if (g == "and" || g == "-" || g == "to" || g == "but" || g.empty()) {
                c.note = "upper/lower bound of the range stated before it";
                c.rule_id = rules.families()[prev->family].id + ".range_end";
              }
            }
          }
          extra.push_back(std::move(c));
        }
      }
      // Fold range ends into their first bound.
      for (Candidate& e : extra) {
        if (e.rule_id.size() > 10 &&
            e.rule_id.compare(e.rule_id.size() - 10, 10, ".range_end") == 0) {
          for (Candidate& p : cands) {
            if (p.family == e.family && p.quantity_index == e.quantity_index &&
                !p.nameless && p.end <= e.begin) {
              if (e.low && !p.low) {
                p.low = e.low;
                p.low_inclusive = e.low_inclusive;
              }
              if (e.high && !p.high) {
                p.high = e.high;
                p.high_inclusive = e.high_inclusive;
              }
              p.original_value += " .. " + e.original_value;
              e.absorbed = true;
            }
          }
        }
      }
      for (Candidate& e : extra) cands.push_back(std::move(e));
    }
  }

  // Coordinated names: "bilirubin and creatinine <= 1.5 x ULN".
  std::vector<Candidate> coordinated;
  std::vector<std::pair<size_t, int32_t>> extended;  // (candidate, new begin)
  for (size_t fi = 0; fi < name_starts.size(); ++fi) {
    const int f = name_starts[fi].first;
    const std::vector<int32_t>& starts = name_starts[fi].second;
    const RuleFamily& fam = rules.families()[f];
    for (size_t si = 0; si < starts.size(); ++si) {
      const int32_t b = starts[si];
      const int32_t e = name_ends[fi][si];
      bool inside = false;
      for (const Candidate& c : cands) {
        if (Overlaps(c.begin, c.end, b, e)) inside = true;
      }
      if (inside) continue;
      // The next measurement bound must follow after a coordinator.
      const Candidate* next = nullptr;
      for (const Candidate& c : cands) {
        if (c.begin >= e && c.rule >= 0 && IsNumericKind(c.kind) &&
            rules.rules()[c.rule].from_measurement &&
            (next == nullptr || c.begin < next->begin)) {
          next = &c;
        }
      }
      if (next == nullptr) continue;
      std::string gap(text.substr(e, next->begin - e));
      // Drop one parenthetical abbreviation: "ALT (SGPT) and ...".
      const size_t open = gap.find('(');
      const size_t close = gap.find(')');
      if (open != std::string::npos && close != std::string::npos && close > open) {
        gap.erase(open, close - open + 1);
      }
      gap = absl::AsciiStrToLower(gap);
      std::string squeezed;
      for (char ch : gap) {
        if (ch != ' ') squeezed.push_back(ch);
      }
      if (squeezed != "and" && squeezed != "or" && squeezed != "/" &&
          squeezed != "," && squeezed != "&" && squeezed != "and/or" &&
          !MethodThenConnector(gap)) {
        continue;
      }
      const MatchRule& first = rules.rules()[fam.rules.front()];
      for (int q : first.quantities) {
        const QuantityDef& qd = rules.quantities()[q];
        if (qd.kind != next->kind) continue;
        // Two names of one analyte ("ALT/SGPT <= 5 x ULN") are one bound,
        // whose evidence starts at the first name.
        if (q == next->quantity_index) {
          extended.emplace_back(static_cast<size_t>(next - cands.data()), b);
          continue;
        }
        Candidate c = *next;
        c.begin = b;
        c.rule = fam.rules.front();
        c.family = f;
        c.rule_id = fam.id + ".coordinated";
        c.quantity_index = q;
        c.quantity = qd.name;
        if (next->relative_to_uln) {
          if (qd.uln_max <= 0) continue;
        } else if (qd.unit != rules.quantities()[next->quantity_index].unit) {
          // "Creatinine clearance or GFR >= 50 mL/min/1.73 m2": the bound's
          // unit read as a unit of this analyte, converted, and plausible.
          const UnitDef* u = nullptr;
          for (const UnitDef& ud : qd.units) {
            if (RE2::FullMatch(next->unit, *ud.re)) {
              u = &ud;
              break;
            }
          }
          if (u == nullptr) continue;
          bool plausible = true;
          for (std::optional<double>* v : {&c.low, &c.high}) {
            if (!v->has_value()) continue;
            **v = RoundSignificant(**v * u->factor + u->offset);
            plausible = plausible && **v >= qd.min && **v <= qd.max;
          }
          if (!plausible) continue;
          c.unit = qd.unit;
        }
        coordinated.push_back(std::move(c));
      }
    }
  }
  for (const auto& [i, b] : extended) cands[i].begin = std::min(cands[i].begin, b);
  for (Candidate& c : coordinated) cands.push_back(std::move(c));

  auto by_begin = [](const Candidate& a, const Candidate& b) { return a.begin < b.begin; };
  // A stable sort leaves sorted input as it is: skip the moves then.
  if (!std::is_sorted(cands.begin(), cands.end(), by_begin)) {
    std::stable_sort(cands.begin(), cands.end(), by_begin);
  }
  if (counters != nullptr) counters->candidates += static_cast<int64_t>(cands.size());
  if (out->empty()) {
    out->swap(cands);
  } else {
    for (Candidate& c : cands) out->push_back(std::move(c));
  }
}

}  // namespace trialmatch::criteria::internal
