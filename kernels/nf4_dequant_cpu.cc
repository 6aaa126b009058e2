#include "kernels/nf4_dequant_cpu.h"

#include <algorithm>
#include <cstring>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define ALIGN_NF4_AVX2 1
#include <immintrin.h>
#endif

// Every product and sum below is one correctly rounded fp32 operation: this file is built without
// FMA contraction (no -mfma / -march; the AVX2 functions target "avx2" only, which has no FMA).

namespace align::kernels {
namespace {

inline float block_scale(const Nf4DequantParams& p, int64_t b) {
  if (p.absmax_f32) return p.absmax_f32[b];
  const float scaled = p.code2[p.absmax_u8[b]] * p.absmax2[b / 256];
  return scaled + p.offset;
}

// c10::BFloat16(float): round to nearest even; NaN -> 0x7FC0.
inline uint16_t bf16_bits(float f) {
  if (f != f) return 0x7FC0;
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

inline float convert(float f, float*) {
  return f;
}
inline uint16_t convert(float f, uint16_t*) {
  return bf16_bits(f);
}

// Elements [i, stop) of one block from its table; i may be odd (a slice starting on a low nibble).
template <typename Out>
inline void block_plain(const Nf4DequantParams& p, const Out* table, int64_t i, int64_t stop) {
  Out* out = static_cast<Out*>(p.out);
  const int64_t first = p.out_first;
  if (i % 2 && i < stop) {
    out[i - first] = table[p.packed[i / 2] & 0xF];
    ++i;
  }
  for (; i + 1 < stop; i += 2) {
    const uint8_t byte = p.packed[i / 2];
    out[i - first] = table[byte >> 4];
    out[i + 1 - first] = table[byte & 0xF];
  }
  if (i < stop) out[i - first] = table[p.packed[i / 2] >> 4];
}

template <typename Out>
void run_plain(const Nf4DequantParams& p, int64_t begin, int64_t end) {
  const int64_t bs = p.blocksize;
  Out table[16];
  for (int64_t b = begin / bs; b * bs < end; ++b) {
    const float scale = block_scale(p, b);
    for (int k = 0; k < 16; ++k)
      table[k] = convert(p.levels[k] * scale, table);
    block_plain(p, table, std::max(begin, b * bs), std::min(end, (b + 1) * bs));
  }
}

#ifdef ALIGN_NF4_AVX2

// The high and low nibbles of 32 packed bytes as indices, in element order per 128-bit lane:
// *a = elements 0-15 | 32-47, *b = 16-31 | 48-63.
__attribute__((target("avx2"))) inline void nibbles(const uint8_t* bytes, __m256i* a, __m256i* b) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes));
  const __m256i mask = _mm256_set1_epi8(0x0F);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
  const __m256i lo = _mm256_and_si256(v, mask);
  *a = _mm256_unpacklo_epi8(hi, lo);
  *b = _mm256_unpackhi_epi8(hi, lo);
}

// 8 fp32 rounded to bf16 bits in the low half of each 32-bit lane (as bf16_bits).
__attribute__((target("avx2"))) inline __m256i bf16_round(__m256 f) {
  const __m256i u = _mm256_castps_si256(f);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i bias = _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
  const __m256 nan = _mm256_cmp_ps(f, f, _CMP_UNORD_Q);
  return _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7FC0), _mm256_castps_si256(nan));
}

