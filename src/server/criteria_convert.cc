#include "server/criteria_convert.h"

namespace trialmatch::server {
namespace {

void SpanToProto(const criteria::Span& span, v1::Span* out) {
  out->set_begin(span.begin);
  out->set_end(span.end);
}

void EvidenceToProto(const criteria::Evidence& e, v1::Evidence* out) {
  out->set_source(EvidenceSourceToProto(e.source));
  out->set_field(e.field);
  SpanToProto(e.span, out->mutable_span());
  out->set_text(e.text);
}

v1::Predicate::Sex SexToProto(model::Sex sex) {
  switch (sex) {
    case model::Sex::kFemale:
      return v1::Predicate::SEX_FEMALE;
    case model::Sex::kMale:
      return v1::Predicate::SEX_MALE;
    case model::Sex::kAll:
      break;
  }
  return v1::Predicate::SEX_UNSPECIFIED;
}

void PredicateToProto(const criteria::Predicate& p, v1::Predicate* out) {
  out->set_kind(KindToProto(p.kind));
  out->set_polarity(PolarityToProto(p.polarity));
  out->set_informational(p.informational);
  out->set_rule_id(p.rule_id);
  EvidenceToProto(p.evidence, out->mutable_evidence());
  if (p.criterion >= 0) out->set_criterion(p.criterion);
  out->set_quantity(p.quantity);
  if (p.low.has_value()) out->set_low(*p.low);
  out->set_low_inclusive(p.low_inclusive);
  if (p.high.has_value()) out->set_high(*p.high);
  out->set_high_inclusive(p.high_inclusive);
  out->set_unit(p.unit);
  out->set_relative_to_uln(p.relative_to_uln);
  out->set_original_value(p.original_value);
  out->set_sex(p.kind == criteria::Kind::kSex ? SexToProto(p.sex)
                                              : v1::Predicate::SEX_UNSPECIFIED);
  for (const criteria::ConditionConcept& c : p.concepts) {
    v1::ConditionConcept* cc = out->add_concepts();
    cc->set_text(c.text);
    cc->set_normalized(c.normalized);
    for (const std::string& id : c.mesh_ids) cc->add_mesh_ids(id);
    for (const std::string& id : c.ancestor_mesh_ids) {
      cc->add_ancestor_mesh_ids(id);
    }
  }
  out->set_accepts_healthy_volunteers(p.accepts_healthy_volunteers);
  out->set_note(p.note);
}

void CriterionToProto(const criteria::Criterion& c, v1::Criterion* out) {
  out->set_section(SectionToProto(c.section));
  out->set_polarity(PolarityToProto(c.polarity));
  SpanToProto(c.span, out->mutable_span());
  out->set_text(c.text);
  if (c.parent >= 0) out->set_parent(c.parent);
  out->set_depth(c.depth);
  out->set_any_of(c.any_of);
  for (int child : c.children) out->add_children(child);
  for (int p : c.predicates) out->add_predicates(p);
}

}  // namespace

v1::PredicateKind KindToProto(criteria::Kind kind) {
  switch (kind) {
    case criteria::Kind::kAge:
      return v1::PREDICATE_KIND_AGE;
    case criteria::Kind::kSex:
      return v1::PREDICATE_KIND_SEX;
    case criteria::Kind::kHealthyVolunteers:
      return v1::PREDICATE_KIND_HEALTHY_VOLUNTEERS;
    case criteria::Kind::kCondition:
      return v1::PREDICATE_KIND_CONDITION;
    case criteria::Kind::kLab:
      return v1::PREDICATE_KIND_LAB;
    case criteria::Kind::kPerformanceStatus:
      return v1::PREDICATE_KIND_PERFORMANCE_STATUS;
    case criteria::Kind::kPregnancy:
      return v1::PREDICATE_KIND_PREGNANCY;
    case criteria::Kind::kBreastfeeding:
      return v1::PREDICATE_KIND_BREASTFEEDING;
    case criteria::Kind::kContraception:
      return v1::PREDICATE_KIND_CONTRACEPTION;
    case criteria::Kind::kOther:
      return v1::PREDICATE_KIND_OTHER;
  }
  return v1::PREDICATE_KIND_OTHER;
}

v1::Polarity PolarityToProto(criteria::Polarity polarity) {
  return polarity == criteria::Polarity::kExclusion ? v1::POLARITY_EXCLUSION
                                                    : v1::POLARITY_INCLUSION;
}

v1::CriteriaSection SectionToProto(criteria::Section section) {
  switch (section) {
    case criteria::Section::kInclusion:
      return v1::CRITERIA_SECTION_INCLUSION;
    case criteria::Section::kExclusion:
      return v1::CRITERIA_SECTION_EXCLUSION;
    case criteria::Section::kUnspecified:
      break;
  }
  return v1::CRITERIA_SECTION_NONE;
}

v1::EvidenceSource EvidenceSourceToProto(criteria::EvidenceSource source) {
  return source == criteria::EvidenceSource::kStructuredField
             ? v1::EVIDENCE_SOURCE_STRUCTURED_FIELD
             : v1::EVIDENCE_SOURCE_CRITERIA_TEXT;
}

void CompiledStudyToProto(const criteria::CompiledStudy& study,
                          v1::CompiledStudy* out) {
  out->Clear();
  out->set_nct_id(study.nct_id);
  out->set_compiler_version(study.compiler_version);
  out->set_rules_version(study.rules_version);
  out->mutable_criteria()->Reserve(static_cast<int>(study.criteria.size()));
  for (const criteria::Criterion& c : study.criteria) {
    CriterionToProto(c, out->add_criteria());
  }
  out->mutable_predicates()->Reserve(static_cast<int>(study.predicates.size()));
  for (const criteria::Predicate& p : study.predicates) {
    PredicateToProto(p, out->add_predicates());
  }
  for (const criteria::Conflict& c : study.conflicts) {
    v1::Conflict* pc = out->add_conflicts();
    pc->set_kind(KindToProto(c.kind));
    pc->set_description(c.description);
    EvidenceToProto(c.structured, pc->mutable_structured());
    EvidenceToProto(c.text, pc->mutable_text());
  }
  for (const std::string& note : study.notes) out->add_notes(note);
}

}  // namespace trialmatch::server
