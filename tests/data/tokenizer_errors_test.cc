// Bad tokenizer files and inputs: each must throw InputError naming the file and the field.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "common/error.h"
#include "data/tokenizer.h"
#include "tests/data/golden.h"

namespace align {
namespace {

using nlohmann::json;
using testing::read_golden_json;
using testing::TempDir;
using testing::tokenizer_golden;
using testing::write_text;

// Loads `dir` and expects an InputError whose message contains every part.
void expect_load_error(const std::string& dir, const std::vector<std::string>& parts) {
  try {
    Tokenizer::load(dir);
    ADD_FAILURE() << "no error; expected one containing " << parts[0];
  } catch (const InputError& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "message: " << e.what() << "\nmissing: " << part;
    }
  }
}

// Writes the main golden tokenizer.json after `edit`, then expects the error.
void expect_tokenizer_json_error(const std::function<void(json&)>& edit,
                                 const std::vector<std::string>& parts) {
  TempDir dir;
  json j = read_golden_json("main/tokenizer.json");
  edit(j);
  write_text(dir.file("tokenizer.json"), j.dump());
  std::vector<std::string> with_file = parts;
  with_file.push_back(dir.file("tokenizer.json"));
  expect_load_error(dir.path(), with_file);
}

TEST(TokenizerErrors, MissingFiles) {
  TempDir dir;
  expect_load_error(dir.path(), {dir.path(), "no tokenizer found", "tokenizer.json"});
  write_text(dir.file("vocab.json"), "{}");
  expect_load_error(dir.path(), {dir.file("merges.txt"), "missing"});
}

TEST(TokenizerErrors, NotJson) {
  TempDir dir;
  write_text(dir.file("tokenizer.json"), "{\"model\": [1, 2");
  expect_load_error(dir.path(), {dir.file("tokenizer.json"), "not valid JSON"});
}

TEST(TokenizerErrors, ModelFields) {
  expect_tokenizer_json_error([](json& j) { j["model"]["type"] = "WordPiece"; },
                              {"model.type", "WordPiece"});
  expect_tokenizer_json_error([](json& j) { j["model"]["dropout"] = 0.1; },
                              {"model.dropout", "expected null"});
  expect_tokenizer_json_error([](json& j) { j["model"]["byte_fallback"] = true; },
                              {"model.byte_fallback"});
  expect_tokenizer_json_error([](json& j) { j["model"]["continuing_subword_prefix"] = "##"; },
                              {"model.continuing_subword_prefix"});
  expect_tokenizer_json_error([](json& j) { j["model"]["ignore_merges"] = "yes"; },
                              {"model.ignore_merges", "expected true or false"});
  expect_tokenizer_json_error([](json& j) { j["model"].erase("vocab"); },
                              {"model.vocab", "missing"});
  expect_tokenizer_json_error([](json& j) { j["model"]["vocab"]["\xC4\xA0the"] = "x"; },
                              {"model.vocab.\xC4\xA0the", "expected an integer id"});
  expect_tokenizer_json_error([](json& j) { j["model"]["vocab"]["zz"] = -3; },
                              {"model.vocab.zz", "out of range"});
  expect_tokenizer_json_error([](json& j) { j["model"]["unk_token"] = 5; },
                              {"model.unk_token", "expected a string"});
  expect_tokenizer_json_error([](json& j) { j["model"]["fuse_unk"] = "yes"; },
                              {"model.fuse_unk", "expected true or false"});
  // Bytes without a character and an unk_token HF could not find: HF fails on every text with
  // such a byte (UnkTokenOutOfVocabulary); align refuses the file.
  TempDir dir;
  json j = read_golden_json("missing_bytes/tokenizer.json");
  j["model"]["unk_token"] = "<unk>";
  write_text(dir.file("tokenizer.json"), j.dump());
  expect_load_error(dir.path(), {dir.file("tokenizer.json"),
                                 "model.unk_token: \"<unk>\" is not "
                                 "in the vocabulary, and 21 bytes"});
}

TEST(TokenizerErrors, Merges) {
  expect_tokenizer_json_error(
      [](json& j) {
        j["model"]["merges"][0] = json::array({"t", "nope"});
      },
      {"model.merges[0]", "\"nope\" is not in the vocabulary"});
  expect_tokenizer_json_error([](json& j) { j["model"]["merges"][2] = "a b c"; },
                              {"model.merges[2]", "one space"});
  expect_tokenizer_json_error([](json& j) { j["model"]["merges"][1] = 7; },
                              {"model.merges[1]", "number 7"});
}

TEST(TokenizerErrors, PipelineSteps) {
  expect_tokenizer_json_error(
      [](json& j) {
        j["normalizer"] = {{"type", "NFC"}};
      },
      {"normalizer", "NFC"});
  expect_tokenizer_json_error(
      [](json& j) {
        j["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Metaspace"}};
      },
      {"pre_tokenizer.pretokenizers[0].type", "Metaspace"});
  expect_tokenizer_json_error(
      [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; },
      {"pre_tokenizer.pretokenizers[0].behavior", "Removed"});
  expect_tokenizer_json_error(
      [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(\\p{L}"; },
      {"pre_tokenizer.pretokenizers[0].pattern.Regex", "cannot compile"});
  expect_tokenizer_json_error(
      [](json& j) { j["pre_tokenizer"] = j["pre_tokenizer"]["pretokenizers"][0]; },
      {"pre_tokenizer", "no ByteLevel step"});
  expect_tokenizer_json_error(
      [](json& j) {
        j["decoder"] = {{"type", "WordPiece"}};
      },
      {"decoder.type", "WordPiece"});
  expect_tokenizer_json_error([](json& j) { j["decoder"] = nullptr; }, {"decoder", "null"});
  expect_tokenizer_json_error(
      [](json& j) {
        j["truncation"] = {{"max_length", 8}};
      },
      {"truncation", "expected null"});
}

TEST(TokenizerErrors, AddedTokens) {
  expect_tokenizer_json_error([](json& j) { j["added_tokens"][3].erase("content"); },
                              {"added_tokens[3].content", "missing"});
  expect_tokenizer_json_error([](json& j) { j["added_tokens"][0]["id"] = "100"; },
                              {"added_tokens[0].id", "expected an integer id"});
  expect_tokenizer_json_error([](json& j) { j["added_tokens"][2]["lstrip"] = 1; },
                              {"added_tokens[2].lstrip", "expected true or false"});
  expect_tokenizer_json_error(
      [](json& j) { j["added_tokens"][1]["id"] = j["added_tokens"][0]["id"]; },
      {"added_tokens[1]", "id already used"});
  expect_tokenizer_json_error([](json& j) { j["added_tokens"][1]["content"] = "\xC4\xA0the"; },
                              {"added_tokens[1]", "the model vocabulary gives it id"});
  expect_tokenizer_json_error([](json& j) { j["added_tokens"][2]["id"] = 7; },
                              {"added_tokens[2]", "the id belongs to model token"});
  // HF assigns ids in file order after the vocabulary (verified with tokenizers 0.23.3: shifting
  // every added id by 10 loads with the original ids); a file that says otherwise is rejected.
  expect_tokenizer_json_error(
      [](json& j) {
        for (json& t : j["added_tokens"])
          t["id"] = t["id"].get<int>() + 10;
      },
      {"added_tokens[0].id", "Hugging Face would give \"<|dummy_0|>\" id"});
}

TEST(TokenizerErrors, VocabJsonAndMergesTxt) {
  const std::string merges = "#version: 0.2\n";
  {
    TempDir dir;
    write_text(dir.file("vocab.json"), "{\"a\": \"zero\"}");
    write_text(dir.file("merges.txt"), merges);
    expect_load_error(dir.path(), {dir.file("vocab.json"), "a: expected an integer id", "zero"});
  }
  {
    TempDir dir;
    write_text(dir.file("vocab.json"), "[1, 2]");
    write_text(dir.file("merges.txt"), merges);
    expect_load_error(dir.path(), {dir.file("vocab.json"), "expected an object"});
  }
  {
    TempDir dir;
    std::filesystem::copy_file(tokenizer_golden("main/vocab.json"), dir.file("vocab.json"));
    write_text(dir.file("merges.txt"), merges + "t h\nth e\nbroken\n");
    expect_load_error(dir.path(), {dir.file("merges.txt") + ":4", "broken"});
  }
  {
    TempDir dir;
    write_text(dir.file("vocab.json"), "{\"<s>\": 0, \"hello\": 1}");
    write_text(dir.file("merges.txt"), merges);
    expect_load_error(dir.path(),
                      {dir.file("vocab.json"), "none of the 256 byte-level characters"});
  }
}

TEST(TokenizerErrors, TokenizerConfig) {
  auto with_config = [](const std::function<void(json&)>& edit,
                        const std::vector<std::string>& parts) {
    TempDir dir;
    std::filesystem::copy_file(tokenizer_golden("main/tokenizer.json"), dir.file("tokenizer.json"));
    json config = read_golden_json("main/tokenizer_config.json");
    edit(config);
    write_text(dir.file("tokenizer_config.json"), config.dump());
    std::vector<std::string> with_file = parts;
    with_file.push_back(dir.file("tokenizer_config.json"));
    expect_load_error(dir.path(), with_file);
  };
  with_config([](json& c) { c["eos_token"] = "<|nope|>"; }, {"eos_token", "<|nope|>"});
  with_config([](json& c) { c["pad_token"] = 5; }, {"pad_token", "expected a string"});
  with_config(
      [](json& c) {
        c["bos_token"] = {{"lstrip", false}};
      },
      {"bos_token.content", "missing"});
}

TEST(TokenizerErrors, BadIds) {
  const Tokenizer tok = Tokenizer::load(tokenizer_golden("main"));
  EXPECT_THROW(tok.decode({0, static_cast<TokenId>(tok.vocab_size())}), InputError);
  EXPECT_THROW(tok.decode({-1}), InputError);
  EXPECT_THROW(tok.id_to_token(static_cast<TokenId>(tok.vocab_size())), InputError);
  try {
    tok.decode({1 << 30});
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("1073741824"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(tok.source()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace align
