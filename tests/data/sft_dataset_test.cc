// SFT datasets from JSONL: the token ids and loss masks of each TRL shape, derived by hand from
// the chat format's structure, and malformed lines reported with file:line and field or skipped.
#include "data/sft_dataset.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "data/chat_template.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::TempDir;
using testing::write_text;

struct Fixture {
  Tokenizer tok = Tokenizer::load(testing::golden_path("tokenizer/main"));
  TokenId im_start = *tok.token_to_id("<|im_start|>");
  TokenId im_sep = *tok.token_to_id("<|im_sep|>");
  TokenId im_end = *tok.token_to_id("<|im_end|>");
  LazyChatFormat chat{"", &tok, ChatFormatKind::kPhi4, "the test"};
  TempDir dir;

  SftDataset load(const std::string& text, SftDataOptions opt = {}) const {
    const std::string path = dir.file("data.jsonl");
    write_text(path, text);
    return load_sft_dataset(path, chat, opt);
  }

  // <|im_start|>role<|im_sep|>content<|im_end|> as ids.
  std::vector<TokenId> turn(const std::string& role, const std::string& content) const {
    std::vector<TokenId> ids = {im_start};
    for (TokenId id : tok.encode(role))
      ids.push_back(id);
    ids.push_back(im_sep);
    for (TokenId id : tok.encode(content))
      ids.push_back(id);
    ids.push_back(im_end);
    return ids;
  }
};

std::vector<TokenId> concat(std::initializer_list<std::vector<TokenId>> parts) {
  std::vector<TokenId> out;
  for (const auto& part : parts)
    out.insert(out.end(), part.begin(), part.end());
  return out;
}

// The mask read off the ids alone: within a turn whose role (between <|im_start|> and
// <|im_sep|>) decodes to "assistant", the tokens after <|im_sep|> through <|im_end|>. Turns
// before `first_trained_turn` are not trained on.
std::vector<uint8_t> mask_from_structure(const Fixture& f, const std::vector<TokenId>& ids,
                                         int first_trained_turn = 0) {
  std::vector<uint8_t> mask(ids.size(), 0);
  int turn = -1;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != f.im_start) continue;
    ++turn;
    size_t sep = i + 1;
    while (ids[sep] != f.im_sep)
      ++sep;
    const std::string role =
        f.tok.decode(std::vector<TokenId>(ids.begin() + i + 1, ids.begin() + sep));
    size_t end = sep + 1;
    while (ids[end] != f.im_end)
      ++end;
    if (role == "assistant" && turn >= first_trained_turn) {
      for (size_t k = sep + 1; k <= end; ++k)
        mask[k] = 1;
    }
    i = end;
  }
  return mask;
}

int64_t ones(const std::vector<uint8_t>& mask) {
  return std::count(mask.begin(), mask.end(), 1);
}

TEST(SftDataset, MessagesTrainOnAssistantContentAndItsEnd) {
  Fixture f;
  const SftDataset data = f.load(
      R"({"messages": [{"role": "system", "content": "Be brief."},)"
      R"( {"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"},)"
      R"( {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]})"
      "\n");
  ASSERT_EQ(data.examples.size(), 1u);
  const SftExample& ex = data.examples[0];
  EXPECT_EQ(ex.ids, concat({f.turn("system", "Be brief."), f.turn("user", "Hi there"),
                            f.turn("assistant", "Hello!"), f.turn("user", "2+2?"),
                            f.turn("assistant", "4")}));
  EXPECT_EQ(ex.loss_mask, mask_from_structure(f, ex.ids));
  // Spelled out: "Hello!" + <|im_end|> and "4" + <|im_end|>.
  const int64_t expected_targets =
      static_cast<int64_t>(f.tok.encode("Hello!").size() + 1 + f.tok.encode("4").size() + 1);
  EXPECT_EQ(ones(ex.loss_mask), expected_targets);
  EXPECT_EQ(data.target_tokens, expected_targets);
  EXPECT_EQ(ex.loss_mask.back(), 1);  // the last <|im_end|>
  EXPECT_EQ(ex.ids.back(), f.im_end);
  const size_t first_assistant =
      f.turn("system", "Be brief.").size() + f.turn("user", "Hi there").size();
  // The assistant header (<|im_start|>assistant<|im_sep|>) is not trained on; content is.
  const size_t header = 1 + f.tok.encode("assistant").size() + 1;
  for (size_t i = first_assistant; i < first_assistant + header; ++i)
    EXPECT_EQ(ex.loss_mask[i], 0);
  EXPECT_EQ(ex.loss_mask[first_assistant + header], 1);
  EXPECT_EQ(data.skipped, 0);
  EXPECT_EQ(data.truncated, 0);
}

