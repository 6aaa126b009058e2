#include "align/report_sections.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "align/report_charts.h"
#include "align/report_html.h"
#include "align/report_tokens.h"
#include "common/error.h"
#include "common/jsonl.h"

namespace align {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string not_run(const std::string& what) {
  return "<p class=\"missing\">not run (no " + html_escape(what) + ")</p>\n";
}

// "<th></th><th>run a</th>..." for a table with one column per run (headed `first`).
std::string run_header(const std::string& first, const std::vector<const ReportRun*>& runs,
                       const std::string& single = "") {
  std::string out = "<tr><th>" + html_escape(first) + "</th>";
  for (const ReportRun* r : runs)
    out += "<th>" + html_escape(runs.size() == 1 && !single.empty() ? single : r->name) + "</th>";
  return out + "</tr>\n";
}

std::string text_of(const json& v) {
  if (v.is_null()) return "\u2013";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return format_number(v.get<double>(), 6);
  return v.dump();
}

// Seconds since the epoch of "YYYY-MM-DDTHH:MM:SSZ", or -1.
double parse_utc(const std::string& text) {
  std::tm tm{};
  int y, mo, d, h, mi, s;
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &s) != 6) return -1;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<double>(::timegm(&tm));
}

std::string config_details(const std::string& label, const std::string& path) {
  const json config = read_object_if_exists(path);
  if (config.is_null()) return "";
  return "<details><summary>" + html_escape(label) + "</summary>\n<pre class=\"config\">" +
         html_escape(config.dump(2, ' ', false, json::error_handler_t::replace)) +
         "</pre></details>\n";
}

struct ChartSpec {
  const char* title;
  std::vector<std::string> keys;  // "learning_rate|lr": the first one a run logs
  std::string x_key = "step";
  std::string x_label = "step";
};

std::string pick_key(const MetricsLog& log, const std::string& alternates) {
  size_t begin = 0;
  while (true) {
    const size_t bar = alternates.find('|', begin);
    const std::string key = alternates.substr(begin, bar - begin);
    if (log.has(key) || bar == std::string::npos) return key;
    begin = bar + 1;
  }
}

struct RunMetrics {
  const ReportRun* run;
  MetricsLog log;
};

std::string chart(const ChartSpec& spec, const std::vector<RunMetrics>& logs, std::string* notes) {
  const bool several = logs.size() > 1;
  std::vector<ChartSeries> series;
  std::vector<std::string> lacking;
  for (const RunMetrics& m : logs) {
    bool any = false;
    // With several runs a series is named by its run, and by "run · key" when the run has more
    // than one of the chart's keys.
    size_t present = 0;
    for (const std::string& keys : spec.keys)
      present += m.log.series(spec.x_key, pick_key(m.log, keys)).empty() ? 0 : 1;
    for (size_t k = 0; k < spec.keys.size(); ++k) {
      const std::string key = pick_key(m.log, spec.keys[k]);
      ChartSeries s;
      s.points = m.log.series(spec.x_key, key);
      if (s.points.empty()) continue;
      any = true;
      s.name = !several ? key : present > 1 ? m.run->name + " \u00b7 " + key : m.run->name;
      if (several) {
        s.color = m.run->index;
        s.dashed = k > 0;
      }
      series.push_back(std::move(s));
    }
    if (!any) lacking.push_back(m.run->name);
  }
  if (!lacking.empty()) {
    std::string keys;
    for (const std::string& k : spec.keys)
      keys += (keys.empty() ? "" : ", ") + k;
    if (spec.x_key != "step") keys += " with " + spec.x_key;
    std::string who;
    if (several)
      for (const std::string& n : lacking)
        who += (who.empty() ? " (" : ", ") + n;
    if (!who.empty()) who += ")";
    *notes += "<p class=\"missing\">" + html_escape(spec.title) + ": no " + html_escape(keys) +
              " in metrics.jsonl" + html_escape(who) +
              " (written by an align that did not log it)</p>\n";
  }
  if (series.empty()) return "";
  ChartOptions options;
  options.x_label = spec.x_label;
  return line_chart(spec.title, series, options);
}

