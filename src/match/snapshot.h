// Snapshot: an immutable, in-memory view of a set of studies holding exactly
// what matching needs, plus the indexes for candidate generation.
//
//   SnapshotBuilder builder({.rules = rule_set});      // rules: optional
//   for (...) TRIALMATCH_RETURN_IF_ERROR(builder.Add(study, compiled));
//   std::shared_ptr<const Snapshot> snapshot = std::move(builder).Build();
//
// Per study it keeps: id, title, overall status, conditions, condition MeSH
// ids and ancestors (normalised with patient::NormalizeMeshId), located sites
// with their status, and of the CompiledStudy what explanations quote (rule
// ids, evidence as spans into the criteria text, notes, conflicts) with
// repeated strings interned once. No raw JSON, no CompiledStudy copy (about
// 5 KB a study instead of 35). Beside that, a compact evaluation form: flat
// arrays of predicates (numbers, flags, interned concept keys), the criteria
// tree, open sites as unit vectors sorted by latitude, so the matcher's hot
// path reads no strings.
//
// Indexes (for a patient with conditions):
//   * MeSH descriptor -> studies listing it (condition meshes, concepts of
//     the conditions list and of inclusion condition criteria);
//   * MeSH descriptor -> studies listing it as an ancestor;
//   * normalised term -> studies (condition names, concept names);
//   * overall status -> studies.
// Age and sex are not indexed: the structured age/sex predicates come first
// in every compiled study and the matcher stops at the first violated one
// when ineligible studies are not wanted (docs/match.md, "Candidates,
// filters, indexes").
//
// MeSH knowledge the snapshot derives for patient conditions:
//   * term -> descriptor: every MeSH term of the corpus (condition meshes and
//     ancestors), normalised (lower case, punctuation as spaces);
//   * descriptor -> ancestors: from studies listing exactly one condition
//     descriptor (their ancestor list is that descriptor's ancestry; the union
//     over studies, since MeSH versions differ), and from compiled concepts
//     linked to one descriptor (the rules' parent chain);
//   * with SnapshotOptions::rules, patient condition text is also read with
//     the compiler's condition synonym table.
//
// Memory: once built or read, the large arrays the matcher reads at random
// are backed by 2 MiB pages where the kernel allows it (common/
// huge_pages.h, best effort; whole huge pages inside each array only): a
// 100k snapshot's 4 KiB pages overflow the TLB. The file reader reserves
// every array on huge pages before filling it; a built snapshot's arrays are
// collapsed into them afterwards (a copy).
//
// Thread-safety: a built Snapshot is immutable; share it as
// std::shared_ptr<const Snapshot> and call anything const from any thread.
// SnapshotBuilder is not thread-safe.
#ifndef TRIALMATCH_MATCH_SNAPSHOT_H_
#define TRIALMATCH_MATCH_SNAPSHOT_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "criteria/compiled_study.h"
#include "criteria/rule_set.h"
#include "match/geo.h"
#include "match/match_types.h"
#include "model/study.h"

