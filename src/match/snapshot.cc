#include "match/snapshot.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numbers>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/huge_pages.h"
#include "common/strings.h"
#include "patient/profile.h"
#include "patient/terminology.h"

namespace trialmatch::match {
namespace {

using internal::CompactPredicate;
using internal::CompactStudy;
using internal::Concept;
using internal::kNoId;
using internal::kNoMaxAge;
using internal::kUnknownQuantity;
using internal::Node;
using internal::OpenSite;

// The canonical quantities of criteria/compiled_study.h, interned first.
constexpr std::string_view kCanonicalQuantities[] = {"age",
                                                     "hba1c",
                                                     "egfr",
                                                     "creatinine",
                                                     "creatinine_clearance",
                                                     "bmi",
                                                     "hemoglobin",
                                                     "platelets",
                                                     "anc",
                                                     "wbc",
                                                     "bilirubin_total",
                                                     "ast",
                                                     "alt",
                                                     "inr",
                                                     "lvef",
                                                     "systolic_bp",
                                                     "diastolic_bp",
                                                     "fasting_glucose",
                                                     "weight",
                                                     "ecog",
                                                     "karnofsky"};

constexpr std::string_view kUlnUnit = "xULN";
constexpr double kDegToRad = 3.14159265358979323846 / 180.0;

bool IsNumericKind(criteria::Kind k) {
  return k == criteria::Kind::kAge || k == criteria::Kind::kLab ||
         k == criteria::Kind::kPerformanceStatus;
}

std::string_view CanonicalUnitOf(std::string_view quantity) {
  if (quantity == "age") return "years";
  if (quantity == "ecog" || quantity == "karnofsky") return "score";
  return patient::Terminology::Builtin().CanonicalUnit(quantity);
}

// The unit an age bound was written in ("6 Months"); years when unknown.
internal::AgeUnitCode AgeUnitOf(const criteria::Predicate& p) {
  using internal::AgeUnitCode;
  if (p.original_value.empty()) return AgeUnitCode::kYears;
  absl::StatusOr<model::Age> age = model::ParseAge(p.original_value);
  if (age.ok()) {
    switch (age->unit) {
      case model::AgeUnit::kMonths:
        return AgeUnitCode::kMonths;
      case model::AgeUnit::kWeeks:
        return AgeUnitCode::kWeeks;
      case model::AgeUnit::kDays:
      case model::AgeUnit::kHours:
      case model::AgeUnit::kMinutes:
        return AgeUnitCode::kDays;
      case model::AgeUnit::kYears:
        break;
    }
    return AgeUnitCode::kYears;
  }
  const std::string lower =
      absl::AsciiStrToLower(common::ToAbsl(p.original_value));
  if (lower.find("month") != std::string::npos) return AgeUnitCode::kMonths;
  if (lower.find("week") != std::string::npos ||
      lower.find("wk") != std::string::npos) {
    return AgeUnitCode::kWeeks;
  }
  if (lower.find("day") != std::string::npos) return AgeUnitCode::kDays;
  return AgeUnitCode::kYears;
}

bool HasWord(std::string_view lower, std::string_view word) {
  size_t pos = 0;
  while ((pos = lower.find(word, pos)) != std::string_view::npos) {
    const bool start_ok =
        pos == 0 ||
        !absl::ascii_isalpha(static_cast<unsigned char>(lower[pos - 1]));
    if (start_ok) return true;
    pos += word.size();
  }
  return false;
}

bool HistoryWording(std::string_view text) {
  const std::string lower = absl::AsciiStrToLower(common::ToAbsl(text));
  for (std::string_view w : {"history", "prior", "previous", "past", "former",
                             "formerly", "ever had"}) {
    if (HasWord(lower, w)) return true;
  }
  return false;
}

bool SiteOpen(std::string_view site_status, std::string_view study_status) {
  const std::string_view effective =
      site_status.empty() ? study_status : site_status;
  if (effective == "RECRUITING") return true;
  return effective == "NOT_YET_RECRUITING" &&
         study_status == "NOT_YET_RECRUITING";
}

void SortUnique(std::vector<uint32_t>* v) {
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
}

// Checks the index structure of a compiled study (see SnapshotBuilder::Add).
absl::Status ValidateCompiled(const criteria::CompiledStudy& cs) {
  const int np = static_cast<int>(cs.predicates.size());
  const int nc = static_cast<int>(cs.criteria.size());
  for (int i = 0; i < np; ++i) {
    const int c = cs.predicates[i].criterion;
    if (c < -1 || c >= nc) {
      return absl::InvalidArgumentError(
          absl::StrCat("predicate ", i, ": criterion index out of range"));
    }
    if (c >= 0) {
      const std::vector<int>& listed = cs.criteria[c].predicates;
      if (std::count(listed.begin(), listed.end(), i) != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "predicate ", i, ": not listed exactly once by criterion ", c));
      }
    }
  }
  for (int c = 0; c < nc; ++c) {
    const criteria::Criterion& cr = cs.criteria[c];
    for (int p : cr.predicates) {
      if (p < 0 || p >= np || cs.predicates[p].criterion != c) {
        return absl::InvalidArgumentError(
            absl::StrCat("criterion ", c, ": lists predicate ", p,
                         " that does not belong to it"));
      }
    }
    if (cr.parent < -1 || cr.parent >= nc || cr.parent == c) {
      return absl::InvalidArgumentError(
          absl::StrCat("criterion ", c, ": parent index out of range"));
    }
    if (cr.parent >= 0) {
      const std::vector<int>& sib = cs.criteria[cr.parent].children;
      if (std::count(sib.begin(), sib.end(), c) != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "criterion ", c, ": not listed exactly once by its parent"));
      }
    }
    for (int ch : cr.children) {
      if (ch < 0 || ch >= nc || cs.criteria[ch].parent != c) {
        return absl::InvalidArgumentError(absl::StrCat(
            "criterion ", c, ": child ", ch, " does not point back to it"));
      }
    }
    // Walk up: a cycle never reaches -1.
    int up = cr.parent;
    for (int steps = 0; up >= 0; ++steps) {
      if (steps > nc) {
        return absl::InvalidArgumentError(
            absl::StrCat("criterion ", c, ": parent chain has a cycle"));
      }
      up = cs.criteria[up].parent;
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string NormalizeTerm(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool keep = absl::ascii_isalnum(c) || c >= 0x80;
    if (!keep) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(static_cast<char>(absl::ascii_tolower(c)));
  }
  return out;
}

// --- Snapshot ----------------------------------------------------------------

