#include "data/tokenizer.h"

#include <algorithm>

#include "common/error.h"
#include "data/byte_level.h"
#include "data/tokenizer_state.h"
#include "data/utf8.h"

namespace align {

namespace {

// What HF's ByteLevel decoder makes of one token string: its bytes when every character is in
// the byte alphabet, else the string's own UTF-8.
std::string decoded_bytes(const std::string& token) {
  if (is_valid_utf8(token)) {
    if (auto bytes = byte_level_to_bytes(token)) return std::move(*bytes);
  }
  return token;
}

}  // namespace

TokenizerState::TokenizerState(Bpe bpe_model, PreTokenizer pre, std::vector<AddedToken> tokens,
                               std::string source_file)
    : source(std::move(source_file)),
      bpe(std::move(bpe_model)),
      pre_tokenizer(std::move(pre)),
      added(std::move(tokens)) {
  TokenId max_id = bpe.max_id();
  for (const AddedToken& token : added.tokens())
    max_id = std::max(max_id, token.id);
  kinds.assign(static_cast<size_t>(max_id) + 1, Kind::kNone);
  decoded.resize(kinds.size());
  for (TokenId id = 0; id <= bpe.max_id(); ++id) {
    if (const std::string* token = bpe.id_to_token(id)) {
      kinds[id] = Kind::kModel;
      decoded[id] = decoded_bytes(*token);
    }
  }
  for (const AddedToken& token : added.tokens()) {
    kinds[token.id] = token.special ? Kind::kSpecial : Kind::kAdded;
    decoded[token.id] = decoded_bytes(token.content);
    added_ids.emplace(token.content, token.id);
  }
}

Tokenizer make_tokenizer(std::shared_ptr<const TokenizerState> state) {
  return Tokenizer(std::move(state));
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool allow_special) const {
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = repair_utf8(text);
    text = repaired;
  }
  const TokenizerState& s = *state_;
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 2 + 8);
  std::vector<TextSegment> segments;
  s.added.split(text, allow_special, segments);
  std::string spaced;
  auto encode_piece = [&](const PreToken& piece) {
    if (!piece.prefix_space) {
      s.bpe.encode(piece.text, ids);
      return;
    }
    spaced.assign(1, ' ');
    spaced.append(piece.text);
    s.bpe.encode(spaced, ids);
  };
  for (const TextSegment& segment : segments) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
    } else {
      s.pre_tokenizer.for_each(segment.text, encode_piece);
    }
  }
  return ids;
}

Tokenizer::Encoding Tokenizer::encode_rendered(std::string_view text,
                                               const std::vector<TextSpan>& plain) const {
  if (!is_valid_utf8(text)) {
    throw InputError("a rendered chat is not valid UTF-8 (tokenizer " + state_->source + ")");
  }
  const TokenizerState& s = *state_;
  Encoding out;
  std::vector<TextSegment> segments;
  s.added.split(text, /*allow_special=*/true, segments, &plain);
  std::string spaced;
  auto offset = [&](std::string_view part) {
    return static_cast<size_t>(part.data() - text.data());
  };
  auto encode_piece = [&](const PreToken& piece) {
    const size_t first = out.ids.size();
    if (piece.prefix_space) {
      spaced.assign(1, ' ');
      spaced.append(piece.text);
      s.bpe.encode(spaced, out.ids);
    } else {
      s.bpe.encode(piece.text, out.ids);
    }
    // Each token covers its own bytes; the piece's last token reaches the piece's end (a prefix
    // space is not in the text, and bytes the vocabulary has no symbol for make no token).
    const size_t begin = offset(piece.text), end = begin + piece.text.size();
    size_t at = begin - (piece.prefix_space ? 1 : 0);
    for (size_t i = first; i < out.ids.size(); ++i) {
      at += s.decoded[out.ids[i]].size();
      out.ends.push_back(i + 1 == out.ids.size() ? end : std::clamp(at, begin, end));
    }
  };
  for (const TextSegment& segment : segments) {
    if (segment.id >= 0) {
      out.ids.push_back(segment.id);
      out.ends.push_back(offset(segment.text) + segment.text.size());
    } else {
      s.pre_tokenizer.for_each(segment.text, encode_piece);
    }
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool skip_special) const {
  const TokenizerState& s = *state_;
  std::string bytes;
  for (TokenId id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= s.kinds.size() ||
        s.kinds[id] == TokenizerState::Kind::kNone) {
      throw InputError("decode: token id " + std::to_string(id) + " is not in the vocabulary of " +
                       s.source + " (vocab_size " + std::to_string(s.kinds.size()) + ")");
    }
    if (skip_special && s.kinds[id] == TokenizerState::Kind::kSpecial) continue;
    bytes += s.decoded[id];
  }
  if (is_valid_utf8(bytes)) return bytes;
  return repair_utf8(bytes);
}

std::optional<TokenId> Tokenizer::token_to_id(std::string_view token) const {
  auto it = state_->added_ids.find(std::string(token));
  if (it != state_->added_ids.end()) return it->second;
  return state_->bpe.token_to_id(token);
}

std::string Tokenizer::id_to_token(TokenId id) const {
  const TokenizerState& s = *state_;
  if (id >= 0 && static_cast<size_t>(id) < s.kinds.size()) {
    if (s.kinds[id] == TokenizerState::Kind::kAdded ||
        s.kinds[id] == TokenizerState::Kind::kSpecial) {
      for (const AddedToken& token : s.added.tokens()) {
        if (token.id == id) return token.content;
      }
    }
    if (const std::string* token = s.bpe.id_to_token(id)) return *token;
  }
  throw InputError("token id " + std::to_string(id) + " is not in the vocabulary of " + s.source);
}

int64_t Tokenizer::vocab_size() const {
  return static_cast<int64_t>(state_->kinds.size());
}

bool Tokenizer::is_special(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < state_->kinds.size() &&
         state_->kinds[id] == TokenizerState::Kind::kSpecial;
}

std::optional<TokenId> Tokenizer::bos_id() const {
  return state_->bos;
}
std::optional<TokenId> Tokenizer::eos_id() const {
  return state_->eos;
}
std::optional<TokenId> Tokenizer::pad_id() const {
  return state_->pad;
}
const std::string& Tokenizer::source() const {
  return state_->source;
}

}  // namespace align
