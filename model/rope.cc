#include "model/rope.h"

#include <ATen/ATen.h>

namespace align {
namespace {

// 1 / (factors * theta^(arange(0, R, 2) / R)) in fp32, in the order transformers evaluates it.
torch::Tensor inverse_frequencies(double theta, int64_t rotary_dim,
                                  const std::vector<double>* factors) {
  auto exponent = at::arange(0, rotary_dim, 2, at::kLong).to(at::kFloat) / rotary_dim;
  auto base = at::pow(theta, exponent);  // fp32, like `base ** tensor` in Python
  if (factors) {
    auto ext = at::tensor(*factors, at::kDouble).to(at::kFloat);
    base = ext * base;
  }
  return at::reciprocal(base);
}

}  // namespace

Rope::Rope(const ModelConfig& config, torch::Device device) {
  longrope_ = config.rope_type == RopeType::kLongrope;
  scaling_ = config.rope_attention_scaling;
  if (longrope_) {
    inv_freq_short_ =
        inverse_frequencies(config.rope_theta, config.rotary_dim, &config.short_factor);
    inv_freq_long_ = inverse_frequencies(config.rope_theta, config.rotary_dim, &config.long_factor);
  } else {
    inv_freq_short_ = inverse_frequencies(config.rope_theta, config.rotary_dim, nullptr);
  }
  inv_freq_short_ = inv_freq_short_.to(device);
  if (inv_freq_long_.defined()) inv_freq_long_ = inv_freq_long_.to(device);
}

std::pair<torch::Tensor, torch::Tensor> Rope::cos_sin(const torch::Tensor& positions,
                                                      const torch::Tensor& use_long,
                                                      torch::ScalarType dtype) const {
  auto device = positions.device();
  auto inv = inv_freq_short_.to(device);  // [R/2]
  if (longrope_ && use_long.defined()) {
    inv = at::where(use_long.unsqueeze(-1), inv_freq_long_.to(device), inv);  // [B, T, R/2]
  }
  auto freqs = positions.to(at::kFloat).unsqueeze(-1) * inv;  // [B, T, R/2] fp32
  auto emb = at::cat({freqs, freqs}, -1);                     // [B, T, R]
  auto cos = emb.cos();
  auto sin = emb.sin();
  if (scaling_ != 1.0) {
    cos = cos * scaling_;
    sin = sin * scaling_;
  }
  return {cos.to(dtype), sin.to(dtype)};
}

}  // namespace align
