// End-to-end tests of `align report`: a small run directory written here (metrics, eval summaries,
// PTS outputs with awkward token texts), the command run, and the page checked as text; runs of
// the real `align sft`, `dpo`, `eval` and `pts` on a tiny model reported on their own and side by
// side; the run.json every command writes (finished after success, failed after an error).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "tests/align/cli_runner.h"
#include "tests/align/toy_task.h"

namespace align::testing {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

// The HTML of one shown completion, from its <div> to the end of its token list.
std::string completion_html(const std::string& html, const std::string& id) {
  const size_t begin = html.find("id=\"completion-" + id + "\"");
  if (begin == std::string::npos) return "";
  const size_t end = html.find("</div>\n</div>", begin);
  return html.substr(begin, end - begin);
}

void write_eval(const std::string& dir, double p1, double low, double high, double p4) {
  fs::create_directories(dir);
  write_text(dir + "/summary.json",
             R"({"items": 16, "num_samples": 4, "pass@k": {"1": {"mean": )" + std::to_string(p1) +
                 R"(, "low": )" + std::to_string(low) + R"(, "high": )" + std::to_string(high) +
                 R"(}, "4": {"mean": )" + std::to_string(p4) +
                 R"(, "low": 0.3, "high": 0.8}}, "mean_tokens": 21.5, "seconds": 3.2,
                 "oracle": "regex", "future_key": [1, 2]})");
}

// A run directory with every stage; `with_dpo` false leaves the DPO folder out.
void write_run(const std::string& dir, bool with_dpo) {
  fs::create_directories(dir + "/sft");
  fs::create_directories(dir + "/pts");
  write_text(dir + "/summary.json",
             R"({"stages": [{"name": "sft", "seconds": 12.5, "status": "done"},
                 {"name": "pts", "seconds": 40, "status": "done"}], "pairs": 3, "extra": true})");
  write_text(dir + "/sft/metrics.jsonl",
             "{\"step\": 1, \"epoch\": 0, \"loss\": 2.5, \"lr\": 1e-4, \"grad_norm\": 3.1, "
             "\"tokens\": 512, \"tokens_per_s\": 900}\n"
             "{\"step\": 2, \"epoch\": 0, \"loss\": 2.1, \"lr\": 1e-4, \"grad_norm\": 2.2, "
             "\"tokens\": 1024, \"tokens_per_s\": 950, \"eval_loss\": 2.3}\n"
             "{\"step\": 3, \"epoch\": 1, \"loss\": 1.7, \"lr\": 5e-5, \"grad_norm\": 1.9, "
             "\"tokens\": 1536, \"tokens_per_s\": 940}\n");
  write_eval(dir + "/eval-before", 0.25, 0.1, 0.45, 0.5);
  write_eval(dir + "/eval-after", 0.375, 0.2, 0.55, 0.625);
  write_text(
      dir + "/pts/queries.jsonl",
      R"({"query_id": "q1", "p_initial": 0.5, "n_initial": 8, "kept": true, "completions_analysed": 2, "pivots": 1, "pairs": 3, "pivots_dropped": 0, "rollouts": 96, "tokens_generated": 2000, "seconds": 4.5}
{"query_id": "q2", "p_initial": 1.0, "n_initial": 8, "kept": false, "completions_analysed": 0, "pivots": 0, "pairs": 0, "pivots_dropped": 0, "rollouts": 8, "tokens_generated": 150, "seconds": 0.5}
)");
  // Tokens with markup, an ampersand, quotes and a newline; the pivot is " <script>" (index 3).
  write_text(
      dir + "/pts/completions.jsonl",
      R"j({"query_id": "q1", "completion_index": 0, "token_ids": [1,2,3,4,5,6,7,8,9,10], "token_texts": ["The", " answer", " is", " <script>", "alert(1)", "</script>", " &", " \"x\"", "\n", "42"], "success": true, "estimates": [{"prefix_length": 0, "p": 0.5, "n": 8}, {"prefix_length": 3, "p": 0.5, "n": 8}, {"prefix_length": 4, "p": 0.875, "n": 8}, {"prefix_length": 10, "p": 1.0, "n": 0}], "pivot_positions": [3]}
{"query_id": "q1", "completion_index": 1, "token_ids": [11,12,13], "token_texts": ["No", " idea", "."], "success": false, "estimates": [{"prefix_length": 0, "p": 0.5, "n": 8}, {"prefix_length": 3, "p": 0.0, "n": 0}], "pivot_positions": []}
)j");
  write_text(dir + "/pts/pairs.jsonl", "");
  write_text(dir + "/pts/metrics.jsonl",
             "{\"batch\": 0, \"elapsed_s\": 2.5}\n{\"batch\": 1, \"elapsed_s\": 0.75}\n");
  // The query file PTS read: q1's prompt is shown above its completions.
  write_text(dir + "/queries.jsonl",
             R"({"id": "q1", "prompt": "What is <b>6*7</b>?"}
{"id": "q2", "messages": [{"role": "user", "content": "Other"}]}
)");
  write_text(dir + "/pts/config.json",
             nlohmann::json{{"data", {{"path", dir + "/queries.jsonl"}}}}.dump());
  if (!with_dpo) return;
  fs::create_directories(dir + "/dpo");
  write_text(dir + "/dpo/metrics.jsonl",
             "{\"step\": 1, \"loss\": 0.69, \"lr\": 1e-6, \"grad_norm\": 1.0, "
             "\"rewards/chosen\": 0.01, \"rewards/rejected\": -0.01, \"rewards/accuracies\": 0.5, "
             "\"rewards/margins\": 0.02, \"logps/chosen\": -1.2, \"logps/rejected\": -1.4}\n"
             "{\"step\": 2, \"loss\": 0.61, \"lr\": 1e-6, \"grad_norm\": 0.8, "
             "\"rewards/chosen\": 0.05, \"rewards/rejected\": -0.1, \"rewards/accuracies\": 0.75, "
             "\"rewards/margins\": 0.15, \"logps/chosen\": -1.1, \"logps/rejected\": -1.9, "
             "\"eval_loss\": 0.63, \"eval_rewards/margins\": 0.12, "
             "\"eval_rewards/accuracies\": 0.7}\n");
}

