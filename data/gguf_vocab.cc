#include "data/gguf_vocab.h"

#include <map>
#include <unordered_map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "data/byte_level.h"
#include "data/chat_template.h"
#include "data/pretokenizer.h"
#include "data/tokenizer.h"
#include "data/tokenizer_files.h"
#include "data/utf8.h"

namespace align {
namespace {

using nlohmann::json;

// llama.cpp's pre-tokenizers that tokenizer.json can say, with the steps that say them.
struct PreTokenizerName {
  const char* gguf;
  std::vector<std::string> splits;  // Split(Regex, Isolated) patterns, in order
  bool byte_level_regex;            // ByteLevel's use_regex
  bool ignore_merges;               // model.ignore_merges
  bool adds_bos;                    // llama.cpp's add_bos when the file does not say
};
const std::vector<PreTokenizerName>& pre_tokenizer_names() {
  static const std::vector<PreTokenizerName> names = {
      {"gpt-2", {}, true, false, false},
      {"smollm", {R"(\p{N})"}, true, false, false},
      {"dbrx", {kCl100kPattern}, false, false, false},
      {"llama-bpe", {kCl100kPattern}, false, true, true},
  };
  return names;
}

// llama.cpp's other spellings of the same pre-tokenizers (src/llama-vocab.cpp).
std::string canonical_pre(const std::string& name) {
  if (name == "llama3" || name == "llama-v3") return "llama-bpe";
  if (name == "phi-2") return "gpt-2";
  return name;
}

std::string known_pre_list() {
  std::string list;
  for (const PreTokenizerName& n : pre_tokenizer_names())
    list += (list.empty() ? "" : ", ") + std::string(n.gguf);
  return list;
}

// tokenizer.json's "pre_tokenizer" value for a table entry.
json pre_tokenizer_json(const PreTokenizerName& name) {
  json byte_level = {{"type", "ByteLevel"},
                     {"add_prefix_space", false},
                     {"trim_offsets", true},
                     {"use_regex", name.byte_level_regex}};
  if (name.splits.empty()) return byte_level;
  json steps = json::array();
  for (const std::string& pattern : name.splits) {
    steps.push_back({{"type", "Split"},
                     {"pattern", {{"Regex", pattern}}},
                     {"behavior", "Isolated"},
                     {"invert", false}});
  }
  steps.push_back(byte_level);
  return {{"type", "Sequence"}, {"pretokenizers", steps}};
}

std::string describe_steps(const PreTokenizer::Steps& steps) {
  std::string out;
  for (const auto& [pattern, literal] : steps.splits)
    out += std::string("Split(") + (literal ? "String " : "Regex ") + json(pattern).dump() + "), ";
  return out + "ByteLevel(use_regex: " + (steps.byte_level_regex ? "true" : "false") + ")";
}

const PreTokenizerName& match_pre_tokenizer(const TokenizerFiles& files) {
  const JsonPath at = JsonPath{files.source, ""} / "pre_tokenizer";
  const PreTokenizer::Steps steps = PreTokenizer::from_json(files.pre_tokenizer, at).steps();
  if (steps.add_prefix_space) {
    throw_json_error(at,
                     "ByteLevel's add_prefix_space is true; llama.cpp's byte-level BPE "
                     "never adds a leading space, so it would tokenize differently");
  }
  for (const PreTokenizerName& name : pre_tokenizer_names()) {
    bool same = name.byte_level_regex == steps.byte_level_regex &&
                name.ignore_merges == files.options.ignore_merges &&
                name.splits.size() == steps.splits.size();
    for (size_t i = 0; same && i < name.splits.size(); ++i)
      same = !steps.splits[i].second && steps.splits[i].first == name.splits[i];
    if (same) return name;
  }
  throw_json_error(at, "no llama.cpp pre-tokenizer runs " + describe_steps(steps) +
                           " with model.ignore_merges " +
                           (files.options.ignore_merges ? "true" : "false") + "; align exports " +
                           known_pre_list() + " (docs/gguf.md)");
}

// add_bos / add_eos as tokenizer_config.json says, else as tokenizer.json's TemplateProcessing
// adds them (a special token first / last in "single"), as gguf-py's SpecialVocab reads them;
// std::nullopt when neither says.
std::optional<bool> adds_special(const TokenizerFiles& files, const std::string& key, bool first,
                                 const std::optional<std::string>& token) {
  if (auto flag = files.config.find(key); flag != files.config.end() && flag->is_boolean()) {
    return flag->get<bool>();
  }
  const json& post = files.post_processor;
  if (!post.is_object() || post.value("type", "") != "TemplateProcessing") return std::nullopt;
  const json single = post.value("single", json::array());
  if (!single.is_array() || single.size() < 2) return std::nullopt;
  const json& end = first ? single.front() : single.back();
  if (!end.contains("SpecialToken")) return std::nullopt;
  return token && end["SpecialToken"].value("id", "") == *token;
}

}  // namespace

GgufVocab gguf_vocab_from_folder(const std::string& dir, int64_t vocab_size) {
  Tokenizer::load(dir);  // only tokenizers align runs exactly are exported
  const TokenizerFiles files = read_tokenizer_files(dir);
  GgufVocab out;
  out.pre = match_pre_tokenizer(files).gguf;
  out.tokens.assign(vocab_size, "");
  out.token_types.assign(vocab_size, kGgufTokenUnused);
  std::unordered_map<std::string, int64_t> ids;
  auto place = [&](const std::string& token, int64_t id, int32_t type, const std::string& what) {
    if (id >= vocab_size) {
      throw InputError(files.source + ": " + what + " \"" + token + "\" has id " +
                       std::to_string(id) + ", but the model has vocab_size " +
                       std::to_string(vocab_size) + " embedding rows (config.json)");
    }
    out.tokens[id] = token;
    out.token_types[id] = type;
    ids[token] = id;
  };
  for (const auto& [token, id] : files.vocab)
    place(token, id, kGgufTokenNormal, "token");
  std::vector<std::string> stripping;
  for (const AddedToken& t : files.added) {
    place(t.content, t.id, t.special ? kGgufTokenControl : kGgufTokenUserDefined, "added token");
    if (t.lstrip || t.rstrip || t.single_word) stripping.push_back("\"" + t.content + "\"");
  }
  if (!stripping.empty()) {
    out.notes.push_back(std::to_string(stripping.size()) + " added tokens (" + stripping[0] +
                        (stripping.size() > 1 ? ", ..." : "") +
                        ") have lstrip/rstrip/single_word, which llama.cpp does not apply: it "
                        "keeps the whitespace next to them (docs/gguf.md)");
  }
  for (int64_t id = 0; id < vocab_size; ++id) {
    if (out.token_types[id] == kGgufTokenUnused) out.tokens[id] = "[PAD" + std::to_string(id) + "]";
  }
  for (const auto& [left, right] : files.merges) {
    // A space inside a part would split it; gguf-py writes it as U+0120 as well.
    std::string merge;
    for (const std::string* part : {&left, &right}) {
      if (!merge.empty()) merge += ' ';
      for (char ch : *part)
        merge += ch == ' ' ? std::string("\xC4\xA0") : std::string(1, ch);
    }
    out.merges.push_back(std::move(merge));
  }
  auto special = [&](const std::string& key) -> std::optional<int64_t> {
    const auto name = files.special_token(key);
    if (!name) return std::nullopt;
    auto it = ids.find(*name);
    if (it == ids.end()) {
      throw InputError(files.config_path + ": " + key + " \"" + *name + "\" is not a token of " +
                       files.source);
    }
    return it->second;
  };
  out.bos = special("bos_token");
  out.eos = special("eos_token");
  out.unk = special("unk_token");
  out.pad = special("pad_token");
  out.add_bos = adds_special(files, "add_bos_token", true, files.special_token("bos_token"));
  out.add_eos = adds_special(files, "add_eos_token", false, files.special_token("eos_token"));
  out.chat_template = read_chat_template(dir).text;
  return out;
}

void write_gguf_vocab(const GgufVocab& vocab, GgufWriter& out) {
  out.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  out.set("tokenizer.ggml.pre", GgufValue::string(vocab.pre));
  out.set("tokenizer.ggml.tokens", GgufValue::array(GgufType::kString, vocab.tokens));
  out.set("tokenizer.ggml.token_type", GgufValue::array(GgufType::kI32, vocab.token_types));
  out.set("tokenizer.ggml.merges", GgufValue::array(GgufType::kString, vocab.merges));
  const std::pair<const char*, const std::optional<int64_t>*> ids[] = {
      {"bos", &vocab.bos}, {"eos", &vocab.eos}, {"unknown", &vocab.unk}, {"padding", &vocab.pad}};
  for (const auto& [name, id] : ids) {
    if (*id) {
      out.set(std::string("tokenizer.ggml.") + name + "_token_id",
              GgufValue::u32(static_cast<uint32_t>(**id)));
    }
  }
  if (vocab.add_bos) out.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(*vocab.add_bos));
  if (vocab.add_eos) out.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(*vocab.add_eos));
  if (!vocab.chat_template.empty()) {
    out.set("tokenizer.chat_template", GgufValue::string(vocab.chat_template));
  }
}

