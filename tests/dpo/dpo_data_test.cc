// Preference data: TRL's sequence-pair shapes tokenized with exact boundaries, PTS token pairs and
// their weights, errors naming the line and field; the DPO config's errors naming the key.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "data/chat_template.h"
#include "data/preference_dataset.h"
#include "data/token_pairs.h"
#include "dpo/dpo_config.h"
#include "tests/test_util.h"

namespace align {
namespace {

using nlohmann::json;

const Tokenizer& tok() {
  static const Tokenizer t = Tokenizer::load(testing::golden_path("tokenizer/main"));
  return t;
}

const LazyChatFormat& chat() {
  static const LazyChatFormat c("", &tok(), ChatFormatKind::kPhi4, "the test");
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PreferenceData, TextPairsEndInEos) {
  const PreferencePair p = preference_pair_from_json(
      {{"prompt", "What is 2 + 2?"}, {"chosen", " 4"}, {"rejected", " 5"}}, chat(), {}, nullptr);
  EXPECT_EQ(p.prompt, tok().encode("What is 2 + 2?"));
  std::vector<TokenId> want = tok().encode(" 4");
  want.push_back(*tok().eos_id());
  EXPECT_EQ(p.chosen, want);
  EXPECT_EQ(p.rejected.back(), *tok().eos_id());
}

TEST(PreferenceData, ConversationalCompletionsAreTheTailOfTheChatFormat) {
  const json prompt = json::array({{{"role", "user"}, {"content", "Add 2 and 2."}}});
  const json chosen = json::array({{{"role", "assistant"}, {"content", "4"}}});
  const json rejected = json::array({{{"role", "assistant"}, {"content", "22"}}});
  const PreferencePair p = preference_pair_from_json(
      {{"prompt", prompt}, {"chosen", chosen}, {"rejected", rejected}}, chat(), {}, nullptr);
  // The prompt ends with the generation prompt; prompt + chosen is exactly the full conversation.
  EXPECT_EQ(p.prompt, chat().get().render(parse_chat_messages(prompt), true).ids);
  std::vector<TokenId> joined = p.prompt;
  joined.insert(joined.end(), p.chosen.begin(), p.chosen.end());
  json both = prompt;
  both.push_back(chosen[0]);
  EXPECT_EQ(joined, chat().get().render(parse_chat_messages(both), false).ids);
  EXPECT_EQ(p.chosen.back(), *tok().token_to_id("<|im_end|>"));
}

// Phi-4-mini's format: the prompt ends with <|assistant|>, the completions are the rest of the
// conversation, <|end|> and the closing eos included (as TRL's split of the rendered text).
TEST(PreferenceData, Phi3ConversationsSplitAtTheGenerationPrompt) {
  const std::string dir = testing::golden_path("tokenizer/phi3");
  const Tokenizer t = Tokenizer::load(dir);
  const LazyChatFormat phi3(dir, &t, ChatFormatKind::kAuto, "model.chat_format");
  const json prompt = json::array({{{"role", "user"}, {"content", "Add 2 and 2."}}});
  const json chosen = json::array({{{"role", "assistant"}, {"content", "4"}}});
  const json rejected = json::array({{{"role", "assistant"}, {"content", "22"}}});
  const PreferencePair p = preference_pair_from_json(
      {{"prompt", prompt}, {"chosen", chosen}, {"rejected", rejected}}, phi3, {}, nullptr);
  EXPECT_EQ(t.decode(p.prompt), "<|user|>Add 2 and 2.<|end|><|assistant|>");
  EXPECT_EQ(t.decode(p.chosen), "4<|end|><|endoftext|>");
  EXPECT_EQ(t.decode(p.rejected), "22<|end|><|endoftext|>");
  // A completion that does not start with an assistant turn: split where the renderings part.
  const json user_first = json::array({{{"role", "user"}, {"content", "more"}}});
  const PreferencePair q = preference_pair_from_json(
      {{"prompt", prompt}, {"chosen", user_first}, {"rejected", chosen}}, phi3, {}, nullptr);
  EXPECT_EQ(t.decode(q.prompt), "<|user|>Add 2 and 2.<|end|>");
  EXPECT_EQ(t.decode(q.chosen), "<|user|>more<|end|><|endoftext|>");
}

// TRL's implicit prompt: only chosen and rejected, the prompt their common beginning, as
// trl.data_utils.extract_prompt splits them ("The sky is" / " blue." / " green." for the strings of
// TRL's own dataset-format docs), then tokenized as the explicit shapes are.
TEST(PreferenceData, ImplicitPromptIsTheCommonBeginningAsTrlExtractsIt) {
  const auto pair = [](const json& record) {
    return preference_pair_from_json(record, chat(), {}, nullptr);
  };
  const PreferencePair text =
      pair({{"chosen", "The sky is blue."}, {"rejected", "The sky is green."}});
  const PreferencePair explicit_text =
      pair({{"prompt", "The sky is"}, {"chosen", " blue."}, {"rejected", " green."}});
  EXPECT_EQ(text.prompt, explicit_text.prompt);
  EXPECT_EQ(text.chosen, explicit_text.chosen);
  EXPECT_EQ(text.rejected, explicit_text.rejected);
  // A multi-byte character is never split: "café" / "cafè" differ in the accent's second byte.
  const PreferencePair accent = pair({{"chosen", "Say caf\u00e9"}, {"rejected", "Say caf\u00e8"}});
  EXPECT_EQ(accent.prompt, tok().encode("Say caf"));
  EXPECT_EQ(accent.chosen,
            pair({{"prompt", "Say caf"}, {"chosen", "\u00e9"}, {"rejected", "x"}}).chosen);

  const json user = {{"role", "user"}, {"content", "What color is the sky?"}};
  const json blue = {{"role", "assistant"}, {"content", "It is blue."}};
  const json green = {{"role", "assistant"}, {"content", "It is green."}};
  const PreferencePair chat =
      pair({{"chosen", json::array({user, blue})}, {"rejected", json::array({user, green})}});
  const PreferencePair explicit_chat = pair({{"prompt", json::array({user})},
                                             {"chosen", json::array({blue})},
                                             {"rejected", json::array({green})}});
  EXPECT_EQ(chat.prompt, explicit_chat.prompt);
  EXPECT_EQ(chat.chosen, explicit_chat.chosen);
  EXPECT_EQ(chat.rejected, explicit_chat.rejected);
  // A string "prompt" beside conversational completions is ignored, as TRL ignores it.
  const PreferencePair ignored = pair({{"prompt", "What color is the sky?"},
                                       {"chosen", json::array({user, blue})},
                                       {"rejected", json::array({user, green})}});
  EXPECT_EQ(ignored.prompt, explicit_chat.prompt);

  EXPECT_NE(error_of([&] {
              pair({{"chosen", "abc"}, {"rejected", "xyz"}});
            }).find("chosen and rejected share no beginning"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              pair({{"chosen", "abc"}, {"rejected", json::array({blue})}});
            }).find("chosen, rejected: expected two strings or two message lists"),
            std::string::npos);
}

TEST(PreferenceData, PretokenizedTruncationWeightsAndReference) {
  PreferenceDataOptions opt;
  opt.max_seq_len = 6;
  opt.weight = PairWeight::kField;
  bool cut = false;
  const PreferencePair p = preference_pair_from_json({{"prompt_input_ids", {1, 2, 3}},
                                                      {"chosen_input_ids", {4, 5, 6, 7}},
                                                      {"rejected_input_ids", {8}},
                                                      {"weight", 0.25},
                                                      {"ref_chosen_logps", -3.5},
                                                      {"ref_rejected_logps", -1.25}},
                                                     chat(), opt, &cut);
  EXPECT_TRUE(cut);
  EXPECT_EQ(p.chosen, (std::vector<TokenId>{4, 5, 6}));
  EXPECT_EQ(p.weight, 0.25);
  EXPECT_EQ(*p.ref_chosen, -3.5);
  EXPECT_NE(error_of([&] {
              preference_pair_from_json({{"prompt", "a"}, {"chosen", "b"}, {"rejected", 3}}, chat(),
                                        {}, nullptr);
            }).find("prompt, chosen, rejected"),
            std::string::npos);
}

TEST(PreferenceData, IdsPastTheModelsVocabularyNameTheField) {
  PreferenceDataOptions opt;
  opt.vocab_size = 8;
  EXPECT_NE(error_of([&] {
              preference_pair_from_json({{"prompt_input_ids", {1, 2, 3}},
                                         {"chosen_input_ids", {4, 9}},
                                         {"rejected_input_ids", {5}}},
                                        chat(), opt, nullptr);
            })
                .find("chosen_input_ids, token 1: token id 9 is outside the model's vocabulary "
                      "[0, 8)"),
            std::string::npos);
  // Text encoded by a tokenizer larger than the model: the same check on the built sequence.
  EXPECT_NE(error_of([&] {
              preference_pair_from_json({{"prompt", "a"}, {"chosen", "b"}, {"rejected", "c"}},
                                        chat(), opt, nullptr);
            }).find("is outside the model's vocabulary [0, 8)"),
            std::string::npos);
}

TEST(PreferenceData, FileErrorsNameTheLine) {
  testing::TempDir dir;
  const std::string path = dir.file("pairs.jsonl");
  testing::write_text(path,
                      "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n"
                      "{\"prompt\": \"a\", \"chosen\": \"b\"}\n");
  EXPECT_NE(error_of([&] {
              load_preference_dataset(path, chat(), {});
            }).find("pairs.jsonl:2: rejected: missing"),
            std::string::npos);
}

TEST(TokenPairs, ReadWithPGapWeightsAndUnknownKeysIgnored) {
  TokenPairOptions opt;
  opt.vocab_size = 100;
  opt.weight = PairWeight::kPGap;
  const TokenPair p = token_pair_from_json({{"query_id", "q1"},
                                            {"prompt_token_ids", {1, 2, 3}},
                                            {"chosen_token_id", 7},
                                            {"rejected_token_id", 9},
                                            {"chosen_text", "x"},
                                            {"p_chosen", 0.75},
                                            {"p_rejected", 0.25},
                                            {"n_chosen", 10},
                                            {"extra", true}},
                                           opt);
  EXPECT_EQ(p.prompt.size(), 3u);
  EXPECT_DOUBLE_EQ(p.weight, 0.5);
  EXPECT_NE(error_of([&] {
              token_pair_from_json({{"query_id", "q"},
                                    {"prompt_token_ids", {1}},
                                    {"chosen_token_id", 7},
                                    {"rejected_token_id", 700}},
                                   opt);
            }).find("rejected_token_id: token id 700 is outside the model's vocabulary"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              token_pair_from_json({{"query_id", "q"},
                                    {"prompt_token_ids", {1}},
                                    {"chosen_token_id", 7},
                                    {"rejected_token_id", 8}},
                                   opt);
            }).find("needed by data.weight p_gap"),
            std::string::npos);
}

