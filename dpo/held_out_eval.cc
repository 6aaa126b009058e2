#include "dpo/held_out_eval.h"

#include <torch/torch.h>

#include <chrono>
#include <filesystem>

#include "common/error.h"
#include "eval/query_eval.h"
#include "eval/query_run.h"
#include "train/train_checkpoint.h"

namespace align {

HeldOutEval::HeldOutEval(const DpoEvalSection& section, const LazyChatFormat& chat,
                         const ModelConfig& config, const std::string& source)
    : section_(section), tokenizer_(chat.tokenizer()) {
  oracle_ = make_oracle(section.oracle, source, "eval.oracle");
  QueryDataSection data;
  data.path = section.queries;
  data.system_prompt = section.system_prompt;
  data.limit = section.limit;
  QueryData queries =
      read_query_data(data, *oracle_, tokenizer_, chat, config, section.sampling.max_new_tokens,
                      section.rollout.kv_budget_tokens, "eval.queries");
  queries_ = std::move(queries.queries);
  if (queries_.empty()) throw InputError(source + ": eval.queries: " + data.path + " is empty");
  stop_token_ids_ = std::move(queries.stop_token_ids);
  if (section.metric == "pass@1") return;
  std::string known = "pass@1";
  for (const OracleRate& rate : oracle_->rates()) {
    if (rate.key == section.metric) {
      higher_is_better_ = rate.higher_is_better;
      return;
    }
    known += ", " + rate.key;
  }
  throw InputError(source + ": eval.metric: " + section.metric + " is not one of " + known +
                   " (the " + oracle_->name() + " oracle's)");
}

BestStep HeldOutEval::new_record() const {
  return BestStep(section_.metric, higher_is_better_, section_.max_clipped_ratio);
}

StepScore HeldOutEval::run(const Phi3Model& model, int64_t step, const std::string& output_dir,
                           bool main_rank, nlohmann::json& record) const {
  const auto start = std::chrono::steady_clock::now();
  QueryEvalOptions options;
  options.sampling = section_.sampling;
  options.rollout = section_.rollout;
  options.eval.k = {1};
  options.eval.confidence = section_.confidence;
  options.progress_label = "dpo eval (step " + std::to_string(step) + ") tokens";
  options.show_progress = main_rank;
  QueryEval eval;
  {
    torch::NoGradGuard no_grad;
    eval = evaluate_queries(model, tokenizer_, *oracle_, queries_, stop_token_ids_, options);
  }
  eval.summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (main_rank) {
    const std::string dir = output_dir + "/evals/" + checkpoint_dir_name(step);
    std::filesystem::create_directories(dir);
    write_query_eval(dir, eval);
  }
  StepScore score{step, 0, 0, 1, eval.summary.clipped_ratio};
  MeanInterval value = eval.summary.pass.front().value;
  if (section_.metric != "pass@1") {
    bool found = false;
    for (const auto& [rate, summary] : eval.summary.rates) {
      if (rate.key != section_.metric) continue;
      value = summary.value;
      found = true;
    }
    if (!found) {
      throw InputError("eval.metric: " + section_.metric + " covers none of the queries in " +
                       section_.queries + " (the " + oracle_->name() +
                       " oracle counts it only on some items)");
    }
  }
  score.value = value.mean;
  score.low = value.low;
  score.high = value.high;
  const std::string key = "eval_" + section_.metric;
  record[key] = score.value;
  record[key + "_low"] = score.low;
  record[key + "_high"] = score.high;
  record["eval_completions/mean_length"] = eval.summary.mean_tokens;
  record["eval_completions/clipped_ratio"] = eval.summary.clipped_ratio;
  return score;
}

}  // namespace align
