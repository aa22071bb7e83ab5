// Helpers shared by the match tests:
//  * TestStudy: a model::Study plus a hand-built CompiledStudy whose indexes
//    are kept consistent (structured predicates, criteria, nesting, any-of);
//  * predicate makers (Age, Lab, Ecog, Sex, Condition, ...);
//  * PatientBuilder: a Profile through patient::NormalizeProfile with a
//    fixed reference date;
//  * MatchOne / MatchAll: build a snapshot and match with sensible test
//    options (every verdict, every status, explanations on).
//  * CorpusSnapshot(): every recorded study compiled with the real rules
//    (built once per test binary).
#ifndef TRIALMATCH_TESTS_MATCH_MATCH_TEST_UTIL_H_
#define TRIALMATCH_TESTS_MATCH_MATCH_TEST_UTIL_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/civil_time.h"
#include "criteria/compiled_study.h"
#include "gtest/gtest.h"
#include "match/matcher.h"
#include "match/snapshot.h"
#include "model/study.h"
#include "patient/normalize.h"
#include "patient/profile.h"

namespace trialmatch::match::testing {

using criteria::Kind;
using criteria::Polarity;
using criteria::Predicate;

inline constexpr Polarity kIncl = Polarity::kInclusion;
inline constexpr Polarity kExcl = Polarity::kExclusion;

class TestStudy {
 public:
  explicit TestStudy(std::string nct_id, std::string status = "RECRUITING") {
    study.nct_id = nct_id;
    study.brief_title = "Study " + nct_id;
    study.overall_status = std::move(status);
    compiled.nct_id = std::move(nct_id);
  }

  // A structured (top-level, criterion -1) predicate.
  TestStudy& Structured(Predicate p) {
    p.criterion = -1;
    if (p.evidence.field.empty()) {
      p.evidence.source = criteria::EvidenceSource::kStructuredField;
      p.evidence.field = "protocolSection.eligibilityModule.test";
    }
    compiled.predicates.push_back(std::move(p));
    return *this;
  }

  // A criterion holding `preds`; returns its index.
  int Criterion(std::vector<Predicate> preds, int parent = -1,
                bool any_of = false, std::string text = "criterion") {
    criteria::Criterion c;
    c.parent = parent;
    c.any_of = any_of;
    c.text = std::move(text);
    c.section = criteria::Section::kInclusion;
    const int idx = static_cast<int>(compiled.criteria.size());
    const int32_t begin = static_cast<int32_t>(criteria_text.size());
    criteria_text += c.text + "\n";
    c.span = {begin, static_cast<int32_t>(begin + c.text.size())};
    if (parent >= 0) {
      c.depth = compiled.criteria[parent].depth + 1;
      compiled.criteria[parent].children.push_back(idx);
    }
    compiled.criteria.push_back(std::move(c));
    for (Predicate& p : preds) {
      p.criterion = idx;
      if (p.evidence.field.empty()) {
        p.evidence.source = criteria::EvidenceSource::kCriteriaText;
        p.evidence.field =
            "protocolSection.eligibilityModule.eligibilityCriteria";
        p.evidence.span = compiled.criteria[idx].span;
        p.evidence.text = compiled.criteria[idx].text;
      }
      compiled.criteria[idx].predicates.push_back(
          static_cast<int>(compiled.predicates.size()));
      compiled.predicates.push_back(std::move(p));
    }
    study.eligibility.criteria = criteria_text;
    study.eligibility.present = true;
    return idx;
  }

  // The study's own conditions (model and a structured.conditions
  // predicate, as the compiler makes it).
  TestStudy& Conditions(std::vector<model::MeshTerm> meshes,
                        std::vector<model::MeshTerm> ancestors = {},
                        bool informational = false) {
    Predicate p;
    p.kind = Kind::kCondition;
    p.rule_id = "structured.conditions";
    p.informational = informational;
    for (const model::MeshTerm& m : meshes) {
      study.conditions.push_back(m.term);
      criteria::ConditionConcept cc;
      cc.text = m.term;
      cc.normalized = m.term;
      if (!m.id.empty()) cc.mesh_ids.push_back(m.id);
      for (const model::MeshTerm& a : ancestors)
        cc.ancestor_mesh_ids.push_back(a.id);
      p.concepts.push_back(std::move(cc));
      if (!m.id.empty()) study.condition_meshes.push_back(m);
    }
    study.condition_ancestors = std::move(ancestors);
    p.evidence.source = criteria::EvidenceSource::kStructuredField;
    p.evidence.field = "protocolSection.conditionsModule.conditions";
    return Structured(std::move(p));
  }

