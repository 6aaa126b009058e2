// The named model presets: shapes of the released checkpoints and a tiny test model.
#include "model/config.h"

#include "common/error.h"

namespace align {

std::vector<std::string> model_preset_names() {
  return {"phi-4", "phi-4-mini", "tiny"};
}

ModelConfig model_preset(const std::string& name) {
  ModelConfig c;
  c.dtype = "bfloat16";
  c.rms_norm_eps = 1e-5;
  if (name == "phi-4") {
    // microsoft/phi-4 config.json (docs/phi4.md).
    c.vocab_size = 100352;
    c.hidden_size = 5120;
    c.intermediate_size = 17920;
    c.num_layers = 40;
    c.num_heads = 40;
    c.num_kv_heads = 10;
    c.max_position_embeddings = 16384;
    c.original_max_position_embeddings = 16384;
    c.rope_theta = 250000.0;
    c.bos_token_id = 100257;
    c.eos_token_ids = {100265};
    c.pad_token_id = 100349;
  } else if (name == "phi-4-mini") {
    // microsoft/Phi-4-mini-instruct. The longrope factors were transcribed from a public copy of
    // its config.json (revision cfbefacb99257ffa30c83adab238a50856ac3083), not re-checked against
    // the hub; load the real config.json when exact long-context behaviour matters.
    c.vocab_size = 200064;
    c.hidden_size = 3072;
    c.intermediate_size = 8192;
    c.num_layers = 32;
    c.num_heads = 24;
    c.num_kv_heads = 8;
    c.max_position_embeddings = 131072;
    c.original_max_position_embeddings = 4096;
    c.rope_theta = 10000.0;
    c.partial_rotary_factor = 0.75;
    c.rope_type = RopeType::kLongrope;
    c.short_factor.assign(48, 1.0);
    c.long_factor = {1,           1.118320672, 1.250641126, 1.398617824, 1.564103225, 1.74916897,
                     1.956131817, 2.187582649, 2.446418898, 2.735880826, 3.059592084, 3.421605075,
                     3.826451687, 4.279200023, 4.785517845, 5.351743533, 5.984965424, 6.693110555,
                     7.485043894, 8.370679318, 9.36110372,  10.4687158,  11.70738129, 13.09260651,
                     14.64173252, 16.37415215, 18.31155283, 20.47818807, 22.90118105, 25.61086418,
                     28.64115884, 32.03,       32.1,        32.13,       32.23,       32.6,
                     32.61,       32.64,       32.66,       32.7,        32.71,       32.93,
                     32.97,       33.28,       33.49,       33.5,        44.16,       47.77};
    c.sliding_window = 262144;
    c.tie_word_embeddings = true;
    c.bos_token_id = 199999;
    c.eos_token_ids = {199999};
    c.pad_token_id = 199999;
  } else if (name == "tiny") {
    // Phi-4-shaped (untied, full rotary, GQA 2:1) with about 200K parameters.
    c.vocab_size = 512;
    c.hidden_size = 64;
    c.intermediate_size = 128;
    c.num_layers = 2;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.max_position_embeddings = 4096;
    c.original_max_position_embeddings = 4096;
    c.rope_theta = 250000.0;
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    c.pad_token_id = 0;
  } else {
    std::string known;
    for (const auto& n : model_preset_names())
      known += (known.empty() ? "" : ", ") + n;
    throw InputError("unknown model preset '" + name + "' (known: " + known + ")");
  }
  validate_config(c, "preset " + name);
  return c;
}

}  // namespace align
