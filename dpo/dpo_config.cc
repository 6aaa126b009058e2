#include "dpo/dpo_config.h"

#include "common/config_reader.h"
#include "common/error.h"
#include "data/preference_dataset.h"
#include "dpo/dpo_loss.h"

namespace align {
namespace {

void check(bool ok, const std::string& source, const std::string& field, const std::string& what) {
  if (!ok) throw InputError(source + ": " + field + ": " + what);
}

// Re-throws a parser's "field: message" with the config file in front.
template <typename F>
void named(const std::string& source, F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    throw InputError(source + ": " + e.what());
  }
}

}  // namespace

DpoConfig parse_dpo_config(const nlohmann::json& j, const std::string& source) {
  DpoConfig c;
  ConfigReader root(j, source);

  ConfigReader model = root.section("model");
  model.require("path", c.model.path);
  model.get("dtype", c.model.dtype);
  model.get("device", c.model.device);
  model.get("activation_checkpointing", c.model.activation_checkpointing);
  model.finish();

  ConfigReader ref = root.section("reference");
  ref.get("type", c.reference.type);
  ref.get("path", c.reference.path);
  ref.get("check_pairs", c.reference.check_pairs);
  ref.get("check_tolerance", c.reference.check_tolerance);
  ref.finish();

  ConfigReader data = root.section("data");
  data.require("train", c.data.train);
  data.get("eval", c.data.eval);
  data.get("format", c.data.format);
  data.get("max_seq_len", c.data.max_seq_len);
  data.get("batch_size", c.data.batch_size);
  data.get("weight", c.data.weight);
  data.get("shuffle", c.data.shuffle);
  data.finish();

  ConfigReader dpo = root.section("dpo");
  dpo.get("loss", c.dpo.loss);
  dpo.get("beta", c.dpo.beta);
  dpo.get("label_smoothing", c.dpo.label_smoothing);
  dpo.get("nll_weight", c.dpo.nll_weight);
  dpo.finish();

  ConfigReader opt = root.section("optimizer");
  opt.get("lr", c.optimizer.lr);
  opt.get("beta1", c.optimizer.beta1);
  opt.get("beta2", c.optimizer.beta2);
  opt.get("eps", c.optimizer.eps);
  opt.get("weight_decay", c.optimizer.weight_decay);
  opt.get("max_grad_norm", c.optimizer.max_grad_norm);
  opt.finish();

  ConfigReader sched = root.section("schedule");
  sched.get("type", c.schedule.type);
  sched.get("warmup_steps", c.schedule.warmup_steps);
  sched.get("max_steps", c.schedule.max_steps);
  sched.get("epochs", c.schedule.epochs);
  sched.get("min_lr_ratio", c.schedule.min_lr_ratio);
  sched.finish();

  ConfigReader train = root.section("training");
  train.get("grad_accum", c.training.grad_accum);
  train.get("seed", c.training.seed);
  train.get("log_every", c.training.log_every);
  train.get("eval_every", c.training.eval_every);
  train.finish();

  ConfigReader lora = root.section("lora");
  lora.get("enabled", c.lora.enabled);
  lora.get("rank", c.lora.rank);
  lora.get("alpha", c.lora.alpha);
  lora.get("dropout", c.lora.dropout);
  lora.get("target_modules", c.lora.target_modules);
  lora.finish();

  ConfigReader out = root.section("output");
  out.require("dir", c.output.dir);
  out.get("save_every", c.output.save_every);
  out.get("keep_last", c.output.keep_last);
  out.get("merge_lora", c.output.merge_lora);
  out.get("max_shard_size", c.output.max_shard_size);
  out.finish();
  root.finish();

  const std::string& rt = c.reference.type;
  check(rt == "auto" || rt == "lora_base" || rt == "checkpoint" || rt == "precomputed", source,
        "reference.type",
        "expected auto, lora_base, checkpoint or precomputed, found '" + rt + "'");
  if (rt == "auto") {
    c.reference.type = c.lora.enabled ? "lora_base" : "checkpoint";
    if (!c.lora.enabled && c.reference.path.empty()) c.reference.path = c.model.path;
  }
  check(c.reference.type != "lora_base" || c.lora.enabled, source, "reference.type",
        "lora_base needs lora.enabled (the reference is the model with its adapters disabled)");
  check(c.reference.type != "checkpoint" || !c.reference.path.empty(), source, "reference.path",
        "the checkpoint reference needs the reference model's directory");
  check(c.reference.check_pairs >= 0, source, "reference.check_pairs", "must be >= 0");
  check(c.reference.check_tolerance > 0, source, "reference.check_tolerance", "must be positive");
  check(c.data.format == "sequence" || c.data.format == "token", source, "data.format",
        "expected sequence or token, found '" + c.data.format + "'");
  check(c.data.max_seq_len > 1, source, "data.max_seq_len", "must be at least 2");
  check(c.data.batch_size > 0, source, "data.batch_size", "must be positive");
  PairWeight weight = PairWeight::kNone;
  named(source, [&] { weight = parse_pair_weight(c.data.weight, "data.weight"); });
  check(weight != PairWeight::kPGap || c.data.format == "token", source, "data.weight",
        "p_gap needs data.format token (PTS pairs carry p_chosen and p_rejected)");
  named(source, [&] {
    DpoLossOptions loss{parse_dpo_loss_type(c.dpo.loss, "dpo.loss"), c.dpo.beta,
                        c.dpo.label_smoothing};
    validate(loss);
  });
  check(c.dpo.nll_weight >= 0, source, "dpo.nll_weight", "must be >= 0");
  check(c.optimizer.lr > 0, source, "optimizer.lr", "must be positive");
  check(c.optimizer.beta1 >= 0 && c.optimizer.beta1 < 1, source, "optimizer.beta1",
        "must be in [0, 1)");
  check(c.optimizer.beta2 >= 0 && c.optimizer.beta2 < 1, source, "optimizer.beta2",
        "must be in [0, 1)");
  check(c.optimizer.eps > 0, source, "optimizer.eps", "must be positive");
  check(c.schedule.type == "cosine" || c.schedule.type == "linear" || c.schedule.type == "constant",
        source, "schedule.type",
        "expected cosine, linear or constant, found '" + c.schedule.type + "'");
  check(c.schedule.warmup_steps >= 0, source, "schedule.warmup_steps", "must be >= 0");
  check(c.schedule.max_steps > 0 || c.schedule.epochs > 0, source, "schedule",
        "set max_steps or epochs > 0");
  check(c.training.grad_accum > 0, source, "training.grad_accum", "must be positive");
  check(c.training.log_every > 0, source, "training.log_every", "must be positive");
  check(c.lora.rank > 0, source, "lora.rank", "must be positive");
  check(c.lora.dropout >= 0 && c.lora.dropout < 1, source, "lora.dropout", "must be in [0, 1)");
  check(!c.lora.target_modules.empty(), source, "lora.target_modules", "must not be empty");
  check(c.output.keep_last > 0, source, "output.keep_last", "must be positive");
  check(!c.output.merge_lora || c.lora.enabled, source, "output.merge_lora", "needs lora.enabled");
  return c;
}