// A training run folder as `align sft` (or `align dpo`) writes it: config.json, metrics.jsonl with
// elapsed_s, tokens_per_s and peak memory; the loss starts at `loss0`.
void write_training_run(const std::string& dir, double loss0, bool dpo) {
  fs::create_directories(dir + "/checkpoints");
  nlohmann::json config = {{"model", {{"path", "m"}}}, {"optimizer", {{"lr", 1e-3}}}};
  if (dpo) config["dpo"] = {{"beta", 0.1}};
  write_text(dir + "/config.json", config.dump());
  std::string lines;
  for (int step = 1; step <= 4; ++step) {
    nlohmann::json m = {{"step", step},
                        {"loss", loss0 / step},
                        {"learning_rate", 1e-3},
                        {"grad_norm", 1.0},
                        {"tokens_per_s", 100.0 * step},
                        {"elapsed_s", 0.5 * step},
                        {"peak_memory_rss", 0.25 + 0.01 * step}};
    if (dpo) m["rewards/margins"] = 0.1 * step;
    lines += m.dump() + "\n";
  }
  write_text(dir + "/metrics.jsonl", lines);
}

// An eval folder as `align eval` writes it, over an items file with markup in the prompt and a
// sample text with markup; 3 items of 6 samples each.
void write_eval_folder(const std::string& dir, const std::string& items_path) {
  fs::create_directories(dir);
  write_text(items_path, R"({"id": "a1", "prompt": "Say <b>hi</b> & go"}
{"id": "a2", "prompt": "Second"}
{"id": "a3", "prompt": "Third"}
)");
  write_text(dir + "/config.json",
             nlohmann::json{{"data", {{"path", items_path}}}, {"eval", {{"k", {1}}}}}.dump());
  write_eval(dir, 0.5, 0.2, 0.8, 0.9);
  std::string results;
  for (const char* id : {"a1", "a2", "a3"}) {
    nlohmann::json samples = nlohmann::json::array();
    for (int s = 0; s < 6; ++s)
      samples.push_back(
          {{"token_ids", {1, 2}},
           {"text", std::string(id) + " <script>alert(" + std::to_string(s) + ")</script> \"q\""},
           {"success", s % 2 == 0},
           {"finish_reason", s % 2 ? "length" : "stop"}});
    results +=
        nlohmann::json{
            {"id", id}, {"n", 6}, {"correct", 3}, {"pass@k", {{"1", 0.5}}}, {"samples", samples}}
            .dump() +
        "\n";
  }
  write_text(dir + "/results.jsonl", results);
}

TEST(ReportCli, WritesASelfContainedPageWithEveryStage) {
  TempDir tmp;
  const std::string dir = tmp.file("run");
  write_run(dir, /*with_dpo=*/true);
  std::string out;
  ASSERT_EQ(run("report " + dir, &out), 0) << out;
  const std::string path = dir + "/report.html";
  ASSERT_TRUE(fs::exists(path)) << out;
  const std::string html = slurp(path);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);

  // Self-contained: nothing fetched from anywhere.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  // Token texts are escaped: no markup from them survives.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("</script"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("&amp;"), std::string::npos);
  EXPECT_NE(html.find("&quot;x&quot;"), std::string::npos);
  EXPECT_NE(html.find("\u21b5"), std::string::npos);  // the newline token is visible

  // One span per token of each shown completion; the pivot is marked with p before -> after.
  const std::string first = completion_html(html, "q1-0");
  const std::string second = completion_html(html, "q1-1");
  EXPECT_EQ(count(first, "<span class=\"tok"), 10u) << first;
  EXPECT_EQ(count(second, "<span class=\"tok"), 3u) << second;
  EXPECT_EQ(count(first, "pivot\""), 1u);
  EXPECT_NE(first.find("class=\"tok pivot\""), std::string::npos);
  EXPECT_NE(first.find("title=\"pivot: p 0.5 \u2192 0.875\"> &lt;script&gt;</span>"),
            std::string::npos)
      << first;
  EXPECT_NE(first.find("tok carried"), std::string::npos);  // tokens 5..9 carry 0.875
  EXPECT_EQ(count(second, "tok pivot"), 0u);
  EXPECT_NE(first.find("<div class=\"prompt\">What is &lt;b&gt;6*7&lt;/b&gt;?</div>"),
            std::string::npos)
      << first;

  // The eval table: before, after and the difference; the PTS totals; the curves.
  EXPECT_NE(html.find("<b>0.25</b> <span class=\"sub\">[0.1, 0.45]</span>"), std::string::npos);
  EXPECT_NE(html.find("<b>0.375</b>"), std::string::npos);
  EXPECT_NE(html.find("+0.125"), std::string::npos);
  EXPECT_NE(html.find("<td>104</td>"), std::string::npos);        // rollouts 96 + 8
  EXPECT_NE(html.find("<td>3.25</td></tr>"), std::string::npos);  // wall time 2.5 + 0.75
  EXPECT_NE(html.find("reward margin"), std::string::npos);
  EXPECT_NE(html.find("eval_rewards/margins"), std::string::npos);
  EXPECT_GE(count(html, "<svg class=\"chart\""), 7u);  // 3 SFT + 4 DPO
  EXPECT_EQ(html.find("not run"), std::string::npos);
}

