// The CPU twins of the element-wise kernels (rms_norm, residual_rms_norm, silu_gate: their _op.h
// files give the numerics), fp32 only: one pass over each row instead of the reference's chain
// of LibTorch ops (a cast, pow, mean, add, rsqrt and two products for a norm), each of which
// allocates its result and costs a dispatch. Torch-free; the op layer splits rows over threads.
// Rows are `stride` floats apart, columns contiguous; `out` rows are `cols` apart.
#pragma once

#include <cstdint>

namespace align::kernels {

// out = weight * (x * rsqrt(mean(x^2) + eps)), rows [begin, end).
void rms_norm_cpu(const float* x, int64_t x_stride, const float* weight, float* out, int64_t cols,
                  float eps, int64_t begin, int64_t end);

// h = x + residual, out = rms_norm(h), rows [begin, end); h rows `cols` apart.
void residual_rms_norm_cpu(const float* x, int64_t x_stride, const float* residual,
                           int64_t residual_stride, const float* weight, float* h, float* out,
                           int64_t cols, float eps, int64_t begin, int64_t end);

// gate_up rows [gate (cols) | up (cols)] -> out = up * silu(gate), rows [begin, end).
void silu_gate_cpu(const float* gate_up, int64_t stride, float* out, int64_t cols, int64_t begin,
                   int64_t end);

}  // namespace align::kernels
