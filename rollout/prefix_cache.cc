#include "rollout/prefix_cache.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace align {
int64_t common_prefix(const std::vector<TokenId>& a, const std::vector<TokenId>& b) {
  // Blocks of 64 ids through memcmp (vectorised), then one id at a time: finished samples of one
  // prompt share thousands of tokens, and insert() compares each with every entry.
  constexpr size_t kBlock = 64;
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i + kBlock <= n && std::memcmp(a.data() + i, b.data() + i, kBlock * sizeof(TokenId)) == 0)
    i += kBlock;
  while (i < n && a[i] == b[i])
    ++i;
  return static_cast<int64_t>(i);
}

PrefixCache::Match PrefixCache::find(const std::vector<TokenId>& tokens, int64_t max_length,
                                     bool long_rope) const {
  Match best;
  best.long_rope = long_rope;
  for (const auto& [id, entry] : entries_) {
    if (cache_.long_rope(entry.seq) != long_rope) continue;
    const int64_t n = std::min(common_prefix(tokens, entry.tokens), max_length);
    if (n > best.length) best = Match{id, n, long_rope};
  }
  return best;
}

int64_t PrefixCache::fork(const Match& match) {
  if (match.entry < 0 || match.length == 0) return cache_.create(match.long_rope);
  Entry& entry = entries_.at(match.entry);
  entry.last_used = ++clock_;
  const int64_t seq = cache_.fork(entry.seq);
  cache_.truncate(seq, match.length);
  return seq;
}

void PrefixCache::insert(std::vector<TokenId> tokens, int64_t seq) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0 || max_entries_ == 0) {
    cache_.release(seq);
    return;
  }
  if (cache_.length(seq) < n) throw Error("PrefixCache::insert: sequence shorter than its tokens");
  const bool long_rope = cache_.long_rope(seq);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (cache_.long_rope(it->second.seq) != long_rope) {
      ++it;
      continue;
    }
    const int64_t common = common_prefix(tokens, it->second.tokens);
    if (common == n) {  // already covered
      it->second.last_used = ++clock_;
      cache_.release(seq);
      return;
    }
    if (common == static_cast<int64_t>(it->second.tokens.size())) {  // the new one covers it
      cache_.release(it->second.seq);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  cache_.truncate(seq, n);
  entries_.emplace(next_id_++, Entry{std::move(tokens), seq, ++clock_});
  while (entries_.size() > max_entries_)
    evict_one();
}

bool PrefixCache::evict_one(int64_t keep) {
  auto victim = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->first == keep) continue;
    if (victim == entries_.end() || it->second.last_used < victim->second.last_used) victim = it;
  }
  if (victim == entries_.end()) return false;
  cache_.release(victim->second.seq);
  entries_.erase(victim);
  return true;
}

void PrefixCache::erase(int64_t entry) {
  auto it = entries_.find(entry);
  if (it == entries_.end()) return;
  cache_.release(it->second.seq);
  entries_.erase(it);
}

void PrefixCache::clear() {
  for (auto& [id, entry] : entries_)
    cache_.release(entry.seq);
  entries_.clear();
}

}  // namespace align
