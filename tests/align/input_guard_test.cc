// Careless and hostile inputs to the trainers and commands, run as real `align` processes: each
// is a clear error naming the file, line or key (exit 1, not a crash or "internal error"), or the
// documented behaviour, and nothing broken is written.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "model/peft_io.h"
#include "model/phi3_model.h"
#include "tests/align/cli_runner.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::run;
namespace fs = std::filesystem;

// A tiny model and SFT configs writing into the fixture's folder.
struct Guard {
  testing::TempDir dir;
  std::string model = dir.file("model");
  Guard() {
    EXPECT_EQ(run("init --preset tiny --tokenizer " + testing::golden_path("tokenizer/main") +
                  " --out " + model + " --seed 1 --dtype fp32"),
              0);
  }
  nlohmann::json sft(const std::string& name) const {
    return {{"model", {{"path", model}, {"dtype", "fp32"}, {"device", "cpu"}}},
            {"data",
             {{"train", testing::source_path("examples/sft/train.jsonl")},
              {"max_seq_len", 64},
              {"rows_per_batch", 2}}},
            {"optimizer", {{"lr", 1e-3}}},
            {"schedule", {{"max_steps", 4}}},
            {"output", {{"dir", dir.file(name)}, {"save_every", 1}, {"keep_last", 5}}}};
  }
  std::string write(const nlohmann::json& config, const std::string& name) const {
    const std::string path = dir.file(name + ".json");
    testing::write_text(path, config.dump(2));
    return path;
  }
  // Runs `args`; returns (exit status, output).
  std::pair<int, std::string> align(const std::string& args) const {
    std::string out;
    const int code = run(args, &out);
    return {code, out};
  }
};

void expect_error(const std::pair<int, std::string>& r, const std::string& fragment) {
  EXPECT_EQ(r.first, 1) << r.second;
  EXPECT_NE(r.second.find(fragment), std::string::npos) << "expected: " << fragment << "\n"
                                                        << r.second;
  EXPECT_EQ(r.second.find("internal error"), std::string::npos) << r.second;
}

TEST(InputGuard, NumbersThatCannotBeAConfigValue) {
  Guard g;
  const std::string c = g.write(g.sft("run"), "sft");
  expect_error(g.align("sft --config " + c + " --set optimizer.lr=1e300"), "optimizer.lr");
  expect_error(g.align("sft --config " + c + " --set optimizer.lr=1e30"), "optimizer.lr");
  // 1e400 is not a JSON number a double holds: the value is taken as text and refused.
  expect_error(g.align("sft --config " + c + " --set optimizer.lr=1e400"),
               "optimizer.lr: expected a number, found \"1e400\"");
  expect_error(g.align("sft --config " + c + " --set schedule.max_steps=2.5"),
               "schedule.max_steps: expected an integer, found 2.5");
  expect_error(g.align("sft --config " + c + " --set schedule.max_steps=-5"),
               "schedule.max_steps: must be >= 0");
  expect_error(g.align("sft --config " + c + " --set output.save_every=-1"), "output.save_every");
  expect_error(g.align("sft --config " + c + " --set optimizer.max_grad_norm=-1"),
               "optimizer.max_grad_norm: must be >= 0");
  expect_error(g.align("sft --config " + c + " --set training.seed=-3"),
               "training.seed: expected an integer >= 0, found -3");
  // In a config file too: a number past the double range is not valid JSON.
  testing::write_text(g.dir.file("big.json"), R"({"optimizer": {"lr": 1e400}})");
  expect_error(g.align("sft --config " + g.dir.file("big.json")), "big.json: not valid JSON");
}

TEST(InputGuard, PathsThatAreNotWhatTheKeySays) {
  Guard g;
  testing::write_text(g.dir.file("a_file"), "x");
  nlohmann::json c = g.sft("run");
  c["output"]["dir"] = g.dir.file("a_file");
  expect_error(g.align("sft --config " + g.write(c, "c1")),
               "output.dir: " + g.dir.file("a_file") + " exists and is not a directory");
  c = g.sft("run");
  c["model"]["path"] = g.dir.file("missing");
  expect_error(g.align("sft --config " + g.write(c, "c2")),
               "model.path: " + g.dir.file("missing") + ": no such directory");
  expect_error(g.align("generate --model " + g.dir.file("a_file") + " --prompt hi --output " +
                       g.dir.file("o.jsonl")),
               "--model: " + g.dir.file("a_file") + " is a file, expected a directory");
  EXPECT_FALSE(fs::exists(g.dir.file("run")));
}

