// The compiler on real sentences from the recorded corpus (quoted, with the
// study they come from), one predicate family at a time, then polarity,
// groups, conflicts, structured fields, robustness and scaling.
#include "criteria/compiler.h"

#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "criteria/json.h"
#include "criteria_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trialmatch::criteria {
namespace {

using ::testing::HasSubstr;
using testing::CompileIn;
using testing::LoadStudy;
using testing::ProjectCompiler;
using testing::SpanText;
using testing::TextPredicates;

// The single deciding text predicate of `kind` (fails otherwise).
Predicate One(const CompiledStudy& cs, Kind kind) {
  std::vector<Predicate> found;
  for (const Predicate& p : TextPredicates(cs, kind)) {
    if (!p.informational) found.push_back(p);
  }
  EXPECT_EQ(found.size(), 1u) << "predicates of kind " << KindName(kind);
  return found.empty() ? Predicate{} : found[0];
}

bool HasKind(const CompiledStudy& cs, Kind kind, Polarity polarity) {
  for (const Predicate& p : cs.predicates) {
    if (p.kind == kind && p.polarity == polarity && !p.informational) return true;
  }
  return false;
}

// --- Age ---------------------------------------------------------------------

TEST(CompilerAgeTest, RealPhrasings) {
  struct Case {
    const char* text;  // quoted from the corpus
    Section section;
    std::optional<double> low;
    std::optional<double> high;
    Polarity polarity;
  };
  const Case cases[] = {
      {"Age greater than or equal to (\\>=) 18 years.", Section::kInclusion, 18, {}, Polarity::kInclusion},  // NCT02227251
      {"Age less than 18 years.", Section::kExclusion, {}, 18, Polarity::kExclusion},  // NCT00000410
      {"Male or female patients aged ≥ 18 years.", Section::kInclusion, 18, {}, Polarity::kInclusion},  // NCT06760702
      {"Veterans between the ages of 45 and 64.", Section::kInclusion, 45, 64, Polarity::kInclusion},
      {"Children between 5-11 years of age, inclusive, at enrollment.", Section::kInclusion, 5, 11, Polarity::kInclusion},
      {"18 years or older", Section::kInclusion, 18, {}, Polarity::kInclusion},  // NCT06209411
      {"AGE: 18 and over.", Section::kInclusion, 18, {}, Polarity::kInclusion},
      {"Subject is male or female age 18-65 inclusive.", Section::kInclusion, 18, 65, Polarity::kInclusion},
  };
  for (const Case& c : cases) {
    const CompiledStudy cs = CompileIn(c.text, c.section);
    const Predicate p = One(cs, Kind::kAge);
    EXPECT_EQ(p.quantity, "age") << c.text;
    EXPECT_EQ(p.unit, "years") << c.text;
    EXPECT_EQ(p.low, c.low) << c.text;
    EXPECT_EQ(p.high, c.high) << c.text;
    EXPECT_EQ(p.polarity, c.polarity) << c.text;
  }
}

TEST(CompilerAgeTest, MonthsConvertToYears) {
  const Predicate p = One(CompileIn("between 6 months and 17 years of age"), Kind::kAge);
  ASSERT_TRUE(p.low && p.high);
  EXPECT_NEAR(*p.low, 0.5, 1e-4);
  EXPECT_EQ(*p.high, 17);
}

TEST(CompilerAgeTest, DurationsAndGestationAreNotAges) {
  for (const char* text : {"≥ 24 weeks gestational age (as determined by ultrasound)",
                           "At least 3 weeks (21 days) must have elapsed since the end of therapy",
                           "Symptoms less than 6 weeks."}) {
    EXPECT_TRUE(TextPredicates(CompileIn(text), Kind::kAge).empty()) << text;
  }
}

TEST(CompilerAgeTest, TextAgeIsInformationalNextToStructuredAge) {
  // NCT00000410: minimumAge "18 Years"; text "Age less than 18 years." under
  // Exclusion agrees, so it is shown but does not decide and is no conflict.
  const model::Study s = LoadStudy("NCT00000410");
  const CompiledStudy cs = ProjectCompiler().Compile(s);
  const std::vector<Predicate> text_age = TextPredicates(cs, Kind::kAge);
  ASSERT_EQ(text_age.size(), 1u);
  EXPECT_TRUE(text_age[0].informational);
  EXPECT_EQ(text_age[0].polarity, Polarity::kExclusion);
  EXPECT_THAT(text_age[0].note, HasSubstr("structured"));
  for (const Conflict& c : cs.conflicts) EXPECT_NE(c.kind, Kind::kAge) << c.description;
}

TEST(CompilerAgeTest, DisagreementIsAConflictAndTextAppliesWithoutStructuredBound) {
  model::Study s;
  s.nct_id = "NCT00000001";
  s.eligibility.present = true;
  s.eligibility.minimum_age = model::Age{18, model::AgeUnit::kYears, "18 Years"};
  s.eligibility.criteria = "Inclusion Criteria:\n\n* Aged 21-75 years";
  const CompiledStudy cs = ProjectCompiler().Compile(s);
  // The minimum is structured (informational text), the maximum is not
  // (the text's 75 applies).
  bool informational_low = false;
  bool deciding_high = false;
  for (const Predicate& p : TextPredicates(cs, Kind::kAge)) {
    if (p.low && *p.low == 21 && p.informational) informational_low = true;
    if (p.high && *p.high == 75 && !p.informational) deciding_high = true;
  }
  EXPECT_TRUE(informational_low);
  EXPECT_TRUE(deciding_high);
  ASSERT_EQ(cs.conflicts.size(), 1u);
  EXPECT_EQ(cs.conflicts[0].kind, Kind::kAge);
  EXPECT_THAT(cs.conflicts[0].description, HasSubstr("21"));
  EXPECT_THAT(cs.conflicts[0].description, HasSubstr("18 Years"));
  EXPECT_EQ(cs.conflicts[0].structured.field, "protocolSection.eligibilityModule.minimumAge");
}

// --- Labs and unit conversions ---------------------------------------------

TEST(CompilerLabTest, ConversionTable) {
  struct Case {
    const char* text;
    const char* quantity;
    double value;  // canonical
    bool low;      // lower bound (else upper)
    const char* unit;
  };
  const Case cases[] = {
      {"HbA1c >= 53 mmol/mol", "hba1c", 7.00, true, "%"},
      {"HbA1c <= 10.5%", "hba1c", 10.5, false, "%"},
      {"Serum creatinine < 133 umol/L", "creatinine", 1.50419, false, "mg/dL"},
      {"Creatinine no greater than 1.6 mg/dL.", "creatinine", 1.6, false, "mg/dL"},  // old PDQ text
      {"Hemoglobin (Hgb) equal or greater to 90 grams/L", "hemoglobin", 9, true, "g/dL"},
      {"Hemoglobin >= 5.5 mmol/l", "hemoglobin", 8.8605, true, "g/dL"},
      {"Platelet count at least 100,000/mm(3).", "platelets", 100, true, "10^9/L"},
      {"Platelets >= 100 x 10^9/L", "platelets", 100, true, "10^9/L"},
      {"platelet count ≥ 100 × 10⁹/L", "platelets", 100, true, "10^9/L"},
      {"Absolute neutrophil count (ANC) \\>= 1,500 cells/mm\\^3", "anc", 1.5, true, "10^9/L"},
      {"ANC ≥ 1.5 x 109/L", "anc", 1.5, true, "10^9/L"},
      {"WBC >= 3,000/mm3", "wbc", 3, true, "10^9/L"},
      {"Total bilirubin <= 34 umol/L", "bilirubin_total", 1.98830, false, "mg/dL"},
      {"FPG < 7.0 mmol/L", "fasting_glucose", 126.112, false, "mg/dL"},
      {"Body mass index (BMI) of 18.0 to 35 kg/m2", "bmi", 18, true, "kg/m2"},
      {"eGFR >= 30 mL/min/1.73 m^2", "egfr", 30, true, "mL/min/1.73m2"},
      {"Calculated creatinine clearance >= 45 mL/min", "creatinine_clearance", 45, true, "mL/min"},
      {"LVEF >= 50% by echocardiogram or MUGA", "lvef", 50, true, "%"},
      {"INR <= 1.5", "inr", 1.5, false, "ratio"},
      {"Participants with a weight ≥42 kg.", "weight", 42, true, "kg"},  // NCT05712278
  };
  for (const Case& c : cases) {
    const CompiledStudy cs = CompileIn(c.text);
    const Predicate p = One(cs, Kind::kLab);
    EXPECT_EQ(p.quantity, c.quantity) << c.text;
    EXPECT_EQ(p.unit, c.unit) << c.text;
    const std::optional<double> v = c.low ? p.low : p.high;
    ASSERT_TRUE(v.has_value()) << c.text;
    EXPECT_NEAR(*v, c.value, 1e-3 * std::max(1.0, c.value)) << c.text;
    EXPECT_FALSE(p.original_value.empty()) << c.text;
  }
}

TEST(CompilerLabTest, UlnBoundsAndCoordinatedNames) {
  const CompiledStudy cs = CompileIn("AST/ALT ≤ 2.5 × ULN");
  std::vector<std::string> q;
  for (const Predicate& p : TextPredicates(cs, Kind::kLab)) {
    q.push_back(p.quantity);
    EXPECT_TRUE(p.relative_to_uln);
    EXPECT_EQ(p.unit, "xULN");
    EXPECT_EQ(p.high, 2.5);
  }
  EXPECT_THAT(q, ::testing::UnorderedElementsAre("ast", "alt"));
  // "serum bilirubin and creatinine ≤ 1.5 x ULN": one bound, two analytes.
  const CompiledStudy both = CompileIn("Bilirubin and creatinine <= 1.5 x ULN");
  std::vector<std::string> q2;
  for (const Predicate& p : TextPredicates(both, Kind::kLab)) q2.push_back(p.quantity);
  EXPECT_THAT(q2, ::testing::UnorderedElementsAre("bilirubin_total", "creatinine"));
}

TEST(CompilerLabTest, ConditionalUlnRelaxationIsAnAlternative) {
  // "AST and ALT <= 2.5 x ULN (<= 5 x ULN for liver metastases)" is
  // "<= 2.5" OR ("<= 5" AND liver metastases): an any-of group.
  const CompiledStudy cs =
      CompileIn("ALT <= 2.5 x ULN (<= 5 x ULN for patients with liver metastases)");
  int group = -1;
  for (size_t i = 0; i < cs.criteria.size(); ++i) {
    if (cs.criteria[i].any_of) group = static_cast<int>(i);
  }
  ASSERT_GE(group, 0);
  ASSERT_EQ(cs.criteria[group].children.size(), 2u);
  const Criterion& strict = cs.criteria[cs.criteria[group].children[0]];
  const Criterion& relaxed = cs.criteria[cs.criteria[group].children[1]];
  ASSERT_EQ(strict.predicates.size(), 1u);
  EXPECT_EQ(cs.predicates[strict.predicates[0]].high, 2.5);
  bool bound5 = false;
  bool mets = false;
  for (int pi : relaxed.predicates) {
    const Predicate& p = cs.predicates[pi];
    if (p.kind == Kind::kLab && p.high == 5) bound5 = true;
    if (p.kind == Kind::kCondition && p.polarity == Polarity::kInclusion &&
        p.concepts[0].normalized == "liver metastases") {
      mets = true;
    }
  }
  EXPECT_TRUE(bound5);
  EXPECT_TRUE(mets);
}

TEST(CompilerLabTest, RestatementInAnotherUnitIsOneBound) {
  // "Hemoglobin ≥9.0 g/dL (90 g/L)" (a recorded oncology study).
  const CompiledStudy cs = CompileIn("Hemoglobin ≥9.0 g/dL (90 g/L)");
  EXPECT_EQ(TextPredicates(cs, Kind::kLab).size(), 1u);
  for (const Predicate& p : cs.predicates) EXPECT_NE(p.kind, Kind::kOther) << p.rule_id;
}

TEST(CompilerLabTest, TwoSidedBoundsFoldIntoARange) {
  const Predicate p = One(CompileIn("HbA1c ≥ 7.0% and ≤ 10.5%"), Kind::kLab);
  EXPECT_EQ(p.low, 7);
  EXPECT_EQ(p.high, 10.5);
}

TEST(CompilerLabTest, UnknownUnitIsNotReadInAnAssumedOne) {
  EXPECT_TRUE(TextPredicates(CompileIn("Weight loss > 10% in the last 6 months",
                                       Section::kExclusion),
                             Kind::kLab)
                  .empty());
  EXPECT_TRUE(TextPredicates(CompileIn("Prior EGFR TKI therapy"), Kind::kLab).empty());
}

TEST(CompilerLabTest, TwoNamesOfOneAnalyteAreOneBound) {
  // "ALT/SGPT <= 5 x ULN": one ALT bound whose evidence names both.
  const CompiledStudy cs = CompileIn("ALT/SGPT <= 5 x ULN");
  const Predicate p = One(cs, Kind::kLab);
  EXPECT_EQ(p.quantity, "alt");
  EXPECT_EQ(p.high, 5);
  EXPECT_EQ(p.evidence.text, "ALT/SGPT <= 5 x ULN");
  for (const Predicate& o : cs.predicates) EXPECT_NE(o.kind, Kind::kOther) << o.rule_id;
}

TEST(CompilerLabTest, CoordinatedNameTakesTheBoundInItsOwnUnit) {
  // NCT05304754: "Creatinine clearance (ACr) or glomerular filtration rate
  // (TFG) ≥ 50 ml/min/1.73 m2".
  const CompiledStudy cs = CompileIn(
      "Creatinine clearance (ACr) or glomerular filtration rate (TFG) ≥ 50 ml/min/1.73 m2");
  std::map<std::string, std::string> units;
  for (const Predicate& p : TextPredicates(cs, Kind::kLab)) {
    EXPECT_EQ(p.low, 50) << p.quantity;
    units[p.quantity] = p.unit;
  }
  EXPECT_EQ(units["creatinine_clearance"], "mL/min");
  EXPECT_EQ(units["egfr"], "mL/min/1.73m2");
  // Past a method between the names (NCT05740449).
  std::vector<std::string> q;
  for (const Predicate& p : TextPredicates(
           CompileIn("calculated creatinine clearance as per the Schwartz formula or radioisotope "
                     "glomerular filtration rate ≥ 60 mL/min/1.73 m2"),
           Kind::kLab)) {
    EXPECT_EQ(p.low, 60) << p.quantity;
    q.push_back(p.quantity);
  }
  EXPECT_THAT(q, ::testing::UnorderedElementsAre("creatinine_clearance", "egfr"));
  // Not past other words ("... measured in the morning or ...").
  q.clear();
  for (const Predicate& p : TextPredicates(
           CompileIn("creatinine clearance measured in the morning or glomerular filtration rate "
                     "≥ 60 mL/min/1.73 m2"),
           Kind::kLab)) {
    q.push_back(p.quantity);
  }
  EXPECT_THAT(q, ::testing::UnorderedElementsAre("egfr"));
  // A unit the other analyte cannot be measured in is not carried over.
  EXPECT_EQ(TextPredicates(CompileIn("Hemoglobin or platelets >= 100 x 10^9/L"), Kind::kLab).size(),
            1u);
}

TEST(CompilerLabTest, EuropeanThousandsOnlyWhenTheDecimalReadingIsImplausible) {
  // NCT00711542: "thrombocytopenia < 100.000/µl".
  const Predicate p = One(CompileIn("thrombocytopenia \\< 100.000/µl", Section::kExclusion),
                          Kind::kLab);
  EXPECT_EQ(p.quantity, "platelets");
  EXPECT_EQ(p.high, 100);
  EXPECT_EQ(p.polarity, Polarity::kExclusion);
  // A plausible decimal stays a decimal.
  EXPECT_EQ(One(CompileIn("Serum creatinine < 1.500 mg/dL"), Kind::kLab).high, 1.5);
}

TEST(CompilerLabTest, ParenthesizedBoundAfterAnotherWordIsNotTheMeasurements) {
  // "neutropenia (< 1,000/mm3), or lymphopenia (< 500/mm3)": the second
  // bound is lymphopenia's (not a quantity the rules read), not ANC's.
  const CompiledStudy cs =
      CompileIn("neutropenia (< 1,000/mm3), or lymphopenia (< 500/mm3)", Section::kExclusion);
  const Predicate p = One(cs, Kind::kLab);
  EXPECT_EQ(p.quantity, "anc");
  EXPECT_EQ(p.high, 1);
  bool review = false;
  for (const Predicate& o : cs.predicates) review = review || o.kind == Kind::kOther;
  EXPECT_TRUE(review);
}

TEST(CompilerLabTest, SymbolAfterOrStartsAnotherBound) {
  // "BP >160 mm Hg systolic or >95 mm Hg": ">95" is not a systolic bound.
  for (const Predicate& p : TextPredicates(
           CompileIn("BP >160 mm Hg systolic or >95 mm Hg", Section::kExclusion), Kind::kLab)) {
    EXPECT_FALSE(p.quantity == "systolic_bp" && p.low == 95) << p.evidence.text;
  }
}

TEST(CompilerLabTest, ComplementaryConditionOfAnAlternativeIsDropped) {
  // NCT03295227: "creatinine <= 1.5 x ULN OR creatinine clearance >= 60
  // mL/min for subjects with creatinine > 1.5 x ULN" is creatinine <= 1.5 x
  // ULN OR creatinine clearance >= 60 (the condition holds whenever the
  // first alternative does not).
  const CompiledStudy cs = CompileIn(
      "Serum creatinine <= 1.5 x ULN OR creatinine clearance >= 60 mL/min for subjects with "
      "creatinine levels > 1.5 x ULN");
  int low_creatinine = 0;
  int crcl = 0;
  for (const Predicate& p : TextPredicates(cs, Kind::kLab)) {
    if (p.quantity == "creatinine" && p.low) ++low_creatinine;
    if (p.quantity == "creatinine_clearance" && p.low == 60) ++crcl;
  }
  EXPECT_EQ(low_creatinine, 0);
  EXPECT_EQ(crcl, 1);
}

TEST(CompilerLabTest, SameBoundRestatedInOneStatementIsOneRequirement) {
  // "Hgb >= 9 g/dL (transfusion to achieve Hgb >= 9 g/dL is acceptable)".
  const CompiledStudy cs =
      CompileIn("Hemoglobin >= 9 g/dL (transfusion to achieve hemoglobin >= 9 g/dL is acceptable)");
  int bounds = 0;
  for (const Predicate& p : TextPredicates(cs, Kind::kLab)) {
    if (!p.informational && p.quantity == "hemoglobin") ++bounds;
  }
  EXPECT_EQ(bounds, 1);
}

// --- Performance status ------------------------------------------------------

TEST(CompilerPerformanceTest, EcogAndKarnofsky) {
  struct Case {
    const char* text;
    const char* quantity;
    std::optional<double> low;
    std::optional<double> high;
  };
  const Case cases[] = {
      {"ECOG 0-1", "ecog", 0, 1},
      {"ECOG performance score (PS) of 0, 1, or 2.", "ecog", 0, 2},
      {"ECOG performance status of less than or equal to (\\<=) 2.", "ecog", {}, 2},  // NCT02227251
      {"KPS ≥ 70%", "karnofsky", 70, {}},
      {"Performance status: 70-100% Karnofsky", "karnofsky", 70, 100},
      {"WHO performance status 0-1", "ecog", 0, 1},
  };
  for (const Case& c : cases) {
    const Predicate p = One(CompileIn(c.text), Kind::kPerformanceStatus);
    EXPECT_EQ(p.quantity, c.quantity) << c.text;
    EXPECT_EQ(p.low, c.low) << c.text;
    EXPECT_EQ(p.high, c.high) << c.text;
  }
}

// --- Pregnancy, breastfeeding, contraception, sex -----------------------------

TEST(CompilerPregnancyTest, ExclusionsAndNegatedInclusions) {
  // NCT02227251 exclusion: "Participants who are pregnant or lactating."
  CompiledStudy cs = CompileIn("Participants who are pregnant or lactating.", Section::kExclusion);
  EXPECT_TRUE(HasKind(cs, Kind::kPregnancy, Polarity::kExclusion));
  EXPECT_TRUE(HasKind(cs, Kind::kBreastfeeding, Polarity::kExclusion));
  // PDQ inclusion "Not pregnant or nursing." flips to exclusions.
  cs = CompileIn("Not pregnant or nursing.", Section::kInclusion);
  EXPECT_TRUE(HasKind(cs, Kind::kPregnancy, Polarity::kExclusion));
  EXPECT_TRUE(HasKind(cs, Kind::kBreastfeeding, Polarity::kExclusion));
  // A negative test required = pregnancy excludes.
  cs = CompileIn("Female participants of child-bearing potential must have a negative serum "
                 "pregnancy test at screening");
  EXPECT_TRUE(HasKind(cs, Kind::kPregnancy, Polarity::kExclusion));
  for (const Predicate& p : cs.predicates) EXPECT_NE(p.kind, Kind::kOther) << p.rule_id;
  // A pregnancy study requires it.
  cs = CompileIn("Pregnant women at 24-28 weeks of gestation");
  EXPECT_TRUE(HasKind(cs, Kind::kPregnancy, Polarity::kInclusion));
  // Plans are not pregnancy.
  cs = CompileIn("Planning to become pregnant during the study", Section::kExclusion);
  EXPECT_TRUE(TextPredicates(cs, Kind::kPregnancy).empty());
}

TEST(CompilerPregnancyTest, ContraceptionIsInformational) {
  const CompiledStudy cs = CompileIn("Fertile patients must use effective contraception");
  const std::vector<Predicate> p = TextPredicates(cs, Kind::kContraception);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(p[0].informational);
  for (const Predicate& q : cs.predicates) EXPECT_NE(q.kind, Kind::kOther);
}

TEST(CompilerSexTest, CueIsNotASexRestrictionForChildbearingPotential) {
  EXPECT_TRUE(TextPredicates(CompileIn("Women of childbearing potential must have a negative "
                                       "pregnancy test"),
                             Kind::kSex)
                  .empty());
  const std::vector<Predicate> f =
      TextPredicates(CompileIn("Postmenopausal women with breast cancer"), Kind::kSex);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].sex, model::Sex::kFemale);
}

