#include "dpo/dpo_recipe.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/jsonl.h"
#include "common/progress.h"
#include "data/tokenizer.h"
#include "dist/data_parallel.h"
#include "dpo/dpo_loss.h"
#include "dpo/pair_data.h"
#include "dpo/pair_scoring.h"
#include "dpo/reference_logprobs.h"
#include "model/device_options.h"
#include "model/peft_io.h"
#include "model/phi3_model.h"
#include "sft/adamw.h"
#include "sft/lr_schedule.h"
#include "sft/metrics.h"
#include "sft/parallel_optimizer.h"
#include "sft/train_checkpoint.h"

namespace align {
namespace {
namespace fs = std::filesystem;

// Sums over pairs for the logged means (TRL's names).
struct PairStats {
  double pairs = 0, loss = 0, weight = 0, chosen_reward = 0, rejected_reward = 0, correct = 0,
         chosen_logp = 0, rejected_logp = 0;
  void add(const DpoLossOutput& out, const torch::Tensor& weights, const torch::Tensor& pc,
           const torch::Tensor& pr) {
    const torch::Tensor w = weights.to(out.losses.device());
    pairs += static_cast<double>(out.losses.size(0));
    loss += (out.losses.detach() * w).sum().item<double>();
    weight += w.sum().item<double>();
    chosen_reward += out.chosen_rewards.sum().item<double>();
    rejected_reward += out.rejected_rewards.sum().item<double>();
    correct += (out.chosen_rewards > out.rejected_rewards).sum().item<double>();
    chosen_logp += pc.detach().sum().item<double>();
    rejected_logp += pr.detach().sum().item<double>();
  }
  void sum_over(ProcessGroup& group) {
    const std::vector<double> s = sum_over_ranks(
        group,
        {pairs, loss, weight, chosen_reward, rejected_reward, correct, chosen_logp, rejected_logp});
    pairs = s[0], loss = s[1], weight = s[2], chosen_reward = s[3], rejected_reward = s[4],
    correct = s[5], chosen_logp = s[6], rejected_logp = s[7];
  }
  void write(nlohmann::json& r, const std::string& prefix) const {
    const double n = std::max(pairs, 1.0);
    r[prefix + "rewards/chosen"] = chosen_reward / n;
    r[prefix + "rewards/rejected"] = rejected_reward / n;
    r[prefix + "rewards/accuracies"] = correct / n;
    r[prefix + "rewards/margins"] = (chosen_reward - rejected_reward) / n;
    r[prefix + "logps/chosen"] = chosen_logp / n;
    r[prefix + "logps/rejected"] = rejected_logp / n;
  }
};

// The log-probs the loss sees: sums, or per-token means for IPO.
std::pair<torch::Tensor, torch::Tensor> loss_inputs(const PairLogps& s, const PairBatch& b,
                                                    DpoLossType type) {
  if (type != DpoLossType::kIpo) return {s.chosen, s.rejected};
  const torch::Device d = s.chosen.device();
  return {s.chosen / b.chosen_tokens.to(d), s.rejected / b.rejected_tokens.to(d)};
}

struct EvalResult {
  PairStats stats;
  std::vector<nlohmann::json> pivots;  // token pairs only
};

// Every rank scores the whole eval set (it is small), so rank 0 has every pivot to write.
EvalResult evaluate(Phi3Model& model, const Reference& ref, const PairData& data,
                    const DpoLossOptions& loss_opt, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.training();
  model.set_training(false);
  EvalResult r;
  for (int64_t u = 0; u < data.num_units(); u += batch_size) {
    std::vector<int64_t> units;
    for (int64_t i = u; i < std::min(data.num_units(), u + batch_size); ++i)
      units.push_back(i);
    const PairBatch b = data.batch(units);
    const PairLogps pol = score_pairs(model, b);
    const PairLogps rl = ref.logps(model, b, false);
    auto [pc, pr] = loss_inputs(pol, b, loss_opt.type);
    auto [rc, rr] = loss_inputs(rl, b, loss_opt.type);
    const DpoLossOutput out = dpo_loss(loss_opt, pc, pr, rc, rr);
    r.stats.add(out, b.weights, pc, pr);
    for (int64_t k = 0; data.token_pairs && k < b.num_pairs; ++k) {
      const TokenPair& p = data.tokens[static_cast<size_t>(b.pair_ids[static_cast<size_t>(k)])];
      const double margin =
          out.chosen_rewards[k].item<double>() - out.rejected_rewards[k].item<double>();
      r.pivots.push_back({{"query_id", p.query_id},
                          {"prompt_len", p.prompt.size()},
                          {"chosen_token_id", p.chosen},
                          {"rejected_token_id", p.rejected},
                          {"logp_chosen", pol.chosen[k].item<double>()},
                          {"logp_rejected", pol.rejected[k].item<double>()},
                          {"ref_logp_chosen", rl.chosen[k].item<double>()},
                          {"ref_logp_rejected", rl.rejected[k].item<double>()},
                          {"weight", p.weight},
                          {"margin", margin},
                          {"correct", margin > 0}});
    }
  }
  model.set_training(was_training);
  return r;
}

}  // namespace

DpoRunResult run_dpo(const DpoConfig& cfg, const DpoRunOptions& run) {
  // ---- Setup: ranks, device, data, reference, policy, optimizer, schedule, resume. Every rank
  // holds the whole model and the same data order; only rank 0 writes.
  const std::shared_ptr<ProcessGroup> group_ptr = run.group ? run.group : ProcessGroup::single();
  ProcessGroup& group = *group_ptr;
  const bool main_rank = group.is_main();
  const torch::Device device =
      group.world_size() > 1 ? group.device() : parse_device(cfg.model.device, "model.device");
  const torch::ScalarType dtype = parse_dtype_flag(cfg.model.dtype, device, "model.dtype");
  const ReferenceType ref_type = parse_reference_type(cfg.reference.type, "reference.type");
  const std::string out = cfg.output.dir;
  torch::manual_seed(cfg.training.seed);
  DpoRunResult result;

  const Tokenizer tokenizer = Tokenizer::load(cfg.model.path);
  const PairDataOptions data_opt{cfg.data.format == "token", cfg.data.max_seq_len,
                                 parse_pair_weight(cfg.data.weight, "data.weight")};
  const PairData train = load_pair_data(cfg.data.train, tokenizer, data_opt);
  PairData eval;
  if (!cfg.data.eval.empty()) eval = load_pair_data(cfg.data.eval, tokenizer, data_opt);
  if (main_rank) {
    std::cerr << "dpo: " << train.num_pairs() << " training pairs in " << train.num_units()
              << (train.token_pairs ? " chains" : " sequences") << " (" << train.truncated
              << " truncated)";
    if (!cfg.data.eval.empty()) std::cerr << ", " << eval.num_pairs() << " eval pairs";
    if (group.world_size() > 1) std::cerr << ", " << group.world_size() << " ranks";
    std::cerr << "\n";
  }

  if (!run.write_reference.empty()) {
    if (group.world_size() > 1) {
      throw InputError("--write-reference runs in one process: launch it without torchrun/srun");
    }
    const std::string ref_dir =
        ref_type == ReferenceType::kCheckpoint || !cfg.reference.path.empty() ? cfg.reference.path
                                                                              : cfg.model.path;
    const Phi3Model ref = Phi3Model::load(ref_dir, dtype, device);
    write_reference_logps(ref, train, cfg.data.train, run.write_reference, cfg.data.batch_size);
    std::cerr << "dpo: wrote reference log-probs from " << ref_dir << " to " << run.write_reference
              << "\n";
    return result;
  }
  if (!run.resume && find_latest_checkpoint(out)) {
    throw InputError(out +
                     " already holds checkpoints: pass --resume to continue that run, or "
                     "set output.dir to a new folder");
  }
  if (main_rank) fs::create_directories(out);

  std::optional<Phi3Model> ref_model;
  if (ref_type == ReferenceType::kCheckpoint) {
    ref_model = Phi3Model::load(cfg.reference.path, dtype, device);
  } else if (ref_type == ReferenceType::kPrecomputed) {
    for (const PairData* d : std::vector<const PairData*>{&train, &eval}) {
      if (d->num_units() > 0 && !d->has_reference()) {
        throw InputError(
            "reference.type precomputed: " + (d == &train ? cfg.data.train : cfg.data.eval) +
            " carries no ref_chosen_logps / ref_rejected_logps");
      }
    }
    if (!cfg.reference.path.empty() && cfg.reference.check_pairs > 0) {
      const Phi3Model check = Phi3Model::load(cfg.reference.path, dtype, device);
      result.reference_check = check_reference_logps(check, train, cfg.reference.check_pairs);
      std::cerr << "dpo: stored reference log-probs vs " << cfg.reference.path << ": max abs diff "
                << result.reference_check << "\n";
      if (result.reference_check > cfg.reference.check_tolerance) {
        throw InputError(cfg.data.train + ": stored reference log-probs differ from " +
                         cfg.reference.path + " by up to " +
                         std::to_string(result.reference_check) + " (reference.check_tolerance " +
                         std::to_string(cfg.reference.check_tolerance) + ")");
      }
    }
  }
  const Reference reference(ref_type, std::move(ref_model));

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

  PairLoader loader(train, cfg.data.batch_size, cfg.data.shuffle, cfg.training.seed);
  const int64_t accum = cfg.training.grad_accum;
  const int64_t total_steps =
      cfg.schedule.max_steps > 0
          ? cfg.schedule.max_steps
          : std::max<int64_t>(
                1, static_cast<int64_t>(std::ceil(cfg.schedule.epochs *
                                                  static_cast<double>(loader.batches_per_epoch()) /
                                                  static_cast<double>(accum))));
  const DpoLossOptions loss_opt{parse_dpo_loss_type(cfg.dpo.loss, "dpo.loss"), cfg.dpo.beta,
                                cfg.dpo.label_smoothing};

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
    loader.restore(batcher_state_from_json(ckpt.state.data, ckpt.state_path));
    step = ckpt.state.step;
    if (main_rank) {
      metrics->truncate_after(step);
      std::cerr << "dpo: resumed from " << ckpt.dir << " at step " << step << "\n";
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
    state.epoch = loader.state().epoch;
    state.data = to_json(loader.state());
    state.config = resolved;
    TrainCheckpointOptions ckpt_opt;
    ckpt_opt.keep_last = cfg.output.keep_last;
    ckpt_opt.max_shard_bytes = cfg.output.max_shard_size;
    ckpt_opt.group = &group;
    ckpt_opt.sharded_optimizer = optimizer.sharded();
    save_train_checkpoint(out, state, trainable, optimizer.state_tensors(), ckpt_opt);
  };

  // ---- Loop: one optimizer step = grad_accum micro-batches; each micro-batch's objective is
  // normalised by the whole step's pair weight and chosen-token count (dpo_step_objective), so
  // accumulation equals the large batch; the ranks share the micro-batches.
  ProgressBar progress("dpo", total_steps, main_rank);
  progress.advance(step);
  while (step < total_steps) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<PairBatch> micro;
    double step_weight = 0, step_chosen_tokens = 0;
    int64_t step_tokens = 0;
    for (int64_t i = 0; i < accum; ++i) {
      micro.push_back(train.batch(loader.next()));
      step_weight += micro.back().weights.sum().item<double>();
      step_chosen_tokens += micro.back().chosen_tokens.sum().item<double>();
      step_tokens += micro.back().real_tokens;
    }
    optimizer.zero_grad();
    PairStats stats;
    double loss = 0;
    const std::vector<int64_t> plan = optimizer.local_plan(accum);
    for (size_t j = 0; j < plan.size(); ++j) {
      if (plan[j] < 0) {
        optimizer.skip_backward();
        continue;
      }
      const PairBatch& b = micro[static_cast<size_t>(plan[j])];
      optimizer.before_backward(j + 1 == plan.size());
      const PairLogps ref = reference.logps(model, b, cfg.model.activation_checkpointing);
      const PairLogps pol = score_pairs(model, b, cfg.model.activation_checkpointing);
      auto [pc, pr] = loss_inputs(pol, b, loss_opt.type);
      auto [rc, rr] = loss_inputs(ref, b, loss_opt.type);
      const DpoLossOutput lo = dpo_loss(loss_opt, pc, pr, rc, rr);
      torch::Tensor l = dpo_step_objective(lo.losses, b.weights, step_weight, pol.chosen,
                                           cfg.dpo.nll_weight, step_chosen_tokens);
      l.backward();
      optimizer.after_backward();
      loss += l.item<double>();
      stats.add(lo, b.weights, pc, pr);
    }
    loss = sum_over_ranks(group, {loss})[0];
    stats.sum_over(group);
    const double grad_norm = optimizer.sync_and_clip(cfg.optimizer.max_grad_norm);
    const double lr = cfg.optimizer.lr * lr_multiplier(schedule, step);
    optimizer.step(lr);
    ++step;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.last_loss = loss;

    nlohmann::json record = {
        {"step", step},           {"epoch", loader.state().epoch},
        {"loss", loss},           {"lr", lr},
        {"grad_norm", grad_norm}, {"pairs", stats.pairs},
        {"tokens", step_tokens},  {"tokens_per_s", seconds > 0 ? step_tokens / seconds : 0.0}};
    stats.write(record, "");
    const bool eval_now = eval.num_units() > 0 &&
                          ((cfg.training.eval_every > 0 && step % cfg.training.eval_every == 0) ||
                           step == total_steps);
    if (eval_now) {
      const EvalResult e = evaluate(model, reference, eval, loss_opt, cfg.data.batch_size);
      result.eval_loss = e.stats.loss / std::max(e.stats.weight, 1e-30);
      result.eval_accuracy = e.stats.correct / std::max(e.stats.pairs, 1.0);
      result.eval_margin =
          (e.stats.chosen_reward - e.stats.rejected_reward) / std::max(e.stats.pairs, 1.0);
      record["eval_loss"] = result.eval_loss;
      e.stats.write(record, "eval_");
      if (main_rank && !e.pivots.empty()) {
        fs::create_directories(fs::path(out) / "pivots");
        JsonlWriter pivots(
            (fs::path(out) / "pivots" / (checkpoint_dir_name(step) + ".jsonl")).string());
        for (const auto& p : e.pivots)
          pivots.write(p);
        pivots.commit();
      }
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
    save_peft_adapter((fs::path(out) / "adapter").string(), model, cfg.model.path);
    if (cfg.output.merge_lora) {
      model.merge_lora();
      save_model_dir((fs::path(out) / "merged").string(), model, cfg.model.path,
                     cfg.output.max_shard_size);
    }
  } else {
    save_model_dir((fs::path(out) / "model").string(), model, cfg.model.path,
                   cfg.output.max_shard_size);
  }
  return result;
}

}  // namespace align
