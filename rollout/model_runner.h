// The engine's model runner: runs one step's rows through the model over the paged cache
// (rollout/paged_step.h: the host plan, then the layers) and draws the sampled rows' tokens
// (kernels/sampling_op.h), timing the device work apart from the host's.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "model/phi3_model.h"
#include "rollout/paged_forward.h"
#include "rollout/paged_kv_cache.h"
#include "rollout/scheduler.h"

namespace align {

class ModelRunner {
 public:
  // `model` and `cache` outlive the runner.
  ModelRunner(const Phi3Model& model, PagedKvCache& cache) : model_(model), cache_(cache) {}

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

 private:
  const Phi3Model& model_;
  PagedKvCache& cache_;
  double compute_seconds_ = 0;
};

}  // namespace align
