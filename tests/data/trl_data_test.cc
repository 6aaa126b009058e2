// The data forms TRL accepts and align reads, against what TRL itself makes of the same files:
// tests/golden/trl_data/ holds {"text"} SFT lines and implicit-prompt preference pairs (strings
// and message lists), and the tokenized datasets of a trl.SFTTrainer / trl.DPOTrainer that were
// built on them and ran a step (tools/golden_trl_data.py).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/jsonl.h"
#include "data/chat_template.h"
#include "data/preference_dataset.h"
#include "data/sft_dataset.h"
#include "tests/test_util.h"

namespace align {
namespace {

const Tokenizer& tokenizer() {
  static const Tokenizer tok = Tokenizer::load(testing::golden_path("tokenizer/main"));
  return tok;
}

// The format align picks from the tokenizer folder's own template (Phi-4's), as TRL applies it.
const LazyChatFormat& chat_format() {
  static const LazyChatFormat chat(testing::golden_path("tokenizer/main"), &tokenizer(),
                                   ChatFormatKind::kAuto, "test");
  return chat;
}

nlohmann::json trl_golden(const std::string& file) {
  static const nlohmann::json golden =
      nlohmann::json::parse(read_file(testing::golden_path("trl_data/trl_tokenized.json")));
  return golden.at(file);
}

std::vector<TokenId> concat(const std::vector<TokenId>& a, const std::vector<TokenId>& b) {
  std::vector<TokenId> out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// TRL appends the eos token as text ("...\n<|im_end|>") and the tokenizer's lstrip on it swallows
// the whitespace before it; align appends the eos id to the text as written. For a line ending in
// whitespace, TRL's ids are align's without the tokens of that whitespace.
std::vector<TokenId> as_trl_sees_it(const std::string& text, std::vector<TokenId> ids) {
  const size_t kept = text.find_last_not_of(" \t\n") + 1;
  if (kept == text.size() || ids.empty()) return ids;
  const size_t dropped = tokenizer().encode(text.substr(kept)).size();
  ids.erase(ids.end() - 1 - static_cast<std::ptrdiff_t>(dropped), ids.end() - 1);
  return ids;
}

TEST(TrlData, TextLinesTokenizeAsSftTrainerDoes) {
  const std::string path = testing::golden_path("trl_data/sft_text.jsonl");
  const nlohmann::json want = trl_golden("sft_text.jsonl");
  const SftDataset data = load_sft_dataset(path, chat_format(), {});
  std::vector<std::string> texts;
  for_each_jsonl(path, [&](const nlohmann::json& record, const JsonlLocation&) {
    texts.push_back(record.at("text").get<std::string>());
  });
  ASSERT_EQ(data.examples.size(), want["input_ids"].size());
  ASSERT_EQ(texts.size(), data.examples.size());
  int whitespace_endings = 0;
  for (size_t i = 0; i < data.examples.size(); ++i) {
    const SftExample& ex = data.examples[i];
    const auto trl = want["input_ids"][i].get<std::vector<TokenId>>();
    whitespace_endings += ex.ids.size() != trl.size();
    EXPECT_EQ(as_trl_sees_it(texts[i], ex.ids), trl) << "line " << i + 1;
    // Language modelling: TRL's labels are the input ids, so every token after the first is a
    // target.
    ASSERT_EQ(ex.loss_mask.size(), ex.ids.size());
    EXPECT_EQ(ex.loss_mask[0], 0);
    for (size_t t = 1; t < ex.loss_mask.size(); ++t)
      EXPECT_EQ(ex.loss_mask[t], 1) << "line " << i + 1 << " token " << t;
  }
  EXPECT_EQ(whitespace_endings, 1);  // the file's one line ending in a newline
}

// TRL splits prompt and completions where the tokenized prompt stops being a prefix of the
// tokenized prompt + completion; align splits at the extracted prompt's own tokens. Both the
// split and the whole sequences must agree.
void expect_pairs_like_dpo_trainer(const std::string& file) {
  const nlohmann::json want = trl_golden(file);
  const PreferenceDataset data =
      load_preference_dataset(testing::golden_path("trl_data/" + file), chat_format(), {});
  ASSERT_EQ(data.pairs.size(), want["prompt_ids"].size());
  for (size_t i = 0; i < data.pairs.size(); ++i) {
    const PreferencePair& pair = data.pairs[i];
    const auto prompt = want["prompt_ids"][i].get<std::vector<TokenId>>();
    const auto chosen = want["chosen_ids"][i].get<std::vector<TokenId>>();
    const auto rejected = want["rejected_ids"][i].get<std::vector<TokenId>>();
    EXPECT_EQ(pair.prompt, prompt) << file << " line " << i + 1;
    EXPECT_EQ(pair.chosen, chosen) << file << " line " << i + 1;
    EXPECT_EQ(pair.rejected, rejected) << file << " line " << i + 1;
    EXPECT_EQ(concat(pair.prompt, pair.chosen), concat(prompt, chosen)) << file << " " << i + 1;
  }
}

TEST(TrlData, ImplicitPromptStringPairsSplitAsDpoTrainerDoes) {
  expect_pairs_like_dpo_trainer("dpo_implicit_text.jsonl");
}

TEST(TrlData, ImplicitPromptConversationalPairsSplitAsDpoTrainerDoes) {
  expect_pairs_like_dpo_trainer("dpo_implicit_chat.jsonl");
}

}  // namespace
}  // namespace align
