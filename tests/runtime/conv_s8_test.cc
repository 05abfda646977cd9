// The int8 conv / depthwise / fully connected reference kernels against loops written from the
// definition (unpacked int8 weights, qmath::requantize), bit-exact, on random shapes and
// parameters with a fixed seed: weight and activation bits 2..8, zero points != 0, fused
// ReLU / ReLU6 / Clip, groups, depth multipliers, stride, dilation, asymmetric padding.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "kernels/reference/reference_kernels.h"
#include "test_util.h"
#include "tinyquant/qmath.h"
#include "tinyquant/shape_inference.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

FusedActivation random_act(std::mt19937& rng) {
  switch (rand_int(rng, 0, 3)) {
    case 0: return FusedActivation();
    case 1: return FusedActivation::relu();
    case 2: return FusedActivation::relu6();
    default: return FusedActivation::clip(-0.5f, 0.75f);
  }
}

QTensor activation(std::mt19937& rng, const Dims& dims, int32_t bits, float scale, bool fill) {
  QTensor t;
  t.dims = dims;
  t.quant.bits = bits;
  t.quant.scale = {scale};
  t.quant.zero_point = {rand_int(rng, qmath::qmin(bits), qmath::qmax(bits))};
  t.data.resize(static_cast<size_t>(dims.elements()));
  if (fill)
    for (int8_t& v : t.data) v = static_cast<int8_t>(rand_int(rng, qmath::qmin(bits), qmath::qmax(bits)));
  return t;
}

QWeights weights(std::mt19937& rng, const Dims& dims, int32_t axis, int32_t bits) {
  QWeights w;
  w.dims = dims;
  w.quant.bits = bits;
  w.quant.axis = axis;
  for (int32_t c = 0; c < dims[axis]; ++c) {
    w.quant.scale.push_back(rand_scale(rng, 0.002f, 0.2f));
    w.quant.zero_point.push_back(0);
  }
  w.values.resize(static_cast<size_t>(dims.elements()));
  for (int8_t& v : w.values) v = static_cast<int8_t>(rand_int(rng, qmath::qmin(bits), qmath::qmax(bits)));
  w.packed.resize(static_cast<size_t>(packed_bytes(DType::kInt8, dims.elements(), bits)));
  qmath::pack_weights(w.values.data(), dims.elements(), bits, w.packed.data());
  return w;
}

std::vector<int32_t> random_bias(std::mt19937& rng, int32_t n, int32_t magnitude) {
  std::vector<int32_t> b(static_cast<size_t>(n));
  for (int32_t& v : b) v = rand_int(rng, -magnitude, magnitude);
  return b;
}

TensorView bias_view(std::vector<int32_t>& b) {
  TensorView v;
  v.dtype = DType::kInt32;
  v.dims.rank = 1;
  v.dims.d[0] = static_cast<int32_t>(b.size());
  v.data = b.data();
  return v;
}

// An output scale that makes typical accumulators span roughly the output range (some saturate).
float output_scale(std::mt19937& rng, float s_in, const QWeights& w, int32_t in_bits, int64_t terms, int32_t out_bits) {
  float sw = 0.0f;
  for (float s : w.quant.scale) sw += s;
  sw /= static_cast<float>(w.quant.scale.size());
  const float typical = s_in * sw * std::sqrt(static_cast<float>(terms)) * float(1 << (in_bits - 1)) *
                        float(1 << (w.quant.bits - 1)) * 1.5f;
  return typical / float(1 << (out_bits - 1)) * rand_scale(rng, 0.3f, 3.0f);
}

int32_t zp(const Quantization& q) { return q.zero_point.empty() ? 0 : q.zero_point[0]; }

