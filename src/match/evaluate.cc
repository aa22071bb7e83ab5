#include "match/evaluate.h"

#include <algorithm>
#include <cmath>

namespace trialmatch::match::internal {
namespace {

using criteria::Kind;
using criteria::Polarity;

// Three-valued satisfaction: AND = min, OR = max.
constexpr int kViolated = 0;
constexpr int kUnknownTri = 1;
constexpr int kSatisfied = 2;

int TriOf(Outcome o) {
  switch (o) {
    case Outcome::kViolated:
      return kViolated;
    case Outcome::kSatisfied:
    case Outcome::kInformational:
      return kSatisfied;
    case Outcome::kUnknown:
      break;
  }
  return kUnknownTri;
}

Outcome OutcomeOfTri(int t) {
  return t == kViolated
             ? Outcome::kViolated
             : (t == kSatisfied ? Outcome::kSatisfied : Outcome::kUnknown);
}

void Count(Outcome o, OutcomeCounts* c) {
  switch (o) {
    case Outcome::kSatisfied:
      ++c->satisfied;
      break;
    case Outcome::kViolated:
      ++c->violated;
      break;
    case Outcome::kUnknown:
      ++c->unknown;
      break;
    case Outcome::kInformational:
      ++c->informational;
      break;
  }
}

PredicateEval Status(TestStatus s, Why why, double value = 0) {
  PredicateEval e;
  e.status = s;
  e.why = why;
  e.value = value;
  return e;
}

TestStatus FromBool(bool met) {
  return met ? TestStatus::kMet : TestStatus::kNotMet;
}

// -1, 0, 1 with a relative tolerance for values that went through unit
// conversions (1.4999999999 vs 1.5).
int Compare(double v, double bound) {
  if (std::fabs(v - bound) <= 1e-9 * std::max(1.0, std::fabs(bound))) return 0;
  return v < bound ? -1 : 1;
}

bool InRange(const CompactPredicate& p, double v) {
  if (p.has_low) {
    const int c = Compare(v, p.low);
    if (p.low_inclusive ? c < 0 : c <= 0) return false;
  }
  if (p.has_high) {
    const int c = Compare(v, p.high);
    if (p.high_inclusive ? c > 0 : c >= 0) return false;
  }
  return true;
}

// --- Age ---------------------------------------------------------------------

// Ages compare in completed units of the unit the bound was written in
// ("maximum 65 Years" admits 65.9), with a tolerance for units that do not
// divide a year evenly; the tolerance always favours the patient (docs).
PredicateEval EvalAge(const CompactPredicate& p, double age_years) {
  const double u = AgeUnitYears(p.age_unit);
  const double tol_years = AgeToleranceYears(u);
  const double a = age_years / u;
  const double tol = tol_years / u;
  constexpr double kEps = 1e-7;  // floating-point equality, in units
  // Inclusion: the tolerance widens the admitted range; exclusion: it
  // narrows the excluded one.
  const double f = p.polarity() == Polarity::kInclusion ? tol : -tol;
  const double a_lo = a + f;  // for "at least" tests
  const double a_hi = a - f;  // for "below" tests
  // A bound that is a whole number of units (6 months written as 0.5 years).
  auto whole = [](double x, double* r) {
    const double n = std::round(x);
    if (std::fabs(x - n) >= 0.02) return false;
    *r = n;
    return true;
  };
  int lo = kSatisfied;
  int hi = kSatisfied;
  bool ambiguous = false;
  if (p.has_low) {
    double l = p.low / u;
    const bool is_whole = whole(l, &l);
    if (p.low_inclusive) {
      lo = a_lo >= l - kEps ? kSatisfied : kViolated;
    } else if (is_whole) {
      // "Older than 18": past the 18th birthday, or 19 and over? Decided
      // only where both readings agree.
      if (a_lo >= l + 1 - kEps) {
        lo = kSatisfied;
      } else if (a_lo <= l + kEps) {
        lo = kViolated;
      } else {
        lo = kUnknownTri;
        ambiguous = true;
      }
    } else {
      lo = a_lo > l + kEps ? kSatisfied : kViolated;
    }
  }
  if (p.has_high) {
    double h = p.high / u;
    const bool is_whole = whole(h, &h);
    bool ok;
    if (!p.high_inclusive) {
      ok = a_hi < h - kEps;
    } else if (is_whole) {
      ok = a_hi < h + 1 - kEps;  // completed units: "65" lasts a year
    } else {
      ok = a_hi <= h + kEps;
    }
    hi = ok ? kSatisfied : kViolated;
  }
  const int t = std::min(lo, hi);
  if (t == kUnknownTri) {
    return Status(TestStatus::kUnknown,
                  ambiguous ? Why::kAgeAmbiguous : Why::kNoValue, age_years);
  }
  return Status(FromBool(t == kSatisfied), Why::kDecided, age_years);
}

// --- Performance status ----------------------------------------------------

// ECOG grade of a Karnofsky score (0 ≈ 90-100, 1 ≈ 70-80, 2 ≈ 50-60,
// 3 ≈ 30-40, 4 ≈ 10-20, 5 = 0).
int KarnofskyToEcog(int kps) {
  if (kps >= 90) return 0;
  if (kps >= 70) return 1;
  if (kps >= 50) return 2;
  if (kps >= 30) return 3;
  if (kps >= 10) return 4;
  return 5;
}

// Karnofsky range [lo, hi] of an ECOG grade.
void EcogToKarnofsky(int ecog, int* lo, int* hi) {
  static constexpr int kLo[] = {90, 70, 50, 30, 10, 0};
  static constexpr int kHi[] = {100, 80, 60, 40, 20, 0};
  const int g = std::clamp(ecog, 0, 5);
  *lo = kLo[g];
  *hi = kHi[g];
}

PredicateEval EvalPerformance(const PatientFacts& f,
                              const CompactPredicate& p) {
  const patient::Profile& pr = *f.profile;
  if (p.quantity == f.ecog_q) {
    if (pr.ecog)
      return Status(FromBool(InRange(p, *pr.ecog)), Why::kDecided, *pr.ecog);
    if (pr.karnofsky) {
      const int e = KarnofskyToEcog(*pr.karnofsky);
      PredicateEval r = Status(FromBool(InRange(p, e)), Why::kFromKarnofsky, e);
      r.value2 = *pr.karnofsky;
      return r;
    }
    return Status(TestStatus::kUnknown, Why::kNoValue);
  }
  // Karnofsky.
  if (pr.karnofsky) {
    return Status(FromBool(InRange(p, *pr.karnofsky)), Why::kDecided,
                  *pr.karnofsky);
  }
  if (pr.ecog) {
    int lo = 0;
    int hi = 0;
    EcogToKarnofsky(*pr.ecog, &lo, &hi);
    int in = 0;
    int total = 0;
    for (int k = lo; k <= hi; k += 10) {
      ++total;
      if (InRange(p, k)) ++in;
    }
    PredicateEval r;
    r.value = lo;
    r.value2 = hi;
    r.value3 = *pr.ecog;
    if (in == total || in == 0) {
      r.status = FromBool(in == total);
      r.why = Why::kFromEcog;
    } else {
      r.status = TestStatus::kUnknown;
      r.why = Why::kMappingAmbiguous;
    }
    return r;
  }
  return Status(TestStatus::kUnknown, Why::kNoValue);
}

PredicateEval EvalNumeric(const PatientFacts& f, const CompactPredicate& p) {
  if (p.quantity == kUnknownQuantity || p.quantity >= f.quantity.size()) {
    return Status(TestStatus::kUnknown, Why::kNotAQuantity);
  }
  if (!p.unit_ok) return Status(TestStatus::kUnknown, Why::kUnitMismatch);
  if (p.quantity == f.ecog_q || p.quantity == f.karnofsky_q) {
    if (p.relative_to_uln)
      return Status(TestStatus::kUnknown, Why::kUnitMismatch);
    return EvalPerformance(f, p);
  }
  const std::optional<double>& v = f.quantity[p.quantity];
  if (!v) return Status(TestStatus::kUnknown, Why::kNoValue);
  if (p.kind() == Kind::kAge && !p.relative_to_uln) return EvalAge(p, *v);
  if (p.relative_to_uln) {
    const std::optional<double>& uln = f.uln[p.quantity];
    if (!uln) {
      PredicateEval r = Status(TestStatus::kUnknown, Why::kUlnUnknown, *v);
      return r;
    }
    const double ratio = *v / *uln;
    PredicateEval r = Status(FromBool(InRange(p, ratio)), Why::kUlnDecided, *v);
    r.value2 = ratio;
    r.value3 = *uln;
    return r;
  }
  return Status(FromBool(InRange(p, *v)), Why::kDecided, *v);
}

// --- Other kinds -------------------------------------------------------------

PredicateEval EvalTristate(patient::Tristate t, const patient::Profile& pr) {
  if (pr.sex == patient::Sex::kMale)
    return Status(TestStatus::kNotMet, Why::kMale);
  switch (t) {
    case patient::Tristate::kYes:
      return Status(TestStatus::kMet, Why::kDecided);
    case patient::Tristate::kNo:
      return Status(TestStatus::kNotMet, Why::kDecided);
    case patient::Tristate::kUnknown:
      break;
  }
  return Status(TestStatus::kUnknown, Why::kNoValue);
}

PredicateEval EvalSex(const CompactPredicate& p, const patient::Profile& pr) {
  if (p.sex() == model::Sex::kAll)
    return Status(TestStatus::kMet, Why::kDecided);
  if (pr.sex == patient::Sex::kUnknown)
    return Status(TestStatus::kUnknown, Why::kNoValue);
  const bool female = pr.sex == patient::Sex::kFemale;
  return Status(FromBool(female == (p.sex() == model::Sex::kFemale)),
                Why::kDecided);
}

PredicateEval EvalHealthyVolunteers(const CompactPredicate& p,
                                    const PatientFacts& f) {
  if (p.accepts_healthy_volunteers)
    return Status(TestStatus::kMet, Why::kHvAccepted);
  switch (f.profile->healthy_volunteer) {
    case patient::Tristate::kYes:
      return Status(TestStatus::kNotMet, Why::kDecided);
    case patient::Tristate::kNo:
      return Status(TestStatus::kMet, Why::kDecided);
    case patient::Tristate::kUnknown:
      break;
  }
  if (!f.profile->conditions.empty()) {
    return Status(TestStatus::kMet, Why::kHvHasConditions);
  }
  return Status(TestStatus::kUnknown, Why::kNoValue);
}

PredicateEval EvalCondition(const Snapshot& s, const PatientFacts& f,
                            const CompactPredicate& p, const uint8_t* target) {
  if (p.concepts_count == 0)
    return Status(TestStatus::kUnknown, Why::kCondNoConcepts);
  const bool guard = target != nullptr && !p.study_conditions &&
                     p.polarity() == Polarity::kExclusion;
  // Best match per class of patient condition: counting (active or
  // unknown status, or resolved when the criterion speaks of history),
  // resolved-only, the study's own topic (guarded exclusions).
  PredicateEval best;  // counting
  PredicateEval resolved;
  PredicateEval topic;
  best.strength = resolved.strength = topic.strength = MatchStrength::kNone;
  bool all_concepts_coded = true;
  for (uint32_t r = 0; r < p.concepts_count; ++r) {
    const uint32_t ref = p.concepts_begin + r;
    const uint32_t concept_index = s.concept_refs()[ref];
    const Concept& c = s.concepts()[concept_index];
    if (c.mesh_count == 0) all_concepts_coded = false;
    if (!MayMatch(s, f, concept_index)) continue;
    for (size_t ci = 0; ci < f.conditions.size(); ++ci) {
      const PatientCondition& cond = f.conditions[ci];
      const ConceptMatch m = MatchConceptToCondition(s, c, cond);
      if (m.strength == MatchStrength::kNone) continue;
      PredicateEval* slot = &best;
      if (guard && target[ci] != 0) {
        slot = &topic;
      } else if (cond.status == patient::ClinicalStatus::kResolved &&
                 !p.history_wording) {
        slot = &resolved;
      }
      if (m.strength > slot->strength) {
        slot->strength = m.strength;
        slot->condition = static_cast<int>(ci);
        slot->concept_ref = ref;
        slot->key = m.key;
      }
    }
  }
  auto with = [](PredicateEval e, TestStatus st, Why why) {
    e.status = st;
    e.why = why;
    return e;
  };
  if (best.strength >= MatchStrength::kBroader) {
    return with(best, TestStatus::kMet, Why::kCondMatched);
  }
  if (topic.strength >= MatchStrength::kAncestor) {
    return with(topic, TestStatus::kUnknown, Why::kCondStudyTopic);
  }
  if (resolved.strength >= MatchStrength::kBroader) {
    return with(resolved, TestStatus::kUnknown, Why::kCondResolved);
  }
  if (best.strength == MatchStrength::kAncestor) {
    return with(best, TestStatus::kUnknown, Why::kCondAncestorOnly);
  }
  if (resolved.strength == MatchStrength::kAncestor) {
    return with(resolved, TestStatus::kUnknown, Why::kCondAncestorOnly);
  }
  if (!f.conditions_complete)
    return Status(TestStatus::kUnknown, Why::kCondNotListed);
  if (p.polarity() == Polarity::kExclusion) {
    return Status(TestStatus::kNotMet, Why::kCondAbsentComplete);
  }
  // A requirement is denied only when the comparison was made by code on
  // both sides: every patient condition placed in MeSH, every concept
  // linked to a descriptor.
  if (f.conditions.empty() || (f.all_resolved && all_concepts_coded)) {
    return Status(TestStatus::kNotMet, Why::kCondAbsentComplete);
  }
  return Status(TestStatus::kUnknown, Why::kCondNotComparable);
}

}  // namespace

PredicateEval EvaluatePredicate(const Snapshot& snapshot,
                                const PatientFacts& facts,
                                const CompactPredicate& p,
                                const uint8_t* target) {
  const patient::Profile& pr = *facts.profile;
  switch (p.kind()) {
    case Kind::kAge:
    case Kind::kLab:
    case Kind::kPerformanceStatus:
      return EvalNumeric(facts, p);
    case Kind::kSex:
      return EvalSex(p, pr);
    case Kind::kHealthyVolunteers:
      return EvalHealthyVolunteers(p, facts);
    case Kind::kCondition:
      return EvalCondition(snapshot, facts, p, target);
    case Kind::kPregnancy:
      return EvalTristate(pr.pregnant, pr);
    case Kind::kBreastfeeding:
      return EvalTristate(pr.breastfeeding, pr);
    case Kind::kContraception:
    case Kind::kOther:
      break;
  }
  return Status(TestStatus::kUnknown, Why::kNeedsReview);
}

Outcome OutcomeOf(const CompactPredicate& p, TestStatus status) {
  if (p.informational) return Outcome::kInformational;
  if (status == TestStatus::kUnknown) return Outcome::kUnknown;
  const bool met = status == TestStatus::kMet;
  if (p.polarity() == Polarity::kInclusion) {
    return met ? Outcome::kSatisfied : Outcome::kViolated;
  }
  return met ? Outcome::kViolated : Outcome::kSatisfied;
}

// --- StudyEvaluator
// ------------------------------------------------------------

StudyEvaluator::StudyEvaluator(const Snapshot& snapshot,
                               const PatientFacts& facts)
    : snap_(snapshot), facts_(facts), target_(facts.conditions.size(), 0) {}

MatchStrength StudyEvaluator::Relevance(uint32_t study) {
  std::fill(target_.begin(), target_.end(), 0);
  target_study_ = study;
  MatchStrength best = MatchStrength::kNone;
  if (facts_.conditions.empty()) return best;
  const CompactStudy& cs = snap_.compact()[study];
  for (uint32_t r = 0; r < cs.rel_count; ++r) {
    const uint32_t index = snap_.concept_refs()[cs.rel_begin + r];
    if (!MayMatch(snap_, facts_, index)) continue;
    const Concept& c = snap_.concepts()[index];
    for (size_t ci = 0; ci < facts_.conditions.size(); ++ci) {
      const ConceptMatch m =
          MatchConceptToCondition(snap_, c, facts_.conditions[ci]);
      if (m.strength == MatchStrength::kNone) continue;
      target_[ci] = 1;
      best = std::max(best, m.strength);
    }
  }
  return best;
}

StudyEval StudyEvaluator::Evaluate(uint32_t study, bool stop_on_violation,
                                   StudyDetail* detail,
                                   uint32_t max_unfavourable) {
  current_study_ = study;
  max_unfavourable_ = stop_on_violation ? max_unfavourable : 0xffffffffu;
  const CompactStudy& cs = snap_.compact()[study];
  StudyEval out;
  if (detail != nullptr) {
    const StudyInfo& info = snap_.study(study);
    detail->evals.assign(info.predicates.size(), PredicateEval{});
    detail->outcomes.assign(info.predicates.size(), Outcome::kUnknown);
    detail->any_of_group.assign(info.predicates.size(), -1);
    detail->criterion_outcomes.assign(info.criteria_count, Outcome::kUnknown);
  }
  const int t = EvalNode(cs.root, /*root=*/true, stop_on_violation,
                         /*counting=*/true, /*group=*/-1, &out, detail);
  if (out.abandoned) {
    out.verdict = Verdict::kPossible;
  } else if (t == kViolated) {
    out.verdict = Verdict::kIneligible;
  } else if (t == kSatisfied && cs.has_criteria_text) {
    out.verdict = Verdict::kEligible;
  } else {
    out.verdict = Verdict::kPossible;
    if (t == kSatisfied) {
      out.no_criteria_text = true;
      ++out.counts.unknown;
    }
  }
  return out;
}

int StudyEvaluator::EvalNode(uint32_t node_index, bool root, bool stop,
                             bool counting, int group, StudyEval* out,
                             StudyDetail* detail) {
  const Node& node = snap_.nodes()[node_index];
  int v = kSatisfied;
  const int my_group = node.any_of ? node.criterion : group;
  const uint8_t* target = target_.empty() ? nullptr : target_.data();
  for (uint32_t i = 0; i < node.preds_count; ++i) {
    const CompactPredicate& p =
        snap_.predicates()[snap_.node_preds()[node.preds_begin + i]];
    // The study-topic guard of exclusions needs the relevance of each
    // patient condition: computed once per study, when first needed.
    if (target != nullptr && target_study_ != current_study_ &&
        p.kind() == Kind::kCondition && p.polarity() == Polarity::kExclusion) {
      Relevance(current_study_);
    }
    Outcome o;
    if (p.informational) {
      o = Outcome::kInformational;
      if (detail != nullptr) {
        detail->evals[p.source] = EvaluatePredicate(snap_, facts_, p, target);
      }
    } else {
      const PredicateEval e = EvaluatePredicate(snap_, facts_, p, target);
      o = OutcomeOf(p, e.status);
      if (detail != nullptr) detail->evals[p.source] = e;
    }
    if (detail != nullptr) {
      detail->outcomes[p.source] = o;
      detail->any_of_group[p.source] = group;
    }
    if (counting) Count(o, &out->counts);
    v = std::min(v, TriOf(o));
    if (root && stop && (v == kViolated || Abandon(*out))) {
      out->stopped = true;
      out->abandoned = v != kViolated;
      return v;
    }
  }
  if (node.children_count > 0) {
    if (node.any_of) {
      int w = kViolated;
      for (uint32_t i = 0; i < node.children_count; ++i) {
        const int t = EvalNode(snap_.node_children()[node.children_begin + i],
                               false, false, false, my_group, out, detail);
        w = std::max(w, t);
      }
      if (counting) Count(OutcomeOfTri(w), &out->counts);
      v = std::min(v, w);
    } else {
      for (uint32_t i = 0; i < node.children_count; ++i) {
        const int t = EvalNode(snap_.node_children()[node.children_begin + i],
                               false, false, counting, group, out, detail);
        v = std::min(v, t);
        if (root && stop && (v == kViolated || Abandon(*out))) {
          out->stopped = true;
          out->abandoned = v != kViolated;
          return v;
        }
      }
    }
  }
  if (detail != nullptr && node.criterion >= 0) {
    detail->criterion_outcomes[node.criterion] = OutcomeOfTri(v);
  }
  return v;
}

}  // namespace trialmatch::match::internal
