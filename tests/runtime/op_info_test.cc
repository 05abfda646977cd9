// The op table against the contracts it encodes (pipeline.h's int8 rules), against what the
// kernels do without asking it, and against what validate_graph / infer_shapes accept when they
// ask it (so a rule spelled out again beside the table shows up here).
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kernels/reference/reference_kernels.h"
#include "tinyquant/op_info.h"
#include "tinyquant/shape_inference.h"

using namespace tinyquant;

namespace {

OpType op_type(int i) { return static_cast<OpType>(i); }
constexpr int kNumOps = static_cast<int>(OpType::kCount);

// An op of `type` reading `inputs`, writing `output`, with options validate_graph and
// infer_shapes take for an NHWC [1,4,4,2] input.
Operator sample_op(OpType type, std::vector<int32_t> inputs, std::vector<int32_t> outputs) {
  Operator op;
  op.type = type;
  op.name = op_name(type);
  op.inputs = std::move(inputs);
  op.outputs = std::move(outputs);
  op.axis = type == OpType::kConcat ? 3 : -1;
  // An op holds its own type's options only (Operator::mutable_*).
  if (type == OpType::kReshape) op.mutable_new_shape() = {1, 32};
  if (type == OpType::kTranspose) op.mutable_perm() = {0, 1, 2, 3};
  if (type == OpType::kSlice)
    op.mutable_slice() = {{0, 0, 0, 0}, {kSliceToEnd, kSliceToEnd, kSliceToEnd, kSliceToEnd}, {1, 1, 1, 1}};
  if (type == OpType::kResize) op.mutable_resize().out_h = op.mutable_resize().out_w = 4;
  return op;
}

// A graph with activation input x (dtype `in`, per-tensor scale 0.1 when int8) and one op of
// `type` with `n_in` inputs, all x, and `n_out` outputs of dtype `out` (scale `out_scale`).
Graph sample_graph(OpType type, int n_in, int n_out, DType in = DType::kFloat32, DType out = DType::kFloat32,
                   float out_scale = 0.1f) {
  Graph g;
  const int32_t x = g.add_tensor("x", in, {1, 4, 4, 2});
  if (in == DType::kInt8) {
    g.tensors[x].quant.scale = {0.1f};
    g.tensors[x].quant.zero_point = {0};
  }
  g.inputs = {x};
  std::vector<int32_t> outputs;
  for (int k = 0; k < n_out; ++k) {
    outputs.push_back(g.add_tensor("y" + std::to_string(k), out, {1, 4, 4, 2}));
    if (out == DType::kInt8) g.tensors[outputs.back()].quant.scale = {out_scale};
  }
  g.outputs = outputs.empty() ? std::vector<int32_t>{x} : outputs;
  g.add_operator(sample_op(type, std::vector<int32_t>(static_cast<size_t>(n_in), x), outputs));
  return g;
}

TensorView typed_view(DType dtype, void* data) {
  TensorView v;
  v.dtype = dtype;
  v.data = data;
  return v;
}

}  // namespace

TEST_CASE("op_info: one entry per OpType, each with its own name") {
  for (int i = 0; i < kNumOps; ++i) {
    const OpInfo& info = op_info(op_type(i));
    CAPTURE(i);
    CHECK(info.type == op_type(i));
    REQUIRE(info.name != nullptr);
    CHECK(std::strlen(info.name) > 0);
    CHECK(std::strcmp(info.name, "?") != 0);
    CHECK(op_name(op_type(i)) == info.name);
    for (int j = 0; j < i; ++j) CHECK(std::strcmp(info.name, op_info(op_type(j)).name) != 0);
  }
  CHECK(std::strcmp(op_name(OpType::kConv2D), "Conv2D") == 0);
  CHECK(std::strcmp(op_name(OpType::kCount), "?") == 0);
  CHECK(std::strcmp(op_name(static_cast<OpType>(200)), "?") == 0);
  CHECK(op_info(static_cast<OpType>(200)).min_inputs > op_info(static_cast<OpType>(200)).max_inputs);
}

