// Snapshot files (match/snapshot_io.h): a written and re-read snapshot is
// the same snapshot (every accessor, byte-identical rewrite, identical match
// results with explanations and stats on the recorded corpus); damaged,
// truncated, stale, older-format and hostile files are rejected with the
// documented codes and never crash.
#include "match/snapshot_io.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/strings.h"
#include "criteria/compiler.h"
#include "criteria/rule_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "match/matcher.h"
#include "match_test_util.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::match::testing {
namespace {

using ::testing::HasSubstr;
using ::trialmatch::testing::StatusIs;
using ::trialmatch::testing::TempDir;

SnapshotKey Key() {
  SnapshotKey k;
  k.store_id = "0123456789abcdef0123456789abcdef";
  k.store_generation = 42;
  k.store_token = -7;
  k.compiler_version = "1.0.0";
  k.rules_version = "2+00000000deadbeef";
  return k;
}

std::string ReadBytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes `snap` and returns the file's bytes.
std::string Bytes(const Snapshot& snap, const TempDir& dir,
                  const std::string& name = "bytes.snapshot") {
  const std::string path = dir.File(name).string();
  absl::Status s = WriteSnapshot(snap, Key(), path);
  EXPECT_TRUE(s.ok()) << s;
  return ReadBytes(path);
}

// Every field of a response, doubles exactly.
std::string Dump(const MatchResponse& r) {
  std::string out;
  for (const MatchResult& m : r.results) {
    absl::StrAppend(&out, common::ToAbsl(m.nct_id), "|",
                    common::ToAbsl(m.title), "|",
                    common::ToAbsl(m.overall_status), "|",
                    std::string(VerdictName(m.verdict)), "|",
                    absl::StrFormat("%.17g", m.score), "|", m.counts.satisfied,
                    ",", m.counts.violated, ",", m.counts.unknown, ",",
                    m.counts.informational, "\n");
    for (const ConditionMatch& c : m.matched_conditions) {
      absl::StrAppend(&out, " cond ", common::ToAbsl(c.study_condition), "|",
                      common::ToAbsl(c.patient_condition), "|",
                      c.patient_condition_index, "|",
                      std::string(MatchStrengthName(c.strength)), "|",
                      common::ToAbsl(c.mesh_id), "|", c.from_criteria, "\n");
    }
    if (m.nearest_site.has_value()) {
      const Site& s = m.nearest_site->site;
      absl::StrAppend(&out, " site ", common::ToAbsl(s.facility), "|",
                      common::ToAbsl(s.city), "|", common::ToAbsl(s.state), "|",
                      common::ToAbsl(s.country), "|", common::ToAbsl(s.status),
                      "|",
                      absl::StrFormat("%.17g,%.17g,%.17g", s.latitude,
                                      s.longitude, m.nearest_site->distance_km),
                      "|", s.open, "\n");
    }
    for (const Explanation& e : m.explanations) {
      absl::StrAppend(
          &out, " expl ", e.predicate, "|", e.criterion, "|",
          static_cast<int>(e.kind), "|", static_cast<int>(e.polarity), "|",
          std::string(TestStatusName(e.status)), "|",
          std::string(OutcomeName(e.outcome)), "|", e.any_of_group, "|",
          common::ToAbsl(e.reason), "|", common::ToAbsl(e.rule_id), "|",
          static_cast<int>(e.evidence.source), "|",
          common::ToAbsl(e.evidence.field), "|",
          common::ToAbsl(e.evidence.text), "|", e.evidence.span.begin, "-",
          e.evidence.span.end, "|", common::ToAbsl(e.note), "\n");
    }
    for (Outcome o : m.criterion_outcomes) {
      absl::StrAppend(&out, " crit ", std::string(OutcomeName(o)), "\n");
    }
    for (std::string_view c : m.conflicts) {
      absl::StrAppend(&out, " conflict ", common::ToAbsl(c), "\n");
    }
  }
  const MatchStats& s = r.stats;
  absl::StrAppend(&out, "stats ", s.studies, " ", s.candidates, " ",
                  s.outside_distance, " ", s.pruned, " ", s.gated, " ",
                  s.site_searches, " ", s.evaluated, " ", s.eligible, " ",
                  s.possible, " ", s.ineligible, " ", s.matched, " ",
                  s.used_index, "\n");
  for (const std::string& n : r.notes) absl::StrAppend(&out, "note ", n, "\n");
  return out;
}

// Every public accessor of two snapshots agrees.
void ExpectSameSnapshot(const Snapshot& a, const Snapshot& b) {
  ASSERT_EQ(a.size(), b.size());
  const SnapshotStats& sa = a.stats();
  const SnapshotStats& sb = b.stats();
  EXPECT_EQ(sa.studies, sb.studies);
  EXPECT_EQ(sa.predicates, sb.predicates);
  EXPECT_EQ(sa.criteria, sb.criteria);
  EXPECT_EQ(sa.concepts, sb.concepts);
  EXPECT_EQ(sa.mesh_keys, sb.mesh_keys);
  EXPECT_EQ(sa.terms, sb.terms);
  EXPECT_EQ(sa.located_sites, sb.located_sites);
  EXPECT_EQ(sa.open_sites, sb.open_sites);
  EXPECT_EQ(sa.ancestry_entries, sb.ancestry_entries);
  EXPECT_EQ(sa.strings, sb.strings);
  EXPECT_EQ(a.options().rules, b.options().rules);
  for (size_t i = 0; i < a.size(); ++i) {
    const StudyInfo& x = a.study(i);
    const StudyInfo& y = b.study(i);
    ASSERT_EQ(x.nct_id, y.nct_id);
    EXPECT_EQ(b.Find(x.nct_id), i);
    EXPECT_EQ(x.title, y.title);
    EXPECT_EQ(a.OverallStatus(i), b.OverallStatus(i));
    EXPECT_EQ(x.text, y.text);
    EXPECT_EQ(x.conditions, y.conditions);
    EXPECT_EQ(x.condition_meshes, y.condition_meshes);
    EXPECT_EQ(x.ancestors, y.ancestors);
    EXPECT_EQ(x.listed_sites, y.listed_sites);
    EXPECT_EQ(x.criteria_count, y.criteria_count);
    EXPECT_EQ(x.conflicts, y.conflicts);
    EXPECT_EQ(x.notes, y.notes);
    EXPECT_EQ(a.String(x.compiler_version), b.String(y.compiler_version));
    EXPECT_EQ(a.String(x.rules_version), b.String(y.rules_version));
    ASSERT_EQ(x.sites.size(), y.sites.size());
    for (size_t k = 0; k < x.sites.size(); ++k) {
      const Site p = a.SiteOf(i, k);
      const Site q = b.SiteOf(i, k);
      EXPECT_EQ(p.facility, q.facility);
      EXPECT_EQ(p.city, q.city);
      EXPECT_EQ(p.country, q.country);
      EXPECT_EQ(p.status, q.status);
      EXPECT_EQ(p.latitude, q.latitude);
      EXPECT_EQ(p.longitude, q.longitude);
      EXPECT_EQ(p.open, q.open);
    }
    ASSERT_EQ(x.predicates.size(), y.predicates.size());
    for (size_t k = 0; k < x.predicates.size(); ++k) {
      const EvidenceRef p = a.EvidenceOf(i, k);
      const EvidenceRef q = b.EvidenceOf(i, k);
      EXPECT_EQ(p.text, q.text);
      EXPECT_EQ(p.field, q.field);
      EXPECT_EQ(p.span.begin, q.span.begin);
      EXPECT_EQ(p.span.end, q.span.end);
      EXPECT_EQ(a.String(x.predicates[k].rule_id),
                b.String(y.predicates[k].rule_id));
      EXPECT_EQ(x.predicates[k].criterion, y.predicates[k].criterion);
    }
  }
  ASSERT_EQ(a.mesh_key_count(), b.mesh_key_count());
  for (uint32_t k = 0; k < a.mesh_key_count(); ++k) {
    EXPECT_EQ(a.MeshId(k), b.MeshId(k));
    EXPECT_EQ(b.MeshKey(a.MeshId(k)), k);
    auto same_list = [](const std::vector<uint32_t>* p,
                        const std::vector<uint32_t>* q) {
      return (p == nullptr) == (q == nullptr) && (p == nullptr || *p == *q);
    };
    EXPECT_TRUE(same_list(a.Ancestors(k), b.Ancestors(k))) << a.MeshId(k);
    EXPECT_TRUE(same_list(a.RanksWithMesh(k), b.RanksWithMesh(k)));
    EXPECT_TRUE(same_list(a.RanksWithAncestor(k), b.RanksWithAncestor(k)));
  }
  ASSERT_EQ(a.term_count(), b.term_count());
  for (uint32_t k = 0; k < a.term_count(); ++k) {
    EXPECT_EQ(a.Term(k), b.Term(k));
    EXPECT_EQ(b.TermKey(a.Term(k)), k);
    const std::vector<uint32_t>* p = a.MeshForTerm(k);
    const std::vector<uint32_t>* q = b.MeshForTerm(k);
    EXPECT_EQ(p == nullptr, q == nullptr);
    if (p != nullptr && q != nullptr) {
      EXPECT_EQ(*p, *q);
    }
    const std::vector<uint32_t>* s = a.RanksWithTerm(k);
    const std::vector<uint32_t>* t = b.RanksWithTerm(k);
    EXPECT_EQ(s == nullptr, t == nullptr);
    if (s != nullptr && t != nullptr) {
      EXPECT_EQ(*s, *t);
    }
  }
  EXPECT_EQ(a.statuses(), b.statuses());
  for (size_t st = 0; st < a.statuses().size(); ++st) {
    EXPECT_EQ(b.StatusIndex(a.statuses()[st]), st);
    EXPECT_EQ(a.StudiesWithStatus(static_cast<uint16_t>(st)),
              b.StudiesWithStatus(static_cast<uint16_t>(st)));
  }
  EXPECT_EQ(a.quantities(), b.quantities());
  EXPECT_EQ(a.by_bound(), b.by_bound());
  // The dense keys (read, and keys_by_bound rebuilt), field by field.
  auto same_keys = [](const std::vector<internal::StudyKey>& x,
                      const std::vector<internal::StudyKey>& y) {
    ASSERT_EQ(x.size(), y.size());
    for (size_t i = 0; i < x.size(); ++i) {
      SCOPED_TRACE(i);
      EXPECT_EQ(x[i].status, y[i].status);
      EXPECT_EQ(x[i].units, y[i].units);
      EXPECT_EQ(x[i].always_unknown, y[i].always_unknown);
      EXPECT_EQ(x[i].has_criteria_text, y[i].has_criteria_text);
      EXPECT_EQ(x[i].exact, y[i].exact);
      EXPECT_EQ(x[i].sites, y[i].sites);
      EXPECT_EQ(x[i].requires_female, y[i].requires_female);
      EXPECT_EQ(x[i].requires_male, y[i].requires_male);
      EXPECT_EQ(x[i].rejects_healthy_volunteers,
                y[i].rejects_healthy_volunteers);
      EXPECT_EQ(x[i].facts_count, y[i].facts_count);
      EXPECT_EQ(x[i].facts_begin, y[i].facts_begin);
      EXPECT_EQ(x[i].min_age_days, y[i].min_age_days);
      EXPECT_EQ(x[i].max_age, y[i].max_age);
      EXPECT_EQ(x[i].cap.center_x, y[i].cap.center_x);
      EXPECT_EQ(x[i].cap.center_y, y[i].cap.center_y);
      EXPECT_EQ(x[i].cap.center_z, y[i].cap.center_z);
      EXPECT_EQ(x[i].cap.cos_radius, y[i].cap.cos_radius);
      EXPECT_EQ(x[i].cap.sin_radius, y[i].cap.sin_radius);
    }
  };
  same_keys(a.keys(), b.keys());
  same_keys(a.keys_by_bound(), b.keys_by_bound());
  EXPECT_EQ(a.node_preds(), b.node_preds());
  EXPECT_EQ(a.node_children(), b.node_children());
  EXPECT_EQ(a.concept_refs(), b.concept_refs());
  EXPECT_EQ(a.concept_texts(), b.concept_texts());
  EXPECT_EQ(a.concept_from_criteria(), b.concept_from_criteria());
  EXPECT_EQ(a.key_pool(), b.key_pool());
  EXPECT_EQ(a.predicates().size(), b.predicates().size());
  EXPECT_EQ(a.nodes().size(), b.nodes().size());
  EXPECT_EQ(a.concepts().size(), b.concepts().size());
  EXPECT_EQ(a.open_sites().size(), b.open_sites().size());
  EXPECT_EQ(a.fact_counts().size(), b.fact_counts().size());
}

struct Corpus {
  std::shared_ptr<const criteria::RuleSet> rules;
  std::shared_ptr<const Snapshot> snapshot;
};

// Every recorded study compiled with the real rules.
const Corpus& RecordedCorpus() {
  static const Corpus* corpus = [] {
    auto* c = new Corpus();
    absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> rules =
        criteria::RuleSet::LoadDirectory(::trialmatch::testing::SourceDir() /
                                         "rules");
    EXPECT_TRUE(rules.ok()) << rules.status();
    if (!rules.ok()) return c;
    c->rules = *rules;
    criteria::Compiler compiler(*rules);
    SnapshotBuilder builder({.rules = *rules});
    for (const auto& entry : std::filesystem::directory_iterator(
             ::trialmatch::testing::StudiesDir())) {
      if (entry.path().extension() != ".json") continue;
      absl::StatusOr<model::Study> study =
          model::ParseStudy(::trialmatch::testing::ReadFile(entry.path()));
      EXPECT_TRUE(study.ok()) << entry.path() << ": " << study.status();
      if (!study.ok()) continue;
      EXPECT_OK(builder.Add(*study, compiler.Compile(*study)));
    }
    c->snapshot = std::move(builder).Build();
    return c;
  }();
  return *corpus;
}

std::vector<patient::Profile> Patients() {
  using patient::Sex;
  return {
      PatientBuilder().Age(55).Sex(Sex::kMale).Mesh("D003924").Build(),
      PatientBuilder()
          .Age(52)
          .Sex(Sex::kFemale)
          .Text("metastatic breast cancer")
          .Lab("718-7", 11.2, "g/dL")
          .Ecog(1)
          .At(40.7128, -74.0060)
          .Build(),
      // Paris, 300 km: the distance limit and complete conditions.
      PatientBuilder()
          .Age(64)
          .Text("asthma")
          .Complete()
          .At(48.86, 2.35, 300)
          .Build(),
      PatientBuilder().Age(30).Text("Major Depressive Disorder").Build(),
      PatientBuilder().Age(8).Sex(Sex::kFemale).Build(),  // no conditions
  };
}

TEST(SnapshotFileTest, RecordedCorpusRoundTrips) {
  TM_REQUIRE_SHARED_DATA();
  const Corpus& corpus = RecordedCorpus();
  ASSERT_NE(corpus.snapshot, nullptr);
  ASSERT_GT(corpus.snapshot->size(), 1000u);
  TempDir dir;
  const std::string path = dir.File("corpus.snapshot").string();
  ASSERT_OK(WriteSnapshot(*corpus.snapshot, Key(), path));
  ASSERT_OK_AND_ASSIGN(SnapshotKey key, ReadSnapshotKey(path));
  EXPECT_EQ(key, Key());
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Snapshot> loaded,
                       ReadSnapshot(path, Key(), {.rules = corpus.rules}));
  ExpectSameSnapshot(*corpus.snapshot, *loaded);
  // Every member, hash maps included, comes back: writing the loaded one
  // gives the same bytes.
  EXPECT_TRUE(Bytes(*loaded, dir, "again.snapshot") == ReadBytes(path));

