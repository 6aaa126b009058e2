#include "model/gguf_config.h"

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "model/ggml_quant.h"

namespace align {
namespace {

constexpr const char* kLongFactors = "rope_factors_long.weight";
constexpr const char* kShortFactors = "rope_factors_short.weight";

// A GGUF F32 tensor of factors writing `values`.
GgufTensorSource factor_tensor(const char* name, const std::vector<double>& values) {
  GgufTensorSource t;
  t.name = name;
  t.ne = {static_cast<int64_t>(values.size())};
  t.type = GgmlType::kF32;
  t.write_bytes = [values](const std::function<void(const void*, size_t)>& sink) {
    std::vector<float> f(values.begin(), values.end());
    sink(f.data(), f.size() * sizeof(float));
  };
  return t;
}

std::vector<double> read_factors(const GgufFile& file, const char* name, int64_t count) {
  const GgufTensor* t = file.find_tensor(name);
  if (!t) throw InputError(file.path() + ": tensor '" + name + "' is missing (longrope)");
  if (t->shape() != std::vector<int64_t>{count}) {
    throw InputError(file.path() + ": tensor '" + name + "' has " + std::to_string(t->nbytes / 4) +
                     " values, expected rotary_dim / 2 = " + std::to_string(count));
  }
  const torch::Tensor v =
      ggml_dequantize(t->data, t->type, 1, count, file.path() + ": tensor '" + name + "'");
  const float* p = v.data_ptr<float>();
  return std::vector<double>(p, p + count);
}

[[noreturn]] void unsupported(const GgufFile& file, const std::string& key,
                              const std::string& why) {
  throw InputError(file.path() + ": '" + key + "' " + why);
}

}  // namespace

void check_llama_cpp_phi3(const ModelConfig& config, const std::string& source) {
  if (config.sliding_window > 0) {
    throw InputError(
        source + ": field 'sliding_window' is " + std::to_string(config.sliding_window) +
        ": llama.cpp's phi3 disables sliding-window attention (ggml-org/llama.cpp#13676) and "
        "would attend to every earlier token, so past " +
        std::to_string(config.sliding_window) +
        " tokens it would not compute this model; set sliding_window to null in config.json "
        "only if the model is never run on longer sequences");
  }
}

void write_phi3_config(const ModelConfig& c, GgufWriter& out) {
  auto u32 = [&](const std::string& key, int64_t v) {
    if (v < 0 || v > UINT32_MAX) throw InputError("GGUF key " + key + ": value out of u32 range");
    out.set("phi3." + key, GgufValue::u32(static_cast<uint32_t>(v)));
  };
  out.set("general.architecture", GgufValue::string("phi3"));
  u32("context_length", c.max_position_embeddings);
  u32("rope.scaling.original_context_length", c.original_max_position_embeddings);
  u32("embedding_length", c.hidden_size);
  u32("feed_forward_length", c.intermediate_size);
  u32("block_count", c.num_layers);
  u32("attention.head_count", c.num_heads);
  u32("attention.head_count_kv", c.num_kv_heads);
  out.set("phi3.attention.layer_norm_rms_epsilon",
          GgufValue::f32(static_cast<float>(c.rms_norm_eps)));
  u32("rope.dimension_count", c.rotary_dim);
  out.set("phi3.rope.freq_base", GgufValue::f32(static_cast<float>(c.rope_theta)));
  u32("attention.sliding_window", c.sliding_window);
  if (c.rope_type == RopeType::kLongrope) {
    out.set("phi3.rope.scaling.attn_factor",
            GgufValue::f32(static_cast<float>(c.rope_attention_scaling)));
    out.add_tensor(factor_tensor(kLongFactors, c.long_factor));
    out.add_tensor(factor_tensor(kShortFactors, c.short_factor));
  }
}

std::vector<std::string> phi3_extra_tensors(const ModelConfig& config) {
  if (config.rope_type != RopeType::kLongrope) return {};
  return {kLongFactors, kShortFactors};
}

GgufModelConfig read_gguf_config(const GgufFile& file) {
  GgufModelConfig out;
  const auto arch = file.get_string("general.architecture");
  if (arch == "phi3") {
    out.arch = GgufArch::kPhi3;
  } else if (arch == "llama") {
    out.arch = GgufArch::kLlama;
  } else {
    unsupported(file, "general.architecture",
                "is " + (arch ? "\"" + *arch + "\"" : std::string("missing")) +
                    "; align imports the llama and phi3 architectures");
  }
  const std::string p = *arch + ".";
  ModelConfig& c = out.config;
  c.hidden_size = file.require_int(p + "embedding_length");
  c.intermediate_size = file.require_int(p + "feed_forward_length");
  c.num_layers = file.require_int(p + "block_count");
  c.num_heads = file.require_int(p + "attention.head_count");
  c.num_kv_heads = file.get_int(p + "attention.head_count_kv").value_or(c.num_heads);
  c.max_position_embeddings = file.require_int(p + "context_length");
  c.original_max_position_embeddings = c.max_position_embeddings;
  const auto eps = file.get_float(p + "attention.layer_norm_rms_epsilon");
  if (!eps) unsupported(file, p + "attention.layer_norm_rms_epsilon", "is missing");
  c.rms_norm_eps = *eps;
  c.rope_theta = file.get_float(p + "rope.freq_base").value_or(10000.0);
  if (file.get_int(p + "expert_count").value_or(0) > 0) {
    unsupported(file, p + "expert_count", "is set: mixture-of-experts models are not Phi-3");
  }
  if (auto scaling = file.get_string(p + "rope.scaling.type"); scaling && *scaling != "none") {
    unsupported(file, p + "rope.scaling.type",
                "is \"" + *scaling +
                    "\": Phi-3 has default RoPE or longrope (phi3's "
                    "rope_factors tensors) only");
  }
  if (file.find_tensor("rope_freqs.weight")) {
    unsupported(file, "rope_freqs.weight", "(Llama 3.1 RoPE scaling) has no Phi-3 equivalent");
  }
  const GgufTensor* embed = file.find_tensor("token_embd.weight");
  if (!embed || embed->ne.size() != 2) {
    unsupported(file, "token_embd.weight", "is missing or not a matrix");
  }
  c.vocab_size = embed->ne[1];
  if (auto v = file.get_int(p + "vocab_size"); v && *v != c.vocab_size) {
    unsupported(file, p + "vocab_size",
                "is " + std::to_string(*v) + " but token_embd.weight has " +
                    std::to_string(c.vocab_size) + " rows");
  }
  c.tie_word_embeddings = file.find_tensor("output.weight") == nullptr;
  c.bos_token_id = file.get_int("tokenizer.ggml.bos_token_id");
  if (auto eos = file.get_int("tokenizer.ggml.eos_token_id")) c.eos_token_ids = {*eos};
  c.pad_token_id = file.get_int("tokenizer.ggml.padding_token_id");
  c.dtype = "float32";

  const int64_t head_dim = c.num_heads > 0 ? c.hidden_size / c.num_heads : 0;
  for (const char* key : {"attention.key_length", "attention.value_length"}) {
    if (auto v = file.get_int(p + key); v && *v != head_dim) {
      unsupported(file, p + key,
                  "is " + std::to_string(*v) +
                      ": Phi-3 heads are embedding_length / head_count = " +
                      std::to_string(head_dim) + " wide");
    }
  }
  const int64_t rotary = file.get_int(p + "rope.dimension_count").value_or(head_dim);
  if (out.arch == GgufArch::kLlama && rotary != head_dim) {
    unsupported(file, p + "rope.dimension_count",
                "is " + std::to_string(rotary) +
                    ": align reads llama files whose RoPE covers the "
                    "whole head (" +
                    std::to_string(head_dim) + ")");
  }
  if (head_dim > 0) c.partial_rotary_factor = static_cast<double>(rotary) / head_dim;
  if (out.arch == GgufArch::kPhi3) {
    c.sliding_window = file.get_int("phi3.attention.sliding_window").value_or(0);
    if (file.find_tensor(kLongFactors) || file.find_tensor(kShortFactors)) {
      c.rope_type = RopeType::kLongrope;
      c.original_max_position_embeddings =
          file.require_int("phi3.rope.scaling.original_context_length");
      c.long_factor = read_factors(file, kLongFactors, rotary / 2);
      c.short_factor = read_factors(file, kShortFactors, rotary / 2);
    }
  }
  validate_config(c, file.path());
  if (c.rotary_dim != rotary) {
    unsupported(file, p + "rope.dimension_count",
                "is " + std::to_string(rotary) +
                    ", which no partial_rotary_factor gives for "
                    "head_dim " +
                    std::to_string(c.head_dim));
  }
  if (c.rope_type == RopeType::kLongrope) {
    // The file's attention factor is kept only where it differs from the one transformers derives
    // (beyond the f32 it is stored in).
    if (auto attn = file.get_float("phi3.rope.scaling.attn_factor");
        attn && std::abs(*attn - c.rope_attention_scaling) > 1e-6 * c.rope_attention_scaling) {
      c.attention_factor = *attn;
      validate_config(c, file.path());
    }
  }
  return out;
}

}  // namespace align
