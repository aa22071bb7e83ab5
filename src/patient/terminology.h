// Terminology: the data tables that turn reported patient facts into the
// canonical vocabulary of the eligibility compiler. Loaded from the files of
// rules/patient/ (described there and in docs/patient.md):
//
//   quantities.tsv       quantity -> canonical unit, names (for uncoded input)
//   loinc.tsv            LOINC code -> quantity
//   units.tsv            (quantity, unit) -> factor and offset to canonical
//   answers.tsv          coded answers (ECOG grade, pregnancy status ...)
//   condition_codes.tsv  ICD-10-CM prefix / SNOMED CT code -> MeSH descriptor
//
// A copy of these files is compiled into the library (Builtin()), so no path
// is needed at run time; Load(dir) reads another copy (e.g. a mounted
// ConfigMap) and ParseTables() parses texts (tests).
//
// Immutable after construction and thread-safe: share one instance (by
// reference or shared_ptr<const>) across threads.
#ifndef TRIALMATCH_PATIENT_TERMINOLOGY_H_
#define TRIALMATCH_PATIENT_TERMINOLOGY_H_

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "model/study.h"
#include "patient/profile.h"

namespace trialmatch::patient {

// The texts of the five tables; file names as above.
struct TerminologyTables {
  std::string quantities;
  std::string loinc;
  std::string units;
  std::string answers;
  std::string condition_codes;
};

// A coded answer: a number (ECOG grade) or a yes/no/unknown status.
struct Answer {
  std::optional<double> number;
  Tristate status = Tristate::kUnknown;
};

class Terminology {
 public:
  // Parses the tables. Returns kInvalidArgument naming the file, line and
  // problem for a malformed row, an unknown quantity, a LOINC code or unit
  // listed twice, or a quantity without any accepted unit.
  static absl::StatusOr<std::shared_ptr<const Terminology>> ParseTables(
      const TerminologyTables& tables);

  // Reads the five files from `dir` and parses them. kNotFound when a file is
  // missing or unreadable; otherwise as ParseTables.
  static absl::StatusOr<std::shared_ptr<const Terminology>> Load(
      const std::filesystem::path& dir);

  // The tables compiled into the library (rules/patient/ at build time),
  // parsed once on first use. Never fails at run time: the build's tests
  // parse the same texts (BuiltinTables()).
  static const Terminology& Builtin();
  static const TerminologyTables& BuiltinTables();

  // The quantity a LOINC code measures ("718-7" -> "hemoglobin"), or "".
  std::string_view QuantityForLoinc(std::string_view loinc) const;

  // The quantity a free name denotes ("Hemoglobin" -> "hemoglobin";
  // case-insensitive, trimmed), or "". Canonical quantity keys are names too.
  std::string_view QuantityForName(std::string_view name) const;

  // The canonical unit of `quantity` ("hemoglobin" -> "g/dL"), or "" when
  // the quantity is unknown.
  std::string_view CanonicalUnit(std::string_view quantity) const;

  // Converts `value` in `unit` to the canonical unit of `quantity`; nullopt
  // when the unit is not accepted for the quantity (never guessed). Units are
  // compared as described in units.tsv; an empty unit matches "{none}".
  std::optional<double> ToCanonical(std::string_view quantity,
                                    std::string_view unit, double value) const;

  // The meaning of answer (`system`, `code`) to the question `loinc`; `system`
  // is any spelling CodeSystemFromString accepts. nullopt when not listed.
  std::optional<Answer> LookupAnswer(std::string_view loinc, CodeSystem system,
                                     std::string_view code) const;

  // MeSH descriptors for a condition code (ICD-10-CM: every listed prefix of
  // the code, dots and case ignored; SNOMED CT: exact). Ids in MeSH's own
  // form as listed ("D003924"); empty when nothing is listed.
  std::vector<model::MeshTerm> MeshForCode(CodeSystem system,
                                           std::string_view code) const;

  // All quantities, sorted.
  std::vector<std::string> Quantities() const;

  // Table sizes, for tests and start-up logs.
  size_t loinc_count() const { return loinc_.size(); }
  size_t condition_code_count() const { return condition_rows_; }

 private:
  struct Conversion {
    double factor = 1;
    double offset = 0;
  };
  struct QuantityInfo {
    std::string unit;
    absl::flat_hash_map<std::string, Conversion> units;  // by unit key
  };

  Terminology() = default;

  absl::flat_hash_map<std::string, QuantityInfo> quantities_;
  absl::flat_hash_map<std::string, std::string> loinc_;  // code -> quantity
  absl::flat_hash_map<std::string, std::string> names_;  // name -> quantity
  // "<loinc>|<system>|<code>" -> answer
  absl::flat_hash_map<std::string, Answer> answers_;
  // ICD-10-CM normalised prefix -> terms; SNOMED code -> terms.
  absl::flat_hash_map<std::string, std::vector<model::MeshTerm>> icd10cm_;
  absl::flat_hash_map<std::string, std::vector<model::MeshTerm>> snomed_;
  size_t icd10cm_max_prefix_ = 0;
  size_t condition_rows_ = 0;
};

// The comparison key of a unit: trimmed, spaces removed, µ/μ written "u",
// ² written "2", ASCII lower-case; "" becomes "{none}".
std::string UnitKey(std::string_view unit);

}  // namespace trialmatch::patient

#endif  // TRIALMATCH_PATIENT_TERMINOLOGY_H_
