#include "patient/terminology.h"

#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "re2/re2.h"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::patient {
namespace {

using ::testing::DoubleNear;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;
using ::trialmatch::testing::StatusIs;

const Terminology& T() { return Terminology::Builtin(); }

TEST(TerminologyTest, BuiltinTablesParse) {
  absl::StatusOr<std::shared_ptr<const Terminology>> parsed =
      Terminology::ParseTables(Terminology::BuiltinTables());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_GT((*parsed)->loinc_count(), 40u);
  EXPECT_GT((*parsed)->condition_code_count(), 100u);
  EXPECT_EQ(T().loinc_count(), (*parsed)->loinc_count());
}

TEST(TerminologyTest, LoadFromTheRulesDirectoryMatchesTheBuiltinCopy) {
  absl::StatusOr<std::shared_ptr<const Terminology>> loaded =
      Terminology::Load(::trialmatch::testing::SourceDir() / "rules" / "patient");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->loinc_count(), T().loinc_count());
  EXPECT_EQ((*loaded)->condition_code_count(), T().condition_code_count());
  EXPECT_EQ((*loaded)->Quantities(), T().Quantities());
}

TEST(TerminologyTest, BuiltinTextsAreTheRulesFilesByteForByte) {
  const std::filesystem::path dir =
      ::trialmatch::testing::SourceDir() / "rules" / "patient";
  const TerminologyTables& t = Terminology::BuiltinTables();
  EXPECT_EQ(t.quantities, ::trialmatch::testing::ReadFile(dir / "quantities.tsv"));
  EXPECT_EQ(t.loinc, ::trialmatch::testing::ReadFile(dir / "loinc.tsv"));
  EXPECT_EQ(t.units, ::trialmatch::testing::ReadFile(dir / "units.tsv"));
  EXPECT_EQ(t.answers, ::trialmatch::testing::ReadFile(dir / "answers.tsv"));
  EXPECT_EQ(t.condition_codes,
            ::trialmatch::testing::ReadFile(dir / "condition_codes.tsv"));
}

TEST(TerminologyTest, LoadReportsAMissingFile) {
  EXPECT_THAT(Terminology::Load("/nonexistent/trialmatch/rules"),
              StatusIs(absl::StatusCode::kNotFound));
}

// The canonical quantities and units are the contract of
// criteria/compiled_study.h (its comment lists them); keep them equal.
TEST(TerminologyTest, CanonicalUnitsAreThoseOfTheCompiledCriteriaContract) {
  const std::map<std::string, std::string> contract = {
      {"hba1c", "%"},          {"egfr", "mL/min/1.73m2"},
      {"creatinine", "mg/dL"}, {"creatinine_clearance", "mL/min"},
      {"bmi", "kg/m2"},        {"hemoglobin", "g/dL"},
      {"platelets", "10^9/L"}, {"anc", "10^9/L"},
      {"wbc", "10^9/L"},       {"bilirubin_total", "mg/dL"},
      {"ast", "U/L"},          {"alt", "U/L"},
      {"inr", "ratio"},        {"lvef", "%"},
      {"systolic_bp", "mmHg"}, {"diastolic_bp", "mmHg"},
      {"fasting_glucose", "mg/dL"}, {"weight", "kg"},
      {"ecog", "score"},       {"karnofsky", "score"},
  };
  std::vector<std::string> keys;
  for (const auto& [q, unit] : contract) {
    keys.push_back(q);
    EXPECT_EQ(T().CanonicalUnit(q), unit) << q;
  }
  EXPECT_THAT(T().Quantities(), UnorderedElementsAreArray(keys));
}

TEST(TerminologyTest, LoincCodesMapToTheirQuantity) {
  const std::map<std::string, std::string> want = {
      {"4548-4", "hba1c"},       {"17856-6", "hba1c"},
      {"59261-8", "hba1c"},      {"33914-3", "egfr"},
      {"48642-3", "egfr"},       {"48643-1", "egfr"},
      {"62238-1", "egfr"},       {"98979-8", "egfr"},
      {"2160-0", "creatinine"},  {"38483-4", "creatinine"},
      {"39156-5", "bmi"},        {"29463-7", "weight"},
      {"718-7", "hemoglobin"},   {"777-3", "platelets"},
      {"26515-7", "platelets"},  {"751-8", "anc"},
      {"26499-4", "anc"},        {"6690-2", "wbc"},
      {"26464-8", "wbc"},        {"1975-2", "bilirubin_total"},
      {"1920-8", "ast"},         {"1742-6", "alt"},
      {"6301-6", "inr"},         {"34714-6", "inr"},
      {"10230-1", "lvef"},       {"8806-2", "lvef"},
      {"8480-6", "systolic_bp"}, {"8462-4", "diastolic_bp"},
      {"1558-6", "fasting_glucose"}, {"89247-1", "ecog"},
      {"89243-0", "karnofsky"},  {"2164-2", "creatinine_clearance"},
  };
  for (const auto& [loinc, quantity] : want) {
    EXPECT_EQ(T().QuantityForLoinc(loinc), quantity) << loinc;
  }
  // Not fasting glucose: a random glucose; not a lab we match: heart rate;
  // the BP panel itself carries no value (its components do).
  for (const char* other : {"2345-7", "8867-4", "85354-9", "", "718-8"}) {
    EXPECT_EQ(T().QuantityForLoinc(other), "") << other;
  }
}

