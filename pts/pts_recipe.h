// `align pts`: Pivotal Token Search over a query set as one flat program
// (setup -> loop over batches of queries -> append outputs -> summary).
//
// Writes into output.dir (pts/pts_output.h): config.json, pivots.jsonl, pairs.jsonl,
// queries.jsonl, completions.jsonl, metrics.jsonl (one line per batch: batch, queries_done, kept,
// pivots, pairs, rollouts, tokens_generated, tokens_per_s, prefill_tokens, reused_prefix_tokens
// (prompt tokens forked from cached prefixes instead of prefilled), engine_steps, elapsed_s),
// progress.json.
// Restarted with the same config it continues after the last finished batch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "parallel/process_group.h"
#include "pts/pts_config.h"

namespace align {

struct PtsRunSummary {
  int64_t queries = 0, kept = 0, pivots = 0, pairs = 0, rollouts = 0, tokens_generated = 0;
  double seconds = 0;  // this invocation only
};

// `source` names the config file in messages (the oracle section's errors included).
// `group`: the multi-process job (null: one process). Each rank loads the model and runs its own
// engine; the batches left to do go round-robin over the ranks and rank 0 appends every batch in
// order, so the outputs equal a single-process run's (timings aside) and a restart, on any
// number of ranks, continues after the last batch rank 0 committed. The summary is rank 0's.
PtsRunSummary run_pts(const PtsConfig& config, const std::string& source,
                      const std::shared_ptr<ProcessGroup>& group = nullptr);

}  // namespace align
