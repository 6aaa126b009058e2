#include <math_constants.h>

#include "kernels/counter_rng.h"
#include "kernels/sampling.h"

namespace align::kernels {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;
constexpr float kFixedOne = 1099511627776.f;  // 2^40: weights in [0, 1] become integers <= 2^40
constexpr uint32_t kNoDigit = 256;

using u64 = unsigned long long;

// Order-preserving key: a < b as floats (not NaN) iff key(a) < key(b); -0 and +0 share a key.
__device__ __forceinline__ uint32_t order_key(float x) {
  uint32_t bits = __float_as_uint(x);
  if ((bits << 1) == 0) bits = 0;
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// The tempered weight w = exp((x - max) / T) in (0, 1] and its 2^-40 fixed-point value. Every pass
// calls this one function, so a token's weight is bit-identical in every pass.
struct Weight {
  float w;
  u64 q;
};
__device__ __forceinline__ Weight tempered(float x, float row_max, float temperature) {
  const float w = expf((x - row_max) / temperature);
  return {w, __float2ull_rn(w * kFixedOne)};
}

// Block-wide sums in a fixed order (deterministic for a fixed block size); every thread gets the
// sum.
__device__ float block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o /= 2)
    v += __shfl_xor_sync(kFull, v, o);
  __syncthreads();  // scratch may still be read by a previous call
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < kWarps; ++w)
    total += scratch[w];
  return total;
}

__device__ u64 block_sum(u64 v, u64* scratch) {
  for (int o = 16; o > 0; o /= 2)
    v += __shfl_xor_sync(kFull, v, o);
  __syncthreads();
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  u64 total = 0;
  for (int w = 0; w < kWarps; ++w)
    total += scratch[w];
  return total;
}

// Row maximum and the first index holding it; every thread gets both.
__device__ void block_argmax(const float* x, int64_t vocab, float* max_out, int64_t* index_out,
                             float* vscratch, int64_t* iscratch) {
  float v = -CUDART_INF_F;
  int64_t i = vocab;  // "none yet"
  for (int64_t c = threadIdx.x; c < vocab; c += kThreads) {
    if (i == vocab || x[c] > v) {
      v = x[c];
      i = c;
    }
  }
  for (int o = 16; o > 0; o /= 2) {
    const float ov = __shfl_xor_sync(kFull, v, o);
    const int64_t oi = __shfl_xor_sync(kFull, i, o);
    if (oi != vocab && (i == vocab || ov > v || (ov == v && oi < i))) {
      v = ov;
      i = oi;
    }
  }
  __syncthreads();
  if (threadIdx.x % 32 == 0) {
    vscratch[threadIdx.x / 32] = v;
    iscratch[threadIdx.x / 32] = i;
  }
  __syncthreads();
  v = vscratch[0];
  i = iscratch[0];
  for (int w = 1; w < kWarps; ++w) {
    const float ov = vscratch[w];
    const int64_t oi = iscratch[w];
    if (oi != vocab && (i == vocab || ov > v || (ov == v && oi < i))) {
      v = ov;
      i = oi;
    }
  }
  *max_out = v;
  *index_out = i;
}

// Adds each element's count (kMass false) or fixed-point weight (kMass true) to hist[digit], where
// digit = (key >> shift) & 255, over elements with key >= floor_key and (key & mask) == prefix.
// Lanes holding the same digit combine first so hot bins see one shared atomic per warp.
template <bool kMass>
__device__ void radix_histogram(const float* x, int64_t vocab, float row_max, float temperature,
                                uint32_t floor_key, uint32_t prefix, uint32_t mask, int shift,
                                u64* hist) {
  const int lane = threadIdx.x % 32;
  for (int64_t base = 0; base < vocab;
       base += kThreads) {  // uniform trip count: full-warp shuffles
    const int64_t c = base + threadIdx.x;
    uint32_t digit = kNoDigit;
    u64 value = 0;
    if (c < vocab) {
      const uint32_t key = order_key(x[c]);
      if (key >= floor_key && (key & mask) == prefix) {
        digit = (key >> shift) & 0xFFu;
        value = kMass ? tempered(x[c], row_max, temperature).q : 1;
      }
    }
    const unsigned peers = __match_any_sync(kFull, digit);
    u64 total = 0;
    if (kMass) {
      for (int l = 0; l < 32; ++l) {
        const u64 v = __shfl_sync(kFull, value, l);
        if ((peers >> l) & 1u) total += v;
      }
    } else {
      total = __popc(peers);
    }
    if (digit != kNoDigit && lane == __ffs(peers) - 1) atomicAdd(&hist[digit], total);
  }
}

