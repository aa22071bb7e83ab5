#include "match/explain.h"

#include <charconv>
#include <cmath>
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

std::string_view Verb(const View& p) {
  return p.cp.polarity() == Polarity::kInclusion ? "requires" : "excludes";
}

bool IsEcogOrKps(std::string_view q) { return q == "ecog" || q == "karnofsky"; }

// " g/dL", "%", " × ULN", "" for scores and ratios.
std::string UnitSuffix(std::string_view quantity, std::string_view unit,
                       bool uln) {
  if (uln) return " × ULN";
  if (unit.empty() || unit == "score" || unit == "ratio") return "";
  if (unit == "%") return "%";
  return absl::StrCat(" ", ToAbsl(unit));
}

std::string AgeUnitName(double unit_years) {
  if (unit_years > 0.99) return "years";
  if (unit_years > 0.05) return "months";
  if (unit_years > 0.01) return "weeks";
  return "days";
}

std::string Bound(bool inclusive_low_side, bool is_low, double v) {
  const char* op = is_low ? (inclusive_low_side ? "≥ " : "> ")
                          : (inclusive_low_side ? "≤ " : "< ");
  return absl::StrCat(op, FormatNumber(v));
}

// "age ≥ 18 years", "hemoglobin ≥ 9 g/dL", "ALT ≤ 2.5 × ULN".
std::string NumericTest(const View& p) {
  const CompactPredicate& cp = p.cp;
  const bool age = p.kind() == Kind::kAge;
  const double scale = age ? AgeUnitYears(cp.age_unit) : 1;
  const std::string suffix =
      age ? absl::StrCat(" ", AgeUnitName(scale))
          : UnitSuffix(p.quantity, p.unit, cp.relative_to_uln);
  std::string test = QuantityLabel(p.quantity);
  if (cp.has_low && cp.has_high && cp.low_inclusive && cp.high_inclusive) {
    absl::StrAppend(&test, " ", FormatNumber(cp.low / scale), "–",
                    FormatNumber(cp.high / scale));
  } else {
    if (cp.has_low) {
      absl::StrAppend(&test, " ", Bound(cp.low_inclusive, true, cp.low / scale));
    }
    if (cp.has_high) {
      absl::StrAppend(&test, cp.has_low ? " and " : " ",
                      Bound(cp.high_inclusive, false, cp.high / scale));
    }
    if (!cp.has_low && !cp.has_high) absl::StrAppend(&test, " (no bound)");
  }
  absl::StrAppend(&test, suffix);
  return test;
}

std::string AgeText(double years) {
  if (years < 2) {
    return absl::StrCat(static_cast<int>(std::floor(years * 12 + 1e-9)),
                        " months old");
  }
  return absl::StrCat(static_cast<int>(std::floor(years + 1e-9)), " years old");
}

std::string PatientValue(const View& p, double v) {
  return absl::StrCat(FormatNumber(v), UnitSuffix(p.quantity, p.unit, false));
}

// A value in the quantity's canonical unit (for ×ULN predicates, whose own
// unit is "xULN").
std::string CanonicalValue(const View& p, double v) {
  return absl::StrCat(
      FormatNumber(v),
      UnitSuffix(p.quantity,
                 patient::Terminology::Builtin().CanonicalUnit(p.quantity),
                 false));
}

