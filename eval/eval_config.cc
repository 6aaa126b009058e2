#include "eval/eval_config.h"

#include <set>

#include "common/config_fields.h"

namespace align {

EvalConfig parse_eval_config(const nlohmann::json& j, const std::string& source,
                             const std::string& key_prefix) {
  EvalConfig c;
  ConfigReader root(j, source, key_prefix);
  read_fields(root, c);
  check_query_sections(c, source);

  const int64_t n = c.sampling.num_samples;
  auto check = [&](bool ok, const char* field, const std::string& what) {
    check_config(ok, source, field, what);
  };
  check(n >= 1, "sampling.num_samples", "expected at least 1");
  check(c.rollout.max_batch >= n, "rollout.max_batch",
        "expected at least sampling.num_samples = " + std::to_string(n) +
            " (an item's samples decode together), found " + std::to_string(c.rollout.max_batch));
  check(c.eval.confidence > 0 && c.eval.confidence < 1, "eval.confidence", "expected (0, 1)");
  check(!c.eval.k.empty(), "eval.k", "expected at least one k (e.g. [1])");
  std::set<int64_t> seen;
  for (int64_t k : c.eval.k) {
    check(k >= 1, "eval.k", "expected every k >= 1, found " + std::to_string(k));
    check(k <= n, "eval.k",
          "k = " + std::to_string(k) +
              " needs at least that many samples per item, but sampling.num_samples = " +
              std::to_string(n) + " (raise num_samples or drop this k)");
    check(seen.insert(k).second, "eval.k", std::to_string(k) + " appears twice");
  }
  return c;
}

nlohmann::json to_json(const EvalConfig& c) {
  return to_json_fields(c);
}

}  // namespace align