__attribute__((target("avx2"))) void run_bf16_avx2(const Nf4DequantParams& p, int64_t begin,
                                                   int64_t end) {
  uint16_t* out = static_cast<uint16_t*>(p.out);
  const int64_t bs = p.blocksize;
  const __m256 levels0 = _mm256_loadu_ps(p.levels), levels1 = _mm256_loadu_ps(p.levels + 8);
  // Per lane: the low bytes of 8 bf16 values, then their high bytes.
  const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2,
                                         4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  alignas(32) uint16_t table[16];
  for (int64_t b = begin / bs; b * bs < end; ++b) {
    const __m256 scale = _mm256_set1_ps(block_scale(p, b));
    const __m256i r0 = bf16_round(_mm256_mul_ps(levels0, scale));
    const __m256i r1 = bf16_round(_mm256_mul_ps(levels1, scale));
    const __m256i t = _mm256_permute4x64_epi64(_mm256_packus_epi32(r0, r1), 0xD8);  // 16 in order
    _mm256_store_si256(reinterpret_cast<__m256i*>(table), t);
    // [low bytes of 0-7, low of 8-15, high of 0-7, high of 8-15], then each half in both lanes.
    const __m256i bytes = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(t, split), 0xD8);
    const __m256i tlo = _mm256_permute2x128_si256(bytes, bytes, 0x00);
    const __m256i thi = _mm256_permute2x128_si256(bytes, bytes, 0x11);
    int64_t i = std::max(begin, b * bs);
    const int64_t stop = std::min(end, (b + 1) * bs);
    if (i % 2 == 0) {
      for (; i + 64 <= stop; i += 64) {
        __m256i a, c;
        nibbles(p.packed + i / 2, &a, &c);
        const __m256i la = _mm256_shuffle_epi8(tlo, a), ha = _mm256_shuffle_epi8(thi, a);
        const __m256i lc = _mm256_shuffle_epi8(tlo, c), hc = _mm256_shuffle_epi8(thi, c);
        const __m256i e0 = _mm256_unpacklo_epi8(la, ha);  // elements 0-7 | 32-39
        const __m256i e1 = _mm256_unpackhi_epi8(la, ha);  // 8-15 | 40-47
        const __m256i e2 = _mm256_unpacklo_epi8(lc, hc);  // 16-23 | 48-55
        const __m256i e3 = _mm256_unpackhi_epi8(lc, hc);  // 24-31 | 56-63
        __m256i* o = reinterpret_cast<__m256i*>(out + (i - p.out_first));
        _mm256_storeu_si256(o, _mm256_permute2x128_si256(e0, e1, 0x20));
        _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(e2, e3, 0x20));
        _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(e0, e1, 0x31));
        _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(e2, e3, 0x31));
      }
    }
    block_plain(p, table, i, stop);
  }
}

__attribute__((target("avx2"))) void run_f32_avx2(const Nf4DequantParams& p, int64_t begin,
                                                  int64_t end) {
  float* out = static_cast<float*>(p.out);
  const int64_t bs = p.blocksize;
  const __m256 levels0 = _mm256_loadu_ps(p.levels), levels1 = _mm256_loadu_ps(p.levels + 8);
  alignas(32) float table[16];
  for (int64_t b = begin / bs; b * bs < end; ++b) {
    const __m256 scale = _mm256_set1_ps(block_scale(p, b));
    const __m256 t0 = _mm256_mul_ps(levels0, scale), t1 = _mm256_mul_ps(levels1, scale);
    _mm256_store_ps(table, t0);
    _mm256_store_ps(table + 8, t1);
    int64_t i = std::max(begin, b * bs);
    const int64_t stop = std::min(end, (b + 1) * bs);
    if (i % 2 == 0) {
      for (; i + 64 <= stop; i += 64) {
        __m256i a, c;
        nibbles(p.packed + i / 2, &a, &c);
        // 8 indices at a time (lane order as nibbles()): element offsets 0, 8, 32, 40 from a and
        // 16, 24, 48, 56 from c.
        const __m128i parts[8] = {
            _mm256_castsi256_si128(a),      _mm_srli_si128(_mm256_castsi256_si128(a), 8),
            _mm256_castsi256_si128(c),      _mm_srli_si128(_mm256_castsi256_si128(c), 8),
            _mm256_extracti128_si256(a, 1), _mm_srli_si128(_mm256_extracti128_si256(a, 1), 8),
            _mm256_extracti128_si256(c, 1), _mm_srli_si128(_mm256_extracti128_si256(c, 1), 8)};
        float* o = out + (i - p.out_first);
        for (int k = 0; k < 8; ++k) {
          const __m256i idx = _mm256_cvtepu8_epi32(parts[k]);
          const __m256 lo = _mm256_permutevar8x32_ps(t0, idx);
          const __m256 hi = _mm256_permutevar8x32_ps(t1, idx);
          const __m256 high_half = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));  // bit 3
          _mm256_storeu_ps(o + 8 * k, _mm256_blendv_ps(lo, hi, high_half));
        }
      }
    }
    block_plain(p, table, i, stop);
  }
}

#endif  // ALIGN_NF4_AVX2

}  // namespace

bool nf4_dequant_cpu_vectorized() {
#ifdef ALIGN_NF4_AVX2
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
#else
  return false;
#endif
}

void nf4_dequant_cpu(const Nf4DequantParams& params, DType dtype, int64_t begin, int64_t end,
                     CpuPath path) {
  if (begin >= end) return;
#ifdef ALIGN_NF4_AVX2
  if (path == CpuPath::Best && nf4_dequant_cpu_vectorized()) {
    if (dtype == DType::F32) {
      run_f32_avx2(params, begin, end);
    } else {
      run_bf16_avx2(params, begin, end);
    }
    return;
  }
#endif
  if (dtype == DType::F32) {
    run_plain<float>(params, begin, end);
  } else {
    run_plain<uint16_t>(params, begin, end);
  }
}

}  // namespace align::kernels
