#include "dpo/dpo_recipe.h"

#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <optional>

#include "common/error.h"
#include "common/hub_cache.h"
#include "common/jsonl.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "dpo/dpo_loss.h"
#include "dpo/held_out_eval.h"
#include "dpo/pair_data.h"
#include "dpo/pair_scoring.h"
#include "dpo/reference_logprobs.h"
#include "model/config.h"
#include "model/phi3_model.h"
#include "parallel/data_parallel.h"
#include "train/train_checkpoint.h"
#include "train/train_run.h"

namespace align {
namespace {
namespace fs = std::filesystem;

// Sums over pairs for the logged means (TRL's names).
struct PairStats {
  double pairs = 0, loss = 0, weight = 0, chosen_reward = 0, rejected_reward = 0, correct = 0,
         chosen_logp = 0, rejected_logp = 0, chosen_logits = 0, rejected_logits = 0,
         chosen_tokens = 0, rejected_tokens = 0;
  // `pc`, `pr`: the log-probs the loss saw; `policy`: the policy's scores (for the logits).
  void add(const DpoLossOutput& out, const PairBatch& b, const torch::Tensor& pc,
           const torch::Tensor& pr, const PairLogps& policy) {
    const torch::Tensor w = b.weights.to(out.losses.device());
    pairs += static_cast<double>(out.losses.size(0));
    loss += (out.losses.detach() * w).sum().item<double>();
    weight += w.sum().item<double>();
    chosen_reward += out.chosen_rewards.sum().item<double>();
    rejected_reward += out.rejected_rewards.sum().item<double>();
    correct += (out.chosen_rewards > out.rejected_rewards).sum().item<double>();
    chosen_logp += pc.detach().sum().item<double>();
    rejected_logp += pr.detach().sum().item<double>();
    chosen_logits += policy.chosen_logits.sum().item<double>();
    rejected_logits += policy.rejected_logits.sum().item<double>();
    chosen_tokens += b.chosen_tokens.sum().item<double>();
    rejected_tokens += b.rejected_tokens.sum().item<double>();
  }
  void sum_over(ProcessGroup& group) {
    const std::vector<double> s = sum_over_ranks(
        group, {pairs, loss, weight, chosen_reward, rejected_reward, correct, chosen_logp,
                rejected_logp, chosen_logits, rejected_logits, chosen_tokens, rejected_tokens});
    pairs = s[0], loss = s[1], weight = s[2], chosen_reward = s[3], rejected_reward = s[4],
    correct = s[5], chosen_logp = s[6], rejected_logp = s[7], chosen_logits = s[8],
    rejected_logits = s[9], chosen_tokens = s[10], rejected_tokens = s[11];
  }
  void write(nlohmann::json& r, const std::string& prefix) const {
    const double n = std::max(pairs, 1.0);
    r[prefix + "rewards/chosen"] = chosen_reward / n;
    r[prefix + "rewards/rejected"] = rejected_reward / n;
    r[prefix + "rewards/accuracies"] = correct / n;
    r[prefix + "rewards/margins"] = (chosen_reward - rejected_reward) / n;
    r[prefix + "logps/chosen"] = chosen_logp / n;
    r[prefix + "logps/rejected"] = rejected_logp / n;
    r[prefix + "logits/chosen"] = chosen_logits / std::max(chosen_tokens, 1.0);
    r[prefix + "logits/rejected"] = rejected_logits / std::max(rejected_tokens, 1.0);
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
    r.stats.add(out, b, pc, pr, pol);
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

struct DpoData {
  PairData train, eval;
};

// `vocab_size`: the model's; every pair's ids are checked against it (data/token_range.h).
DpoData load_dpo_data(const DpoConfig& cfg, const LazyChatFormat& chat, int64_t vocab_size,
                      ProcessGroup& group) {
  const PairDataOptions options{cfg.data.format == PairFormat::kToken, cfg.data.max_seq_len,
                                cfg.data.weight, vocab_size};
  DpoData d;
  d.train = load_pair_data(cfg.data.train, chat, options, "data.train");
  if (!cfg.data.eval.empty()) d.eval = load_pair_data(cfg.data.eval, chat, options, "data.eval");
  if (group.is_main()) {
    std::cerr << "dpo: " << d.train.num_pairs() << " training pairs in " << d.train.num_units()
              << (d.train.token_pairs ? " chains" : " sequences") << " (" << d.train.truncated
              << " truncated)";
    if (!cfg.data.eval.empty()) std::cerr << ", " << d.eval.num_pairs() << " eval pairs";
    if (group.world_size() > 1) std::cerr << ", " << group.world_size() << " ranks";
    std::cerr << "\n";
  }
  return d;
}

// --write-reference: data.train scored by the reference model, written with its log-probs.
void write_reference(const DpoConfig& cfg, const std::string& out_path, ProcessGroup& group) {
  if (group.world_size() > 1) {
    throw InputError("--write-reference runs in one process: launch it without torchrun/srun");
  }
  const torch::Device device = train_device(group, cfg.model);
  const std::string model_dir = resolve_model_dir(cfg.model.path, "model.path").dir;
  const Tokenizer tokenizer = Tokenizer::load(model_dir);
  const LazyChatFormat chat(model_dir, &tokenizer, cfg.model.chat_format, "model.chat_format");
  const DpoData data = load_dpo_data(cfg, chat, load_model_config(model_dir).vocab_size, group);
  const bool own_reference =
      cfg.reference.type == ReferenceType::kCheckpoint || !cfg.reference.path.empty();
  const std::string ref_name = own_reference ? cfg.reference.path : cfg.model.path;
  const std::string ref_dir =
      own_reference ? resolve_model_dir(cfg.reference.path, "reference.path").dir : model_dir;
  // Loaded as the policy's base is (lora.quantize: NF4 under QLoRA).
  const Phi3Model ref = Phi3Model::load(ref_dir, resolve_dtype(cfg.model.dtype, device), device,
                                        base_quantization(cfg.lora));
  write_reference_logps(ref, data.train, cfg.data.train, out_path, cfg.data.batch_size);
  std::cerr << "dpo: wrote reference log-probs from " << ref_name << " to " << out_path << "\n";
}

}  // namespace

DpoRunResult run_dpo(const DpoConfig& cfg, const DpoRunOptions& options) {
  DpoRunResult result;
  if (!options.write_reference.empty()) {
    write_reference(cfg, options.write_reference,
                    options.group ? *options.group : *ProcessGroup::single());
    return result;
  }
  // ---- Setup: ranks, device, data, reference, policy, optimizer, schedule, resume. Every rank
  // holds the whole model and the same data order; only rank 0 writes.
  TrainRun run("dpo", cfg, to_json(cfg), options.group, options.resume);
  const Tokenizer tokenizer = Tokenizer::load(run.model_dir());
  const LazyChatFormat chat(run.model_dir(), &tokenizer, cfg.model.chat_format,
                            "model.chat_format");
  // reference.path resolved once (a directory or a hub id in the cache); messages keep it as
  // written.
  const std::string ref_dir =
      cfg.reference.path.empty() ? "" : resolve_model_dir(cfg.reference.path, "reference.path").dir;
  const DpoData data =
      load_dpo_data(cfg, chat, load_model_config(run.model_dir()).vocab_size, run.group());
  const PairData& train = data.train;
  const PairData& eval = data.eval;

  std::optional<Phi3Model> ref_model;
  const ReferenceType ref_type = cfg.reference.type;
  if (ref_type == ReferenceType::kCheckpoint) {
    ref_model = Phi3Model::load(ref_dir, run.dtype(), run.device(), base_quantization(cfg.lora));
  } else if (ref_type == ReferenceType::kPrecomputed) {
    for (const PairData* d : std::vector<const PairData*>{&train, &eval}) {
      if (d->num_units() > 0 && !d->has_reference()) {
        throw InputError(
            "reference.type precomputed: " + (d == &train ? cfg.data.train : cfg.data.eval) +
            " carries no ref_chosen_logps / ref_rejected_logps");
      }
    }
    if (!cfg.reference.path.empty() && cfg.reference.check_pairs > 0) {
      const Phi3Model check =
          Phi3Model::load(ref_dir, run.dtype(), run.device(), base_quantization(cfg.lora));
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
  Phi3Model model = run.load_policy();
  if (cfg.data.max_seq_len > model.config().max_position_embeddings) {
    throw InputError("data.max_seq_len: " + std::to_string(cfg.data.max_seq_len) +
                     " exceeds the model's max_position_embeddings " +
                     std::to_string(model.config().max_position_embeddings));
  }

  PairLoader loader(train, cfg.data.batch_size, cfg.data.shuffle, cfg.training.seed);
  if (const auto position = run.start(loader.batches_per_epoch())) loader.restore(*position);
  const DpoLossOptions loss_opt = cfg.dpo.options();

  // Held-out generation evals (eval.queries): the starting model is step 0, saved as a checkpoint
  // so that it can be the result; the record of evals travels in the checkpoints.
  std::optional<HeldOutEvals> held_out;
  if (cfg.eval.enabled()) {
    held_out.emplace(cfg.eval, cfg.training.eval_every, chat, model.config(), options.source, run);
    held_out->start(model, loader.state());
  }

  // ---- Loop: one optimizer step = grad_accum micro-batches; each micro-batch's objective is
  // normalised by the whole step's pair weight and chosen-token count (dpo_step_objective), so
  // accumulation equals the large batch; the ranks share the micro-batches.
  while (!run.done()) {
    std::vector<PairBatch> micro;
    double step_weight = 0, step_chosen_tokens = 0;
    int64_t step_tokens = 0;
    for (int64_t i = 0; i < cfg.training.grad_accum; ++i) {
      micro.push_back(train.batch(loader.next()));
      step_weight += micro.back().weights.sum().item<double>();
      step_chosen_tokens += micro.back().chosen_tokens.sum().item<double>();
      step_tokens += micro.back().real_tokens;
    }
    PairStats stats;
    const TrainStep s = run.step([&](int64_t i) -> std::optional<torch::Tensor> {
      const PairBatch& b = micro[static_cast<size_t>(i)];
      const PairLogps ref = reference.logps(model, b, cfg.model.activation_checkpointing);
      const PairLogps pol = score_pairs(model, b, cfg.model.activation_checkpointing);
      auto [pc, pr] = loss_inputs(pol, b, loss_opt.type);
      auto [rc, rr] = loss_inputs(ref, b, loss_opt.type);
      const DpoLossOutput lo = dpo_loss(loss_opt, pc, pr, rc, rr);
      stats.add(lo, b, pc, pr, pol);
      return dpo_step_objective(lo.losses, b.weights, step_weight, pol.chosen, cfg.dpo.nll_weight,
                                step_chosen_tokens);
    });
    stats.sum_over(run.group());
    result.last_loss = s.loss;

    nlohmann::json record = run.record(s, step_tokens);
    record["pairs"] = stats.pairs;
    stats.write(record, "");
    const bool eval_now = eval.num_units() > 0 && run.eval_due();
    if (eval_now) {
      const EvalResult e = evaluate(model, reference, eval, loss_opt, cfg.data.batch_size);
      result.eval_loss = e.stats.loss / std::max(e.stats.weight, 1e-30);
      result.eval_accuracy = e.stats.correct / std::max(e.stats.pairs, 1.0);
      result.eval_margin =
          (e.stats.chosen_reward - e.stats.rejected_reward) / std::max(e.stats.pairs, 1.0);
      record["eval_loss"] = result.eval_loss;
      e.stats.write(record, "eval_");
      if (run.main_rank() && !e.pivots.empty()) {
        const fs::path dir = fs::path(run.output_dir()) / "pivots";
        fs::create_directories(dir);
        JsonlWriter pivots((dir / (checkpoint_dir_name(run.step()) + ".jsonl")).string());
        for (const auto& p : e.pivots)
          pivots.write(p);
        pivots.commit();
      }
    }
    const bool held_out_now = held_out && held_out->due();
    if (held_out_now) held_out->evaluate(model, record);
    run.end_step(record, loader.state(), eval_now || held_out_now, /*save=*/held_out_now);
  }
  result.steps = run.step();

  // ---- The result: the best held-out step's weights (eval.keep_best), else the last step's.
  std::string result_of;
  if (held_out) {
    result_of = held_out->finish();
    const StepScore best = *held_out->record().best();
    result.best_step = cfg.eval.keep_best ? best.step : run.step();
    result.best_value = best.value;
  }

  // ---- Save: Hugging Face layout (PEFT adapter for LoRA, full model directory otherwise).
  run.finish(model, chat, result_of);
  return result;
}

}  // namespace align
