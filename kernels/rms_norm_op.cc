#include "kernels/rms_norm_op.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "common/error.h"
#include "kernels/elementwise_cpu.h"
#include "kernels/kernel_support.h"

#ifdef ALIGN_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "kernels/rms_norm.h"
#endif

namespace align {

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (use_kernel({&x, &weight})) return rms_norm_cuda(x, weight, eps);
  if (use_cpu_kernel({&x, &weight}) && x.dim() > 0 && weight.dim() == 1 &&
      weight.size(0) == x.size(-1)) {
    return rms_norm_cpu(x, weight, eps);
  }
  return rms_norm_reference(x, weight, eps);
}

torch::Tensor rms_norm_cpu(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const int64_t cols = x.size(-1);
  torch::Tensor rows = x.reshape({-1, cols});
  if (rows.stride(1) != 1) rows = rows.contiguous();
  const torch::Tensor w = weight.contiguous();
  torch::Tensor out = torch::empty({rows.size(0), cols}, x.options());
  const float* xp = rows.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t stride = rows.stride(0);
  at::parallel_for(0, rows.size(0), cpu_rows_per_task(cols), [&](int64_t begin, int64_t end) {
    kernels::rms_norm_cpu(xp, stride, wp, op, cols, static_cast<float>(eps), begin, end);
  });
  return out.view(x.sizes());
}

torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  auto h = x.to(at::kFloat);
  auto variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(variance + eps);
  return weight * h.to(x.scalar_type());
}

#ifdef ALIGN_WITH_CUDA
torch::Tensor rms_norm_cuda(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const int64_t cols = x.size(-1);
  if (!x.is_cuda() || !weight.is_cuda() || x.device() != weight.device()) {
    throw Error("rms_norm_cuda: x and weight must be on the same CUDA device");
  }
  if (x.scalar_type() != weight.scalar_type() ||
      (x.scalar_type() != torch::kFloat32 && x.scalar_type() != torch::kBFloat16)) {
    throw Error("rms_norm_cuda: x and weight must both be fp32 or both bf16");
  }
  if (weight.dim() != 1 || weight.size(0) != cols) {
    throw Error("rms_norm_cuda: weight must be [" + std::to_string(cols) + "]");
  }
  // Rows may be strided; columns must be contiguous.
  torch::Tensor rows = x.reshape({-1, cols});
  if (rows.stride(1) != 1) rows = rows.contiguous();
  torch::Tensor w = weight.contiguous();
  torch::Tensor out = torch::empty({rows.size(0), cols}, x.options());
  kernels::RmsNormParams p;
  p.x = rows.data_ptr();
  p.x_row_stride = rows.stride(0);
  p.weight = w.data_ptr();
  p.out = out.data_ptr();
  p.out_row_stride = cols;
  p.rows = rows.size(0);
  p.cols = cols;
  p.eps = static_cast<float>(eps);
  const auto dtype = kernel_dtype(x, "rms_norm");
  const cudaError_t status =
      kernels::launch_rms_norm(p, dtype, c10::cuda::getCurrentCUDAStream(x.get_device()).stream());
  if (status != cudaSuccess) {
    throw Error(std::string("rms_norm_cuda: launch failed: ") + cudaGetErrorString(status));
  }
  return out.view(x.sizes());
}
#else
torch::Tensor rms_norm_cuda(const torch::Tensor&, const torch::Tensor&, double) {
  throw Error("rms_norm_cuda: this build has no CUDA kernels (nvcc was not found)");
}
#endif

}  // namespace align