namespace {

// The list under `key` (a vector), or nullptr.
template <typename Map>
const typename Map::mapped_type* FindList(const Map& map, uint32_t key) {
  if (key == kNoId) return nullptr;
  auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

// The index of the "age" quantity in `quantities` (interned first by the
// builder; read back as stored), if any.
std::optional<uint8_t> AgeQuantity(const std::vector<std::string>& quantities) {
  for (size_t q = 0; q < quantities.size(); ++q) {
    if (quantities[q] == "age") return static_cast<uint8_t>(q);
  }
  return std::nullopt;
}

// The static best-bound orders (by_bound_, unlinked_order_): study `a` (key
// ka, `ca` units certainly unfavourable, study index ia) before `b`: able to
// be ELIGIBLE first, then the larger MaxShare, then the smaller study index
// (as the matcher's Better breaks ties).
bool BoundFirst(const internal::StudyKey& ka, uint32_t ca, uint32_t ia,
                const internal::StudyKey& kb, uint32_t cb, uint32_t ib) {
  const bool ea = ka.has_criteria_text && ca == 0;
  const bool eb = kb.has_criteria_text && cb == 0;
  if (ea != eb) return ea;
  const double sa = internal::MaxShare(ka, ca);
  const double sb = internal::MaxShare(kb, cb);
  if (sa != sb) return sa > sb;
  return ia < ib;
}

// StudyKey's gate from the study's root predicates (snapshot.h, StudyKey).
void SetGate(const std::vector<CompactPredicate>& preds,
             const std::vector<Node>& nodes,
             const std::vector<uint32_t>& node_preds, const CompactStudy& c,
             std::optional<uint8_t> age_quantity, internal::StudyKey* k) {
  const Node& root = nodes[c.root];
  double min_age = 0;  // years
  double max_age = kNoMaxAge;
  for (uint32_t i = 0; i < root.preds_count; ++i) {
    const CompactPredicate& p = preds[node_preds[root.preds_begin + i]];
    if (p.informational || p.polarity() != criteria::Polarity::kInclusion) {
      continue;
    }
    if (p.kind() == criteria::Kind::kHealthyVolunteers) {
      if (!p.accepts_healthy_volunteers) k->rejects_healthy_volunteers = true;
      continue;
    }
    if (p.kind() == criteria::Kind::kSex) {
      if (p.sex() == model::Sex::kFemale) k->requires_female = true;
      if (p.sex() == model::Sex::kMale) k->requires_male = true;
      continue;
    }
    // Exactly the age predicates the evaluator compares as ages
    // (evaluate.cc, EvalNumeric -> EvalAge); bounds are in years.
    if (p.kind() != criteria::Kind::kAge || !age_quantity ||
        p.quantity != *age_quantity || !p.unit_ok || p.relative_to_uln) {
      continue;
    }
    // EvalAge compares age / unit (+ or - the unit's tolerance, in the
    // patient's favour) with the bound in units, rounded to a whole number
    // of units when within 0.02 of one; it violates a minimum l when
    // a + tol < l - 1e-7 (inclusive, or not: "older than l" is stricter),
    // a maximum h when a - tol >= h + 1 (completed units; an exclusive or
    // fractional maximum is violated sooner).
    const double u = AgeUnitYears(p.age_unit);
    const double tol = internal::AgeToleranceYears(u) / u;
    auto lenient = [](double x, bool low) {  // the whole-number rounding
      const double n = std::round(x);
      if (std::fabs(x - n) >= 0.02) return x;
      return low ? std::min(x, n) : std::max(x, n);
    };
    if (p.has_low && std::isfinite(p.low)) {
      const double l = lenient(p.low / u, true);
      // 1e-6 years below the threshold: floating-point margin.
      min_age = std::max(min_age, (l - 1e-7 - tol) * u - 1e-6);
    }
    if (p.has_high && std::isfinite(p.high)) {
      // (Above the evaluator's h + 1 - 1e-7 by 1e-7 units: the margin.)
      const double h = lenient(p.high / u, false);
      max_age = std::min(max_age, std::ceil((h + 1 + tol) * u));
    }
  }
  k->min_age_days = static_cast<uint16_t>(
      std::clamp(std::floor(min_age * 365.25), 0.0, 65535.0));
  k->max_age = max_age >= kNoMaxAge - 1
                   ? kNoMaxAge
                   : static_cast<uint8_t>(std::max(max_age, 0.0));
}

}  // namespace

std::optional<size_t> Snapshot::Find(std::string_view nct_id) const {
  auto it = std::lower_bound(
      info_.begin(), info_.end(), nct_id,
      [](const StudyInfo& s, std::string_view id) { return s.nct_id < id; });
  if (it == info_.end() || it->nct_id != nct_id) return std::nullopt;
  return static_cast<size_t>(it - info_.begin());
}

uint32_t Snapshot::MeshKey(std::string_view normalized_mesh_id) const {
  auto it = mesh_key_.find(std::string(normalized_mesh_id));
  return it == mesh_key_.end() ? kNoId : it->second;
}

uint32_t Snapshot::TermKey(std::string_view normalized_term) const {
  auto it = term_key_.find(std::string(normalized_term));
  return it == term_key_.end() ? kNoId : it->second;
}

const std::vector<uint32_t>* Snapshot::MeshForTerm(uint32_t term_key) const {
  return FindList(term_mesh_, term_key);
}

const std::vector<uint32_t>* Snapshot::Ancestors(uint32_t mesh_key) const {
  return FindList(ancestry_, mesh_key);
}

std::optional<uint16_t> Snapshot::StatusIndex(std::string_view status) const {
  for (size_t i = 0; i < statuses_.size(); ++i) {
    if (statuses_[i] == status) return static_cast<uint16_t>(i);
  }
  return std::nullopt;
}

void Snapshot::DeriveIndexes() {
  keys_by_bound_.clear();
  keys_by_bound_.reserve(by_bound_.size());
  for (uint32_t si : by_bound_) keys_by_bound_.push_back(keys_[si]);
  const std::optional<uint8_t> age = AgeQuantity(quantities_);
  age_fact_ = age && *age < internal::kFactFirst ? uint64_t{1} << *age : 0;
  // Variant 0: a complete condition list (required-condition units);
  // variant 1: an incomplete one (the excluded-condition units too);
  // 2 and 3: the same without an age.
  for (int v = 0; v < kUnlinkedVariants; ++v) {
    const uint64_t missing =
        (uint64_t{1} << internal::kFactRequiredCondition) |
        (v % 2 == 1 ? uint64_t{1} << internal::kFactConditionList : 0) |
        (v >= 2 ? age_fact_ : 0);
    std::vector<uint32_t>& certain_of = unlinked_certain_[v];
    certain_of.resize(by_bound_.size());
    for (uint32_t r = 0; r < by_bound_.size(); ++r) {
      certain_of[r] = internal::CertainlyUnfavourable(
          keys_by_bound_[r], fact_counts_.data(), missing);
    }
    std::vector<uint32_t>& order = unlinked_order_[v];
    order.resize(by_bound_.size());
    for (uint32_t r = 0; r < by_bound_.size(); ++r) order[r] = r;
    // The matcher's walk needs every stream in this exact order (ties by
    // study index, as by_bound_): a stream is dropped at its first head
    // that cannot rank.
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return BoundFirst(keys_by_bound_[a], certain_of[a], by_bound_[a],
                        keys_by_bound_[b], certain_of[b], by_bound_[b]);
    });
  }
  DeriveSiteCells();
  DerivePostingBits();
  AdviseHugePages();
}

namespace {

// Collapses the whole huge pages inside `v` (common/huge_pages.h). Arrays
// the file reader reserved on huge pages are huge already: no copy.
template <typename T>
void CollapseHuge(const std::vector<T>& v) {
  (void)common::CollapseHugePages(v.data(), v.size() * sizeof(T));
}

}  // namespace

