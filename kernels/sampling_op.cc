#include "kernels/sampling_op.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "common/error.h"
#include "kernels/counter_rng.h"
#include "kernels/kernel_support.h"

#ifdef ALIGN_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "kernels/sampling.h"
#endif

namespace align {
namespace {

void check_sample_inputs(const torch::Tensor& logits, const std::vector<SamplingParams>& params,
                         const std::vector<int64_t>& steps) {
  if (logits.dim() != 2 || !logits.is_floating_point() || logits.size(1) < 1) {
    throw Error("sample: logits must be [B, V] floating point with V >= 1, got " +
                logits.toString() + " of shape " + c10::str(logits.sizes()));
  }
  const auto rows = static_cast<size_t>(logits.size(0));
  if (params.size() != rows || steps.size() != rows) {
    throw Error("sample: logits have " + std::to_string(rows) + " rows but params has " +
                std::to_string(params.size()) + " entries and steps " +
                std::to_string(steps.size()) + " (expected one per row)");
  }
  for (size_t b = 0; b < rows; ++b) {
    const SamplingParams& p = params[b];
    const std::string where = "sample: params[" + std::to_string(b) + "].";
    if (!std::isfinite(p.temperature) || p.temperature < 0) {
      throw Error(where + "temperature = " + std::to_string(p.temperature) +
                  ", expected >= 0 (0 = greedy)");
    }
    if (p.top_k < 0) {
      throw Error(where + "top_k = " + std::to_string(p.top_k) + ", expected >= 0 (0 = off)");
    }
    if (!(p.top_p > 0 && p.top_p <= 1)) {
      throw Error(where + "top_p = " + std::to_string(p.top_p) + ", expected in (0, 1] (1 = off)");
    }
    if (!(p.min_p >= 0 && p.min_p <= 1)) {
      throw Error(where + "min_p = " + std::to_string(p.min_p) + ", expected in [0, 1] (0 = off)");
    }
    if (steps[b] < 0) {
      throw Error("sample: steps[" + std::to_string(b) + "] = " + std::to_string(steps[b]) +
                  ", expected >= 0");
    }
  }
}

// A [B, 1] CPU column from per-row values.
template <typename T>
torch::Tensor column(std::vector<T> values, torch::ScalarType dtype) {
  const auto rows = static_cast<int64_t>(values.size());
  return torch::from_blob(values.data(), {rows, 1}, torch::TensorOptions().dtype(dtype)).clone();
}

SampleResult sample_reference_checked(const torch::Tensor& logits,
                                      const std::vector<SamplingParams>& params,
                                      const std::vector<int64_t>& steps) {
  const torch::Tensor x = logits.detach().to(torch::kCPU, torch::kFloat32).contiguous();  // [B, V]
  const int64_t rows = x.size(0), vocab = x.size(1);
  const float inf = std::numeric_limits<float>::infinity();

  std::vector<float> temperature, top_p, min_p;
  std::vector<double> u;
  std::vector<int64_t> kth_index;
  std::vector<uint8_t> greedy, top_k_on, top_p_on;
  for (int64_t b = 0; b < rows; ++b) {
    const SamplingParams& p = params[static_cast<size_t>(b)];
    // Greedy when the fp32 temperature the kernel sees is 0 (including positive underflows).
    const float tf = static_cast<float>(p.temperature);
    greedy.push_back(tf == 0);
    temperature.push_back(tf > 0 ? tf : 1.f);
    top_k_on.push_back(p.top_k > 0 && p.top_k < vocab);
    kth_index.push_back(top_k_on.back() ? p.top_k - 1 : 0);
    top_p_on.push_back(p.top_p < 1);
    top_p.push_back(static_cast<float>(p.top_p));
    min_p.push_back(static_cast<float>(p.min_p));
    u.push_back(counter_uniform(p.seed, static_cast<uint64_t>(steps[static_cast<size_t>(b)])));
  }
  const torch::Tensor t = column(temperature, torch::kFloat32);  // [B, 1]

  // The tempered, unnormalised weights w = exp((x - max) / T) in (0, 1].
  const torch::Tensor row_max = std::get<0>(x.max(1, /*keepdim=*/true));  // [B, 1]
  const torch::Tensor w = ((x - row_max) / t).exp();                      // [B, V] fp32
  torch::Tensor keep = torch::ones_like(x, torch::kBool);
  const bool any_top_k = std::count(top_k_on.begin(), top_k_on.end(), 1) > 0;
  const bool any_top_p = std::count(top_p_on.begin(), top_p_on.end(), 1) > 0;
  if (any_top_k || any_top_p) {  // the sort is most of the sampler's time: only when used
    const torch::Tensor sorted = std::get<0>(x.sort(1, /*descending=*/true));  // [B, V]

    // top-k: keep logits >= the k-th largest (ties with it kept).
    torch::Tensor kth = sorted.gather(1, column(kth_index, torch::kInt64));
    kth = torch::where(column(top_k_on, torch::kBool), kth, torch::full_like(kth, -inf));
    keep = x >= kth;

    // top-p on the top-k survivors: the last sorted position whose exclusive prefix mass is below
    // top_p * (their total) sets the threshold; tokens tied with it are kept too.
    const torch::Tensor sorted_w =
        ((sorted - row_max) / t).exp().to(torch::kFloat64) * (sorted >= kth).to(torch::kFloat64);
    const torch::Tensor prefix = sorted_w.cumsum(1);
    const torch::Tensor exclusive =
        torch::cat({torch::zeros({rows, 1}, prefix.options()), prefix.narrow(1, 0, vocab - 1)}, 1);
    const torch::Tensor mass = prefix.narrow(1, vocab - 1, 1);  // [B, 1]
    const torch::Tensor target_mass = column(top_p, torch::kFloat32).to(torch::kFloat64) * mass;
    const torch::Tensor last =
        ((exclusive < target_mass).sum(1, /*keepdim=*/true) - 1).clamp_min(0);
    torch::Tensor top_p_floor = sorted.gather(1, last);
    top_p_floor = torch::where(column(top_p_on, torch::kBool), top_p_floor,
                               torch::full_like(top_p_floor, -inf));
    keep = keep & (x >= top_p_floor);
  }

  // min-p: w = p / p_max after temperature.
  keep = keep & (w >= column(min_p, torch::kFloat32));

  // Inverse CDF over the kept weights in vocabulary order: the first token whose cumulative
  // weight exceeds u * total.
  const torch::Tensor kept = torch::where(keep, w, torch::zeros_like(w)).to(torch::kFloat64);
  const torch::Tensor cdf = kept.cumsum(1);
  const torch::Tensor target = column(u, torch::kFloat64) * cdf.narrow(1, vocab - 1, 1);
  torch::Tensor tokens =
      torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true).squeeze(1);
  // u * total can round up to the total: take the last kept token then.
  const torch::Tensor last_kept = (vocab - 1) - (kept > 0).flip({1}).to(torch::kInt32).argmax(1);
  tokens = torch::where(tokens >= vocab, last_kept, tokens);
  tokens = torch::where(column(greedy, torch::kBool).squeeze(1), x.argmax(1), tokens);