TEST_CASE("op_info: weighted ops are exactly conv, depthwise and fully connected") {
  for (int i = 0; i < kNumOps; ++i) {
    const OpType t = op_type(i);
    const OpInfo& info = op_info(t);
    CAPTURE(info.name);
    const bool expected = t == OpType::kConv2D || t == OpType::kDepthwiseConv2D || t == OpType::kFullyConnected;
    CHECK(info.weighted == expected);
    CHECK((info.int8_role == Int8Role::kWeighted) == info.weighted);
    if (info.weighted) CHECK(info.max_inputs > kBiasInput);
    CHECK(info.has_float_kernel == (info.int8_role != Int8Role::kConversion));
    CHECK((info.int8_role == Int8Role::kConversion) == (t == OpType::kQuantize || t == OpType::kDequantize));
  }
}

TEST_CASE("op_info: int8 roles are the ones the rtn pipeline's contract names") {
  struct Expect {
    OpType type;
    Int8Role role;
  };
  const Expect expected[] = {
      {OpType::kConv2D, Int8Role::kWeighted},           {OpType::kDepthwiseConv2D, Int8Role::kWeighted},
      {OpType::kFullyConnected, Int8Role::kWeighted},   {OpType::kMaxPool2D, Int8Role::kPassthrough},
      {OpType::kReshape, Int8Role::kPassthrough},       {OpType::kTranspose, Int8Role::kPassthrough},
      {OpType::kClamp, Int8Role::kPassthrough},         {OpType::kConcat, Int8Role::kRequantizing},
      {OpType::kAdd, Int8Role::kRequantizing},          {OpType::kMul, Int8Role::kRequantizing},
      {OpType::kAveragePool2D, Int8Role::kRequantizing}, {OpType::kGlobalAveragePool, Int8Role::kRequantizing},
      {OpType::kSoftmax, Int8Role::kFixedOutput},       {OpType::kQuantize, Int8Role::kConversion},
      {OpType::kDequantize, Int8Role::kConversion},     {OpType::kUnary, Int8Role::kLookup},
      {OpType::kSub, Int8Role::kNone},                  {OpType::kDiv, Int8Role::kNone},
      {OpType::kSlice, Int8Role::kPassthrough},         {OpType::kResize, Int8Role::kPassthrough},
      {OpType::kPRelu, Int8Role::kNone},                {OpType::kLayerNorm, Int8Role::kNone},
      {OpType::kConvTranspose, Int8Role::kNone},        {OpType::kGather, Int8Role::kGather},
      {OpType::kBatchMatMul, Int8Role::kRequantizing},
  };
  REQUIRE(sizeof(expected) / sizeof(expected[0]) == static_cast<size_t>(kNumOps));
  for (const Expect& e : expected) {
    CAPTURE(op_name(e.type));
    CHECK(op_info(e.type).int8_role == e.role);
    CHECK(op_info(e.type).data_movement ==
          (e.type == OpType::kReshape || e.type == OpType::kTranspose || e.type == OpType::kConcat ||
           e.type == OpType::kSlice));
  }
}

