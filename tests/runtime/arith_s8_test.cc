// Add, Mul, AveragePool2D and GlobalAveragePool on int8 through reference::eval, against loops
// written from the formulas documented in elementwise_s8.cc / pooling_s8.cc (XNNPACK's QS8
// arithmetic), bit-exact, and within one step of the exact real-valued result where unclamped.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/reference/reference_kernels.h"
#include "test_util.h"
#include "tinyquant/qmath.h"
#include "tinyquant/shape_inference.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

int32_t zp(const Quantization& q) { return q.zero_point.empty() ? 0 : q.zero_point[0]; }

FusedActivation random_act(std::mt19937& rng) {
  switch (rand_int(rng, 0, 2)) {
    case 0: return FusedActivation();
    case 1: return FusedActivation::relu();
    default: return FusedActivation::relu6();
  }
}

Operator make_op(OpType type, const FusedActivation& act) {
  Operator op;
  op.type = type;
  op.name = "op";
  op.activation = act;
  return op;
}

// XNNPACK 20220216 xnn_init_qs8_add_minmax_scalar_params + qs8-vadd scalar, written out again.
int32_t xnn_add(int32_t a, int32_t b, const Quantization& qa, const Quantization& qb, const Quantization& qy,
                int32_t lo, int32_t hi) {
  const float ra = qa.scale[0] / qy.scale[0], rb = qb.scale[0] / qy.scale[0];
  int e;
  std::frexp(std::max(ra, rb), &e);  // max = m * 2^e, m in [0.5, 1): the IEEE exponent is e - 1
  const int shift = 20 - (e - 1);
  const int32_t ma = int32_t(std::nearbyint(std::ldexp(double(ra), shift)));
  const int32_t mb = int32_t(std::nearbyint(std::ldexp(double(rb), shift)));
  const int64_t acc = int64_t(ma) * (a - zp(qa)) + int64_t(mb) * (b - zp(qb)) + (int64_t(1) << (shift - 1));
  const int64_t v = acc >= 0 ? acc >> shift : -((-acc + (int64_t(1) << shift) - 1) >> shift);  // floor division
  return int32_t(std::min<int64_t>(std::max<int64_t>(v, lo - zp(qy)), hi - zp(qy))) + zp(qy);
}

Dims broadcast_partner(std::mt19937& rng, const Dims& out) {
  Dims d = out;
  if (rand_int(rng, 0, 2) == 0) return d;
  const int drop = rand_int(rng, 0, out.rank - 1);  // drop leading dims, set some to 1
  d.rank = out.rank - drop;
  for (int i = 0; i < d.rank; ++i) d.d[i] = rand_int(rng, 0, 2) == 0 ? 1 : out[i + drop];
  return d;
}

int64_t index_of(const Dims& in, const Dims& out, int64_t flat) {
  int32_t idx[kMaxRank];
  for (int i = out.rank - 1; i >= 0; --i) idx[i] = int32_t(flat % out[i]), flat /= out[i];
  int64_t r = 0;
  for (int i = 0; i < in.rank; ++i) r = r * in[i] + (in[i] == 1 ? 0 : idx[i + out.rank - in.rank]);
  return r;
}

}  // namespace