TEST(CompilerSexTest, StructuredSexIsAuthoritative) {
  model::Study s;
  s.nct_id = "NCT00000002";
  s.eligibility.present = true;
  s.eligibility.sex_present = true;
  s.eligibility.sex = model::Sex::kMale;
  s.eligibility.criteria = "Inclusion Criteria:\n\n* Women only";
  const CompiledStudy cs = ProjectCompiler().Compile(s);
  const std::vector<Predicate> text = TextPredicates(cs, Kind::kSex);
  ASSERT_EQ(text.size(), 1u);
  EXPECT_TRUE(text[0].informational);
  ASSERT_EQ(cs.conflicts.size(), 1u);
  EXPECT_EQ(cs.conflicts[0].kind, Kind::kSex);
}

// --- Conditions ----------------------------------------------------------------

TEST(CompilerConditionTest, ClearPhrasingOnly) {
  // NCT05712278: "History of solid organ transplant, including corneal transplant."
  CompiledStudy cs = CompileIn("Known HIV infection", Section::kExclusion);
  Predicate p = One(cs, Kind::kCondition);
  EXPECT_EQ(p.polarity, Polarity::kExclusion);
  EXPECT_EQ(p.concepts[0].normalized, "HIV infection");
  EXPECT_THAT(p.concepts[0].mesh_ids, ::testing::Contains("D015658"));

  cs = CompileIn("No history of stroke or myocardial infarction");
  std::vector<std::string> names;
  for (const Predicate& q : TextPredicates(cs, Kind::kCondition)) {
    EXPECT_EQ(q.polarity, Polarity::kExclusion);
    EXPECT_FALSE(q.informational);
    names.push_back(q.concepts[0].normalized);
  }
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("stroke", "myocardial infarction"));

  cs = CompileIn("Histologically confirmed breast cancer");
  p = One(cs, Kind::kCondition);
  EXPECT_EQ(p.polarity, Polarity::kInclusion);
  EXPECT_EQ(p.concepts[0].normalized, "breast cancer");
  EXPECT_THAT(p.concepts[0].ancestor_mesh_ids, ::testing::Contains("D009369"));

  // Not the patient's condition, or not clearly phrased.
  for (const char* text : {"Family history of stroke", "Received hepatitis B vaccine",
                           "Patients who received treatment for diabetes"}) {
    for (const Predicate& q : TextPredicates(CompileIn(text, Section::kExclusion), Kind::kCondition)) {
      EXPECT_TRUE(q.informational) << text;
    }
  }
}

