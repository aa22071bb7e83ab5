// Matcher: ranks a Snapshot's studies for one patient.
//
//   absl::StatusOr<Matcher> matcher = Matcher::Create({});   // or Matcher()
//   MatchOptions options;
//   options.top_k = 20;
//   options.include_explanations = true;
//   absl::StatusOr<MatchResponse> r = matcher->Match(*snapshot, profile,
//   options);
//
// For each candidate study: every compiled predicate is evaluated to MET /
// NOT_MET / UNKNOWN (evaluate.h; per-kind semantics in docs/match.md), the
// criteria tree combines them (any-of groups: satisfied if one alternative
// is, violated only if all are), and the verdict is
//   INELIGIBLE  some criterion is definitely violated,
//   ELIGIBLE    everything decided in the patient's favour (and the study
//               has criteria text: a study with none is at best POSSIBLE),
//   POSSIBLE    otherwise; the result lists what is unknown.
// Missing data never excludes.
//
// Candidates: for a patient with conditions (and require_condition_match),
// the snapshot's condition indexes give the studies related to one of them,
// with their match strength. For a patient without conditions, or whose
// conditions link to nothing the snapshot knows (MatchResponse::notes says
// so), every study is a candidate. Then: the status filter, the structured
// gate, the distance filter, a ranking bound (a study whose best possible
// verdict and score cannot beat the current top_k is skipped unevaluated),
// evaluation (abandoned at the first violated top-level item when INELIGIBLE
// is not wanted: the structured age/sex predicates come first), the verdict
// filter, a top_k heap. Related studies are walked best static bound first
// (the posting lists hold ranks in Snapshot::by_bound(); for a located
// patient split by proximity tier) and evaluated in patient-bound order, so
// the walk stops at the first study that cannot rank; a located patient
// without a linked condition walks the snapshot's site cells the same way
// (docs/match.md, "Candidates, filters, indexes").
// evaluate_all scans every study and evaluates every candidate (brute
// force): it returns the same results, which the tests check (the index and
// the bound are accelerators, not filters of their own).
//
// Ranking: verdict (ELIGIBLE, POSSIBLE, INELIGIBLE), then score (descending),
// then NCT id (ascending). score = w_criteria·share + w_condition·strength +
// w_proximity·proximity, see MatcherOptions and docs/match.md.
//
// Strings (explanations, condition matches, site) are built only for the
// returned top_k. Results carry patient values in reasons: return them to
// the client, never log them.
//
// Thread-safety: Match is const; any number of threads may call it at once
// on one Matcher and one Snapshot.
#ifndef TRIALMATCH_MATCH_MATCHER_H_
#define TRIALMATCH_MATCH_MATCHER_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "match/match_types.h"
#include "match/snapshot.h"
#include "patient/profile.h"

namespace trialmatch::match {

inline constexpr int kMaxTopK = 10'000;

struct MatchOptions {
  int top_k = 50;  // 1 .. kMaxTopK
  // Verdicts to return; empty = all three.
  std::vector<Verdict> verdicts = {Verdict::kEligible, Verdict::kPossible};
  // Study overall statuses to consider; empty = any.
  std::vector<std::string> statuses = {"RECRUITING", "NOT_YET_RECRUITING"};
  // Travel limit in km. The profile's own limit (location.max_distance_km)
  // also applies: the smaller wins. Without a patient location there is no
  // distance and no filter.
  std::optional<double> max_distance_km;
  // With a distance limit, keep studies that have no located open site
  // (their distance cannot be known; missing data never excludes).
  bool include_unlocated = true;
  // Every predicate explained (else only the violated and unknown ones) and
  // per-criterion outcomes.
  bool include_explanations = false;
  // For a patient with conditions: only studies where one of them matches a
  // study condition (conditions list or an inclusion criterion), at any
  // strength. Without it, unrelated studies are returned too (POSSIBLE when
  // their required condition is merely not listed).
  bool require_condition_match = true;
  // Scan every study instead of using the condition index, and evaluate
  // every candidate instead of skipping those that cannot rank (brute
  // force: same results, exact MatchStats tallies; benchmarks use it to
  // show the gain).
  bool evaluate_all = false;
  // Called before the scan and every 256 candidates; a non-OK status (e.g.
  // kCancelled, kDeadlineExceeded) aborts Match, which returns it.
  std::function<absl::Status()> interrupt;
};

struct ScoreWeights {
  double criteria = 0.6;    // share of deciding criteria satisfied
  double condition = 0.25;  // condition match strength
  double proximity = 0.15;  // nearest open site
};

struct MatcherOptions {
  // Upper limits of normal by quantity ("ast" -> 40), canonical units. ×ULN
  // bounds are decided only for these quantities (else UNKNOWN).
  std::vector<std::pair<std::string, double>> reference_uln;
  ScoreWeights weights;
  // Distance at which proximity is 0.5: proximity = 1 / (1 + km / scale).
  double proximity_scale_km = 100;
  // Every call as with MatchOptions::evaluate_all (brute force: the same
  // answers, without the index or the ranking bound). For benchmarks that
  // show the index's gain through the service (`serve --brute_force`).
  bool evaluate_all = false;
};

class Matcher {
 public:
  // Default options (no reference ULNs).
  Matcher();

  // kInvalidArgument: a reference ULN that is not finite and positive, or
  // for a quantity that is not a measurement (age, ECOG, Karnofsky, or a
  // name not in criteria/compiled_study.h), or listed twice; negative or
  // non-finite weights, all-zero weights; a non-positive proximity scale.
  static absl::StatusOr<Matcher> Create(MatcherOptions options);

  // Matches `profile` (as patient::NormalizeProfile returns it) against
  // `snapshot`. Errors: kInvalidArgument for options out of range (top_k
  // outside 1..kMaxTopK, a negative or non-finite max_distance_km); the
  // interrupt's status when it stops the scan.
  absl::StatusOr<MatchResponse> Match(const Snapshot& snapshot,
                                      const patient::Profile& profile,
                                      const MatchOptions& options) const;

  const MatcherOptions& options() const { return options_; }

 private:
  explicit Matcher(MatcherOptions options);
  MatcherOptions options_;
};

}  // namespace trialmatch::match

#endif  // TRIALMATCH_MATCH_MATCHER_H_