// Sample completions of GRPO's first, middle and last generations (completions/step-N.jsonl):
// the first `samples` rollouts of each, with the prompt, rewards and advantage.
std::string grpo_completions(const std::vector<ReportRun>& runs, int64_t samples) {
  std::string out;
  for (const ReportRun& r : runs) {
    const std::string dir = r.stage_dir("grpo") + "/completions";
    if (r.stage_dir("grpo").empty() || !fs::is_directory(dir)) continue;
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".jsonl") files.push_back(e.path().string());
    if (files.empty()) continue;
    std::sort(files.begin(), files.end());
    std::vector<std::string> shown = {files.front()};
    if (files.size() > 2) shown.push_back(files[files.size() / 2]);
    if (files.size() > 1) shown.push_back(files.back());
    if (runs.size() > 1) out += "<h4>" + html_escape(r.name) + "</h4>\n";
    for (const std::string& path : shown) {
      const std::string step = fs::path(path).stem().string();
      out += "<div class=\"item\"><div class=\"meta\">" + html_escape(step) +
             " (the generation first trained on at that step)</div>\n";
      std::string prompt;
      int64_t n = 0;
      for_each_jsonl(path, [&](const json& c, const JsonlLocation&) {
        if (n++ >= samples) return;
        const std::string p = c.value("prompt", "");
        if (p != prompt) {
          prompt = p;
          out += "<div class=\"prompt\">" + html_escape(c.value("query_id", "")) + ": " +
                 html_escape(p) + "</div>\n";
        }
        const double advantage = c.value("advantage", 0.0);
        std::string rewards;
        const json named = c.value("rewards", json::object());
        for (const auto& [name, v] : named.items())
          rewards += ", " + name + " " + format_number(v.is_number() ? v.get<double>() : 0.0);
        out += std::string("<div class=\"gen") +
               (advantage > 0   ? " ok"
                : advantage < 0 ? " fail"
                                : "") +
               "\"><div class=\"meta\">reward " + format_number(c.value("reward", 0.0)) +
               html_escape(rewards) + "; advantage " + format_number(advantage) + "; " +
               html_escape(c.value("finish_reason", "")) + "</div><div class=\"text\">" +
               html_escape(c.value("completion", "")) + "</div></div>\n";
      });
      out += "</div>\n";
    }
  }
  if (out.empty()) return "";
  return "<h3>Sample completions</h3>\n<p class=\"sub\">The first " + std::to_string(samples) +
         " completions of the first, middle and last generations (green: advantage above the "
         "group's mean, red: below).</p>\n" +
         out;
}

std::string stat_row(const std::string& label, const std::vector<RunMetrics>& logs,
                     double (*value)(const MetricsLog&), int digits = 4) {
  std::string out = "<tr><td>" + html_escape(label) + "</td>";
  for (const RunMetrics& m : logs)
    out += "<td>" + format_number(value(m.log), digits) + "</td>";
  return out + "</tr>\n";
}

}  // namespace

std::string runs_section(const std::vector<ReportRun>& runs) {
  std::string out = "<table class=\"runs\"><tr><th>run</th><th>kind</th><th>folder</th></tr>\n";
  for (const ReportRun& r : runs)
    out += "<tr><td><span class=\"key\" style=\"background:" + chart_color(r.index) +
           "\"></span> " + html_escape(r.name) + "</td><td>" + run_kind_name(r.kind) + "</td><td>" +
           html_escape(r.dir) + "</td></tr>\n";
  return out + "</table>\n";
}