// The reference int8 kernels, called directly: a passthrough op never rescales (it copies, or
// rejects params that differ), a requantizing one moves to its output's params, a fixed-output
// one takes only its own.
TEST_CASE("op_info: int8 roles are what the reference kernels do") {
  for (int i = 0; i < kNumOps; ++i) {
    const OpType t = op_type(i);
    const OpInfo& info = op_info(t);
    // A lookup needs its table (tests/runtime/unary_test.cc); kNone has no int8 kernel (below).
    // Gather (indices + a table) and BatchMatMul ([.., M, K] x [.., K, N]) do not fit one sample
    // input read twice: tests/runtime/transformer_ops_test.cc checks them.
    if (info.weighted || info.int8_role == Int8Role::kConversion || info.int8_role == Int8Role::kLookup ||
        info.int8_role == Int8Role::kNone || t == OpType::kGather || t == OpType::kBatchMatMul)
      continue;
    CAPTURE(info.name);
    const Graph g = sample_graph(t, info.min_inputs, 1, DType::kInt8, DType::kInt8, 0.1f);
    std::vector<Dims> dims;
    REQUIRE(infer_shapes(g, 1, &dims).is_ok());
    const Operator& op = g.operators[0];
    std::vector<int8_t> x(static_cast<size_t>(dims[op.inputs[0]].elements()), 20);  // 2.0 at scale 0.1
    std::vector<int8_t> y(static_cast<size_t>(dims[op.outputs[0]].elements()), 0);
    const Quantization& in_quant = g.tensors[op.inputs[0]].quant;
    Quantization out_quant;
    out_quant.scale = {0.4f};
    out_quant.zero_point = {0};
    TensorView in;
    in.dtype = DType::kInt8;
    in.dims = dims[op.inputs[0]];
    in.data = x.data();
    in.quant = &in_quant;
    std::vector<TensorView> inputs(static_cast<size_t>(info.min_inputs), in);
    TensorView out = in;
    out.dims = dims[op.outputs[0]];
    out.data = y.data();
    out.quant = &out_quant;
    const Status s = reference::eval(op, inputs.data(), info.min_inputs, &out, 1);
    const bool rescaled = s.is_ok() && y[0] != 20;
    switch (info.int8_role) {
      case Int8Role::kPassthrough: CHECK((!s.is_ok() || y[0] == 20)); break;
      case Int8Role::kRequantizing: CHECK(rescaled); break;
      case Int8Role::kFixedOutput: {
        CHECK_FALSE(s.is_ok());
        out_quant.scale = {1.0f / 256.0f};
        out_quant.zero_point = {-128};
        CHECK(reference::eval(op, inputs.data(), info.min_inputs, &out, 1).is_ok());
        break;
      }
      default: FAIL("unexpected role");
    }
  }
}

TEST_CASE("op_info: arity is what validate_graph accepts") {
  for (int i = 0; i < kNumOps; ++i) {
    const OpType t = op_type(i);
    const OpInfo& info = op_info(t);
    CAPTURE(info.name);
    REQUIRE(info.min_inputs >= 1);
    REQUIRE(info.min_inputs <= info.max_inputs);
    for (int n = 0; n <= info.max_inputs + 1; ++n) {
      CAPTURE(n);
      CHECK(validate_graph(sample_graph(t, n, info.num_outputs)).is_ok() ==
            (n >= info.min_inputs && n <= info.max_inputs));
    }
    for (int m = 0; m <= info.num_outputs + 1; ++m) {
      CAPTURE(m);
      CHECK(validate_graph(sample_graph(t, info.min_inputs, m)).is_ok() == (m == info.num_outputs));
    }
  }
}

TEST_CASE("op_info: only a weighted op has an optional bias slot; it and Gather may read bit-packed constants") {
  for (int i = 0; i < kNumOps; ++i) {
    const OpType t = op_type(i);
    const OpInfo& info = op_info(t);
    CAPTURE(info.name);
    if (info.max_inputs <= kBiasInput) continue;
    Graph g = sample_graph(t, kBiasInput + 1, 1);
    g.operators[0].inputs[kBiasInput] = -1;
    CHECK(validate_graph(g).is_ok() == info.weighted);
  }
  for (int i = 0; i < kNumOps; ++i) {
    const OpType t = op_type(i);
    const OpInfo& info = op_info(t);
    CAPTURE(info.name);
    if (info.max_inputs <= kWeightInput) continue;
    Graph g = sample_graph(t, kWeightInput + 1, 1);
    const uint8_t packed[2] = {0x12, 0x34};
    const int32_t w = g.add_constant("w", DType::kInt8, {4}, packed, sizeof(packed));
    g.tensors[w].quant.bits = 4;
    g.operators[0].inputs[kWeightInput] = w;
    CHECK(validate_graph(g).is_ok() == (info.weighted || t == OpType::kGather));
  }
}

TEST_CASE("op_info: data movement ops are the ones validate_graph holds to one dtype") {
  for (int i = 0; i < kNumOps; ++i) {
    const OpType t = op_type(i);
    const OpInfo& info = op_info(t);
    CAPTURE(info.name);
    CHECK(validate_graph(sample_graph(t, info.min_inputs, 1, DType::kFloat32, DType::kInt8)).is_ok() ==
          !info.data_movement);
  }
}

