// Phi3ForCausalLM (Phi-4, Phi-4-mini) in LibTorch, with Hugging Face's exact semantics.
//
// Dimensions: B batch rows, T new tokens per row, S key slots, C hidden, H query heads, Hkv KV
// heads, D head dim, R rotary dims, I intermediate, V vocab, L layers.
//
// h = embed(tokens); L decoder layers (model/decoder_layer.h, the one layer every caller runs);
// then rms_norm(h) and logits = h W_lm_head^T (W_lm_head = W_embed when tied).
// Works in fp32 or bf16 on CPU or CUDA: the dtype and device are the weights'.
//
// Training: LoRA adapters (model/lora.h) can be attached to the four projections of every layer;
// the forward is differentiable (set requires_grad on the tensors of named_weights() for full
// fine-tuning, or train lora_parameters()), and ForwardInput::checkpoint_layers recomputes each
// layer in backward instead of keeping its activations (model/activation_checkpoint.h).
#pragma once

#include <torch/types.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/attention.h"
#include "model/config.h"
#include "model/decoder_layer.h"
#include "model/linear.h"
#include "model/lora.h"
#include "model/nf4.h"
#include "model/rope.h"

namespace align {

struct ModelWeights {
  torch::Tensor embed;  // [V, C]
  std::vector<LayerWeights> layers;
  torch::Tensor norm;     // [C]
  torch::Tensor lm_head;  // [V, C]; the embed tensor itself when the config ties them
};

// "model.layers.<layer>.<suffix>": the Hugging Face name of a decoder layer's tensor.
std::string layer_name(int64_t layer, const char* suffix);
// Builds the weights from a source of named tensors (Hugging Face names), in checkpoint order;
// `get_projection`, when given, supplies the four projections of every layer (e.g. quantised).
ModelWeights assemble_weights(
    const ModelConfig& config, const std::function<torch::Tensor(const std::string&)>& get,
    const std::function<LinearWeight(const std::string&)>& get_projection = nullptr);
// (Hugging Face name, tensor) for every stored tensor; lm_head is left out when tied. An NF4
// projection appears as a fresh dequantised copy in the model dtype (what an export writes).
std::vector<std::pair<std::string, torch::Tensor>> named_weights(const ModelConfig& config,
                                                                 const ModelWeights& weights);

enum class LogitsAt {
  kNone,   // no logits (hidden states for chunked log-probs)
  kLast,   // [B, V] at each row's last valid token
  kAll,    // [B, T, V]
  kIndex,  // [N, V] at logits_index (flat b * T + t)
};

struct ForwardInput {
  torch::Tensor tokens;        // [B, T] int64
  torch::Tensor positions;     // [B, T] int64 RoPE positions; undefined: t
  torch::Tensor segments;      // [B, T] int64, optional: packed sequences; tokens attend
                               // only within their segment
  std::vector<int64_t> valid;  // [B] real tokens per row, the rest is right padding; empty: T
  // [B] longrope only: the sequence length that picks short/long factors per row (e.g. the full
  // prompt length during chunked prefill); empty: max valid position + 1 of the row (per segment).
  std::vector<int64_t> rope_lengths;
  LogitsAt logits = LogitsAt::kLast;
  torch::Tensor logits_index;  // [N] int64 for kIndex
  bool return_hidden = false;
  // Training: run each decoder layer under activation checkpointing (keep only its input, recompute
  // it in backward). Takes effect when grad mode is on.
  bool checkpoint_layers = false;
  // kDense: scaled_dot_product_attention (nothing O(T^2) kept); kReference: the eager reference
  // (bf16 results bit-identical to transformers' attn_implementation="eager").
  AttentionImpl attention = AttentionImpl::kDense;
};

struct ForwardOutput {
  torch::Tensor logits;  // fp32, shape per LogitsAt; undefined for kNone
  torch::Tensor hidden;  // [B, T, C] model dtype, after the final norm, when return_hidden
};

class Phi3Model {
 public:
  Phi3Model(ModelConfig config, ModelWeights weights);