void Snapshot::AdviseHugePages() const {
  // The arrays the matcher reads at random per call (a 100k snapshot's
  // 4 KiB pages overflow the TLB).
  CollapseHuge(info_);
  CollapseHuge(compact_);
  CollapseHuge(keys_);
  CollapseHuge(fact_counts_);
  CollapseHuge(by_bound_);
  CollapseHuge(keys_by_bound_);
  CollapseHuge(cell_of_rank_);
  for (int v = 0; v < kUnlinkedVariants; ++v) {
    CollapseHuge(cell_ranks_[v]);
    CollapseHuge(unlinked_certain_[v]);
    CollapseHuge(unlinked_order_[v]);
  }
  CollapseHuge(preds_);
  CollapseHuge(nodes_);
  CollapseHuge(node_preds_);
  CollapseHuge(node_children_);
  CollapseHuge(concepts_);
  CollapseHuge(concept_refs_);
  CollapseHuge(concept_texts_);
  CollapseHuge(key_pool_);
  CollapseHuge(open_sites_);
}

void Snapshot::DerivePostingBits() {
  // Marking a sparse list costs ~7 instructions per rank, OR-ing a bitmap
  // ~4 per word (callgrind at 100k): the bitmap pays from about one rank
  // per two words. 100k studies: 293 lists, 3.7 MB.
  const size_t words = rank_words();
  auto derive =
      [&](const absl::flat_hash_map<uint32_t, std::vector<uint32_t>>& lists,
          absl::flat_hash_map<uint32_t, std::vector<uint64_t>>* out) {
        out->clear();
        for (const auto& [key, ranks] : lists) {
          if (ranks.size() * 2 < words) continue;
          std::vector<uint64_t>& bits = (*out)[key];
          bits.assign(words, 0);
          for (uint32_t r : ranks) bits[r >> 6] |= uint64_t{1} << (r & 63);
        }
      };
  derive(by_mesh_, &bits_by_mesh_);
  derive(by_ancestor_, &bits_by_ancestor_);
  derive(by_term_, &bits_by_term_);
}

void Snapshot::DeriveSiteCells() {
  using internal::SiteCell;
  constexpr double kDegToRad = std::numbers::pi / 180;
  constexpr double kLevelDeg[] = {2, 8, 32};
  constexpr int kLevels = std::size(kLevelDeg);
  site_cells_.assign(2, SiteCell{});
  site_cells_[0].sites = internal::kSitesNone;
  site_cells_[1].sites = internal::kSitesAnywhere;
  // The cell of every rank: by the level its cap radius fits and the grid
  // cell of the cap's center.
  std::vector<uint32_t> cell_of(by_bound_.size(), 0);
  absl::flat_hash_map<uint64_t, uint32_t> cell_by_grid;
  for (uint32_t r = 0; r < by_bound_.size(); ++r) {
    const internal::StudyKey& k = keys_by_bound_[r];
    if (k.sites != internal::kSitesCap) {
      cell_of[r] = k.sites == internal::kSitesNone ? 0 : 1;
      continue;
    }
    const CompactStudy& c = compact_[by_bound_[r]];
    const double radius_deg = c.sites_radius / kDegToRad;
    int level = 0;
    while (level < kLevels && radius_deg > kLevelDeg[level]) ++level;
    if (level == kLevels) {
      cell_of[r] = 1;
      continue;
    }
    const UnitVector& v = c.sites_center;
    const double lat =
        std::asin(std::clamp(static_cast<double>(v.z), -1.0, 1.0)) / kDegToRad;
    const double lon = std::atan2(v.y, v.x) / kDegToRad;
    const auto row =
        static_cast<uint64_t>(std::max(0.0, (lat + 90) / kLevelDeg[level]));
    const auto col =
        static_cast<uint64_t>(std::max(0.0, (lon + 180) / kLevelDeg[level]));
    const uint64_t grid =
        (uint64_t{static_cast<uint32_t>(level)} << 32) | (row << 16) | col;
    const auto [it, inserted] = cell_by_grid.try_emplace(
        grid, static_cast<uint32_t>(site_cells_.size()));
    if (inserted) {
      SiteCell cell;
      cell.sites = internal::kSitesCap;
      site_cells_.push_back(cell);
    }
    cell_of[r] = it->second;
  }

  // Each grid cell's cap: the normalised mean of its studies' centers, and
  // the largest (angle to a study's center + that study's radius).
  const size_t n = site_cells_.size();
  std::vector<double> sum(3 * n, 0.0);
  std::vector<double> radius(n, 0.0);
  for (uint32_t r = 0; r < by_bound_.size(); ++r) {
    if (cell_of[r] < 2) continue;
    const UnitVector& v = compact_[by_bound_[r]].sites_center;
    sum[3 * cell_of[r]] += v.x;
    sum[3 * cell_of[r] + 1] += v.y;
    sum[3 * cell_of[r] + 2] += v.z;
  }
  for (size_t i = 2; i < n; ++i) {
    const double norm =
        std::sqrt(sum[3 * i] * sum[3 * i] + sum[3 * i + 1] * sum[3 * i + 1] +
                  sum[3 * i + 2] * sum[3 * i + 2]);
    SiteCell& cell = site_cells_[i];
    if (norm < 1e-6) {
      cell.sites = internal::kSitesAnywhere;
      continue;
    }
    cell.cap.center_x = static_cast<float>(sum[3 * i] / norm);
    cell.cap.center_y = static_cast<float>(sum[3 * i + 1] / norm);
    cell.cap.center_z = static_cast<float>(sum[3 * i + 2] / norm);
  }
  for (uint32_t r = 0; r < by_bound_.size(); ++r) {
    if (cell_of[r] < 2) continue;
    const SiteCell& cell = site_cells_[cell_of[r]];
    const CompactStudy& c = compact_[by_bound_[r]];
    // Against the float center the cell keeps: the cap holds exactly.
    const double dot =
        static_cast<double>(cell.cap.center_x) * c.sites_center.x +
        static_cast<double>(cell.cap.center_y) * c.sites_center.y +
        static_cast<double>(cell.cap.center_z) * c.sites_center.z;
    radius[cell_of[r]] =
        std::max(radius[cell_of[r]],
                 std::acos(std::clamp(dot, -1.0, 1.0)) + c.sites_radius);
  }
  for (size_t i = 2; i < n; ++i) {
    SiteCell& cell = site_cells_[i];
    if (cell.sites != internal::kSitesCap) continue;
    const double rad = radius[i] + 1e-6;
    if (rad >= 3.2) {
      cell.sites = internal::kSitesAnywhere;
      continue;
    }
    cell.cap.cos_radius = static_cast<float>(std::cos(rad));
    cell.cap.sin_radius = static_cast<float>(std::sin(rad));
  }

  // Ranks grouped by cell, in each unlinked order within each.
  for (uint32_t c : cell_of) ++site_cells_[c].ranks_count;
  uint32_t begin = 0;
  for (SiteCell& cell : site_cells_) {
    cell.ranks_begin = begin;
    begin += cell.ranks_count;
  }
  for (int v = 0; v < kUnlinkedVariants; ++v) {
    cell_ranks_[v].assign(by_bound_.size(), 0);
    std::vector<uint32_t> next(n);
    for (size_t i = 0; i < n; ++i) next[i] = site_cells_[i].ranks_begin;
    for (uint32_t r : unlinked_order_[v]) {
      cell_ranks_[v][next[cell_of[r]]++] = r;
    }
  }
  cell_of_rank_ = std::move(cell_of);
}

