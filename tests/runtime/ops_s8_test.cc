// Quantize / Dequantize, MaxPool2D, Clamp, Concat and Reshape on int8, through reference::eval,
// against loops written from the definition, bit-exact, on random shapes with a fixed seed.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/reference/reference_kernels.h"
#include "test_util.h"
#include "tinyquant/qmath.h"
#include "tinyquant/shape_inference.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

Dims random_dims(std::mt19937& rng, int rank, int max_dim) {
  Dims d;
  d.rank = rank;
  for (int i = 0; i < rank; ++i) d.d[i] = rand_int(rng, 1, max_dim);
  return d;
}

Operator make_op(OpType type) {
  Operator op;
  op.type = type;
  op.name = "op";
  return op;
}

int32_t zp(const Quantization& q) { return q.zero_point.empty() ? 0 : q.zero_point[0]; }

}  // namespace

TEST_CASE("quantize_s8 / dequantize_s8 match the definition (float reciprocal, half to even, clamp)") {
  std::mt19937 rng(5);
  for (int iter = 0; iter < 250; ++iter) {
    CAPTURE(iter);
    const int32_t bits = rand_int(rng, 2, 8);
    const Dims d = random_dims(rng, rand_int(rng, 1, 4), 6);
    const float s = rand_scale(rng, 0.001f, 0.5f);
    std::vector<float> x = random_floats(rng, static_cast<size_t>(d.elements()), -150.0f * s, 150.0f * s);
    // Exact ties (k + 0.5) / (1/s) round to even; extremes and NaN clamp.
    const float inv = 1.0f / s;
    for (size_t i = 0; i < x.size(); i += 3) x[i] = (float(rand_int(rng, -130, 130)) + 0.5f) / inv;
    if (x.size() > 4) {
      x[1] = std::numeric_limits<float>::infinity();
      x[2] = -std::numeric_limits<float>::infinity();
      x[4] = std::numeric_limits<float>::quiet_NaN();
    }
    QTensor q = qtensor(rng, d, bits, s, false);
    TensorView in = view(x, d), out = q.view();
    REQUIRE(reference::eval(make_op(OpType::kQuantize), &in, 1, &out, 1).is_ok());
    const int32_t z = zp(q.quant);
    for (size_t i = 0; i < x.size(); ++i) {
      const float v = x[i] * inv;
      int32_t want;
      if (std::isnan(v)) {
        want = qmath::qmin(bits);
      } else {
        const double r = std::nearbyint(std::min(std::max(double(v), -1e9), 1e9)) + z;  // default mode: half to even
        want = int32_t(std::min<double>(std::max<double>(r, qmath::qmin(bits)), qmath::qmax(bits)));
      }
      REQUIRE(int(q.data[i]) == want);
    }
    std::vector<float> back(x.size());
    TensorView qin = q.view(), bout = view(back, d);
    REQUIRE(reference::eval(make_op(OpType::kDequantize), &qin, 1, &bout, 1).is_ok());
    for (size_t i = 0; i < x.size(); ++i) REQUIRE(back[i] == float(int32_t(q.data[i]) - z) * s);
  }
}

TEST_CASE("max_pool2d_s8 matches the definition (padding never wins, fused clamp)") {
  std::mt19937 rng(6);
  for (int iter = 0; iter < 250; ++iter) {
    CAPTURE(iter);
    Operator op = make_op(OpType::kMaxPool2D);
    PoolOptions& p = op.mutable_pool();
    p.kernel_h = rand_int(rng, 1, 3), p.kernel_w = rand_int(rng, 1, 3);
    p.stride_h = rand_int(rng, 1, 3), p.stride_w = rand_int(rng, 1, 3);
    p.dilation_h = rand_int(rng, 1, 2), p.dilation_w = rand_int(rng, 1, 2);
    p.padding = {rand_int(rng, 0, p.kernel_h - 1), rand_int(rng, 0, p.kernel_w - 1), rand_int(rng, 0, p.kernel_h - 1),
                 rand_int(rng, 0, p.kernel_w - 1)};
    const int32_t fused = rand_int(rng, 0, 2);
    op.activation = fused == 0 ? FusedActivation() : fused == 1 ? FusedActivation::relu() : FusedActivation::relu6();
    const int n = rand_int(rng, 1, 2), c = rand_int(rng, 1, 7);
    const int h = rand_int(rng, p.kernel_h * p.dilation_h, 9), w = rand_int(rng, p.kernel_w * p.dilation_w, 9);
    const int oh = window_output_size(h, p.kernel_h, p.stride_h, p.dilation_h, p.padding.top, p.padding.bottom);
    const int ow = window_output_size(w, p.kernel_w, p.stride_w, p.dilation_w, p.padding.left, p.padding.right);
    const int32_t bits = rand_int(rng, 2, 8);
    QTensor x = qtensor(rng, dims_of({n, h, w, c}), bits, rand_scale(rng, 0.01f, 0.2f));
    QTensor y = qtensor(rng, dims_of({n, oh, ow, c}), bits, 1.0f, false);
    y.quant = x.quant;
    TensorView in = x.view(), out = y.view();
    REQUIRE(reference::eval(op, &in, 1, &out, 1).is_ok());
    int32_t lo, hi;
    qmath::activation_bounds(op.activation, bits, x.quant.scale[0], zp(x.quant), &lo, &hi);
    for (int b = 0; b < n; ++b)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox)
          for (int ch = 0; ch < c; ++ch) {
            int32_t m = -128;
            for (int ky = 0; ky < p.kernel_h; ++ky)
              for (int kx = 0; kx < p.kernel_w; ++kx) {
                const int iy = oy * p.stride_h - p.padding.top + ky * p.dilation_h;
                const int ix = ox * p.stride_w - p.padding.left + kx * p.dilation_w;
                if (iy >= 0 && iy < h && ix >= 0 && ix < w) m = std::max<int32_t>(m, x.data[((b * h + iy) * w + ix) * c + ch]);
              }
            REQUIRE(int(y.data[((b * oh + oy) * ow + ox) * c + ch]) == std::min(std::max(m, lo), hi));
          }
  }
}