TEST(CompilerConditionTest, QualifiedExclusionIsAnAnyOfWithReview) {
  // "Uncontrolled hypertension": without hypertension the patient is clear;
  // with it, "uncontrolled" needs review.
  const CompiledStudy cs = CompileIn("Uncontrolled hypertension", Section::kExclusion);
  ASSERT_FALSE(cs.criteria.empty());
  EXPECT_TRUE(cs.criteria[0].any_of);
  bool hypertension = false;
  bool review = false;
  for (int child : cs.criteria[0].children) {
    for (int pi : cs.criteria[child].predicates) {
      const Predicate& p = cs.predicates[pi];
      hypertension = hypertension || (p.kind == Kind::kCondition &&
                                      p.polarity == Polarity::kExclusion);
      review = review || (p.kind == Kind::kOther && !p.informational);
    }
  }
  EXPECT_TRUE(hypertension);
  EXPECT_TRUE(review);
}

TEST(CompilerConditionTest, ExceptionMakesAnAlternative) {
  // NCT00000410-like: "history of any invasive malignancy (except non-melanoma
  // skin cancer)".
  const CompiledStudy cs =
      CompileIn("History of malignancy except basal cell carcinoma", Section::kExclusion);
  for (const Predicate& p : TextPredicates(cs, Kind::kCondition)) {
    EXPECT_NE(p.concepts[0].normalized, "basal cell carcinoma");
  }
  bool grouped = false;
  for (const Criterion& c : cs.criteria) grouped = grouped || c.any_of;
  EXPECT_TRUE(grouped);
}

