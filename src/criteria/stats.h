// Coverage of compiled studies (`trialmatch criteria --stats`): how many
// predicates of each kind, how many criteria were read completely, partly or
// not at all, conflicts per kind, and predicates per rule id.
//
//   CoverageStats stats;
//   for (const auto& cs : compiled) stats.Add(cs);
//   std::cout << stats.Render();
//
// Definitions (per text criterion, structural ones such as lead-ins and
// any-of groups excluded):
//   * read      — has typed predicates and no kOther
//   * partial   — has typed predicates and a kOther (text.residual ...)
//   * unparsed  — only kOther predicates that need review (text.unparsed)
//   * no requirement — only informational predicates (administrative text,
//     "None", permissions, sub-population scoped text)
//
// Not thread-safe (a plain accumulator); merge per-thread instances with
// Merge().
#ifndef TRIALMATCH_CRITERIA_STATS_H_
#define TRIALMATCH_CRITERIA_STATS_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "criteria/compiled_study.h"
#include "nlohmann/json_fwd.hpp"

namespace trialmatch::criteria {

struct KindCoverage {
  int64_t predicates = 0;
  int64_t informational = 0;
  int64_t inclusion = 0;
  int64_t exclusion = 0;
  int64_t from_text = 0;
  int64_t conflicts = 0;
};

class CoverageStats {
 public:
  void Add(const CompiledStudy& study);
  void Merge(const CoverageStats& other);

  int64_t studies() const { return studies_; }
  int64_t criteria() const { return criteria_; }
  int64_t criteria_read() const { return read_; }
  int64_t criteria_partial() const { return partial_; }
  int64_t criteria_unparsed() const { return unparsed_; }
  int64_t criteria_no_requirement() const { return no_requirement_; }
  int64_t studies_with_notes() const { return with_notes_; }
  const KindCoverage& kind(Kind k) const {
    return kinds_[static_cast<size_t>(k)];
  }
  const std::map<std::string, int64_t>& by_rule() const { return by_rule_; }

  // A plain-text table.
  std::string Render() const;
  nlohmann::json ToJsonValue() const;

 private:
  int64_t studies_ = 0;
  int64_t criteria_ = 0;
  int64_t read_ = 0;
  int64_t partial_ = 0;
  int64_t unparsed_ = 0;
  int64_t no_requirement_ = 0;
  int64_t with_notes_ = 0;
  std::array<KindCoverage, 10> kinds_{};
  std::map<std::string, int64_t> by_rule_;
};

}  // namespace trialmatch::criteria

#endif  // TRIALMATCH_CRITERIA_STATS_H_
