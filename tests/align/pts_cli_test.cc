// `align pts` end to end on a real (tiny) model trained on a toy task where one token decides
// success: SFT teaches "I pick left." and "I pick right." half and half; the regex oracle rewards
// "left". PTS must find the pivot at the side token, emit pairs preferring it, and those pairs must
// hold up when re-measured with independent rollouts. A killed run restarted with the same command
// ends with exactly the outputs of an uninterrupted one.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/atomic_file.h"
#include "data/tokenizer.h"
#include "eval/query_set.h"
#include "model/phi3_model.h"
#include "oracles/oracle.h"
#include "rollout/engine.h"
#include "tests/align/cli_runner.h"
#include "tests/align/toy_task.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::read_jsonl;
using testing::run;
namespace fs = std::filesystem;

// The toy task's PTS config over `queries` copies of one prompt, writing into dir/<name>.
std::string config(testing::ToyTask& task, const std::string& name, int queries,
                   const nlohmann::json& extra = nlohmann::json::object()) {
  return task.pts_config(name, task.queries(name, {"Ann"}, queries), extra);
}

// Fraction of `n` fresh rollouts after prompt + token (seeds unrelated to the search's) that the
// oracle grades a success. The completion text is the completion prefix + token + rollout.
double remeasure(const Phi3Model& model, const Tokenizer& tok, const Oracle& oracle,
                 const nlohmann::json& pair, const std::string& which, int64_t n) {
  const std::vector<TokenId> prompt = pair.at("prompt_token_ids").get<std::vector<TokenId>>();
  const int64_t position = pair.at("position").get<int64_t>();
  std::vector<TokenId> completion(prompt.end() - position, prompt.end());
  const TokenId token = pair.at(which + "_token_id").get<TokenId>();
  completion.push_back(token);
  GenerationRequest r;
  r.prompt = prompt;
  r.prompt.push_back(token);
  r.num_samples = n;
  r.max_new_tokens = 12;
  r.stop_token_ids = {*tok.token_to_id("<|im_end|>")};
  r.sampling.seed = 987654321;
  Engine engine(model, &tok, {});
  const auto samples = engine.generate({r})[0];
  int64_t wins = 0;
  for (const GeneratedSample& s : samples) {
    std::vector<TokenId> ids = completion;
    ids.insert(ids.end(), s.tokens.begin(), s.tokens.end());
    wins += oracle.grade(completion_text(tok, ids), nlohmann::json::object()) ? 1 : 0;
  }
  return static_cast<double>(wins) / n;
}

TEST(PtsCli, FindsTheDecidingTokenAndItsPairsHoldUpWhenRemeasured) {
  testing::ToyTask task;
  std::string out;
  ASSERT_EQ(run("pts --config " + config(task, "pts", 3), &out), 0) << out;
  EXPECT_NE(out.find("3 queries"), std::string::npos) << out;
  const auto queries = read_jsonl(task.dir.file("pts/queries.jsonl"));
  const auto pivots = read_jsonl(task.dir.file("pts/pivots.jsonl"));
  const auto pairs = read_jsonl(task.dir.file("pts/pairs.jsonl"));
  ASSERT_EQ(queries.size(), 3u);
  ASSERT_FALSE(pairs.empty());
  const Tokenizer tok = Tokenizer::load(task.model);
  const std::vector<TokenId> pick = tok.encode("I pick");  // after any prompt
  for (const auto& p : pivots) {
    // The only token that decides: the first of " left" / " right", right after "I pick".
    EXPECT_EQ(p.at("prefix_token_ids").get<std::vector<TokenId>>(), pick) << p.dump();
    EXPECT_TRUE(p.at("pivot_text") == tok.decode(tok.encode(" left")).substr(0, 2) ||
                p.at("pivot_text") == tok.decode(tok.encode(" right")).substr(0, 2))
        << p.dump();
  }
  bool raises = false, lowers = false;
  for (const auto& p : pivots)
    (p.at("direction") == "raises" ? raises : lowers) = true;
  EXPECT_TRUE(raises && lowers);

  const Phi3Model model = Phi3Model::load(task.model, torch::kFloat32, torch::kCPU);
  const auto oracle = make_oracle(task.oracle, "test");
  for (const auto& pair : pairs) {
    EXPECT_GT(pair.at("p_chosen").get<double>(), pair.at("p_rejected").get<double>());
    EXPECT_GT(pair.at("n_rejected").get<int64_t>(), 0);
    const double chosen = remeasure(model, tok, *oracle, pair, "chosen", 32);
    const double rejected = remeasure(model, tok, *oracle, pair, "rejected", 32);
    EXPECT_GT(chosen, rejected + 0.2) << pair.dump();
  }
}

