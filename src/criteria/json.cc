#include "criteria/json.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"

namespace trialmatch::criteria {
namespace {

using Json = nlohmann::json;

constexpr std::pair<Kind, std::string_view> kKinds[] = {
    {Kind::kAge, "AGE"},
    {Kind::kSex, "SEX"},
    {Kind::kHealthyVolunteers, "HEALTHY_VOLUNTEERS"},
    {Kind::kCondition, "CONDITION"},
    {Kind::kLab, "LAB"},
    {Kind::kPerformanceStatus, "PERFORMANCE_STATUS"},
    {Kind::kPregnancy, "PREGNANCY"},
    {Kind::kBreastfeeding, "BREASTFEEDING"},
    {Kind::kContraception, "CONTRACEPTION"},
    {Kind::kOther, "OTHER"},
};

Json SpanJson(const Span& s) { return Json::array({s.begin, s.end}); }

Json EvidenceJson(const Evidence& e) {
  Json j = Json::object();
  j["source"] = std::string(EvidenceSourceName(e.source));
  if (!e.field.empty()) j["field"] = e.field;
  if (e.source == EvidenceSource::kCriteriaText) j["span"] = SpanJson(e.span);
  if (!e.text.empty()) j["text"] = e.text;
  return j;
}

Json ConceptJson(const ConditionConcept& c) {
  Json j = Json::object();
  if (!c.text.empty()) j["text"] = c.text;
  if (!c.normalized.empty()) j["normalized"] = c.normalized;
  if (!c.mesh_ids.empty()) j["mesh_ids"] = c.mesh_ids;
  if (!c.ancestor_mesh_ids.empty()) j["ancestor_mesh_ids"] = c.ancestor_mesh_ids;
  return j;
}

Json PredicateJson(const Predicate& p) {
  Json j = Json::object();
  j["kind"] = std::string(KindName(p.kind));
  j["polarity"] = std::string(PolarityName(p.polarity));
  if (p.informational) j["informational"] = true;
  j["rule_id"] = p.rule_id;
  j["evidence"] = EvidenceJson(p.evidence);
  j["criterion"] = p.criterion;
  if (!p.quantity.empty()) j["quantity"] = p.quantity;
  if (p.low) j["low"] = *p.low;
  if (!p.low_inclusive) j["low_inclusive"] = false;
  if (p.high) j["high"] = *p.high;
  if (!p.high_inclusive) j["high_inclusive"] = false;
  if (!p.unit.empty()) j["unit"] = p.unit;
  if (p.relative_to_uln) j["relative_to_uln"] = true;
  if (!p.original_value.empty()) j["original_value"] = p.original_value;
  if (p.sex != model::Sex::kAll) j["sex"] = std::string(model::SexName(p.sex));
  if (!p.concepts.empty()) {
    Json cs = Json::array();
    for (const ConditionConcept& c : p.concepts) cs.push_back(ConceptJson(c));
    j["concepts"] = std::move(cs);
  }
  if (p.accepts_healthy_volunteers) j["accepts_healthy_volunteers"] = true;
  if (!p.note.empty()) j["note"] = p.note;
  return j;
}

Json CriterionJson(const Criterion& c) {
  Json j = Json::object();
  j["section"] = std::string(SectionName(c.section));
  j["polarity"] = std::string(PolarityName(c.polarity));
  j["span"] = SpanJson(c.span);
  j["text"] = c.text;
  if (c.parent >= 0) j["parent"] = c.parent;
  if (c.depth != 0) j["depth"] = c.depth;
  if (c.any_of) j["any_of"] = true;
  if (!c.children.empty()) j["children"] = c.children;
  j["predicates"] = c.predicates;
  return j;
}

// Reads members of JSON objects, recording the JSON pointer for errors.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  absl::Status Error(std::string_view what) const {
    return absl::DataLossError(
        absl::StrCat("compiled study JSON ", path_, ": ", common::ToAbsl(what)));
  }
  Reader At(std::string_view key) const {
    return Reader(absl::StrCat(path_, "/", common::ToAbsl(key)));
  }
  Reader At(size_t index) const { return Reader(absl::StrCat(path_, "/", index)); }

