#include "data/word_cache.h"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace align {

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
  return h | 1;  // never 0, which marks an empty slot
}

WordCache::WordCache(size_t slots_per_shard) : slots_per_shard_(slots_per_shard) {
  for (auto& shard : shards_) {
    shard = std::make_unique<Shard>();
    shard->slots.resize(slots_per_shard_);
  }
}

const WordCache::Slot* WordCache::find(const Shard& shard, std::string_view word,
                                       uint64_t hash) const {
  const size_t mask = shard.slots.size() - 1;
  for (size_t i = (hash >> 4) & mask;; i = (i + 1) & mask) {
    const Slot& slot = shard.slots[i];
    if (slot.hash == 0) return &slot;
    if (slot.hash == hash && slot.key_size == word.size() &&
        std::memcmp(shard.keys.data() + slot.key_offset, word.data(), word.size()) == 0) {
      return &slot;
    }
  }
}

bool WordCache::lookup(std::string_view word, uint64_t hash, std::vector<TokenId>& out) const {
  if (word.size() > kMaxWordBytes) return false;
  const Shard& shard = *shards_[hash % kShards];
  std::shared_lock lock(shard.mutex);
  const Slot* slot = find(shard, word, hash);
  if (slot->hash == 0) return false;
  const TokenId* ids = shard.ids.data() + slot->ids_offset;
  out.insert(out.end(), ids, ids + slot->ids_size);
  return true;
}

void WordCache::insert(std::string_view word, uint64_t hash, const TokenId* ids, size_t count) {
  if (word.size() > kMaxWordBytes || count > word.size()) return;
  Shard& shard = *shards_[hash % kShards];
  std::unique_lock lock(shard.mutex);
  // Keep the table at most half full; beyond that, start over.
  if (2 * (shard.used + 1) > shard.slots.size()) {
    std::fill(shard.slots.begin(), shard.slots.end(), Slot{});
    shard.keys.clear();
    shard.ids.clear();
    shard.used = 0;
  }
  Slot* slot = const_cast<Slot*>(find(shard, word, hash));
  if (slot->hash != 0) return;  // another thread got there first
  slot->hash = hash;
  slot->key_offset = static_cast<uint32_t>(shard.keys.size());
  slot->key_size = static_cast<uint16_t>(word.size());
  slot->ids_offset = static_cast<uint32_t>(shard.ids.size());
  slot->ids_size = static_cast<uint16_t>(count);
  shard.keys.append(word);
  shard.ids.insert(shard.ids.end(), ids, ids + count);
  ++shard.used;
}

}  // namespace align