json minimal_config() {
  return {{"model", {{"path", "m"}}}, {"data", {{"train", "t.jsonl"}}}, {"output", {{"dir", "o"}}}};
}

TEST(DpoConfig, DefaultsResolveTheReference) {
  DpoConfig c = parse_dpo_config(minimal_config(), "c.json");
  EXPECT_EQ(c.reference.type, ReferenceType::kLoraBase);  // lora.enabled defaults to true
  json full = minimal_config();
  full["lora"] = {{"enabled", false}};
  c = parse_dpo_config(full, "c.json");
  EXPECT_EQ(c.reference.type, ReferenceType::kCheckpoint);
  EXPECT_EQ(c.reference.path, "m");
  EXPECT_EQ(parse_dpo_config(to_json(c), "c.json").reference.path, "m");  // round trip
}

TEST(DpoConfig, ErrorsNameTheKey) {
  auto err = [](const json& patch) {
    json j = minimal_config();
    j.merge_patch(patch);
    return error_of([&] { parse_dpo_config(j, "c.json"); });
  };
  EXPECT_NE(err({{"dpo", {{"betta", 0.1}}}}).find("dpo.betta"), std::string::npos);
  EXPECT_NE(err({{"dpo", {{"loss", "kto"}}}}).find("c.json: dpo.loss"), std::string::npos);
  EXPECT_NE(err({{"dpo", {{"beta", -1}}}}).find("dpo.beta"), std::string::npos);
  EXPECT_NE(err({{"data", {{"weight", "p_gap"}}}}).find("data.weight"), std::string::npos);
  EXPECT_NE(err({{"data", {{"format", "pairs"}}}}).find("data.format"), std::string::npos);
  EXPECT_NE(err({{"reference", {{"type", "lora_base"}}}, {"lora", {{"enabled", false}}}})
                .find("reference.type"),
            std::string::npos);
  EXPECT_NE(err({{"reference", {{"type", "checkpoint"}}}}).find("reference.path"),
            std::string::npos);
  EXPECT_NE(err({{"data", {{"batch_size", "4"}}}}).find("data.batch_size"), std::string::npos);
}

}  // namespace
}  // namespace align
