// What sft, dpo, pts and eval print while they run, with the real binary on the toy task
// (tests/align/toy_task.h): without a terminal (these tests read a pipe) a line per logged step
// with step/total, loss, learning rate, grad norm, tokens/s, elapsed and ETA, a line per PTS batch,
// eval's line with why it stopped short of its token bound, and one final line per trainer with
// its metrics and where the result is; at a terminal (through script(1)'s pseudo-terminal) the
// redrawn bar shows the ETA and the latest loss and ends at 100%.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "tests/align/cli_runner.h"
#include "tests/align/toy_task.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::run;

size_t count(const std::string& text, const std::regex& pattern) {
  return static_cast<size_t>(std::distance(std::sregex_iterator(text.begin(), text.end(), pattern),
                                           std::sregex_iterator()));
}

TEST(ProgressCli, LinesWithoutATerminalAndABarAtOne) {
  testing::ToyTask task;
  const std::string sft = task.dir.file("sft.json");
  std::string out;
  ASSERT_EQ(run("sft --config " + sft + " --set output.dir=" + task.dir.file("piped") +
                    " --set schedule.max_steps=20 --set training.log_every=5",
                &out),
            0)
      << out;
  // One line per logged step, each with the figures and the time left.
  const std::regex step_line(
      R"(sft step (5|10|15|20)/20 \(\d+%\): loss [0-9.]+, learning_rate [0-9.e+-]+, grad_norm [0-9.]+, mean_token_accuracy [0-9.]+, tokens/s \d+; elapsed [0-9.]+s, ETA [0-9.]+s)");
  EXPECT_EQ(count(out, step_line), 4u) << out;
  EXPECT_NE(out.find("sft: done: 20 steps in "), std::string::npos) << out;
  EXPECT_NE(out.find("-> " + task.dir.file("piped") + "/model/"), std::string::npos) << out;

  // At a terminal: the bar, redrawn, with the ETA and the latest loss, ending at 20/20 100%.
  const std::string command = testing::align_binary() + " sft --config " + sft +
                              " --set output.dir=" + task.dir.file("tty") +
                              " --set schedule.max_steps=20 --set training.log_every=5";
  const testing::CliResult terminal =
      testing::run_cli_command("script -qec '" + command + "' /dev/null");
  ASSERT_EQ(terminal.code, 0) << terminal.output;
  const std::string& tty = terminal.output;
  EXPECT_NE(tty.find("\r"), std::string::npos) << tty;  // redrawn in place
  EXPECT_TRUE(std::regex_search(tty, std::regex(R"(20/20 100%.*loss [0-9.]+)"))) << tty;
  EXPECT_TRUE(std::regex_search(tty, std::regex(R"(ETA [0-9.]+s)"))) << tty;
  EXPECT_EQ(tty.find("sft step 5/20 (25%)"), std::string::npos) << tty;  // no per-step lines
  EXPECT_NE(tty.find("sft: done: 20 steps"), std::string::npos) << tty;

  // PTS: a line per batch; then DPO on its pairs: per logged step and a final line.
  const std::vector<std::string> names(testing::toy_names().begin(),
                                       testing::toy_names().begin() + 4);
  ASSERT_EQ(run("pts --config " + task.pts_config("pts", task.queries("q", names, 2)), &out), 0)
      << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(pts queries 2/8 \(25%\): batch 1/4, kept \d+)")))
      << out;
  EXPECT_NE(out.find("pts queries 8/8 (100%): batch 4/4"), std::string::npos) << out;
  const nlohmann::json dpo = {
      {"model", {{"path", task.model}, {"dtype", "fp32"}, {"device", "cpu"}}},
      {"data", {{"train", task.dir.file("pts/pairs.jsonl")}, {"format", "token"}}},
      {"optimizer", {{"lr", 1e-3}}},
      {"schedule", {{"type", "constant"}, {"max_steps", 6}}},
      {"training", {{"log_every", 3}}},
      {"output", {{"dir", task.dir.file("dpo")}}}};
  testing::write_text(task.dir.file("dpo.json"), dpo.dump());
  ASSERT_EQ(run("dpo --config " + task.dir.file("dpo.json"), &out), 0) << out;
  EXPECT_EQ(count(out, std::regex(R"(dpo step (3|6)/6 \(\d+%\): loss [0-9.]+, learning_rate)")), 2u)
      << out;
  EXPECT_NE(out.find("dpo: done: 6 steps in "), std::string::npos) << out;
  EXPECT_NE(out.find("-> " + task.dir.file("dpo") + "/adapter/"), std::string::npos) << out;

  // Eval: its bar counts tokens up to the most there can be, and says why it ended short.
  const nlohmann::json eval = {
      {"model", {{"path", task.model}, {"dtype", "fp32"}, {"device", "cpu"}}},
      {"data", {{"path", task.dir.file("q-queries.jsonl")}}},
      {"oracle", task.oracle},
      {"sampling", {{"max_new_tokens", 12}, {"num_samples", 4}}},
      {"output", {{"dir", task.dir.file("eval")}}}};
  testing::write_text(task.dir.file("eval.json"), eval.dump());
  ASSERT_EQ(run("eval --config " + task.dir.file("eval.json"), &out), 0) << out;
  EXPECT_TRUE(std::regex_search(
      out,
      std::regex(
          R"(eval tokens stopped at \d+/384: every sample is done: the others stopped at a stop token)")))
      << out;
}

}  // namespace
}  // namespace align
