// Snapshot: an immutable, in-memory view of a set of studies holding exactly
// what matching needs, plus the indexes for candidate generation.
//
//   SnapshotBuilder builder({.rules = rule_set});      // rules: optional
//   for (...) TRIALMATCH_RETURN_IF_ERROR(builder.Add(study, std::move(compiled)));
//   std::shared_ptr<const Snapshot> snapshot = std::move(builder).Build();
//
// Per study it keeps: id, title, overall status, conditions, condition MeSH
// ids and ancestors (normalised with patient::NormalizeMeshId), sites with
// their geoPoint and status, and the CompiledStudy (for explanations). No raw
// JSON. Beside that, a compact evaluation form: flat arrays of predicates
// (numbers, flags, interned concept keys), the criteria tree, located open
// sites as unit vectors, so the matcher's hot path reads no strings.
//
// Indexes (for a patient with conditions):
//   * MeSH descriptor -> studies listing it (condition meshes, concepts of
//     the conditions list and of inclusion condition criteria);
//   * MeSH descriptor -> studies listing it as an ancestor;
//   * normalised term -> studies (condition names, concept names);
//   * overall status -> studies.
// Age and sex are not indexed: the structured age/sex predicates come first
// in every compiled study and the matcher stops at the first violated one
// when ineligible studies are not wanted (docs/match.md, "Pre-filters").
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
// Thread-safety: a built Snapshot is immutable; share it as
// std::shared_ptr<const Snapshot> and call anything const from any thread.
// SnapshotBuilder is not thread-safe.
#ifndef TRIALMATCH_MATCH_SNAPSHOT_H_
#define TRIALMATCH_MATCH_SNAPSHOT_H_

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

// Where a study condition concept used for relevance came from.
struct RelevanceSource {
  std::string text;  // the study's wording
  bool from_criteria = false;
};

// What the snapshot keeps of one study (cold data, for results).
struct StudyInfo {
  std::string nct_id;
  std::string title;  // brief title, else official title
  std::string overall_status;
  std::vector<std::string> conditions;
  std::vector<std::string> condition_mesh_ids;  // normalised
  std::vector<std::string> ancestor_mesh_ids;   // normalised
  std::vector<Site> sites;  // located sites, registry order
  int listed_sites = 0;     // all sites, located or not
  criteria::CompiledStudy compiled;
  std::vector<RelevanceSource> relevance;  // parallel to the relevance concepts
};

namespace internal {

inline constexpr uint32_t kNoId = 0xffffffffu;
inline constexpr uint8_t kUnknownQuantity = 0xff;

// One predicate in evaluation form.
struct CompactPredicate {
  criteria::Kind kind = criteria::Kind::kOther;
  criteria::Polarity polarity = criteria::Polarity::kInclusion;
  bool informational = false;
  bool has_low = false;
  bool low_inclusive = true;
  bool has_high = false;
  bool high_inclusive = true;
  bool relative_to_uln = false;
  bool unit_ok = true;        // unit is the quantity's canonical one (or xULN)
  bool study_conditions = false;  // the study's own conditions list
  bool history_wording = false;   // criterion says history/prior/previous
  bool accepts_healthy_volunteers = false;
  model::Sex sex = model::Sex::kAll;
  uint8_t quantity = kUnknownQuantity;  // index into Snapshot::quantities()
  double age_unit_years = 1;  // kAge: length of the unit the bound was written in
  double low = 0;
  double high = 0;
  uint32_t concepts_begin = 0;  // into concept_refs()
  uint32_t concepts_count = 0;
  uint32_t source = 0;  // index into CompiledStudy::predicates
};

// A criterion (or a study's root: the conjunction of its top-level
// criteria and structured predicates).
struct Node {
  bool any_of = false;
  int32_t criterion = -1;  // -1 for the root
  uint32_t preds_begin = 0;  // into node_preds(): global predicate indexes
  uint32_t preds_count = 0;
  uint32_t children_begin = 0;  // into node_children(): global node indexes
  uint32_t children_count = 0;
};

// A condition concept, interned: MeSH keys and a term key.
struct Concept {
  uint32_t name = kNoId;  // term key
  uint32_t mesh_begin = 0;  // into key_pool(): descriptor keys (sorted)
  uint32_t mesh_count = 0;
  uint32_t anc_begin = 0;   // into key_pool(): ancestor keys (sorted)
  uint32_t anc_count = 0;
};

struct OpenSite {
  UnitVector v;
  uint32_t site = 0;  // index into StudyInfo::sites
};

struct CompactStudy {
  uint32_t root = 0;  // node index
  uint32_t preds_begin = 0;  // into predicates(): the study's, in order
  uint32_t preds_count = 0;
  uint32_t rel_begin = 0;  // into concept_refs(): relevance concepts
  uint32_t rel_count = 0;
  uint32_t sites_begin = 0;  // into open_sites()
  uint32_t sites_count = 0;
  uint16_t status = 0;  // index into statuses()
  bool has_criteria_text = false;  // the compiler read some criteria
};

}  // namespace internal