const std::vector<uint32_t>* Snapshot::RanksWithMesh(uint32_t key) const {
  return FindList(by_mesh_, key);
}
const std::vector<uint32_t>* Snapshot::RanksWithAncestor(uint32_t key) const {
  return FindList(by_ancestor_, key);
}
const std::vector<uint32_t>* Snapshot::RanksWithTerm(uint32_t key) const {
  return FindList(by_term_, key);
}

namespace {
// The words of a bitmap found by FindList, or nullptr.
const uint64_t* BitsOf(const std::vector<uint64_t>* bits) {
  return bits == nullptr ? nullptr : bits->data();
}
}  // namespace

const uint64_t* Snapshot::RankBitsWithMesh(uint32_t key) const {
  return BitsOf(FindList(bits_by_mesh_, key));
}
const uint64_t* Snapshot::RankBitsWithAncestor(uint32_t key) const {
  return BitsOf(FindList(bits_by_ancestor_, key));
}
const uint64_t* Snapshot::RankBitsWithTerm(uint32_t key) const {
  return BitsOf(FindList(bits_by_term_, key));
}

Site Snapshot::SiteOf(size_t study, size_t site) const {
  const SiteRecord& r = info_[study].sites[site];
  Site out;
  out.facility = String(r.facility);
  out.city = String(r.city);
  out.state = String(r.state);
  out.country = String(r.country);
  out.status = String(r.status);
  out.latitude = r.latitude;
  out.longitude = r.longitude;
  out.open = r.open;
  return out;
}

std::string_view Snapshot::EvidenceText(size_t study, size_t predicate) const {
  const StudyInfo& info = info_[study];
  const PredicateInfo& p = info.predicates[predicate];
  return std::string_view(info.text).substr(p.text_begin, p.text_size);
}

EvidenceRef Snapshot::EvidenceOf(size_t study, size_t predicate) const {
  const PredicateInfo& p = info_[study].predicates[predicate];
  EvidenceRef e;
  e.source = p.source;
  e.field = String(p.field);
  e.span = p.span;
  e.text = EvidenceText(study, predicate);
  return e;
}

absl::StatusOr<std::shared_ptr<const Snapshot>> Snapshot::Build(
    const std::vector<std::pair<model::Study, criteria::CompiledStudy>>&
        studies,
    SnapshotOptions options) {
  SnapshotBuilder builder(std::move(options));
  for (const auto& [study, compiled] : studies) {
    absl::Status s = builder.Add(study, compiled);
    if (!s.ok()) return s;
  }
  return std::move(builder).Build();
}

namespace internal {

double AgeUnitYears(AgeUnitCode code) {
  switch (code) {
    case AgeUnitCode::kMonths:
      return 1.0 / 12.0;
    case AgeUnitCode::kWeeks:
      return 7.0 / 365.25;
    case AgeUnitCode::kDays:
      return 1.0 / 365.25;
    case AgeUnitCode::kYears:
      break;
  }
  return 1.0;
}

}  // namespace internal

// --- SnapshotBuilder
// -----------------------------------------------------------

// The snapshot under construction plus the build-only lookup tables. Studies
// are compacted as they are added, in insertion order; Build() sorts the
// per-study records by NCT id (the flat arrays they point into stay as they
// are) and then builds the posting lists.
struct SnapshotBuilder::State {
  std::unique_ptr<Snapshot> snap{new Snapshot()};
  absl::flat_hash_map<std::string, uint32_t> nct_seen;
  absl::flat_hash_map<std::string, uint32_t> string_index;
  absl::flat_hash_map<std::string, uint32_t> concept_index;
  std::string concept_key;  // InternConcept's buffer
  absl::flat_hash_map<std::string, uint8_t> quantity_index;

  // Interning looks the text up before copying it: almost every string of
  // a study was seen before (rule ids, units, statuses, places).
  uint32_t Str(std::string_view text) {
    if (text.empty()) return kNoString;
    if (auto it = string_index.find(common::ToAbsl(text));
        it != string_index.end()) {
      return it->second;
    }
    const auto id = static_cast<uint32_t>(snap->strings_.size());
    string_index.emplace(std::string(text), id);
    snap->strings_.emplace_back(text);
    return id;
  }

  // Raw descriptor ids and condition texts as the registry writes them,
  // mapped to their keys (normalising allocates; the raw forms repeat).
  absl::flat_hash_map<std::string, uint32_t> mesh_raw;
  absl::flat_hash_map<std::string, uint32_t> term_raw;

  uint32_t Mesh(std::string_view id) {
    if (auto it = mesh_raw.find(common::ToAbsl(id)); it != mesh_raw.end()) {
      return it->second;
    }
    std::string norm = patient::NormalizeMeshId(id);
    Snapshot& s = *snap;
    auto [it, inserted] =
        s.mesh_key_.emplace(norm, static_cast<uint32_t>(s.mesh_ids_.size()));
    if (inserted) s.mesh_ids_.push_back(std::move(norm));
    mesh_raw.emplace(std::string(id), it->second);
    return it->second;
  }

  uint32_t Term(std::string_view text) {
    if (auto it = term_raw.find(common::ToAbsl(text)); it != term_raw.end()) {
      return it->second;
    }
    std::string norm = NormalizeTerm(text);
    uint32_t key = kNoId;
    if (!norm.empty()) {
      Snapshot& s = *snap;
      auto [it, inserted] =
          s.term_key_.emplace(norm, static_cast<uint32_t>(s.terms_.size()));
      if (inserted) s.terms_.push_back(std::move(norm));
      key = it->second;
    }
    term_raw.emplace(std::string(text), key);
    return key;
  }

  uint8_t Quantity(const std::string& q) {
    auto it = quantity_index.find(q);
    if (it != quantity_index.end()) return it->second;
    if (snap->quantities_.size() >= kUnknownQuantity) return kUnknownQuantity;
    const auto k = static_cast<uint8_t>(snap->quantities_.size());
    snap->quantities_.push_back(q);
    quantity_index.emplace(q, k);
    return k;
  }

  void AddAncestry(uint32_t key, const std::vector<uint32_t>& anc) {
    std::vector<uint32_t>& a = snap->ancestry_[key];
    for (uint32_t k : anc) {
      if (k != key) a.push_back(k);
    }
  }

  void AddTermMesh(const model::MeshTerm& m) {
    const uint32_t t = Term(m.term);
    if (t == kNoId) return;
    std::vector<uint32_t>& v = snap->term_mesh_[t];
    const uint32_t k = Mesh(m.id);
    if (std::find(v.begin(), v.end(), k) == v.end()) v.push_back(k);
  }

