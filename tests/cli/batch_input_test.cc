// BatchReader: JSON Lines (blank lines, positions = line numbers), one
// pretty-printed document, a directory, form detection, too-long lines,
// shards that partition the input exactly, $JOB_COMPLETION_INDEX.
#include "cli/batch_input.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::trialmatch::testing::TempDir;

void Write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::vector<BatchRecord> ReadAll(const std::string& path,
                                 BatchReaderOptions options = {}) {
  absl::StatusOr<BatchReader> reader = BatchReader::Open(path, options);
  EXPECT_TRUE(reader.ok()) << reader.status();
  std::vector<BatchRecord> out;
  if (!reader.ok()) return out;
  while (std::optional<BatchRecord> r = reader->Next()) out.push_back(*r);
  EXPECT_OK(reader->status());
  return out;
}

std::vector<int64_t> Positions(const std::vector<BatchRecord>& records) {
  std::vector<int64_t> out;
  for (const BatchRecord& r : records) out.push_back(r.position);
  return out;
}

TEST(BatchReaderTest, JsonLinesKeepFileLineNumbers) {
  TempDir dir;
  Write(dir.File("p.jsonl"),
        "\n{\"id\":\"a\"}\n\n  \n{\"resourceType\":\"Bundle\"}\r\n"
        "{\"id\":\"c\"\n{\"id\":\"d\"}");
  std::vector<BatchRecord> r = ReadAll(dir.File("p.jsonl").string());
  EXPECT_THAT(Positions(r), ElementsAre(2, 5, 6, 7));
  EXPECT_EQ(r[0].text, "{\"id\":\"a\"}");
  EXPECT_EQ(r[0].form, PatientForm::kProfileJson);
  EXPECT_EQ(r[1].form, PatientForm::kFhirBundle);
  EXPECT_EQ(r[1].text, "{\"resourceType\":\"Bundle\"}");  // no '\r'
  EXPECT_EQ(r[2].text, "{\"id\":\"c\"");  // malformed: the reader says so
  EXPECT_EQ(r[0].Where(), "line 2");
  for (const BatchRecord& rec : r) EXPECT_OK(rec.error);
  // --format forces the form.
  BatchReaderOptions forced;
  forced.form = PatientForm::kFhirBundle;
  std::vector<BatchRecord> fhir = ReadAll(dir.File("p.jsonl").string(), forced);
  EXPECT_EQ(fhir[0].form, PatientForm::kFhirBundle);
}

TEST(BatchReaderTest, PrettyPrintedDocumentIsOneRecord) {
  TempDir dir;
  const std::string doc = ::trialmatch::testing::ReadFile(
      ::trialmatch::testing::TestDataDir() / "patients" / "plain_profile.json");
  ASSERT_FALSE(doc.empty());
  Write(dir.File("one.json"), doc);
  std::vector<BatchRecord> r = ReadAll(dir.File("one.json").string());
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].position, 1);
  EXPECT_EQ(r[0].text, doc);
}

TEST(BatchReaderTest, DirectoryOfJsonFilesInNameOrder) {
  TempDir dir;
  std::filesystem::create_directories(dir.File("d"));
  Write(dir.File("d") / "b.json", "{\"id\":\"b\"}");
  Write(dir.File("d") / "a.json", "{\"id\":\"a\"}");
  Write(dir.File("d") / "notes.txt", "ignored");
  Write(dir.File("d") / ".hidden.json", "{}");
  std::vector<BatchRecord> r = ReadAll(dir.File("d").string());
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].file, "a.json");
  EXPECT_EQ(r[0].Where(), "file a.json");
  EXPECT_EQ(r[1].text, "{\"id\":\"b\"}");
}

TEST(BatchReaderTest, ShardsPartitionTheInputExactly) {
  TempDir dir;
  std::string text;
  for (int i = 1; i <= 101; ++i) {
    text += i % 10 == 0 ? "\n" : "{\"id\":\"p" + std::to_string(i) + "\"}\n";
  }
  Write(dir.File("many.jsonl"), text);
  for (int n : {1, 2, 3, 7}) {
    SCOPED_TRACE(n);
    std::set<int64_t> seen;
    size_t total = 0;
    for (int i = 0; i < n; ++i) {
      BatchReaderOptions options{.shard = {.index = i, .count = n}};
      std::vector<BatchRecord> r =
          ReadAll(dir.File("many.jsonl").string(), options);
      absl::StatusOr<BatchReader> counter =
          BatchReader::Open(dir.File("many.jsonl").string(), options);
      ASSERT_OK(counter.status());
      EXPECT_EQ(counter->CountRecords(), static_cast<int64_t>(r.size()));
      for (const BatchRecord& rec : r) {
        EXPECT_EQ((rec.position - 1) % n, i);
        EXPECT_EQ(rec.text,
                  "{\"id\":\"p" + std::to_string(rec.position) + "\"}");
        seen.insert(rec.position);
      }
      total += r.size();
    }
    EXPECT_EQ(total, 91u);  // 101 lines, 10 blank
    EXPECT_EQ(seen.size(), 91u);
  }
}

TEST(BatchReaderTest, MissingInputAndTooLongLine) {
  EXPECT_EQ(BatchReader::Open("/nonexistent/patients.jsonl").status().code(),
            absl::StatusCode::kNotFound);
  TempDir dir;
  std::string text = "{\"id\":\"a\"}\n\"";
  text.append(kMaxRecordBytes + 10, 'x');
  text += "\"\n{\"id\":\"c\"}\n";
  Write(dir.File("long.jsonl"), text);
  std::vector<BatchRecord> r = ReadAll(dir.File("long.jsonl").string());
  ASSERT_EQ(r.size(), 3u);
  EXPECT_OK(r[0].error);
  EXPECT_EQ(r[1].position, 2);
  EXPECT_EQ(r[1].error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r[1].error.message(), HasSubstr("longer than"));
  EXPECT_TRUE(r[1].text.empty());
  EXPECT_EQ(r[2].position, 3);
  EXPECT_EQ(r[2].text, "{\"id\":\"c\"}");
}

TEST(ResolveShardTest, FlagsEnvironmentAndErrors) {
  ::unsetenv("JOB_COMPLETION_INDEX");
  ASSERT_OK_AND_ASSIGN(ShardSpec one, ResolveShard(-1, 1));
  EXPECT_EQ(one.index, 0);
  EXPECT_EQ(ResolveShard(-1, 4).status().code(),
            absl::StatusCode::kInvalidArgument);  // which one?
  EXPECT_EQ(ResolveShard(4, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveShard(0, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  ::setenv("JOB_COMPLETION_INDEX", "2", 1);
  ASSERT_OK_AND_ASSIGN(ShardSpec env, ResolveShard(-1, 4));
  EXPECT_EQ(env.index, 2);
  ASSERT_OK_AND_ASSIGN(ShardSpec flag, ResolveShard(1, 4));  // flag wins
  EXPECT_EQ(flag.index, 1);
  ::setenv("JOB_COMPLETION_INDEX", "x", 1);
  EXPECT_EQ(ResolveShard(-1, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  ::unsetenv("JOB_COMPLETION_INDEX");
}

}  // namespace
}  // namespace trialmatch::cli
