// Inline SVG line charts for `align report`: x is the training step (or wall-clock seconds), one
// or more series, axes with a few tick labels and a legend; optional intervals drawn as error bars
// and vertical marks (a kept checkpoint). Plain SVG, no JavaScript.
#pragma once

#include <string>
#include <vector>

namespace align {

struct ChartPoint {
  double x = 0;  // step
  double y = 0;
  double low = kNoBar, high = kNoBar;  // an interval around y, drawn as an error bar when set
  static constexpr double kNoBar = -1e308;
  bool has_bar() const { return low != kNoBar && high != kNoBar; }
};

struct ChartSeries {
  std::string name;  // legend label, e.g. "loss" or "eval_loss"
  std::vector<ChartPoint> points;
  int color = -1;       // index into the palette; -1: the next unused one
  bool dashed = false;  // a second key of the same run (eval_loss next to loss)
};

struct ChartMark {
  double x = 0;
  std::string label;  // drawn next to a dashed vertical line at x
};

struct ChartOptions {
  std::string x_label = "step";
  std::vector<ChartMark> marks;
  int width = 520;
  int height = 260;
};

// The palette's colour `index` (wrapping around), e.g. for a legend outside a chart.
std::string chart_color(int index);

// "Nice" tick values (1, 2 or 5 times a power of ten), about `count` of them: inside [lo, hi], or
// with `outward` from the last tick at or below lo to the first at or above hi.
std::vector<double> nice_ticks(double lo, double hi, int count, bool outward = false);

// An <svg> element of options.width x options.height pixels titled `title`. Series with no points
// are left out of the plot; a chart with no points at all says "no data". The legend wraps onto
// further lines when the names do not fit on one.
std::string line_chart(const std::string& title, const std::vector<ChartSeries>& series,
                       const ChartOptions& options = {});

}  // namespace align
