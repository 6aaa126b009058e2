// LoRA (Hu et al. 2021, arXiv 2106.09685) with PEFT's semantics, for the four Phi3 projections.
//
// An adapted projection computes, as peft.tuners.lora.Linear.forward does:
//   y = x W^T + (dropout(x) A^T B^T) * scale,   scale = alpha / r,
// with A [r, in] and B [out, r] trainable fp32. The fused qkv_proj and gate_up_proj get one adapter
// each (PEFT targets modules, and these are single nn.Linear modules in Phi3).
// Initialisation as PEFT's default (init_lora_weights=True): A ~ kaiming_uniform(a=sqrt(5)), i.e.
// U(-1/sqrt(in), 1/sqrt(in)) (nn.init with gain sqrt(2/(1+a^2)), bound gain*sqrt(3/fan_in)), B = 0,
// so a fresh adapter leaves the model unchanged.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/linear.h"

namespace align {

struct LoraOptions {
  int64_t rank = 16;     // r
  double alpha = 32;     // lora_alpha; scale = alpha / r
  double dropout = 0.0;  // lora_dropout on the adapter's input, active only in training
  // Phi3 module names (PEFT target_modules): any of qkv_proj, o_proj, gate_up_proj, down_proj.
  std::vector<std::string> target_modules = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};

  double scale() const { return alpha / static_cast<double>(rank); }
  bool operator==(const LoraOptions& other) const;
};

// Throws InputError naming `source` and the field: rank >= 1, alpha > 0 and finite,
// 0 <= dropout < 1, at least one target, every target a known module, no duplicates.
void validate_lora_options(const LoraOptions& options, const std::string& source);

// PEFT's "all-linear" (every linear layer but the output layer: for Phi3 the four projections)
// expanded in place of itself; other names kept as given.
std::vector<std::string> expand_lora_targets(const std::vector<std::string>& targets);

// One adapter; an undefined `a` means "no adapter on this projection".
struct LoraAdapter {
  torch::Tensor a;  // [r, in] fp32, requires_grad
  torch::Tensor b;  // [out, r] fp32, requires_grad

  bool defined() const { return a.defined(); }
};

// The adapters of one decoder layer, one slot per target module.
struct LayerLora {
  LoraAdapter qkv;      // self_attn.qkv_proj  [r, C] / [H*D + 2*Hkv*D, r]
  LoraAdapter o;        // self_attn.o_proj    [r, H*D] / [C, r]
  LoraAdapter gate_up;  // mlp.gate_up_proj    [r, C] / [2I, r]
  LoraAdapter down;     // mlp.down_proj       [r, I] / [C, r]

  // The slot of a module name ("qkv_proj", ...); throws InputError for any other name.
  LoraAdapter& at(const std::string& module);
  const LoraAdapter& at(const std::string& module) const;
  bool any() const { return qkv.defined() || o.defined() || gate_up.defined() || down.defined(); }
};

// Every module LoRA can target, in the order a layer uses them.
const std::vector<std::string>& lora_module_names();
// "model.layers.{layer}.self_attn.qkv_proj" and so on: the Hugging Face path of the module.
std::string lora_module_path(int64_t layer, const std::string& module);
// PEFT's name of an adapter tensor in adapter_model.safetensors:
// "base_model.model.model.layers.{layer}.self_attn.qkv_proj.lora_A.weight" (which = 'A' or 'B').
std::string peft_tensor_name(int64_t layer, const std::string& module, char which);

// A fresh adapter for a projection weight [out, in]: A drawn from a CPU generator seeded from
// (seed, name), so the values depend on neither device nor creation order; B zeros. fp32 on
// `device`, requires_grad.
LoraAdapter init_lora_adapter(int64_t out_features, int64_t in_features, int64_t rank,
                              uint64_t seed, const std::string& name, torch::Device device);

// How adapters apply in one forward call (captured by value, so a recompute in backward sees the
// settings of its forward even if the model's flags changed in between).
struct LoraApply {
  bool enabled = false;  // false: every adapter is skipped
  double scale = 0.0;    // alpha / r
  double dropout = 0.0;  // probability; applied only when training
  bool training = false;
};

// x [..., in] (model dtype), weight [out, in] (dense or NF4, model/linear.h) -> [..., out] in x's
// dtype. Without an adapter (or when disabled) this is project(x, weight), bit for bit.
// With one, as PEFT does for a bf16 base and fp32 adapters: the base product stays in the model
// dtype, x is cast to the adapter dtype (fp32) for dropout, A and B, the two are summed in fp32
// and the sum is cast back to x's dtype once. For an fp32 model everything is fp32.
torch::Tensor lora_linear(const torch::Tensor& x, const LinearWeight& weight,
                          const LoraAdapter& adapter, const LoraApply& apply);

// W + scale * B A computed in fp32 and cast to W's dtype (PEFT's merge): [out, in].
torch::Tensor merged_weight(const torch::Tensor& weight, const LoraAdapter& adapter, double scale);

}  // namespace align
