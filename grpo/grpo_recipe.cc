#include "grpo/grpo_recipe.h"

#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>

#include "common/error.h"
#include "common/hub_cache.h"
#include "common/jsonl.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "dpo/held_out_eval.h"
#include "dpo/reference_logprobs.h"
#include "eval/query_run.h"
#include "grpo/completion_scoring.h"
#include "grpo/generation.h"
#include "grpo/grpo_loss.h"
#include "grpo/rewards.h"
#include "model/config.h"
#include "parallel/data_parallel.h"
#include "rollout/engine.h"
#include "train/train_checkpoint.h"
#include "train/train_run.h"

namespace align {
namespace {
namespace fs = std::filesystem;

// Where pi_old comes from (grpo/grpo_recipe.h).
enum class OldPolicy { kSelf, kEngine, kScored };

// One micro-batch: rollouts [first, first + count) of the generation.
struct MicroBatch {
  CompletionBatch batch;
  torch::Tensor mask;        // [B, Tc] fp32 the loss mask
  torch::Tensor advantages;  // [B] fp32
  torch::Tensor old_logps;   // [B, Tc] fp32; undefined for kSelf
};

MicroBatch micro_batch(const Generation& g, const std::vector<Query>& queries, int64_t first,
                       int64_t count, OldPolicy old, bool mask_truncated, int64_t pad_id) {
  std::vector<const std::vector<TokenId>*> prompts, completions;
  std::vector<float> keep;
  for (int64_t i = first; i < first + count; ++i) {
    const Rollout& r = g.rollouts[static_cast<size_t>(i)];
    prompts.push_back(&queries[static_cast<size_t>(r.query)].prompt);
    completions.push_back(&r.tokens);
    keep.push_back(mask_truncated && r.truncated ? 0.0f : 1.0f);
  }
  MicroBatch mb;
  mb.batch = make_completion_batch(prompts, completions, pad_id);
  mb.mask = mb.batch.mask * torch::tensor(keep, torch::kFloat).unsqueeze(1);
  mb.advantages = g.advantages.advantages.narrow(0, first, count);
  if (old != OldPolicy::kSelf) {
    mb.old_logps = torch::zeros_like(mb.batch.mask);
    auto o = mb.old_logps.accessor<float, 2>();
    for (int64_t b = 0; b < count; ++b) {
      const Rollout& r = g.rollouts[static_cast<size_t>(first + b)];
      const std::vector<float>& v = old == OldPolicy::kEngine ? r.logprobs : r.old_logprobs;
      for (size_t t = 0; t < v.size(); ++t)
        o[b][static_cast<int64_t>(t)] = v[t];
    }
  }
  return mb;
}

// Sums over the step's micro-batches (then ranks) for TRL's token means.
struct StepStats {
  double kl = 0, kl_n = 0, entropy = 0, entropy_n = 0, low = 0, high = 0, region = 0, clip_n = 0;

