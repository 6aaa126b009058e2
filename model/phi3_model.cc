#include "model/phi3_model.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <memory>
#include <tuple>
#include <utility>

#include "common/error.h"
#include "kernels/rms_norm_op.h"
#include "model/activation_checkpoint.h"
#include "model/checkpoint.h"
#include "model/init.h"
#include "model/linear.h"

namespace align {
namespace {

[[noreturn]] void bad_input(const std::string& what) {
  throw InputError("Phi3Model::forward: " + what);
}

std::string shape_of(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i)
    s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

void check_inputs(const ForwardInput& in) {
  if (!in.tokens.defined() || in.tokens.dim() != 2 || in.tokens.scalar_type() != at::kLong) {
    bad_input("tokens must be a [B, T] int64 tensor");
  }
  const int64_t B = in.tokens.size(0), T = in.tokens.size(1);
  if (B == 0 || T == 0) bad_input("tokens must not be empty, got " + shape_of(in.tokens));
  for (const auto* t : {&in.positions, &in.segments}) {
    if (t->defined() && (t->sizes() != in.tokens.sizes() || t->scalar_type() != at::kLong)) {
      bad_input("positions and segments must be int64 tensors shaped like tokens " +
                shape_of(in.tokens) + ", got " + shape_of(*t));
    }
  }
  auto check_rows = [&](const std::vector<int64_t>& v, const char* name) {
    if (!v.empty() && static_cast<int64_t>(v.size()) != B) {
      bad_input(std::string(name) + " has " + std::to_string(v.size()) + " entries for " +
                std::to_string(B) + " rows");
    }
  };
  check_rows(in.valid, "valid");
  check_rows(in.rope_lengths, "rope_lengths");
  for (int64_t n : in.valid) {
    if (n < 0 || n > T) bad_input("valid counts must be in [0, T = " + std::to_string(T) + "]");
    if (n == 0 && in.logits == LogitsAt::kLast)
      bad_input("LogitsAt::kLast on a row with no tokens");
  }
  if (in.logits == LogitsAt::kIndex && (!in.logits_index.defined() || in.logits_index.dim() != 1 ||
                                        in.logits_index.scalar_type() != at::kLong)) {
    bad_input("LogitsAt::kIndex needs logits_index, a [N] int64 tensor");
  }
}

// Longrope: which tokens use the long factors, [B, T] bool. A sequence (a row, or a segment of
// a packed row) uses them for every position when its length (max valid position + 1, or the
// caller's rope_lengths) exceeds original_max_position_embeddings.
torch::Tensor long_factor_mask(const ModelConfig& config, const ForwardInput& in,
                               const torch::Tensor& positions, const torch::Tensor& valid_mask) {
  const int64_t B = positions.size(0), T = positions.size(1);
  if (!in.rope_lengths.empty()) {
    auto lengths = at::tensor(in.rope_lengths, at::kLong).to(positions.device());
    return (lengths > config.original_max_position_embeddings).view({B, 1}).expand({B, T});
  }
  auto pos = positions.masked_fill(valid_mask.logical_not(), -1);  // padding never counts
  torch::Tensor seq_len;
  if (in.segments.defined()) {
    auto same = in.segments.unsqueeze(-1) == in.segments.unsqueeze(1);  // [B, T, T]
    auto masked = at::where(same, pos.unsqueeze(1), at::full({}, -1, pos.options()));
    seq_len = std::get<0>(masked.max(-1)) + 1;  // [B, T]
  } else {
    seq_len = (std::get<0>(pos.max(-1, /*keepdim=*/true)) + 1).expand({B, T});
  }
  return seq_len > config.original_max_position_embeddings;
}

}  // namespace

std::string layer_name(int64_t layer, const char* suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

ModelWeights assemble_weights(
    const ModelConfig& config, const std::function<torch::Tensor(const std::string&)>& get,
    const std::function<LinearWeight(const std::string&)>& get_projection) {
  auto projection = [&](const std::string& name) {
    return get_projection ? get_projection(name) : LinearWeight(get(name));
  };
  ModelWeights w;
  w.embed = get("model.embed_tokens.weight");
  for (int64_t i = 0; i < config.num_layers; ++i) {
    LayerWeights layer;
    layer.input_norm = get(layer_name(i, "input_layernorm.weight"));
    layer.qkv = projection(layer_name(i, "self_attn.qkv_proj.weight"));
    layer.o = projection(layer_name(i, "self_attn.o_proj.weight"));
    layer.post_norm = get(layer_name(i, "post_attention_layernorm.weight"));
    layer.gate_up = projection(layer_name(i, "mlp.gate_up_proj.weight"));
    layer.down = projection(layer_name(i, "mlp.down_proj.weight"));
    w.layers.push_back(std::move(layer));
  }
  w.norm = get("model.norm.weight");
  w.lm_head = config.tie_word_embeddings ? w.embed : get("lm_head.weight");
  return w;
}

std::vector<std::pair<std::string, torch::Tensor>> named_weights(const ModelConfig& config,
                                                                 const ModelWeights& w) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  out.emplace_back("model.embed_tokens.weight", w.embed);
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const LayerWeights& layer = w.layers.at(static_cast<size_t>(i));
    out.emplace_back(layer_name(i, "input_layernorm.weight"), layer.input_norm);
    out.emplace_back(layer_name(i, "self_attn.qkv_proj.weight"), layer.qkv.dequantized());
    out.emplace_back(layer_name(i, "self_attn.o_proj.weight"), layer.o.dequantized());
    out.emplace_back(layer_name(i, "post_attention_layernorm.weight"), layer.post_norm);
    out.emplace_back(layer_name(i, "mlp.gate_up_proj.weight"), layer.gate_up.dequantized());
    out.emplace_back(layer_name(i, "mlp.down_proj.weight"), layer.down.dequantized());
  }
  out.emplace_back("model.norm.weight", w.norm);
  if (!config.tie_word_embeddings) out.emplace_back("lm_head.weight", w.lm_head);
  return out;
}

