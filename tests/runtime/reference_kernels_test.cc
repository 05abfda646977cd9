// Each reference kernel against a straightforward loop written from the op's definition
// (in double, NCHW-free index arithmetic), on random shapes and parameters with a fixed seed.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/reference/reference_kernels.h"
#include "tinyquant/shape_inference.h"
#include "test_util.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

double act_clamp(double v, const FusedActivation& a) { return std::min<double>(std::max<double>(v, a.min), a.max); }

FusedActivation random_activation(std::mt19937& rng) {
  switch (rand_int(rng, 0, 3)) {
    case 0: return FusedActivation();
    case 1: return FusedActivation::relu();
    case 2: return FusedActivation::relu6();
    default: return FusedActivation::clip(-0.5f, 0.75f);
  }
}

// out[n][oy][ox][oc] = act(b[oc] + sum_{ky,kx,ic in group} x[n][iy][ix][ic] * w[oc][ky][kx][ic - g*Cg])
std::vector<double> naive_conv(const ConvOptions& o, const FusedActivation& act, const std::vector<float>& x,
                               const Dims& xd, const std::vector<float>& w, const Dims& wd,
                               const std::vector<float>& b, bool depthwise, const Dims& yd) {
  std::vector<double> y(static_cast<size_t>(yd.elements()));
  const int N = xd[0], H = xd[1], W = xd[2], C = xd[3];
  const int KH = wd[1], KW = wd[2];
  const int OH = yd[1], OW = yd[2], OC = yd[3];
  for (int n = 0; n < N; ++n)
    for (int oy = 0; oy < OH; ++oy)
      for (int ox = 0; ox < OW; ++ox)
        for (int oc = 0; oc < OC; ++oc) {
          double acc = b.empty() ? 0.0 : b[oc];
          for (int ky = 0; ky < KH; ++ky)
            for (int kx = 0; kx < KW; ++kx) {
              const int iy = oy * o.stride_h - o.padding.top + ky * o.dilation_h;
              const int ix = ox * o.stride_w - o.padding.left + kx * o.dilation_w;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              if (depthwise) {
                const int ic = oc / o.depth_multiplier;
                acc += double(x[((n * H + iy) * W + ix) * C + ic]) * w[(ky * KW + kx) * OC + oc];
              } else {
                const int cg = C / o.groups, og = OC / o.groups, g = oc / og;
                for (int ic = 0; ic < cg; ++ic)
                  acc += double(x[((n * H + iy) * W + ix) * C + g * cg + ic]) * w[((oc * KH + ky) * KW + kx) * cg + ic];
              }
            }
          y[((n * OH + oy) * OW + ox) * OC + oc] = act_clamp(acc, act);
        }
  return y;
}

}  // namespace

TEST_CASE("reference conv2d and depthwise conv2d match the definition on random shapes") {
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 150; ++iter) {
    const bool depthwise = iter % 3 == 0;
    ConvOptions o;
    o.stride_h = rand_int(rng, 1, 3), o.stride_w = rand_int(rng, 1, 3);
    o.dilation_h = rand_int(rng, 1, 2), o.dilation_w = rand_int(rng, 1, 2);
    const int kh = rand_int(rng, 1, 5), kw = rand_int(rng, 1, 5);
    o.padding = {rand_int(rng, 0, kh - 1), rand_int(rng, 0, kw - 1), rand_int(rng, 0, kh - 1), rand_int(rng, 0, kw - 1)};
    const int n = rand_int(rng, 1, 2), h = rand_int(rng, kh * o.dilation_h, 12), w = rand_int(rng, kw * o.dilation_w, 12);
    int c, oc;
    Dims wd;
    if (depthwise) {
      c = rand_int(rng, 1, 12);
      o.depth_multiplier = rand_int(rng, 1, 3);
      oc = c * o.depth_multiplier;
      wd = dims_of({1, kh, kw, oc});
    } else {
      o.groups = rand_int(rng, 1, 3);
      c = o.groups * rand_int(rng, 1, 6);
      oc = o.groups * rand_int(rng, 1, 6);
      wd = dims_of({oc, kh, kw, c / o.groups});
    }
    const Dims xd = dims_of({n, h, w, c});
    const int oh = window_output_size(h, kh, o.stride_h, o.dilation_h, o.padding.top, o.padding.bottom);
    const int ow = window_output_size(w, kw, o.stride_w, o.dilation_w, o.padding.left, o.padding.right);
    REQUIRE(oh > 0);
    REQUIRE(ow > 0);
    const Dims yd = dims_of({n, oh, ow, oc});
    std::vector<float> x = random_floats(rng, xd.elements()), wt = random_floats(rng, wd.elements());
    std::vector<float> b = iter % 4 == 1 ? std::vector<float>() : random_floats(rng, oc);
    std::vector<float> y(yd.elements(), std::numeric_limits<float>::quiet_NaN());
    const FusedActivation act = random_activation(rng);
    TensorView bv = view(b, dims_of({oc}));
    if (depthwise)
      reference::depthwise_conv2d_f32(o, act, view(x, xd), view(wt, wd), b.empty() ? nullptr : &bv, view(y, yd));
    else
      reference::conv2d_f32(o, act, view(x, xd), view(wt, wd), b.empty() ? nullptr : &bv, view(y, yd));
    const std::vector<double> want = naive_conv(o, act, x, xd, wt, wd, b, depthwise, yd);
    CAPTURE(iter);
    CHECK(max_rel_error(y, want) < 1e-5);
  }
}

