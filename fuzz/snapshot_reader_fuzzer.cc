// libFuzzer target: any bytes as a snapshot file (match/snapshot_io.h),
// read with the CRC check off so mutations reach the structural checks.
// Reading must never crash, hang or trip a sanitizer, and a snapshot it
// accepts must be safe to match against (every index the matcher, the
// evaluator and explanations follow was checked).
//
// Seed: the corpus starts from a small valid snapshot this binary writes
// when TRIALMATCH_FUZZ_WRITE_SEED names a file (fuzz/run.sh does that), so no
// binary file is kept in the repository.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "criteria/compiled_study.h"
#include "match/matcher.h"
#include "match/snapshot.h"
#include "match/snapshot_io.h"
#include "model/study.h"
#include "patient/normalize.h"
#include "patient/profile.h"

namespace {

using namespace trialmatch;  // NOLINT: a fuzz target

criteria::Predicate Pred(criteria::Kind kind, int criterion) {
  criteria::Predicate p;
  p.kind = kind;
  p.criterion = criterion;
  p.rule_id = "fuzz.rule";
  p.evidence.text = "evidence";
  return p;
}

// Three studies: a criteria tree with an any-of group, numeric, condition
// and structured predicates, located open sites, MeSH terms and ancestors.
std::shared_ptr<const match::Snapshot> SeedSnapshot() {
  match::SnapshotBuilder builder;
  for (int i = 0; i < 3; ++i) {
    model::Study s;
    s.nct_id = "NCT0000000" + std::to_string(i + 1);
    s.brief_title = "Seed study";
    s.overall_status = i == 2 ? "NOT_YET_RECRUITING" : "RECRUITING";
    s.conditions = {"Type 2 Diabetes", "Stroke"};
    s.condition_meshes = {{"D003924", "Diabetes Mellitus, Type 2"}};
    s.condition_ancestors = {{"D003920", "Diabetes Mellitus"}};
    s.eligibility.criteria = "Inclusion: age 18 or more; HbA1c 7 to 10";
    model::Location loc;
    loc.facility = "Hospital";
    loc.city = "Boston";
    loc.status = "RECRUITING";
    loc.geo = model::GeoPoint{42.36 + i, -71.06};
    s.locations = {loc, loc};
    criteria::CompiledStudy cs;
    cs.nct_id = s.nct_id;
    criteria::Predicate age = Pred(criteria::Kind::kAge, -1);
    age.quantity = "age";
    age.low = 18;
    cs.predicates.push_back(age);
    criteria::Criterion top;
    top.any_of = true;
    top.text = "HbA1c 7 to 10";
    criteria::Criterion child = top;
    child.any_of = false;
    child.parent = 0;
    top.children = {1};
    criteria::Predicate lab = Pred(criteria::Kind::kLab, 1);
    lab.quantity = "hba1c";
    lab.low = 7;
    lab.high = 10;
    lab.unit = "%";
    criteria::Predicate cond = Pred(criteria::Kind::kCondition, 0);
    criteria::ConditionConcept cc;
    cc.text = "diabetes";
    cc.mesh_ids = {"D003920"};
    cc.ancestor_mesh_ids = {"D004700"};
    cond.concepts = {cc};
    cs.predicates.push_back(cond);
    cs.predicates.push_back(lab);
    top.predicates = {1};
    child.predicates = {2};
    cs.criteria = {top, child};
    if (!builder.Add(s, cs).ok()) std::abort();
  }
  return std::move(builder).Build();
}

const std::vector<patient::Profile>& Patients() {
  static const auto* const kPatients = [] {
    auto* v = new std::vector<patient::Profile>(2);
    (*v)[0].age_years = 50;
    (*v)[0].sex = patient::Sex::kFemale;
    patient::Condition c;
    c.text = "diabetes";
    c.codes.push_back({patient::CodeSystem::kMesh, "", "D003924", ""});
    (*v)[0].conditions.push_back(c);
    (*v)[0].location = patient::GeoLocation{42.0, -71.0, 500};
    (*v)[1].age_years = 8;
    patient::ReaderOptions o;
    o.reference_date = absl::CivilDay(2025, 6, 15);
    for (patient::Profile& p : *v) {
      absl::StatusOr<patient::Profile> n = patient::NormalizeProfile(p, o);
      if (!n.ok()) std::abort();
      p = *std::move(n);
    }
    return v;
  }();
  return *kPatients;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* seed = std::getenv("TRIALMATCH_FUZZ_WRITE_SEED")) {
    const match::SnapshotKey key;
    std::exit(match::WriteSnapshot(*SeedSnapshot(), key, seed).ok() ? 0 : 1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::shared_ptr<const match::Snapshot>> snap =
      match::ReadSnapshotFromBytes(bytes, nullptr, {.verify_checksum = false});
  if (!snap.ok()) return 0;
  match::MatchOptions options;
  options.verdicts.clear();
  options.statuses.clear();
  options.require_condition_match = false;
  options.include_explanations = true;
  const match::Matcher matcher;
  for (const patient::Profile& p : Patients()) {
    (void)matcher.Match(**snap, p, options);
  }
  return 0;
}
