// TypedStudyCache: the typed fields of recently served studies, so that a
// cache hit does not parse the record's JSON again.
//
// Building a v1::Study from a stored record means a full JSON parse
// (nlohmann, ~35 MB/s: about 1 ms for an average 34 KB record), which is
// most of the cost of a GetStudy served from the store. The typed part is
// derived from the record alone, so it can be reused as long as the record
// is the same: entries are keyed by NCT id and checked against the record's
// content hash (store::ContentHash, the value the store keeps per study). A
// changed record misses and replaces the entry.
//
// Bounded by the serialized size of the typed messages (record_json is not
// kept: the store has it); least recently used entries are evicted.
//
// Thread safety: thread-safe (one mutex; lookups copy a shared_ptr).
#ifndef TRIALMATCH_SERVER_TYPED_STUDY_CACHE_H_
#define TRIALMATCH_SERVER_TYPED_STUDY_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "trialmatch/v1/study.pb.h"

namespace trialmatch::server {

class TypedStudyCache {
 public:
  // `max_bytes` 0 disables the cache (Get misses, Put does nothing).
  explicit TypedStudyCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  TypedStudyCache(const TypedStudyCache&) = delete;
  TypedStudyCache& operator=(const TypedStudyCache&) = delete;

  // The typed study (without record_json) cached for `nct_id` when it was
  // built from a record with `content_hash`; null otherwise.
  std::shared_ptr<const v1::Study> Get(std::string_view nct_id,
                                       uint64_t content_hash);
  // Caches `typed` (record_json must be empty) for `nct_id`/`content_hash`.
  void Put(std::string_view nct_id, uint64_t content_hash,
           std::shared_ptr<const v1::Study> typed);

  std::size_t bytes() const;
  std::size_t entries() const;

 private:
  struct Entry {
    uint64_t content_hash = 0;
    std::shared_ptr<const v1::Study> typed;
    std::size_t bytes = 0;
    std::list<std::string>::iterator lru;  // position in lru_
  };

  const std::size_t max_bytes_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // front = most recent
  std::size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_TYPED_STUDY_CACHE_H_
