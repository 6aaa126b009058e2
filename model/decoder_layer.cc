#include "model/decoder_layer.h"

#include <ATen/ATen.h>

#include <utility>

#include "common/error.h"
#include "kernels/residual_rms_norm_op.h"
#include "kernels/rms_norm_op.h"
#include "kernels/rope_kv_write_op.h"
#include "kernels/silu_gate_op.h"

namespace align {

LinearWeight& LayerWeights::projection(const std::string& module) {
  if (module == "qkv_proj") return qkv;
  if (module == "o_proj") return o;
  if (module == "gate_up_proj") return gate_up;
  if (module == "down_proj") return down;
  throw InputError("unknown LoRA target module '" + module + "'");
}

const LinearWeight& LayerWeights::projection(const std::string& module) const {
  return const_cast<LayerWeights*>(this)->projection(module);
}

DenseAttentionBackend::DenseAttentionBackend(const ModelConfig& config, torch::Tensor cos,
                                             torch::Tensor sin, AttentionImpl impl,
                                             const torch::Tensor& segments)
    : kv_heads_(config.num_kv_heads),
      head_dim_(config.head_dim),
      scale_(attention_scale(config.head_dim)),
      cos_(std::move(cos)),
      sin_(std::move(sin)),
      impl_(impl) {
  const int64_t B = cos_.size(0), T = cos_.size(1);
  const auto device = cos_.device();
  if (impl_ == AttentionImpl::kDense) {
    plan_ = plan_dense_attention(B, T, config.sliding_window, segments, cos_.scalar_type(), device);
  } else {
    auto slots = at::arange(T, at::TensorOptions(at::kLong).device(device)).expand({B, T});
    allowed_ = attention_mask(slots, T, config.sliding_window, segments);
  }
}

torch::Tensor DenseAttentionBackend::attend(int64_t /*layer*/, const torch::Tensor& qkv) const {
  const auto [q, k, v] = rope_qkv(qkv, cos_, sin_, kv_heads_, head_dim_);  // [B, T, *, D]
  auto out = impl_ == AttentionImpl::kDense
                 ? dense_attention(q, k, v, plan_, scale_)
                 : attention(q, k.transpose(1, 2), v.transpose(1, 2), allowed_, scale_);
  return out.reshape({qkv.size(0), qkv.size(1), -1});
}

torch::Tensor decoder_layer(const ModelConfig& c, const LayerWeights& w, const LoraApply& lora,
                            const torch::Tensor& h, int64_t layer,
                            const AttentionBackend& attention) {
  auto x = rms_norm(h, w.input_norm, c.rms_norm_eps);
  auto attn = attention.attend(layer, lora_linear(x, w.qkv, w.lora.qkv, lora));  // [..., H*D]
  auto [residual, y] =
      residual_rms_norm(h, lora_linear(attn, w.o, w.lora.o, lora), w.post_norm, c.rms_norm_eps);
  auto gated = silu_gate(lora_linear(y, w.gate_up, w.lora.gate_up, lora));  // [..., I]
  return residual + lora_linear(gated, w.down, w.lora.down, lora);
}

}  // namespace align
