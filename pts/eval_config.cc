#include "pts/eval_config.h"

#include <set>

#include "common/config_reader.h"
#include "common/error.h"

namespace align {

EvalConfig parse_eval_config(const nlohmann::json& j, const std::string& source) {
  EvalConfig c;
  ConfigReader root(j, source);

  read_query_sections(j, root, c.model, c.data, c.oracle);

  ConfigReader sampling = root.section("sampling");
  sampling.get("temperature", c.sampling.temperature);
  sampling.get("top_p", c.sampling.top_p);
  sampling.get("top_k", c.sampling.top_k);
  sampling.get("min_p", c.sampling.min_p);
  sampling.get("max_new_tokens", c.max_new_tokens);
  sampling.get("num_samples", c.num_samples);
  sampling.get("seed", c.sampling.seed);
  sampling.finish();

  ConfigReader rollout = root.section("rollout");
  rollout.get("page_size", c.rollout.page_size);
  rollout.get("kv_budget_tokens", c.rollout.kv_budget_tokens);
  rollout.get("max_batch", c.rollout.max_batch);
  rollout.get("prefill_chunk", c.rollout.prefill_chunk);
  rollout.finish();

  ConfigReader eval = root.section("eval");
  eval.get("k", c.k);
  eval.get("confidence", c.confidence);
  eval.finish();

  ConfigReader out = root.section("output");
  out.require("dir", c.output_dir);
  out.finish();
  root.finish();

  auto check = [&](bool ok, const std::string& what) {
    if (!ok) throw InputError(source + ": " + what);
  };
  check(c.sampling.temperature >= 0, "sampling.temperature: expected >= 0");
  check(c.sampling.top_p > 0 && c.sampling.top_p <= 1, "sampling.top_p: expected (0, 1]");
  check(c.sampling.top_k >= 0, "sampling.top_k: expected >= 0 (0 = off)");
  check(c.sampling.min_p >= 0 && c.sampling.min_p <= 1, "sampling.min_p: expected [0, 1]");
  check(c.max_new_tokens >= 1, "sampling.max_new_tokens: expected at least 1");
  check(c.num_samples >= 1, "sampling.num_samples: expected at least 1");
  check(c.rollout.page_size >= 1, "rollout.page_size: expected at least 1");
  check(c.rollout.max_batch >= c.num_samples,
        "rollout.max_batch: expected at least sampling.num_samples = " +
            std::to_string(c.num_samples) + " (an item's samples decode together), found " +
            std::to_string(c.rollout.max_batch));
  check(c.rollout.prefill_chunk >= 1, "rollout.prefill_chunk: expected at least 1");
  check(c.data.limit >= 0, "data.limit: expected >= 0 (0 = all)");
  check(c.confidence > 0 && c.confidence < 1, "eval.confidence: expected (0, 1)");
  check(!c.k.empty(), "eval.k: expected at least one k (e.g. [1])");
  std::set<int64_t> seen;
  for (int64_t k : c.k) {
    check(k >= 1, "eval.k: expected every k >= 1, found " + std::to_string(k));
    check(k <= c.num_samples, "eval.k: k = " + std::to_string(k) +
                                  " needs at least that many samples per item, but "
                                  "sampling.num_samples = " +
                                  std::to_string(c.num_samples) +
                                  " (raise num_samples or drop this k)");
    check(seen.insert(k).second, "eval.k: " + std::to_string(k) + " appears twice");
  }
  return c;
}

nlohmann::json to_json(const EvalConfig& c) {
  return {
      {"model", {{"path", c.model.path}, {"dtype", c.model.dtype}, {"device", c.model.device}}},
      {"data",
       {{"path", c.data.path}, {"system_prompt", c.data.system_prompt}, {"limit", c.data.limit}}},
      {"oracle", c.oracle},
      {"sampling",
       {{"temperature", c.sampling.temperature},
        {"top_p", c.sampling.top_p},
        {"top_k", c.sampling.top_k},
        {"min_p", c.sampling.min_p},
        {"max_new_tokens", c.max_new_tokens},
        {"num_samples", c.num_samples},
        {"seed", c.sampling.seed}}},
      {"rollout",
       {{"page_size", c.rollout.page_size},
        {"kv_budget_tokens", c.rollout.kv_budget_tokens},
        {"max_batch", c.rollout.max_batch},
        {"prefill_chunk", c.rollout.prefill_chunk}}},
      {"eval", {{"k", c.k}, {"confidence", c.confidence}}},
      {"output", {{"dir", c.output_dir}}}};
}

}  // namespace align