  const Matcher matcher;
  for (const patient::Profile& p : Patients()) {
    for (MatchOptions o : {AllOptions(), MatchOptions()}) {
      o.include_explanations = true;
      o.top_k = 200;
      ASSERT_OK_AND_ASSIGN(MatchResponse built,
                           matcher.Match(*corpus.snapshot, p, o));
      ASSERT_OK_AND_ASSIGN(MatchResponse read, matcher.Match(*loaded, p, o));
      EXPECT_FALSE(read.results.empty());
      EXPECT_EQ(Dump(built), Dump(read));
    }
  }
}

// A small snapshot with every feature: criteria tree with any-of, numeric,
// condition and structured predicates, sites, MeSH ancestry.
std::shared_ptr<const Snapshot> SmallSnapshot() {
  TestStudy a("NCT00000002");
  a.study.conditions = {"Type 2 Diabetes"};
  a.study.condition_meshes = {kType2Diabetes};
  a.study.condition_ancestors = {kDiabetes, kEndocrine};
  a.Structured(Age(18, 75));
  a.Structured(SexIs(model::Sex::kFemale));
  const int top =
      a.Criterion({HasCondition({Concept("diabetes", {kDiabetes.id})}, kIncl)});
  a.Criterion({Lab("hba1c", 7, 10, "%")}, top, /*any_of=*/true);
  a.Criterion({Performance("ecog", std::nullopt, 2)}, top, /*any_of=*/true);
  a.Criterion({Simple(Kind::kPregnancy, kExcl)});
  model::Location loc;
  loc.facility = "General Hospital";
  loc.city = "Boston";
  loc.country = "United States";
  loc.status = "RECRUITING";
  loc.geo = model::GeoPoint{42.36, -71.06};
  a.study.locations = {loc};
  TestStudy b("NCT00000001", "NOT_YET_RECRUITING");
  b.study.conditions = {"Stroke"};
  b.study.condition_meshes = {kStroke};
  b.Criterion({Uln("alt", 2.5)});
  return SnapshotOf({a, b});
}

