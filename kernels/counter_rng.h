// A counter-based random number generator: the random draw for (seed, step) is a pure function of
// the pair, identical on host and device, so a request's samples depend on its seed and position
// only, never on the batch it happens to share or the order rows are processed in.
//
//   counter_bits(seed, step) = mix(mix(seed) + (step + 1) * golden)
//
// is output `step` of a SplitMix64 stream (Steele, Lea & Flood, "Fast splittable pseudorandom
// number generators", OOPSLA 2014) whose state starts at mix(seed); hashing the seed first keeps
// streams of nearby seeds (0, 1, 2, ...) unrelated. Torch-free so CUDA kernels include it.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define ALIGN_HOST_DEVICE __host__ __device__
#else
#define ALIGN_HOST_DEVICE
#endif

namespace align {

// The SplitMix64 finaliser: a bijection on 64-bit words with good avalanche.
ALIGN_HOST_DEVICE inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// 64 random bits for draw `step` of stream `seed`.
ALIGN_HOST_DEVICE inline uint64_t counter_bits(uint64_t seed, uint64_t step) {
  return splitmix64_mix(splitmix64_mix(seed) + (step + 1) * 0x9E3779B97F4A7C15ull);
}

// The top 53 bits of counter_bits: an integer in [0, 2^53). counter_uniform = this * 2^-53.
ALIGN_HOST_DEVICE inline uint64_t counter_u53(uint64_t seed, uint64_t step) {
  return counter_bits(seed, step) >> 11;
}

// A double uniform on [0, 1), a multiple of 2^-53 (exactly representable, so host and device
// agree).
ALIGN_HOST_DEVICE inline double counter_uniform(uint64_t seed, uint64_t step) {
  return static_cast<double>(counter_u53(seed, step)) * (1.0 / 9007199254740992.0);
}

}  // namespace align
