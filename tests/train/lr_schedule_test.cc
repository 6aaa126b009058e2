#include "train/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"

namespace align {
namespace {

LrScheduleOptions schedule(LrScheduleType type, double min_lr_ratio = 0) {
  LrScheduleOptions o;
  o.type = type;
  o.warmup_steps = 10;
  o.total_steps = 100;
  o.min_lr_ratio = min_lr_ratio;
  return o;
}

TEST(LrSchedule, WarmupIsLinearFromZero) {
  for (auto type : {LrScheduleType::kConstant, LrScheduleType::kLinear, LrScheduleType::kCosine}) {
    const auto o = schedule(type);
    EXPECT_EQ(lr_multiplier(o, 0), 0.0);  // HF's first update runs at lr 0
    EXPECT_DOUBLE_EQ(lr_multiplier(o, 3), 0.3);
    EXPECT_EQ(lr_multiplier(o, 10), 1.0);  // warmup end: the peak
  }
  // No warmup: the first update already runs at the peak.
  LrScheduleOptions o = schedule(LrScheduleType::kCosine);
  o.warmup_steps = 0;
  EXPECT_EQ(lr_multiplier(o, 0), 1.0);
}

TEST(LrSchedule, CosineClosedForm) {
  const auto o = schedule(LrScheduleType::kCosine);
  const double pi = std::acos(-1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 55), 0.5);  // midpoint of the decay
  EXPECT_NEAR(lr_multiplier(o, 100), 0.0, 1e-15);
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 30), 0.5 * (1 + std::cos(pi * 20.0 / 90.0)));
  // transformers' get_cosine_schedule_with_warmup(10, 100) (5.23): lr of updates 7, 14, 70, 98.
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 7), 0.69999999999999996);
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 14), 0.99513403437078518);
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 70), 0.25000000000000011);
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 98), 0.0012179748700879012);
  // Past the end transformers' cosine climbs back up; so does this one.
  EXPECT_GT(lr_multiplier(o, 105), 0.0);
}

TEST(LrSchedule, CosineWithMinLrRatio) {
  const auto o = schedule(LrScheduleType::kCosine, 0.1);
  EXPECT_EQ(lr_multiplier(o, 10), 1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 55), 0.5 * 0.9 + 0.1);
  EXPECT_NEAR(lr_multiplier(o, 100), 0.1, 1e-15);
  // transformers' get_cosine_with_min_lr_schedule_with_warmup(10, 100, min_lr_rate=0.1).
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 14), 0.99562063093370667);
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 98), 0.10109617738307912);
}

TEST(LrSchedule, LinearClosedForm) {
  const auto o = schedule(LrScheduleType::kLinear);
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 55), 0.5);
  EXPECT_EQ(lr_multiplier(o, 100), 0.0);
  EXPECT_EQ(lr_multiplier(o, 120), 0.0);  // clamped at 0 past the end
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 91), 9.0 / 90.0);
  // transformers' get_linear_schedule_with_warmup(10, 100).
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 14), 0.9555555555555556);
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 98), 0.022222222222222223);
}

TEST(LrSchedule, ConstantAfterWarmup) {
  const auto o = schedule(LrScheduleType::kConstant);
  EXPECT_DOUBLE_EQ(lr_multiplier(o, 9), 0.9);
  EXPECT_EQ(lr_multiplier(o, 55), 1.0);
  EXPECT_EQ(lr_multiplier(o, 100), 1.0);
  EXPECT_EQ(lr_multiplier(o, 1000), 1.0);
}

TEST(LrSchedule, ParseValidateAndWarmupRatio) {
  EXPECT_EQ(parse_enum<LrScheduleType>("cosine", "schedule.type"), LrScheduleType::kCosine);
  EXPECT_EQ(parse_enum<LrScheduleType>("linear", "schedule.type"), LrScheduleType::kLinear);
  EXPECT_EQ(parse_enum<LrScheduleType>("constant", "schedule.type"), LrScheduleType::kConstant);
  try {
    parse_enum<LrScheduleType>("cosin", "schedule.type");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("schedule.type"), std::string::npos);
  }
  EXPECT_THROW(validate(schedule(LrScheduleType::kCosine, 1.5)), InputError);
  EXPECT_THROW(validate(schedule(LrScheduleType::kLinear, 0.1)), InputError);
  EXPECT_NO_THROW(validate(schedule(LrScheduleType::kCosine, 0.1)));
  EXPECT_EQ(warmup_steps_from_ratio(1000, 0.03), 30);
  EXPECT_EQ(warmup_steps_from_ratio(101, 0.1), 11);  // ceil, as transformers
}

}  // namespace
}  // namespace align