namespace trialmatch::match {

struct SnapshotOptions {
  // The rule set the studies were compiled with. Optional: when set, patient
  // condition texts are also read with its condition synonym table (and its
  // concepts' parent chains feed the ancestry). Kept alive by the snapshot.
  std::shared_ptr<const criteria::RuleSet> rules;
};

// Strings that repeat across studies (rule ids, field paths, notes,
// condition names, facilities, cities, statuses ...) are interned once in the
// snapshot's string table: Snapshot::String(id).
inline constexpr uint32_t kNoString = 0xffffffffu;

// What the snapshot keeps of one predicate for explanations.
struct PredicateInfo {
  uint32_t rule_id = kNoString;
  uint32_t field = kNoString;     // evidence field path
  uint32_t note = kNoString;      // the compiler's note
  uint32_t quantity = kNoString;  // as compiled ("hemoglobin")
  uint32_t unit = kNoString;      // as compiled ("g/dL", "xULN")
  // The evidence text: StudyInfo::text.substr(text_begin, text_size) (a
  // slice of the criteria text when it is one, else appended there).
  uint32_t text_begin = 0;
  uint32_t text_size = 0;
  criteria::Span span;
  int32_t criterion = -1;
  criteria::EvidenceSource source = criteria::EvidenceSource::kCriteriaText;
};

// A located site.
struct SiteRecord {
  uint32_t facility = kNoString;
  uint32_t city = kNoString;
  uint32_t state = kNoString;
  uint32_t country = kNoString;
  uint32_t status = kNoString;  // the site's own status; kNoString = none
  float latitude = 0;
  float longitude = 0;
  // Counts for "nearest site": the site's status (or, when it has none, the
  // study's) is RECRUITING, or NOT_YET_RECRUITING while the study itself is
  // NOT_YET_RECRUITING.
  bool open = false;
};

// What the snapshot keeps of one study (cold data, for results). Ids are
// string ids (Snapshot::String) or descriptor keys (Snapshot::MeshId).
struct StudyInfo {
  std::string nct_id;
  std::string title;  // brief title, else official title
  uint32_t overall_status = kNoString;
  std::vector<uint32_t> conditions;        // string ids, as listed
  std::vector<uint32_t> condition_meshes;  // descriptor keys
  std::vector<uint32_t> ancestors;         // descriptor keys
  std::vector<SiteRecord> sites;           // located sites, registry order
  uint32_t listed_sites = 0;               // all sites, located or not
  // The eligibility criteria text as the registry sent it, followed by
  // evidence texts that are not slices of it (structured field values).
  std::string text;
  std::vector<PredicateInfo> predicates;  // CompiledStudy::predicates order
  uint32_t criteria_count = 0;            // CompiledStudy::criteria size
  std::vector<uint32_t> conflicts;        // string ids of the descriptions
  std::vector<uint32_t> notes;            // string ids of the compiler's notes
  uint32_t compiler_version = kNoString;  // string ids
  uint32_t rules_version = kNoString;
};

namespace internal {

inline constexpr uint32_t kNoId = 0xffffffffu;
inline constexpr uint8_t kUnknownQuantity = 0xff;

// The unit an age bound was written in.
enum class AgeUnitCode : uint8_t { kYears, kMonths, kWeeks, kDays };
double AgeUnitYears(AgeUnitCode code);
// The tolerance, in years, with which an age bound written in a unit of
// `unit_years` is compared (the evaluator's and the gate's): none for
// years, 3 days for months and weeks, 1 day for days; it always favours
// the patient (docs/match.md).
inline double AgeToleranceYears(double unit_years) {
  if (unit_years >= 0.99) return 0;
  return unit_years > 0.05 ? 3.0 / 365.25 : 1.0 / 365.25;
}

// One predicate in evaluation form (48 bytes).
struct CompactPredicate {
  double low = 0;
  double high = 0;
  uint32_t concepts_begin = 0;  // into concept_refs()
  uint32_t concepts_count = 0;
  uint32_t source = 0;        // index into the study's predicates (StudyInfo)
  uint8_t kind_code = 0;      // criteria::Kind
  uint8_t polarity_code = 0;  // criteria::Polarity
  uint8_t sex_code = 0;       // model::Sex
  uint8_t quantity = kUnknownQuantity;  // index into Snapshot::quantities()
  AgeUnitCode age_unit = AgeUnitCode::kYears;  // kAge
  bool informational = false;
  bool has_low = false;
  bool low_inclusive = true;
  bool has_high = false;
  bool high_inclusive = true;
  bool relative_to_uln = false;
  bool unit_ok = true;  // unit is the quantity's canonical one (or xULN)
  bool study_conditions = false;  // the study's own conditions list
  bool history_wording = false;   // criterion says history/prior/previous
  bool accepts_healthy_volunteers = false;

