#include "train/train_run.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <regex>

#include "common/atomic_file.h"
#include "common/config_reader.h"
#include "common/error.h"
#include "common/output_dir.h"
#include "data/chat_template.h"
#include "model/device_options.h"
#include "model/lora.h"
#include "model/peft_io.h"
#include "parallel/data_parallel.h"
#include "train/adamw.h"
#include "train/memory_stats.h"
#include "train/train_checkpoint.h"

namespace align {
namespace fs = std::filesystem;

torch::Device train_device(const ProcessGroup& group, const TrainModelSection& model) {
  return group.world_size() > 1 ? group.device() : resolve_device(model.device, "model.device");
}

const std::set<std::string>& keys_free_on_resume() {
  static const std::set<std::string> keys = {"schedule.max_steps", "schedule.epochs",
                                             "training.log_every", "training.eval_every",
                                             "output.dir",         "output.save_every",
                                             "output.keep_last",   "output.merge_lora",
                                             "output.report_to",   "output.max_shard_size",
                                             "model.device",       "model.activation_checkpointing",
                                             "data.eval"};
  return keys;
}

int64_t total_train_steps(const TrainSections& s, int64_t batches_per_epoch) {
  if (s.schedule.max_steps > 0) return s.schedule.max_steps;
  const double steps = std::ceil(s.schedule.epochs * static_cast<double>(batches_per_epoch) /
                                 static_cast<double>(s.training.grad_accum));
  return std::max<int64_t>(1, static_cast<int64_t>(steps));
}

TrainRun::TrainRun(std::string name, const TrainSections& sections, nlohmann::json resolved,
                   std::shared_ptr<ProcessGroup> group, bool resume)
    : name_(std::move(name)),
      sections_(sections),
      resolved_(std::move(resolved)),
      group_(group ? std::move(group) : ProcessGroup::single()),
      resume_(resume),
      device_(train_device(*group_, sections.model)),
      dtype_(resolve_dtype(sections.model.dtype, device_)) {
  const std::string& out = output_dir();
  model_ = resolve_model_dir(sections_.model.path, "model.path");
  if (!resume_ && find_latest_checkpoint(out)) {
    throw InputError(out +
                     " already holds checkpoints: pass --resume to continue that run, or "
                     "set output.dir to a new folder");
  }
  if (main_rank()) {
    create_output_dir(out, "output.dir");
    if (const int n = remove_stale_temp_files(out))
      std::cerr << name_ << ": removed " << n << " temporary files a killed run left in " << out
                << "\n";
  }
  torch::manual_seed(sections_.training.seed);
}

Phi3Model TrainRun::load_policy() {
  Phi3Model model =
      Phi3Model::load(model_.dir, dtype_, device_, base_quantization(sections_.model));
  model.make_weights_owned();
  const LoraSection& l = sections_.lora;
  if (l.enabled) {
    const LoraOptions lora{l.rank, l.alpha, l.dropout, l.target_modules};
    validate_lora_options(lora, "lora");
    model.attach_lora(lora, sections_.training.seed);
    trainable_ = model.lora_parameters();
  } else {
    trainable_ = named_weights(model.config(), model.weights());
    for (auto& [tensor_name, w] : trainable_)
      w.requires_grad_(true);
  }
  model.set_training(true);
  return model;
}

std::optional<BatcherState> TrainRun::start(int64_t batches_per_epoch) {
  if (trainable_.empty()) throw Error("TrainRun::start: call load_policy() first");
  total_steps_ = total_train_steps(sections_, batches_per_epoch);
  const OptimizerSection& o = sections_.optimizer;
  AdamWOptions adam;
  adam.beta1 = o.beta1;
  adam.beta2 = o.beta2;
  adam.eps = o.eps;
  adam.weight_decay = o.weight_decay;
  optimizer_ =
      std::make_unique<ParallelOptimizer>(group_, trainable_, adam, sections_.training.zero_stage);
  schedule_.type = sections_.schedule.type;
  schedule_.warmup_steps = sections_.schedule.warmup_steps;
  schedule_.total_steps = total_steps_;
  schedule_.min_lr_ratio = sections_.schedule.min_lr_ratio;
  validate(schedule_);

  const std::string& out = output_dir();
  if (main_rank()) {
    metrics_.emplace((fs::path(out) / "metrics.jsonl").string());
    const auto& sinks = sections_.output.report_to;
    if (std::find(sinks.begin(), sinks.end(), "tensorboard") != sinks.end())
      tensorboard_ = std::make_unique<TensorBoardWriter>(out);
  }
  std::optional<BatcherState> data;
  if (resume_) {
    const LoadedTrainCheckpoint ckpt = optimizer_->resume_from_latest(out);
    const std::vector<std::string> changed =
        config_differences(ckpt.state.config, resolved_, keys_free_on_resume());
    if (!changed.empty()) {
      std::string list;
      for (const std::string& key : changed)
        list += (list.empty() ? "" : ", ") + key;
      std::string free;
      for (const std::string& key : keys_free_on_resume())
        free += (free.empty() ? "" : ", ") + key;
      const nlohmann::json::json_pointer at(
          "/" + std::regex_replace(changed.front(), std::regex("\\."), "/"));
      throw InputError(
          "--resume: the config differs from the run's in " + out + " (" + list + "; " +
          changed.front() + " was " +
          (ckpt.state.config.contains(at) ? ckpt.state.config.at(at).dump() : "absent") + ", now " +
          (resolved_.contains(at) ? resolved_.at(at).dump() : "absent") +
          "): resume with the run's config (" + ckpt.state_path +
          " holds it), or start a new "
          "run in another output.dir. Only these may change on resume: " +
          free);
    }
    data = batcher_state_from_json(ckpt.state.data, ckpt.state_path);
    step_ = ckpt.state.step;
    num_tokens_ = ckpt.state.metrics.value("num_tokens", int64_t{0});
    elapsed_before_ = ckpt.state.metrics.value("elapsed_s", 0.0);
    recipe_state_ = ckpt.state.metrics.value("recipe", nlohmann::json());
    if (main_rank()) {
      metrics_->truncate_after(step_);
      std::cerr << name_ << ": resumed from " << ckpt.dir << " at step " << step_ << "\n";
    }
  } else if (main_rank()) {
    metrics_->truncate_after(-1);
  }
  if (main_rank()) {
    write_file_atomic((fs::path(out) / "config.json").string(), resolved_.dump(2) + "\n");
  }
  batches_per_epoch_ = batches_per_epoch;
  progress_.emplace(name_ + " step", total_steps_, main_rank(), step_);
  step_start_ = std::chrono::steady_clock::now();
  started_ = step_start_;
  return data;
}

TrainStep TrainRun::step(const std::function<std::optional<torch::Tensor>(int64_t)>& micro_loss) {
  ParallelOptimizer& opt = *optimizer_;
  opt.zero_grad();
  double loss = 0;
  const std::vector<int64_t> plan = opt.local_plan(sections_.training.grad_accum);
  for (size_t j = 0; j < plan.size(); ++j) {
    std::optional<torch::Tensor> l;
    if (plan[j] >= 0) l = micro_loss(plan[j]);
    if (!l) {
      opt.skip_backward();
      continue;
    }
    opt.before_backward(j + 1 == plan.size());
    l->backward();
    opt.after_backward();
    loss += l->item<double>();
  }
  TrainStep s;
  s.loss = sum_over_ranks(*group_, {loss})[0];
  s.grad_norm = opt.sync_and_clip(sections_.optimizer.max_grad_norm);
  s.lr = sections_.optimizer.lr * lr_multiplier(schedule_, step_);
  if (!std::isfinite(s.loss) || !std::isfinite(s.grad_norm)) {
    // Every rank sees the same global loss and norm, so every rank stops here.
    const auto latest = find_latest_checkpoint(output_dir());
    throw InputError(name_ + ": step " + std::to_string(step_ + 1) + " of " +
                     std::to_string(total_steps_) + ": the loss is " + std::to_string(s.loss) +
                     " and the gradient norm " + std::to_string(s.grad_norm) +
                     "; stopped before applying it, nothing of it was saved. " +
                     (latest ? "The newest checkpoint (" + *latest + ") is intact: "
                             : std::string("No checkpoint was written yet: ")) +
                     "lower optimizer.lr (" + std::to_string(sections_.optimizer.lr) +
                     ") or check the data" + (latest ? ", then --resume" : ""));
  }
  opt.step(s.lr);
  ++step_;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start_).count();
  return s;
}