  uint32_t InternConcept(uint32_t name, std::vector<uint32_t> mesh,
                         std::vector<uint32_t> anc) {
    SortUnique(&mesh);
    SortUnique(&anc);
    // The key: name, mesh count, mesh keys, ancestor keys as raw bytes,
    // built in a reused buffer (a lookup allocates nothing).
    std::string& key = concept_key;
    key.clear();
    auto put = [&key](uint32_t v) {
      key.append(reinterpret_cast<const char*>(&v), sizeof v);
    };
    put(name);
    put(static_cast<uint32_t>(mesh.size()));
    for (uint32_t k : mesh) put(k);
    for (uint32_t k : anc) put(k);
    auto it = concept_index.find(absl::string_view(key));
    if (it != concept_index.end()) return it->second;
    Snapshot& s = *snap;
    Concept c;
    c.name = name;
    c.mesh_begin = static_cast<uint32_t>(s.key_pool_.size());
    c.mesh_count = static_cast<uint32_t>(mesh.size());
    s.key_pool_.insert(s.key_pool_.end(), mesh.begin(), mesh.end());
    c.anc_begin = static_cast<uint32_t>(s.key_pool_.size());
    c.anc_count = static_cast<uint32_t>(anc.size());
    s.key_pool_.insert(s.key_pool_.end(), anc.begin(), anc.end());
    const auto id = static_cast<uint32_t>(s.concepts_.size());
    s.concepts_.push_back(c);
    concept_index.emplace(key, id);
    return id;
  }

  uint32_t ConceptOf(const criteria::ConditionConcept& cc) {
    std::vector<uint32_t> mesh;
    std::vector<uint32_t> anc;
    for (const std::string& id : cc.mesh_ids) mesh.push_back(Mesh(id));
    for (const std::string& id : cc.ancestor_mesh_ids) anc.push_back(Mesh(id));
    return InternConcept(Term(cc.normalized.empty() ? cc.text : cc.normalized),
                         std::move(mesh), std::move(anc));
  }

  void AddRef(uint32_t concept_id, std::string_view text, bool from_criteria) {
    snap->concept_refs_.push_back(concept_id);
    snap->concept_texts_.push_back(Str(text));
    snap->concept_from_criteria_.push_back(from_criteria ? 1 : 0);
  }

  void AddStudy(const model::Study& study, const criteria::CompiledStudy& cs);

  // The fact a deciding predicate depends on (snapshot.h), or -1.
  int FactOf(const CompactPredicate& p) const {
    using criteria::Kind;
    const auto& qs = snap->quantities_;
    const bool performance =
        p.quantity < qs.size() &&
        (qs[p.quantity] == "ecog" || qs[p.quantity] == "karnofsky");
    switch (p.kind()) {
      case Kind::kAge:
      case Kind::kLab:
      case Kind::kPerformanceStatus:
        if (performance) return internal::kFactPerformance;
        return p.quantity < internal::kFactFirst ? p.quantity : -1;
      case Kind::kSex:
        return p.sex() == model::Sex::kAll ? -1 : internal::kFactSex;
      case Kind::kPregnancy:
        return internal::kFactPregnancy;
      case Kind::kBreastfeeding:
        return internal::kFactBreastfeeding;
      case Kind::kHealthyVolunteers:
        return p.accepts_healthy_volunteers ? -1
                                            : internal::kFactHealthyVolunteer;
      case Kind::kCondition:
        return p.polarity() == criteria::Polarity::kExclusion
                   ? internal::kFactConditionList
                   : internal::kFactRequiredCondition;
      default:
        break;
    }
    return -1;
  }
};

SnapshotBuilder::SnapshotBuilder(SnapshotOptions options)
    : state_(std::make_unique<State>()) {
  state_->snap->options_ = std::move(options);
  for (std::string_view q : kCanonicalQuantities)
    state_->Quantity(std::string(q));
  // MeSH knowledge from the rules (when given).
  if (const criteria::RuleSet* rules = state_->snap->options_.rules.get()) {
    for (const criteria::ConceptDef& def : rules->concepts()) {
      std::vector<uint32_t> anc;
      for (const std::string& a : def.ancestor_mesh_ids)
        anc.push_back(state_->Mesh(a));
      for (const std::string& id : def.mesh_ids)
        state_->AddAncestry(state_->Mesh(id), anc);
    }
  }
}
SnapshotBuilder::~SnapshotBuilder() = default;
SnapshotBuilder::SnapshotBuilder(SnapshotBuilder&&) noexcept = default;
SnapshotBuilder& SnapshotBuilder::operator=(SnapshotBuilder&&) noexcept =
    default;

size_t SnapshotBuilder::size() const {
  return state_ == nullptr ? 0 : state_->snap->info_.size();
}

absl::Status SnapshotBuilder::Add(const model::Study& study,
                                  const criteria::CompiledStudy& compiled) {
  if (state_ == nullptr) state_ = std::make_unique<State>();
  if (!model::IsValidNctId(study.nct_id)) {
    return absl::InvalidArgumentError("study has no valid NCT id");
  }
  if (!compiled.nct_id.empty() && compiled.nct_id != study.nct_id) {
    return absl::InvalidArgumentError(absl::StrCat(
        study.nct_id, ": compiled criteria belong to ", compiled.nct_id));
  }
  if (absl::Status s = ValidateCompiled(compiled); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(study.nct_id, ": compiled criteria: ", s.message()));
  }
  if (state_->nct_seen.contains(study.nct_id)) {
    return absl::AlreadyExistsError(
        absl::StrCat(study.nct_id, ": added twice"));
  }
  state_->nct_seen.emplace(study.nct_id, 0);
  state_->AddStudy(study, compiled);
  return absl::OkStatus();
}