TEST(SftDataset, AllTokensButTheFirstWithoutAssistantOnlyLoss) {
  Fixture f;
  SftDataOptions opt;
  opt.assistant_only_loss = false;
  const SftDataset data = f.load(
      R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]})"
      "\n"
      R"({"prompt": "The sky is", "completion": " blue."})"
      "\n",
      opt);
  ASSERT_EQ(data.examples.size(), 2u);
  int64_t total = 0;
  for (const SftExample& ex : data.examples) {
    std::vector<uint8_t> expected(ex.ids.size(), 1);
    expected[0] = 0;
    EXPECT_EQ(ex.loss_mask, expected);
    total += static_cast<int64_t>(ex.ids.size()) - 1;
  }
  EXPECT_EQ(data.target_tokens, total);
  // A conversation the user side only: valid here, since every token is trained on.
  EXPECT_EQ(
      f.load(R"({"messages": [{"role": "user", "content": "Hi there"}]})", opt).examples.size(),
      1u);
}

TEST(SftDataset, PromptCompletionTextTrainsOnCompletionAndEos) {
  Fixture f;
  const TokenId eos = *f.tok.eos_id();
  const SftDataset data = f.load(
      R"({"prompt": "The capital of France is", "completion": " Paris.", "id": 7, "meta": {}})"
      "\n"
      R"({"prompt": "", "completion": "Just this"})"
      "\n");
  ASSERT_EQ(data.examples.size(), 2u);
  const auto prompt = f.tok.encode("The capital of France is");
  const auto completion = f.tok.encode(" Paris.");
  EXPECT_EQ(data.examples[0].ids, concat({prompt, completion, {eos}}));
  std::vector<uint8_t> mask(prompt.size(), 0);
  mask.insert(mask.end(), completion.size() + 1, 1);
  EXPECT_EQ(data.examples[0].loss_mask, mask);

  // An empty prompt: the first completion token is at index 0, which nothing predicts.
  const auto just = f.tok.encode("Just this");
  EXPECT_EQ(data.examples[1].ids, concat({just, {eos}}));
  std::vector<uint8_t> mask1(just.size() + 1, 1);
  mask1[0] = 0;
  EXPECT_EQ(data.examples[1].loss_mask, mask1);
  EXPECT_EQ(data.target_tokens, ones(mask) + ones(mask1));
}

// TRL's language-modelling lines: the text and an eos, every token a target but the first.
TEST(SftDataset, TextLinesTrainOnEveryToken) {
  Fixture f;
  const TokenId eos = *f.tok.eos_id();
  const SftDataset data = f.load(R"({"text": "The sky is blue."})"
                                 "\n"
                                 R"({"text": "Ends here<|im_end|>"})"
                                 "\n");
  ASSERT_EQ(data.examples.size(), 2u);
  const auto text = f.tok.encode("The sky is blue.");
  EXPECT_EQ(data.examples[0].ids, concat({text, {eos}}));
  std::vector<uint8_t> mask(text.size() + 1, 1);
  mask[0] = 0;
  EXPECT_EQ(data.examples[0].loss_mask, mask);
  const SftExample& ended = data.examples[1];
  EXPECT_EQ(ended.ids, f.tok.encode("Ends here<|im_end|>"));  // no second eos
  EXPECT_EQ(ended.ids.back(), eos);
  EXPECT_EQ(data.target_tokens, ones(mask) + ones(ended.loss_mask));
  EXPECT_EQ(ones(ended.loss_mask), static_cast<int64_t>(ended.ids.size()) - 1);
}

