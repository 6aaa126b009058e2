#include "model/kv_cache.h"

#include <ATen/ATen.h>

#include "common/error.h"

namespace align {

KvCache KvCache::allocate(const ModelConfig& config, int64_t batch, int64_t capacity,
                          torch::ScalarType dtype, torch::Device device) {
  if (batch <= 0 || capacity <= 0) {
    throw InputError("KV cache: batch and capacity must be positive, got batch " +
                     std::to_string(batch) + ", capacity " + std::to_string(capacity));
  }
  KvCache cache;
  auto options = at::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < config.num_layers; ++l) {
    cache.k.push_back(at::zeros({batch, config.num_kv_heads, capacity, config.head_dim}, options));
    cache.v.push_back(at::zeros({batch, config.num_kv_heads, capacity, config.head_dim}, options));
  }
  cache.lengths.assign(static_cast<size_t>(batch), 0);
  cache.long_rope.assign(static_cast<size_t>(batch), 0);
  return cache;
}

int64_t KvCache::bytes() const {
  int64_t total = 0;
  for (size_t l = 0; l < k.size(); ++l)
    total += k[l].nbytes() + v[l].nbytes();
  return total;
}

void KvCache::reset(int64_t row) {
  lengths.at(static_cast<size_t>(row)) = 0;
  long_rope.at(static_cast<size_t>(row)) = 0;
}

void KvCache::reset_all() {
  for (int64_t b = 0; b < batch(); ++b)
    reset(b);
}

bool needs_reprefill(const ModelConfig& config, const KvCache& cache, int64_t row,
                     int64_t seq_len) {
  const size_t r = static_cast<size_t>(row);
  return cache.lengths.at(r) > 0 && config.uses_long_factors(seq_len) && !cache.long_rope.at(r);
}

}  // namespace align
