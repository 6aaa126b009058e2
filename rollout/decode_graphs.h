// Persistent decode steps: one set of step buffers per bucket (rollout/decode_buckets.h), and on
// CUDA the decode step captured as a CUDA graph per bucket and replayed (EngineOptions::
// cuda_graphs). Eager prefill and every step these do not serve run as before
// (rollout/paged_step.h).
//
// A decode step of B rows is copied into the buffers of the smallest bucket >= B, filled with
// padding rows after them that touch nothing a real row reads:
//   token 0, position 0, slot -1   rope_kv_write writes nothing for a negative slot;
//   context length 1               the row attends to one key of a page its (stale or zero)
//                                  block-table row names, always a page of the cache;
//   logits                         computed and dropped.
// The buffers keep their addresses for the engine's life, which is what a graph replays. A
// captured graph also fixes the attention's key splits: it is captured for the block tables'
// full width (the model's max_position_embeddings, or the whole cache when that is smaller), and
// a row's splits past its context do no work.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>

#include "model/phi3_model.h"
#include "rollout/paged_kv_cache.h"
#include "rollout/paged_step.h"

namespace align {

class DecodeGraphs {
 public:
  // `model` and `cache` outlive this. capture: record and replay CUDA graphs (a CUDA model in a
  // build with the CUDA kernels; throws InputError otherwise); else the buffers are run eagerly.
  DecodeGraphs(const Phi3Model& model, PagedKvCache& cache, bool capture);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // Whether `step` (from plan_paged_step) runs here: never for a model whose head dim has no
  // compiled CUDA decode kernel when capture was asked for; else only decode rows that read their
  // pages in place (none gathered or prefilled), not in the shared-prefix form, every row with
  // logits, at most the largest bucket's rows, every context within the block tables' width.
  bool serves(const PagedStep& step) const;

  // Logits [B, V] fp32 of the step's B rows (as run_paged_step returns them): the step copied into
  // its bucket's buffers, then the bucket's graph replayed (captured at the bucket's first step)
  // or, without capture, the layers run over the buffers.
  torch::Tensor run(const PagedStep& step);

  int64_t graphs_captured() const { return captured_; }
  int64_t width_pages() const { return width_pages_; }

 private:
  struct Bucket;
  Bucket& bucket_for(int64_t rows);

  const Phi3Model& model_;
  PagedKvCache& cache_;
  bool capture_;
  bool eager_only_ = false;  // capture asked for a model it cannot capture: serve nothing
  int64_t width_pages_;      // block-table columns of every bucket
  int64_t captured_ = 0;
  std::map<int64_t, std::unique_ptr<Bucket>> buckets_;
};

}  // namespace align