  // `obj[key]` or null when absent; error when `obj` is not an object.
  absl::StatusOr<const Json*> Member(const Json& obj, const char* key) const {
    if (!obj.is_object()) return Error("expected an object");
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }
  absl::Status String(const Json& obj, const char* key, std::string* out,
                      bool required = false) const {
    TRIALMATCH_ASSIGN_OR_RETURN(const Json* v, Member(obj, key));
    if (v == nullptr) return required ? At(key).Error("missing") : absl::OkStatus();
    if (!v->is_string()) return At(key).Error("expected a string");
    *out = v->get<std::string>();
    return absl::OkStatus();
  }
  absl::Status Bool(const Json& obj, const char* key, bool* out) const {
    TRIALMATCH_ASSIGN_OR_RETURN(const Json* v, Member(obj, key));
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_boolean()) return At(key).Error("expected a boolean");
    *out = v->get<bool>();
    return absl::OkStatus();
  }
  absl::Status Int(const Json& obj, const char* key, int* out) const {
    TRIALMATCH_ASSIGN_OR_RETURN(const Json* v, Member(obj, key));
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_number_integer()) return At(key).Error("expected an integer");
    const auto x = v->get<int64_t>();
    if (x < INT32_MIN || x > INT32_MAX) return At(key).Error("out of range");
    *out = static_cast<int>(x);
    return absl::OkStatus();
  }
  absl::Status Double(const Json& obj, const char* key,
                      std::optional<double>* out) const {
    TRIALMATCH_ASSIGN_OR_RETURN(const Json* v, Member(obj, key));
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_number()) return At(key).Error("expected a number");
    *out = v->get<double>();
    return absl::OkStatus();
  }
  absl::Status Ints(const Json& obj, const char* key, std::vector<int>* out) const {
    TRIALMATCH_ASSIGN_OR_RETURN(const Json* v, Member(obj, key));
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_array()) return At(key).Error("expected an array");
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_number_integer()) return At(key).At(i).Error("expected an integer");
      const auto x = (*v)[i].get<int64_t>();
      if (x < 0 || x > INT32_MAX) return At(key).At(i).Error("out of range");
      out->push_back(static_cast<int>(x));
    }
    return absl::OkStatus();
  }
  absl::Status Strings(const Json& obj, const char* key,
                       std::vector<std::string>* out) const {
    TRIALMATCH_ASSIGN_OR_RETURN(const Json* v, Member(obj, key));
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_array()) return At(key).Error("expected an array");
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) return At(key).At(i).Error("expected a string");
      out->push_back((*v)[i].get<std::string>());
    }
    return absl::OkStatus();
  }
  absl::Status SpanOf(const Json& obj, const char* key, Span* out) const {
    TRIALMATCH_ASSIGN_OR_RETURN(const Json* v, Member(obj, key));
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_array() || v->size() != 2 || !(*v)[0].is_number_integer() ||
        !(*v)[1].is_number_integer()) {
      return At(key).Error("expected [begin, end]");
    }
    const auto b = (*v)[0].get<int64_t>();
    const auto e = (*v)[1].get<int64_t>();
    if (b < 0 || e < b || e > INT32_MAX) return At(key).Error("bad span");
    *out = Span{static_cast<int32_t>(b), static_cast<int32_t>(e)};
    return absl::OkStatus();
  }
  template <typename E>
  absl::Status Enum(const Json& obj, const char* key, E* out,
                    std::optional<E> (*parse)(std::string_view)) const {
    std::string name;
    TRIALMATCH_RETURN_IF_ERROR(String(obj, key, &name));
    if (name.empty()) return absl::OkStatus();
    auto v = parse(name);
    if (!v) return At(key).Error("unknown value '" + name + "'");
    *out = *v;
    return absl::OkStatus();
  }

 private:
  std::string path_;
};

