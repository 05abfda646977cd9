// Slice, Resize, PRelu and LayerNorm on the reference kernels, against their definitions.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/reference/reference_kernels.h"
#include "test_util.h"

namespace tinyquant {
namespace {

using testing::dims_of;
using testing::view;

TEST_CASE("slice: every element of the strided window, any rank, float and int8") {
  std::mt19937 rng(51);
  for (int iter = 0; iter < 200; ++iter) {
    const int rank = testing::rand_int(rng, 1, 5);
    Dims in;
    SliceOptions s;
    Dims out;
    out.rank = in.rank = rank;
    for (int d = 0; d < rank; ++d) {
      in.d[d] = testing::rand_int(rng, 1, 7);
      const int32_t b = testing::rand_int(rng, 0, in.d[d] - 1);
      const int32_t step = testing::rand_int(rng, 1, 3);
      const int32_t e = testing::rand_int(rng, 0, 3) == 0 ? kSliceToEnd : testing::rand_int(rng, b + 1, in.d[d] + 2);
      s.begin.push_back(b);
      s.end.push_back(e);
      s.step.push_back(step);
      out.d[d] = (std::min(e, in.d[d]) - b + step - 1) / step;
    }
    std::vector<float> x = testing::random_floats(rng, static_cast<size_t>(in.elements()));
    std::vector<float> y(static_cast<size_t>(out.elements()), NAN);
    reference::slice(s, view(x, in), view(y, out));
    std::vector<int8_t> xq(x.size()), yq(y.size());
    for (size_t i = 0; i < x.size(); ++i) xq[i] = static_cast<int8_t>(i * 7);
    TensorView vx, vy;
    vx.dtype = vy.dtype = DType::kInt8;
    vx.dims = in;
    vy.dims = out;
    vx.data = xq.data();
    vy.data = yq.data();
    reference::slice(s, vx, vy);
    // The definition: output index o -> input index begin + o * step, per dim.
    for (int64_t o = 0; o < out.elements(); ++o) {
      int64_t rem = o, src = 0, stride = 1;
      std::vector<int64_t> coord(rank);
      for (int d = rank - 1; d >= 0; --d) {
        coord[d] = rem % out.d[d];
        rem /= out.d[d];
      }
      for (int d = rank - 1; d >= 0; --d) {
        src += (s.begin[d] + coord[d] * s.step[d]) * stride;
        stride *= in.d[d];
      }
      REQUIRE(y[o] == x[src]);
      REQUIRE(yq[o] == xq[src]);
    }
  }
}

std::vector<float> resize_row(const std::vector<float>& row, int32_t out_w, ResizeMode mode, ResizeCoord coord,
                              ResizeNearest nearest = ResizeNearest::kRoundPreferFloor) {
  ResizeOptions r;
  r.mode = mode;
  r.coord = coord;
  r.nearest = nearest;
  r.out_h = 1;
  r.out_w = out_w;
  r.scale_h = 1.0f;
  r.scale_w = static_cast<float>(out_w) / row.size();
  std::vector<float> x = row, y(static_cast<size_t>(out_w));
  reference::resize_f32(r, view(x, dims_of({1, 1, static_cast<int32_t>(row.size()), 1})),
                        view(y, dims_of({1, 1, out_w, 1})));
  return y;
}

TEST_CASE("resize: ONNX Runtime's values for each coordinate and nearest mode") {
  const std::vector<float> row = {1.0f, 2.0f};
  CHECK(resize_row(row, 4, ResizeMode::kLinear, ResizeCoord::kHalfPixel) == std::vector<float>{1, 1.25f, 1.75f, 2});
  CHECK(resize_row(row, 4, ResizeMode::kLinear, ResizeCoord::kAsymmetric) == std::vector<float>{1, 1.5f, 2, 2});
  const std::vector<float> ac = resize_row(row, 4, ResizeMode::kLinear, ResizeCoord::kAlignCorners);
  CHECK(ac[1] == doctest::Approx(4.0f / 3.0f));
  CHECK(ac[3] == 2.0f);
  CHECK(resize_row(row, 4, ResizeMode::kNearest, ResizeCoord::kAsymmetric, ResizeNearest::kFloor) ==
        std::vector<float>{1, 1, 2, 2});
  CHECK(resize_row(row, 4, ResizeMode::kNearest, ResizeCoord::kHalfPixel) == std::vector<float>{1, 1, 2, 2});
  // 3 -> 2 with half-pixel: coordinates 0.25 and 1.75.
  const std::vector<float> three = {0.0f, 10.0f, 20.0f};
  CHECK(resize_row(three, 2, ResizeMode::kLinear, ResizeCoord::kHalfPixel) == std::vector<float>{2.5f, 17.5f});
  CHECK(resize_row(three, 2, ResizeMode::kNearest, ResizeCoord::kHalfPixel, ResizeNearest::kCeil) ==
        std::vector<float>{10.0f, 20.0f});
  // A 1-wide output: pytorch_half_pixel samples coordinate 0.
  CHECK(resize_row(three, 1, ResizeMode::kLinear, ResizeCoord::kPytorchHalfPixel) == std::vector<float>{0.0f});
  CHECK(resize_row(three, 1, ResizeMode::kLinear, ResizeCoord::kHalfPixel) == std::vector<float>{10.0f});
}

TEST_CASE("prelu and layer norm follow their definitions") {
  std::mt19937 rng(52);
  std::vector<float> x = testing::random_floats(rng, 2 * 3 * 4, -2.0f, 2.0f), slope = {0.1f, -0.5f, 2.0f, 0.0f};
  std::vector<float> y(x.size());
  reference::prelu_f32(view(x, dims_of({2, 3, 4})), view(slope, dims_of({4})), view(y, dims_of({2, 3, 4})));
  for (size_t i = 0; i < x.size(); ++i) CHECK(y[i] == (x[i] >= 0 ? x[i] : slope[i % 4] * x[i]));

  std::vector<float> g = {1.0f, 0.5f, -2.0f, 3.0f}, b = {0.0f, 1.0f, -1.0f, 0.25f};
  reference::layer_norm_f32(1e-3f, view(x, dims_of({6, 4})), view(g, dims_of({4})), nullptr,
                            view(y, dims_of({6, 4})));
  std::vector<float> yb(x.size());
  TensorView vb = view(b, dims_of({4}));
  reference::layer_norm_f32(1e-3f, view(x, dims_of({6, 4})), view(g, dims_of({4})), &vb, view(yb, dims_of({6, 4})));
  for (int r = 0; r < 6; ++r) {
    double mean = 0, var = 0;
    for (int k = 0; k < 4; ++k) mean += x[r * 4 + k] / 4.0;
    for (int k = 0; k < 4; ++k) var += (x[r * 4 + k] - mean) * (x[r * 4 + k] - mean) / 4.0;
    for (int k = 0; k < 4; ++k) {
      const double want = (x[r * 4 + k] - mean) / std::sqrt(var + 1e-3) * g[k];
      CHECK(y[r * 4 + k] == doctest::Approx(want).epsilon(1e-5));
      CHECK(yb[r * 4 + k] == doctest::Approx(want + b[k]).epsilon(1e-5));
    }
  }
}

}  // namespace
}  // namespace tinyquant

