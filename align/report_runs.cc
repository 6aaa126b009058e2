#include "align/report_runs.h"

#include <cmath>
#include <filesystem>
#include <map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "common/jsonl.h"

namespace align {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool exists(const std::string& dir, const char* file) {
  return fs::exists(fs::path(dir) / file);
}

bool config_has_section(const json& config, const char* section) {
  return config.is_object() && config.contains(section) && config[section].is_object();
}

// The first metrics line, or null.
json first_metrics_line(const std::string& path) {
  json first;
  if (!fs::exists(path)) return first;
  for_each_jsonl(path, [&](const json& r, const JsonlLocation&) {
    if (first.is_null()) first = r;
  });
  return first;
}

std::string folder_name(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  const std::string name = p.filename().string();
  return name.empty() || name == "." ? dir : name;
}

}  // namespace

const char* run_kind_name(RunKind kind) {
  switch (kind) {
    case RunKind::kPipeline:
      return "pipeline";
    case RunKind::kSft:
      return "sft";
    case RunKind::kDpo:
      return "dpo";
    case RunKind::kGrpo:
      return "grpo";
    case RunKind::kPts:
      return "pts";
    case RunKind::kEval:
      return "eval";
  }
  return "?";
}

std::string ReportRun::stage_dir(const std::string& stage) const {
  if (kind == RunKind::kPipeline) return stage == "eval" ? "" : dir + "/" + stage;
  return stage == run_kind_name(kind) ? dir : "";
}

std::string ReportRun::stage_file(const std::string& stage, const std::string& file) const {
  return kind == RunKind::kPipeline ? stage + "/" + file : file;
}

json read_object_if_exists(const std::string& path) {
  if (!fs::exists(path)) return nullptr;
  json j = read_json_file(path);
  if (!j.is_object()) throw InputError(path + ": expected a JSON object, got " + j.type_name());
  return j;
}

RunKind detect_run_kind(const std::string& dir) {
  if (!fs::is_directory(dir)) throw InputError("run directory not found: " + dir);
  // run.json names the command: ["align", "sft", "--config", ...].
  const json run = read_object_if_exists(dir + "/run.json");
  if (run.is_object() && run.contains("command") && run["command"].is_array()) {
    for (const json& arg : run["command"]) {
      if (!arg.is_string()) continue;
      for (RunKind k : {RunKind::kPipeline, RunKind::kSft, RunKind::kDpo, RunKind::kGrpo,
                        RunKind::kPts, RunKind::kEval})
        if (arg.get<std::string>() == run_kind_name(k)) return k;
    }
  }
  const json summary = read_object_if_exists(dir + "/summary.json");
  if ((summary.is_object() && summary.contains("stages")) || exists(dir, "stages.json"))
    return RunKind::kPipeline;
  if (summary.is_object() && exists(dir, "results.jsonl")) return RunKind::kEval;
  if (exists(dir, "queries.jsonl") || exists(dir, "pivots.jsonl")) return RunKind::kPts;
  const json config = read_object_if_exists(dir + "/config.json");
  const json first = first_metrics_line(dir + "/metrics.jsonl");
  if (config_has_section(config, "grpo")) return RunKind::kGrpo;
  if (config_has_section(config, "dpo") || config_has_section(config, "reference") ||
      (first.is_object() && first.contains("rewards/margins")))
    return RunKind::kDpo;
  if (config_has_section(config, "optimizer") || !first.is_null()) return RunKind::kSft;
  throw InputError(dir +
                   ": not a run folder of align: expected summary.json with stages (align "
                   "pipeline), config.json and metrics.jsonl (align sft, dpo or grpo), "
                   "queries.jsonl or pivots.jsonl (align pts), or summary.json and results.jsonl "
                   "(align eval)");
}

std::vector<ReportRun> open_runs(const std::vector<std::string>& dirs) {
  std::vector<ReportRun> runs;
  std::map<std::string, int> names;
  for (const std::string& dir : dirs) {
    ReportRun r;
    r.dir = dir;
    r.name = folder_name(dir);
    r.kind = detect_run_kind(dir);
    r.index = static_cast<int>(runs.size());
    ++names[r.name];
    runs.push_back(r);
  }
  for (ReportRun& r : runs)
    if (names[r.name] > 1) r.name = r.dir;
  return runs;
}

bool MetricsLog::has(const std::string& key) const {
  for (const json& line : lines)
    if (line.contains(key) && line[key].is_number()) return true;
  return false;
}

std::vector<ChartPoint> MetricsLog::series(const std::string& x_key,
                                           const std::string& y_key) const {
  std::vector<ChartPoint> points;
  for (const json& line : lines) {
    if (!line.contains(x_key) || !line.contains(y_key)) continue;
    if (!line[x_key].is_number() || !line[y_key].is_number()) continue;
    ChartPoint p;
    p.x = line[x_key].get<double>();
    p.y = line[y_key].get<double>();
    points.push_back(p);
  }
  return points;
}

double MetricsLog::last(const std::string& key) const {
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (it->contains(key) && (*it)[key].is_number()) return (*it)[key].get<double>();
  return std::nan("");
}

MetricsLog read_metrics(const std::string& path) {
  MetricsLog log;
  for_each_jsonl(path, [&](const json& r, const JsonlLocation&) {
    if (!r.is_object()) throw InputError("expected a JSON object, got " + json_excerpt(r));
    if (!r.contains("step") || !r["step"].is_number())
      throw InputError("missing numeric field \"step\"");
    log.lines.push_back(r);
  });
  return log;
}

std::map<std::string, std::string> prompts_from_config(const std::string& config_path) {
  std::map<std::string, std::string> prompts;
  const json config = read_object_if_exists(config_path);
  if (!config_has_section(config, "data") || !config["data"].contains("path") ||
      !config["data"]["path"].is_string())
    return prompts;
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

}  // namespace align
