#include "match/explain.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "patient/terminology.h"

namespace trialmatch::match::internal {
namespace {

using criteria::Kind;
using criteria::Polarity;

using common::ToAbsl;

// What the reasons need of one predicate.
struct View {
  const CompactPredicate& cp;
  std::string_view quantity;  // as compiled
  std::string_view unit;      // as compiled
  criteria::Kind kind() const { return cp.kind(); }
};

// Everything appends to one string (reserved once per reason): short
// numbers and labels stay in small-string buffers, so a reason costs about
// one allocation.
void Put(std::string* out, std::string_view s) { out->append(s); }

void PutNumber(std::string* out, double v) {
  if (!std::isfinite(v)) {
    out->append("?");
    return;
  }
  char buf[32];
  const bool whole = v == std::floor(v) && std::fabs(v) < 1e15;
  std::to_chars_result r;
  if (whole && !(v == 0 && std::signbit(v))) {
    // The same digits as the fixed format, without its shortest-digit
    // search (most bounds and values are whole).
    r = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(v));
  } else if (whole) {
    r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed, 0);
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, 4);
  }
  out->append(buf, r.ptr);
}

std::string_view Verb(const CompactPredicate& cp) {
  return cp.polarity() == Polarity::kInclusion ? "requires" : "excludes";
}

bool IsEcogOrKps(std::string_view q) { return q == "ecog" || q == "karnofsky"; }

// " g/dL", "%", " × ULN", nothing for scores and ratios.
void PutUnit(std::string* out, std::string_view unit, bool uln) {
  if (uln) {
    Put(out, " × ULN");
  } else if (unit == "%") {
    Put(out, "%");
  } else if (!unit.empty() && unit != "score" && unit != "ratio") {
    Put(out, " ");
    Put(out, unit);
  }
}

std::string_view AgeUnitName(double unit_years) {
  if (unit_years > 0.99) return "years";
  if (unit_years > 0.05) return "months";
  if (unit_years > 0.01) return "weeks";
  return "days";
}

void PutBound(std::string* out, bool inclusive, bool is_low, double v) {
  Put(out, is_low ? (inclusive ? "≥ " : "> ") : (inclusive ? "≤ " : "< "));
  PutNumber(out, v);
}

// "age ≥ 18 years", "hemoglobin ≥ 9 g/dL", "ALT ≤ 2.5 × ULN".
void PutNumericTest(std::string* out, const View& p) {
  const CompactPredicate& cp = p.cp;
  const bool age = p.kind() == Kind::kAge;
  const double scale = age ? AgeUnitYears(cp.age_unit) : 1;
  AppendQuantityLabel(out, p.quantity);
  if (cp.has_low && cp.has_high && cp.low_inclusive && cp.high_inclusive) {
    Put(out, " ");
    PutNumber(out, cp.low / scale);
    Put(out, "–");
    PutNumber(out, cp.high / scale);
  } else {
    if (cp.has_low) {
      Put(out, " ");
      PutBound(out, cp.low_inclusive, true, cp.low / scale);
    }
    if (cp.has_high) {
      Put(out, cp.has_low ? " and " : " ");
      PutBound(out, cp.high_inclusive, false, cp.high / scale);
    }
    if (!cp.has_low && !cp.has_high) Put(out, " (no bound)");
  }
  if (age) {
    Put(out, " ");
    Put(out, AgeUnitName(scale));
  } else {
    PutUnit(out, p.unit, cp.relative_to_uln);
  }
}

void PutAge(std::string* out, double years) {
  if (years < 2) {
    PutNumber(out, std::floor(years * 12 + 1e-9));
    Put(out, " months old");
  } else {
    PutNumber(out, std::floor(years + 1e-9));
    Put(out, " years old");
  }
}

// A value in the quantity's canonical unit (for ×ULN predicates, whose own
// unit is "xULN").
void PutCanonicalValue(std::string* out, const View& p, double v) {
  PutNumber(out, v);
  PutUnit(out, patient::Terminology::Builtin().CanonicalUnit(p.quantity),
          false);
}

