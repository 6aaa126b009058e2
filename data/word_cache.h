// A bounded cache from a pre-token's bytes to its BPE token ids, shared by all threads using one
// tokenizer. Sharded, each shard behind a reader-writer lock; a full shard is emptied and refilled,
// which keeps memory bounded without bookkeeping. Keys and ids live in per-shard arenas, so a
// lookup allocates nothing.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "data/token_id.h"

namespace align {

// 64-bit hash of a byte string (not cryptographic).
uint64_t hash_bytes(std::string_view bytes);

class WordCache {
 public:
  // Words longer than this are not cached: they are rare and would crowd the arenas.
  static constexpr size_t kMaxWordBytes = 128;

  explicit WordCache(size_t slots_per_shard = 1 << 14);

  // Appends the cached ids of `word` to `out` and returns true; false when absent.
  bool lookup(std::string_view word, uint64_t hash, std::vector<TokenId>& out) const;
  void insert(std::string_view word, uint64_t hash, const TokenId* ids, size_t count);

 private:
  struct Slot {
    uint64_t hash = 0;  // 0: empty
    uint32_t key_offset = 0;
    uint32_t ids_offset = 0;
    uint16_t key_size = 0;
    uint16_t ids_size = 0;
  };
  struct Shard {
    mutable std::shared_mutex mutex;
    std::vector<Slot> slots;
    std::string keys;
    std::vector<TokenId> ids;
    size_t used = 0;
  };
  static constexpr size_t kShards = 16;

  const Slot* find(const Shard& shard, std::string_view word, uint64_t hash) const;

  size_t slots_per_shard_;
  std::array<std::unique_ptr<Shard>, kShards> shards_;
};

}  // namespace align