  criteria::Kind kind() const { return static_cast<criteria::Kind>(kind_code); }
  criteria::Polarity polarity() const {
    return static_cast<criteria::Polarity>(polarity_code);
  }
  model::Sex sex() const { return static_cast<model::Sex>(sex_code); }
};

// A criterion (or a study's root: the conjunction of its top-level
// criteria and structured predicates).
struct Node {
  bool any_of = false;
  int32_t criterion = -1;    // -1 for the root
  uint32_t preds_begin = 0;  // into node_preds(): global predicate indexes
  uint32_t preds_count = 0;
  uint32_t children_begin = 0;  // into node_children(): global node indexes
  uint32_t children_count = 0;
};

// A condition concept, interned: MeSH keys and a term key.
struct Concept {
  uint32_t name = kNoId;    // term key
  uint32_t mesh_begin = 0;  // into key_pool(): descriptor keys (sorted)
  uint32_t mesh_count = 0;
  uint32_t anc_begin = 0;  // into key_pool(): ancestor keys (sorted)
  uint32_t anc_count = 0;
};

// An open located site. A study's open sites are sorted by latitude, so the
// nearest one is found by expanding from the patient's latitude.
struct OpenSite {
  UnitVector v;
  float latitude_rad = 0;
  uint32_t site = 0;  // index into StudyInfo::sites
};

struct CompactStudy {
  uint32_t root = 0;         // node index
  uint32_t preds_begin = 0;  // into predicates(): the study's, in order
  uint32_t preds_count = 0;
  uint32_t rel_begin = 0;  // into concept_refs(): relevance concepts
  uint32_t rel_count = 0;
  uint32_t sites_begin = 0;  // into open_sites()
  uint32_t sites_count = 0;
  // A spherical cap holding every open site: its centre and angular radius
  // (radians, slightly enlarged), for a cheap lower bound of the distance.
  UnitVector sites_center;
  float sites_radius = 0;
  uint16_t status = 0;             // index into statuses()
  bool has_criteria_text = false;  // the compiler read some criteria
  // For the matcher's ranking bound: how many units the outcome counts
  // tally (deciding predicates outside any-of groups, plus one per group),
  // how many of them are always UNKNOWN (kOther, kContraception), and how
  // many depend on each fact (fact_counts()).
  uint32_t units = 0;
  uint32_t always_unknown = 0;
  uint32_t facts_begin = 0;
  uint32_t facts_count = 0;
};

// The facts a deciding predicate depends on, for the matcher's ranking
// bound: a predicate on a fact the patient lacks is certainly not satisfied
// (UNKNOWN for a missing value, sex, score or status; violated or UNKNOWN
// for the condition facts).
// Quantities use their index in Snapshot::quantities() (below kFactFirst);
// the rest are fixed classes. Bits of a 64-bit mask.
inline constexpr int kFactFirst = 57;
// A required condition: never satisfied when no patient condition links to
// anything the snapshot knows (none given, or none known).
inline constexpr int kFactRequiredCondition = 57;
inline constexpr int kFactPerformance = 58;  // ECOG or Karnofsky
inline constexpr int kFactSex = 59;          // sex, for a sex requirement
inline constexpr int kFactPregnancy = 60;
inline constexpr int kFactBreastfeeding = 61;
inline constexpr int kFactHealthyVolunteer = 62;  // for "does not accept"
// An excluded condition: never satisfied unless the patient's condition list
// is complete (else the patient has it, violated, or it is UNKNOWN).
inline constexpr int kFactConditionList = 63;

// How many counted units of a study depend on one fact.
struct FactCount {
  uint8_t fact = 0;
  uint16_t count = 0;
};

// Where a study's open located sites are, for the first pass's proximity
// bound (StudyKey::sites).
inline constexpr uint8_t kSitesNone = 0;      // no open located site
inline constexpr uint8_t kSitesCap = 1;       // within the cap below
inline constexpr uint8_t kSitesAnywhere = 2;  // no useful cap

// No age bound in StudyKey::min_age / max_age.
inline constexpr uint8_t kNoMaxAge = 0xff;

// A spherical cap holding open sites: its center (unit vector) and the cos
// and sin of its angular radius, in floats (the matcher allows 5 km for
// their rounding). Of a study (StudyKey) or of a site cell (SiteCell).
struct SiteCap {
  float center_x = 0;
  float center_y = 0;
  float center_z = 0;
  float cos_radius = 1;
  float sin_radius = 0;
};

// What the matcher's first pass reads of every candidate, densely: 36 bytes
// (the first pass touches ~25 % of a 100k-study snapshot per call and is
// bound by memory latency; CompactStudy is 3x larger).
struct StudyKey {
  uint16_t status = 0;
  uint16_t units = 0;           // saturated at 0xffff
  uint16_t always_unknown = 0;  // saturated at 0xffff
  bool has_criteria_text : 1 = false;
  // units and always_unknown are exact (not saturated): the ranking bound
  // may use them.
  bool exact : 1 = true;
  uint8_t sites : 2 = kSitesNone;
  // The structured eligibility (minimumAge/maximumAge, sex, healthy
  // volunteers: root predicates of kind kAge/kSex/kHealthyVolunteers,
  // inclusion, deciding) as a gate the first pass checks
  // before any other work: a patient whose sex is the other one, who is a
  // healthy volunteer where they are not accepted, or whose age is below
  // min_age_days (age in years x 365.25) or above max_age (years),
  // certainly violates a top-level item (INELIGIBLE). The thresholds are
  // the evaluator's own (evaluate.cc, EvalAge) taken at their most lenient
  // reading: the bound's unit tolerance, "older than N" and whole-number
  // rounding all widen the window, min_age_days rounds down and max_age up
  // (one more completed unit for a maximum), so the gate never skips a
  // study the evaluator admits (GateTest); the evaluator decides what it
  // lets through. kNoMaxAge: no maximum (or one beyond 253 years).
  bool requires_female : 1 = false;
  bool requires_male : 1 = false;
  // The structured healthy-volunteers flag says no (a patient who is one
  // certainly violates it).
  bool rejects_healthy_volunteers : 1 = false;
  uint8_t facts_count = 0;   // distinct facts: at most 64
  uint32_t facts_begin = 0;  // into fact_counts()
  uint16_t min_age_days = 0;
  uint8_t max_age = kNoMaxAge;
  // The cap around the open sites (CompactStudy::sites_center and
  // sites_radius) when sites is kSitesCap.
  SiteCap cap;
};
static_assert(sizeof(StudyKey) == 36);

// The largest share of satisfied units a study can reach when
// `certainly_unknown` of its units are UNKNOWN (at least always_unknown):
// computed identically wherever it is needed (ranking bound, matcher.cc).
// Inline: the matcher calls it for every candidate it reads.
inline double MaxShare(const StudyKey& k, uint32_t certainly_unknown) {
  if (!k.exact) return 1.0;  // saturated counts: no bound
  if (k.units == 0) return 0;
  if (certainly_unknown > 0) {
    return static_cast<double>(k.units -
                               std::min<uint32_t>(certainly_unknown, k.units)) /
           k.units;
  }
  if (!k.has_criteria_text) return static_cast<double>(k.units) / (k.units + 1);
  return 1.0;
}

// The units of `k` certainly not satisfied for a patient who lacks the
// facts whose bits are set in `missing` (kFact* above): always_unknown plus
// the units on those facts. `fact_counts`: Snapshot::fact_counts().data().
// Inline: the matcher calls it for every candidate it reads.
inline uint32_t CertainlyUnfavourable(const StudyKey& k,
                                      const FactCount* fact_counts,
                                      uint64_t missing) {
  uint32_t certain = k.always_unknown;
  for (uint32_t i = 0; i < k.facts_count; ++i) {
    const FactCount& fc = fact_counts[k.facts_begin + i];
    if ((missing >> fc.fact) & 1u) certain += fc.count;
  }
  return certain;
}

// A cell of the site index (Snapshot::site_cells()): the studies whose open
// located sites lie in one region, each study in exactly one cell, as
// by_bound() ranks. `sites` says what the cell's cap is: kSitesNone (its
// studies have no open located site: proximity 0), kSitesAnywhere (no
// useful cap: studies whose sites span more than a third of the globe),
// kSitesCap (every open site of every study in the cell lies within the cap
// below, as floats: the same 5 km allowance as StudyKey's cap).
struct SiteCell {
  uint8_t sites = kSitesNone;
  SiteCap cap;
  uint32_t ranks_begin = 0;  // into Snapshot::cell_ranks()
  uint32_t ranks_count = 0;
};

// Reads and writes snapshots (snapshot_io.cc).
struct SnapshotCodec;

}  // namespace internal

struct SnapshotStats {
  size_t studies = 0;
  size_t predicates = 0;
  size_t criteria = 0;
  size_t concepts = 0;   // distinct
  size_t mesh_keys = 0;  // distinct descriptors
  size_t terms = 0;      // distinct normalised terms
  size_t located_sites = 0;
  size_t open_sites = 0;
  size_t ancestry_entries = 0;  // descriptors with known ancestors
  size_t strings = 0;           // distinct interned strings
};

// Always owned by a std::shared_ptr (Build, SnapshotBuilder::Build): match
// results keep it alive through shared_from_this (MatchResponse::snapshot).
class Snapshot : public std::enable_shared_from_this<Snapshot> {
 public:
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  // Convenience: builds from pairs. Errors as SnapshotBuilder::Add.
  static absl::StatusOr<std::shared_ptr<const Snapshot>> Build(
      const std::vector<std::pair<model::Study, criteria::CompiledStudy>>&
          studies,
      SnapshotOptions options = {});