std::string details_section(const std::vector<ReportRun>& runs) {
  std::string out = "<h2>Run details</h2>\n";
  std::vector<const ReportRun*> all;
  std::vector<json> infos;
  for (const ReportRun& r : runs) {
    all.push_back(&r);
    infos.push_back(read_object_if_exists(r.dir + "/run.json"));
  }
  out += "<table class=\"details\">" + run_header("", all, "value");
  auto row = [&](const std::string& label, const auto& cell) {
    out += "<tr><td>" + html_escape(label) + "</td>";
    for (size_t i = 0; i < runs.size(); ++i)
      out += "<td>" + cell(runs[i], infos[i]) + "</td>";
    out += "</tr>\n";
  };
  auto field = [](const char* key) {
    return [key](const ReportRun&, const json& info) -> std::string {
      if (!info.is_object()) return "<span class=\"missing\">no run.json</span>";
      return html_escape(info.contains(key) ? text_of(info[key]) : "\u2013");
    };
  };
  row("kind", [](const ReportRun& r, const json&) { return std::string(run_kind_name(r.kind)); });
  row("status", [](const ReportRun&, const json& info) -> std::string {
    if (!info.is_object()) return "<span class=\"missing\">no run.json</span>";
    const std::string s = info.value("status", "");
    const char* cls = s == "finished" ? "better" : s == "failed" ? "worse" : "";
    return "<span class=\"" + std::string(cls) + "\">" + html_escape(s) + "</span>";
  });
  row("command", [](const ReportRun&, const json& info) -> std::string {
    if (!info.is_object() || !info.contains("command") || !info["command"].is_array())
      return "<span class=\"missing\">no run.json</span>";
    std::string line;
    for (const json& a : info["command"])
      line += (line.empty() ? "" : " ") + text_of(a);
    return "<code>" + html_escape(line) + "</code>";
  });
  row("align version", field("align_version"));
  row("LibTorch", field("libtorch"));
  row("CUDA", field("cuda"));
  row("device", field("device"));
  row("host", field("host"));
  row("started (UTC)", field("started_at"));
  row("ended (UTC)", field("ended_at"));
  row("duration", [](const ReportRun&, const json& info) -> std::string {
    if (!info.is_object()) return "\u2013";
    const double a = parse_utc(info.value("started_at", "")),
                 b = parse_utc(info.value("ended_at", ""));
    return a < 0 || b < 0 ? "\u2013" : format_number(b - a, 6) + " s";
  });
  bool any_error = false;
  for (const json& info : infos)
    any_error = any_error || (info.is_object() && info.contains("error"));
  if (any_error) row("error", field("error"));
  out += "</table>\n";
  bool no_info = false;
  for (const json& info : infos)
    no_info = no_info || !info.is_object();
  if (no_info)
    out +=
        "<p class=\"sub\">no run.json: the run was made by an align older than run.json, or "
        "it is a stage of a pipeline (the pipeline's folder has it).</p>\n";
  // The resolved configs: the run's own, or each stage's for a pipeline.
  for (const ReportRun& r : runs) {
    const std::string prefix = runs.size() > 1 ? r.name + ": " : "";
    if (r.kind != RunKind::kPipeline) {
      out += config_details(prefix + "resolved config (config.json)", r.dir + "/config.json");
      continue;
    }
    for (const char* stage : {"sft", "eval-before", "pts", "dpo", "grpo", "eval-after"})
      out += config_details(prefix + stage + " resolved config (" + stage + "/config.json)",
                            r.dir + "/" + stage + "/config.json");
  }
  return out;
}

