#include "match/matcher.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "match/evaluate.h"
#include "match/explain.h"
#include "match/facts.h"
#include "match/geo.h"
#include "patient/terminology.h"

namespace trialmatch::match {
namespace {

using internal::CompactStudy;
using internal::Concept;
using internal::ConceptMatch;
using internal::kNoId;
using internal::PatientFacts;
using internal::StudyDetail;
using internal::StudyEval;
using internal::StudyEvaluator;

constexpr size_t kInterruptStride = 256;

int VerdictRank(Verdict v) {
  switch (v) {
    case Verdict::kEligible:
      return 0;
    case Verdict::kPossible:
      return 1;
    case Verdict::kIneligible:
      break;
  }
  return 2;
}

double StrengthValue(MatchStrength m) {
  switch (m) {
    case MatchStrength::kExact:
      return 1.0;
    case MatchStrength::kBroader:
      return 0.75;
    case MatchStrength::kAncestor:
      return 0.4;
    case MatchStrength::kNone:
      break;
  }
  return 0;
}

struct Ranked {
  uint32_t study = 0;
  Verdict verdict = Verdict::kPossible;
  double score = 0;
  OutcomeCounts counts;
  bool no_criteria_text = false;
};

// a ranks before b.
bool Better(const Ranked& a, const Ranked& b) {
  const int ra = VerdictRank(a.verdict);
  const int rb = VerdictRank(b.verdict);
  if (ra != rb) return ra < rb;
  if (a.score != b.score) return a.score > b.score;
  return a.study < b.study;  // studies are sorted by NCT id
}

// The nearest open located site: index into open_sites() and squared chord.
struct Nearest {
  uint32_t open_site = kNoId;
  double chord2 = 0;
};

Nearest FindNearest(const Snapshot& s, const CompactStudy& cs,
                    const UnitVector& patient) {
  Nearest n;
  double best = std::numeric_limits<double>::infinity();
  for (uint32_t i = 0; i < cs.sites_count; ++i) {
    const double d = ChordSquared(s.open_sites()[cs.sites_begin + i].v, patient);
    if (d < best) {
      best = d;
      n.open_site = cs.sites_begin + i;
    }
  }
  n.chord2 = best;
  return n;
}

std::vector<ConditionMatch> MatchedConditions(const Snapshot& s,
                                              const PatientFacts& f,
                                              uint32_t study) {
  std::vector<ConditionMatch> out;
  const CompactStudy& cs = s.compact()[study];
  const StudyInfo& info = s.study(study);
  for (uint32_t r = 0; r < cs.rel_count; ++r) {
    const Concept& c = s.concepts()[s.concept_refs()[cs.rel_begin + r]];
    if (!internal::MayMatch(s, f, c)) continue;
    for (size_t ci = 0; ci < f.conditions.size(); ++ci) {
      const ConceptMatch m = internal::MatchConceptToCondition(s, c, f.conditions[ci]);
      if (m.strength == MatchStrength::kNone) continue;
      ConditionMatch cm;
      cm.study_condition = info.relevance[r].text;
      cm.from_criteria = info.relevance[r].from_criteria;
      cm.patient_condition_index = f.conditions[ci].index;
      cm.patient_condition =
          internal::ConditionLabel(f.profile->conditions[cm.patient_condition_index]);
      cm.strength = m.strength;
      if (m.key != kNoId) cm.mesh_id = s.MeshId(m.key);
      const bool dup = std::any_of(out.begin(), out.end(), [&](const ConditionMatch& o) {
        return o.patient_condition_index == cm.patient_condition_index &&
               o.study_condition == cm.study_condition && o.strength >= cm.strength;
      });
      if (!dup) out.push_back(std::move(cm));
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const ConditionMatch& a, const ConditionMatch& b) {
                     return a.strength > b.strength;
                   });
  return out;
}

}  // namespace

Matcher::Matcher() = default;
Matcher::Matcher(MatcherOptions options) : options_(std::move(options)) {}

absl::StatusOr<Matcher> Matcher::Create(MatcherOptions options) {
  const patient::Terminology& terms = patient::Terminology::Builtin();
  for (size_t i = 0; i < options.reference_uln.size(); ++i) {
    const auto& [q, v] = options.reference_uln[i];
    if (!std::isfinite(v) || v <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("reference_uln[", i, "]: must be finite and positive"));
    }
    if (q == "age" || q == "ecog" || q == "karnofsky" ||
        terms.CanonicalUnit(q).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "reference_uln[", i, "]: '", common::ToAbsl(q),
          "' is not a measurement quantity"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (options.reference_uln[j].first == q) {
        return absl::InvalidArgumentError(
            absl::StrCat("reference_uln[", i, "]: listed twice"));
      }
    }
  }
  const ScoreWeights& w = options.weights;
  for (double x : {w.criteria, w.condition, w.proximity}) {
    if (!std::isfinite(x) || x < 0) {
      return absl::InvalidArgumentError("weights: must be finite and >= 0");
    }
  }
  if (w.criteria + w.condition + w.proximity <= 0) {
    return absl::InvalidArgumentError("weights: all zero");
  }
  if (!std::isfinite(options.proximity_scale_km) ||
      options.proximity_scale_km <= 0) {
    return absl::InvalidArgumentError("proximity_scale_km: must be positive");
  }
  return Matcher(std::move(options));
}