TEST(TerminologyTest, NamesFindQuantitiesCaseInsensitively) {
  EXPECT_EQ(T().QuantityForName("Hemoglobin"), "hemoglobin");
  EXPECT_EQ(T().QuantityForName("  HbA1c "), "hba1c");
  EXPECT_EQ(T().QuantityForName("absolute neutrophil count"), "anc");
  EXPECT_EQ(T().QuantityForName("platelets"), "platelets");
  EXPECT_EQ(T().QuantityForName("bilirubin_total"), "bilirubin_total");
  EXPECT_EQ(T().QuantityForName("glucose"), "");  // not necessarily fasting
  EXPECT_EQ(T().QuantityForName("potassium"), "");
}

struct ConversionCase {
  const char* quantity;
  const char* unit;
  double value;
  double want;
};

TEST(TerminologyTest, UnitConversionsToCanonical) {
  const ConversionCase cases[] = {
      {"hemoglobin", "g/dL", 12.5, 12.5},
      {"hemoglobin", "g/L", 125, 12.5},
      {"hemoglobin", "g/l", 125, 12.5},
      {"hemoglobin", "mmol/L", 7.5, 12.0855},
      {"fasting_glucose", "mmol/L", 5.5, 99.088},
      {"fasting_glucose", "mg/dL", 99, 99},
      {"creatinine", "umol/L", 88.42, 1.0},
      {"creatinine", "µmol/L", 176.84, 2.0},
      {"creatinine", "μmol/L", 176.84, 2.0},
      {"creatinine", "mg/dL", 1.3, 1.3},
      {"bilirubin_total", "umol/L", 34.2, 2.0},
      {"bilirubin_total", "mg/dL", 1.2, 1.2},
      {"hba1c", "mmol/mol", 53, 53 * 0.09148 + 2.152},
      {"hba1c", "mmol/mol", 48, 6.54304},
      {"hba1c", "%", 7.1, 7.1},
      {"platelets", "10*3/uL", 150, 150},
      {"platelets", "10*9/L", 150, 150},
      {"platelets", "10^9/L", 150, 150},
      {"platelets", "/mm3", 150000, 150},
      {"platelets", "/uL", 100000, 100},
      {"platelets", "K/uL", 99, 99},
      {"anc", "/mm3", 1500, 1.5},
      {"anc", "{cells}/uL", 1500, 1.5},
      {"anc", "10*3/uL", 1.5, 1.5},
      {"wbc", "x10^9/L", 3.0, 3.0},
      {"wbc", "/uL", 3000, 3.0},
      {"weight", "kg", 70, 70},
      {"weight", "[lb_av]", 154, 69.85322498},
      {"weight", "lb", 100, 45.359237},
      {"weight", "g", 3200, 3.2},
      {"systolic_bp", "mm[Hg]", 120, 120},
      {"systolic_bp", "mmHg", 120, 120},
      {"systolic_bp", "mm Hg", 120, 120},
      {"diastolic_bp", "kPa", 10, 75.0062},
      {"lvef", "%", 55, 55},
      {"egfr", "mL/min/{1.73_m2}", 60, 60},
      {"egfr", "mL/min/1.73m2", 60, 60},
      {"egfr", "mL/min/1.73 m2", 60, 60},
      {"egfr", "mL/min/1.73m²", 60, 60},
      {"creatinine_clearance", "mL/min", 80, 80},
      {"creatinine_clearance", "mL/s", 1, 60},
      {"ast", "U/L", 40, 40},
      {"ast", "[IU]/L", 40, 40},
      {"alt", "IU/L", 40, 40},
      {"alt", "ukat/L", 0.5, 30},
      {"inr", "{INR}", 1.2, 1.2},
      {"inr", "", 1.2, 1.2},
      {"inr", "1", 1.2, 1.2},
      {"bmi", "kg/m2", 31.5, 31.5},
      {"bmi", "kg/m^2", 31.5, 31.5},
      {"ecog", "{score}", 1, 1},
      {"karnofsky", "%", 80, 80},
  };
  for (const ConversionCase& c : cases) {
    SCOPED_TRACE(std::string(c.quantity) + " in " + c.unit);
    std::optional<double> got = T().ToCanonical(c.quantity, c.unit, c.value);
    ASSERT_TRUE(got.has_value());
    EXPECT_THAT(*got, DoubleNear(c.want, 1e-6 * std::max(1.0, c.want)));
  }
}

