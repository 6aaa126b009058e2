// Inline SVG line charts for `align report`: x is the training step, one or more series, axes with
// a few tick labels and a legend. Plain SVG, no JavaScript.
#pragma once

#include <string>
#include <vector>

namespace align {

struct ChartPoint {
  double x = 0;  // step
  double y = 0;
};

struct ChartSeries {
  std::string name;  // legend label, e.g. "loss" or "eval_loss"
  std::vector<ChartPoint> points;
};

// "Nice" tick values (1, 2 or 5 times a power of ten), about `count` of them: inside [lo, hi], or
// with `outward` from the last tick at or below lo to the first at or above hi.
std::vector<double> nice_ticks(double lo, double hi, int count, bool outward = false);

// An <svg> element of `width` x `height` pixels titled `title`. Series with no points are left out
// of the plot; a chart with no points at all says "no data".
std::string line_chart(const std::string& title, const std::vector<ChartSeries>& series,
                       int width = 520, int height = 260);

}  // namespace align
