#include "sft/train_sections.h"

#include "common/error.h"

namespace align {
namespace {

void check(bool ok, const std::string& source, const std::string& field, const std::string& what) {
  if (!ok) throw InputError(source + ": " + field + ": " + what);
}

}  // namespace

void read_train_sections(ConfigReader& root, TrainSections& s) {
  ConfigReader opt = root.section("optimizer");
  opt.get("lr", s.optimizer.lr);
  opt.get("beta1", s.optimizer.beta1);
  opt.get("beta2", s.optimizer.beta2);
  opt.get("eps", s.optimizer.eps);
  opt.get("weight_decay", s.optimizer.weight_decay);
  opt.get("max_grad_norm", s.optimizer.max_grad_norm);
  opt.finish();

  ConfigReader sched = root.section("schedule");
  sched.get("type", s.schedule.type);
  sched.get("warmup_steps", s.schedule.warmup_steps);
  sched.get("max_steps", s.schedule.max_steps);
  sched.get("epochs", s.schedule.epochs);
  sched.get("min_lr_ratio", s.schedule.min_lr_ratio);
  sched.finish();

  ConfigReader train = root.section("training");
  train.get("grad_accum", s.training.grad_accum);
  train.get("seed", s.training.seed);
  train.get("log_every", s.training.log_every);
  train.get("eval_every", s.training.eval_every);
  train.get("zero_stage", s.training.zero_stage);
  train.finish();

  ConfigReader lora = root.section("lora");
  lora.get("enabled", s.lora.enabled);
  lora.get("rank", s.lora.rank);
  lora.get("alpha", s.lora.alpha);
  lora.get("dropout", s.lora.dropout);
  lora.get("target_modules", s.lora.target_modules);
  lora.finish();

  ConfigReader out = root.section("output");
  out.require("dir", s.output.dir);
  out.get("save_every", s.output.save_every);
  out.get("keep_last", s.output.keep_last);
  out.get("merge_lora", s.output.merge_lora);
  out.get("max_shard_size", s.output.max_shard_size);
  out.finish();
}

void check_train_sections(const TrainSections& s, const std::string& source) {
  check(s.optimizer.lr > 0, source, "optimizer.lr", "must be positive");
  check(s.optimizer.beta1 >= 0 && s.optimizer.beta1 < 1, source, "optimizer.beta1",
        "must be in [0, 1)");
  check(s.optimizer.beta2 >= 0 && s.optimizer.beta2 < 1, source, "optimizer.beta2",
        "must be in [0, 1)");
  check(s.optimizer.eps > 0, source, "optimizer.eps", "must be positive");
  check(s.schedule.type == "cosine" || s.schedule.type == "linear" || s.schedule.type == "constant",
        source, "schedule.type",
        "expected cosine, linear or constant, found '" + s.schedule.type + "'");
  check(s.schedule.warmup_steps >= 0, source, "schedule.warmup_steps", "must be >= 0");
  check(s.schedule.max_steps > 0 || s.schedule.epochs > 0, source, "schedule",
        "set max_steps or epochs > 0");
  check(s.training.grad_accum > 0, source, "training.grad_accum", "must be positive");
  check(s.training.zero_stage == 0 || s.training.zero_stage == 2, source, "training.zero_stage",
        "must be 0 (replicated optimizer state) or 2 (sharded by parameter)");
  check(s.training.log_every > 0, source, "training.log_every", "must be positive");
  check(s.lora.rank > 0, source, "lora.rank", "must be positive");
  check(s.lora.dropout >= 0 && s.lora.dropout < 1, source, "lora.dropout", "must be in [0, 1)");
  check(!s.lora.target_modules.empty(), source, "lora.target_modules", "must not be empty");
  check(s.output.keep_last > 0, source, "output.keep_last", "must be positive");
  check(!s.output.merge_lora || s.lora.enabled, source, "output.merge_lora", "needs lora.enabled");
}

void add_train_sections(nlohmann::json& j, const TrainSections& s) {
  j["optimizer"] = {{"lr", s.optimizer.lr},
                    {"beta1", s.optimizer.beta1},
                    {"beta2", s.optimizer.beta2},
                    {"eps", s.optimizer.eps},
                    {"weight_decay", s.optimizer.weight_decay},
                    {"max_grad_norm", s.optimizer.max_grad_norm}};
  j["schedule"] = {{"type", s.schedule.type},
                   {"warmup_steps", s.schedule.warmup_steps},
                   {"max_steps", s.schedule.max_steps},
                   {"epochs", s.schedule.epochs},
                   {"min_lr_ratio", s.schedule.min_lr_ratio}};
  j["training"] = {{"grad_accum", s.training.grad_accum},
                   {"seed", s.training.seed},
                   {"log_every", s.training.log_every},
                   {"eval_every", s.training.eval_every},
                   {"zero_stage", s.training.zero_stage}};
  j["lora"] = {{"enabled", s.lora.enabled},
               {"rank", s.lora.rank},
               {"alpha", s.lora.alpha},
               {"dropout", s.lora.dropout},
               {"target_modules", s.lora.target_modules}};
  j["output"] = {{"dir", s.output.dir},
                 {"save_every", s.output.save_every},
                 {"keep_last", s.output.keep_last},
                 {"merge_lora", s.output.merge_lora},
                 {"max_shard_size", s.output.max_shard_size}};
}

}  // namespace align
