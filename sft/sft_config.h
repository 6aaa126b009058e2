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

struct SftOptimizerSection {
  double lr = 2e-5;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;   // on 2-D weights only
  double max_grad_norm = 1.0;  // <= 0: no clipping
};

struct SftScheduleSection {
  std::string type = "cosine";  // cosine, linear, constant (after linear warmup)
  int64_t warmup_steps = 0;
  int64_t max_steps = 0;  // optimizer steps; 0: epochs x steps per epoch
  double epochs = 1;
  double min_lr_ratio = 0;  // cosine floor as a fraction of lr
};

struct SftTrainingSection {
  int64_t grad_accum = 1;  // micro-batches per optimizer step
  uint64_t seed = 0;
  int64_t log_every = 1;
  int64_t eval_every = 0;  // 0: only at the end (when data.eval is set)
};

struct SftLoraSection {
  bool enabled = false;
  int64_t rank = 16;
  double alpha = 32;
  double dropout = 0.05;
  std::vector<std::string> target_modules = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};
};

struct SftOutputSection {
  std::string dir;
  int64_t save_every = 0;  // optimizer steps between checkpoints; 0: only at the end
  int64_t keep_last = 2;
  bool merge_lora = false;  // also write merged full weights
  int64_t max_shard_size = 5'000'000'000;
};

struct SftConfig {
  SftModelSection model;
  SftDataSection data;
  SftOptimizerSection optimizer;
  SftScheduleSection schedule;
  SftTrainingSection training;
  SftLoraSection lora;
  SftOutputSection output;
};

// Reads and validates; `source` names the file in messages. Throws InputError.
SftConfig parse_sft_config(const nlohmann::json& j, const std::string& source);
// Every field, defaults included: what the run actually used.
nlohmann::json to_json(const SftConfig& config);

}  // namespace align
