// Parity with Hugging Face: every expected value here was written by tools/golden_tokenizer.py
// from `tokenizers` 0.23.3 / transformers 5.23, never by the code under test.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "data/added_tokens.h"
#include "data/pretokenizer.h"
#include "data/tokenizer.h"
#include "data/utf8.h"
#include "tests/data/golden.h"

namespace align {
namespace {

using testing::case_ids;
using testing::case_input;
using testing::read_golden_json;
using testing::tokenizer_golden;

std::string printable(const std::string& s) {
  return nlohmann::json(s).dump();
}

void expect_encodings(const Tokenizer& tok, const std::string& golden_file) {
  const nlohmann::json cases = read_golden_json(golden_file);
  ASSERT_GT(cases.size(), 50u);
  size_t checked = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const nlohmann::json& c = cases[i];
    const std::string input = case_input(c);
    const bool allow_special = c["allow_special"].get<bool>();
    EXPECT_EQ(tok.encode(input, allow_special), case_ids(c))
        << golden_file << "[" << i << "] allow_special=" << allow_special << " text "
        << (c.contains("text") ? printable(c["text"]) : "hex " + c["bytes_hex"].dump());
    ++checked;
  }
  EXPECT_EQ(checked, cases.size());
}

void expect_decodings(const Tokenizer& tok, const std::string& golden_file) {
  const nlohmann::json cases = read_golden_json(golden_file);
  ASSERT_GT(cases.size(), 20u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const nlohmann::json& c = cases[i];
    const bool skip = c["skip_special"].get<bool>();
    EXPECT_EQ(tok.decode(case_ids(c), skip), c["text"].get<std::string>())
        << golden_file << "[" << i << "] ids " << c["ids"].dump() << " skip_special=" << skip;
  }
}

TEST(TokenizerGolden, EncodeMain) {
  expect_encodings(Tokenizer::load(tokenizer_golden("main")), "encode_main.json");
}

TEST(TokenizerGolden, EncodeLegacyStringMergesAndAddedTokenFlags) {
  expect_encodings(Tokenizer::load(tokenizer_golden("legacy")), "encode_legacy.json");
}

TEST(TokenizerGolden, EncodeIgnoreMerges) {
  expect_encodings(Tokenizer::load(tokenizer_golden("ignore_merges")), "encode_ignore_merges.json");
}

TEST(TokenizerGolden, IgnoreMergesFlagBothWays) {
  // The same file with ignore_merges false must give HF's "ids_merging", and the flag must
  // change some encodings, or the variant tests nothing.
  testing::TempDir dir;
  nlohmann::json j = read_golden_json("ignore_merges/tokenizer.json");
  ASSERT_TRUE(j["model"]["ignore_merges"].get<bool>());
  j["model"]["ignore_merges"] = false;
  testing::write_text(dir.file("tokenizer.json"), j.dump());
  const Tokenizer merging = Tokenizer::load(dir.path());
  const nlohmann::json cases = read_golden_json("encode_ignore_merges.json");
  size_t differing = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto want = cases[i]["ids_merging"].get<std::vector<TokenId>>();
    EXPECT_EQ(merging.encode(case_input(cases[i])), want) << "case " << i;
    differing += want != case_ids(cases[i]);
  }
  EXPECT_GE(differing, 4u);  // " the", " model", " assistant" in a few texts
}

// SmolLM2-135M's vocabulary lacks 21 byte characters; HF drops those bytes (golden
// missing_bytes/: the main tokenizer without the same 21).
TEST(TokenizerGolden, EncodeMissingBytesDropsThemAsHuggingFace) {
  expect_encodings(Tokenizer::load(tokenizer_golden("missing_bytes")), "encode_missing_bytes.json");
}

TEST(TokenizerGolden, DecodeMissingBytes) {
  expect_decodings(Tokenizer::load(tokenizer_golden("missing_bytes")), "decode_missing_bytes.json");
}

TEST(TokenizerGolden, MissingBytesWithAnUnkTokenAsHuggingFace) {
  const nlohmann::json cases = read_golden_json("encode_missing_bytes.json");
  for (const bool fuse : {false, true}) {
    testing::TempDir dir;
    nlohmann::json j = read_golden_json("missing_bytes/tokenizer.json");
    j["model"]["unk_token"] = "-";  // tools/golden_tokenizer.py's UNK_FOR_MISSING
    j["model"]["fuse_unk"] = fuse;
    testing::write_text(dir.file("tokenizer.json"), j.dump());
    const Tokenizer tok = Tokenizer::load(dir.path());
    const char* key = fuse ? "ids_unk_fused" : "ids_unk";
    size_t differing = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      const auto want = cases[i][key].get<std::vector<TokenId>>();
      EXPECT_EQ(tok.encode(case_input(cases[i]), cases[i]["allow_special"].get<bool>()), want)
          << key << "[" << i << "] " << cases[i].dump();
      differing += want != case_ids(cases[i]);
    }
    EXPECT_GE(differing, 20u) << key;  // the unk token shows up wherever a byte was dropped
  }
}