namespace tinyquant {
namespace {

TEST_CASE("conv transpose: the reference equals the gather form of its definition") {
  std::mt19937 rng(53);
  for (int iter = 0; iter < 60; ++iter) {
    ConvOptions o;
    o.groups = testing::rand_int(rng, 1, 2);
    o.stride_h = testing::rand_int(rng, 1, 3);
    o.stride_w = testing::rand_int(rng, 1, 3);
    o.dilation_h = testing::rand_int(rng, 1, 2);
    o.dilation_w = 1;
    const int32_t kh = testing::rand_int(rng, 1, 3), kw = testing::rand_int(rng, 1, 3);
    o.padding = {testing::rand_int(rng, 0, kh - 1), testing::rand_int(rng, 0, kw - 1), testing::rand_int(rng, 0, kh - 1),
                 testing::rand_int(rng, 0, kw - 1)};
    o.output_pad_h = testing::rand_int(rng, 0, o.stride_h - 1);
    o.output_pad_w = testing::rand_int(rng, 0, o.stride_w - 1);
    const int32_t n = 2, h = testing::rand_int(rng, 1, 5), w = testing::rand_int(rng, 1, 5);
    const int32_t gi = testing::rand_int(rng, 1, 3), go = testing::rand_int(rng, 1, 3);
    const int32_t ic = gi * o.groups, oc = go * o.groups;
    const int32_t oh = (h - 1) * o.stride_h - o.padding.top - o.padding.bottom + o.dilation_h * (kh - 1) + 1 + o.output_pad_h;
    const int32_t ow = (w - 1) * o.stride_w - o.padding.left - o.padding.right + o.dilation_w * (kw - 1) + 1 + o.output_pad_w;
    if (oh < 1 || ow < 1) continue;
    std::vector<float> x = testing::random_floats(rng, size_t(n) * h * w * ic);
    std::vector<float> wt = testing::random_floats(rng, size_t(oc) * kh * kw * gi);
    std::vector<float> b = testing::random_floats(rng, size_t(oc));
    std::vector<float> y(size_t(n) * oh * ow * oc);
    reference::conv_transpose_f32(o, FusedActivation(), view(x, dims_of({n, h, w, ic})),
                                  view(wt, dims_of({oc, kh, kw, gi})), view(b, dims_of({oc})),
                                  view(y, dims_of({n, oh, ow, oc})));
    // Gather form: output (oy, ox) sums input (iy, ix) with oy = iy * s - pad + ky * d.
    for (int32_t bn = 0; bn < n; ++bn)
      for (int32_t oy = 0; oy < oh; ++oy)
        for (int32_t ox = 0; ox < ow; ++ox)
          for (int32_t k = 0; k < oc; ++k) {
            const int32_t g = k / go;
            double acc = b[k];
            for (int32_t ky = 0; ky < kh; ++ky)
              for (int32_t kx = 0; kx < kw; ++kx) {
                const int32_t ty = oy + o.padding.top - ky * o.dilation_h, tx = ox + o.padding.left - kx * o.dilation_w;
                if (ty < 0 || tx < 0 || ty % o.stride_h || tx % o.stride_w) continue;
                const int32_t iy = ty / o.stride_h, ix = tx / o.stride_w;
                if (iy >= h || ix >= w) continue;
                for (int32_t i = 0; i < gi; ++i)
                  acc += double(x[((size_t(bn) * h + iy) * w + ix) * ic + g * gi + i]) *
                         wt[((size_t(k) * kh + ky) * kw + kx) * gi + i];
              }
            REQUIRE(y[((size_t(bn) * oh + oy) * ow + ox) * oc + k] == doctest::Approx(acc).epsilon(1e-5));
          }
  }
}

}  // namespace
}  // namespace tinyquant

