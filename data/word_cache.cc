#include "data/word_cache.h"

#include <cstring>

namespace align {

struct WordCache::Entry {
  uint64_t hash;
  uint32_t key_size;
  uint32_t ids_size;
  // Followed by TokenId ids[ids_size], then char key[key_size].
  const TokenId* ids() const { return reinterpret_cast<const TokenId*>(this + 1); }
  const char* key() const { return reinterpret_cast<const char*>(ids() + ids_size); }
};

namespace {

constexpr size_t kChunkBytes = size_t{1} << 20;

}  // namespace

uint64_t hash_bytes(std::string_view bytes) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0xCBF29CE484222325ull ^ (bytes.size() * kMul);
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8);
    h = (h ^ word) * kMul;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, bytes.data() + i, bytes.size() - i);
  h = (h ^ tail) * kMul;
  h ^= h >> 32;
  return h | 1;
}

WordCache::WordCache(size_t max_entries) : max_entries_(max_entries) {
  size_t slots = 16;
  while (slots < 2 * max_entries)
    slots *= 2;
  slots_ = std::make_unique<std::atomic<const Entry*>[]>(slots);
  for (size_t i = 0; i < slots; ++i)
    slots_[i].store(nullptr, std::memory_order_relaxed);
  mask_ = slots - 1;
}

WordCache::~WordCache() = default;

bool WordCache::lookup(std::string_view word, uint64_t hash, std::vector<TokenId>& out) const {
  if (word.size() > kMaxWordBytes) return false;
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const Entry* e = slots_[i].load(std::memory_order_acquire);
    if (!e) return false;
    if (e->hash == hash && e->key_size == word.size() &&
        std::memcmp(e->key(), word.data(), word.size()) == 0) {
      out.insert(out.end(), e->ids(), e->ids() + e->ids_size);
      return true;
    }
  }
}

WordCache::Entry* WordCache::allocate(size_t bytes) {
  bytes = (bytes + 7) & ~size_t{7};
  if (chunks_.empty() || chunk_used_ + bytes > kChunkBytes) {
    chunks_.push_back(std::make_unique<char[]>(kChunkBytes));
    chunk_used_ = 0;
  }
  char* p = chunks_.back().get() + chunk_used_;
  chunk_used_ += bytes;
  return reinterpret_cast<Entry*>(p);
}

void WordCache::insert(std::string_view word, uint64_t hash, const TokenId* ids, size_t count) {
  if (word.size() > kMaxWordBytes || count > word.size()) return;
  if (size_.load(std::memory_order_relaxed) >= max_entries_) return;
  std::lock_guard<std::mutex> lock(insert_mutex_);
  if (size_.load(std::memory_order_relaxed) >= max_entries_) return;
  size_t i = hash & mask_;
  for (;; i = (i + 1) & mask_) {
    const Entry* e = slots_[i].load(std::memory_order_relaxed);
    if (!e) break;
    if (e->hash == hash && e->key_size == word.size() &&
        std::memcmp(e->key(), word.data(), word.size()) == 0) {
      return;  // another thread got there first
    }
  }
  Entry* entry = allocate(sizeof(Entry) + count * sizeof(TokenId) + word.size());
  entry->hash = hash;
  entry->key_size = static_cast<uint32_t>(word.size());
  entry->ids_size = static_cast<uint32_t>(count);
  if (count > 0) std::memcpy(const_cast<TokenId*>(entry->ids()), ids, count * sizeof(TokenId));
  std::memcpy(const_cast<char*>(entry->key()), word.data(), word.size());
  slots_[i].store(entry, std::memory_order_release);
  size_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace align