TEST_CASE("clamp_s8 matches the definition (bounds via activation_bounds)") {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 200; ++iter) {
    CAPTURE(iter);
    Operator op = make_op(OpType::kClamp);
    const float a = std::uniform_real_distribution<float>(-3.0f, 1.0f)(rng);
    op.activation = iter % 3 == 0 ? FusedActivation::relu() : iter % 3 == 1 ? FusedActivation::relu6()
                                                                           : FusedActivation::clip(a, a + 2.0f);
    const int32_t bits = rand_int(rng, 2, 8);
    QTensor x = qtensor(rng, random_dims(rng, rand_int(rng, 1, 4), 5), bits, rand_scale(rng, 0.005f, 0.3f));
    QTensor y = x;
    TensorView in = x.view(), out = y.view();
    REQUIRE(reference::eval(op, &in, 1, &out, 1).is_ok());
    int32_t lo, hi;
    qmath::activation_bounds(op.activation, bits, x.quant.scale[0], zp(x.quant), &lo, &hi);
    for (size_t i = 0; i < x.data.size(); ++i) REQUIRE(int(y.data[i]) == std::min<int32_t>(std::max<int32_t>(x.data[i], lo), hi));
  }
}

TEST_CASE("concat on int8 copies matching inputs and requantizes the others") {
  std::mt19937 rng(8);
  for (int iter = 0; iter < 250; ++iter) {
    CAPTURE(iter);
    const int rank = rand_int(rng, 1, 4), axis = rand_int(rng, 0, rank - 1), count = rand_int(rng, 1, 4);
    const Dims base = random_dims(rng, rank, 4);
    const int32_t out_bits = rand_int(rng, 2, 8);
    QTensor y;
    y.dims = base;
    y.dims.d[axis] = 0;
    y.quant.bits = out_bits;
    y.quant.scale = {rand_scale(rng, 0.01f, 0.1f)};
    y.quant.zero_point = {rand_int(rng, qmath::qmin(out_bits), qmath::qmax(out_bits))};
    std::vector<QTensor> xs;
    for (int k = 0; k < count; ++k) {
      Dims d = base;
      d.d[axis] = rand_int(rng, 1, 4);
      y.dims.d[axis] += d[axis];
      const bool same = iter % 3 == 0 || rand_int(rng, 0, 1) == 0;
      QTensor x = qtensor(rng, d, same ? out_bits : rand_int(rng, 2, 8), y.quant.scale[0] * rand_scale(rng, 0.25f, 4.0f));
      if (same) {
        x.quant = y.quant;
        for (int8_t& v : x.data) v = int8_t(rand_int(rng, qmath::qmin(out_bits), qmath::qmax(out_bits)));
      }
      xs.push_back(x);
    }
    y.data.assign(static_cast<size_t>(y.dims.elements()), 0);
    std::vector<TensorView> in;
    for (QTensor& x : xs) in.push_back(x.view());
    Operator op = make_op(OpType::kConcat);
    op.axis = axis;
    TensorView out = y.view();
    REQUIRE(reference::eval(op, in.data(), count, &out, 1).is_ok());
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; ++i) outer *= base[i];
    for (int i = axis + 1; i < rank; ++i) inner *= base[i];
    int64_t offset = 0;
    for (QTensor& x : xs) {
      const int64_t row = x.dims[axis] * inner;
      const bool same = x.quant.scale[0] == y.quant.scale[0] && zp(x.quant) == zp(y.quant);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < row; ++i) {
          const int32_t q = x.data[o * row + i];
          const int32_t want = same ? q
                                    : qmath::requantize(q - zp(x.quant), x.quant.scale[0] / y.quant.scale[0],
                                                        zp(y.quant), qmath::qmin(out_bits), qmath::qmax(out_bits));
          REQUIRE(int(y.data[o * y.dims[axis] * inner + offset + i]) == want);
        }
      offset += row;
    }
  }
}

TEST_CASE("reshape / transpose on int8 move bytes; differing quantization is rejected") {
  std::mt19937 rng(9);
  QTensor x = qtensor(rng, dims_of({2, 3, 4}), 8, 0.05f);
  QTensor y = qtensor(rng, dims_of({6, 4}), 8, 0.05f, false);
  y.quant = x.quant;
  Operator op = make_op(OpType::kReshape);
  TensorView in = x.view(), out = y.view();
  REQUIRE(reference::eval(op, &in, 1, &out, 1).is_ok());
  CHECK(std::memcmp(x.data.data(), y.data.data(), x.data.size()) == 0);
  y.quant.zero_point = {zp(x.quant) + 1};
  const Status s = reference::eval(op, &in, 1, &out, 1);
  CHECK(s.code() == StatusCode::kUnsupported);
  CHECK(std::string(s.message()).find("scale and zero point") != std::string::npos);
  // Transpose on int8 moves bytes too.
  Operator tr = make_op(OpType::kTranspose);
  tr.mutable_perm() = {1, 0};
  y.quant = x.quant;
  x.dims = dims_of({6, 4});
  y.dims = dims_of({4, 6});
  in = x.view(), out = y.view();
  CHECK(reference::eval(tr, &in, 1, &out, 1).is_ok());
  CHECK(y.data[1] == x.data[4]);
}
