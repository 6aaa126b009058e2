#include "align/report_sections.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

#include "align/report_charts.h"
#include "align/report_html.h"
#include "align/report_tokens.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "common/jsonl.h"

namespace align {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string not_run(const std::string& what) {
  return "<p class=\"missing\">not run (no " + html_escape(what) + ")</p>\n";
}

// A whole-file JSON object, or null when the file does not exist.
json read_object_if_exists(const std::string& path) {
  if (!fs::exists(path)) return nullptr;
  json j = read_json_file(path);
  if (!j.is_object()) throw InputError(path + ": expected a JSON object, got " + j.type_name());
  return j;
}

// Every numeric field of every line of a metrics.jsonl, as a series over "step".
std::map<std::string, std::vector<ChartPoint>> read_metrics(const std::string& path) {
  std::map<std::string, std::vector<ChartPoint>> series;
  for_each_jsonl(path, [&](const json& r, const JsonlLocation&) {
    if (!r.is_object()) throw InputError("expected a JSON object, got " + json_excerpt(r));
    if (!r.contains("step") || !r["step"].is_number())
      throw InputError("missing numeric field \"step\"");
    const double step = r["step"].get<double>();
    for (const auto& [key, value] : r.items())
      if (value.is_number() && key != "step") series[key].push_back({step, value.get<double>()});
  });
  return series;
}

struct ChartSpec {
  const char* title;
  std::vector<const char*> keys;
};

std::string training_charts(const std::string& path, const std::vector<ChartSpec>& specs) {
  const auto metrics = read_metrics(path);
  size_t steps = 0;
  if (auto it = metrics.find("loss"); it != metrics.end()) steps = it->second.size();
  std::string out =
      "<p class=\"sub\">" + html_escape(path) + ": " + std::to_string(steps) + " logged steps";
  for (const char* key : {"loss", "eval_loss"})
    if (auto it = metrics.find(key); it != metrics.end() && !it->second.empty())
      out += ", last " + std::string(key) + " " + format_number(it->second.back().y);
  out += "</p>\n<div class=\"charts\">\n";
  for (const ChartSpec& spec : specs) {
    std::vector<ChartSeries> series;
    for (const char* key : spec.keys)
      if (auto it = metrics.find(key); it != metrics.end()) series.push_back({key, it->second});
    if (!series.empty()) out += line_chart(spec.title, series);
  }
  return out + "</div>\n";
}

// A metric {"mean", "low", "high"} of an eval summary at `at` ("/pass@k/1"), or null.
json metric(const json& summary, const json::json_pointer& at) {
  if (!summary.is_object() || !summary.contains(at) || !summary[at].is_object()) return nullptr;
  return summary[at];
}

std::string metric_cell(const json& summary, const json::json_pointer& at) {
  if (summary.is_null()) return "<td class=\"missing\">not run</td>";
  const json v = metric(summary, at);
  if (v.is_null()) return "<td>\u2013</td>";
  std::string cell = "<td><b>" + format_number(v.value("mean", 0.0), 3) + "</b>";
  if (v.contains("low") && v.contains("high"))
    cell += " <span class=\"sub\">[" + format_number(v["low"].get<double>(), 3) + ", " +
            format_number(v["high"].get<double>(), 3) + "]</span>";
  return cell + "</td>";
}

// One before/after row with the difference, green when it is an improvement.
std::string metric_row(const std::string& label, const json& before, const json& after,
                       const json::json_pointer& at, bool higher_is_better) {
  auto mean = [&](const json& summary) {
    const json v = metric(summary, at);
    return v.is_null() ? std::nan("") : v.value("mean", std::nan(""));
  };
  const double d = mean(after) - mean(before);
  const bool better = higher_is_better ? d > 0 : d < 0;
  const bool worse = higher_is_better ? d < 0 : d > 0;
  return "<tr><td>" + html_escape(label) + "</td>" + metric_cell(before, at) +
         metric_cell(after, at) + "<td class=\"" +
         (better  ? "better"
          : worse ? "worse"
                  : "") +
         "\">" + (d > 0 ? "+" : "") + format_number(d, 3) + "</td></tr>\n";
}

std::string plain_cell(const json& summary, const char* key) {
  if (summary.is_null()) return "<td class=\"missing\">not run</td>";
  if (!summary.contains(key) || !summary[key].is_primitive()) return "<td>\u2013</td>";
  const json& v = summary[key];
  const std::string text = v.is_number()   ? format_number(v.get<double>())
                           : v.is_string() ? v.get<std::string>()
                                           : v.dump();
  return "<td>" + html_escape(text) + "</td>";
}

// The evaluation summary of one side: eval-<side>/summary.json, else summary.json's eval.<side>.
json eval_summary(const std::string& run_dir, const std::string& side) {
  json s = read_object_if_exists(run_dir + "/eval-" + side + "/summary.json");
  if (!s.is_null()) return s;
  const json top = read_object_if_exists(run_dir + "/summary.json");
  if (top.is_object() && top.contains("eval") && top["eval"].is_object() &&
      top["eval"].contains(side))
    return top["eval"][side];
  return nullptr;
}

}  // namespace

