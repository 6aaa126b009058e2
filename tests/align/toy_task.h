// A toy task where one token decides success, for end-to-end tests of PTS and DPO on a real
// (tiny) model: "Pick a side for NAME." is answered "I pick left." or "I pick right." half and half
// in the SFT data; the regex oracle rewards "left". After SFT the model picks either side, so
// p(success | query) is about 0.5 and the side token is the one pivot.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/align/cli_runner.h"
#include "tests/test_util.h"

namespace align::testing {

inline const std::vector<std::string>& toy_names() {
  static const std::vector<std::string> names = {"Ann", "Bob", "Cid", "Dan",
                                                 "Eve", "Fay", "Gus", "Hal"};
  return names;
}

inline std::string toy_prompt(const std::string& name) {
  return "Pick a side for " + name + ".";
}

// Writes <dir>/base (random tiny model), trains <dir>/sft/model on the toy task (~5-10 s).
struct ToyTask {
  TempDir dir;
  std::string model = dir.file("sft/model");
  const nlohmann::json oracle = {{"type", "regex"}, {"pattern", "left"}};

  // run_sft = false: only the base model and train.jsonl (for runs that do their own SFT).
  explicit ToyTask(bool run_sft = true) {
    EXPECT_EQ(run("init --preset tiny --tokenizer " + golden_path("tokenizer/main") + " --out " +
                  dir.file("base") + " --seed 3 --dtype fp32"),
              0);
    std::string train;
    for (int i = 0; i < 64; ++i) {
      const std::string& name = toy_names()[static_cast<size_t>(i / 2) % toy_names().size()];
      const nlohmann::json line = {
          {"messages",
           {{{"role", "user"}, {"content", toy_prompt(name)}},
            {{"role", "assistant"}, {"content", i % 2 ? "I pick right." : "I pick left."}}}}};
      train += line.dump() + "\n";
    }
    write_text(dir.file("train.jsonl"), train);
    const nlohmann::json sft = {
        {"model", {{"path", dir.file("base")}, {"dtype", "fp32"}, {"device", "cpu"}}},
        {"data", {{"train", dir.file("train.jsonl")}, {"max_seq_len", 128}, {"rows_per_batch", 2}}},
        {"optimizer", {{"lr", 1e-2}}},
        {"schedule", {{"type", "cosine"}, {"warmup_steps", 5}, {"max_steps", 80}}},
        {"training", {{"log_every", 20}}},
        {"output", {{"dir", dir.file("sft")}}}};
    write_text(dir.file("sft.json"), sft.dump());
    if (run_sft) {
      EXPECT_EQ(run("sft --config " + dir.file("sft.json")), 0);
    }
  }

  // Writes <dir>/<name>-queries.jsonl: `copies` queries per name, ids "<name>-<i>".
  std::string queries(const std::string& name, const std::vector<std::string>& names,
                      int copies = 1) {
    std::string lines;
    for (const std::string& n : names)
      for (int i = 0; i < copies; ++i)
        lines +=
            nlohmann::json{{"id", n + "-" + std::to_string(i)}, {"prompt", toy_prompt(n)}}.dump() +
            "\n";
    const std::string path = dir.file(name + "-queries.jsonl");
    write_text(path, lines);
    return path;
  }

  // A PTS config over `queries_path` writing into <dir>/<name>.
  std::string pts_config(const std::string& name, const std::string& queries_path,
                         const nlohmann::json& extra = nlohmann::json::object()) {
    nlohmann::json c = {{"model", {{"path", model}, {"dtype", "fp32"}, {"device", "cpu"}}},
                        {"data", {{"path", queries_path}}},
                        {"oracle", oracle},
                        {"sampling", {{"max_new_tokens", 12}}},
                        {"pts",
                         {{"completions_per_query", 2},
                          {"min_rollouts", 16},
                          {"rollout_step", 16},
                          {"max_rollouts", 64},
                          {"queries_per_batch", 2},
                          {"seed", 5}}},
                        {"output", {{"dir", dir.file(name)}}}};
    c.merge_patch(extra);
    const std::string path = dir.file(name + ".json");
    write_text(path, c.dump(2));
    return path;
  }
};

}  // namespace align::testing
