// Tokenizer::load: reading tokenizer.json, or vocab.json + merges.txt, plus tokenizer_config.json.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "data/byte_level.h"
#include "data/json_fields.h"
#include "data/tokenizer_files.h"
#include "data/tokenizer_state.h"
#include "data/utf8.h"

namespace align {

namespace {

using nlohmann::json;

constexpr int64_t kMaxId = (int64_t{1} << 31) - 2;

// HF's AddedToken fields and defaults (normalized defaults to !special).
AddedToken parse_added_token(const json& value, TokenId id, const JsonPath& at) {
  if (!value.is_object()) throw_json_error(at, "expected an object, got " + describe_json(value));
  AddedToken token;
  token.id = id;
  token.content = json_string(json_member(value, "content", at), at / "content");
  if (token.content.empty()) throw_json_error(at / "content", "is empty");
  token.special = json_bool(value, "special", false, at);
  token.lstrip = json_bool(value, "lstrip", false, at);
  token.rstrip = json_bool(value, "rstrip", false, at);
  token.single_word = json_bool(value, "single_word", false, at);
  token.normalized = json_bool(value, "normalized", !token.special, at);
  return token;
}

// tokenizer.json "added_tokens": [{"id": 100264, "content": "<|im_start|>", ...}, ...]
std::vector<AddedToken> parse_added_token_list(const json& list, const JsonPath& at,
                                               std::vector<JsonPath>& paths) {
  if (!list.is_array()) throw_json_error(at, "expected an array, got " + describe_json(list));
  std::vector<AddedToken> tokens;
  for (size_t i = 0; i < list.size(); ++i) {
    const JsonPath item = at[i];
    const auto id = json_index(json_member(list[i], "id", item), kMaxId, item / "id");
    tokens.push_back(parse_added_token(list[i], static_cast<TokenId>(id), item));
    paths.push_back(item);
  }
  return tokens;
}

// tokenizer_config.json "added_tokens_decoder": {"100264": {"content": "<|im_start|>", ...}, ...}
std::vector<AddedToken> parse_added_token_map(const json& map, const JsonPath& at,
                                              std::vector<JsonPath>& paths) {
  if (!map.is_object()) throw_json_error(at, "expected an object, got " + describe_json(map));
  std::vector<AddedToken> tokens;
  for (const auto& [key, value] : map.items()) {
    const JsonPath item = at / key;
    char* end = nullptr;
    const long long id = std::strtoll(key.c_str(), &end, 10);
    if (key.empty() || *end != '\0' || id < 0 || id > kMaxId) {
      throw_json_error(item, "key must be a token id, got \"" + key + "\"");
    }
    tokens.push_back(parse_added_token(value, static_cast<TokenId>(id), item));
    paths.push_back(item);
  }
  return tokens;
}

// Added tokens must not contradict each other or the model vocabulary.
void check_added_tokens(const std::vector<AddedToken>& tokens, const Bpe& bpe,
                        const std::vector<JsonPath>& at) {
  std::unordered_map<TokenId, const AddedToken*> by_id;
  std::unordered_map<std::string, const AddedToken*> by_content;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const AddedToken& token = tokens[i];
    const std::string name = "\"" + token.content + "\" (id " + std::to_string(token.id) + ")";
    if (auto [it, fresh] = by_id.emplace(token.id, &token); !fresh) {
      throw_json_error(at[i], name + ": id already used by \"" + it->second->content + "\"");
    }
    if (auto [it, fresh] = by_content.emplace(token.content, &token); !fresh) {
      throw_json_error(at[i], name + ": content already has id " + std::to_string(it->second->id));
    }
    if (auto model_id = bpe.token_to_id(token.content); model_id && *model_id != token.id) {
      throw_json_error(at[i],
                       name + ": the model vocabulary gives it id " + std::to_string(*model_id));
    }
    if (const std::string* model_token = bpe.id_to_token(token.id);
        model_token && *model_token != token.content) {
      throw_json_error(at[i], name + ": the id belongs to model token \"" + *model_token + "\"");
    }
  }
}

// Hugging Face does not take the ids in tokenizer.json's added_tokens as given: it adds the
// tokens in order, giving each the model's id for its content, or else the next id after the
// model vocabulary and the added tokens so far (AddedVocabulary::add_tokens). A file whose ids
// differ loads in HF with other ids than written (and a warning); reject it.
void check_hf_added_ids(const std::vector<AddedToken>& tokens, const Bpe& bpe,
                        const std::vector<JsonPath>& at) {
  const auto model_size = static_cast<int64_t>(bpe.size());
  std::optional<int64_t> max_added;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const AddedToken& token = tokens[i];
    int64_t expected;
    if (auto model_id = bpe.token_to_id(token.content)) {
      expected = *model_id;
    } else if (!max_added || (*max_added < model_size && model_size > 0)) {
      expected = model_size;
    } else {
      expected = *max_added + 1;
    }
    if (expected != token.id) {
      throw_json_error(at[i] / "id", "is " + std::to_string(token.id) +
                                         " but Hugging Face would "
                                         "give \"" +
                                         token.content + "\" id " + std::to_string(expected) +
                                         " (added tokens not in the model vocabulary take the next "
                                         "free id, in file order)");
    }
    max_added = std::max(max_added.value_or(expected), expected);
  }
}

