// When a sample ends: a stop token id, a stop string in its decoded text (needs a tokenizer), or
// max_new_tokens; and the text it returns (special tokens skipped, cut before the first stop
// string).
#pragma once

#include <string>
#include <vector>

#include "data/token_id.h"
#include "data/tokenizer.h"
#include "rollout/engine.h"

namespace align {

class StopChecker {
 public:
  explicit StopChecker(const Tokenizer* tokenizer) : tokenizer_(tokenizer) {}

  // After `tokens` grew by one token: "stop", "length", or "" while the sample goes on. Every
  // earlier token was checked already, so only a window of the newest tokens is decoded.
  std::string finish_reason(const GenerationRequest& r, const std::vector<TokenId>& tokens) const;

  // The finished sample's text ("" without a tokenizer).
  std::string text(const GenerationRequest& r, const std::vector<TokenId>& tokens) const;

 private:
  const Tokenizer* tokenizer_;
};

}  // namespace align