TEST(TerminologyTest, UnknownUnitsAreNeverGuessed) {
  const std::pair<const char*, const char*> cases[] = {
      {"hemoglobin", "mg/L"},        // plausible but not listed
      {"hemoglobin", "%"},
      {"platelets", "g/L"},          // never read as giga-per-litre
      {"creatinine", "mmol/mol"},
      {"alt", "mmol/s/L"},
      {"hba1c", "mg/dL"},
      {"lvef", ""},                  // an empty unit is only "{none}" rows
      {"hemoglobin", ""},
      {"weight", "stone"},
      {"unknown_quantity", "g/dL"},
  };
  for (const auto& [quantity, unit] : cases) {
    EXPECT_FALSE(T().ToCanonical(quantity, unit, 1.0).has_value())
        << quantity << " in '" << unit << "'";
  }
}

TEST(TerminologyTest, UnitKeyNormalisesSpellingOnly) {
  EXPECT_EQ(UnitKey(" mg / dL "), "mg/dl");
  EXPECT_EQ(UnitKey("µmol/L"), "umol/l");
  EXPECT_EQ(UnitKey("μmol/L"), "umol/l");
  EXPECT_EQ(UnitKey("kg/m²"), "kg/m2");
  EXPECT_EQ(UnitKey(""), "{none}");
  EXPECT_EQ(UnitKey("   "), "{none}");
}

TEST(TerminologyTest, AnswersForEcogAndPregnancy) {
  const std::pair<const char*, double> ecog[] = {
      {"LA9622-7", 0}, {"LA9623-5", 1}, {"LA9624-3", 2},
      {"LA9625-0", 3}, {"LA9626-8", 4}, {"LA9627-6", 5}};
  for (const auto& [code, grade] : ecog) {
    std::optional<Answer> a = T().LookupAnswer("89247-1", CodeSystem::kLoinc, code);
    ASSERT_TRUE(a.has_value()) << code;
    EXPECT_EQ(a->number, grade) << code;
  }
  auto status = [](const char* code, CodeSystem system) {
    std::optional<Answer> a = T().LookupAnswer("82810-3", system, code);
    return a.has_value() ? a->status : static_cast<Tristate>(-1);
  };
  EXPECT_EQ(status("77386006", CodeSystem::kSnomedCt), Tristate::kYes);
  EXPECT_EQ(status("60001007", CodeSystem::kSnomedCt), Tristate::kNo);
  EXPECT_EQ(status("261665006", CodeSystem::kSnomedCt), Tristate::kUnknown);
  EXPECT_EQ(status("LA15173-0", CodeSystem::kLoinc), Tristate::kYes);
  EXPECT_EQ(status("LA26683-5", CodeSystem::kLoinc), Tristate::kNo);
  EXPECT_FALSE(
      T().LookupAnswer("82810-3", CodeSystem::kLoinc, "77386006").has_value());
  EXPECT_FALSE(
      T().LookupAnswer("89247-1", CodeSystem::kLoinc, "LA15173-0").has_value());
}

std::vector<std::string> MeshIds(CodeSystem system, const char* code) {
  std::vector<std::string> ids;
  for (const model::MeshTerm& t : T().MeshForCode(system, code)) {
    ids.push_back(t.id);
  }
  return ids;
}

