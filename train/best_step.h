// Which step of a run is its result: a recipe that evaluates its weights every few steps on a
// held-out metric (align dpo's dpo.eval: pass@1 of sampled completions) records each eval here;
// the best one, by its mean (ties to the earlier step: fewer updates from the start), is the
// step whose weights the run returns when it keeps its best. The history travels in the
// checkpoints (TrainRun::set_recipe_state), so --resume continues it exactly.
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
};

class BestStep {
 public:
  BestStep(std::string metric, bool higher_is_better);

  // Records an eval; true when it is the new best (the first eval always is).
  bool add(const StepScore& score);
  // Drops evals after `step` (a resumed run replays them).
  void truncate_after(int64_t step);

  const std::string& metric() const { return metric_; }
  bool higher_is_better() const { return higher_is_better_; }
  const std::vector<StepScore>& history() const { return history_; }
  std::optional<StepScore> best() const;

  // {"metric", "higher_is_better", "evals": [{"step", "value", "low", "high"}, ...]}, and back
  // (throws InputError naming `source` when malformed or for another metric).
  nlohmann::json to_json() const;
  void restore(const nlohmann::json& j, const std::string& source);

  // best.json: to_json() plus the winner ("step", "value", "low", "high"), "last_step" and
  // "kept" (whether the run returns the winner's weights).
  nlohmann::json summary(int64_t last_step, bool kept) const;
  // "step 20 kept: pass@1 0.84 [0.80, 0.88], the best of 5 evals; the last step (60) had 0.71
  // [0.66, 0.76]", or when the last step is the best, says so.
  std::string verdict(int64_t last_step, bool kept) const;

 private:
  std::string metric_;
  bool higher_is_better_;
  std::vector<StepScore> history_;
};

}  // namespace align