TEST_CASE("reference fully connected matches the definition") {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 100; ++iter) {
    const int rows = rand_int(rng, 1, 9), in = rand_int(rng, 1, 300), out = rand_int(rng, 1, 40);
    std::vector<float> x = random_floats(rng, rows * in), w = random_floats(rng, out * in), b = random_floats(rng, out);
    std::vector<float> y(rows * out);
    const FusedActivation act = random_activation(rng);
    TensorView bv = view(b, dims_of({out}));
    reference::fully_connected_f32(act, view(x, dims_of({rows, in})), view(w, dims_of({out, in})),
                                   iter % 2 ? &bv : nullptr, view(y, dims_of({rows, out})));
    std::vector<double> want(rows * out);
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < out; ++o) {
        double acc = iter % 2 ? b[o] : 0.0;
        for (int i = 0; i < in; ++i) acc += double(x[r * in + i]) * w[o * in + i];
        want[r * out + o] = act_clamp(acc, act);
      }
    CHECK(max_rel_error(y, want) < 1e-5);
  }
}

TEST_CASE("reference add and mul broadcast like NumPy") {
  std::mt19937 rng(99);
  for (int iter = 0; iter < 200; ++iter) {
    const int rank = rand_int(rng, 1, 5);
    Dims out;
    out.rank = rank;
    for (int i = 0; i < rank; ++i) out.d[i] = rand_int(rng, 1, 5);
    // Each input: drop some leading dims, set some dims to 1.
    auto make = [&](Dims* d) {
      const int drop = rand_int(rng, 0, rank - 1);
      d->rank = rank - drop;
      for (int i = 0; i < d->rank; ++i) d->d[i] = rand_int(rng, 0, 2) == 0 ? 1 : out.d[i + drop];
    };
    Dims ad, bd;
    make(&ad);
    make(&bd);
    // The true output shape is the broadcast of the two.
    Dims yd;
    yd.rank = std::max(ad.rank, bd.rank);
    for (int i = 0; i < yd.rank; ++i) {
      const int ia = i - (yd.rank - ad.rank), ib = i - (yd.rank - bd.rank);
      yd.d[i] = std::max(ia >= 0 ? ad.d[ia] : 1, ib >= 0 ? bd.d[ib] : 1);
    }
    std::vector<float> a = random_floats(rng, ad.elements()), b = random_floats(rng, bd.elements());
    std::vector<float> y(yd.elements());
    const bool is_add = iter % 2 == 0;
    const FusedActivation act = random_activation(rng);
    if (is_add)
      reference::add_f32(act, view(a, ad), view(b, bd), view(y, yd));
    else
      reference::mul_f32(act, view(a, ad), view(b, bd), view(y, yd));
    std::vector<double> want(y.size());
    for (int64_t flat = 0; flat < yd.elements(); ++flat) {
      int idx[kMaxRank];
      int64_t rem = flat;
      for (int i = yd.rank - 1; i >= 0; --i) idx[i] = rem % yd.d[i], rem /= yd.d[i];
      auto offset = [&](const Dims& d) {
        int64_t off = 0;
        for (int i = 0; i < d.rank; ++i) off = off * d.d[i] + (d.d[i] == 1 ? 0 : idx[i + yd.rank - d.rank]);
        return off;
      };
      const double va = a[offset(ad)], vb = b[offset(bd)];
      want[flat] = act_clamp(is_add ? va + vb : va * vb, act);
    }
    CAPTURE(iter);
    CHECK(max_rel_error(y, want) < 1e-6);
  }
}

