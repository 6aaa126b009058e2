// `align grpo` end to end on the toy task (tests/align/toy_task.h: the SFT model picks "left" or
// "right" half and half; the regex oracle rewards "left"): GRPO learns the rewarded side and logs
// TRL's metric names; runs killed with SIGKILL at random points resume to the same adapter byte
// for byte (mid-generation included); two ranks end with the single-process weights; bad input
// fails before anything is sampled, naming the key; the held-out eval keeps the best step; the
// pipeline runs grpo between its evals; --help lists the sections.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/atomic_file.h"
#include "tests/align/cli_runner.h"
#include "tests/align/toy_task.h"
#include "tests/model/checkpoint_diff.h"
#include "tests/parallel/rank_launcher.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::max_weight_diff;
using testing::read_jsonl;
using testing::run;
namespace fs = std::filesystem;

struct GrpoFixture {
  testing::ToyTask task;
  std::string queries = task.queries("train", testing::toy_names(), 2);

  std::string config(const std::string& name, const nlohmann::json& extra = {}) {
    nlohmann::json c = {
        {"model", {{"path", task.model}, {"dtype", "fp32"}, {"device", "cpu"}}},
        {"data", {{"path", queries}}},
        {"oracle", task.oracle},
        {"sampling", {{"max_new_tokens", 12}, {"temperature", 1.0}}},
        {"grpo", {{"num_generations", 4}, {"prompts_per_step", 8}}},
        {"optimizer", {{"lr", 5e-3}}},
        {"schedule", {{"type", "constant"}, {"max_steps", 12}}},
        {"training", {{"grad_accum", 2}, {"log_every", 1}, {"seed", 3}}},
        {"lora", {{"enabled", true}, {"rank", 4}, {"alpha", 8}}},
        {"output", {{"dir", task.dir.file(name)}, {"save_every", 1}, {"keep_last", 30}}}};
    if (extra.is_object()) c.merge_patch(extra);
    const std::string path = task.dir.file(name + ".json");
    testing::write_text(path, c.dump(2));
    return path;
  }
  std::string out(const std::string& name) { return task.dir.file(name); }
};

// The logged values that do not depend on timing.
std::vector<nlohmann::json> metrics(const std::string& out) {
  std::vector<nlohmann::json> m = read_jsonl(out + "/metrics.jsonl");
  for (auto& j : m) {
    j.erase("tokens_per_s");
    j.erase("peak_memory_rss");
    j.erase("elapsed_s");
    j.erase("rollout_s");
  }
  return m;
}

double mean_reward(const std::vector<nlohmann::json>& m, size_t from, size_t to) {
  double sum = 0;
  for (size_t i = from; i < to; ++i)
    sum += m[i]["reward"].get<double>();
  return sum / static_cast<double>(to - from);
}

TEST(GrpoCli, LearnsTheRewardedSideWithTrlMetricNames) {
  GrpoFixture f;
  std::string log;
  const nlohmann::json longer = {{"schedule", {{"max_steps", 24}}}};
  ASSERT_EQ(run("grpo --config " + f.config("run", longer), &log), 0) << log;
  const auto m = metrics(f.out("run"));
  ASSERT_EQ(m.size(), 24u);
  for (const char* key :
       {"step", "epoch", "loss", "learning_rate", "grad_norm", "num_tokens", "reward", "reward_std",
        "rewards/regex/mean", "rewards/regex/std", "frac_reward_zero_std",
        "completions/mean_length", "completions/clipped_ratio", "entropy", "clip_ratio/low_mean",
        "clip_ratio/high_mean", "clip_ratio/region_mean", "generation", "num_completion_tokens"}) {
    EXPECT_TRUE(m.back().contains(key)) << key;
  }
  EXPECT_FALSE(m.back().contains("kl"));  // beta 0: no reference
  // About half the completions say "left" at the start; GRPO moves the policy towards it
  // (measured: 0.49 over the first 4 steps, 0.78 over the last 4).
  const double before = mean_reward(m, 0, 4), after = mean_reward(m, 20, 24);
  EXPECT_GT(after, before + 0.15) << "reward " << before << " -> " << after;
  // num_tokens counts prompt + completion tokens of every generation, growing.
  EXPECT_GT(m.back()["num_tokens"].get<int64_t>(), m.front()["num_tokens"].get<int64_t>());
  EXPECT_TRUE(fs::exists(f.out("run/adapter/adapter_model.safetensors")));
  // Every generation's completions with their rewards and advantages.
  const auto lines = read_jsonl(f.out("run/completions/step-00000001.jsonl"));
  ASSERT_EQ(lines.size(), 32u);
  for (const char* key : {"query_id", "prompt", "completion", "token_ids", "finish_reason",
                          "rewards", "reward", "advantage"})
    EXPECT_TRUE(lines[0].contains(key)) << key;
  EXPECT_TRUE(lines[0]["rewards"].contains("regex"));
  // The run's report renders (reward curve, sample completions).
  ASSERT_EQ(run("report " + f.out("run"), &log), 0) << log;
  const std::string html = read_file(f.out("run/report.html"));
  EXPECT_NE(html.find("reward"), std::string::npos);
  EXPECT_NE(html.find("I pick"), std::string::npos);
}

