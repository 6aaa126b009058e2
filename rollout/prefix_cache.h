// Cached prefixes for the engine: token sequences whose keys and values are held in a
// PagedKvCache, so a prompt extending one (PTS asks for many nested prefixes of one completion)
// forks the cached pages instead of prefilling them again.
//
// Each entry owns one sequence of the cache (its pages stay referenced while the entry lives) and
// the tokens it covers (entry tokens[i] is the token whose keys sit at position i). Lookup is the
// longest common prefix over all entries (linear in entries x tokens; a radix tree is the obvious
// next step when entries grow into the thousands). A longrope model's entries hold keys rotated
// with the short or the long factors (PagedKvCache::long_rope): a lookup matches only entries of
// the set it asks for, and an entry covers or replaces only entries of its own set. Entries are
// evicted least recently used first when the engine needs pages, or when there are more than
// `max_entries`.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "data/token_id.h"
#include "rollout/paged_kv_cache.h"

namespace align {

// How many leading ids a and b share.
int64_t common_prefix(const std::vector<TokenId>& a, const std::vector<TokenId>& b);

class PrefixCache {
 public:
  PrefixCache(PagedKvCache& cache, size_t max_entries) : cache_(cache), max_entries_(max_entries) {}
  ~PrefixCache() { clear(); }
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  struct Match {
    int64_t entry = -1;  // -1: nothing matched
    int64_t length = 0;  // tokens of the query covered by the entry
    bool long_rope = false;
  };
  // The entry sharing the longest prefix with `tokens`, capped at `max_length` tokens, among the
  // entries whose keys use the long (`long_rope`) or the short longrope factors.
  Match find(const std::vector<TokenId>& tokens, int64_t max_length, bool long_rope = false) const;

  // A new cache sequence holding the match's first `length` tokens (shared pages), or an empty
  // one (of the match's factor set) when nothing matched. Marks the entry as used.
  int64_t fork(const Match& match);

  // Takes ownership of `seq`, whose first tokens.size() positions hold `tokens` (the sequence is
  // truncated to that). A sequence already covered by an entry (equal or a prefix of it) is
  // released instead; entries covered by the new one are dropped.
  void insert(std::vector<TokenId> tokens, int64_t seq);

  // Drops the least recently used entry other than `keep` (-1: none kept); false if none.
  bool evict_one(int64_t keep = -1);
  void erase(int64_t entry);
  void clear();
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::vector<TokenId> tokens;
    int64_t seq = -1;
    int64_t last_used = 0;
  };
  PagedKvCache& cache_;
  size_t max_entries_;
  std::map<int64_t, Entry> entries_;
  int64_t next_id_ = 0;
  int64_t clock_ = 0;
};

}  // namespace align
