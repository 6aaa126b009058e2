#include "kernels/nf4_dequant_op.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/StringUtil.h>

#include <algorithm>

#include "common/error.h"
#include "kernels/kernel_support.h"

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

// The CPU loop of the same fp32 operations as the kernel (one pass, no temporaries).
template <typename T>
void dequantize_cpu(const Nf4Tensor& q, const float* absmax, T* out) {
  const uint8_t* packed = q.packed.data_ptr<uint8_t>();
  const auto& levels = nf4_levels();
  const int64_t n = q.numel(), bs = q.blocksize;
  at::parallel_for(0, q.blocks(), 16, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const float scale = absmax[b];
      const int64_t stop = std::min(n, (b + 1) * bs);
      for (int64_t i = b * bs; i < stop; i += 2) {
        const uint8_t byte = packed[i / 2];
        out[i] = static_cast<T>(levels[byte >> 4] * scale);
        if (i + 1 < stop) out[i + 1] = static_cast<T>(levels[byte & 0xF] * scale);
      }
    }
  });
}

}  // namespace

torch::Tensor nf4_dequantize(const Nf4Tensor& q, torch::ScalarType dtype) {
  if (q.packed.defined() && q.packed.is_cuda() && cuda_kernels_built() &&
      (dtype == at::kFloat || dtype == at::kBFloat16)) {
    return nf4_dequantize_cuda(q, dtype);
  }
  if (q.packed.defined() && q.packed.is_cpu() && (dtype == at::kFloat || dtype == at::kBFloat16)) {
    check_storage(q, "nf4_dequantize");
    const torch::Tensor absmax = nf4_block_absmax(q).contiguous();  // fp32 [blocks], small
    auto out = at::empty(q.shape, at::TensorOptions(dtype));
    if (q.numel() == 0) return out;
    auto packed_q = q;
    packed_q.packed = q.packed.contiguous();
    if (dtype == at::kFloat) {
      dequantize_cpu(packed_q, absmax.data_ptr<float>(), out.data_ptr<float>());
    } else {
      dequantize_cpu(packed_q, absmax.data_ptr<float>(), out.data_ptr<at::BFloat16>());
    }
    return out;
  }
  return nf4_dequantize_reference(q, dtype);
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
  auto packed = q.packed.contiguous();
  auto absmax = q.absmax.to(device).contiguous();
  auto levels = levels_tensor(device);
  torch::Tensor absmax2, code2;
  kernels::Nf4DequantParams p;
  p.packed = packed.data_ptr<uint8_t>();
  if (q.double_quant()) {
    absmax2 = q.absmax2.to(device).contiguous();
    code2 = q.code2.to(device).contiguous();
    p.absmax_u8 = absmax.data_ptr<uint8_t>();
    p.absmax2 = absmax2.data_ptr<float>();
    p.code2 = code2.data_ptr<float>();
    p.offset = q.offset;
  } else {
    p.absmax_f32 = absmax.data_ptr<float>();
  }
  p.levels = levels.data_ptr<float>();
  p.out = out.data_ptr();
  p.n = q.numel();
  p.blocksize = q.blocksize;
  const auto kdtype = dtype == at::kFloat ? kernels::DType::F32 : kernels::DType::BF16;
  const cudaError_t status = kernels::launch_nf4_dequant(
      p, kdtype, c10::cuda::getCurrentCUDAStream(device.index()).stream());
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