TEST(InputGuard, NonFiniteLossStopsTrainingAndTheLastCheckpointResumes) {
  Guard g;
  // LoRA on a base whose final norm has a NaN from step 3 on: steps 1-2 train and checkpoint on
  // the good base, then the base is swapped for the poisoned copy and the run resumed.
  nlohmann::json c = g.sft("run");
  c["lora"] = {{"enabled", true}, {"rank", 4}, {"alpha", 8}};
  c["schedule"]["max_steps"] = 2;
  ASSERT_EQ(g.align("sft --config " + g.write(c, "lora")).first, 0);
  const std::string good = g.dir.file("good");
  fs::rename(g.model, good);
  {
    Phi3Model poisoned = Phi3Model::load(good, torch::kFloat, torch::kCPU);
    poisoned.mutable_weights().norm = poisoned.weights().norm.clone();
    poisoned.mutable_weights().norm[0] = std::numeric_limits<float>::quiet_NaN();
    save_model_dir(g.model, poisoned, good);
  }
  c["schedule"]["max_steps"] = 4;
  const std::string adapter = g.dir.file("run/adapter/adapter_model.safetensors");
  const std::string exported = read_file(adapter);  // the 2-step run's result
  const auto r = g.align("sft --resume --config " + g.write(c, "lora"));
  expect_error(r, "sft: step 3 of 4: the loss is nan");
  EXPECT_NE(r.second.find("step-00000002) is intact"), std::string::npos) << r.second;
  EXPECT_FALSE(fs::exists(g.dir.file("run/checkpoints/step-00000003")));
  EXPECT_EQ(read_file(adapter), exported);  // nothing exported over it
  // The good base back: the same command resumes from step 2 and finishes.
  fs::remove_all(g.model);
  fs::rename(good, g.model);
  EXPECT_EQ(g.align("sft --resume --config " + g.write(c, "lora")).first, 0);
  EXPECT_TRUE(fs::exists(g.dir.file("run/adapter/adapter_model.safetensors")));
}

TEST(InputGuard, NanFromTheFirstStepSavesNothing) {
  Guard g;
  {
    Phi3Model m = Phi3Model::load(g.model, torch::kFloat, torch::kCPU);
    m.mutable_weights().embed = m.weights().embed.clone();
    m.mutable_weights().embed.fill_(std::numeric_limits<float>::infinity());
    save_model_dir(g.dir.file("inf"), m, g.model);
  }
  nlohmann::json c = g.sft("run");
  c["model"]["path"] = g.dir.file("inf");
  const auto r = g.align("sft --config " + g.write(c, "inf"));
  expect_error(r, "sft: step 1 of 4: the loss is");
  EXPECT_NE(r.second.find("No checkpoint was written yet"), std::string::npos) << r.second;
  EXPECT_FALSE(fs::exists(g.dir.file("run/checkpoints/step-00000001")));
  EXPECT_FALSE(fs::exists(g.dir.file("run/model")));
}

TEST(InputGuard, ResumeRefusesAChangedConfigButAllowsTheDocumentedKeys) {
  Guard g;
  nlohmann::json c = g.sft("run");
  c["schedule"]["max_steps"] = 2;
  ASSERT_EQ(g.align("sft --config " + g.write(c, "a")).first, 0);
  nlohmann::json changed = c;
  changed["optimizer"]["lr"] = 2e-3;
  const auto r = g.align("sft --resume --config " + g.write(changed, "b"));
  expect_error(r, "--resume: the config differs from the run's");
  EXPECT_NE(r.second.find("optimizer.lr was 0.001, now 0.002"), std::string::npos) << r.second;
  // Extending the run, logging and saving differently are allowed.
  nlohmann::json longer = c;
  longer["schedule"]["max_steps"] = 3;
  longer["output"]["keep_last"] = 1;
  EXPECT_EQ(g.align("sft --resume --config " + g.write(longer, "c")).first, 0);
  // The same check holds for dpo (its shared skeleton): dpo.beta changed on resume.
  nlohmann::json d = {{"model", {{"path", g.model}, {"dtype", "fp32"}, {"device", "cpu"}}},
                      {"data",
                       {{"train", testing::source_path("examples/dpo/sequence_train.jsonl")},
                        {"max_seq_len", 64},
                        {"batch_size", 2}}},
                      {"schedule", {{"max_steps", 1}}},
                      {"output", {{"dir", g.dir.file("dpo")}}}};
  if (g.align("dpo --config " + g.write(d, "d1")).first == 0) {
    d["dpo"]["beta"] = 0.5;
    expect_error(g.align("dpo --resume --config " + g.write(d, "d2")), "dpo.beta was 0.1, now 0.5");
  } else {
    ADD_FAILURE() << "the DPO run on the tiny model failed";
  }
}