std::string NumericFact(const View& p, const PredicateEval& e) {
  const std::string q = QuantityLabel(p.quantity);
  switch (e.why) {
    case Why::kDecided:
      if (p.kind() == Kind::kAge) return absl::StrCat("patient is ", AgeText(e.value));
      if (IsEcogOrKps(p.quantity)) {
        return absl::StrCat("patient's ", q, " is ", FormatNumber(e.value));
      }
      return absl::StrCat("patient's ", q, " is ", PatientValue(p, e.value));
    case Why::kNoValue:
      if (p.kind() == Kind::kAge) return "patient's age is not known";
      if (IsEcogOrKps(p.quantity)) return "no ECOG or Karnofsky score in the profile";
      return absl::StrCat("no ", q, " value in the profile");
    case Why::kNotAQuantity:
      return "the measured quantity is not one a profile carries";
    case Why::kUnitMismatch:
      return absl::StrCat("bound stated in ", ToAbsl(p.unit),
                          ", not comparable with the profile's units");
    case Why::kUlnUnknown:
      return absl::StrCat("patient's ", q, " is ", CanonicalValue(p, e.value),
                          " but the upper limit of normal is not known");
    case Why::kUlnDecided:
      return absl::StrCat("patient's ", q, " is ", CanonicalValue(p, e.value),
                          " = ", FormatNumber(e.value2), " × ULN (reference ULN ",
                          CanonicalValue(p, e.value3), ")");
    case Why::kAgeAmbiguous:
      return absl::StrCat("patient is ", AgeText(e.value),
                          ": \"older than\" may or may not include this age");
    case Why::kFromKarnofsky:
      return absl::StrCat("patient's Karnofsky ", FormatNumber(e.value2),
                          " corresponds to ECOG ", FormatNumber(e.value));
    case Why::kFromEcog:
      return absl::StrCat("patient's ECOG ", FormatNumber(e.value3),
                          " corresponds to Karnofsky ", FormatNumber(e.value),
                          "–", FormatNumber(e.value2));
    case Why::kMappingAmbiguous:
      return absl::StrCat("patient's ECOG ", FormatNumber(e.value3),
                          " corresponds to Karnofsky ", FormatNumber(e.value),
                          "–", FormatNumber(e.value2),
                          ", on both sides of the bound");
    default:
      break;
  }
  return "not decided";
}

std::string ConceptList(const Snapshot& s, const CompactPredicate& cp) {
  std::string out;
  for (uint32_t r = 0; r < cp.concepts_count; ++r) {
    if (r == 5) {
      absl::StrAppend(&out, ", …");
      break;
    }
    absl::StrAppend(&out, r == 0 ? "" : ", ",
                    ToAbsl(s.String(s.concept_texts()[cp.concepts_begin + r])));
  }
  return out;
}

std::string ConditionFact(const Snapshot& s, const PatientFacts& f,
                          const PredicateEval& e) {
  std::string patient_label;
  if (e.condition >= 0) {
    patient_label = ConditionLabel(
        f.profile->conditions[f.conditions[e.condition].index]);
  }
  std::string concept_label;
  if (e.concept_ref != kNoId) {
    concept_label = std::string(s.String(s.concept_texts()[e.concept_ref]));
  }
  const std::string via =
      e.key == kNoId ? std::string("same name")
                     : absl::StrCat("MeSH ", ToAbsl(s.MeshId(e.key)));
  switch (e.why) {
    case Why::kCondMatched:
      if (e.strength == MatchStrength::kExact) {
        return absl::StrCat("patient has ", patient_label, " (", via, ")");
      }
      return absl::StrCat("patient's ", patient_label, " is a form of ",
                          concept_label, " (", via, ")");
    case Why::kCondResolved:
      return absl::StrCat("patient's ", patient_label,
                          " is resolved; the criterion does not say whether "
                          "past disease counts");
    case Why::kCondStudyTopic:
      return absl::StrCat("patient's ", patient_label,
                          " is what the study is about; the exclusion may "
                          "mean another form or episode");
    case Why::kCondAncestorOnly:
      return absl::StrCat("patient has ", patient_label, ", broader than ",
                          concept_label, "; the specific form is not known");
    case Why::kCondAbsentComplete:
      return "not among the patient's conditions (list declared complete)";
    case Why::kCondNotListed:
      return "not among the patient's listed conditions (list not declared "
             "complete)";
    case Why::kCondNotComparable:
      return "not among the patient's conditions, but not every condition "
             "could be compared by MeSH code";
    case Why::kCondNoConcepts:
      return "no condition named";
    default:
      break;
  }
  return "not decided";
}

std::string TristateFact(const PredicateEval& e, std::string_view yes,
                         std::string_view no, std::string_view unknown) {
  if (e.why == Why::kMale) return "patient is male";
  if (e.status == TestStatus::kMet) return std::string(yes);
  if (e.status == TestStatus::kNotMet) return std::string(no);
  return std::string(unknown);
}

}  // namespace

