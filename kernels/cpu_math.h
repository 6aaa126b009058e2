// Float math for the CPU kernels, in plain arithmetic the compiler vectorises (std::exp and
// std::nearbyint are scalar calls without -ffast-math), on floats and on 16-lane vectors.
#pragma once

#include <cstdint>
#include <cstring>

namespace align::kernels {

// 16 floats: one AVX-512 register, two AVX2 ones (GCC's vector extension, lowered for each
// target_clones clone). Used as locals and by reference, never passed by value (whose ABI would
// differ between clones).
using vfloat = float __attribute__((vector_size(64)));
using vint = int32_t __attribute__((vector_size(64)));

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = 2.12194440e-4f;  // ln2 in two parts (Cody-Waite)
constexpr float kRoundToInt = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to even
constexpr float kMinExponent = -87.0f;      // exp(-87) ~ 1.6e-38, the smallest normal's range

// x *= 2^n for an integral n in [-126, 127].
inline void scale_by_pow2(float& x, float n) {
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  x *= scale;
}
inline void scale_by_pow2(vfloat& x, const vfloat& n) {
  const vint bits = (__builtin_convertvector(n, vint) + 127) << 23;
  x *= __builtin_bit_cast(vfloat, bits);
}

// x = exp(x) for x <= 0 (-inf gives a value below 2e-38: callers zero masked lanes themselves):
// x = n ln2 + r with |r| <= ln2 / 2, exp(r) by its Taylor polynomial to degree 7 (truncation
// below 2e-8 relative), 2^n put into the exponent bits. Relative error about 2 ulp of fp32
// (tests/kernels compare the kernels with their references). F is float or vfloat.
template <typename F>
inline void exp_nonpositive(F& x) {
  const F zero{};
  x = x < kMinExponent ? zero + kMinExponent : x;
  const F n = (x * kLog2e + kRoundToInt) - kRoundToInt;
  const F r = x - n * kLn2Hi + n * kLn2Lo;
  F p = zero + 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  scale_by_pow2(p, n);
  x = p;
}

}  // namespace align::kernels
