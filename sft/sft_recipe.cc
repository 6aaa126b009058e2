#include "sft/sft_recipe.h"

#include <torch/torch.h>

#include <iostream>
#include <optional>

#include "data/batcher.h"
#include "data/chat_template.h"
#include "data/sft_dataset.h"
#include "data/tokenizer.h"
#include "model/phi3_model.h"
#include "parallel/data_parallel.h"
#include "sft/sft_loss.h"
#include "train/train_run.h"

namespace align {
namespace {

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

struct SftEval {
  double loss = 0, mean_token_accuracy = 0, entropy = 0;
};

// Sums token stats over ranks and writes TRL's means into `record` under `prefix`.
void write_token_stats(SftTokenStats stats, ProcessGroup& group, nlohmann::json& record,
                       const std::string& prefix) {
  const std::vector<double> s =
      sum_over_ranks(group, {stats.targets, stats.correct, stats.entropy});
  const double n = std::max(s[0], 1.0);
  record[prefix + "mean_token_accuracy"] = s[1] / n;
  record[prefix + "entropy"] = s[2] / n;
}

// Mean next-token loss, token accuracy and entropy over every target of `examples` (no grad,
// dropout off); the ranks share the batches.
SftEval evaluate(Phi3Model& model, const std::vector<SftExample>& examples, BatcherOptions opt,
                 bool checkpoint_layers, torch::Device device, ProcessGroup& group) {
  opt.shuffle = false;
  Batcher batcher(examples, opt);
  torch::NoGradGuard no_grad;
  const bool was_training = model.training();
  model.set_training(false);
  double total = 0;
  SftTokenStats stats;
  for (int64_t i = 0; i < batcher.batches_per_epoch(); ++i) {
    const Batch b = batcher.next();
    if (i % group.world_size() != group.rank()) continue;
    total += sft_loss_sum(model, to_train_batch(b, device), checkpoint_layers, 1024, &stats)
                 .item<double>();
  }
  model.set_training(was_training);
  const std::vector<double> s =
      sum_over_ranks(group, {total, stats.targets, stats.correct, stats.entropy});
  const double n = std::max(s[1], 1.0);
  return {s[1] > 0 ? s[0] / s[1] : 0.0, s[2] / n, s[3] / n};
}

}  // namespace

SftRunResult run_sft(const SftConfig& cfg, const SftRunOptions& options) {
  // ---- Setup: ranks, device, model, trainable weights, data, optimizer, schedule, resume. Every
  // rank holds the whole model and the same data order; only rank 0 writes.
  TrainRun run("sft", cfg, to_json(cfg), options.group, options.resume);
  const torch::Device device = run.device();
  ProcessGroup& group = run.group();
  const Tokenizer tokenizer = Tokenizer::load(run.model_dir());
  const LazyChatFormat chat(run.model_dir(), &tokenizer, cfg.model.chat_format,
                            "model.chat_format");
  Phi3Model model = run.load_policy();
  if (cfg.data.max_seq_len > model.config().max_position_embeddings) {
    throw InputError("data.max_seq_len: " + std::to_string(cfg.data.max_seq_len) +
                     " exceeds the model's max_position_embeddings " +
                     std::to_string(model.config().max_position_embeddings));
  }

  const SftDataOptions data_opt{cfg.data.assistant_only_loss, cfg.data.skip_bad_lines,
                                cfg.data.max_seq_len, model.config().vocab_size};
  const SftDataset train = load_sft_dataset(cfg.data.train, chat, data_opt, "data.train");
  SftDataset eval;
  if (!cfg.data.eval.empty()) eval = load_sft_dataset(cfg.data.eval, chat, data_opt, "data.eval");
  if (run.main_rank()) {
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
  if (const auto data = run.start(batcher.batches_per_epoch())) batcher.restore(*data);

  // ---- Loop: one optimizer step = grad_accum micro-batches (over all ranks together), loss
  // normalised by the step's target count so accumulation and ranks equal the large batch.
  SftRunResult result;
  while (!run.done()) {
    std::vector<Batch> micro;
    int64_t step_targets = 0, step_tokens = 0;
    for (int64_t i = 0; i < cfg.training.grad_accum; ++i) {
      micro.push_back(batcher.next());
      step_targets += micro.back().num_targets;
      step_tokens += micro.back().num_tokens;
    }
    SftTokenStats stats;
    const TrainStep s = run.step([&](int64_t i) -> std::optional<torch::Tensor> {
      const Batch& b = micro[static_cast<size_t>(i)];
      if (b.num_targets == 0) return std::nullopt;
      return sft_loss_sum(model, to_train_batch(b, device), cfg.model.activation_checkpointing,
                          1024, &stats) /
             static_cast<double>(step_targets);
    });
    result.last_loss = s.loss;
    nlohmann::json record = run.record(s, step_tokens);
    record["target_tokens"] = step_targets;
    write_token_stats(stats, group, record, "");
    const bool eval_now = !eval.examples.empty() && run.eval_due();
    if (eval_now) {
      const SftEval e = evaluate(model, eval.examples, batch_opt,
                                 cfg.model.activation_checkpointing, device, group);
      result.eval_loss = e.loss;
      record["eval_loss"] = e.loss;
      record["eval_mean_token_accuracy"] = e.mean_token_accuracy;
      record["eval_entropy"] = e.entropy;
    }
    run.end_step(record, batcher.state(), eval_now);
  }
  result.steps = run.step();

  // ---- Save: Hugging Face layout (PEFT adapter for LoRA, full model directory otherwise).
  run.finish(model, chat);
  return result;
}

}  // namespace align