TEST(CompilerConditionTest, StudyConditionsAreStructuredAndLinked) {
  // NCT00000410: conditions "Herniated Disc", "Low Back Pain"; MeSH terms
  // include D017116 Low Back Pain.
  const CompiledStudy cs = ProjectCompiler().Compile(LoadStudy("NCT00000410"));
  const Predicate* structured = nullptr;
  for (const Predicate& p : cs.predicates) {
    if (p.rule_id == "structured.conditions") structured = &p;
  }
  ASSERT_NE(structured, nullptr);
  EXPECT_EQ(structured->criterion, -1);
  EXPECT_FALSE(structured->informational);
  bool low_back = false;
  for (const ConditionConcept& c : structured->concepts) {
    if (c.text == "Low Back Pain") {
      low_back = true;
      EXPECT_THAT(c.mesh_ids, ::testing::Contains("D017116"));
      EXPECT_THAT(c.ancestor_mesh_ids, ::testing::Contains("D010146"));  // Pain
    }
  }
  EXPECT_TRUE(low_back);
}

// --- Groups, polarity, structure ------------------------------------------------

TEST(CompilerGroupTest, InclusionOrIsAnyOf) {
  const CompiledStudy cs = CompileIn("ECOG 0-1 or KPS >= 70");
  ASSERT_FALSE(cs.criteria.empty());
  EXPECT_TRUE(cs.criteria[0].any_of);
  EXPECT_EQ(cs.criteria[0].children.size(), 2u);
}

