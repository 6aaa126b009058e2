// Rotary position embedding with Hugging Face's exact numerics (Phi3RotaryEmbedding):
//   inv_freq[i] = 1 / (ext[i] * theta^(2i / R)),  i < R/2, in fp32 (ext = 1, or the longrope
//                                                  short / long factors)
//   angle = float(position) * inv_freq (fp32); emb = cat(angle, angle);
//   cos = cos(emb) * s, sin = sin(emb) * s (s = rope_attention_scaling), then cast to the model
//   dtype. The rotation with them, apply_rope, is kernels/rope_kv_write_op.h's: the fused
//   kernel's reference and the model's attention share it.
#pragma once

#include <torch/types.h>

#include "model/config.h"

namespace align {

class Rope {
 public:
  // The frequencies are computed on the CPU (transformers' order of operations) and kept on
  // `device`, the model's: cos_sin on that device copies nothing from the host (which a CUDA graph
  // capture of the decode step, rollout/decode_graphs.h, would not allow).
  explicit Rope(const ModelConfig& config, torch::Device device = torch::kCPU);

  // cos and sin for `positions` [B, T] int64 -> each [B, T, R] in `dtype` on the positions' device.
  // `use_long` [B, T] bool picks the longrope long factors per token (undefined: short factors
  // everywhere; ignored for default RoPE).
  std::pair<torch::Tensor, torch::Tensor> cos_sin(const torch::Tensor& positions,
                                                  const torch::Tensor& use_long,
                                                  torch::ScalarType dtype) const;

  bool longrope() const { return longrope_; }

 private:
  torch::Tensor inv_freq_short_;  // also the default-RoPE frequencies
  torch::Tensor inv_freq_long_;   // undefined unless longrope
  double scaling_ = 1.0;
  bool longrope_ = false;
};

}  // namespace align
