#include "align/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/hub_cache.h"
#include "common/json_parse.h"
#include "common/jsonl.h"
#include "data/dataset_records.h"
#include "dpo/dpo_config.h"
#include "dpo/dpo_recipe.h"
#include "eval/eval_config.h"
#include "eval/eval_recipe.h"
#include "grpo/grpo_config.h"
#include "grpo/grpo_recipe.h"
#include "oracles/oracle.h"
#include "pts/pts_config.h"
#include "pts/pts_recipe.h"
#include "sft/sft_config.h"
#include "sft/sft_recipe.h"
#include "train/train_checkpoint.h"

namespace align {
namespace {

namespace fs = std::filesystem;

// Every stage in the order they run.
const std::vector<std::string>& all_stages() {
  static const std::vector<std::string> stages = {"sft", "eval-before", "pts",
                                                  "dpo", "grpo",        "eval-after"};
  return stages;
}

// Without a "stages" key: the main job's chain (grpo runs only when listed).
const std::vector<std::string>& default_stages() {
  static const std::vector<std::string> stages = {"sft", "eval-before", "pts", "dpo", "eval-after"};
  return stages;
}

// The stages to run: known names, each once, in the canonical order (a stage reads what the
// ones before it wrote), at least one.
std::vector<std::string> read_stages(const nlohmann::json& config, const std::string& source) {
  if (!config.contains("stages")) return default_stages();
  const nlohmann::json& list = config.at("stages");
  if (!list.is_array()) throw InputError(source + ": stages: expected a list of stage names");
  if (list.empty())
    throw InputError(source +
                     ": stages: expected at least one of sft, eval-before, pts, dpo, grpo, "
                     "eval-after (omit the key for sft, eval-before, pts, dpo, eval-after)");
  std::vector<std::string> out;
  size_t last = 0;
  for (const auto& s : list) {
    const std::string name = s.is_string() ? s.get<std::string>() : json_excerpt(s, 40);
    const auto it = std::find(all_stages().begin(), all_stages().end(), name);
    if (it == all_stages().end()) {
      throw InputError(source + ": stages: unknown stage " + name +
                       " (expected sft, eval-before, pts, dpo, grpo, eval-after)");
    }
    if (std::find(out.begin(), out.end(), name) != out.end())
      throw InputError(source + ": stages: " + name + " appears twice");
    const auto index = static_cast<size_t>(it - all_stages().begin());
    if (!out.empty() && index < last) {
      throw InputError(source + ": stages: " + name + " after " + out.back() +
                       ": stages run in the order sft, eval-before, pts, dpo, grpo, eval-after");
    }
    last = index;
    out.push_back(name);
  }
  return out;
}

// The first few records of a stage's data (a JSONL file, Parquet or a hub dataset id) exist and
// have the fields its stage reads, so a typo in a late stage's file fails at the start. `kind`:
// sft, queries, dpo-sequence, dpo-token.
void check_data_file(const std::string& path, const std::string& kind, const std::string& where,
                     const Oracle* oracle) {
  int checked = 0;
  RecordReadOptions first;
  first.limit = 3;
  for_each_record(
      path, where,
      [&](const nlohmann::json& record, const RecordLocation&) {
        ++checked;
        if (!record.is_object()) throw InputError("expected a JSON object");
        auto need_one_of = [&](std::initializer_list<const char*> keys, const char* expected) {
          for (const char* k : keys)
            if (record.contains(k)) return;
          throw InputError(std::string("expected ") + expected + " (" + where + ")");
        };
        if (kind == "sft") {
          need_one_of({"messages", "completion", "text"},
                      "\"messages\", \"prompt\" and \"completion\", or \"text\"");
        } else if (kind == "queries") {
          need_one_of({"messages", "prompt", "text", "token_ids"},
                      "\"prompt\", \"messages\", \"text\" or \"token_ids\"");
          if (oracle) oracle->check_fields(oracle_fields(record), "");
        } else if (kind == "dpo-sequence") {
          for (const char* k : {"prompt", "chosen", "rejected"})
            if (!record.contains(k))
              throw InputError("missing \"" + std::string(k) + "\" (" + where + ")");
        } else if (kind == "dpo-token") {
          for (const char* k : {"prompt_token_ids", "chosen_token_id", "rejected_token_id"})
            if (!record.contains(k))
              throw InputError("missing \"" + std::string(k) + "\" (" + where + ")");
        }
      },
      first);
  if (checked == 0 && kind != "dpo-token") throw InputError(where + ": " + path + " is empty");
}

// The keys the pipeline sets in every stage's section: a value there would be ignored.
void check_stage_section(const nlohmann::json& config, const std::string& section,
                         const std::string& source) {
  if (!config.contains(section) || !config.at(section).is_object()) return;
  const nlohmann::json& s = config.at(section);
  if (s.contains("model") && s.at("model").is_object() && s.at("model").contains("path")) {
    throw InputError(source + ": " + section +
                     ".model.path: the pipeline chooses each stage's model (the top-level "
                     "model.path, then each training stage's result); set model.path instead");
  }
  if (s.contains("output") && s.at("output").is_object() && s.at("output").contains("dir")) {
    throw InputError(source + ": " + section + ".output.dir: the pipeline writes each stage to " +
                     "RUN_DIR/<stage>; set run_dir instead");
  }
  if ((section == "eval" || section == "pts" || section == "grpo") && s.contains("oracle")) {
    throw InputError(
        source + ": " + section +
        ".oracle: eval, pts and grpo share the top-level oracle section; set it there");
  }
  if ((section == "dpo" || section == "grpo") && s.contains("eval") && s.at("eval").is_object() &&
      s.at("eval").contains("oracle")) {
    throw InputError(source + ": " + section + ".eval.oracle: the held-out eval of " + section +
                     " uses the top-level oracle section, as eval and pts do; set it there");
  }
}

void check_top_level(const nlohmann::json& config, const std::string& source) {
  if (!config.is_object()) throw InputError(source + ": expected a JSON object of sections");
  static const std::set<std::string> known = {"run_dir", "model", "oracle", "sft",   "eval",
                                              "pts",     "dpo",   "grpo",   "stages"};
  for (const auto& [key, value] : config.items()) {
    if (!known.count(key)) {
      throw InputError(source + ": unknown key " + key +
                       " (expected run_dir, model, oracle, sft, eval, pts, dpo, grpo, stages)");
    }
  }
  if (!config.contains("run_dir") || !config.at("run_dir").is_string()) {
    throw InputError(source + ": missing required key run_dir (a folder path)");
  }
  if (!config.contains("model") || !config.at("model").contains("path")) {
    throw InputError(source + ": missing required key model.path");
  }
}

// The stage's section with the model and output folder the pipeline decides.
nlohmann::json stage_json(const nlohmann::json& config, const std::string& section,
                          const std::string& model_path, const std::string& dir) {
  nlohmann::json j = config.value(section, nlohmann::json::object());
  if (!j.is_object()) throw InputError("section " + section + ": expected an object");
  // The shared model section, refined by the stage's own (e.g. activation_checkpointing).
  nlohmann::json model = config.at("model");
  if (j.contains("model")) model.merge_patch(j.at("model"));
  model["path"] = model_path;
  if (section == "eval" || section == "pts") model.erase("activation_checkpointing");
  j["model"] = model;
  j["output"]["dir"] = dir;
  if ((section == "eval" || section == "pts" || section == "grpo") && config.contains("oracle")) {
    j["oracle"] = config.at("oracle");
  }
  return j;
}

std::string stage_model(const std::string& dir, bool lora) {
  return dir + (lora ? "/merged" : "/model");
}

// The stage's full config: its section with the model, output folder and oracle filled in.
nlohmann::json prepare_stage(const std::string& stage, const nlohmann::json& config,
                             const std::string& model, const std::string& dir) {
  const std::string section = stage.rfind("eval", 0) == 0 ? "eval" : stage;
  nlohmann::json j = stage_json(config, section, model, dir);
  if (stage == "dpo") {
    if (!j["data"].contains("train")) {
      j["data"]["train"] = fs::path(dir).parent_path().string() + "/pts/pairs.jsonl";
    }
    if (!j["data"].contains("format")) j["data"]["format"] = "token";
  }
  // The held-out eval that picks DPO's or GRPO's best step grades with the pipeline's oracle.
  if ((stage == "dpo" || stage == "grpo") && j.contains("eval") && j["eval"].is_object() &&
      config.contains("oracle")) {
    j["eval"]["oracle"] = config.at("oracle");
  }
  return j;
}

// Reads the stage's config and, when `run`, runs the stage (or finishes an interrupted one);
// returns the model it leaves for the next stage.
std::string run_stage(const std::string& stage, const nlohmann::json& j, const std::string& source,
                      const std::string& model, const std::string& dir, bool run) {
  const std::string where =
      source + " (section " + (stage.rfind("eval", 0) == 0 ? "eval" : stage) + ")";
  if (stage == "sft") {
    SftConfig c = parse_sft_config(j, where, "sft");
    c.output.merge_lora = c.output.merge_lora || c.lora.enabled;
    if (run) {
      const bool resume = find_latest_checkpoint(dir).has_value();
      if (!resume) fs::remove_all(dir);
      SftRunOptions options;
      options.resume = resume;
      run_sft(c, options);
    }
    return stage_model(dir, c.lora.enabled);
  }
  if (stage == "dpo") {
    DpoConfig c = parse_dpo_config(j, where, "dpo");
    c.output.merge_lora = c.output.merge_lora || c.lora.enabled;
    if (run) {
      if (fs::exists(c.data.train) && fs::file_size(c.data.train) == 0) {
        throw InputError("the PTS stage found no pairs (" + c.data.train +
                         " is empty): DPO has nothing to train on; widen pts.band_low/band_high, "
                         "lower pts.p_gap or add queries");
      }
      const bool resume = find_latest_checkpoint(dir).has_value();
      if (!resume) fs::remove_all(dir);
      DpoRunOptions options;
      options.resume = resume;
      options.source = where;
      run_dpo(c, options);
    }
    return stage_model(dir, c.lora.enabled);
  }
  if (stage == "grpo") {
    GrpoConfig c = parse_grpo_config(j, where, "grpo");
    c.output.merge_lora = c.output.merge_lora || c.lora.enabled;
    if (run) {
      const bool resume = find_latest_checkpoint(dir).has_value();
      if (!resume) fs::remove_all(dir);
      GrpoRunOptions options;
      options.resume = resume;
      options.source = where;
      run_grpo(c, options);
    }
    return stage_model(dir, c.lora.enabled);
  }
  if (stage == "pts") {
    const PtsConfig c = parse_pts_config(j, where, "pts");
    if (run) run_pts(c, where);  // continues after its last finished batch
    return model;
  }
  const EvalConfig c = parse_eval_config(j, where, "eval");
  if (run) run_eval(c, where);
  return model;
}

std::string format_pass(const nlohmann::json& p) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%.3f [%.3f, %.3f]", p.value("mean", 0.0), p.value("low", 0.0),
                p.value("high", 0.0));
  return buf;
}

