#include "match/facts.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "common/strings.h"

namespace trialmatch::match::internal {
namespace {

void SortUnique(std::vector<uint32_t>* v) {
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
}

bool Contains(const std::vector<uint32_t>& sorted, uint32_t key) {
  return std::binary_search(sorted.begin(), sorted.end(), key);
}

void AddMesh(const Snapshot& s, std::string_view id,
             std::vector<uint32_t>* ids) {
  const uint32_t k = s.MeshKey(patient::NormalizeMeshId(id));
  if (k != kNoId) ids->push_back(k);
}

void AddName(const Snapshot& s, std::string_view text,
             std::vector<uint32_t>* names) {
  const uint32_t k = s.TermKey(NormalizeTerm(text));
  if (k != kNoId) names->push_back(k);
}

}  // namespace

bool NegatedConditionText(std::string_view text) {
  const std::string lower = NormalizeTerm(text);
  const std::string padded = " " + lower + " ";
  for (std::string_view w :
       {" no ", " not ", " without ", " negative ", " denies ", " denied ",
        " rule out ", " ruled out ", " r o ", " family history ", " suspected ",
        " possible ", " probable ", " risk of ", " absence of ", " absent ",
        " free of ", " excluded "}) {
    if (padded.find(w) != std::string::npos) return true;
  }
  return false;
}

PatientFacts BuildFacts(
    const Snapshot& snapshot, const patient::Profile& profile,
    const std::vector<std::pair<std::string, double>>& uln) {
  PatientFacts f;
  f.profile = &profile;
  const std::vector<std::string>& qs = snapshot.quantities();
  f.quantity.resize(qs.size());
  f.uln.resize(qs.size());
  for (size_t q = 0; q < qs.size(); ++q) {
    f.quantity[q] = profile.QuantityValue(qs[q]);
    if (qs[q] == "age") f.age_q = static_cast<uint8_t>(q);
    if (qs[q] == "ecog") f.ecog_q = static_cast<uint8_t>(q);
    if (qs[q] == "karnofsky") f.karnofsky_q = static_cast<uint8_t>(q);
    for (const auto& [name, value] : uln) {
      if (name == qs[q]) f.uln[q] = value;
    }
  }

  const criteria::RuleSet* rules = snapshot.options().rules.get();
  std::vector<criteria::RuleSet::Mention> mentions;
  f.conditions.reserve(profile.conditions.size());
  for (size_t i = 0; i < profile.conditions.size(); ++i) {
    const patient::Condition& in = profile.conditions[i];
    PatientCondition c;
    c.index = static_cast<int>(i);
    c.status = in.clinical_status;
    for (const model::MeshTerm& m : in.mesh) {
      AddMesh(snapshot, m.id, &c.ids);
      AddName(snapshot, m.term, &c.names);
    }
    if (!in.text.empty()) {
      const uint32_t t = snapshot.TermKey(NormalizeTerm(in.text));
      if (t != kNoId) {
        c.names.push_back(t);
        if (const std::vector<uint32_t>* ids = snapshot.MeshForTerm(t)) {
          c.ids.insert(c.ids.end(), ids->begin(), ids->end());
        }
      }
      if (rules != nullptr && !NegatedConditionText(in.text)) {
        mentions.clear();
        rules->FindMentions(in.text, &mentions);
        for (const criteria::RuleSet::Mention& m : mentions) {
          if (m.concept_index < 0 ||
              m.concept_index >= static_cast<int>(rules->concepts().size())) {
            continue;
          }
          const criteria::ConceptDef& def = rules->concepts()[m.concept_index];
          for (const std::string& id : def.mesh_ids)
            AddMesh(snapshot, id, &c.ids);
          for (const std::string& id : def.ancestor_mesh_ids) {
            AddMesh(snapshot, id, &c.ancestors);
          }
          AddName(snapshot, def.name, &c.names);
        }
      }
    }
    SortUnique(&c.ids);
    for (uint32_t k : c.ids) {
      if (const std::vector<uint32_t>* anc = snapshot.Ancestors(k)) {
        c.resolved = true;
        c.ancestors.insert(c.ancestors.end(), anc->begin(), anc->end());
      }
    }
    SortUnique(&c.ancestors);
    SortUnique(&c.names);
    f.all_ids.insert(f.all_ids.end(), c.ids.begin(), c.ids.end());
    f.all_ancestors.insert(f.all_ancestors.end(), c.ancestors.begin(),
                           c.ancestors.end());
    f.all_names.insert(f.all_names.end(), c.names.begin(), c.names.end());
    f.conditions.push_back(std::move(c));
  }
  SortUnique(&f.all_ids);
  SortUnique(&f.all_ancestors);
  SortUnique(&f.all_names);
  if (!f.conditions.empty()) {
    auto bits = [](const std::vector<uint32_t>& keys, size_t space,
                   std::vector<uint64_t>* out) {
      out->assign((space + 63) / 64, 0);
      for (uint32_t k : keys) (*out)[k >> 6] |= uint64_t{1} << (k & 63);
    };
    bits(f.all_ids, snapshot.mesh_key_count(), &f.id_bits);
    bits(f.all_ancestors, snapshot.mesh_key_count(), &f.ancestor_bits);
    bits(f.all_names, snapshot.term_count(), &f.name_bits);
    f.may_match.assign(snapshot.concepts().size(), 0);
  }
  f.all_resolved =
      !f.conditions.empty() &&
      std::all_of(f.conditions.begin(), f.conditions.end(),
                  [](const PatientCondition& c) { return c.resolved; });
  f.conditions_complete = profile.conditions_complete;
  if (profile.location) {
    f.location =
        ToUnitVector(profile.location->latitude, profile.location->longitude);
  }
  return f;
}

ConceptMatch MatchConceptToCondition(const Snapshot& s, const Concept& c,
                                     const PatientCondition& cond) {
  const std::vector<uint32_t>& pool = s.key_pool();
  ConceptMatch m;
  m.condition = -1;
  for (uint32_t i = 0; i < c.mesh_count; ++i) {
    const uint32_t k = pool[c.mesh_begin + i];
    if (Contains(cond.ids, k)) return {MatchStrength::kExact, -1, k};
  }
  if (c.name != kNoId && Contains(cond.names, c.name)) {
    return {MatchStrength::kExact, -1, kNoId};
  }
  for (uint32_t i = 0; i < c.mesh_count; ++i) {
    const uint32_t k = pool[c.mesh_begin + i];
    if (Contains(cond.ancestors, k)) return {MatchStrength::kBroader, -1, k};
  }
  for (uint32_t i = 0; i < c.anc_count; ++i) {
    const uint32_t k = pool[c.anc_begin + i];
    if (Contains(cond.ids, k)) return {MatchStrength::kAncestor, -1, k};
  }
  return m;
}

bool MayMatchUncached(const Snapshot& s, const PatientFacts& f,
                      uint32_t concept_index) {
  const Concept& c = s.concepts()[concept_index];
  auto has = [](const std::vector<uint64_t>& bits, uint32_t k) {
    return (bits[k >> 6] >> (k & 63)) & 1u;
  };
  const uint32_t* pool = s.key_pool().data();
  if (c.name != kNoId && has(f.name_bits, c.name)) return true;
  for (uint32_t i = 0; i < c.mesh_count; ++i) {
    const uint32_t k = pool[c.mesh_begin + i];
    if (has(f.id_bits, k) || has(f.ancestor_bits, k)) return true;
  }
  for (uint32_t i = 0; i < c.anc_count; ++i) {
    if (has(f.id_bits, pool[c.anc_begin + i])) return true;
  }
  return false;
}

}  // namespace trialmatch::match::internal