TEST(InputGuard, TemporaryFilesOfAKilledRunAreRemovedByTheNext) {
  Guard g;
  nlohmann::json c = g.sft("run");
  c["schedule"]["max_steps"] = 1;
  fs::create_directories(g.dir.file("run/model"));
  // A pid that does not run: the largest pid_max allows is 2^22.
  testing::write_text(g.dir.file("run/model/model.safetensors.tmp.4194999"), "partial shard");
  testing::write_text(g.dir.file("run/metrics.jsonl.tmp.4194998"), "x");
  const std::string live = g.dir.file("run/other.tmp." + std::to_string(::getpid()));
  testing::write_text(live, "a live writer's");
  const auto r = g.align("sft --config " + g.write(c, "c"));
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_NE(r.second.find("removed 2 temporary files"), std::string::npos) << r.second;
  EXPECT_FALSE(fs::exists(g.dir.file("run/model/model.safetensors.tmp.4194999")));
  EXPECT_FALSE(fs::exists(g.dir.file("run/metrics.jsonl.tmp.4194998")));
  EXPECT_TRUE(fs::exists(live));  // its process still runs
}

TEST(InputGuard, DataThatCannotBeRight) {
  Guard g;
  // An unknown role in messages, named with its file and line.
  testing::write_text(g.dir.file("roles.jsonl"),
                      R"({"messages": [{"role": "user", "content": "hi"}, )"
                      R"({"role": "assistant", "content": "yo"}]})"
                      "\n"
                      R"({"messages": [{"role": "robot", "content": "beep"}]})"
                      "\n");
  nlohmann::json c = g.sft("run");
  c["data"]["train"] = g.dir.file("roles.jsonl");
  expect_error(g.align("sft --config " + g.write(c, "roles")),
               "roles.jsonl:2: messages[0].role: expected system, user, assistant or tool, "
               "found \"robot\"");
  // A token pair whose p_chosen is not a probability.
  testing::write_text(g.dir.file("pairs.jsonl"),
                      R"({"query_id": "q1", "prompt_token_ids": [1, 2, 3], "chosen_token_id": 4, )"
                      R"("rejected_token_id": 5, "p_chosen": 7.0, "p_rejected": 0.1})"
                      "\n");
  nlohmann::json d = {{"model", {{"path", g.model}, {"dtype", "fp32"}, {"device", "cpu"}}},
                      {"data", {{"train", g.dir.file("pairs.jsonl")}, {"format", "token"}}},
                      {"output", {{"dir", g.dir.file("dpo")}}}};
  expect_error(g.align("dpo --config " + g.write(d, "pairs")),
               "pairs.jsonl:1: p_chosen: expected a probability in [0, 1], found number 7.0");
  // data.max_seq_len past the model's positions (the tiny preset has 128).
  c = g.sft("run2");
  c["data"]["max_seq_len"] = 100000;
  expect_error(g.align("sft --config " + g.write(c, "long")),
               "data.max_seq_len: 100000 exceeds the model's max_position_embeddings");
}

TEST(InputGuard, ModelFilesThatCannotBeRight) {
  Guard g;
  // eos_token_id outside the vocabulary.
  nlohmann::json config = nlohmann::json::parse(read_file(g.model + "/config.json"));
  config["eos_token_id"] = config["vocab_size"].get<int64_t>() + 5;
  testing::write_text(g.model + "/config.json", config.dump(2));
  expect_error(
      g.align("generate --model " + g.model + " --prompt hi --output " + g.dir.file("o.jsonl")),
      "eos_token_id");
  // Weights relabelled I16 (bytes reinterpreted as integers).
  Guard h;
  std::string bytes = read_file(h.model + "/model.safetensors");
  const size_t at = bytes.find("\"F32\"");
  ASSERT_NE(at, std::string::npos);
  // F32 -> I32 keeps every size right; only the dtype lies.
  bytes.replace(at, 5, "\"I32\"");
  testing::write_text(h.model + "/model.safetensors", bytes);
  expect_error(
      h.align("generate --model " + h.model + " --prompt hi --output " + h.dir.file("o.jsonl")),
      "is stored as I32, expected a floating-point dtype");
}