// (key, label) of every oracle rate the eval summaries list ("oracle_rates"), first seen first.
std::vector<std::pair<std::string, std::string>> oracle_rate_labels(const nlohmann::json& before,
                                                                    const nlohmann::json& after) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const nlohmann::json* s : {&before, &after}) {
    if (!s->is_object() || !s->contains("oracle_rates")) continue;
    for (const nlohmann::json& rate : s->at("oracle_rates")) {
      const std::string key = rate.value("key", "");
      bool seen = key.empty();
      for (const auto& [k, label] : out)
        seen = seen || k == key;
      if (!seen) out.emplace_back(key, rate.value("label", key));
    }
  }
  return out;
}

std::string summary_table(const nlohmann::json& summary) {
  std::ostringstream out;
  char line[160];
  out << "\n| stage | status | seconds |\n|---|---|---|\n";
  for (const auto& s : summary.at("stages")) {
    std::snprintf(line, sizeof(line), "| %s | %s | %.1f |\n",
                  s.at("name").get<std::string>().c_str(),
                  s.at("status").get<std::string>().c_str(), s.at("seconds").get<double>());
    out << line;
  }
  const nlohmann::json& eval = summary.at("eval");
  if (eval.contains("before") || eval.contains("after")) {
    // "DPO", "GRPO", "DPO + GRPO": the training stages between the two evals.
    std::string trained;
    for (const auto& s : summary.at("stages")) {
      const std::string name = s.at("name");
      if (name != "dpo" && name != "grpo") continue;
      trained += (trained.empty() ? " " : " + ") + std::string(name == "dpo" ? "DPO" : "GRPO");
    }
    out << "\n| eval | before" << trained << " | after" << trained << " |\n|---|---|---|\n";
    const nlohmann::json empty = nlohmann::json::object();
    const nlohmann::json& before = eval.value("before", empty);
    const nlohmann::json& after = eval.value("after", empty);
    std::set<std::string> ks;
    for (const auto* e : {&before, &after})
      if (e->contains("pass@k"))
        for (const auto& [k, v] : e->at("pass@k").items())
          ks.insert(k);
    for (const std::string& k : ks) {
      auto cell = [&](const nlohmann::json& e) {
        return e.contains("pass@k") && e.at("pass@k").contains(k) ? format_pass(e["pass@k"][k])
                                                                  : std::string("-");
      };
      out << "| pass@" << k << " | " << cell(before) << " | " << cell(after) << " |\n";
    }
    // The oracle's own rates (eval/oracle_rates.h), as either summary lists them.
    for (const auto& [key, label] : oracle_rate_labels(before, after)) {
      auto cell = [&](const nlohmann::json& e) {
        return e.contains(key) ? format_pass(e.at(key)) : std::string("-");
      };
      out << "| " << label << " | " << cell(before) << " | " << cell(after) << " |\n";
    }
  }
  if (summary.contains("pairs")) out << "\nPTS pairs found: " << summary.at("pairs") << "\n";
  if (summary.contains("grpo")) {
    out << "GRPO completion tokens sampled: " << summary.at("grpo").at("tokens_sampled") << "\n";
  }
  return out.str();
}