  // Studies are kept sorted by NCT id; index i is the i-th in that order.
  size_t size() const { return info_.size(); }
  const StudyInfo& study(size_t i) const { return info_[i]; }
  std::optional<size_t> Find(std::string_view nct_id) const;
  const SnapshotStats& stats() const { return stats_; }
  const SnapshotOptions& options() const { return options_; }

  // An interned string ("" for kNoString).
  std::string_view String(uint32_t id) const {
    return id == kNoString ? std::string_view()
                           : std::string_view(strings_[id]);
  }
  std::string_view OverallStatus(size_t study) const {
    return String(info_[study].overall_status);
  }
  // Site `site` of StudyInfo::sites, with its strings (views into this).
  Site SiteOf(size_t study, size_t site) const;
  // The evidence of predicate `predicate` as the compiler gave it (views
  // into this).
  EvidenceRef EvidenceOf(size_t study, size_t predicate) const;
  std::string_view EvidenceText(size_t study, size_t predicate) const;

  // --- For the matcher (evaluation form; not a stable API) ---------------
  const std::vector<internal::CompactStudy>& compact() const {
    return compact_;
  }
  const std::vector<internal::StudyKey>& keys() const { return keys_; }
  const std::vector<internal::FactCount>& fact_counts() const {
    return fact_counts_;
  }
  // Every study, best possible rank first when relevance and proximity are
  // the same for all (no patient conditions): ELIGIBLE-capable first, then
  // MaxShare descending, then index.
  const std::vector<uint32_t>& by_bound() const { return by_bound_; }
  // keys() in by_bound() order (keys_by_bound()[j] == keys()[by_bound()[j]]),
  // for a sequential scan in that order.
  const std::vector<internal::StudyKey>& keys_by_bound() const {
    return keys_by_bound_;
  }
  // The site index (derived at build and load, not stored): studies by
  // where their open sites are, for located patients the condition index
  // does not narrow (docs/match.md, "Site cells"). A study's cell is the
  // finest of three grids (2, 8, 32 degrees) whose cell size is at least
  // the radius of its sites' cap, chosen by the cap's center; the cell's own
  // cap is then computed from its studies' caps. cell_ranks(complete): the
  // ranks of each cell (SiteCell::ranks_begin/count, the same in both) in
  // unlinked_order(complete) (best bound for those patients first).
  const std::vector<internal::SiteCell>& site_cells() const {
    return site_cells_;
  }
  const std::vector<uint32_t>& cell_ranks(bool conditions_complete,
                                          bool without_age = false) const {
    return cell_ranks_[Unlinked(conditions_complete, without_age)];
  }
  // The cell of each by_bound() rank (index into site_cells()).
  const std::vector<uint32_t>& cell_of_rank() const { return cell_of_rank_; }
  // For patients none of whose conditions links to the snapshot (or who
  // have none): their required conditions are never satisfied (facts.h),
  // so every study's units on kFactRequiredCondition are certainly
  // unfavourable, and without a complete condition list those on
  // kFactConditionList too (an excluded condition is then violated or
  // UNKNOWN). unlinked_certain(complete)[r]: always_unknown plus those
  // units, by by_bound() rank. unlinked_order(complete): the ranks best
  // first by the bound with that count (ELIGIBLE-capable, then MaxShare
  // descending, then study index), the order those patients are walked in
  // (the cell lists of cell_ranks() follow it too). Derived, not stored.
  // `without_age`: the same for patients who also have no age (nor birth
  // date), whose age units are certainly UNKNOWN too: a tighter order for
  // them.
  const std::vector<uint32_t>& unlinked_certain(
      bool conditions_complete, bool without_age = false) const {
    return unlinked_certain_[Unlinked(conditions_complete, without_age)];
  }
  const std::vector<uint32_t>& unlinked_order(bool conditions_complete,
                                              bool without_age = false) const {
    return unlinked_order_[Unlinked(conditions_complete, without_age)];
  }
  // The fact bit (kFact* numbering: a quantity index) of the age; 0 when
  // the snapshot has no age quantity.
  uint64_t age_fact() const { return age_fact_; }
  const std::vector<internal::CompactPredicate>& predicates() const {
    return preds_;
  }
  const std::vector<internal::Node>& nodes() const { return nodes_; }
  const std::vector<uint32_t>& node_preds() const { return node_preds_; }
  const std::vector<uint32_t>& node_children() const { return node_children_; }
  const std::vector<internal::Concept>& concepts() const { return concepts_; }
  // Concept references of predicates and of studies' relevance lists, and
  // parallel to them the study's wording (string id) and whether the
  // reference comes from an inclusion criterion (relevance lists).
  const std::vector<uint32_t>& concept_refs() const { return concept_refs_; }
  const std::vector<uint32_t>& concept_texts() const { return concept_texts_; }
  const std::vector<uint8_t>& concept_from_criteria() const {
    return concept_from_criteria_;
  }
  const std::vector<uint32_t>& key_pool() const { return key_pool_; }
  const std::vector<internal::OpenSite>& open_sites() const {
    return open_sites_;
  }
  const std::vector<std::string>& quantities() const { return quantities_; }
  const std::vector<std::string>& statuses() const { return statuses_; }

