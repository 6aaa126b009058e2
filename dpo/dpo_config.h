// The `align dpo` run config: plain structs, one per JSON section, read strictly (unknown keys are
// errors naming their path) and written back resolved into the run's output folder.
//
//   {"model":     {"path", "dtype", "device", "activation_checkpointing"},
//    "reference": {"type": "auto" | "lora_base" | "checkpoint" | "precomputed", "path",
//                  "check_pairs", "check_tolerance"},
//    "data":      {"train", "eval", "format": "sequence" | "token", "max_seq_len", "batch_size",
//                  "weight": "none" | "field" | "p_gap", "shuffle"},
//    "dpo":       {"loss": "sigmoid" | "ipo" | "hinge" | "robust", "beta", "label_smoothing",
//                  "nll_weight"},
//    "optimizer": {"lr", "beta1", "beta2", "eps", "weight_decay", "max_grad_norm"},
//    "schedule":  {"type", "warmup_steps", "max_steps", "epochs", "min_lr_ratio"},
//    "training":  {"grad_accum", "seed", "log_every", "eval_every"},
//    "lora":      {"enabled", "rank", "alpha", "dropout", "target_modules"},
//    "output":    {"dir", "save_every", "keep_last", "merge_lora", "max_shard_size"}}
//
// reference.type "auto" resolves to lora_base with LoRA and to checkpoint (path = model.path, the
// starting weights, as TRL's implicit reference copy) without. "precomputed" reads
// ref_chosen_logps / ref_rejected_logps from the data lines; with a reference.path it checks the
// first check_pairs pairs against that model (max abs difference <= check_tolerance).
// data.batch_size counts pairs (sequence format) or chains, i.e. completions (token format).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sft/train_sections.h"

namespace align {

struct DpoModelSection {
  std::string path;
  std::string dtype = "auto";
  std::string device = "auto";
  bool activation_checkpointing = false;
};

struct DpoReferenceSection {
  std::string type = "auto";
  std::string path;          // checkpoint: the frozen reference model; precomputed: optional
  int64_t check_pairs = 16;  // precomputed + path: pairs checked against the model
  double check_tolerance = 1e-3;
};

struct DpoDataSection {
  std::string train;
  std::string eval;
  std::string format = "sequence";  // sequence (prompt/chosen/rejected) or token (PTS pairs)
  int64_t max_seq_len = 2048;
  int64_t batch_size = 4;  // pairs (sequence) or chains (token) per micro-batch
  std::string weight = "none";
  bool shuffle = true;
};

struct DpoLossSection {
  std::string loss = "sigmoid";
  double beta = 0.1;
  double label_smoothing = 0.0;
  double nll_weight = 0.0;  // TRL's rpo_alpha: weight of the mean NLL per chosen token
};

// optimizer, schedule, training, lora, output: the trainers' shared sections, with DPO's defaults
// (TRL DPOConfig's lr 1e-6, linear schedule, LoRA on without dropout).
struct DpoConfig : TrainSections {
  DpoConfig() {
    optimizer.lr = 1e-6;
    schedule.type = "linear";
    lora.enabled = true;
    lora.dropout = 0.0;
  }
  DpoModelSection model;
  DpoReferenceSection reference;
  DpoDataSection data;
  DpoLossSection dpo;
};

// Reads, validates and resolves reference.type "auto". Throws InputError "source: key.path: ...".
DpoConfig parse_dpo_config(const nlohmann::json& j, const std::string& source);
nlohmann::json to_json(const DpoConfig& config);

}  // namespace align