TEST(SftDataset, PromptCompletionTextEndingInEosGetsNoSecondEos) {
  Fixture f;
  const TokenId eos = *f.tok.eos_id();
  const SftDataset data = f.load(R"({"prompt": "Q", "completion": "A<|im_end|>"})");
  const SftExample& ex = data.examples[0];
  EXPECT_EQ(ex.ids.back(), eos);
  EXPECT_NE(ex.ids[ex.ids.size() - 2], eos);
}

TEST(SftDataset, PromptCompletionMessagesTrainOnTheCompletionsAssistantTurns) {
  Fixture f;
  const SftDataset data =
      f.load(R"({"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},)"
             R"( {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}],)"
             R"( "completion": [{"role": "assistant", "content": "A2 is longer"}]})"
             "\n");
  ASSERT_EQ(data.examples.size(), 1u);
  const SftExample& ex = data.examples[0];
  EXPECT_EQ(ex.ids, concat({f.turn("system", "S"), f.turn("user", "Q1"), f.turn("assistant", "A1"),
                            f.turn("user", "Q2"), f.turn("assistant", "A2 is longer")}));
  // The prompt's assistant turn (turn 2) is context, not a target.
  EXPECT_EQ(ex.loss_mask, mask_from_structure(f, ex.ids, /*first_trained_turn=*/4));
  EXPECT_EQ(ones(ex.loss_mask), static_cast<int64_t>(f.tok.encode("A2 is longer").size() + 1));
}

TEST(SftDataset, TruncatesLongExamplesAndCountsThem) {
  Fixture f;
  SftDataOptions opt;
  opt.max_seq_len = 12;
  const SftDataset data = f.load(
      R"({"prompt": "a", "completion": " b c d e f g h i j k l m n o p q r s t u v w x y z"})"
      "\n"
      R"({"prompt": "a", "completion": " b"})"
      "\n",
      opt);
  ASSERT_EQ(data.examples.size(), 2u);
  EXPECT_EQ(data.truncated, 1);
  const auto prompt = f.tok.encode("a");
  const auto full = f.tok.encode(" b c d e f g h i j k l m n o p q r s t u v w x y z");
  ASSERT_GT(prompt.size() + full.size(), 12u);
  std::vector<TokenId> ids = concat({prompt, full});
  ids.resize(12);
  EXPECT_EQ(data.examples[0].ids, ids);
  ASSERT_EQ(data.examples[0].loss_mask.size(), 12u);
  EXPECT_EQ(ones(data.examples[0].loss_mask), 12 - static_cast<int64_t>(prompt.size()));
  EXPECT_LE(data.examples[1].ids.size(), 12u);

  // Truncation that leaves no target makes the line malformed.
  opt.max_seq_len = 3;
  try {
    f.load(R"({"prompt": "one two three four five six", "completion": " seven"})", opt);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("data.jsonl:1: completion: no target token within the "
                                         "first 3 tokens"),
              std::string::npos)
        << e.what();
  }
}

struct BadLine {
  std::string line;
  std::string expected;  // in the message, after "file:3: "
};