// Warp 0: walking bins from 255 down, the first bin b where (sum of bins above b) + hist[b] >=
// need. Writes b and the sum of the bins above it. If the bins sum to less than `need` (possible
// only through rounding of the top-p target), picks the lowest non-empty bin.
__device__ void select_bin(const u64* hist, u64 need, uint32_t* bin_out, u64* above_out) {
  const int lane = threadIdx.x % 32;
  u64 mine = 0;
  for (int j = 0; j < 8; ++j)
    mine += hist[255 - 8 * lane - j];
  u64 incl = mine;
  for (int o = 1; o < 32; o *= 2) {
    const u64 t = __shfl_up_sync(kFull, incl, o);
    if (lane >= o) incl += t;
  }
  const u64 total = __shfl_sync(kFull, incl, 31);
  if (total < need) need = total;
  const unsigned found = __ballot_sync(kFull, incl >= need);
  if (lane == __ffs(found) - 1) {
    u64 cum = incl - mine;
    for (int j = 0; j < 8; ++j) {
      const int b = 255 - 8 * lane - j;
      if (cum + hist[b] >= need) {
        *bin_out = static_cast<uint32_t>(b);
        *above_out = cum;
        break;
      }
      cum += hist[b];
    }
  }
}

// The smallest key t (among region keys >= floor_key) such that the count (kMass false) or
// fixed-point weight (kMass true) of region elements with key >= t reaches `need`: four 8-bit
// radix passes from the most significant byte.
template <bool kMass>
__device__ uint32_t radix_select(const float* x, int64_t vocab, float row_max, float temperature,
                                 uint32_t floor_key, u64 need, u64* hist, uint32_t* bin_shared,
                                 u64* above_shared) {
  uint32_t prefix = 0, mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += kThreads)
      hist[b] = 0;
    __syncthreads();
    radix_histogram<kMass>(x, vocab, row_max, temperature, floor_key, prefix, mask, shift, hist);
    __syncthreads();
    if (threadIdx.x < 32) select_bin(hist, need, bin_shared, above_shared);
    __syncthreads();
    prefix |= *bin_shared << shift;
    mask |= 0xFFu << shift;
    need -= *above_shared;
    __syncthreads();  // bin_shared and hist are rewritten by the next pass
  }
  return prefix;
}

__device__ __forceinline__ int64_t clamp_to(int64_t v, int64_t limit) {
  return v < limit ? v : limit;
}

