#include "sft/sft_recipe.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/progress.h"
#include "data/batcher.h"
#include "data/sft_dataset.h"
#include "data/tokenizer.h"
#include "dist/data_parallel.h"
#include "model/device_options.h"
#include "model/peft_io.h"
#include "model/phi3_model.h"
#include "sft/adamw.h"
#include "sft/lr_schedule.h"
#include "sft/metrics.h"
#include "sft/parallel_optimizer.h"
#include "sft/sft_loss.h"
#include "sft/train_checkpoint.h"

namespace align {
namespace {
namespace fs = std::filesystem;

torch::Tensor to_tensor(const std::vector<int64_t>& values, int64_t rows, int64_t cols,
                        torch::Device device) {
  return torch::tensor(values, torch::kInt64).view({rows, cols}).to(device);
}

TrainBatch to_train_batch(const Batch& b, torch::Device device) {
  TrainBatch t;
  t.tokens = to_tensor(b.tokens, b.rows, b.seq_len, device);
  t.positions = to_tensor(b.positions, b.rows, b.seq_len, device);
  t.segments = to_tensor(b.segments, b.rows, b.seq_len, device);
  t.targets = to_tensor(b.targets, b.rows, b.seq_len, device);
  t.num_targets = b.num_targets;
  return t;
}

// Mean next-token loss over every target of `examples` (no grad, dropout off); the ranks share
// the batches.
double evaluate(Phi3Model& model, const std::vector<SftExample>& examples, BatcherOptions opt,
                bool checkpoint_layers, torch::Device device, ProcessGroup& group) {
  opt.shuffle = false;
  Batcher batcher(examples, opt);
  torch::NoGradGuard no_grad;
  const bool was_training = model.training();
  model.set_training(false);
  double total = 0;
  int64_t targets = 0;
  for (int64_t i = 0; i < batcher.batches_per_epoch(); ++i) {
    const Batch b = batcher.next();
    if (i % group.world_size() != group.rank()) continue;
    total += sft_loss_sum(model, to_train_batch(b, device), checkpoint_layers).item<double>();
    targets += b.num_targets;
  }
  model.set_training(was_training);
  const std::vector<double> sums = sum_over_ranks(group, {total, static_cast<double>(targets)});
  return sums[1] > 0 ? sums[0] / sums[1] : 0.0;
}

}  // namespace

SftRunResult run_sft(const SftConfig& cfg, const SftRunOptions& run) {
  // ---- Setup: ranks, device, model, trainable weights, data, optimizer, schedule, resume. Every
  // rank holds the whole model and the same data order; only rank 0 writes.
  const std::shared_ptr<ProcessGroup> group_ptr = run.group ? run.group : ProcessGroup::single();
  ProcessGroup& group = *group_ptr;
  const bool main_rank = group.is_main();
  const torch::Device device =
      group.world_size() > 1 ? group.device() : parse_device(cfg.model.device, "model.device");
  const torch::ScalarType dtype = parse_dtype_flag(cfg.model.dtype, device, "model.dtype");
  const std::string out = cfg.output.dir;
  if (!run.resume && find_latest_checkpoint(out)) {
    throw InputError(out +
                     " already holds checkpoints: pass --resume to continue that run, or "
                     "set output.dir to a new folder");
  }
  if (main_rank) fs::create_directories(out);
  torch::manual_seed(cfg.training.seed);

  const Tokenizer tokenizer = Tokenizer::load(cfg.model.path);
  Phi3Model model = Phi3Model::load(cfg.model.path, dtype, device);
  model.make_weights_owned();
  NamedTensors trainable;
  if (cfg.lora.enabled) {
    LoraOptions lora{cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.target_modules};
    validate_lora_options(lora, "lora");
    model.attach_lora(lora, cfg.training.seed);
    trainable = model.lora_parameters();
  } else {
    trainable = named_weights(model.config(), model.weights());
    for (auto& [name, w] : trainable)
      w.requires_grad_(true);
  }
  model.set_training(true);

  const SftDataOptions data_opt{cfg.data.assistant_only_loss, cfg.data.skip_bad_lines,
                                cfg.data.max_seq_len};
  const SftDataset train = load_sft_dataset(cfg.data.train, tokenizer, data_opt);
  SftDataset eval;
  if (!cfg.data.eval.empty()) eval = load_sft_dataset(cfg.data.eval, tokenizer, data_opt);
  if (main_rank) {
    std::cerr << "sft: " << train.examples.size() << " training examples (" << train.target_tokens
              << " target tokens, " << train.truncated << " truncated, " << train.skipped
              << " skipped)";
    if (!cfg.data.eval.empty()) std::cerr << ", " << eval.examples.size() << " eval examples";
    if (group.world_size() > 1) std::cerr << ", " << group.world_size() << " ranks";
    std::cerr << "\n";
    for (const auto& m : train.skip_messages)
      std::cerr << "sft: skipped " << m << "\n";
  }

  BatcherOptions batch_opt;
  batch_opt.max_seq_len = cfg.data.max_seq_len;
  batch_opt.rows_per_batch = cfg.data.rows_per_batch;
  batch_opt.packing = cfg.data.packing;
  batch_opt.padding_free = cfg.data.padding_free;
  batch_opt.shuffle = cfg.data.shuffle;
  batch_opt.seed = cfg.training.seed;
  batch_opt.pad_id = tokenizer.pad_id().value_or(tokenizer.eos_id().value_or(0));
  Batcher batcher(train.examples, batch_opt);
  const int64_t accum = cfg.training.grad_accum;
  const int64_t total_steps =
      cfg.schedule.max_steps > 0
          ? cfg.schedule.max_steps
          : std::max<int64_t>(
                1, static_cast<int64_t>(std::ceil(cfg.schedule.epochs *
                                                  static_cast<double>(batcher.batches_per_epoch()) /
                                                  static_cast<double>(accum))));

  AdamWOptions adam;
  adam.beta1 = cfg.optimizer.beta1;
  adam.beta2 = cfg.optimizer.beta2;
  adam.eps = cfg.optimizer.eps;
  adam.weight_decay = cfg.optimizer.weight_decay;
  ParallelOptimizer optimizer(group_ptr, trainable, adam, cfg.training.zero_stage);
  LrScheduleOptions schedule;
  schedule.type = parse_lr_schedule_type(cfg.schedule.type, "schedule.type");
  schedule.warmup_steps = cfg.schedule.warmup_steps;
  schedule.total_steps = total_steps;
  schedule.min_lr_ratio = cfg.schedule.min_lr_ratio;
  validate(schedule);

  std::optional<MetricsWriter> metrics;
  if (main_rank) metrics.emplace((fs::path(out) / "metrics.jsonl").string());
  int64_t step = 0;
  if (run.resume) {
    const LoadedTrainCheckpoint ckpt = optimizer.resume_from_latest(out);
    batcher.restore(batcher_state_from_json(ckpt.state.data, ckpt.state_path));
    step = ckpt.state.step;
    if (main_rank) {
      metrics->truncate_after(step);
      std::cerr << "sft: resumed from " << ckpt.dir << " at step " << step << "\n";
    }
  } else if (main_rank) {
    metrics->truncate_after(-1);
  }
  const nlohmann::json resolved = to_json(cfg);
  if (main_rank) {
    write_file_atomic((fs::path(out) / "config.json").string(), resolved.dump(2) + "\n");
  }

  auto save = [&] {
    TrainerState state;
    state.step = step;
    state.epoch = batcher.state().epoch;
    state.data = to_json(batcher.state());
    state.config = resolved;
    TrainCheckpointOptions ckpt_opt;
    ckpt_opt.keep_last = cfg.output.keep_last;
    ckpt_opt.max_shard_bytes = cfg.output.max_shard_size;
    ckpt_opt.group = &group;
    ckpt_opt.sharded_optimizer = optimizer.sharded();
    save_train_checkpoint(out, state, trainable, optimizer.state_tensors(), ckpt_opt);
  };

  // ---- Loop: one optimizer step = grad_accum micro-batches (over all ranks together), loss
  // normalised by the step's target count so accumulation and ranks equal the large batch.
  SftRunResult result;
  ProgressBar progress("sft", total_steps, main_rank);
  progress.advance(step);
  while (step < total_steps) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<Batch> micro;
    int64_t step_targets = 0, step_tokens = 0;
    for (int64_t i = 0; i < accum; ++i) {
      micro.push_back(batcher.next());
      step_targets += micro.back().num_targets;
      step_tokens += micro.back().rows * micro.back().seq_len;
    }
    optimizer.zero_grad();
    double loss = 0;
    const std::vector<int64_t> plan = optimizer.local_plan(accum);
    for (size_t j = 0; j < plan.size(); ++j) {
      if (plan[j] < 0 || micro[static_cast<size_t>(plan[j])].num_targets == 0) {
        optimizer.skip_backward();
        continue;
      }
      const Batch& b = micro[static_cast<size_t>(plan[j])];
      optimizer.before_backward(j + 1 == plan.size());
      torch::Tensor l =
          sft_loss_sum(model, to_train_batch(b, device), cfg.model.activation_checkpointing) /
          static_cast<double>(step_targets);
      l.backward();
      optimizer.after_backward();
      loss += l.item<double>();
    }
    loss = sum_over_ranks(group, {loss})[0];
    const double grad_norm = optimizer.sync_and_clip(cfg.optimizer.max_grad_norm);
    const double lr = cfg.optimizer.lr * lr_multiplier(schedule, step);
    optimizer.step(lr);
    ++step;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.last_loss = loss;

    nlohmann::json record = {{"step", step},
                             {"epoch", batcher.state().epoch},
                             {"loss", loss},
                             {"lr", lr},
                             {"grad_norm", grad_norm},
                             {"tokens", step_tokens},
                             {"target_tokens", step_targets},
                             {"tokens_per_s", seconds > 0 ? step_tokens / seconds : 0.0}};
    const bool eval_now = !eval.examples.empty() &&
                          ((cfg.training.eval_every > 0 && step % cfg.training.eval_every == 0) ||
                           step == total_steps);
    if (eval_now) {
      result.eval_loss = evaluate(model, eval.examples, batch_opt,
                                  cfg.model.activation_checkpointing, device, group);
      record["eval_loss"] = result.eval_loss;
    }
    if (main_rank && (step % cfg.training.log_every == 0 || eval_now || step == total_steps)) {
      metrics->write(record);
    }
    if ((cfg.output.save_every > 0 && step % cfg.output.save_every == 0) || step == total_steps) {
      save();  // every rank: each may hold an optimizer shard
    }
    progress.advance();
  }
  result.steps = step;

  // ---- Save: Hugging Face layout (PEFT adapter for LoRA, full model directory otherwise).
  model.set_training(false);
  if (!main_rank) return result;
  if (cfg.lora.enabled) {
    const std::string adapter = (fs::path(out) / "adapter").string();
    save_peft_adapter(adapter, model, cfg.model.path);
    if (cfg.output.merge_lora) {
      model.merge_lora();
      const std::string merged = (fs::path(out) / "merged").string();
      save_model_dir(merged, model, cfg.model.path, cfg.output.max_shard_size);
    }
  } else {
    const std::string dir = (fs::path(out) / "model").string();
    save_model_dir(dir, model, cfg.model.path, cfg.output.max_shard_size);
  }
  return result;
}

}  // namespace align
