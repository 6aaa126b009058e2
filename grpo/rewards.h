// The reward functions of align grpo: the grpo.rewards list, each entry one function, summed
// with grpo.reward_weights into the reward a completion's advantage is computed from (TRL's
// reward_funcs and reward_weights, multi_objective_aggregation "sum_then_normalize"):
//
//   {"type": "oracle", "oracle"?: {...}, "name"?}   1 when the oracle passes the completion,
//        else 0 (every oracle of docs/oracles.md grades pass/fail); "oracle" defaults to the
//        config's oracle section; default name: the oracle's ("exact", "math", "code", ...)
//   {"type": "format", "pattern": "...", "name"?}   1 when the regex matches the completion
//        text (anywhere: anchor it with ^ and $), else 0 (the regex oracle's matching); default
//        name "format"
//   {"type": "overlong", "cache": L_cache, "max_length"?: L_max, "name"?}   DAPO's soft
//        overlong punishment (Yu et al. 2025, 2503.14476, eq. 13; TRL's
//        get_soft_overlong_punishment) of a completion of |y| tokens:
//          0 when |y| <= L_max - L_cache, (L_max - L_cache - |y|) / L_cache up to L_max, -1 past;
//        L_max defaults to sampling.max_new_tokens; default name "soft_overlong_punishment"
//
// Names must be unique: each reward's mean over a generation is logged as rewards/<name>/mean.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "oracles/oracle.h"

namespace align {

struct Reward {
  enum class Kind { kOracle, kFormat, kOverlong };
  Kind kind = Kind::kOracle;
  std::string name;
  std::shared_ptr<const Oracle> oracle;  // kOracle and kFormat (a regex oracle)
  int64_t max_length = 0;                // kOverlong: L_max
  int64_t cache = 0;                     // kOverlong: L_cache
};

// Builds grpo.rewards. `oracle`: the config's oracle section (may be {} when no reward uses
// it); `max_new_tokens`: the default L_max. Throws InputError naming `source` and the key
// ("grpo.rewards[1].pattern: ...").
std::vector<Reward> make_rewards(const nlohmann::json& rewards, const nlohmann::json& oracle,
                                 int64_t max_new_tokens, const std::string& source);

// Scores the completions of one query: [completions][rewards]. `texts` as the oracle sees them
// (eval/query_set.h's completion_text), `lengths` in tokens, `fields` the query's oracle fields.
std::vector<std::vector<double>> score_rewards(const std::vector<Reward>& rewards,
                                               const std::vector<std::string>& texts,
                                               const std::vector<int64_t>& lengths,
                                               const nlohmann::json& fields);

// An oracle that checks, for read_queries (eval/query_set.h), that a query has the fields every
// oracle reward needs; it grades nothing.
std::unique_ptr<Oracle> reward_field_check(const std::vector<Reward>& rewards);

}  // namespace align