TEST_CASE("op_info: int8 roles are what infer_shapes checks") {
  for (int i = 0; i < kNumOps; ++i) {
    const OpType t = op_type(i);
    const OpInfo& info = op_info(t);
    if (info.weighted || info.int8_role == Int8Role::kConversion || t == OpType::kGather || t == OpType::kBatchMatMul)
      continue;  // (the last two: tests/runtime/transformer_ops_test.cc)
    CAPTURE(info.name);
    std::vector<Dims> none_dims;
    if (info.int8_role == Int8Role::kNone || info.int8_role == Int8Role::kLookup) {
      // No int8 kernel at all; a lookup without its table (input 1) is rejected too.
      CHECK_FALSE(infer_shapes(sample_graph(t, info.min_inputs, 1, DType::kInt8, DType::kInt8, 0.1f), 1, &none_dims)
                      .is_ok());
      if (t != OpType::kLayerNorm && t != OpType::kConvTranspose)  // (they need constant weights; sample_graph feeds x)
        CHECK(infer_shapes(sample_graph(t, info.min_inputs, 1), 1, &none_dims).is_ok());  // float is fine
      continue;
    }
    // Int8 in and out at the same params: every int8 kernel takes that.
    std::vector<Dims> dims;
    CHECK(infer_shapes(sample_graph(t, info.min_inputs, 1, DType::kInt8, DType::kInt8, 0.1f), 1, &dims).is_ok());
    // A different output scale: only a passthrough op rejects it.
    CHECK(infer_shapes(sample_graph(t, info.min_inputs, 1, DType::kInt8, DType::kInt8, 0.2f), 1, &dims).is_ok() ==
          (info.int8_role != Int8Role::kPassthrough));
    // Int8 input, float output: the int8 form needs int8 throughout.
    CHECK_FALSE(infer_shapes(sample_graph(t, info.min_inputs, 1, DType::kInt8, DType::kFloat32), 1, &dims).is_ok());
  }
}

TEST_CASE("runs_int8: int8 activations select the integer kernel, int8 weights alone do not") {
  int8_t byte = 0;
  for (int i = 0; i < kNumOps; ++i) {
    const OpType t = op_type(i);
    const OpInfo& info = op_info(t);
    CAPTURE(info.name);
    const bool conversion = info.int8_role == Int8Role::kConversion;
    const int n = info.max_inputs > 3 ? 3 : info.max_inputs;
    std::vector<TensorView> in(static_cast<size_t>(n), typed_view(DType::kFloat32, &byte));
    TensorView out = typed_view(DType::kFloat32, &byte);
    CHECK(runs_int8(t, in.data(), n, &out, 1) == conversion);
    out.dtype = DType::kInt8;
    CHECK(runs_int8(t, in.data(), n, &out, 1));
    out.dtype = DType::kFloat32;
    in[n - 1].dtype = DType::kInt8;  // the last input: a weighted op's bias or weights
    CHECK(runs_int8(t, in.data(), n, &out, 1) == (conversion || !info.weighted));
    in[n - 1].data = nullptr;  // absent
    CHECK(runs_int8(t, in.data(), n, &out, 1) == conversion);
    in[0].dtype = DType::kInt8;
    in[0].data = &byte;
    CHECK(runs_int8(t, in.data(), n, &out, 1));

    // The graph form agrees.
    Graph g = sample_graph(t, n, 1);
    CHECK(runs_int8(g.operators[0], g) == conversion);
    g.tensors[g.operators[0].outputs[0]].dtype = DType::kInt8;
    CHECK(runs_int8(g.operators[0], g));
    g.tensors[g.operators[0].outputs[0]].dtype = DType::kFloat32;
    const int32_t last = g.add_tensor("last", DType::kInt8, {1, 4, 4, 2});
    g.operators[0].inputs[static_cast<size_t>(n - 1)] = last;
    CHECK(runs_int8(g.operators[0], g) == (conversion || !info.weighted));
    g.operators[0].inputs[static_cast<size_t>(n - 1)] = -1;
    CHECK(runs_int8(g.operators[0], g) == conversion);
  }
}