Phi3Model::Phi3Model(ModelConfig config, ModelWeights weights)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      rope_(config_, weights_.embed.defined() ? weights_.embed.device() : torch::kCPU) {
  if (static_cast<int64_t>(weights_.layers.size()) != config_.num_layers) {
    throw InputError("Phi3Model: " + std::to_string(weights_.layers.size()) +
                     " layers of weights for a config with " + std::to_string(config_.num_layers));
  }
}

Phi3Model Phi3Model::load(const std::string& dir, torch::ScalarType dtype, torch::Device device,
                          const std::optional<Nf4Options>& quantize) {
  ModelConfig config = load_model_config(dir);
  Checkpoint checkpoint = Checkpoint::open(dir);
  checkpoint.check(model_tensor_shapes(config));
  auto get = [&](const std::string& name) { return checkpoint.get(name, dtype, device); };
  std::function<LinearWeight(const std::string&)> get_projection;
  if (quantize) {
    get_projection = [&](const std::string& name) {
      // In the model dtype on the CPU (a view of the mapping when the dtypes match), then only
      // the NF4 storage travels to the device.
      return LinearWeight(
          nf4_quantize(checkpoint.get(name, dtype, torch::kCPU), *quantize).to(device), dtype);
    };
  }
  ModelWeights weights = assemble_weights(config, get, get_projection);
  return Phi3Model(std::move(config), std::move(weights));
}

Phi3Model Phi3Model::to(torch::ScalarType dtype, torch::Device device) const {
  auto move = [&](const torch::Tensor& t) { return t.to(device, dtype); };
  ModelWeights w;
  w.embed = move(weights_.embed);
  for (const LayerWeights& from : weights_.layers) {
    LayerWeights layer;
    layer.input_norm = move(from.input_norm);
    layer.post_norm = move(from.post_norm);
    for (const std::string& module : lora_module_names())
      layer.projection(module) = from.projection(module).to(dtype, device);
    w.layers.push_back(std::move(layer));
  }
  w.norm = move(weights_.norm);
  w.lm_head = weights_.lm_head.is_same(weights_.embed) ? w.embed : move(weights_.lm_head);
  Phi3Model out(config_, std::move(w));
  if (lora_) {
    std::vector<LayerLora> adapters;
    for (const LayerWeights& layer : weights_.layers) {
      LayerLora moved_lora;
      for (const auto& module : lora_->target_modules) {
        const LoraAdapter& from = layer.lora.at(module);
        LoraAdapter& to = moved_lora.at(module);
        to.a = from.a.to(device).detach().requires_grad_(from.a.requires_grad());
        to.b = from.b.to(device).detach().requires_grad_(from.b.requires_grad());
      }
      adapters.push_back(std::move(moved_lora));
    }
    out.set_lora(*lora_, std::move(adapters));
  }
  out.lora_enabled_ = lora_enabled_;
  out.training_ = training_;
  return out;
}

torch::Tensor Phi3Model::logits(const torch::Tensor& hidden) const {
  return project(hidden, weights_.lm_head).to(at::kFloat);
}

