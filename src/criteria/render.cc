#include "criteria/render.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/strings.h"
#include "criteria/json.h"

namespace trialmatch::criteria {
namespace {

constexpr std::string_view kAnsiOn = "\x1b[1;33m";
constexpr std::string_view kAnsiOff = "\x1b[0m";

std::string Number(double v) { return absl::StrFormat("%g", v); }

std::string Bounds(const Predicate& p) {
  const std::string unit = p.relative_to_uln ? " x ULN"
                           : p.unit.empty() || p.unit == "score" || p.unit == "ratio"
                               ? ""
                               : " " + p.unit;
  if (p.low && p.high) {
    if (*p.low == *p.high && p.low_inclusive && p.high_inclusive) {
      return absl::StrCat(p.quantity, " = ", Number(*p.low), unit);
    }
    return absl::StrCat(p.quantity, " in ", p.low_inclusive ? "[" : "(",
                        Number(*p.low), ", ", Number(*p.high),
                        p.high_inclusive ? "]" : ")", unit);
  }
  if (p.low) {
    return absl::StrCat(p.quantity, p.low_inclusive ? " >= " : " > ",
                        Number(*p.low), unit);
  }
  if (p.high) {
    return absl::StrCat(p.quantity, p.high_inclusive ? " <= " : " < ",
                        Number(*p.high), unit);
  }
  return p.quantity;
}

std::string What(const Predicate& p) {
  switch (p.kind) {
    case Kind::kAge:
    case Kind::kLab:
    case Kind::kPerformanceStatus:
      return Bounds(p);
    case Kind::kSex:
      return absl::StrCat("sex is ", common::ToAbsl(model::SexName(p.sex)));
    case Kind::kHealthyVolunteers:
      return p.accepts_healthy_volunteers ? "accepts healthy volunteers"
                                          : "does not accept healthy volunteers";
    case Kind::kCondition: {
      std::vector<std::string> names;
      for (const ConditionConcept& c : p.concepts) {
        std::string n = c.normalized.empty() ? c.text : c.normalized;
        if (!c.mesh_ids.empty()) absl::StrAppend(&n, " (", absl::StrJoin(c.mesh_ids, ", "), ")");
        names.push_back(std::move(n));
      }
      return absl::StrCat(names.size() > 1 ? "has one of: " : "has condition ",
                          absl::StrJoin(names, "; "));
    }
    case Kind::kPregnancy:
      return "is pregnant";
    case Kind::kBreastfeeding:
      return "is breastfeeding";
    case Kind::kContraception:
      return "uses contraception";
    case Kind::kOther:
      return "";
  }
  return "";
}

// `text` with [begin, end) ranges (relative to it) marked.
std::string Mark(std::string_view text, std::vector<std::pair<int32_t, int32_t>> marks,
                 bool ansi) {
  std::sort(marks.begin(), marks.end());
  std::vector<std::pair<int32_t, int32_t>> merged;
  for (const auto& m : marks) {
    if (!merged.empty() && m.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, m.second);
    } else {
      merged.push_back(m);
    }
  }
  std::string out;
  int32_t pos = 0;
  for (const auto& [b, e] : merged) {
    out.append(text.substr(pos, b - pos));
    out.append(ansi ? kAnsiOn : "[[");
    out.append(text.substr(b, e - b));
    out.append(ansi ? kAnsiOff : "]]");
    pos = e;
  }
  out.append(text.substr(pos));
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

class Renderer {
 public:
  Renderer(const CompiledStudy& study, std::string_view original,
           const RenderOptions& options)
      : s_(study), original_(original), o_(options) {}

  std::string Run() {
    Section last = static_cast<Section>(-1);
    for (size_t i = 0; i < s_.criteria.size(); ++i) {
      const Criterion& c = s_.criteria[i];
      if (c.parent >= 0) continue;
      if (c.section != last) {
        absl::StrAppend(&out_, common::ToAbsl(SectionName(c.section)), "\n");
        last = c.section;
      }
      Criterion_(static_cast<int>(i), 0);
    }
    if (o_.show_structured) Structured();
    return out_;
  }

 private:
  bool InRange(const Span& sp) const {
    return sp.begin >= 0 && sp.begin <= sp.end &&
           static_cast<size_t>(sp.end) <= original_.size();
  }

  void Criterion_(int index, int depth) {
    if (depth > 64) return;  // defensive: malformed trees
    const Criterion& c = s_.criteria[index];
    const std::string indent(2 * depth, ' ');
    std::string text = c.text;
    if (InRange(c.span)) {
      std::vector<std::pair<int32_t, int32_t>> marks;
      for (int pi : c.predicates) {
        if (pi < 0 || static_cast<size_t>(pi) >= s_.predicates.size()) continue;
        const Predicate& p = s_.predicates[pi];
        if (p.kind == Kind::kOther) continue;
        const Span& e = p.evidence.span;
        if (p.evidence.source == EvidenceSource::kCriteriaText && InRange(e) &&
            e.begin >= c.span.begin && e.end <= c.span.end && e.end > e.begin) {
          marks.emplace_back(e.begin - c.span.begin, e.end - c.span.begin);
        }
      }
      text = Mark(original_.substr(c.span.begin, c.span.end - c.span.begin),
                  std::move(marks), o_.ansi);
    }
    absl::StrAppend(&out_, indent, "[", index, "] ", c.any_of ? "(any of) " : "",
                    text, "\n");
    for (int pi : c.predicates) {
      if (pi < 0 || static_cast<size_t>(pi) >= s_.predicates.size()) continue;
      absl::StrAppend(&out_, indent, "      - ", Line(s_.predicates[pi]), "\n");
    }
    for (int child : c.children) {
      if (child > index && static_cast<size_t>(child) < s_.criteria.size()) {
        Criterion_(child, depth + 1);
      }
    }
  }

  std::string Line(const Predicate& p) const {
    std::string line = DescribePredicate(p);
    if (o_.show_rule_ids) absl::StrAppend(&line, "  [", p.rule_id, "]");
    return line;
  }

  void Structured() {
    bool header = false;
    for (const Predicate& p : s_.predicates) {
      if (p.evidence.source != EvidenceSource::kStructuredField) continue;
      if (!header) {
        absl::StrAppend(&out_, "STRUCTURED FIELDS\n");
        header = true;
      }
      absl::StrAppend(&out_, "  - ", Line(p), "  (", p.evidence.field, " = ",
                      p.evidence.text, ")\n");
    }
    for (const Conflict& c : s_.conflicts) {
      absl::StrAppend(&out_, "CONFLICT (", common::ToAbsl(KindName(c.kind)), "): ", c.description,
                      "\n");
    }
    for (const std::string& n : s_.notes) absl::StrAppend(&out_, "NOTE: ", n, "\n");
  }

  const CompiledStudy& s_;
  std::string_view original_;
  const RenderOptions& o_;
  std::string out_;
};

}  // namespace

std::string DescribePredicate(const Predicate& p) {
  std::string line;
  if (p.kind == Kind::kOther) {
    line = p.informational ? "note" : "needs review";
  } else {
    line = absl::StrCat(
        p.polarity == Polarity::kExclusion ? "excludes if: " : "requires: ",
        What(p));
  }
  if (p.informational && p.kind != Kind::kOther) {
    line = "(informational) " + line;
  }
  if (!p.note.empty()) absl::StrAppend(&line, " -- ", p.note);
  return line;
}

std::string Render(const CompiledStudy& study, std::string_view original_criteria,
                   const RenderOptions& options) {
  return Renderer(study, original_criteria, options).Run();
}

}  // namespace trialmatch::criteria