TEST(PtsCli, KilledRunContinuesWithoutRedoingOrDuplicatingWork) {
  testing::ToyTask task;
  const nlohmann::json one_per_batch = {{"pts", {{"queries_per_batch", 1}}}};
  ASSERT_EQ(run("pts --config " + config(task, "whole", 6, one_per_batch)), 0);

  const std::string killed = config(task, "killed", 6, one_per_batch);
  const pid_t child = fork();
  if (child == 0) {
    execl(testing::align_binary().c_str(), "align", "pts", "--config", killed.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill it once at least one batch (but not all) is committed.
  const std::string progress = task.dir.file("killed/progress.json");
  int64_t done_when_killed = 0;
  for (int i = 0; i < 6000 && done_when_killed == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!fs::exists(progress)) continue;
    const auto j = nlohmann::json::parse(read_file(progress), nullptr, false);
    if (!j.is_discarded()) done_when_killed = j.value("queries_done", int64_t{0});
  }
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_GT(done_when_killed, 0);
  ASSERT_LT(done_when_killed, 6) << "the run finished before it could be killed";

  std::string out;
  ASSERT_EQ(run("pts --config " + killed, &out), 0) << out;
  EXPECT_NE(out.find("6 queries"), std::string::npos) << out;
  for (const std::string file : {"pivots.jsonl", "pairs.jsonl", "completions.jsonl"}) {
    EXPECT_EQ(read_file(task.dir.file("whole/" + file)), read_file(task.dir.file("killed/" + file)))
        << file;
  }
  const auto queries = read_jsonl(task.dir.file("killed/queries.jsonl"));
  ASSERT_EQ(queries.size(), 6u);
  for (size_t i = 0; i < queries.size(); ++i)
    EXPECT_EQ(queries[i].at("query_id"), "Ann-" + std::to_string(i));

  // A different config in the same folder is refused, naming the key.
  EXPECT_EQ(run("pts --config " + killed + " --set pts.p_gap=0.3", &out), 1);
  EXPECT_NE(out.find("pts.p_gap differs"), std::string::npos) << out;
  // So is a query file edited in place since the run started (it would mix two query sets).
  const std::string query_file = task.dir.file("killed-queries.jsonl");
  testing::write_text(query_file, read_file(query_file) + "\n");
  EXPECT_EQ(run("pts --config " + killed, &out), 1);
  EXPECT_NE(out.find("holds a PTS run over another version of " + query_file), std::string::npos)
      << out;
}

TEST(PtsCli, BadInputIsNamed) {
  testing::TempDir dir;
  const std::string model = dir.file("model");
  ASSERT_EQ(run("init --preset tiny --tokenizer " + testing::golden_path("tokenizer/main") +
                " --out " + model),
            0);
  testing::write_text(dir.file("q.jsonl"), "{\"id\": 1, \"prompt\": \"x\"}\n{\"id\": 2}\n");
  auto config = [&](const nlohmann::json& extra) {
    nlohmann::json c = {{"model", {{"path", model}}},
                        {"data", {{"path", dir.file("q.jsonl")}}},
                        {"oracle", {{"type", "math"}}},
                        {"output", {{"dir", dir.file("out")}}}};
    c.merge_patch(extra);
    testing::write_text(dir.file("c.json"), c.dump());
    return dir.file("c.json");
  };
  std::string out;
  EXPECT_EQ(run("pts --config " + config({{"pts", {{"p_gapp", 0.2}}}}), &out), 1);
  EXPECT_NE(out.find("pts.p_gapp"), std::string::npos) << out;
  EXPECT_EQ(run("pts --config " + config({{"pts", {{"band_low", 0.9}}}}), &out), 1);
  EXPECT_NE(out.find("band_low <= band_high"), std::string::npos) << out;
  EXPECT_EQ(run("pts --config " + config({{"oracle", {{"type", "astrology"}}}}), &out), 1);
  EXPECT_NE(out.find("oracle.type"), std::string::npos) << out;
  // Line 1 lacks the math oracle's "answer"; named with its line.
  EXPECT_EQ(run("pts --config " + config(nlohmann::json::object()), &out), 1);
  EXPECT_NE(out.find("q.jsonl:1"), std::string::npos) << out;
  EXPECT_NE(out.find("answer"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir.file("out/pairs.jsonl")));
}

}  // namespace
}  // namespace align