TEST(CompilerGroupTest, LeadInAnyOfGroupsChildren) {
  const CompiledStudy cs = CompileIn(
      "* Patients must have one of the following:\n\n  * Creatinine >= 2 mg/dL\n"
      "  * Total bilirubin >= 2 mg/dL");
  ASSERT_GE(cs.criteria.size(), 3u);
  EXPECT_TRUE(cs.criteria[0].any_of);
  EXPECT_EQ(cs.criteria[0].children.size(), 2u);
  // The lead-in itself only carries an informational marker.
  for (int pi : cs.criteria[0].predicates) EXPECT_TRUE(cs.predicates[pi].informational);
}

TEST(CompilerGroupTest, ExclusionListsAreIndependent) {
  // NCT00711529-like PDQ exclusion: "ANC < 1500, platelets < 100,000, or Hb < 9".
  const CompiledStudy cs = CompileIn(
      "Inadequate hematologic function - neutrophil count (ANC) <1,500 cells/mm3, platelet "
      "count <100,000/mm3, or hemoglobin <9.0 g/dL",
      Section::kExclusion);
  int direct = 0;
  for (int pi : cs.criteria[0].predicates) {
    if (cs.predicates[pi].kind == Kind::kLab) ++direct;
  }
  EXPECT_EQ(direct, 3);
}

