// The Phi-3-family model configuration (Phi-4, Phi-4-mini), read from a Hugging Face config.json.
//
// Both spellings are accepted:
//   transformers 4: top-level rope_theta, partial_rotary_factor, rope_scaling {type, short_factor,
//                   long_factor}, torch_dtype;
//   transformers 5: rope_parameters {rope_type, rope_theta, partial_rotary_factor, short_factor,
//                   long_factor, factor, attention_factor, original_max_position_embeddings},
//                   dtype.
// Where both carry a value they must agree. Everything is checked in validate_config(), which also
// computes the derived fields; every error names the file and the field, expected vs found.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace align {

enum class RopeType { kDefault, kLongrope };

struct ModelConfig {
  // --- As read from config.json (names follow Hugging Face).
  int64_t vocab_size = 0;         // V
  int64_t hidden_size = 0;        // C
  int64_t intermediate_size = 0;  // I
  int64_t num_layers = 0;         // L   (num_hidden_layers)
  int64_t num_heads = 0;          // H   (num_attention_heads)
  int64_t num_kv_heads = 0;       // Hkv (num_key_value_heads; defaults to H)
  int64_t max_position_embeddings = 0;
  // Pretraining context of a longrope model; Phi3Config defaults it to 4096.
  int64_t original_max_position_embeddings = 4096;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  double partial_rotary_factor = 1.0;
  RopeType rope_type = RopeType::kDefault;
  std::vector<double> short_factor;        // longrope: rotary_dim / 2 entries
  std::vector<double> long_factor;         // longrope: rotary_dim / 2 entries
  std::optional<double> rope_factor;       // longrope "factor"; default max / original max
  std::optional<double> attention_factor;  // longrope; default sqrt(1 + ln f / ln original max)
  int64_t sliding_window = 0;              // 0 = none; else keys with q - k >= window are masked
  bool tie_word_embeddings = false;        // true: no lm_head.weight, logits use embed_tokens
  std::string hidden_act = "silu";
  std::string dtype = "bfloat16";  // dtype / torch_dtype: bfloat16, float16 or float32
  double initializer_range = 0.02;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // eos_token_id: an int or a list
  // generation_config.json's eos_token_id (an int or a list), when load_model_config finds the
  // file beside config.json; samplers stop on these too (transformers' generate does).
  std::vector<int64_t> generation_eos_token_ids;
  std::optional<int64_t> pad_token_id;  // its embedding row is zeroed at initialisation

  // --- Derived once by validate_config().
  int64_t head_dim = 0;    // D = C / H
  int64_t rotary_dim = 0;  // R = int(D * partial_rotary_factor), even; dims [0, R) rotate
  int64_t q_size = 0;      // H * D
  int64_t kv_size = 0;     // Hkv * D
  int64_t kv_groups = 0;   // H / Hkv: query head j reads KV head j / kv_groups
  // Longrope: cos and sin are multiplied by this (both factor sets); 1 for default RoPE.
  double rope_attention_scaling = 1.0;

  int64_t qkv_rows() const { return q_size + 2 * kv_size; }       // rows: Q | K | V
  int64_t gate_up_rows() const { return 2 * intermediate_size; }  // rows: gate | up
  int64_t num_parameters() const;
  // Longrope switches every position of a sequence to the long factors when the sequence is longer
  // than original_max_position_embeddings (transformers' longrope_frequency_update).
  bool uses_long_factors(int64_t seq_len) const {
    return rope_type == RopeType::kLongrope && seq_len > original_max_position_embeddings;
  }
};

// Parses a config.json object; `source` names the file in error messages. Throws InputError.
ModelConfig parse_model_config(const nlohmann::json& json, const std::string& source);

// Reads `path`: a config.json file or a model directory holding one, and the eos ids of the
// generation_config.json beside it when there is one (generation_eos_token_ids).
ModelConfig load_model_config(const std::string& path);

// Checks every field and computes the derived ones. Throws InputError naming `source` and the
// field.
void validate_config(ModelConfig& config, const std::string& source);

// A config.json that transformers 4 and 5 both load (rope_theta, partial_rotary_factor and the
// original max at top level, rope_scaling {type, short_factor, long_factor}, torch_dtype and
// dtype). A longrope config with an explicit factor or attention_factor cannot be said in
// transformers 4's three-field rope_scaling: it is written as transformers 5 rope_parameters only.
nlohmann::json to_hf_json(const ModelConfig& config);

// Named presets: "phi-4" (microsoft/phi-4), "phi-4-mini" (microsoft/Phi-4-mini-instruct), "tiny"
// (a few hundred thousand parameters for tests and examples). Throws InputError for other names.
ModelConfig model_preset(const std::string& name);
std::vector<std::string> model_preset_names();

}  // namespace align
