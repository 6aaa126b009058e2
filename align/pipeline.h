// `align pipeline`: SFT -> eval -> PTS -> DPO -> eval in one run directory, each stage in its own
// folder, finished stages skipped on a rerun, ending with a summary.
//
// Config (JSON): the stages' own configs as sections, without the keys the pipeline fills in:
//   {"run_dir": "runs/x",
//    "model":  {"path", "dtype", "device"}     the starting model, used by every stage
//    "oracle": {...}                           shared by eval and PTS (docs/oracles.md)
//    "sft":    {"data", "optimizer", "schedule", "training", "lora", "output"}  (align sft)
//    "eval":   {"data", "sampling", "rollout", "eval"}                          (align eval)
//    "pts":    {"data", "sampling", "rollout", "pts"}                           (align pts)
//    "dpo":    {"reference", "data", "dpo", "optimizer", "schedule", "training", "lora",
//               "output"}                                                       (align dpo)
//    "stages": ["sft", "eval-before", "pts", "dpo", "eval-after"]}   (the default: all, in order)
// Filled in: each stage's model.path (the previous training stage's result: model/ for full
// fine-tuning, merged/ for LoRA, whose merge_lora is forced on) and output.dir
// (RUN_DIR/<stage>); the oracle for eval and PTS; dpo.data.train = RUN_DIR/pts/pairs.jsonl and
// dpo.data.format = "token" unless given. Errors in a section name the section and the key.
//
// RUN_DIR/stages.json records finished stages with their full configs and the name, size and
// modification time of every file they read (model directory, data files; written atomically
// after each). A rerun skips a finished stage when its config and input files are unchanged and
// no earlier stage ran; a changed one is redone from scratch, and so is everything after it. An
// unfinished SFT or DPO stage resumes from its newest checkpoint, an unfinished PTS stage continues
// after its last batch, an unfinished eval reruns. RUN_DIR/summary.json: {"stages": [{"name",
// "seconds", "status"}], "eval": {"before", "after"} (the eval summaries), "pairs": N}. The printed
// table has pass@k before and after DPO, and the oracle's own rates (the safety oracle's refusal
// rate on harmful items and over-refusal on benign ones; eval/oracle_rates.h).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace align {

struct PipelineResult {
  nlohmann::json summary;  // summary.json's object
  std::string table;       // the printed summary table
};

// One stage as the pipeline will run it: the model it starts from and its output folder.
struct PipelineStagePlan {
  std::string name;   // sft, eval-before, pts, dpo, eval-after
  std::string model;  // model.path the stage gets
  std::string dir;    // its output.dir: RUN_DIR/<name>
};

// Reads and checks the whole config without running anything or touching the run directory: the
// top-level keys, the stage names, every stage's section as that stage will get it (model.path
// and output.dir filled in) and the oracle. Throws InputError naming the section and key.
// run_pipeline calls it first, so a typo in the last stage's section fails before the first
// stage runs.
std::vector<PipelineStagePlan> check_pipeline_config(const nlohmann::json& config,
                                                     const std::string& source);

// `source` names the config file in messages.
PipelineResult run_pipeline(const nlohmann::json& config, const std::string& source);

}  // namespace align