std::string FormatNumber(double v) {
  if (!std::isfinite(v)) return "?";
  char buf[32];
  const bool whole = v == std::floor(v) && std::fabs(v) < 1e15;
  const std::to_chars_result r =
      whole ? std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed, 0)
            : std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, 4);
  return std::string(buf, r.ptr);
}

std::string QuantityLabel(std::string_view q) {
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
    if (key == q) return std::string(label);
  }
  std::string out(q);
  for (char& c : out) {
    if (c == '_') c = ' ';
  }
  return out.empty() ? std::string("value") : out;
}

std::string ConditionLabel(const patient::Condition& c) {
  if (!c.text.empty()) return c.text;
  if (!c.mesh.empty() && !c.mesh.front().term.empty()) return c.mesh.front().term;
  if (!c.codes.empty()) {
    return c.codes.front().display.empty() ? c.codes.front().code
                                           : c.codes.front().display;
  }
  return "a listed condition";
}

std::string Reason(const Snapshot& s, const PatientFacts& f, uint32_t study,
                   uint32_t predicate, const CompactPredicate& cp,
                   const PredicateEval& e) {
  const PredicateInfo& info = s.study(study).predicates[predicate];
  const View p{cp, s.String(info.quantity), s.String(info.unit)};
  std::string test;
  std::string fact;
  switch (cp.kind()) {
    case Kind::kAge:
    case Kind::kLab:
    case Kind::kPerformanceStatus:
      test = absl::StrCat(ToAbsl(Verb(p)), " ", NumericTest(p));
      fact = NumericFact(p, e);
      break;
    case Kind::kSex:
      test = absl::StrCat(ToAbsl(Verb(p)), " ",
                          cp.sex() == model::Sex::kFemale
                              ? "female participants"
                              : (cp.sex() == model::Sex::kMale ? "male participants"
                                                               : "any sex"));
      fact = e.status == TestStatus::kUnknown
                 ? "patient's sex is not known"
                 : absl::StrCat("patient is ",
                                ToAbsl(patient::SexName(f.profile->sex)));
      break;
    case Kind::kPregnancy:
      test = cp.polarity() == Polarity::kInclusion ? "requires pregnancy"
                                                   : "excludes pregnant patients";
      fact = TristateFact(e, "patient is pregnant", "patient is not pregnant",
                          "pregnancy status not known");
      break;
    case Kind::kBreastfeeding:
      test = cp.polarity() == Polarity::kInclusion ? "requires breastfeeding"
                                                   : "excludes breastfeeding patients";
      fact = TristateFact(e, "patient is breastfeeding",
                          "patient is not breastfeeding",
                          "breastfeeding status not known");
      break;
    case Kind::kHealthyVolunteers:
      if (e.why == Why::kHvAccepted) {
        test = "study accepts healthy volunteers";
        fact = "no restriction";
      } else {
        test = "study does not accept healthy volunteers";
        if (e.why == Why::kHvHasConditions) {
          fact = "patient lists conditions";
        } else {
          fact = TristateFact(e, "patient is not a healthy volunteer",
                              "patient is a healthy volunteer",
                              "not known whether the patient is a healthy "
                              "volunteer");
        }
      }
      break;
    case Kind::kCondition:
      if (cp.study_conditions) {
        test = absl::StrCat("the study's conditions: ", ConceptList(s, cp));
      } else {
        test = absl::StrCat(ToAbsl(Verb(p)), " ", ConceptList(s, cp));
      }
      fact = ConditionFact(s, f, e);
      break;
    case Kind::kContraception:
      test = "contraception requirement";
      fact = "needs review";
      break;
    case Kind::kOther:
      test = "needs review";
      fact = "criterion not machine-readable";
      break;
  }
  std::string reason = absl::StrCat(ToAbsl(test), "; ", ToAbsl(fact));
  if (cp.informational) reason = absl::StrCat("for information: ", reason);
  return reason;
}

}  // namespace trialmatch::match::internal
