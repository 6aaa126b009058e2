#include "dpo/dpo_recipe.h"

#include <torch/torch.h>

#include <array>
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

torch::Tensor to_f64(const torch::Tensor& t) {
  return t.to(torch::kFloat64);
}

// Sums over pairs for the logged means (TRL's names). add() sums a micro-batch's tensors where
// they are (each in its own dtype, then widened to kFloat64) and accumulates them on that device,
// so scoring a micro-batch waits for nothing; to_host() copies them to the host in one transfer
// (once per optimizer step or eval). The values are those of summing .item<double>() per
// micro-batch on the host: the same sums, the same double additions in the same order.
class PairStats {
 public:
  double pairs = 0, loss = 0, weight = 0, chosen_reward = 0, rejected_reward = 0, correct = 0,
         chosen_logp = 0, rejected_logp = 0, chosen_logits = 0, rejected_logits = 0,
         chosen_tokens = 0, rejected_tokens = 0;
  // `pc`, `pr`: the log-probs the loss saw; `policy`: the policy's scores (for the logits).
  void add(const DpoLossOutput& out, const PairBatch& b, const torch::Tensor& pc,
           const torch::Tensor& pr, const PairLogps& policy) {
    const torch::Tensor w = b.weights.to(out.losses.device());
    pairs += static_cast<double>(out.losses.size(0));
    // In the order of device_fields().
    const torch::Tensor sums =
        torch::stack({to_f64((out.losses.detach() * w).sum()), to_f64(w.sum()),
                      to_f64(out.chosen_rewards.sum()), to_f64(out.rejected_rewards.sum()),
                      to_f64((out.chosen_rewards > out.rejected_rewards).sum()),
                      to_f64(pc.detach().sum()), to_f64(pr.detach().sum()),
                      to_f64(policy.chosen_logits.sum()), to_f64(policy.rejected_logits.sum())});
    on_device_ = on_device_.defined() ? on_device_ + sums : sums;
    // The batch's token counts live on the host (PairBatch): no device sync.
    chosen_tokens += b.chosen_tokens.sum().item<double>();
    rejected_tokens += b.rejected_tokens.sum().item<double>();
  }
  // Adds the sums gathered by add() since the last call to the host fields.
  void to_host() {
    if (!on_device_.defined()) return;
    const torch::Tensor h = on_device_.to(torch::kCPU);
    on_device_ = torch::Tensor();
    const auto v = h.accessor<double, 1>();
    const std::array<double*, 9> fields = device_fields();
    for (size_t i = 0; i < fields.size(); ++i)
      *fields[i] += v[static_cast<int64_t>(i)];
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

 private:
  // The sums add() gathers on the device, in the order of its stack.
  std::array<double*, 9> device_fields() {
    return {&loss,        &weight,        &chosen_reward, &rejected_reward, &correct,
            &chosen_logp, &rejected_logp, &chosen_logits, &rejected_logits};
  }

  torch::Tensor on_device_;  // [9] kFloat64 sums since the last to_host(); undefined: none
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
    if (!data.token_pairs) continue;
    // The columns the pivots need, copied to the host in one transfer: chosen and rejected
    // rewards, policy and reference log-probs of the chosen and rejected tokens.
    const torch::Tensor host =
        torch::stack({to_f64(out.chosen_rewards), to_f64(out.rejected_rewards), to_f64(pol.chosen),
                      to_f64(pol.rejected), to_f64(rl.chosen), to_f64(rl.rejected)})
            .to(torch::kCPU);
    const auto v = host.accessor<double, 2>();
    for (int64_t k = 0; k < b.num_pairs; ++k) {
      const TokenPair& p = data.tokens[static_cast<size_t>(b.pair_ids[static_cast<size_t>(k)])];
      const double margin = v[0][k] - v[1][k];
      r.pivots.push_back({{"query_id", p.query_id},
                          {"prompt_len", p.prompt.size()},
                          {"chosen_token_id", p.chosen},
                          {"rejected_token_id", p.rejected},
                          {"logp_chosen", v[2][k]},
                          {"logp_rejected", v[3][k]},
                          {"ref_logp_chosen", v[4][k]},
                          {"ref_logp_rejected", v[5][k]},
                          {"weight", p.weight},
                          {"margin", margin},
                          {"correct", margin > 0}});
    }
  }
  r.stats.to_host();
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

// ---- Setup: ranks, device, data, reference, policy, optimizer, schedule, resume. Every rank holds
// the whole model and the same data order; only rank 0 writes.

// The reference of reference.type: the frozen checkpoint (loaded as the policy's base is), or the
// stored log-probs of `data` (checked against reference.path's model when one is given; the max
// difference goes to result.reference_check), or the policy's LoRA base (nothing to load).
Reference load_reference(const DpoConfig& cfg, TrainRun& run, const std::string& ref_dir,
                         const DpoData& data, DpoRunResult& result) {
  std::optional<Phi3Model> ref_model;
  const ReferenceType ref_type = cfg.reference.type;
  if (ref_type == ReferenceType::kCheckpoint) {
    ref_model = Phi3Model::load(ref_dir, run.dtype(), run.device(), base_quantization(cfg.model));
  } else if (ref_type == ReferenceType::kPrecomputed) {
    for (const PairData* d : std::vector<const PairData*>{&data.train, &data.eval}) {
      if (d->num_units() > 0 && !d->has_reference()) {
        throw InputError(
            "reference.type precomputed: " + (d == &data.train ? cfg.data.train : cfg.data.eval) +
            " carries no ref_chosen_logps / ref_rejected_logps");
      }
    }
    if (!cfg.reference.path.empty() && cfg.reference.check_pairs > 0) {
      const Phi3Model check =
          Phi3Model::load(ref_dir, run.dtype(), run.device(), base_quantization(cfg.model));
      result.reference_check = check_reference_logps(check, data.train, cfg.reference.check_pairs);
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
  return Reference(ref_type, std::move(ref_model));
}

// The policy (run.load_policy), refused when data.max_seq_len exceeds its positions.
Phi3Model load_policy(const DpoConfig& cfg, TrainRun& run) {
  Phi3Model model = run.load_policy();
  if (cfg.data.max_seq_len > model.config().max_position_embeddings) {
    throw InputError("data.max_seq_len: " + std::to_string(cfg.data.max_seq_len) +
                     " exceeds the model's max_position_embeddings " +
                     std::to_string(model.config().max_position_embeddings));
  }
  return model;
}

// Everything the loop trains with, built in member order (which is the order of the checks and
// their errors); then the data position of a resumed run is restored, and with eval.queries the
// held-out evals start. Neither copied nor moved: `chat` reads `tokenizer`, `loader` reads
// `data.train`, `held_out` reads `run` and `chat`.
struct DpoSetup {
  DpoSetup(const DpoConfig& cfg, const DpoRunOptions& options, DpoRunResult& result)
      : run("dpo", cfg, to_json(cfg), options.group, options.resume),
        tokenizer(Tokenizer::load(run.model_dir())),
        chat(run.model_dir(), &tokenizer, cfg.model.chat_format, "model.chat_format"),
        // reference.path resolved once (a directory or a hub id in the cache); messages keep it
        // as written.
        ref_dir(cfg.reference.path.empty()
                    ? ""
                    : resolve_model_dir(cfg.reference.path, "reference.path").dir),
        data(load_dpo_data(cfg, chat, load_model_config(run.model_dir()).vocab_size, run.group())),
        reference(load_reference(cfg, run, ref_dir, data, result)),
        model(load_policy(cfg, run)),
        loader(data.train, cfg.data.batch_size, cfg.data.shuffle, cfg.training.seed),
        loss_opt(cfg.dpo.options()) {
    if (const auto position = run.start(loader.batches_per_epoch())) loader.restore(*position);
    // Held-out generation evals (eval.queries): the starting model is step 0, saved as a
    // checkpoint so that it can be the result; the record of evals travels in the checkpoints.
    if (cfg.eval.enabled()) {
      held_out.emplace(cfg.eval, cfg.training.eval_every, chat, model.config(), options.source,
                       run);
      held_out->start(model, loader.state());
    }
  }
  DpoSetup(const DpoSetup&) = delete;
  DpoSetup& operator=(const DpoSetup&) = delete;

  TrainRun run;
  const Tokenizer tokenizer;
  const LazyChatFormat chat;
  const std::string ref_dir;
  const DpoData data;
  const Reference reference;
  Phi3Model model;
  PairLoader loader;
  const DpoLossOptions loss_opt;
  std::optional<HeldOutEvals> held_out;
};

// ---- Loop: one optimizer step = grad_accum micro-batches; each micro-batch's objective is
// normalised by the whole step's pair weight and chosen-token count (dpo_step_objective), so
// accumulation equals the large batch; the ranks share the micro-batches.

// The pair eval of data.eval at this step: its eval_* fields into `record` and `result`, and with
// token pairs pivots/step-N.jsonl (rank 0).
void eval_pairs(const DpoConfig& cfg, DpoSetup& s, nlohmann::json& record, DpoRunResult& result) {
  const EvalResult e = evaluate(s.model, s.reference, s.data.eval, s.loss_opt, cfg.data.batch_size);
  result.eval_loss = e.stats.loss / std::max(e.stats.weight, 1e-30);
  result.eval_accuracy = e.stats.correct / std::max(e.stats.pairs, 1.0);
  result.eval_margin =
      (e.stats.chosen_reward - e.stats.rejected_reward) / std::max(e.stats.pairs, 1.0);
  record["eval_loss"] = result.eval_loss;
  e.stats.write(record, "eval_");
  if (s.run.main_rank() && !e.pivots.empty()) {
    const fs::path dir = fs::path(s.run.output_dir()) / "pivots";
    fs::create_directories(dir);
    JsonlWriter pivots((dir / (checkpoint_dir_name(s.run.step()) + ".jsonl")).string());
    for (const auto& p : e.pivots)
      pivots.write(p);
    pivots.commit();
  }
}

void train_loop(const DpoConfig& cfg, DpoSetup& s, DpoRunResult& result) {
  const PairData& train = s.data.train;
  while (!s.run.done()) {
    std::vector<PairBatch> micro;
    double step_weight = 0, step_chosen_tokens = 0;
    int64_t step_tokens = 0;
    for (int64_t i = 0; i < cfg.training.grad_accum; ++i) {
      micro.push_back(train.batch(s.loader.next()));
      // Host tensors (PairBatch): no device sync.
      step_weight += micro.back().weights.sum().item<double>();
      step_chosen_tokens += micro.back().chosen_tokens.sum().item<double>();
      step_tokens += micro.back().real_tokens;
    }
    PairStats stats;
    const TrainStep t = s.run.step([&](int64_t i) -> std::optional<torch::Tensor> {
      const PairBatch& b = micro[static_cast<size_t>(i)];
      const PairLogps ref = s.reference.logps(s.model, b, cfg.model.activation_checkpointing);
      const PairLogps pol = score_pairs(s.model, b, cfg.model.activation_checkpointing);
      auto [pc, pr] = loss_inputs(pol, b, s.loss_opt.type);
      auto [rc, rr] = loss_inputs(ref, b, s.loss_opt.type);
      const DpoLossOutput lo = dpo_loss(s.loss_opt, pc, pr, rc, rr);
      stats.add(lo, b, pc, pr, pol);
      return dpo_step_objective(lo.losses, b.weights, step_weight, pol.chosen, cfg.dpo.nll_weight,
                                step_chosen_tokens);
    });
    stats.to_host();  // the step's one copy of its statistics
    stats.sum_over(s.run.group());
    result.last_loss = t.loss;

    nlohmann::json record = s.run.record(t, step_tokens);
    record["pairs"] = stats.pairs;
    stats.write(record, "");
    const bool eval_now = s.data.eval.num_units() > 0 && s.run.eval_due();
    if (eval_now) eval_pairs(cfg, s, record, result);
    const bool held_out_now = s.held_out && s.held_out->due();
    if (held_out_now) s.held_out->evaluate(s.model, record);
    s.run.end_step(record, s.loader.state(), eval_now || held_out_now, /*save=*/held_out_now);
  }
  result.steps = s.run.step();
}

// ---- Save: the result is the best held-out step's weights (eval.keep_best), else the last
// step's, written in Hugging Face layout (PEFT adapter for LoRA, full model directory otherwise).
void save_result(const DpoConfig& cfg, DpoSetup& s, DpoRunResult& result) {
  std::string result_of;
  if (s.held_out) {
    result_of = s.held_out->finish();
    const StepScore best = *s.held_out->record().best();
    result.best_step = cfg.eval.keep_best ? best.step : s.run.step();
    result.best_value = best.value;
  }
  s.run.finish(s.model, s.chat, result_of);
}

}  // namespace

DpoRunResult run_dpo(const DpoConfig& cfg, const DpoRunOptions& options) {
  DpoRunResult result;
  DpoSetup setup(cfg, options, result);
  train_loop(cfg, setup, result);
  save_result(cfg, setup, result);
  return result;
}

void write_dpo_reference(const DpoConfig& cfg, const std::string& out_path,
                         std::shared_ptr<ProcessGroup> job) {
  if (!job) job = ProcessGroup::single();
  ProcessGroup& group = *job;
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
  // Loaded as the policy's base is (model.quantize: NF4 under QLoRA).
  const Phi3Model ref = Phi3Model::load(ref_dir, resolve_dtype(cfg.model.dtype, device), device,
                                        base_quantization(cfg.model));
  write_reference_logps(ref, data.train, cfg.data.train, out_path, cfg.data.batch_size);
  std::cerr << "dpo: wrote reference log-probs from " << ref_name << " to " << out_path << "\n";
}

}  // namespace align
