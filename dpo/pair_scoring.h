// Policy and reference log-probabilities of preference pairs, one forward pass per micro-batch.
//
// A PairBatch is R rows of T tokens (right padded) plus the scoring entries: each entry reads
// log p(target | row prefix) at one flat position b * T + t and adds it to one output slot
// (slot k < N: the chosen completion of pair k, slot N + k: its rejected one). Logits are formed
// only at the positions entries need ([U, V] fp32, chunked), never [R, T, V].
//
//   sequence pairs  2N rows: prompt + chosen (rows 0..N-1), prompt + rejected (rows N..2N-1), as
//                   TRL's concatenated forward; one entry per completion token.
//   token chains    one row per chain (its longest prompt, nothing appended): a pivot whose prompt
//                   has length L reads both its tokens at position L - 1 (two entries, one
//                   position), so every pair of a completion costs one forward together.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "data/preference_dataset.h"
#include "data/token_pairs.h"
#include "model/phi3_model.h"

namespace align {

struct PairBatch {
  int64_t num_pairs = 0;                   // N
  torch::Tensor tokens;                    // [R, T] int64
  std::vector<int64_t> valid;              // [R] real tokens per row
  torch::Tensor positions;                 // [U] int64 flat positions b * T + t, ascending
  std::vector<int64_t> slot_offsets;       // [U + 1] entries of position u: [off[u], off[u + 1])
  torch::Tensor entry_targets;             // [M] int64 token read at the entry's position
  torch::Tensor entry_owner;               // [M] int64 output slot in [0, 2N)
  torch::Tensor chosen_tokens;             // [N] fp32 completion lengths (1 for token pairs)
  torch::Tensor rejected_tokens;           // [N] fp32
  torch::Tensor weights;                   // [N] fp32 per-pair weights
  torch::Tensor ref_chosen, ref_rejected;  // [N] fp32 precomputed sums; undefined when absent
  std::vector<int64_t> pair_ids;           // [N] index of each pair in its dataset
  int64_t real_tokens = 0;                 // sum of valid: tokens the forward processes
};

// Pairs `indices` of `pairs`, padded with pad_id.
PairBatch make_sequence_batch(const std::vector<PreferencePair>& pairs,
                              const std::vector<int64_t>& indices, int64_t pad_id);
// Every pair of chains `chain_indices` (in chain order, each chain's pairs shortest first).
PairBatch make_chain_batch(const std::vector<TokenPair>& pairs,
                           const std::vector<PairChain>& chains,
                           const std::vector<int64_t>& chain_indices, int64_t pad_id);

struct PairLogps {
  torch::Tensor chosen;    // [N] fp32 summed log-probs of each chosen completion
  torch::Tensor rejected;  // [N] fp32
  // [N] fp32, no gradient: over each completion's tokens, the sum of the mean logit over the
  // vocabulary at that position (TRL's logits/chosen, logits/rejected divide by the tokens).
  torch::Tensor chosen_logits, rejected_logits;
};

// One forward over the batch (autograd follows grad mode). `checkpoint_layers`: activation
// checkpointing; `chunk_tokens`: positions per logits chunk.
PairLogps score_pairs(const Phi3Model& model, const PairBatch& batch,
                      bool checkpoint_layers = false, int64_t chunk_tokens = 1024);

}  // namespace align
