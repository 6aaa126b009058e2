// A Phi-3 model configuration as GGUF metadata: written under llama.cpp's `phi3` architecture as
// convert_hf_to_gguf.py's Phi3MiniModel writes it, read back from `phi3` or `llama` files.
//
//   config.json                           GGUF key (ARCH = phi3 | llama)           type
//   max_position_embeddings               ARCH.context_length                      u32
//   original_max_position_embeddings      ARCH.rope.scaling.original_context_length u32 (phi3)
//   hidden_size                           ARCH.embedding_length                    u32
//   intermediate_size                     ARCH.feed_forward_length                 u32
//   num_hidden_layers                     ARCH.block_count                         u32
//   num_attention_heads                   ARCH.attention.head_count                u32
//   num_key_value_heads                   ARCH.attention.head_count_kv             u32
//   rms_norm_eps                          ARCH.attention.layer_norm_rms_epsilon    f32
//   head_dim * partial_rotary_factor      ARCH.rope.dimension_count                u32
//   rope_theta                            ARCH.rope.freq_base                      f32
//   sliding_window (null: 0)              phi3.attention.sliding_window            u32
//   longrope attention scaling            phi3.rope.scaling.attn_factor            f32
//   longrope long_factor / short_factor   tensors rope_factors_long.weight /       F32 [R/2]
//                                         rope_factors_short.weight
//   vocab_size                            rows of token_embd.weight (ARCH.vocab_size when given)
//   tie_word_embeddings                   no output.weight tensor
//   bos / eos / pad_token_id              tokenizer.ggml.{bos,eos,padding}_token_id u32
#pragma once

#include <string>

#include "common/gguf_file.h"
#include "model/config.h"
#include "model/gguf_tensors.h"

namespace align {

// Throws InputError naming `source` and the config key for what llama.cpp's phi3 cannot run as
// transformers does: a sliding window (llama.cpp's phi3 disables it and attends to every key).
void check_llama_cpp_phi3(const ModelConfig& config, const std::string& source);

// Sets general.architecture and the phi3.* keys above on `out`, and adds the longrope factor
// tensors of a longrope config.
void write_phi3_config(const ModelConfig& config, GgufWriter& out);

// The longrope factor tensors write_phi3_config adds (empty unless longrope).
std::vector<std::string> phi3_extra_tensors(const ModelConfig& config);

struct GgufModelConfig {
  ModelConfig config;
  GgufArch arch = GgufArch::kPhi3;
};

// The Phi-3 config of a phi3 or llama GGUF, validated (validate_config); dtype is "float32".
// Throws InputError naming the file and the key for another architecture, a key missing or of the
// wrong type, and what a Phi-3 cannot express: experts, head sizes other than C / H, RoPE scaling
// other than phi3's longrope (ARCH.rope.scaling.type, llama's rope_freqs.weight), and a llama
// file whose RoPE covers part of the head.
GgufModelConfig read_gguf_config(const GgufFile& file);

}  // namespace align
