// The XNNPACK runner itself: what falls back to the reference, error reporting, weight
// accounting, and threads = 2 against threads = 1.
#include <cstring>

#include "xnnpack/xnnpack_test_util.h"

namespace tinyquant {
namespace xnnpack_test {
namespace {

// Prepares op and returns the status; *handled and *handle as the runner left them.
Status prepare(xnnpack::Runner& runner, const Operator& op, const std::vector<TensorView>& inputs,
               const TensorView& output, bool* handled, int* handle) {
  *handled = true;
  *handle = 123;
  return runner.prepare_op(op, inputs.data(), static_cast<int>(inputs.size()), &output, 1, handled, handle);
}

void expect_fallback(xnnpack::Runner& runner, const Operator& op, const std::vector<TensorView>& inputs,
                     const TensorView& output) {
  bool handled = true;
  int handle = 0;
  const Status status = prepare(runner, op, inputs, output, &handled, &handle);
  CHECK_MESSAGE(status.is_ok(), std::string(status.message()));
  CHECK_MESSAGE(!handled, op.name);
  CHECK(handle == -1);
}

Operator make_op(OpType type, const char* name) {
  Operator op;
  op.type = type;
  op.name = name;
  return op;
}

TEST_CASE("xnnpack: unsupported ops and options fall back to the reference") {
  auto runner = make_runner(1);
  TestTensor x({1, 4, 4, 2}), y({1, 4, 4, 2}), w({2, 1, 1, 2}), flat({32}), xt({1, 2, 4, 4});
  TestTensor i8_in({1, 4, 4, 2}, DType::kInt8), i8_out({1, 4, 4, 2}, DType::kInt8), empty({0, 4, 4, 2});

  SUBCASE("Transpose: no XNNPACK operator in this version") {
    Operator op = make_op(OpType::kTranspose, "transpose");
    op.mutable_perm() = {0, 3, 1, 2};
    expect_fallback(*runner, op, {x.view}, xt.view);
  }
  SUBCASE("Slice, LayerNorm and nearest Resize: no XNNPACK operator in this version") {
    Operator slice = make_op(OpType::kSlice, "slice");
    slice.mutable_slice() = {{0, 0, 0, 0}, {kSliceToEnd, 2, kSliceToEnd, kSliceToEnd}, {1, 1, 1, 1}};
    TestTensor half({1, 2, 4, 2});
    expect_fallback(*runner, slice, {x.view}, half.view);
    expect_fallback(*runner, slice, {i8_in.view}, i8_out.view);
    TestTensor gamma({2}), beta({2});
    expect_fallback(*runner, make_op(OpType::kLayerNorm, "layernorm"), {x.view, gamma.view, beta.view}, y.view);
    Operator resize = make_op(OpType::kResize, "resize_nearest");
    resize.mutable_resize().out_h = resize.mutable_resize().out_w = 4;
    expect_fallback(*runner, resize, {x.view}, y.view);
    resize.mutable_resize().mode = ResizeMode::kLinear;  // int8 bilinear: the reference's
    expect_fallback(*runner, resize, {i8_in.view}, i8_out.view);
  }
  SUBCASE("Softmax with beta != 1") {
    Operator op = make_op(OpType::kSoftmax, "softmax_beta");
    op.beta = 2.0f;
    expect_fallback(*runner, op, {x.view}, y.view);
  }
  SUBCASE("int8 tensors") {
    expect_fallback(*runner, make_op(OpType::kConv2D, "conv_i8"), {i8_in.view, w.view}, i8_out.view);
    expect_fallback(*runner, make_op(OpType::kAdd, "add_i8"), {i8_in.view, i8_in.view}, i8_out.view);
    expect_fallback(*runner, make_op(OpType::kReshape, "reshape_i8"), {i8_in.view}, i8_out.view);
    Operator concat = make_op(OpType::kConcat, "concat_i8");
    concat.axis = 3;
    expect_fallback(*runner, concat, {i8_in.view}, i8_out.view);
  }
  SUBCASE("float32 views that carry quantization parameters") {
    Quantization q;
    q.scale = {0.5f, 0.25f};
    q.zero_point = {0, 0};
    q.axis = 0;
    TensorView quantized_weights = w.view;
    quantized_weights.quant = &q;
    expect_fallback(*runner, make_op(OpType::kConv2D, "conv_qw"), {x.view, quantized_weights}, y.view);
  }
  SUBCASE("a clamp XNNPACK cannot express (min == max)") {
    Operator clamp = make_op(OpType::kClamp, "clip_point");
    clamp.activation = FusedActivation::clip(1.0f, 1.0f);
    expect_fallback(*runner, clamp, {x.view}, y.view);
    Operator conv = make_op(OpType::kConv2D, "conv_clip_point");
    conv.activation = FusedActivation::clip(0.0f, 0.0f);
    expect_fallback(*runner, conv, {x.view, w.view}, y.view);
  }
  SUBCASE("1x1 pooling windows and dilated average pooling") {
    Operator max = make_op(OpType::kMaxPool2D, "max1x1");
    expect_fallback(*runner, max, {x.view}, y.view);
    Operator avg = make_op(OpType::kAveragePool2D, "avg1x1");
    expect_fallback(*runner, avg, {x.view}, y.view);
    avg.name = "avg_dilated";
    avg.mutable_pool().kernel_h = avg.mutable_pool().kernel_w = 2;
    avg.mutable_pool().dilation_h = 2;
    TestTensor pooled({1, 2, 3, 2});
    expect_fallback(*runner, avg, {x.view}, pooled.view);
  }
  SUBCASE("pooling windows wholly in padding (padding >= kernel; validate_graph forbids it)") {
    Operator avg = make_op(OpType::kAveragePool2D, "avg_all_padding");
    avg.mutable_pool().kernel_h = avg.mutable_pool().kernel_w = 2;
    avg.mutable_pool().stride_h = avg.mutable_pool().stride_w = 2;
    avg.mutable_pool().padding = {2, 0, 0, 0};  // output row 0 sees only padding
    TestTensor pooled({1, 3, 2, 2});
    expect_fallback(*runner, avg, {x.view}, pooled.view);
    Operator max = avg;
    max.type = OpType::kMaxPool2D;
    max.name = "max_all_padding";
    expect_fallback(*runner, max, {x.view}, pooled.view);
  }
  SUBCASE("empty tensors") {
    expect_fallback(*runner, make_op(OpType::kClamp, "clamp_empty"), {empty.view}, empty.view);
  }
  CHECK(runner->packed_weight_bytes() == 0);
}

TEST_CASE("xnnpack: an XNNPACK failure is a status naming the op and the call") {
  auto runner = make_runner(1);
  // Dilation 0 passes our shape check (the window is one pixel) but XNNPACK rejects it.
  TestTensor x({1, 4, 4, 2}), w({3, 2, 2, 2}), y({1, 4, 4, 3});
  Operator op = make_op(OpType::kConv2D, "bad_dilation");
  op.mutable_conv().dilation_h = op.mutable_conv().dilation_w = 0;
  bool handled = false;
  int handle = 0;
  const Status status = prepare(*runner, op, {x.view, w.view}, y.view, &handled, &handle);
  REQUIRE_FALSE(status.is_ok());
  CHECK(status.code() == StatusCode::kInternal);
  CHECK(std::strstr(status.message(), "bad_dilation") != nullptr);
  CHECK(std::strstr(status.message(), "xnn_create_convolution2d_nhwc_f32") != nullptr);
  CHECK(std::strstr(status.message(), "invalid parameter") != nullptr);
  CHECK_FALSE(handled);
  CHECK(runner->packed_weight_bytes() == 0);
  MESSAGE("example: " << std::string(status.message()));

  const Status run = runner->run(0);
  CHECK(run.code() == StatusCode::kInvalidArgument);
}

TEST_CASE("xnnpack: views that disagree with the op are rejected before XNNPACK writes") {
  auto runner = make_runner(1);
  TestTensor x({1, 5, 5, 2}), w({3, 3, 3, 2}), wrong({1, 5, 5, 3});  // valid conv output is [1,3,3,3]
  bool handled = true;
  int handle = 0;
  const Status status =
      prepare(*runner, make_op(OpType::kConv2D, "conv_wrong_out"), {x.view, w.view}, wrong.view, &handled, &handle);
  CHECK(status.code() == StatusCode::kInvalidArgument);
  CHECK(std::strstr(status.message(), "conv_wrong_out") != nullptr);
  CHECK_FALSE(handled);
}

TEST_CASE("xnnpack: packed_weight_bytes counts weights and bias handed to XNNPACK") {
  auto runner = make_runner(1);
  TestTensor x({1, 6, 6, 4}), w({8, 3, 3, 4}), b({8}), y({1, 4, 4, 8});
  TestTensor fx({2, 10}), fw({5, 10}), fy({2, 5});
  bool handled = false;
  int handle = -1;
  REQUIRE(
      prepare(*runner, make_op(OpType::kConv2D, "conv"), {x.view, w.view, b.view}, y.view, &handled, &handle).is_ok());
  REQUIRE(handled);
  CHECK(runner->packed_weight_bytes() == (8 * 3 * 3 * 4 + 8) * sizeof(float));
  REQUIRE(
      prepare(*runner, make_op(OpType::kFullyConnected, "fc"), {fx.view, fw.view}, fy.view, &handled, &handle).is_ok());
  REQUIRE(handled);
  CHECK(runner->packed_weight_bytes() == (8 * 3 * 3 * 4 + 8 + 5 * 10) * sizeof(float));
  CHECK(handle == 1);
  runner->reset();
  CHECK(runner->packed_weight_bytes() == 0);
  CHECK(runner->run(0).code() == StatusCode::kInvalidArgument);
}

// Two threads split the work differently (tiles, rows) but never the order within one output's
// reduction in practice; we only require the reassociation bound of xnnpack_test_util.h.
TEST_CASE("xnnpack: threads = 2 agrees with threads = 1") {
  std::mt19937 rng(7001);
  auto one = make_runner(1);
  auto two = make_runner(2);
  ErrorStats stats{"threads=2 vs threads=1"};
  int identical = 0;
  for (int iter = 0; iter < 40; ++iter) {
    const int32_t n = uniform_int(rng, 1, 4), h = uniform_int(rng, 6, 20), w = uniform_int(rng, 6, 20);
    const int32_t c = uniform_int(rng, 1, 48), o = uniform_int(rng, 1, 48);
    TestTensor x({n, h, w, c}), weights({o, 3, 3, c}), dw_weights({1, 3, 3, c}), bias({o}), dw_bias({c});
    TestTensor fc_weights({o, h * w * c});
    for (TestTensor* t : {&x, &weights, &dw_weights, &bias, &dw_bias, &fc_weights}) t->uniform(rng, -1, 1);

    struct Case {
      Operator op;
      std::vector<const TestTensor*> inputs;
      std::vector<int32_t> out;
      double terms;
    };
    std::vector<Case> cases;
    Operator conv = make_op(OpType::kConv2D, "conv");
    conv.mutable_conv().padding = {1, 1, 1, 1};
    conv.mutable_conv().stride_h = conv.mutable_conv().stride_w = 1 + iter % 2;
    conv.activation = FusedActivation::relu();
    const int32_t oh = (h - 1) / conv.conv().stride_h + 1, ow = (w - 1) / conv.conv().stride_w + 1;
    cases.push_back({conv, {&x, &weights, &bias}, {n, oh, ow, o}, 9.0 * c});
    Operator dw = conv;
    dw.type = OpType::kDepthwiseConv2D;
    dw.name = "dw";
    cases.push_back({dw, {&x, &dw_weights, &dw_bias}, {n, oh, ow, c}, 9.0});
    cases.push_back({make_op(OpType::kFullyConnected, "fc"), {&x, &fc_weights, &bias}, {n, o}, double(h) * w * c});
    Operator avg = make_op(OpType::kAveragePool2D, "avg");
    avg.mutable_pool().kernel_h = avg.mutable_pool().kernel_w = 3;
    avg.mutable_pool().padding = {1, 1, 1, 1};
    cases.push_back({avg, {&x}, {n, h, w, c}, 9.0});
    cases.push_back({make_op(OpType::kGlobalAveragePool, "gap"), {&x}, {n, 1, 1, c}, double(h) * w});
    cases.push_back({make_op(OpType::kAdd, "add"), {&x, &dw_bias}, {n, h, w, c}, 0.0});
    Operator max = make_op(OpType::kMaxPool2D, "max");
    max.mutable_pool().kernel_h = max.mutable_pool().kernel_w = 2;
    max.mutable_pool().stride_h = max.mutable_pool().stride_w = 2;
    cases.push_back({max, {&x}, {n, h / 2, w / 2, c}, 0.0});

    for (const Case& cs : cases) {
      TestTensor a(cs.out), b(cs.out);
      REQUIRE(run_xnnpack(*one, cs.op, cs.inputs, a));
      REQUIRE(run_xnnpack(*two, cs.op, cs.inputs, b));
      ++stats.cases;
      ++stats.handled;
      identical += std::memcmp(a.f32(), b.f32(), sizeof(float) * a.size()) == 0;
      if (cs.terms > 0) {
        const auto scale = magnitude(cs.op, cs.inputs, cs.out);
        expect_close(b, a, scale.get(), 2.0 * (cs.terms + 2.0) * kUnitRoundoff, &stats, cs.op.name);
      } else {
        expect_close(b, a, nullptr, 0.0, &stats, cs.op.name);
      }
    }
    Operator softmax = make_op(OpType::kSoftmax, "softmax");
    TestTensor sa(x.shape()), sb(x.shape());
    REQUIRE(run_xnnpack(*one, softmax, {&x}, sa));
    REQUIRE(run_xnnpack(*two, softmax, {&x}, sb));
    ++stats.cases;
    ++stats.handled;
    identical += std::memcmp(sa.f32(), sb.f32(), sizeof(float) * sa.size()) == 0;
    expect_close(sb, sa, &sa, (2.0 * c + 24.0) * kUnitRoundoff, &stats, "softmax");
    one->reset();
    two->reset();
  }
  MESSAGE(identical << " of " << stats.cases << " threads=2 outputs identical to threads=1");
}

}  // namespace
}  // namespace xnnpack_test
}  // namespace tinyquant
