#include "kernels/rope_kv_write_op.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/StringUtil.h>

#include <vector>

#include "common/error.h"
#include "kernels/kernel_support.h"
#include "kernels/rope_kv_write_cpu.h"

#ifdef ALIGN_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "kernels/rope_kv_write.h"
#endif

namespace align {
namespace {

// The dimensions of one call, checked against every tensor.
struct Dims {
  int64_t tokens = 0;      // N
  int64_t heads = 0;       // H
  int64_t kv_heads = 0;    // Hkv
  int64_t head_dim = 0;    // D
  int64_t rotary_dim = 0;  // R
  int64_t num_slots = 0;   // num_pages * page_size
};

Dims check_inputs(const char* who, const torch::Tensor& qkv, const torch::Tensor& cos,
                  const torch::Tensor& sin, const torch::Tensor& slots,
                  const torch::Tensor& k_cache, const torch::Tensor& v_cache) {
  auto fail = [who](const std::string& what) { throw Error(std::string(who) + ": " + what); };
  if (k_cache.dim() != 4 || v_cache.sizes() != k_cache.sizes()) {
    fail(c10::str("k_cache and v_cache must both be [num_pages, page_size, Hkv, D], got ",
                  k_cache.sizes(), " and ", v_cache.sizes()));
  }
  if (!k_cache.is_contiguous() || !v_cache.is_contiguous()) {
    fail("k_cache and v_cache must be contiguous");
  }
  Dims d;
  d.kv_heads = k_cache.size(2);
  d.head_dim = k_cache.size(3);
  d.num_slots = k_cache.size(0) * k_cache.size(1);
  if (d.kv_heads <= 0 || d.head_dim <= 0) fail("the caches have no heads or no head dims");
  if (qkv.dim() != 2 || qkv.size(1) % d.head_dim != 0 ||
      qkv.size(1) / d.head_dim <= 2 * d.kv_heads) {
    fail(c10::str("qkv must be [N, H*D + 2*Hkv*D] with D = ", d.head_dim, ", Hkv = ", d.kv_heads,
                  ", H >= 1, got ", qkv.sizes()));
  }
  d.tokens = qkv.size(0);
  d.heads = qkv.size(1) / d.head_dim - 2 * d.kv_heads;
  d.rotary_dim = cos.dim() > 0 ? cos.size(-1) : 0;
  if (d.rotary_dim <= 0 || d.rotary_dim % 2 != 0 || d.rotary_dim > d.head_dim ||
      cos.numel() != d.tokens * d.rotary_dim || sin.dim() == 0 || sin.size(-1) != d.rotary_dim ||
      sin.numel() != cos.numel()) {
    fail(c10::str("cos and sin must be [N, R] with N = ", d.tokens,
                  ", R even and <= D = ", d.head_dim, ", got ", cos.sizes(), " and ", sin.sizes()));
  }
  if (slots.dim() != 1 || slots.size(0) != d.tokens || slots.scalar_type() != at::kLong) {
    fail(c10::str("slots must be [N] int64 with N = ", d.tokens, ", got ", slots.sizes(), " ",
                  slots.scalar_type()));
  }
  const auto dtype = qkv.scalar_type();
  if (cos.scalar_type() != dtype || sin.scalar_type() != dtype || k_cache.scalar_type() != dtype ||
      v_cache.scalar_type() != dtype) {
    fail(c10::str("qkv, cos, sin and the caches must share one dtype, got ", dtype, ", ",
                  cos.scalar_type(), ", ", sin.scalar_type(), ", ", k_cache.scalar_type(), ", ",
                  v_cache.scalar_type()));
  }
  const auto device = qkv.device();
  for (const torch::Tensor* t : {&cos, &sin, &slots, &k_cache, &v_cache}) {
    if (t->device() != device) fail("all tensors must be on one device");
  }
  return d;
}

}  // namespace

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin) {
  const int64_t rotary = cos.size(-1);
  const int64_t half = rotary / 2;
  auto c = cos.unsqueeze(-2);  // [..., 1, R]
  auto s = sin.unsqueeze(-2);
  auto rot = x.narrow(-1, 0, rotary);
  auto rotated = at::cat({-rot.narrow(-1, half, half), rot.narrow(-1, 0, half)}, -1);
  auto out = rot * c + rotated * s;
  if (rotary == x.size(-1)) return out;
  return at::cat({out, x.narrow(-1, rotary, x.size(-1) - rotary)}, -1);
}

