// Conv2D and DepthwiseConv2D on XNNPACK against the reference kernels, on random shapes.
#include "tinyquant/shape_inference.h"
#include "xnnpack/xnnpack_test_util.h"

namespace tinyquant {
namespace xnnpack_test {
namespace {

struct Window {
  int32_t kh, kw;
  ConvOptions conv;
};

// Kernel 1..max (1x1 about a fifth of the time), stride 1..3, dilation 1..2, padding 0..2 per side
// drawn independently (so mostly asymmetric).
Window random_window(std::mt19937& rng, int max_kernel) {
  Window w{1, 1, ConvOptions()};
  if (!chance(rng, 0.2)) {
    w.kh = uniform_int(rng, 1, max_kernel);
    w.kw = uniform_int(rng, 1, max_kernel);
  }
  w.conv.stride_h = uniform_int(rng, 1, 3);
  w.conv.stride_w = uniform_int(rng, 1, 3);
  w.conv.dilation_h = chance(rng, 0.3) ? 2 : 1;
  w.conv.dilation_w = chance(rng, 0.3) ? 2 : 1;
  if (!chance(rng, 0.3)) {
    w.conv.padding.top = uniform_int(rng, 0, 2);
    w.conv.padding.bottom = uniform_int(rng, 0, 2);
    w.conv.padding.left = uniform_int(rng, 0, 2);
    w.conv.padding.right = uniform_int(rng, 0, 2);
  }
  return w;
}

// Output size, or 0 when the window does not fit.
std::vector<int32_t> conv_output(const std::vector<int32_t>& in, const Window& w, int32_t out_c) {
  const ConvOptions& c = w.conv;
  const int32_t oh = window_output_size(in[1], w.kh, c.stride_h, c.dilation_h, c.padding.top, c.padding.bottom);
  const int32_t ow = window_output_size(in[2], w.kw, c.stride_w, c.dilation_w, c.padding.left, c.padding.right);
  return {in[0], oh, ow, out_c};
}

std::string describe(const char* kind, const std::vector<int32_t>& in, const Window& w, int extra) {
  const ConvOptions& c = w.conv;
  return std::string(kind) + " in " + str(in) + " k " + std::to_string(w.kh) + "x" + std::to_string(w.kw) + " s " +
         std::to_string(c.stride_h) + "x" + std::to_string(c.stride_w) + " d " + std::to_string(c.dilation_h) + "x" +
         std::to_string(c.dilation_w) + " pad " + std::to_string(c.padding.top) + "," + std::to_string(c.padding.left) +
         "," + std::to_string(c.padding.bottom) + "," + std::to_string(c.padding.right) + " groups/mult " +
         std::to_string(extra);
}

TEST_CASE("xnnpack: Conv2D matches the reference on random shapes") {
  std::mt19937 rng(1001);
  auto runner = make_runner(1);
  ErrorStats stats{"Conv2D"};
  int grouped = 0, pointwise = 0, strided = 0, dilated = 0, asymmetric = 0;
  for (int iter = 0; iter < 300; ++iter) {
    const int32_t groups = chance(rng, 0.35) ? uniform_int(rng, 2, 4) : 1;
    const int32_t wide = chance(rng, 0.15) ? 24 : 6;  // now and then enough channels for full GEMM tiles
    const int32_t group_in = uniform_int(rng, 1, wide), group_out = uniform_int(rng, 1, wide);
    const Window w = random_window(rng, 4);
    const std::vector<int32_t> in = {uniform_int(rng, 1, 2), uniform_int(rng, 1, 10), uniform_int(rng, 1, 10),
                                     groups * group_in};
    const std::vector<int32_t> out = conv_output(in, w, groups * group_out);
    if (out[1] <= 0 || out[2] <= 0) {
      --iter;  // the window does not fit: draw again
      continue;
    }
    grouped += groups > 1;
    pointwise += w.kh == 1 && w.kw == 1;
    strided += w.conv.stride_h > 1 || w.conv.stride_w > 1;
    dilated += w.conv.dilation_h > 1 || w.conv.dilation_w > 1;
    asymmetric += w.conv.padding.top != w.conv.padding.bottom || w.conv.padding.left != w.conv.padding.right;

    Operator op;
    op.type = OpType::kConv2D;
    op.name = "conv" + std::to_string(iter);
    op.mutable_conv() = w.conv;
    op.mutable_conv().groups = groups;
    op.activation = random_activation(rng);
    TestTensor x(in), weights({out[3], w.kh, w.kw, group_in}), bias({out[3]});
    x.uniform(rng, -1, 1);
    weights.uniform(rng, -1, 1);
    bias.uniform(rng, -1, 1);
    const bool with_bias = chance(rng, 0.8);
    const bool handled = check_op(*runner, op, {&x, &weights, with_bias ? &bias : nullptr}, out,
                                  double(w.kh) * w.kw * group_in, &stats, describe("Conv2D", in, w, groups));
    CHECK_MESSAGE(handled, describe("Conv2D", in, w, groups));
    runner->reset();
  }
  CHECK(grouped > 50);
  CHECK(pointwise > 30);
  CHECK(strided > 100);
  CHECK(dilated > 50);
  CHECK(asymmetric > 100);
}

TEST_CASE("xnnpack: DepthwiseConv2D matches the reference on random shapes") {
  std::mt19937 rng(1002);
  auto runner = make_runner(1);
  ErrorStats stats{"DepthwiseConv2D"};
  int multiplier[4] = {0, 0, 0, 0};
  for (int iter = 0; iter < 300; ++iter) {
    const int32_t mult = chance(rng, 0.1) ? 3 : uniform_int(rng, 1, 2);
    const int32_t channels = uniform_int(rng, 1, chance(rng, 0.2) ? 40 : 12);
    const Window w = random_window(rng, 5);
    const std::vector<int32_t> in = {uniform_int(rng, 1, 2), uniform_int(rng, 1, 12), uniform_int(rng, 1, 12),
                                     channels};
    const std::vector<int32_t> out = conv_output(in, w, channels * mult);
    if (out[1] <= 0 || out[2] <= 0) {
      --iter;
      continue;
    }
    ++multiplier[mult];

    Operator op;
    op.type = OpType::kDepthwiseConv2D;
    op.name = "dw" + std::to_string(iter);
    op.mutable_conv() = w.conv;
    op.mutable_conv().depth_multiplier = mult;
    op.activation = random_activation(rng);
    TestTensor x(in), weights({1, w.kh, w.kw, out[3]}), bias({out[3]});
    x.uniform(rng, -1, 1);
    weights.uniform(rng, -1, 1);
    bias.uniform(rng, -1, 1);
    const bool with_bias = chance(rng, 0.8);
    const bool handled = check_op(*runner, op, {&x, &weights, with_bias ? &bias : nullptr}, out, double(w.kh) * w.kw,
                                  &stats, describe("DepthwiseConv2D", in, w, mult));
    CHECK_MESSAGE(handled, describe("DepthwiseConv2D", in, w, mult));
    runner->reset();
  }
  CHECK(multiplier[1] > 80);
  CHECK(multiplier[2] > 80);
}

// A depthwise convolution written as Conv2D with groups == channels (weights [C, KH, KW, 1]) runs
// on XNNPACK's grouped path; it must agree with the same op as DepthwiseConv2D.
TEST_CASE("xnnpack: Conv2D with one input channel per group equals DepthwiseConv2D") {
  std::mt19937 rng(1003);
  auto runner = make_runner(1);
  const std::vector<int32_t> in = {1, 9, 7, 16};
  TestTensor x(in), dw_weights({1, 3, 3, 16}), conv_weights({16, 3, 3, 1}), bias({16});
  x.uniform(rng, -1, 1);
  dw_weights.uniform(rng, -1, 1);
  bias.uniform(rng, -1, 1);
  for (int k = 0; k < 9; ++k)
    for (int c = 0; c < 16; ++c) conv_weights.f32()[c * 9 + k] = dw_weights[k * 16 + c];
  Operator dw;
  dw.type = OpType::kDepthwiseConv2D;
  dw.name = "dw";
  dw.mutable_conv().padding = {1, 1, 1, 1};
  Operator conv = dw;
  conv.type = OpType::kConv2D;
  conv.name = "grouped";
  conv.mutable_conv().groups = 16;
  const std::vector<int32_t> out = {1, 9, 7, 16};
  TestTensor a(out), b(out);
  REQUIRE(run_xnnpack(*runner, dw, {&x, &dw_weights, &bias}, a));
  REQUIRE(run_xnnpack(*runner, conv, {&x, &conv_weights, &bias}, b));
  ErrorStats stats{"Conv2D grouped vs depthwise"};
  stats.cases = stats.handled = 1;
  const auto scale = magnitude(dw, {&x, &dw_weights, &bias}, out);
  expect_close(a, b, scale.get(), 2.0 * (9 + 2) * kUnitRoundoff, &stats, "grouped vs depthwise");
}

}  // namespace
}  // namespace xnnpack_test
}  // namespace tinyquant