TEST(ReportCli, MissingStagesSayNotRunAndOutputAndSampleSizeAreHonoured) {
  TempDir tmp;
  const std::string dir = tmp.file("run");
  write_run(dir, /*with_dpo=*/false);
  fs::remove_all(dir + "/sft");
  const std::string output = tmp.file("page.html");
  std::string out;
  ASSERT_EQ(run("report " + dir + " --output " + output + " --completions 1", &out), 0) << out;
  EXPECT_FALSE(fs::exists(dir + "/report.html"));
  const std::string html = slurp(output);
  EXPECT_NE(html.find("not run (no sft/metrics.jsonl)"), std::string::npos);
  EXPECT_NE(html.find("not run (no dpo/metrics.jsonl)"), std::string::npos);
  EXPECT_NE(completion_html(html, "q1-0").size(), 0u);
  EXPECT_EQ(completion_html(html, "q1-1").size(), 0u);
}

TEST(ReportCli, SafetyEvalShowsRefusalRatesWithTheBetterDirection) {
  TempDir tmp;
  const std::string dir = tmp.file("run");
  write_run(dir, /*with_dpo=*/true);
  // Refusing more harmful requests is better (+0.2 green); refusing more benign ones is worse
  // (+0.1 red), and refusing fewer is better.
  auto write_safety = [&](const std::string& side, double harmful, double benign) {
    write_text(dir + "/eval-" + side + "/summary.json",
               R"({"items": 20, "num_samples": 4, "oracle": "safety", "pass@k": {"1": {"mean": 0.5,
                   "low": 0.4, "high": 0.6}}, "refusal_rate_harmful": {"items": 10, "mean": )" +
                   std::to_string(harmful) + R"(, "low": 0.05, "high": 0.95},
                   "over_refusal_benign": {"items": 10, "mean": )" +
                   std::to_string(benign) + R"(, "low": 0.01, "high": 0.99},
                   "oracle_rates": [{"key": "refusal_rate_harmful", "label":
                   "refusal rate, harmful", "higher_is_better": true}, {"key":
                   "over_refusal_benign", "label": "over-refusal, benign",
                   "higher_is_better": false}]})");
  };
  write_safety("before", 0.5, 0.25);
  write_safety("after", 0.7, 0.35);
  std::string out;
  ASSERT_EQ(run("report " + dir, &out), 0) << out;
  std::string html = slurp(dir + "/report.html");
  const size_t harmful = html.find(
      "<tr><td>refusal rate, harmful</td><td><b>0.5</b> "
      "<span class=\"sub\">[0.05, 0.95]</span></td><td><b>0.7</b>");
  ASSERT_NE(harmful, std::string::npos) << html;
  EXPECT_EQ(html.find("<td class=\"better\">+0.2</td>", harmful),
            html.find("<td class=", harmful + 1))
      << html;
  const size_t benign = html.find("<tr><td>over-refusal, benign</td><td><b>0.25</b>");
  ASSERT_NE(benign, std::string::npos) << html;
  EXPECT_NE(html.find("<td class=\"worse\">+0.1</td></tr>", benign), std::string::npos) << html;

  write_safety("after", 0.7, 0.15);
  ASSERT_EQ(run("report " + dir, &out), 0) << out;
  html = slurp(dir + "/report.html");
  EXPECT_NE(html.find("<td class=\"better\">-0.1</td></tr>",
                      html.find("<tr><td>over-refusal, benign</td>")),
            std::string::npos)
      << html;
  // Summaries without the safety oracle have no such rows (the other tests' runs).
  write_eval(dir + "/eval-before", 0.25, 0.1, 0.45, 0.5);
  write_eval(dir + "/eval-after", 0.375, 0.2, 0.55, 0.625);
  ASSERT_EQ(run("report " + dir, &out), 0) << out;
  EXPECT_EQ(slurp(dir + "/report.html").find("refusal"), std::string::npos);
}