TEST(TokenizerGolden, MissingBytesWarnOncePerFile) {
  testing::TempDir dir;
  std::filesystem::copy_file(tokenizer_golden("missing_bytes/tokenizer.json"),
                             dir.file("tokenizer.json"));
  ::testing::internal::CaptureStderr();
  Tokenizer::load(dir.path());
  Tokenizer::load(dir.path());
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  for (const std::string& part :
       {"align: warning: " + dir.file("tokenizer.json"), std::string("21 of the 256 bytes"),
        std::string("0x04 \"\xC4\x84\""), std::string("0xC0 \"\xC3\x80\""),
        std::string("0xFF \"\xC3\xBF\""), std::string("drops them")}) {
    EXPECT_NE(err.find(part), std::string::npos) << part << " in " << err;
  }
  // A complete vocabulary loads silently.
  ::testing::internal::CaptureStderr();
  Tokenizer::load(tokenizer_golden("main"));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(TokenizerGolden, DecodeMain) {
  expect_decodings(Tokenizer::load(tokenizer_golden("main")), "decode_main.json");
}

TEST(TokenizerGolden, DecodeLegacy) {
  expect_decodings(Tokenizer::load(tokenizer_golden("legacy")), "decode_legacy.json");
}

TEST(TokenizerGolden, DecodeCutsMultiByteCharactersIntoReplacement) {
  const Tokenizer tok = Tokenizer::load(tokenizer_golden("main"));
  const std::vector<TokenId> thumbs = tok.encode("\xF0\x9F\x91\x8D");  // 👍
  ASSERT_GT(thumbs.size(), 1u);  // the small vocabulary has no token for it
  const std::vector<TokenId> cut(thumbs.begin(), thumbs.end() - 1);
  EXPECT_EQ(tok.decode(cut), "\xEF\xBF\xBD");  // one U+FFFD for the truncated sequence
}

TEST(TokenizerGolden, VocabAndMergesMatchTokenizerJson) {
  const Tokenizer from_json = Tokenizer::load(tokenizer_golden("main"));
  testing::TempDir dir;
  for (const char* name : {"vocab.json", "merges.txt", "tokenizer_config.json"}) {
    std::filesystem::copy_file(tokenizer_golden(std::string("main/") + name), dir.file(name));
  }
  const Tokenizer from_vocab = Tokenizer::load(dir.path());
  EXPECT_EQ(from_vocab.source(), dir.file("vocab.json"));
  EXPECT_EQ(from_json.source(), tokenizer_golden("main/tokenizer.json"));
  expect_encodings(from_vocab, "encode_main.json");
  expect_decodings(from_vocab, "decode_main.json");
  ASSERT_EQ(from_vocab.vocab_size(), from_json.vocab_size());
  for (TokenId id = 0; id < from_json.vocab_size(); ++id) {
    EXPECT_EQ(from_vocab.id_to_token(id), from_json.id_to_token(id)) << id;
    EXPECT_EQ(from_vocab.is_special(id), from_json.is_special(id)) << id;
    EXPECT_EQ(from_vocab.token_to_id(from_json.id_to_token(id)), std::optional<TokenId>(id));
  }
  EXPECT_EQ(from_vocab.bos_id(), from_json.bos_id());
  EXPECT_EQ(from_vocab.eos_id(), from_json.eos_id());
  EXPECT_EQ(from_vocab.pad_id(), from_json.pad_id());
}

TEST(TokenizerGolden, SpecialIdsFromConfig) {
  const Tokenizer tok = Tokenizer::load(tokenizer_golden("main"));
  // Expected ids come from the golden tokenizer_config.json's added_tokens_decoder.
  const nlohmann::json config = read_golden_json("main/tokenizer_config.json");
  auto id_of = [&](const std::string& content) -> TokenId {
    for (const auto& [key, value] : config["added_tokens_decoder"].items()) {
      if (value["content"] == content) return std::stoi(key);
    }
    ADD_FAILURE() << content;
    return -1;
  };
  EXPECT_EQ(tok.bos_id(), std::optional<TokenId>(id_of("<|endoftext|>")));
  EXPECT_EQ(tok.eos_id(), std::optional<TokenId>(id_of("<|im_end|>")));
  EXPECT_EQ(tok.pad_id(), std::optional<TokenId>(id_of("<|dummy_85|>")));
  // Phi-4's layout: <|im_start|> is 8 after <|dummy_0|>, pad 93 after it; 96 added tokens.
  const TokenId base = id_of("<|dummy_0|>");
  EXPECT_EQ(id_of("<|im_start|>"), base + 8);
  EXPECT_EQ(*tok.pad_id(), base + 93);
  EXPECT_EQ(tok.vocab_size(), base + 96);
  EXPECT_TRUE(tok.is_special(*tok.eos_id()));
  EXPECT_FALSE(tok.is_special(0));
  EXPECT_EQ(tok.id_to_token(*tok.eos_id()), "<|im_end|>");
  EXPECT_EQ(tok.token_to_id("<|im_sep|>"), std::optional<TokenId>(base + 10));
  const nlohmann::json vocab = read_golden_json("main/vocab.json");
  EXPECT_EQ(tok.token_to_id("\xC4\xA0the"),
            std::optional<TokenId>(vocab["\xC4\xA0the"].get<TokenId>()));
  EXPECT_EQ(tok.id_to_token(vocab["\xC4\xA0the"].get<TokenId>()), "\xC4\xA0the");
}

// Signature of how `pre` splits each probe around code point `cp`: per probe, the byte lengths of
// the pieces (prefix space included), the format tools/golden_tokenizer.py writes.
std::string signature(const PreTokenizer& pre, const std::vector<std::string>& probes, char32_t cp,
                      std::vector<PreToken>& pieces) {
  std::string c, sig;
  append_utf8(c, cp);
  for (size_t p = 0; p < probes.size(); ++p) {
    std::string text;
    for (size_t i = 0; i < probes[p].size(); ++i) {
      if (probes[p].compare(i, 3, "{c}") == 0) {
        text += c;
        i += 2;
      } else {
        text += probes[p][i];
      }
    }
    pieces.clear();
    pre.split(text, pieces);
    if (p) sig += '|';
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (i) sig += '.';
      sig += std::to_string(pieces[i].text.size() + (pieces[i].prefix_space ? 1 : 0));
    }
  }
  return sig;
}

