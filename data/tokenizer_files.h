// A tokenizer folder's files as read, before Tokenizer::load builds (and checks) the tokenizer
// from them; also what a writer of another format (data/gguf_vocab.h) exports. Two layouts:
//   tokenizer.json (model, pre_tokenizer, added_tokens), or
//   vocab.json + merges.txt, read as Phi-4's (cl100k pre-tokenizer, added tokens from
//   tokenizer_config.json's "added_tokens_decoder"),
// plus tokenizer_config.json when present. Errors name the file and the field.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/added_tokens.h"
#include "data/bpe.h"
#include "data/json_fields.h"

namespace align {

struct TokenizerFiles {
  std::string source;              // the model's file: DIR/tokenizer.json or DIR/vocab.json
  Bpe::Vocab vocab;                // byte-level token -> id
  Bpe::Merges merges;              // in rank order
  Bpe::Options options;            // ignore_merges, unk_token, fuse_unk
  nlohmann::json pre_tokenizer;    // tokenizer.json's; PreTokenizer::phi4_json() for vocab.json
  nlohmann::json post_processor;   // tokenizer.json's (null when absent); Tokenizer ignores it
  std::vector<AddedToken> added;   // in file order
  std::vector<JsonPath> added_at;  // where each added token was read
  bool from_tokenizer_json = false;
  nlohmann::json config = nlohmann::json::object();  // tokenizer_config.json ({} when absent)
  std::string config_path;                           // DIR/tokenizer_config.json

  // tokenizer_config.json's `key` ("bos_token", ...): a string or an AddedToken object's
  // "content"; std::nullopt when absent or null.
  std::optional<std::string> special_token(const std::string& key) const;
};

// Reads the files of `dir`; throws InputError when there is no tokenizer or a field has the
// wrong shape. Does not check that the tokenizer is one align runs: Tokenizer::load does.
TokenizerFiles read_tokenizer_files(const std::string& dir);

}  // namespace align