void require_null(const json& object, const std::string& key, const JsonPath& at,
                  const std::string& why) {
  if (const json* value = json_optional(object, key)) {
    throw_json_error(at / key, "expected null, got " + describe_json(*value) + " (" + why + ")");
  }
}

void require_empty_string(const json& object, const std::string& key, const JsonPath& at) {
  if (const json* value = json_optional(object, key)) {
    if (!value->is_string() || !value->get<std::string>().empty()) {
      throw_json_error(at / key, "expected null or \"\", got " + describe_json(*value) +
                                     " (subword prefixes/suffixes are not supported)");
    }
  }
}

Bpe::Vocab parse_vocab(const json& vocab, const JsonPath& at) {
  if (!vocab.is_object()) throw_json_error(at, "expected an object, got " + describe_json(vocab));
  Bpe::Vocab out;
  out.reserve(vocab.size());
  for (const auto& [token, id] : vocab.items()) {
    out.emplace_back(token, static_cast<TokenId>(json_index(id, kMaxId, at / token)));
  }
  return out;
}

// A merge "a b" (one space) as in merges.txt and older tokenizer.json files.
bool split_merge(const std::string& line, std::pair<std::string, std::string>* merge) {
  const size_t space = line.find(' ');
  if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
      line.find(' ', space + 1) != std::string::npos) {
    return false;
  }
  *merge = {line.substr(0, space), line.substr(space + 1)};
  return true;
}

Bpe::Merges parse_merges(const json& merges, const JsonPath& at) {
  if (!merges.is_array()) throw_json_error(at, "expected an array, got " + describe_json(merges));
  Bpe::Merges out;
  out.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    std::pair<std::string, std::string> merge;
    if (m.is_string()) {
      if (!split_merge(m.get<std::string>(), &merge)) {
        throw_json_error(at[i], "expected \"left right\" (one space), got " + describe_json(m));
      }
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merge = {m[0].get<std::string>(), m[1].get<std::string>()};
    } else {
      throw_json_error(at[i],
                       "expected [\"left\", \"right\"] or \"left right\", got " + describe_json(m));
    }
    out.push_back(std::move(merge));
  }
  return out;
}

