#include "kernels/rope_kv_write_cpu.h"

#include <cstring>

namespace align::kernels {
namespace {

// One head: out[d] = x[d] * cos[d] + rotate_half(x)[d] * sin[d] for d < R, with
// rotate_half(x) = cat(-x[R/2:], x[:R/2]); dims [R, D) copied.
void rotate_head(const float* x, const float* cos, const float* sin, float* out, int64_t rotary,
                 int64_t head_dim) {
  const int64_t half = rotary / 2;
  for (int64_t d = 0; d < half; ++d)
    out[d] = x[d] * cos[d] + -x[d + half] * sin[d];
  for (int64_t d = half; d < rotary; ++d)
    out[d] = x[d] * cos[d] + x[d - half] * sin[d];
  if (rotary < head_dim) {
    std::memcpy(out + rotary, x + rotary, static_cast<size_t>(head_dim - rotary) * sizeof(float));
  }
}

}  // namespace

void rope_kv_write_cpu(const RopeKvWriteCpu& p, int64_t begin, int64_t end) {
  const int64_t hd = p.head_dim, kv_width = p.kv_heads * hd, q_width = p.heads * hd;
  for (int64_t n = begin; n < end; ++n) {
    const float* row = p.qkv + n * p.qkv_stride;
    const float* cos = p.cos + n * p.rotary_dim;
    const float* sin = p.sin + n * p.rotary_dim;
    float* q = p.q_out + n * q_width;
    for (int64_t h = 0; h < p.heads; ++h)
      rotate_head(row + h * hd, cos, sin, q + h * hd, p.rotary_dim, hd);
    const int64_t slot = p.slots[n];
    if (slot < 0) continue;
    const float* k = row + q_width;
    float* k_out = p.k_cache + slot * kv_width;
    for (int64_t h = 0; h < p.kv_heads; ++h)
      rotate_head(k + h * hd, cos, sin, k_out + h * hd, p.rotary_dim, hd);
    std::memcpy(p.v_cache + slot * kv_width, k + kv_width,
                static_cast<size_t>(kv_width) * sizeof(float));
  }
}

}  // namespace align::kernels
