// What every trainer's run shares, written once: the ranks and the device, the output folder
// (config.json, metrics.jsonl, checkpoints/, the exported model), the policy with its trainable
// weights (LoRA adapters or every weight), the data-parallel optimizer and LR schedule, --resume,
// the optimizer step over accumulated micro-batches and ranks, logging, saving, the progress bar
// and the Hugging Face export. A recipe keeps only its data, its loss and its metrics:
//
//   TrainRun run("sft", config, to_json(config), options.group, options.resume);
//   Phi3Model model = run.load_policy();
//   ... read the data, make the loader ...
//   if (auto data = run.start(loader.batches_per_epoch())) loader.restore(*data);
//   while (!run.done()) {
//     ... take grad_accum micro-batches ...
//     const TrainStep s = run.step([&](int64_t i) -> std::optional<torch::Tensor> {
//       return loss of micro-batch i, normalised by the whole step (nullopt: nothing to learn);
//     });
//     nlohmann::json record = run.record(s, tokens);       // + the recipe's own fields
//     const bool eval_now = has_eval && run.eval_due();                      // + eval metrics
//     run.end_step(record, loader.state(), eval_now);      // log, checkpoint, progress
//   }
//   run.finish(model, chat);                               // adapter/ (+ merged/) or model/
//
// Writes into output.dir (only rank 0 writes; every rank saves its optimizer shard):
//   config.json     the resolved run config (every field, defaults included)
//   metrics.jsonl   one line per logged step: the record (step, epoch, loss, learning_rate,
//                   grad_norm, num_tokens, tokens_per_s, elapsed_s, peak memory and the
//                   recipe's fields; docs/metrics.md)
//   checkpoints/step-N/  every output.save_every steps and at the end (keep_last kept): weights,
//                   optimizer, data position and RNG; --resume continues from the newest exactly
//   model/          full fine-tuning: a Hugging Face model directory
//   adapter/        LoRA: a PEFT adapter; merged/ with output.merge_lora: the merged model
#pragma once

#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "common/hub_cache.h"
#include "common/progress.h"
#include "data/batcher.h"
#include "data/chat_template.h"
#include "model/phi3_model.h"
#include "parallel/process_group.h"
#include "train/lr_schedule.h"
#include "train/metrics.h"
#include "train/named_tensors.h"
#include "train/parallel_optimizer.h"
#include "train/tensorboard.h"
#include "train/train_sections.h"

namespace align {

// The device a trainer runs on: the group's with several ranks, else model.device resolved.
torch::Device train_device(const ProcessGroup& group, const TrainModelSection& model);

// The config keys a --resume may change (the rest must equal the run's, or resume refuses
// naming them): how long it runs, how often it logs, evaluates and saves, where it writes and
// what it exports, the device, activation checkpointing and the eval set.
const std::set<std::string>& keys_free_on_resume();

// Optimizer steps in a run: schedule.max_steps, else ceil(epochs x batches / grad_accum), >= 1.
int64_t total_train_steps(const TrainSections& sections, int64_t batches_per_epoch);

// One optimizer step as the run did it.
struct TrainStep {
  double loss = 0;       // the step's objective, summed over micro-batches and ranks
  double grad_norm = 0;  // global, before clipping
  double lr = 0;         // the update's learning rate
  double seconds = 0;    // since the previous step ended (or the loop started)
};

// "loss 1.234, learning_rate 2.00e-05, grad_norm 0.81, tokens/s 5123": a record's headline
// figures, for progress lines.
std::string status_of(const nlohmann::json& record);

class TrainRun {
 public:
  // Resolves the device and dtype and seeds Torch (training.seed). A fresh run into a folder that
  // already holds checkpoints is an InputError (pass --resume); rank 0 creates the folder.
  // `name` prefixes log lines ("sft"); `resolved` is written as config.json and into checkpoints.
  TrainRun(std::string name, const TrainSections& sections, nlohmann::json resolved,
           std::shared_ptr<ProcessGroup> group, bool resume);

  ProcessGroup& group() { return *group_; }
  bool main_rank() const { return group_->is_main(); }
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }
  const std::string& output_dir() const { return sections_.output.dir; }
  const std::string& name() const { return name_; }
  // The directory model.path names: itself, or a hub id's snapshot in the Hugging Face cache
  // (common/hub_cache.h), resolved once here; config.json keeps model.path as written.
  const std::string& model_dir() const { return model_.dir; }

  // Loads model_dir(), owned and in training mode, with its trainable weights: LoRA adapters
  // (lora.enabled) or every weight.
  Phi3Model load_policy();

  // Sets up the optimizer and schedule for `batches_per_epoch` micro-batches per epoch, opens the
  // metrics log and writes config.json; with --resume restores weights, optimizer state, RNG and
  // step from the newest checkpoint and returns its data position (nullopt for a fresh run).
  std::optional<BatcherState> start(int64_t batches_per_epoch);

