#include "rollout/kernels/sampling_op.h"

#include <cstring>
#include <string>

#include "common/error.h"

#ifdef ALIGN_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "rollout/kernels/sampling.h"
#endif

namespace align {

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

bool sampling_kernels_built() {
  return true;
}

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
bool sampling_kernels_built() {
  return false;
}

SampleResult sample_cuda(const torch::Tensor&, const std::vector<SamplingParams>&,
                         const std::vector<int64_t>&) {
  throw Error("sample_cuda: this build has no CUDA kernels (nvcc was not found)");
}

torch::Tensor gather_logprobs_cuda(const torch::Tensor&, const torch::Tensor&) {
  throw Error("gather_logprobs_cuda: this build has no CUDA kernels (nvcc was not found)");
}
#endif

}  // namespace align
