// Phi-4's tokenizer: byte-level BPE with added/special tokens, matching Hugging Face `tokenizers`
// id for id (golden files in tests/golden/tokenizer/ are written by tools/golden_tokenizer.py).
//
// Pipeline of encode(): repair invalid UTF-8 -> split out added tokens (added_tokens.h) ->
// pre-tokenize the text between them (pretokenizer.h) -> BPE each piece (bpe.h). decode() is HF's
// ByteLevel decoder followed by lossy UTF-8 repair.
//
// A Tokenizer is a cheap handle: copies share the loaded state and its word cache. All methods
// are const and safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/text_span.h"
#include "data/token_id.h"

namespace align {

struct TokenizerState;

class Tokenizer {
 public:
  // Loads <dir>/tokenizer.json if present, else <dir>/vocab.json + <dir>/merges.txt. The latter
  // are read as a Phi-4 tokenizer: cl100k pre-tokenizer, ByteLevel decoder, added/special tokens
  // from tokenizer_config.json's "added_tokens_decoder". bos/eos/pad come from
  // tokenizer_config.json when present.
  // tokenizer.json must describe a byte-level BPE this class runs exactly; anything else throws
  // InputError naming the file and field: model.type other than BPE, dropout set, byte_fallback
  // true, a subword prefix/suffix, a normalizer, a pre-tokenizer step other than Split(Isolated)
  // and a final ByteLevel, a decoder other than ByteLevel, truncation or padding set.
  // post_processor is ignored: encode() never adds tokens (HF's add_special_tokens=False).
  // A vocabulary that lacks the characters of some bytes (SmolLM2's lacks 21) loads as in HF, with
  // one warning on stderr naming them; encode() drops such bytes, or gives model.unk_token for
  // them when set (data/bpe.h).
  static Tokenizer load(const std::string& dir);

  // Token ids of `text`, as HF's encode(text, add_special_tokens=False).
  // allow_special: match added tokens in the text (HF behaviour). With false, the text of a special
  // token is tokenized as plain text (HF's encode_special_tokens=True); non-special added tokens
  // still match. Invalid UTF-8 is first repaired with U+FFFD per maximal invalid subpart (HF
  // cannot receive invalid UTF-8 at all; Python's errors="replace" gives the same string).
  std::vector<TokenId> encode(std::string_view text, bool allow_special = true) const;

  // Ids of a rendered chat template (valid UTF-8), as HF's encode(text, add_special_tokens=False)
  // except that special tokens are not matched where their text overlaps a span of `plain`
  // (sorted, not overlapping: the bytes users wrote), so typed control-token text stays text.
  // ends[i] is the byte offset in `text` where token i ends (an added token's span includes the
  // whitespace its lstrip/rstrip took); tokens cover the text in order. Throws InputError for
  // text that is not valid UTF-8.
  struct Encoding {
    std::vector<TokenId> ids;
    std::vector<size_t> ends;
  };
  Encoding encode_rendered(std::string_view text, const std::vector<TextSpan>& plain) const;

  // HF's ByteLevel decoding: each token's string is mapped back to bytes (a token with a
  // character outside the byte alphabet, e.g. an added token with a space, contributes its UTF-8
  // as is), the bytes are joined and repaired as lossy UTF-8. skip_special drops special added
  // tokens. Throws InputError for an id that names no token (HF would silently drop it).
  std::string decode(const std::vector<TokenId>& ids, bool skip_special = false) const;

  // Added tokens first, then the model vocabulary (byte-level strings such as "Ġhello").
  std::optional<TokenId> token_to_id(std::string_view token) const;
  // Throws InputError for an id that names no token.
  std::string id_to_token(TokenId id) const;
  // Max id + 1 over the model vocabulary and the added tokens.
  int64_t vocab_size() const;
  // True for added tokens marked special.
  bool is_special(TokenId id) const;

  std::optional<TokenId> bos_id() const;
  std::optional<TokenId> eos_id() const;
  std::optional<TokenId> pad_id() const;

  // The file it was loaded from (tokenizer.json or vocab.json), for messages.
  const std::string& source() const;

 private:
  explicit Tokenizer(std::shared_ptr<const TokenizerState> state) : state_(std::move(state)) {}
  friend Tokenizer make_tokenizer(std::shared_ptr<const TokenizerState> state);

  std::shared_ptr<const TokenizerState> state_;
};

}  // namespace align