TEST(TerminologyTest, ConditionCrosswalk) {
  using ::testing::ElementsAre;
  using ::testing::IsEmpty;
  using ::testing::UnorderedElementsAre;
  EXPECT_THAT(MeshIds(CodeSystem::kIcd10Cm, "E11.9"), ElementsAre("D003924"));
  EXPECT_THAT(MeshIds(CodeSystem::kIcd10Cm, "e119"), ElementsAre("D003924"));
  EXPECT_THAT(MeshIds(CodeSystem::kIcd10Cm, "E10.65"), ElementsAre("D003922"));
  EXPECT_THAT(MeshIds(CodeSystem::kIcd10Cm, "C50.912"), ElementsAre("D001943"));
  EXPECT_THAT(MeshIds(CodeSystem::kIcd10Cm, "C18.7"),
              UnorderedElementsAre("D015179", "D003110"));
  // Every listed prefix applies: the specific and the broader descriptor.
  EXPECT_THAT(MeshIds(CodeSystem::kIcd10Cm, "I21.4"),
              UnorderedElementsAre("D009203", "D000072658"));
  EXPECT_THAT(MeshIds(CodeSystem::kIcd10Cm, "C92.00"),
              UnorderedElementsAre("D007951", "D015470"));
  // Atrial flutter is not atrial fibrillation.
  EXPECT_THAT(MeshIds(CodeSystem::kIcd10Cm, "I48.92"), ElementsAre("D001282"));
  EXPECT_THAT(MeshIds(CodeSystem::kIcd10Cm, "I48.91"), ElementsAre("D001281"));
  EXPECT_THAT(MeshIds(CodeSystem::kIcd10Cm, "Z00.00"), IsEmpty());
  EXPECT_THAT(MeshIds(CodeSystem::kSnomedCt, "44054006"), ElementsAre("D003924"));
  EXPECT_THAT(MeshIds(CodeSystem::kSnomedCt, "254837009"), ElementsAre("D001943"));
  EXPECT_THAT(MeshIds(CodeSystem::kSnomedCt, "4405400"), IsEmpty());
  EXPECT_THAT(MeshIds(CodeSystem::kRxNorm, "44054006"), IsEmpty());
  EXPECT_THAT(MeshIds(CodeSystem::kMesh, "D003924"), IsEmpty());
}

// Every crosswalk row marked "ctgov" must name a MeSH id that the recorded
// ClinicalTrials.gov records list with the same term (either id spelling).
TEST(TerminologyTest, CrosswalkMeshIdsAreRealPerTheRecordedStudies) {
  TM_REQUIRE_SHARED_DATA();
  // MeSH entries of the browse modules, e.g.
  //   {"id": "D000003920", "term": "Diabetes Mellitus"}
  // found with RE2 rather than a full JSON parse (1,267 records).
  const RE2 entry(R"re("id":\s*"([CD]\d+)",\s*"term":\s*"([^"]*)")re");
  ASSERT_TRUE(entry.ok());
  std::map<std::string, std::set<std::string>> seen;  // normalised id -> terms
  for (const auto& file :
       std::filesystem::directory_iterator(::trialmatch::testing::StudiesDir())) {
    if (file.path().extension() != ".json") continue;
    const std::string text = ::trialmatch::testing::ReadFile(file.path());
    re2::StringPiece input(text);
    std::string id, term;
    while (RE2::FindAndConsume(&input, entry, &id, &term)) {
      seen[NormalizeMeshId(id)].insert(term);
    }
  }
  ASSERT_GT(seen.size(), 500u);
  const std::string table = Terminology::BuiltinTables().condition_codes;
  int checked = 0;
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string field; std::getline(fields, field, '\t');) f.push_back(field);
    ASSERT_EQ(f.size(), 6u) << line;
    if (f[5] != "ctgov") continue;
    ++checked;
    auto it = seen.find(NormalizeMeshId(f[3]));
    ASSERT_NE(it, seen.end()) << f[3] << " " << f[4] << " not in the records";
    EXPECT_TRUE(it->second.count(f[4])) << f[3] << " is not called " << f[4];
  }
  EXPECT_GT(checked, 100);
}

TEST(TerminologyTest, MalformedTablesNameFileAndLine) {
  TerminologyTables t = Terminology::BuiltinTables();
  TerminologyTables bad = t;
  bad.loinc += "\n12345-6\tnot_a_quantity\tx\n";
  EXPECT_THAT(Terminology::ParseTables(bad),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("rules/patient/loinc.tsv:")));
  bad = t;
  bad.loinc += "718-7\themoglobin\tduplicate\n";
  EXPECT_THAT(Terminology::ParseTables(bad),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("listed twice")));
  bad = t;
  bad.units += "hemoglobin\tg/dL\t1\t0\n";
  EXPECT_THAT(Terminology::ParseTables(bad),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("rules/patient/units.tsv:")));
  bad = t;
  bad.units += "hemoglobin\tkg/L\t-3\t0\n";
  EXPECT_THAT(Terminology::ParseTables(bad),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("factor")));
  bad = t;
  bad.condition_codes += "icd10cm\tE11\tprefix\tX123\tNope\tctgov\n";
  EXPECT_THAT(Terminology::ParseTables(bad),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("condition_codes.tsv:")));
  bad = t;
  bad.quantities += "potassium\tmmol/L\tk\n";  // no accepted unit
  EXPECT_THAT(Terminology::ParseTables(bad),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("potassium")));
}

}  // namespace
}  // namespace trialmatch::patient