std::optional<Polarity> ParsePolarity(std::string_view s) {
  if (s == "INCLUSION") return Polarity::kInclusion;
  if (s == "EXCLUSION") return Polarity::kExclusion;
  return std::nullopt;
}
std::optional<Section> ParseSection(std::string_view s) {
  if (s == "UNSPECIFIED") return Section::kUnspecified;
  if (s == "INCLUSION") return Section::kInclusion;
  if (s == "EXCLUSION") return Section::kExclusion;
  return std::nullopt;
}
std::optional<EvidenceSource> ParseSource(std::string_view s) {
  if (s == "CRITERIA_TEXT") return EvidenceSource::kCriteriaText;
  if (s == "STRUCTURED_FIELD") return EvidenceSource::kStructuredField;
  return std::nullopt;
}
std::optional<model::Sex> ParseSex(std::string_view s) {
  if (s == "ALL") return model::Sex::kAll;
  if (s == "FEMALE") return model::Sex::kFemale;
  if (s == "MALE") return model::Sex::kMale;
  return std::nullopt;
}

absl::Status ReadEvidence(const Reader& r, const Json& j, Evidence* e) {
  TRIALMATCH_RETURN_IF_ERROR(r.Enum(j, "source", &e->source, &ParseSource));
  TRIALMATCH_RETURN_IF_ERROR(r.String(j, "field", &e->field));
  TRIALMATCH_RETURN_IF_ERROR(r.SpanOf(j, "span", &e->span));
  return r.String(j, "text", &e->text);
}

absl::Status ReadPredicate(const Reader& r, const Json& j, Predicate* p) {
  TRIALMATCH_RETURN_IF_ERROR(r.Enum(j, "kind", &p->kind, &ParseKind));
  TRIALMATCH_RETURN_IF_ERROR(r.Enum(j, "polarity", &p->polarity, &ParsePolarity));
  TRIALMATCH_RETURN_IF_ERROR(r.Bool(j, "informational", &p->informational));
  TRIALMATCH_RETURN_IF_ERROR(r.String(j, "rule_id", &p->rule_id));
  TRIALMATCH_ASSIGN_OR_RETURN(const Json* ev, r.Member(j, "evidence"));
  if (ev != nullptr) {
    TRIALMATCH_RETURN_IF_ERROR(ReadEvidence(r.At("evidence"), *ev, &p->evidence));
  }
  TRIALMATCH_RETURN_IF_ERROR(r.Int(j, "criterion", &p->criterion));
  TRIALMATCH_RETURN_IF_ERROR(r.String(j, "quantity", &p->quantity));
  TRIALMATCH_RETURN_IF_ERROR(r.Double(j, "low", &p->low));
  TRIALMATCH_RETURN_IF_ERROR(r.Bool(j, "low_inclusive", &p->low_inclusive));
  TRIALMATCH_RETURN_IF_ERROR(r.Double(j, "high", &p->high));
  TRIALMATCH_RETURN_IF_ERROR(r.Bool(j, "high_inclusive", &p->high_inclusive));
  TRIALMATCH_RETURN_IF_ERROR(r.String(j, "unit", &p->unit));
  TRIALMATCH_RETURN_IF_ERROR(r.Bool(j, "relative_to_uln", &p->relative_to_uln));
  TRIALMATCH_RETURN_IF_ERROR(r.String(j, "original_value", &p->original_value));
  TRIALMATCH_RETURN_IF_ERROR(r.Enum(j, "sex", &p->sex, &ParseSex));
  TRIALMATCH_ASSIGN_OR_RETURN(const Json* cs, r.Member(j, "concepts"));
  if (cs != nullptr) {
    if (!cs->is_array()) return r.At("concepts").Error("expected an array");
    for (size_t i = 0; i < cs->size(); ++i) {
      const Reader cr = r.At("concepts").At(i);
      ConditionConcept c;
      TRIALMATCH_RETURN_IF_ERROR(cr.String((*cs)[i], "text", &c.text));
      TRIALMATCH_RETURN_IF_ERROR(cr.String((*cs)[i], "normalized", &c.normalized));
      TRIALMATCH_RETURN_IF_ERROR(cr.Strings((*cs)[i], "mesh_ids", &c.mesh_ids));
      TRIALMATCH_RETURN_IF_ERROR(
          cr.Strings((*cs)[i], "ancestor_mesh_ids", &c.ancestor_mesh_ids));
      p->concepts.push_back(std::move(c));
    }
  }
  TRIALMATCH_RETURN_IF_ERROR(
      r.Bool(j, "accepts_healthy_volunteers", &p->accepts_healthy_volunteers));
  return r.String(j, "note", &p->note);
}

