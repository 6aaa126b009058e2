// Deterministic seeds: splitmix64 (Steele, Lea, Flood 2014), and a seed per named object so values
// drawn for it depend on neither the order nor the set of other objects drawn.
#pragma once

#include <cstdint>
#include <string_view>

namespace align {

// One step of splitmix64: advances `state` and returns the next output.
inline uint64_t splitmix64_next(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// splitmix64's output for state x (a stateless mix).
inline uint64_t splitmix64(uint64_t x) {
  return splitmix64_next(x);
}

// A seed for the object `name` (a tensor, an adapter) under the run seed: FNV-1a of the name,
// mixed.
inline uint64_t named_seed(uint64_t seed, std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : name)
    h = (h ^ ch) * 0x100000001b3ULL;
  return splitmix64(seed ^ splitmix64(h));
}

}  // namespace align