nlohmann::json to_json(const DpoConfig& c) {
  return {
      {"model",
       {{"path", c.model.path},
        {"dtype", c.model.dtype},
        {"device", c.model.device},
        {"activation_checkpointing", c.model.activation_checkpointing}}},
      {"reference",
       {{"type", c.reference.type},
        {"path", c.reference.path},
        {"check_pairs", c.reference.check_pairs},
        {"check_tolerance", c.reference.check_tolerance}}},
      {"data",
       {{"train", c.data.train},
        {"eval", c.data.eval},
        {"format", c.data.format},
        {"max_seq_len", c.data.max_seq_len},
        {"batch_size", c.data.batch_size},
        {"weight", c.data.weight},
        {"shuffle", c.data.shuffle}}},
      {"dpo",
       {{"loss", c.dpo.loss},
        {"beta", c.dpo.beta},
        {"label_smoothing", c.dpo.label_smoothing},
        {"nll_weight", c.dpo.nll_weight}}},
      {"optimizer",
       {{"lr", c.optimizer.lr},
        {"beta1", c.optimizer.beta1},
        {"beta2", c.optimizer.beta2},
        {"eps", c.optimizer.eps},
        {"weight_decay", c.optimizer.weight_decay},
        {"max_grad_norm", c.optimizer.max_grad_norm}}},
      {"schedule",
       {{"type", c.schedule.type},
        {"warmup_steps", c.schedule.warmup_steps},
        {"max_steps", c.schedule.max_steps},
        {"epochs", c.schedule.epochs},
        {"min_lr_ratio", c.schedule.min_lr_ratio}}},
      {"training",
       {{"grad_accum", c.training.grad_accum},
        {"seed", c.training.seed},
        {"log_every", c.training.log_every},
        {"eval_every", c.training.eval_every}}},
      {"lora",
       {{"enabled", c.lora.enabled},
        {"rank", c.lora.rank},
        {"alpha", c.lora.alpha},
        {"dropout", c.lora.dropout},
        {"target_modules", c.lora.target_modules}}},
      {"output",
       {{"dir", c.output.dir},
        {"save_every", c.output.save_every},
        {"keep_last", c.output.keep_last},
        {"merge_lora", c.output.merge_lora},
        {"max_shard_size", c.output.max_shard_size}}},
  };
}

}  // namespace align