// tokenizer.json's "model": a byte-level BPE's vocabulary, merges and options.
void read_model(const json& model, const JsonPath& at, TokenizerFiles& files) {
  const std::string type = json_string(json_member(model, "type", at), at / "type");
  if (type != "BPE") {
    throw_json_error(at / "type", "unsupported model type \"" + type + "\" (only BPE)");
  }
  require_null(model, "dropout", at, "BPE dropout is for training; inference needs null");
  if (json_bool(model, "byte_fallback", false, at)) {
    throw_json_error(at / "byte_fallback", "true is not supported (byte-level BPE needs false)");
  }
  require_empty_string(model, "continuing_subword_prefix", at);
  require_empty_string(model, "end_of_word_suffix", at);
  files.options.ignore_merges = json_bool(model, "ignore_merges", false, at);
  if (const json* unk = json_optional(model, "unk_token")) {
    files.options.unk_token = json_string(*unk, at / "unk_token");
  }
  files.options.fuse_unk = json_bool(model, "fuse_unk", false, at);
  files.vocab = parse_vocab(json_member(model, "vocab", at), at / "vocab");
  files.merges = parse_merges(json_member(model, "merges", at), at / "merges");
}

// One warning per file and process (a command may load its tokenizer more than once) when bytes
// have no character in the vocabulary: HF `tokenizers` loads such a file and drops those bytes
// (or encodes them as unk_token), and so does align (data/bpe.h).
void warn_missing_bytes(const Bpe& bpe, const std::string& file) {
  const std::vector<uint8_t>& missing = bpe.missing_bytes();
  if (missing.empty()) return;
  static std::mutex mutex;
  static std::set<std::string> warned;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!warned.insert(file).second) return;
  }
  std::string list;
  char hex[8];
  for (uint8_t b : missing) {
    std::snprintf(hex, sizeof(hex), "0x%02X", b);
    list += (list.empty() ? "" : ", ") + std::string(hex) + " \"";
    append_utf8(list, byte_to_char(b));
    list += "\"";
  }
  const std::string effect =
      bpe.unk_id() ? "encodes them as the unk_token \"" + *bpe.id_to_token(*bpe.unk_id()) + "\""
                   : "drops them from the text it encodes";
  std::cerr << "align: warning: " << file << ": the vocabulary has no byte-level character for "
            << missing.size() << " of the 256 bytes (" << list
            << "); like Hugging Face tokenizers, align " << effect << "\n";
}

void check_decoder(const json& root, const JsonPath& at) {
  const json* decoder = json_optional(root, "decoder");
  if (!decoder) throw_json_error(at / "decoder", "is null; only ByteLevel is supported");
  const std::string type =
      json_string(json_member(*decoder, "type", at / "decoder"), at / "decoder" / "type");
  if (type != "ByteLevel") {
    throw_json_error(at / "decoder" / "type",
                     "unsupported decoder type \"" + type + "\" (only ByteLevel)");
  }
}

void read_tokenizer_json(const std::string& path, TokenizerFiles& files) {
  const json root = read_json_file(path);
  const JsonPath at{path, ""};
  if (!root.is_object()) throw_json_error(at, "expected an object, got " + describe_json(root));
  if (const json* normalizer = json_optional(root, "normalizer")) {
    const json* type = json_optional(*normalizer, "type");
    throw_json_error(at / "normalizer",
                     "unsupported normalizer " +
                         (type ? describe_json(*type) : describe_json(*normalizer)) +
                         " (only null)");
  }
  require_null(root, "truncation", at, "HF would truncate every encoding");
  require_null(root, "padding", at, "HF would pad every encoding");
  check_decoder(root, at);
  read_model(json_member(root, "model", at), at / "model", files);
  files.pre_tokenizer = json_member(root, "pre_tokenizer", at);
  if (const json* post = json_optional(root, "post_processor")) files.post_processor = *post;
  if (const json* list = json_optional(root, "added_tokens")) {
    files.added = parse_added_token_list(*list, at / "added_tokens", files.added_at);
  }
}

