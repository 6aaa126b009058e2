// A paged key/value cache: fixed-size pages shared by reference between sequences, so a prompt
// prefilled once can be forked into many samples (and a cached prefix into many prompts).
//
// Layout (shared with the CUDA kernels; do not change):
//   per layer k[l], v[l]: [num_pages, page_size, Hkv, D] model dtype, keys after RoPE;
//   per sequence a block table (page ids) and a length; token t of a sequence lives at slot
//   page_table[t / page_size] * page_size + t % page_size of the flattened [num_pages * page_size,
//   Hkv, D] view.
// Longrope models (Phi-4-mini) rotate keys with the short or the long factors (model/rope.h); a
// sequence's keys all share one set, chosen when it is created (docs/longrope.md), and its forks
// inherit it.
// Pages are ref-counted: fork() shares every page of its parent; append() copies a shared,
// partially filled last page before writing into it (copy-on-write), so no sequence ever sees
// another's new tokens. release() drops a sequence; pages nobody references return to the free
// list. The page budget is fixed at construction; append() throws when it is exhausted (the engine
// reserves pages before it admits work, so that never happens there).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/config.h"

namespace align {

class PagedKvCache {
 public:
  PagedKvCache(const ModelConfig& config, int64_t num_pages, int64_t page_size,
               torch::ScalarType dtype, torch::Device device);

  // --- Sequences (ids are never reused).
  // An empty sequence; `long_rope`: its keys will be rotated with the longrope long factors
  // (Error unless the config is longrope).
  int64_t create(bool long_rope = false);
  int64_t fork(int64_t seq);  // a new sequence sharing all of `seq`'s pages and its length
  void release(int64_t seq);  // forgets `seq`; unreferenced pages become free
  void truncate(int64_t seq, int64_t length);  // keeps the first `length` tokens (<= length())
  // Grows the sequence by n tokens (slots [length, length + n) become its own, to be written by
  // the caller): copies a shared partial last page, then allocates new pages. Throws Error when
  // fewer than pages_to_append(seq, n) pages are free (and changes nothing).
  void append(int64_t seq, int64_t n);
  // Pages append(seq, n) would take from the free list (copy-on-write included).
  int64_t pages_to_append(int64_t seq, int64_t n) const;
  // Pages the appends (seq, n), done in order, take in all: exact, where summing the single
  // counts would copy a partial page shared only by these sequences once too often.
  int64_t pages_to_append(const std::vector<std::pair<int64_t, int64_t>>& appends) const;

  int64_t length(int64_t seq) const;
  bool long_rope(int64_t seq) const;
  const std::vector<int64_t>& page_table(int64_t seq) const;
  // Pages this sequence took from the free list since it was created or forked.
  int64_t allocated(int64_t seq) const;
  // Flat slot of token t (< length) of `seq`.
  int64_t slot(int64_t seq, int64_t t) const;
  bool contains(int64_t seq) const { return seqs_.count(seq) != 0; }

  // [B, max pages] int32 block tables (padded with 0) and [B] int32 lengths of `seqs`, on the
  // cache's device: the kernels' view of a batch.
  torch::Tensor block_tables(const std::vector<int64_t>& seqs) const;
  torch::Tensor lengths(const std::vector<int64_t>& seqs) const;

  // --- Pages.
  int64_t num_pages() const { return num_pages_; }
  int64_t page_size() const { return page_size_; }
  int64_t free_pages() const { return static_cast<int64_t>(free_.size()); }
  int64_t used_pages() const { return num_pages_ - free_pages(); }
  int64_t ref_count(int64_t page) const { return refs_.at(static_cast<size_t>(page)); }
  int64_t num_sequences() const { return static_cast<int64_t>(seqs_.size()); }
  // Pages needed to hold n tokens.
  int64_t pages_for(int64_t n) const { return (n + page_size_ - 1) / page_size_; }

  std::vector<torch::Tensor> k;  // per layer [num_pages, page_size, Hkv, D] model dtype
  std::vector<torch::Tensor> v;  // per layer [num_pages, page_size, Hkv, D] model dtype

 private:
  struct Sequence {
    std::vector<int64_t> pages;
    int64_t length = 0;
    int64_t allocated = 0;
    bool long_rope = false;
  };
  Sequence& get(int64_t seq);
  const Sequence& get(int64_t seq) const;
  int64_t take_page();
  void drop_page(int64_t page);

  bool longrope_;  // the config's rope_type is longrope
  int64_t num_pages_;
  int64_t page_size_;
  std::vector<int64_t> refs_;  // [num_pages]
  std::vector<int64_t> free_;  // stack; the back is taken next
  std::unordered_map<int64_t, Sequence> seqs_;
  int64_t next_id_ = 0;
};

}  // namespace align