TEST_CASE("add_s8 / mul_s8 match XNNPACK's QS8 formulas, with broadcasting and fused activations") {
  std::mt19937 rng(11);
  int add_cases = 0, unsupported = 0;
  for (int iter = 0; iter < 400; ++iter) {
    CAPTURE(iter);
    const bool is_add = iter % 2 == 0;
    const FusedActivation act = random_act(rng);
    Dims od;
    od.rank = rand_int(rng, 1, 4);
    for (int i = 0; i < od.rank; ++i) od.d[i] = rand_int(rng, 1, 5);
    const int32_t bits_a = rand_int(rng, 2, 8), bits_b = rand_int(rng, 2, 8), bits_y = rand_int(rng, 2, 8);
    QTensor a = qtensor(rng, broadcast_partner(rng, od), bits_a, rand_scale(rng, 0.002f, 0.5f));
    QTensor b = qtensor(rng, broadcast_partner(rng, od), bits_b,
                        is_add ? a.quant.scale[0] * rand_scale(rng, 0.02f, 50.0f) : rand_scale(rng, 0.002f, 0.5f));
    if (iter % 5 == 0) std::swap(a, b);
    float s_y = is_add ? (a.quant.scale[0] + b.quant.scale[0]) * std::ldexp(1.0f, std::max(bits_a, bits_b) - bits_y)
                       : a.quant.scale[0] * b.quant.scale[0] * std::ldexp(1.0f, bits_a + bits_b - 1 - bits_y);
    s_y *= rand_scale(rng, 0.3f, 3.0f);
    QTensor y = qtensor(rng, od, bits_y, s_y, false);
    TensorView in[2] = {a.view(), b.view()};
    TensorView out = y.view();
    const Status s = reference::eval(make_op(is_add ? OpType::kAdd : OpType::kMul, act), in, 2, &out, 1);
    if (is_add && !reference::add_s8_scales_supported(a.quant.scale[0], b.quant.scale[0], s_y)) {
      CHECK(s.code() == StatusCode::kUnsupported);
      ++unsupported;
      continue;
    }
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    add_cases += is_add;
    int32_t lo, hi;
    qmath::activation_bounds(act, bits_y, s_y, zp(y.quant), &lo, &hi);
    for (int64_t i = 0; i < od.elements(); ++i) {
      const int32_t qa = a.data[index_of(a.dims, od, i)], qb = b.data[index_of(b.dims, od, i)];
      const double real_a = double(a.quant.scale[0]) * (qa - zp(a.quant));
      const double real_b = double(b.quant.scale[0]) * (qb - zp(b.quant));
      const double exact = (is_add ? real_a + real_b : real_a * real_b) / s_y + zp(y.quant);
      const int32_t want = is_add ? xnn_add(qa, qb, a.quant, b.quant, y.quant, lo, hi)
                                  : qmath::requantize((qa - zp(a.quant)) * (qb - zp(b.quant)),
                                                      a.quant.scale[0] * b.quant.scale[0] / s_y, zp(y.quant), lo, hi);
      REQUIRE(int(y.data[i]) == want);
      if (exact > lo && exact < hi) REQUIRE(std::fabs(want - exact) <= 0.5 + 1e-3);
    }
  }
  CHECK(add_cases > 150);
  MESSAGE(unsupported << " add cases outside XNNPACK's scale-ratio range (kUnsupported)");
}

TEST_CASE("global_average_pool_s8 and average_pool2d_s8 match the gavgpool fp32 formula") {
  std::mt19937 rng(12);
  for (int iter = 0; iter < 300; ++iter) {
    CAPTURE(iter);
    const FusedActivation act = random_act(rng);
    const int32_t bits_x = rand_int(rng, 2, 8), bits_y = rand_int(rng, 2, 8);
    const bool global = iter % 2 == 0;
    Operator op = make_op(global ? OpType::kGlobalAveragePool : OpType::kAveragePool2D, act);
    PoolOptions& p = op.mutable_pool();
    p.kernel_h = rand_int(rng, 1, 3), p.kernel_w = rand_int(rng, 1, 3);
    p.stride_h = rand_int(rng, 1, 2), p.stride_w = rand_int(rng, 1, 2);
    p.padding = {rand_int(rng, 0, p.kernel_h - 1), rand_int(rng, 0, p.kernel_w - 1), rand_int(rng, 0, p.kernel_h - 1),
                 rand_int(rng, 0, p.kernel_w - 1)};
    p.count_include_pad = rand_int(rng, 0, 1) == 1;
    const int n = rand_int(rng, 1, 2), c = rand_int(rng, 1, 6);
    const int h = global ? rand_int(rng, 1, 16) : rand_int(rng, p.kernel_h, 8);
    const int w = global ? rand_int(rng, 1, 16) : rand_int(rng, p.kernel_w, 8);
    const int oh = global ? 1 : window_output_size(h, p.kernel_h, p.stride_h, 1, p.padding.top, p.padding.bottom);
    const int ow = global ? 1 : window_output_size(w, p.kernel_w, p.stride_w, 1, p.padding.left, p.padding.right);
    const float s_x = rand_scale(rng, 0.005f, 0.2f);
    QTensor x = qtensor(rng, dims_of({n, h, w, c}), bits_x, s_x);
    QTensor y = qtensor(rng, dims_of({n, oh, ow, c}), bits_y,
                        s_x * float(1 << bits_x) / float(1 << bits_y) * rand_scale(rng, 0.3f, 3.0f), false);
    TensorView in = x.view(), out = y.view();
    REQUIRE(reference::eval(op, &in, 1, &out, 1).is_ok());
    int32_t lo, hi;
    qmath::activation_bounds(act, bits_y, y.quant.scale[0], zp(y.quant), &lo, &hi);
    for (int b = 0; b < n; ++b)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox)
          for (int ch = 0; ch < c; ++ch) {
            int32_t sum = 0, count = 0;
            const int kh = global ? h : p.kernel_h, kw = global ? w : p.kernel_w;
            for (int ky = 0; ky < kh; ++ky)
              for (int kx = 0; kx < kw; ++kx) {
                const int iy = global ? ky : oy * p.stride_h - p.padding.top + ky;
                const int ix = global ? kx : ox * p.stride_w - p.padding.left + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                sum += x.data[((b * h + iy) * w + ix) * c + ch] - zp(x.quant);
                ++count;
              }
            const int divisor = global ? h * w : p.count_include_pad ? p.kernel_h * p.kernel_w : count;
            const float scale = s_x / (y.quant.scale[0] * float(divisor));
            REQUIRE(int(y.data[((b * oh + oy) * ow + ox) * c + ch]) ==
                    qmath::requantize(sum, scale, zp(y.quant), lo, hi));
          }
  }
}