namespace tinyquant {
namespace {

TEST_CASE("resize int8: the float resize of the dequantized values, quantized with the shared params") {
  std::mt19937 rng(54);
  int total = 0, exact = 0;
  for (int iter = 0; iter < 40; ++iter) {
    ResizeOptions r;
    r.mode = iter % 2 ? ResizeMode::kLinear : ResizeMode::kNearest;
    r.coord = static_cast<ResizeCoord>(iter % 4);
    const int32_t h = testing::rand_int(rng, 1, 5), w = testing::rand_int(rng, 1, 5), c = testing::rand_int(rng, 1, 4);
    r.out_h = testing::rand_int(rng, 1, 11);
    r.out_w = testing::rand_int(rng, 1, 11);
    r.scale_h = float(r.out_h) / h;
    r.scale_w = float(r.out_w) / w;
    testing::QTensor x = testing::qtensor(rng, dims_of({1, h, w, c}), 8, 0.05f);
    testing::QTensor y = testing::qtensor(rng, dims_of({1, r.out_h, r.out_w, c}), 8, 0.05f, false);
    y.quant = x.quant;
    reference::resize_s8(r, x.view(), y.view());
    std::vector<float> xf(x.data.size()), yf(y.data.size());
    const int32_t z = x.quant.zero_point[0];
    for (size_t i = 0; i < xf.size(); ++i) xf[i] = float(x.data[i] - z) * 0.05f;
    reference::resize_f32(r, view(xf, dims_of({1, h, w, c})), view(yf, dims_of({1, r.out_h, r.out_w, c})));
    for (size_t i = 0; i < yf.size(); ++i) {
      const int want = std::min<int32_t>(127, std::max<int32_t>(-128, qmath::round_half_even(yf[i] * (1.0f / 0.05f)) + z));
      ++total;
      exact += y.data[i] == want;
      REQUIRE(std::abs(y.data[i] - want) <= (r.mode == ResizeMode::kNearest ? 0 : 1));
    }
  }
  CHECK(exact >= total * 99 / 100);
}

}  // namespace
}  // namespace tinyquant