// Completion tokens a GRPO run sampled: num_completion_tokens of its last metrics line.
int64_t grpo_tokens_sampled(const std::string& dir) {
  int64_t tokens = 0;
  for_each_jsonl(dir + "/metrics.jsonl", [&](const nlohmann::json& r, const JsonlLocation&) {
    tokens = r.value("num_completion_tokens", tokens);
  });
  return tokens;
}

// Name, size and modification time of every file a stage reads (the files of its model
// directory, its data files, a reference checkpoint), so that a finished stage whose inputs
// changed on disk is redone like one whose config changed.
nlohmann::json input_fingerprints(const nlohmann::json& stage_config) {
  nlohmann::json out = nlohmann::json::object();
  for (const char* pointer : {"/model/path", "/data/train", "/data/eval", "/data/path",
                              "/reference/path", "/eval/queries"}) {
    const nlohmann::json::json_pointer at(pointer);
    if (!stage_config.contains(at) || !stage_config[at].is_string()) continue;
    const std::string path = stage_config[at].get<std::string>();
    if (path.empty()) continue;
    std::vector<fs::path> files;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      for (const auto& entry : fs::directory_iterator(path))
        if (entry.is_regular_file()) files.push_back(entry.path());
    } else if (fs::exists(path, ec)) {
      files.push_back(path);
    }
    std::sort(files.begin(), files.end());
    nlohmann::json list = nlohmann::json::array();
    for (const fs::path& f : files) {
      list.push_back({f.filename().string(), static_cast<int64_t>(fs::file_size(f)),
                      static_cast<int64_t>(fs::last_write_time(f).time_since_epoch().count())});
    }
    out[path] = list;
  }
  return out;
}

}  // namespace