TEST(InputGuard, PromptsTooLongForTheModel) {
  Guard g;
  const auto positions = nlohmann::json::parse(read_file(g.model + "/config.json"))
                             .at("max_position_embeddings")
                             .get<int64_t>();
  std::string prompt;
  for (int64_t i = 0; i < positions; ++i)
    prompt += " 7";
  const auto r = g.align("generate --model " + g.model + " --prompt \"" + prompt +
                         "\" --max-new-tokens 8 --output " + g.dir.file("o.jsonl"));
  expect_error(r, "--prompt: ");
  EXPECT_NE(r.second.find("exceed max_position_embeddings " + std::to_string(positions)),
            std::string::npos)
      << r.second;
}

TEST(InputGuard, QuerySetsAndSamplingSections) {
  Guard g;
  const auto positions = nlohmann::json::parse(read_file(g.model + "/config.json"))
                             .at("max_position_embeddings")
                             .get<int64_t>();
  std::string long_prompt;
  for (int64_t i = 0; i < positions; ++i)
    long_prompt += " 7";
  testing::write_text(g.dir.file("q.jsonl"),
                      "{\"id\": 1, \"prompt\": \"1+1\", \"answer\": 2}\n"
                      "{\"id\": 2, \"prompt\": \"" +
                          long_prompt +
                          "\", \"answer\": 2}\n"
                          "{\"id\": 3, \"prompt\": \"x\"}\n");
  auto config = [&](const nlohmann::json& extra) {
    nlohmann::json c = {{"model", {{"path", g.model}, {"device", "cpu"}}},
                        {"data", {{"path", g.dir.file("q.jsonl")}}},
                        {"oracle", {{"type", "math"}}},
                        {"sampling", {{"max_new_tokens", 8}}},
                        {"output", {{"dir", g.dir.file("out")}}}};
    c.merge_patch(extra);
    return g.write(c, "q");
  };
  // The sampling and rollout sections name their own keys.
  expect_error(g.align("pts --config " + config({{"sampling", {{"max_new_tokens", 0}}}})),
               "sampling.max_new_tokens: expected at least 1");
  expect_error(g.align("pts --config " + config({{"rollout", {{"page_size", 0}}}})),
               "q.json: rollout.page_size: expected at least 1");
  expect_error(g.align("eval --config " + config({{"rollout", {{"kv_budget_tokens", 1}}}})),
               "q.json: rollout.kv_budget_tokens: expected at least rollout.page_size");
  // A prompt too long for the model, with its file and line.
  const auto r = g.align("pts --config " + config(nlohmann::json::object()));
  expect_error(r, g.dir.file("q.jsonl") + ":2: the prompt has ");
  EXPECT_NE(r.second.find("(max_position_embeddings " + std::to_string(positions) + ")"),
            std::string::npos)
      << r.second;
  // A missing oracle field, with its file and line once.
  testing::write_text(g.dir.file("q.jsonl"), "{\"id\": 3, \"prompt\": \"x\"}\n");
  const auto missing = g.align("eval --config " + config(nlohmann::json::object()));
  expect_error(missing, g.dir.file("q.jsonl") + ":1: missing oracle field \"answer\"");
  EXPECT_EQ(missing.second.find("q.jsonl:1", missing.second.find("q.jsonl:1") + 1),
            std::string::npos)
      << missing.second;
}