namespace {

// The cos and sin of every token of the call, [B, T, R] in `dtype`.
std::pair<torch::Tensor, torch::Tensor> call_cos_sin(const ModelConfig& c, const Rope& rope,
                                                     const ForwardInput& in,
                                                     const std::vector<int64_t>& valid,
                                                     torch::ScalarType dtype,
                                                     torch::Device device) {
  const int64_t B = in.tokens.size(0), T = in.tokens.size(1);
  auto steps = at::arange(T, at::kLong).view({1, T});
  auto positions =
      in.positions.defined() ? in.positions.to(device) : steps.expand({B, T}).to(device);
  torch::Tensor use_long;  // [B, T] bool
  if (c.rope_type == RopeType::kLongrope) {
    auto valid_mask = (steps < at::tensor(valid, at::kLong).view({B, 1})).to(device);
    use_long = long_factor_mask(c, in, positions, valid_mask);
  }
  return rope.cos_sin(positions, use_long, dtype);
}

// Every tensor of a layer that may require grad: the base weights and the LoRA A and B.
std::vector<torch::Tensor> layer_tensors(const LayerWeights& w) {
  std::vector<torch::Tensor> out = {w.input_norm, w.post_norm};
  for (const LinearWeight* p : {&w.qkv, &w.o, &w.gate_up, &w.down}) {
    if (!p->quantized()) out.push_back(p->dense());  // NF4 storage is frozen
  }
  for (const LoraAdapter* a : {&w.lora.qkv, &w.lora.o, &w.lora.gate_up, &w.lora.down}) {
    if (a->defined()) {
      out.push_back(a->a);
      out.push_back(a->b);
    }
  }
  return out;
}

}  // namespace

ForwardOutput Phi3Model::forward(const ForwardInput& in) const {
  check_inputs(in);
  const ModelConfig& c = config_;
  const int64_t B = in.tokens.size(0), T = in.tokens.size(1), C = c.hidden_size;
  const std::vector<int64_t> valid =
      in.valid.empty() ? std::vector<int64_t>(static_cast<size_t>(B), T) : in.valid;
  auto [cos, sin] = call_cos_sin(c, rope_, in, valid, dtype(), device());
  // Shared by every layer; the recompute in backward outlives this call, so closures own it.
  const auto attention = std::make_shared<const DenseAttentionBackend>(
      c, std::move(cos), std::move(sin), in.attention,
      in.segments.defined() ? in.segments.to(device()) : torch::Tensor());

  auto tokens = in.tokens.to(device()).reshape(-1);
  auto h = weights_.embed.index_select(0, tokens).view({B, T, C});  // [B, T, C]
  const LoraApply lora = lora_apply();
  if (in.checkpoint_layers && torch::GradMode::is_enabled()) {
    auto config = std::make_shared<const ModelConfig>(c);
    for (size_t l = 0; l < weights_.layers.size(); ++l) {
      const LayerWeights& w = weights_.layers[l];
      const auto layer = static_cast<int64_t>(l);
      h = checkpoint(
          [config, attention, w, lora, layer](const torch::Tensor& x) {
            return decoder_layer(*config, w, lora, x, layer, *attention);
          },
          h, layer_tensors(w));
    }
  } else {
    for (size_t l = 0; l < weights_.layers.size(); ++l)
      h = decoder_layer(c, weights_.layers[l], lora, h, static_cast<int64_t>(l), *attention);
  }
  h = rms_norm(h, weights_.norm, c.rms_norm_eps);

  ForwardOutput out;
  if (in.logits == LogitsAt::kAll) {
    out.logits = logits(h);
  } else if (in.logits == LogitsAt::kLast || in.logits == LogitsAt::kIndex) {
    torch::Tensor index = in.logits_index;
    if (in.logits == LogitsAt::kLast) {
      std::vector<int64_t> last;
      for (int64_t b = 0; b < B; ++b)
        last.push_back(b * T + valid[static_cast<size_t>(b)] - 1);
      index = at::tensor(last, at::kLong);
    }
    out.logits = logits(h.reshape({B * T, C}).index_select(0, index.to(device())));
  }
  if (in.return_hidden) out.hidden = h;
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> Phi3Model::named_weights() const {
  return align::named_weights(config_, weights_);
}

void Phi3Model::make_weights_owned() {
  // Checkpoint::get's zero-copy tensors come from from_blob, whose storage is not resizable;
  // tensors from an allocator are.
  auto own = [](torch::Tensor& t) {
    if (t.storage().resizable()) return;
    const bool grad = t.requires_grad();
    t = t.detach().clone().requires_grad_(grad);
  };
  const bool tied = weights_.lm_head.is_same(weights_.embed);
  own(weights_.embed);
  for (LayerWeights& layer : weights_.layers) {
    own(layer.input_norm);
    own(layer.post_norm);
    for (LinearWeight* p : {&layer.qkv, &layer.o, &layer.gate_up, &layer.down}) {
      if (!p->quantized()) own(p->mutable_dense());
    }
  }
  own(weights_.norm);
  if (tied) {
    weights_.lm_head = weights_.embed;
  } else {
    own(weights_.lm_head);
  }
}

LoraApply Phi3Model::lora_apply() const {
  LoraApply apply;
  if (!lora_) return apply;
  apply.enabled = lora_enabled_;
  apply.scale = lora_->scale();
  apply.dropout = lora_->dropout;
  apply.training = training_;
  return apply;
}

void Phi3Model::attach_lora(const LoraOptions& options, uint64_t seed) {
  validate_lora_options(options, "attach_lora");
  std::vector<LayerLora> adapters(weights_.layers.size());
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    for (const auto& module : options.target_modules) {
      const LinearWeight& w = weights_.layers[l].projection(module);
      adapters[l].at(module) =
          init_lora_adapter(w.out_features(), w.in_features(), options.rank, seed,
                            peft_tensor_name(static_cast<int64_t>(l), module, 'A'), device());
    }
  }
  set_lora(options, std::move(adapters));
}

