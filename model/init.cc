#include "model/init.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <map>

#include "common/atomic_file.h"
#include "common/seeding.h"

namespace align {
namespace {

// normal(0, std) drawn in fp32 blocks of rows and cast into `dtype`, so peak memory is the output
// plus one block.
torch::Tensor normal_tensor(const std::vector<int64_t>& shape, double std, uint64_t seed,
                            torch::ScalarType dtype) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto out = at::empty(shape, at::TensorOptions().dtype(dtype));
  auto rows = out.view({shape[0], -1});
  const int64_t cols = rows.size(1);
  const int64_t block = std::max<int64_t>(1, (int64_t{1} << 24) / std::max<int64_t>(cols, 1));
  for (int64_t r = 0; r < shape[0]; r += block) {
    const int64_t n = std::min(block, shape[0] - r);
    auto draw = at::empty({n, cols}, at::kFloat);
    draw.normal_(0.0, std, gen);
    rows.narrow(0, r, n).copy_(draw);
  }
  return out;
}

bool is_norm(const std::string& name) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with("layernorm.weight") || name == "model.norm.weight";
}

}  // namespace

TensorShapes model_tensor_shapes(const ModelConfig& c) {
  TensorShapes shapes;
  const int64_t C = c.hidden_size;
  shapes.push_back({"model.embed_tokens.weight", {c.vocab_size, C}});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    shapes.push_back({layer_name(i, "input_layernorm.weight"), {C}});
    shapes.push_back({layer_name(i, "self_attn.qkv_proj.weight"), {c.qkv_rows(), C}});
    shapes.push_back({layer_name(i, "self_attn.o_proj.weight"), {C, c.q_size}});
    shapes.push_back({layer_name(i, "post_attention_layernorm.weight"), {C}});
    shapes.push_back({layer_name(i, "mlp.gate_up_proj.weight"), {c.gate_up_rows(), C}});
    shapes.push_back({layer_name(i, "mlp.down_proj.weight"), {C, c.intermediate_size}});
  }
  shapes.push_back({"model.norm.weight", {C}});
  if (!c.tie_word_embeddings) shapes.push_back({"lm_head.weight", {c.vocab_size, C}});
  return shapes;
}

std::vector<TensorToSave> random_init_tensors(const ModelConfig& config, uint64_t seed,
                                              torch::ScalarType dtype) {
  std::vector<TensorToSave> out;
  for (const auto& [name, shape] : model_tensor_shapes(config)) {
    TensorToSave t;
    t.name = name;
    t.shape = shape;
    t.dtype = dtype;
    if (is_norm(name)) {
      t.produce = [shape = shape, dtype] { return at::ones(shape, at::TensorOptions(dtype)); };
    } else {
      const double std = config.initializer_range;
      const uint64_t s = named_seed(seed, name);
      std::optional<int64_t> pad;
      if (name == "model.embed_tokens.weight") pad = config.pad_token_id;
      t.produce = [shape = shape, std, s, dtype, pad] {
        auto w = normal_tensor(shape, std, s, dtype);
        if (pad) w[*pad].zero_();
        return w;
      };
    }
    out.push_back(std::move(t));
  }
  return out;
}

void write_random_model(const std::string& dir, const ModelConfig& config, uint64_t seed,
                        torch::ScalarType dtype, int64_t max_shard_bytes) {
  ModelConfig saved = config;
  saved.dtype = dtype == at::kBFloat16 ? "bfloat16" : dtype == at::kHalf ? "float16" : "float32";
  std::filesystem::create_directories(dir);
  write_file_atomic((std::filesystem::path(dir) / "config.json").string(),
                    to_hf_json(saved).dump(2) + "\n");
  save_checkpoint(dir, random_init_tensors(saved, seed, dtype), max_shard_bytes);
}

Phi3Model random_model(const ModelConfig& config, uint64_t seed, torch::ScalarType dtype,
                       torch::Device device) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& t : random_init_tensors(config, seed, dtype)) {
    tensors[t.name] = t.produce().to(device);
  }
  return Phi3Model(
      config, assemble_weights(config, [&](const std::string& name) { return tensors.at(name); }));
}

}  // namespace align
