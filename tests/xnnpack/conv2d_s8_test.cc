// Conv2D, DepthwiseConv2D and FullyConnected on int8 (XNNPACK QC8) against the reference int8
// kernels, bit for bit, on random shapes, weights of 2..8 bits, activations of 2..8 bits (inputs
// on 2^b levels, outputs clamped to them), random scales (a quarter powers of two, so requantized
// values land on exact halves), zero points, biases and fused activations.
#include "tinyquant/shape_inference.h"
#include "xnnpack/s8_test_util.h"

namespace tinyquant {
namespace xnnpack_test {
namespace {

struct Bits {
  int32_t in, w, out;
};

Bits random_bits(std::mt19937& rng) {
  // Half the cases 8-bit activations; weights uniformly 2..8.
  Bits b{8, uniform_int(rng, 2, 8), 8};
  if (chance(rng, 0.5)) b.in = uniform_int(rng, 2, 8), b.out = uniform_int(rng, 2, 8);
  return b;
}

// An output scale putting a typical accumulator (taps terms of size ~2^(in-1) * 2^(w-1) * s_w)
// across the output's levels, times a random factor.
float output_scale_for(std::mt19937& rng, float s_in, float s_w, int32_t taps, const Bits& b) {
  const float typical = s_in * s_w * std::sqrt(float(taps)) * float(1 << (b.in - 1)) * float(1 << (b.w - 1));
  const float s = typical / float(1 << (b.out - 1)) * std::exp(std::uniform_real_distribution<float>(-1.5f, 1.0f)(rng));
  return maybe_power_of_two(rng, s);
}

std::vector<float> channel_scales(std::mt19937& rng, int32_t n, float base) {
  std::vector<float> s(n);
  for (float& v : s)
    v = maybe_power_of_two(rng, base * std::exp(std::uniform_real_distribution<float>(-0.7f, 0.7f)(rng)));
  return s;
}

void random_conv_options(std::mt19937& rng, int32_t kh, int32_t kw, ConvOptions* c) {
  c->stride_h = uniform_int(rng, 1, 2), c->stride_w = uniform_int(rng, 1, 2);
  c->dilation_h = chance(rng, 0.2) ? 2 : 1, c->dilation_w = chance(rng, 0.2) ? 2 : 1;
  c->padding = {uniform_int(rng, 0, kh - 1), uniform_int(rng, 0, kw - 1), uniform_int(rng, 0, kh - 1),
                uniform_int(rng, 0, kw - 1)};
}

void conv_cases(bool depthwise, int cases, uint32_t seed) {
  std::mt19937 rng(seed);
  auto one = make_runner(1), two = make_runner(2);
  S8Stats stats{depthwise ? "DepthwiseConv2D s8" : "Conv2D s8"};
  for (int i = 0; i < cases; ++i) {
    const Bits bits = random_bits(rng);
    const int32_t n = uniform_int(rng, 1, 2), h = uniform_int(rng, 1, 9), w = uniform_int(rng, 1, 9);
    const int32_t kh = chance(rng, 0.2) ? 1 : uniform_int(rng, 1, depthwise ? 7 : 3);
    const int32_t kw = chance(rng, 0.2) ? 1 : uniform_int(rng, 1, depthwise ? 7 : 3);
    Operator op;
    op.type = depthwise ? OpType::kDepthwiseConv2D : OpType::kConv2D;
    op.name = "conv_s8";
    random_conv_options(rng, kh, kw, &op.mutable_conv());
    op.activation = random_activation(rng);
    int32_t in_c, out_c, group_in;
    if (depthwise) {
      in_c = uniform_int(rng, 1, 24);
      op.mutable_conv().depth_multiplier = chance(rng, 0.7) ? 1 : uniform_int(rng, 2, 3);
      out_c = in_c * op.conv().depth_multiplier;
      group_in = 1;
    } else {
      op.mutable_conv().groups = chance(rng, 0.7) ? 1 : uniform_int(rng, 2, 4);
      group_in = uniform_int(rng, 1, 12);
      in_c = group_in * op.conv().groups;
      out_c = op.conv().groups * uniform_int(rng, 1, 12);
    }
    const ConvOptions& c = op.conv();
    const int32_t oh = window_output_size(h, kh, c.stride_h, c.dilation_h, c.padding.top, c.padding.bottom);
    const int32_t ow = window_output_size(w, kw, c.stride_w, c.dilation_w, c.padding.left, c.padding.right);
    if (oh <= 0 || ow <= 0) {
      --i;
      continue;
    }
    const float s_in = maybe_power_of_two(rng, random_scale(rng));
    const float s_w = std::exp2(-float(bits.w - 1)) * std::exp(std::uniform_real_distribution<float>(-2.0f, 0.0f)(rng));
    const int32_t taps = kh * kw * group_in;
    auto x = s8_activation(rng, {n, h, w, in_c}, s_in, bits.in);
    auto wt = depthwise ? s8_weights(rng, {1, kh, kw, out_c}, bits.w, 3, channel_scales(rng, out_c, s_w))
                        : s8_weights(rng, {out_c, kh, kw, group_in}, bits.w, 0, channel_scales(rng, out_c, s_w));
    const int32_t magnitude = taps << (bits.in + bits.w - 3);
    auto bias = chance(rng, 0.8) ? s32_bias(rng, out_c, magnitude) : nullptr;
    auto y = s8_output(rng, {n, oh, ow, out_c}, output_scale_for(rng, s_in, s_w, taps, bits), bits.out);
    const std::string what = "case " + std::to_string(i) + " x" + str(x->t.shape()) + " w" + str(wt->t.shape()) +
                             " bits " + std::to_string(bits.in) + "/" + std::to_string(bits.w) + "/" +
                             std::to_string(bits.out);
    check_s8(*one, *two, op, {&x->t, &wt->t, bias ? &bias->t : nullptr}, *y, &stats, what);
  }
  CHECK(stats.handled >= cases * 9 / 10);  // only extreme scale ratios fall back
}

}  // namespace

TEST_CASE("xnnpack s8: Conv2D (QC8) is bit-exact with the reference, weights and activations 2..8 bits") {
  conv_cases(false, 300, 101);
}

TEST_CASE("xnnpack s8: DepthwiseConv2D (QC8) is bit-exact with the reference, weights and activations 2..8 bits") {
  conv_cases(true, 300, 202);
}

TEST_CASE("xnnpack s8: FullyConnected (QC8 1x1 convolution) is bit-exact with the reference") {
  std::mt19937 rng(303);
  auto one = make_runner(1), two = make_runner(2);
  S8Stats stats{"FullyConnected s8"};
  const int cases = 300;
  for (int i = 0; i < cases; ++i) {
    const Bits bits = random_bits(rng);
    const int32_t rows = uniform_int(rng, 1, 5), in_f = uniform_int(rng, 1, 80), out_f = uniform_int(rng, 1, 40);
    Operator op;
    op.type = OpType::kFullyConnected;
    op.name = "fc_s8";
    op.activation = random_activation(rng);
    const float s_in = maybe_power_of_two(rng, random_scale(rng));
    const float s_w = std::exp2(-float(bits.w - 1)) * std::exp(std::uniform_real_distribution<float>(-2.0f, 0.0f)(rng));
    // Rank-2 input, or [rows, a, b] with a * b = in_f when it factors.
    std::vector<int32_t> x_shape = {rows, in_f};
    if (in_f % 4 == 0 && chance(rng, 0.3)) x_shape = {rows, 4, in_f / 4};
    auto x = s8_activation(rng, x_shape, s_in, bits.in);
    auto wt = s8_weights(rng, {out_f, in_f}, bits.w, 0, channel_scales(rng, out_f, s_w));
    auto bias = chance(rng, 0.8) ? s32_bias(rng, out_f, in_f << (bits.in + bits.w - 3)) : nullptr;
    auto y = s8_output(rng, {rows, out_f}, output_scale_for(rng, s_in, s_w, in_f, bits), bits.out);
    const std::string what = "case " + std::to_string(i) + " x" + str(x_shape) + " w" + str(wt->t.shape());
    check_s8(*one, *two, op, {&x->t, &wt->t, bias ? &bias->t : nullptr}, *y, &stats, what);
  }
  CHECK(stats.handled >= cases * 9 / 10);
}

TEST_CASE("xnnpack s8: conv weights are counted unpacked (int8) with their bias and scales") {
  std::mt19937 rng(7);
  auto runner = make_runner(1);
  Operator op;
  op.type = OpType::kConv2D;
  op.name = "conv_4bit";
  auto x = s8_activation(rng, {1, 5, 5, 6}, 0.02f, 8);
  auto wt = s8_weights(rng, {8, 3, 3, 6}, 4, 0, std::vector<float>(8, 0.01f));
  auto bias = s32_bias(rng, 8, 1000);
  auto y = s8_output(rng, {1, 3, 3, 8}, 0.05f, 8);
  TestTensor out({1, 3, 3, 8}, DType::kInt8);
  out.view.quant = &y->q;
  REQUIRE(run_xnnpack(*runner, op, {&x->t, &wt->t, &bias->t}, out));
  CHECK(runner->packed_weight_bytes() == size_t(8 * 3 * 3 * 6 + 8 * 4 + 8 * 4));
}

TEST_CASE("xnnpack s8: conv with a requantization scale XNNPACK rejects stays on the reference") {
  std::mt19937 rng(8);
  auto runner = make_runner(1);
  Operator op;
  op.type = OpType::kFullyConnected;
  op.name = "fc_huge_scale";
  auto x = s8_activation(rng, {2, 4}, 1.0f, 8);
  auto wt = s8_weights(rng, {3, 4}, 8, 0, std::vector<float>(3, 1.0f));
  auto y = s8_output(rng, {2, 3}, 1.0f / 512.0f, 8);  // s_in * s_w / s_out = 512 >= 256
  TestTensor out({2, 3}, DType::kInt8);
  out.view.quant = &y->q;
  CHECK_FALSE(run_xnnpack(*runner, op, {&x->t, &wt->t}, out));
  CHECK(runner->packed_weight_bytes() == 0);
}

}  // namespace xnnpack_test
}  // namespace tinyquant
