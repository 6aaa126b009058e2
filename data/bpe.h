// The byte-level BPE model: a vocabulary of byte-level strings and ranked merges, applied the way
// Hugging Face `tokenizers` does (models/bpe/word.rs): start from one symbol per byte, then merge,
// among all adjacent pairs that have a merge, the pair of lowest rank, the leftmost on ties, until
// no pair has one. With `ignore_merges`, a pre-token found whole in the vocabulary is emitted as
// that one token without merging (Llama 3 style).
//
// Differences from HF, all on inputs HF would also mishandle: every one of the 256 byte
// characters must be in the vocabulary (HF silently drops unknown characters when there is no
// unk_token), and ids must be unique.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/token_id.h"
#include "data/word_cache.h"

namespace align {

class Bpe {
 public:
  using Vocab = std::vector<std::pair<std::string, TokenId>>;       // token -> id
  using Merges = std::vector<std::pair<std::string, std::string>>;  // in rank order

  // Throws InputError prefixed with `where` (e.g. "dir/tokenizer.json: model") when a merge names
  // a token missing from the vocabulary, an id repeats, or a byte character is missing.
  Bpe(const Vocab& vocab, const Merges& merges, bool ignore_merges, const std::string& where);

  // Appends the ids of one pre-token, given as raw bytes (not byte-level characters).
  void encode(std::string_view bytes, std::vector<TokenId>& out) const;

  std::optional<TokenId> token_to_id(std::string_view token) const;
  // The byte-level string of `id`, or nullptr when the vocabulary has no such id.
  const std::string* id_to_token(TokenId id) const;
  TokenId max_id() const { return static_cast<TokenId>(tokens_.size()) - 1; }
  size_t size() const { return vocab_.size(); }
  size_t merge_count() const { return merge_count_; }

 private:
  struct Merge {
    uint32_t rank;
    TokenId result;
  };
  // Open-addressing map from a pair of ids to its merge.
  class PairMap {
   public:
    void reserve(size_t count);
    void insert(TokenId left, TokenId right, Merge merge);  // a later insert replaces
    const Merge* find(TokenId left, TokenId right) const;

   private:
    struct Entry {
      uint64_t key = ~0ull;
      Merge merge{};
    };
    size_t index(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> shift_; }
    std::vector<Entry> entries_;
    int shift_ = 64;
  };

  void merge_word(std::string_view bytes, std::vector<TokenId>& out) const;

  std::unordered_map<std::string, TokenId> vocab_;      // byte-level string -> id
  std::unordered_map<std::string, TokenId> raw_vocab_;  // raw bytes -> id (ignore_merges)
  std::vector<std::optional<std::string>> tokens_;      // id -> byte-level string
  std::array<TokenId, 256> byte_ids_{};
  PairMap merges_;
  size_t merge_count_ = 0;
  bool ignore_merges_ = false;
  std::unique_ptr<WordCache> cache_;  // mutable through the pointer; thread-safe
};

}  // namespace align
