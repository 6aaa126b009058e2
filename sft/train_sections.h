// The run-config sections every trainer shares (align sft, align dpo): optimizer, schedule,
// training, lora, output. Plain structs; each recipe's config sets its own defaults (e.g. SFT's
// lr 2e-5 and cosine schedule, DPO's lr 1e-6 and linear schedule with LoRA on) and reads, checks
// and writes these sections with the functions below, so both read the same keys the same way.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/config_reader.h"

namespace align {

struct OptimizerSection {
  double lr = 2e-5;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;   // on 2-D weights only
  double max_grad_norm = 1.0;  // <= 0: no clipping
};

struct ScheduleSection {
  std::string type = "cosine";  // cosine, linear, constant (after linear warmup)
  int64_t warmup_steps = 0;
  int64_t max_steps = 0;  // optimizer steps; 0: epochs x steps per epoch
  double epochs = 1;
  double min_lr_ratio = 0;  // cosine floor as a fraction of lr
};

struct TrainingSection {
  int64_t grad_accum = 1;  // micro-batches per optimizer step, over all ranks together
  // Data-parallel optimizer: 0 replicates AdamW state on every rank (gradients all-reduced); 2
  // shards it by parameter (gradients reduced to their owner, which updates its fp32 master and
  // moments, then broadcasts the weights). Results are the same; 2 divides optimizer and
  // gradient memory by the number of ranks.
  int64_t zero_stage = 0;
  uint64_t seed = 0;
  int64_t log_every = 1;
  int64_t eval_every = 0;  // 0: only at the end (when data.eval is set)
};

struct LoraSection {
  bool enabled = false;
  int64_t rank = 16;
  double alpha = 32;
  double dropout = 0.05;
  std::vector<std::string> target_modules = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};
};

struct OutputSection {
  std::string dir;
  int64_t save_every = 0;  // optimizer steps between checkpoints; 0: only at the end
  int64_t keep_last = 2;
  bool merge_lora = false;  // also write merged full weights
  int64_t max_shard_size = 5'000'000'000;
};

struct TrainSections {
  OptimizerSection optimizer;
  ScheduleSection schedule;
  TrainingSection training;
  LoraSection lora;
  OutputSection output;
};

// Reads the five sections of `root` into `s` (output.dir required); unknown keys in them throw.
void read_train_sections(ConfigReader& root, TrainSections& s);
// Range checks; throws InputError "source: key.path: what".
void check_train_sections(const TrainSections& s, const std::string& source);
// Adds the five sections, every field, to `j`.
void add_train_sections(nlohmann::json& j, const TrainSections& s);

}  // namespace align