TEST(SnapshotFileTest, SmallAndEmptySnapshotsRoundTrip) {
  TempDir dir;
  for (const std::shared_ptr<const Snapshot>& snap :
       {SmallSnapshot(), SnapshotOf({})}) {
    const std::string bytes = Bytes(*snap, dir);
    ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Snapshot> loaded,
                         ReadSnapshotFromBytes(bytes, nullptr));
    ExpectSameSnapshot(*snap, *loaded);
    EXPECT_EQ(Bytes(*loaded, dir, "again.snapshot"), bytes);
  }
  // Results through the matcher, with explanations.
  const std::shared_ptr<const Snapshot> small = SmallSnapshot();
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Snapshot> loaded,
                       ReadSnapshotFromBytes(Bytes(*small, dir), nullptr));
  const patient::Profile p = PatientBuilder()
                                 .Age(50)
                                 .Sex(patient::Sex::kFemale)
                                 .Mesh("D003924")
                                 .At(42.0, -71.0)
                                 .Build();
  ASSERT_OK_AND_ASSIGN(MatchResponse x,
                       Matcher().Match(*small, p, AllOptions()));
  ASSERT_OK_AND_ASSIGN(MatchResponse y,
                       Matcher().Match(*loaded, p, AllOptions()));
  EXPECT_EQ(x.results.size(), 2u);
  EXPECT_EQ(Dump(x), Dump(y));
}

