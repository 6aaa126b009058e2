// A bounded cache from a pre-token's bytes to its BPE token ids, shared by all threads using one
// tokenizer. Lookups take no lock: a slot holds an atomic pointer to an immutable entry, published
// once. Inserts take a mutex. Like Hugging Face's BPE cache, it fills up and then stops taking new
// words (no eviction, so readers never see an entry freed under them); the capacity is large
// enough that the common words of a corpus are in by then.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "data/token_id.h"

namespace align {

// 64-bit hash of a byte string (not cryptographic); never 0.
uint64_t hash_bytes(std::string_view bytes);

class WordCache {
 public:
  // Words longer than this are not cached: they are rare and would crowd the arena.
  static constexpr size_t kMaxWordBytes = 128;

  // `max_entries` words at most; the table has twice as many slots.
  explicit WordCache(size_t max_entries = size_t{1} << 18);
  ~WordCache();
  WordCache(const WordCache&) = delete;
  WordCache& operator=(const WordCache&) = delete;

  // Appends the cached ids of `word` to `out` and returns true; false when absent.
  bool lookup(std::string_view word, uint64_t hash, std::vector<TokenId>& out) const;
  // Adds `word` unless present, too long or the cache is full.
  void insert(std::string_view word, uint64_t hash, const TokenId* ids, size_t count);

  size_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  struct Entry;  // hash, sizes, then the ids and the key bytes

  Entry* allocate(size_t bytes);  // from the arena; caller holds insert_mutex_

  size_t max_entries_;
  std::unique_ptr<std::atomic<const Entry*>[]> slots_;
  size_t mask_;
  std::atomic<size_t> size_{0};
  std::mutex insert_mutex_;
  std::vector<std::unique_ptr<char[]>> chunks_;  // arena, never moved or freed before the end
  size_t chunk_used_ = 0;
};

}  // namespace align
