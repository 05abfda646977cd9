// Hand-built graphs for the .tqm tests, and a field-by-field graph comparison.
#pragma once

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "tinyquant/graph.h"

namespace tinyquant {
namespace testing {

// A float constant with small deterministic values.
inline int32_t add_f32(Graph& g, const char* name, std::vector<int32_t> shape) {
  std::vector<float> v(size_t(shape_elements(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.05f * float(int(i * 7 % 11) - 5);
  return g.add_constant(name, DType::kFloat32, std::move(shape), v.data(), v.size() * sizeof(float));
}

inline Operator make_op(OpType type, const char* name, std::vector<int32_t> inputs, int32_t output) {
  Operator op;
  op.type = type;
  op.name = name;
  op.inputs = std::move(inputs);
  op.outputs = {output};
  return op;
}

// Conv (fused ReLU) -> Reshape -> FullyConnected -> Softmax on [-1,4,4,2] inputs, plus "fc/w_q4":
// the FC weights quantized per channel to 4 bits and bit-packed. The reference backend runs
// float only, so the quantized twin is carried, not consumed.
inline Graph make_small_graph(int32_t q4_bits = 4) {
  Graph g;
  g.producer = "tinyquant schema tests";
  g.metadata = {{"task", "unit test"}, {"classes", "5"}};
  const int32_t x = g.add_tensor("input", DType::kFloat32, {-1, 4, 4, 2});
  const int32_t cw = add_f32(g, "conv/w", {3, 3, 3, 2});
  const int32_t cb = add_f32(g, "conv/b", {3});
  const int32_t conv = g.add_tensor("conv", DType::kFloat32, {-1, 4, 4, 3});
  Operator op = make_op(OpType::kConv2D, "conv", {x, cw, cb}, conv);
  op.mutable_conv().padding = {1, 1, 1, 1};
  op.activation = FusedActivation::relu();
  g.add_operator(op);

  const int32_t flat = g.add_tensor("flat", DType::kFloat32, {-1, 48});
  op = make_op(OpType::kReshape, "flatten", {conv}, flat);
  op.mutable_new_shape() = {0, -1};
  g.add_operator(op);

  const int32_t fw = add_f32(g, "fc/w", {5, 48});
  const int32_t fb = add_f32(g, "fc/b", {5});
  const int32_t logits = g.add_tensor("logits", DType::kFloat32, {-1, 5});
  g.add_operator(make_op(OpType::kFullyConnected, "fc", {flat, fw, fb}, logits));

  const int32_t probs = g.add_tensor("probs", DType::kFloat32, {-1, 5});
  g.add_operator(make_op(OpType::kSoftmax, "softmax", {logits}, probs));

  std::vector<uint8_t> packed(size_t(5 * 48 * q4_bits + 7) / 8);
  for (size_t i = 0; i < packed.size(); ++i) packed[i] = uint8_t(i * 37 + 11);
  const int32_t q4 = g.add_constant("fc/w_q4", DType::kInt8, {5, 48}, packed.data(), packed.size());
  Quantization& q = g.tensors[q4].quant;
  q.scale = {0.01f, 0.02f, 0.03f, 0.04f, 0.05f};
  q.zero_point = {0, 0, 0, 0, 0};
  q.axis = 0;
  q.bits = q4_bits;

  g.inputs = {x};
  g.outputs = {probs};
  return g;
}

// Every op type once, with non-default options, so each options table round-trips.
inline Graph make_every_op_graph() {
  Graph g;
  g.producer = "every op";
  const int32_t x = g.add_tensor("x", DType::kFloat32, {-1, 6, 6, 4});

  const int32_t dw_out = g.add_tensor("dw", DType::kFloat32, {-1, 6, 6, 8});
  Operator op = make_op(OpType::kDepthwiseConv2D, "dw",
                        {x, add_f32(g, "dw/w", {1, 3, 3, 8}), add_f32(g, "dw/b", {8})}, dw_out);
  op.mutable_conv().padding = {1, 1, 1, 1};
  op.mutable_conv().depth_multiplier = 2;
  op.activation = FusedActivation::relu6();
  g.add_operator(op);

  const int32_t gc = g.add_tensor("grouped", DType::kFloat32, {-1, 4, 4, 8});
  op = make_op(OpType::kConv2D, "grouped", {dw_out, add_f32(g, "grouped/w", {8, 1, 1, 4}), -1}, gc);
  op.mutable_conv().stride_h = op.mutable_conv().stride_w = 2;
  op.mutable_conv().padding = {0, 0, 1, 1};
  op.mutable_conv().groups = 2;
  op.activation = FusedActivation::clip(-1.0f, 1.0f);
  g.add_operator(op);

  const int32_t mp = g.add_tensor("maxpool", DType::kFloat32, {-1, 2, 2, 8});
  op = make_op(OpType::kMaxPool2D, "maxpool", {gc}, mp);
  op.mutable_pool().kernel_h = op.mutable_pool().kernel_w = 2;
  op.mutable_pool().stride_h = op.mutable_pool().stride_w = 2;
  g.add_operator(op);

  const int32_t ap = g.add_tensor("avgpool", DType::kFloat32, {-1, 2, 2, 8});
  op = make_op(OpType::kAveragePool2D, "avgpool", {mp}, ap);
  op.mutable_pool().kernel_h = op.mutable_pool().kernel_w = 3;
  op.mutable_pool().padding = {1, 1, 1, 1};
  op.mutable_pool().count_include_pad = true;
  g.add_operator(op);

  const int32_t sum = g.add_tensor("add", DType::kFloat32, {-1, 2, 2, 8});
  op = make_op(OpType::kAdd, "add", {mp, ap}, sum);
  op.activation = FusedActivation::relu();
  g.add_operator(op);

  const int32_t prod = g.add_tensor("mul", DType::kFloat32, {-1, 2, 2, 8});
  g.add_operator(make_op(OpType::kMul, "mul", {sum, add_f32(g, "mul/scale", {8})}, prod));

  const int32_t hsig = g.add_tensor("hardsigmoid", DType::kFloat32, {-1, 2, 2, 8});
  op = make_op(OpType::kUnary, "hardsigmoid", {prod}, hsig);
  op.mutable_unary() = {UnaryKind::kHardSigmoid, 0.25f, 0.375f};
  g.add_operator(op);

  const int32_t diff = g.add_tensor("sub", DType::kFloat32, {-1, 2, 2, 8});
  op = make_op(OpType::kSub, "sub", {hsig, add_f32(g, "sub/shift", {8})}, diff);
  op.activation = FusedActivation::relu6();
  g.add_operator(op);

  const int32_t quot = g.add_tensor("div", DType::kFloat32, {-1, 2, 2, 8});
  g.add_operator(make_op(OpType::kDiv, "div", {diff, add_f32(g, "div/scale", {1})}, quot));

  const int32_t up = g.add_tensor("resize", DType::kFloat32, {-1, 5, 3, 8});
  op = make_op(OpType::kResize, "resize", {quot}, up);
  op.mutable_resize() = {ResizeMode::kLinear, ResizeCoord::kAlignCorners, ResizeNearest::kCeil, 5, 3, 2.5f, 1.5f};
  g.add_operator(op);

  const int32_t sliced = g.add_tensor("slice", DType::kFloat32, {-1, 2, 2, 8});
  op = make_op(OpType::kSlice, "slice", {up}, sliced);
  op.mutable_slice() = {{0, 1, 0, 0}, {kSliceToEnd, 5, 3, 8}, {1, 2, 2, 1}};
  g.add_operator(op);

  const int32_t pr = g.add_tensor("prelu", DType::kFloat32, {-1, 2, 2, 8});
  g.add_operator(make_op(OpType::kPRelu, "prelu", {sliced, add_f32(g, "prelu/slope", {8})}, pr));

  const int32_t ln = g.add_tensor("layernorm", DType::kFloat32, {-1, 2, 2, 8});
  op = make_op(OpType::kLayerNorm, "layernorm", {pr, add_f32(g, "ln/scale", {8}), add_f32(g, "ln/bias", {8})}, ln);
  op.epsilon = 1e-3f;
  g.add_operator(op);

  const int32_t ct = g.add_tensor("convtranspose", DType::kFloat32, {-1, 3, 3, 8});
  op = make_op(OpType::kConvTranspose, "convtranspose",
               {ln, add_f32(g, "ct/w", {8, 2, 2, 4}), add_f32(g, "ct/b", {8})}, ct);
  op.mutable_conv().stride_h = op.mutable_conv().stride_w = 2;
  op.mutable_conv().padding = {1, 1, 1, 1};
  op.mutable_conv().groups = 2;
  op.mutable_conv().output_pad_h = 1;
  op.mutable_conv().output_pad_w = 1;
  g.add_operator(op);

  const int32_t clamped = g.add_tensor("clamp", DType::kFloat32, {-1, 3, 3, 8});
  op = make_op(OpType::kClamp, "clamp", {ct}, clamped);
  op.activation = FusedActivation::clip(-2.0f, 2.0f);
  g.add_operator(op);

  const int32_t gap = g.add_tensor("gap", DType::kFloat32, {-1, 1, 1, 8});
  g.add_operator(make_op(OpType::kGlobalAveragePool, "gap", {clamped}, gap));

  const int32_t tr = g.add_tensor("transpose", DType::kFloat32, {-1, 8, 1, 1});
  op = make_op(OpType::kTranspose, "transpose", {gap}, tr);
  op.mutable_perm() = {0, 3, 1, 2};
  g.add_operator(op);

  const int32_t flat = g.add_tensor("flat", DType::kFloat32, {-1, 8});
  op = make_op(OpType::kReshape, "flat", {tr}, flat);
  op.mutable_new_shape() = {0, -1};
  g.add_operator(op);

  const int32_t cat = g.add_tensor("concat", DType::kFloat32, {-1, 16});
  op = make_op(OpType::kConcat, "concat", {flat, flat}, cat);
  op.axis = 1;
  g.add_operator(op);

  const int32_t logits = g.add_tensor("logits", DType::kFloat32, {-1, 3});
  g.add_operator(make_op(OpType::kFullyConnected, "fc", {cat, add_f32(g, "fc/w", {3, 16})}, logits));

  const int32_t probs = g.add_tensor("probs", DType::kFloat32, {-1, 3});
  op = make_op(OpType::kSoftmax, "softmax", {logits}, probs);
  op.beta = 0.5f;
  g.add_operator(op);

  g.inputs = {x};
  g.outputs = {probs};
  return g;
}

// make_small_graph() plus what a quant/ pipeline leaves behind: a second quantized weight
// ("conv/w_q8", int8 per tensor), float master copies of both quantized weights (fc/w_q4 as
// float32, conv/w_q8 as float16) in buffers no tensor uses, and a calibration record with every
// field set (64-bit values above 2^32, a JSON report with escapes and UTF-8).
inline Graph make_quantized_graph() {
  Graph g = make_small_graph();
  g.producer = "tinyquant schema tests (quantized)";
  int32_t fc_q4 = -1;
  for (size_t i = 0; i < g.tensors.size(); ++i)
    if (g.tensors[i].name == "fc/w_q4") fc_q4 = int32_t(i);
  std::vector<int8_t> q8(3 * 3 * 3 * 2);
  for (size_t i = 0; i < q8.size(); ++i) q8[i] = int8_t(int(i * 29 % 255) - 127);
  const int32_t conv_q8 = g.add_constant("conv/w_q8", DType::kInt8, {3, 3, 3, 2}, q8.data(), q8.size());
  g.tensors[conv_q8].quant.scale = {0.004f};

  Buffer fp32;  // 5 x 48 float32
  for (int i = 0; i < 5 * 48; ++i) {
    const float v = 0.01f * float(i % 17 - 8);
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    fp32.owned.insert(fp32.owned.end(), p, p + 4);
  }
  g.buffers.push_back(std::move(fp32));
  g.master_weights.push_back({fc_q4, false, int32_t(g.buffers.size() - 1)});
  Buffer fp16;  // 54 IEEE halves; the loader does not interpret them, any bit pattern will do
  for (int i = 0; i < 54; ++i) {
    const uint16_t h = uint16_t(0x3c00 + i * 0x0101);
    fp16.owned.push_back(uint8_t(h & 0xff));
    fp16.owned.push_back(uint8_t(h >> 8));
  }
  g.buffers.push_back(std::move(fp16));
  g.master_weights.push_back({conv_q8, true, int32_t(g.buffers.size() - 1)});

  CalibrationRecord& c = g.calibration;
  c.present = true;
  c.pipeline = "advanced";
  c.weight_bits = {8, 4, 2};
  c.activation_bits = {8, 8, 6};
  c.budget_bytes = (uint64_t(1) << 40) + 3;
  c.seed = 0xfeedfacecafebeefull;
  c.calibration_samples = 4000000000u;
  c.dataset = "fashion-mnist train[0:512]";
  static const char kReport[] =
      "{\"layers\":[{\"name\":\"fc\",\"bits\":4,\"mse\":1.5e-3}],"
      "\"note\":\"caf\xc3\xa9 \\\"q\\\"\\n\",\"nul\":\"\\u0000\"}";
  c.report_json.assign(kReport, sizeof(kReport) - 1);
  return g;
}

inline void check_same_padding(const Padding& a, const Padding& b) {
  CHECK(a.top == b.top);
  CHECK(a.left == b.left);
  CHECK(a.bottom == b.bottom);
  CHECK(a.right == b.right);
}

// Every field of both graphs, buffers byte for byte (owned or borrowed alike).
inline void check_same_graph(const Graph& a, const Graph& b) {
  CHECK(a.producer == b.producer);
  CHECK(a.metadata == b.metadata);
  CHECK(a.inputs == b.inputs);
  CHECK(a.outputs == b.outputs);
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const Tensor& x = a.tensors[i];
    const Tensor& y = b.tensors[i];
    CAPTURE(x.name);
    CHECK(x.name == y.name);
    CHECK(x.dtype == y.dtype);
    CHECK(x.shape == y.shape);
    CHECK(x.buffer == y.buffer);
    CHECK(x.quant.scale == y.quant.scale);
    // Empty means all zero (the writer leaves all-zero zero points out since version 2).
    std::vector<int32_t> zx = x.quant.zero_point, zy = y.quant.zero_point;
    if (zx.empty()) zx.assign(zy.size(), 0);
    if (zy.empty()) zy.assign(zx.size(), 0);
    CHECK(zx == zy);
    CHECK(x.quant.axis == y.quant.axis);
    CHECK(x.quant.bits == y.quant.bits);
  }
  REQUIRE(a.operators.size() == b.operators.size());
  for (size_t i = 0; i < a.operators.size(); ++i) {
    const Operator& x = a.operators[i];
    const Operator& y = b.operators[i];
    CAPTURE(x.name);
    CHECK(x.type == y.type);
    CHECK(x.name == y.name);
    CHECK(x.inputs == y.inputs);
    CHECK(x.outputs == y.outputs);
    CHECK(x.conv().stride_h == y.conv().stride_h);
    CHECK(x.conv().stride_w == y.conv().stride_w);
    CHECK(x.conv().dilation_h == y.conv().dilation_h);
    CHECK(x.conv().dilation_w == y.conv().dilation_w);
    check_same_padding(x.conv().padding, y.conv().padding);
    CHECK(x.conv().groups == y.conv().groups);
    CHECK(x.conv().depth_multiplier == y.conv().depth_multiplier);
    CHECK(x.conv().output_pad_h == y.conv().output_pad_h);
    CHECK(x.conv().output_pad_w == y.conv().output_pad_w);
    CHECK(x.pool().kernel_h == y.pool().kernel_h);
    CHECK(x.pool().kernel_w == y.pool().kernel_w);
    CHECK(x.pool().stride_h == y.pool().stride_h);
    CHECK(x.pool().stride_w == y.pool().stride_w);
    CHECK(x.pool().dilation_h == y.pool().dilation_h);
    CHECK(x.pool().dilation_w == y.pool().dilation_w);
    check_same_padding(x.pool().padding, y.pool().padding);
    CHECK(x.pool().count_include_pad == y.pool().count_include_pad);
    CHECK(x.activation.type == y.activation.type);
    CHECK(x.activation.min == y.activation.min);
    CHECK(x.activation.max == y.activation.max);
    CHECK(x.new_shape() == y.new_shape());
    CHECK(x.perm() == y.perm());
    CHECK(x.axis == y.axis);
    CHECK(x.beta == y.beta);
    CHECK(x.unary().kind == y.unary().kind);
    CHECK(x.unary().alpha == y.unary().alpha);
    CHECK(x.unary().beta == y.unary().beta);
    CHECK(x.slice().begin == y.slice().begin);
    CHECK(x.slice().end == y.slice().end);
    CHECK(x.slice().step == y.slice().step);
    CHECK(x.resize().mode == y.resize().mode);
    CHECK(x.resize().coord == y.resize().coord);
    CHECK(x.resize().nearest == y.resize().nearest);
    CHECK(x.resize().out_h == y.resize().out_h);
    CHECK(x.resize().out_w == y.resize().out_w);
    CHECK(x.resize().scale_h == y.resize().scale_h);
    CHECK(x.resize().scale_w == y.resize().scale_w);
    CHECK(x.epsilon == y.epsilon);
  }
  REQUIRE(a.master_weights.size() == b.master_weights.size());
  for (size_t i = 0; i < a.master_weights.size(); ++i) {
    CAPTURE(i);
    CHECK(a.master_weights[i].tensor == b.master_weights[i].tensor);
    CHECK(a.master_weights[i].fp16 == b.master_weights[i].fp16);
    CHECK(a.master_weights[i].buffer == b.master_weights[i].buffer);
  }
  const CalibrationRecord& ca = a.calibration;
  const CalibrationRecord& cb = b.calibration;
  CHECK(ca.present == cb.present);
  CHECK(ca.pipeline == cb.pipeline);
  CHECK(ca.weight_bits == cb.weight_bits);
  CHECK(ca.activation_bits == cb.activation_bits);
  CHECK(ca.budget_bytes == cb.budget_bytes);
  CHECK(ca.seed == cb.seed);
  CHECK(ca.calibration_samples == cb.calibration_samples);
  CHECK(ca.dataset == cb.dataset);
  // Version 2 keeps the full report out of the model (the report file has it): a graph read
  // back from a file has none, a graph compared with a copy keeps its own.
  CHECK((cb.report_json.empty() || ca.report_json == cb.report_json));
  REQUIRE(a.buffers.size() == b.buffers.size());
  for (size_t i = 0; i < a.buffers.size(); ++i) {
    CAPTURE(i);
    REQUIRE(a.buffers[i].size() == b.buffers[i].size());
    if (a.buffers[i].size() > 0) CHECK(std::memcmp(a.buffers[i].data(), b.buffers[i].data(), a.buffers[i].size()) == 0);
  }
}

}  // namespace testing
}  // namespace tinyquant
