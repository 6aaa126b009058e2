#include "align/report_charts.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "align/report_html.h"

namespace align {
namespace {

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c",
                                   "#ff7f0e", "#9467bd", "#8c564b"};

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  // Widens an empty or single-value range so that it can be divided.
  void pad() {
    if (hi > lo) return;
    const double d = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
};

std::string num(double v) {
  return format_number(v, 6);
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int count, bool outward) {
  std::vector<double> ticks;
  if (!(hi > lo) || count < 1) return {lo};
  const double raw = (hi - lo) / count;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  const double first = outward ? std::floor(lo / step + 1e-9) : std::ceil(lo / step - 1e-9);
  const double last = outward ? std::ceil(hi / step - 1e-9) : std::floor(hi / step + 1e-9);
  for (double i = first; i <= last + 0.5; i += 1) {
    const double t = i * step;
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

std::string chart_color(int index) {
  const int n = static_cast<int>(sizeof(kColors) / sizeof(kColors[0]));
  return kColors[((index % n) + n) % n];
}

std::string line_chart(const std::string& title, const std::vector<ChartSeries>& series,
                       const ChartOptions& options) {
  const int width = options.width;
  // The legend's rows first: they decide where the plot starts.
  struct LegendItem {
    size_t series;
    double x;
    int row;
  };
  std::vector<LegendItem> legend;
  std::vector<std::string> colors(series.size());
  {
    const double start = 56, end = width - 12.0;
    double x = start;
    int row = 0, next_color = 0;
    for (size_t i = 0; i < series.size(); ++i) {
      if (series[i].points.empty()) continue;
      colors[i] = chart_color(series[i].color >= 0 ? series[i].color : next_color++);
      const double w = 32 + 6.5 * static_cast<double>(series[i].name.size());
      if (x > start && x + w > end) {
        x = start;
        ++row;
      }
      legend.push_back({i, x, row});
      x += w;
    }
  }
  const int rows = legend.empty() ? 1 : legend.back().row + 1;
  const int height = options.height + 14 * (rows - 1);
  const double left = 56, right = 12, top = 40 + 14.0 * (rows - 1), bottom = 32;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  Range xr, yr;
  for (const auto& s : series)
    for (const auto& p : s.points) {
      xr.add(p.x);
      yr.add(p.y);
      if (p.has_bar()) {
        yr.add(p.low);
        yr.add(p.high);
      }
    }
  for (const ChartMark& m : options.marks)
    if (xr.lo <= xr.hi) xr.add(m.x);
  std::string svg = "<svg class=\"chart\" width=\"" + std::to_string(width) + "\" height=\"" +
                    std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " +
                    std::to_string(height) + "\">\n";
  svg += "<text x=\"" + num(left) + "\" y=\"16\" style=\"font-weight:bold;font-size:13px\">" +
         html_escape(title) + "</text>\n";
  if (xr.lo > xr.hi) {
    svg += "<text x=\"" + num(width / 2.0) + "\" y=\"" + num(height / 2.0) +
           "\" text-anchor=\"middle\">no data</text>\n</svg>\n";
    return svg;
  }
  xr.pad();
  yr.pad();
  const std::vector<double> yt = nice_ticks(yr.lo, yr.hi, 4, /*outward=*/true);
  yr.add(yt.front());
  yr.add(yt.back());
  yr.pad();
  auto px = [&](double x) { return left + (x - xr.lo) / (xr.hi - xr.lo) * plot_w; };
  auto py = [&](double y) { return top + (yr.hi - y) / (yr.hi - yr.lo) * plot_h; };

  // Grid lines and tick labels.
  for (double t : yt) {
    svg += "<line x1=\"" + num(left) + "\" x2=\"" + num(left + plot_w) + "\" y1=\"" + num(py(t)) +
           "\" y2=\"" + num(py(t)) + "\" stroke=\"#eee\"/>\n";
    svg += "<text x=\"" + num(left - 6) + "\" y=\"" + num(py(t) + 4) + "\" text-anchor=\"end\">" +
           format_number(t, 4) + "</text>\n";
  }
  for (double t : nice_ticks(xr.lo, xr.hi, 5)) {
    svg += "<line x1=\"" + num(px(t)) + "\" x2=\"" + num(px(t)) + "\" y1=\"" + num(top + plot_h) +
           "\" y2=\"" + num(top + plot_h + 4) + "\" stroke=\"#888\"/>\n";
    svg += "<text x=\"" + num(px(t)) + "\" y=\"" + num(top + plot_h + 16) +
           "\" text-anchor=\"middle\">" + format_number(t, 6) + "</text>\n";
  }
  svg += "<text x=\"" + num(left + plot_w) + "\" y=\"" + num(height - 2.0) +
         "\" text-anchor=\"end\">" + html_escape(options.x_label) + "</text>\n";
  svg += "<rect x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(plot_w) +
         "\" height=\"" + num(plot_h) + "\" fill=\"none\" stroke=\"#888\"/>\n";
  for (const ChartMark& m : options.marks) {
    svg += "<line class=\"mark\" x1=\"" + num(px(m.x)) + "\" x2=\"" + num(px(m.x)) + "\" y1=\"" +
           num(top) + "\" y2=\"" + num(top + plot_h) +
           "\" stroke=\"#111\" stroke-dasharray=\"4 3\"/>\n";
    svg += "<text x=\"" + num(px(m.x) + 4) + "\" y=\"" + num(top + 12) + "\">" +
           html_escape(m.label) + "</text>\n";
  }

  // Series (error bars under the line), then the legend along the top.
  for (size_t i = 0; i < series.size(); ++i) {
    const ChartSeries& s = series[i];
    if (s.points.empty()) continue;
    const std::string& color = colors[i];
    std::string points;
    for (const auto& p : s.points) {
      points += num(px(p.x)) + "," + num(py(p.y)) + " ";
      if (p.has_bar())
        svg += "<line class=\"bar\" x1=\"" + num(px(p.x)) + "\" x2=\"" + num(px(p.x)) + "\" y1=\"" +
               num(py(p.low)) + "\" y2=\"" + num(py(p.high)) + "\" stroke=\"" + color +
               "\" stroke-opacity=\"0.5\" stroke-width=\"3\"/>\n";
    }
    const std::string dash = s.dashed ? "\" stroke-dasharray=\"5 3" : "";
    svg += "<polyline fill=\"none\" stroke=\"" + color + dash +
           "\" stroke-width=\"1.6\" points=\"" + points + "\"/>\n";
    if (s.points.size() <= 30)
      for (const auto& p : s.points)
        svg += "<circle cx=\"" + num(px(p.x)) + "\" cy=\"" + num(py(p.y)) + "\" r=\"2.5\" fill=\"" +
               color + "\"/>\n";
  }
  for (const LegendItem& item : legend) {
    const double y = 29 + 14.0 * item.row;
    svg += "<line x1=\"" + num(item.x) + "\" x2=\"" + num(item.x + 16) + "\" y1=\"" + num(y) +
           "\" y2=\"" + num(y) + "\" stroke=\"" + colors[item.series] +
           (series[item.series].dashed ? "\" stroke-dasharray=\"5 3" : "") +
           "\" stroke-width=\"2.5\"/>\n";
    svg += "<text class=\"legend\" x=\"" + num(item.x + 20) + "\" y=\"" + num(y + 4) + "\">" +
           html_escape(series[item.series].name) + "</text>\n";
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace align
