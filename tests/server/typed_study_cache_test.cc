#include "server/typed_study_cache.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace trialmatch::server {
namespace {

std::shared_ptr<const v1::Study> Typed(const std::string& id,
                                       std::size_t title_bytes = 10) {
  auto s = std::make_shared<v1::Study>();
  s->set_nct_id(id);
  s->set_brief_title(std::string(title_bytes, 't'));
  return s;
}

TEST(TypedStudyCacheTest, HitOnlyForTheSameContentHash) {
  TypedStudyCache cache(1 << 20);
  EXPECT_EQ(cache.Get("NCT00000001", 7), nullptr);
  cache.Put("NCT00000001", 7, Typed("NCT00000001"));
  ASSERT_NE(cache.Get("NCT00000001", 7), nullptr);
  EXPECT_EQ(cache.Get("NCT00000001", 7)->nct_id(), "NCT00000001");
  EXPECT_EQ(cache.Get("NCT00000001", 8), nullptr);  // the record changed
  EXPECT_EQ(cache.Get("NCT00000002", 7), nullptr);
  cache.Put("NCT00000001", 8, Typed("NCT00000001", 20));  // replaced
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(cache.Get("NCT00000001", 7), nullptr);
  EXPECT_EQ(cache.Get("NCT00000001", 8)->brief_title().size(), 20u);
}

TEST(TypedStudyCacheTest, EvictsTheLeastRecentlyUsedWithinTheByteBound) {
  // Each entry is ~1 KB + overhead; room for three.
  TypedStudyCache cache(3 * 1200);
  cache.Put("NCT00000001", 1, Typed("NCT00000001", 1000));
  cache.Put("NCT00000002", 2, Typed("NCT00000002", 1000));
  cache.Put("NCT00000003", 3, Typed("NCT00000003", 1000));
  ASSERT_NE(cache.Get("NCT00000001", 1), nullptr);  // 1 is recent now
  cache.Put("NCT00000004", 4, Typed("NCT00000004", 1000));
  EXPECT_EQ(cache.entries(), 3u);
  EXPECT_LE(cache.bytes(), 3u * 1200);
  EXPECT_EQ(cache.Get("NCT00000002", 2), nullptr);  // evicted
  EXPECT_NE(cache.Get("NCT00000001", 1), nullptr);
  EXPECT_NE(cache.Get("NCT00000003", 3), nullptr);
  EXPECT_NE(cache.Get("NCT00000004", 4), nullptr);
  cache.Put("NCT00000005", 5, Typed("NCT00000005", 100000));  // too big
  EXPECT_EQ(cache.Get("NCT00000005", 5), nullptr);
  EXPECT_EQ(cache.entries(), 3u);
}

TEST(TypedStudyCacheTest, ZeroBytesDisables) {
  TypedStudyCache cache(0);
  cache.Put("NCT00000001", 1, Typed("NCT00000001"));
  EXPECT_EQ(cache.Get("NCT00000001", 1), nullptr);
  EXPECT_EQ(cache.entries(), 0u);
}

}  // namespace
}  // namespace trialmatch::server