  // Interned keys: kNoId when unknown to the snapshot.
  uint32_t MeshKey(std::string_view normalized_mesh_id) const;
  uint32_t TermKey(std::string_view normalized_term) const;
  const std::string& MeshId(uint32_t key) const { return mesh_ids_[key]; }
  size_t mesh_key_count() const { return mesh_ids_.size(); }
  size_t term_count() const { return terms_.size(); }
  const std::string& Term(uint32_t key) const { return terms_[key]; }
  // Descriptor keys whose MeSH term normalises to `term_key` (may be empty).
  const std::vector<uint32_t>* MeshForTerm(uint32_t term_key) const;
  // Sorted ancestor keys of a descriptor, or nullptr when its ancestry is not
  // known (an empty vector: known to have none).
  const std::vector<uint32_t>* Ancestors(uint32_t mesh_key) const;
  // Index of a status name ("RECRUITING"), or nullopt.
  std::optional<uint16_t> StatusIndex(std::string_view status) const;

  // Relevance posting lists, or nullptr: the studies whose relevance
  // concepts (conditions, inclusion conditions) carry the descriptor, have it
  // as an ancestor, or are named by the term, as positions in by_bound()
  // (ascending: best patient-independent bound first; by_bound()[r] is the
  // study index).
  const std::vector<uint32_t>* RanksWithMesh(uint32_t key) const;
  const std::vector<uint32_t>* RanksWithAncestor(uint32_t key) const;
  const std::vector<uint32_t>* RanksWithTerm(uint32_t key) const;
  // The long posting lists again, as bitmaps over by_bound ranks
  // (rank_words() words each), derived at load: OR-ing words costs less
  // than setting one bit per rank once a list holds more than one rank in
  // 128. nullptr for the shorter lists and for unknown keys.
  const uint64_t* RankBitsWithMesh(uint32_t key) const;
  const uint64_t* RankBitsWithAncestor(uint32_t key) const;
  const uint64_t* RankBitsWithTerm(uint32_t key) const;
  size_t rank_words() const { return (by_bound_.size() + 63) / 64; }
  const std::vector<uint32_t>& StudiesWithStatus(uint16_t status) const {
    return by_status_[status];
  }