  TestStudy& Site(std::string facility, double lat, double lon,
                  std::string status = "RECRUITING", std::string city = "") {
    model::Location l;
    l.facility = std::move(facility);
    l.city = std::move(city);
    l.status = std::move(status);
    l.geo = model::GeoPoint{lat, lon};
    study.locations.push_back(std::move(l));
    return *this;
  }

  model::Study study;
  criteria::CompiledStudy compiled;
  std::string criteria_text;
};

inline Predicate Numeric(Kind kind, std::string quantity,
                         std::optional<double> low, std::optional<double> high,
                         Polarity polarity = kIncl, std::string unit = "") {
  Predicate p;
  p.kind = kind;
  p.polarity = polarity;
  p.quantity = std::move(quantity);
  p.low = low;
  p.high = high;
  p.unit = std::move(unit);
  p.rule_id = "test." + p.quantity;
  return p;
}

inline Predicate Age(std::optional<double> low, std::optional<double> high,
                     Polarity polarity = kIncl, std::string original = "") {
  Predicate p = Numeric(Kind::kAge, "age", low, high, polarity, "years");
  p.original_value = std::move(original);
  return p;
}

inline Predicate Lab(std::string quantity, std::optional<double> low,
                     std::optional<double> high, std::string unit,
                     Polarity polarity = kIncl) {
  return Numeric(Kind::kLab, std::move(quantity), low, high, polarity,
                 std::move(unit));
}

inline Predicate Uln(std::string quantity, double high_x_uln,
                     Polarity polarity = kIncl) {
  Predicate p = Numeric(Kind::kLab, std::move(quantity), std::nullopt,
                        high_x_uln, polarity, "xULN");
  p.relative_to_uln = true;
  return p;
}

inline Predicate Performance(std::string quantity, std::optional<double> low,
                             std::optional<double> high,
                             Polarity polarity = kIncl) {
  return Numeric(Kind::kPerformanceStatus, std::move(quantity), low, high,
                 polarity, "score");
}

inline Predicate SexIs(model::Sex sex, Polarity polarity = kIncl) {
  Predicate p;
  p.kind = Kind::kSex;
  p.sex = sex;
  p.polarity = polarity;
  p.rule_id = "test.sex";
  return p;
}

inline Predicate Simple(Kind kind, Polarity polarity,
                        bool informational = false) {
  Predicate p;
  p.kind = kind;
  p.polarity = polarity;
  p.informational = informational;
  p.rule_id = "test.simple";
  return p;
}

inline Predicate HealthyVolunteers(bool accepts) {
  Predicate p;
  p.kind = Kind::kHealthyVolunteers;
  p.accepts_healthy_volunteers = accepts;
  p.rule_id = "structured.healthy_volunteers";
  return p;
}

inline criteria::ConditionConcept Concept(std::string text,
                                          std::vector<std::string> mesh = {},
                                          std::vector<std::string> anc = {}) {
  criteria::ConditionConcept c;
  c.text = text;
  c.normalized = std::move(text);
  c.mesh_ids = std::move(mesh);
  c.ancestor_mesh_ids = std::move(anc);
  return c;
}

inline Predicate HasCondition(std::vector<criteria::ConditionConcept> concepts,
                              Polarity polarity) {
  Predicate p;
  p.kind = Kind::kCondition;
  p.polarity = polarity;
  p.concepts = std::move(concepts);
  p.rule_id = "test.condition";
  return p;
}

// MeSH descriptors used across the tests (ids as MeSH and the registry spell
// them; terms as in the recorded corpus).
inline const model::MeshTerm kDiabetes{"D003920", "Diabetes Mellitus"};
inline const model::MeshTerm kType2Diabetes{"D003924",
                                            "Diabetes Mellitus, Type 2"};
inline const model::MeshTerm kEndocrine{"D004700", "Endocrine System Diseases"};
inline const model::MeshTerm kGlucoseMetabolism{"D044882",
                                                "Glucose Metabolism Disorders"};
inline const model::MeshTerm kMetabolic{"D008659", "Metabolic Diseases"};
inline const model::MeshTerm kBreastNeoplasms{"D001943", "Breast Neoplasms"};
inline const model::MeshTerm kNeoplasms{"D009369", "Neoplasms"};
inline const model::MeshTerm kStroke{"D020521", "Stroke"};

class PatientBuilder {
 public:
  PatientBuilder& Age(double years) {
    p_.age_years = years;
    return *this;
  }
  // Born on `day`; the age is computed on 2025-06-15.
  PatientBuilder& Born(absl::CivilDay day) {
    p_.birth_date = day;
    return *this;
  }
  PatientBuilder& Sex(patient::Sex sex) {
    p_.sex = sex;
    return *this;
  }
  // A condition given by a MeSH code (and optionally text).
  PatientBuilder& Mesh(
      std::string id, std::string text = "",
      patient::ClinicalStatus status = patient::ClinicalStatus::kActive) {
    patient::Condition c;
    c.text = std::move(text);
    c.codes.push_back({patient::CodeSystem::kMesh, "", std::move(id), ""});
    c.clinical_status = status;
    p_.conditions.push_back(std::move(c));
    return *this;
  }
  PatientBuilder& Text(std::string text) {
    patient::Condition c;
    c.text = std::move(text);
    p_.conditions.push_back(std::move(c));
    return *this;
  }
  PatientBuilder& Complete(bool complete = true) {
    p_.conditions_complete = complete;
    return *this;
  }
  PatientBuilder& Lab(std::string loinc, double value, std::string unit) {
    patient::Observation o;
    o.loinc = std::move(loinc);
    o.value = value;
    o.unit = std::move(unit);
    o.date = "2025-06-01";
    p_.observations.push_back(std::move(o));
    return *this;
  }
  PatientBuilder& Ecog(int v) {
    p_.ecog = v;
    return *this;
  }
  PatientBuilder& Karnofsky(int v) {
    p_.karnofsky = v;
    return *this;
  }
  PatientBuilder& Pregnant(patient::Tristate t) {
    p_.pregnant = t;
    return *this;
  }
  PatientBuilder& Breastfeeding(patient::Tristate t) {
    p_.breastfeeding = t;
    return *this;
  }
  PatientBuilder& HealthyVolunteer(patient::Tristate t) {
    p_.healthy_volunteer = t;
    return *this;
  }
  PatientBuilder& At(double lat, double lon,
                     std::optional<double> max_km = std::nullopt) {
    p_.location = patient::GeoLocation{lat, lon, max_km};
    return *this;
  }
  patient::Profile Build() const {
    patient::ReaderOptions o;
    o.reference_date = absl::CivilDay(2025, 6, 15);
    absl::StatusOr<patient::Profile> p = patient::NormalizeProfile(p_, o);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : patient::Profile{};
  }

