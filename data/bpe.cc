#include "data/bpe.h"

#include <algorithm>
#include <limits>

#include "common/error.h"
#include "data/byte_level.h"
#include "data/utf8.h"

namespace align {

void Bpe::PairMap::reserve(size_t count) {
  size_t capacity = 16;
  shift_ = 60;
  while (capacity < 2 * count) {
    capacity *= 2;
    --shift_;
  }
  entries_.assign(capacity, Entry{});
}

void Bpe::PairMap::insert(TokenId left, TokenId right, Merge merge) {
  const uint64_t key = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  const size_t mask = entries_.size() - 1;
  for (size_t i = index(key);; i = (i + 1) & mask) {
    if (entries_[i].key == key || entries_[i].key == ~0ull) {
      entries_[i] = {key, merge};
      return;
    }
  }
}

const Bpe::Merge* Bpe::PairMap::find(TokenId left, TokenId right) const {
  const uint64_t key = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  const size_t mask = entries_.size() - 1;
  for (size_t i = index(key);; i = (i + 1) & mask) {
    if (entries_[i].key == key) return &entries_[i].merge;
    if (entries_[i].key == ~0ull) return nullptr;
  }
}

Bpe::Bpe(const Vocab& vocab, const Merges& merges, const Options& options, const std::string& where)
    : ignore_merges_(options.ignore_merges),
      fuse_unk_(options.fuse_unk),
      cache_(std::make_unique<WordCache>()) {
  TokenId max_id = -1;
  for (const auto& [token, id] : vocab)
    max_id = std::max(max_id, id);
  tokens_.resize(static_cast<size_t>(max_id) + 1);
  vocab_.reserve(vocab.size());
  for (const auto& [token, id] : vocab) {
    if (tokens_[id]) {
      throw InputError(where + ".vocab: id " + std::to_string(id) + " is given to both \"" +
                       *tokens_[id] + "\" and \"" + token + "\"");
    }
    tokens_[id] = token;
    vocab_.emplace(token, id);
    if (is_valid_utf8(token)) {
      if (auto raw = byte_level_to_bytes(token)) raw_vocab_.emplace(std::move(*raw), id);
    }
  }
  for (int b = 0; b < 256; ++b) {
    std::string c;
    append_utf8(c, byte_to_char(static_cast<uint8_t>(b)));
    auto it = vocab_.find(c);
    byte_ids_[b] = it == vocab_.end() ? kNoId : it->second;
    if (it == vocab_.end()) missing_bytes_.push_back(static_cast<uint8_t>(b));
  }
  if (missing_bytes_.size() == 256) {
    throw InputError(where +
                     ".vocab: none of the 256 byte-level characters (\"!\", \"\xC4\xA0\" for "
                     "a space, ...) is in the vocabulary; this is not a byte-level BPE");
  }
  if (!missing_bytes_.empty() && options.unk_token) {
    auto it = vocab_.find(*options.unk_token);
    if (it == vocab_.end()) {
      throw InputError(where + ".unk_token: \"" + *options.unk_token +
                       "\" is not in the vocabulary, and " + std::to_string(missing_bytes_.size()) +
                       " bytes have no character there (Hugging Face would fail on any text "
                       "with one of them)");
    }
    unk_id_ = it->second;
  }
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const std::string at =
        where + ".merges[" + std::to_string(rank) + "] (\"" + left + " " + right + "\"): ";
    auto l = vocab_.find(left);
    if (l == vocab_.end()) throw InputError(at + "\"" + left + "\" is not in the vocabulary");
    auto r = vocab_.find(right);
    if (r == vocab_.end()) throw InputError(at + "\"" + right + "\" is not in the vocabulary");
    auto result = vocab_.find(left + right);
    if (result == vocab_.end()) {
      throw InputError(at + "the merged token \"" + left + right + "\" is not in the vocabulary");
    }
    // Like HF's HashMap collect, a repeated pair keeps its last rank.
    merges_.insert(l->second, r->second, Merge{static_cast<uint32_t>(rank), result->second});
  }
  merge_count_ = merges.size();
}

std::optional<TokenId> Bpe::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* Bpe::id_to_token(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size() || !tokens_[id]) return nullptr;
  return &*tokens_[id];
}

void Bpe::encode(std::string_view bytes, std::vector<TokenId>& out) const {
  if (bytes.empty()) return;
  const bool complete = missing_bytes_.empty();
  if (bytes.size() == 1 && complete) {
    out.push_back(byte_ids_[static_cast<uint8_t>(bytes[0])]);
    return;
  }
  if (bytes.size() == 2 && complete &&
      !ignore_merges_) {  // one possible merge: cheaper than the cache
    const TokenId a = byte_ids_[static_cast<uint8_t>(bytes[0])];
    const TokenId b = byte_ids_[static_cast<uint8_t>(bytes[1])];
    if (const Merge* m = merges_.find(a, b)) {
      out.push_back(m->result);
    } else {
      out.push_back(a);
      out.push_back(b);
    }
    return;
  }
  const uint64_t hash = hash_bytes(bytes);
  if (cache_->lookup(bytes, hash, out)) return;
  const size_t first = out.size();
  merge_word(bytes, out);
  cache_->insert(bytes, hash, out.data() + first, out.size() - first);
}

void Bpe::merge_word(std::string_view bytes, std::vector<TokenId>& out) const {
  if (ignore_merges_) {
    auto it = raw_vocab_.find(std::string(bytes));
    if (it != raw_vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  struct Symbol {
    TokenId id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    TokenId result;
    // std::push_heap builds a max-heap; invert so the top is the lowest (rank, pos).
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  // One symbol per byte. A byte without a character is left out (HF drops it before merging), or
  // becomes unk_token, once per run of such bytes with fuse_unk.
  symbols.clear();
  heap.clear();
  bool after_unknown = false;
  for (char c : bytes) {
    TokenId id = byte_ids_[static_cast<uint8_t>(c)];
    const bool unknown = id == kNoId;
    if (unknown) id = unk_id_;
    const bool fused = unknown && after_unknown && fuse_unk_;
    after_unknown = unknown;
    if (id == kNoId || fused) continue;
    const auto i = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, i - 1, i + 1, true});
  }
  if (symbols.empty()) return;
  const auto n = static_cast<int32_t>(symbols.size());
  symbols.back().next = -1;
  auto push = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const Merge* m = merges_.find(symbols[pos].id, symbols[next].id)) {
      heap.push_back({m->rank, pos, m->result});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i)
    push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    // Skip stale entries: the pair here has changed since this one was pushed.
    const Merge* current = merges_.find(left.id, symbols[left.next].id);
    if (!current || current->result != top.result) continue;
    Symbol& right = symbols[left.next];
    left.id = top.result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) push(left.prev);
    push(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next)
    out.push_back(symbols[i].id);
}

}  // namespace align
