// `align sft`: supervised fine-tuning as one flat program (setup -> loop -> save -> cleanup).
//
// Writes into output.dir:
//   config.json              the resolved run config (every field, defaults included)
//   metrics.jsonl            one line per logged step (docs/metrics.md): step, epoch, loss,
//                            learning_rate, grad_norm, num_tokens, mean_token_accuracy, entropy,
//                            target_tokens, tokens_per_s; eval_loss, eval_mean_token_accuracy,
//                            eval_entropy on eval steps (runs/ event files with TensorBoard)
//   checkpoints/step-N/      every save_every steps and at the end (keep_last kept); --resume
//                            continues from the newest with weights, optimizer, data position and
//                            RNG restored, so an interrupted run ends with the same weights
//   model/                   full fine-tuning: a Hugging Face model directory (config, safetensors,
//                            tokenizer files, generation config)
//   adapter/                 LoRA: a PEFT adapter (adapter_config.json, adapter_model.safetensors)
//   merged/                  LoRA with output.merge_lora: the merged full model directory
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "parallel/process_group.h"
#include "sft/sft_config.h"

namespace align {

struct SftRunOptions {
  bool resume = false;  // continue from the newest checkpoint in output.dir (required to exist)
  // The data-parallel job this process belongs to (null: single process). With N ranks each
  // runs its share of every step's grad_accum micro-batches; gradients are summed over ranks, so
  // the run equals the single-process one; only rank 0 writes output.dir.
  std::shared_ptr<ProcessGroup> group;
};

struct SftRunResult {
  int64_t steps = 0;      // optimizer steps done in total
  double last_loss = 0;   // training loss of the last step
  double eval_loss = -1;  // final eval loss; -1 without an eval set
};

SftRunResult run_sft(const SftConfig& config, const SftRunOptions& options);

}  // namespace align
