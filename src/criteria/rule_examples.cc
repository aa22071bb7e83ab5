#include "criteria/rule_examples.h"

#include <cmath>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/strings.h"
#include "criteria/render.h"

namespace trialmatch::criteria {
namespace {

bool Close(double a, double b) {
  return std::fabs(a - b) <= 1e-3 * std::max(1.0, std::fabs(b));
}

// Empty when `p` satisfies `e`, else what differs.
std::string Mismatch(const ExpectDef& e, const Predicate& p) {
  std::vector<std::string> diffs;
  if (e.kind && *e.kind != p.kind) diffs.push_back("kind");
  if (!e.quantity.empty() && e.quantity != p.quantity) diffs.push_back("quantity");
  if (e.low && (!p.low || !Close(*p.low, *e.low))) diffs.push_back("low");
  if (e.high && (!p.high || !Close(*p.high, *e.high))) diffs.push_back("high");
  if (e.no_low && p.low) diffs.push_back("low (expected none)");
  if (e.no_high && p.high) diffs.push_back("high (expected none)");
  if (e.low_inclusive && *e.low_inclusive != p.low_inclusive) {
    diffs.push_back("low_inclusive");
  }
  if (e.high_inclusive && *e.high_inclusive != p.high_inclusive) {
    diffs.push_back("high_inclusive");
  }
  if (!e.unit.empty() && e.unit != p.unit) diffs.push_back("unit");
  if (e.relative_to_uln && *e.relative_to_uln != p.relative_to_uln) {
    diffs.push_back("relative_to_uln");
  }
  if (e.polarity && *e.polarity != p.polarity) diffs.push_back("polarity");
  if (e.informational && *e.informational != p.informational) {
    diffs.push_back("informational");
  }
  if (e.sex && *e.sex != p.sex) diffs.push_back("sex");
  if (!e.condition.empty()) {
    bool found = false;
    for (const ConditionConcept& c : p.concepts) found = found || c.normalized == e.condition;
    if (!found) diffs.push_back("condition");
  }
  return absl::StrJoin(diffs, ", ");
}

bool OwnedBy(const std::string& rule_id, const std::string& owner) {
  return rule_id == owner ||
         (absl::StartsWith(rule_id, owner) && rule_id.size() > owner.size() &&
          rule_id[owner.size()] == '.');
}

absl::Status Fail(const ExampleDef& ex, std::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat(ex.location.ToString(), ": ", ex.owner_id, " example \"",
                   ex.text, "\": ", common::ToAbsl(what)));
}

}  // namespace

std::string ExampleTestName(const ExampleDef& example, int index) {
  std::string name = absl::StrCat(example.owner_id, "_", index);
  for (char& c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_';
    if (!ok) c = '_';
  }
  return name;
}

absl::Status CheckExample(const ExampleDef& ex, const Compiler& compiler) {
  const RuleSet& rules = compiler.rules();
  switch (ex.target) {
    case ExampleDef::Target::kComparator: {
      const auto op = rules.ClassifyComparator(ex.text);
      static constexpr std::pair<Comparison, std::string_view> kNames[] = {
          {Comparison::kGe, "comparator.OP_GE"},
          {Comparison::kGt, "comparator.OP_GT"},
          {Comparison::kLe, "comparator.OP_LE"},
          {Comparison::kLt, "comparator.OP_LT"}};
      for (const auto& [c, name] : kNames) {
        if (name == ex.owner_id) {
          if (op == c) return absl::OkStatus();
          return Fail(ex, op ? "classified as another comparator"
                             : "not recognised as a comparator");
        }
      }
      return Fail(ex, "unknown comparator");
    }
    case ExampleDef::Target::kPhrase: {
      for (const PhraseDef& ph : rules.phrases()) {
        if (ph.id != ex.owner_id) continue;
        const bool heading = ph.role == PhraseRole::kSectionInclusion ||
                             ph.role == PhraseRole::kSectionExclusion ||
                             ph.role == PhraseRole::kSectionNeutral ||
                             ph.role == PhraseRole::kCohort;
        const bool matched = ph.re->Match(
            ex.text, 0, ex.text.size(),
            heading ? RE2::ANCHOR_START : RE2::UNANCHORED, nullptr, 0);
        if (matched == !ex.no_match) return absl::OkStatus();
        return Fail(ex, ex.no_match ? "matches but should not" : "does not match");
      }
      return Fail(ex, "unknown phrase");
    }
    case ExampleDef::Target::kRule:
    case ExampleDef::Target::kMeasurement:
    case ExampleDef::Target::kConcept:
      break;
  }
  TextOptions options;
  options.default_section = ex.section;
  const CompiledStudy cs = compiler.CompileText(ex.text, options);
  std::vector<const Predicate*> own;
  for (const Predicate& p : cs.predicates) {
    if (OwnedBy(p.rule_id, ex.owner_id)) own.push_back(&p);
  }
  auto produced = [&]() {
    std::vector<std::string> lines;
    for (const Predicate& p : cs.predicates) {
      lines.push_back(absl::StrCat(DescribePredicate(p), " [", p.rule_id, "]"));
    }
    return lines.empty() ? std::string("nothing")
                         : absl::StrJoin(lines, "; ");
  };
  if (ex.no_match) {
    if (own.empty()) return absl::OkStatus();
    return Fail(ex, "should not match, but produced: " + produced());
  }
  if (own.empty()) return Fail(ex, "produced no predicate of this rule; got: " + produced());
  for (size_t i = 0; i < ex.expects.size(); ++i) {
    std::string closest;
    bool ok = false;
    for (const Predicate* p : own) {
      const std::string m = Mismatch(ex.expects[i], *p);
      if (m.empty()) {
        ok = true;
        break;
      }
      if (closest.empty()) closest = m;
    }
    if (!ok) {
      return Fail(ex, absl::StrCat("expect #", i + 1, " not met (differs in: ",
                                   closest, "); got: ", produced()));
    }
  }
  return absl::OkStatus();
}

}  // namespace trialmatch::criteria