// acc = b[oc] + sum (x - z_in) * w over in-bounds taps; y = requantize(acc, s_in*s_w[oc]/s_out, z_out, lo, hi)
std::vector<int8_t> naive_conv_s8(const ConvOptions& o, const FusedActivation& act, const QTensor& x,
                                  const QWeights& w, const std::vector<int32_t>* b, bool depthwise, QTensor& y) {
  std::vector<int8_t> out(y.data.size());
  const int N = x.dims[0], H = x.dims[1], W = x.dims[2], C = x.dims[3];
  const int KH = w.dims[1], KW = w.dims[2];
  const int OH = y.dims[1], OW = y.dims[2], OC = y.dims[3];
  int32_t lo, hi;
  qmath::activation_bounds(act, y.quant.bits, y.quant.scale[0], zp(y.quant), &lo, &hi);
  for (int n = 0; n < N; ++n)
    for (int oy = 0; oy < OH; ++oy)
      for (int ox = 0; ox < OW; ++ox)
        for (int oc = 0; oc < OC; ++oc) {
          int32_t acc = b ? (*b)[oc] : 0;
          for (int ky = 0; ky < KH; ++ky)
            for (int kx = 0; kx < KW; ++kx) {
              const int iy = oy * o.stride_h - o.padding.top + ky * o.dilation_h;
              const int ix = ox * o.stride_w - o.padding.left + kx * o.dilation_w;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              if (depthwise) {
                const int ic = oc / o.depth_multiplier;
                acc += (x.data[((n * H + iy) * W + ix) * C + ic] - zp(x.quant)) * w.values[(ky * KW + kx) * OC + oc];
              } else {
                const int cg = C / o.groups, og = OC / o.groups, g = oc / og;
                for (int ic = 0; ic < cg; ++ic)
                  acc += (x.data[((n * H + iy) * W + ix) * C + g * cg + ic] - zp(x.quant)) *
                         w.values[((oc * KH + ky) * KW + kx) * cg + ic];
              }
            }
          const float scale = qmath::requant_scale(x.quant.scale[0], w.quant.scale[oc], y.quant.scale[0]);
          out[((n * OH + oy) * OW + ox) * OC + oc] = int8_t(qmath::requantize(acc, scale, zp(y.quant), lo, hi));
        }
  return out;
}

}  // namespace

TEST_CASE("conv2d_s8 and depthwise_conv2d_s8 match the definition bit-exactly (2..8-bit weights and activations)") {
  std::mt19937 rng(20261127);
  int saturated_low = 0, saturated_high = 0, interior = 0;
  for (int iter = 0; iter < 420; ++iter) {
    CAPTURE(iter);
    const bool depthwise = iter % 2 == 1;
    const int32_t w_bits = 2 + (iter / 2) % 7;  // every bit width, 3 (byte-straddling) included, equally often
    const int32_t in_bits = iter % 5 == 0 ? 8 : rand_int(rng, 2, 8);
    const int32_t out_bits = iter % 7 == 0 ? 8 : rand_int(rng, 2, 8);
    ConvOptions o;
    o.stride_h = rand_int(rng, 1, 3), o.stride_w = rand_int(rng, 1, 3);
    o.dilation_h = rand_int(rng, 1, 2), o.dilation_w = rand_int(rng, 1, 2);
    const int kh = rand_int(rng, 1, 4), kw = rand_int(rng, 1, 4);
    o.padding = {rand_int(rng, 0, kh - 1), rand_int(rng, 0, kw - 1), rand_int(rng, 0, kh - 1), rand_int(rng, 0, kw - 1)};
    const int n = rand_int(rng, 1, 2), h = rand_int(rng, kh * o.dilation_h, 9), w = rand_int(rng, kw * o.dilation_w, 9);
    int c, oc;
    Dims wd;
    if (depthwise) {
      c = rand_int(rng, 1, 10);
      o.depth_multiplier = iter % 4 == 1 ? 2 : rand_int(rng, 1, 3);
      oc = c * o.depth_multiplier;
      wd = dims_of({1, kh, kw, oc});
    } else {
      o.groups = rand_int(rng, 1, 3);
      const int wide = iter % 10 == 0 ? 40 : 0;  // > 64 channels per group: several unpack chunks
      c = o.groups * rand_int(rng, 1 + wide, 6 + wide);
      oc = o.groups * rand_int(rng, 1, 4);
      wd = dims_of({oc, kh, kw, c / o.groups});
    }
    const int oh = window_output_size(h, kh, o.stride_h, o.dilation_h, o.padding.top, o.padding.bottom);
    const int ow = window_output_size(w, kw, o.stride_w, o.dilation_w, o.padding.left, o.padding.right);
    REQUIRE(oh > 0);
    REQUIRE(ow > 0);
    const float s_in = rand_scale(rng, 0.005f, 0.1f);
    QTensor x = activation(rng, dims_of({n, h, w, c}), in_bits, s_in, true);
    QWeights wt = weights(rng, wd, depthwise ? 3 : 0, w_bits);
    const int64_t terms = int64_t(kh) * kw * (depthwise ? 1 : c / o.groups);
    QTensor y = activation(rng, dims_of({n, oh, ow, oc}), out_bits,
                           output_scale(rng, s_in, wt, in_bits, terms, out_bits), false);
    const FusedActivation act = random_act(rng);
    std::vector<int32_t> b = random_bias(rng, oc, int32_t(std::sqrt(double(terms)) + 1) << (in_bits + w_bits - 3));
    const bool has_bias = iter % 6 != 0;
    const std::vector<int8_t> want = naive_conv_s8(o, act, x, wt, has_bias ? &b : nullptr, depthwise, y);
    TensorView bv = bias_view(b);
    if (depthwise)
      reference::depthwise_conv2d_s8(o, act, x.view(), wt.view(), has_bias ? &bv : nullptr, y.view());
    else
      reference::conv2d_s8(o, act, x.view(), wt.view(), has_bias ? &bv : nullptr, y.view());
    REQUIRE(count_mismatches(y.data, want) == 0);
    int32_t lo, hi;
    qmath::activation_bounds(act, out_bits, y.quant.scale[0], zp(y.quant), &lo, &hi);
    for (int8_t v : want) {
      REQUIRE(v >= lo);
      REQUIRE(v <= hi);
      saturated_low += v == lo, saturated_high += v == hi, interior += v > lo && v < hi;
    }
  }
  // The parameters exercise both clamps and the interior, not just saturation.
  CHECK(saturated_low > 0);
  CHECK(saturated_high > 0);
  MESSAGE("outputs: " << saturated_low << " at lo, " << saturated_high << " at hi, " << interior << " inside");
  CHECK(interior > (saturated_low + saturated_high) / 2);
}

