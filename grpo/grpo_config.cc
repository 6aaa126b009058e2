#include "grpo/grpo_config.h"

#include "common/config_fields.h"
#include "common/error.h"

namespace align {

GrpoConfig parse_grpo_config(const nlohmann::json& j, const std::string& source,
                             const std::string& key_prefix) {
  GrpoConfig c;
  const nlohmann::json spelled = with_peft_spellings(j, source, key_prefix);
  ConfigReader root(spelled, source, key_prefix);
  read_fields(root, c);

  auto check = [&](bool ok, const std::string& field, const std::string& what) {
    check_config(ok, source, field, what);
  };
  GrpoSection& g = c.grpo;
  check(g.num_generations >= 2, "grpo.num_generations",
        "must be at least 2: the advantage of a completion is relative to its group (found " +
            std::to_string(g.num_generations) + ")");
  check(g.prompts_per_step >= 1, "grpo.prompts_per_step", "must be positive");
  const int64_t completions = g.prompts_per_step * g.num_generations;
  check(completions % c.training.grad_accum == 0, "training.grad_accum",
        "the " + std::to_string(completions) +
            " completions of a step (grpo.prompts_per_step x grpo.num_generations) do not split "
            "into " +
            std::to_string(c.training.grad_accum) + " equal micro-batches");
  check(g.num_iterations >= 1, "grpo.num_iterations", "must be at least 1");
  check(g.reward_weights.empty() || g.rewards.is_array(), "grpo.rewards", "expected a list");
  check(g.rewards.is_array() && !g.rewards.empty(), "grpo.rewards",
        "expected a non-empty list of reward functions (e.g. [{\"type\": \"oracle\"}])");
  check(g.reward_weights.empty() || g.reward_weights.size() == g.rewards.size(),
        "grpo.reward_weights",
        "expected one weight per reward function: " + std::to_string(g.rewards.size()) +
            " rewards, " + std::to_string(g.reward_weights.size()) + " weights");
  if (g.reward_weights.empty()) g.reward_weights.assign(g.rewards.size(), 1.0);
  if (g.epsilon_high < 0) g.epsilon_high = g.epsilon;
  try {
    validate(g.loss_options());
  } catch (const InputError& e) {
    throw InputError(source + ": " + e.what());
  }
  check(c.oracle.is_object(), "oracle", "expected an object {\"type\": ...} (docs/oracles.md)");
  check(c.data.limit >= 0, "data.limit", "must be >= 0 (0: all)");
  check_sampling_sections(c.sampling, c.rollout, source, "");
  check(c.sampling.temperature > 0, "sampling.temperature",
        "must be positive: GRPO learns from sampled completions (greedy ones are all alike)");
  check(c.rollout.max_batch >= g.num_generations, "rollout.max_batch",
        "must hold one group (grpo.num_generations samples)");

  if (c.reference.type == ReferenceType::kAuto) {
    c.reference.type = c.lora.enabled ? ReferenceType::kLoraBase : ReferenceType::kCheckpoint;
    if (!c.lora.enabled && c.reference.path.empty()) c.reference.path = c.model.path;
  }
  check(c.reference.type != ReferenceType::kPrecomputed, "reference.type",
        "precomputed: GRPO scores completions it samples itself; use lora_base or checkpoint");
  check(c.reference.type != ReferenceType::kLoraBase || c.lora.enabled, "reference.type",
        "lora_base needs lora.enabled (the reference is the model with its adapters disabled)");
  check(c.reference.type != ReferenceType::kCheckpoint || !c.reference.path.empty(),
        "reference.path", "the checkpoint reference needs the reference model's directory");

  if (c.eval.enabled()) {
    if (c.eval.oracle.empty()) c.eval.oracle = c.oracle;
    check_eval_section(c.eval, source, "eval.oracle or the oracle section (docs/oracles.md)");
  }
  check_train_sections(c, source);
  return c;
}

nlohmann::json to_json(const GrpoConfig& c) {
  return to_json_fields(c);
}

}  // namespace align