RotatedQkv rope_qkv(const torch::Tensor& qkv, const torch::Tensor& cos, const torch::Tensor& sin,
                    int64_t kv_heads, int64_t head_dim) {
  const int64_t kv_width = kv_heads * head_dim;
  const int64_t q_width = qkv.size(-1) - 2 * kv_width;
  auto heads = [&](int64_t start, int64_t width) {
    std::vector<int64_t> shape(qkv.sizes().begin(), qkv.sizes().end() - 1);
    shape.push_back(width / head_dim);
    shape.push_back(head_dim);
    return qkv.narrow(-1, start, width).view(shape);
  };
  return {apply_rope(heads(0, q_width), cos, sin), apply_rope(heads(q_width, kv_width), cos, sin),
          heads(q_width + kv_width, kv_width)};
}

torch::Tensor rope_kv_write(const torch::Tensor& qkv, const torch::Tensor& cos,
                            const torch::Tensor& sin, const torch::Tensor& slots,
                            const torch::Tensor& k_cache, const torch::Tensor& v_cache) {
  if (use_kernel({&qkv, &cos, &sin})) {
    return rope_kv_write_cuda(qkv, cos, sin, slots, k_cache, v_cache);
  }
  if (use_cpu_kernel({&qkv, &cos, &sin, &k_cache, &v_cache})) {
    return rope_kv_write_cpu(qkv, cos, sin, slots, k_cache, v_cache);
  }
  return rope_kv_write_reference(qkv, cos, sin, slots, k_cache, v_cache);
}

torch::Tensor rope_kv_write_reference(const torch::Tensor& qkv, const torch::Tensor& cos,
                                      const torch::Tensor& sin, const torch::Tensor& slots,
                                      const torch::Tensor& k_cache, const torch::Tensor& v_cache) {
  const Dims d = check_inputs("rope_kv_write", qkv, cos, sin, slots, k_cache, v_cache);
  const int64_t n = d.tokens, hkv = d.kv_heads, hd = d.head_dim;
  auto [q, k, v] = rope_qkv(qkv, cos.reshape({n, d.rotary_dim}), sin.reshape({n, d.rotary_dim}),
                            hkv, hd);  // [N, *, D]
  auto flat_k = k_cache.view({d.num_slots, hkv, hd});
  auto flat_v = v_cache.view({d.num_slots, hkv, hd});
  if (n == 0) return q;
  const auto [lowest, highest] = at::aminmax(slots);
  if (highest.item<int64_t>() >= d.num_slots) {
    throw Error(c10::str("rope_kv_write: slot ", highest.item<int64_t>(), " is past the cache's ",
                         d.num_slots, " slots"));
  }
  if (lowest.item<int64_t>() >= 0) {  // no padding slots (the engine's calls)
    flat_k.index_copy_(0, slots, k);
    flat_v.index_copy_(0, slots, v);
    return q;
  }
  auto keep = slots >= 0;
  auto index = slots.masked_select(keep);
  flat_k.index_put_({index}, k.index({keep}));
  flat_v.index_put_({index}, v.index({keep}));
  return q;
}

