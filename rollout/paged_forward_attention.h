// Attention over a PagedKvCache for one packed step of paged_forward (rollout/paged_forward.h):
// the rows' queries [N, H, D] (rotated; their keys and values already written at their slots)
// attend to their whole sequences, causal, with the sliding window when the config has one. Two
// paths, chosen per row when the step is planned:
//   decode rows (one new token) when decode_reads_pages(): the paged_decode_attention op
//     (kernels/paged_attention_op.h) reads K/V in place from the pages: its CUDA kernel on a CUDA
//     cache in fp32/bf16 in a build with the kernels (head dims without a compiled kernel take the
//     op's own reference), its CPU kernel on an fp32 CPU cache. On the CPU, rows forked from one
//     prefix (samples of one prompt: the same leading page ids) take the shared-prefix form, which
//     reads those pages once for all of them. On CUDA only when asked for
//     (EngineOptions::cascade_decode): whether it pays there is unmeasured. The step's plan
//     carries the form's lengths and row metadata (SharedPrefixBatch::plan), so no layer copies
//     them back from the device.
//   prefill chunks on an fp32 CPU cache: the paged_prefill_attention op's CPU kernel (causal, K/V
//     read in place, a key tile loaded once for up to 64 query vectors: tokens x GQA heads);
//   every other row (prefill chunks elsewhere, and decode rows of other caches):
//   paged_attention_reference,
//     which gathers the row's keys and values through its slots and runs model/attention.h's
//     attention(). bf16 CPU caches keep it for decode too: it rounds scores and probabilities to
//     bf16 as transformers does, and greedy decoding follows it token for token; the kernel keeps
//     fp32.
// The CUDA path has not run on a GPU yet: tests/rollout/paged_forward_gpu_test.cc compares it with
// the CPU one when a GPU is present.
#pragma once

#include <torch/types.h>

#include <optional>
#include <vector>

#include "kernels/paged_attention_op.h"
#include "rollout/paged_kv_cache.h"

namespace align {

// One row attended by the reference: queries [offset, offset + count) of the packed batch are the
// tokens at positions [start, start + count) of a sequence whose keys (all start + count of them,
// already written) lie at `slots`.
struct PagedAttentionRow {
  int64_t offset = 0;
  int64_t count = 0;
  int64_t start = 0;
  torch::Tensor slots;  // [start + count] int64 flat slots, on the cache's device
};

// q [N, H, D] (after RoPE); k_cache, v_cache [num_pages, page_size, Hkv, D] -> [N, H, D] in q's
// dtype, the rows' queries filled (any other row of the result is left uninitialised). Rows with a
// single query are batched together (keys gathered and right-padded, padding masked); longer rows
// run one at a time.
torch::Tensor paged_attention_reference(const torch::Tensor& q, const torch::Tensor& k_cache,
                                        const torch::Tensor& v_cache,
                                        const std::vector<PagedAttentionRow>& rows, double scale,
                                        int64_t sliding_window);

// Whether decode rows over this cache read its pages in place (see above).
bool decode_reads_pages(const PagedKvCache& cache);

// The decode rows of one step, as paged_decode_attention reads them. Built after the rows' tokens
// were appended to the cache, from the host's lengths (no device synchronisation).
struct PagedDecodeBatch {
  torch::Tensor offsets;        // [B] int64, each row's query in the packed [N, H, D] batch
  torch::Tensor block_tables;   // [B, max_pages] int32
  torch::Tensor context_lens;   // [B] int32, including the new token
  int64_t max_context_len = 0;  // max of context_lens, 0 when B == 0
  // Defined (CPU caches; CUDA ones with shared_prefix_on_cuda) when at least two rows share their
  // first full pages (the same page ids): rows grouped by those pages, each group's common full
  // pages as its prefix, the rest as each row's suffix; with its plan.
  std::optional<SharedPrefixBatch> shared;
};

// seqs [B]: the decode rows' sequences; offsets [B]: their queries in the packed batch.
PagedDecodeBatch paged_decode_batch(const PagedKvCache& cache, const std::vector<int64_t>& seqs,
                                    const std::vector<int64_t>& offsets,
                                    bool shared_prefix_on_cuda = false);

// Whether prefill rows (several new tokens) over this cache read its pages in place: the
// paged_prefill_attention op's CPU kernel, on an fp32 CPU cache (else the reference gathers them).
bool prefill_reads_pages(const PagedKvCache& cache);

// The prefill rows of one step, as paged_prefill_attention reads them (host lengths; built after
// the rows' tokens were appended).
struct PagedPrefillBatch {
  torch::Tensor index;         // [T] int64, the rows' queries in the packed batch, row after row
  torch::Tensor block_tables;  // [R, max_pages] int32
  std::vector<int64_t> starts, counts;  // [R] cached tokens before the row's, its new tokens
};

// seqs [R]: the prefill rows' sequences; offsets [R]: their first query in the packed batch;
// counts [R]: their new tokens (already appended).
PagedPrefillBatch paged_prefill_batch(const PagedKvCache& cache, const std::vector<int64_t>& seqs,
                                      const std::vector<int64_t>& offsets,
                                      const std::vector<int64_t>& counts);

// The attention of a whole step: q [N, H, D] -> [N, H, D], the `gathered` rows by
// paged_attention_reference, the `decode` rows by the paged_decode_attention op, the `prefill`
// rows by paged_prefill_attention (together they are every row of the step).
torch::Tensor paged_attention(const torch::Tensor& q, const torch::Tensor& k_cache,
                              const torch::Tensor& v_cache,
                              const std::vector<PagedAttentionRow>& gathered,
                              const PagedDecodeBatch& decode, const PagedPrefillBatch& prefill,
                              double scale, int64_t sliding_window);

}  // namespace align