TEST_CASE("fully_connected_s8 matches the definition bit-exactly (2..8-bit weights and activations)") {
  std::mt19937 rng(77);
  for (int iter = 0; iter < 280; ++iter) {
    CAPTURE(iter);
    const int32_t w_bits = 2 + iter % 7;
    const int32_t in_bits = rand_int(rng, 2, 8), out_bits = rand_int(rng, 2, 8);
    const int rows = rand_int(rng, 1, 4), in_f = rand_int(rng, 1, iter % 3 == 0 ? 200 : 24), out_f = rand_int(rng, 1, 12);
    const float s_in = rand_scale(rng, 0.005f, 0.1f);
    // Input rank 3 sometimes: FC flattens everything before the last dimension into rows.
    QTensor x = activation(rng, iter % 4 == 0 ? dims_of({rows, 1, in_f}) : dims_of({rows, in_f}), in_bits, s_in, true);
    QWeights wt = weights(rng, dims_of({out_f, in_f}), 0, w_bits);
    QTensor y = activation(rng, dims_of({rows, out_f}), out_bits, output_scale(rng, s_in, wt, in_bits, in_f, out_bits), false);
    const FusedActivation act = random_act(rng);
    std::vector<int32_t> b = random_bias(rng, out_f, int32_t(std::sqrt(double(in_f)) + 1) << (in_bits + w_bits - 3));
    const bool has_bias = iter % 5 != 0;
    int32_t lo, hi;
    qmath::activation_bounds(act, out_bits, y.quant.scale[0], zp(y.quant), &lo, &hi);
    std::vector<int8_t> want(y.data.size());
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < out_f; ++o) {
        int32_t acc = has_bias ? b[o] : 0;
        for (int i = 0; i < in_f; ++i) acc += (x.data[r * in_f + i] - zp(x.quant)) * wt.values[o * in_f + i];
        const float scale = qmath::requant_scale(s_in, wt.quant.scale[o], y.quant.scale[0]);
        want[r * out_f + o] = int8_t(qmath::requantize(acc, scale, zp(y.quant), lo, hi));
      }
    TensorView bv = bias_view(b);
    reference::fully_connected_s8(act, x.view(), wt.view(), has_bias ? &bv : nullptr, y.view());
    REQUIRE(count_mismatches(y.data, want) == 0);
  }
}

TEST_CASE("3-bit weights straddling byte boundaries are read correctly from the packed stream") {
  // Eight 3-bit weights fill three bytes; elements 2 and 5 straddle bytes 0/1 and 1/2.
  const int8_t values[8] = {-4, 3, -1, 2, -3, 1, 0, -2};
  uint8_t packed[3];
  qmath::pack_weights(values, 8, 3, packed);
  for (int i = 0; i < 8; ++i) CHECK(qmath::unpack_weight(packed, i, 3) == values[i]);
  // FC with one output of 8 inputs: acc = sum (x - z) * w with x = z + 1 + i.
  Quantization wq;
  wq.bits = 3;
  wq.axis = 0;
  wq.scale = {1.0f};
  Quantization xq, yq;
  xq.scale = {1.0f};
  xq.zero_point = {-5};
  yq.scale = {1.0f};
  yq.zero_point = {3};
  int8_t x[8], y[1] = {0};
  int32_t want = 0;
  for (int i = 0; i < 8; ++i) x[i] = int8_t(-5 + 1 + i), want += (1 + i) * values[i];
  TensorView xv{DType::kInt8, dims_of({1, 8}), x, &xq};
  TensorView wv{DType::kInt8, dims_of({1, 8}), packed, &wq};
  TensorView yv{DType::kInt8, dims_of({1, 1}), y, &yq};
  reference::fully_connected_s8(FusedActivation(), xv, wv, nullptr, yv);
  CHECK(int(y[0]) == std::min<int32_t>(127, std::max<int32_t>(-128, want + 3)));
}