struct SnapshotStats {
  size_t studies = 0;
  size_t predicates = 0;
  size_t criteria = 0;
  size_t concepts = 0;     // distinct
  size_t mesh_keys = 0;    // distinct descriptors
  size_t terms = 0;        // distinct normalised terms
  size_t located_sites = 0;
  size_t open_sites = 0;
  size_t ancestry_entries = 0;  // descriptors with known ancestors
};

class Snapshot {
 public:
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  // Convenience: builds from pairs (copies the studies' needed fields and
  // the compiled studies). Errors as SnapshotBuilder::Add.
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

  // --- For the matcher (evaluation form; not a stable API) ---------------
  const std::vector<internal::CompactStudy>& compact() const { return compact_; }
  const std::vector<internal::CompactPredicate>& predicates() const { return preds_; }
  const std::vector<internal::Node>& nodes() const { return nodes_; }
  const std::vector<uint32_t>& node_preds() const { return node_preds_; }
  const std::vector<uint32_t>& node_children() const { return node_children_; }
  const std::vector<internal::Concept>& concepts() const { return concepts_; }
  const std::vector<uint32_t>& concept_refs() const { return concept_refs_; }
  const std::vector<uint32_t>& key_pool() const { return key_pool_; }
  const std::vector<internal::OpenSite>& open_sites() const { return open_sites_; }
  const std::vector<std::string>& quantities() const { return quantities_; }
  const std::vector<std::string>& statuses() const { return statuses_; }

  // Interned keys: kNoId when unknown to the snapshot.
  uint32_t MeshKey(std::string_view normalized_mesh_id) const;
  uint32_t TermKey(std::string_view normalized_term) const;
  const std::string& MeshId(uint32_t key) const { return mesh_ids_[key]; }
  const std::string& Term(uint32_t key) const { return terms_[key]; }
  // Descriptor keys whose MeSH term normalises to `term_key` (may be empty).
  const std::vector<uint32_t>* MeshForTerm(uint32_t term_key) const;
  // Sorted ancestor keys of a descriptor, or nullptr when its ancestry is not
  // known (an empty vector: known to have none).
  const std::vector<uint32_t>* Ancestors(uint32_t mesh_key) const;
  // Index of a status name ("RECRUITING"), or nullopt.
  std::optional<uint16_t> StatusIndex(std::string_view status) const;

  // Posting lists (sorted study indexes), or nullptr.
  const std::vector<uint32_t>* StudiesWithMesh(uint32_t key) const;
  const std::vector<uint32_t>* StudiesWithAncestor(uint32_t key) const;
  const std::vector<uint32_t>* StudiesWithTerm(uint32_t key) const;
  const std::vector<uint32_t>& StudiesWithStatus(uint16_t status) const {
    return by_status_[status];
  }

 private:
  friend class SnapshotBuilder;
  Snapshot() = default;

  SnapshotOptions options_;
  std::vector<StudyInfo> info_;
  std::vector<internal::CompactStudy> compact_;
  std::vector<internal::CompactPredicate> preds_;
  std::vector<internal::Node> nodes_;
  std::vector<uint32_t> node_preds_;
  std::vector<uint32_t> node_children_;
  std::vector<internal::Concept> concepts_;
  std::vector<uint32_t> concept_refs_;
  std::vector<uint32_t> key_pool_;
  std::vector<internal::OpenSite> open_sites_;
  std::vector<std::string> quantities_;
  std::vector<std::string> statuses_;
  std::vector<std::string> mesh_ids_;
  std::vector<std::string> terms_;
  absl::flat_hash_map<std::string, uint32_t> mesh_key_;
  absl::flat_hash_map<std::string, uint32_t> term_key_;
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> term_mesh_;
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> ancestry_;
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> by_mesh_;
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> by_ancestor_;
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> by_term_;
  std::vector<std::vector<uint32_t>> by_status_;
  SnapshotStats stats_;
};

// Collects studies and builds a Snapshot. Not thread-safe.
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
  absl::Status Add(const model::Study& study, criteria::CompiledStudy compiled);

  size_t size() const;

  // Builds the snapshot (sorted by NCT id) and leaves the builder empty.
  std::shared_ptr<const Snapshot> Build() &&;

 private:
  struct Pending;
  SnapshotOptions options_;
  std::vector<Pending> pending_;
  absl::flat_hash_map<std::string, size_t> seen_;
};

// Lower case, ASCII punctuation as spaces, whitespace collapsed, trimmed:
// "Diabetes Mellitus, Type 2" -> "diabetes mellitus type 2". The key of
// condition names on both sides.
std::string NormalizeTerm(std::string_view text);

}  // namespace trialmatch::match

#endif  // TRIALMATCH_MATCH_SNAPSHOT_H_
