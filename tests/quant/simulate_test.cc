// The float-side simulation against the integer kernels: quantize_activation against the
// reference quantize_s8 kernel, and simulate_layer_s8 against the reference conv / depthwise /
// fully connected s8 kernels, bit for bit, on random shapes, bit-widths and activations.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "kernels/reference/reference_kernels.h"
#include "test_util.h"
#include "tinyquant/observer.h"
#include "tinyquant/quantizer.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

Quantization per_tensor(const quant::ActivationParams& p) {
  Quantization q;
  q.scale = {p.scale};
  q.zero_point = {p.zero_point};
  q.bits = p.bits;
  return q;
}

FusedActivation random_activation(std::mt19937& rng) {
  switch (rand_int(rng, 0, 3)) {
    case 0: return FusedActivation();
    case 1: return FusedActivation::relu();
    case 2: return FusedActivation::relu6();
    default: return FusedActivation::clip(-0.5f, 0.75f);
  }
}

// A random layer with quantized weights, bias and input / output params, plus its float input.
struct LayerCase {
  quant::QuantizedLayer layer;
  quant::QuantizedWeights weights;
  quant::QuantizedBias bias;
  Dims in, out;
  std::vector<float> input;
  Quantization in_q, out_q, w_q;
};

void make_case(std::mt19937& rng, OpType type, LayerCase* t) {
  quant::QuantizedLayer& l = t->layer;
  l.type = type;
  l.activation = random_activation(rng);
  l.weight_bits = rand_int(rng, 2, 8);
  const int32_t batch = rand_int(rng, 1, 2);
  std::vector<int32_t> wshape;
  int32_t axis = 0;
  if (type == OpType::kFullyConnected) {
    const int32_t in_f = rand_int(rng, 1, 40), out_f = rand_int(rng, 1, 12);
    wshape = {out_f, in_f};
    t->in = dims_of({batch, in_f});
    t->out = dims_of({batch, out_f});
  } else {
    ConvOptions& o = l.conv;
    o.stride_h = rand_int(rng, 1, 2);
    o.stride_w = rand_int(rng, 1, 2);
    o.dilation_h = rand_int(rng, 1, 2);
    o.dilation_w = rand_int(rng, 1, 2);
    o.padding = {rand_int(rng, 0, 2), rand_int(rng, 0, 2), rand_int(rng, 0, 2), rand_int(rng, 0, 2)};
    const int32_t kh = rand_int(rng, 1, 3), kw = rand_int(rng, 1, 3);
    const int32_t ih = rand_int(rng, 3, 9), iw = rand_int(rng, 3, 9);
    int32_t ic, oc;
    if (type == OpType::kDepthwiseConv2D) {
      ic = rand_int(rng, 1, 6);
      o.depth_multiplier = rand_int(rng, 1, 3);
      oc = ic * o.depth_multiplier;
      wshape = {1, kh, kw, oc};
      axis = 3;
    } else {
      o.groups = rand_int(rng, 1, 3);
      ic = o.groups * rand_int(rng, 1, 4);
      oc = o.groups * rand_int(rng, 1, 4);
      wshape = {oc, kh, kw, ic / o.groups};
    }
    const int32_t oh = (ih + o.padding.top + o.padding.bottom - o.dilation_h * (kh - 1) - 1) / o.stride_h + 1;
    const int32_t ow = (iw + o.padding.left + o.padding.right - o.dilation_w * (kw - 1) - 1) / o.stride_w + 1;
    t->in = dims_of({batch, ih, iw, ic});
    t->out = dims_of({batch, std::max(oh, 1), std::max(ow, 1), oc});
    if (oh < 1 || ow < 1) {  // kernel larger than the padded input: shrink to a 1x1 kernel
      wshape[1] = wshape[2] = 1;
      t->out = dims_of({batch, (ih + o.padding.top + o.padding.bottom - 1) / o.stride_h + 1,
                        (iw + o.padding.left + o.padding.right - 1) / o.stride_w + 1, oc});
    }
  }
  const int64_t wn = shape_elements(wshape);
  const std::vector<float> w = random_floats(rng, wn, -0.5f, 0.5f);
  REQUIRE(quant::quantize_weights("w", w.data(), wshape, axis, l.weight_bits, &t->weights).is_ok());
  t->layer.weight_dims = Dims::of(wshape);
  l.packed_weights = t->weights.packed.data();
  l.weight_scales = t->weights.scales.data();

  // Input params from an observer on the input itself (ReLU-like half the time).
  const bool relu_in = rand_int(rng, 0, 1) == 1;
  t->input = random_floats(rng, t->in.elements(), relu_in ? 0.0f : -2.0f, 2.0f);
  for (size_t i = 0; i < t->input.size(); i += 7) t->input[i] = relu_in ? 0.0f : t->input[i];
  quant::ActivationObserver obs("in");
  REQUIRE(obs.observe(t->input.data(), t->in.elements()).is_ok());
  quant::ActivationChoice choice;
  REQUIRE(obs.choose_activation_params(rand_int(rng, 2, 8), &choice).is_ok());
  l.input = choice.params;
  l.output = quant::params_for_range(-std::uniform_real_distribution<float>(0.0f, 3.0f)(rng),
                                     std::uniform_real_distribution<float>(0.5f, 3.0f)(rng), rand_int(rng, 2, 8));

  const int32_t channels = wshape[axis];
  if (rand_int(rng, 0, 3) != 0) {
    const std::vector<float> b = random_floats(rng, channels, -1.0f, 1.0f);
    REQUIRE(quant::quantize_bias("b", b.data(), channels, l.input.scale, t->weights.scales.data(), &t->bias).is_ok());
    l.bias = t->bias.values.data();
  }
  t->in_q = per_tensor(l.input);
  t->out_q = per_tensor(l.output);
  t->w_q.scale = t->weights.scales;
  t->w_q.zero_point.assign(channels, 0);
  t->w_q.axis = axis;
  t->w_q.bits = l.weight_bits;
}

