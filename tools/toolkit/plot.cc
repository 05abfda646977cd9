// The sweep SVG (toolkit/plot.h).
#include "toolkit/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tinyquant {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string fmt(const char* f, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), f, a, b, c, d);
  return buf;
}

// About n "nice" ticks (1, 2, 5 × 10^k steps) covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int n) {
  const double raw = (hi - lo) / std::max(1, n);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(v);
  return t;
}

const char* bit_colour(int bits) {
  switch (bits) {
    case 2: return "#d73027";
    case 3: return "#fc8d59";
    case 4: return "#fee08b";
    case 5: return "#d9ef8b";
    case 6: return "#91cf60";
    case 7: return "#66bd63";
    default: return "#1a9850";
  }
}

}  // namespace

std::string sweep_svg(const SweepPlot& p) {
  const double W = 900, left = 70, right = 30, top = 50, ph = 330;
  const double pw = W - left - right;
  const double cell_h = 22, label_w = 70;
  const size_t nl = p.layers.size();
  const double grid_top = top + ph + 90;
  const double key_w = 130;  // the colour key right of the grid
  const double cell_w = nl ? std::min(40.0, (W - left - right - label_w - key_w) / double(nl)) : 10;
  const double H = grid_top + 30 + cell_h * double(p.rows.size()) + 110;

  std::vector<SweepPlotPoint> all = p.mixed;
  all.insert(all.end(), p.uniform.begin(), p.uniform.end());
  double x0 = 0, x1 = 1, y0 = 0, y1 = 100;
  if (!all.empty()) {
    x0 = x1 = all[0].kilobytes;
    y0 = y1 = all[0].top1;
    for (const SweepPlotPoint& q : all) {
      x0 = std::min(x0, q.kilobytes), x1 = std::max(x1, q.kilobytes);
      y0 = std::min(y0, q.top1), y1 = std::max(y1, q.top1);
    }
    if (p.float_top1 >= 0) y0 = std::min(y0, p.float_top1), y1 = std::max(y1, p.float_top1);
    const double dx = std::max(1e-3, x1 - x0), dy = std::max(0.2, y1 - y0);
    x0 = std::max(0.0, x0 - 0.08 * dx), x1 += 0.08 * dx;
    y0 -= 0.12 * dy, y1 += 0.12 * dy;
  }
  auto X = [&](double v) { return left + (v - x0) / (x1 - x0) * pw; };
  auto Y = [&](double v) { return top + ph - (v - y0) / (y1 - y0) * ph; };

  std::string s;
  s += fmt("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" ", W, H, W, H);
  s += "font-family=\"sans-serif\" font-size=\"12\">\n";
  s += fmt("<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", W, H);
  s += fmt("<text x=\"%.1f\" y=\"24\" font-size=\"16\" font-weight=\"bold\">", left) + esc(p.title) +
       ": top-1 vs size</text>\n";
  // Axes, grid and ticks.
  s += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n", left, top, pw, ph);
  for (double t : ticks(x0, x1, 8)) {
    s += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", X(t), top, X(t), top + ph);
    s += fmt("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", X(t), top + ph + 16, t);
  }
  for (double t : ticks(y0, y1, 6)) {
    s += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, Y(t), left + pw, Y(t));
    s += fmt("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", left - 6, Y(t) + 4, t);
  }
  s += fmt("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">model size, KB (packed weights + bias + scales)</text>\n",
           left + pw / 2, top + ph + 36);
  s += fmt("<text x=\"16\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.1f)\">top-1 %%</text>\n",
           top + ph / 2, top + ph / 2);
  if (p.float_top1 >= 0) {
    s += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-dasharray=\"6 4\"/>\n", left,
             Y(p.float_top1), left + pw, Y(p.float_top1));
    s += fmt("<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\">float32 %.2f%%", left + 6, Y(p.float_top1) + 15, p.float_top1) +
         fmt(" (%.0f KB)</text>\n", p.float_kilobytes);
  }
  if (p.mixed.size() > 1) {
    s += "<polyline fill=\"none\" stroke=\"#2166ac\" stroke-width=\"2\" points=\"";
    std::vector<SweepPlotPoint> m = p.mixed;
    std::sort(m.begin(), m.end(), [](const SweepPlotPoint& a, const SweepPlotPoint& b) { return a.kilobytes < b.kilobytes; });
    for (const SweepPlotPoint& q : m) s += fmt("%.1f,%.1f ", X(q.kilobytes), Y(q.top1));
    s += "\"/>\n";
  }
  // Points at the same place (two budgets giving one model) share one label; labels near the
  // right edge go to the left of their point.
  auto labelled = [&](const std::vector<SweepPlotPoint>& pts, bool square) {
    const char* colour = square ? "#b2182b" : "#2166ac";
    std::vector<bool> done(pts.size(), false);
    for (size_t i = 0; i < pts.size(); ++i) {
      if (done[i]) continue;
      std::string label = pts[i].label;
      for (size_t k = i + 1; k < pts.size(); ++k)
        if (!done[k] && std::fabs(pts[k].kilobytes - pts[i].kilobytes) < 1e-9 && std::fabs(pts[k].top1 - pts[i].top1) < 1e-9) {
          label += ", " + pts[k].label;
          done[k] = true;
        }
      const double cx = X(pts[i].kilobytes), cy = Y(pts[i].top1);
      if (square)
        s += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"9\" ", cx - 4.5, cy - 4.5) + "fill=\"" + colour + "\"/>\n";
      else s += fmt("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" ", cx, cy) + "fill=\"" + colour + "\"/>\n";
      const bool flip = cx > left + 0.75 * pw;
      s += fmt("<text x=\"%.1f\" y=\"%.1f\" ", flip ? cx - 8 : cx + 8, square ? cy + 16 : cy - 8) +
           (flip ? "text-anchor=\"end\" " : "") + "fill=\"" + colour + "\">" + esc(label) + fmt(" %.2f%%</text>\n", pts[i].top1);
    }
  };
  labelled(p.mixed, false);
  labelled(p.uniform, true);
  // Legend.
  const double ly = top + ph + 54;
  s += fmt("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#2166ac\"/>", left + 6, ly - 4) +
       fmt("<text x=\"%.1f\" y=\"%.1f\">mixed precision at a budget (%% of float32)</text>\n", left + 16, ly);
  if (!p.uniform.empty())
    s += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"9\" fill=\"#b2182b\"/>", left + 330, ly - 9) +
         fmt("<text x=\"%.1f\" y=\"%.1f\">every layer at one width</text>\n", left + 345, ly);

  // The bit-width chart: one row per budget, one cell per layer.
  s += fmt("<text x=\"%.1f\" y=\"%.1f\" font-size=\"16\" font-weight=\"bold\">", left, grid_top) + esc(p.title) +
       ": weight bits per layer</text>\n";
  const double gy = grid_top + 14;
  for (size_t r = 0; r < p.rows.size(); ++r) {
    const double y = gy + cell_h * double(r);
    s += fmt("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", left + label_w - 6, y + 15) + esc(p.rows[r]) + "</text>\n";
    for (size_t l = 0; l < nl && l < p.bits[r].size(); ++l) {
      const double x = left + label_w + cell_w * double(l);
      s += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" stroke=\"white\" ", x, y, cell_w, cell_h);
      s += std::string("fill=\"") + bit_colour(p.bits[r][l]) + "\"/>";
      if (cell_w >= 12)
        s += fmt("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%.0f</text>", x + cell_w / 2, y + 15,
                 double(p.bits[r][l]));
      s += "\n";
    }
  }
  // Colour key.
  const double kx = left + label_w + cell_w * double(nl) + 20;
  int key_row = 0;
  for (int b : {2, 3, 4, 5, 6, 8}) {
    bool used = false;
    for (const std::vector<int>& row : p.bits) used |= std::find(row.begin(), row.end(), b) != row.end();
    if (!used) continue;
    const double y = gy + cell_h * key_row++;
    s += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"16\" ", kx, y + 2) + "fill=\"" + bit_colour(b) + "\"/>" +
         fmt("<text x=\"%.1f\" y=\"%.1f\">%.0f-bit weights</text>\n", kx + 22, y + 15, double(b));
  }
  const double ny = gy + cell_h * double(p.rows.size()) + 8;
  for (size_t l = 0; l < nl; ++l) {
    const double x = left + label_w + cell_w * (double(l) + 0.5);
    std::string name = p.layers[l];
    if (name.size() > 18) name = "…" + name.substr(name.size() - 17);
    s += fmt("<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" transform=\"rotate(-60 %.1f %.1f)\">", x,
             ny, x, ny) + esc(name) + "</text>\n";
  }
  s += "</svg>\n";
  return s;
}

}  // namespace tinyquant
