#include "eval/query_sections.h"

#include "common/config_reader.h"
#include "common/error.h"

namespace align {

void check_query_sections(const QueryDataSection& data, const nlohmann::json& oracle,
                          const SamplingSection& sampling, const EngineOptions& rollout,
                          const std::string& source) {
  if (!oracle.is_object()) {
    throw InputError(source + ": missing required section oracle (e.g. {\"type\": \"math\"})");
  }
  check_config(data.limit >= 0, source, "data.limit", "expected >= 0 (0 = all)");
  check_sampling_sections(sampling, rollout, source, "");
}

void check_sampling_sections(const SamplingSection& sampling, const EngineOptions& rollout,
                             const std::string& source, const std::string& prefix) {
  auto check = [&](bool ok, const char* field, const std::string& what) {
    check_config(ok, source, prefix + field, what);
  };
  check(sampling.temperature >= 0, "sampling.temperature", "expected >= 0");
  check(sampling.top_p > 0 && sampling.top_p <= 1, "sampling.top_p", "expected (0, 1]");
  check(sampling.top_k >= 0, "sampling.top_k", "expected >= 0 (0 = off)");
  check(sampling.min_p >= 0 && sampling.min_p <= 1, "sampling.min_p", "expected [0, 1]");
  check(sampling.max_new_tokens >= 1, "sampling.max_new_tokens", "expected at least 1");
  check(rollout.page_size >= 1, "rollout.page_size", "expected at least 1");
  check(rollout.kv_budget_tokens >= rollout.page_size, "rollout.kv_budget_tokens",
        "expected at least rollout.page_size");
  check(rollout.max_batch >= 1, "rollout.max_batch", "expected at least 1");
  check(rollout.prefill_chunk >= 1, "rollout.prefill_chunk", "expected at least 1");
  check(rollout.max_cached_prefixes >= 0, "rollout.max_cached_prefixes", "expected >= 0");
}

}  // namespace align