TEST(SnapshotFileTest, ReplacesAtomicallyAndLeavesNoTemporaryFile) {
  TempDir dir;
  const std::string path = dir.File("s.snapshot").string();
  ASSERT_OK(WriteSnapshot(*SnapshotOf({}), Key(), path));
  SnapshotKey newer = Key();
  newer.store_generation = 43;
  ASSERT_OK(WriteSnapshot(*SmallSnapshot(), newer, path));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Snapshot> loaded,
                       ReadSnapshot(path, newer));
  EXPECT_EQ(loaded->size(), 2u);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u);
  EXPECT_THAT(WriteSnapshot(*SnapshotOf({}), Key(),
                            dir.File("missing/dir/s.snapshot").string()),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(WriteSnapshot(*SnapshotOf({}), Key(), ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SnapshotFileTest, StaleMissingAndForeignFilesAreRejected) {
  TempDir dir;
  const std::string path = dir.File("s.snapshot").string();
  EXPECT_THAT(ReadSnapshot(path, Key()), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ReadSnapshotKey(path), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(WriteSnapshot(*SmallSnapshot(), Key(), path));
  for (int field = 0; field < 5; ++field) {
    SnapshotKey other = Key();
    switch (field) {
      case 0:
        other.store_id = "another store";
        break;
      case 1:
        other.store_generation++;
        break;
      case 2:
        other.store_token++;
        break;
      case 3:
        other.compiler_version = "1.0.1";
        break;
      case 4:
        other.rules_version = "2+00000000deadbeee";
        break;
    }
    EXPECT_THAT(
        ReadSnapshot(path, other),
        StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("stale")))
        << field;
  }
  {
    std::ofstream out(dir.File("text"), std::ios::binary);
    out << std::string(4096, 'x');
  }
  EXPECT_THAT(ReadSnapshot(dir.File("text").string(), Key()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("magic")));
  EXPECT_THAT(ReadSnapshot(dir.path().string(), Key()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(SnapshotFileTest, OtherFormatVersionAndByteOrderAreRejected) {
  TempDir dir;
  const std::string bytes = Bytes(*SmallSnapshot(), dir);
  // Header: 8 bytes magic, u32 byte-order mark, u32 format version.
  std::string older = bytes;
  const uint32_t version = kSnapshotFormatVersion - 1;
  std::memcpy(older.data() + 12, &version, 4);
  EXPECT_THAT(ReadSnapshotFromBytes(older, nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("format version")));
  std::string swapped = bytes;
  std::reverse(swapped.begin() + 8, swapped.begin() + 12);
  EXPECT_THAT(
      ReadSnapshotFromBytes(swapped, nullptr),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("byte order")));
}

TEST(SnapshotFileTest, EveryTruncationIsDataLoss) {
  TempDir dir;
  const std::string bytes = Bytes(*SmallSnapshot(), dir);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THAT(ReadSnapshotFromBytes(bytes.substr(0, n), nullptr),
                StatusIs(absl::StatusCode::kDataLoss))
        << n << " of " << bytes.size();
  }
  // The same through a file (the reader's file path).
  const std::string path = dir.File("cut.snapshot").string();
  {
    std::ofstream out(path, std::ios::binary);
    out << bytes.substr(0, bytes.size() / 2);
  }
  EXPECT_THAT(ReadSnapshot(path, Key()), StatusIs(absl::StatusCode::kDataLoss));
  {
    std::ofstream out(path, std::ios::binary);
    out << bytes << "extra";
  }
  EXPECT_THAT(ReadSnapshot(path, Key()), StatusIs(absl::StatusCode::kDataLoss));
}

// Rejected as damaged or inapplicable (never another kind of error).
bool Rejected(const absl::StatusOr<std::shared_ptr<const Snapshot>>& r) {
  return !r.ok() &&
         (r.status().code() == absl::StatusCode::kDataLoss ||
          r.status().code() == absl::StatusCode::kFailedPrecondition);
}

TEST(SnapshotFileTest, EveryBitFlipIsRejected) {
  TempDir dir;
  const std::string bytes = Bytes(*SmallSnapshot(), dir);
  const SnapshotKey key = Key();
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      absl::StatusOr<std::shared_ptr<const Snapshot>> r =
          ReadSnapshotFromBytes(flipped, &key);
      EXPECT_TRUE(Rejected(r)) << "byte " << i << " bit " << bit;
    }
  }
}

// Without the CRC, damaged files reach the structural checks: whatever they
// accept must be safe to match against (run under ASan in the asan preset;
// the fuzzer, fuzz/snapshot_reader_fuzzer.cc, goes further).
TEST(SnapshotFileTest, StructuralChecksKeepDamagedFilesSafe) {
  TempDir dir;
  const std::string bytes = Bytes(*SmallSnapshot(), dir);
  const patient::Profile p = PatientBuilder()
                                 .Age(50)
                                 .Sex(patient::Sex::kFemale)
                                 .Mesh("D003924")
                                 .Text("stroke")
                                 .At(42.0, -71.0)
                                 .Build();
  size_t accepted = 0;
  size_t rejected = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t value : {0x00, 0x01, 0x7f, 0xff}) {
      std::string changed = bytes;
      if (static_cast<uint8_t>(changed[i]) == value) continue;
      changed[i] = static_cast<char>(value);
      absl::StatusOr<std::shared_ptr<const Snapshot>> r =
          ReadSnapshotFromBytes(changed, nullptr, {.verify_checksum = false});
      if (!r.ok()) {
        EXPECT_TRUE(Rejected(r)) << r.status();
        ++rejected;
        continue;
      }
      ++accepted;
      absl::StatusOr<MatchResponse> m = Matcher().Match(**r, p, AllOptions());
      (void)m;
    }
  }
  EXPECT_GT(rejected, 0u);
  EXPECT_GT(accepted, 0u);  // e.g. text bytes: harmless changes
}

}  // namespace
}  // namespace trialmatch::match::testing