std::string pipeline_section(const std::vector<ReportRun>& runs) {
  std::vector<const ReportRun*> pipelines;
  for (const ReportRun& r : runs)
    if (r.kind == RunKind::kPipeline) pipelines.push_back(&r);
  if (pipelines.empty()) return "";
  std::string out = "<h2>Pipeline</h2>\n";
  const bool several = pipelines.size() > 1;
  std::vector<json> summaries;
  std::vector<std::string> stage_names;
  std::map<std::string, json> by_stage;  // "<run index>/<stage>" -> stage
  for (size_t i = 0; i < pipelines.size(); ++i) {
    summaries.push_back(read_object_if_exists(pipelines[i]->dir + "/summary.json"));
    const json& s = summaries.back();
    if (!s.is_object()) continue;
    for (const json& stage : s.value("stages", json::array())) {
      if (!stage.is_object()) continue;
      const std::string name = stage.value("name", "?");
      if (std::find(stage_names.begin(), stage_names.end(), name) == stage_names.end())
        stage_names.push_back(name);
      by_stage[std::to_string(i) + "/" + name] = stage;
    }
  }
  out += "<table><tr><th>stage</th>";
  for (const ReportRun* r : pipelines)
    out += several ? "<th>" + html_escape(r->name) + " status</th><th>" + html_escape(r->name) +
                         " seconds</th>"
                   : std::string("<th>status</th><th>seconds</th>");
  out += "</tr>\n";
  for (const std::string& name : stage_names) {
    out += "<tr><td>" + html_escape(name) + "</td>";
    for (size_t i = 0; i < pipelines.size(); ++i) {
      const auto it = by_stage.find(std::to_string(i) + "/" + name);
      if (it == by_stage.end()) {
        out += "<td class=\"missing\">\u2013</td><td></td>";
        continue;
      }
      out += "<td>" + html_escape(it->second.value("status", "")) + "</td><td>" +
             format_number(it->second.value("seconds", 0.0)) + "</td>";
    }
    out += "</tr>\n";
  }
  out += "</table>\n";
  for (size_t i = 0; i < pipelines.size(); ++i) {
    const json& s = summaries[i];
    if (!s.is_object())
      out += "<p class=\"missing\">" + html_escape(several ? pipelines[i]->name + ": " : "") +
             "no summary.json</p>\n";
    else if (s.contains("pairs") && s["pairs"].is_number())
      out += "<p>" + html_escape(several ? pipelines[i]->name + ": " : "") +
             "preference pairs: " + format_number(s["pairs"].get<double>(), 10) + "</p>\n";
  }
  return out;
}

