// One paged_forward call in two parts, so the engine can tell host work from model compute:
//   plan_paged_step   host work: appends each row's tokens to its sequence (pages, copy-on-write),
//                     builds token ids, positions, slots, the rows' attention metadata (gathered
//                     slots, or block tables and shared prefixes for rows that read the pages in
//                     place) and moves them to the device;
//   run_paged_step    the model's decoder layers over the cache, logits at each row's last new
//                     token.
// paged_forward (rollout/paged_forward.h) is the two in a row.
#pragma once

#include <torch/types.h>

#include <vector>

#include "model/phi3_model.h"
#include "rollout/paged_forward.h"
#include "rollout/paged_forward_attention.h"
#include "rollout/paged_kv_cache.h"

namespace align {

struct PagedStep {
  int64_t num_tokens = 0;   // N, the new tokens of all rows
  torch::Tensor tokens;     // [N] int64
  torch::Tensor positions;  // [1, N] int64
  torch::Tensor long_mask;  // [1, N] bool (longrope models), else undefined
  torch::Tensor slots;      // [N] int64 flat cache slots of the new tokens
  torch::Tensor logits_at;  // [rows with logits] int64, undefined when none
  // Every row is in exactly one of the three (rollout/paged_forward_attention.h):
  std::vector<PagedAttentionRow> gathered;  // rows attended by paged_attention_reference
  PagedDecodeBatch decode;                  // decode rows that read the pages in place
  PagedPrefillBatch prefill;                // prefill rows that read the pages in place
};

// Checks the rows (InputError as paged_forward documents) and appends their tokens.
// shared_prefix_on_cuda: decode forks of one prompt on a CUDA cache take the shared-prefix form
// (EngineOptions::cascade_decode; CPU caches always may).
PagedStep plan_paged_step(const Phi3Model& model, PagedKvCache& cache,
                          const std::vector<PagedRow>& rows, bool shared_prefix_on_cuda = false);

// Logits [rows with logits, V] fp32 (undefined when none). No gradients are kept.
torch::Tensor run_paged_step(const Phi3Model& model, PagedKvCache& cache, const PagedStep& step);

}  // namespace align
