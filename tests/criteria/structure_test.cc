// Sectioning on the shapes real eligibility texts take (each test quotes or
// reproduces the layout of a recorded study).
#include "criteria/structure.h"

#include <string>
#include <vector>

#include "criteria_test_util.h"
#include "gtest/gtest.h"

namespace trialmatch::criteria {
namespace {

using testing::LoadStudy;
using testing::ProjectRules;

struct Parsed {
  NormalizedText nt;
  TextStructure st;
  std::string Text(int b) const {
    const Block& blk = st.blocks[b];
    return nt.text().substr(blk.begin, blk.end - blk.begin);
  }
  int Find(std::string_view prefix) const {
    for (size_t i = 0; i < st.blocks.size(); ++i) {
      if (Text(static_cast<int>(i)).rfind(prefix, 0) == 0) return static_cast<int>(i);
    }
    return -1;
  }
};

Parsed Parse(std::string_view text) {
  Parsed p;
  p.nt = Normalize(text);
  p.st = ParseStructure(p.nt, *ProjectRules());
  return p;
}

TEST(StructureTest, StandardHeadingsAndBullets) {
  // NCT00000410.
  const Parsed p = Parse(
      "Inclusion Criteria:\n\n* Duration of symptoms: 6 or more weeks.\n"
      "* Tests: MRI to confirm diagnosis and level(s).\n\nExclusion Criteria:\n\n"
      "* Previous lumbar spine surgery.\n* Age less than 18 years.");
  ASSERT_EQ(p.st.blocks.size(), 4u);
  EXPECT_TRUE(p.st.has_headings);
  EXPECT_EQ(p.Text(0), "Duration of symptoms: 6 or more weeks.");
  EXPECT_EQ(p.st.blocks[0].section, Section::kInclusion);
  EXPECT_EQ(p.st.blocks[1].section, Section::kInclusion);
  EXPECT_EQ(p.st.blocks[2].section, Section::kExclusion);
  EXPECT_EQ(p.Text(3), "Age less than 18 years.");
  EXPECT_EQ(p.st.blocks[3].section, Section::kExclusion);
}

TEST(StructureTest, HeadingVariants) {
  for (const auto& [heading, section] : std::vector<std::pair<std::string, Section>>{
           {"Key Inclusion Criteria:", Section::kInclusion},
           {"INCLUSION CRITERIA:", Section::kInclusion},
           {"Inclusion:", Section::kInclusion},
           {"Inclusion Criteria (Parts 1 and 2):", Section::kInclusion},
           {"Key Exclusion Criteria", Section::kExclusion},
           {"EXCLUSION CRITERIA:", Section::kExclusion},
           {"Exclusion:", Section::kExclusion},
           {"Cancer-Specific Exclusion Criteria:", Section::kExclusion},
           {"Participants are excluded from the study if any of the following "
            "criteria apply:", Section::kExclusion},
           {"* INCLUSION CRITERIA:", Section::kInclusion},
           {"Eligibility Criteria:", Section::kUnspecified},
       }) {
    const Parsed p = Parse(heading + "\n\n* Item one");
    ASSERT_EQ(p.st.blocks.size(), 1u) << heading;
    EXPECT_EQ(p.st.blocks[0].section, section) << heading;
    EXPECT_EQ(p.Text(0), "Item one") << heading;
  }
}

TEST(StructureTest, NoHeadingsAtAll) {
  // Paragraph style without headings (NCT06383962-like).
  const Parsed p = Parse("Age 21 or above at the time of the surgery.\n\n"
                         "Written informed consent given by subject.");
  EXPECT_FALSE(p.st.has_headings);
  ASSERT_EQ(p.st.blocks.size(), 2u);
  EXPECT_EQ(p.st.blocks[0].section, Section::kUnspecified);
}

TEST(StructureTest, InlineTextAfterHeading) {
  // "Exclusion criteria: No cervical or genital carcinoma. No vaginal
  // infection." (a recorded study writes it on one line).
  const Parsed p = Parse("Inclusion Criteria:Genetic analysis of DMD; from 2 to 6 years old\n\n"
                         "Exclusion criteria: No cervical or genital carcinoma. No vaginal infection.");
  ASSERT_EQ(p.st.blocks.size(), 2u);
  EXPECT_EQ(p.Text(0), "Genetic analysis of DMD; from 2 to 6 years old");
  EXPECT_EQ(p.st.blocks[0].section, Section::kInclusion);
  EXPECT_EQ(p.Text(1), "No cervical or genital carcinoma. No vaginal infection.");
  EXPECT_EQ(p.st.blocks[1].section, Section::kExclusion);
}

TEST(StructureTest, NumberedEscapedAndLettered) {
  const Parsed p = Parse("Inclusion Criteria:\n\n1\\. First item\n2\\. Second item\n"
                         "3) Third\na. Letter item\ni. Roman item\n5.2.1 Patients must");
  std::vector<std::string> texts;
  for (size_t i = 0; i < p.st.blocks.size(); ++i) texts.push_back(p.Text(static_cast<int>(i)));
  EXPECT_EQ(texts, (std::vector<std::string>{"First item", "Second item", "Third",
                                              "Letter item", "Roman item",
                                              "Patients must"}));
}

TEST(StructureTest, NestedBulletsBelongToTheirParent) {
  // NCT02227251-like: an any-of lead-in with indented sub-bullets.
  const Parsed p = Parse(
      "Inclusion Criteria:\n\n* Patients with class II heart failure are eligible, "
      "provided they meet at least one of the following criteria:\n\n"
      "  * Patients who are asymptomatic on treatment\n  * Patients with prior "
      "anthracycline exposure\n* Age 18 or older");
  const int parent = p.Find("Patients with class II");
  const int c1 = p.Find("Patients who are asymptomatic");
  const int c2 = p.Find("Patients with prior anthracycline");
  const int sibling = p.Find("Age 18");
  ASSERT_GE(parent, 0);
  ASSERT_GE(c1, 0);
  ASSERT_GE(c2, 0);
  ASSERT_GE(sibling, 0);
  EXPECT_EQ(p.st.blocks[c1].parent, parent);
  EXPECT_EQ(p.st.blocks[c2].parent, parent);
  EXPECT_EQ(p.st.blocks[c1].depth, 1);
  EXPECT_EQ(p.st.blocks[sibling].parent, -1);
  EXPECT_TRUE(p.st.blocks[parent].lead_in);
  EXPECT_EQ(p.st.blocks[parent].children, (std::vector<int>{c1, c2}));
}

TEST(StructureTest, ParagraphLeadInOwnsFollowingBullets) {
  // NCT05712278.
  const model::Study s = LoadStudy("NCT05712278");
  const Parsed p = Parse(s.eligibility.criteria);
  const int lead = p.Find("Participants with confirmed diagnosis of relapsed");
  const int child = p.Find("Isolated central nervous system");
  const int after = p.Find("Participants with a weight");
  ASSERT_GE(lead, 0);
  ASSERT_GE(child, 0);
  ASSERT_GE(after, 0);
  EXPECT_EQ(p.st.blocks[child].parent, lead);
  EXPECT_EQ(p.st.blocks[after].parent, -1);  // a new paragraph closes the group
}

TEST(StructureTest, SubPopulationHeadings) {
  // NCT06209411: "Pregnant Women:", "Community Health Workers:", ...
  const model::Study s = LoadStudy("NCT06209411");
  const Parsed p = Parse(s.eligibility.criteria);
  const int women = p.Find("Pregnant Women:");
  const int workers = p.Find("Community Health Workers:");
  ASSERT_GE(women, 0);
  ASSERT_GE(workers, 0);
  EXPECT_EQ(p.st.blocks[women].type, BlockType::kCohort);
  EXPECT_EQ(p.st.blocks[workers].type, BlockType::kCohort);
  const int item = p.Find("Pregnant woman residing");
  ASSERT_GE(item, 0);
  EXPECT_EQ(p.st.blocks[item].parent, women);
}

TEST(StructureTest, TopicalSubHeadingsDoNotSwitchSection) {
  const Parsed p = Parse("Exclusion Criteria:\n\nHematopoietic:\n\n* Platelets < 50,000\n\n"
                         "Hepatic:\n\n* Bilirubin > 2 mg/dL");
  const int hem = p.Find("Hematopoietic:");
  const int plt = p.Find("Platelets");
  const int hep = p.Find("Hepatic:");
  ASSERT_GE(hem, 0);
  ASSERT_GE(plt, 0);
  ASSERT_GE(hep, 0);
  EXPECT_EQ(p.st.blocks[hem].type, BlockType::kHeading);
  EXPECT_EQ(p.st.blocks[plt].parent, hem);
  EXPECT_EQ(p.st.blocks[plt].section, Section::kExclusion);
  EXPECT_EQ(p.st.blocks[hep].parent, -1);
}

TEST(StructureTest, StandaloneOrBetweenGroups) {
  const Parsed p = Parse("Inclusion Criteria:\n\n* Bone marrow involvement\n* Age >= 60 Years\n\n"
                         "OR\n\n* Relapsed disease\n* Age >= 18 Years");
  int alternatives = -1;
  for (size_t i = 0; i < p.st.blocks.size(); ++i) {
    if (p.st.blocks[i].type == BlockType::kAlternatives) alternatives = static_cast<int>(i);
  }
  ASSERT_GE(alternatives, 0);
  EXPECT_EQ(p.Text(alternatives), "OR");
}

TEST(StructureTest, WrappedLinesContinueTheItem) {
  const Parsed p = Parse("* Platelet count greater than 100,000/mm3\n  and hemoglobin at least 9 g/dL\n* Next");
  ASSERT_EQ(p.st.blocks.size(), 2u);
  EXPECT_EQ(p.Text(0), "Platelet count greater than 100,000/mm3\n  and hemoglobin at least 9 g/dL");
}

TEST(StructureTest, EmptyAndMarkerOnlyLines) {
  EXPECT_TRUE(Parse("").st.blocks.empty());
  EXPECT_TRUE(Parse("\n\n   \n-\n\\-\n").st.blocks.empty());
}

}  // namespace
}  // namespace trialmatch::criteria
