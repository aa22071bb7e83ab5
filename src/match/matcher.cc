#include "match/matcher.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numbers>
#include <string>
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

// Best first: the enum's own order (checked below), so a rank is a cast in
// the comparisons the walk makes per candidate.
static_assert(static_cast<int>(Verdict::kEligible) == 0 &&
              static_cast<int>(Verdict::kPossible) == 1 &&
              static_cast<int>(Verdict::kIneligible) == 2);
inline int VerdictRank(Verdict v) { return static_cast<int>(v); }

Verdict VerdictAtRank(int rank) {
  return rank == 0 ? Verdict::kEligible
                   : (rank == 1 ? Verdict::kPossible : Verdict::kIneligible);
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
  // Scratch::details slot holding the evaluation's detail (a ranked study
  // was evaluated in full: kept for its explanations); kNoId when it was
  // not recorded (evaluate_all).
  uint32_t detail = kNoId;
  // The nearest open site (index into Snapshot::open_sites()), kNoId when
  // the patient is not located or the study has none.
  uint32_t open_site = kNoId;
};

// a ranks before b.
inline bool Better(const Ranked& a, const Ranked& b) {
  const int ra = VerdictRank(a.verdict);
  const int rb = VerdictRank(b.verdict);
  if (ra != rb) return ra < rb;
  if (a.score != b.score) return a.score > b.score;
  return a.study < b.study;  // studies are sorted by NCT id
}
// Better as a type for the heap algorithms (a function pointer there is an
// indirect call per comparison).
struct BetterOrder {
  bool operator()(const Ranked& a, const Ranked& b) const {
    return Better(a, b);
  }
};

// Bounds quantised for bucket queues (the first pass's counting sort, the
// walk's streams): verdict rank, then score descending in 1/1024 steps;
// lower buckets rank better. Multiplying by a power of two is exact, so a
// bucket's edge (BucketEdge) is at least as good as every bound in it.
constexpr int kScoreBuckets = 1024;
constexpr int kBoundBuckets = 3 * kScoreBuckets;
inline uint32_t BoundBucket(const Ranked& bound) {
  const int q = std::clamp(static_cast<int>(bound.score * kScoreBuckets), 0,
                           kScoreBuckets - 1);
  return static_cast<uint32_t>(VerdictRank(bound.verdict) * kScoreBuckets +
                               (kScoreBuckets - 1 - q));
}
inline Ranked BucketEdge(uint32_t bucket) {
  Ranked edge;
  edge.study = 0;
  edge.verdict = VerdictAtRank(static_cast<int>(bucket / kScoreBuckets));
  const int q = kScoreBuckets - 1 - static_cast<int>(bucket % kScoreBuckets);
  edge.score = q == kScoreBuckets - 1
                   ? std::numeric_limits<double>::infinity()
                   : static_cast<double>(q + 1) / kScoreBuckets;
  return edge;
}

