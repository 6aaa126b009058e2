#include "kernels/silu_gate_op.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/StringUtil.h>

#include "common/error.h"
#include "kernels/elementwise_cpu.h"
#include "kernels/kernel_support.h"

#ifdef ALIGN_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "kernels/silu_gate.h"
#endif

namespace align {

torch::Tensor silu_gate(const torch::Tensor& gate_up) {
  if (use_kernel({&gate_up})) {
    return silu_gate_cuda(gate_up);
  }
  if (use_cpu_kernel({&gate_up}) && gate_up.dim() > 0 && gate_up.size(-1) % 2 == 0) {
    return silu_gate_cpu(gate_up);
  }
  return silu_gate_reference(gate_up);
}

torch::Tensor silu_gate_cpu(const torch::Tensor& gate_up) {
  const int64_t cols = gate_up.size(-1) / 2;
  torch::Tensor rows = gate_up.reshape({-1, 2 * cols});
  if (rows.stride(1) != 1) rows = rows.contiguous();
  std::vector<int64_t> out_sizes = gate_up.sizes().vec();
  out_sizes.back() = cols;
  torch::Tensor out = torch::empty(out_sizes, gate_up.options());
  const float* gp = rows.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t stride = rows.stride(0);
  at::parallel_for(0, rows.size(0), cpu_rows_per_task(2 * cols), [&](int64_t begin, int64_t end) {
    kernels::silu_gate_cpu(gp, stride, op, cols, begin, end);
  });
  return out;
}

torch::Tensor silu_gate_reference(const torch::Tensor& gate_up) {
  auto halves = gate_up.chunk(2, -1);
  return halves[1] * at::silu(halves[0]);
}

#ifdef ALIGN_WITH_CUDA
torch::Tensor silu_gate_cuda(const torch::Tensor& gate_up) {
  if (!gate_up.is_cuda()) throw Error("silu_gate_cuda: gate_up must be on a CUDA device");
  const auto dtype = gate_up.scalar_type();
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16) {
    throw Error(c10::str("silu_gate_cuda: gate_up must be fp32 or bf16, got ", dtype));
  }
  if (gate_up.dim() == 0 || gate_up.size(-1) % 2 != 0) {
    throw Error(c10::str("silu_gate_cuda: gate_up must be [..., 2I], got ", gate_up.sizes()));
  }
  const int64_t cols = gate_up.size(-1) / 2;
  std::vector<int64_t> out_sizes = gate_up.sizes().vec();
  out_sizes.back() = cols;
  if (gate_up.numel() == 0) return torch::empty(out_sizes, gate_up.options());
  torch::Tensor rows = gate_up.reshape({-1, 2 * cols});
  if (rows.stride(1) != 1) rows = rows.contiguous();
  torch::Tensor out = torch::empty({rows.size(0), cols}, gate_up.options());
  kernels::SiluGateParams p;
  p.gate_up = rows.data_ptr();
  p.in_row_stride = rows.stride(0);
  p.out = out.data_ptr();
  p.out_row_stride = cols;
  p.rows = rows.size(0);
  p.cols = cols;
  const auto kdtype = kernel_dtype(gate_up, "silu_gate");
  const cudaError_t status = kernels::launch_silu_gate(
      p, kdtype, c10::cuda::getCurrentCUDAStream(gate_up.get_device()).stream());
  if (status != cudaSuccess) {
    throw Error(std::string("silu_gate_cuda: launch failed: ") + cudaGetErrorString(status));
  }
  return out.view(out_sizes);
}
#else
torch::Tensor silu_gate_cuda(const torch::Tensor&) {
  throw Error("silu_gate_cuda: this build has no CUDA kernels (nvcc was not found)");
}
#endif

}  // namespace align
