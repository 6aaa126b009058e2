#include "model/config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/init.h"
#include "tests/test_util.h"

namespace align {
namespace {

using nlohmann::json;

// A Phi-4-mini-shaped config.json in transformers 4 spelling (rope_scaling with "type",
// top-level rope_theta and partial_rotary_factor, torch_dtype).
json mini_v4() {
  return json::parse(R"({
    "architectures": ["Phi3ForCausalLM"], "model_type": "phi3",
    "vocab_size": 320, "hidden_size": 96, "intermediate_size": 96, "num_hidden_layers": 2,
    "num_attention_heads": 6, "num_key_value_heads": 2, "hidden_act": "silu",
    "max_position_embeddings": 128, "original_max_position_embeddings": 32,
    "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "partial_rotary_factor": 0.75,
    "rope_scaling": {"type": "longrope", "short_factor": [1.0, 1.02, 1.05, 1.1, 1.25, 1.5],
                     "long_factor": [1.0, 1.4, 2.3, 3.7, 6.0, 9.5]},
    "sliding_window": 20, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "bos_token_id": 1, "eos_token_id": [2, 5], "pad_token_id": 3,
    "initializer_range": 0.02, "use_cache": true, "transformers_version": "4.48.0"
  })");
}

// The Phi-4 shape in transformers 5 spelling (rope_parameters, dtype).
json phi4_v5() {
  json j = to_hf_json(model_preset("phi-4"));
  j.erase("rope_theta");
  j.erase("partial_rotary_factor");
  j.erase("rope_scaling");
  j.erase("torch_dtype");
  j["rope_parameters"] = {
      {"rope_type", "default"}, {"rope_theta", 250000.0}, {"partial_rotary_factor", 1.0}};
  return j;
}

void expect_same(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.original_max_position_embeddings, b.original_max_position_embeddings);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.partial_rotary_factor, b.partial_rotary_factor);
  EXPECT_EQ(a.rope_type, b.rope_type);
  EXPECT_EQ(a.short_factor, b.short_factor);
  EXPECT_EQ(a.long_factor, b.long_factor);
  EXPECT_EQ(a.rope_factor, b.rope_factor);
  EXPECT_EQ(a.attention_factor, b.attention_factor);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.pad_token_id, b.pad_token_id);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.rotary_dim, b.rotary_dim);
  EXPECT_DOUBLE_EQ(a.rope_attention_scaling, b.rope_attention_scaling);
}

TEST(ModelConfig, ReadsTransformers5SpellingFromTheGoldenMiniModel) {
  const std::string dir = testing::golden_path("model/mini_tiny");
  ModelConfig c = load_model_config(dir);  // a directory or the file itself
  EXPECT_EQ(c.hidden_size, 96);
  EXPECT_EQ(c.num_heads, 6);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.rotary_dim, 12);
  EXPECT_EQ(c.kv_groups, 3);
  EXPECT_EQ(c.q_size, 96);
  EXPECT_EQ(c.kv_size, 32);
  EXPECT_EQ(c.qkv_rows(), 160);
  EXPECT_EQ(c.rope_type, RopeType::kLongrope);
  EXPECT_EQ(c.original_max_position_embeddings, 32);
  EXPECT_EQ(c.short_factor.size(), 6u);
  EXPECT_EQ(c.sliding_window, 20);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.dtype, "bfloat16");
  // sqrt(1 + ln(128 / 32) / ln(32)), transformers' default longrope attention factor.
  EXPECT_DOUBLE_EQ(c.rope_attention_scaling, std::sqrt(1.0 + std::log(4.0) / std::log(32.0)));
  EXPECT_FALSE(c.uses_long_factors(32));
  EXPECT_TRUE(c.uses_long_factors(33));
  expect_same(load_model_config(dir + "/config.json"), c);
}

TEST(ModelConfig, BothSpellingsGiveTheSameConfig) {
  ModelConfig v4 = parse_model_config(mini_v4(), "v4.json");
  ModelConfig v5 = load_model_config(testing::golden_path("model/mini_tiny"));
  v5.eos_token_ids = {2, 5};  // the only difference between the two files
  expect_same(v4, v5);

  ModelConfig phi4 = parse_model_config(phi4_v5(), "phi4.json");
  expect_same(phi4, model_preset("phi-4"));
}