absl::Status ReadCriterion(const Reader& r, const Json& j, Criterion* c) {
  TRIALMATCH_RETURN_IF_ERROR(r.Enum(j, "section", &c->section, &ParseSection));
  TRIALMATCH_RETURN_IF_ERROR(r.Enum(j, "polarity", &c->polarity, &ParsePolarity));
  TRIALMATCH_RETURN_IF_ERROR(r.SpanOf(j, "span", &c->span));
  TRIALMATCH_RETURN_IF_ERROR(r.String(j, "text", &c->text));
  TRIALMATCH_RETURN_IF_ERROR(r.Int(j, "parent", &c->parent));
  TRIALMATCH_RETURN_IF_ERROR(r.Int(j, "depth", &c->depth));
  TRIALMATCH_RETURN_IF_ERROR(r.Bool(j, "any_of", &c->any_of));
  TRIALMATCH_RETURN_IF_ERROR(r.Ints(j, "children", &c->children));
  return r.Ints(j, "predicates", &c->predicates);
}

}  // namespace

std::string_view KindName(Kind kind) {
  for (const auto& [k, name] : kKinds) {
    if (k == kind) return name;
  }
  return "OTHER";
}

std::optional<Kind> ParseKind(std::string_view name) {
  for (const auto& [k, n] : kKinds) {
    if (n == name) return k;
  }
  return std::nullopt;
}

std::string_view PolarityName(Polarity p) {
  return p == Polarity::kExclusion ? "EXCLUSION" : "INCLUSION";
}

std::string_view SectionName(Section s) {
  switch (s) {
    case Section::kInclusion: return "INCLUSION";
    case Section::kExclusion: return "EXCLUSION";
    default: return "UNSPECIFIED";
  }
}

std::string_view EvidenceSourceName(EvidenceSource s) {
  return s == EvidenceSource::kStructuredField ? "STRUCTURED_FIELD"
                                               : "CRITERIA_TEXT";
}

Json ToJsonValue(const CompiledStudy& study) {
  Json j = Json::object();
  j["format"] = kJsonFormat;
  j["nct_id"] = study.nct_id;
  j["compiler_version"] = study.compiler_version;
  j["rules_version"] = study.rules_version;
  Json criteria = Json::array();
  for (const Criterion& c : study.criteria) criteria.push_back(CriterionJson(c));
  j["criteria"] = std::move(criteria);
  Json predicates = Json::array();
  for (const Predicate& p : study.predicates) predicates.push_back(PredicateJson(p));
  j["predicates"] = std::move(predicates);
  Json conflicts = Json::array();
  for (const Conflict& c : study.conflicts) {
    Json cj = Json::object();
    cj["kind"] = std::string(KindName(c.kind));
    cj["description"] = c.description;
    cj["structured"] = EvidenceJson(c.structured);
    cj["text"] = EvidenceJson(c.text);
    conflicts.push_back(std::move(cj));
  }
  j["conflicts"] = std::move(conflicts);
  j["notes"] = study.notes;
  return j;
}

std::string ToJson(const CompiledStudy& study, int indent) {
  // Replace invalid UTF-8 (never expected: the compiler keeps text valid)
  // rather than throwing.
  return ToJsonValue(study).dump(indent, ' ', false,
                                 Json::error_handler_t::replace);
}