absl::StatusOr<MatchResponse> Matcher::Match(const Snapshot& snapshot,
                                             const patient::Profile& profile,
                                             const MatchOptions& options) const {
  if (options.top_k < 1 || options.top_k > kMaxTopK) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k: must be in 1..", kMaxTopK));
  }
  if (options.max_distance_km &&
      (!std::isfinite(*options.max_distance_km) || *options.max_distance_km < 0)) {
    return absl::InvalidArgumentError(
        "max_distance_km: must be finite and non-negative");
  }
  if (options.interrupt) {
    if (absl::Status s = options.interrupt(); !s.ok()) return s;
  }

  const PatientFacts facts = internal::BuildFacts(snapshot, profile,
                                                  options_.reference_uln);
  StudyEvaluator evaluator(snapshot, facts);

  bool want[3] = {options.verdicts.empty(), options.verdicts.empty(),
                  options.verdicts.empty()};
  for (Verdict v : options.verdicts) want[VerdictRank(v)] = true;
  const bool want_ineligible = want[VerdictRank(Verdict::kIneligible)];

  std::vector<uint8_t> status_ok(snapshot.statuses().size(),
                                 options.statuses.empty() ? 1 : 0);
  for (const std::string& st : options.statuses) {
    if (std::optional<uint16_t> i = snapshot.StatusIndex(st)) status_ok[*i] = 1;
  }

  // Distance limit.
  std::optional<double> limit_km = options.max_distance_km;
  if (profile.location && profile.location->max_distance_km) {
    limit_km = limit_km ? std::min(*limit_km, *profile.location->max_distance_km)
                        : *profile.location->max_distance_km;
  }
  if (!facts.location) limit_km.reset();
  const double limit_chord2 = limit_km ? KmToChordSquared(*limit_km) : 4.0;

  const ScoreWeights& w = options_.weights;
  const double wsum = w.criteria + w.condition + w.proximity;

  MatchResponse response;
  MatchStats& stats = response.stats;
  stats.studies = snapshot.size();

  const bool has_conditions = !facts.conditions.empty();
  const bool require_relevance = options.require_condition_match && has_conditions;
  stats.used_index = require_relevance && !options.evaluate_all;

  // Candidates as a bitmap (visited in NCT order).
  std::vector<uint64_t> bitmap;
  if (stats.used_index) {
    bitmap.assign((snapshot.size() + 63) / 64, 0);
    auto mark = [&](const std::vector<uint32_t>* list) {
      if (list == nullptr) return;
      for (uint32_t si : *list) bitmap[si >> 6] |= uint64_t{1} << (si & 63);
    };
    for (uint32_t k : facts.all_ids) {
      mark(snapshot.StudiesWithMesh(k));
      mark(snapshot.StudiesWithAncestor(k));
    }
    for (uint32_t k : facts.all_ancestors) mark(snapshot.StudiesWithMesh(k));
    for (uint32_t k : facts.all_names) mark(snapshot.StudiesWithTerm(k));
  }

  std::vector<Ranked> heap;
  heap.reserve(static_cast<size_t>(options.top_k) + 1);
  const auto& compact = snapshot.compact();
  size_t since_check = 0;

  auto consider = [&](uint32_t si) -> absl::Status {
    ++stats.candidates;
    if (options.interrupt && ++since_check >= kInterruptStride) {
      since_check = 0;
      if (absl::Status s = options.interrupt(); !s.ok()) return s;
    }
    const CompactStudy& cs = compact[si];
    if (!status_ok[cs.status]) return absl::OkStatus();
    const MatchStrength relevance = evaluator.Relevance(si);
    if (require_relevance && relevance == MatchStrength::kNone) {
      return absl::OkStatus();
    }
    ++stats.evaluated;
    const StudyEval ev = evaluator.Evaluate(si, !want_ineligible, nullptr);
    switch (ev.verdict) {
      case Verdict::kEligible:
        ++stats.eligible;
        break;
      case Verdict::kPossible:
        ++stats.possible;
        break;
      case Verdict::kIneligible:
        ++stats.ineligible;
        break;
    }
    if (!want[VerdictRank(ev.verdict)]) return absl::OkStatus();
    double proximity = 0;
    if (facts.location) {
      const Nearest n = FindNearest(snapshot, cs, *facts.location);
      if (n.open_site != kNoId) {
        if (limit_km && n.chord2 > limit_chord2) {
          ++stats.outside_distance;
          return absl::OkStatus();
        }
        proximity = 1.0 / (1.0 + ChordSquaredToKm(n.chord2) /
                                     options_.proximity_scale_km);
      } else if (limit_km && !options.include_unlocated) {
        ++stats.outside_distance;
        return absl::OkStatus();
      }
    }
    ++stats.matched;
    const OutcomeCounts& c = ev.counts;
    const int deciding = c.satisfied + c.violated + c.unknown;
    const double share =
        deciding > 0 ? static_cast<double>(c.satisfied) / deciding : 0.0;
    Ranked r;
    r.study = si;
    r.verdict = ev.verdict;
    r.counts = ev.counts;
    r.no_criteria_text = ev.no_criteria_text;
    r.score = (w.criteria * share + w.condition * StrengthValue(relevance) +
               w.proximity * proximity) /
              wsum;
    if (heap.size() < static_cast<size_t>(options.top_k)) {
      heap.push_back(r);
      std::push_heap(heap.begin(), heap.end(), Better);
    } else if (Better(r, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), Better);
      heap.back() = r;
      std::push_heap(heap.begin(), heap.end(), Better);
    }
    return absl::OkStatus();
  };

  if (stats.used_index) {
    for (size_t word = 0; word < bitmap.size(); ++word) {
      uint64_t bits = bitmap[word];
      while (bits != 0) {
        const int bit = __builtin_ctzll(bits);
        bits &= bits - 1;
        if (absl::Status s = consider(static_cast<uint32_t>(word * 64 + bit));
            !s.ok()) {
          return s;
        }
      }
    }
  } else {
    for (uint32_t si = 0; si < snapshot.size(); ++si) {
      if (absl::Status s = consider(si); !s.ok()) return s;
    }
  }

  std::sort_heap(heap.begin(), heap.end(), Better);

  // Details for the returned results only.
  StudyDetail detail;
  response.results.reserve(heap.size());
  for (const Ranked& r : heap) {
    const StudyInfo& info = snapshot.study(r.study);
    const criteria::CompiledStudy& compiled = info.compiled;
    MatchResult out;
    out.nct_id = info.nct_id;
    out.title = info.title;
    out.overall_status = info.overall_status;
    out.verdict = r.verdict;
    out.score = r.score;
    evaluator.Relevance(r.study);
    const StudyEval full = evaluator.Evaluate(r.study, false, &detail);
    out.counts = full.counts;
    out.matched_conditions = MatchedConditions(snapshot, facts, r.study);
    if (facts.location) {
      const Nearest n = FindNearest(snapshot, compact[r.study], *facts.location);
      if (n.open_site != kNoId) {
        const Site& site = info.sites[snapshot.open_sites()[n.open_site].site];
        NearestSite s;
        s.site = site;
        s.distance_km = HaversineKm(profile.location->latitude,
                                    profile.location->longitude, site.latitude,
                                    site.longitude);
        out.nearest_site = std::move(s);
      }
    }
    const uint32_t pred_base = compact[r.study].preds_begin;
    for (size_t pi = 0; pi < compiled.predicates.size(); ++pi) {
      const Outcome o = detail.outcomes[pi];
      if (!options.include_explanations && o != Outcome::kViolated &&
          o != Outcome::kUnknown) {
        continue;
      }
      const criteria::Predicate& p = compiled.predicates[pi];
      Explanation e;
      e.predicate = static_cast<int>(pi);
      e.criterion = p.criterion;
      e.kind = p.kind;
      e.polarity = p.polarity;
      e.status = detail.evals[pi].status;
      e.outcome = o;
      e.any_of_group = detail.any_of_group[pi];
      e.reason = internal::Reason(snapshot, facts, p,
                                  snapshot.predicates()[pred_base + pi],
                                  detail.evals[pi]);
      e.rule_id = p.rule_id;
      e.evidence = p.evidence;
      e.note = p.note;
      out.explanations.push_back(std::move(e));
    }
    if (r.no_criteria_text || full.no_criteria_text) {
      Explanation e;
      e.kind = criteria::Kind::kOther;
      e.status = TestStatus::kUnknown;
      e.outcome = Outcome::kUnknown;
      e.rule_id = "match.no_criteria_text";
      e.reason =
          "the study states no eligibility criteria text; only its structured "
          "fields were checked";
      out.explanations.push_back(std::move(e));
    }
    if (options.include_explanations) out.criterion_outcomes = detail.criterion_outcomes;
    for (const criteria::Conflict& c : compiled.conflicts) {
      out.conflicts.push_back(c.description);
    }
    response.results.push_back(std::move(out));
  }
  return response;
}

}  // namespace trialmatch::match
