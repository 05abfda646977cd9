// Small hand-built float graphs, their calibration data and runners, shared by the quant/ suites.
#pragma once

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/pipeline.h"
#include "tinyquant/shape_inference.h"

namespace tinyquant {
namespace testing {

inline int32_t add_weights(Graph* g, std::mt19937& rng, const std::string& name, std::vector<int32_t> shape, float range) {
  std::vector<float> w = random_floats(rng, static_cast<size_t>(shape_elements(shape)), -range, range);
  return g->add_constant(name, DType::kFloat32, shape, w.data(), w.size() * sizeof(float));
}

// input [N,8,8,3] -> Conv2D 3x3 (6 ch) + ReLU -> MaxPool 2x2 -> Reshape [N,96] -> FC (5) "logits"
inline Graph conv_pool_fc_graph(uint32_t seed = 1) {
  std::mt19937 rng(seed);
  Graph g;
  const int32_t in = g.add_tensor("input", DType::kFloat32, {-1, 8, 8, 3});
  g.inputs = {in};
  Operator conv;
  conv.type = OpType::kConv2D;
  conv.name = "conv";
  conv.mutable_conv().padding = {1, 1, 1, 1};
  conv.activation = FusedActivation::relu();
  const int32_t conv_out = g.add_tensor("conv_out", DType::kFloat32, {-1, 8, 8, 6});
  conv.inputs = {in, add_weights(&g, rng, "conv.w", {6, 3, 3, 3}, 0.4f), add_weights(&g, rng, "conv.b", {6}, 0.2f)};
  conv.outputs = {conv_out};
  g.add_operator(conv);
  Operator pool;
  pool.type = OpType::kMaxPool2D;
  pool.name = "pool";
  pool.mutable_pool().kernel_h = pool.mutable_pool().kernel_w = 2;
  pool.mutable_pool().stride_h = pool.mutable_pool().stride_w = 2;
  const int32_t pool_out = g.add_tensor("pool_out", DType::kFloat32, {-1, 4, 4, 6});
  pool.inputs = {conv_out};
  pool.outputs = {pool_out};
  g.add_operator(pool);
  Operator flat;
  flat.type = OpType::kReshape;
  flat.name = "flatten";
  flat.mutable_new_shape() = {-1, 96};
  const int32_t flat_out = g.add_tensor("flat", DType::kFloat32, {-1, 96});
  flat.inputs = {pool_out};
  flat.outputs = {flat_out};
  g.add_operator(flat);
  Operator fc;
  fc.type = OpType::kFullyConnected;
  fc.name = "fc";
  const int32_t logits = g.add_tensor("logits", DType::kFloat32, {-1, 5});
  fc.inputs = {flat_out, add_weights(&g, rng, "fc.w", {5, 96}, 0.2f), add_weights(&g, rng, "fc.b", {5}, 0.1f)};
  fc.outputs = {logits};
  g.add_operator(fc);
  g.outputs = {logits};
  return g;
}

// input [N,6,6,4] -> conv1 3x3 + ReLU -> conv2 3x3; Add(conv2, input) + ReLU -> GAP -> Reshape ->
// FC (3) -> Softmax "probs": exercises int8 Add / GAP and a float Softmax behind a Dequantize.
inline Graph residual_graph(uint32_t seed = 2) {
  std::mt19937 rng(seed);
  Graph g;
  const int32_t in = g.add_tensor("input", DType::kFloat32, {-1, 6, 6, 4});
  g.inputs = {in};
  auto conv = [&](const std::string& name, int32_t x, bool relu) {
    Operator op;
    op.type = OpType::kConv2D;
    op.name = name;
    op.mutable_conv().padding = {1, 1, 1, 1};
    if (relu) op.activation = FusedActivation::relu();
    const int32_t out = g.add_tensor(name + "_out", DType::kFloat32, {-1, 6, 6, 4});
    op.inputs = {x, add_weights(&g, rng, name + ".w", {4, 3, 3, 4}, 0.3f), add_weights(&g, rng, name + ".b", {4}, 0.1f)};
    op.outputs = {out};
    g.add_operator(op);
    return out;
  };
  const int32_t c1 = conv("conv1", in, true);
  const int32_t c2 = conv("conv2", c1, false);
  Operator add;
  add.type = OpType::kAdd;
  add.name = "add";
  add.activation = FusedActivation::relu();
  const int32_t sum = g.add_tensor("sum", DType::kFloat32, {-1, 6, 6, 4});
  add.inputs = {c2, c1};
  add.outputs = {sum};
  g.add_operator(add);
  Operator gap;
  gap.type = OpType::kGlobalAveragePool;
  gap.name = "gap";
  const int32_t pooled = g.add_tensor("pooled", DType::kFloat32, {-1, 1, 1, 4});
  gap.inputs = {sum};
  gap.outputs = {pooled};
  g.add_operator(gap);
  Operator flat;
  flat.type = OpType::kReshape;
  flat.name = "flatten";
  flat.mutable_new_shape() = {-1, 4};
  const int32_t f = g.add_tensor("flat", DType::kFloat32, {-1, 4});
  flat.inputs = {pooled};
  flat.outputs = {f};
  g.add_operator(flat);
  Operator fc;
  fc.type = OpType::kFullyConnected;
  fc.name = "fc";
  const int32_t logits = g.add_tensor("logits", DType::kFloat32, {-1, 3});
  fc.inputs = {f, add_weights(&g, rng, "fc.w", {3, 4}, 0.5f), -1};
  fc.outputs = {logits};
  g.add_operator(fc);
  Operator sm;
  sm.type = OpType::kSoftmax;
  sm.name = "softmax";
  const int32_t probs = g.add_tensor("probs", DType::kFloat32, {-1, 3});
  sm.inputs = {logits};
  sm.outputs = {probs};
  g.add_operator(sm);
  g.outputs = {probs};
  return g;
}

inline quant::CalibrationData random_calibration(const Graph& g, int32_t samples, uint32_t seed) {
  std::vector<Dims> dims;
  REQUIRE(infer_shapes(g, 1, &dims).is_ok());
  std::mt19937 rng(seed);
  quant::CalibrationData c;
  c.samples = samples;
  c.values = random_floats(rng, static_cast<size_t>(dims[g.inputs[0]].elements()) * samples, -1.0f, 1.5f);
  c.dataset = "random";
  return c;
}

inline std::vector<float> run(const Graph& g, const std::vector<float>& x, int32_t batch) {
  Interpreter interp;
  PrepareOptions opt;
  opt.batch = batch;
  opt.backend = Backend::kReference;
  const Status s = interp.prepare(g, opt);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  REQUIRE(static_cast<size_t>(interp.input(0).elements()) == x.size());
  std::memcpy(interp.input(0).data, x.data(), x.size() * sizeof(float));
  const Status r = interp.invoke();
  REQUIRE_MESSAGE(r.is_ok(), r.message());
  const TensorView y = interp.output(0);
  return std::vector<float>(y.as<const float>(), y.as<const float>() + y.elements());
}

}  // namespace testing
}  // namespace tinyquant
