#include "kernels/elementwise_cpu.h"

#include <cmath>

#include "kernels/cpu_math.h"

namespace align::kernels {
namespace {

constexpr int kLanes = 16;

// mean(x^2) over a row, summed in 16 interleaved fp32 partial sums (vectorisable; the
// reference's reduction orders its sums its own way, so the two agree to rounding).
__attribute__((target_clones("avx512f", "avx2", "default"))) float mean_square(const float* x,
                                                                               int64_t cols) {
  float acc[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= cols; c += kLanes) {
    for (int l = 0; l < kLanes; ++l)
      acc[l] += x[c + l] * x[c + l];
  }
  for (; c < cols; ++c)
    acc[0] += x[c] * x[c];
  float sum = 0.f;
  for (float a : acc)
    sum += a;
  return sum / static_cast<float>(cols);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void scale_row(const float* x,
                                                                            const float* weight,
                                                                            float r, float* out,
                                                                            int64_t cols) {
  for (int64_t c = 0; c < cols; ++c)
    out[c] = weight[c] * (x[c] * r);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void add_row(const float* a,
                                                                          const float* b,
                                                                          float* out,
                                                                          int64_t cols) {
  for (int64_t c = 0; c < cols; ++c)
    out[c] = a[c] + b[c];
}

// up * silu(gate) with silu(g) = g * sigmoid(g), sigmoid from e = exp(-|g|) (never overflows):
// 1 / (1 + e) for g >= 0, e / (1 + e) below.
__attribute__((target_clones("avx512f", "avx2", "default"))) void silu_gate_row(const float* gate,
                                                                                const float* up,
                                                                                float* out,
                                                                                int64_t cols) {
  for (int64_t c = 0; c < cols; ++c) {
    const float g = gate[c];
    float e = -std::fabs(g);
    exp_nonpositive(e);
    out[c] = up[c] * (g * ((g >= 0.f ? 1.f : e) / (1.f + e)));
  }
}

}  // namespace

void rms_norm_cpu(const float* x, int64_t x_stride, const float* weight, float* out, int64_t cols,
                  float eps, int64_t begin, int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    const float* xr = x + row * x_stride;
    const float r = 1.f / std::sqrt(mean_square(xr, cols) + eps);
    scale_row(xr, weight, r, out + row * cols, cols);
  }
}

void residual_rms_norm_cpu(const float* x, int64_t x_stride, const float* residual,
                           int64_t residual_stride, const float* weight, float* h, float* out,
                           int64_t cols, float eps, int64_t begin, int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    float* hr = h + row * cols;
    add_row(x + row * x_stride, residual + row * residual_stride, hr, cols);
    const float r = 1.f / std::sqrt(mean_square(hr, cols) + eps);
    scale_row(hr, weight, r, out + row * cols, cols);
  }
}

void silu_gate_cpu(const float* gate_up, int64_t stride, float* out, int64_t cols, int64_t begin,
                   int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    const float* gr = gate_up + row * stride;
    silu_gate_row(gr, gr + cols, out + row * cols, cols);
  }
}

}  // namespace align::kernels