// Starts `cfg`, waits until its checkpoint count reaches `checkpoints` and a random extra
// `delay_ms`, then SIGKILLs it. False when it finished first.
bool kill_after(const std::string& cfg, const std::string& out, int checkpoints, int delay_ms,
                bool resume) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (resume) {
      ::execl(testing::align_binary().c_str(), "align", "grpo", "--config", cfg.c_str(), "--resume",
              static_cast<char*>(nullptr));
    } else {
      ::execl(testing::align_binary().c_str(), "align", "grpo", "--config", cfg.c_str(),
              static_cast<char*>(nullptr));
    }
    ::_exit(127);
  }
  auto count = [&] {
    int n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(out + "/checkpoints", ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("step-", 0) == 0 && name.find(".partial") == std::string::npos) ++n;
    }
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (count() < checkpoints && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status);
}

// num_iterations 2 (checkpoints between the two steps of a generation keep it), a KL reference,
// and pi_old from the engine (temperature 1) or from a forward (temperature 0.7).
TEST(GrpoCli, KilledRunsResumeToTheSameAdapterByteForByte) {
  GrpoFixture f;
  std::mt19937 random(20260);
  for (double temperature : {1.0, 0.7}) {
    SCOPED_TRACE(temperature);
    const std::string tag = temperature == 1.0 ? "t1" : "t07";
    const nlohmann::json extra = {
        {"sampling", {{"temperature", temperature}}},
        {"grpo", {{"num_iterations", 2}, {"beta", 0.04}, {"loss_type", "grpo"}}}};
    std::string log;
    ASSERT_EQ(run("grpo --config " + f.config("straight-" + tag, extra), &log), 0) << log;
    const std::string cfg = f.config("killed-" + tag, extra);
    const std::string killed = f.out("killed-" + tag);
    // Two kills at random points (after 1-5 checkpoints, then 1-4 more, plus 0-40 ms).
    const int first = 1 + static_cast<int>(random() % 5);
    const int second = first + 1 + static_cast<int>(random() % 4);
    ASSERT_TRUE(kill_after(cfg, killed, first, static_cast<int>(random() % 40), false))
        << "the run finished before it could be killed";
    if (!kill_after(cfg, killed, second, static_cast<int>(random() % 40), true)) {
      ADD_FAILURE() << "the resumed run finished before it could be killed";
    }
    ASSERT_FALSE(fs::exists(killed + "/adapter/adapter_model.safetensors"));
    ASSERT_EQ(run("grpo --config " + cfg + " --resume", &log), 0) << log;
    EXPECT_NE(log.find("resumed from"), std::string::npos) << log;
    EXPECT_EQ(read_file(killed + "/adapter/adapter_model.safetensors"),
              read_file(f.out("straight-" + tag + "/adapter/adapter_model.safetensors")));
    EXPECT_EQ(metrics(killed), metrics(f.out("straight-" + tag)));
    EXPECT_TRUE(metrics(killed).back().contains("kl"));
  }
}

TEST(GrpoCli, TwoRanksEndWithTheSingleProcessWeights) {
  GrpoFixture f;
  std::string log;
  const nlohmann::json extra = {{"schedule", {{"max_steps", 6}}},
                                {"grpo", {{"scale_rewards", "batch"}}},
                                {"training", {{"grad_accum", 4}}},
                                {"output", {{"merge_lora", true}}}};
  ASSERT_EQ(run("grpo --config " + f.config("one", extra), &log), 0) << log;
  const std::string cfg = f.config("two", extra);
  fs::create_directories(f.out("two-logs"));
  const testing::JobResult job =
      testing::run_ranks(testing::align_binary() + " grpo --config " + cfg, 2, f.out("two-logs"));
  ASSERT_TRUE(job.all_ok()) << job.describe();
  EXPECT_LT(max_weight_diff(f.out("one/merged"), f.out("two/merged")), 2e-5);
  const auto a = metrics(f.out("one")), b = metrics(f.out("two"));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    for (const char* key : {"reward", "loss", "grad_norm", "entropy", "num_tokens"})
      EXPECT_NEAR(a[i][key].get<double>(), b[i][key].get<double>(), 1e-4) << i << " " << key;
  // The completions of a generation are the same whichever rank sampled them.
  EXPECT_EQ(read_jsonl(f.out("one/completions/step-00000004.jsonl")),
            read_jsonl(f.out("two/completions/step-00000004.jsonl")));
}

