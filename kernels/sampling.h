// Sampling kernels, Torch-free: raw pointers, one plain params struct per kernel and a stream.
// The semantics (temperature, top-k, top-p, min-p, inverse CDF in vocabulary order, logprob of the
// unmodified distribution) are documented in kernels/sampling_op.h; the LibTorch reference there is
// what these kernels are tested against.
//
// One block per row. Thresholds are found by radix select over the logits' order-preserving 32-bit
// keys (8 bits a pass): top-k counts elements, top-p sums weights. Weights are summed in 2^-40
// fixed point, so every sum is exact and order-free: the kernel is deterministic run to run.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace align::kernels {

// One row's sampling parameters, as uploaded to the device.
struct SamplingRow {
  float temperature = 1.f;  // 0 = greedy
  float top_p = 1.f;        // (0, 1]; >= 1 = off
  float min_p = 0.f;        // [0, 1]; <= 0 = off
  int32_t top_k = 0;        // <= 0 or >= vocab = off
  uint64_t seed = 0;
  uint64_t step = 0;  // the counter: u = counter_uniform(seed, step)
};

struct SampleParams {
  const float* logits = nullptr;  // [rows, vocab] fp32; rows logits_row_stride elements apart
  int64_t logits_row_stride = 0;
  const SamplingRow* row_params = nullptr;  // [rows], device memory
  int64_t* tokens = nullptr;                // [rows] out
  float* logprobs = nullptr;                // [rows] out: log_softmax(logits)[token]
  int64_t rows = 0;
  int64_t vocab = 0;
};

// Enqueues the sampling kernel on `stream`; returns the launch status.
cudaError_t launch_sample(const SampleParams& params, cudaStream_t stream);

struct GatherLogprobsParams {
  const float* logits = nullptr;  // [rows, vocab] fp32; rows logits_row_stride elements apart
  int64_t logits_row_stride = 0;
  const int64_t* tokens = nullptr;  // [rows], each in [0, vocab)
  float* logprobs = nullptr;        // [rows] out: log_softmax(logits)[row, tokens[row]]
  int64_t rows = 0;
  int64_t vocab = 0;
};

// Enqueues the log-softmax gather on `stream`; returns the launch status.
cudaError_t launch_gather_logprobs(const GatherLogprobsParams& params, cudaStream_t stream);

}  // namespace align::kernels