TEST(CompilerGroupTest, NegatedLeadInFlipsChildren) {
  const CompiledStudy cs = CompileIn(
      "* No history of any of the following:\n\n  * Stroke\n  * Epilepsy", Section::kInclusion);
  std::vector<Polarity> pols;
  for (const Predicate& p : TextPredicates(cs, Kind::kCondition)) pols.push_back(p.polarity);
  EXPECT_THAT(pols, ::testing::ElementsAre(Polarity::kExclusion, Polarity::kExclusion));
}

TEST(CompilerGroupTest, CohortScopedRequirementsAreInformational) {
  const CompiledStudy cs = ProjectCompiler().Compile(LoadStudy("NCT06209411"));
  bool cohort_review = false;
  for (const Predicate& p : cs.predicates) {
    if (p.rule_id == "structure.cohort" && !p.informational) cohort_review = true;
    if (p.evidence.source == EvidenceSource::kCriteriaText && p.kind == Kind::kAge) {
      EXPECT_TRUE(p.informational);
      EXPECT_THAT(p.note, HasSubstr("applies only to"));
    }
  }
  EXPECT_TRUE(cohort_review);
}

TEST(CompilerGroupTest, AdministrativeAndEmptyCriteriaDoNotNeedReview) {
  const CompiledStudy cs = CompileIn("* Signed informed consent\n* None");
  for (const Predicate& p : cs.predicates) EXPECT_TRUE(p.informational) << p.rule_id;
}

