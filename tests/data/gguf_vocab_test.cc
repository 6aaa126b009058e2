// The tokenizer as GGUF metadata (data/gguf_vocab.h): what export writes from a folder, that a
// folder rebuilt from it encodes as the original does, and what either side refuses. The golden
// corpora are tools/golden_tokenizer.py's (Hugging Face tokenizers' ids).
#include "data/gguf_vocab.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "data/tokenizer.h"
#include "tests/data/golden.h"

namespace align {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::case_ids;
using testing::case_input;
using testing::read_golden_json;
using testing::tokenizer_golden;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// `vocab` through a GGUF file and back, as import reads it.
GgufVocab through_file(const GgufVocab& vocab, const testing::TempDir& dir) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("phi3"));
  write_gguf_vocab(vocab, w);
  w.write(dir.file("vocab.gguf"));
  return read_gguf_vocab(*GgufFile::open(dir.file("vocab.gguf")));
}

// A copy of the tokenizer folder `from` with tokenizer.json changed by `edit`.
std::string edited_copy(const std::string& from, const testing::TempDir& dir,
                        const std::function<void(json&)>& edit) {
  const std::string to = dir.file("edited");
  fs::create_directories(to);
  for (const auto& entry : fs::directory_iterator(from))
    fs::copy_file(entry.path(), to + "/" + entry.path().filename().string());
  json tokenizer = read_json_file(to + "/tokenizer.json");
  edit(tokenizer);
  write_file_atomic(to + "/tokenizer.json", tokenizer.dump());
  return to;
}

TEST(GgufVocab, ExportWritesTokensTypesMergesAndSpecialIds) {
  const std::string dir = tokenizer_golden("main");
  const GgufVocab v = gguf_vocab_from_folder(dir, 1216);
  const json tokenizer = read_json_file(dir + "/tokenizer.json");
  EXPECT_EQ(v.pre, "dbrx");  // cl100k split, no ignore_merges: Phi-4's
  ASSERT_EQ(v.tokens.size(), 1216u);
  for (const auto& [token, id] : tokenizer["model"]["vocab"].items()) {
    EXPECT_EQ(v.tokens[id.get<size_t>()], token);
    EXPECT_EQ(v.token_types[id.get<size_t>()], kGgufTokenNormal);
  }
  EXPECT_EQ(v.tokens[1100], "<|dummy_0|>");
  EXPECT_EQ(v.token_types[1100], kGgufTokenControl);
  EXPECT_EQ(v.tokens[1200], "[PAD1200]");
  EXPECT_EQ(v.token_types[1200], kGgufTokenUnused);
  const json& merges = tokenizer["model"]["merges"];
  ASSERT_EQ(v.merges.size(), merges.size());
  const std::string first = merges[0].is_string() ? merges[0].get<std::string>()
                                                  : merges[0][0].get<std::string>() + " " +
                                                        merges[0][1].get<std::string>();
  EXPECT_EQ(v.merges[0], first);
  const Tokenizer tok = Tokenizer::load(dir);
  EXPECT_EQ(v.bos, tok.bos_id());
  EXPECT_EQ(v.eos, tok.eos_id());
  EXPECT_EQ(v.pad, tok.pad_id());
  EXPECT_EQ(v.add_bos, std::nullopt);  // neither tokenizer_config.json nor tokenizer.json says
  EXPECT_FALSE(v.chat_template.empty());
  ASSERT_FALSE(v.notes.empty());  // Phi-4's special tokens strip whitespace; llama.cpp does not
  EXPECT_NE(v.notes[0].find("lstrip/rstrip"), std::string::npos) << v.notes[0];

  // The vocab.json + merges.txt layout (no tokenizer.json) gives the same file.
  testing::TempDir tmp;
  for (const char* name : {"vocab.json", "merges.txt", "tokenizer_config.json"})
    fs::copy_file(dir + "/" + name, tmp.file(name));
  const GgufVocab legacy_layout = gguf_vocab_from_folder(tmp.path(), 1216);
  EXPECT_EQ(legacy_layout.pre, v.pre);
  EXPECT_EQ(legacy_layout.tokens, v.tokens);
  EXPECT_EQ(legacy_layout.token_types, v.token_types);
  EXPECT_EQ(legacy_layout.merges, v.merges);

  EXPECT_EQ(gguf_vocab_from_folder(tokenizer_golden("ignore_merges"), 1196).pre, "llama-bpe");
  EXPECT_EQ(gguf_vocab_from_folder("examples/arith/tokenizer", 277).pre, "dbrx");
}

