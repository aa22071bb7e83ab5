#include "criteria/stats.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "criteria/json.h"
#include "nlohmann/json.hpp"

namespace trialmatch::criteria {
namespace {

constexpr Kind kAllKinds[] = {
    Kind::kAge,       Kind::kSex,          Kind::kHealthyVolunteers,
    Kind::kCondition, Kind::kLab,          Kind::kPerformanceStatus,
    Kind::kPregnancy, Kind::kBreastfeeding, Kind::kContraception,
    Kind::kOther};

bool Structural(const Predicate& p) {
  return absl::StartsWith(p.rule_id, "structure.");
}

std::string Percent(int64_t part, int64_t whole) {
  if (whole == 0) return "-";
  return absl::StrFormat("%.1f%%", 100.0 * static_cast<double>(part) /
                                       static_cast<double>(whole));
}

}  // namespace

void CoverageStats::Add(const CompiledStudy& study) {
  ++studies_;
  if (!study.notes.empty()) ++with_notes_;
  for (const Predicate& p : study.predicates) {
    KindCoverage& k = kinds_[static_cast<size_t>(p.kind)];
    ++k.predicates;
    if (p.informational) ++k.informational;
    if (p.polarity == Polarity::kInclusion) {
      ++k.inclusion;
    } else {
      ++k.exclusion;
    }
    if (p.evidence.source == EvidenceSource::kCriteriaText) ++k.from_text;
    ++by_rule_[p.rule_id];
  }
  for (const Conflict& c : study.conflicts) {
    ++kinds_[static_cast<size_t>(c.kind)].conflicts;
  }
  for (const Criterion& c : study.criteria) {
    bool typed = false;
    bool review = false;
    bool structural = false;
    bool deciding = false;
    for (int pi : c.predicates) {
      if (pi < 0 || static_cast<size_t>(pi) >= study.predicates.size()) continue;
      const Predicate& p = study.predicates[pi];
      if (Structural(p)) {
        structural = true;
        continue;
      }
      if (p.kind == Kind::kOther) {
        if (!p.informational) review = true;
      } else {
        typed = true;
      }
      if (!p.informational) deciding = true;
    }
    // Criteria made by the compiler to hold "A or B" alternatives count
    // through their children.
    if (structural && !typed && !review) continue;
    ++criteria_;
    if (typed && !review) {
      ++read_;
    } else if (typed) {
      ++partial_;
    } else if (review) {
      ++unparsed_;
    } else if (!deciding) {
      ++no_requirement_;
    }
  }
}

void CoverageStats::Merge(const CoverageStats& o) {
  studies_ += o.studies_;
  criteria_ += o.criteria_;
  read_ += o.read_;
  partial_ += o.partial_;
  unparsed_ += o.unparsed_;
  no_requirement_ += o.no_requirement_;
  with_notes_ += o.with_notes_;
  for (size_t i = 0; i < kinds_.size(); ++i) {
    kinds_[i].predicates += o.kinds_[i].predicates;
    kinds_[i].informational += o.kinds_[i].informational;
    kinds_[i].inclusion += o.kinds_[i].inclusion;
    kinds_[i].exclusion += o.kinds_[i].exclusion;
    kinds_[i].from_text += o.kinds_[i].from_text;
    kinds_[i].conflicts += o.kinds_[i].conflicts;
  }
  for (const auto& [rule, n] : o.by_rule_) by_rule_[rule] += n;
}

std::string CoverageStats::Render() const {
  std::string out = absl::StrFormat(
      "studies %d, criteria %d: read %d (%s), partly read %d (%s), unparsed "
      "%d (%s), no requirement %d (%s); studies with notes %d\n\n",
      studies_, criteria_, read_, Percent(read_, criteria_), partial_,
      Percent(partial_, criteria_), unparsed_, Percent(unparsed_, criteria_),
      no_requirement_, Percent(no_requirement_, criteria_), with_notes_);
  absl::StrAppendFormat(&out, "%-20s %10s %10s %10s %10s %10s %10s\n", "kind",
                        "predicates", "from text", "inclusion", "exclusion",
                        "informat.", "conflicts");
  for (Kind k : kAllKinds) {
    const KindCoverage& c = kind(k);
    absl::StrAppendFormat(&out, "%-20s %10d %10d %10d %10d %10d %10d\n",
                          KindName(k), c.predicates, c.from_text, c.inclusion,
                          c.exclusion, c.informational, c.conflicts);
  }
  absl::StrAppend(&out, "\npredicates per rule\n");
  for (const auto& [rule, n] : by_rule_) {
    absl::StrAppendFormat(&out, "%8d  %s\n", n, rule);
  }
  return out;
}

nlohmann::json CoverageStats::ToJsonValue() const {
  nlohmann::json j = nlohmann::json::object();
  j["studies"] = studies_;
  j["criteria"] = criteria_;
  j["criteria_read"] = read_;
  j["criteria_partial"] = partial_;
  j["criteria_unparsed"] = unparsed_;
  j["criteria_no_requirement"] = no_requirement_;
  j["studies_with_notes"] = with_notes_;
  nlohmann::json kinds = nlohmann::json::object();
  for (Kind k : kAllKinds) {
    const KindCoverage& c = kind(k);
    kinds[std::string(KindName(k))] = {
        {"predicates", c.predicates}, {"from_text", c.from_text},
        {"inclusion", c.inclusion},   {"exclusion", c.exclusion},
        {"informational", c.informational}, {"conflicts", c.conflicts}};
  }
  j["kinds"] = std::move(kinds);
  j["by_rule"] = by_rule_;
  return j;
}

}  // namespace trialmatch::criteria
