// Internal: what a loaded Tokenizer holds. Built by tokenizer_loader.cc, used by tokenizer.cc.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/added_tokens.h"
#include "data/bpe.h"
#include "data/pretokenizer.h"
#include "data/tokenizer.h"

namespace align {

struct TokenizerState {
  enum class Kind : uint8_t { kNone, kModel, kAdded, kSpecial };

  TokenizerState(Bpe bpe_model, PreTokenizer pre, std::vector<AddedToken> added,
                 std::string source_file);

  std::string source;
  Bpe bpe;
  PreTokenizer pre_tokenizer;
  AddedVocabulary added;
  std::unordered_map<std::string, TokenId> added_ids;  // content -> id
  std::vector<Kind> kinds;                             // by id; an added token wins
  std::vector<std::string> decoded;                    // by id: bytes the ByteLevel decoder emits
  std::optional<TokenId> bos, eos, pad;
};

Tokenizer make_tokenizer(std::shared_ptr<const TokenizerState> state);

}  // namespace align
