// GRPO's reward functions (grpo/rewards.h): oracle pass/fail, the format regex and DAPO's soft
// overlong punishment against hand-computed values (TRL's docstring example included), config
// errors that name the key; and the generation's bookkeeping (grpo/generation.h): the prompt
// order across epochs and its resume, and a saved generation read back exactly.
#include "grpo/rewards.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "grpo/generation.h"

namespace align {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(GrpoRewards, OracleFormatAndOverlongScores) {
  const nlohmann::json list = nlohmann::json::parse(R"([
    {"type": "oracle"},
    {"type": "format", "pattern": "^[0-9]+$"},
    {"type": "overlong", "cache": 20, "max_length": 100}])");
  const auto rewards = make_rewards(list, {{"type", "exact"}}, 512, "cfg.json");
  ASSERT_EQ(rewards.size(), 3u);
  EXPECT_EQ(rewards[0].name, "exact");
  EXPECT_EQ(rewards[1].name, "format");
  EXPECT_EQ(rewards[2].name, "soft_overlong_punishment");
  const nlohmann::json fields = {{"answer", "143"}};
  const auto s = score_rewards(rewards, {"143", "133", "143 ok", "x"}, {80, 90, 100, 101}, fields);
  // Per completion: [exact, format (digits only), overlong (L_max 100, L_cache 20: 0 up to 80,
  // (80 - |y|) / 20 up to 100 (TRL's example: 90 tokens -> -0.5), -1 past)].
  EXPECT_EQ(s[0], (std::vector<double>{1.0, 1.0, 0.0}));
  EXPECT_EQ(s[1], (std::vector<double>{0.0, 1.0, -0.5}));
  EXPECT_EQ(s[2], (std::vector<double>{0.0, 0.0, -1.0}));
  EXPECT_EQ(s[3], (std::vector<double>{0.0, 0.0, -1.0}));

  // An oracle reward may bring its own oracle and name; L_max defaults to max_new_tokens.
  const auto own = make_rewards(nlohmann::json::parse(R"([
    {"type": "oracle", "name": "left", "oracle": {"type": "regex", "pattern": "left"}},
    {"type": "overlong", "cache": 2}])"),
                                nlohmann::json::object(), 6, "cfg.json");
  EXPECT_EQ(own[0].name, "left");
  EXPECT_EQ(own[1].max_length, 6);
  const auto o = score_rewards(own, {"I pick left.", "right"}, {5, 6}, nlohmann::json::object());
  // Per completion: [left, overlong]; L_max 6, L_cache 2: 5 tokens -> (4 - 5) / 2, 6 -> -1.
  EXPECT_EQ(o[0], (std::vector<double>{1.0, -0.5}));
  EXPECT_EQ(o[1], (std::vector<double>{0.0, -1.0}));
}

TEST(GrpoRewards, ConfigErrorsNameTheKey) {
  auto make = [](const char* text, const nlohmann::json& oracle = {{"type", "exact"}}) {
    return [=] { make_rewards(nlohmann::json::parse(text), oracle, 16, "cfg.json"); };
  };
  EXPECT_NE(error_of(make(R"([{"type": "judge"}])")).find("grpo.rewards[0].type"),
            std::string::npos);
  EXPECT_NE(error_of(make(R"([{"type": "format"}])")).find("grpo.rewards[0].pattern"),
            std::string::npos);
  EXPECT_NE(error_of(make(R"([{"type": "overlong", "cache": 40}])")).find("grpo.rewards[0].cache"),
            std::string::npos);
  EXPECT_NE(error_of(make(R"([{"type": "oracle"}, {"type": "oracle"}])")).find("unique"),
            std::string::npos);
  EXPECT_NE(
      error_of(make(R"([{"type": "oracle"}])", nlohmann::json::object())).find("grpo.rewards[0]"),
      std::string::npos);
  EXPECT_NE(error_of(make(R"([{"type": "format", "pattern": "x", "patern": 1}])")).find("patern"),
            std::string::npos);
  EXPECT_NE(error_of(make(R"([])")).find("grpo.rewards"), std::string::npos);
}

TEST(GrpoRewards, FieldCheckNamesTheMissingField) {
  const auto rewards = make_rewards(nlohmann::json::parse(R"([{"type": "oracle"}])"),
                                    {{"type", "exact"}}, 16, "cfg.json");
  const auto check = reward_field_check(rewards);
  EXPECT_NO_THROW(check->check_fields({{"answer", "1"}}, "q.jsonl:1"));
  const std::string e = error_of([&] { check->check_fields({{"id", "a"}}, "q.jsonl:3"); });
  EXPECT_NE(e.find("q.jsonl:3"), std::string::npos) << e;
  EXPECT_NE(e.find("answer"), std::string::npos) << e;
}

TEST(GrpoGeneration, PromptOrderRunsIntoTheNextEpochAndResumes) {
  PromptLoader a(5, true, 9);
  const auto first = a.next(3), second = a.next(3), third = a.next(4);
  // Epoch 0's order is a permutation of 0..4; the 6th prompt is epoch 1's first.
  std::vector<int64_t> epoch0 = first;
  epoch0.insert(epoch0.end(), second.begin(), second.begin() + 2);
  std::vector<int64_t> sorted = epoch0;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(epoch0, epoch_order(5, 9, 0));
  EXPECT_EQ(second[2], epoch_order(5, 9, 1)[0]);
  PromptLoader b(5, true, 9);
  b.next(3);
  PromptLoader c(5, true, 9);
  c.restore(b.state());
  EXPECT_EQ(c.next(3), second);
  EXPECT_EQ(PromptLoader(3, false, 9).next(4), (std::vector<int64_t>{0, 1, 2, 0}));
  EXPECT_THROW(c.restore({0, 9}), InputError);
}

TEST(GrpoGeneration, SavedGenerationReadsBackExactly) {
  Generation g;
  g.index = 7;
  Rollout r;
  r.query = 1;
  r.tokens = {5, 6, 2};
  r.logprobs = {-0.1234567f, -3.3333333f, -1e-7f};
  r.old_logprobs = {-0.5f, -0.25f, -0.125f};
  r.truncated = false;
  r.rewards = {1.0, 0.1};
  g.rollouts = {r, r};
  g.rollouts[1].truncated = true;
  g.rollouts[1].old_logprobs.clear();
  const nlohmann::json j = nlohmann::json::parse(to_json(g).dump());
  const Generation back = generation_from_json(j, 2, "ckpt");
  EXPECT_EQ(back.index, 7);
  ASSERT_EQ(back.rollouts.size(), 2u);
  EXPECT_EQ(back.rollouts[0].logprobs, r.logprobs);  // bit for bit
  EXPECT_EQ(back.rollouts[0].old_logprobs, r.old_logprobs);
  EXPECT_TRUE(back.rollouts[1].old_logprobs.empty());
  EXPECT_TRUE(back.rollouts[1].truncated);
  EXPECT_EQ(back.rollouts[0].rewards, r.rewards);
  EXPECT_THROW(generation_from_json(j, 1, "ckpt"), InputError);  // query 1 of a 1-query set
}

}  // namespace
}  // namespace align