Bpe::Merges read_merges_txt(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open " + path);
  Bpe::Merges merges;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("#version", 0) == 0) continue;
    std::pair<std::string, std::string> merge;
    if (!split_merge(line, &merge)) {
      throw InputError(path + ":" + std::to_string(number) +
                       ": expected \"left right\" (two tokens, one space), got \"" + line + "\"");
    }
    merges.push_back(std::move(merge));
  }
  return merges;
}

}  // namespace

// bos_token may be a string or an AddedToken object {"content": ...}.
std::optional<std::string> TokenizerFiles::special_token(const std::string& key) const {
  const JsonPath at{config_path, ""};
  const json* value = json_optional(config, key);
  if (!value) return std::nullopt;
  if (value->is_object())
    return json_string(json_member(*value, "content", at / key), at / key / "content");
  return json_string(*value, at / key);
}

TokenizerFiles read_tokenizer_files(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string tokenizer_json = dir + "/tokenizer.json";
  const std::string vocab_json = dir + "/vocab.json";
  const std::string merges_txt = dir + "/merges.txt";
  TokenizerFiles files;
  files.config_path = dir + "/tokenizer_config.json";
  if (fs::exists(files.config_path)) {
    files.config = read_json_file(files.config_path);
    if (!files.config.is_object()) {
      throw InputError(files.config_path + ": expected an object, got " +
                       describe_json(files.config));
    }
  }
  if (fs::exists(tokenizer_json)) {
    files.source = tokenizer_json;
    files.from_tokenizer_json = true;
    read_tokenizer_json(tokenizer_json, files);
  } else if (fs::exists(vocab_json)) {
    files.source = vocab_json;
    if (!fs::exists(merges_txt)) {
      throw InputError(merges_txt + ": missing (needed next to " + vocab_json + ")");
    }
    files.vocab = parse_vocab(read_json_file(vocab_json), JsonPath{vocab_json, ""});
    files.merges = read_merges_txt(merges_txt);
    files.pre_tokenizer = PreTokenizer::phi4_json();
    // transformers takes these ids as written.
    if (const json* map = json_optional(files.config, "added_tokens_decoder")) {
      files.added = parse_added_token_map(
          *map, JsonPath{files.config_path, ""} / "added_tokens_decoder", files.added_at);
    }
  } else {
    throw InputError(dir +
                     ": no tokenizer found (expected tokenizer.json, or vocab.json and "
                     "merges.txt)");
  }
  return files;
}

Tokenizer Tokenizer::load(const std::string& dir) {
  TokenizerFiles files = read_tokenizer_files(dir);
  const std::string& source = files.source;
  Bpe bpe(files.vocab, files.merges, files.options,
          files.from_tokenizer_json ? source + ": model" : source + " + " + dir + "/merges.txt");
  PreTokenizer pre =
      files.from_tokenizer_json
          ? PreTokenizer::from_json(files.pre_tokenizer, JsonPath{source, ""} / "pre_tokenizer")
          : PreTokenizer::phi4();
  check_added_tokens(files.added, bpe, files.added_at);
  if (files.from_tokenizer_json) check_hf_added_ids(files.added, bpe, files.added_at);
  warn_missing_bytes(bpe, source);

  auto state = std::make_shared<TokenizerState>(std::move(bpe), std::move(pre),
                                                std::move(files.added), source);
  const JsonPath config_at{files.config_path, ""};
  auto resolve = [&](const std::string& key) -> std::optional<TokenId> {
    const auto name = files.special_token(key);
    if (!name) return std::nullopt;
    auto it = state->added_ids.find(*name);
    if (it != state->added_ids.end()) return it->second;
    if (auto id = state->bpe.token_to_id(*name)) return id;
    throw_json_error(config_at / key, "\"" + *name + "\" is not a token of " + source);
  };
  state->bos = resolve("bos_token");
  state->eos = resolve("eos_token");
  state->pad = resolve("pad_token");
  return make_tokenizer(std::move(state));
}

}  // namespace align