TEST(ReportCli, MalformedMetricsLineNamesFileAndLine) {
  TempDir tmp;
  const std::string dir = tmp.file("run");
  write_run(dir, /*with_dpo=*/true);
  write_text(dir + "/dpo/metrics.jsonl",
             "{\"step\": 1, \"loss\": 0.69}\n{\"step\": 2, \"loss\":\n");
  std::string out;
  EXPECT_EQ(run("report " + dir, &out), 1) << out;
  EXPECT_NE(out.find("dpo/metrics.jsonl:2"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir + "/report.html"));

  write_text(dir + "/dpo/metrics.jsonl", "{\"step\": 1, \"loss\": 0.69}\n");
  write_text(dir + "/eval-after/summary.json", "{\"items\": 16,\n \"pass@k\": }\n");
  EXPECT_EQ(run("report " + dir, &out), 1) << out;
  EXPECT_NE(out.find("eval-after/summary.json: not valid JSON"), std::string::npos) << out;
  EXPECT_NE(out.find("line 2"), std::string::npos) << out;

  fs::remove_all(dir);
  EXPECT_EQ(run("report " + dir, &out), 1) << out;
  EXPECT_NE(out.find("run directory not found"), std::string::npos) << out;
}

// run.json of a run folder, checked for the fields every command writes.
nlohmann::json read_run_info(const std::string& dir) {
  const std::string path = dir + "/run.json";
  EXPECT_TRUE(fs::exists(path)) << path;
  if (!fs::exists(path)) return nlohmann::json::object();
  return nlohmann::json::parse(slurp(path));
}

void expect_run_info(const nlohmann::json& info, const std::string& command,
                     const std::string& status) {
  const std::regex iso("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ");
  ASSERT_TRUE(info.contains("command")) << info.dump();
  ASSERT_GE(info["command"].size(), 2u) << info.dump();
  EXPECT_EQ(info["command"][1], command) << info.dump();
  EXPECT_EQ(info.value("status", ""), status) << info.dump();
  EXPECT_FALSE(info.value("align_version", "").empty()) << info.dump();
  EXPECT_FALSE(info.value("libtorch", "").empty()) << info.dump();
  EXPECT_FALSE(info.value("cuda", "").empty()) << info.dump();
  EXPECT_EQ(info.value("device", ""), "cpu") << info.dump();
  EXPECT_TRUE(std::regex_match(info.value("started_at", ""), iso)) << info.dump();
  EXPECT_TRUE(std::regex_match(info.value("ended_at", ""), iso)) << info.dump();
  if (status == "failed") {
    EXPECT_FALSE(info.value("error", "").empty()) << info.dump();
  }
}

TEST(ReportCli, StandaloneSftRunShowsItsCurvesAndRunDetails) {
  ToyTask task;  // runs the real `align sft` into <dir>/sft
  const std::string dir = task.dir.file("sft");
  const nlohmann::json info = read_run_info(dir);
  expect_run_info(info, "sft", "finished");
  EXPECT_EQ(info["command"][3], task.dir.file("sft.json"));
  std::string out;
  ASSERT_EQ(run("report " + dir, &out), 0) << out;
  const std::string html = slurp(dir + "/report.html");
  EXPECT_EQ(html.find("not run"), std::string::npos);
  EXPECT_NE(html.find("<h2>SFT</h2>"), std::string::npos);
  EXPECT_EQ(html.find("<h2>Pipeline</h2>"), std::string::npos);
  EXPECT_EQ(html.find("<h2>DPO</h2>"), std::string::npos);
  EXPECT_EQ(html.find("<h2>Evaluation</h2>"), std::string::npos);
  EXPECT_NE(html.find("<td>sft</td>"), std::string::npos);
  // The curves: loss vs step and vs wall-clock time, learning rate, throughput and memory.
  for (const char* title :
       {">loss</text>", ">loss vs wall-clock time</text>", ">learning rate</text>",
        ">throughput (tokens_per_s)</text>", ">peak memory (GiB)</text>",
        ">elapsed_s (wall-clock seconds)</text>", ">peak_memory_rss</text>"})
    EXPECT_NE(html.find(title), std::string::npos) << title;
  EXPECT_EQ(html.find("in metrics.jsonl ("), std::string::npos);  // nothing reported missing
  // The run details, from run.json, and the resolved config in a <details>.
  EXPECT_NE(html.find("<h2>Run details</h2>"), std::string::npos);
  for (const char* key : {"align_version", "libtorch", "cuda", "started_at", "ended_at", "host"})
    EXPECT_NE(html.find("<td>" + info[key].get<std::string>() + "</td>"), std::string::npos) << key;
  EXPECT_NE(html.find("<td>cpu</td>"), std::string::npos);
  EXPECT_NE(html.find("<span class=\"better\">finished</span>"), std::string::npos);
  EXPECT_NE(html.find(" sft --config " + task.dir.file("sft.json") + "</code>"), std::string::npos);
  EXPECT_NE(html.find("<details><summary>resolved config (config.json)</summary>"),
            std::string::npos);
  EXPECT_NE(html.find("&quot;optimizer&quot;: {"), std::string::npos);

  // Without run.json (an older run) the kind still comes from the files, and the page says so.
  fs::remove(dir + "/run.json");
  ASSERT_EQ(run("report " + dir, &out), 0) << out;
  const std::string old = slurp(dir + "/report.html");
  EXPECT_NE(old.find("<h2>SFT</h2>"), std::string::npos);
  EXPECT_NE(old.find("no run.json"), std::string::npos);
  EXPECT_EQ(old.find("not run"), std::string::npos);

  // --print-config writes nothing.
  ASSERT_EQ(run("sft --config " + task.dir.file("sft.json") +
                    " --set output.dir=" + task.dir.file("printed") + " --print-config",
                &out),
            0)
      << out;
  EXPECT_FALSE(fs::exists(task.dir.file("printed") + "/run.json"));
}