TEST_CASE("reference pooling, global average pool, softmax and clamp match their definitions") {
  std::mt19937 rng(5);
  for (int iter = 0; iter < 150; ++iter) {
    PoolOptions p;
    p.kernel_h = rand_int(rng, 1, 4), p.kernel_w = rand_int(rng, 1, 4);
    p.stride_h = rand_int(rng, 1, 3), p.stride_w = rand_int(rng, 1, 3);
    const bool is_max = iter % 2 == 0;
    if (is_max) p.dilation_h = rand_int(rng, 1, 2), p.dilation_w = rand_int(rng, 1, 2);
    p.padding = {rand_int(rng, 0, p.kernel_h - 1), rand_int(rng, 0, p.kernel_w - 1), rand_int(rng, 0, p.kernel_h - 1),
                 rand_int(rng, 0, p.kernel_w - 1)};
    p.count_include_pad = rand_int(rng, 0, 1);
    const int n = rand_int(rng, 1, 2), c = rand_int(rng, 1, 7);
    const int h = rand_int(rng, p.kernel_h * p.dilation_h, 11), w = rand_int(rng, p.kernel_w * p.dilation_w, 11);
    const int oh = window_output_size(h, p.kernel_h, p.stride_h, p.dilation_h, p.padding.top, p.padding.bottom);
    const int ow = window_output_size(w, p.kernel_w, p.stride_w, p.dilation_w, p.padding.left, p.padding.right);
    const Dims xd = dims_of({n, h, w, c}), yd = dims_of({n, oh, ow, c});
    std::vector<float> x = random_floats(rng, xd.elements(), -3, 3), y(yd.elements());
    const FusedActivation act = random_activation(rng);
    if (is_max)
      reference::max_pool2d_f32(p, act, view(x, xd), view(y, yd));
    else
      reference::average_pool2d_f32(p, act, view(x, xd), view(y, yd));
    std::vector<double> want(y.size());
    for (int b = 0; b < n; ++b)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox)
          for (int ch = 0; ch < c; ++ch) {
            double best = -INFINITY, sum = 0;
            int count = 0;
            for (int ky = 0; ky < p.kernel_h; ++ky)
              for (int kx = 0; kx < p.kernel_w; ++kx) {
                const int iy = oy * p.stride_h - p.padding.top + ky * p.dilation_h;
                const int ix = ox * p.stride_w - p.padding.left + kx * p.dilation_w;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                const double v = x[((b * h + iy) * w + ix) * c + ch];
                best = std::max(best, v), sum += v, ++count;
              }
            const double avg = sum / (p.count_include_pad ? p.kernel_h * p.kernel_w : count);
            want[((b * oh + oy) * ow + ox) * c + ch] = act_clamp(is_max ? best : avg, act);
          }
    CAPTURE(iter);
    CHECK(max_rel_error(y, want) < 1e-6);
  }

  for (int iter = 0; iter < 50; ++iter) {
    const int n = rand_int(rng, 1, 3), h = rand_int(rng, 1, 9), w = rand_int(rng, 1, 9), c = rand_int(rng, 1, 20);
    std::vector<float> x = random_floats(rng, n * h * w * c), y(n * c);
    reference::global_average_pool_f32(FusedActivation(), view(x, dims_of({n, h, w, c})), view(y, dims_of({n, 1, 1, c})));
    std::vector<double> want(n * c, 0.0);
    for (int b = 0; b < n; ++b)
      for (int p = 0; p < h * w; ++p)
        for (int ch = 0; ch < c; ++ch) want[b * c + ch] += x[(b * h * w + p) * c + ch] / double(h * w);
    CHECK(max_rel_error(y, want) < 1e-6);

    const int rows = rand_int(rng, 1, 5), depth = rand_int(rng, 1, 40);
    std::vector<float> s = random_floats(rng, rows * depth, -20, 20), sy(rows * depth);
    const float beta = iter % 2 ? 1.0f : 0.5f;
    reference::softmax_f32(beta, view(s, dims_of({rows, depth})), view(sy, dims_of({rows, depth})));
    std::vector<double> swant(rows * depth);
    for (int r = 0; r < rows; ++r) {
      double total = 0;
      for (int i = 0; i < depth; ++i) total += std::exp(beta * double(s[r * depth + i]));
      for (int i = 0; i < depth; ++i) swant[r * depth + i] = std::exp(beta * double(s[r * depth + i])) / total;
    }
    CHECK(max_rel_error(sy, swant) < 1e-6);

    std::vector<float> cy(rows * depth);
    reference::clamp_f32(-1.5f, 2.0f, view(s, dims_of({rows, depth})), view(cy, dims_of({rows, depth})));
    for (int i = 0; i < rows * depth; ++i) CHECK(cy[i] == std::min(std::max(s[i], -1.5f), 2.0f));
  }
}

