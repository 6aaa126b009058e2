// Learning-rate schedules: linear warmup from 0, then constant, linear or cosine decay, exactly as
// transformers' get_{constant,linear,cosine}_schedule_with_warmup (optimization.py) and, for a
// nonzero min_lr_ratio, get_cosine_with_min_lr_schedule_with_warmup(min_lr_rate=...).
//
// `step` is the number of optimizer updates already applied (the LambdaLR's last_epoch when
// optimizer.step() runs): the first update uses lr_multiplier(0), which is 0 when warmup_steps > 0,
// as in HF Trainer. With W = warmup_steps, N = total_steps:
//
//   step < W          step / max(1, W)
//   constant          1
//   linear            max(0, (N - step) / max(1, N - W))
//   cosine            p = (step - W) / max(1, N - W)
//                     f = 0.5 (1 + cos(pi * num_cycles * 2 p))
//                     max(0, f (1 - min_lr_ratio) + min_lr_ratio)
//
// Past N, linear stays at 0; cosine (as in transformers) follows the cosine back up.
#pragma once

#include <cstdint>
#include <string>

#include "common/enum_names.h"

namespace align {

enum class LrScheduleType { kConstant, kLinear, kCosine };

struct LrScheduleOptions {
  LrScheduleType type = LrScheduleType::kCosine;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;    // optimizer steps in the run (not used by kConstant)
  double min_lr_ratio = 0.0;  // cosine only: floor as a fraction of the peak lr, in [0, 1]
  double num_cycles = 0.5;    // cosine only: 0.5 = one half-wave from peak to floor
};

template <>
struct EnumNames<LrScheduleType> {
  static constexpr std::pair<LrScheduleType, const char*> table[] = {
      {LrScheduleType::kCosine, "cosine"},
      {LrScheduleType::kLinear, "linear"},
      {LrScheduleType::kConstant, "constant"}};
};

// Throws InputError naming the schedule field when an option is out of range.
void validate(const LrScheduleOptions& options);

// The factor the peak lr is multiplied by for the update after `step` updates (step >= 0).
double lr_multiplier(const LrScheduleOptions& options, int64_t step);

// HF's warmup_ratio: ceil(total_steps * ratio).
int64_t warmup_steps_from_ratio(int64_t total_steps, double ratio);

}  // namespace align
