// The `align grpo` run config: the trainers' shared sections (train/train_sections.h: model,
// optimizer, schedule, training, lora, output, with GRPO's defaults), the sampling sections of
// align eval and pts (eval/query_sections.h: sampling, rollout), the held-out eval of align dpo
// (eval: DpoEvalSection) and GRPO's own data, oracle, reference and grpo sections, each defined
// once (common/config_fields.h), read strictly and written back resolved into the run's output
// folder. `align grpo --help` lists every key; docs/grpo.md maps them to TRL's GRPOConfig.
//
// Resolved here: reference.type auto (lora_base with LoRA, else checkpoint with path =
// model.path, the starting weights); grpo.epsilon_high -1 (= epsilon, TRL's None);
// grpo.reward_weights [] (1 each); eval.oracle {} (= the oracle section).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dpo/dpo_config.h"
#include "eval/query_sections.h"
#include "grpo/grpo_loss.h"
#include "train/train_sections.h"

namespace align {

struct GrpoDataSection : QueryDataSection {
  bool shuffle = true;

  template <typename V>
  void fields(V& v) {
    QueryDataSection::fields(v);
    v("shuffle", shuffle, "visit the queries in a new order every epoch (TRL's shuffle_dataset)");
  }
};

struct GrpoReferenceSection {
  ReferenceType type = ReferenceType::kAuto;
  std::string path;

  template <typename V>
  void fields(V& v) {
    v("type", type, "with beta > 0: auto, lora_base (adapters off) or checkpoint");
    v("path", path, "checkpoint: the frozen reference model");
  }
};

struct GrpoSection {
  int64_t num_generations = 8;
  int64_t prompts_per_step = 8;
  GrpoLossType loss_type = GrpoLossType::kDapo;
  double beta = 0.0;
  double epsilon = 0.2;
  double epsilon_high = -1;
  ScaleRewards scale_rewards = ScaleRewards::kGroup;
  ImportanceSamplingLevel importance_sampling_level = ImportanceSamplingLevel::kToken;
  int64_t num_iterations = 1;
  bool mask_truncated_completions = false;
  double top_entropy_quantile = 1.0;
  bool use_bias_correction_kl = true;
  nlohmann::json rewards = nlohmann::json::array({{{"type", "oracle"}}});
  std::vector<double> reward_weights;
  bool log_completions = true;

  template <typename V>
  void fields(V& v) {
    v("num_generations", num_generations, "completions sampled per prompt: the group (G >= 2)");
    v("prompts_per_step", prompts_per_step,
      "prompts per generation (P); P x G completions, grad_accum micro-batches");
    v("loss_type", loss_type, "how token losses are averaged: grpo, bnpo, dr_grpo or dapo");
    v("beta", beta, "KL coefficient (k3 estimator); 0 loads no reference");
    v("epsilon", epsilon, "clip range: ratios below 1 - epsilon are clipped");
    v("epsilon_high", epsilon_high, "upper clip 1 + epsilon_high (DAPO: 0.28); -1: epsilon");
    v("scale_rewards", scale_rewards, "advantages divided by the std of the group, batch or none");
    v("importance_sampling_level", importance_sampling_level,
      "token, or sequence (GSPO: one length-normalised ratio per completion)");
    v("num_iterations", num_iterations,
      "optimizer steps per generation (mu); pi_old is the sampling policy");
    v("mask_truncated_completions", mask_truncated_completions,
      "completions that hit sampling.max_new_tokens count in no loss (DAPO)");
    v("top_entropy_quantile", top_entropy_quantile,
      "rho: only the top rho of tokens by entropy get a policy loss; 1: all");
    v("use_bias_correction_kl", use_bias_correction_kl,
      "multiply the KL term by the importance ratio (TRL's default)");
    v("rewards", rewards,
      "reward functions: {\"type\": \"oracle\"|\"format\"|\"overlong\", ...} (docs/grpo.md)");
    v("reward_weights", reward_weights, "one weight per reward; []: 1 each");
    v("log_completions", log_completions,
      "write every generation's completions, rewards and advantages to completions/");
  }

  GrpoLossOptions loss_options() const {
    return {beta,
            epsilon,
            epsilon_high < 0 ? epsilon : epsilon_high,
            importance_sampling_level,
            use_bias_correction_kl,
            top_entropy_quantile};
  }
};

// optimizer, schedule, training, lora, output: the trainers' shared sections, with GRPO's defaults
// (TRL GRPOConfig's lr 1e-6 and linear schedule; LoRA on without dropout, so that the reference is
// the base model for free and the trainer's log-probs are the engine's).
struct GrpoConfig : TrainSections {
  GrpoConfig() {
    optimizer.lr = 1e-6;
    schedule.type = LrScheduleType::kLinear;
    lora.enabled = true;
    lora.dropout = 0.0;
  }
  GrpoDataSection data;
  nlohmann::json oracle = nlohmann::json::object();
  SamplingSection sampling;
  EngineOptions rollout;
  GrpoReferenceSection reference;
  GrpoSection grpo;
  DpoEvalSection eval;

  template <typename V>
  void fields(V& v) {
    TrainSections::fields(v);
    v.section("data", data);
    v("oracle", oracle,
      "the task's oracle {\"type\": ...} (docs/oracles.md): oracle rewards and eval use it");
    v.section("sampling", sampling);
    v.section("rollout", rollout);
    v.section("reference", reference);
    v.section("grpo", grpo);
    v.section("eval", eval);
  }
};

// Reads, validates (every check that needs no file: num_generations >= 2, P x G a multiple of
// training.grad_accum, reward_weights one per reward, ...; the split of prompts_per_step over
// ranks is checked by run_grpo, which knows them) and resolves. Throws InputError "source:
// key.path: ...". `key_prefix`: where this config sits in a larger one (the pipeline's "grpo"),
// for messages.
GrpoConfig parse_grpo_config(const nlohmann::json& j, const std::string& source,
                             const std::string& key_prefix = "");
nlohmann::json to_json(const GrpoConfig& config);

}  // namespace align
