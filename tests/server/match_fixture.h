// Shared by the snapshot manager and matching service tests: a temp store
// seeded with recorded studies (../shared/data), the project's rules, and a
// few hand-written patient profiles (plain JSON shape, docs/patient.md).
#ifndef TRIALMATCH_TESTS_SERVER_MATCH_FIXTURE_H_
#define TRIALMATCH_TESTS_SERVER_MATCH_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "criteria/rule_set.h"
#include "gtest/gtest.h"
#include "store/study_store.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::server::testing {

// Recorded studies (studies_index.tsv): RECRUITING unless said otherwise.
inline constexpr char kBreastFemale18to80[] = "NCT02992574";  // FEMALE
inline constexpr char kBreastFemale18plus[] = "NCT03788213";  // FEMALE
inline constexpr char kDiabetes18to85[] = "NCT03658512";      // ALL
inline constexpr char kType1Diabetes2plus[] = "NCT03648918";  // ALL
inline constexpr char kLungCancer21plus[] = "NCT04025515";    // ALL
inline constexpr char kMildAsthma20to65[] = "NCT04912596";    // ALL
inline constexpr char kCompletedLymphoma[] = "NCT00001579";   // COMPLETED

inline std::vector<std::string> RecruitingIds() {
  return {kBreastFemale18to80, kBreastFemale18plus, kDiabetes18to85,
          kType1Diabetes2plus, kLungCancer21plus,   kMildAsthma20to65};
}

// The project's rules, loaded once per test binary.
inline std::shared_ptr<const criteria::RuleSet> ProjectRules() {
  static const std::shared_ptr<const criteria::RuleSet> rules = [] {
    absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> loaded =
        criteria::RuleSet::LoadDirectory(::trialmatch::testing::SourceDir() /
                                         "rules");
    return loaded.ok() ? *loaded : nullptr;
  }();
  return rules;
}

// Opens a store at `path` and upserts the recorded studies `ids`; statuses
// other than RECRUITING / NOT_YET_RECRUITING are stored as LEFT_SCOPE.
inline std::unique_ptr<store::StudyStore> SeededStore(
    const std::string& path, const std::vector<std::string>& ids) {
  absl::StatusOr<std::unique_ptr<store::StudyStore>> opened =
      store::StudyStore::Open(path);
  EXPECT_TRUE(opened.ok()) << opened.status();
  if (!opened.ok()) return nullptr;
  std::vector<store::StudyRecord> batch;
  for (const std::string& id : ids) {
    absl::StatusOr<store::StudyRecord> r =
        store::MakeStudyRecord(::trialmatch::testing::ReadFile(
            ::trialmatch::testing::StudiesDir() / (id + ".json")));
    EXPECT_TRUE(r.ok()) << id << ": " << r.status();
    if (r.ok()) batch.push_back(*std::move(r));
  }
  store::UpsertOptions options;
  options.wanted_statuses = {"RECRUITING", "NOT_YET_RECRUITING"};
  absl::StatusOr<store::UpsertCounts> counts =
      (*opened)->UpsertStudies(batch, options);
  EXPECT_TRUE(counts.ok()) << counts.status();
  return *std::move(opened);
}

// Hand-written patients (no real patient data).
inline constexpr char kBreastCancerWoman[] = R"({
  "id": "bc-1", "age_years": 52, "sex": "female",
  "conditions": [{"text": "breast cancer",
                  "codes": [{"system": "icd10cm", "code": "C50.911"}],
                  "clinical_status": "active"}]
})";
inline constexpr char kBreastCancerMan[] = R"({
  "id": "bc-2", "age_years": 60, "sex": "male",
  "conditions": [{"text": "breast cancer",
                  "codes": [{"system": "icd10cm", "code": "C50.921"}],
                  "clinical_status": "active"}]
})";
// No age, no sex: nothing about them can exclude.
inline constexpr char kDiabetesNoDemographics[] = R"({
  "id": "dm-1",
  "conditions": [{"text": "type 2 diabetes mellitus",
                  "codes": [{"system": "icd10cm", "code": "E11.9"}]}]
})";
inline constexpr char kDiabetesChild[] = R"({
  "id": "dm-2", "age_years": 10, "sex": "male",
  "conditions": [{"text": "diabetes mellitus",
                  "codes": [{"system": "mesh", "code": "D003920"}]}]
})";

}  // namespace trialmatch::server::testing

#endif  // TRIALMATCH_TESTS_SERVER_MATCH_FIXTURE_H_