TEST(ModelConfig, LegacySuRopeTypeIsLongrope) {
  json j = mini_v4();
  j["rope_scaling"]["type"] = "su";
  EXPECT_EQ(parse_model_config(j, "su.json").rope_type, RopeType::kLongrope);
}

TEST(ModelConfig, ExplicitLongropeFactorsOverrideTheDefaults) {
  json j = mini_v4();
  j["rope_scaling"]["attention_factor"] = 1.5;
  EXPECT_DOUBLE_EQ(parse_model_config(j, "a.json").rope_attention_scaling, 1.5);
  j = mini_v4();
  j["rope_scaling"]["factor"] = 8.0;
  EXPECT_DOUBLE_EQ(parse_model_config(j, "f.json").rope_attention_scaling,
                   std::sqrt(1.0 + std::log(8.0) / std::log(32.0)));
  j["max_position_embeddings"] = 16;  // factor below 1 -> no scaling
  j["rope_scaling"].erase("factor");
  EXPECT_DOUBLE_EQ(parse_model_config(j, "f.json").rope_attention_scaling, 1.0);
}

struct BadField {
  const char* what;
  std::function<void(json&)> mutate;
  const char* expected_in_message;
};

TEST(ModelConfig, EveryValidationErrorNamesTheFileAndField) {
  const std::vector<BadField> cases = {
      {"model type", [](json& j) { j["model_type"] = "llama"; }, "'model_type'"},
      {"no model type", [](json& j) { j.erase("model_type"); }, "'model_type'"},
      {"architecture", [](json& j) { j["architectures"] = {"LlamaForCausalLM"}; },
       "'architectures'"},
      {"hidden % heads", [](json& j) { j["num_attention_heads"] = 5; }, "'num_attention_heads'"},
      {"heads % kv", [](json& j) { j["num_key_value_heads"] = 4; }, "'num_key_value_heads'"},
      {"activation", [](json& j) { j["hidden_act"] = "gelu"; }, "'hidden_act'"},
      {"negative size", [](json& j) { j["intermediate_size"] = -1; }, "'intermediate_size'"},
      {"zero layers", [](json& j) { j["num_hidden_layers"] = 0; }, "'num_hidden_layers'"},
      {"vocab not int", [](json& j) { j["vocab_size"] = "320"; }, "'vocab_size'"},
      {"missing vocab", [](json& j) { j.erase("vocab_size"); }, "'vocab_size'"},
      {"odd rotary dim", [](json& j) { j["partial_rotary_factor"] = 0.5625; },
       "'partial_rotary_factor'"},
      {"rotary factor > 1", [](json& j) { j["partial_rotary_factor"] = 1.5; },
       "'partial_rotary_factor'"},
      {"long factor length",
       [](json& j) {
         j["rope_scaling"]["long_factor"] = {1.0, 2.0};
       },
       "rope_parameters.long_factor'"},
      {"short factor missing", [](json& j) { j["rope_scaling"].erase("short_factor"); },
       "'rope_scaling.short_factor'"},
      {"factor not a number", [](json& j) { j["rope_scaling"]["short_factor"][0] = "x"; },
       "'rope_scaling.short_factor'"},
      {"unknown rope type", [](json& j) { j["rope_scaling"]["type"] = "dynamic"; },
       "'rope_scaling.rope_type'"},
      {"unknown rope key", [](json& j) { j["rope_scaling"]["beta_fast"] = 32; },
       "'rope_scaling.beta_fast'"},
      {"theta disagrees",
       [](json& j) {
         j["rope_parameters"] = j["rope_scaling"];
         j["rope_parameters"]["rope_theta"] = 500.0;
         j.erase("rope_scaling");
       },
       "'rope_parameters.rope_theta'"},
      {"dtype disagrees", [](json& j) { j["dtype"] = "float32"; }, "'dtype'"},
      {"bad dtype", [](json& j) { j["torch_dtype"] = "int8"; }, "'torch_dtype'"},
      {"head_dim", [](json& j) { j["head_dim"] = 32; }, "'head_dim'"},
      {"pad id", [](json& j) { j["pad_token_id"] = 320; }, "'pad_token_id'"},
      {"eps", [](json& j) { j["rms_norm_eps"] = 0; }, "'rms_norm_eps'"},
      {"sliding window", [](json& j) { j["sliding_window"] = 0; }, "'sliding_window'"},
      {"tie flag", [](json& j) { j["tie_word_embeddings"] = "yes"; }, "'tie_word_embeddings'"},
      {"nested original max ignored by HF",
       [](json& j) {
         j.erase("original_max_position_embeddings");
         j["rope_scaling"]["original_max_position_embeddings"] = 32;
       },
       "original_max_position_embeddings"},
  };
  for (const auto& c : cases) {
    json j = mini_v4();
    c.mutate(j);
    try {
      parse_model_config(j, "/models/x/config.json");
      ADD_FAILURE() << c.what << ": expected InputError";
    } catch (const InputError& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("/models/x/config.json"), std::string::npos) << c.what << ": " << msg;
      EXPECT_NE(msg.find(c.expected_in_message), std::string::npos) << c.what << ": " << msg;
    }
  }
}

