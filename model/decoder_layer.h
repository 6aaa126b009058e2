// The Phi-3 decoder layer (Phi3DecoderLayer), the only one: training, scoring and teacher forcing
// (Phi3Model::forward) and the rollout engine's prefill and decode (rollout/paged_forward.h) all
// run decoder_layer(). Pre-norm, with the projections kept fused as in the checkpoint:
//   x = rms_norm(h);  qkv = x W_qkv^T;  a = attention(qkv);
//   h, x = h + a W_o^T, rms_norm(h + a W_o^T);  h += silu_gate(x W_gate_up^T) W_down^T.
// What differs between the callers, where this layer's keys and values go and which keys its
// queries see, is the attention backend passed in:
//   DenseAttentionBackend (below)  the call's own tokens, no cache: training, scoring;
//   the paged backend (rollout/paged_forward.cc)  keys and values written into and read from the
//                                  pages of a PagedKvCache: prefill chunks and decode.
// The element-wise ops (rms_norm, residual_rms_norm, silu_gate, rope_kv_write) are kernels/'s
// NAME() functions, each choosing its fused CUDA kernel or its LibTorch reference itself
// (kernels/kernel_support.h): no caller picks.
#pragma once

#include <torch/types.h>

#include <string>

#include "model/attention.h"
#include "model/config.h"
#include "model/linear.h"
#include "model/lora.h"

namespace align {

// The four projections are LinearWeights (model/linear.h): dense, or frozen NF4 under QLoRA.
struct LayerWeights {
  torch::Tensor input_norm;  // [C]
  LinearWeight qkv;          // [H*D + 2*Hkv*D, C], rows Q | K | V
  LinearWeight o;            // [C, H*D]
  torch::Tensor post_norm;   // [C]
  LinearWeight gate_up;      // [2I, C], rows gate | up
  LinearWeight down;         // [C, I]
  LayerLora lora;            // optional adapters on qkv, o, gate_up, down (fp32)

  // The projection a LoRA target module names ("qkv_proj", ...); throws InputError otherwise.
  LinearWeight& projection(const std::string& module);
  const LinearWeight& projection(const std::string& module) const;
};

// "Write this layer's keys and values where they are kept, and attend": RoPE on q and k (each
// backend rotates with the one rotation, kernels/rope_kv_write_op.h; the paged one fuses it with
// the K/V write), then causal grouped-query attention with scale D^-0.5.
class AttentionBackend {
 public:
  virtual ~AttentionBackend() = default;
  // qkv [..., H*D + 2*Hkv*D] (layer `layer`'s fused projection output, before RoPE) ->
  // [..., H*D] in qkv's dtype.
  virtual torch::Tensor attend(int64_t layer, const torch::Tensor& qkv) const = 0;
};

// Attention among the B rows of T tokens of one call, no cache. Holds what every layer of the
// call shares: cos, sin and the dense plan (or the reference's mask).
class DenseAttentionBackend final : public AttentionBackend {
 public:
  // cos, sin [B, T, R] in the model dtype (Rope::cos_sin); segments [B, T] int64 or undefined
  // (model/attention.h: packed documents attend only within themselves).
  DenseAttentionBackend(const ModelConfig& config, torch::Tensor cos, torch::Tensor sin,
                        AttentionImpl impl, const torch::Tensor& segments);
  // qkv [B, T, H*D + 2*Hkv*D] -> [B, T, H*D].
  torch::Tensor attend(int64_t layer, const torch::Tensor& qkv) const override;

 private:
  int64_t kv_heads_, head_dim_;
  double scale_;
  torch::Tensor cos_, sin_;  // [B, T, R]
  AttentionImpl impl_;
  DenseAttentionPlan plan_;  // kDense
  torch::Tensor allowed_;    // kReference: [B, T, T] bool, which keys each query sees
};

// One decoder layer: h [..., C] in the model dtype -> [..., C]. Differentiable (the reference ops
// serve calls that want a gradient); `lora` says how the adapters in w.lora apply.
torch::Tensor decoder_layer(const ModelConfig& config, const LayerWeights& w, const LoraApply& lora,
                            const torch::Tensor& h, int64_t layer,
                            const AttentionBackend& attention);

}  // namespace align