std::string pipeline_section(const std::string& run_dir) {
  std::string out = "<h2>Pipeline</h2>\n";
  const json s = read_object_if_exists(run_dir + "/summary.json");
  if (!s.is_object()) return out + "<p class=\"missing\">no summary.json</p>\n";
  const json stages = s.value("stages", json::array());
  out += "<table><tr><th>stage</th><th>status</th><th>seconds</th></tr>\n";
  for (const auto& stage : stages) {
    if (!stage.is_object()) continue;
    out += "<tr><td>" + html_escape(stage.value("name", "?")) + "</td><td>" +
           html_escape(stage.value("status", "")) + "</td><td>" +
           format_number(stage.value("seconds", 0.0)) + "</td></tr>\n";
  }
  out += "</table>\n";
  if (s.contains("pairs") && s["pairs"].is_number())
    out += "<p>preference pairs: " + format_number(s["pairs"].get<double>(), 10) + "</p>\n";
  return out;
}

std::string sft_section(const std::string& run_dir) {
  const std::string path = run_dir + "/sft/metrics.jsonl";
  std::string out = "<h2>SFT</h2>\n";
  if (!fs::exists(path)) return out + not_run("sft/metrics.jsonl");
  return out + training_charts(path, {{"loss", {"loss", "eval_loss"}},
                                      {"gradient norm", {"grad_norm"}},
                                      {"learning rate", {"learning_rate", "lr"}}});
}

std::string dpo_section(const std::string& run_dir) {
  const std::string path = run_dir + "/dpo/metrics.jsonl";
  std::string out = "<h2>DPO</h2>\n";
  if (!fs::exists(path)) return out + not_run("dpo/metrics.jsonl");
  return out + training_charts(
                   path, {{"loss", {"loss", "eval_loss"}},
                          {"reward margin (chosen - rejected)",
                           {"rewards/margins", "eval_rewards/margins"}},
                          {"reward accuracy", {"rewards/accuracies", "eval_rewards/accuracies"}},
                          {"log-probs: chosen vs rejected", {"logps/chosen", "logps/rejected"}}});
}