TEST(ModelConfig, ErrorsSayExpectedAndFound) {
  json j = mini_v4();
  j["rope_scaling"]["long_factor"] = {1.0, 2.0};
  try {
    parse_model_config(j, "c.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("expected 6 entries (rotary_dim / 2), found 2 entries"),
              std::string::npos)
        << e.what();
  }
}

TEST(ModelConfig, MissingAndMalformedFilesAreInputErrors) {
  testing::TempDir dir;
  EXPECT_THROW(load_model_config(dir.path()), InputError);
  testing::write_text(dir.file("config.json"), "{not json");
  EXPECT_THROW(load_model_config(dir.path()), InputError);
  testing::write_text(dir.file("config.json"), "[1, 2]");
  EXPECT_THROW(load_model_config(dir.path()), InputError);
}

TEST(ModelConfig, PresetsHaveTheReferenceShapes) {
  ModelConfig phi4 = model_preset("phi-4");
  EXPECT_EQ(phi4.head_dim, 128);
  EXPECT_EQ(phi4.qkv_rows(), 7680);
  EXPECT_EQ(phi4.gate_up_rows(), 35840);
  EXPECT_EQ(phi4.kv_groups, 4);
  EXPECT_EQ(phi4.rotary_dim, 128);
  EXPECT_EQ(phi4.num_parameters(), 14'659'507'200);
  EXPECT_EQ(model_tensor_shapes(phi4).size(), 243u);

  ModelConfig mini = model_preset("phi-4-mini");
  EXPECT_EQ(mini.rotary_dim, 96);
  EXPECT_EQ(mini.long_factor.size(), 48u);
  EXPECT_EQ(mini.qkv_rows(), 5120);
  EXPECT_TRUE(mini.tie_word_embeddings);
  EXPECT_EQ(mini.num_parameters(), 3'836'021'760);

  ModelConfig tiny = model_preset("tiny");
  EXPECT_LT(tiny.num_parameters(), 1'000'000);
  EXPECT_THROW(model_preset("phi-5"), InputError);
}

TEST(ModelConfig, HfJsonRoundTripsEveryPreset) {
  for (const auto& name : model_preset_names()) {
    ModelConfig c = model_preset(name);
    json j = to_hf_json(c);
    // Both spellings are present for the values transformers 4 and 5 read differently.
    EXPECT_EQ(j["torch_dtype"], j["dtype"]);
    EXPECT_TRUE(j.contains("rope_theta"));
    expect_same(parse_model_config(j, name), c);
  }
  ModelConfig mini = model_preset("phi-4-mini");
  json j = to_hf_json(mini);
  EXPECT_EQ(j["rope_scaling"].size(), 3u);  // transformers 4 accepts exactly three fields
  mini.attention_factor = 1.25;
  validate_config(mini, "test");
  EXPECT_DOUBLE_EQ(mini.rope_attention_scaling, 1.25);
  j = to_hf_json(mini);
  EXPECT_TRUE(j["rope_scaling"].is_null());
  expect_same(parse_model_config(j, "x"), mini);
}

}  // namespace
}  // namespace align
