#include "sft/sft_config.h"

#include "common/config_reader.h"
#include "common/error.h"

namespace align {
namespace {

void check(bool ok, const std::string& source, const std::string& field, const std::string& what) {
  if (!ok) throw InputError(source + ": " + field + ": " + what);
}

}  // namespace

SftConfig parse_sft_config(const nlohmann::json& j, const std::string& source) {
  SftConfig c;
  ConfigReader root(j, source);

  ConfigReader model = root.section("model");
  model.require("path", c.model.path);
  model.get("dtype", c.model.dtype);
  model.get("device", c.model.device);
  model.get("activation_checkpointing", c.model.activation_checkpointing);
  model.finish();

  ConfigReader data = root.section("data");
  data.require("train", c.data.train);
  data.get("eval", c.data.eval);
  data.get("max_seq_len", c.data.max_seq_len);
  data.get("packing", c.data.packing);
  data.get("padding_free", c.data.padding_free);
  data.get("rows_per_batch", c.data.rows_per_batch);
  data.get("assistant_only_loss", c.data.assistant_only_loss);
  data.get("skip_bad_lines", c.data.skip_bad_lines);
  data.get("shuffle", c.data.shuffle);
  data.finish();

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

  check(c.data.max_seq_len > 1, source, "data.max_seq_len", "must be at least 2");
  check(c.data.rows_per_batch > 0, source, "data.rows_per_batch", "must be positive");
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

nlohmann::json to_json(const SftConfig& c) {
  return {
      {"model",
       {{"path", c.model.path},
        {"dtype", c.model.dtype},
        {"device", c.model.device},
        {"activation_checkpointing", c.model.activation_checkpointing}}},
      {"data",
       {{"train", c.data.train},
        {"eval", c.data.eval},
        {"max_seq_len", c.data.max_seq_len},
        {"packing", c.data.packing},
        {"padding_free", c.data.padding_free},
        {"rows_per_batch", c.data.rows_per_batch},
        {"assistant_only_loss", c.data.assistant_only_loss},
        {"skip_bad_lines", c.data.skip_bad_lines},
        {"shuffle", c.data.shuffle}}},
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
