// align dpo's held-out generation eval (the config's eval section, DpoEvalSection): the policy as
// it is at a step, sampled on held-out queries in memory by the rollout engine and graded by an
// oracle exactly as align eval grades (eval/query_eval.h). Each eval writes
// OUTPUT/evals/step-N/{summary.json,results.jsonl} (align eval's formats; step-0 is the starting
// model) and adds to the step's metrics record eval_<metric> with _low/_high (eval_pass@1, or
// eval_<rate key>), eval_completions/mean_length and eval_completions/clipped_ratio (TRL's names:
// generated tokens per sample, and the share of samples that hit max_new_tokens, a broken stop).
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

namespace align {

class HeldOutEval {
 public:
  // Makes the oracle and reads the queries for a model of `config` (InputError naming `source`
  // and the eval.* key); checks that `section.metric` is pass@1 or one of the oracle's rates.
  HeldOutEval(const DpoEvalSection& section, const LazyChatFormat& chat, const ModelConfig& config,
              const std::string& source);

  // An empty record of evals for this metric, in the metric's direction, with the section's
  // max_clipped_ratio.
  BestStep new_record() const;

  // Samples and grades `model` (every rank samples every query: each holds the whole model); the
  // main rank writes OUTPUT/evals/step-N/. Adds the metric's fields to `record`.
  StepScore run(const Phi3Model& model, int64_t step, const std::string& output_dir, bool main_rank,
                nlohmann::json& record) const;

 private:
  DpoEvalSection section_;
  const Tokenizer& tokenizer_;
  std::unique_ptr<Oracle> oracle_;
  std::vector<Query> queries_;
  std::vector<TokenId> stop_token_ids_;
  bool higher_is_better_ = true;
};

}  // namespace align
