// The `align sft` run config: plain structs, one per JSON section, read strictly (unknown keys are
// errors naming their path) and written back resolved into the run's output folder.
//
//   {"model":     {"path", "dtype", "device", "activation_checkpointing"},
//    "data":      {"train", "eval", "max_seq_len", "packing", "padding_free", "rows_per_batch",
//                  "assistant_only_loss", "skip_bad_lines", "shuffle"},
//    "optimizer": {"lr", "beta1", "beta2", "eps", "weight_decay", "max_grad_norm"},
//    "schedule":  {"type", "warmup_steps", "max_steps", "epochs", "min_lr_ratio"},
//    "training":  {"grad_accum", "seed", "log_every", "eval_every"},
//    "lora":      {"enabled", "rank", "alpha", "dropout", "target_modules"},
//    "output":    {"dir", "save_every", "keep_last", "merge_lora", "max_shard_size"}}
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sft/train_sections.h"

namespace align {

struct SftModelSection {
  std::string path;             // Hugging Face model directory (config, safetensors, tokenizer)
  std::string dtype = "auto";   // auto (bf16 on CUDA, fp32 on CPU), fp32, bf16
  std::string device = "auto";  // auto, cpu, cuda
  bool activation_checkpointing = false;
};

struct SftDataSection {
  std::string train;  // JSONL: {"messages"} or {"prompt", "completion"}
  std::string eval;   // optional held-out JSONL, same format
  int64_t max_seq_len = 2048;
  bool packing = true;
  bool padding_free = false;
  int64_t rows_per_batch = 1;  // rows of max_seq_len tokens per micro-batch
  bool assistant_only_loss = true;
  bool skip_bad_lines = false;
  bool shuffle = true;
};

struct SftConfig : TrainSections {  // optimizer, schedule, training, lora, output (defaults above)
  SftModelSection model;
  SftDataSection data;
};

// Reads and validates; `source` names the file in messages. Throws InputError.
SftConfig parse_sft_config(const nlohmann::json& j, const std::string& source);
// Every field, defaults included: what the run actually used.
nlohmann::json to_json(const SftConfig& config);

}  // namespace align