std::vector<BadLine> bad_lines() {
  const std::string user = R"({"role": "user", "content": "Hi"})";
  const std::string assistant = R"({"role": "assistant", "content": "Yo"})";
  return {
      {R"(not json)", "not valid JSON"},
      {R"([1, 2])", "expected a JSON object, got an array"},
      {R"({"txt": "hello"})",
       R"(expected "messages", "prompt" + "completion" or "text", got none (keys: txt))"},
      {R"({"messages": [)" + assistant + R"(], "prompt": "a", "completion": "b"})",
       "got several shapes"},
      {R"({"text": "a", "prompt": "a", "completion": "b"})", "got several shapes"},
      {R"({"text": ["a"]})", "text: expected a string, got an array"},
      {R"({"messages": "hello"})", "messages: expected an array"},
      {R"({"messages": []})", "messages: is empty"},
      {R"({"messages": [{"role": "user", "content": 3}]})",
       "messages[0].content: expected a string, got number 3"},
      {R"({"messages": [)" + user + R"(, {"content": "x"}]})", "messages[1].role: missing"},
      {R"({"messages": [)" + user + R"(]})", "messages: no target token (no assistant turn"},
      {R"({"prompt": "a"})", "completion: missing"},
      {R"({"completion": "a"})", "prompt: missing"},
      {R"({"prompt": "a", "completion": null})",
       "completion: expected a string or a list of messages, got null"},
      {R"({"prompt": 5, "completion": "a"})", "prompt: expected a string or a list of messages"},
      {R"({"prompt": "a", "completion": [)" + assistant + "]}",
       "prompt, completion: expected both strings or both message lists"},
      {R"({"prompt": [)" + user + R"(], "completion": [{"role": "assistant", "content": 5}]})",
       "completion[0].content: expected a string"},
      {R"({"prompt": [{"role": 1, "content": "x"}], "completion": [)" + assistant + "]}",
       "prompt[0].role: expected a string"},
      {R"({"prompt": [)" + user + R"(], "completion": []})", "completion: is empty"},
      {R"({"prompt": [)" + user + R"(], "completion": [)" + user + "]}",
       "completion: no target token (no assistant turn in the completion)"},
      {R"({"prompt": "", "completion": ""})", "completion: no target token"},
  };
}

TEST(SftDataset, MalformedLineThrowsWithFileLineAndField) {
  Fixture f;
  const std::string good = R"({"prompt": "Q", "completion": "A"})";
  for (const BadLine& bad : bad_lines()) {
    SCOPED_TRACE(bad.line);
    // Line 2 is blank, so the bad line is line 3.
    try {
      f.load(good + "\n\n" + bad.line + "\n" + good + "\n");
      ADD_FAILURE() << "expected InputError";
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(f.dir.file("data.jsonl") + ":3: ", 0), 0u) << what;
      EXPECT_NE(what.find(bad.expected), std::string::npos) << what;
    }
  }
}

TEST(SftDataset, MalformedLinesAreSkippedAndCounted) {
  Fixture f;
  const std::string good = R"({"prompt": "Q", "completion": "A"})";
  SftDataOptions opt;
  opt.skip_bad_lines = true;
  const std::vector<BadLine> bad = bad_lines();
  std::string text = good + "\n";
  for (const BadLine& b : bad)
    text += b.line + "\n";
  text += good + "\n";
  const SftDataset data = f.load(text, opt);
  EXPECT_EQ(data.examples.size(), 2u);
  EXPECT_EQ(data.skipped, static_cast<int64_t>(bad.size()));
  ASSERT_EQ(data.skip_messages.size(), std::min(kMaxSkipMessages, bad.size()));
  for (size_t i = 0; i < data.skip_messages.size(); ++i) {
    const std::string& message = data.skip_messages[i];
    EXPECT_EQ(message.rfind(f.dir.file("data.jsonl") + ":" + std::to_string(i + 2) + ": ", 0), 0u)
        << message;
    EXPECT_NE(message.find(bad[i].expected), std::string::npos) << message;
  }
  EXPECT_EQ(data.target_tokens, 2 * ones(data.examples[0].loss_mask));
}

TEST(SftDataset, NoUsableExampleIsAnError) {
  Fixture f;
  SftDataOptions opt;
  opt.skip_bad_lines = true;
  try {
    f.load(
        "\n"
        R"({"messages": []})"
        "\n",
        opt);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no usable examples (1 malformed records skipped; the first: "),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("data.jsonl:2: messages: is empty"), std::string::npos) << what;
  }
  EXPECT_THROW(f.load("\n\n"), InputError);
}

TEST(SftDataset, TokenizerWithoutEosFailsForTextEvenWhenSkipping) {
  Fixture f;
  // tokenizer.json alone: the control tokens are there, eos (from tokenizer_config.json) is not.
  const std::string dir = f.dir.file("tok");
  std::filesystem::create_directory(dir);
  std::filesystem::copy_file(testing::golden_path("tokenizer/main/tokenizer.json"),
                             dir + "/tokenizer.json");
  const Tokenizer tok = Tokenizer::load(dir);
  ASSERT_FALSE(tok.eos_id().has_value());
  const std::string path = f.dir.file("data.jsonl");
  write_text(
      path,
      R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]})"
      "\n"
      R"({"prompt": "Q", "completion": "A"})"
      "\n");
  SftDataOptions opt;
  opt.skip_bad_lines = true;
  try {
    load_sft_dataset(path, LazyChatFormat("", &tok, ChatFormatKind::kPhi4, "the test"), opt);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("data.jsonl:2: " + dir + "/tokenizer.json: the tokenizer has no eos token"),
              std::string::npos)
        << what;
  }
}