// Runs the reference kernels: quantize_s8 on the float input, then the op's s8 kernel.
std::vector<int8_t> run_kernels(LayerCase& t) {
  std::vector<int8_t> xq(t.in.elements()), y(t.out.elements());
  TensorView fin{DType::kFloat32, t.in, t.input.data(), nullptr};
  TensorView qin{DType::kInt8, t.in, xq.data(), &t.in_q};
  reference::quantize_s8(fin, qin);
  TensorView w{DType::kInt8, t.layer.weight_dims, const_cast<uint8_t*>(t.layer.packed_weights), &t.w_q};
  Quantization bias_q;
  TensorView b{DType::kInt32, dims_of({int32_t(t.bias.values.size())}), t.bias.values.data(), &bias_q};
  const TensorView* bias = t.layer.bias ? &b : nullptr;
  TensorView out{DType::kInt8, t.out, y.data(), &t.out_q};
  switch (t.layer.type) {
    case OpType::kConv2D: reference::conv2d_s8(t.layer.conv, t.layer.activation, qin, w, bias, out); break;
    case OpType::kDepthwiseConv2D:
      reference::depthwise_conv2d_s8(t.layer.conv, t.layer.activation, qin, w, bias, out);
      break;
    default: reference::fully_connected_s8(t.layer.activation, qin, w, bias, out); break;
  }
  return y;
}

}  // namespace

TEST_CASE("quantize_activation / dequantize_activation match the reference quantize_s8 / dequantize_s8 kernels") {
  std::mt19937 rng(31);
  for (int iter = 0; iter < 100; ++iter) {
    quant::ActivationParams p;
    p.bits = rand_int(rng, 2, 8);
    p.zero_point = rand_int(rng, qmath::qmin(p.bits), qmath::qmax(p.bits));
    p.scale = iter % 2 ? std::ldexp(1.0f, rand_int(rng, -6, 1)) : std::uniform_real_distribution<float>(1e-3f, 1.0f)(rng);
    std::vector<float> x = random_floats(rng, 1000, -300.0f * p.scale, 300.0f * p.scale);
    for (size_t i = 0; i < x.size(); i += 3)  // ties: (k + 0.5) levels (exact for power-of-two scales)
      x[i] = (static_cast<float>(rand_int(rng, -200, 200)) + 0.5f) * p.scale;
    x[1] = std::numeric_limits<float>::quiet_NaN();  // the kernel sends NaN to qmin; so do we
    x[4] = std::numeric_limits<float>::infinity();
    x[7] = -std::numeric_limits<float>::infinity();
    Quantization q = per_tensor(p);
    std::vector<int8_t> xq(x.size());
    std::vector<float> back(x.size());
    const Dims d = dims_of({int32_t(x.size())});
    reference::quantize_s8(TensorView{DType::kFloat32, d, x.data(), nullptr}, TensorView{DType::kInt8, d, xq.data(), &q});
    reference::dequantize_s8(TensorView{DType::kInt8, d, xq.data(), &q}, TensorView{DType::kFloat32, d, back.data(), nullptr});
    const float inv = 1.0f / p.scale;
    for (size_t i = 0; i < x.size(); ++i) {
      REQUIRE(quant::quantize_activation(x[i], inv, p.zero_point, p.bits) == xq[i]);
      if (!std::isnan(x[i])) REQUIRE(quant::fake_quant_activation(x[i], p.scale, p.zero_point, p.bits) == back[i]);
    }
    CHECK(xq[1] == qmath::qmin(p.bits));
    CHECK(xq[4] == qmath::qmax(p.bits));
  }
}

