// What align eval and align pts set up before they sample: the oracle first (cheap, and where most
// config mistakes are), then the tokenizer, its chat format and the model, the query set (checked
// against the oracle's fields and the model's vocabulary) and the stop tokens of generation.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "eval/query_sections.h"
#include "eval/query_set.h"
#include "model/phi3_model.h"
#include "oracles/oracle.h"

namespace align {

struct QueryRun {
  std::unique_ptr<Oracle> oracle;
  Tokenizer tokenizer;
  Phi3Model model;
  std::vector<Query> queries;
  std::vector<TokenId> stop_token_ids;  // rollout/stop_tokens.h's defaults for these prompts
};

struct QueryData {
  std::vector<Query> queries;
  // The chat template's end of turn when a prompt was rendered with it, the tokenizer's eos and
  // the model's eos ids (rollout/stop_tokens.h).
  std::vector<TokenId> stop_token_ids;
};

// The query set of `data` for a model with `config`, checked against the oracle's fields: every
// prompt plus `max_new_tokens` must fit the model's max_position_embeddings and the engine's
// `kv_budget_tokens`. `chat` renders "prompt" and "messages" lines. (align dpo's held-out eval
// reads its queries so, for the policy it holds, `key` "eval.queries".) `key` names data.path
// in errors.
QueryData read_query_data(const QueryDataSection& data, const Oracle& oracle,
                          const Tokenizer& tokenizer, const LazyChatFormat& chat,
                          const ModelConfig& config, int64_t max_new_tokens,
                          int64_t kv_budget_tokens, const std::string& key = "data.path");

// `source` names the config file in messages (the oracle section's errors included). Every
// prompt plus `max_new_tokens` must fit the model's max_position_embeddings and the engine's
// `kv_budget_tokens`.
QueryRun open_query_run(const QueryModelSection& model, const QueryDataSection& data,
                        const nlohmann::json& oracle, int64_t max_new_tokens,
                        int64_t kv_budget_tokens, const std::string& source);

}  // namespace align
