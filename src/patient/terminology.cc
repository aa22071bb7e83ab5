#include "patient/terminology.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace trialmatch::patient {

namespace internal {
// Defined in the generated builtin_tables.cc (src/patient/CMakeLists.txt).
extern const char kQuantitiesTsv[];
extern const char kLoincTsv[];
extern const char kUnitsTsv[];
extern const char kAnswersTsv[];
extern const char kConditionCodesTsv[];
}  // namespace internal

namespace {

struct Row {
  int line = 0;
  std::vector<std::string> fields;
};

// Splits a table into rows of tab-separated, trimmed fields; skips blank
// lines and lines starting with '#'.
std::vector<Row> SplitTable(std::string_view text) {
  std::vector<Row> rows;
  int line_no = 0;
  for (absl::string_view line :
       absl::StrSplit(common::ToAbsl(text), '\n')) {
    ++line_no;
    absl::string_view trimmed = absl::StripAsciiWhitespace(line);
    if (trimmed.empty() || trimmed[0] == '#') continue;
    Row row;
    row.line = line_no;
    for (absl::string_view field : absl::StrSplit(line, '\t')) {
      row.fields.emplace_back(absl::StripAsciiWhitespace(field));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

absl::Status TableError(std::string_view file, int line,
                        std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(
      "rules/patient/", common::ToAbsl(file), ":", line, ": ",
      common::ToAbsl(problem)));
}

absl::Status ExpectFields(std::string_view file, const Row& row, size_t n) {
  if (row.fields.size() < n) {
    return TableError(file, row.line,
                      absl::StrCat("expected ", n, " tab-separated fields, got ",
                                   row.fields.size()));
  }
  for (size_t i = 0; i < n; ++i) {
    if (row.fields[i].empty()) {
      return TableError(file, row.line, absl::StrCat("field ", i + 1, " is empty"));
    }
  }
  return absl::OkStatus();
}

// "2.5" or "1/88.42" or "1000/88.42".
bool ParseFactor(const std::string& text, double* out) {
  size_t slash = text.find('/');
  if (slash == std::string::npos) {
    return absl::SimpleAtod(text, out) && std::isfinite(*out) && *out > 0;
  }
  double num = 0, den = 0;
  if (!absl::SimpleAtod(text.substr(0, slash), &num) ||
      !absl::SimpleAtod(text.substr(slash + 1), &den) || den == 0) {
    return false;
  }
  *out = num / den;
  return std::isfinite(*out) && *out > 0;
}

std::string IcdKey(std::string_view code) {
  std::string key;
  for (char c : code) {
    if (c == '.' || c == ' ') continue;
    key.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  return key;
}

std::string AnswerKey(std::string_view loinc, CodeSystem system,
                      std::string_view code) {
  return absl::StrCat(common::ToAbsl(loinc), "|",
                      common::ToAbsl(CodeSystemName(system)), "|",
                      common::ToAbsl(code));
}

absl::StatusOr<std::string> ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path.string()));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  }
  return ss.str();
}

}  // namespace

std::string UnitKey(std::string_view unit) {
  std::string key;
  key.reserve(unit.size());
  for (size_t i = 0; i < unit.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(unit[i]);
    const unsigned char next =
        i + 1 < unit.size() ? static_cast<unsigned char>(unit[i + 1]) : 0;
    if (c == 0xC2 && next == 0xB5) {  // µ MICRO SIGN
      key.push_back('u');
      ++i;
    } else if (c == 0xCE && next == 0xBC) {  // μ GREEK SMALL LETTER MU
      key.push_back('u');
      ++i;
    } else if (c == 0xC2 && next == 0xB2) {  // ² SUPERSCRIPT TWO
      key.push_back('2');
      ++i;
    } else if (!absl::ascii_isspace(c)) {
      key.push_back(absl::ascii_tolower(c));
    }
  }
  if (key.empty()) key = "{none}";
  return key;
}