TEST_CASE("softmax_s8 matches the lut32norm formula and the float softmax within a step") {
  std::mt19937 rng(14);
  for (int iter = 0; iter < 250; ++iter) {
    CAPTURE(iter);
    const int32_t bits = rand_int(rng, 2, 8);
    const int rows = rand_int(rng, 1, 3), channels = rand_int(rng, 1, iter % 5 == 0 ? 300 : 20);
    QTensor x = qtensor(rng, dims_of({rows, channels}), bits, rand_scale(rng, 0.01f, 0.5f));
    QTensor y = qtensor(rng, x.dims, 8, 1.0f, false);
    y.quant.scale = {1.0f / 256.0f};
    y.quant.zero_point = {-128};
    Operator op = make_op(OpType::kSoftmax, FusedActivation());
    op.beta = iter % 3 == 0 ? 1.0f : std::uniform_real_distribution<float>(0.5f, 2.0f)(rng);
    TensorView in = x.view(), out = y.view();
    REQUIRE(reference::eval(op, &in, 1, &out, 1).is_ok());
    const double qscale = std::min(4294967295.0 / channels, 8388607.0);
    for (int r = 0; r < rows; ++r) {
      int x_max = -128;
      for (int c = 0; c < channels; ++c) x_max = std::max<int>(x_max, x.data[r * channels + c]);
      std::vector<uint32_t> t(channels);
      uint32_t sum = 0;
      double fsum = 0.0;
      for (int c = 0; c < channels; ++c) {
        const int d = x.data[r * channels + c] - x_max;
        t[c] = uint32_t(std::lrint(qscale * std::exp(double(d) * double(op.beta * x.quant.scale[0]))));
        sum += t[c];
        fsum += std::exp(double(d) * op.beta * x.quant.scale[0]);
      }
      for (int c = 0; c < channels; ++c) {
        const uint32_t q = std::min<uint32_t>(255, ((t[c] << 8) + sum / 2) / sum);
        REQUIRE(int(y.data[r * channels + c]) == int(q) - 128);
        const double exact = std::exp(double(x.data[r * channels + c] - x_max) * op.beta * x.quant.scale[0]) / fsum;
        REQUIRE(std::fabs((int(q)) / 256.0 - std::min(exact, 255.0 / 256.0)) <= 1.0 / 256.0);
      }
    }
  }
  // Any other output quantization is refused with a message.
  std::mt19937 rng2(1);
  QTensor x = qtensor(rng2, dims_of({1, 4}), 8, 0.1f);
  QTensor y = qtensor(rng2, dims_of({1, 4}), 8, 0.1f, false);
  TensorView in = x.view(), out = y.view();
  const Status s = reference::eval(make_op(OpType::kSoftmax, FusedActivation()), &in, 1, &out, 1);
  CHECK(s.code() == StatusCode::kUnsupported);
  CHECK(std::string(s.message()).find("1/256") != std::string::npos);
}