void PutNumericFact(std::string* out, const View& p, const PredicateEval& e) {
  auto patients = [&] {
    Put(out, "patient's ");
    AppendQuantityLabel(out, p.quantity);
    Put(out, " is ");
  };
  switch (e.why) {
    case Why::kDecided:
      if (p.kind() == Kind::kAge) {
        Put(out, "patient is ");
        PutAge(out, e.value);
      } else {
        patients();
        PutNumber(out, e.value);
        if (!IsEcogOrKps(p.quantity)) PutUnit(out, p.unit, false);
      }
      return;
    case Why::kNoValue:
      if (p.kind() == Kind::kAge) {
        Put(out, "patient's age is not known");
      } else if (IsEcogOrKps(p.quantity)) {
        Put(out, "no ECOG or Karnofsky score in the profile");
      } else {
        Put(out, "no ");
        AppendQuantityLabel(out, p.quantity);
        Put(out, " value in the profile");
      }
      return;
    case Why::kNotAQuantity:
      Put(out, "the measured quantity is not one a profile carries");
      return;
    case Why::kUnitMismatch:
      Put(out, "bound stated in ");
      Put(out, p.unit);
      Put(out, ", not comparable with the profile's units");
      return;
    case Why::kUlnUnknown:
      patients();
      PutCanonicalValue(out, p, e.value);
      Put(out, " but the upper limit of normal is not known");
      return;
    case Why::kUlnDecided:
      patients();
      PutCanonicalValue(out, p, e.value);
      Put(out, " = ");
      PutNumber(out, e.value2);
      Put(out, " × ULN (reference ULN ");
      PutCanonicalValue(out, p, e.value3);
      Put(out, ")");
      return;
    case Why::kAgeAmbiguous:
      Put(out, "patient is ");
      PutAge(out, e.value);
      Put(out, ": \"older than\" may or may not include this age");
      return;
    case Why::kFromKarnofsky:
      Put(out, "patient's Karnofsky ");
      PutNumber(out, e.value2);
      Put(out, " corresponds to ECOG ");
      PutNumber(out, e.value);
      return;
    case Why::kFromEcog:
    case Why::kMappingAmbiguous:
      Put(out, "patient's ECOG ");
      PutNumber(out, e.value3);
      Put(out, " corresponds to Karnofsky ");
      PutNumber(out, e.value);
      Put(out, "–");
      PutNumber(out, e.value2);
      if (e.why == Why::kMappingAmbiguous)
        Put(out, ", on both sides of the bound");
      return;
    default:
      break;
  }
  Put(out, "not decided");
}

void PutConceptList(std::string* out, const Snapshot& s,
                    const CompactPredicate& cp) {
  for (uint32_t r = 0; r < cp.concepts_count; ++r) {
    if (r == 5) {
      Put(out, ", …");
      break;
    }
    if (r > 0) Put(out, ", ");
    Put(out, s.String(s.concept_texts()[cp.concepts_begin + r]));
  }
}

void PutConditionFact(std::string* out, const Snapshot& s,
                      const PatientFacts& f, const PredicateEval& e) {
  std::string_view patient_label;
  if (e.condition >= 0) {
    patient_label =
        ConditionLabel(f.profile->conditions[f.conditions[e.condition].index]);
  }
  const std::string_view concept_label =
      e.concept_ref != kNoId ? s.String(s.concept_texts()[e.concept_ref])
                             : std::string_view();
  auto via = [&] {
    Put(out, " (");
    if (e.key == kNoId) {
      Put(out, "same name");
    } else {
      Put(out, "MeSH ");
      Put(out, s.MeshId(e.key));
    }
    Put(out, ")");
  };
  switch (e.why) {
    case Why::kCondMatched:
      if (e.strength == MatchStrength::kExact) {
        Put(out, "patient has ");
        Put(out, patient_label);
      } else {
        Put(out, "patient's ");
        Put(out, patient_label);
        Put(out, " is a form of ");
        Put(out, concept_label);
      }
      via();
      return;
    case Why::kCondResolved:
      Put(out, "patient's ");
      Put(out, patient_label);
      Put(out,
          " is resolved; the criterion does not say whether past disease "
          "counts");
      return;
    case Why::kCondStudyTopic:
      Put(out, "patient's ");
      Put(out, patient_label);
      Put(out,
          " is what the study is about; the exclusion may mean another form "
          "or episode");
      return;
    case Why::kCondAncestorOnly:
      Put(out, "patient has ");
      Put(out, patient_label);
      Put(out, ", broader than ");
      Put(out, concept_label);
      Put(out, "; the specific form is not known");
      return;
    case Why::kCondAbsentComplete:
      Put(out, "not among the patient's conditions (list declared complete)");
      return;
    case Why::kCondNotListed:
      Put(out,
          "not among the patient's listed conditions (list not declared "
          "complete)");
      return;
    case Why::kCondNotComparable:
      Put(out,
          "not among the patient's conditions, but not every condition could "
          "be "
          "compared by MeSH code");
      return;
    case Why::kCondNoConcepts:
      Put(out, "no condition named");
      return;
    default:
      break;
  }
  Put(out, "not decided");
}

std::string_view TristateFact(const PredicateEval& e, std::string_view yes,
                              std::string_view no, std::string_view unknown) {
  if (e.why == Why::kMale) return "patient is male";
  if (e.status == TestStatus::kMet) return yes;
  if (e.status == TestStatus::kNotMet) return no;
  return unknown;
}

}  // namespace

std::string FormatNumber(double v) {
  std::string out;
  PutNumber(&out, v);
  return out;
}

