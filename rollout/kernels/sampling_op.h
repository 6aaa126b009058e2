// The thin Torch layer over the sampling kernels (rollout/kernels/sampling.h): checks the tensors,
// uploads the per-row parameters and launches on the current stream, with no host synchronisation.
// Callers use align::sample / align::gather_logprobs (rollout/sampler.h), which dispatch here.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "rollout/sampler.h"

namespace align {

// True when this build carries the sampling kernels (nvcc was found at configure time).
bool sampling_kernels_built();

// logits: [B, V] fp32 on CUDA, last dim contiguous (rows may be strided); params and steps: [B],
// already validated by sample(). The parameters travel through pinned memory with an asynchronous
// copy; tokens [B] int64 and logprobs [B] fp32 stay on the device.
SampleResult sample_cuda(const torch::Tensor& logits, const std::vector<SamplingParams>& params,
                         const std::vector<int64_t>& steps);

// logits: [B, V] fp32 on CUDA, last dim contiguous; tokens: [B] int64 on the same device. Returns
// [B] fp32 log_softmax(logits)[b, tokens[b]] (NaN where a token is out of range).
torch::Tensor gather_logprobs_cuda(const torch::Tensor& logits, const torch::Tensor& tokens);

}  // namespace align