TEST(SftDataset, BadOptionsAndMissingFile) {
  Fixture f;
  SftDataOptions opt;
  opt.max_seq_len = 1;
  EXPECT_THROW(f.load(R"({"prompt": "Q", "completion": "A"})", opt), InputError);
  EXPECT_THROW(load_sft_dataset(f.dir.file("missing.jsonl"), f.chat, {}), IoError);
}

// Phi-4-mini's format (the phi3 golden tokenizer, its template read from the folder): the targets
// are each assistant turn's content and <|end|>; the eos that closes the conversation is not one,
// and a conversational prompt's part ends where its rendering parts from the whole.
// A tokenizer with more ids than the model has rows: only an example that uses such an id is a
// bad line, naming the field, the position, the id and the range (data/token_range.h).
TEST(SftDataset, IdsPastTheModelsVocabularyAreABadLine) {
  const Fixture f;
  SftDataOptions opt;
  opt.vocab_size = f.im_sep;  // text + eos (<|im_end|>) fits; a chat turn's <|im_sep|> does not
  const std::string lines =
      "{\"text\": \"hello\"}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, "
      "{\"role\": \"assistant\", \"content\": \"yo\"}]}\n";
  const size_t at = 1 + f.tok.encode("user").size();  // <|im_start|> user <|im_sep|>
  try {
    f.load(lines, opt);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("data.jsonl:2: messages, token " + std::to_string(at) +
                                         ": token id " + std::to_string(f.im_sep) +
                                         " is outside the model's vocabulary [0, " +
                                         std::to_string(f.im_sep) + ")"),
              std::string::npos)
        << e.what();
  }
  opt.skip_bad_lines = true;
  const SftDataset kept = f.load(lines, opt);
  EXPECT_EQ(kept.examples.size(), 1u);
  EXPECT_EQ(kept.skipped, 1);
  opt.vocab_size = 0;  // unchecked
  EXPECT_EQ(f.load(lines, opt).examples.size(), 2u);
}

TEST(SftDataset, Phi3FormatTargetsAssistantTurnsAndTheirEnd) {
  const std::string dir = testing::golden_path("tokenizer/phi3");
  const Tokenizer tok = Tokenizer::load(dir);
  const LazyChatFormat chat(dir, &tok, ChatFormatKind::kAuto, "model.chat_format");
  ASSERT_EQ(chat.get().end_id(), tok.token_to_id("<|end|>"));
  auto targets = [&](const SftExample& ex) {
    std::vector<TokenId> ids;
    for (size_t i = 0; i < ex.ids.size(); ++i)
      if (ex.loss_mask[i]) ids.push_back(ex.ids[i]);
    return tok.decode(ids);
  };
  const SftExample messages = sft_example_from_json(
      nlohmann::json::parse(R"({"messages": [{"role": "system", "content": "S"},
        {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"},
        {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]})"),
      chat, {}, nullptr);
  EXPECT_EQ(tok.decode(messages.ids),
            "<|system|>S<|end|><|user|>Q<|end|><|assistant|>A<|end|><|user|>Q2<|end|>"
            "<|assistant|>A2<|end|><|endoftext|>");
  EXPECT_EQ(targets(messages), "A<|end|>A2<|end|>");
  const SftExample conversation =
      sft_example_from_json(nlohmann::json::parse(R"({"prompt": [{"role": "user", "content": "Q"}],
        "completion": [{"role": "assistant", "content": "A"}]})"),
                            chat, {}, nullptr);
  EXPECT_EQ(tok.decode(conversation.ids), "<|user|>Q<|end|><|assistant|>A<|end|><|endoftext|>");
  EXPECT_EQ(targets(conversation), "A<|end|>");
}

}  // namespace
}  // namespace align
