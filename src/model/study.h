// The Study record trialmatch works with, parsed from a ClinicalTrials.gov
// API v2 study object (the shape of `GET /studies/{nctId}` and of each element
// of `GET /studies`' `studies` array and of the website's ctg-studies.json).
//
// Only the fields the engine reads are typed here; the complete record as the
// upstream sent it is kept by the store (raw JSON), so nothing is lost.
// Unknown fields are ignored; absent fields stay empty / std::nullopt.
// "Absent" is meaningful: an absent age bound is no bound, an absent sex is
// ALL, an absent healthyVolunteers flag is unknown.
//
// Study is a plain value type: copyable, no hidden sharing, thread-compatible.
#ifndef TRIALMATCH_MODEL_STUDY_H_
#define TRIALMATCH_MODEL_STUDY_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace trialmatch::model {

// Units in which ClinicalTrials.gov states minimumAge / maximumAge.
enum class AgeUnit { kYears, kMonths, kWeeks, kDays, kHours, kMinutes };

// A parsed age bound, e.g. "18 Years" -> {18, kYears, "18 Years"}.
struct Age {
  double value = 0;
  AgeUnit unit = AgeUnit::kYears;
  std::string text;  // as the registry wrote it

  // The bound in years (365.25-day years, 30.4375-day months, 7-day weeks).
  double Years() const;
};

// Parses "<n> Years|Year|Months|Month|Weeks|Week|Days|Day|Hours|Hour|Minutes|
// Minute" (case-insensitive, n a non-negative number).
// Returns kInvalidArgument for anything else (including "N/A").
absl::StatusOr<Age> ParseAge(std::string_view text);

// Structured eligibility sex (eligibilityModule.sex). Absent means kAll.
enum class Sex { kAll, kFemale, kMale };

struct GeoPoint {
  double lat = 0;
  double lon = 0;
};

// One site (contactsLocationsModule.locations[]).
struct Location {
  std::string facility;
  std::string city;
  std::string state;
  std::string zip;
  std::string country;
  std::string status;  // site recruitment status, e.g. "RECRUITING"; may be empty
  std::optional<GeoPoint> geo;
};

// A MeSH descriptor as listed in derivedSection.*BrowseModule.
struct MeshTerm {
  std::string id;    // e.g. "D003924"
  std::string term;  // e.g. "Diabetes Mellitus, Type 2"
};

struct Eligibility {
  bool present = false;             // eligibilityModule exists at all
  std::string criteria;             // eligibilityCriteria (markdown, as sent)
  std::optional<bool> healthy_volunteers;
  Sex sex = Sex::kAll;
  bool sex_present = false;         // "sex" field was in the record
  std::optional<bool> gender_based;
  std::string gender_description;
  std::optional<Age> minimum_age;   // nullopt = no lower bound
  std::optional<Age> maximum_age;   // nullopt = no upper bound
  std::vector<std::string> std_ages;  // CHILD | ADULT | OLDER_ADULT
};

struct Study {
  std::string nct_id;
  std::string brief_title;
  std::string official_title;
  std::string acronym;
  std::string overall_status;          // e.g. "RECRUITING"
  std::string last_update_post_date;   // "YYYY-MM-DD" (or "YYYY-MM")
  std::string study_type;              // INTERVENTIONAL | OBSERVATIONAL | ...
  std::vector<std::string> phases;
  std::string lead_sponsor;
  std::vector<std::string> conditions;
  std::vector<std::string> keywords;
  std::vector<std::string> interventions;  // intervention names
  std::vector<MeshTerm> condition_meshes;     // conditionBrowseModule.meshes
  std::vector<MeshTerm> condition_ancestors;  // conditionBrowseModule.ancestors
  Eligibility eligibility;
  std::vector<Location> locations;
  bool has_results = false;
};

// True for "NCT" followed by exactly 8 digits (the registry's id format).
bool IsValidNctId(std::string_view id);

// Builds a Study from a parsed API v2 study object. Returns kDataLoss when the
// object is not a study (no protocolSection.identificationModule.nctId, or a
// field of the wrong JSON type where the engine needs it); the message names
// the JSON pointer, never patient data (there is none in a study).
absl::StatusOr<Study> StudyFromJson(const nlohmann::json& study);

// Parses JSON text then calls StudyFromJson. Malformed JSON -> kDataLoss.
absl::StatusOr<Study> ParseStudy(std::string_view json_text);

std::string_view SexName(Sex sex);  // "ALL" | "FEMALE" | "MALE"

}  // namespace trialmatch::model

#endif  // TRIALMATCH_MODEL_STUDY_H_
