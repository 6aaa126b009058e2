#include "eval/eval_recipe.h"

#include <chrono>

#include "common/atomic_file.h"
#include "common/output_dir.h"
#include "eval/query_run.h"

namespace align {

EvalSummary run_eval(const EvalConfig& config, const std::string& source) {
  // Setup: oracle and data first (cheap, and where most mistakes are), then the model.
  const auto start = std::chrono::steady_clock::now();
  const QueryRun q =
      open_query_run(config.model, config.data, config.oracle, config.sampling.max_new_tokens,
                     config.rollout.kv_budget_tokens, source);
  const std::string& out = config.output.dir;
  create_output_dir(out, "output.dir");
  remove_stale_temp_files(out);
  write_file_atomic(out + "/config.json", to_json(config).dump(2) + "\n");

  QueryEvalOptions options;
  options.sampling = config.sampling;
  options.rollout = config.rollout;
  options.eval = config.eval;
  QueryEval eval =
      evaluate_queries(q.model, q.tokenizer, *q.oracle, q.queries, q.stop_token_ids, options);
  eval.summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_query_eval(out, eval);
  return eval.summary;
}

}  // namespace align
