// Data-parallel `align sft` / `align dpo` and `align pts` across ranks, as real processes over
// Gloo: 2 and 3 ranks end with the weights (and metrics) of the single-process run, with the
// optimizer state replicated or sharded (ZeRO stage 2); a checkpoint written by one number of
// ranks resumes on another; torchrun launches align directly; a killed
// rank makes the others exit with an error instead of hanging; PTS across ranks writes the
// single-process outputs and continues a killed run.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "tests/align/cli_runner.h"
#include "tests/align/toy_task.h"
#include "tests/model/checkpoint_diff.h"
#include "tests/parallel/rank_launcher.h"
#include "tests/test_util.h"

namespace align {
namespace {

namespace fs = std::filesystem;
using testing::max_weight_diff;
using testing::read_jsonl;
using testing::run;

// The logged values of metrics.jsonl that do not depend on timing.
std::vector<nlohmann::json> metrics(const std::string& out) {
  std::vector<nlohmann::json> m = read_jsonl(out + "/metrics.jsonl");
  for (auto& j : m) {
    j.erase("tokens_per_s");
    j.erase("peak_memory_rss");  // the process's, not the run's
    j.erase("elapsed_s");
  }
  return m;
}

void expect_metrics_near(const std::string& a, const std::string& b, double tol) {
  const auto x = metrics(a), y = metrics(b);
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    for (const auto& [key, value] : x[i].items()) {
      ASSERT_TRUE(y[i].contains(key)) << key;
      EXPECT_NEAR(value.get<double>(), y[i][key].get<double>(), tol)
          << "line " << i << " key " << key;
    }
  }
}

std::string align_cmd(const std::string& args) {
  return testing::align_binary() + " " + args;
}

struct SftRanks {
  testing::ToyTask task{false};
  std::string config(const std::string& name, int zero_stage = 0) {
    const nlohmann::json c = {
        {"model", {{"path", task.dir.file("base")}, {"dtype", "fp32"}, {"device", "cpu"}}},
        {"data",
         {{"train", task.dir.file("train.jsonl")}, {"max_seq_len", 64}, {"rows_per_batch", 2}}},
        {"optimizer", {{"lr", 3e-3}}},
        {"schedule", {{"type", "cosine"}, {"warmup_steps", 2}, {"max_steps", 6}}},
        {"training",
         {{"grad_accum", 5}, {"log_every", 1}, {"seed", 4}, {"zero_stage", zero_stage}}},
        {"output", {{"dir", task.dir.file(name)}, {"save_every", 3}, {"keep_last", 10}}}};
    const std::string path = task.dir.file(name + ".json");
    testing::write_text(path, c.dump(2));
    return path;
  }
};

TEST(TrainRanks, SftOnTwoAndThreeRanksEqualsOneProcess) {
  SftRanks f;
  std::string log;
  ASSERT_EQ(run("sft --config " + f.config("one"), &log), 0) << log;
  for (int world : {2, 3}) {
    const std::string name = "ranks" + std::to_string(world);
    const std::string config = f.config(name);
    fs::create_directories(f.task.dir.file(name + "-logs"));
    const testing::JobResult job = testing::run_ranks(align_cmd("sft --config " + config), world,
                                                      f.task.dir.file(name + "-logs"));
    ASSERT_TRUE(job.all_ok()) << job.describe();
    EXPECT_NE(job.logs[0].find(std::to_string(world) + " ranks (torchrun, gloo"), std::string::npos)
        << job.logs[0];
    EXPECT_LT(max_weight_diff(f.task.dir.file("one/model"), f.task.dir.file(name + "/model")),
              2e-5);
    expect_metrics_near(f.task.dir.file("one"), f.task.dir.file(name), 1e-4);
  }
  // The weights moved: equality above is not the untouched initial model twice.
  EXPECT_GT(max_weight_diff(f.task.dir.file("base"), f.task.dir.file("one/model")), 1e-3);
}

TEST(TrainRanks, ShardedOptimizerOnThreeRanksEqualsOneProcessAndResumesOnTwo) {
  SftRanks f;
  std::string log;
  ASSERT_EQ(run("sft --config " + f.config("one"), &log), 0) << log;
  const std::string config = f.config("zero", 2);
  fs::create_directories(f.task.dir.file("logs3"));
  const testing::JobResult job =
      testing::run_ranks(align_cmd("sft --config " + config), 3, f.task.dir.file("logs3"));
  ASSERT_TRUE(job.all_ok()) << job.describe();
  EXPECT_LT(max_weight_diff(f.task.dir.file("one/model"), f.task.dir.file("zero/model")), 2e-5);
  expect_metrics_near(f.task.dir.file("one"), f.task.dir.file("zero"), 1e-4);

  // Each rank saved its own part of the optimizer state: together they are the whole state,
  // apart they are each a fraction of it.
  const std::string step3 = f.task.dir.file("zero/checkpoints/step-00000003");
  const std::string single = f.task.dir.file("one/checkpoints/step-00000003/optimizer.safetensors");
  EXPECT_FALSE(fs::exists(step3 + "/optimizer.safetensors"));
  std::vector<std::string> names;
  for (int r = 0; r < 3; ++r) {
    const std::string shard =
        step3 + "/optimizer/shard-0000" + std::to_string(r) + "-of-00003.safetensors";
    ASSERT_TRUE(fs::exists(shard)) << shard;
    EXPECT_LT(fs::file_size(shard), fs::file_size(single) * 2 / 3) << shard;
    for (const std::string& n : Checkpoint::open(shard).names())
      names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, Checkpoint::open(single).names());

  // The three-rank sharded checkpoint at step 3, continued on two ranks (re-sharded).
  fs::remove_all(f.task.dir.file("zero/checkpoints/step-00000006"));
  fs::remove_all(f.task.dir.file("zero/model"));
  fs::create_directories(f.task.dir.file("logs2"));
  const testing::JobResult rest =
      testing::run_ranks(align_cmd("sft --resume --config " + config), 2, f.task.dir.file("logs2"));
  ASSERT_TRUE(rest.all_ok()) << rest.describe();
  EXPECT_LT(max_weight_diff(f.task.dir.file("one/model"), f.task.dir.file("zero/model")), 2e-5);
}

TEST(TrainRanks, SftCheckpointFromTwoRanksResumesOnThree) {
  SftRanks f;
  std::string log;
  ASSERT_EQ(run("sft --config " + f.config("one"), &log), 0) << log;
  const std::string config = f.config("moved");
  fs::create_directories(f.task.dir.file("logs2"));
  const testing::JobResult first =
      testing::run_ranks(align_cmd("sft --config " + config), 2, f.task.dir.file("logs2"));
  ASSERT_TRUE(first.all_ok()) << first.describe();
  // Keep only the step-3 checkpoint, as if the job had been stopped there.
  fs::remove_all(f.task.dir.file("moved/checkpoints/step-00000006"));
  fs::remove_all(f.task.dir.file("moved/model"));
  fs::create_directories(f.task.dir.file("logs3"));
  const testing::JobResult second =
      testing::run_ranks(align_cmd("sft --resume --config " + config), 3, f.task.dir.file("logs3"));
  ASSERT_TRUE(second.all_ok()) << second.describe();
  EXPECT_NE(second.logs[0].find("resumed from"), std::string::npos) << second.logs[0];
  EXPECT_LT(max_weight_diff(f.task.dir.file("one/model"), f.task.dir.file("moved/model")), 2e-5);
  expect_metrics_near(f.task.dir.file("one"), f.task.dir.file("moved"), 1e-4);
}

struct DpoRanks {
  testing::TempDir dir;
  int zero_stage = 0;
  DpoRanks() {
    EXPECT_EQ(run("init --preset tiny --tokenizer " + testing::golden_path("tokenizer/main") +
                  " --out " + dir.file("model") + " --seed 1 --dtype fp32"),
              0);
  }
  std::string config(const std::string& name) {
    const nlohmann::json c = {
        {"model", {{"path", dir.file("model")}, {"dtype", "fp32"}, {"device", "cpu"}}},
        {"data",
         {{"train", testing::source_path("examples/dpo/token_train.jsonl")},
          {"format", "token"},
          {"max_seq_len", 256},
          {"batch_size", 2}}},
        {"dpo", {{"beta", 0.5}, {"nll_weight", 0.5}}},
        {"optimizer", {{"lr", 5e-3}}},
        {"schedule", {{"type", "linear"}, {"warmup_steps", 1}, {"max_steps", 4}}},
        {"training", {{"grad_accum", 3}, {"log_every", 1}, {"zero_stage", zero_stage}}},
        {"lora", {{"enabled", true}, {"rank", 4}, {"alpha", 8}, {"dropout", 0.0}}},
        {"output", {{"dir", dir.file(name)}, {"save_every", 2}, {"keep_last", 10}}}};
    const std::string path = dir.file(name + ".json");
    testing::write_text(path, c.dump(2));
    return path;
  }
};

TEST(TrainRanks, DpoOnTwoAndThreeRanksEqualsOneProcessAndResumesOnOne) {
  DpoRanks f;
  std::string log;
  ASSERT_EQ(run("dpo --config " + f.config("one"), &log), 0) << log;
  const std::string config = f.config("two");
  fs::create_directories(f.dir.file("logs"));
  const testing::JobResult job =
      testing::run_ranks(align_cmd("dpo --config " + config), 2, f.dir.file("logs"));
  ASSERT_TRUE(job.all_ok()) << job.describe();
  const std::string adapter = "/adapter/adapter_model.safetensors";
  EXPECT_LT(max_weight_diff(f.dir.file("one") + adapter, f.dir.file("two") + adapter), 2e-5);
  expect_metrics_near(f.dir.file("one"), f.dir.file("two"), 1e-4);
  EXPECT_GT(metrics(f.dir.file("one")).back()["rewards/margins"].get<double>(), 0.0);

  // Sharded optimizer state on three ranks: the same adapter.
  f.zero_stage = 2;
  fs::create_directories(f.dir.file("logs3"));
  const testing::JobResult sharded =
      testing::run_ranks(align_cmd("dpo --config " + f.config("three")), 3, f.dir.file("logs3"));
  ASSERT_TRUE(sharded.all_ok()) << sharded.describe();
  EXPECT_LT(max_weight_diff(f.dir.file("one") + adapter, f.dir.file("three") + adapter), 2e-5);
  expect_metrics_near(f.dir.file("one"), f.dir.file("three"), 1e-4);
  f.zero_stage = 0;

  // The two-rank checkpoint at step 2, resumed in one process.
  fs::remove_all(f.dir.file("two/checkpoints/step-00000004"));
  fs::remove_all(f.dir.file("two/adapter"));
  ASSERT_EQ(run("dpo --resume --config " + config, &log), 0) << log;
  EXPECT_LT(max_weight_diff(f.dir.file("one") + adapter, f.dir.file("two") + adapter), 2e-5);
}

TEST(TrainRanks, TorchrunLaunchesAlignDirectly) {
  const std::string torchrun = ALIGN_TORCHRUN;
  if (torchrun.empty() || !fs::exists(torchrun)) {
    GTEST_SKIP() << "torchrun not found next to the LibTorch used for the build";
  }
  SftRanks f;
  std::string log;
  ASSERT_EQ(run("sft --config " + f.config("one"), &log), 0) << log;
  const std::string command =
      torchrun + " --nproc-per-node=2 --master-port=" + std::to_string(testing::free_port()) +
      " --no-python " + testing::align_binary() + " sft --config " + f.config("torchrun") + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    log.append(buffer, n);
  ASSERT_EQ(::pclose(pipe), 0) << log;
  EXPECT_NE(log.find("2 ranks (torchrun, gloo"), std::string::npos) << log;
  EXPECT_LT(max_weight_diff(f.task.dir.file("one/model"), f.task.dir.file("torchrun/model")), 2e-5);
}

TEST(TrainRanks, KilledRankMakesTheOthersExitWithAnError) {
  SftRanks f;
  nlohmann::json c = nlohmann::json::parse(testing::read_file(f.config("long")));
  c["schedule"]["max_steps"] = 100000;
  c["output"]["save_every"] = 0;
  testing::write_text(f.task.dir.file("long.json"), c.dump());
  const int port = testing::free_port();
  const std::string cmd = align_cmd("sft --config " + f.task.dir.file("long.json"));
  const testing::RankProcess rank0 = testing::start_rank(cmd, 0, 2, port, f.task.dir.file("r0"));
  const testing::RankProcess rank1 = testing::start_rank(cmd, 1, 2, port, f.task.dir.file("r1"));
  // Wait until training runs (rank 0 has logged a step), then kill rank 1.
  const std::string metrics_path = f.task.dir.file("long/metrics.jsonl");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while ((!fs::exists(metrics_path) || fs::file_size(metrics_path) == 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(fs::exists(metrics_path));
  ::kill(rank1.pid, SIGKILL);
  testing::wait_rank(rank1, std::chrono::seconds(10));
  const auto killed_at = std::chrono::steady_clock::now();
  const int code = testing::wait_rank(rank0, std::chrono::seconds(120));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  const std::string log = testing::read_file(f.task.dir.file("r0"));
  EXPECT_EQ(code, 1) << log;
  EXPECT_LT(seconds, 60) << log;
  EXPECT_NE(log.find("align: error: rank 0: "), std::string::npos) << log;
  EXPECT_NE(log.find("another rank probably failed"), std::string::npos) << log;
}

TEST(TrainRanks, SingleProcessCommandsRefuseSeveralRanks) {
  testing::TempDir dir;
  for (const std::string& command :
       {std::string("pipeline --config ") + testing::source_path("examples/arith/pipeline.json"),
        std::string("eval --config ") + testing::source_path("examples/arith/pipeline.json")}) {
    const testing::RankProcess p =
        testing::start_rank(align_cmd(command), 0, 2, testing::free_port(), dir.file("log"));
    EXPECT_EQ(testing::wait_rank(p, std::chrono::seconds(30)), 1);
    const std::string log = testing::read_file(dir.file("log"));
    EXPECT_NE(log.find("runs in one process, but the launcher (torchrun) started 2"),
              std::string::npos)
        << log;
  }
}

TEST(TrainRanks, MalformedDistTimeoutNamesTheVariable) {
  testing::TempDir dir;
  const testing::RankProcess p = testing::start_rank(
      "env ALIGN_DIST_TIMEOUT_S=soon " +
          align_cmd("sft --config " + testing::source_path("examples/sft/tiny_cpu.json")),
      0, 2, testing::free_port(), dir.file("log"));
  EXPECT_EQ(testing::wait_rank(p, std::chrono::seconds(30)), 1);
  const std::string log = testing::read_file(dir.file("log"));
  EXPECT_NE(log.find("ALIGN_DIST_TIMEOUT_S=\"soon\": expected a positive number of seconds"),
            std::string::npos)
      << log;
}

// PTS outputs without timings.
std::string pts_lines(const std::string& path) {
  std::string s;
  for (nlohmann::json j : read_jsonl(path)) {
    j.erase("seconds");
    s += j.dump() + "\n";
  }
  return s;
}

void expect_same_pts_outputs(const std::string& a, const std::string& b) {
  for (const char* file : {"pivots.jsonl", "pairs.jsonl", "completions.jsonl", "queries.jsonl"}) {
    EXPECT_EQ(pts_lines(a + "/" + file), pts_lines(b + "/" + file)) << file;
  }
  EXPECT_EQ(read_jsonl(a + "/metrics.jsonl").size(), read_jsonl(b + "/metrics.jsonl").size());
}

TEST(TrainRanks, PtsOnThreeRanksWritesTheSingleProcessOutputsAndResumes) {
  testing::ToyTask task;
  const std::string queries = task.queries("q", testing::toy_names());  // 8 queries
  std::string log;
  ASSERT_EQ(run("pts --config " + task.pts_config("one", queries), &log), 0) << log;
  ASSERT_GT(read_jsonl(task.dir.file("one/pairs.jsonl")).size(), 0u);
  ASSERT_EQ(read_jsonl(task.dir.file("one/metrics.jsonl")).size(), 4u);  // 4 batches of 2

  fs::create_directories(task.dir.file("logs3"));
  const testing::JobResult job = testing::run_ranks(
      align_cmd("pts --config " + task.pts_config("three", queries)), 3, task.dir.file("logs3"));
  ASSERT_TRUE(job.all_ok()) << job.describe();
  expect_same_pts_outputs(task.dir.file("one"), task.dir.file("three"));
  EXPECT_NE(job.logs[0].find("pts: 8 queries"), std::string::npos) << job.logs[0];

  // A single-process run killed after its first committed batch, continued on two ranks.
  const std::string config = task.pts_config("resumed", queries);
  const testing::RankProcess solo =
      testing::start_rank("env -u RANK -u WORLD_SIZE " + align_cmd("pts --config " + config), 0, 1,
                          0, task.dir.file("solo.log"));
  const std::string progress = task.dir.file("resumed/progress.json");
  auto committed_queries = [&]() -> int64_t {
    if (!fs::exists(progress)) return 0;
    return nlohmann::json::parse(testing::read_file(progress)).value("queries_done", int64_t{0});
  };
  while (committed_queries() < 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(solo.pid, SIGKILL);
  testing::wait_rank(solo, std::chrono::seconds(10));
  EXPECT_LT(committed_queries(), 8)
      << "the run finished before it could be killed: nothing was resumed";
  fs::create_directories(task.dir.file("logs2"));
  const testing::JobResult rest =
      testing::run_ranks(align_cmd("pts --config " + config), 2, task.dir.file("logs2"));
  ASSERT_TRUE(rest.all_ok()) << rest.describe();
  expect_same_pts_outputs(task.dir.file("one"), task.dir.file("resumed"));
}

}  // namespace
}  // namespace align
