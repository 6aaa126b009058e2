// Token sampling, the op layer over kernels/sampling.cu (for the rollout engine): temperature,
// top-k, top-p and min-p over a batch of logits, one parameter set per row, with a counter-based
// RNG so every draw is reproducible from the request's seed and position alone, whatever else
// shares the batch.
//
// Semantics, per row b with logits x [V] and u = counter_uniform(params[b].seed, steps[b]):
//   temperature == 0:  token = argmax x (the first index among equal maxima); u is not used.
//   otherwise, with w_i = exp((x_i - max x) / temperature)   (the tempered distribution,
//   unnormalised)
//     top-k  (0 < k < V): keep x_i >= the k-th largest logit (counted with multiplicity; every
//                         token tied with it is kept, as Hugging Face's TopKLogitsWarper does).
//     top-p  (p < 1):     on the top-k survivors renormalised, keep token i when the mass of tokens
//                         with strictly larger logits is < p: the smallest prefix (descending)
//                         whose mass reaches p, widened to include tokens tied with its last one.
//     min-p  (m > 0):     keep w_i >= m (w_max = 1, so this is p_i >= m * p_max; the ratio does not
//                         change under the renormalisations above, so its place in the order is
//                         moot).
//   The order is Hugging Face's / vLLM's: temperature, then top-k, then top-p, then min-p.
//   The token is drawn by inverse CDF over the kept tokens in vocabulary-index order: the first i
//   whose cumulative kept weight exceeds u * (total kept weight).
//   logprob = log_softmax(x)[token] -- the UNMODIFIED model distribution (temperature 1, no
//   truncation), which is what policy-gradient and DPO losses need, not the sampling distribution.
//
// CPU vs CUDA: the CPU path (LibTorch, fp32 weights, fp64 cumulative sums) is the reference; the
// CUDA kernel (kernels/sampling.h) sums fixed-point weights. Given the same u both pick the
// same token, except when u * total or the top-p mass lands within rounding (~1e-7 relative) of a
// cumulative-weight boundary, or when exp differs by an ulp at a min-p threshold. Exact ties in the
// logits are handled identically by both (thresholds keep all tied tokens; argmax takes the first).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace align {

struct SamplingParams {      // per request
  double temperature = 1.0;  // 0 = greedy (argmax; also any value that rounds to 0 in fp32)
  int64_t top_k = 0;         // 0 = off (as is any k >= V)
  double top_p = 1.0;        // in (0, 1]; 1 = off
  double min_p = 0.0;        // in [0, 1]; 0 = off (keep p >= min_p * p_max, after temperature)
  uint64_t seed = 0;
};

struct SampleResult {
  torch::Tensor tokens;    // [B] int64, on the logits' device
  torch::Tensor logprobs;  // [B] fp32, log_softmax(logits)[token] of the unmodified distribution
};

// logits: [B, V] floating point (fp32 is what the kernel reads; other dtypes are converted), any
// device, each row with a finite maximum; params: [B]; steps: [B], how many tokens row b has
// generated so far (the RNG counter). On CUDA (with kernels built) one kernel runs on the current
// stream without a host synchronisation; elsewhere the LibTorch reference runs on the CPU.
// Throws align::Error on bad shapes or parameters.
SampleResult sample(const torch::Tensor& logits, const std::vector<SamplingParams>& params,
                    const std::vector<int64_t>& steps);

// The reference implementation behind sample(), always on the CPU (results on the logits' device).
SampleResult sample_reference(const torch::Tensor& logits,
                              const std::vector<SamplingParams>& params,
                              const std::vector<int64_t>& steps);

// log_softmax(logits)[b, tokens[b]] in fp32: logits [B, V] floating point, tokens [B] int64 in
// [0, V), same device. Returns [B] fp32 on that device (a CUDA kernel on CUDA when built).
torch::Tensor gather_logprobs(const torch::Tensor& logits, const torch::Tensor& tokens);

// The LibTorch reference of gather_logprobs, computed in fp32 on the tensors' device.
torch::Tensor gather_logprobs_reference(const torch::Tensor& logits, const torch::Tensor& tokens);

// The kernels behind sample() and gather_logprobs() (throw without a GPU build):
// logits: [B, V] fp32 on CUDA, last dim contiguous (rows may be strided); params and steps: [B],
// already validated by sample(). The parameters travel through pinned memory with an asynchronous
// copy; tokens [B] int64 and logprobs [B] fp32 stay on the device.
SampleResult sample_cuda(const torch::Tensor& logits, const std::vector<SamplingParams>& params,
                         const std::vector<int64_t>& steps);

// logits: [B, V] fp32 on CUDA, last dim contiguous; tokens: [B] int64 on the same device. Returns
// [B] fp32 log_softmax(logits)[b, tokens[b]] (NaN where a token is out of range).
torch::Tensor gather_logprobs_cuda(const torch::Tensor& logits, const torch::Tensor& tokens);

}  // namespace align
