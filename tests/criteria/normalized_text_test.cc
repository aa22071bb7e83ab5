#include "criteria/normalized_text.h"

#include <string>

#include "gtest/gtest.h"

namespace trialmatch::criteria {
namespace {

std::string Orig(std::string_view original, const Span& s) {
  return std::string(original.substr(s.begin, s.end - s.begin));
}

TEST(NormalizeTest, RemovesMarkdownEscapes) {
  // As ClinicalTrials.gov sends them (NCT02227251, NCT00000410 ...).
  const std::string original = R"(Age \>= 18; ECOG \<= 2; 1\. item; \*note; \[x\])";
  const NormalizedText nt = Normalize(original);
  EXPECT_EQ(nt.text(), "Age >= 18; ECOG <= 2; 1. item; *note; [x]");
}

TEST(NormalizeTest, KeepsBackslashBeforeNonPunctuation) {
  const NormalizedText nt = Normalize(R"(a\b)");
  EXPECT_EQ(nt.text(), R"(a\b)");
}

TEST(NormalizeTest, DecodesEntitiesAlsoWhenEscaped) {
  // "\&lt;" occurs in the corpus (NCT06760702: "interval of \&lt; 6 months").
  const NormalizedText nt = Normalize(R"(x &gt; 1, y \&lt; 6 &amp; z &ge;2)");
  EXPECT_EQ(nt.text(), "x > 1, y < 6 & z >=2");
}

TEST(NormalizeTest, FoldsTypography) {
  const NormalizedText nt =
      Normalize("≥ 1.5 × 10⁹/L; ≤ 5 µmol/L; 30 kg/m²; 7–10 %; “x”；（y）");
  EXPECT_EQ(nt.text(), ">= 1.5 x 10^9/L; <= 5 umol/L; 30 kg/m^2; 7-10 %; \"x\";(y)");
}

TEST(NormalizeTest, CrLfAndZeroWidth) {
  const NormalizedText nt = Normalize("a\r\nb\rc\xE2\x80\x8B" "d");
  EXPECT_EQ(nt.text(), "a\nb\ncd");
}

TEST(NormalizeTest, InvalidUtf8IsReplacedAndCounted) {
  const std::string original = "ok \xFF\xFE bad \xC3 end";
  const NormalizedText nt = Normalize(original);
  EXPECT_EQ(nt.invalid_utf8_bytes(), 3);
  EXPECT_EQ(nt.text(), "ok    bad   end");
  // Offsets stay valid byte positions of the original.
  const Span s = nt.ToOriginal(nt.text().find("end"), nt.size());
  EXPECT_EQ(Orig(original, s), "end");
}

TEST(NormalizeTest, SpansMapBackToTheOriginalText) {
  const std::string original = R"(* Platelets \>= 100,000/mm³ and Hb ≥ 9 g/dL)";
  const NormalizedText nt = Normalize(original);
  const std::string& t = nt.text();
  const size_t b = t.find("Platelets");
  const size_t e = t.find("mm^3") + 4;
  EXPECT_EQ(Orig(original, nt.ToOriginal(b, e)), R"(Platelets \>= 100,000/mm³)");
  const size_t hb = t.find("Hb");
  EXPECT_EQ(Orig(original, nt.ToOriginal(hb, t.size())), "Hb ≥ 9 g/dL");
  // A range inside an expansion maps to the whole source character.
  const size_t ge = t.find(">= 9");
  EXPECT_EQ(Orig(original, nt.ToOriginal(ge, ge + 1)), "≥");
}

TEST(NormalizeTest, EmptyAndClampedRanges) {
  const NormalizedText empty = Normalize("");
  EXPECT_EQ(empty.size(), 0);
  const Span s = empty.ToOriginal(0, 10);
  EXPECT_EQ(s.begin, 0);
  EXPECT_EQ(s.end, 0);
  const NormalizedText nt = Normalize("abc");
  const Span clamped = nt.ToOriginal(-5, 99);
  EXPECT_EQ(clamped.begin, 0);
  EXPECT_EQ(clamped.end, 3);
}

TEST(NormalizeTest, CircledNumbersBecomeMarkers) {
  EXPECT_EQ(Normalize("①first ②second").text(), "(1)first (2)second");
}

}  // namespace
}  // namespace trialmatch::criteria