// Calls f(index) for every set bit, in increasing order; stops at the first
// non-OK status and returns it.
template <typename F>
absl::Status ForEachBit(const std::vector<uint64_t>& bitmap, F& f) {
  for (size_t word = 0; word < bitmap.size(); ++word) {
    uint64_t bits = bitmap[word];
    while (bits != 0) {
      const int bit = __builtin_ctzll(bits);
      bits &= bits - 1;
      if (absl::Status s = f(static_cast<uint32_t>(word * 64 + bit)); !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

struct PatientPoint {
  UnitVector v;
  double latitude_rad = 0;
};

// The nearest open located site: index into open_sites() and squared chord.
struct Nearest {
  uint32_t open_site = kNoId;
  double chord2 = 0;
};

// The study's open sites are sorted by latitude: expand from the patient's
// latitude outwards, always on the side with the smaller latitude gap, and
// stop when that gap alone (a lower bound of the distance) is no better
// than the best site found. Ties keep the lower index. Only sites within
// `max_chord2` count: with none, open_site is kNoId (the search stops once
// the latitude gap exceeds it).
Nearest FindNearest(
    const Snapshot& s, const CompactStudy& cs, const PatientPoint& patient,
    double max_chord2 = std::numeric_limits<double>::infinity()) {
  Nearest n;
  const internal::OpenSite* sites = s.open_sites().data() + cs.sites_begin;
  const auto count = static_cast<int64_t>(cs.sites_count);
  double best = max_chord2;
  int64_t best_i = -1;
  int64_t hi = std::lower_bound(sites, sites + count, patient.latitude_rad,
                                [](const internal::OpenSite& o, double lat) {
                                  return o.latitude_rad < lat;
                                }) -
               sites;
  int64_t lo = hi - 1;
  // 4 sin^2(x/2) >= x^2 - x^4/12 for x in [0, pi]; a small margin covers
  // the float latitudes and unit vectors.
  auto gap_bound = [&](int64_t i) {
    const double x = std::fabs(sites[i].latitude_rad - patient.latitude_rad);
    return x * x - x * x * x * x / 12 - 1e-10;
  };
  while (lo >= 0 || hi < count) {
    int64_t i;
    if (lo < 0) {
      i = hi++;
    } else if (hi >= count) {
      i = lo--;
    } else if (patient.latitude_rad - sites[lo].latitude_rad <=
               sites[hi].latitude_rad - patient.latitude_rad) {
      i = lo--;
    } else {
      i = hi++;
    }
    if (gap_bound(i) > best) break;
    const double d = ChordSquared(sites[i].v, patient.v);
    if (d < best || (d == best && (best_i < 0 || i < best_i))) {
      best = d;
      best_i = i;
    }
  }
  if (best_i >= 0) n.open_site = cs.sites_begin + static_cast<uint32_t>(best_i);
  n.chord2 = best;
  return n;
}

std::vector<ConditionMatch> MatchedConditions(const Snapshot& s,
                                              const PatientFacts& f,
                                              uint32_t study) {
  std::vector<ConditionMatch> out;
  const CompactStudy& cs = s.compact()[study];
  for (uint32_t r = 0; r < cs.rel_count; ++r) {
    const uint32_t index = s.concept_refs()[cs.rel_begin + r];
    if (!internal::MayMatch(s, f, index)) continue;
    const Concept& c = s.concepts()[index];
    for (size_t ci = 0; ci < f.conditions.size(); ++ci) {
      const ConceptMatch m =
          internal::MatchConceptToCondition(s, c, f.conditions[ci]);
      if (m.strength == MatchStrength::kNone) continue;
      ConditionMatch cm;
      cm.study_condition = s.String(s.concept_texts()[cs.rel_begin + r]);
      cm.from_criteria = s.concept_from_criteria()[cs.rel_begin + r] != 0;
      cm.patient_condition_index = f.conditions[ci].index;
      // A view into the profile until Match copies it into the result's
      // text.
      cm.patient_condition = internal::ConditionLabel(
          f.profile->conditions[cm.patient_condition_index]);
      cm.strength = m.strength;
      if (m.key != kNoId) cm.mesh_id = s.MeshId(m.key);
      const bool dup =
          std::any_of(out.begin(), out.end(), [&](const ConditionMatch& o) {
            return o.patient_condition_index == cm.patient_condition_index &&
                   o.study_condition == cm.study_condition &&
                   o.strength >= cm.strength;
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

struct Queued {
  uint32_t study;
  MatchStrength relevance;
};

// Proximity tiers of the related walk for a located patient: the head
// proximity of each tier, best first (the last holds studies without an
// open located site: proximity 0).
constexpr int kProximityTiers = 5;
constexpr double kTierProximity[kProximityTiers] = {1.0, 0.5, 0.25, 0.1, 0.0};
constexpr uint8_t kNoTier = 0xff;  // a cell beyond the distance limit
// Tiers pay when the walk goes deep: a tier stream skips the other tiers'
// ranks of its bitmap. 400-patient callgrind at 100k, instructions with
// tiers against without: top_k 1 +13 %, 5 +4.4 %, 10 -3.2 %, 20 -7.9 %,
// 50 -12 %.
constexpr int kTieredTopK = 10;

// The strength of each candidate bitmap (Scratch::by_strength), strongest
// first.
constexpr MatchStrength kClassStrength[3] = {
    MatchStrength::kExact, MatchStrength::kBroader, MatchStrength::kAncestor};
enum : int { kExactClass = 0, kBroaderClass = 1, kAncestorClass = 2 };

struct Pending {
  Ranked bound;  // the patient's bound; bound.study is the study
  MatchStrength relevance;
  const internal::StudyKey* key;  // in keys_by_bound()
  uint32_t certain;               // certain_of(*key)
};

// A stream of the best-first walk (Matcher::Match): by_bound ranks, all
// with one relevance and one proximity bound, from a bitmap (words:
// ascending) or from a list (ranks: a site cell's, in an unlinked order).
struct Stream {
  const uint64_t* words = nullptr;
  size_t nwords = 0;
  // With words: the index of each word in the whole bitmap (a bitmap kept
  // as its non-zero words), or null when words are consecutive.
  const uint32_t* word_index = nullptr;
  size_t word = 0;
  uint64_t rest = 0;  // bits of `word` not taken yet
  const uint32_t* ranks = nullptr;
  size_t count = 0;
  size_t next = 0;  // of ranks
  // A bitmap stream may take only the ranks whose site cell is in one
  // proximity tier (Matcher::Match: by tier_of_cell, per call).
  const uint8_t* tier_of_cell = nullptr;
  uint8_t tier = 0;
  // A tier's stream starts unprimed (Matcher::Match, walk).
  bool start_unprimed = false;
  bool primed = true;  // head is a member (else an upper bound of them all)
  MatchStrength strength = MatchStrength::kNone;
  double proximity = 0;
  uint32_t rank = 0;  // the head
  Ranked head;        // its static bound
  Stream* next_in_bucket = nullptr;

  // The rank of bit `bit` of word `w` (an index into words).
  uint32_t RankAt(size_t w, int bit) const {
    const size_t base = word_index != nullptr ? word_index[w] : w;
    return static_cast<uint32_t>(base * 64 + static_cast<size_t>(bit));
  }
};

struct Scratch {
  // Related studies by by_bound rank: exact, broader, ancestor.
  std::vector<uint64_t> by_strength[3];
  std::vector<Stream> streams;        // best-first walk
  std::vector<Stream*> buckets;       // by BoundBucket: lists through Stream
  std::vector<uint8_t> tier_of_cell;  // by site cell, for a located patient
  // With a distance limit, each class bitmap split by tier: its non-zero
  // words and their indexes (Stream::word_index).
  std::vector<uint64_t> tier_words[3][kProximityTiers];
  std::vector<uint32_t> tier_word_index[3][kProximityTiers];
  std::vector<Pending> pending;
  std::vector<Queued> queued;         // first-pass survivors
  std::vector<uint32_t> bucket_of;    // parallel to queued
  std::vector<uint32_t> start, next;  // counting sort
  std::vector<uint32_t> order;
  // Evaluation details: one per heap entry plus the one being filled.
  // Slots not in the heap are listed in free_details.
  std::vector<internal::StudyDetail> details;
  std::vector<uint32_t> free_details;
  internal::StudyDetail unranked_detail;  // a result's, with evaluate_all
  // A result's reasons, and where the reason of each predicate's
  // explanation is (offset, size), before they move to MatchResult::text.
  std::string text;
  std::vector<std::pair<uint32_t, uint32_t>> spans;
};

// Slots kept by a thread between calls (a large top_k's are released).
constexpr size_t kKeptDetails = 64;

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
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
      return absl::InvalidArgumentError(
          absl::StrCat("reference_uln[", i, "]: '", common::ToAbsl(q),
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

absl::StatusOr<MatchResponse> Matcher::Match(
    const Snapshot& snapshot, const patient::Profile& profile,
    const MatchOptions& options) const {
  if (options_.evaluate_all && !options.evaluate_all) {
    MatchOptions brute = options;
    brute.evaluate_all = true;
    return Match(snapshot, profile, brute);
  }
  if (options.top_k < 1 || options.top_k > kMaxTopK) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k: must be in 1..", kMaxTopK));
  }
  if (options.max_distance_km && (!std::isfinite(*options.max_distance_km) ||
                                  *options.max_distance_km < 0)) {
    return absl::InvalidArgumentError(
        "max_distance_km: must be finite and non-negative");
  }
  if (options.interrupt) {
    if (absl::Status s = options.interrupt(); !s.ok()) return s;
  }

  const PatientFacts facts =
      internal::BuildFacts(snapshot, profile, options_.reference_uln);
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
    limit_km = limit_km
                   ? std::min(*limit_km, *profile.location->max_distance_km)
                   : *profile.location->max_distance_km;
  }
  if (!facts.location) limit_km.reset();
  std::optional<PatientPoint> patient_point;
  if (facts.location) {
    patient_point = PatientPoint{
        *facts.location, profile.location->latitude * std::numbers::pi / 180};
  }
  const double limit_chord2 = limit_km ? KmToChordSquared(*limit_km) : 4.0;

  const ScoreWeights& w = options_.weights;
  const double wsum = w.criteria + w.condition + w.proximity;

  MatchResponse response;
  MatchStats& stats = response.stats;
  stats.studies = snapshot.size();

  // Conditions that link to nothing in the snapshot (no known descriptor or
  // name) cannot select studies; when none links, relevance cannot be
  // required without returning nothing, so every study is considered.
  bool any_linked = false;
  for (const internal::PatientCondition& c : facts.conditions) {
    if (c.ids.empty() && c.names.empty()) {
      response.notes.push_back(absl::StrCat(
          "conditions[", c.index, "]: not linked to any study condition"));
    } else {
      any_linked = true;
    }
  }
  const bool has_conditions = !facts.conditions.empty();
  const bool require_relevance =
      options.require_condition_match && has_conditions && any_linked;
  if (options.require_condition_match && has_conditions && !any_linked) {
    response.notes.push_back(
        "no condition linked to a study condition: every study was considered");
  }
  stats.used_index = require_relevance && !options.evaluate_all;

  // Candidates from the relevance posting lists, which hold positions in
  // the snapshot's static best-bound order (by_bound ranks): one bitmap over
  // ranks per match strength, each study in its strongest class only (the
  // strength the evaluator's Relevance() computes; docs/match.md,
  // "Candidates"). Per-thread scratch reused across calls.
  Scratch& scratch = ThreadScratch();
  if (stats.used_index) {
    const size_t words = snapshot.rank_words();
    for (std::vector<uint64_t>& b : scratch.by_strength) b.assign(words, 0);
    // A long list as its bitmap (Snapshot::RankBitsWithMesh), else rank by
    // rank.
    auto mark = [&](const std::vector<uint32_t>* list, const uint64_t* dense,
                    int cls) {
      uint64_t* bits = scratch.by_strength[cls].data();
      if (dense != nullptr) {
        for (size_t i = 0; i < words; ++i) bits[i] |= dense[i];
        return;
      }
      if (list == nullptr) return;
      for (uint32_t r : *list) bits[r >> 6] |= uint64_t{1} << (r & 63);
    };
    for (uint32_t k : facts.all_ids) {
      mark(snapshot.RanksWithMesh(k), snapshot.RankBitsWithMesh(k),
           kExactClass);
      mark(snapshot.RanksWithAncestor(k), snapshot.RankBitsWithAncestor(k),
           kAncestorClass);
    }
    for (uint32_t k : facts.all_ancestors) {
      mark(snapshot.RanksWithMesh(k), snapshot.RankBitsWithMesh(k),
           kBroaderClass);
    }
    for (uint32_t k : facts.all_names) {
      mark(snapshot.RanksWithTerm(k), snapshot.RankBitsWithTerm(k),
           kExactClass);
    }
    std::vector<uint64_t>& exact = scratch.by_strength[kExactClass];
    std::vector<uint64_t>& broader = scratch.by_strength[kBroaderClass];
    std::vector<uint64_t>& ancestor = scratch.by_strength[kAncestorClass];
    for (size_t i = 0; i < words; ++i) {
      broader[i] &= ~exact[i];
      ancestor[i] &= ~(exact[i] | broader[i]);
    }
  }

  std::vector<Ranked> heap;
  heap.reserve(static_cast<size_t>(options.top_k) + 1);
  if (scratch.details.size() > kKeptDetails) {
    scratch.details.resize(kKeptDetails);
    scratch.details.shrink_to_fit();
  }
  scratch.free_details.clear();
  for (uint32_t i = 0; i < scratch.details.size(); ++i)
    scratch.free_details.push_back(i);
  const auto& compact = snapshot.compact();
  size_t since_check = 0;
  // The best verdict a study could be returned with.
  const Verdict best_wanted =
      want[0] ? Verdict::kEligible
              : (want[1] ? Verdict::kPossible : Verdict::kIneligible);
  const Verdict best_wanted_not_eligible =
      want[1] ? Verdict::kPossible : Verdict::kIneligible;
  const bool prune = !options.evaluate_all;

  auto score_of = [&](double share, MatchStrength relevance, double proximity) {
    return (w.criteria * share + w.condition * StrengthValue(relevance) +
            w.proximity * proximity) /
           wsum;
  };

  // The best ranking a study could reach: its verdict cap (ELIGIBLE only
  // without always-UNKNOWN units and with criteria text) and a score bound
  // (share at most all units but the always-UNKNOWN ones). Exact in floating
  // point: an evaluated share has the same denominator, and the score is
  // monotone in share and proximity (docs/match.md, "Ranking bound").
  // Units on facts the patient lacks are certainly UNKNOWN too (evaluate.cc:
  // a missing value, score, sex, pregnancy or volunteer status is UNKNOWN).
  uint64_t missing = 0;
  const std::vector<std::string>& quantities = snapshot.quantities();
  for (size_t q = 0; q < quantities.size() && q < internal::kFactFirst; ++q) {
    if (q != facts.ecog_q && q != facts.karnofsky_q && !facts.quantity[q]) {
      missing |= uint64_t{1} << q;
    }
  }
  auto lacks = [&missing](int fact, bool lacking) {
    if (lacking) missing |= uint64_t{1} << fact;
  };
  lacks(internal::kFactPerformance, !profile.ecog && !profile.karnofsky);
  lacks(internal::kFactSex, profile.sex == patient::Sex::kUnknown);
  const bool male = profile.sex == patient::Sex::kMale;
  lacks(internal::kFactPregnancy,
        !male && profile.pregnant == patient::Tristate::kUnknown);
  lacks(internal::kFactBreastfeeding,
        !male && profile.breastfeeding == patient::Tristate::kUnknown);
  // Without a complete condition list an excluded condition is violated or
  // UNKNOWN (evaluate.cc, EvalCondition), never satisfied.
  lacks(internal::kFactConditionList, !facts.conditions_complete);
  // A condition that links to nothing the snapshot knows matches no concept
  // (facts.h): a required condition is then violated or UNKNOWN.
  lacks(internal::kFactRequiredCondition, !any_linked);
  lacks(internal::kFactHealthyVolunteer,
        profile.healthy_volunteer == patient::Tristate::kUnknown &&
            profile.conditions.empty());
  const auto& keys = snapshot.keys();
  const auto& fact_counts = snapshot.fact_counts();
  // The structured eligibility gate (StudyKey: age window, required sex, no
  // healthy volunteers): a study the patient certainly fails is INELIGIBLE,
  // so it is skipped before any other work when INELIGIBLE is not wanted.
  const bool gate = prune && !want_ineligible;
  const std::optional<double> age_years = facts.age_q < facts.quantity.size()
                                              ? facts.quantity[facts.age_q]
                                              : std::nullopt;
  const bool gate_female = profile.sex == patient::Sex::kFemale;
  const bool gate_male = profile.sex == patient::Sex::kMale;
  const bool gate_volunteer =
      profile.healthy_volunteer == patient::Tristate::kYes;
  auto gated = [&](const internal::StudyKey& k) {
    if (!gate) return false;
    if ((k.requires_female && gate_male) || (k.requires_male && gate_female) ||
        (k.rejects_healthy_volunteers && gate_volunteer)) {
      return true;
    }
    return age_years.has_value() &&
           (*age_years * 365.25 < k.min_age_days ||
            (k.max_age != internal::kNoMaxAge && *age_years > k.max_age));
  };
  auto bound_with_key = [&](const internal::StudyKey& k, uint32_t si,
                            uint32_t certainly_unknown, MatchStrength relevance,
                            double proximity) {
    Ranked bound;
    bound.study = si;
    const bool can_be_eligible = k.has_criteria_text && certainly_unknown == 0;
    bound.verdict = can_be_eligible ? best_wanted : best_wanted_not_eligible;
    bound.score = score_of(internal::MaxShare(k, certainly_unknown), relevance,
                           proximity);
    return bound;
  };
  // The study's units certainly not satisfied for this patient.
  auto certain_of = [&](const internal::StudyKey& k) {
    return internal::CertainlyUnfavourable(k, fact_counts.data(), missing);
  };
  auto cannot_rank = [&](const Ranked& bound) {
    return prune && heap.size() == static_cast<size_t>(options.top_k) &&
           !Better(bound, heap.front());
  };
  const double best_proximity = facts.location ? 1.0 : 0.0;
  // An upper bound of a study's proximity from the cap around its open
  // sites (StudyKey: dense, no acos): the angular gap is at least
  // theta - radius, where cos(theta - radius) = dot cos(radius) +
  // sin(theta) sin(radius), and an arc is at least its chord (km >= R *
  // chord); 5 km margin for the float cap. Orders the first pass so that
  // near studies fill the top_k first.
  // (A located patient; the cap of a kSitesCap key or cell.)
  auto cap_min_km = [&](const internal::SiteCap& cap) {
    const UnitVector& pv = patient_point->v;
    const double dot = static_cast<double>(cap.center_x) * pv.x +
                       static_cast<double>(cap.center_y) * pv.y +
                       static_cast<double>(cap.center_z) * pv.z;
    if (dot >= cap.cos_radius) return 0.0;
    const double sin_theta = std::sqrt(std::max(0.0, 1.0 - dot * dot));
    const double cos_gap = dot * cap.cos_radius + sin_theta * cap.sin_radius;
    const double chord = std::sqrt(std::max(0.0, 2.0 - 2.0 * cos_gap));
    return std::max(0.0, kEarthRadiusKm * chord - 5.0);
  };
  // StudyKey or SiteCell.
  auto proximity_bound = [&](const auto& k) -> double {
    if (!facts.location) return 0.0;
    if (k.sites == internal::kSitesNone) return 0.0;  // proximity is 0
    if (k.sites == internal::kSitesAnywhere) return 1.0;
    return 1.0 / (1.0 + cap_min_km(k.cap) / options_.proximity_scale_km);
  };

  // Second stage: distance, exact bound, evaluation, heap. `key` is the
  // study's StudyKey (from keys() or keys_by_bound(), whichever the caller
  // holds), `certain` its certain_of().
  auto evaluate = [&](uint32_t si, MatchStrength relevance,
                      const internal::StudyKey& key, uint32_t certain) {
    const CompactStudy& cs = compact[si];
    // Its criteria tree and first predicates, read unless it is pruned, and
    // the middle of its open sites (FindNearest's first probe).
    __builtin_prefetch(snapshot.nodes().data() + cs.root);
    __builtin_prefetch(snapshot.predicates().data() + cs.preds_begin);
    if (facts.location && cs.sites_count > 0) {
      __builtin_prefetch(snapshot.open_sites().data() + cs.sites_begin +
                         cs.sites_count / 2);
    }
    auto bound_at = [&](double proximity) {
      return bound_with_key(key, si, certain, relevance, proximity);
    };
    if (cannot_rank(bound_at(best_proximity))) {
      ++stats.pruned;
      return;
    }
    double proximity = 0;
    uint32_t open_site = kNoId;
    if (facts.location && cs.sites_count > 0 && cs.sites_radius < 3.2) {
      // The cap around the study's open sites bounds the distance from
      // below, hence the proximity from above, before any site is read.
      const UnitVector& c = cs.sites_center;
      const UnitVector& pv = patient_point->v;
      const double dot = static_cast<double>(c.x) * pv.x +
                         static_cast<double>(c.y) * pv.y +
                         static_cast<double>(c.z) * pv.z;
      const double gap =
          std::acos(std::clamp(dot, -1.0, 1.0)) - cs.sites_radius;
      if (gap > 0) {
        const double min_km = gap * kEarthRadiusKm;
        if (limit_km && min_km > *limit_km) {
          ++stats.outside_distance;
          return;
        }
        if (cannot_rank(
                bound_at(1.0 / (1.0 + min_km / options_.proximity_scale_km)))) {
          ++stats.pruned;
          return;
        }
      }
    }
    if (facts.location) {
      ++stats.site_searches;
      // Sites beyond the distance limit, or so far that the study could not
      // rank even with the best share it may reach, need not be found: the
      // search stops at that radius. The ranking radius solves score_of for
      // the proximity the k-th result demands, plus 1 km so that rounding
      // never drops a study that ranks (a study at the radius is still
      // decided by cannot_rank below).
      double stop_chord2 =
          limit_km ? limit_chord2 : std::numeric_limits<double>::infinity();
      bool stop_for_rank = false;
      if (prune && heap.size() == static_cast<size_t>(options.top_k) &&
          w.proximity > 0 && cs.sites_count > 0) {
        const Ranked& front = heap.front();
        if (VerdictRank(bound_at(1.0).verdict) == VerdictRank(front.verdict)) {
          const double needed = (front.score * wsum -
                                 w.criteria * internal::MaxShare(key, certain) -
                                 w.condition * StrengthValue(relevance)) /
                                w.proximity;
          if (needed > 0) {
            const double rank_chord2 = KmToChordSquared(
                (needed >= 1 ? 0.0
                             : options_.proximity_scale_km * (1 / needed - 1)) +
                1.0);
            if (rank_chord2 < stop_chord2) {
              stop_chord2 = rank_chord2;
              stop_for_rank = true;
            }
          }
        }
      }
      const Nearest n = FindNearest(snapshot, cs, *patient_point, stop_chord2);
      if (n.open_site == kNoId && cs.sites_count > 0) {
        // Every open site lies beyond the stop radius.
        if (stop_for_rank) {
          ++stats.pruned;
        } else {
          ++stats.outside_distance;
        }
        return;
      }
      // Within the stop radius, the nearest open site is the nearest of all.
      open_site = n.open_site;
      if (n.open_site != kNoId) {  // within the limit: the stop radius
        proximity = 1.0 / (1.0 + ChordSquaredToKm(n.chord2) /
                                     options_.proximity_scale_km);
      } else if (limit_km && !options.include_unlocated) {
        ++stats.outside_distance;
        return;
      }
      if (cannot_rank(bound_at(proximity))) {
        ++stats.pruned;
        return;
      }
    }
    // With a full top_k, the most units that may end violated or UNKNOWN
    // for the study still to rank (the bound with that many certainly
    // UNKNOWN ranks): evaluation is abandoned beyond it.
    uint32_t max_unfavourable = 0xffffffffu;
    if (prune && !want_ineligible && key.exact &&
        heap.size() == static_cast<size_t>(options.top_k)) {
      uint32_t lo = 0;  // ranks (else the bound above pruned it)
      uint32_t hi = key.units;
      if (cannot_rank(bound_with_key(key, si, hi, relevance, proximity))) {
        while (hi - lo > 1) {  // lo ranks, hi does not
          const uint32_t mid = lo + (hi - lo) / 2;
          if (cannot_rank(bound_with_key(key, si, mid, relevance, proximity))) {
            hi = mid;
          } else {
            lo = mid;
          }
        }
        max_unfavourable = lo;
      }
    }
    ++stats.evaluated;
    // With the detail recorded: a study that ranks is not evaluated again
    // for its explanations (it was evaluated in full: a wanted verdict is
    // never stopped nor abandoned). Not with evaluate_all, which evaluates
    // every study for a few results: recording would cost more (brute
    // force at 100k: p50 17.5 -> 21.8 ms) than evaluating the results again.
    uint32_t slot = kNoId;
    if (prune) {
      if (scratch.free_details.empty()) {
        scratch.free_details.push_back(
            static_cast<uint32_t>(scratch.details.size()));
        scratch.details.emplace_back();
      }
      slot = scratch.free_details.back();
    }
    const StudyEval ev = evaluator.Evaluate(
        si, !want_ineligible, slot != kNoId ? &scratch.details[slot] : nullptr,
        max_unfavourable);
    if (ev.abandoned) {
      ++stats.pruned;
      return;
    }
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
    if (!want[VerdictRank(ev.verdict)]) return;
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
    r.score = score_of(share, relevance, proximity);
    r.detail = slot;
    r.open_site = open_site;
    if (heap.size() < static_cast<size_t>(options.top_k)) {
      if (slot != kNoId) scratch.free_details.pop_back();
      heap.push_back(r);
      std::push_heap(heap.begin(), heap.end(), BetterOrder());
    } else if (Better(r, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), BetterOrder());
      if (slot != kNoId) scratch.free_details.back() = heap.back().detail;
      heap.back() = r;
      std::push_heap(heap.begin(), heap.end(), BetterOrder());
    }
  };

  // First stage: status and relevance; then either evaluate in NCT order
  // (evaluate_all) or queue by bound, best first, so that the top_k fills
  // with strong studies early and the rest can be skipped wholesale.
  std::vector<Queued>& queued = scratch.queued;
  std::vector<uint32_t>& bucket_of = scratch.bucket_of;
  queued.clear();
  bucket_of.clear();
  auto first = [&](uint32_t si) -> absl::Status {
    ++stats.candidates;
    if (options.interrupt && ++since_check >= kInterruptStride) {
      since_check = 0;
      if (absl::Status s = options.interrupt(); !s.ok()) return s;
    }
    if (!status_ok[keys[si].status]) return absl::OkStatus();
    if (gated(keys[si])) {
      ++stats.gated;
      return absl::OkStatus();
    }
    const MatchStrength relevance =
        has_conditions ? evaluator.Relevance(si) : MatchStrength::kNone;
    if (require_relevance && relevance == MatchStrength::kNone) {
      return absl::OkStatus();
    }
    if (!prune) {
      evaluate(si, relevance, keys[si], certain_of(keys[si]));
      return absl::OkStatus();
    }
    const Ranked b = bound_with_key(keys[si], si, certain_of(keys[si]),
                                    relevance, proximity_bound(keys[si]));
    queued.push_back({si, relevance});
    bucket_of.push_back(BoundBucket(b));
    return absl::OkStatus();
  };

  // Best-first walk over streams of by_bound ranks. Each stream is ascending
  // and all of its studies share one relevance and one proximity bound, so
  // its static bound never increases along it; the streams are merged best
  // head first. A candidate's patient bound (status, gate, facts the
  // patient lacks, the proximity cap of its sites) is at most its static
  // one; it waits in `pending` until no unseen candidate can beat it, so
  // studies are evaluated in exact bound order, and the walk ends at the
  // first static bound that cannot rank: the rest is never read.
  const std::vector<uint32_t>& order = snapshot.by_bound();
  const std::vector<internal::StudyKey>& ordered_keys =
      snapshot.keys_by_bound();
  // Every open site of the cell's studies lies beyond the distance limit.
  auto cell_beyond_limit = [&](const internal::SiteCell& cell) {
    return cell.sites == internal::kSitesCap && limit_km &&
           cap_min_km(cell.cap) > *limit_km;
  };
  // The proximity tier of a site cell for a located patient (the related
  // walk below): the last tier whose head is at least the cell's bound.
  auto tier_of = [&](uint32_t cell_index) -> uint8_t {
    const internal::SiteCell& cell = snapshot.site_cells()[cell_index];
    if (cell_beyond_limit(cell)) return kNoTier;
    const double bound = proximity_bound(cell);
    uint8_t t = 0;
    while (t + 1 < kProximityTiers && kTierProximity[t + 1] >= bound) ++t;
    return t;
  };
  // Only for a patient without a linked condition (the cell streams and
  // the unlocated scan below); one without an age walks the orders that
  // count the age units as certainly UNKNOWN too (tighter bounds, fewer
  // candidates read).
  const bool without_age = (missing & snapshot.age_fact()) != 0;
  const std::vector<uint32_t>& unlinked_certain =
      snapshot.unlinked_certain(facts.conditions_complete, without_age);
  // The walk is bound by cache misses per candidate: its fact counts (read
  // when it is taken, soon: it heads its stream), and the next rank's key
  // and study index.
  auto prefetch_next = [&](size_t next_rank) {
    const char* next =
        reinterpret_cast<const char*>(ordered_keys.data() + next_rank);
    __builtin_prefetch(next);
    __builtin_prefetch(next + sizeof(internal::StudyKey) - 1);
    __builtin_prefetch(order.data() + next_rank);
  };
  // A head's bound ties to study 0, which ranks first among equal bounds:
  // still a bound of the head (and of the stream's rest), without reading
  // the head's study index (a cache miss) before it is taken.
  auto advance = [&](Stream& st) -> bool {
    if (st.words == nullptr) {
      // A site cell's list, for a patient without a linked condition: in
      // Snapshot::unlinked_order(complete), with its bound.
      if (st.next >= st.count) return false;
      st.rank = st.ranks[st.next++];
      const internal::StudyKey& k = ordered_keys[st.rank];
      st.head = bound_with_key(k, 0, unlinked_certain[st.rank], st.strength,
                               st.proximity);
      __builtin_prefetch(fact_counts.data() + k.facts_begin);
      if (st.next < st.count) {
        prefetch_next(st.ranks[st.next]);
        __builtin_prefetch(unlinked_certain.data() + st.ranks[st.next]);
      }
      return true;
    }
    const std::vector<uint32_t>& cell_of_rank = snapshot.cell_of_rank();
    while (true) {
      while (st.rest == 0) {
        if (++st.word >= st.nwords) return false;
        st.rest = st.words[st.word];
      }
      const int bit = __builtin_ctzll(st.rest);
      st.rest &= st.rest - 1;
      st.rank = st.RankAt(st.word, bit);
      if (st.tier_of_cell == nullptr ||
          st.tier_of_cell[cell_of_rank[st.rank]] == st.tier) {
        break;
      }
    }
    const internal::StudyKey& k = ordered_keys[st.rank];
    st.head = bound_with_key(k, 0, k.always_unknown, st.strength, st.proximity);
    __builtin_prefetch(fact_counts.data() + k.facts_begin);
    if (st.rest != 0) {  // the next bit, and its site cell for a tier
      const size_t next_rank = st.RankAt(st.word, __builtin_ctzll(st.rest));
      prefetch_next(next_rank);
      if (st.tier_of_cell != nullptr)
        __builtin_prefetch(cell_of_rank.data() + next_rank);
    }
    return true;
  };
  auto walk = [&](std::vector<Stream>& streams) -> absl::Status {
    // Streams in buckets by their head's bound (BoundBucket: O(1) per step
    // with hundreds of site cells, where a heap of streams cost a tenth of
    // the call); a stream's head only gets worse, so it moves to a later
    // bucket and the cursor only advances.
    std::vector<Stream*>& buckets = scratch.buckets;
    buckets.assign(kBoundBuckets, nullptr);
    size_t cursor = buckets.size();
    auto file = [&](Stream* st) {
      const uint32_t b = BoundBucket(st->head);
      st->next_in_bucket = buckets[b];
      buckets[b] = st;
      cursor = std::min<size_t>(cursor, b);
    };
    for (Stream& st : streams) {
      if (st.words != nullptr) {
        if (st.nwords == 0) continue;
        st.word = 0;
        st.rest = st.words[0];
        if (st.start_unprimed) {
          // A tier's first member may lie far into the bitmap: the stream
          // starts unprimed, filed at the bitmap's first rank with the
          // tier's proximity (at least as good as any member's bound), and
          // searches for its first member only if that bound is reached.
          while (st.rest == 0 && st.word + 1 < st.nwords) {
            st.rest = st.words[++st.word];
          }
          if (st.rest == 0) continue;
          const uint32_t first_rank =
              st.RankAt(st.word, __builtin_ctzll(st.rest));
          st.head = bound_with_key(ordered_keys[first_rank], 0,
                                   ordered_keys[first_rank].always_unknown,
                                   st.strength, st.proximity);
          st.primed = false;
          file(&st);
          continue;
        }
      } else {
        st.next = 0;
      }
      if (advance(st)) file(&st);
    }
    // Candidates whose patient bound may rank, best bound at the front.
    std::vector<Pending>& pending = scratch.pending;
    pending.clear();
    auto worse = [](const Pending& a, const Pending& b) {
      return Better(b.bound, a.bound);
    };
    while (true) {
      while (cursor < buckets.size() && buckets[cursor] == nullptr) ++cursor;
      const bool unseen = cursor < buckets.size();
      // Bounds every unseen candidate.
      const Ranked edge = unseen ? BucketEdge(cursor) : Ranked{};
      if (!pending.empty() &&
          (!unseen || !Better(edge, pending.front().bound))) {
        std::pop_heap(pending.begin(), pending.end(), worse);
        const Pending p = pending.back();
        pending.pop_back();
        // The study most likely evaluated next: its record on its way
        // while this one is evaluated.
        if (!pending.empty()) {
          __builtin_prefetch(compact.data() + pending.front().bound.study);
        }
        if (options.interrupt && ++since_check >= kInterruptStride) {
          since_check = 0;
          if (absl::Status s = options.interrupt(); !s.ok()) return s;
        }
        evaluate(p.bound.study, p.relevance, *p.key, p.certain);
        continue;
      }
      if (!unseen) break;
      if (cannot_rank(edge)) {
        // Nothing unseen can rank, and everything pending is worse still.
        stats.pruned += pending.size();
        break;
      }
      Stream& st = *buckets[cursor];
      buckets[cursor] = st.next_in_bucket;
      // Nothing further in this stream can rank: drop it unread.
      if (cannot_rank(st.head)) continue;
      if (!st.primed) {
        st.primed = true;
        if (advance(st)) file(&st);
        continue;
      }
      const uint32_t rank = st.rank;
      const MatchStrength relevance = st.strength;
      const double proximity = st.proximity;
      if (advance(st)) file(&st);
      ++stats.candidates;
      if (options.interrupt && ++since_check >= kInterruptStride) {
        since_check = 0;
        if (absl::Status s = options.interrupt(); !s.ok()) return s;
      }
      const internal::StudyKey& k = ordered_keys[rank];
      if (!status_ok[k.status]) continue;
      if (gated(k)) {
        ++stats.gated;
        continue;
      }
      const uint32_t certain = certain_of(k);
      const Ranked b = bound_with_key(k, order[rank], certain, relevance,
                                      std::min(proximity, proximity_bound(k)));
      if (cannot_rank(b)) {
        ++stats.pruned;
        continue;
      }
      pending.push_back({b, relevance, &k, certain});
      std::push_heap(pending.begin(), pending.end(), worse);
    }
    return absl::OkStatus();
  };

  std::vector<Stream>& streams = scratch.streams;
  streams.clear();
  if (stats.used_index) {
    // The three strength classes of the related studies; for a located
    // patient (top_k >= kTieredTopK) each split by proximity tier: a study
    // belongs to the tier of its site cell's proximity bound (the smallest
    // tier head at least that bound), so a far study waits behind near
    // ones with the same share bound. Studies in cells wholly beyond the
    // distance limit are in no tier: counted as candidates outside the
    // distance and left out of the tiers' bitmaps, never read.
    const bool tiered = facts.location && options.top_k >= kTieredTopK;
    const int tiers = tiered ? kProximityTiers : 1;
    bool split = false;  // the bitmaps split by tier (scratch.tier_words)
    if (tiered) {
      const std::vector<internal::SiteCell>& cells = snapshot.site_cells();
      std::vector<uint8_t>& tier_of_cell = scratch.tier_of_cell;
      tier_of_cell.resize(cells.size());
      bool any_beyond = false;
      for (size_t c = 0; c < cells.size(); ++c) {
        tier_of_cell[c] = tier_of(static_cast<uint32_t>(c));
        any_beyond |= tier_of_cell[c] == kNoTier && cells[c].ranks_count > 0;
      }
      // With cells beyond the limit every related rank is classified
      // anyway (to count those beyond): the pass splits the class bitmaps
      // by tier as it goes, so that each tier's stream reads its own
      // members only instead of skipping the other tiers' bit by bit.
      split = any_beyond;
      if (split) {
        const std::vector<uint32_t>& cell_of_rank = snapshot.cell_of_rank();
        for (int c = 0; c < 3; ++c) {
          for (int t = 0; t < kProximityTiers; ++t) {
            scratch.tier_words[c][t].clear();
            scratch.tier_word_index[c][t].clear();
          }
          const std::vector<uint64_t>& bits = scratch.by_strength[c];
          for (size_t i = 0; i < bits.size(); ++i) {
            if (bits[i] == 0) continue;
            uint64_t by_tier[kProximityTiers] = {};
            for (uint64_t rest = bits[i]; rest != 0; rest &= rest - 1) {
              const int bit = __builtin_ctzll(rest);
              const uint8_t tier = tier_of_cell[cell_of_rank[i * 64 + bit]];
              if (tier == kNoTier) {
                ++stats.candidates;
                ++stats.outside_distance;
              } else {
                by_tier[tier] |= uint64_t{1} << bit;
              }
            }
            for (int t = 0; t < kProximityTiers; ++t) {
              if (by_tier[t] == 0) continue;
              scratch.tier_words[c][t].push_back(by_tier[t]);
              scratch.tier_word_index[c][t].push_back(static_cast<uint32_t>(i));
            }
          }
        }
      }
    }
    for (int c = 0; c < 3; ++c) {
      for (int t = 0; t < tiers; ++t) {
        if (split && scratch.tier_words[c][t].empty()) continue;
        Stream st;
        if (split) {
          st.words = scratch.tier_words[c][t].data();
          st.nwords = scratch.tier_words[c][t].size();
          st.word_index = scratch.tier_word_index[c][t].data();
        } else {
          st.words = scratch.by_strength[c].data();
          st.nwords = scratch.by_strength[c].size();
        }
        st.strength = kClassStrength[c];
        st.proximity = tiered ? kTierProximity[t] : best_proximity;
        if (tiered) {
          st.start_unprimed = true;
          if (!split) {
            st.tier_of_cell = scratch.tier_of_cell.data();
            st.tier = static_cast<uint8_t>(t);
          }
        }
        streams.push_back(st);
      }
    }
    if (absl::Status s = walk(streams); !s.ok()) return s;
  } else if (prune && !any_linked && facts.location) {
    // No condition to relate, a located patient: one stream per site cell
    // (its ranks in the unlinked order of the patient's condition list, its
    // cap's proximity bound for all of them), so
    // that far regions are read only as deep as their bound allows; cells
    // wholly beyond the distance limit are not read at all.
    const std::vector<internal::SiteCell>& cells = snapshot.site_cells();
    for (const internal::SiteCell& cell : cells) {
      if (cell.ranks_count == 0) continue;
      if (cell_beyond_limit(cell)) {
        stats.candidates += cell.ranks_count;
        stats.outside_distance += cell.ranks_count;
        continue;
      }
      Stream st;
      st.ranks =
          snapshot.cell_ranks(facts.conditions_complete, without_age).data() +
          cell.ranks_begin;
      st.count = cell.ranks_count;
      st.strength = MatchStrength::kNone;
      st.proximity = proximity_bound(cell);
      streams.push_back(st);
    }
    if (absl::Status s = walk(streams); !s.ok()) return s;
  } else if (prune && !any_linked) {
    // No condition to relate and no location: relevance is NONE and
    // proximity 0 for every study, so the snapshot's unlinked order is the
    // patient's up to the other facts it lacks; the first study that cannot
    // rank ends the scan (keys read through keys_by_bound).
    for (const uint32_t r :
         snapshot.unlinked_order(facts.conditions_complete, without_age)) {
      const uint32_t si = order[r];
      const internal::StudyKey& k = ordered_keys[r];
      ++stats.candidates;
      if (options.interrupt && ++since_check >= kInterruptStride) {
        since_check = 0;
        if (absl::Status s = options.interrupt(); !s.ok()) return s;
      }
      if (!status_ok[k.status]) continue;
      if (gated(k)) {
        ++stats.gated;
        continue;
      }
      // The order is by the bound every such patient shares (the required
      // conditions never satisfied, nor the excluded ones without a
      // complete condition list): the first study whose bound cannot
      // rank ends the scan; evaluate() then applies the patient's tighter
      // bound study by study.
      if (cannot_rank(bound_with_key(k, si, unlinked_certain[r],
                                     MatchStrength::kNone, best_proximity))) {
        stats.pruned += 1;
        break;
      }
      evaluate(si, MatchStrength::kNone, k, certain_of(k));
    }
  } else if (!options.statuses.empty() && !options.evaluate_all) {
    // Status pre-filter: only the studies of the wanted statuses.
    std::vector<uint64_t> wanted((snapshot.size() + 63) / 64, 0);
    for (uint16_t st = 0; st < status_ok.size(); ++st) {
      if (!status_ok[st]) continue;
      for (uint32_t si : snapshot.StudiesWithStatus(st)) {
        wanted[si >> 6] |= uint64_t{1} << (si & 63);
      }
    }
    if (absl::Status s = ForEachBit(wanted, first); !s.ok()) return s;
  } else {
    for (uint32_t si = 0; si < snapshot.size(); ++si) {
      if (absl::Status s = first(si); !s.ok()) return s;
    }
  }

  if (prune && !queued.empty()) {
    // Counting sort by bucket (stable: NCT order within a bucket).
    constexpr int kBuckets = kBoundBuckets;
    std::vector<uint32_t>& start = scratch.start;
    start.assign(kBuckets + 1, 0);
    for (uint32_t b : bucket_of) ++start[b + 1];
    for (int b = 0; b < kBuckets; ++b) start[b + 1] += start[b];
    std::vector<uint32_t>& sorted = scratch.order;
    sorted.resize(queued.size());
    {
      std::vector<uint32_t>& next = scratch.next;
      next.assign(start.begin(), start.end() - 1);
      for (uint32_t i = 0; i < queued.size(); ++i)
        sorted[next[bucket_of[i]]++] = i;
    }
    for (int b = 0; b < kBuckets; ++b) {
      if (start[b] == start[b + 1]) continue;
      if (heap.size() == static_cast<size_t>(options.top_k)) {
        // Nothing in this bucket (or after it) can beat the current k-th.
        if (!Better(BucketEdge(static_cast<uint32_t>(b)), heap.front())) {
          stats.pruned += queued.size() - start[b];
          break;
        }
      }
      for (uint32_t i = start[b]; i < start[b + 1]; ++i) {
        if (options.interrupt && ++since_check >= kInterruptStride) {
          since_check = 0;
          if (absl::Status s = options.interrupt(); !s.ok()) return s;
        }
        const uint32_t si = queued[sorted[i]].study;
        evaluate(si, queued[sorted[i]].relevance, keys[si],
                 certain_of(keys[si]));
      }
    }
  }

  std::sort_heap(heap.begin(), heap.end(), BetterOrder());

  // Details for the returned results only (study strings as views into the
  // snapshot, which each result keeps alive).
  const std::shared_ptr<const Snapshot> keepalive =
      snapshot.weak_from_this().lock();
  response.results.reserve(heap.size());
  for (const Ranked& r : heap) {
    const StudyInfo& info = snapshot.study(r.study);
    const CompactStudy& cs = compact[r.study];
    MatchResult out;
    out.snapshot = keepalive;
    out.nct_id = info.nct_id;
    out.title = info.title;
    out.overall_status = snapshot.String(info.overall_status);
    out.verdict = r.verdict;
    out.score = r.score;
    if (r.detail == kNoId) {  // evaluate_all: evaluated again, in full
      evaluator.Evaluate(r.study, false, &scratch.unranked_detail);
    }
    const StudyDetail& detail =
        r.detail != kNoId ? scratch.details[r.detail] : scratch.unranked_detail;
    std::string& text = scratch.text;
    std::vector<std::pair<uint32_t, uint32_t>>& spans = scratch.spans;
    text.clear();
    spans.clear();
    out.counts = r.counts;
    out.matched_conditions = MatchedConditions(snapshot, facts, r.study);
    if (r.open_site != kNoId) {  // found when the study was ranked
      NearestSite s;
      s.site =
          snapshot.SiteOf(r.study, snapshot.open_sites()[r.open_site].site);
      s.distance_km =
          HaversineKm(profile.location->latitude, profile.location->longitude,
                      s.site.latitude, s.site.longitude);
      out.nearest_site = std::move(s);
    }
    out.explanations.reserve(
        options.include_explanations
            ? info.predicates.size() + 1
            : static_cast<size_t>(r.counts.violated + r.counts.unknown + 1));
    for (uint32_t pi = 0; pi < info.predicates.size(); ++pi) {
      const Outcome o = detail.outcomes[pi];
      if (!options.include_explanations && o != Outcome::kViolated &&
          o != Outcome::kUnknown) {
        continue;
      }
      const internal::CompactPredicate& cp =
          snapshot.predicates()[cs.preds_begin + pi];
      const PredicateInfo& pinfo = info.predicates[pi];
      Explanation e;
      e.predicate = static_cast<int>(pi);
      e.criterion = pinfo.criterion;
      e.kind = cp.kind();
      e.polarity = cp.polarity();
      e.status = detail.evals[pi].status;
      e.outcome = o;
      e.any_of_group = detail.any_of_group[pi];
      const auto begin = static_cast<uint32_t>(text.size());
      internal::AppendReason(&text, snapshot, facts, r.study, pi, cp,
                             detail.evals[pi]);
      spans.emplace_back(begin, static_cast<uint32_t>(text.size()) - begin);
      e.rule_id = snapshot.String(pinfo.rule_id);
      e.evidence = snapshot.EvidenceOf(r.study, pi);
      e.note = snapshot.String(pinfo.note);
      out.explanations.push_back(std::move(e));
    }
    if (r.no_criteria_text) {
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
    // One buffer for the result's patient-side text: the reasons, then the
    // matched conditions' labels (views into the profile until here).
    size_t size = text.size();
    for (const ConditionMatch& cm : out.matched_conditions)
      size += cm.patient_condition.size();
    if (size > 0) {
      std::shared_ptr<char[]> buffer =
          std::make_shared_for_overwrite<char[]>(size);
      char* at = buffer.get();
      std::memcpy(at, text.data(), text.size());
      // The predicates' explanations come first (the synthetic one's
      // reason is static).
      for (size_t i = 0; i < spans.size(); ++i) {
        out.explanations[i].reason =
            std::string_view(at + spans[i].first, spans[i].second);
      }
      at += text.size();
      for (ConditionMatch& cm : out.matched_conditions) {
        const size_t n = cm.patient_condition.size();
        if (n > 0) std::memcpy(at, cm.patient_condition.data(), n);
        cm.patient_condition = std::string_view(at, n);
        at += n;
      }
      out.text = std::move(buffer);
    }
    if (options.include_explanations)
      out.criterion_outcomes = detail.criterion_outcomes;
    out.conflicts.reserve(info.conflicts.size());
    for (uint32_t c : info.conflicts)
      out.conflicts.push_back(snapshot.String(c));
    response.results.push_back(std::move(out));
  }
  return response;
}

}  // namespace trialmatch::match
