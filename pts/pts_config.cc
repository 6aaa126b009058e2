#include "pts/pts_config.h"

#include "common/config_reader.h"
#include "common/error.h"

namespace align {

void read_query_sections(const nlohmann::json& j, ConfigReader& root, PtsModelSection& model,
                         PtsDataSection& data, nlohmann::json& oracle) {
  ConfigReader m = root.section("model");
  m.require("path", model.path);
  m.get("dtype", model.dtype);
  m.get("device", model.device);
  m.finish();

  ConfigReader d = root.section("data");
  d.require("path", data.path);
  d.get("system_prompt", data.system_prompt);
  d.get("limit", data.limit);
  d.finish();

  if (!j.contains("oracle") || !j.at("oracle").is_object()) {
    throw InputError(root.source() +
                     ": missing required section oracle (e.g. {\"type\": \"math\"})");
  }
  root.get("oracle", oracle);
}

PtsConfig parse_pts_config(const nlohmann::json& j, const std::string& source) {
  PtsConfig c;
  ConfigReader root(j, source);

  read_query_sections(j, root, c.model, c.data, c.oracle);

  PtsOptions& s = c.search;
  ConfigReader sampling = root.section("sampling");
  sampling.get("temperature", s.sampling.temperature);
  sampling.get("top_p", s.sampling.top_p);
  sampling.get("top_k", s.sampling.top_k);
  sampling.get("min_p", s.sampling.min_p);
  sampling.get("max_new_tokens", s.max_new_tokens);
  sampling.finish();

  ConfigReader rollout = root.section("rollout");
  rollout.get("page_size", c.rollout.page_size);
  rollout.get("kv_budget_tokens", c.rollout.kv_budget_tokens);
  rollout.get("max_batch", c.rollout.max_batch);
  rollout.get("prefill_chunk", c.rollout.prefill_chunk);
  rollout.get("max_cached_prefixes", c.rollout.max_cached_prefixes);
  rollout.finish();

  ConfigReader pts = root.section("pts");
  pts.get("p_gap", s.p_gap);
  pts.get("band_low", s.band_low);
  pts.get("band_high", s.band_high);
  pts.get("completions_per_query", s.completions_per_query);
  pts.get("min_rollouts", s.min_rollouts);
  pts.get("rollout_step", s.rollout_step);
  pts.get("max_rollouts", s.max_rollouts);
  pts.get("confidence", s.confidence);
  pts.get("max_alternatives", s.max_alternatives);
  pts.get("confirm", s.confirm);
  pts.get("confirm_rollouts", s.confirm_rollouts);
  pts.get("queries_per_batch", c.queries_per_batch);
  pts.get("seed", s.seed);
  pts.finish();

  ConfigReader out = root.section("output");
  out.require("dir", c.output_dir);
  out.finish();
  root.finish();

  try {
    validate(s);
  } catch (const InputError& e) {
    throw InputError(source + ": " + e.what());
  }
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) throw InputError(source + ": " + what);
  };
  check(s.sampling.temperature >= 0, "sampling.temperature: expected >= 0");
  check(s.sampling.top_p > 0 && s.sampling.top_p <= 1, "sampling.top_p: expected (0, 1]");
  check(s.sampling.top_k >= 0, "sampling.top_k: expected >= 0 (0 = off)");
  check(s.sampling.min_p >= 0 && s.sampling.min_p <= 1, "sampling.min_p: expected [0, 1]");
  check(c.queries_per_batch >= 1, "pts.queries_per_batch: expected at least 1");
  check(c.data.limit >= 0, "data.limit: expected >= 0 (0 = all)");
  return c;
}

nlohmann::json to_json(const PtsConfig& c) {
  const PtsOptions& s = c.search;
  return {
      {"model", {{"path", c.model.path}, {"dtype", c.model.dtype}, {"device", c.model.device}}},
      {"data",
       {{"path", c.data.path}, {"system_prompt", c.data.system_prompt}, {"limit", c.data.limit}}},
      {"oracle", c.oracle},
      {"sampling",
       {{"temperature", s.sampling.temperature},
        {"top_p", s.sampling.top_p},
        {"top_k", s.sampling.top_k},
        {"min_p", s.sampling.min_p},
        {"max_new_tokens", s.max_new_tokens}}},
      {"rollout",
       {{"page_size", c.rollout.page_size},
        {"kv_budget_tokens", c.rollout.kv_budget_tokens},
        {"max_batch", c.rollout.max_batch},
        {"prefill_chunk", c.rollout.prefill_chunk},
        {"max_cached_prefixes", c.rollout.max_cached_prefixes}}},
      {"pts",
       {{"p_gap", s.p_gap},
        {"band_low", s.band_low},
        {"band_high", s.band_high},
        {"completions_per_query", s.completions_per_query},
        {"min_rollouts", s.min_rollouts},
        {"rollout_step", s.rollout_step},
        {"max_rollouts", s.max_rollouts},
        {"confidence", s.confidence},
        {"max_alternatives", s.max_alternatives},
        {"confirm", s.confirm},
        {"confirm_rollouts", s.confirm_rollouts},
        {"queries_per_batch", c.queries_per_batch},
        {"seed", s.seed}}},
      {"output", {{"dir", c.output_dir}}}};
}

}  // namespace align