// simulate_layer_s8 now calls the reference kernels: this checks its input quantization and the
// views it builds (layouts, per-channel scales, bias, FC rows), not a second implementation.
TEST_CASE("simulate_layer_s8 equals the reference s8 kernels bit for bit") {
  std::mt19937 rng(41);
  for (OpType type : {OpType::kConv2D, OpType::kDepthwiseConv2D, OpType::kFullyConnected}) {
    int64_t compared = 0, nonzero_spread = 0;
    for (int iter = 0; iter < 60; ++iter) {
      CAPTURE(op_name(type));
      CAPTURE(iter);
      LayerCase t;
      make_case(rng, type, &t);
      std::vector<int8_t> sim;
      REQUIRE(quant::simulate_layer_s8(t.layer, t.input.data(), t.in, t.out, &sim).is_ok());
      const std::vector<int8_t> ref = run_kernels(t);
      REQUIRE(sim.size() == ref.size());
      for (size_t i = 0; i < sim.size(); ++i) REQUIRE(sim[i] == ref[i]);
      compared += static_cast<int64_t>(sim.size());
      const auto mm = std::minmax_element(sim.begin(), sim.end());
      nonzero_spread += *mm.second - *mm.first > 2;
    }
    CHECK(compared > 400);
    CHECK(nonzero_spread > 30);  // outputs are not all saturated at one value
  }
}

TEST_CASE("simulate_layer_s8 is the fake-quant float layer up to one level") {
  // Float conv on fake-quant inputs, weights and bias, then fake-quant of the output: the same
  // numbers in real arithmetic, so the integer result may differ only where float rounding
  // crosses a rounding boundary.
  std::mt19937 rng(43);
  int64_t total = 0, exact = 0;
  for (int iter = 0; iter < 40; ++iter) {
    LayerCase t;
    make_case(rng, OpType::kConv2D, &t);
    std::vector<int8_t> sim;
    REQUIRE(quant::simulate_layer_s8(t.layer, t.input.data(), t.in, t.out, &sim).is_ok());
    std::vector<float> x = t.input;
    REQUIRE(quant::fake_quant_activations("in", x.data(), int64_t(x.size()), t.layer.input).is_ok());
    std::vector<float> y(t.out.elements());
    TensorView fx{DType::kFloat32, t.in, x.data(), nullptr};
    TensorView fw{DType::kFloat32, t.layer.weight_dims, t.weights.fake_quant.data(), nullptr};
    TensorView fb{DType::kFloat32, dims_of({int32_t(t.bias.fake_quant.size())}), t.bias.fake_quant.data(), nullptr};
    TensorView fy{DType::kFloat32, t.out, y.data(), nullptr};
    reference::conv2d_f32(t.layer.conv, t.layer.activation, fx, fw, t.layer.bias ? &fb : nullptr, fy);
    const quant::ActivationParams& o = t.layer.output;
    for (size_t i = 0; i < y.size(); ++i) {
      const int32_t q = quant::quantize_activation(y[i], 1.0f / o.scale, o.zero_point, o.bits);
      REQUIRE(std::abs(q - sim[i]) <= 1);
      exact += q == sim[i];
      ++total;
    }
  }
  CHECK(total > 1000);
  CHECK(exact >= total * 99 / 100);
}

TEST_CASE("simulate_layer_s8 rejects inconsistent layers") {
  std::mt19937 rng(47);
  LayerCase t;
  make_case(rng, OpType::kFullyConnected, &t);
  std::vector<int8_t> sim;
  Dims bad = t.out;
  bad.d[bad.rank - 1] += 1;
  CHECK(!quant::simulate_layer_s8(t.layer, t.input.data(), t.in, bad, &sim).is_ok());
  quant::QuantizedLayer l = t.layer;
  l.type = OpType::kAdd;
  CHECK(quant::simulate_layer_s8(l, t.input.data(), t.in, t.out, &sim).code() == StatusCode::kUnsupported);
  l = t.layer;
  l.weight_bits = 9;
  CHECK(!quant::simulate_layer_s8(l, t.input.data(), t.in, t.out, &sim).is_ok());
  l = t.layer;
  l.output.zero_point = 200;
  CHECK(!quant::simulate_layer_s8(l, t.input.data(), t.in, t.out, &sim).is_ok());
}