TEST_CASE("reference concat and transpose move every element where the definition says") {
  std::mt19937 rng(11);
  for (int iter = 0; iter < 100; ++iter) {
    const int rank = rand_int(rng, 1, 5);
    Dims base;
    base.rank = rank;
    for (int i = 0; i < rank; ++i) base.d[i] = rand_int(rng, 1, 4);
    const int axis = rand_int(rng, 0, rank - 1), count = rand_int(rng, 1, 4);
    std::vector<std::vector<float>> parts;
    std::vector<TensorView> views;
    Dims yd = base;
    yd.d[axis] = 0;
    for (int k = 0; k < count; ++k) {
      Dims d = base;
      d.d[axis] = rand_int(rng, 1, 3);
      yd.d[axis] += d.d[axis];
      parts.push_back(random_floats(rng, d.elements()));
      views.push_back(TensorView());
      views.back().dims = d;
    }
    for (int k = 0; k < count; ++k) views[k].data = parts[k].data();
    std::vector<float> y(yd.elements());
    reference::concat(axis, views.data(), count, view(y, yd));
    // Element (.., j, ..) of the output comes from the input whose axis range holds j.
    for (int64_t flat = 0; flat < yd.elements(); ++flat) {
      int idx[kMaxRank];
      int64_t rem = flat;
      for (int i = rank - 1; i >= 0; --i) idx[i] = rem % yd.d[i], rem /= yd.d[i];
      int k = 0, j = idx[axis];
      while (j >= views[k].dims.d[axis]) j -= views[k].dims.d[axis], ++k;
      idx[axis] = j;
      int64_t off = 0;
      for (int i = 0; i < rank; ++i) off = off * views[k].dims.d[i] + idx[i];
      REQUIRE(y[flat] == parts[k][off]);
    }

    int32_t perm[kMaxRank];
    for (int i = 0; i < rank; ++i) perm[i] = i;
    std::shuffle(perm, perm + rank, rng);
    Dims td;
    td.rank = rank;
    for (int i = 0; i < rank; ++i) td.d[i] = base.d[perm[i]];
    std::vector<float> src = random_floats(rng, base.elements()), dst(base.elements());
    reference::transpose(perm, view(src, base), view(dst, td));
    for (int64_t flat = 0; flat < td.elements(); ++flat) {
      int oidx[kMaxRank], iidx[kMaxRank];
      int64_t rem = flat;
      for (int i = rank - 1; i >= 0; --i) oidx[i] = rem % td.d[i], rem /= td.d[i];
      for (int i = 0; i < rank; ++i) iidx[perm[i]] = oidx[i];
      int64_t off = 0;
      for (int i = 0; i < rank; ++i) off = off * base.d[i] + iidx[i];
      REQUIRE(dst[flat] == src[off]);
    }
  }
}