absl::StatusOr<std::shared_ptr<const Terminology>> Terminology::ParseTables(
    const TerminologyTables& tables) {
  std::shared_ptr<Terminology> t(new Terminology());

  for (const Row& row : SplitTable(tables.quantities)) {
    TRIALMATCH_RETURN_IF_ERROR(ExpectFields("quantities.tsv", row, 2));
    const std::string& q = row.fields[0];
    if (t->quantities_.contains(q)) {
      return TableError("quantities.tsv", row.line, "quantity listed twice");
    }
    t->quantities_[q].unit = row.fields[1];
    std::vector<std::string> names = {q};
    if (row.fields.size() > 2) {
      for (absl::string_view n : absl::StrSplit(row.fields[2], '|')) {
        names.emplace_back(absl::StripAsciiWhitespace(n));
      }
    }
    for (const std::string& name : names) {
      if (name.empty()) continue;
      std::string key = absl::AsciiStrToLower(name);
      auto [it, inserted] = t->names_.emplace(key, q);
      if (!inserted && it->second != q) {
        return TableError("quantities.tsv", row.line,
                          absl::StrCat("name \"", key,
                                       "\" already names quantity ",
                                       it->second));
      }
    }
  }

  for (const Row& row : SplitTable(tables.loinc)) {
    TRIALMATCH_RETURN_IF_ERROR(ExpectFields("loinc.tsv", row, 2));
    if (!t->quantities_.contains(row.fields[1])) {
      return TableError("loinc.tsv", row.line,
                        absl::StrCat("unknown quantity ", row.fields[1]));
    }
    if (!t->loinc_.emplace(row.fields[0], row.fields[1]).second) {
      return TableError("loinc.tsv", row.line,
                        absl::StrCat("LOINC ", row.fields[0], " listed twice"));
    }
  }

  for (const Row& row : SplitTable(tables.units)) {
    TRIALMATCH_RETURN_IF_ERROR(ExpectFields("units.tsv", row, 4));
    auto q = t->quantities_.find(row.fields[0]);
    if (q == t->quantities_.end()) {
      return TableError("units.tsv", row.line,
                        absl::StrCat("unknown quantity ", row.fields[0]));
    }
    Conversion conv;
    if (!ParseFactor(row.fields[2], &conv.factor)) {
      return TableError("units.tsv", row.line,
                        "factor must be a positive number or 1/<number>");
    }
    if (!absl::SimpleAtod(row.fields[3], &conv.offset) ||
        !std::isfinite(conv.offset)) {
      return TableError("units.tsv", row.line, "offset must be a number");
    }
    if (!q->second.units.emplace(UnitKey(row.fields[1]), conv).second) {
      return TableError("units.tsv", row.line,
                        absl::StrCat("unit ", row.fields[1],
                                     " listed twice for ", row.fields[0]));
    }
  }
  for (const auto& [name, info] : t->quantities_) {
    if (info.units.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rules/patient/units.tsv: no unit accepted for quantity ", name));
    }
    if (!info.units.contains(UnitKey(info.unit))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rules/patient/units.tsv: the canonical unit ", info.unit,
          " of quantity ", name, " is not listed"));
    }
  }

  for (const Row& row : SplitTable(tables.answers)) {
    TRIALMATCH_RETURN_IF_ERROR(ExpectFields("answers.tsv", row, 4));
    const CodeSystem system = CodeSystemFromString(row.fields[1]);
    if (system != CodeSystem::kLoinc && system != CodeSystem::kSnomedCt) {
      return TableError("answers.tsv", row.line,
                        "answer system must be loinc or snomed");
    }
    Answer answer;
    const std::string& meaning = row.fields[3];
    double number = 0;
    if (meaning == "yes") {
      answer.status = Tristate::kYes;
    } else if (meaning == "no") {
      answer.status = Tristate::kNo;
    } else if (meaning == "unknown") {
      answer.status = Tristate::kUnknown;
    } else if (absl::SimpleAtod(meaning, &number) && std::isfinite(number)) {
      answer.number = number;
    } else {
      return TableError("answers.tsv", row.line,
                        "meaning must be a number, yes, no or unknown");
    }
    if (!t->answers_
             .emplace(AnswerKey(row.fields[0], system, row.fields[2]), answer)
             .second) {
      return TableError("answers.tsv", row.line, "answer listed twice");
    }
  }

  for (const Row& row : SplitTable(tables.condition_codes)) {
    TRIALMATCH_RETURN_IF_ERROR(ExpectFields("condition_codes.tsv", row, 6));
    const std::string& system = row.fields[0];
    const std::string& match = row.fields[2];
    const std::string& mesh_id = row.fields[3];
    if (mesh_id.size() < 7 || mesh_id[0] != 'D' ||
        !std::all_of(mesh_id.begin() + 1, mesh_id.end(),
                     [](char c) { return absl::ascii_isdigit(c); })) {
      return TableError("condition_codes.tsv", row.line,
                        "mesh id must be D followed by digits");
    }
    if (row.fields[5] != "ctgov" && row.fields[5] != "nlm") {
      return TableError("condition_codes.tsv", row.line,
                        "checked must be ctgov or nlm");
    }
    model::MeshTerm term{mesh_id, row.fields[4]};
    if (system == "icd10cm" && match == "prefix") {
      std::string key = IcdKey(row.fields[1]);
      t->icd10cm_max_prefix_ = std::max(t->icd10cm_max_prefix_, key.size());
      t->icd10cm_[key].push_back(std::move(term));
    } else if (system == "snomed" && match == "exact") {
      t->snomed_[row.fields[1]].push_back(std::move(term));
    } else {
      return TableError("condition_codes.tsv", row.line,
                        "expected 'icd10cm prefix' or 'snomed exact'");
    }
    ++t->condition_rows_;
  }
  return std::shared_ptr<const Terminology>(std::move(t));
}

