#include "sync/importer.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "store/store_test_util.h"
#include "store/study_store.h"
#include "sync/sync_test_util.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::sync {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::trialmatch::store::Lifecycle;
using ::trialmatch::store::StudyRecord;
using ::trialmatch::store::testing::LoadRecords;
using ::trialmatch::sync::testing::ActiveIds;
using ::trialmatch::sync::testing::Compact;
using ::trialmatch::sync::testing::StoredIds;
using ::trialmatch::testing::StatusIs;

bool Wanted(const StudyRecord& r) {
  return r.study.overall_status == "RECRUITING" ||
         r.study.overall_status == "NOT_YET_RECRUITING";
}

class ImporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    ASSERT_OK_AND_ASSIGN(store_, store::StudyStore::Open(":memory:"));
    records_ = LoadRecords(40);
    ASSERT_EQ(records_.size(), 40u);
  }

  std::string Write(const std::string& name, const std::string& content) {
    const fs::path path = dir_.File(name);
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  // `[c0,\n c1, ...]` of records [0, n), compact records.
  std::string ArrayOf(size_t n) const {
    std::string out = "[";
    for (size_t i = 0; i < n; ++i) {
      if (i > 0) out += ",\n ";
      out += Compact(records_[i].raw_json);
    }
    return out + "]\n";
  }

  std::vector<std::string> IdsOf(size_t n, bool wanted) const {
    std::vector<std::string> ids;
    for (size_t i = 0; i < n; ++i) {
      if (Wanted(records_[i]) == wanted)
        ids.push_back(records_[i].study.nct_id);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  trialmatch::testing::TempDir dir_;
  std::unique_ptr<store::StudyStore> store_;
  std::vector<StudyRecord> records_;
};

TEST_F(ImporterTest,
       ArrayFileStoresEveryRecordWithTheLifecycleItsStatusImplies) {
  const std::string path = Write("ctg-studies.json", ArrayOf(40));
  ASSERT_OK_AND_ASSIGN(ImportReport report,
                       ImportStudies(path, *store_, {.chunk_bytes = 4096}));
  EXPECT_EQ(report.format, ImportFormat::kArray);
  EXPECT_EQ(report.files, 1);
  EXPECT_EQ(report.read, 40);
  EXPECT_EQ(report.inserted, 40);
  EXPECT_EQ(report.skipped, 0);
  EXPECT_THAT(report.problems, IsEmpty());
  EXPECT_OK(report.stopped);
  EXPECT_EQ(report.bytes, static_cast<int64_t>(fs::file_size(path)));
  const std::vector<std::string> wanted = IdsOf(40, true);
  const std::vector<std::string> others = IdsOf(40, false);
  ASSERT_FALSE(wanted.empty());
  ASSERT_FALSE(others.empty());
  EXPECT_EQ(ActiveIds(*store_), wanted);
  EXPECT_EQ(StoredIds(*store_, Lifecycle::kLeftScope), others);
  EXPECT_EQ(report.left_scope, static_cast<int64_t>(others.size()));
  // Stored byte for byte as the file had them.
  ASSERT_OK_AND_ASSIGN(store::StoredStudy s,
                       store_->GetStudy(records_[7].study.nct_id));
  EXPECT_EQ(s.raw_json, Compact(records_[7].raw_json));

  // Importing again changes nothing.
  ASSERT_OK_AND_ASSIGN(ImportReport again, ImportStudies(path, *store_));
  EXPECT_EQ(again.read, 40);
  EXPECT_EQ(again.unchanged, 40);
  EXPECT_EQ(again.stored(), 0);
}

TEST_F(ImporterTest, ChunkSizeDoesNotChangeTheResult) {
  const std::string path = Write("a.json", ArrayOf(6));
  for (size_t chunk : {1, 7, 1000, 1 << 20}) {
    ASSERT_OK_AND_ASSIGN(store_, store::StudyStore::Open(":memory:"));
    ASSERT_OK_AND_ASSIGN(ImportReport report,
                         ImportStudies(path, *store_, {.chunk_bytes = chunk}));
    EXPECT_EQ(report.inserted, 6) << chunk;
    EXPECT_EQ(report.format, ImportFormat::kArray) << chunk;
  }
}

TEST_F(ImporterTest, StudiesPageResponse) {
  const fs::path page = trialmatch::testing::SharedDataDir() / "ctgov_v2" /
                        "search_responses" / "kylevogeler_sampleResponse.json";
  const nlohmann::json parsed =
      nlohmann::json::parse(trialmatch::testing::ReadFile(page));
  const size_t n = parsed["studies"].size();
  ASSERT_GT(n, 0u);
  ASSERT_OK_AND_ASSIGN(
      ImportReport report,
      ImportStudies(page.string(), *store_,
                    {.wanted_statuses = {}, .chunk_bytes = 333}));
  EXPECT_EQ(report.format, ImportFormat::kStudiesPage);
  EXPECT_EQ(report.read, static_cast<int64_t>(n));
  EXPECT_EQ(report.inserted + report.skipped, static_cast<int64_t>(n));
  std::set<std::string> ids;
  for (const auto& study : parsed["studies"]) {
    ids.insert(study["protocolSection"]["identificationModule"]["nctId"]
                   .get<std::string>());
  }
  EXPECT_EQ(ActiveIds(*store_),
            std::vector<std::string>(ids.begin(), ids.end()));
}

TEST_F(ImporterTest, PageWithStudiesFirstIsDetectedToo) {
  std::string page = "{\"studies\":" + ArrayOf(3) + ",\"nextPageToken\":\"x\"}";
  ASSERT_OK_AND_ASSIGN(ImportReport report,
                       ImportStudies(Write("p.json", page), *store_));
  EXPECT_EQ(report.format, ImportFormat::kStudiesPage);
  EXPECT_EQ(report.inserted, 3);
}

TEST_F(ImporterTest, DirectoryIsReadRecursivelyInPathOrder) {
  for (size_t i = 0; i < 5; ++i) {
    Write("dump/a/" + records_[i].study.nct_id + ".json", records_[i].raw_json);
  }
  for (size_t i = 5; i < 8; ++i) {
    Write("dump/b/c/" + records_[i].study.nct_id + ".json",
          records_[i].raw_json);
  }
  Write("dump/README.txt", "not json");
  Write("dump/b/old.json.bak", "{");
  ASSERT_OK_AND_ASSIGN(ImportReport report,
                       ImportStudies(dir_.File("dump").string(), *store_,
                                     {.wanted_statuses = {}}));
  EXPECT_EQ(report.format, ImportFormat::kDirectory);
  EXPECT_EQ(report.files, 8);
  EXPECT_EQ(report.read, 8);
  EXPECT_EQ(report.inserted, 8);
  EXPECT_THAT(ActiveIds(*store_), SizeIs(8));
}

TEST_F(ImporterTest, DirectoryWithAnEmptyAndABadFileGoesOn) {
  Write("d/1.json", records_[0].raw_json);
  Write("d/2.json", "");
  Write("d/3.json", "{\"protocolSection\": {");  // truncated
  Write("d/4.json", records_[1].raw_json);
  ASSERT_OK_AND_ASSIGN(
      ImportReport report,
      ImportStudies(dir_.File("d").string(), *store_, {.wanted_statuses = {}}));
  EXPECT_EQ(report.inserted, 2);
  EXPECT_THAT(report.problems,
              ElementsAre(Field(&ImportProblem::where, "2.json: file"),
                          Field(&ImportProblem::where, "3.json: file")));
  EXPECT_THAT(report.problems[0].error,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(report.problems[1].error,
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("file structure broken")));
  EXPECT_FALSE(report.stopped.ok());
}

TEST_F(ImporterTest, JsonLinesWithBlankLinesAndCrlf) {
  std::string text;
  for (size_t i = 0; i < 30; ++i) {
    text += Compact(records_[i].raw_json) + (i % 3 == 0 ? "\r\n" : "\n");
    if (i % 10 == 0) text += "\n   \n";
  }
  ASSERT_OK_AND_ASSIGN(
      ImportReport report,
      ImportStudies(Write("s.jsonl", text), *store_,
                    {.wanted_statuses = {}, .chunk_bytes = 5000}));
  EXPECT_EQ(report.format, ImportFormat::kJsonLines);
  EXPECT_EQ(report.read, 30);
  EXPECT_EQ(report.inserted, 30);
  EXPECT_THAT(report.problems, IsEmpty());
}

TEST_F(ImporterTest, PrettyPrintedStudiesOneAfterAnother) {
  // A single GET /studies/{id} response, and three concatenated.
  ASSERT_OK_AND_ASSIGN(ImportReport one,
                       ImportStudies(Write("one.json", records_[0].raw_json),
                                     *store_, {.wanted_statuses = {}}));
  EXPECT_EQ(one.format, ImportFormat::kJsonValues);
  EXPECT_EQ(one.inserted, 1);
  ASSERT_OK_AND_ASSIGN(
      ImportReport three,
      ImportStudies(
          Write("three.json", records_[1].raw_json + "\n" +
                                  records_[2].raw_json + records_[3].raw_json),
          *store_, {.wanted_statuses = {}, .chunk_bytes = 100}));
  EXPECT_EQ(three.format, ImportFormat::kJsonValues);
  EXPECT_EQ(three.inserted, 3);
}

// Bad records of every kind, each reported at its position and skipped.
struct BadFile {
  std::string text;
  std::vector<std::string> where;  // expected problem positions
};

BadFile ArrayWithBadRecords(const std::vector<StudyRecord>& records) {
  std::string invalid_id = Compact(records[3].raw_json);
  const std::string id = records[3].study.nct_id;
  invalid_id.replace(invalid_id.find(id), id.size(), "NCT123");
  const std::vector<std::string> elements = {
      Compact(records[0].raw_json),
      // Balanced but not JSON (a trailing comma): the splitter passes it,
      // the parser does not.
      R"({"protocolSection": {"identificationModule": {"nctId": "NCT00000001",}}})",
      Compact(records[1].raw_json),
      R"({"not": "a study"})",
      "42",
      invalid_id,
      Compact(records[2].raw_json),
  };
  BadFile f;
  f.text = "[";
  for (size_t i = 0; i < elements.size(); ++i) {
    if (i > 0) f.text += ",\n  ";
    if (i == 1 || i == 3 || i == 4 || i == 5) {
      f.where.push_back("element " + std::to_string(i) + " (byte " +
                        std::to_string(f.text.size()) + ")");
    }
    f.text += elements[i];
  }
  f.text += "]";
  return f;
}

TEST_F(ImporterTest, BadRecordsInAnArrayAreReportedByPositionAndSkipped) {
  const BadFile bad = ArrayWithBadRecords(records_);
  ASSERT_OK_AND_ASSIGN(
      ImportReport report,
      ImportStudies(Write("bad.json", bad.text), *store_,
                    {.wanted_statuses = {}, .chunk_bytes = 64}));
  EXPECT_EQ(report.read, 7);
  EXPECT_EQ(report.skipped, 4);
  EXPECT_EQ(report.inserted, 3);
  EXPECT_OK(report.stopped);
  ASSERT_THAT(report.problems, SizeIs(4));
  std::vector<std::string> where;
  for (const ImportProblem& p : report.problems) where.push_back(p.where);
  EXPECT_EQ(where, bad.where);
  EXPECT_THAT(report.problems[0].error, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(report.problems[1].error, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(report.problems[2].error, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(report.problems[3].error,
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("not an NCT id: 'NCT123'")));
  std::vector<std::string> good = {records_[0].study.nct_id,
                                   records_[1].study.nct_id,
                                   records_[2].study.nct_id};
  std::sort(good.begin(), good.end());
  EXPECT_EQ(ActiveIds(*store_), good);
}

TEST_F(ImporterTest, BadLinesOfJsonLinesAreSkippedAndTheRestIsRead) {
  std::string invalid_id = Compact(records_[2].raw_json);
  const std::string id = records_[2].study.nct_id;
  invalid_id.replace(invalid_id.find(id), id.size(), "NCTXYZ");
  const std::string text = Compact(records_[0].raw_json) + "\n" +
                           "{\"protocolSection\": {\"identif\n" +  // cut off
                           Compact(records_[1].raw_json) + "\n" +
                           "[1, 2, 3]\n" + invalid_id + "\n" +
                           Compact(records_[3].raw_json);  // no final newline
  ASSERT_OK_AND_ASSIGN(
      ImportReport report,
      ImportStudies(Write("bad.jsonl", text), *store_,
                    {.wanted_statuses = {}, .chunk_bytes = 256}));
  EXPECT_EQ(report.format, ImportFormat::kJsonLines);
  EXPECT_EQ(report.read, 6);
  EXPECT_EQ(report.inserted, 3);
  EXPECT_EQ(report.skipped, 3);
  std::vector<std::string> where;
  for (const ImportProblem& p : report.problems) where.push_back(p.where);
  EXPECT_THAT(where, ElementsAre("line 2", "line 4", "line 5"));
}

TEST_F(ImporterTest, OversizedRecordsAreSkipped) {
  const std::string small = R"({"protocolSection":{"identificationModule":)"
                            R"({"nctId":"NCT00000102"}}})";
  const std::string text =
      "[" + small + "," + Compact(records_[0].raw_json) + "," + small + "]";
  ASSERT_OK_AND_ASSIGN(
      ImportReport report,
      ImportStudies(Write("big.json", text), *store_,
                    {.wanted_statuses = {}, .max_record_bytes = 1000}));
  EXPECT_EQ(report.read, 3);
  EXPECT_EQ(report.skipped, 1);
  EXPECT_EQ(report.inserted, 1);  // the same small study twice
  EXPECT_EQ(report.unchanged, 1);
  ASSERT_THAT(report.problems, SizeIs(1));
  EXPECT_THAT(report.problems[0].error,
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(ImporterTest, TruncatedArrayKeepsWhatCameBeforeAndSaysSo) {
  std::string text = ArrayOf(5);
  text.resize(text.find(Compact(records_[3].raw_json)) + 100);
  ASSERT_OK_AND_ASSIGN(
      ImportReport report,
      ImportStudies(Write("cut.json", text), *store_, {.wanted_statuses = {}}));
  EXPECT_EQ(report.inserted, 3);
  EXPECT_THAT(report.stopped, StatusIs(absl::StatusCode::kDataLoss,
                                       HasSubstr("file structure broken")));
  EXPECT_THAT(report.Summary(), HasSubstr("INCOMPLETE"));
}

TEST_F(ImporterTest, ForcedFormatThatDoesNotFitStopsTheFile) {
  const std::string text = Compact(records_[0].raw_json) + "\n" +
                           Compact(records_[1].raw_json) + "\n";
  ASSERT_OK_AND_ASSIGN(
      ImportReport report,
      ImportStudies(Write("s.jsonl", text), *store_,
                    {.wanted_statuses = {}, .format = ImportFormat::kArray}));
  EXPECT_EQ(report.read, 0);
  EXPECT_FALSE(report.stopped.ok());
  EXPECT_THAT(ImportStudies(Write("f.json", "[]"), *store_,
                            {.format = ImportFormat::kDirectory}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ImporterTest, EmptyInputs) {
  EXPECT_THAT(ImportStudies(Write("empty.json", ""), *store_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(ImportStudies(Write("blank.json", " \n\t\n"), *store_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  ASSERT_OK_AND_ASSIGN(ImportReport none,
                       ImportStudies(Write("none.json", " [ ] "), *store_));
  EXPECT_EQ(none.read, 0);
  EXPECT_OK(none.stopped);
  fs::create_directories(dir_.File("nothing/here"));
  Write("nothing/readme.txt", "x");
  EXPECT_THAT(ImportStudies(dir_.File("nothing").string(), *store_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("no *.json files")));
}

TEST_F(ImporterTest, MissingPathIsNotFound) {
  EXPECT_THAT(ImportStudies(dir_.File("missing.json").string(), *store_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.json")));
}

TEST_F(ImporterTest, OptionsAreValidated) {
  const std::string path = Write("a.json", ArrayOf(1));
  EXPECT_THAT(ImportStudies(path, *store_, {.batch_size = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseImportFormat("xml"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  for (ImportFormat f : {ImportFormat::kAuto, ImportFormat::kArray,
                         ImportFormat::kStudiesPage, ImportFormat::kJsonLines,
                         ImportFormat::kJsonValues, ImportFormat::kDirectory}) {
    EXPECT_EQ(*ParseImportFormat(ImportFormatName(f)), f);
  }
}

TEST_F(ImporterTest, BatchesAreTransactionsAndReportProgress) {
  const std::string path = Write("a.json", ArrayOf(25));
  std::vector<Progress> seen;
  ASSERT_OK_AND_ASSIGN(
      ImportReport report,
      ImportStudies(path, *store_, {.wanted_statuses = {}, .batch_size = 10},
                    [&](const Progress& p) { seen.push_back(p); }));
  EXPECT_EQ(report.inserted, 25);
  ASSERT_THAT(seen, SizeIs(3));  // 10 + 10 + 5
  EXPECT_EQ(seen[0].pages, 1);
  EXPECT_EQ(seen[0].studies, 10);
  EXPECT_EQ(seen[2].studies, 25);
  EXPECT_EQ(seen[2].task, "import");
  EXPECT_EQ(seen[2].total_bytes, static_cast<int64_t>(fs::file_size(path)));
}

}  // namespace
}  // namespace trialmatch::sync