absl::StatusOr<CompiledStudy> FromJsonValue(const Json& j) {
  const Reader r("");
  if (!j.is_object()) return r.Error("expected an object");
  int format = 0;
  TRIALMATCH_RETURN_IF_ERROR(r.Int(j, "format", &format));
  if (format != kJsonFormat) {
    return r.At("format").Error(
        absl::StrCat("unsupported format ", format, " (expected ", kJsonFormat, ")"));
  }
  CompiledStudy cs;
  TRIALMATCH_RETURN_IF_ERROR(r.String(j, "nct_id", &cs.nct_id));
  TRIALMATCH_RETURN_IF_ERROR(r.String(j, "compiler_version", &cs.compiler_version));
  TRIALMATCH_RETURN_IF_ERROR(r.String(j, "rules_version", &cs.rules_version));
  auto array = [&](const char* key) -> absl::StatusOr<const Json*> {
    TRIALMATCH_ASSIGN_OR_RETURN(const Json* v, r.Member(j, key));
    if (v != nullptr && !v->is_array()) return r.At(key).Error("expected an array");
    return v;
  };
  TRIALMATCH_ASSIGN_OR_RETURN(const Json* criteria, array("criteria"));
  if (criteria != nullptr) {
    for (size_t i = 0; i < criteria->size(); ++i) {
      Criterion c;
      TRIALMATCH_RETURN_IF_ERROR(
          ReadCriterion(r.At("criteria").At(i), (*criteria)[i], &c));
      cs.criteria.push_back(std::move(c));
    }
  }
  TRIALMATCH_ASSIGN_OR_RETURN(const Json* predicates, array("predicates"));
  if (predicates != nullptr) {
    for (size_t i = 0; i < predicates->size(); ++i) {
      Predicate p;
      TRIALMATCH_RETURN_IF_ERROR(
          ReadPredicate(r.At("predicates").At(i), (*predicates)[i], &p));
      cs.predicates.push_back(std::move(p));
    }
  }
  TRIALMATCH_ASSIGN_OR_RETURN(const Json* conflicts, array("conflicts"));
  if (conflicts != nullptr) {
    for (size_t i = 0; i < conflicts->size(); ++i) {
      const Reader cr = r.At("conflicts").At(i);
      const Json& cj = (*conflicts)[i];
      Conflict c;
      TRIALMATCH_RETURN_IF_ERROR(cr.Enum(cj, "kind", &c.kind, &ParseKind));
      TRIALMATCH_RETURN_IF_ERROR(cr.String(cj, "description", &c.description));
      for (const auto& [key, ev] : {std::pair{"structured", &c.structured},
                                    std::pair{"text", &c.text}}) {
        TRIALMATCH_ASSIGN_OR_RETURN(const Json* e, cr.Member(cj, key));
        if (e != nullptr) {
          TRIALMATCH_RETURN_IF_ERROR(ReadEvidence(cr.At(key), *e, ev));
        }
      }
      cs.conflicts.push_back(std::move(c));
    }
  }
  TRIALMATCH_RETURN_IF_ERROR(r.Strings(j, "notes", &cs.notes));

  // Indexes must point inside the study.
  const auto nc = static_cast<int>(cs.criteria.size());
  const auto np = static_cast<int>(cs.predicates.size());
  for (int i = 0; i < nc; ++i) {
    const Criterion& c = cs.criteria[i];
    const Reader cr = r.At("criteria").At(static_cast<size_t>(i));
    if (c.parent < -1 || c.parent >= nc) return cr.At("parent").Error("out of range");
    for (int k : c.children) {
      if (k >= nc) return cr.At("children").Error("out of range");
    }
    for (int k : c.predicates) {
      if (k >= np) return cr.At("predicates").Error("out of range");
    }
  }
  for (int i = 0; i < np; ++i) {
    const int c = cs.predicates[i].criterion;
    if (c < -1 || c >= nc) {
      return r.At("predicates").At(static_cast<size_t>(i)).At("criterion").Error(
          "out of range");
    }
  }
  return cs;
}

absl::StatusOr<CompiledStudy> FromJson(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) {
    return absl::DataLossError("compiled study JSON: not valid JSON");
  }
  return FromJsonValue(j);
}

}  // namespace trialmatch::criteria