absl::StatusOr<std::shared_ptr<const Terminology>> Terminology::Load(
    const std::filesystem::path& dir) {
  TerminologyTables tables;
  TRIALMATCH_ASSIGN_OR_RETURN(tables.quantities,
                              ReadText(dir / "quantities.tsv"));
  TRIALMATCH_ASSIGN_OR_RETURN(tables.loinc, ReadText(dir / "loinc.tsv"));
  TRIALMATCH_ASSIGN_OR_RETURN(tables.units, ReadText(dir / "units.tsv"));
  TRIALMATCH_ASSIGN_OR_RETURN(tables.answers, ReadText(dir / "answers.tsv"));
  TRIALMATCH_ASSIGN_OR_RETURN(tables.condition_codes,
                              ReadText(dir / "condition_codes.tsv"));
  return ParseTables(tables);
}

const TerminologyTables& Terminology::BuiltinTables() {
  static const TerminologyTables* tables = new TerminologyTables{
      internal::kQuantitiesTsv, internal::kLoincTsv, internal::kUnitsTsv,
      internal::kAnswersTsv, internal::kConditionCodesTsv};
  return *tables;
}

const Terminology& Terminology::Builtin() {
  static const Terminology* builtin = [] {
    absl::StatusOr<std::shared_ptr<const Terminology>> parsed =
        ParseTables(BuiltinTables());
    if (!parsed.ok()) {
      // Degrade to empty tables (nothing normalised) rather than crash; the
      // unit tests parse the same texts, so this is a build defect.
      TM_LOG_ERROR("patient", "built-in terminology does not parse: ",
                   parsed.status().ToString());
      return new Terminology();
    }
    return new Terminology(**parsed);
  }();
  return *builtin;
}

std::string_view Terminology::QuantityForLoinc(std::string_view loinc) const {
  auto it = loinc_.find(common::ToAbsl(loinc));
  return it == loinc_.end() ? std::string_view() : std::string_view(it->second);
}

std::string_view Terminology::QuantityForName(std::string_view name) const {
  std::string key = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(common::ToAbsl(name)));
  auto it = names_.find(key);
  return it == names_.end() ? std::string_view() : std::string_view(it->second);
}

std::string_view Terminology::CanonicalUnit(std::string_view quantity) const {
  auto it = quantities_.find(common::ToAbsl(quantity));
  return it == quantities_.end() ? std::string_view()
                                 : std::string_view(it->second.unit);
}

std::optional<double> Terminology::ToCanonical(std::string_view quantity,
                                               std::string_view unit,
                                               double value) const {
  auto q = quantities_.find(common::ToAbsl(quantity));
  if (q == quantities_.end()) return std::nullopt;
  auto u = q->second.units.find(UnitKey(unit));
  if (u == q->second.units.end()) return std::nullopt;
  return value * u->second.factor + u->second.offset;
}

std::optional<Answer> Terminology::LookupAnswer(std::string_view loinc,
                                                CodeSystem system,
                                                std::string_view code) const {
  auto it = answers_.find(AnswerKey(loinc, system, code));
  if (it == answers_.end()) return std::nullopt;
  return it->second;
}

std::vector<model::MeshTerm> Terminology::MeshForCode(
    CodeSystem system, std::string_view code) const {
  std::vector<model::MeshTerm> out;
  if (system == CodeSystem::kSnomedCt) {
    auto it = snomed_.find(absl::StripAsciiWhitespace(common::ToAbsl(code)));
    if (it != snomed_.end()) out = it->second;
  } else if (system == CodeSystem::kIcd10Cm) {
    const std::string key = IcdKey(code);
    for (size_t n = 1; n <= std::min(key.size(), icd10cm_max_prefix_); ++n) {
      auto it = icd10cm_.find(key.substr(0, n));
      if (it == icd10cm_.end()) continue;
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
  }
  return out;
}

std::vector<std::string> Terminology::Quantities() const {
  std::vector<std::string> out;
  out.reserve(quantities_.size());
  for (const auto& [name, info] : quantities_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace trialmatch::patient
