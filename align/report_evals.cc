// The evaluation parts of `align report` (declared in align/report_sections.h): the eval table,
// the sample generations and DPO's checkpoint evals.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "align/report_charts.h"
#include "align/report_html.h"
#include "align/report_sections.h"
#include "common/error.h"
#include "common/jsonl.h"

namespace align {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kSamplesPerItem = 4;  // generations shown per item and side

// A metric {"mean", "low", "high"} of an eval summary at `at` ("/pass@k/1"), or null.
json metric(const json& summary, const json::json_pointer& at) {
  if (!summary.is_object() || !summary.contains(at) || !summary[at].is_object()) return nullptr;
  return summary[at];
}

double metric_mean(const json& summary, const json::json_pointer& at) {
  const json v = metric(summary, at);
  return v.is_null() ? std::nan("") : v.value("mean", std::nan(""));
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

std::string plain_cell(const json& summary, const char* key) {
  if (summary.is_null()) return "<td class=\"missing\">not run</td>";
  if (!summary.contains(key) || !summary[key].is_primitive()) return "<td>\u2013</td>";
  const json& v = summary[key];
  const std::string text = v.is_number()   ? format_number(v.get<double>())
                           : v.is_string() ? v.get<std::string>()
                                           : v.dump();
  return "<td>" + html_escape(text) + "</td>";
}

// The evaluation summary of one side of a pipeline: eval-<side>/summary.json, else
// summary.json's eval.<side>.
json pipeline_eval(const std::string& run_dir, const std::string& side) {
  json s = read_object_if_exists(run_dir + "/eval-" + side + "/summary.json");
  if (!s.is_null()) return s;
  const json top = read_object_if_exists(run_dir + "/summary.json");
  if (top.is_object() && top.contains("eval") && top["eval"].is_object() &&
      top["eval"].contains(side))
    return top["eval"][side];
  return nullptr;
}

struct EvalColumn {
  std::string label;
  json summary;     // null: not run
  std::string dir;  // the eval's folder (results.jsonl, config.json)
};

// Each run's evals: a pipeline's before and after, an eval run's own.
std::vector<EvalColumn> eval_columns(const std::vector<ReportRun>& runs, std::string* missing) {
  std::vector<EvalColumn> columns;
  const bool several = runs.size() > 1;
  for (const ReportRun& r : runs) {
    const std::string prefix = several ? r.name + " " : "";
    if (r.kind == RunKind::kEval) {
      columns.push_back(
          {several ? r.name : "value", read_object_if_exists(r.dir + "/summary.json"), r.dir});
    } else if (r.kind == RunKind::kPipeline) {
      const json before = pipeline_eval(r.dir, "before"), after = pipeline_eval(r.dir, "after");
      if (before.is_null() && after.is_null()) {
        *missing += "<p class=\"missing\">" + html_escape(several ? r.name + ": " : "") +
                    "not run (no eval-before/summary.json or eval-after/summary.json)</p>\n";
        continue;
      }
      columns.push_back({prefix + "before", before, r.dir + "/eval-before"});
      columns.push_back({prefix + "after", after, r.dir + "/eval-after"});
    }
  }
  return columns;
}

// One row: a cell per column and, with two columns, the difference (green when better).
std::string metric_row(const std::string& label, const std::vector<EvalColumn>& columns,
                       const json::json_pointer& at, bool higher_is_better) {
  std::string out = "<tr><td>" + html_escape(label) + "</td>";
  for (const EvalColumn& c : columns)
    out += metric_cell(c.summary, at);
  if (columns.size() == 2) {
    const double d = metric_mean(columns[1].summary, at) - metric_mean(columns[0].summary, at);
    const bool better = higher_is_better ? d > 0 : d < 0;
    const bool worse = higher_is_better ? d < 0 : d > 0;
    out += std::string("<td class=\"") +
           (better  ? "better"
            : worse ? "worse"
                    : "") +
           "\">" + (d > 0 ? "+" : "") + format_number(d, 3) + "</td>";
  }
  return out + "</tr>\n";
}

// Decimals (0..3) that show all of `values` exactly, else 3: 0.84, 0.80, 0.88 -> 2.
int decimals_for(const std::vector<double>& values) {
  for (int d = 0; d < 3; ++d) {
    const double scale = std::pow(10.0, d);
    bool exact = true;
    for (double v : values)
      exact = exact && std::abs(std::round(v * scale) / scale - v) < 1e-9;
    if (exact) return d;
  }
  return 3;
}

std::string fixed(double v, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, v);
  return buffer;
}

std::string text_of_count(const json& v) {
  return v.is_number() ? format_number(v.get<double>(), 10) : html_escape(v.dump());
}

// One side of an item: its samples with success and finish_reason.
std::string item_side_html(const std::string& label, const json& item) {
  std::string out = "<div class=\"side\">";
  if (item.is_null())
    return out + "<div class=\"missing\">" + html_escape(label) +
           ": not in results.jsonl</div></div>\n";
  const json samples = item.value("samples", json::array());
  out += "<div class=\"meta\">" + html_escape(label) + (label.empty() ? "" : ": ");
  if (item.contains("correct") && item.contains("n"))
    out += text_of_count(item["correct"]) + " of " + text_of_count(item["n"]) + " correct";
  out += "</div>\n";
  int64_t shown = 0;
  for (const json& s : samples) {
    if (shown == kSamplesPerItem) break;
    if (!s.is_object()) continue;
    const bool ok = s.value("success", false);
    out += std::string("<div class=\"gen ") + (ok ? "ok" : "fail") +
           "\"><div class=\"meta\">sample " + std::to_string(++shown) + " \u00b7 " +
           (ok ? "success" : "failure") + " \u00b7 " + html_escape(s.value("finish_reason", "?")) +
           "</div><div class=\"text\">" + html_escape(s.value("text", "")) + "</div></div>\n";
  }
  if (static_cast<int64_t>(samples.size()) > shown)
    out += "<div class=\"sub\">+" + std::to_string(samples.size() - static_cast<size_t>(shown)) +
           " more samples</div>\n";
  return out + "</div>\n";
}

}  // namespace