nlohmann::json TrainRun::record(const TrainStep& s, int64_t tokens) {
  num_tokens_ += tokens;
  const double epoch = static_cast<double>(step_ * sections_.training.grad_accum) /
                       static_cast<double>(std::max<int64_t>(batches_per_epoch_, 1));
  nlohmann::json r = {
      {"step", step_},
      {"epoch", epoch},
      {"loss", s.loss},
      {"learning_rate", s.lr},
      {"grad_norm", s.grad_norm},
      {"num_tokens", num_tokens_},
      {"tokens_per_s", s.seconds > 0 ? static_cast<double>(tokens) / s.seconds : 0.0},
      {"elapsed_s", elapsed_seconds()}};
  add_memory_stats(r, device_);
  return r;
}

double TrainRun::elapsed_seconds() const {
  return elapsed_before_ +
         std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

bool TrainRun::eval_due() const {
  const int64_t every = sections_.training.eval_every;
  return (every > 0 && step_ % every == 0) || step_ == total_steps_;
}

void TrainRun::log_record(const nlohmann::json& record) {
  if (!main_rank()) return;
  metrics_->write(record);
  if (tensorboard_) tensorboard_->write(record);
}

void TrainRun::save_checkpoint(const BatcherState& data) {
  check_finite_weights();
  TrainerState state;
  state.step = step_;
  state.epoch = data.epoch;
  state.data = to_json(data);
  state.config = resolved_;
  state.metrics = {{"num_tokens", num_tokens_}, {"elapsed_s", elapsed_seconds()}};
  if (!recipe_state_.is_null()) state.metrics["recipe"] = recipe_state_;
  TrainCheckpointOptions ckpt;
  ckpt.keep_last = sections_.output.keep_last;
  ckpt.keep_step = keep_step_;
  ckpt.max_shard_bytes = sections_.output.max_shard_size;
  ckpt.group = group_.get();
  ckpt.sharded_optimizer = optimizer_->sharded();
  save_train_checkpoint(output_dir(), state, trainable_, optimizer_->state_tensors(), ckpt);
}

void TrainRun::load_step_weights(int64_t step) {
  const std::string dir =
      (fs::path(checkpoints_dir(output_dir())) / checkpoint_dir_name(step)).string();
  const LoadedTrainCheckpoint ckpt = load_train_checkpoint(dir);
  torch::NoGradGuard no_grad;
  for (auto& [tensor_name, w] : trainable_)
    w.copy_(ckpt.weights.get(tensor_name, w.scalar_type(), w.device()));
}

void TrainRun::end_step(const nlohmann::json& record, const BatcherState& data, bool evaluated,
                        bool save) {
  const bool last = step_ == total_steps_;
  const bool logged = step_ % sections_.training.log_every == 0 || evaluated || last;
  if (logged) log_record(record);
  last_record_ = record;
  progress_->set_status(status_of(record));
  const int64_t every = sections_.output.save_every;
  if ((every > 0 && step_ % every == 0) || last || save) save_checkpoint(data);
  progress_->advance();
  if (logged) progress_->log();
  step_start_ = std::chrono::steady_clock::now();
}

void TrainRun::check_finite_weights() const {
  for (const auto& [tensor_name, w] : trainable_) {
    if (!torch::isfinite(w.detach()).all().item<bool>()) {
      throw InputError(name_ + ": step " + std::to_string(step_) + ": weight " + tensor_name +
                       " is no longer finite; nothing was saved (lower optimizer.lr)");
    }
  }
}

void TrainRun::finish(Phi3Model& model, const LazyChatFormat& chat, const std::string& result_of) {
  model.set_training(false);
  check_finite_weights();
  if (progress_) progress_->finish();
  if (!main_rank()) return;
  const fs::path out(output_dir());
  const std::string& base = model_.dir;  // the tokenizer and generation files copied along
  const int64_t shard = sections_.output.max_shard_size;
  if (sections_.lora.enabled) {
    save_peft_adapter((out / "adapter").string(), model, model_.name_or_path,
                      model_.hub ? model_.hub->revision : "");
    if (sections_.output.merge_lora) {
      model.merge_lora();
      save_model_dir((out / "merged").string(), model, base, shard);
      const std::string wrote = write_chat_template((out / "merged").string(), chat);
      if (!wrote.empty()) std::cerr << name_ << ": " << wrote << "\n";
    }
  } else {
    save_model_dir((out / "model").string(), model, base, shard);
    const std::string wrote = write_chat_template((out / "model").string(), chat);
    if (!wrote.empty()) std::cerr << name_ << ": " << wrote << "\n";
  }
  const std::string result = !sections_.lora.enabled       ? "model/"
                             : sections_.output.merge_lora ? "adapter/ and merged/"
                                                           : "adapter/";
  std::cerr << name_ << ": done: " << step_ << " steps in "
            << format_duration(progress_ ? progress_->elapsed_s() : 0) << "; "
            << status_of(last_record_) << " -> " << (out / result).string()
            << (result_of.empty() ? "" : " (" + result_of + ")") << "\n";
}

std::string status_of(const nlohmann::json& record) {
  std::string out;
  char buffer[64];
  for (const char* key :
       {"loss", "eval_loss", "learning_rate", "grad_norm", "mean_token_accuracy",
        "rewards/accuracies", "rewards/margins", "reward", "eval_rewards/accuracies", "eval_pass@1",
        "eval_completions/clipped_ratio", "tokens_per_s"}) {
    if (!record.contains(key) || !record.at(key).is_number()) continue;
    const double v = record.at(key).get<double>();
    const std::string k = key;
    const char* format = k == "learning_rate"  ? "%s %.2e"
                         : k == "tokens_per_s" ? "%s %.0f"
                                               : "%s %.4g";
    std::snprintf(buffer, sizeof buffer, format,
                  std::string(key) == "tokens_per_s" ? "tokens/s" : key, v);
    out += (out.empty() ? "" : ", ") + std::string(buffer);
  }
  return out;
}

}  // namespace align
