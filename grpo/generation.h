// One generation of align grpo: P prompts of the query set, each sampled G times by the rollout
// engine from the current policy, graded by the reward functions, with group-relative advantages
// (grpo/grpo_loss.h) and the generation's metrics under TRL's names.
//
// Ranks: rank r samples and grades the contiguous r-th share of the P prompts, then the rollouts
// are exchanged (one sum over ranks of zero-filled tensors, exact), so every rank holds the whole
// generation: the advantages (whole groups; scale_rewards batch sees every reward) and the
// micro-batches are then cut alike on any number of ranks. Sample s of the prompt at position p of
// generation k uses seed named_seed(training.seed, "grpo/k/p") + s, so what is sampled depends on
// the weights and those numbers only: neither on the rank that samples it nor on the batching.
// A checkpoint taken between the num_iterations optimizer steps a generation feeds keeps it
// (to_json) so that --resume continues with the very completions.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/batcher.h"
#include "data/tokenizer.h"
#include "eval/query_sections.h"
#include "eval/query_set.h"
#include "grpo/grpo_loss.h"
#include "grpo/rewards.h"
#include "parallel/process_group.h"
#include "rollout/engine.h"

namespace align {

// The queries in epoch order (data/batcher.h's epoch_order of (seed, epoch), or file order
// without shuffle); a generation takes the next `count`, running on into the next epoch.
class PromptLoader {
 public:
  PromptLoader(int64_t num_queries, bool shuffle, uint64_t seed);
  std::vector<int64_t> next(int64_t count);
  BatcherState state() const { return state_; }
  void restore(const BatcherState& state);  // InputError for a cursor out of range

 private:
  int64_t n_;
  bool shuffle_;
  uint64_t seed_;
  BatcherState state_;
  std::vector<int64_t> order_;
  int64_t order_epoch_ = -1;
};

struct Rollout {
  int64_t query = 0;                // index into the query set
  std::vector<TokenId> tokens;      // the completion, its stop token included
  std::vector<float> logprobs;      // the engine's: pi_old at temperature 1
  std::vector<float> old_logprobs;  // pi_old at the sampling temperature when it is not 1 and
                                    // num_iterations > 1 (a forward of the recipe); else empty
  bool truncated = false;           // hit max_new_tokens without a stop token
  std::vector<double> rewards;      // one per reward function
};

struct Generation {
  int64_t index = 0;              // generations before it in the run
  std::vector<Rollout> rollouts;  // [P x G] group-major
  // Derived by finish_generation (not stored):
  torch::Tensor rewards;  // [N] fp32 the weighted sum
  GroupAdvantages advantages;
  nlohmann::json metrics;  // TRL's generation metrics (below)
  int64_t tokens = 0;      // prompt + completion tokens of every rollout (TRL's num_tokens)
};

struct GenerationOptions {
  int64_t num_generations = 8;
  SamplingSection sampling;
  uint64_t seed = 0;
  std::vector<TokenId> stop_token_ids;
  std::vector<double> reward_weights;  // one per reward
  ScaleRewards scale_rewards = ScaleRewards::kGroup;
};

// Samples, grades and exchanges generation `index` of `prompts` (P query indices, the same on
// every rank; P a multiple of the ranks), then finish_generation. The engine samples the model
// it was made with, as it is now.
Generation sample_generation(Engine& engine, const Tokenizer& tokenizer,
                             const std::vector<Query>& queries, const std::vector<Reward>& rewards,
                             const std::vector<int64_t>& prompts, int64_t index,
                             const GenerationOptions& options, ProcessGroup& group);

// After each rank filled old_logprobs of the rollouts it scored (the others left empty): every
// rank gets all of them (one exact sum over ranks). `max_tokens`: sampling.max_new_tokens.
void share_old_logprobs(Generation& generation, int64_t max_tokens, ProcessGroup& group);

// From the rollouts: the weighted rewards, advantages, token count and metrics:
//   completions/mean_length, min_length, max_length, clipped_ratio, mean_terminated_length,
//   min_terminated_length, max_terminated_length (completion tokens; terminated: with a stop
//   token), rewards/<name>/mean, rewards/<name>/std, reward, reward_std (std with n - 1, over
//   the generation), frac_reward_zero_std (share of completions whose group, or with
//   scale_rewards batch the batch, has one reward).
void finish_generation(Generation& generation, const std::vector<Query>& queries,
                       const std::vector<Reward>& rewards, const GenerationOptions& options);

// One line per rollout for OUTPUT/completions/step-N.jsonl: query_id, prompt (text),
// completion (text), token_ids, finish_reason, rewards {name: value}, reward, advantage.
std::vector<nlohmann::json> completion_records(const Generation& generation,
                                               const std::vector<Query>& queries,
                                               const std::vector<Reward>& rewards,
                                               const Tokenizer& tokenizer);

// The stored part ({"index", "rollouts": [...]}) and back; from_json throws InputError naming
// `source` when it is malformed or does not fit the query set.
nlohmann::json to_json(const Generation& generation);
Generation generation_from_json(const nlohmann::json& j, int64_t num_queries,
                                const std::string& source);

}  // namespace align