std::string eval_section(const std::vector<ReportRun>& runs) {
  bool any = false;
  for (const ReportRun& r : runs)
    any = any || r.kind == RunKind::kEval || r.kind == RunKind::kPipeline;
  if (!any) return "";
  std::string out = "<h2>Evaluation</h2>\n";
  std::string missing;
  const std::vector<EvalColumn> columns = eval_columns(runs, &missing);
  out += missing;
  if (columns.empty()) return out;
  std::vector<std::string> ks;
  for (const EvalColumn& c : columns)
    if (c.summary.is_object() && c.summary.contains("pass@k") && c.summary["pass@k"].is_object())
      for (const auto& [k, v] : c.summary["pass@k"].items())
        if (std::find(ks.begin(), ks.end(), k) == ks.end()) ks.push_back(k);
  std::sort(ks.begin(), ks.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  out += "<table><tr><th>metric</th>";
  for (const EvalColumn& c : columns)
    out += "<th>" + html_escape(c.label) + "</th>";
  const bool one_pipeline = runs.size() == 1 && runs[0].kind == RunKind::kPipeline;
  if (columns.size() == 2)
    out += one_pipeline ? "<th>\u0394</th>" : "<th>\u0394 (right \u2212 left)</th>";
  out += "</tr>\n";
  for (const std::string& k : ks)
    out += metric_row("pass@" + k, columns, json::json_pointer("/pass@k/" + k), true);
  // The oracle's own rates (eval/oracle_rates.h), each with its direction (the safety oracle:
  // refusing harmful requests is good, refusing benign ones is not).
  std::vector<std::string> seen;
  for (const EvalColumn& c : columns) {
    if (!c.summary.is_object() || !c.summary.contains("oracle_rates")) continue;
    for (const json& rate : c.summary.at("oracle_rates")) {
      const std::string key = rate.value("key", "");
      if (key.empty() || std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
      seen.push_back(key);
      out += metric_row(rate.value("label", key), columns, json::json_pointer("/" + key),
                        rate.value("higher_is_better", true));
    }
  }
  for (const char* key :
       {"items", "num_samples", "mean_tokens", "clipped_ratio", "seconds", "oracle"}) {
    out += std::string("<tr><td>") + key + "</td>";
    for (const EvalColumn& c : columns)
      out += plain_cell(c.summary, key);
    out += columns.size() == 2 ? "<td></td></tr>\n" : "</tr>\n";
  }
  out += "</table>\n<p class=\"sub\">mean over items with its interval [low, high]";
  if (columns.size() == 2)
    out += one_pipeline ? "; \u0394 = after \u2212 before, green when better"
                        : "; \u0394 = right \u2212 left column, green when better";
  return out + ".</p>\n";
}

namespace {

// The first `samples` items of the first side's results.jsonl, each beside the same item of the
// other sides (label, folder); "" when no side has a results.jsonl.
std::string items_side_by_side(std::vector<std::pair<std::string, std::string>> sides,
                               int64_t samples) {
  sides.erase(
      std::remove_if(sides.begin(), sides.end(),
                     [](const auto& s) { return !fs::exists(s.second + "/results.jsonl"); }),
      sides.end());
  if (sides.empty()) return "";
  std::vector<std::string> ids;
  std::vector<std::map<std::string, json>> items(sides.size());
  for (size_t s = 0; s < sides.size(); ++s) {
    for_each_jsonl(sides[s].second + "/results.jsonl", [&](const json& item, const JsonlLocation&) {
      if (!item.is_object() || !item.contains("id")) return;
      const std::string id =
          item["id"].is_string() ? item["id"].get<std::string>() : item["id"].dump();
      if (s == 0 && static_cast<int64_t>(ids.size()) < samples) ids.push_back(id);
      if (std::find(ids.begin(), ids.end(), id) != ids.end()) items[s][id] = item;
    });
  }
  std::map<std::string, std::string> prompts;
  for (const auto& side : sides)
    if (prompts.empty()) prompts = prompts_from_config(side.second + "/config.json");
  std::string body = "<p class=\"sub\">The first " + std::to_string(ids.size()) + " items of " +
                     html_escape(sides[0].second + "/results.jsonl");
  for (size_t s = 1; s < sides.size(); ++s)
    body += (s == 1 ? ", beside the same items " : " and ") + html_escape(sides[s].first);
  body += "; up to " + std::to_string(kSamplesPerItem) + " samples each.</p>\n";
  for (const std::string& id : ids) {
    body += "<div class=\"item\" id=\"item-" + html_escape(id) + "\"><div class=\"meta\">item <b>" +
            html_escape(id) + "</b></div>\n";
    if (const auto it = prompts.find(id); it != prompts.end())
      body += "<div class=\"prompt\">" + html_escape(it->second) + "</div>\n";
    body += "<div class=\"sides\">\n";
    for (size_t s = 0; s < sides.size(); ++s) {
      const auto it = items[s].find(id);
      body += item_side_html(sides[s].first, it == items[s].end() ? json() : it->second);
    }
    body += "</div></div>\n";
  }
  return body;
}

}  // namespace

std::string samples_section(const std::vector<ReportRun>& runs, int64_t samples) {
  std::string body;
  for (const ReportRun& r : runs) {
    std::vector<std::pair<std::string, std::string>> sides;  // label, folder
    if (r.kind == RunKind::kEval) sides.push_back({"", r.dir});
    if (r.kind == RunKind::kPipeline) {
      sides.push_back({"before", r.dir + "/eval-before"});
      sides.push_back({"after", r.dir + "/eval-after"});
    }
    const std::string items = items_side_by_side(sides, samples);
    if (items.empty()) continue;
    if (runs.size() > 1) body += "<h3>" + html_escape(r.name) + "</h3>\n";
    body += items;
  }
  if (body.empty()) return "";
  return "<h2>Sample generations</h2>\n" + body;
}

std::string checkpoint_evals_section(const std::vector<ReportRun>& runs, int64_t samples,
                                     const std::string& stage) {
  const bool several = runs.size() > 1;
  std::vector<ChartSeries> series, clipped_series;
  ChartOptions options;
  std::string sentences, metric_name, generations;
  for (const ReportRun& r : runs) {
    const std::string dir = r.stage_dir(stage);
    if (dir.empty()) continue;
    const json best = read_object_if_exists(dir + "/best.json");
    const std::string metric = best.is_object() ? best.value("metric", "pass@1") : "pass@1";
    if (metric_name.empty()) metric_name = metric;
    // The evals: best.json's list, else each evals/step-N/summary.json.
    // ... and each eval's completions/clipped_ratio (samples that hit max_new_tokens).
    std::vector<ChartPoint> points, clipped;
    auto add_clipped = [&](double step, const json& v) {
      if (v.is_object() && v.contains("clipped_ratio") && v["clipped_ratio"].is_number())
        clipped.push_back({step, v["clipped_ratio"].get<double>()});
    };
    auto add = [&](double step, const json& v) {
      if (!v.is_object() || (!v.contains("value") && !v.contains("mean"))) return;
      ChartPoint p;
      p.x = step;
      p.y = v.contains("value") ? v["value"].get<double>() : v["mean"].get<double>();
      if (v.contains("low") && v.contains("high")) {
        p.low = v["low"].get<double>();
        p.high = v["high"].get<double>();
      }
      points.push_back(p);
    };
    if (best.is_object() && best.contains("evals") && best["evals"].is_array()) {
      for (const json& e : best["evals"]) {
        if (!e.is_object() || !e.contains("step")) continue;
        add(e["step"].get<double>(), e);
        add_clipped(e["step"].get<double>(), e);
      }
    } else if (fs::is_directory(dir + "/evals")) {
      const std::string at =
          metric.rfind("pass@", 0) == 0 ? "/pass@k/" + metric.substr(5) : "/" + metric;
      for (const auto& entry : fs::directory_iterator(dir + "/evals")) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("step-", 0) != 0) continue;
        const json s = read_object_if_exists(entry.path().string() + "/summary.json");
        if (s.is_object() && s.contains(json::json_pointer(at)))
          add(std::stod(name.substr(5)), s[json::json_pointer(at)]);
        add_clipped(std::stod(name.substr(5)), s);
      }
      for (std::vector<ChartPoint>* p : {&points, &clipped})
        std::sort(p->begin(), p->end(),
                  [](const ChartPoint& a, const ChartPoint& b) { return a.x < b.x; });
    }
    if (points.empty() && !best.is_object()) continue;
    const std::string who = several ? r.name + ": " : "";
    if (best.is_object() && best.contains("step")) {
      const double step = best["step"].get<double>(), value = best.value("value", std::nan(""));
      const double low = best.value("low", std::nan("")), high = best.value("high", std::nan(""));
      const double last_step = best.value("last_step", step);
      double last_value = std::nan("");
      for (const ChartPoint& p : points)
        if (p.x == last_step) last_value = p.y;
      const int d = decimals_for({value, low, high, std::isnan(last_value) ? 0 : last_value});
      const std::string at_best =
          metric + " " + fixed(value, d) + " [" + fixed(low, d) + ", " + fixed(high, d) + "]";
      const std::string last =
          std::isnan(last_value)
              ? ""
              : "; the last step " + format_number(last_step, 10) + " had " + fixed(last_value, d);
      std::string sentence;
      if (best.value("kept", true))
        sentence = "step " + format_number(step, 10) + " kept (" + at_best + ")" +
                   (last_step == step ? " (the last step)" : last);
      else
        sentence = "step " + format_number(step, 10) + " was best (" + at_best +
                   ") but not kept: the output is the last step " + format_number(last_step, 10) +
                   (std::isnan(last_value) ? "" : " (" + fixed(last_value, d) + ")");
      sentences += "<p class=\"kept\">" + html_escape(who + sentence) + "</p>\n";
      // Steps that eval.max_clipped_ratio ruled out (best.json marks them).
      std::string over;
      for (const json& e : best.value("evals", json::array()))
        if (e.is_object() && !e.value("eligible", true))
          over += (over.empty() ? "" : ", ") + format_number(e.value("step", 0.0), 10) + " (" +
                  fixed(e.value("clipped_ratio", 0.0), 3) + ")";
      if (!over.empty())
        sentences += "<p class=\"kept\">" +
                     html_escape(who + "passed over: completions/clipped_ratio above " +
                                 format_number(best.value("max_clipped_ratio", 1.0)) +
                                 " (eval.max_clipped_ratio) at step " + over) +
                     "</p>\n";
      options.marks.push_back(
          {step, (several ? r.name + " " : "kept ") + "step " + format_number(step, 10)});
    }
    // The starting model's generations beside the kept step's (else the last evaluated one's).
    if (!points.empty()) {
      const double shown =
          best.is_object() && best.contains("step") ? best["step"].get<double>() : points.back().x;
      const std::string step0 = "step " + format_number(points.front().x, 10);
      const std::string stepk = "step " + format_number(shown, 10);
      if (shown != points.front().x)
        generations +=
            (several ? "<h4>" + html_escape(r.name) + "</h4>\n" : "") +
            items_side_by_side({{step0, dir + "/evals/step-" + format_number(points.front().x, 10)},
                                {stepk, dir + "/evals/step-" + format_number(shown, 10)}},
                               samples);
    }
    ChartSeries s;
    s.name = several ? r.name : metric;
    s.points = std::move(points);
    if (several) s.color = r.index;
    series.push_back(std::move(s));
    ChartSeries c;
    c.name = several ? r.name : "completions/clipped_ratio";
    c.points = std::move(clipped);
    if (several) c.color = r.index;
    if (!c.points.empty()) clipped_series.push_back(std::move(c));
  }
  if (series.empty()) return "";
  options.x_label = "step";
  return "<h3>Checkpoint evals</h3>\n<p class=\"sub\">" + html_escape(metric_name) +
         " of each evaluated checkpoint (evals/step-N/, step 0 = the starting model) with its "
         "interval; the dashed line marks the step best.json keeps.</p>\n" +
         sentences + "<div class=\"charts\">\n" +
         line_chart(metric_name + " vs step", series, options) +
         (clipped_series.empty()
              ? ""
              : line_chart("completions/clipped_ratio vs step (samples cut at max_new_tokens)",
                           clipped_series, options)) +
         "</div>\n" +
         (generations.empty() ? "" : "<h3>Checkpoint generations</h3>\n" + generations);
}

}  // namespace align
