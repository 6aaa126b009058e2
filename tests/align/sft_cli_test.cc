// `align sft` end to end on the tiny model: a run killed with SIGKILL and resumed with --resume
// ends with exactly the weights and metrics of an uninterrupted run; outputs load back; bad
// configs are named.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/atomic_file.h"
#include "tests/align/cli_runner.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::read_jsonl;
using testing::run;
namespace fs = std::filesystem;

// A tiny model and a config writing into dir/<name>.
struct SftFixture {
  testing::TempDir dir;
  std::string model = dir.file("model");
  SftFixture() {
    EXPECT_EQ(run("init --preset tiny --tokenizer " + testing::golden_path("tokenizer/main") +
                  " --out " + model + " --seed 1 --dtype fp32"),
              0);
  }
  std::string config(const std::string& name, const nlohmann::json& extra = {}) {
    nlohmann::json c = {{"model", {{"path", model}, {"dtype", "fp32"}, {"device", "cpu"}}},
                        {"data",
                         {{"train", testing::source_path("examples/sft/train.jsonl")},
                          {"eval", testing::source_path("examples/sft/eval.jsonl")},
                          {"max_seq_len", 128},
                          {"rows_per_batch", 2}}},
                        {"optimizer", {{"lr", 3e-3}}},
                        {"schedule", {{"type", "cosine"}, {"warmup_steps", 2}, {"max_steps", 12}}},
                        {"training", {{"grad_accum", 2}, {"eval_every", 4}}},
                        {"output", {{"dir", dir.file(name)}, {"save_every", 2}, {"keep_last", 2}}}};
    if (extra.is_object()) c.merge_patch(extra);
    const std::string path = dir.file(name + ".json");
    testing::write_text(path, c.dump(2));
    return path;
  }
};

std::vector<nlohmann::json> metrics(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    j.erase("tokens_per_s");     // wall-clock dependent
    j.erase("peak_memory_rss");  // the process's, not the run's
    j.erase("elapsed_s");
    out.push_back(j);
  }
  return out;
}