TEST(GrpoCli, BadInputFailsBeforeSamplingNamingTheKey) {
  GrpoFixture f;
  auto fails_with = [&](const std::string& name, const nlohmann::json& extra,
                        const std::string& expected) {
    std::string log;
    EXPECT_NE(run("grpo --config " + f.config(name, extra), &log), 0) << name;
    EXPECT_NE(log.find(expected), std::string::npos) << name << ": " << log;
    EXPECT_FALSE(fs::exists(f.out(name + "/completions"))) << name;
    EXPECT_FALSE(fs::exists(f.out(name + "/metrics.jsonl")) &&
                 !read_file(f.out(name + "/metrics.jsonl")).empty())
        << name;
  };
  fails_with("nogroup", {{"grpo", {{"num_generations", 1}}}}, "grpo.num_generations");
  fails_with("weights", {{"grpo", {{"reward_weights", {1.0, 0.5}}}}}, "grpo.reward_weights");
  // The exact oracle (the toy's regex pattern removed): the queries have no "answer".
  const nlohmann::json exact = {{"oracle", {{"type", "exact"}, {"pattern", nullptr}}}};
  fails_with("fields", exact, "\"answer\"");
  fails_with("split", {{"training", {{"grad_accum", 3}}}}, "training.grad_accum");
  fails_with("typo", {{"grpo", {{"loss_typ", "grpo"}}}}, "grpo.loss_typ");
  fails_with("kind", {{"grpo", {{"loss_type", "ppo"}}}}, "grpo.loss_type");
  // The query file's line is named.
  std::string log;
  run("grpo --config " + f.config("fields2", exact), &log);
  EXPECT_NE(log.find("train-queries.jsonl:1"), std::string::npos) << log;

  // prompts_per_step 3 over two ranks: both ranks stop before sampling.
  const std::string cfg =
      f.config("ranks", {{"grpo", {{"prompts_per_step", 3}}}, {"training", {{"grad_accum", 3}}}});
  fs::create_directories(f.out("ranks-logs"));
  const testing::JobResult job =
      testing::run_ranks(testing::align_binary() + " grpo --config " + cfg, 2, f.out("ranks-logs"));
  EXPECT_FALSE(job.all_ok());
  EXPECT_NE(job.logs[0].find("grpo.prompts_per_step"), std::string::npos) << job.describe();
  EXPECT_FALSE(fs::exists(f.out("ranks/completions")));
}

TEST(GrpoCli, HeldOutEvalKeepsTheBestStep) {
  GrpoFixture f;
  // Graded by "right" (the oracle section stays "left" for the rewards): GRPO moves towards
  // "left", so held-out pass@1 falls and the best step is the start.
  const std::string held =
      f.task.queries("held", {testing::toy_names()[0], testing::toy_names()[1]}, 2);
  const nlohmann::json extra = {
      {"schedule", {{"max_steps", 12}}},
      {"eval",
       {{"queries", held},
        {"every", 6},
        {"oracle", {{"type", "regex"}, {"pattern", "right"}}},
        {"sampling", {{"max_new_tokens", 12}, {"num_samples", 8}}}}},
      {"output", {{"save_every", 0}, {"keep_last", 1}, {"merge_lora", true}}}};
  std::string log;
  ASSERT_EQ(run("grpo --config " + f.config("held", extra), &log), 0) << log;
  const nlohmann::json best = nlohmann::json::parse(read_file(f.out("held/best.json")));
  EXPECT_EQ(best["evals"].size(), 3u);  // steps 0, 6, 12
  EXPECT_EQ(best["step"], 0);
  EXPECT_TRUE(best["kept"].get<bool>());
  EXPECT_TRUE(fs::exists(f.out("held/evals/step-00000000/summary.json")));
  EXPECT_NE(log.find("grpo: step 0 held-out pass@1"), std::string::npos) << log;
  EXPECT_TRUE(fs::exists(f.out("held/checkpoints/step-00000000")));  // kept beyond keep_last
  // The result is the starting model, exactly.
  EXPECT_EQ(max_weight_diff(f.out("held/merged"), f.task.model), 0.0);
}

