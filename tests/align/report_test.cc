// End-to-end tests of `align report`: a small run directory written here (metrics, eval summaries,
// PTS outputs with awkward token texts), the command run, and the page checked as text.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/align/cli_runner.h"

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
}

}  // namespace
}  // namespace align::testing
