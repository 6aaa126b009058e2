#include "kernels/residual_rms_norm_op.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "common/error.h"
#include "kernels/elementwise_cpu.h"
#include "kernels/kernel_support.h"

#ifdef ALIGN_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "kernels/residual_rms_norm.h"
#endif

namespace align {

std::pair<torch::Tensor, torch::Tensor> residual_rms_norm(const torch::Tensor& x,
                                                          const torch::Tensor& residual,
                                                          const torch::Tensor& weight, double eps) {
  if (use_kernel({&x, &residual, &weight})) {
    return residual_rms_norm_cuda(x, residual, weight, eps);
  }
  if (use_cpu_kernel({&x, &residual, &weight}) && x.dim() > 0 && x.sizes() == residual.sizes() &&
      weight.dim() == 1 && weight.size(0) == x.size(-1)) {
    return residual_rms_norm_cpu(x, residual, weight, eps);
  }
  return residual_rms_norm_reference(x, residual, weight, eps);
}

std::pair<torch::Tensor, torch::Tensor> residual_rms_norm_cpu(const torch::Tensor& x,
                                                              const torch::Tensor& residual,
                                                              const torch::Tensor& weight,
                                                              double eps) {
  const int64_t cols = x.size(-1);
  auto rows_of = [cols](const torch::Tensor& t) {
    torch::Tensor rows = t.reshape({-1, cols});
    return rows.stride(1) == 1 ? rows : rows.contiguous();
  };
  const torch::Tensor xs = rows_of(x), rs = rows_of(residual), w = weight.contiguous();
  torch::Tensor h = torch::empty({xs.size(0), cols}, x.options());
  torch::Tensor out = torch::empty_like(h);
  const float *xp = xs.data_ptr<float>(), *rp = rs.data_ptr<float>(), *wp = w.data_ptr<float>();
  float *hp = h.data_ptr<float>(), *op = out.data_ptr<float>();
  const int64_t x_stride = xs.stride(0), r_stride = rs.stride(0);
  at::parallel_for(0, xs.size(0), cpu_rows_per_task(cols), [&](int64_t begin, int64_t end) {
    kernels::residual_rms_norm_cpu(xp, x_stride, rp, r_stride, wp, hp, op, cols,
                                   static_cast<float>(eps), begin, end);
  });
  return {h.view(x.sizes()), out.view(x.sizes())};
}

std::pair<torch::Tensor, torch::Tensor> residual_rms_norm_reference(const torch::Tensor& x,
                                                                    const torch::Tensor& residual,
                                                                    const torch::Tensor& weight,
                                                                    double eps) {
  auto h = x + residual;
  auto hf = h.to(at::kFloat);
  hf = hf * at::rsqrt(hf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return {h, weight * hf.to(h.scalar_type())};
}

#ifdef ALIGN_WITH_CUDA
std::pair<torch::Tensor, torch::Tensor> residual_rms_norm_cuda(const torch::Tensor& x,
                                                               const torch::Tensor& residual,
                                                               const torch::Tensor& weight,
                                                               double eps) {
  if (!x.is_cuda() || x.device() != residual.device() || x.device() != weight.device()) {
    throw Error("residual_rms_norm_cuda: x, residual and weight must be on one CUDA device");
  }
  const auto dtype = x.scalar_type();
  if (residual.scalar_type() != dtype || weight.scalar_type() != dtype ||
      (dtype != torch::kFloat32 && dtype != torch::kBFloat16)) {
    throw Error("residual_rms_norm_cuda: x, residual and weight must all be fp32 or all bf16");
  }
  if (x.dim() == 0 || residual.sizes() != x.sizes()) {
    throw Error("residual_rms_norm_cuda: residual must have x's shape [..., C]");
  }
  const int64_t cols = x.size(-1);
  if (weight.dim() != 1 || weight.size(0) != cols) {
    throw Error("residual_rms_norm_cuda: weight must be [" + std::to_string(cols) + "]");
  }
  if (x.numel() == 0) return {torch::empty_like(x), torch::empty_like(x)};
  // Rows may be strided; columns must be contiguous.
  auto as_rows = [cols](const torch::Tensor& t) {
    torch::Tensor rows = t.reshape({-1, cols});
    return rows.stride(1) == 1 ? rows : rows.contiguous();
  };
  torch::Tensor xr = as_rows(x);
  torch::Tensor rr = as_rows(residual);
  torch::Tensor w = weight.contiguous();
  torch::Tensor h = torch::empty({xr.size(0), cols}, x.options());
  torch::Tensor out = torch::empty({xr.size(0), cols}, x.options());
  kernels::ResidualRmsNormParams p;
  p.x = xr.data_ptr();
  p.x_row_stride = xr.stride(0);
  p.residual = rr.data_ptr();
  p.residual_row_stride = rr.stride(0);
  p.weight = w.data_ptr();
  p.h = h.data_ptr();
  p.h_row_stride = cols;
  p.out = out.data_ptr();
  p.out_row_stride = cols;
  p.rows = xr.size(0);
  p.cols = cols;
  p.eps = static_cast<float>(eps);
  const auto kdtype = kernel_dtype(x, "residual_rms_norm");
  const cudaError_t status = kernels::launch_residual_rms_norm(
      p, kdtype, c10::cuda::getCurrentCUDAStream(x.get_device()).stream());
  if (status != cudaSuccess) {
    throw Error(std::string("residual_rms_norm_cuda: launch failed: ") +
                cudaGetErrorString(status));
  }
  return {h.view(x.sizes()), out.view(x.sizes())};
}
#else
std::pair<torch::Tensor, torch::Tensor> residual_rms_norm_cuda(const torch::Tensor&,
                                                               const torch::Tensor&,
                                                               const torch::Tensor&, double) {
  throw Error("residual_rms_norm_cuda: this build has no CUDA kernels (nvcc was not found)");
}
#endif

}  // namespace align