TEST(GrpoCli, PipelineRunsGrpoBetweenTheEvals) {
  GrpoFixture f;
  const std::vector<std::string> held(testing::toy_names().begin() + 6, testing::toy_names().end());
  const nlohmann::json c = {
      {"run_dir", f.out("pipe")},
      {"model", {{"path", f.task.dir.file("sft/model")}, {"dtype", "fp32"}, {"device", "cpu"}}},
      {"oracle", f.task.oracle},
      {"stages", {"eval-before", "grpo", "eval-after"}},
      {"eval",
       {{"data", {{"path", f.task.queries("held", held)}}},
        {"sampling", {{"max_new_tokens", 12}, {"num_samples", 32}}}}},
      {"grpo",
       {{"data", {{"path", f.queries}}},
        {"sampling", {{"max_new_tokens", 12}}},
        {"grpo", {{"num_generations", 4}, {"prompts_per_step", 8}}},
        {"optimizer", {{"lr", 5e-3}}},
        {"schedule", {{"type", "constant"}, {"max_steps", 24}}},
        {"training", {{"grad_accum", 2}, {"seed", 3}}},
        {"lora", {{"enabled", true}, {"rank", 4}, {"alpha", 8}}}}}};
  testing::write_text(f.out("pipe.json"), c.dump(2));
  std::string log;
  ASSERT_EQ(run("pipeline --config " + f.out("pipe.json"), &log), 0) << log;
  EXPECT_NE(log.find("| eval | before GRPO | after GRPO |"), std::string::npos) << log;
  EXPECT_NE(log.find("GRPO completion tokens sampled: "), std::string::npos) << log;
  const nlohmann::json summary = nlohmann::json::parse(read_file(f.out("pipe/summary.json")));
  const double before = summary["eval"]["before"]["pass@k"]["1"]["mean"];
  const double after = summary["eval"]["after"]["pass@k"]["1"]["mean"];
  EXPECT_GT(after, before + 0.1) << log;
  EXPECT_GT(summary["grpo"]["tokens_sampled"].get<int64_t>(), 24 * 32);
  EXPECT_TRUE(fs::exists(f.out("pipe/grpo/merged/model.safetensors")));
  // A rerun skips every stage.
  ASSERT_EQ(run("pipeline --config " + f.out("pipe.json"), &log), 0) << log;
  EXPECT_NE(log.find("skipping finished grpo"), std::string::npos) << log;

  // sft -> eval -> pts -> dpo -> grpo -> eval is a valid order; grpo before dpo is not, and the
  // grpo section may not bring its own oracle.
  nlohmann::json full = c;
  full["stages"] = {"eval-before", "pts", "dpo", "grpo", "eval-after"};
  full["pts"] = {{"data", {{"path", f.queries}}}};
  testing::write_text(f.out("full.json"), full.dump(2));
  EXPECT_EQ(run("pipeline --config " + f.out("full.json") + " --check", &log), 0) << log;
  full["stages"] = {"eval-before", "grpo", "dpo"};
  testing::write_text(f.out("order.json"), full.dump(2));
  EXPECT_NE(run("pipeline --config " + f.out("order.json") + " --check", &log), 0);
  EXPECT_NE(log.find("stages run in the order"), std::string::npos) << log;
  full["stages"] = {"grpo"};
  full["grpo"]["oracle"] = f.task.oracle;
  testing::write_text(f.out("oracle.json"), full.dump(2));
  EXPECT_NE(run("pipeline --config " + f.out("oracle.json") + " --check", &log), 0);
  EXPECT_NE(log.find("grpo.oracle"), std::string::npos) << log;
}

TEST(GrpoCli, HelpListsTheSectionsAndTrlKeys) {
  std::string out;
  ASSERT_EQ(run("grpo --help", &out), 0) << out;
  for (const char* key : {"grpo.num_generations",
                          "grpo.prompts_per_step",
                          "grpo.loss_type",
                          "grpo.beta",
                          "grpo.epsilon_high",
                          "grpo.scale_rewards",
                          "grpo.importance_sampling_level",
                          "grpo.num_iterations",
                          "grpo.mask_truncated_completions",
                          "grpo.top_entropy_quantile",
                          "grpo.rewards",
                          "grpo.reward_weights",
                          "sampling.temperature",
                          "rollout.max_batch",
                          "reference.type",
                          "eval.keep_best",
                          "lora.rank",
                          "data.path",
                          "oracle",
                          "output.dir"})
    EXPECT_NE(out.find(key), std::string::npos) << key;
}

}  // namespace
}  // namespace align
