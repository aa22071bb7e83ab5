#include "store/content_hash.h"

#include <string>

#include "gtest/gtest.h"

namespace trialmatch::store {
namespace {

// Published FNV-1a 64-bit test vectors (isthe.com/chongo/src/fnv/test_fnv.c).
static_assert(ContentHash("") == 0xcbf29ce484222325ULL);
static_assert(ContentHash("a") == 0xaf63dc4c8601ec8cULL);
static_assert(ContentHash("foobar") == 0x85944171f73967e8ULL);

TEST(ContentHashTest, MatchesPublishedVectors) {
  EXPECT_EQ(ContentHash(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(ContentHash("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(ContentHash("b"), 0xaf63df4c8601f1a5ULL);
  EXPECT_EQ(ContentHash("foobar"), 0x85944171f73967e8ULL);
}

TEST(ContentHashTest, HashesBytesNotCharacters) {
  // Bytes >= 0x80 must not sign-extend.
  const std::string high("\xff\x80", 2);
  uint64_t h = kFnv1a64OffsetBasis;
  h = (h ^ 0xffu) * kFnv1a64Prime;
  h = (h ^ 0x80u) * kFnv1a64Prime;
  EXPECT_EQ(ContentHash(high), h);
  EXPECT_NE(ContentHash(std::string("a\0b", 3)), ContentHash("ab"));
}

TEST(ContentHashTest, ChainsLikeConcatenation) {
  EXPECT_EQ(ContentHash("bar", ContentHash("foo")), ContentHash("foobar"));
}

}  // namespace
}  // namespace trialmatch::store