void SnapshotBuilder::State::AddStudy(const model::Study& study,
                                      const criteria::CompiledStudy& cs) {
  Snapshot& s = *snap;
  StudyInfo info;
  CompactStudy cst;
  info.nct_id = study.nct_id;
  info.title =
      study.brief_title.empty() ? study.official_title : study.brief_title;
  info.overall_status = Str(study.overall_status);
  info.conditions.reserve(study.conditions.size());
  for (const std::string& c : study.conditions)
    info.conditions.push_back(Str(c));
  info.compiler_version = Str(cs.compiler_version);
  info.rules_version = Str(cs.rules_version);
  for (const criteria::Conflict& c : cs.conflicts)
    info.conflicts.push_back(Str(c.description));
  for (const std::string& n : cs.notes) info.notes.push_back(Str(n));

  // MeSH knowledge from the registry's browse module.
  std::vector<uint32_t> study_anc;
  for (const model::MeshTerm& m : study.condition_ancestors) {
    if (m.id.empty()) continue;
    study_anc.push_back(Mesh(m.id));
    AddTermMesh(m);
  }
  size_t meshes = 0;
  for (const model::MeshTerm& m : study.condition_meshes) {
    if (m.id.empty()) continue;
    ++meshes;
    info.condition_meshes.push_back(Mesh(m.id));
    AddTermMesh(m);
  }
  info.ancestors = study_anc;
  if (meshes == 1) AddAncestry(info.condition_meshes[0], study_anc);

  // Status (the by-status lists are built after sorting).
  {
    auto it =
        std::find(s.statuses_.begin(), s.statuses_.end(), study.overall_status);
    if (it == s.statuses_.end()) {
      s.statuses_.push_back(study.overall_status);
      it = s.statuses_.end() - 1;
    }
    cst.status = static_cast<uint16_t>(it - s.statuses_.begin());
  }

  // Evidence texts: slices of the criteria text where they are one.
  info.text = study.eligibility.criteria;
  const std::string_view criteria_text(study.eligibility.criteria);

  // Predicates.
  const auto pred_base = static_cast<uint32_t>(s.preds_.size());
  info.predicates.reserve(cs.predicates.size());
  // History wording per criterion (its predicates share the text), computed
  // when first needed: -1 unknown, else 0/1.
  std::vector<int8_t> history(cs.criteria.size(), -1);
  for (size_t pi = 0; pi < cs.predicates.size(); ++pi) {
    const criteria::Predicate& p_in = cs.predicates[pi];
    PredicateInfo pinfo;
    pinfo.rule_id = Str(p_in.rule_id);
    pinfo.field = Str(p_in.evidence.field);
    pinfo.note = Str(p_in.note);
    pinfo.quantity = Str(p_in.quantity);
    pinfo.unit = Str(p_in.unit);
    pinfo.span = p_in.evidence.span;
    pinfo.criterion = p_in.criterion;
    pinfo.source = p_in.evidence.source;
    const criteria::Span sp = p_in.evidence.span;
    if (sp.begin >= 0 && sp.end >= sp.begin &&
        static_cast<size_t>(sp.end) <= criteria_text.size() &&
        criteria_text.substr(sp.begin, sp.end - sp.begin) ==
            p_in.evidence.text) {
      pinfo.text_begin = static_cast<uint32_t>(sp.begin);
      pinfo.text_size = static_cast<uint32_t>(sp.end - sp.begin);
    } else {
      const size_t found =
          info.text.find(p_in.evidence.text, criteria_text.size());
      if (found != std::string::npos && !p_in.evidence.text.empty()) {
        pinfo.text_begin = static_cast<uint32_t>(found);
      } else {
        pinfo.text_begin = static_cast<uint32_t>(info.text.size());
        info.text += p_in.evidence.text;
      }
      pinfo.text_size = static_cast<uint32_t>(p_in.evidence.text.size());
    }
    info.predicates.push_back(pinfo);

    CompactPredicate cp;
    cp.kind_code = static_cast<uint8_t>(p_in.kind);
    cp.polarity_code = static_cast<uint8_t>(p_in.polarity);
    cp.sex_code = static_cast<uint8_t>(p_in.sex);
    cp.informational = p_in.informational;
    cp.source = static_cast<uint32_t>(pi);
    cp.study_conditions =
        p_in.criterion < 0 && p_in.kind == criteria::Kind::kCondition;
    if (p_in.criterion >= 0) {
      int8_t& h = history[p_in.criterion];
      if (h < 0) h = HistoryWording(cs.criteria[p_in.criterion].text) ? 1 : 0;
      cp.history_wording = h != 0;
    } else {
      cp.history_wording = HistoryWording(p_in.evidence.text);
    }
    if (IsNumericKind(p_in.kind)) {
      cp.quantity =
          p_in.quantity.empty() ? kUnknownQuantity : Quantity(p_in.quantity);
      cp.has_low = p_in.low.has_value() && std::isfinite(*p_in.low);
      cp.low = cp.has_low ? *p_in.low : 0;
      cp.low_inclusive = p_in.low_inclusive;
      cp.has_high = p_in.high.has_value() && std::isfinite(*p_in.high);
      cp.high = cp.has_high ? *p_in.high : 0;
      cp.high_inclusive = p_in.high_inclusive;
      cp.relative_to_uln = p_in.relative_to_uln || p_in.unit == kUlnUnit;
      if (!cp.relative_to_uln && !p_in.unit.empty()) {
        const std::string_view canonical = CanonicalUnitOf(p_in.quantity);
        cp.unit_ok = canonical.empty() || canonical == p_in.unit;
      }
      if (p_in.kind == criteria::Kind::kAge) cp.age_unit = AgeUnitOf(p_in);
    }
    cp.accepts_healthy_volunteers = p_in.accepts_healthy_volunteers;
    cp.concepts_begin = static_cast<uint32_t>(s.concept_refs_.size());
    for (const criteria::ConditionConcept& cc : p_in.concepts) {
      AddRef(ConceptOf(cc), cc.text, false);
      // Rules-derived concepts tied to one descriptor carry its parents.
      if (!cp.study_conditions && cc.mesh_ids.size() == 1 &&
          !cc.ancestor_mesh_ids.empty()) {
        std::vector<uint32_t> anc;
        for (const std::string& a : cc.ancestor_mesh_ids)
          anc.push_back(Mesh(a));
        AddAncestry(Mesh(cc.mesh_ids[0]), anc);
      }
    }
    cp.concepts_count =
        static_cast<uint32_t>(s.concept_refs_.size()) - cp.concepts_begin;
    s.preds_.push_back(cp);
  }
  cst.preds_begin = pred_base;
  cst.preds_count = static_cast<uint32_t>(cs.predicates.size());
  info.criteria_count = static_cast<uint32_t>(cs.criteria.size());

  // Criteria tree: root, then one node per criterion.
  const auto root = static_cast<uint32_t>(s.nodes_.size());
  cst.root = root;
  s.nodes_.resize(s.nodes_.size() + 1 + cs.criteria.size());
  {
    Node& n = s.nodes_[root];
    n.preds_begin = static_cast<uint32_t>(s.node_preds_.size());
    for (size_t pi = 0; pi < cs.predicates.size(); ++pi) {
      if (cs.predicates[pi].criterion < 0) {
        s.node_preds_.push_back(pred_base + static_cast<uint32_t>(pi));
      }
    }
    n.preds_count = static_cast<uint32_t>(s.node_preds_.size()) - n.preds_begin;
    n.children_begin = static_cast<uint32_t>(s.node_children_.size());
    for (size_t c = 0; c < cs.criteria.size(); ++c) {
      if (cs.criteria[c].parent < 0) {
        s.node_children_.push_back(root + 1 + static_cast<uint32_t>(c));
      }
    }
    n.children_count =
        static_cast<uint32_t>(s.node_children_.size()) - n.children_begin;
  }
  for (size_t c = 0; c < cs.criteria.size(); ++c) {
    const criteria::Criterion& cr = cs.criteria[c];
    Node& n = s.nodes_[root + 1 + c];
    n.any_of = cr.any_of;
    n.criterion = static_cast<int32_t>(c);
    n.preds_begin = static_cast<uint32_t>(s.node_preds_.size());
    for (int pi : cr.predicates)
      s.node_preds_.push_back(pred_base + static_cast<uint32_t>(pi));
    n.preds_count = static_cast<uint32_t>(cr.predicates.size());
    n.children_begin = static_cast<uint32_t>(s.node_children_.size());
    for (int ch : cr.children)
      s.node_children_.push_back(root + 1 + static_cast<uint32_t>(ch));
    n.children_count = static_cast<uint32_t>(cr.children.size());
  }
  cst.has_criteria_text = !cs.criteria.empty();
  // Units as the evaluator counts them (evaluate.cc, EvalNode), and the
  // facts the predicate units depend on.
  uint32_t per_fact[64] = {};
  // When an any-of group's node is certainly not satisfied (EvalNode: a
  // node is the minimum of its members, a group the maximum of its
  // children): kNever, kAlways (a member is an unparsed criterion), or when
  // one fact is missing (>= 0). A node needs any member certain (the first
  // one found stands for all: a weaker bound, still a bound); a group needs
  // every child certain, on one fact at most.
  constexpr int kNever = -2;
  constexpr int kAlways = -1;
  auto either = [&](int a, int b) {
    if (a == kAlways || b == kAlways) return kAlways;
    return a != kNever ? a : b;
  };
  // `children_only`: the condition of the node's group of children alone.
  auto cond_of_node = [&](auto&& self, uint32_t n, bool children_only) -> int {
    const Node& node = s.nodes_[n];
    int c = kNever;
    for (uint32_t i = 0; i < node.preds_count && !children_only; ++i) {
      const CompactPredicate& cp =
          s.preds_[s.node_preds_[node.preds_begin + i]];
      if (cp.informational) continue;
      if (cp.kind() == criteria::Kind::kOther ||
          cp.kind() == criteria::Kind::kContraception) {
        return kAlways;
      }
      const int fact = FactOf(cp);
      if (fact >= 0) c = either(c, fact);
    }
    if (node.children_count == 0) return c;
    if (!node.any_of) {
      for (uint32_t i = 0; i < node.children_count && c != kAlways; ++i) {
        c = either(
            c, self(self, s.node_children_[node.children_begin + i], false));
      }
      return c;
    }
    int group = kAlways;  // every child certain, on one fact at most
    for (uint32_t i = 0; i < node.children_count && group != kNever; ++i) {
      const int t =
          self(self, s.node_children_[node.children_begin + i], false);
      if (t == kNever || (t >= 0 && group >= 0 && t != group)) {
        group = kNever;
      } else if (t >= 0) {
        group = t;
      }
    }
    return either(c, group);
  };
  auto count_units = [&](auto&& self, uint32_t n, bool counting) -> void {
    const Node& node = s.nodes_[n];
    for (uint32_t i = 0; i < node.preds_count && counting; ++i) {
      const CompactPredicate& cp =
          s.preds_[s.node_preds_[node.preds_begin + i]];
      if (cp.informational) continue;
      ++cst.units;
      if (cp.kind() == criteria::Kind::kOther ||
          cp.kind() == criteria::Kind::kContraception) {
        ++cst.always_unknown;
      } else if (const int fact = FactOf(cp); fact >= 0) {
        ++per_fact[fact];
      }
    }
    if (node.any_of && node.children_count > 0) {
      if (!counting) return;
      ++cst.units;
      // The group's unit: certain when every child is.
      const int group = cond_of_node(cond_of_node, n, true);
      if (group == kAlways) {
        ++cst.always_unknown;
      } else if (group >= 0) {
        ++per_fact[group];
      }
      return;
    }
    for (uint32_t i = 0; i < node.children_count; ++i) {
      self(self, s.node_children_[node.children_begin + i], counting);
    }
  };
  count_units(count_units, root, true);
  cst.facts_begin = static_cast<uint32_t>(s.fact_counts_.size());
  for (int fact = 0; fact < 64; ++fact) {
    if (per_fact[fact] == 0) continue;
    s.fact_counts_.push_back(
        {static_cast<uint8_t>(fact),
         static_cast<uint16_t>(std::min<uint32_t>(per_fact[fact], 0xffff))});
  }
  cst.facts_count =
      static_cast<uint32_t>(s.fact_counts_.size()) - cst.facts_begin;

  // Relevance concepts: the study's conditions (compiled, then as the
  // registry lists them), then conditions inclusion criteria require.
  cst.rel_begin = static_cast<uint32_t>(s.concept_refs_.size());
  auto add_rel = [&](uint32_t c, std::string_view text, bool from_criteria) {
    for (uint32_t i = cst.rel_begin; i < s.concept_refs_.size(); ++i) {
      if (s.concept_refs_[i] == c) return;
    }
    AddRef(c, text, from_criteria);
  };
  for (const criteria::Predicate& p_in : cs.predicates) {
    if (p_in.kind != criteria::Kind::kCondition || p_in.criterion >= 0)
      continue;
    for (const criteria::ConditionConcept& cc : p_in.concepts) {
      add_rel(ConceptOf(cc), cc.text, false);
    }
  }
  for (const std::string& cond : study.conditions) {
    const uint32_t t = Term(cond);
    if (t != kNoId) add_rel(InternConcept(t, {}, {}), cond, false);
  }
  for (const model::MeshTerm& m : study.condition_meshes) {
    if (m.id.empty()) continue;
    add_rel(InternConcept(Term(m.term), {Mesh(m.id)}, study_anc), m.term,
            false);
  }
  for (const criteria::Predicate& p_in : cs.predicates) {
    if (p_in.kind != criteria::Kind::kCondition || p_in.criterion < 0 ||
        p_in.polarity != criteria::Polarity::kInclusion) {
      continue;
    }
    for (const criteria::ConditionConcept& cc : p_in.concepts) {
      add_rel(ConceptOf(cc), cc.text, true);
    }
  }
  cst.rel_count = static_cast<uint32_t>(s.concept_refs_.size()) - cst.rel_begin;

  // Located sites; the open ones sorted by latitude for the nearest search.
  info.listed_sites = static_cast<uint32_t>(study.locations.size());
  {
    size_t located = 0;
    for (const model::Location& loc : study.locations)
      located += loc.geo ? 1 : 0;
    info.sites.reserve(located);
  }
  cst.sites_begin = static_cast<uint32_t>(s.open_sites_.size());
  for (const model::Location& loc : study.locations) {
    if (!loc.geo) continue;
    SiteRecord r;
    r.facility = Str(loc.facility);
    r.city = Str(loc.city);
    r.state = Str(loc.state);
    r.country = Str(loc.country);
    r.status = Str(loc.status);
    r.latitude = static_cast<float>(loc.geo->lat);
    r.longitude = static_cast<float>(loc.geo->lon);
    r.open = SiteOpen(loc.status, study.overall_status);
    if (r.open) {
      s.open_sites_.push_back({ToUnitVector(loc.geo->lat, loc.geo->lon),
                               static_cast<float>(loc.geo->lat * kDegToRad),
                               static_cast<uint32_t>(info.sites.size())});
    }
    info.sites.push_back(r);
  }
  cst.sites_count =
      static_cast<uint32_t>(s.open_sites_.size()) - cst.sites_begin;
  if (cst.sites_count > 0) {
    double cx = 0;
    double cy = 0;
    double cz = 0;
    for (uint32_t i = cst.sites_begin; i < s.open_sites_.size(); ++i) {
      cx += s.open_sites_[i].v.x;
      cy += s.open_sites_[i].v.y;
      cz += s.open_sites_[i].v.z;
    }
    const double norm = std::sqrt(cx * cx + cy * cy + cz * cz);
    if (norm < 1e-6) {
      cst.sites_radius = 4;  // sites all around the globe: no bound
    } else {
      cst.sites_center = {static_cast<float>(cx / norm),
                          static_cast<float>(cy / norm),
                          static_cast<float>(cz / norm)};
      double radius = 0;
      for (uint32_t i = cst.sites_begin; i < s.open_sites_.size(); ++i) {
        const UnitVector& v = s.open_sites_[i].v;
        const double dot = static_cast<double>(v.x) * cst.sites_center.x +
                           static_cast<double>(v.y) * cst.sites_center.y +
                           static_cast<double>(v.z) * cst.sites_center.z;
        radius = std::max(radius, std::acos(std::clamp(dot, -1.0, 1.0)));
      }
      // Float vectors: enlarge by ~1 km so the bound stays a bound.
      cst.sites_radius = static_cast<float>(radius + 2e-4);
    }
  }
  std::sort(s.open_sites_.begin() + cst.sites_begin, s.open_sites_.end(),
            [](const OpenSite& a, const OpenSite& b) {
              return a.latitude_rad < b.latitude_rad ||
                     (a.latitude_rad == b.latitude_rad && a.site < b.site);
            });

  info.text.shrink_to_fit();
  s.compact_.push_back(cst);
  s.info_.push_back(std::move(info));
}