// PCRE2 against Oniguruma (HF's regex engine) on every Unicode scalar value.
void expect_unicode_sweep(const std::string& variant, bool fast_paths) {
  const nlohmann::json sweep = read_golden_json("unicode_classes.json");
  const auto probes = sweep["probes"].get<std::vector<std::string>>();
  const auto signatures = sweep["signatures"].get<std::vector<std::string>>();
  const nlohmann::json& ranges = sweep[variant];
  const nlohmann::json tokenizer_json = read_golden_json(variant + "/tokenizer.json");
  const PreTokenizer pre = PreTokenizer::from_json(tokenizer_json["pre_tokenizer"],
                                                   JsonPath{variant, "pre_tokenizer"}, fast_paths);
  std::vector<PreToken> pieces;
  size_t mismatches = 0, checked = 0;
  for (size_t r = 0; r < ranges.size(); ++r) {
    const auto first = ranges[r][0].get<uint32_t>();
    const uint32_t last = r + 1 < ranges.size() ? ranges[r + 1][0].get<uint32_t>() - 1 : 0x10FFFF;
    const std::string& want = signatures.at(ranges[r][1].get<size_t>());
    for (uint32_t cp = first; cp <= last; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      ++checked;
      const std::string got = signature(pre, probes, cp, pieces);
      if (got != want && ++mismatches <= 20) {
        ADD_FAILURE() << variant << ": U+" << std::hex << cp << " splits as " << got
                      << ", Hugging Face " << want;
      }
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(checked, 0x110000u - 0x800u);
}

TEST(TokenizerGolden, UnicodeSweepCl100kFastPath) {
  expect_unicode_sweep("main", true);
}
TEST(TokenizerGolden, UnicodeSweepCl100kPcre2) {
  expect_unicode_sweep("main", false);
}
TEST(TokenizerGolden, UnicodeSweepGpt2ByteLevel) {
  expect_unicode_sweep("legacy", true);
}

// single_word's word characters against HF's (Rust regex \w), on every code point.
TEST(TokenizerGolden, UnicodeSweepWordCharacters) {
  const nlohmann::json ranges = read_golden_json("unicode_classes.json")["word_chars"];
  ASSERT_GT(ranges.size(), 500u);
  size_t mismatches = 0;
  uint32_t next = 0;  // first code point not yet checked
  auto check = [&](uint32_t first, uint32_t last, bool want) {
    for (uint32_t cp = first; cp <= last; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      if (is_word_char(cp) != want && ++mismatches <= 20) {
        ADD_FAILURE() << "U+" << std::hex << cp << ": HF says word character " << want;
      }
    }
  };
  for (const nlohmann::json& r : ranges) {
    const auto first = r[0].get<uint32_t>(), last = r[1].get<uint32_t>();
    if (first > next) check(next, first - 1, false);
    check(first, last, true);
    next = last + 1;
  }
  check(next, 0x10FFFF, false);
  EXPECT_EQ(mismatches, 0u);
}

TEST(TokenizerGolden, ConcurrentEncodesAgree) {
  const Tokenizer tok = Tokenizer::load(tokenizer_golden("main"));
  const nlohmann::json cases = read_golden_json("encode_main.json");
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const Tokenizer copy = tok;  // copies share state and cache
      for (int round = 0; round < 20; ++round) {
        for (const nlohmann::json& c : cases) {
          if (copy.encode(case_input(c), c["allow_special"].get<bool>()) != case_ids(c)) {
            ++failures[t];
          }
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  for (int f : failures)
    EXPECT_EQ(f, 0);
}

}  // namespace
}  // namespace align
