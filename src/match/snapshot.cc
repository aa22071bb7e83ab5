#include "match/snapshot.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/strings.h"
#include "patient/profile.h"
#include "patient/terminology.h"

namespace trialmatch::match {
namespace {

using internal::CompactPredicate;
using internal::CompactStudy;
using internal::Concept;
using internal::kNoId;
using internal::kUnknownQuantity;
using internal::Node;
using internal::OpenSite;

// The canonical quantities of criteria/compiled_study.h, interned first.
constexpr std::string_view kCanonicalQuantities[] = {
    "age",       "hba1c",       "egfr",       "creatinine",
    "creatinine_clearance",     "bmi",        "hemoglobin",
    "platelets", "anc",         "wbc",        "bilirubin_total",
    "ast",       "alt",         "inr",        "lvef",
    "systolic_bp",              "diastolic_bp",
    "fasting_glucose",          "weight",     "ecog",
    "karnofsky"};

constexpr std::string_view kUlnUnit = "xULN";

bool IsNumericKind(criteria::Kind k) {
  return k == criteria::Kind::kAge || k == criteria::Kind::kLab ||
         k == criteria::Kind::kPerformanceStatus;
}

std::string_view CanonicalUnitOf(std::string_view quantity) {
  if (quantity == "age") return "years";
  if (quantity == "ecog" || quantity == "karnofsky") return "score";
  return patient::Terminology::Builtin().CanonicalUnit(quantity);
}

// Length in years of the unit an age bound was written in (1 for years).
double AgeUnitYears(const criteria::Predicate& p) {
  if (p.original_value.empty()) return 1;
  absl::StatusOr<model::Age> age = model::ParseAge(p.original_value);
  if (age.ok()) return model::Age{1, age->unit, ""}.Years();
  const std::string lower =
      absl::AsciiStrToLower(common::ToAbsl(p.original_value));
  if (lower.find("month") != std::string::npos) return 1.0 / 12.0;
  if (lower.find("week") != std::string::npos ||
      lower.find("wk") != std::string::npos) {
    return 7.0 / 365.25;
  }
  if (lower.find("day") != std::string::npos) return 1.0 / 365.25;
  return 1;
}

bool HasWord(std::string_view lower, std::string_view word) {
  size_t pos = 0;
  while ((pos = lower.find(word, pos)) != std::string_view::npos) {
    const bool start_ok =
        pos == 0 || !absl::ascii_isalpha(static_cast<unsigned char>(lower[pos - 1]));
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
        return absl::InvalidArgumentError(absl::StrCat(
            "criterion ", c, ": lists predicate ", p,
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

template <typename Map>
const std::vector<uint32_t>* FindList(const Map& map, uint32_t key) {
  if (key == kNoId) return nullptr;
  auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
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

const std::vector<uint32_t>* Snapshot::StudiesWithMesh(uint32_t key) const {
  return FindList(by_mesh_, key);
}
const std::vector<uint32_t>* Snapshot::StudiesWithAncestor(uint32_t key) const {
  return FindList(by_ancestor_, key);
}
const std::vector<uint32_t>* Snapshot::StudiesWithTerm(uint32_t key) const {
  return FindList(by_term_, key);
}

absl::StatusOr<std::shared_ptr<const Snapshot>> Snapshot::Build(
    const std::vector<std::pair<model::Study, criteria::CompiledStudy>>& studies,
    SnapshotOptions options) {
  SnapshotBuilder builder(std::move(options));
  for (const auto& [study, compiled] : studies) {
    absl::Status s = builder.Add(study, compiled);
    if (!s.ok()) return s;
  }
  return std::move(builder).Build();
}

// --- SnapshotBuilder -----------------------------------------------------------

struct SnapshotBuilder::Pending {
  StudyInfo info;
  std::vector<model::MeshTerm> meshes;     // normalised ids
  std::vector<model::MeshTerm> ancestors;  // normalised ids
  std::vector<model::Location> locations;
};

SnapshotBuilder::SnapshotBuilder(SnapshotOptions options)
    : options_(std::move(options)) {}
SnapshotBuilder::~SnapshotBuilder() = default;
SnapshotBuilder::SnapshotBuilder(SnapshotBuilder&&) noexcept = default;
SnapshotBuilder& SnapshotBuilder::operator=(SnapshotBuilder&&) noexcept = default;

size_t SnapshotBuilder::size() const { return pending_.size(); }

absl::Status SnapshotBuilder::Add(const model::Study& study,
                                  criteria::CompiledStudy compiled) {
  if (!model::IsValidNctId(study.nct_id)) {
    return absl::InvalidArgumentError("study has no valid NCT id");
  }
  if (!compiled.nct_id.empty() && compiled.nct_id != study.nct_id) {
    return absl::InvalidArgumentError(
        absl::StrCat(study.nct_id, ": compiled criteria belong to ",
                     compiled.nct_id));
  }
  if (absl::Status s = ValidateCompiled(compiled); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(study.nct_id, ": compiled criteria: ", s.message()));
  }
  if (seen_.contains(study.nct_id)) {
    return absl::AlreadyExistsError(
        absl::StrCat(study.nct_id, ": added twice"));
  }
  seen_.emplace(study.nct_id, pending_.size());

  Pending p;
  StudyInfo& info = p.info;
  info.nct_id = study.nct_id;
  info.title = study.brief_title.empty() ? study.official_title : study.brief_title;
  info.overall_status = study.overall_status;
  info.conditions = study.conditions;
  for (const model::MeshTerm& m : study.condition_meshes) {
    if (m.id.empty()) continue;
    p.meshes.push_back({patient::NormalizeMeshId(m.id), m.term});
    info.condition_mesh_ids.push_back(p.meshes.back().id);
  }
  for (const model::MeshTerm& m : study.condition_ancestors) {
    if (m.id.empty()) continue;
    p.ancestors.push_back({patient::NormalizeMeshId(m.id), m.term});
    info.ancestor_mesh_ids.push_back(p.ancestors.back().id);
  }
  info.listed_sites = static_cast<int>(study.locations.size());
  for (const model::Location& loc : study.locations) {
    if (!loc.geo) continue;
    Site site;
    site.facility = loc.facility;
    site.city = loc.city;
    site.state = loc.state;
    site.country = loc.country;
    site.status = loc.status;
    site.latitude = loc.geo->lat;
    site.longitude = loc.geo->lon;
    site.open = SiteOpen(loc.status, study.overall_status);
    info.sites.push_back(std::move(site));
  }
  compiled.nct_id = study.nct_id;
  info.compiled = std::move(compiled);
  pending_.push_back(std::move(p));
  return absl::OkStatus();
}

std::shared_ptr<const Snapshot> SnapshotBuilder::Build() && {
  std::vector<Pending> pending = std::move(pending_);
  pending_.clear();
  seen_.clear();
  std::sort(pending.begin(), pending.end(),
            [](const Pending& a, const Pending& b) {
              return a.info.nct_id < b.info.nct_id;
            });

  std::shared_ptr<Snapshot> snap(new Snapshot());
  Snapshot& s = *snap;
  s.options_ = options_;

  auto mesh_key = [&](const std::string& id) -> uint32_t {
    const std::string norm = patient::NormalizeMeshId(id);
    auto [it, inserted] =
        s.mesh_key_.emplace(norm, static_cast<uint32_t>(s.mesh_ids_.size()));
    if (inserted) s.mesh_ids_.push_back(norm);
    return it->second;
  };
  auto term_key = [&](std::string_view text) -> uint32_t {
    std::string norm = NormalizeTerm(text);
    if (norm.empty()) return kNoId;
    auto [it, inserted] =
        s.term_key_.emplace(norm, static_cast<uint32_t>(s.terms_.size()));
    if (inserted) s.terms_.push_back(std::move(norm));
    return it->second;
  };
  auto add_ancestry = [&](uint32_t key, const std::vector<uint32_t>& anc) {
    std::vector<uint32_t>& a = s.ancestry_[key];
    for (uint32_t k : anc) {
      if (k != key) a.push_back(k);
    }
  };
  auto add_term_mesh = [&](const model::MeshTerm& m) {
    const uint32_t t = term_key(m.term);
    if (t == kNoId) return;
    std::vector<uint32_t>& v = s.term_mesh_[t];
    const uint32_t k = mesh_key(m.id);
    if (std::find(v.begin(), v.end(), k) == v.end()) v.push_back(k);
  };

  // Quantities: the canonical ones first.
  absl::flat_hash_map<std::string, uint8_t> quantity_index;
  auto quantity_key = [&](const std::string& q) -> uint8_t {
    auto it = quantity_index.find(q);
    if (it != quantity_index.end()) return it->second;
    if (s.quantities_.size() >= kUnknownQuantity) return kUnknownQuantity;
    const auto k = static_cast<uint8_t>(s.quantities_.size());
    s.quantities_.push_back(q);
    quantity_index.emplace(q, k);
    return k;
  };
  for (std::string_view q : kCanonicalQuantities) quantity_key(std::string(q));

  // Concepts, interned by content.
  absl::flat_hash_map<std::string, uint32_t> concept_index;
  auto intern_concept = [&](uint32_t name, std::vector<uint32_t> mesh,
                            std::vector<uint32_t> anc) -> uint32_t {
    SortUnique(&mesh);
    SortUnique(&anc);
    std::string key = absl::StrCat(name, "|", absl::StrJoin(mesh, ","), "|",
                                   absl::StrJoin(anc, ","));
    auto it = concept_index.find(key);
    if (it != concept_index.end()) return it->second;
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
    concept_index.emplace(std::move(key), id);
    return id;
  };
  auto concept_of = [&](const criteria::ConditionConcept& cc) -> uint32_t {
    std::vector<uint32_t> mesh;
    std::vector<uint32_t> anc;
    for (const std::string& id : cc.mesh_ids) mesh.push_back(mesh_key(id));
    for (const std::string& id : cc.ancestor_mesh_ids) anc.push_back(mesh_key(id));
    return intern_concept(
        term_key(cc.normalized.empty() ? cc.text : cc.normalized),
        std::move(mesh), std::move(anc));
  };

  // MeSH knowledge from the rules (when given).
  if (options_.rules != nullptr) {
    for (const criteria::ConceptDef& def : options_.rules->concepts()) {
      std::vector<uint32_t> anc;
      for (const std::string& a : def.ancestor_mesh_ids) anc.push_back(mesh_key(a));
      for (const std::string& id : def.mesh_ids) add_ancestry(mesh_key(id), anc);
    }
  }

  s.info_.reserve(pending.size());
  s.compact_.reserve(pending.size());
  for (size_t si = 0; si < pending.size(); ++si) {
    Pending& p = pending[si];
    StudyInfo& info = p.info;
    const criteria::CompiledStudy& cs = info.compiled;
    CompactStudy cst;

    // MeSH knowledge from the registry's browse module.
    std::vector<uint32_t> study_anc;
    for (const model::MeshTerm& m : p.ancestors) {
      study_anc.push_back(mesh_key(m.id));
      add_term_mesh(m);
    }
    for (const model::MeshTerm& m : p.meshes) add_term_mesh(m);
    if (p.meshes.size() == 1) add_ancestry(mesh_key(p.meshes[0].id), study_anc);

    // Status.
    {
      auto it = std::find(s.statuses_.begin(), s.statuses_.end(),
                          info.overall_status);
      if (it == s.statuses_.end()) {
        s.statuses_.push_back(info.overall_status);
        s.by_status_.emplace_back();
        it = s.statuses_.end() - 1;
      }
      cst.status = static_cast<uint16_t>(it - s.statuses_.begin());
      s.by_status_[cst.status].push_back(static_cast<uint32_t>(si));
    }

    // Predicates.
    const auto pred_base = static_cast<uint32_t>(s.preds_.size());
    for (size_t pi = 0; pi < cs.predicates.size(); ++pi) {
      const criteria::Predicate& p_in = cs.predicates[pi];
      CompactPredicate cp;
      cp.kind = p_in.kind;
      cp.polarity = p_in.polarity;
      cp.informational = p_in.informational;
      cp.source = static_cast<uint32_t>(pi);
      cp.study_conditions = p_in.criterion < 0 &&
                            p_in.kind == criteria::Kind::kCondition;
      if (p_in.criterion >= 0) {
        cp.history_wording = HistoryWording(cs.criteria[p_in.criterion].text);
      } else {
        cp.history_wording = HistoryWording(p_in.evidence.text);
      }
      if (IsNumericKind(p_in.kind)) {
        cp.quantity = p_in.quantity.empty()
                          ? kUnknownQuantity
                          : quantity_key(p_in.quantity);
        cp.has_low = p_in.low.has_value() && std::isfinite(*p_in.low);
        cp.low = cp.has_low ? *p_in.low : 0;
        cp.low_inclusive = p_in.low_inclusive;
        cp.has_high = p_in.high.has_value() && std::isfinite(*p_in.high);
        cp.high = cp.has_high ? *p_in.high : 0;
        cp.high_inclusive = p_in.high_inclusive;
        cp.relative_to_uln = p_in.relative_to_uln;
        if (!p_in.relative_to_uln && !p_in.unit.empty() &&
            p_in.unit != kUlnUnit) {
          const std::string_view canonical = CanonicalUnitOf(p_in.quantity);
          cp.unit_ok = canonical.empty() || canonical == p_in.unit;
        } else if (p_in.unit == kUlnUnit) {
          cp.relative_to_uln = true;
        }
        if (p_in.kind == criteria::Kind::kAge) cp.age_unit_years = AgeUnitYears(p_in);
      }
      cp.sex = p_in.sex;
      cp.accepts_healthy_volunteers = p_in.accepts_healthy_volunteers;
      cp.concepts_begin = static_cast<uint32_t>(s.concept_refs_.size());
      for (const criteria::ConditionConcept& cc : p_in.concepts) {
        const uint32_t c = concept_of(cc);
        s.concept_refs_.push_back(c);
        // Rules-derived concepts tied to one descriptor carry its parents.
        if (!cp.study_conditions && cc.mesh_ids.size() == 1 &&
            !cc.ancestor_mesh_ids.empty()) {
          std::vector<uint32_t> anc;
          for (const std::string& a : cc.ancestor_mesh_ids) anc.push_back(mesh_key(a));
          add_ancestry(mesh_key(cc.mesh_ids[0]), anc);
        }
      }
      cp.concepts_count =
          static_cast<uint32_t>(s.concept_refs_.size()) - cp.concepts_begin;
      s.preds_.push_back(cp);
    }
    cst.preds_begin = pred_base;
    cst.preds_count = static_cast<uint32_t>(cs.predicates.size());

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
      for (int pi : cr.predicates) {
        s.node_preds_.push_back(pred_base + static_cast<uint32_t>(pi));
      }
      n.preds_count = static_cast<uint32_t>(cr.predicates.size());
      n.children_begin = static_cast<uint32_t>(s.node_children_.size());
      for (int ch : cr.children) {
        s.node_children_.push_back(root + 1 + static_cast<uint32_t>(ch));
      }
      n.children_count = static_cast<uint32_t>(cr.children.size());
    }
    cst.has_criteria_text = !cs.criteria.empty();

    // Relevance concepts: the study's conditions (compiled, then as the
    // registry lists them), then conditions inclusion criteria require.
    cst.rel_begin = static_cast<uint32_t>(s.concept_refs_.size());
    auto add_rel = [&](uint32_t c, const std::string& text, bool from_criteria) {
      for (uint32_t i = cst.rel_begin; i < s.concept_refs_.size(); ++i) {
        if (s.concept_refs_[i] == c) return;
      }
      s.concept_refs_.push_back(c);
      info.relevance.push_back({text, from_criteria});
    };
    for (const criteria::Predicate& p_in : cs.predicates) {
      if (p_in.kind != criteria::Kind::kCondition || p_in.criterion >= 0) continue;
      for (const criteria::ConditionConcept& cc : p_in.concepts) {
        add_rel(concept_of(cc), cc.text, false);
      }
    }
    for (const std::string& cond : info.conditions) {
      const uint32_t t = term_key(cond);
      if (t != kNoId) add_rel(intern_concept(t, {}, {}), cond, false);
    }
    for (const model::MeshTerm& m : p.meshes) {
      add_rel(intern_concept(term_key(m.term), {mesh_key(m.id)}, study_anc),
              m.term, false);
    }
    for (const criteria::Predicate& p_in : cs.predicates) {
      if (p_in.kind != criteria::Kind::kCondition || p_in.criterion < 0 ||
          p_in.polarity != criteria::Polarity::kInclusion) {
        continue;
      }
      for (const criteria::ConditionConcept& cc : p_in.concepts) {
        add_rel(concept_of(cc), cc.text, true);
      }
    }
    cst.rel_count = static_cast<uint32_t>(s.concept_refs_.size()) - cst.rel_begin;

    // Open located sites.
    cst.sites_begin = static_cast<uint32_t>(s.open_sites_.size());
    for (size_t i = 0; i < info.sites.size(); ++i) {
      if (!info.sites[i].open) continue;
      s.open_sites_.push_back(
          {ToUnitVector(info.sites[i].latitude, info.sites[i].longitude),
           static_cast<uint32_t>(i)});
    }
    cst.sites_count = static_cast<uint32_t>(s.open_sites_.size()) - cst.sites_begin;

    s.compact_.push_back(cst);
    s.info_.push_back(std::move(info));
  }

  // Posting lists from the relevance concepts.
  for (uint32_t si = 0; si < s.compact_.size(); ++si) {
    const CompactStudy& cst = s.compact_[si];
    auto post = [si](std::vector<uint32_t>& list) {
      if (list.empty() || list.back() != si) list.push_back(si);
    };
    for (uint32_t r = 0; r < cst.rel_count; ++r) {
      const Concept& c = s.concepts_[s.concept_refs_[cst.rel_begin + r]];
      for (uint32_t k = 0; k < c.mesh_count; ++k) {
        post(s.by_mesh_[s.key_pool_[c.mesh_begin + k]]);
      }
      for (uint32_t k = 0; k < c.anc_count; ++k) {
        post(s.by_ancestor_[s.key_pool_[c.anc_begin + k]]);
      }
      if (c.name != kNoId) post(s.by_term_[c.name]);
    }
  }
  for (auto& [key, anc] : s.ancestry_) SortUnique(&anc);

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
  return snap;
}

}  // namespace trialmatch::match
