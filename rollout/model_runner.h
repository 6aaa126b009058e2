// The engine's model runner: runs one step's rows through the model over the paged cache
// (rollout/paged_step.h: the host plan, then the layers) and draws the sampled rows' tokens
// (kernels/sampling_op.h), timing the device work apart from the host's. With decode buckets on,
// decode steps run on persistent per-bucket buffers, replayed as captured CUDA graphs with
// cuda_graphs (rollout/decode_graphs.h); prefill and mixed steps stay eager.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "model/phi3_model.h"
#include "rollout/decode_graphs.h"
#include "rollout/paged_forward.h"
#include "rollout/paged_kv_cache.h"
#include "rollout/scheduler.h"

namespace align {

class ModelRunner {
 public:
  struct Options {
    bool decode_buckets = false;  // decode steps on persistent per-bucket buffers
    bool cuda_graphs = false;     // ... captured and replayed as CUDA graphs (implies buckets)
    bool cascade_decode = false;  // CUDA: forks of one prompt decode in the shared-prefix form
  };
  // `model` and `cache` outlive the runner. Throws InputError for cuda_graphs without a CUDA
  // model in a build with the CUDA kernels.
  ModelRunner(const Phi3Model& model, PagedKvCache& cache, Options options);

  // Appends the rows' tokens to their sequences and runs the model: logits [rows with logits, V]
  // fp32 in row order (undefined when none).
  torch::Tensor run(const std::vector<PagedRow>& rows);

  struct Draws {
    std::vector<int64_t> tokens;  // [sampled rows]
    std::vector<float> logprobs;
  };
  // Draws each of `rows` from its row of `logits`.
  Draws sample(const torch::Tensor& logits, const SampleRows& rows);

  // Seconds spent in the model's layers and the sampler so far (on CUDA the layers as enqueued;
  // the sampler's copy of the tokens to the host waits for the device).
  double compute_seconds() const { return compute_seconds_; }
  // Decode steps run on the bucket buffers, and CUDA graphs captured, so far.
  int64_t bucketed_steps() const { return bucketed_steps_; }
  int64_t graphs_captured() const { return graphs_ ? graphs_->graphs_captured() : 0; }

 private:
  const Phi3Model& model_;
  PagedKvCache& cache_;
  std::unique_ptr<DecodeGraphs> graphs_;  // null without decode buckets
  bool cascade_decode_ = false;
  double compute_seconds_ = 0;
  int64_t bucketed_steps_ = 0;
};

}  // namespace align