  const torch::Tensor logprobs = torch::log_softmax(x, 1).gather(1, tokens.unsqueeze(1)).squeeze(1);
  return {tokens.to(logits.device()), logprobs.to(logits.device())};
}

void check_gather_inputs(const torch::Tensor& logits, const torch::Tensor& tokens) {
  if (logits.dim() != 2 || !logits.is_floating_point()) {
    throw Error("gather_logprobs: logits must be [B, V] floating point, got shape " +
                c10::str(logits.sizes()));
  }
  if (tokens.dim() != 1 || tokens.size(0) != logits.size(0) ||
      tokens.scalar_type() != torch::kInt64 || tokens.device() != logits.device()) {
    throw Error("gather_logprobs: tokens must be [" + std::to_string(logits.size(0)) +
                "] int64 on the logits' device, got " + tokens.toString() + " of shape " +
                c10::str(tokens.sizes()));
  }
  if (!tokens.is_cuda() && tokens.numel() > 0) {
    const int64_t lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
    if (lo < 0 || hi >= logits.size(1)) {
      throw Error("gather_logprobs: tokens must lie in [0, " + std::to_string(logits.size(1)) +
                  "), got values in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
  }
}

}  // namespace

SampleResult sample(const torch::Tensor& logits, const std::vector<SamplingParams>& params,
                    const std::vector<int64_t>& steps) {
  check_sample_inputs(logits, params, steps);
  if (logits.is_cuda() && cuda_kernels_built()) {
    return sample_cuda(logits.to(torch::kFloat32), params, steps);
  }
  return sample_reference_checked(logits, params, steps);
}

SampleResult sample_reference(const torch::Tensor& logits,
                              const std::vector<SamplingParams>& params,
                              const std::vector<int64_t>& steps) {
  check_sample_inputs(logits, params, steps);
  return sample_reference_checked(logits, params, steps);
}

torch::Tensor gather_logprobs(const torch::Tensor& logits, const torch::Tensor& tokens) {
  check_gather_inputs(logits, tokens);
  if (logits.is_cuda() && cuda_kernels_built()) {
    return gather_logprobs_cuda(logits.to(torch::kFloat32), tokens);
  }
  return gather_logprobs_reference(logits, tokens);
}

torch::Tensor gather_logprobs_reference(const torch::Tensor& logits, const torch::Tensor& tokens) {
  check_gather_inputs(logits, tokens);
  return torch::log_softmax(logits.to(torch::kFloat32), 1)
      .gather(1, tokens.unsqueeze(1))
      .squeeze(1);
}

#ifdef ALIGN_WITH_CUDA
namespace {

// [B, V] fp32 on CUDA with contiguous columns (a copy only when the columns are strided).
torch::Tensor checked_logits(const torch::Tensor& logits, const char* who) {
  if (!logits.is_cuda() || logits.dim() != 2 || logits.scalar_type() != torch::kFloat32) {
    throw Error(std::string(who) + ": logits must be a [B, V] fp32 CUDA tensor, got " +
                logits.toString() + " of dim " + std::to_string(logits.dim()));
  }
  return logits.stride(1) == 1 ? logits : logits.contiguous();
}

void check_launch(cudaError_t status, const char* who) {
  if (status != cudaSuccess) {
    throw Error(std::string(who) + ": launch failed: " + cudaGetErrorString(status));
  }
}

}  // namespace

SampleResult sample_cuda(const torch::Tensor& logits, const std::vector<SamplingParams>& params,
                         const std::vector<int64_t>& steps) {
  const torch::Tensor x = checked_logits(logits, "sample_cuda");
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t rows = x.size(0);
  if (static_cast<int64_t>(params.size()) != rows || static_cast<int64_t>(steps.size()) != rows) {
    throw Error("sample_cuda: params and steps must have one entry per logits row");
  }
  // Pinned staging buffer: the caching host allocator keeps it alive until the copy has run.
  const int64_t bytes = rows * static_cast<int64_t>(sizeof(kernels::SamplingRow));
  torch::Tensor staging =
      torch::empty({bytes}, torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true));
  std::vector<kernels::SamplingRow> host(static_cast<size_t>(rows));
  for (int64_t b = 0; b < rows; ++b) {
    const SamplingParams& sp = params[static_cast<size_t>(b)];
    kernels::SamplingRow& r = host[static_cast<size_t>(b)];
    r.temperature = static_cast<float>(sp.temperature);
    r.top_p = static_cast<float>(sp.top_p);
    r.min_p = static_cast<float>(sp.min_p);
    r.top_k = static_cast<int32_t>(std::min<int64_t>(sp.top_k, x.size(1)));
    r.seed = sp.seed;
    r.step = static_cast<uint64_t>(steps[static_cast<size_t>(b)]);
  }
  if (bytes > 0) std::memcpy(staging.data_ptr(), host.data(), static_cast<size_t>(bytes));
  const torch::Tensor device_rows =
      staging.to(torch::TensorOptions().device(x.device()), /*non_blocking=*/true);

  SampleResult result;
  result.tokens = torch::empty({rows}, x.options().dtype(torch::kInt64));
  result.logprobs = torch::empty({rows}, x.options());
  kernels::SampleParams p;
  p.logits = x.data_ptr<float>();
  p.logits_row_stride = x.stride(0);
  p.row_params = reinterpret_cast<const kernels::SamplingRow*>(device_rows.data_ptr());
  p.tokens = result.tokens.data_ptr<int64_t>();
  p.logprobs = result.logprobs.data_ptr<float>();
  p.rows = rows;
  p.vocab = x.size(1);
  check_launch(kernels::launch_sample(p, c10::cuda::getCurrentCUDAStream(x.get_device()).stream()),
               "sample_cuda");
  return result;
}

torch::Tensor gather_logprobs_cuda(const torch::Tensor& logits, const torch::Tensor& tokens) {
  const torch::Tensor x = checked_logits(logits, "gather_logprobs_cuda");
  const c10::cuda::CUDAGuard guard(x.device());
  if (tokens.device() != x.device() || tokens.dim() != 1 || tokens.size(0) != x.size(0) ||
      tokens.scalar_type() != torch::kInt64) {
    throw Error("gather_logprobs_cuda: tokens must be [" + std::to_string(x.size(0)) +
                "] int64 on the logits' device, got " + tokens.toString());
  }
  const torch::Tensor t = tokens.contiguous();
  torch::Tensor out = torch::empty({x.size(0)}, x.options());
  kernels::GatherLogprobsParams p;
  p.logits = x.data_ptr<float>();
  p.logits_row_stride = x.stride(0);
  p.tokens = t.data_ptr<int64_t>();
  p.logprobs = out.data_ptr<float>();
  p.rows = x.size(0);
  p.vocab = x.size(1);
  check_launch(
      kernels::launch_gather_logprobs(p, c10::cuda::getCurrentCUDAStream(x.get_device()).stream()),
      "gather_logprobs_cuda");
  return out;
}
#else
SampleResult sample_cuda(const torch::Tensor&, const std::vector<SamplingParams>&,
                         const std::vector<int64_t>&) {
  throw Error("sample_cuda: this build has no CUDA kernels (nvcc was not found)");
}

torch::Tensor gather_logprobs_cuda(const torch::Tensor&, const torch::Tensor&) {
  throw Error("gather_logprobs_cuda: this build has no CUDA kernels (nvcc was not found)");
}
#endif

}  // namespace align
