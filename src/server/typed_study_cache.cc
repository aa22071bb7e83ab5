#include "server/typed_study_cache.h"

#include <utility>

namespace trialmatch::server {

std::shared_ptr<const v1::Study> TypedStudyCache::Get(std::string_view nct_id,
                                                      uint64_t content_hash) {
  if (max_bytes_ == 0) return nullptr;
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(absl::string_view(nct_id.data(), nct_id.size()));
  if (it == entries_.end() || it->second.content_hash != content_hash) {
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.typed;
}

void TypedStudyCache::Put(std::string_view nct_id, uint64_t content_hash,
                          std::shared_ptr<const v1::Study> typed) {
  if (max_bytes_ == 0 || typed == nullptr) return;
  // Entry overhead (key, list node, map slot) counted roughly.
  const std::size_t bytes = typed->ByteSizeLong() + nct_id.size() + 64;
  if (bytes > max_bytes_) return;
  absl::MutexLock lock(&mu_);
  const std::string key(nct_id);
  if (auto it = entries_.find(key); it != entries_.end()) {
    bytes_ -= it->second.bytes;
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
  while (bytes_ + bytes > max_bytes_ && !lru_.empty()) {
    auto victim = entries_.find(lru_.back());
    bytes_ -= victim->second.bytes;
    entries_.erase(victim);
    lru_.pop_back();
  }
  lru_.push_front(key);
  entries_[key] = Entry{content_hash, std::move(typed), bytes, lru_.begin()};
  bytes_ += bytes;
}

std::size_t TypedStudyCache::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

std::size_t TypedStudyCache::entries() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace trialmatch::server