std::string QuantityLabel(std::string_view q) {
  std::string out;
  AppendQuantityLabel(&out, q);
  return out;
}

void AppendQuantityLabel(std::string* out, std::string_view q) {
  static constexpr std::pair<std::string_view, std::string_view> kLabels[] = {
      {"hba1c", "HbA1c"},
      {"egfr", "eGFR"},
      {"creatinine_clearance", "creatinine clearance"},
      {"bmi", "BMI"},
      {"anc", "ANC"},
      {"wbc", "WBC"},
      {"bilirubin_total", "total bilirubin"},
      {"ast", "AST"},
      {"alt", "ALT"},
      {"inr", "INR"},
      {"lvef", "LVEF"},
      {"systolic_bp", "systolic blood pressure"},
      {"diastolic_bp", "diastolic blood pressure"},
      {"fasting_glucose", "fasting glucose"},
      {"ecog", "ECOG"},
      {"karnofsky", "Karnofsky"},
  };
  for (const auto& [key, label] : kLabels) {
    if (key == q) {
      out->append(label);
      return;
    }
  }
  if (q.empty()) {
    out->append("value");
    return;
  }
  const size_t begin = out->size();
  out->append(q);
  for (size_t i = begin; i < out->size(); ++i) {
    if ((*out)[i] == '_') (*out)[i] = ' ';
  }
}

std::string_view ConditionLabel(const patient::Condition& c) {
  if (!c.text.empty()) return c.text;
  if (!c.mesh.empty() && !c.mesh.front().term.empty())
    return c.mesh.front().term;
  if (!c.codes.empty()) {
    return c.codes.front().display.empty() ? c.codes.front().code
                                           : c.codes.front().display;
  }
  return "a listed condition";
}

void AppendReason(std::string* out_text, const Snapshot& s,
                  const PatientFacts& f, uint32_t study, uint32_t predicate,
                  const CompactPredicate& cp, const PredicateEval& e) {
  const PredicateInfo& info = s.study(study).predicates[predicate];
  const View p{cp, s.String(info.quantity), s.String(info.unit)};
  std::string& out = *out_text;
  if (cp.informational) Put(&out, "for information: ");
  auto verb = [&] {
    Put(&out, Verb(cp));
    Put(&out, " ");
  };
  switch (cp.kind()) {
    case Kind::kAge:
    case Kind::kLab:
    case Kind::kPerformanceStatus:
      verb();
      PutNumericTest(&out, p);
      Put(&out, "; ");
      PutNumericFact(&out, p, e);
      break;
    case Kind::kSex:
      verb();
      Put(&out, cp.sex() == model::Sex::kFemale
                    ? "female participants"
                    : (cp.sex() == model::Sex::kMale ? "male participants"
                                                     : "any sex"));
      Put(&out, "; ");
      if (e.status == TestStatus::kUnknown) {
        Put(&out, "patient's sex is not known");
      } else {
        Put(&out, "patient is ");
        Put(&out, patient::SexName(f.profile->sex));
      }
      break;
    case Kind::kPregnancy:
      Put(&out, cp.polarity() == Polarity::kInclusion
                    ? "requires pregnancy"
                    : "excludes pregnant patients");
      Put(&out, "; ");
      Put(&out,
          TristateFact(e, "patient is pregnant", "patient is not pregnant",
                       "pregnancy status not known"));
      break;
    case Kind::kBreastfeeding:
      Put(&out, cp.polarity() == Polarity::kInclusion
                    ? "requires breastfeeding"
                    : "excludes breastfeeding patients");
      Put(&out, "; ");
      Put(&out, TristateFact(e, "patient is breastfeeding",
                             "patient is not breastfeeding",
                             "breastfeeding status not known"));
      break;
    case Kind::kHealthyVolunteers:
      if (e.why == Why::kHvAccepted) {
        Put(&out, "study accepts healthy volunteers; no restriction");
      } else {
        Put(&out, "study does not accept healthy volunteers; ");
        Put(&out,
            e.why == Why::kHvHasConditions
                ? std::string_view("patient lists conditions")
                : TristateFact(e, "patient is not a healthy volunteer",
                               "patient is a healthy volunteer",
                               "not known whether the patient is a healthy "
                               "volunteer"));
      }
      break;
    case Kind::kCondition:
      if (cp.study_conditions) {
        Put(&out, "the study's conditions: ");
      } else {
        verb();
      }
      PutConceptList(&out, s, cp);
      Put(&out, "; ");
      PutConditionFact(&out, s, f, e);
      break;
    case Kind::kContraception:
      Put(&out, "contraception requirement; needs review");
      break;
    case Kind::kOther:
      Put(&out, "needs review; criterion not machine-readable");
      break;
  }
}

}  // namespace trialmatch::match::internal
