// Training checkpoints: everything a killed run needs to continue as if it had never stopped.
//
//   OUTPUT/checkpoints/step-00000123/
//     model.safetensors          trainable weights (or model-0000k-of-0000n.safetensors + index),
//                                each tensor in its own dtype (written by save_checkpoint)
//     optimizer.safetensors      optimizer state (AdamW::state_tensors()), or, when it is sharded
//     optimizer/shard-0000r-of-0000n.safetensors   over n ranks (ZeRO stage 2), rank r's part
//     trainer_state.json         {"format": "align.trainer_state", "version": 1, "step", "epoch",
//                                 "data": <data-loader state>, "rng": <capture_rng_state()>,
//                                 "config": <resolved run config>, "metrics": <metrics so far>}
//
// Written atomically: everything goes into step-00000123.partial/ (each file fsynced), which is
// renamed to its final name only when complete, so a directory with a final name is always whole.
// A .partial left by a killed run is ignored by find_latest_checkpoint() and removed by the next
// save. After a save, all but the newest `keep_last` checkpoints are deleted (renamed to .partial
// first, so a kill mid-delete leaves nothing that looks complete).
//
// Resume:
//   auto dir = find_latest_checkpoint(out);           // nullopt: start fresh
//   auto ckpt = load_train_checkpoint(*dir);           // validated; throws InputError naming a
//   file copy ckpt.weights.get(name, ...) into the live weights;
//   optimizer.load_state(ckpt.optimizer); restore_rng_state(ckpt.state.rng, ckpt.state_path);
//   metrics.truncate_after(ckpt.state.step);
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/checkpoint.h"
#include "parallel/process_group.h"
#include "train/named_tensors.h"

namespace align {

struct TrainerState {
  int64_t step = 0;                                   // optimizer updates applied so far
  int64_t epoch = 0;                                  // epoch in progress, 0-based
  nlohmann::json data = nlohmann::json::object();     // data-loader position (opaque here)
  nlohmann::json config = nlohmann::json::object();   // resolved run config (opaque here)
  nlohmann::json metrics = nlohmann::json::object();  // metrics so far (opaque here)
  nlohmann::json rng;  // capture_rng_state(); filled in by save_train_checkpoint
};

struct TrainCheckpointOptions {
  int64_t keep_last = 0;   // keep the newest K complete checkpoints; <= 0 keeps all
  int64_t keep_step = -1;  // and this step's, whatever keep_last says (-1: none)
  int64_t max_shard_bytes = 5'000'000'000;  // for the trainable weights
  // A data-parallel job: every rank calls save_train_checkpoint; rank 0 writes the weights and
  // state, and with `sharded_optimizer` each rank writes its own optimizer shard into the
  // checkpoint before rank 0 renames it complete (the output folder must be shared by the ranks).
  // Without `sharded_optimizer` rank 0's optimizer state is the whole state. Null: one process.
  ProcessGroup* group = nullptr;
  bool sharded_optimizer = false;
};

std::string checkpoints_dir(const std::string& output_dir);  // OUTPUT/checkpoints
std::string checkpoint_dir_name(int64_t step);               // "step-00000123"

// Writes the checkpoint for `state.step` (RNG states are captured here, at the call) and returns
// its directory. A checkpoint already saved for the same step is replaced. `weights` and
// `optimizer_state` are written from the tensors as they are now (any device; copied to CPU one
// tensor at a time).
std::string save_train_checkpoint(const std::string& output_dir, const TrainerState& state,
                                  const NamedTensors& weights, const NamedTensors& optimizer_state,
                                  const TrainCheckpointOptions& options = {});

// Complete checkpoints under OUTPUT/checkpoints as (step, directory), oldest first. Directories
// named step-<digits> count; .partial ones and anything else are ignored.
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& output_dir);

// The newest complete checkpoint, or nullopt when there is none. It is not validated here:
// load_train_checkpoint() does that, and a damaged newest checkpoint is an error, not a reason to
// fall back silently to an older one.
std::optional<std::string> find_latest_checkpoint(const std::string& output_dir);

struct LoadedTrainCheckpoint {
  std::string dir;
  std::string state_path;  // dir/trainer_state.json, for error messages
  TrainerState state;
  Checkpoint weights;    // the trainable weights, memory-mapped
  Checkpoint optimizer;  // optimizer.safetensors, memory-mapped: pass to AdamW::load_state
  // Every optimizer file: {optimizer} for a single file, else the shards of optimizer/.
  std::vector<Checkpoint> optimizer_files;
};

// The optimizer state tensors ("exp_avg/NAME", ...) of the parameters in `params`, from whichever
// optimizer files the checkpoint has: a state written on any number of ranks, sharded or not.
NamedTensors optimizer_state_for(const LoadedTrainCheckpoint& checkpoint,
                                 const std::set<std::string>& params);

// Opens and validates a checkpoint directory: trainer_state.json must parse, hold exactly the
// fields above with the right types (step matching the directory name, a well-formed rng object),
// and both safetensors files must be valid. Throws InputError naming the file and field.
// Restores nothing: the caller copies weights, loads the optimizer and restores the RNG.
LoadedTrainCheckpoint load_train_checkpoint(const std::string& dir);

}  // namespace align