void Phi3Model::set_lora(const LoraOptions& options, std::vector<LayerLora> adapters) {
  validate_lora_options(options, "set_lora");
  if (adapters.size() != weights_.layers.size()) {
    throw InputError("set_lora: " + std::to_string(adapters.size()) + " layers of adapters for a " +
                     std::to_string(weights_.layers.size()) + "-layer model");
  }
  for (size_t l = 0; l < adapters.size(); ++l) {
    for (const auto& module : lora_module_names()) {
      const LoraAdapter& a = adapters[l].at(module);
      const bool targeted = std::find(options.target_modules.begin(), options.target_modules.end(),
                                      module) != options.target_modules.end();
      const std::string where = lora_module_path(static_cast<int64_t>(l), module);
      if (a.defined() != targeted || (a.defined() && !a.b.defined())) {
        throw InputError("set_lora: " + where +
                         (targeted ? " has no adapter but is a target module"
                                   : " has an adapter but is not a target"));
      }
      if (!targeted) continue;
      const LinearWeight& w = weights_.layers[l].projection(module);
      const std::vector<int64_t> want_a = {options.rank, w.in_features()},
                                 want_b = {w.out_features(), options.rank};
      if (a.a.sizes().vec() != want_a || a.b.sizes().vec() != want_b) {
        throw InputError("set_lora: " + where + " adapter shapes A " + shape_of(a.a) + ", B " +
                         shape_of(a.b) + "; expected A " + shape_str(want_a) + ", B " +
                         shape_str(want_b));
      }
      if (a.a.device() != device() || a.b.device() != device()) {
        throw InputError("set_lora: " + where + " adapter is on " + a.a.device().str() +
                         ", the model on " + device().str());
      }
    }
  }
  for (size_t l = 0; l < adapters.size(); ++l)
    weights_.layers[l].lora = std::move(adapters[l]);
  lora_ = options;
}

const LoraOptions& Phi3Model::lora_options() const {
  if (!lora_) throw Error("Phi3Model: no LoRA adapters are attached");
  return *lora_;
}

std::vector<std::pair<std::string, torch::Tensor>> Phi3Model::lora_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (!lora_) return out;
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    for (const auto& module : lora_module_names()) {
      const LoraAdapter& a = weights_.layers[l].lora.at(module);
      if (!a.defined()) continue;
      out.emplace_back(peft_tensor_name(static_cast<int64_t>(l), module, 'A'), a.a);
      out.emplace_back(peft_tensor_name(static_cast<int64_t>(l), module, 'B'), a.b);
    }
  }
  return out;
}

void Phi3Model::merge_lora() {
  if (!lora_) return;
  torch::NoGradGuard no_grad;
  const double scale = lora_->scale();
  for (LayerWeights& layer : weights_.layers) {
    for (const auto& module : lora_->target_modules) {
      LinearWeight& w = layer.projection(module);
      const bool grad = !w.quantized() && w.dense().requires_grad();
      w = merged_weight(w.dequantized(), layer.lora.at(module), scale).requires_grad_(grad);
    }
  }
  remove_lora();
}

bool Phi3Model::quantized() const {
  for (const LayerWeights& layer : weights_.layers) {
    for (const LinearWeight* p : {&layer.qkv, &layer.o, &layer.gate_up, &layer.down}) {
      if (p->quantized()) return true;
    }
  }
  return false;
}

void Phi3Model::remove_lora() {
  for (LayerWeights& layer : weights_.layers)
    layer.lora = LayerLora();
  lora_.reset();
}

torch::ScalarType parse_model_dtype(const std::string& name) {
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float32" || name == "fp32") return at::kFloat;
  if (name == "float16" || name == "fp16") return at::kHalf;
  throw InputError("unknown model dtype '" + name + "' (expected bfloat16, float16 or float32)");
}

}  // namespace align