TEST(ReportCli, DpoRunWithCheckpointEvalsMarksTheKeptStep) {
  TempDir tmp;
  const std::string model = tmp.file("model");
  ASSERT_EQ(run("init --preset tiny --tokenizer " + golden_path("tokenizer/main") + " --out " +
                model + " --seed 1 --dtype fp32"),
            0);
  auto config = [&](const std::string& name, const std::string& train) {
    const nlohmann::json c = {
        {"model", {{"path", model}, {"dtype", "fp32"}, {"device", "cpu"}}},
        {"data", {{"train", train}, {"format", "token"}, {"max_seq_len", 256}, {"batch_size", 2}}},
        {"optimizer", {{"lr", 5e-3}}},
        {"schedule", {{"type", "linear"}, {"warmup_steps", 1}, {"max_steps", 3}}},
        {"lora", {{"enabled", true}, {"rank", 4}, {"alpha", 8}}},
        {"output", {{"dir", tmp.file(name)}}}};
    write_text(tmp.file(name + ".json"), c.dump());
    return tmp.file(name + ".json");
  };
  std::string out;
  ASSERT_EQ(
      run("dpo --config " + config("dpo", source_path("examples/dpo/token_train.jsonl")), &out), 0)
      << out;
  const std::string dir = tmp.file("dpo");
  expect_run_info(read_run_info(dir), "dpo", "finished");
  // A bad data file: the run is recorded as failed, with the error.
  write_text(tmp.file("bad.jsonl"), "{\"prompt\": \n");
  EXPECT_EQ(run("dpo --config " + config("bad", tmp.file("bad.jsonl")), &out), 1) << out;
  expect_run_info(read_run_info(tmp.file("bad")), "dpo", "failed");

  // Checkpoint evals in the format `align dpo` writes them: evals/step-N/ and best.json.
  for (const auto& [step, value] : {std::pair{0, 0.5}, {20, 0.84}, {40, 0.76}, {60, 0.71}}) {
    const std::string at = dir + "/evals/step-" + std::to_string(step);
    write_eval(at, value, value - 0.04, value + 0.04, 0.9);
    const int correct = step == 0 ? 1 : 2;
    const nlohmann::json item = {
        {"id", "i1"},
        {"n", 2},
        {"correct", correct},
        {"samples",
         {{{"text", "at step " + std::to_string(step) + " <i>"},
           {"success", true},
           {"finish_reason", "stop"}},
          {{"text", "b"}, {"success", correct == 2}, {"finish_reason", "length"}}}}};
    write_text(at + "/results.jsonl", item.dump() + "\n");
  }
  write_text(dir + "/best.json", R"({"metric": "pass@1", "higher_is_better": true, "step": 20,
      "value": 0.84, "low": 0.80, "high": 0.88, "last_step": 60, "kept": true,
      "evals": [{"step": 0, "value": 0.5, "low": 0.46, "high": 0.54},
                {"step": 20, "value": 0.84, "low": 0.80, "high": 0.88},
                {"step": 40, "value": 0.76, "low": 0.72, "high": 0.80},
                {"step": 60, "value": 0.71, "low": 0.67, "high": 0.75}]})");
  ASSERT_EQ(run("report " + dir, &out), 0) << out;
  std::string html = slurp(dir + "/report.html");
  EXPECT_EQ(html.find("not run"), std::string::npos);
  EXPECT_NE(html.find("<h2>DPO</h2>"), std::string::npos);
  EXPECT_EQ(html.find("<h2>SFT</h2>"), std::string::npos);
  EXPECT_NE(html.find("<td>dpo</td>"), std::string::npos);
  EXPECT_NE(html.find(">reward margin (chosen - rejected)</text>"), std::string::npos);
  EXPECT_NE(html.find("step 20 kept (pass@1 0.84 [0.80, 0.88]); the last step 60 had 0.71"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find(">kept step 20</text>"), std::string::npos);
  EXPECT_EQ(count(html, "<line class=\"mark\""), 1u);
  EXPECT_EQ(count(html, "<line class=\"bar\""), 4u);  // one interval per evaluated step
  // The starting model's generations beside the kept step's.
  const size_t generations = html.find("<h3>Checkpoint generations</h3>");
  ASSERT_NE(generations, std::string::npos) << html;
  const size_t step0 = html.find("<div class=\"meta\">step 0: 1 of 2 correct</div>", generations);
  const size_t step20 = html.find("<div class=\"meta\">step 20: 2 of 2 correct</div>", generations);
  ASSERT_NE(step0, std::string::npos) << html;
  ASSERT_NE(step20, std::string::npos) << html;
  EXPECT_LT(step0, step20);
  EXPECT_NE(html.find("at step 20 &lt;i&gt;", step20), std::string::npos);
  EXPECT_EQ(html.find("at step 60"), std::string::npos);

  // Without best.json the evals still come from evals/step-N/summary.json (no mark).
  fs::remove(dir + "/best.json");
  ASSERT_EQ(run("report " + dir, &out), 0) << out;
  html = slurp(dir + "/report.html");
  EXPECT_EQ(count(html, "<line class=\"bar\""), 4u);
  EXPECT_EQ(count(html, "<line class=\"mark\""), 0u);
  EXPECT_EQ(html.find("clipped_ratio vs step"), std::string::npos);  // none recorded

  // With each eval's clipped_ratio and eval.max_clipped_ratio: a chart of them and the step passed
  // over (the best pass@1, but its samples stopped ending).
  write_text(dir + "/best.json", R"({"metric": "pass@1", "higher_is_better": true, "step": 20,
      "value": 0.84, "low": 0.80, "high": 0.88, "clipped_ratio": 0.05, "last_step": 60,
      "kept": true, "max_clipped_ratio": 0.2,
      "evals": [{"step": 0, "value": 0.5, "low": 0.46, "high": 0.54, "clipped_ratio": 0,
                 "eligible": true},
                {"step": 20, "value": 0.84, "low": 0.80, "high": 0.88, "clipped_ratio": 0.05,
                 "eligible": true},
                {"step": 40, "value": 0.9, "low": 0.86, "high": 0.94, "clipped_ratio": 0.5,
                 "eligible": false},
                {"step": 60, "value": 0.71, "low": 0.67, "high": 0.75, "clipped_ratio": 0.1,
                 "eligible": true}]})");
  ASSERT_EQ(run("report " + dir, &out), 0) << out;
  html = slurp(dir + "/report.html");
  EXPECT_NE(html.find(">completions/clipped_ratio vs step (samples cut at max_new_tokens)</text>"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("passed over: completions/clipped_ratio above 0.2 (eval.max_clipped_ratio) "
                      "at step 40 (0.500)"),
            std::string::npos)
      << html;
}