 private:
  friend class SnapshotBuilder;
  friend struct internal::SnapshotCodec;  // snapshot_io.h
  Snapshot() = default;

  // The derived lookups, rebuilt rather than stored: keys_by_bound_ (keys_
  // in by_bound_ order), age_fact_, unlinked_certain_ / unlinked_order_,
  // site_cells_, cell_ranks_, cell_of_rank_ and the posting bitmaps; then the
  // huge-page advice (AdviseHugePages).
  void DeriveIndexes();
  void DeriveSiteCells();
  void DerivePostingBits();
  void AdviseHugePages() const;

  SnapshotOptions options_;
  std::vector<StudyInfo> info_;
  std::vector<internal::CompactStudy> compact_;
  std::vector<internal::StudyKey> keys_;
  std::vector<internal::FactCount> fact_counts_;
  std::vector<uint32_t> by_bound_;
  std::vector<internal::StudyKey> keys_by_bound_;
  std::vector<internal::SiteCell> site_cells_;
  // The unlinked orders' variants, [Unlinked(complete, without_age)].
  static constexpr int kUnlinkedVariants = 4;
  static int Unlinked(bool conditions_complete, bool without_age) {
    return (without_age ? 2 : 0) + (conditions_complete ? 0 : 1);
  }
  std::array<std::vector<uint32_t>, kUnlinkedVariants> cell_ranks_;
  std::vector<uint32_t> cell_of_rank_;
  std::array<std::vector<uint32_t>, kUnlinkedVariants> unlinked_certain_;
  std::array<std::vector<uint32_t>, kUnlinkedVariants> unlinked_order_;
  uint64_t age_fact_ = 0;
  std::vector<internal::CompactPredicate> preds_;
  std::vector<internal::Node> nodes_;
  std::vector<uint32_t> node_preds_;
  std::vector<uint32_t> node_children_;
  std::vector<internal::Concept> concepts_;
  std::vector<uint32_t> concept_refs_;
  std::vector<uint32_t> concept_texts_;
  std::vector<uint8_t> concept_from_criteria_;
  std::vector<uint32_t> key_pool_;
  std::vector<internal::OpenSite> open_sites_;
  std::vector<std::string> quantities_;
  std::vector<std::string> statuses_;
  std::vector<std::string> strings_;
  std::vector<std::string> mesh_ids_;
  std::vector<std::string> terms_;
  absl::flat_hash_map<std::string, uint32_t> mesh_key_;
  absl::flat_hash_map<std::string, uint32_t> term_key_;
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> term_mesh_;
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> ancestry_;
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> by_mesh_;
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> by_ancestor_;
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> by_term_;
  absl::flat_hash_map<uint32_t, std::vector<uint64_t>> bits_by_mesh_;
  absl::flat_hash_map<uint32_t, std::vector<uint64_t>> bits_by_ancestor_;
  absl::flat_hash_map<uint32_t, std::vector<uint64_t>> bits_by_term_;
  std::vector<std::vector<uint32_t>> by_status_;
  SnapshotStats stats_;
};

// Collects studies and builds a Snapshot. Each study is reduced to the
// snapshot's compact form as it is added (the builder keeps no
// CompiledStudy), so memory stays that of the result. Not thread-safe.
class SnapshotBuilder {
 public:
  explicit SnapshotBuilder(SnapshotOptions options = {});
  ~SnapshotBuilder();
  SnapshotBuilder(SnapshotBuilder&&) noexcept;
  SnapshotBuilder& operator=(SnapshotBuilder&&) noexcept;

  // Adds one study with its compiled eligibility. Errors (the study is not
  // added; the builder stays usable):
  //  * kInvalidArgument: invalid NCT id; `compiled.nct_id` non-empty and
  //    different from the study's; a compiled study whose indexes are
  //    inconsistent (predicate/criterion/child index out of range, a
  //    criterion tree with a cycle or a child listed under two parents).
  //  * kAlreadyExists: the NCT id was added before.
  absl::Status Add(const model::Study& study,
                   const criteria::CompiledStudy& compiled);

  size_t size() const;

  // Builds the snapshot (sorted by NCT id) and leaves the builder empty.
  std::shared_ptr<const Snapshot> Build() &&;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Lower case, ASCII punctuation as spaces, whitespace collapsed, trimmed:
// "Diabetes Mellitus, Type 2" -> "diabetes mellitus type 2". The key of
// condition names on both sides.
std::string NormalizeTerm(std::string_view text);

}  // namespace trialmatch::match

#endif  // TRIALMATCH_MATCH_SNAPSHOT_H_
