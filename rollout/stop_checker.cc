#include "rollout/stop_checker.h"

#include <algorithm>

namespace align {
namespace {

// Token ids the tokenizer can decode (a model's vocabulary may be padded past the tokenizer's).
std::string decode_text(const Tokenizer& tokenizer, const std::vector<TokenId>& tokens,
                        size_t from = 0) {
  std::vector<TokenId> ids;
  for (size_t i = from; i < tokens.size(); ++i) {
    if (tokens[i] < tokenizer.vocab_size()) ids.push_back(tokens[i]);
  }
  return tokenizer.decode(ids, /*skip_special=*/true);
}

// Whether the newest token completed a stop string (a window of the last tokens, at least one
// byte each, covers any string it completed).
bool hits_stop_string(const Tokenizer& tokenizer, const GenerationRequest& r,
                      const std::vector<TokenId>& tokens) {
  size_t longest = 0;
  for (const auto& s : r.stop_strings)
    longest = std::max(longest, s.size());
  const size_t window = longest + 8;
  const size_t from = tokens.size() > window ? tokens.size() - window : 0;
  const std::string text = decode_text(tokenizer, tokens, from);
  for (const auto& s : r.stop_strings) {
    if (text.find(s) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::string StopChecker::finish_reason(const GenerationRequest& r,
                                       const std::vector<TokenId>& tokens) const {
  const TokenId token = tokens.back();
  bool stop =
      std::find(r.stop_token_ids.begin(), r.stop_token_ids.end(), token) != r.stop_token_ids.end();
  if (!stop && !r.stop_strings.empty()) stop = hits_stop_string(*tokenizer_, r, tokens);
  if (stop) return "stop";
  return static_cast<int64_t>(tokens.size()) < r.max_new_tokens ? "" : "length";
}

std::string StopChecker::text(const GenerationRequest& r,
                              const std::vector<TokenId>& tokens) const {
  if (!tokenizer_) return "";
  std::string text = decode_text(*tokenizer_, tokens);
  size_t cut = std::string::npos;
  for (const auto& s : r.stop_strings)
    cut = std::min(cut, text.find(s));
  if (cut != std::string::npos) text.resize(cut);
  return text;
}

}  // namespace align
