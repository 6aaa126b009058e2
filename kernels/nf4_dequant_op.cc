#include "kernels/nf4_dequant_op.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/StringUtil.h>

#include <algorithm>

#include "common/error.h"
#include "kernels/kernel_support.h"
#include "kernels/nf4_dequant_cpu.h"

#ifdef ALIGN_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "kernels/nf4_dequant.h"
#endif

namespace align {

int64_t Nf4Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

int64_t Nf4Tensor::nbytes() const {
  int64_t bytes = 0;
  for (const torch::Tensor* t : {&packed, &absmax, &absmax2, &code2}) {
    if (t->defined()) bytes += static_cast<int64_t>(t->nbytes());
  }
  return bytes;
}

Nf4Tensor Nf4Tensor::to(torch::Device device) const {
  Nf4Tensor out = *this;
  for (torch::Tensor* t : {&out.packed, &out.absmax, &out.absmax2, &out.code2}) {
    if (t->defined()) *t = t->to(device);
  }
  return out;
}

const std::array<float, 16>& nf4_levels() {
  // bitsandbytes/functional.py get_4bit_type("nf4"): the quantiles of N(0, 1) normalised to
  // [-1, 1] with an exact zero (QLoRA, arXiv 2305.14314, appendix E), as fp32.
  static const std::array<float, 16> levels = {-1.0f,
                                               -0.6961928009986877f,
                                               -0.5250730514526367f,
                                               -0.39491748809814453f,
                                               -0.28444138169288635f,
                                               -0.18477343022823334f,
                                               -0.09105003625154495f,
                                               0.0f,
                                               0.07958029955625534f,
                                               0.16093020141124725f,
                                               0.24611230194568634f,
                                               0.33791524171829224f,
                                               0.44070982933044434f,
                                               0.5626170039176941f,
                                               0.7229568362236023f,
                                               1.0f};
  return levels;
}

namespace {

torch::Tensor levels_tensor(torch::Device device) {
  const auto& l = nf4_levels();
  return at::tensor(std::vector<float>(l.begin(), l.end()), at::kFloat).to(device);
}

void check_storage(const Nf4Tensor& q, const char* op) {
  const int64_t n = q.numel(), blocks = q.blocks();
  auto fail = [&](const std::string& what) { throw Error(std::string(op) + ": " + what); };
  if (q.blocksize <= 0 || q.blocksize % 2 != 0) fail("blocksize must be positive and even");
  if (!q.packed.defined() || q.packed.scalar_type() != at::kByte || q.packed.numel() != (n + 1) / 2)
    fail(c10::str("packed must hold ", (n + 1) / 2, " uint8 codes"));
  if (!q.absmax.defined() || q.absmax.numel() != blocks)
    fail(c10::str("absmax must hold ", blocks, " values"));
  if (q.double_quant()) {
    if (q.absmax.scalar_type() != at::kByte || q.absmax2.scalar_type() != at::kFloat ||
        q.absmax2.numel() != (blocks + 255) / 256 || !q.code2.defined() || q.code2.numel() != 256 ||
        q.code2.scalar_type() != at::kFloat) {
      fail(
          "double quantisation needs uint8 absmax codes, fp32 absmax2 per 256 and a 256-entry map");
    }
  } else if (q.absmax.scalar_type() != at::kFloat) {
    fail("absmax must be fp32");
  }
}

}  // namespace

torch::Tensor nf4_block_absmax(const Nf4Tensor& q) {
  if (!q.double_quant()) return q.absmax;
  const int64_t blocks = q.blocks();
  auto group =
      at::arange(blocks, at::TensorOptions(at::kLong).device(q.device())).div(256, "floor");
  // dequantize_blockwise: code2[c] * absmax2 in fp32; then absmax += offset.
  auto scaled = q.code2.index_select(0, q.absmax.to(at::kLong)) * q.absmax2.index_select(0, group);
  return scaled + at::scalar_tensor(q.offset, scaled.options());
}

torch::Tensor nf4_dequantize_reference(const Nf4Tensor& q, torch::ScalarType dtype) {
  check_storage(q, "nf4_dequantize_reference");
  const int64_t n = q.numel();
  auto bytes = q.packed.to(at::kLong);
  auto codes = at::stack({bytes.bitwise_right_shift(4), bytes.bitwise_and(15)}, 1).view(-1);
  auto values = levels_tensor(q.device()).index_select(0, codes.narrow(0, 0, n));  // [n] fp32
  auto block =
      at::arange(n, at::TensorOptions(at::kLong).device(q.device())).div(q.blocksize, "floor");
  auto out = values * nf4_block_absmax(q).index_select(0, block);
  return out.to(dtype).view(q.shape);
}

namespace {

// q's tensors contiguous on `device` (the kernels read raw pointers; a no-op when they are).
Nf4Tensor contiguous_on(const Nf4Tensor& q, torch::Device device) {
  Nf4Tensor c = q;
  for (torch::Tensor* t : {&c.packed, &c.absmax, &c.absmax2, &c.code2}) {
    if (t->defined()) *t = t->to(device).contiguous();
  }
  return c;
}

// The kernels' params over q (contiguous, on one device) and `levels` [16] fp32 on that device.
kernels::Nf4DequantParams params_of(const Nf4Tensor& q, const torch::Tensor& levels, void* out,
                                    int64_t out_first) {
  kernels::Nf4DequantParams p;
  p.packed = q.packed.data_ptr<uint8_t>();
  if (q.double_quant()) {
    p.absmax_u8 = q.absmax.data_ptr<uint8_t>();
    p.absmax2 = q.absmax2.data_ptr<float>();
    p.code2 = q.code2.data_ptr<float>();
    p.offset = q.offset;
  } else {
    p.absmax_f32 = q.absmax.data_ptr<float>();
  }
  p.levels = levels.data_ptr<float>();
  p.out = out;
  p.out_first = out_first;
  p.n = q.numel();
  p.blocksize = q.blocksize;
  return p;
}

bool cpu_path(const Nf4Tensor& q, torch::ScalarType dtype) {
  return q.packed.defined() && q.packed.is_cpu() && (dtype == at::kFloat || dtype == at::kBFloat16);
}

// Elements [first, first + out.numel()) of q (on the CPU) into out (contiguous, fp32 or bf16):
// the CPU kernel over LibTorch's threads, ~32K elements a task.
void dequantize_cpu(const Nf4Tensor& q, int64_t first, torch::Tensor& out, kernels::CpuPath path) {
  if (out.numel() == 0) return;
  const Nf4Tensor c = contiguous_on(q, torch::kCPU);
  const torch::Tensor levels = levels_tensor(torch::kCPU);
  const kernels::Nf4DequantParams p = params_of(c, levels, out.data_ptr(), first);
  const auto dtype = out.scalar_type() == at::kFloat ? kernels::DType::F32 : kernels::DType::BF16;
  const int64_t bs = q.blocksize, last = first + out.numel();
  const int64_t grain = std::max<int64_t>(1, 32768 / bs);
  at::parallel_for(first / bs, (last + bs - 1) / bs, grain, [&](int64_t begin, int64_t end) {
    kernels::nf4_dequant_cpu(p, dtype, std::max(first, begin * bs), std::min(last, end * bs), path);
  });
}

}  // namespace

torch::Tensor nf4_dequantize(const Nf4Tensor& q, torch::ScalarType dtype) {
  if (q.packed.defined() && q.packed.is_cuda() && cuda_kernels_built() &&
      (dtype == at::kFloat || dtype == at::kBFloat16)) {
    return nf4_dequantize_cuda(q, dtype);
  }
  if (!cpu_path(q, dtype)) return nf4_dequantize_reference(q, dtype);
  return nf4_dequantize_cpu(q, dtype);
}

torch::Tensor nf4_dequantize_cpu(const Nf4Tensor& q, torch::ScalarType dtype,
                                 kernels::CpuPath path) {
  check_storage(q, "nf4_dequantize_cpu");
  if (!cpu_path(q, dtype)) {
    throw Error(c10::str("nf4_dequantize_cpu: needs a CPU weight and an fp32/bf16 output, got ",
                         q.device(), " and ", dtype));
  }
  auto out = at::empty(q.shape, at::TensorOptions(dtype));
  dequantize_cpu(q, 0, out, path);
  return out;
}

void nf4_dequantize_rows(const Nf4Tensor& q, int64_t row0, torch::Tensor& out) {
  check_storage(q, "nf4_dequantize_rows");
  if (q.shape.size() != 2) throw Error("nf4_dequantize_rows: the weight must be [out, in]");
  const int64_t in = q.shape[1];
  if (!cpu_path(q, out.scalar_type()) || !out.is_cpu() || !out.is_contiguous() || out.dim() != 2 ||
      out.size(1) != in || row0 < 0 || row0 + out.size(0) > q.shape[0]) {
    throw Error(
        c10::str("nf4_dequantize_rows: needs a CPU weight and a contiguous CPU fp32/bf16 "
                 "out [rows, ",
                 in, "] within its ", q.shape[0], " rows, got ", out.sizes(), " ",
                 out.scalar_type(), " at row ", row0));
  }
  dequantize_cpu(q, row0 * in, out, kernels::CpuPath::Best);
}

#ifdef ALIGN_WITH_CUDA
torch::Tensor nf4_dequantize_cuda(const Nf4Tensor& q, torch::ScalarType dtype) {
  check_storage(q, "nf4_dequantize_cuda");
  if (!q.packed.is_cuda()) throw Error("nf4_dequantize_cuda: the weight must be on a CUDA device");
  if (dtype != at::kFloat && dtype != at::kBFloat16) {
    throw Error(c10::str("nf4_dequantize_cuda: the output must be fp32 or bf16, got ", dtype));
  }
  const auto device = q.device();
  auto out = at::empty(q.shape, at::TensorOptions(dtype).device(device));
  if (q.numel() == 0) return out;
  const Nf4Tensor c = contiguous_on(q, device);
  const torch::Tensor levels = levels_tensor(device);
  const auto kdtype = dtype == at::kFloat ? kernels::DType::F32 : kernels::DType::BF16;
  const cudaError_t status =
      kernels::launch_nf4_dequant(params_of(c, levels, out.data_ptr(), 0), kdtype,
                                  c10::cuda::getCurrentCUDAStream(device.index()).stream());
  if (status != cudaSuccess) {
    throw Error(std::string("nf4_dequantize_cuda: launch failed: ") + cudaGetErrorString(status));
  }
  return out;
}
#else
torch::Tensor nf4_dequantize_cuda(const Nf4Tensor&, torch::ScalarType) {
  throw Error("nf4_dequantize_cuda: this build has no CUDA kernels (nvcc was not found)");
}
#endif

}  // namespace align