// A folder rebuilt from the GGUF keys encodes the golden corpus as the original folder does.
// Special tokens rebuilt from a GGUF carry no lstrip/rstrip (llama.cpp's and transformers'
// loaders have none), so folders whose special tokens strip are compared with special-token
// matching off.
TEST(GgufVocab, RebuiltFolderEncodesLikeTheOriginal) {
  struct Case {
    std::string folder;
    int64_t vocab_size;
    std::string corpus;
    bool specials_strip;
  };
  const std::vector<Case> cases = {
      {tokenizer_golden("main"), 1216, "encode_main.json", true},
      {tokenizer_golden("ignore_merges"), 1196, "encode_ignore_merges.json", true},
      {tokenizer_golden("missing_bytes"), 1175, "encode_missing_bytes.json", true},
      {"examples/arith/tokenizer", 320, "encode_main.json", false},
  };
  for (const Case& c : cases) {
    testing::TempDir dir;
    const GgufVocab vocab = through_file(gguf_vocab_from_folder(c.folder, c.vocab_size), dir);
    write_tokenizer_folder(vocab, dir.path(), 4096);
    const Tokenizer original = Tokenizer::load(c.folder);
    const Tokenizer rebuilt = Tokenizer::load(dir.path());
    size_t compared = 0;
    for (const json& item : read_golden_json(c.corpus)) {
      const std::string text = case_input(item);
      for (bool special : {false, true}) {
        if (special && c.specials_strip) continue;
        ++compared;
        EXPECT_EQ(rebuilt.encode(text, special), original.encode(text, special))
            << c.folder << " special=" << special << " text " << json(text).dump();
      }
    }
    EXPECT_GT(compared, 50u) << c.folder;
    EXPECT_EQ(rebuilt.bos_id(), original.bos_id()) << c.folder;
    EXPECT_EQ(rebuilt.eos_id(), original.eos_id()) << c.folder;
    if (vocab.chat_template.empty()) {
      EXPECT_FALSE(fs::exists(dir.file("chat_template.jinja"))) << c.folder;
    } else {
      EXPECT_EQ(read_file(dir.file("chat_template.jinja")), vocab.chat_template) << c.folder;
    }
  }
}