GgufVocab read_gguf_vocab(const GgufFile& file) {
  auto fail = [&](const std::string& key, const std::string& why) {
    throw InputError(file.path() + ": '" + key + "' " + why);
  };
  const auto model = file.get_string("tokenizer.ggml.model");
  if (model != "gpt2") {
    fail("tokenizer.ggml.model", "is " + (model ? "\"" + *model + "\"" : std::string("missing")) +
                                     "; align imports byte-level BPE tokenizers (\"gpt2\") only");
  }
  GgufVocab out;
  const auto pre = file.get_string("tokenizer.ggml.pre");
  if (!pre) {
    fail("tokenizer.ggml.pre",
         "is missing (llama.cpp would use its default pre-tokenizer, which "
         "no tokenizer.json says); known: " +
             known_pre_list());
  }
  out.pre = canonical_pre(*pre);
  bool known = false;
  for (const PreTokenizerName& n : pre_tokenizer_names())
    known = known || out.pre == n.gguf;
  if (!known) fail("tokenizer.ggml.pre", "is \"" + *pre + "\"; align imports " + known_pre_list());
  const json* tokens = file.get_array("tokenizer.ggml.tokens", GgufType::kString);
  const json* merges = file.get_array("tokenizer.ggml.merges", GgufType::kString);
  if (!tokens || tokens->empty()) fail("tokenizer.ggml.tokens", "is missing or empty");
  if (!merges) fail("tokenizer.ggml.merges", "is missing (a gpt2 tokenizer needs its merges)");
  out.tokens = tokens->get<std::vector<std::string>>();
  out.merges = merges->get<std::vector<std::string>>();
  out.token_types.assign(out.tokens.size(), kGgufTokenNormal);
  if (const json* types = file.get_array("tokenizer.ggml.token_type", GgufType::kI32)) {
    if (types->size() != out.tokens.size()) {
      fail("tokenizer.ggml.token_type", "has " + std::to_string(types->size()) + " entries for " +
                                            std::to_string(out.tokens.size()) + " tokens");
    }
    out.token_types = types->get<std::vector<int32_t>>();
  }
  for (const auto& [key, id] : {std::pair{"bos", &out.bos}, std::pair{"eos", &out.eos},
                                std::pair{"unknown", &out.unk}, std::pair{"padding", &out.pad}}) {
    const std::string name = std::string("tokenizer.ggml.") + key + "_token_id";
    *id = file.get_int(name);
    if (*id && (**id < 0 || **id >= static_cast<int64_t>(out.tokens.size()))) {
      fail(name, "is " + std::to_string(**id) + ", not a token id");
    }
  }
  out.add_bos = file.get_bool("tokenizer.ggml.add_bos_token");
  out.add_eos = file.get_bool("tokenizer.ggml.add_eos_token");
  out.chat_template = file.get_string("tokenizer.chat_template").value_or("");
  for (size_t id = 0; id < out.tokens.size(); ++id) {
    if (!is_valid_utf8(out.tokens[id])) {
      fail("tokenizer.ggml.tokens", "[" + std::to_string(id) + "] is not valid UTF-8");
    }
  }
  return out;
}

