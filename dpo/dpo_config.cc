#include "dpo/dpo_config.h"

#include "common/config_fields.h"
#include "common/error.h"

namespace align {

void check_eval_section(const DpoEvalSection& eval, const std::string& source,
                        const std::string& oracle_hint) {
  auto check = [&](bool ok, const char* field, const std::string& what) {
    check_config(ok, source, field, what);
  };
  check(eval.every >= 0, "eval.every", "must be >= 0");
  check(eval.limit >= 0, "eval.limit", "must be >= 0");
  check(eval.confidence > 0 && eval.confidence < 1, "eval.confidence", "must be in (0, 1)");
  check(eval.max_clipped_ratio >= 0 && eval.max_clipped_ratio <= 1, "eval.max_clipped_ratio",
        "must be in [0, 1] (a fraction of the samples; 1: no limit)");
  check(eval.oracle.is_object() && !eval.oracle.empty(), "eval.oracle",
        "eval.queries needs an oracle: " + oracle_hint);
  check(eval.sampling.num_samples > 0, "eval.sampling.num_samples", "must be positive");
  check_sampling_sections(eval.sampling, eval.rollout, source, "eval.");
}

DpoConfig parse_dpo_config(const nlohmann::json& j, const std::string& source,
                           const std::string& key_prefix) {
  DpoConfig c;
  const nlohmann::json spelled = with_peft_spellings(j, source, key_prefix);
  ConfigReader root(spelled, source, key_prefix);
  read_fields(root, c);

  auto check = [&](bool ok, const char* field, const std::string& what) {
    check_config(ok, source, field, what);
  };
  if (c.reference.type == ReferenceType::kAuto) {
    c.reference.type = c.lora.enabled ? ReferenceType::kLoraBase : ReferenceType::kCheckpoint;
    if (!c.lora.enabled && c.reference.path.empty()) c.reference.path = c.model.path;
  }
  check(c.reference.type != ReferenceType::kLoraBase || c.lora.enabled, "reference.type",
        "lora_base needs lora.enabled (the reference is the model with its adapters disabled)");
  check(c.reference.type != ReferenceType::kCheckpoint || !c.reference.path.empty(),
        "reference.path", "the checkpoint reference needs the reference model's directory");
  check(c.reference.check_pairs >= 0, "reference.check_pairs", "must be >= 0");
  check(c.reference.check_tolerance > 0, "reference.check_tolerance", "must be positive");
  check(c.data.max_seq_len > 1, "data.max_seq_len", "must be at least 2");
  check(c.data.batch_size > 0, "data.batch_size", "must be positive");
  check(c.data.weight != PairWeight::kPGap || c.data.format == PairFormat::kToken, "data.weight",
        "p_gap needs data.format token (PTS pairs carry p_chosen and p_rejected)");
  try {
    validate(c.dpo.options());
  } catch (const InputError& e) {
    throw InputError(source + ": " + e.what());
  }
  check(c.dpo.nll_weight >= 0, "dpo.nll_weight", "must be >= 0");
  if (c.eval.enabled()) check_eval_section(c.eval, source, "{\"type\": ...} (docs/oracles.md)");
  check_train_sections(c, source);
  return c;
}

nlohmann::json to_json(const DpoConfig& c) {
  return to_json_fields(c);
}

}  // namespace align