 private:
  patient::Profile p_;
};

// Options for tests: every verdict and status, explanations on.
inline MatchOptions AllOptions() {
  MatchOptions o;
  o.verdicts.clear();
  o.statuses.clear();
  o.include_explanations = true;
  o.require_condition_match = false;
  return o;
}

inline std::shared_ptr<const Snapshot> SnapshotOf(
    const std::vector<TestStudy>& studies, SnapshotOptions options = {}) {
  SnapshotBuilder b(std::move(options));
  for (const TestStudy& s : studies) {
    absl::Status st = b.Add(s.study, s.compiled);
    EXPECT_TRUE(st.ok()) << st;
  }
  return std::move(b).Build();
}

// Matches one study; the result for it (a failing MatchResult when absent).
inline MatchResult MatchOne(const TestStudy& study,
                            const patient::Profile& profile,
                            MatchOptions options = AllOptions(),
                            const Matcher& matcher = Matcher()) {
  std::shared_ptr<const Snapshot> snap = SnapshotOf({study});
  absl::StatusOr<MatchResponse> r = matcher.Match(*snap, profile, options);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok() || r->results.size() != 1) {
    ADD_FAILURE() << "expected exactly one result";
    return MatchResult{};
  }
  return r->results[0];
}

// The explanation of predicate `index` (fails the test when absent).
inline Explanation ExplanationOf(const MatchResult& r, int index) {
  for (const Explanation& e : r.explanations) {
    if (e.predicate == index) return e;
  }
  ADD_FAILURE() << "no explanation for predicate " << index;
  return Explanation{};
}

}  // namespace trialmatch::match::testing

#endif  // TRIALMATCH_TESTS_MATCH_MATCH_TEST_UTIL_H_
