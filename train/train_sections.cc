#include "train/train_sections.h"

#include "common/config_reader.h"
#include "common/error.h"
#include "model/lora.h"

namespace align {

nlohmann::json with_peft_spellings(const nlohmann::json& config, const std::string& source,
                                   const std::string& key_prefix) {
  // Keys that moved to the model section (one path for every command): refused naming where they
  // are now, not left to the unknown-key error's guess.
  if (config.is_object() && config.contains("lora") && config["lora"].is_object()) {
    for (const char* key : {"quantize", "double_quant"}) {
      if (!config["lora"].contains(key)) continue;
      const std::string at = key_prefix.empty() ? "" : key_prefix + ".";
      throw InputError(source + ": " + at + "lora." + key + ": moved to " + at + "model." + key +
                       " (one key for every command)");
    }
  }
  nlohmann::json out = config;
  if (out.is_object() && out.contains("lora") && out["lora"].is_object() &&
      out["lora"].contains("target_modules") && out["lora"]["target_modules"].is_string()) {
    out["lora"]["target_modules"] = nlohmann::json::array({out["lora"]["target_modules"]});
  }
  return out;
}

void check_train_sections(TrainSections& s, const std::string& source) {
  s.lora.target_modules = expand_lora_targets(s.lora.target_modules);
  auto check = [&](bool ok, const char* field, const std::string& what) {
    check_config(ok, source, field, what);
  };
  check(s.optimizer.lr > 0 && s.optimizer.lr <= 10, "optimizer.lr",
        "must be in (0, 10] (a larger step diverges at once)");
  check(s.optimizer.beta1 >= 0 && s.optimizer.beta1 < 1, "optimizer.beta1", "must be in [0, 1)");
  check(s.optimizer.beta2 >= 0 && s.optimizer.beta2 < 1, "optimizer.beta2", "must be in [0, 1)");
  check(s.optimizer.eps > 0, "optimizer.eps", "must be positive");
  check(s.optimizer.weight_decay >= 0, "optimizer.weight_decay", "must be >= 0");
  check(s.optimizer.max_grad_norm >= 0, "optimizer.max_grad_norm", "must be >= 0 (0: no clipping)");
  check(s.schedule.warmup_steps >= 0, "schedule.warmup_steps", "must be >= 0");
  check(s.schedule.max_steps >= 0, "schedule.max_steps", "must be >= 0 (0: use epochs)");
  check(s.schedule.epochs >= 0, "schedule.epochs", "must be >= 0");
  check(s.schedule.max_steps > 0 || s.schedule.epochs > 0, "schedule",
        "set max_steps or epochs > 0");
  check(s.schedule.min_lr_ratio >= 0 && s.schedule.min_lr_ratio <= 1, "schedule.min_lr_ratio",
        "must be in [0, 1]");
  check(s.training.grad_accum > 0, "training.grad_accum", "must be positive");
  check(s.training.zero_stage == 0 || s.training.zero_stage == 2, "training.zero_stage",
        "must be 0 (replicated optimizer state) or 2 (sharded by parameter)");
  check(s.training.log_every > 0, "training.log_every", "must be positive");
  check(s.training.eval_every >= 0, "training.eval_every", "must be >= 0 (0: only at the end)");
  check(s.lora.rank > 0, "lora.rank", "must be positive");
  check(s.lora.alpha > 0, "lora.alpha", "must be positive");
  check(s.lora.dropout >= 0 && s.lora.dropout < 1, "lora.dropout", "must be in [0, 1)");
  check(!s.lora.target_modules.empty(), "lora.target_modules", "must not be empty");
  check(s.output.save_every >= 0, "output.save_every", "must be >= 0 (0: only at the end)");
  check(s.output.keep_last > 0, "output.keep_last", "must be positive");
  check(s.output.max_shard_size > 0, "output.max_shard_size", "must be positive");
  check(!s.output.merge_lora || s.lora.enabled, "output.merge_lora", "needs lora.enabled");
  check(s.model.quantize == QuantizeChoice::kNone || s.lora.enabled, "model.quantize",
        "nf4 needs lora.enabled (the quantised base is frozen: QLoRA trains adapters on it)");
  for (const std::string& sink : s.output.report_to) {
    check(sink == "jsonl" || sink == "tensorboard", "output.report_to",
          "expected entries \"jsonl\" or \"tensorboard\", found \"" + sink + "\"");
  }
}

std::optional<Nf4Options> base_quantization(const TrainModelSection& model) {
  return quantize_options(model.quantize, model.double_quant);
}

}  // namespace align
