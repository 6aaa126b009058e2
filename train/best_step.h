// Which step of a run is its result: a recipe that evaluates its weights every few steps on a
// held-out metric (align dpo's dpo.eval: pass@1 of sampled completions) records each eval here;
// the best one, by its mean (ties to the earlier step: fewer updates from the start), is the
// step whose weights the run returns when it keeps its best. The history travels in the
// checkpoints (TrainRun::set_recipe_state), so --resume continues it exactly.
//
// A step whose completions/clipped_ratio (the share of samples that hit max_new_tokens: a model
// that stopped ending its answers) exceeds max_clipped_ratio is never the best while some eval is
// within it; when none is, the best is the one with the lowest clipped_ratio (then the mean, then
// the earlier step). The default 1 limits nothing.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace align {

struct StepScore {
  int64_t step = 0;
  double value = 0;  // the metric's mean
  double low = 0;    // its interval
  double high = 0;
  double clipped_ratio = 0;  // of the eval's completions (eval/query_eval.h)
};

class BestStep {
 public:
  BestStep(std::string metric, bool higher_is_better, double max_clipped_ratio = 1);

  // Records an eval; true when it is the new best (the first eval always is).
  bool add(const StepScore& score);
  // Drops evals after `step` (a resumed run replays them).
  void truncate_after(int64_t step);

  const std::string& metric() const { return metric_; }
  bool higher_is_better() const { return higher_is_better_; }
  double max_clipped_ratio() const { return max_clipped_ratio_; }
  // Whether `score` may be the best (its clipped_ratio is within max_clipped_ratio).
  bool eligible(const StepScore& score) const;
  const std::vector<StepScore>& history() const { return history_; }
  std::optional<StepScore> best() const;

  // {"metric", "higher_is_better", "max_clipped_ratio", "evals": [{"step", "value", "low",
  // "high", "clipped_ratio", "eligible"}, ...]}, and back (throws InputError naming `source` when
  // malformed or for another metric). The limit is the config's, never restored (nor
  // "eligible", which follows from it); a record without clipped_ratio (an older run's) reads
  // as 0.
  nlohmann::json to_json() const;
  void restore(const nlohmann::json& j, const std::string& source);

  // best.json: to_json() plus the winner ("step", "value", "low", "high", "clipped_ratio"),
  // "last_step" and "kept" (whether the run returns the winner's weights).
  nlohmann::json summary(int64_t last_step, bool kept) const;
  // "step 20 kept: pass@1 0.84 [0.80, 0.88], the best of 5 evals; the last step (60) had 0.71
  // [0.66, 0.76]", or when the last step is the best, says so; names the steps passed over for
  // their clipped_ratio.
  std::string verdict(int64_t last_step, bool kept) const;

 private:
  std::string metric_;
  bool higher_is_better_;
  double max_clipped_ratio_;
  std::vector<StepScore> history_;
};

}  // namespace align