  // Reads config.json and the checkpoint in `dir`, checks every tensor name and shape (one
  // InputError lists all missing, unexpected and misshaped tensors), then loads them as `dtype`
  // on `device`. CPU tensors whose dtype matches the file may view its read-only mapping: clone()
  // before writing into them.
  // With `quantize`, the four projections of every layer are quantised to NF4 (model/nf4.h) on the
  // CPU as they are read, from the tensor in `dtype`, and only the NF4 storage goes to `device`;
  // embeddings, norms and lm_head stay in `dtype`.
  static Phi3Model load(const std::string& dir, torch::ScalarType dtype, torch::Device device,
                        const std::optional<Nf4Options>& quantize = std::nullopt);

  // One forward pass over B rows of T tokens: token t of a row attends to tokens [0, t] of its
  // row (and segment), through DenseAttentionBackend. (The rollout engine's cached forward,
  // rollout/paged_forward.h, runs the same layers with a paged backend.)
  // Throws InputError for malformed inputs.
  ForwardOutput forward(const ForwardInput& input) const;

  // hidden [..., C] (model dtype, after the final norm) -> logits [..., V] fp32.
  torch::Tensor logits(const torch::Tensor& hidden) const;

  const ModelConfig& config() const { return config_; }
  const Rope& rope() const { return rope_; }
  const ModelWeights& weights() const { return weights_; }
  ModelWeights& mutable_weights() { return weights_; }
  torch::ScalarType dtype() const { return weights_.embed.scalar_type(); }
  torch::Device device() const { return weights_.embed.device(); }
  // The base weights in the model's new dtype and device (NF4 projections stay NF4, computing in
  // the new dtype); LoRA adapters move along (still fp32).
  Phi3Model to(torch::ScalarType dtype, torch::Device device) const;

  // --- Training.
  // (Hugging Face name, tensor) of every base weight, the model's own tensors (not copies): set
  // requires_grad on them for full fine-tuning. lm_head is left out when tied to the embedding.
  std::vector<std::pair<std::string, torch::Tensor>> named_weights() const;
  // Replaces every base weight that views a checkpoint's file mapping (Checkpoint::get's
  // zero-copy tensors) with an owned copy, so training can write into it. Others are untouched.
  void make_weights_owned();
  // Dropout (LoRA dropout) is active only in training mode; off by default.
  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }

  // --- LoRA.
  // Adds a fresh adapter (A seeded from (seed, tensor name), B = 0) to every target module of
  // every layer, replacing any adapters already attached. Throws InputError for bad options.
  void attach_lora(const LoraOptions& options, uint64_t seed);
  // Attaches the given adapters (e.g. read from a file) after checking their shapes and
  // options; `adapters` has one LayerLora per layer with exactly the target modules filled.
  void set_lora(const LoraOptions& options, std::vector<LayerLora> adapters);
  bool has_lora() const { return lora_.has_value(); }
  const LoraOptions& lora_options() const;  // throws Error without adapters
  // (PEFT file name, tensor) of every A and B, the model's own tensors: by layer, then module in
  // lora_module_names() order, A before B. Empty without adapters.
  std::vector<std::pair<std::string, torch::Tensor>> lora_parameters() const;
  // Disabled adapters are skipped: the forward is the base model's (a DPO reference without a
  // second copy of the weights). Enabled by default.
  void set_lora_enabled(bool enabled) { lora_enabled_ = enabled; }
  bool lora_enabled() const { return lora_enabled_; }
  // Whether any projection is stored in NF4 (QLoRA).
  bool quantized() const;
  // W += scale * B A (in fp32, cast to W's dtype) for every adapter, then removes the adapters.
  // The merged weights are new tensors (requires_grad as the old ones). An NF4 W is dequantised
  // first: the merged projection is dense in the model dtype (PEFT's merge on a 4-bit base).
  void merge_lora();
  void remove_lora();
  // How lora_linear applies this model's adapters now (none, enabled, scale, dropout in training).
  LoraApply lora_apply() const;

 private:
  ModelConfig config_;
  ModelWeights weights_;
  Rope rope_;
  std::optional<LoraOptions> lora_;
  bool lora_enabled_ = true;
  bool training_ = false;
};

// "bfloat16" / "float16" / "float32" (a config's dtype) -> Torch dtype; throws InputError.
torch::ScalarType parse_model_dtype(const std::string& name);

}  // namespace align