TEST(CompilerGroupTest, UnreadCriterionIsKept) {
  const CompiledStudy cs = CompileIn("* Able to swallow tablets");
  ASSERT_EQ(cs.criteria.size(), 1u);
  ASSERT_EQ(cs.criteria[0].predicates.size(), 1u);
  const Predicate& p = cs.predicates[cs.criteria[0].predicates[0]];
  EXPECT_EQ(p.kind, Kind::kOther);
  EXPECT_EQ(p.rule_id, "text.unparsed");
  EXPECT_FALSE(p.informational);
}

// --- Evidence spans ---------------------------------------------------------------

TEST(CompilerEvidenceTest, SpansPointAtTheOriginalText) {
  const std::string text =
      "Inclusion Criteria:\n\n* Age \\>= 18 years\n* Platelets ≥ 100,000/mm³\n\n"
      "Exclusion Criteria:\n\n* Pregnant or breastfeeding women";
  const CompiledStudy cs = ProjectCompiler().CompileText(text);
  std::vector<std::string> evidence;
  for (const Predicate& p : cs.predicates) {
    EXPECT_EQ(SpanText(text, p.evidence.span), p.evidence.text);
    evidence.push_back(p.evidence.text);
  }
  EXPECT_THAT(evidence, ::testing::IsSupersetOf({"Age \\>= 18 years", "Platelets ≥ 100,000/mm³",
                                                 "Pregnant", "breastfeeding"}));
  for (const Criterion& c : cs.criteria) {
    EXPECT_THAT(SpanText(text, c.span), ::testing::Not(::testing::StartsWith("*")));
  }
}

// --- Structured fields, notes, robustness -----------------------------------------