torch::Tensor rope_kv_write_cpu(const torch::Tensor& qkv, const torch::Tensor& cos,
                                const torch::Tensor& sin, const torch::Tensor& slots,
                                const torch::Tensor& k_cache, const torch::Tensor& v_cache) {
  const Dims d = check_inputs("rope_kv_write_cpu", qkv, cos, sin, slots, k_cache, v_cache);
  if (!qkv.is_cpu() || qkv.scalar_type() != torch::kFloat32) {
    throw Error(c10::str("rope_kv_write_cpu: expected fp32 CPU tensors, got ", qkv.scalar_type(),
                         " on ", qkv.device()));
  }
  torch::Tensor q = torch::empty({d.tokens, d.heads, d.head_dim}, qkv.options());
  if (d.tokens == 0) return q;
  const torch::Tensor rows = qkv.stride(1) == 1 ? qkv : qkv.contiguous();
  const torch::Tensor c = cos.reshape({d.tokens, d.rotary_dim}).contiguous();
  const torch::Tensor s = sin.reshape({d.tokens, d.rotary_dim}).contiguous();
  const torch::Tensor slot = slots.contiguous();
  const int64_t* slot_ptr = slot.data_ptr<int64_t>();
  for (int64_t n = 0; n < d.tokens; ++n) {
    if (slot_ptr[n] >= d.num_slots) {
      throw Error(c10::str("rope_kv_write: slot ", slot_ptr[n], " is past the cache's ",
                           d.num_slots, " slots"));
    }
  }
  kernels::RopeKvWriteCpu p;
  p.qkv = rows.data_ptr<float>();
  p.qkv_stride = rows.stride(0);
  p.cos = c.data_ptr<float>();
  p.sin = s.data_ptr<float>();
  p.slots = slot_ptr;
  p.q_out = q.data_ptr<float>();
  p.k_cache = k_cache.data_ptr<float>();
  p.v_cache = v_cache.data_ptr<float>();
  p.heads = d.heads;
  p.kv_heads = d.kv_heads;
  p.head_dim = d.head_dim;
  p.rotary_dim = d.rotary_dim;
  at::parallel_for(0, d.tokens, cpu_rows_per_task(qkv.size(1)),
                   [&](int64_t begin, int64_t end) { kernels::rope_kv_write_cpu(p, begin, end); });
  return q;
}

#ifdef ALIGN_WITH_CUDA
torch::Tensor rope_kv_write_cuda(const torch::Tensor& qkv, const torch::Tensor& cos,
                                 const torch::Tensor& sin, const torch::Tensor& slots,
                                 const torch::Tensor& k_cache, const torch::Tensor& v_cache) {
  const Dims d = check_inputs("rope_kv_write_cuda", qkv, cos, sin, slots, k_cache, v_cache);
  const auto dtype = qkv.scalar_type();
  if (!qkv.is_cuda()) throw Error("rope_kv_write_cuda: the tensors must be on a CUDA device");
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16) {
    throw Error(c10::str("rope_kv_write_cuda: the dtype must be fp32 or bf16, got ", dtype));
  }
  torch::Tensor q = torch::empty({d.tokens, d.heads, d.head_dim}, qkv.options());
  if (d.tokens == 0) return q;
  // Rows may be strided; the last dim must be contiguous.
  torch::Tensor rows = qkv.stride(1) == 1 ? qkv : qkv.contiguous();
  auto as_rows = [&d](const torch::Tensor& t) {
    torch::Tensor r = t.reshape({d.tokens, d.rotary_dim});
    return r.stride(1) == 1 ? r : r.contiguous();
  };
  torch::Tensor c = as_rows(cos);
  torch::Tensor s = as_rows(sin);
  torch::Tensor slot = slots.contiguous();
  kernels::RopeKvWriteParams p;
  p.qkv = rows.data_ptr();
  p.qkv_row_stride = rows.stride(0);
  p.cos = c.data_ptr();
  p.cos_row_stride = c.stride(0);
  p.sin = s.data_ptr();
  p.sin_row_stride = s.stride(0);
  p.slots = slot.data_ptr<int64_t>();
  p.q_out = q.data_ptr();
  p.k_cache = k_cache.data_ptr();
  p.v_cache = v_cache.data_ptr();
  p.num_slots = d.num_slots;
  p.tokens = d.tokens;
  p.heads = static_cast<int>(d.heads);
  p.kv_heads = static_cast<int>(d.kv_heads);
  p.head_dim = static_cast<int>(d.head_dim);
  p.rotary_dim = static_cast<int>(d.rotary_dim);
  const auto kdtype = kernel_dtype(qkv, "rope_kv_write");
  const cudaError_t status = kernels::launch_rope_kv_write(
      p, kdtype, c10::cuda::getCurrentCUDAStream(qkv.get_device()).stream());
  if (status != cudaSuccess) {
    throw Error(std::string("rope_kv_write_cuda: launch failed: ") + cudaGetErrorString(status));
  }
  return q;
}
#else
torch::Tensor rope_kv_write_cuda(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                 const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) {
  throw Error("rope_kv_write_cuda: this build has no CUDA kernels (nvcc was not found)");
}
#endif

}  // namespace align
