// Bilinear Resize and per-channel PRelu on XNNPACK against the reference; nearest Resize, scales
// XNNPACK would compute differently, and broadcast slopes fall back.
#include "xnnpack/xnnpack_test_util.h"

namespace tinyquant {
namespace xnnpack_test {

TEST_CASE("xnnpack: bilinear Resize matches the reference (half-pixel, align-corners, asymmetric)") {
  std::mt19937 rng(3201);
  auto runner = make_runner(1);
  ErrorStats stats{"Resize"};
  const ResizeCoord coords[] = {ResizeCoord::kHalfPixel, ResizeCoord::kPytorchHalfPixel, ResizeCoord::kAlignCorners,
                                ResizeCoord::kAsymmetric};
  for (int iter = 0; iter < 120; ++iter) {
    const int32_t n = uniform_int(rng, 1, 2), h = uniform_int(rng, 1, 7), w = uniform_int(rng, 1, 7),
                  c = uniform_int(rng, 1, 9);
    Operator op;
    op.type = OpType::kResize;
    op.name = "resize" + std::to_string(iter);
    op.mutable_resize().mode = iter % 5 == 4 ? ResizeMode::kNearest : ResizeMode::kLinear;
    op.mutable_resize().coord = coords[iter % 4];
    op.mutable_resize().out_h = uniform_int(rng, 1, 15);
    op.mutable_resize().out_w = uniform_int(rng, 1, 15);
    op.mutable_resize().scale_h = static_cast<float>(op.resize().out_h) / h;
    op.mutable_resize().scale_w = static_cast<float>(op.resize().out_w) / w;
    const bool odd_scale = iter % 7 == 6;  // a model scale that is not out / in: the reference's
    if (odd_scale) op.mutable_resize().scale_w *= 1.1f;
    TestTensor x({n, h, w, c});
    x.uniform(rng, -3, 3);
    const std::vector<int32_t> out = {n, op.resize().out_h, op.resize().out_w, c};
    TestTensor got(out), want(out);
    ++stats.cases;
    const bool handled = run_xnnpack(*runner, op, {&x}, got);
    const bool expected = op.resize().mode == ResizeMode::kLinear &&
                          (op.resize().coord == ResizeCoord::kAlignCorners || !odd_scale) &&
                          !(op.resize().coord == ResizeCoord::kPytorchHalfPixel &&
                            (op.resize().out_h == 1 || op.resize().out_w == 1));
    CHECK(handled == expected);
    runner->reset();
    if (!handled) continue;
    ++stats.handled;
    run_reference(op, {&x}, want);
    for (int64_t i = 0; i < want.size(); ++i) {
      const double err = std::fabs(double(got[i]) - want[i]);
      stats.max_abs = std::max(stats.max_abs, err);
      if (!(err <= 2e-6 * 3.0)) FAIL_CHECK("element " << i << ": xnnpack " << got[i] << " reference " << want[i]);
    }
  }
}

TEST_CASE("xnnpack: PRelu with a per-channel slope matches the reference bit for bit") {
  std::mt19937 rng(3202);
  auto runner = make_runner(1);
  ErrorStats stats{"PRelu"};
  for (int iter = 0; iter < 60; ++iter) {
    const int32_t c = uniform_int(rng, 1, 17);
    const std::vector<int32_t> shape = {uniform_int(rng, 1, 3), uniform_int(rng, 1, 5), c};
    TestTensor x(shape), slope(iter % 3 == 2 ? std::vector<int32_t>{1} : std::vector<int32_t>{c});
    x.uniform(rng, -2, 2);
    slope.uniform(rng, -1, 1);
    Operator op;
    op.type = OpType::kPRelu;
    op.name = "prelu" + std::to_string(iter);
    const bool handled = check_op(*runner, op, {&x, &slope}, shape, 0, &stats, "prelu");
    CHECK(handled == (iter % 3 != 2 || c == 1));  // a scalar slope broadcast over C > 1 falls back
    runner->reset();
  }
}

}  // namespace xnnpack_test
}  // namespace tinyquant

namespace tinyquant {
namespace xnnpack_test {

TEST_CASE("xnnpack: ConvTranspose (deconvolution) matches the reference on random shapes") {
  std::mt19937 rng(3203);
  auto runner = make_runner(1);
  ErrorStats stats{"ConvTranspose"};
  for (int iter = 0; iter < 80; ++iter) {
    Operator op;
    op.type = OpType::kConvTranspose;
    op.name = "ct" + std::to_string(iter);
    ConvOptions& o = op.mutable_conv();
    o.groups = uniform_int(rng, 1, 2);
    o.stride_h = uniform_int(rng, 1, 3);
    o.stride_w = uniform_int(rng, 1, 3);
    o.dilation_h = uniform_int(rng, 1, 2);
    const int32_t kh = uniform_int(rng, 1, 4), kw = uniform_int(rng, 1, 4);
    o.padding = {uniform_int(rng, 0, kh - 1), uniform_int(rng, 0, kw - 1), uniform_int(rng, 0, kh - 1),
                 uniform_int(rng, 0, kw - 1)};
    o.output_pad_h = uniform_int(rng, 0, o.stride_h - 1);
    o.output_pad_w = uniform_int(rng, 0, o.stride_w - 1);
    op.activation = random_activation(rng);
    const int32_t n = uniform_int(rng, 1, 2), h = uniform_int(rng, 1, 6), w = uniform_int(rng, 1, 6);
    const int32_t gi = uniform_int(rng, 1, 5), go = uniform_int(rng, 1, 5);
    const int32_t oh = (h - 1) * o.stride_h - o.padding.top - o.padding.bottom + o.dilation_h * (kh - 1) + 1 + o.output_pad_h;
    const int32_t ow = (w - 1) * o.stride_w - o.padding.left - o.padding.right + (kw - 1) + 1 + o.output_pad_w;
    if (oh < 1 || ow < 1) continue;
    TestTensor x({n, h, w, gi * o.groups}), wt({go * o.groups, kh, kw, gi}), b({go * o.groups});
    x.uniform(rng, -1, 1);
    wt.uniform(rng, -1, 1);
    b.uniform(rng, -1, 1);
    const std::string what = "ConvTranspose " + str(x.shape()) + " k " + std::to_string(kh) + "x" + std::to_string(kw);
    CHECK_MESSAGE(check_op(*runner, op, {&x, &wt, &b}, {n, oh, ow, go * o.groups}, double(kh) * kw * gi, &stats, what),
                  what);
    runner->reset();
  }
}

}  // namespace xnnpack_test
}  // namespace tinyquant
