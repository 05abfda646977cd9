// toolkit/plot.h — the SVG that `tq sweep --plot` writes: an accuracy-vs-size Pareto chart of the
// mixed-precision models (and uniform references), and a per-layer bit-width chart, one row per
// budget. Plain SVG 1.1 written by hand: opens in any browser, no script, no external font.
#pragma once

#include <string>
#include <vector>

namespace tinyquant {

struct SweepPlotPoint {
  std::string label;     // "13%", "W4 uniform"
  double kilobytes = 0;  // the model's weights + bias + scales
  double top1 = 0;       // percent
};

struct SweepPlot {
  std::string title;                 // e.g. "resnet20, light pipeline"
  double float_top1 = -1;            // a dashed line (negative: none)
  double float_kilobytes = 0;
  std::vector<SweepPlotPoint> mixed;    // joined by a line, in budget order
  std::vector<SweepPlotPoint> uniform;  // markers only
  std::vector<std::string> layers;      // the bit-width chart's columns
  std::vector<std::string> rows;        // its rows (the budgets' labels)
  std::vector<std::vector<int>> bits;   // [row][layer]
};

std::string sweep_svg(const SweepPlot& plot);

}  // namespace tinyquant