TEST(SftCli, KilledRunResumesToTheSameWeights) {
  SftFixture f;
  std::string log;
  // 24 steps, a checkpoint every 2: the kill lands after the first checkpoint, long before the end.
  const nlohmann::json longer = {{"schedule", {{"max_steps", 24}}}};
  ASSERT_EQ(run("sft --config " + f.config("straight", longer), &log), 0) << log;
  const std::string straight = f.dir.file("straight");
  ASSERT_TRUE(fs::exists(straight + "/model/model.safetensors"));
  ASSERT_TRUE(fs::exists(straight + "/config.json"));

  // Start the same run, SIGKILL it once its first checkpoint exists, then resume.
  const std::string cfg = f.config("killed", longer);
  const std::string killed = f.dir.file("killed");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(testing::align_binary().c_str(), "align", "sft", "--config", cfg.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  auto has_checkpoint = [&] {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(killed + "/checkpoints", ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("step-", 0) == 0 && name.find(".partial") == std::string::npos) return true;
    }
    return false;
  };
  while (!has_checkpoint() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  ASSERT_FALSE(fs::exists(killed + "/model/model.safetensors"));

  ASSERT_EQ(run("sft --config " + cfg + " --resume", &log), 0) << log;
  EXPECT_NE(log.find("resumed from"), std::string::npos) << log;
  EXPECT_EQ(read_file(killed + "/model/model.safetensors"),
            read_file(straight + "/model/model.safetensors"));
  EXPECT_EQ(metrics(killed + "/metrics.jsonl"), metrics(straight + "/metrics.jsonl"));
  EXPECT_EQ(metrics(straight + "/metrics.jsonl").size(), 24u);
  // keep_last 2: only the two newest checkpoints remain.
  EXPECT_TRUE(fs::exists(straight + "/checkpoints/step-00000024"));
  EXPECT_TRUE(fs::exists(straight + "/checkpoints/step-00000022"));
  EXPECT_FALSE(fs::exists(straight + "/checkpoints/step-00000020"));
}

TEST(SftCli, TrainingLowersTheLossAndTheModelLoadsBack) {
  SftFixture f;
  std::string log;
  ASSERT_EQ(run("sft --config " + f.config("run"), &log), 0) << log;
  auto m = metrics(f.dir.file("run/metrics.jsonl"));
  ASSERT_EQ(m.size(), 12u);
  EXPECT_LT(m.back()["loss"].get<double>(), m.front()["loss"].get<double>());
  EXPECT_TRUE(m.back().contains("eval_loss"));
  // The exported model scores text with the same CLI.
  testing::write_text(f.dir.file("in.jsonl"), "{\"text\": \"What is 2 + 2?\"}\n");
  EXPECT_EQ(run("logprobs --model " + f.dir.file("run/model") + " --input " +
                f.dir.file("in.jsonl") + " --output " + f.dir.file("out.jsonl")),
            0);
}

TEST(SftCli, LoraRunWritesAPeftAdapterAndMergedModel) {
  SftFixture f;
  std::string log;
  nlohmann::json lora = {{"lora", {{"enabled", true}, {"rank", 4}, {"alpha", 8}}},
                         {"output", {{"merge_lora", true}}},
                         {"schedule", {{"max_steps", 4}}}};
  ASSERT_EQ(run("sft --config " + f.config("lora", lora), &log), 0) << log;
  EXPECT_TRUE(fs::exists(f.dir.file("lora/adapter/adapter_config.json")));
  EXPECT_TRUE(fs::exists(f.dir.file("lora/adapter/adapter_model.safetensors")));
  EXPECT_TRUE(fs::exists(f.dir.file("lora/merged/config.json")));
}

// QLoRA (model.quantize nf4): the same run on an NF4 base writes a standard PEFT adapter and a
// dense merged model in the model dtype (deq(W) + scale B A); its losses stay within 2% of the
// LoRA run's on the same batches (tests/model/nf4_test.cc bounds one batch exactly). nf4 without
// LoRA is a config error.
TEST(SftCli, QloraRunWritesAStandardAdapterAndADenseMergedModel) {
  SftFixture f;
  std::string log;
  auto extra = [](const std::string& quantize) {
    return nlohmann::json{{"model", {{"quantize", quantize}}},
                          {"lora", {{"enabled", true}, {"rank", 4}, {"alpha", 8}}},
                          {"output", {{"merge_lora", true}}},
                          {"schedule", {{"max_steps", 4}}}};
  };
  ASSERT_EQ(run("sft --config " + f.config("qlora", extra("nf4")), &log), 0) << log;
  ASSERT_EQ(run("sft --config " + f.config("lora", extra("none")), &log), 0) << log;
  const nlohmann::json adapter =
      nlohmann::json::parse(read_file(f.dir.file("qlora/adapter/adapter_config.json")));
  EXPECT_EQ(adapter["peft_type"], "LORA");
  EXPECT_EQ(adapter["r"], 4);
  const nlohmann::json merged =
      nlohmann::json::parse(read_file(f.dir.file("qlora/merged/config.json")));
  EXPECT_EQ(merged.contains("quantization_config"), false);
  // The merged weights are plain F32 tensors (the model dtype), no uint8 NF4 codes.
  const std::string weights = read_file(f.dir.file("qlora/merged/model.safetensors"));
  uint64_t header = 0;
  std::memcpy(&header, weights.data(), sizeof header);
  const nlohmann::json tensors = nlohmann::json::parse(weights.substr(8, header));
  for (const auto& [name, info] : tensors.items()) {
    if (name != "__metadata__") {
      EXPECT_EQ(info["dtype"], "F32") << name;
    }
  }
  const auto q = metrics(f.dir.file("qlora/metrics.jsonl")),
             l = metrics(f.dir.file("lora/metrics.jsonl"));
  ASSERT_EQ(q.size(), l.size());
  for (size_t i = 0; i < q.size(); ++i) {
    const double lq = q[i]["loss"].get<double>(), ll = l[i]["loss"].get<double>();
    EXPECT_LT(std::abs(lq - ll), 0.02 * ll) << "step " << i + 1 << ": " << lq << " vs " << ll;
  }
  // The merged model scores text like any model directory.
  testing::write_text(f.dir.file("in.jsonl"), "{\"text\": \"What is 2 + 2?\"}\n");
  EXPECT_EQ(run("logprobs --model " + f.dir.file("qlora/merged") + " --input " +
                f.dir.file("in.jsonl") + " --output " + f.dir.file("out.jsonl")),
            0);
  nlohmann::json bad = {{"model", {{"quantize", "nf4"}}}, {"lora", {{"enabled", false}}}};
  EXPECT_NE(run("sft --config " + f.config("bad", bad), &log), 0);
  EXPECT_NE(log.find("model.quantize: nf4 needs lora.enabled"), std::string::npos) << log;
  bad = {{"model", {{"quantize", "int8"}}}, {"lora", {{"enabled", true}}}};
  EXPECT_NE(run("sft --config " + f.config("bad2", bad), &log), 0);
  EXPECT_NE(log.find("model.quantize: expected none or nf4, found 'int8'"), std::string::npos)
      << log;
}

// model.quantize is the one key path of every command; the trainers' old lora.quantize and
// lora.double_quant are refused before anything loads, naming where they moved.
TEST(SftCli, LoraQuantizeIsRefusedNamingModelQuantize) {
  SftFixture f;
  std::string log;
  const std::string cfg = f.config("moved", {{"lora", {{"enabled", true}, {"quantize", "nf4"}}}});
  EXPECT_NE(run("sft --config " + cfg, &log), 0);
  EXPECT_NE(log.find(cfg + ": lora.quantize: moved to model.quantize (one key for every command)"),
            std::string::npos)
      << log;
  EXPECT_FALSE(fs::exists(f.dir.file("moved")));
  const std::string cfg2 = f.config("moved2", {{"lora", {{"double_quant", false}}}});
  EXPECT_NE(run("sft --config " + cfg2, &log), 0);
  EXPECT_NE(log.find("lora.double_quant: moved to model.double_quant"), std::string::npos) << log;
}

// PEFT's target_modules="all-linear" (as a string or in the list) means the four projections, in
// the config the run records and in the adapter it writes; half of them stays half.
TEST(SftCli, LoraAllLinearTargetsEveryProjection) {
  SftFixture f;
  std::string log;
  const std::vector<std::string> all = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};
  for (const nlohmann::json& targets :
       {nlohmann::json("all-linear"), nlohmann::json::array({"all-linear"}),
        nlohmann::json::array({"o_proj", "down_proj"})}) {
    const std::string name = "t" + std::to_string(targets.is_string() ? 0 : targets.size());
    nlohmann::json extra = {
        {"lora", {{"enabled", true}, {"rank", 4}, {"alpha", 8}, {"target_modules", targets}}},
        {"schedule", {{"max_steps", 2}}}};
    ASSERT_EQ(run("sft --config " + f.config(name, extra), &log), 0) << log;
    const nlohmann::json adapter =
        nlohmann::json::parse(read_file(f.dir.file(name + "/adapter/adapter_config.json")));
    const nlohmann::json resolved =
        nlohmann::json::parse(read_file(f.dir.file(name + "/config.json")));
    const auto expected =
        targets.size() == 2 ? std::vector<std::string>{"o_proj", "down_proj"} : all;
    std::vector<std::string> written = adapter.at("target_modules");
    std::sort(written.begin(), written.end());
    std::vector<std::string> sorted = expected;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(written, sorted) << adapter.dump();
    EXPECT_EQ(resolved.at("lora").at("target_modules").get<std::vector<std::string>>(), expected);
  }
}

TEST(SftCli, ConfigErrorsNameTheKeyAndExistingRunsNeedResume) {
  SftFixture f;
  std::string log;
  EXPECT_NE(run("sft --config " + f.config("bad", {{"optimizer", {{"lrr", 1}}}}), &log), 0);
  EXPECT_NE(log.find("optimizer.lrr"), std::string::npos) << log;
  EXPECT_NE(run("sft --config " + f.config("ok") + " --set schedule.type=triangle", &log), 0);
  EXPECT_NE(log.find("schedule.type"), std::string::npos) << log;
  ASSERT_EQ(run("sft --config " + f.config("ok") + " --set schedule.max_steps=2", &log), 0) << log;
  EXPECT_NE(run("sft --config " + f.config("ok") + " --set schedule.max_steps=2", &log), 0);
  EXPECT_NE(log.find("--resume"), std::string::npos) << log;
}

}  // namespace
}  // namespace align
