// The run-config sections every trainer shares (align sft, align dpo): model, optimizer, schedule,
// training, lora, output. One definition each (common/config_fields.h): the struct's initialisers
// are the defaults, fields() the keys with their help. A recipe's config derives from
// TrainSections, adds its own sections and may change defaults in its constructor (SFT's lr 2e-5
// and cosine schedule, DPO's lr 1e-6 and linear schedule with LoRA on).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/device_options.h"
#include "model/quantize_fields.h"
#include "train/lr_schedule.h"

namespace align {

// The model to train, how its base loads (model.quantize: QLoRA) and how backward recomputes.
struct TrainModelSection : ModelSection, QuantizeFields {
  bool activation_checkpointing = false;

  template <typename V>
  void fields(V& v) {
    ModelSection::fields(v);
    QuantizeFields::fields(
        v,
        "nf4: QLoRA (needs lora.enabled), the frozen projections stored in 4-bit NormalFloat "
        "(bitsandbytes' scheme, quantised at load), embeddings, norms and lm_head in the model "
        "dtype");
    v("activation_checkpointing", activation_checkpointing,
      "recompute each layer in backward instead of keeping its activations");
  }
};

struct OptimizerSection {
  double lr = 2e-5;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;

  template <typename V>
  void fields(V& v) {
    v("lr", lr, "peak learning rate (AdamW)");
    v("beta1", beta1, "AdamW beta1");
    v("beta2", beta2, "AdamW beta2");
    v("eps", eps, "AdamW epsilon");
    v("weight_decay", weight_decay, "decoupled weight decay, on 2-D weights only");
    v("max_grad_norm", max_grad_norm, "clip the global gradient norm to this; 0: no clipping");
  }
};

struct ScheduleSection {
  LrScheduleType type = LrScheduleType::kCosine;
  int64_t warmup_steps = 0;
  int64_t max_steps = 0;
  double epochs = 1;
  double min_lr_ratio = 0;

  template <typename V>
  void fields(V& v) {
    v("type", type, "learning-rate shape after the linear warmup");
    v("warmup_steps", warmup_steps, "optimizer steps of linear warmup from 0");
    v("max_steps", max_steps, "optimizer steps in the run; 0: epochs x steps per epoch");
    v("epochs", epochs, "passes over the training data when max_steps is 0");
    v("min_lr_ratio", min_lr_ratio, "cosine floor as a fraction of lr");
  }
};

struct TrainingSection {
  int64_t grad_accum = 1;
  int64_t zero_stage = 0;
  uint64_t seed = 0;
  int64_t log_every = 1;
  int64_t eval_every = 0;

  template <typename V>
  void fields(V& v) {
    v("grad_accum", grad_accum, "micro-batches per optimizer step, over all ranks together");
    // 0 replicates AdamW state on every rank (gradients all-reduced); 2 shards it by parameter
    // (gradients reduced to their owner, which updates its fp32 master and moments, then
    // broadcasts the weights). Same results; 2 divides optimizer and gradient memory by ranks.
    v("zero_stage", zero_stage, "0: replicated optimizer state; 2: sharded by parameter (ZeRO-2)");
    v("seed", seed, "initialisation, dropout and data order");
    v("log_every", log_every, "optimizer steps between metrics lines");
    v("eval_every", eval_every, "optimizer steps between evals; 0: only at the end");
  }
};

struct LoraSection {
  bool enabled = false;
  int64_t rank = 16;
  double alpha = 32;
  double dropout = 0.05;
  std::vector<std::string> target_modules = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};

  template <typename V>
  void fields(V& v) {
    v("enabled", enabled, "train LoRA adapters instead of every weight");
    v("rank", rank, "adapter rank r");
    v("alpha", alpha, "scale alpha (the update is scaled by alpha / r)");
    v("dropout", dropout, "dropout on the adapter input");
    v("target_modules", target_modules,
      "projections that get adapters, or \"all-linear\" (PEFT's: all four)");
  }
};

struct OutputSection {
  std::string dir;
  int64_t save_every = 0;
  int64_t keep_last = 2;
  bool merge_lora = false;
  int64_t max_shard_size = 5'000'000'000;
  std::vector<std::string> report_to = {"jsonl"};

  template <typename V>
  void fields(V& v) {
    v.required("dir", dir, "run directory: config, metrics, checkpoints, the result");
    v("report_to", report_to,
      "metric sinks: jsonl (metrics.jsonl, always written) and tensorboard (runs/ event files)");
    v("save_every", save_every, "optimizer steps between checkpoints; 0: only at the end");
    v("keep_last", keep_last, "checkpoints kept");
    v("merge_lora", merge_lora, "with LoRA, also write the merged full model (merged/)");
    v("max_shard_size", max_shard_size, "bytes per safetensors shard of the written model");
  }
};

struct TrainSections {
  TrainModelSection model;
  OptimizerSection optimizer;
  ScheduleSection schedule;
  TrainingSection training;
  LoraSection lora;
  OutputSection output;

  template <typename V>
  void fields(V& v) {
    v.section("model", model);
    v.section("optimizer", optimizer);
    v.section("schedule", schedule);
    v.section("training", training);
    v.section("lora", lora);
    v.section("output", output);
  }
};

// `config` with lora.target_modules given as a string (PEFT's target_modules="all-linear") read as
// the one-element list; the rest as is. The trainers' parsers read their JSON through it. Throws
// InputError "source: lora.quantize: moved to model.quantize (one key for every command)" for a
// key that moved (lora.quantize, lora.double_quant), its path under `key_prefix` (the pipeline's
// "sft") when given.
nlohmann::json with_peft_spellings(const nlohmann::json& config, const std::string& source,
                                   const std::string& key_prefix = "");

// Range checks; throws InputError "source: key.path: what". Also resolves lora.target_modules
// "all-linear" into the module names.
void check_train_sections(TrainSections& s, const std::string& source);

// How the base model loads under model.quantize: NF4 options for "nf4", nullopt for "none".
std::optional<Nf4Options> base_quantization(const TrainModelSection& model);

}  // namespace align
