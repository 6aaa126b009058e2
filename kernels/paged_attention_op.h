// Attention over the paged KV cache: decode (one new token per row), plain and shared-prefix,
// and prefill chunks.
// The numerics are model/attention.cc's: scores (q k^T) * scale, softmax in fp32, probs v; query
// head j reads KV head j / (H / Hkv). The *_reference functions are plain LibTorch (any device);
// the undecorated functions run the CUDA kernels (paged_attention.cu) for CUDA tensors when this
// build has them and the head dim is compiled (64, 80, 96, 128), their CPU twins
// (paged_attention_cpu.h: K/V read in place from the pages, no gather) for CPU tensors without
// gradients (head dims up to 256), and the reference otherwise.
//
// Paged layout, shared with the engine and the KV-write kernel:
//   k_cache, v_cache [num_pages, page_size, Hkv, D] model dtype (fp32 or bf16), contiguous;
//   token at position i of row b lives in page block_tables[b, i / page_size], slot
//   i % page_size.
#pragma once

#include <torch/types.h>

#include <optional>
#include <vector>

#include <cstdint>
#include <vector>

namespace align {

// Plain decode.
//   q            [B, H, D] model dtype, one query per row (D contiguous);
//   block_tables [B, max_pages] int32, page ids of row b in order (entries past the row's pages
//                are ignored);
//   context_lens [B] int32, tokens of row b in the cache including the current one (>= 1); the
//                query sits at position context_lens[b] - 1;
//   max_context_len  the largest context_lens[b], from the caller's host copy (the engine knows
//                every row's length): the CUDA path sizes its key splits by it without copying
//                context_lens back to the host, so it trusts the lengths (each in
//                [1, max_context_len]); the reference copies them and checks;
//   sliding_window > 0 masks keys with pos_q - pos_k >= sliding_window (0: no window).
// Returns [B, H, D] in q's dtype. Throws align::Error on bad shapes, dtypes or lengths.
torch::Tensor paged_decode_attention(const torch::Tensor& q, const torch::Tensor& k_cache,
                                     const torch::Tensor& v_cache,
                                     const torch::Tensor& block_tables,
                                     const torch::Tensor& context_lens, int64_t max_context_len,
                                     double scale, int64_t sliding_window = 0);
torch::Tensor paged_decode_attention_reference(const torch::Tensor& q, const torch::Tensor& k_cache,
                                               const torch::Tensor& v_cache,
                                               const torch::Tensor& block_tables,
                                               const torch::Tensor& context_lens, double scale,
                                               int64_t sliding_window = 0);

// Prefill chunks: R rows, row r with counts[r] >= 1 new tokens at positions
// [starts[r], starts[r] + counts[r]) whose keys and values are already in the cache (pages
// block_tables[r]); their queries are q's rows packed back to back (row r's first at the sum of
// the earlier counts). Query t of row r attends to the keys at positions <= starts[r] + t
// (causal), within the sliding window. The CPU twin serves CPU tensors without gradients (the
// keys read in place, each tile once for up to 64 query vectors: a GQA group of H / Hkv heads of 64
// / (H / Hkv) tokens); CUDA and the rest run the reference (pages gathered, model/attention.cc's
// numerics per row). Returns [N, H, D] in q's dtype.
torch::Tensor paged_prefill_attention(const torch::Tensor& q, const torch::Tensor& k_cache,
                                      const torch::Tensor& v_cache,
                                      const torch::Tensor& block_tables,
                                      const std::vector<int64_t>& starts,
                                      const std::vector<int64_t>& counts, double scale,
                                      int64_t sliding_window = 0);
torch::Tensor paged_prefill_attention_reference(
    const torch::Tensor& q, const torch::Tensor& k_cache, const torch::Tensor& v_cache,
    const torch::Tensor& block_tables, const std::vector<int64_t>& starts,
    const std::vector<int64_t>& counts, double scale, int64_t sliding_window = 0);

// Shared prefix ("cascade"): G groups of rows, the rows of group g forked from one prefix whose
// pages they share. Row b's context is the prefix of its group followed by its own suffix:
//   positions [0, P_g)          : group_prefix_pages[g, i / page_size], slot i % page_size;
//   positions [P_g, P_g + S_b)  : suffix_block_tables[b, (i - P_g) / page_size],
//                                 slot (i - P_g) % page_size
// (the suffix starts at slot 0 of its first page, so P_g need not be a multiple of page_size; the
// engine puts a partly filled last prefix page, copied per row, into the suffix). The query sits
// at position P_g + S_b - 1. The prefix's attention partials (output normalised over the prefix
// keys, and their log-sum-exp) are computed once per group for all its rows' queries, reading the
// prefix K/V once; each row's suffix partials are merged with them by log-sum-exp. When P_g is a
// multiple of page_size this equals paged_decode_attention with block_tables = prefix pages ++
// suffix pages and context_lens = P_g + S_b.
struct SharedPrefixBatch {
  torch::Tensor group_of_row;         // [B] int32 in [0, G)
  torch::Tensor group_prefix_pages;   // [G, max_prefix_pages] int32
  torch::Tensor group_prefix_lens;    // [G] int32, P_g >= 0
  torch::Tensor suffix_block_tables;  // [B, max_suffix_pages] int32
  torch::Tensor suffix_lens;          // [B] int32, S_b >= 0, P_g + S_b >= 1

  // What the kernels read besides the tensors above: the lengths as the host has them and the
  // rows' metadata, on the device. Optional: the engine's planner fills it once per step
  // (shared_prefix_plan), from the host lengths it built the tensors from; without it the op
  // copies the lengths to the host and builds the metadata on every call (on CUDA a device sync
  // per layer). A plan must describe the tensors it sits beside: the op does not check that.
  struct Plan {
    std::vector<int64_t> group_of_row, prefix_lens, suffix_lens;  // host copies
    torch::Tensor group_offsets;   // [G + 1] int32: group g's rows are group_rows[offsets[g]..)
    torch::Tensor group_rows;      // [B] int32, rows ordered by group
    torch::Tensor key_pos_offset;  // [B] int32, P of the row's group (its suffix's first position)
    torch::Tensor row_offsets;     // [B + 1] int32, 0..B
    torch::Tensor rows;            // [B] int32, 0..B-1
    torch::Tensor query_pos;       // [B] int32, P_g + S_b - 1
    int64_t max_group_rows = 0, max_prefix_len = 0, max_suffix_len = 0;
  };
  std::optional<Plan> plan;
};

// The plan of a shared-prefix batch from its host lengths (group_of_row [B], prefix_lens [G],
// suffix_lens [B]), its tensors on `device`. Throws align::Error on a row out of [0, G), a
// negative length or a row without keys.
SharedPrefixBatch::Plan shared_prefix_plan(std::vector<int64_t> group_of_row,
                                           std::vector<int64_t> prefix_lens,
                                           std::vector<int64_t> suffix_lens,
                                           const torch::Device& device);

torch::Tensor paged_decode_attention_shared_prefix(const torch::Tensor& q,
                                                   const torch::Tensor& k_cache,
                                                   const torch::Tensor& v_cache,
                                                   const SharedPrefixBatch& batch, double scale,
                                                   int64_t sliding_window = 0);
torch::Tensor paged_decode_attention_shared_prefix_reference(
    const torch::Tensor& q, const torch::Tensor& k_cache, const torch::Tensor& v_cache,
    const SharedPrefixBatch& batch, double scale, int64_t sliding_window = 0);

}  // namespace align
