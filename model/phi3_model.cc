#include "model/phi3_model.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common/error.h"
#include "model/attention.h"
#include "model/checkpoint.h"
#include "model/init.h"
#include "model/ops.h"

namespace align {
namespace {

std::string layer_name(int64_t i, const char* suffix) {
  return "model.layers." + std::to_string(i) + "." + suffix;
}

[[noreturn]] void bad_input(const std::string& what) {
  throw InputError("Phi3Model::forward: " + what);
}

std::string shape_of(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i)
    s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

void check_inputs(const ForwardInput& in, const KvCache* cache) {
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
  if (in.segments.defined() && cache) bad_input("segments cannot be combined with a KV cache");
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
  if (cache) {
    if (cache->batch() != B) {
      bad_input("the KV cache has " + std::to_string(cache->batch()) + " rows, tokens have " +
                std::to_string(B));
    }
    for (int64_t b = 0; b < B; ++b) {
      if (cache->lengths[static_cast<size_t>(b)] + T > cache->capacity()) {
        bad_input("row " + std::to_string(b) + " holds " +
                  std::to_string(cache->lengths[static_cast<size_t>(b)]) + " tokens; " +
                  std::to_string(T) + " more exceed the cache capacity " +
                  std::to_string(cache->capacity()));
      }
    }
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

ModelWeights assemble_weights(const ModelConfig& config,
                              const std::function<torch::Tensor(const std::string&)>& get) {
  ModelWeights w;
  w.embed = get("model.embed_tokens.weight");
  for (int64_t i = 0; i < config.num_layers; ++i) {
    LayerWeights layer;
    layer.input_norm = get(layer_name(i, "input_layernorm.weight"));
    layer.qkv = get(layer_name(i, "self_attn.qkv_proj.weight"));
    layer.o = get(layer_name(i, "self_attn.o_proj.weight"));
    layer.post_norm = get(layer_name(i, "post_attention_layernorm.weight"));
    layer.gate_up = get(layer_name(i, "mlp.gate_up_proj.weight"));
    layer.down = get(layer_name(i, "mlp.down_proj.weight"));
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
    out.emplace_back(layer_name(i, "self_attn.qkv_proj.weight"), layer.qkv);
    out.emplace_back(layer_name(i, "self_attn.o_proj.weight"), layer.o);
    out.emplace_back(layer_name(i, "post_attention_layernorm.weight"), layer.post_norm);
    out.emplace_back(layer_name(i, "mlp.gate_up_proj.weight"), layer.gate_up);
    out.emplace_back(layer_name(i, "mlp.down_proj.weight"), layer.down);
  }
  out.emplace_back("model.norm.weight", w.norm);
  if (!config.tie_word_embeddings) out.emplace_back("lm_head.weight", w.lm_head);
  return out;
}

Phi3Model::Phi3Model(ModelConfig config, ModelWeights weights)
    : config_(std::move(config)), weights_(std::move(weights)), rope_(config_) {
  if (static_cast<int64_t>(weights_.layers.size()) != config_.num_layers) {
    throw InputError("Phi3Model: " + std::to_string(weights_.layers.size()) +
                     " layers of weights for a config with " + std::to_string(config_.num_layers));
  }
}

Phi3Model Phi3Model::load(const std::string& dir, torch::ScalarType dtype, torch::Device device) {
  ModelConfig config = load_model_config(dir);
  Checkpoint checkpoint = Checkpoint::open(dir);
  checkpoint.check(model_tensor_shapes(config));
  ModelWeights weights = assemble_weights(
      config, [&](const std::string& name) { return checkpoint.get(name, dtype, device); });
  return Phi3Model(std::move(config), std::move(weights));
}

Phi3Model Phi3Model::to(torch::ScalarType dtype, torch::Device device) const {
  std::vector<std::pair<std::string, torch::Tensor>> named = named_weights(config_, weights_);
  std::map<std::string, torch::Tensor> moved;
  for (auto& [name, t] : named)
    moved[name] = t.to(device, dtype);
  return Phi3Model(config_,
                   assemble_weights(config_, [&](const std::string& n) { return moved.at(n); }));
}

torch::Tensor Phi3Model::logits(const torch::Tensor& hidden) const {
  return project(hidden, weights_.lm_head).to(at::kFloat);
}

ForwardOutput Phi3Model::forward(const ForwardInput& in, KvCache* cache) const {
  check_inputs(in, cache);
  const ModelConfig& c = config_;
  const auto device = this->device();
  const auto dtype = this->dtype();
  const int64_t B = in.tokens.size(0), T = in.tokens.size(1);
  const auto long_opts = at::TensorOptions().dtype(at::kLong);

  std::vector<int64_t> valid = in.valid.empty() ? std::vector<int64_t>(B, T) : in.valid;
  std::vector<int64_t> start(static_cast<size_t>(B), 0);  // cached tokens per row
  if (cache) start = cache->lengths;
  int64_t num_keys = T;
  if (cache) num_keys = *std::max_element(start.begin(), start.end()) + T;

  auto steps = at::arange(T, long_opts).view({1, T});
  auto slots = (at::tensor(start, at::kLong).view({B, 1}) + steps).to(device);  // [B, T]
  auto valid_mask = (steps < at::tensor(valid, at::kLong).view({B, 1})).to(device);
  auto positions = in.positions.defined() ? in.positions.to(device) : slots;
  auto tokens = in.tokens.to(device);
  auto segments = in.segments.defined() ? in.segments.to(device) : torch::Tensor();

  torch::Tensor use_long;
  std::vector<uint8_t> row_long(static_cast<size_t>(B), 0);
  if (c.rope_type == RopeType::kLongrope) {
    use_long = long_factor_mask(c, in, positions, valid_mask);
    if (cache) {
      auto any_long = use_long.any(-1).to(at::kCPU);
      for (int64_t b = 0; b < B; ++b) {
        const size_t r = static_cast<size_t>(b);
        const uint8_t wants = any_long[b].item<bool>() ? 1 : 0;
        row_long[r] = wants;
        if (cache->lengths[r] > 0 && wants != cache->long_rope[r]) {
          throw Error("Phi3Model::forward: row " + std::to_string(b) +
                      " was cached with the longrope " + (cache->long_rope[r] ? "long" : "short") +
                      " factors but now needs the " + (wants ? "long" : "short") +
                      " ones (its sequence crosses original_max_position_embeddings " +
                      std::to_string(c.original_max_position_embeddings) +
                      "); reset the row and prefill it again");
        }
      }
    }
  }
  auto [cos, sin] = rope_.cos_sin(positions, use_long, dtype);                 // [B, T, R]
  auto allowed = attention_mask(slots, num_keys, c.sliding_window, segments);  // [B, T, S]
  const double scale = std::pow(static_cast<double>(c.head_dim), -0.5);
  auto rows = at::arange(B, long_opts).to(device).view({B, 1}).expand({B, T});

  auto h = weights_.embed.index_select(0, tokens.reshape(-1)).view({B, T, c.hidden_size});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& w = weights_.layers[static_cast<size_t>(l)];
    auto x = rms_norm(h, w.input_norm, c.rms_norm_eps);
    auto qkv = project(x, w.qkv);  // [B, T, H*D + 2*Hkv*D]
    auto q = qkv.narrow(-1, 0, c.q_size).view({B, T, c.num_heads, c.head_dim});
    auto k = qkv.narrow(-1, c.q_size, c.kv_size).view({B, T, c.num_kv_heads, c.head_dim});
    auto v =
        qkv.narrow(-1, c.q_size + c.kv_size, c.kv_size).reshape({B, T, c.num_kv_heads, c.head_dim});
    q = apply_rope(q, cos, sin);
    k = apply_rope(k, cos, sin);
    torch::Tensor keys, values;  // [B, Hkv, S, D]
    if (cache) {
      auto& ck = cache->k[static_cast<size_t>(l)];
      auto& cv = cache->v[static_cast<size_t>(l)];
      using torch::indexing::Slice;
      ck.index_put_({rows, Slice(), slots}, k);  // k [B, T, Hkv, D] into slots of each row
      cv.index_put_({rows, Slice(), slots}, v);
      keys = ck.narrow(2, 0, num_keys);
      values = cv.narrow(2, 0, num_keys);
    } else {
      keys = k.transpose(1, 2);
      values = v.transpose(1, 2);
    }
    auto attn = attention(q, keys, values, allowed, scale).reshape({B, T, c.q_size});
    h = h + project(attn, w.o);
    x = rms_norm(h, w.post_norm, c.rms_norm_eps);
    h = h + project(swiglu(project(x, w.gate_up)), w.down);
  }
  h = rms_norm(h, weights_.norm, c.rms_norm_eps);  // [B, T, C]

  if (cache) {
    for (int64_t b = 0; b < B; ++b) {
      const size_t r = static_cast<size_t>(b);
      if (valid[r] > 0) cache->long_rope[r] = row_long[r];
      cache->lengths[r] += valid[r];
    }
  }

  ForwardOutput out;
  switch (in.logits) {
    case LogitsAt::kNone:
      break;
    case LogitsAt::kLast: {
      std::vector<int64_t> last(static_cast<size_t>(B));
      for (int64_t b = 0; b < B; ++b)
        last[static_cast<size_t>(b)] = b * T + valid[static_cast<size_t>(b)] - 1;
      auto index = at::tensor(last, at::kLong).to(device);
      out.logits = logits(h.reshape({B * T, c.hidden_size}).index_select(0, index));
      break;
    }
    case LogitsAt::kAll:
      out.logits = logits(h);
      break;
    case LogitsAt::kIndex:
      out.logits =
          logits(h.reshape({B * T, c.hidden_size}).index_select(0, in.logits_index.to(device)));
      break;
  }
  if (in.return_hidden) out.hidden = h;
  return out;
}

torch::ScalarType parse_model_dtype(const std::string& name) {
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float32" || name == "fp32") return at::kFloat;
  if (name == "float16" || name == "fp16") return at::kHalf;
  throw InputError("unknown model dtype '" + name + "' (expected bfloat16, float16 or float32)");
}

}  // namespace align