  void add(const GrpoLossOutput& out, const torch::Tensor& entropies, const torch::Tensor& mask) {
    if (out.kl.defined()) {
      const auto [s, n] = masked_sum_count(out.kl, mask);
      kl += s, kl_n += n;
    }
    const auto [e, en] = masked_sum_count(entropies, mask);
    entropy += e, entropy_n += en;
    const auto [l, n] = masked_sum_count(out.low_clipped.to(torch::kFloat), mask);
    low += l, clip_n += n;
    high += masked_sum_count(out.high_clipped.to(torch::kFloat), mask).first;
    region += masked_sum_count(out.low_clipped.logical_or(out.high_clipped).to(torch::kFloat), mask)
                  .first;
  }
  void sum_over(ProcessGroup& group) {
    const std::vector<double> s =
        sum_over_ranks(group, {kl, kl_n, entropy, entropy_n, low, high, region, clip_n});
    kl = s[0], kl_n = s[1], entropy = s[2], entropy_n = s[3], low = s[4], high = s[5],
    region = s[6], clip_n = s[7];
  }
  void write(nlohmann::json& r, bool with_kl) const {
    if (with_kl) r["kl"] = kl / std::max(kl_n, 1.0);
    r["entropy"] = entropy / std::max(entropy_n, 1.0);
    r["clip_ratio/low_mean"] = low / std::max(clip_n, 1.0);
    r["clip_ratio/high_mean"] = high / std::max(clip_n, 1.0);
    r["clip_ratio/region_mean"] = region / std::max(clip_n, 1.0);
  }
};

// With num_iterations > 1 at a temperature other than 1: pi_old by one no-grad forward of the
// policy (as it sampled) over the micro-batches this rank runs, then shared by all ranks.
void score_old_policy(Generation& g, const std::vector<Query>& queries, const Phi3Model& model,
                      const GrpoConfig& cfg, int64_t pad_id, ProcessGroup& group) {
  torch::NoGradGuard no_grad;
  const int64_t M = cfg.training.grad_accum;
  const int64_t per = static_cast<int64_t>(g.rollouts.size()) / M;
  for (int64_t i : local_micro_batches(group, M)) {
    const MicroBatch mb = micro_batch(g, queries, i * per, per, OldPolicy::kSelf, false, pad_id);
    const torch::Tensor logps =
        score_completions(model, mb.batch, cfg.sampling.temperature, false).logps.cpu();
    for (int64_t b = 0; b < per; ++b) {
      Rollout& r = g.rollouts[static_cast<size_t>(i * per + b)];
      const torch::Tensor row = logps[b].narrow(0, 0, static_cast<int64_t>(r.tokens.size()));
      r.old_logprobs.assign(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
    }
  }
  share_old_logprobs(g, cfg.sampling.max_new_tokens, group);
}

}  // namespace

GrpoRunResult run_grpo(const GrpoConfig& cfg, const GrpoRunOptions& options) {
  GrpoRunResult result;
  const GrpoSection& grpo = cfg.grpo;
  const std::string& source = options.source;
  // ---- Setup: ranks, device, rewards and queries (checked before anything is sampled), the
  // reference, the policy, optimizer and schedule, resume, held-out evals, the engine.
  TrainRun run("grpo", cfg, to_json(cfg), options.group, options.resume);
  ProcessGroup& group = run.group();
  if (grpo.prompts_per_step % group.world_size() != 0) {
    throw InputError(source + ": grpo.prompts_per_step: " + std::to_string(grpo.prompts_per_step) +
                     " prompts do not split evenly over " + std::to_string(group.world_size()) +
                     " ranks (each rank samples and grades its share); use a multiple of " +
                     std::to_string(group.world_size()));
  }
  const Tokenizer tokenizer = Tokenizer::load(run.model_dir());
  const LazyChatFormat chat(run.model_dir(), &tokenizer, cfg.model.chat_format,
                            "model.chat_format");
  const std::vector<Reward> rewards =
      make_rewards(grpo.rewards, cfg.oracle, cfg.sampling.max_new_tokens, source);
  const ModelConfig model_config = load_model_config(run.model_dir());
  const QueryData data =
      read_query_data(cfg.data, *reward_field_check(rewards), tokenizer, chat, model_config,
                      cfg.sampling.max_new_tokens, cfg.rollout.kv_budget_tokens);
  const std::vector<Query>& queries = data.queries;
  if (queries.empty()) throw InputError(source + ": data.path: " + cfg.data.path + " is empty");

  std::optional<Reference> reference;
  if (grpo.beta != 0) {
    std::optional<Phi3Model> frozen;
    if (cfg.reference.type == ReferenceType::kCheckpoint) {
      frozen = Phi3Model::load(resolve_model_dir(cfg.reference.path, "reference.path").dir,
                               run.dtype(), run.device(), base_quantization(cfg.model));
    }
    reference.emplace(cfg.reference.type, std::move(frozen));
  }
  Phi3Model model = run.load_policy();
  const int64_t pad_id = tokenizer.pad_id().value_or(0);

  const int64_t P = grpo.prompts_per_step, G = grpo.num_generations, mu = grpo.num_iterations;
  const int64_t Q = static_cast<int64_t>(queries.size());
  const int64_t steps_per_epoch = (Q + P - 1) / P * mu;
  PromptLoader loader(Q, cfg.data.shuffle, cfg.training.seed);
  if (const auto position = run.start(steps_per_epoch * cfg.training.grad_accum))
    loader.restore(*position);

  std::optional<HeldOutEvals> held_out;
  if (cfg.eval.enabled()) {
    held_out.emplace(cfg.eval, cfg.training.eval_every, chat, model.config(), source, run);
    held_out->start(model, loader.state());
  }

  GenerationOptions gen_options;
  gen_options.num_generations = G;
  gen_options.sampling = cfg.sampling;
  gen_options.seed = cfg.training.seed;
  gen_options.stop_token_ids = data.stop_token_ids;
  gen_options.reward_weights = grpo.reward_weights;
  gen_options.scale_rewards = grpo.scale_rewards;
  // A generation saved mid-way (the steps of num_iterations > 1) continues as it was.
  std::optional<Generation> gen;
  if (run.recipe_state().is_object() && run.recipe_state().contains("generation")) {
    gen = generation_from_json(run.recipe_state().at("generation"), Q, run.output_dir());
    finish_generation(*gen, queries, rewards, gen_options);
  }
  EngineOptions engine_options = cfg.rollout;
  engine_options.reuse_prefixes = false;  // the weights change between calls
  Engine engine(model, &tokenizer, engine_options);

  const GrpoLossOptions loss_options = grpo.loss_options();
  const OldPolicy old_policy = mu == 1                           ? OldPolicy::kSelf
                               : cfg.sampling.temperature == 1.0 ? OldPolicy::kEngine
                                                                 : OldPolicy::kScored;
  const int64_t M = cfg.training.grad_accum;
  const int64_t per_micro = P * G / M;
  int64_t next_generation = gen ? gen->index + 1 : run.step() / mu;
  // Completion tokens sampled by the whole run (kept in the checkpoints).
  int64_t completion_tokens = run.recipe_state().is_object()
                                  ? run.recipe_state().value("completion_tokens", int64_t{0})
                                  : 0;
  std::map<int64_t, torch::Tensor> ref_cache;  // micro-batch -> reference log-probs, per generation

  // ---- Loop: a generation every num_iterations steps; each step scores its completions in
  // grad_accum micro-batches (shared by the ranks), each normalised by grpo_objective so that the
  // summed gradients are the step's.
  while (!run.done()) {
    int64_t new_tokens = 0;
    double rollout_seconds = 0;
    if (!gen || run.step() % mu == 0) {
      const auto rollout_start = std::chrono::steady_clock::now();
      const std::vector<int64_t> prompts = loader.next(P);
      gen = sample_generation(engine, tokenizer, queries, rewards, prompts, next_generation++,
                              gen_options, group);
      if (old_policy == OldPolicy::kScored)
        score_old_policy(*gen, queries, model, cfg, pad_id, group);
      ref_cache.clear();
      rollout_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - rollout_start).count();
      new_tokens = gen->tokens;
      ++result.generations;
      int64_t sampled = 0;
      for (const Rollout& r : gen->rollouts)
        sampled += static_cast<int64_t>(r.tokens.size());
      result.tokens_sampled += sampled;
      completion_tokens += sampled;
      if (run.main_rank() && grpo.log_completions) {
        const fs::path dir = fs::path(run.output_dir()) / "completions";
        fs::create_directories(dir);
        JsonlWriter out((dir / (checkpoint_dir_name(run.step() + 1) + ".jsonl")).string());
        for (const nlohmann::json& line : completion_records(*gen, queries, rewards, tokenizer))
          out.write(line);
        out.commit();
      }
    }
    GrpoNormalizer normalizer;
    normalizer.micro_batches = M;
    normalizer.max_completion_length = cfg.sampling.max_new_tokens;
    normalizer.step_tokens = 0;
    for (const Rollout& r : gen->rollouts) {
      if (!(grpo.mask_truncated_completions && r.truncated))
        normalizer.step_tokens += static_cast<double>(r.tokens.size());
    }
    StepStats stats;
    const TrainStep s = run.step([&](int64_t i) -> std::optional<torch::Tensor> {
      const MicroBatch mb = micro_batch(*gen, queries, i * per_micro, per_micro, old_policy,
                                        grpo.mask_truncated_completions, pad_id);
      const torch::Device device = model.device();
      const CompletionScores policy = score_completions(model, mb.batch, cfg.sampling.temperature,
                                                        true, cfg.model.activation_checkpointing);
      GrpoLossInputs in;
      in.logps = policy.logps;
      in.entropies = policy.entropies;
      in.advantages = mb.advantages.to(device);
      in.mask = mb.mask.to(device);
      if (mb.old_logps.defined()) in.old_logps = mb.old_logps.to(device);
      if (reference) {
        auto cached = ref_cache.find(i);
        if (cached == ref_cache.end()) {
          torch::Tensor ref;
          reference->with_model(model, [&](const Phi3Model& m) {
            ref = score_completions(m, mb.batch, cfg.sampling.temperature, false).logps;
          });
          cached = ref_cache.emplace(i, ref).first;
        }
        in.ref_logps = cached->second;
      }
      const GrpoLossOutput out = grpo_loss(loss_options, in);
      stats.add(out, policy.entropies, in.mask);
      return grpo_objective(grpo.loss_type, out.per_token_loss, in.mask, normalizer);
    });
    stats.sum_over(group);

    nlohmann::json record = run.record(s, new_tokens);
    record["generation"] = gen->index;
    record["num_completion_tokens"] = completion_tokens;
    record["rollout_s"] = rollout_seconds;
    record.update(gen->metrics);
    stats.write(record, grpo.beta != 0);
    result.last_reward = gen->metrics.value("reward", 0.0);
    const bool held_out_now = held_out && held_out->due();
    if (held_out_now) held_out->evaluate(model, record);
    // Mid-generation checkpoints keep the generation, so that --resume continues with it.
    nlohmann::json state =
        run.recipe_state().is_object() ? run.recipe_state() : nlohmann::json::object();
    state["completion_tokens"] = completion_tokens;
    if (run.step() % mu != 0) {
      state["generation"] = to_json(*gen);
    } else {
      state.erase("generation");
    }
    run.set_recipe_state(std::move(state));
    run.end_step(record, loader.state(), held_out_now, /*save=*/held_out_now);
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