TEST(ReportCli, EvalFolderShowsEscapedSampleGenerations) {
  TempDir tmp;
  const std::string dir = tmp.file("ev");
  write_eval_folder(dir, tmp.file("items.jsonl"));
  std::string out;
  ASSERT_EQ(run("report " + dir + " --samples 2", &out), 0) << out;
  const std::string html = slurp(dir + "/report.html");
  EXPECT_NE(html.find("<h2>Sample generations</h2>"), std::string::npos);
  EXPECT_NE(html.find("<td>eval</td>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("<div class=\"prompt\">Say &lt;b&gt;hi&lt;/b&gt; &amp; go</div>"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("a1 &lt;script&gt;alert(0)&lt;/script&gt; &quot;q&quot;"), std::string::npos);
  EXPECT_NE(html.find("sample 1 \u00b7 success \u00b7 stop"), std::string::npos);
  EXPECT_NE(html.find("sample 2 \u00b7 failure \u00b7 length"), std::string::npos);
  // Bounded: 2 items, 4 samples each, the rest counted.
  EXPECT_EQ(count(html, "<div class=\"item\""), 2u);
  EXPECT_EQ(html.find("id=\"item-a3\""), std::string::npos);
  EXPECT_EQ(count(html, "<div class=\"gen "), 8u);
  EXPECT_EQ(count(html, "+2 more samples"), 2u);
  EXPECT_NE(html.find("<b>0.5</b> <span class=\"sub\">[0.2, 0.8]</span>"), std::string::npos);

  // A pipeline's before and after side by side, item by item.
  const std::string pipe = tmp.file("pipe");
  write_run(pipe, /*with_dpo=*/false);
  write_eval_folder(pipe + "/eval-before", tmp.file("items.jsonl"));
  write_eval_folder(pipe + "/eval-after", tmp.file("items.jsonl"));
  ASSERT_EQ(run("report " + pipe + " --samples 1", &out), 0) << out;
  const std::string page = slurp(pipe + "/report.html");
  EXPECT_EQ(count(page, "<div class=\"item\""), 1u);
  const size_t item = page.find("id=\"item-a1\"");
  ASSERT_NE(item, std::string::npos);
  const size_t before = page.find("<div class=\"meta\">before: 3 of 6 correct</div>", item);
  const size_t after = page.find("<div class=\"meta\">after: 3 of 6 correct</div>", item);
  EXPECT_NE(before, std::string::npos);
  EXPECT_NE(after, std::string::npos);
  EXPECT_LT(before, after);
}

TEST(ReportCli, RealEvalAndPtsRunsRecordTheirRunAndReport) {
  ToyTask task(/*run_sft=*/false);  // the base model only
  const std::string queries = task.queries("q", {"Ann", "Bob"});
  std::string out;
  // align eval on the base model.
  const nlohmann::json eval = {
      {"model", {{"path", task.dir.file("base")}, {"dtype", "fp32"}, {"device", "cpu"}}},
      {"data", {{"path", queries}}},
      {"oracle", task.oracle},
      {"sampling", {{"max_new_tokens", 6}, {"num_samples", 2}, {"seed", 1}}},
      {"output", {{"dir", task.dir.file("eval")}}}};
  write_text(task.dir.file("eval.json"), eval.dump());
  ASSERT_EQ(run("eval --config " + task.dir.file("eval.json"), &out), 0) << out;
  expect_run_info(read_run_info(task.dir.file("eval")), "eval", "finished");
  ASSERT_EQ(run("report " + task.dir.file("eval"), &out), 0) << out;
  std::string html = slurp(task.dir.file("eval") + "/report.html");
  EXPECT_NE(html.find("<div class=\"prompt\">Pick a side for Ann.</div>"), std::string::npos);
  EXPECT_EQ(count(html, "<div class=\"gen "), 4u);  // 2 items x 2 samples
  // A missing data file: into a new folder nothing is left behind (the command rejects it before
  // making the folder); into the existing folder the rerun is recorded as failed.
  ASSERT_EQ(run("eval --config " + task.dir.file("eval.json") + " --set data.path=" +
                    task.dir.file("nope.jsonl") + " --set output.dir=" + task.dir.file("eval-bad"),
                &out),
            1)
      << out;
  EXPECT_FALSE(fs::exists(task.dir.file("eval-bad")));
  ASSERT_EQ(run("eval --config " + task.dir.file("eval.json") + " --set data.path=" +
                    task.dir.file("nope.jsonl") + " --set output.dir=" + task.dir.file("eval"),
                &out),
            1)
      << out;
  expect_run_info(read_run_info(task.dir.file("eval")), "eval", "failed");

  // align pts on the base model (few rollouts).
  nlohmann::json extra = {{"model", {{"path", task.dir.file("base")}}},
                          {"sampling", {{"max_new_tokens", 6}}},
                          {"pts",
                           {{"completions_per_query", 1},
                            {"min_rollouts", 4},
                            {"rollout_step", 4},
                            {"max_rollouts", 8}}}};
  ASSERT_EQ(run("pts --config " + task.pts_config("pts", queries, extra), &out), 0) << out;
  expect_run_info(read_run_info(task.dir.file("pts")), "pts", "finished");
  ASSERT_EQ(run("report " + task.dir.file("pts"), &out), 0) << out;
  html = slurp(task.dir.file("pts") + "/report.html");
  EXPECT_NE(html.find("<h2>Pivotal Token Search</h2>"), std::string::npos);
  EXPECT_NE(html.find("<tr><td>queries</td><td>2</td></tr>"), std::string::npos) << html;
  EXPECT_EQ(html.find("not run"), std::string::npos);
  extra["data"] = {{"path", task.dir.file("nope.jsonl")}};
  extra["output"] = {{"dir", task.dir.file("pts")}};  // a rerun of the finished folder
  ASSERT_EQ(run("pts --config " + task.pts_config("pts-bad", queries, extra), &out), 1) << out;
  expect_run_info(read_run_info(task.dir.file("pts")), "pts", "failed");

  // align sft with a bad data file, and a pipeline whose sft data is missing: failed.
  ASSERT_EQ(run("sft --config " + task.dir.file("sft.json") + " --set data.train=" +
                    task.dir.file("nope.jsonl") + " --set output.dir=" + task.dir.file("sft-bad"),
                &out),
            1)
      << out;
  expect_run_info(read_run_info(task.dir.file("sft-bad")), "sft", "failed");
  const nlohmann::json pipeline = {
      {"run_dir", task.dir.file("pipe")},
      {"model", {{"path", task.dir.file("base")}, {"dtype", "fp32"}, {"device", "cpu"}}},
      {"oracle", task.oracle},
      {"stages", {"sft"}},
      {"sft", {{"data", {{"train", task.dir.file("broken.jsonl")}}}}}};
  // The pipeline's check reads the first lines of a data file; the fourth is broken.
  std::string broken;
  for (int i = 0; i < 3; ++i)
    broken += read_jsonl(task.dir.file("train.jsonl"))[static_cast<size_t>(i)].dump() + "\n";
  write_text(task.dir.file("broken.jsonl"), broken + "{\"messages\": [\n");
  write_text(task.dir.file("pipe.json"), pipeline.dump());
  ASSERT_NE(run("pipeline --config " + task.dir.file("pipe.json"), &out), 0) << out;
  expect_run_info(read_run_info(task.dir.file("pipe")), "pipeline", "failed");
}

TEST(ReportCli, TwoRunsSideBySideShareChartsAndColumns) {
  TempDir tmp;
  write_training_run(tmp.file("alpha"), 2.0, /*dpo=*/false);
  write_training_run(tmp.file("beta"), 3.0, /*dpo=*/false);
  const std::string page = tmp.file("cmp.html");
  std::string out;
  // Several runs need --output: the page belongs to none of them.
  EXPECT_EQ(run("report " + tmp.file("alpha") + " " + tmp.file("beta"), &out), 1) << out;
  EXPECT_NE(out.find("give --output"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(tmp.file("alpha") + "/report.html"));
  ASSERT_EQ(run("report " + tmp.file("alpha") + " " + tmp.file("beta") + " --output " + page, &out),
            0)
      << out;
  const std::string html = slurp(page);
  EXPECT_EQ(count(html, "<h2>SFT</h2>"), 1u);
  EXPECT_EQ(count(html, "<!DOCTYPE html>"), 1u);
  // Every chart has one line per run, named by the run, in the run's colour.
  const size_t loss = html.find(">loss</text>");
  ASSERT_NE(loss, std::string::npos);
  const std::string chart = html.substr(loss, html.find("</svg>", loss) - loss);
  EXPECT_NE(chart.find("<text class=\"legend\" x=\"76\" y=\"33\">alpha</text>"), std::string::npos)
      << chart;
  EXPECT_NE(chart.find(">beta</text>"), std::string::npos) << chart;
  EXPECT_EQ(count(chart, "<polyline"), 2u);
  EXPECT_NE(chart.find("stroke=\"#1f77b4\""), std::string::npos);
  EXPECT_NE(chart.find("stroke=\"#d62728\""), std::string::npos);
  // Tables: one column per run.
  EXPECT_NE(html.find("<tr><th>metrics.jsonl</th><th>alpha</th><th>beta</th></tr>"),
            std::string::npos);
  EXPECT_NE(html.find("<tr><td>last loss</td><td>0.5</td><td>0.75</td></tr>"), std::string::npos);
  EXPECT_NE(html.find("<tr><th></th><th>alpha</th><th>beta</th></tr>"), std::string::npos);
  EXPECT_NE(html.find("<details><summary>alpha: resolved config"), std::string::npos);
  EXPECT_NE(html.find("<details><summary>beta: resolved config"), std::string::npos);

  // Old metrics without elapsed_s or memory: the page says so instead of failing.
  write_text(tmp.file("beta") + "/metrics.jsonl", "{\"step\": 1, \"loss\": 2.0, \"lr\": 0.1}\n");
  ASSERT_EQ(run("report " + tmp.file("alpha") + " " + tmp.file("beta") + " --output " + page, &out),
            0)
      << out;
  const std::string old = slurp(page);
  EXPECT_NE(old.find("peak memory (GiB): no peak_memory_rss, peak_memory_alloc, "
                     "peak_memory_reserved in metrics.jsonl (beta)"),
            std::string::npos)
      << old;
  EXPECT_NE(old.find("loss vs wall-clock time: no loss, eval_loss with elapsed_s"),
            std::string::npos);
  const size_t lr = old.find(">learning rate</text>");
  ASSERT_NE(lr, std::string::npos);
  EXPECT_EQ(count(old.substr(lr, old.find("</svg>", lr) - lr), "<polyline"), 2u);  // lr and "lr"

  // A run with both loss and eval_loss names each "run · key", the second dashed.
  write_text(tmp.file("beta") + "/metrics.jsonl",
             "{\"step\": 1, \"loss\": 2.0, \"eval_loss\": 2.5}\n"
             "{\"step\": 2, \"loss\": 1.5, \"eval_loss\": 2.2}\n");
  ASSERT_EQ(run("report " + tmp.file("alpha") + " " + tmp.file("beta") + " --output " + page, &out),
            0)
      << out;
  const std::string both = slurp(page);
  const size_t at = both.find(">loss</text>");
  ASSERT_NE(at, std::string::npos);
  const std::string losses = both.substr(at, both.find("</svg>", at) - at);
  EXPECT_NE(losses.find(">alpha</text>"), std::string::npos) << losses;
  EXPECT_NE(losses.find(">beta \u00b7 loss</text>"), std::string::npos) << losses;
  EXPECT_NE(losses.find(">beta \u00b7 eval_loss</text>"), std::string::npos) << losses;
  EXPECT_EQ(count(losses, "<polyline"), 3u);
  EXPECT_EQ(count(losses, "<polyline fill=\"none\" stroke=\"#d62728\" stroke-dasharray"), 1u)
      << losses;
}

TEST(ReportCli, AFolderOfAnUnknownKindIsNamed) {
  TempDir tmp;
  const std::string dir = tmp.file("mystery");
  fs::create_directories(dir);
  write_text(dir + "/notes.txt", "hello\n");
  std::string out;
  EXPECT_EQ(run("report " + dir, &out), 1) << out;
  EXPECT_NE(out.find(dir + ": not a run folder of align"), std::string::npos) << out;
  EXPECT_NE(out.find("metrics.jsonl"), std::string::npos) << out;
  EXPECT_NE(out.find("results.jsonl"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir + "/report.html"));
}

// Renders the page in headless Chromium when it is installed (tools/check_report.sh installs it);
// skipped otherwise. A screenshot of a few KB or more means the page parsed and painted.
TEST(ReportCli, RendersInHeadlessChromium) {
  if (std::system("command -v chromium > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "chromium not installed (tools/check_report.sh installs it)";
  TempDir tmp;
  const std::string dir = tmp.file("run");
  write_run(dir, /*with_dpo=*/true);
  std::string out;
  ASSERT_EQ(run("report " + dir, &out), 0) << out;
  const std::string png = tmp.file("page.png");
  const std::string command = "chromium --headless --no-sandbox --disable-gpu --screenshot=" + png +
                              " --window-size=1200,2400 file://" + dir +
                              "/report.html > /dev/null 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0);
  ASSERT_TRUE(fs::exists(png));
  EXPECT_GT(fs::file_size(png), 20000u);

  // A side-by-side page of two training runs and an eval folder.
  write_training_run(tmp.file("alpha"), 2.0, /*dpo=*/false);
  write_training_run(tmp.file("beta"), 3.0, /*dpo=*/false);
  write_eval_folder(tmp.file("ev"), tmp.file("ev-items.jsonl"));
  const std::string page = tmp.file("cmp.html");
  ASSERT_EQ(run("report " + tmp.file("alpha") + " " + tmp.file("beta") + " " + tmp.file("ev") +
                    " --output " + page,
                &out),
            0)
      << out;
  const std::string png2 = tmp.file("cmp.png");
  const std::string command2 =
      "chromium --headless --no-sandbox --disable-gpu --screenshot=" + png2 +
      " --window-size=1200,2400 file://" + page + " > /dev/null 2>&1";
  EXPECT_EQ(std::system(command2.c_str()), 0);
  ASSERT_TRUE(fs::exists(png2));
  EXPECT_GT(fs::file_size(png2), 20000u);
}

}  // namespace
}  // namespace align::testing