std::vector<PipelineStagePlan> check_pipeline_config(const nlohmann::json& config,
                                                     const std::string& source) {
  check_top_level(config, source);
  for (const char* section : {"sft", "eval", "pts", "dpo", "grpo"})
    check_stage_section(config, section, source);
  const std::string run_dir = config.at("run_dir").get<std::string>();
  const std::vector<std::string> stages = read_stages(config, source);
  bool graded = false;  // a stage that uses the oracle
  for (const std::string& stage : stages)
    graded = graded || stage == "pts" || stage == "grpo" || stage.rfind("eval", 0) == 0;
  std::unique_ptr<Oracle> oracle;
  if (graded && config.contains("oracle")) oracle = make_oracle(config.at("oracle"), source);
  std::vector<PipelineStagePlan> plan;
  std::string model = config.at("model").at("path").get<std::string>();
  resolve_model_dir(model, source + ": model.path");
  const bool pts_runs = std::find(stages.begin(), stages.end(), "pts") != stages.end();
  for (const std::string& stage : stages) {
    const std::string dir = run_dir + "/" + stage;
    plan.push_back({stage, model, dir});
    const nlohmann::json j = prepare_stage(stage, config, model, dir);
    const std::string where =
        source + " (section " + (stage.rfind("eval", 0) == 0 ? std::string("eval") : stage) + ")";
    model = run_stage(stage, j, source, model, dir, /*run=*/false);
    // The stage's data files (those the run itself writes are checked by the stage that reads
    // them when it starts).
    const nlohmann::json& data = j.value("data", nlohmann::json::object());
    if (stage == "sft") {
      check_data_file(data.at("train"), "sft", where + " data.train", nullptr);
      if (data.contains("eval") && !data.at("eval").get<std::string>().empty())
        check_data_file(data.at("eval"), "sft", where + " data.eval", nullptr);
    } else if (stage == "pts" || stage == "grpo" || stage.rfind("eval", 0) == 0) {
      if (data.contains("path"))
        check_data_file(data.at("path"), "queries", where + " data.path", oracle.get());
    } else if (stage == "dpo") {
      const std::string kind =
          data.value("format", "sequence") == "token" ? "dpo-token" : "dpo-sequence";
      const std::string train = data.at("train");
      const bool from_pts = pts_runs && train == run_dir + "/pts/pairs.jsonl";
      if (!from_pts) check_data_file(train, kind, where + " data.train", nullptr);
      if (data.contains("eval") && !data.at("eval").get<std::string>().empty())
        check_data_file(data.at("eval"), kind, where + " data.eval", nullptr);
    }
    // The held-out eval that picks DPO's or GRPO's step.
    const nlohmann::json& held_out = j.value("eval", nlohmann::json::object());
    const std::string queries =
        held_out.is_object() ? held_out.value("queries", std::string()) : std::string();
    if ((stage == "dpo" || stage == "grpo") && !queries.empty()) {
      std::unique_ptr<Oracle> grader =
          config.contains("oracle") ? make_oracle(config.at("oracle"), source) : nullptr;
      check_data_file(queries, "queries", where + " eval.queries", grader.get());
      // Choosing the step on the set the final eval reports would bias that eval upward.
      const std::string final_set = config.value("eval", nlohmann::json::object())
                                        .value("data", nlohmann::json::object())
                                        .value("path", "");
      if (queries == final_set) {
        std::cerr << "pipeline: warning: " << stage
                  << ".eval.queries is the eval stages' data.path (" << queries << "): the step "
                  << stage << " keeps is chosen on the set eval-after "
                  << "reports, which biases it upward; hold out a separate dev set\n";
      }
    }
  }
  return plan;
}