// (u53 * total) >> 53 without overflow: floor(u * total) for u = u53 * 2^-53, exactly.
__device__ __forceinline__ u64 scale_by_uniform(u64 u53, u64 total) {
  const u64 hi = __umul64hi(u53, total), lo = u53 * total;
  return (hi << 11) | (lo >> 53);
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleParams p) {
  __shared__ u64 hist[256];
  __shared__ float fscratch[kWarps];
  __shared__ int64_t iscratch[kWarps];
  __shared__ u64 uscratch[kWarps];
  __shared__ uint32_t bin_shared;
  __shared__ u64 above_shared;
  __shared__ int64_t token_shared;

  const int64_t row = blockIdx.x;
  const float* x = p.logits + row * p.logits_row_stride;
  const SamplingRow rp = p.row_params[row];
  const int64_t vocab = p.vocab;

  float row_max;
  int64_t argmax;
  block_argmax(x, vocab, &row_max, &argmax, fscratch, iscratch);
  float sum_exp = 0.f;
  for (int64_t c = threadIdx.x; c < vocab; c += kThreads)
    sum_exp += expf(x[c] - row_max);
  const float log_sum_exp = logf(block_sum(sum_exp, fscratch));

  int64_t token = argmax;
  if (rp.temperature > 0.f) {
    const float t = rp.temperature;
    uint32_t floor_key = 0;  // kept tokens have key >= floor_key
    if (rp.top_k > 0 && rp.top_k < vocab) {
      floor_key = radix_select<false>(x, vocab, row_max, t, 0u, static_cast<u64>(rp.top_k), hist,
                                      &bin_shared, &above_shared);
    }
    if (rp.top_p < 1.f) {
      u64 mass = 0;
      for (int64_t c = threadIdx.x; c < vocab; c += kThreads) {
        if (order_key(x[c]) >= floor_key) mass += tempered(x[c], row_max, t).q;
      }
      const u64 top_k_mass = block_sum(mass, uscratch);
      const double target = static_cast<double>(rp.top_p) * static_cast<double>(top_k_mass);
      u64 need = static_cast<u64>(ceil(target));
      if (need == 0) need = 1;
      floor_key = radix_select<true>(x, vocab, row_max, t, floor_key, need, hist, &bin_shared,
                                     &above_shared);
    }

    // Inverse CDF over kept weights in vocabulary order: each thread owns a contiguous chunk.
    const int64_t chunk = (vocab + kThreads - 1) / kThreads;
    const int64_t begin = clamp_to(static_cast<int64_t>(threadIdx.x) * chunk, vocab);
    const int64_t end = clamp_to(begin + chunk, vocab);
    auto kept_weight = [&](int64_t c) -> u64 {
      if (order_key(x[c]) < floor_key) return 0;
      const Weight w = tempered(x[c], row_max, t);
      return (rp.min_p > 0.f && w.w < rp.min_p) ? 0 : w.q;
    };
    u64 mine = 0;
    for (int64_t c = begin; c < end; ++c)
      mine += kept_weight(c);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    u64 incl = mine;
    for (int o = 1; o < 32; o *= 2) {
      const u64 v = __shfl_up_sync(kFull, incl, o);
      if (lane >= o) incl += v;
    }
    __syncthreads();
    if (lane == 31) uscratch[warp] = incl;
    if (threadIdx.x == 0) token_shared = -1;
    __syncthreads();
    u64 offset = 0, total = 0;
    for (int w = 0; w < kWarps; ++w) {
      if (w < warp) offset += uscratch[w];
      total += uscratch[w];
    }
    const u64 target = scale_by_uniform(counter_u53(rp.seed, rp.step), total);
    u64 running = offset + incl - mine;
    if (running <= target && target < running + mine) {
      for (int64_t c = begin; c < end; ++c) {
        running += kept_weight(c);
        if (running > target) {
          token_shared = c;
          break;
        }
      }
    }
    __syncthreads();
    if (token_shared >= 0) token = token_shared;
  }
  if (threadIdx.x == 0) {
    p.tokens[row] = token;
    p.logprobs[row] = (x[token] - row_max) - log_sum_exp;
  }
}

__global__ void __launch_bounds__(kThreads) gather_logprobs_kernel(GatherLogprobsParams p) {
  __shared__ float fscratch[kWarps];
  const int64_t row = blockIdx.x;
  const float* x = p.logits + row * p.logits_row_stride;
  float m = -CUDART_INF_F;
  for (int64_t c = threadIdx.x; c < p.vocab; c += kThreads)
    m = fmaxf(m, x[c]);
  for (int o = 16; o > 0; o /= 2)
    m = fmaxf(m, __shfl_xor_sync(kFull, m, o));
  if (threadIdx.x % 32 == 0) fscratch[threadIdx.x / 32] = m;
  __syncthreads();
  for (int w = 0; w < kWarps; ++w)
    m = fmaxf(m, fscratch[w]);
  float sum_exp = 0.f;
  for (int64_t c = threadIdx.x; c < p.vocab; c += kThreads)
    sum_exp += expf(x[c] - m);
  const float log_sum_exp = logf(block_sum(sum_exp, fscratch));
  if (threadIdx.x == 0) {
    const int64_t token = p.tokens[row];
    p.logprobs[row] = (token >= 0 && token < p.vocab) ? (x[token] - m) - log_sum_exp : CUDART_NAN_F;
  }
}

}  // namespace

cudaError_t launch_sample(const SampleParams& params, cudaStream_t stream) {
  if (params.rows == 0) return cudaSuccess;
  sample_kernel<<<static_cast<unsigned>(params.rows), kThreads, 0, stream>>>(params);
  return cudaGetLastError();
}

cudaError_t launch_gather_logprobs(const GatherLogprobsParams& params, cudaStream_t stream) {
  if (params.rows == 0) return cudaSuccess;
  gather_logprobs_kernel<<<static_cast<unsigned>(params.rows), kThreads, 0, stream>>>(params);
  return cudaGetLastError();
}

}  // namespace align::kernels