  bool done() const { return step_ >= total_steps_; }
  int64_t step() const { return step_; }  // optimizer steps done
  int64_t total_steps() const { return total_steps_; }

  // One optimizer step over grad_accum micro-batches: this rank runs its share of them
  // (micro_loss(i) for micro-batch index i: the loss tensor to backpropagate, already normalised
  // by the whole step, or nullopt when the micro-batch has nothing to learn), then the gradients
  // are summed over ranks, clipped to optimizer.max_grad_norm and applied at the schedule's lr.
  // A non-finite loss or gradient norm throws InputError naming the step before anything is
  // applied; the newest checkpoint stays resumable.
  TrainStep step(const std::function<std::optional<torch::Tensor>(int64_t)>& micro_loss);

  // The fields every trainer logs, under TRL's names where TRL has one: step, epoch (fractional:
  // micro-batches done / per epoch), loss, learning_rate, grad_norm, num_tokens (real tokens seen
  // so far, resumed runs included; `tokens` is this step's), tokens_per_s, elapsed_s and the peak
  // memory (train/memory_stats.h).
  nlohmann::json record(const TrainStep& s, int64_t tokens);
  // Wall-clock seconds of the run so far (evals and saves included; a resumed run continues from
  // its checkpoint's count).
  double elapsed_seconds() const;
  // Whether this step ends with an eval: every training.eval_every steps and at the last.
  bool eval_due() const;
  // Logs `record` (every training.log_every steps, at evals and at the last step) to
  // metrics.jsonl (and TensorBoard with output.report_to), saves a checkpoint with data position
  // `data` (every output.save_every steps and at the last; every rank takes part) and advances
  // the progress display: at a terminal the bar shows the ETA and the latest loss; without one,
  // each logged step is a line on stderr.
  // `save`: also save a checkpoint at this step (a recipe that may keep this step's weights).
  void end_step(const nlohmann::json& record, const BatcherState& data, bool evaluated,
                bool save = false);

  // Logs a record outside end_step (a recipe's eval before the first step) to metrics.jsonl and
  // TensorBoard (rank 0).
  void log_record(const nlohmann::json& record);
  // A checkpoint of the current step now (end_step saves on its schedule; a recipe saves step 0
  // so that the starting weights can be the result), with the recipe's state.
  void save_checkpoint(const BatcherState& data);
  // The recipe's own state (JSON), saved with every checkpoint and restored by --resume (null
  // for a fresh run): align dpo keeps its held-out evals so.
  void set_recipe_state(nlohmann::json state) { recipe_state_ = std::move(state); }
  const nlohmann::json& recipe_state() const { return recipe_state_; }
  // The checkpoint of `step` is kept whatever output.keep_last says (-1: none): the step whose
  // weights a recipe may return.
  void set_keep_step(int64_t step) { keep_step_ = step; }
  // Copies the trainable weights of the checkpoint of `step` into the live ones (every rank).
  void load_step_weights(int64_t step);

  // The result in Hugging Face layout (rank 0): adapter/ and with merge_lora merged/, or model/;
  // then one line on stderr: steps, time, the last logged metrics and where the result is;
  // `result_of` says which weights the result holds when they are not the last step's. The
  // tokenizer files copied with model/ and merged/ keep the base model's chat template, unless
  // the run forced and used another (model.chat_format phi4 / phi3), which is then written and
  // said in the log (data/chat_template.h write_chat_template).
  void finish(Phi3Model& model, const LazyChatFormat& chat, const std::string& result_of = "");

 private:
  // Throws InputError naming the first trainable weight with a NaN or inf: nothing non-finite is
  // ever saved or exported.
  void check_finite_weights() const;

  std::string name_;
  const TrainSections& sections_;
  nlohmann::json resolved_;
  std::shared_ptr<ProcessGroup> group_;
  bool resume_;
  torch::Device device_;
  torch::ScalarType dtype_;
  ModelLocation model_;
  NamedTensors trainable_;
  std::unique_ptr<ParallelOptimizer> optimizer_;
  LrScheduleOptions schedule_;
  std::optional<MetricsWriter> metrics_;
  std::optional<Progress> progress_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
  nlohmann::json last_record_ = nlohmann::json::object();
  int64_t batches_per_epoch_ = 1;
  int64_t num_tokens_ = 0;
  double elapsed_before_ = 0;  // from the checkpoint resumed
  nlohmann::json recipe_state_;
  int64_t keep_step_ = -1;
  std::chrono::steady_clock::time_point started_;
  int64_t step_ = 0;
  int64_t total_steps_ = 0;
  std::chrono::steady_clock::time_point step_start_;
};

}  // namespace align
