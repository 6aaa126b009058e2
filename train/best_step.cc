#include "train/best_step.h"

#include <cstdio>
#include <utility>

#include "common/error.h"

namespace align {

namespace {

std::string format_score(const StepScore& s) {
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "%.3f [%.3f, %.3f]", s.value, s.low, s.high);
  return buffer;
}

}  // namespace

BestStep::BestStep(std::string metric, bool higher_is_better, double max_clipped_ratio)
    : metric_(std::move(metric)),
      higher_is_better_(higher_is_better),
      max_clipped_ratio_(max_clipped_ratio) {}

bool BestStep::eligible(const StepScore& score) const {
  return score.clipped_ratio <= max_clipped_ratio_;
}

std::optional<StepScore> BestStep::best() const {
  // Within the limit beats over it; among those over it, the fewer clipped; then the mean.
  // Strictly better only, so ties go to the earlier step.
  auto better = [&](const StepScore& a, const StepScore& b) {
    if (eligible(a) != eligible(b)) return eligible(a);
    if (!eligible(a) && a.clipped_ratio != b.clipped_ratio)
      return a.clipped_ratio < b.clipped_ratio;
    return higher_is_better_ ? a.value > b.value : a.value < b.value;
  };
  std::optional<StepScore> out;
  for (const StepScore& s : history_) {
    if (!out || better(s, *out)) out = s;
  }
  return out;
}

bool BestStep::add(const StepScore& score) {
  const std::optional<StepScore> before = best();
  history_.push_back(score);
  return !before || best()->step == score.step;
}

void BestStep::truncate_after(int64_t step) {
  std::vector<StepScore> kept;
  for (const StepScore& s : history_)
    if (s.step <= step) kept.push_back(s);
  history_ = std::move(kept);
}

nlohmann::json BestStep::to_json() const {
  nlohmann::json evals = nlohmann::json::array();
  for (const StepScore& s : history_) {
    evals.push_back({{"step", s.step},
                     {"value", s.value},
                     {"low", s.low},
                     {"high", s.high},
                     {"clipped_ratio", s.clipped_ratio},
                     {"eligible", eligible(s)}});
  }
  return {{"metric", metric_},
          {"higher_is_better", higher_is_better_},
          {"max_clipped_ratio", max_clipped_ratio_},
          {"evals", evals}};
}

void BestStep::restore(const nlohmann::json& j, const std::string& source) {
  history_.clear();
  if (j.is_null()) return;
  try {
    if (j.at("metric").get<std::string>() != metric_) {
      throw InputError(source + ": the run's held-out evals measured " +
                       j.at("metric").get<std::string>() + ", the config asks for " + metric_);
    }
    for (const nlohmann::json& e : j.at("evals")) {
      history_.push_back({e.at("step").get<int64_t>(), e.at("value").get<double>(),
                          e.at("low").get<double>(), e.at("high").get<double>(),
                          e.value("clipped_ratio", 0.0)});
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(source + ": malformed record of held-out evals: " + e.what());
  }
}

nlohmann::json BestStep::summary(int64_t last_step, bool kept) const {
  nlohmann::json j = to_json();
  if (const std::optional<StepScore> b = best()) {
    j["step"] = b->step;
    j["value"] = b->value;
    j["low"] = b->low;
    j["high"] = b->high;
    j["clipped_ratio"] = b->clipped_ratio;
  }
  j["last_step"] = last_step;
  j["kept"] = kept;
  return j;
}

std::string BestStep::verdict(int64_t last_step, bool kept) const {
  const std::optional<StepScore> b = best();
  if (!b) return "no held-out eval ran";
  const std::string evals = std::to_string(history_.size()) + " eval" +
                            (history_.size() == 1 ? "" : "s") + " (" +
                            (higher_is_better_ ? "higher" : "lower") + " is better)";
  std::string out = "step " + std::to_string(b->step) + (kept ? " kept: " : " was best: ") +
                    metric_ + " " + format_score(*b);
  char limit[256];
  if (!eligible(*b)) {
    std::snprintf(limit, sizeof limit,
                  "; none of %s had completions/clipped_ratio within max_clipped_ratio %.3g, "
                  "and it clipped the fewest (%.3f)",
                  evals.c_str(), max_clipped_ratio_, b->clipped_ratio);
    out += limit;
  } else {
    out += ", the best of " + evals;
    std::string over;
    for (const StepScore& s : history_) {
      if (eligible(s)) continue;
      std::snprintf(limit, sizeof limit, "%s%lld (%.3f)", over.empty() ? "" : ", ",
                    static_cast<long long>(s.step), s.clipped_ratio);
      over += limit;
    }
    if (!over.empty()) {
      std::snprintf(limit, sizeof limit,
                    "; passed over for completions/clipped_ratio above %.3g: ", max_clipped_ratio_);
      out +=
          limit + std::string("step") + (over.find(',') == std::string::npos ? " " : "s ") + over;
    }
  }
  if (b->step == last_step) return out + "; it is the last step";
  for (const StepScore& s : history_) {
    if (s.step == last_step) {
      return out + "; the last step (" + std::to_string(last_step) + ") had " + format_score(s) +
             (kept ? "" : ", and is the result (dpo.eval.keep_best is false)");
    }
  }
  return out;
}

}  // namespace align
