// The byte-level BPE model: a vocabulary of byte-level strings and ranked merges, applied the way
// Hugging Face `tokenizers` does (models/bpe/word.rs): start from one symbol per byte, then merge,
// among all adjacent pairs that have a merge, the pair of lowest rank, the leftmost on ties, until
// no pair has one. With `ignore_merges`, a pre-token found whole in the vocabulary is emitted as
// that one token without merging (Llama 3 style).
//
// A byte whose character is not in the vocabulary (SmolLM2's lacks 21 of them: bytes that never
// occur in UTF-8, or never occurred in training) is handled as HF's BPE::merge_word handles any
// character without a token: with no unk_token it is dropped before merging, so its neighbours
// become adjacent and may merge across it ("!\x04!" -> "!!"), and a word of such bytes only gives
// no ids; with an unk_token each such byte becomes that token (one per run with fuse_unk), which
// then merges like any other symbol.
//
// Difference from HF, on input HF would also mishandle: ids must be unique.
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

  // tokenizer.json's model fields besides vocab and merges.
  struct Options {
    bool ignore_merges = false;
    std::optional<std::string> unk_token;  // a vocabulary token, for bytes without a character
    bool fuse_unk = false;                 // one unk_token per run of such bytes
  };

  // Throws InputError prefixed with `where` (e.g. "dir/tokenizer.json: model") when a merge names
  // a token missing from the vocabulary, an id repeats, no byte character at all is in the
  // vocabulary (not a byte-level BPE), or bytes lack their character and the unk_token is not in
  // the vocabulary (HF would fail on every text with such a byte).
  Bpe(const Vocab& vocab, const Merges& merges, const Options& options, const std::string& where);

  // Appends the ids of one pre-token, given as raw bytes (not byte-level characters).
  void encode(std::string_view bytes, std::vector<TokenId>& out) const;

  std::optional<TokenId> token_to_id(std::string_view token) const;
  // The byte-level string of `id`, or nullptr when the vocabulary has no such id.
  const std::string* id_to_token(TokenId id) const;
  TokenId max_id() const { return static_cast<TokenId>(tokens_.size()) - 1; }
  size_t size() const { return vocab_.size(); }
  size_t merge_count() const { return merge_count_; }
  // The bytes whose byte-level character is not in the vocabulary, in byte order.
  const std::vector<uint8_t>& missing_bytes() const { return missing_bytes_; }
  // The id those bytes are encoded as (unk_token), when some are missing and there is one.
  std::optional<TokenId> unk_id() const {
    return unk_id_ == kNoId ? std::nullopt : std::optional<TokenId>(unk_id_);
  }

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
  static constexpr TokenId kNoId = -1;
  std::array<TokenId, 256> byte_ids_{};  // kNoId for a missing byte character
  std::vector<uint8_t> missing_bytes_;
  TokenId unk_id_ = kNoId;  // set when bytes are missing and there is an unk_token
  PairMap merges_;
  size_t merge_count_ = 0;
  bool ignore_merges_ = false;
  bool fuse_unk_ = false;
  std::unique_ptr<WordCache> cache_;  // mutable through the pointer; thread-safe
};

}  // namespace align