PipelineResult run_pipeline(const nlohmann::json& config, const std::string& source) {
  const std::vector<PipelineStagePlan> plan = check_pipeline_config(config, source);
  std::vector<std::string> stages;
  for (const PipelineStagePlan& p : plan)
    stages.push_back(p.name);
  const std::string run_dir = config.at("run_dir").get<std::string>();
  fs::create_directories(run_dir);
  const std::string stages_path = run_dir + "/stages.json";
  nlohmann::json done =
      fs::exists(stages_path) ? read_json_file(stages_path) : nlohmann::json::object();

  nlohmann::json summary = {{"stages", nlohmann::json::array()},
                            {"eval", nlohmann::json::object()}};
  std::string model = config.at("model").at("path").get<std::string>();
  bool upstream_ran = false;  // a stage that ran changes what every later stage would see
  for (const std::string& stage : stages) {
    const std::string dir = run_dir + "/" + stage;
    const nlohmann::json stage_config = prepare_stage(stage, config, model, dir);
    const nlohmann::json inputs = input_fingerprints(stage_config);
    const bool finished = done.contains(stage);
    const bool already_done = finished && !upstream_ran &&
                              done[stage].value("config", nlohmann::json()) == stage_config &&
                              done[stage].value("inputs", nlohmann::json()) == inputs;
    if (finished && !already_done) {
      // Finished before with another config, on another model or on changed input files: redo
      // it from scratch.
      done.erase(stage);
      write_file_atomic(stages_path, done.dump(2) + "\n");
      fs::remove_all(dir);
    }
    std::fprintf(stderr, "pipeline: %s %s\n",
                 already_done ? "skipping finished" : (finished ? "redoing changed" : "running"),
                 stage.c_str());
    const auto start = std::chrono::steady_clock::now();
    model = run_stage(stage, stage_config, source, model, dir, /*run=*/!already_done);
    upstream_ran = upstream_ran || !already_done;
    if (!already_done) {
      done[stage] = {
          {"seconds",
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()},
          {"config", stage_config},
          {"inputs", inputs}};
      write_file_atomic(stages_path, done.dump(2) + "\n");
    }
    summary["stages"].push_back({{"name", stage},
                                 {"seconds", done[stage].at("seconds")},
                                 {"status", already_done ? "skipped (done before)" : "done"}});
    if (stage == "eval-before") summary["eval"]["before"] = read_json_file(dir + "/summary.json");
    if (stage == "eval-after") summary["eval"]["after"] = read_json_file(dir + "/summary.json");
    if (stage == "grpo") {
      summary["grpo"] = {{"tokens_sampled", grpo_tokens_sampled(dir)}};
    }
    if (stage == "pts") {
      summary["pairs"] =
          read_json_file(dir + "/progress.json").at("totals").value("pairs", int64_t{0});
    }
  }
  write_file_atomic(run_dir + "/summary.json", summary.dump(2) + "\n");
  return {summary, summary_table(summary)};
}

}  // namespace align