TEST(CompilerStructuredTest, AgesSexHealthyVolunteers) {
  model::Study s;
  s.nct_id = "NCT00000003";
  s.eligibility.present = true;
  s.eligibility.minimum_age = model::Age{6, model::AgeUnit::kMonths, "6 Months"};
  s.eligibility.maximum_age = model::Age{65, model::AgeUnit::kYears, "65 Years"};
  s.eligibility.sex_present = true;
  s.eligibility.sex = model::Sex::kFemale;
  s.eligibility.healthy_volunteers = true;
  const CompiledStudy cs = ProjectCompiler().Compile(s);
  std::map<std::string, Predicate> by_rule;
  for (const Predicate& p : cs.predicates) by_rule[p.rule_id] = p;
  ASSERT_TRUE(by_rule.count("structured.minimum_age"));
  EXPECT_EQ(by_rule["structured.minimum_age"].low, 0.5);
  EXPECT_EQ(by_rule["structured.minimum_age"].evidence.source, EvidenceSource::kStructuredField);
  EXPECT_EQ(by_rule["structured.maximum_age"].high, 65);
  EXPECT_EQ(by_rule["structured.sex"].sex, model::Sex::kFemale);
  EXPECT_TRUE(by_rule["structured.healthy_volunteers"].accepts_healthy_volunteers);
  EXPECT_THAT(cs.notes, ::testing::Contains("no eligibility criteria text"));
  EXPECT_EQ(cs.compiler_version, kCompilerVersion);
  EXPECT_EQ(cs.rules_version, testing::ProjectRules()->version());
}

TEST(CompilerRobustnessTest, AbsentModuleEmptyAndMalformedText) {
  model::Study s;
  s.nct_id = "NCT00000004";
  CompiledStudy cs = ProjectCompiler().Compile(s);
  EXPECT_THAT(cs.notes, ::testing::Contains("no eligibility module"));
  EXPECT_TRUE(cs.criteria.empty());

  for (const std::string& text :
       {std::string(""), std::string("\n\n\n"), std::string("Inclusion Criteria:\n\nExclusion Criteria:"),
        std::string("\\\\\\"), std::string("(((((((((("), std::string("* * * *"),
        std::string(5000, '('), std::string("&lt;&gt;&amp;\\&"), std::string("\x80\xff\xc3")}) {
    cs = ProjectCompiler().CompileText(text);
    for (const Criterion& c : cs.criteria) {
      EXPECT_LE(c.span.end, static_cast<int32_t>(text.size()));
      EXPECT_FALSE(c.predicates.empty());
    }
  }
  cs = ProjectCompiler().CompileText("Age \xff\xfe >= 18 years");
  EXPECT_THAT(cs.notes, ::testing::Contains(HasSubstr("invalid UTF-8")));
  EXPECT_FALSE(TextPredicates(cs, Kind::kAge).empty());
}

TEST(CompilerRobustnessTest, OversizedTextIsCutWithANote) {
  CompilerOptions options;
  options.max_text_bytes = 1000;
  const Compiler compiler(testing::ProjectRules(), options);
  std::string text;
  while (text.size() < 5000) text += "* Hemoglobin >= 9 g/dL\n";
  const CompiledStudy cs = compiler.CompileText(text);
  EXPECT_THAT(cs.notes, ::testing::Contains(HasSubstr("cut at")));
  for (const Criterion& c : cs.criteria) EXPECT_LE(c.span.end, 1000);
}

TEST(CompilerScalingTest, WorkGrowsLinearlyWithTextSize) {
  // Repeated real criteria (NCT02227251) to 1 MB and 2 MB: the work counted
  // by the compiler (bytes, criteria, rule runs, scans) roughly doubles.
  const std::string unit = LoadStudy("NCT02227251").eligibility.criteria + "\n\n";
  auto build = [&](size_t bytes) {
    std::string t;
    while (t.size() < bytes) t += unit;
    return t;
  };
  CompilerOptions options;
  options.max_text_bytes = 8 << 20;
  const Compiler compiler(testing::ProjectRules(), options);
  CompileCounters one;
  CompileCounters two;
  const CompiledStudy a = compiler.CompileText(build(1 << 20), {}, &one);
  const CompiledStudy b = compiler.CompileText(build(2 << 20), {}, &two);
  ASSERT_GT(one.criteria, 1000);
  auto ratio = [](int64_t x, int64_t y) { return static_cast<double>(y) / static_cast<double>(x); };
  EXPECT_NEAR(ratio(one.bytes, two.bytes), 2.0, 0.1);
  EXPECT_NEAR(ratio(one.criteria, two.criteria), 2.0, 0.1);
  EXPECT_NEAR(ratio(one.rule_runs, two.rule_runs), 2.0, 0.1);
  EXPECT_NEAR(ratio(one.phrase_scans, two.phrase_scans), 2.0, 0.1);
  EXPECT_NEAR(ratio(static_cast<int64_t>(a.predicates.size()),
                    static_cast<int64_t>(b.predicates.size())),
              2.0, 0.1);
}

TEST(CompilerDeterminismTest, SameInputSameOutput) {
  const model::Study s = LoadStudy("NCT02227251");
  EXPECT_EQ(ToJson(ProjectCompiler().Compile(s)), ToJson(ProjectCompiler().Compile(s)));
}

}  // namespace
}  // namespace trialmatch::criteria