std::string eval_section(const std::string& run_dir) {
  std::string out = "<h2>Evaluation</h2>\n";
  const json before = eval_summary(run_dir, "before");
  const json after = eval_summary(run_dir, "after");
  if (before.is_null() && after.is_null())
    return out + not_run("eval-before/summary.json or eval-after/summary.json");
  std::vector<std::string> ks;
  for (const json* s : {&before, &after})
    if (s->is_object() && s->contains("pass@k") && (*s)["pass@k"].is_object())
      for (const auto& [k, v] : (*s)["pass@k"].items())
        if (std::find(ks.begin(), ks.end(), k) == ks.end()) ks.push_back(k);
  std::sort(ks.begin(), ks.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  out += "<table><tr><th>metric</th><th>before</th><th>after</th><th>\u0394</th></tr>\n";
  for (const std::string& k : ks)
    out += metric_row("pass@" + k, before, after, json::json_pointer("/pass@k/" + k), true);
  // The oracle's own rates (eval/oracle_rates.h), each with its direction (the safety oracle:
  // refusing harmful requests is good, refusing benign ones is not).
  std::vector<std::string> seen;
  for (const json* s : {&before, &after}) {
    if (!s->is_object() || !s->contains("oracle_rates")) continue;
    for (const json& rate : s->at("oracle_rates")) {
      const std::string key = rate.value("key", "");
      if (key.empty() || std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
      seen.push_back(key);
      out += metric_row(rate.value("label", key), before, after, json::json_pointer("/" + key),
                        rate.value("higher_is_better", true));
    }
  }
  for (const char* key : {"items", "num_samples", "mean_tokens", "seconds", "oracle"})
    out += std::string("<tr><td>") + key + "</td>" + plain_cell(before, key) +
           plain_cell(after, key) + "<td></td></tr>\n";
  return out + "</table>\n<p class=\"sub\">mean over items with its interval [low, high]; " +
         "\u0394 = after \u2212 before, green when better.</p>\n";
}

// The prompt of each PTS query by id, from the query file named in RUN_DIR/pts/config.json
// ("prompt", or the last user message of "messages"); empty when that file is not readable from
// here (its path is as the run was given it).
std::map<std::string, std::string> pts_prompts(const std::string& run_dir) {
  std::map<std::string, std::string> prompts;
  const json config = read_object_if_exists(run_dir + "/pts/config.json");
  if (config.is_null() || !config.contains("data") || !config["data"].contains("path")) {
    return prompts;
  }
  const std::string path = config["data"]["path"].get<std::string>();
  if (!fs::exists(path)) return prompts;
  for_each_jsonl(path, [&](const json& r, const JsonlLocation& where) {
    if (!r.is_object()) return;
    std::string id = "line-" + std::to_string(where.line);
    if (r.contains("id")) id = r["id"].is_string() ? r["id"].get<std::string>() : r["id"].dump();
    if (r.contains("prompt") && r["prompt"].is_string()) {
      prompts[id] = r["prompt"].get<std::string>();
    } else if (r.contains("messages") && r["messages"].is_array()) {
      for (const json& m : r["messages"])
        if (m.is_object() && m.value("role", "") == "user" && m.contains("content") &&
            m["content"].is_string())
          prompts[id] = m["content"].get<std::string>();
    }
  });
  return prompts;
}

std::string pts_section(const std::string& run_dir, int64_t completions) {
  std::string out = "<h2>Pivotal Token Search</h2>\n";
  const std::string queries = run_dir + "/pts/queries.jsonl";
  if (!fs::exists(queries)) return out + not_run("pts/queries.jsonl");
  const char* fields[] = {"completions_analysed", "pivots", "pivots_dropped", "pairs", "rollouts",
                          "tokens_generated"};
  std::map<std::string, double> totals;
  int64_t n = 0, kept = 0;
  for_each_jsonl(queries, [&](const json& r, const JsonlLocation&) {
    ++n;
    if (r.value("kept", false)) ++kept;
    for (const char* f : fields)
      if (r.contains(f) && r[f].is_number()) totals[f] += r[f].get<double>();
  });
  // Wall time: the batches' elapsed_s (a query's own "seconds" counts from its batch's start,
  // so summing those would count shared time several times).
  double seconds = 0;
  const std::string metrics = run_dir + "/pts/metrics.jsonl";
  if (fs::exists(metrics)) {
    for_each_jsonl(metrics, [&](const json& r, const JsonlLocation&) {
      if (r.contains("elapsed_s") && r["elapsed_s"].is_number())
        seconds += r["elapsed_s"].get<double>();
    });
  }
  out += "<table><tr><th>queries</th><th>kept</th>";
  for (const char* f : fields)
    out += std::string("<th>") + f + "</th>";
  out += "<th>seconds</th></tr>\n<tr><td>" + std::to_string(n) + "</td><td>" +
         std::to_string(kept) + "</td>";
  for (const char* f : fields)
    out += "<td>" + format_number(totals[f], 10) + "</td>";
  out += "<td>" + format_number(seconds, 4) + "</td></tr></table>\n";

  const std::string path = run_dir + "/pts/completions.jsonl";
  out += "<h3>Analysed completions</h3>\n";
  if (!fs::exists(path)) return out + not_run("pts/completions.jsonl");
  std::vector<ShownCompletion> shown;
  for_each_jsonl(path, [&](const json& r, const JsonlLocation&) {
    if (static_cast<int64_t>(shown.size()) < completions)
      shown.push_back(parse_shown_completion(r));
  });
  const std::map<std::string, std::string> prompts = pts_prompts(run_dir);
  for (ShownCompletion& c : shown) {
    const auto it = prompts.find(c.query_id);
    if (it != prompts.end()) c.prompt = it->second;
  }
  out += "<p class=\"sub\">The first " + std::to_string(shown.size()) + " of " + path +
         "; each token is coloured by the estimated p(success) after it.</p>\n";
  out += token_legend_html();
  for (const ShownCompletion& c : shown)
    out += token_view_html(c);
  return out;
}

std::string build_report(const ReportOptions& options) {
  const std::string& dir = options.run_dir;
  if (!fs::is_directory(dir)) throw InputError("run directory not found: " + dir);
  std::string body = "<h1>align report</h1>\n<p class=\"sub\">" + html_escape(dir) + "</p>\n";
  try {
    body += pipeline_section(dir);
    body += sft_section(dir);
    body += eval_section(dir);
    body += pts_section(dir, options.completions);
    body += dpo_section(dir);
  } catch (const json::exception& e) {  // a field of a summary.json with the wrong type
    throw InputError(dir + ": unexpected summary contents: " + e.what());
  }
  return html_page("align report: " + fs::path(dir).filename().string(), body);
}

}  // namespace align