std::shared_ptr<const Snapshot> SnapshotBuilder::Build() && {
  if (state_ == nullptr) state_ = std::make_unique<State>();
  std::unique_ptr<Snapshot> owned = std::move(state_->snap);
  state_.reset();
  Snapshot& s = *owned;

  // Sort the per-study records by NCT id.
  std::vector<uint32_t> order(s.info_.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return s.info_[a].nct_id < s.info_[b].nct_id;
  });
  {
    std::vector<StudyInfo> info;
    std::vector<CompactStudy> compact;
    info.reserve(order.size());
    compact.reserve(order.size());
    for (uint32_t i : order) {
      info.push_back(std::move(s.info_[i]));
      compact.push_back(s.compact_[i]);
    }
    s.info_ = std::move(info);
    s.compact_ = std::move(compact);
  }

  s.keys_.reserve(s.compact_.size());
  const std::optional<uint8_t> age_quantity = AgeQuantity(s.quantities_);
  for (const CompactStudy& c : s.compact_) {
    internal::StudyKey k;
    SetGate(s.preds_, s.nodes_, s.node_preds_, c, age_quantity, &k);
    k.status = c.status;
    k.has_criteria_text = c.has_criteria_text;
    k.exact = c.units <= 0xffff;
    k.units = static_cast<uint16_t>(std::min<uint32_t>(c.units, 0xffff));
    k.always_unknown =
        static_cast<uint16_t>(std::min<uint32_t>(c.always_unknown, 0xffff));
    k.facts_begin = c.facts_begin;
    k.facts_count = static_cast<uint8_t>(c.facts_count);  // <= 64 facts
    if (c.sites_count == 0) {
      k.sites = internal::kSitesNone;
    } else if (c.sites_radius >= 3.2f) {
      k.sites = internal::kSitesAnywhere;
    } else {
      k.sites = internal::kSitesCap;
      k.cap.center_x = c.sites_center.x;
      k.cap.center_y = c.sites_center.y;
      k.cap.center_z = c.sites_center.z;
      k.cap.cos_radius = static_cast<float>(std::cos(c.sites_radius));
      k.cap.sin_radius = static_cast<float>(std::sin(c.sites_radius));
    }
    s.keys_.push_back(k);
  }

  s.by_bound_.resize(s.keys_.size());
  for (uint32_t i = 0; i < s.by_bound_.size(); ++i) s.by_bound_[i] = i;
  std::sort(
      s.by_bound_.begin(), s.by_bound_.end(), [&](uint32_t a, uint32_t b) {
        const internal::StudyKey& ka = s.keys_[a];
        const internal::StudyKey& kb = s.keys_[b];
        return BoundFirst(ka, ka.always_unknown, a, kb, kb.always_unknown, b);
      });

  // Posting lists from the relevance concepts, status lists.
  // The relevance lists hold positions in by_bound_ (ranks), so that the
  // matcher walks them best static bound first.
  std::vector<uint32_t> rank_of(s.by_bound_.size());
  for (uint32_t r = 0; r < s.by_bound_.size(); ++r) rank_of[s.by_bound_[r]] = r;
  s.by_status_.assign(s.statuses_.size(), {});
  for (uint32_t si = 0; si < s.compact_.size(); ++si) {
    const CompactStudy& cst = s.compact_[si];
    s.by_status_[cst.status].push_back(si);
    const uint32_t rank = rank_of[si];
    auto post = [rank](std::vector<uint32_t>& list) {
      if (list.empty() || list.back() != rank) list.push_back(rank);
    };
    for (uint32_t r = 0; r < cst.rel_count; ++r) {
      const Concept& c = s.concepts_[s.concept_refs_[cst.rel_begin + r]];
      for (uint32_t k = 0; k < c.mesh_count; ++k)
        post(s.by_mesh_[s.key_pool_[c.mesh_begin + k]]);
      for (uint32_t k = 0; k < c.anc_count; ++k)
        post(s.by_ancestor_[s.key_pool_[c.anc_begin + k]]);
      if (c.name != kNoId) post(s.by_term_[c.name]);
    }
  }
  for (auto& [key, anc] : s.ancestry_) SortUnique(&anc);
  s.DeriveIndexes();
  for (auto* index : {&s.by_mesh_, &s.by_ancestor_, &s.by_term_}) {
    for (auto& [key, list] : *index) std::sort(list.begin(), list.end());
  }

  // The flat arrays grew by doubling: give the slack back (up to half of
  // their memory).
  auto shrink = [](auto&... v) { (v.shrink_to_fit(), ...); };
  shrink(s.fact_counts_, s.preds_, s.nodes_, s.node_preds_, s.node_children_,
         s.concepts_, s.concept_refs_, s.concept_texts_,
         s.concept_from_criteria_, s.key_pool_, s.open_sites_, s.strings_,
         s.mesh_ids_, s.terms_);
  for (auto& [key, list] : s.by_mesh_) list.shrink_to_fit();
  for (auto& [key, list] : s.by_ancestor_) list.shrink_to_fit();
  for (auto& [key, list] : s.by_term_) list.shrink_to_fit();
  for (auto& [key, anc] : s.ancestry_) anc.shrink_to_fit();
  for (auto& list : s.by_status_) list.shrink_to_fit();

  SnapshotStats& st = s.stats_;
  st.studies = s.info_.size();
  st.predicates = s.preds_.size();
  st.criteria = s.nodes_.size() - s.info_.size();
  st.concepts = s.concepts_.size();
  st.mesh_keys = s.mesh_ids_.size();
  st.terms = s.terms_.size();
  for (const StudyInfo& i : s.info_) st.located_sites += i.sites.size();
  st.open_sites = s.open_sites_.size();
  st.ancestry_entries = s.ancestry_.size();
  st.strings = s.strings_.size();
  return std::shared_ptr<const Snapshot>(owned.release());
}

}  // namespace trialmatch::match