TEST(GgufVocab, ExportRefusesWhatLlamaCppWouldTokenizeDifferently) {
  testing::TempDir dir;
  std::string message = error_of([&] { gguf_vocab_from_folder(tokenizer_golden("legacy"), 1200); });
  EXPECT_NE(message.find("pre_tokenizer: ByteLevel's add_prefix_space is true"), std::string::npos)
      << message;

  const std::string other_regex = edited_copy("examples/arith/tokenizer", dir, [](json& t) {
    t["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+|\\S+";
  });
  message = error_of([&] { gguf_vocab_from_folder(other_regex, 320); });
  EXPECT_NE(message.find("tokenizer.json: pre_tokenizer: no llama.cpp pre-tokenizer runs "
                         "Split(Regex \"\\\\s+|\\\\S+\"), ByteLevel(use_regex: false)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("align exports gpt-2, smollm, dbrx, llama-bpe"), std::string::npos);

  message = error_of([&] { gguf_vocab_from_folder("examples/arith/tokenizer", 276); });
  EXPECT_NE(message.find("\"<|pad|>\" has id 276, but the model has vocab_size 276"),
            std::string::npos)
      << message;
}

TEST(GgufVocab, ImportRefusesTokenizersItCannotRebuild) {
  testing::TempDir dir;
  const GgufVocab good = gguf_vocab_from_folder("examples/arith/tokenizer", 277);
  struct Case {
    std::string key;
    GgufValue value;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"tokenizer.ggml.model", GgufValue::string("llama"),
       "'tokenizer.ggml.model' is \"llama\"; align imports byte-level BPE tokenizers"},
      {"tokenizer.ggml.pre", GgufValue::string("qwen35"),
       "'tokenizer.ggml.pre' is \"qwen35\"; align imports gpt-2, smollm, dbrx, llama-bpe"},
      {"tokenizer.ggml.token_type", GgufValue::array(GgufType::kI32, {1, 1}),
       "'tokenizer.ggml.token_type' has 2 entries for 277 tokens"},
      {"tokenizer.ggml.eos_token_id", GgufValue::u32(277),
       "'tokenizer.ggml.eos_token_id' is 277, not a token id"},
      {"tokenizer.ggml.merges", GgufValue::array(GgufType::kI32, json::array()),
       "metadata 'tokenizer.ggml.merges': expected an array of string, found array of i32"},
  };
  for (const Case& c : cases) {
    GgufWriter w;
    write_gguf_vocab(good, w);
    w.set(c.key, c.value);
    w.write(dir.file("t.gguf"));
    const std::string message =
        error_of([&] { read_gguf_vocab(*GgufFile::open(dir.file("t.gguf"))); });
    EXPECT_NE(message.find(c.message), std::string::npos)
        << c.key << ": expected \"" << c.message << "\", got \"" << message << "\"";
  }
  EXPECT_EQ(through_file(good, dir).pre, "dbrx");
}

// transformers' loader spells a token outside the byte-level alphabet by its bytes and adds only
// control tokens written in the alphabet as special (integrations/gguf/gguf_tokenizer_mapping.py);
// import writes the same tokenizer.json.
TEST(GgufVocab, ImportSpellsTokensAsTransformersLoaderDoes) {
  GgufVocab v = gguf_vocab_from_folder("examples/arith/tokenizer", 277);
  v.tokens.push_back("<|a b|>");  // a control token with a space: not in the alphabet
  v.token_types.push_back(kGgufTokenControl);
  v.tokens.push_back("<think>");
  v.token_types.push_back(kGgufTokenUserDefined);
  v.tokens.push_back("[PAD279]");
  v.token_types.push_back(kGgufTokenUnused);
  testing::TempDir dir;
  write_tokenizer_folder(v, dir.path(), 256);
  const json t = read_json_file(dir.file("tokenizer.json"));
  EXPECT_EQ(t["model"]["vocab"]["<|aĠb|>"], 277);
  EXPECT_EQ(t["model"]["vocab"]["<think>"], 278);
  EXPECT_EQ(t["model"]["vocab"]["[PAD279]"], 279);
  std::map<std::string, bool> added;
  for (const json& a : t["added_tokens"])
    added[a["content"].get<std::string>()] = a["special"].get<bool>();
  EXPECT_EQ(added.count("<|a b|>"), 0u);
  EXPECT_EQ(added.at("<think>"), false);
  EXPECT_EQ(added.at("<|im_end|>"), true);
  EXPECT_EQ(added.count("[PAD279]"), 0u);
  const json config = read_json_file(dir.file("tokenizer_config.json"));
  EXPECT_EQ(config["eos_token"], "<|im_end|>");
  EXPECT_EQ(config["model_max_length"], 256);
  const Tokenizer tok = Tokenizer::load(dir.path());
  EXPECT_EQ(tok.encode("x<think>y").size(), 3u);
}

}  // namespace
}  // namespace align