std::string training_section(const std::vector<ReportRun>& runs, const std::string& stage,
                             int64_t samples) {
  const bool dpo = stage == "dpo", grpo = stage == "grpo";
  std::string out = dpo ? "<h2>DPO</h2>\n" : grpo ? "<h2>GRPO</h2>\n" : "<h2>SFT</h2>\n";
  std::vector<RunMetrics> logs;
  std::string missing;
  bool any = false;
  for (const ReportRun& r : runs) {
    const std::string dir = r.stage_dir(stage);
    if (dir.empty()) continue;
    // GRPO is not a default stage: a pipeline that did not list it has no section for it.
    if (grpo && r.kind == RunKind::kPipeline && !fs::exists(dir)) continue;
    any = true;
    const std::string path = dir + "/metrics.jsonl";
    if (!fs::exists(path)) {
      const std::string what = r.stage_file(stage, "metrics.jsonl");
      missing += runs.size() > 1 ? "<p class=\"missing\">" + html_escape(r.name) +
                                       ": not run (no " + html_escape(what) + ")</p>\n"
                                 : not_run(what);
      continue;
    }
    logs.push_back({&r, read_metrics(path)});
  }
  if (!any) return "";
  out += missing;
  if (logs.empty()) return out;

  std::vector<const ReportRun*> shown;
  for (const RunMetrics& m : logs)
    shown.push_back(m.run);
  out += "<table>" + run_header("metrics.jsonl", shown, "value");
  out += stat_row("logged steps", logs, [](const MetricsLog& l) {
    return static_cast<double>(l.series("step", "loss").size());
  });
  out += stat_row(
      "last step", logs, [](const MetricsLog& l) { return l.last("step"); }, 10);
  out += stat_row("last loss", logs, [](const MetricsLog& l) { return l.last("loss"); });
  out += stat_row("last eval_loss", logs, [](const MetricsLog& l) { return l.last("eval_loss"); });
  if (dpo)
    out += stat_row("last rewards/accuracies", logs,
                    [](const MetricsLog& l) { return l.last("rewards/accuracies"); });
  if (grpo) {
    out += stat_row("last reward", logs, [](const MetricsLog& l) { return l.last("reward"); });
    out += stat_row(
        "completion tokens sampled", logs,
        [](const MetricsLog& l) { return l.last("num_completion_tokens"); }, 10);
  }
  out += stat_row("wall-clock seconds (last elapsed_s)", logs,
                  [](const MetricsLog& l) { return l.last("elapsed_s"); });
  out += stat_row("mean tokens_per_s", logs, [](const MetricsLog& l) {
    const std::vector<ChartPoint> p = l.series("step", "tokens_per_s");
    double sum = 0;
    for (const ChartPoint& q : p)
      sum += q.y;
    return p.empty() ? std::nan("") : sum / static_cast<double>(p.size());
  });
  out += stat_row("peak_memory_rss (GiB)", logs,
                  [](const MetricsLog& l) { return l.last("peak_memory_rss"); });
  out += "</table>\n";

  std::vector<ChartSpec> specs = {{"loss", {"loss", "eval_loss"}}};
  if (dpo) {
    specs.push_back(
        {"reward margin (chosen - rejected)", {"rewards/margins", "eval_rewards/margins"}});
    specs.push_back({"reward accuracy", {"rewards/accuracies", "eval_rewards/accuracies"}});
    specs.push_back({"log-probs: chosen vs rejected", {"logps/chosen", "logps/rejected"}});
  }
  if (grpo) {
    specs.push_back({"reward (mean over each generation)", {"reward", "eval_pass@1"}});
    specs.push_back({"completion length", {"completions/mean_length"}});
    specs.push_back(
        {"clip ratios", {"clip_ratio/region_mean", "clip_ratio/low_mean", "clip_ratio/high_mean"}});
    bool kl = false;  // logged with beta > 0 only
    for (const RunMetrics& m : logs)
      kl = kl || m.log.has("kl");
    if (kl) specs.push_back({"KL to the reference", {"kl"}});
    specs.push_back({"entropy", {"entropy"}});
  }
  specs.push_back({"gradient norm", {"grad_norm"}});
  specs.push_back({"learning rate", {"learning_rate|lr"}});
  specs.push_back({"loss vs wall-clock time",
                   {"loss", "eval_loss"},
                   "elapsed_s",
                   "elapsed_s (wall-clock seconds)"});
  specs.push_back({"throughput (tokens_per_s)", {"tokens_per_s"}});
  specs.push_back(
      {"peak memory (GiB)", {"peak_memory_rss", "peak_memory_alloc", "peak_memory_reserved"}});
  std::string notes;
  out += "<div class=\"charts\">\n";
  for (const ChartSpec& spec : specs)
    out += chart(spec, logs, &notes);
  out += "</div>\n" + notes;
  if (dpo || grpo) out += checkpoint_evals_section(runs, samples, stage);
  if (grpo) out += grpo_completions(runs, samples);
  return out;
}

