// align dpo's held-out generation eval (the config's eval section, DpoEvalSection): the policy as
// it is at a step, sampled on held-out queries in memory by the rollout engine and graded by an
// oracle exactly as align eval grades (eval/query_eval.h). Each eval writes
// OUTPUT/evals/step-N/{summary.json,results.jsonl} (align eval's formats; step-0 is the starting
// model) and adds to the step's metrics record eval_<metric> with _low/_high (eval_pass@1, or
// eval_<rate key>), eval_completions/mean_length and eval_completions/clipped_ratio (TRL's names:
// generated tokens per sample, and the share of samples that hit max_new_tokens, a broken stop).
// HeldOutEvals runs it inside a trainer (align dpo, align grpo): the start, every few steps and
// the end, the record of evals kept in the run's checkpoints, and the step the run returns.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "dpo/dpo_config.h"
#include "eval/query_set.h"
#include "model/phi3_model.h"
#include "oracles/oracle.h"
#include "train/best_step.h"
#include "train/train_run.h"

namespace align {

class HeldOutEval {
 public:
  // Makes the oracle and reads the queries for a model of `config` (InputError naming `source`
  // and the eval.* key); checks that `section.metric` is pass@1 or one of the oracle's rates.
  // `recipe` names the trainer in progress lines ("dpo eval (step 5) tokens").
  HeldOutEval(const DpoEvalSection& section, const LazyChatFormat& chat, const ModelConfig& config,
              const std::string& source, std::string recipe = "dpo");

  // An empty record of evals for this metric, in the metric's direction, with the section's
  // max_clipped_ratio.
  BestStep new_record() const;

  // Samples and grades `model` (every rank samples every query: each holds the whole model); the
  // main rank writes OUTPUT/evals/step-N/. Adds the metric's fields to `record`.
  StepScore run(const Phi3Model& model, int64_t step, const std::string& output_dir, bool main_rank,
                nlohmann::json& record) const;

 private:
  DpoEvalSection section_;
  std::string recipe_;
  const Tokenizer& tokenizer_;
  std::unique_ptr<Oracle> oracle_;
  std::vector<Query> queries_;
  std::vector<TokenId> stop_token_ids_;
  bool higher_is_better_ = true;
};

// The held-out evals of a training run, written once for every trainer that has an eval section:
//
//   std::optional<HeldOutEvals> held_out;
//   if (cfg.eval.enabled()) {
//     held_out.emplace(cfg.eval, cfg.training.eval_every, chat, model.config(), source, run);
//     held_out->start(model, loader.state());   // step 0 of a fresh run (saved as a checkpoint)
//   }
//   loop: ... if (held_out && held_out->due()) held_out->evaluate(model, record);
//         run.end_step(record, data, evaluated, /*save=*/evaluated by held_out);
//   std::string result_of = held_out ? held_out->finish() : "";   // loads the best step's weights
//   run.finish(model, chat, result_of);
//
// The record of evals travels in the run's recipe state under "held_out_evals" (the recipe may
// keep its own keys beside it), so --resume continues it exactly; OUTPUT/best.json is rewritten
// after every eval; the best step's checkpoint is never removed by output.keep_last.
class HeldOutEvals {
 public:
  // `every`: eval.every, or `training_eval_every` when that is 0. Restores the record of a
  // resumed run (evals after its step dropped).
  HeldOutEvals(const DpoEvalSection& section, int64_t training_eval_every,
               const LazyChatFormat& chat, const ModelConfig& config, const std::string& source,
               TrainRun& run);

  // When no eval is recorded yet: evaluates the starting weights as step 0, logs the record and
  // saves a checkpoint with data position `data`, so that the start can be the result.
  void start(const Phi3Model& model, const BatcherState& data);
  // Whether the step just taken ends with an eval: every `every` steps and at the last.
  bool due() const;
  // Evaluates the weights at the current step, adding the eval_* fields to `record`.
  void evaluate(const Phi3Model& model, nlohmann::json& record);
  // The run's result: with eval.keep_best the best step's weights are loaded into the live ones.
  // Writes best.json, says which step won and why, and returns "the weights of step N" when the
  // result is not the last step's (empty otherwise).
  std::string finish();

  const BestStep& record() const { return evals_; }

 private:
  void keep(const StepScore& score);  // records, keeps its checkpoint, says it, writes best.json

  DpoEvalSection section_;
  int64_t every_;
  TrainRun& run_;
  HeldOutEval eval_;
  BestStep evals_;
};

}  // namespace align