// A tokenizer with more ids than the model has embedding rows (here an added token at the model's
// vocab_size) is accepted by every command alike; a sequence that uses such an id is refused where
// it is built, naming the file and line (or flag), the field, the id and the range
// (check_token_ids, data/token_range.h), never "index out of range" from the forward.
TEST(InputGuard, TokenIdsPastTheModelsVocabularyAreRefusedPerSequence) {
  testing::TempDir dir;
  const std::string model = dir.file("model");
  ASSERT_EQ(run("init --config " + testing::source_path("examples/arith/model_config.json") +
                " --tokenizer " + testing::source_path("examples/arith/tokenizer") + " --out " +
                model + " --dtype fp32"),
            0);
  const int64_t vocab =
      nlohmann::json::parse(read_file(model + "/config.json")).at("vocab_size").get<int64_t>();
  // init pads the model's rows to a multiple of 64: fill them with added tokens (HF gives each
  // the next free id), then one more, <|extra|>, the first id without a row.
  nlohmann::json tokenizer = nlohmann::json::parse(read_file(model + "/tokenizer.json"));
  int64_t next = 0;
  for (const auto& t : tokenizer["added_tokens"])
    next = std::max(next, t["id"].get<int64_t>() + 1);
  for (; next <= vocab; ++next) {
    tokenizer["added_tokens"].push_back(
        {{"id", next},
         {"content", next == vocab ? "<|extra|>" : "<|filler_" + std::to_string(next) + "|>"},
         {"single_word", false},
         {"lstrip", false},
         {"rstrip", false},
         {"normalized", false},
         {"special", true}});
  }
  testing::write_text(model + "/tokenizer.json", tokenizer.dump());
  const std::string past = "token id " + std::to_string(vocab) +
                           " is outside the model's vocabulary [0, " + std::to_string(vocab) + ")";
  auto expect_refused = [&](const std::string& args, const std::string& where) {
    std::string out;
    EXPECT_EQ(run(args, &out), 1) << out;
    EXPECT_NE(out.find(where), std::string::npos) << "expected: " << where << "\n" << out;
    EXPECT_NE(out.find(past), std::string::npos) << "expected: " << past << "\n" << out;
    EXPECT_EQ(out.find("index out of range"), std::string::npos) << out;
  };

  // Text without the extra token runs; the tokenizer itself is no error.
  const std::string plain = dir.file("plain.jsonl");
  testing::write_text(plain,
                      "{\"messages\": [{\"role\": \"user\", \"content\": \"1+2\"}, "
                      "{\"role\": \"assistant\", \"content\": \"3\"}]}\n");
  nlohmann::json sft = {{"model", {{"path", model}, {"dtype", "fp32"}, {"device", "cpu"}}},
                        {"data", {{"train", plain}, {"max_seq_len", 64}}},
                        {"schedule", {{"max_steps", 1}}},
                        {"output", {{"dir", dir.file("run")}}}};
  testing::write_text(dir.file("sft.json"), sft.dump());
  std::string out;
  EXPECT_EQ(run("sft --config " + dir.file("sft.json"), &out), 0) << out;
  EXPECT_EQ(
      run("logprobs --model " + model + " --input " + plain + " --output " + dir.file("lp.jsonl"),
          &out),
      0)
      << out;
  // tokenize has no model to check against: the id is printed.
  EXPECT_EQ(run("tokenize --model " + model + " --text '1<|extra|>'", &out), 0) << out;
  EXPECT_NE(out.find(std::to_string(vocab)), std::string::npos) << out;

  // A sequence with the extra token, in each command. ("text" matches added tokens as HF does;
  // chat message content never becomes a control token, so "messages" cannot reach it.)
  const std::string bad = dir.file("bad.jsonl");
  testing::write_text(bad, read_file(plain) + "{\"text\": \"1+2=<|extra|>\"}\n");
  sft["data"]["train"] = bad;
  sft["output"]["dir"] = dir.file("run2");
  testing::write_text(dir.file("sft2.json"), sft.dump());
  expect_refused("sft --config " + dir.file("sft2.json"), bad + ":2: text, token 4: ");
  expect_refused(
      "logprobs --model " + model + " --input " + bad + " --output " + dir.file("lp2.jsonl"),
      bad + ":2: \"text\", token 4: ");
  expect_refused(
      "generate --model " + model + " --prompt '<|extra|>' --output " + dir.file("g.jsonl"),
      "--prompt, token 0: ");
  testing::write_text(dir.file("ids.jsonl"),
                      "{\"token_ids\": [1, 2, " + std::to_string(vocab) + "]}\n");
  expect_refused("logprobs --model " + model + " --input " + dir.file("ids.jsonl") + " --output " +
                     dir.file("lp3.jsonl"),
                 "\"token_ids\"[2]: ");
  testing::write_text(dir.file("pairs.jsonl"),
                      "{\"query_id\": \"q\", \"prompt_token_ids\": [1, 2], \"chosen_token_id\": 3, "
                      "\"rejected_token_id\": " +
                          std::to_string(vocab) + "}\n");
  const nlohmann::json dpo = {
      {"model", {{"path", model}, {"dtype", "fp32"}, {"device", "cpu"}}},
      {"data", {{"train", dir.file("pairs.jsonl")}, {"format", "token"}, {"max_seq_len", 64}}},
      {"schedule", {{"max_steps", 1}}},
      {"output", {{"dir", dir.file("dpo")}}}};
  testing::write_text(dir.file("dpo.json"), dpo.dump());
  expect_refused("dpo --config " + dir.file("dpo.json"),
                 dir.file("pairs.jsonl") + ":1: rejected_token_id: ");
}

}  // namespace
}  // namespace align