std::string pts_section(const std::vector<ReportRun>& runs, int64_t completions) {
  std::vector<const ReportRun*> with;
  for (const ReportRun& r : runs)
    if (!r.stage_dir("pts").empty()) with.push_back(&r);
  if (with.empty()) return "";
  const bool several = runs.size() > 1;
  std::string out = "<h2>Pivotal Token Search</h2>\n";
  const char* fields[] = {"completions_analysed", "pivots", "pivots_dropped", "pairs", "rollouts",
                          "tokens_generated"};
  std::vector<const ReportRun*> shown;
  std::vector<std::map<std::string, double>> totals;
  for (const ReportRun* r : with) {
    const std::string dir = r->stage_dir("pts");
    if (!fs::exists(dir + "/queries.jsonl")) {
      const std::string what = r->stage_file("pts", "queries.jsonl");
      out += several ? "<p class=\"missing\">" + html_escape(r->name) + ": not run (no " +
                           html_escape(what) + ")</p>\n"
                     : not_run(what);
      continue;
    }
    std::map<std::string, double> t;
    for_each_jsonl(dir + "/queries.jsonl", [&](const json& q, const JsonlLocation&) {
      t["queries"] += 1;
      if (q.value("kept", false)) t["kept"] += 1;
      for (const char* f : fields)
        if (q.contains(f) && q[f].is_number()) t[f] += q[f].get<double>();
    });
    // Wall time: the batches' elapsed_s (a query's own "seconds" counts from its batch's start,
    // so summing those would count shared time several times).
    if (fs::exists(dir + "/metrics.jsonl"))
      for_each_jsonl(dir + "/metrics.jsonl", [&](const json& m, const JsonlLocation&) {
        if (m.contains("elapsed_s") && m["elapsed_s"].is_number())
          t["seconds"] += m["elapsed_s"].get<double>();
      });
    shown.push_back(r);
    totals.push_back(std::move(t));
  }
  if (!shown.empty()) {
    out += "<table>" + run_header("total", shown, "value");
    std::vector<std::string> rows = {"queries", "kept"};
    rows.insert(rows.end(), std::begin(fields), std::end(fields));
    rows.push_back("seconds");
    for (const std::string& row : rows) {
      out += "<tr><td>" + row + "</td>";
      for (auto& t : totals)
        out += "<td>" + format_number(t[row], row == "seconds" ? 4 : 10) + "</td>";
      out += "</tr>\n";
    }
    out += "</table>\n";
  }
  for (const ReportRun* r : shown) {
    const std::string dir = r->stage_dir("pts");
    const std::string path = dir + "/completions.jsonl";
    out +=
        "<h3>Analysed completions" + (several ? " \u2014 " + html_escape(r->name) : "") + "</h3>\n";
    if (!fs::exists(path)) {
      out += not_run(r->stage_file("pts", "completions.jsonl"));
      continue;
    }
    std::vector<ShownCompletion> list;
    for_each_jsonl(path, [&](const json& c, const JsonlLocation&) {
      if (static_cast<int64_t>(list.size()) < completions)
        list.push_back(parse_shown_completion(c));
    });
    const std::map<std::string, std::string> prompts = prompts_from_config(dir + "/config.json");
    for (ShownCompletion& c : list) {
      const auto it = prompts.find(c.query_id);
      if (it != prompts.end()) c.prompt = it->second;
    }
    out += "<p class=\"sub\">The first " + std::to_string(list.size()) + " of " +
           html_escape(path) +
           "; each token is coloured by the estimated p(success) after it.</p>\n";
    out += token_legend_html();
    for (const ShownCompletion& c : list)
      out += token_view_html(c);
  }
  return out;
}

std::string build_report(const ReportOptions& options) {
  if (options.run_dirs.empty()) throw InputError("align report: no run directory given");
  const std::vector<ReportRun> runs = open_runs(options.run_dirs);
  std::string title;
  for (const ReportRun& r : runs)
    title += (title.empty() ? "" : " vs ") + r.name;
  std::string body = "<h1>align report</h1>\n";
  try {
    body += runs_section(runs);
    body += details_section(runs);
    body += pipeline_section(runs);
    body += training_section(runs, "sft", options.samples);
    body += eval_section(runs);
    body += samples_section(runs, options.samples);
    body += pts_section(runs, options.completions);
    body += training_section(runs, "dpo", options.samples);
    body += training_section(runs, "grpo", options.samples);
  } catch (const json::exception& e) {  // a field of a summary.json with the wrong type
    throw InputError(options.run_dirs.front() + ": unexpected summary contents: " + e.what());
  }
  return html_page("align report: " + title, body);
}

}  // namespace align
