#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace align {

void validate(const LrScheduleOptions& o) {
  if (o.warmup_steps < 0) {
    throw InputError("schedule.warmup_steps = " + std::to_string(o.warmup_steps) +
                     ": expected a value >= 0");
  }
  if (o.total_steps < 0) {
    throw InputError("schedule.total_steps = " + std::to_string(o.total_steps) +
                     ": expected a value >= 0");
  }
  if (!(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1)) {
    throw InputError("schedule.min_lr_ratio = " + std::to_string(o.min_lr_ratio) +
                     ": expected a value in [0, 1]");
  }
  if (o.min_lr_ratio != 0 && o.type != LrScheduleType::kCosine) {
    throw InputError(
        std::string("schedule.min_lr_ratio applies only to the cosine schedule, not ") +
        enum_name(o.type));
  }
  if (!(o.num_cycles > 0)) {
    throw InputError("schedule.num_cycles = " + std::to_string(o.num_cycles) +
                     ": expected a value > 0");
  }
}

double lr_multiplier(const LrScheduleOptions& o, int64_t step) {
  const int64_t warmup = o.warmup_steps, total = o.total_steps;
  if (step < warmup) {
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  }
  const double decay_steps = static_cast<double>(std::max<int64_t>(1, total - warmup));
  switch (o.type) {
    case LrScheduleType::kConstant:
      return 1.0;
    case LrScheduleType::kLinear:
      return std::max(0.0, static_cast<double>(total - step) / decay_steps);
    case LrScheduleType::kCosine: {
      const double progress = static_cast<double>(step - warmup) / decay_steps;
      double factor = 0.5 * (1.0 + std::cos(M_PI * o.num_cycles * 2.0 * progress));
      factor = factor * (1 - o.min_lr_ratio) + o.min_lr_ratio;
      return std::max(0.0, factor);
    }
  }
  return 1.0;
}

int64_t warmup_steps_from_ratio(int64_t total_steps, double ratio) {
  return static_cast<int64_t>(std::ceil(static_cast<double>(total_steps) * ratio));
}

}  // namespace align
