// A byte-level BPE tokenizer as GGUF metadata (ggml's docs/gguf.md "Tokenizer"; the keys as
// llama.cpp's src/llama-vocab.cpp reads them and convert_hf_to_gguf.py writes them for
// tokenizer.json files, the "gpt2" model):
//
//   key                                     type      what
//   tokenizer.ggml.model                    string    "gpt2" (byte-level BPE)
//   tokenizer.ggml.pre                      string    llama.cpp's name of the pre-tokenizer (below)
//   tokenizer.ggml.tokens                   [string]  by id: the byte-level string ("Ġhello"), an
//                                                     added token's text, "[PAD<id>]" for an id
//                                                     neither has (ids up to vocab_size)
//   tokenizer.ggml.token_type               [i32]     1 normal, 3 control (a special added token),
//                                                     4 user-defined (another added token),
//                                                     5 unused (the [PAD<id>] fillers)
//   tokenizer.ggml.merges                   [string]  "left right", in rank order
//   tokenizer.ggml.{bos,eos,unknown,padding}_token_id  u32  tokenizer_config.json's tokens
//   tokenizer.ggml.add_bos_token, add_eos_token        bool tokenizer_config.json's flags, else
//                                                     what tokenizer.json's TemplateProcessing
//                                                     adds, else absent (llama.cpp's default: true
//                                                     for llama-bpe, false for the others)
//   tokenizer.chat_template                 string    the folder's template (data/chat_template.h)
//
// Pre-tokenizers, as tokenizer.json's steps (data/pretokenizer.h) and llama.cpp's names:
//   gpt-2      ByteLevel(use_regex: GPT-2's regex)                           (GPT-2, SmolLM2's
//                                                                            folder)
//   smollm     Split(\p{N}, Isolated), ByteLevel(use_regex)                   (SmolLM, SmolLM2)
//   dbrx       Split(cl100k, Isolated), ByteLevel(use_regex: false)           (Phi-4, DBRX)
//   llama-bpe  the same with model.ignore_merges: true                        (Llama 3)
// (llama.cpp reads "llama3" and "llama-v3" as llama-bpe and "phi-2" as gpt-2; so does import.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/gguf_file.h"

namespace align {

struct GgufVocab {
  std::string pre;                   // tokenizer.ggml.pre
  std::vector<std::string> tokens;   // by id
  std::vector<int32_t> token_types;  // by id
  std::vector<std::string> merges;   // "left right"
  std::optional<int64_t> bos, eos, unk, pad;
  std::optional<bool> add_bos;  // absent: llama.cpp's default for `pre`
  std::optional<bool> add_eos;
  std::string chat_template;       // empty: none
  std::vector<std::string> notes;  // where llama.cpp may tokenize differently (printed by export)
};

constexpr int32_t kGgufTokenNormal = 1;
constexpr int32_t kGgufTokenControl = 3;
constexpr int32_t kGgufTokenUserDefined = 4;
constexpr int32_t kGgufTokenUnused = 5;

// The tokenizer of the folder `dir` for a model of `vocab_size` embedding rows. Throws InputError
// naming the file and field for what llama.cpp cannot tokenize as the folder does: a pre-tokenizer
// outside the table above, ByteLevel's add_prefix_space, a token id at or past vocab_size.
GgufVocab gguf_vocab_from_folder(const std::string& dir, int64_t vocab_size);

// Sets the keys above on `out` (absent ids and an empty template are left out).
void write_gguf_vocab(const GgufVocab& vocab, GgufWriter& out);

// The tokenizer keys of `file`. Throws InputError naming the key for a tokenizer other than
// "gpt2", a pre-tokenizer outside the table, missing tokens or merges, or types that disagree.
GgufVocab read_gguf_vocab(const GgufFile& file);

// Writes the tokenizer as transformers' GGUF loader rebuilds it (integrations/gguf/
// gguf_tokenizer_mapping.py): tokenizer.json (every token in the BPE vocabulary, tokens outside
// the byte-level alphabet spelled by their bytes; control tokens written in the alphabet as
// special added tokens, user-defined ones as plain added tokens; the table's pre-tokenizer; the
// merges), tokenizer_config.json (special tokens, add_bos/eos flags, absent ones as llama.cpp
// defaults them, model_max_length) and
// chat_template.jinja. Each file is written atomically into `dir`.
void write_tokenizer_folder(const GgufVocab& vocab, const std::string& dir,
                            int64_t model_max_length);

}  // namespace align