void write_tokenizer_folder(const GgufVocab& vocab, const std::string& dir,
                            int64_t model_max_length) {
  const PreTokenizerName* pre = nullptr;
  for (const PreTokenizerName& n : pre_tokenizer_names())
    if (vocab.pre == n.gguf) pre = &n;
  if (!pre) throw InputError("unknown pre-tokenizer \"" + vocab.pre + "\"");
  json model_vocab = json::object();
  json added = json::array();
  std::map<std::string, size_t> seen;
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    const std::string& token = vocab.tokens[id];
    const bool in_alphabet = byte_level_to_bytes(token).has_value();
    const std::string spelled = in_alphabet ? token : bytes_to_byte_level(token);
    if (auto [it, fresh] = seen.emplace(spelled, id); !fresh) {
      throw InputError("tokenizer.ggml.tokens: tokens " + std::to_string(it->second) + " and " +
                       std::to_string(id) + " are both \"" + spelled + "\"");
    }
    model_vocab[spelled] = id;
    const int32_t type = vocab.token_types[id];
    if (in_alphabet && (type == kGgufTokenControl || type == kGgufTokenUserDefined)) {
      added.push_back({{"id", id},
                       {"content", token},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", type == kGgufTokenControl}});
    }
  }
  json merges = json::array();
  for (const std::string& merge : vocab.merges) {
    const size_t space = merge.find(' ');
    if (space == std::string::npos || merge.find(' ', space + 1) != std::string::npos) {
      throw InputError("tokenizer.ggml.merges: expected \"left right\", found \"" + merge + "\"");
    }
    merges.push_back({merge.substr(0, space), merge.substr(space + 1)});
  }
  const json tokenizer = {{"version", "1.0"},
                          {"truncation", nullptr},
                          {"padding", nullptr},
                          {"added_tokens", added},
                          {"normalizer", nullptr},
                          {"pre_tokenizer", pre_tokenizer_json(*pre)},
                          {"post_processor", nullptr},
                          {"decoder",
                           {{"type", "ByteLevel"},
                            {"add_prefix_space", true},
                            {"trim_offsets", true},
                            {"use_regex", true}}},
                          {"model",
                           {{"type", "BPE"},
                            {"dropout", nullptr},
                            {"unk_token", nullptr},
                            {"continuing_subword_prefix", nullptr},
                            {"end_of_word_suffix", nullptr},
                            {"fuse_unk", false},
                            {"byte_fallback", false},
                            {"ignore_merges", pre->ignore_merges},
                            {"vocab", model_vocab},
                            {"merges", merges}}}};
  json config = {{"add_bos_token", vocab.add_bos.value_or(pre->adds_bos)},
                 {"add_eos_token", vocab.add_eos.value_or(false)},
                 {"clean_up_tokenization_spaces", false},
                 {"model_max_length", model_max_length},
                 {"tokenizer_class", "PreTrainedTokenizerFast"}};
  const std::pair<const char*, const std::optional<int64_t>*> specials[] = {
      {"bos_token", &vocab.bos},
      {"eos_token", &vocab.eos},
      {"unk_token", &vocab.unk},
      {"pad_token", &vocab.pad}};
  for (const auto& [key, id] : specials) {
    if (*id) config[key] = vocab.tokens[**id];
  }
  write_file_atomic(dir + "/tokenizer.json", tokenizer.dump(2) + "\n");
  write_file_atomic(dir + "/tokenizer_config.json", config.dump(2) + "\n");
  if (!vocab.chat_template.empty()) {
    write_file_atomic(dir + "/chat_template.jinja", vocab.chat_template);
  }
}

}  // namespace align
