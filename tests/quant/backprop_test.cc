// The whole-graph backward pass of bias tuning against central finite differences: every op type
// it takes (conv, depthwise, FC with fused clamps, add, mul, max / average / global pooling,
// concat, clamp, transpose, reshape, softmax), gradients of every bias and of the input; and the
// straight-through Quantize -> Dequantize pair.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "quant/quant_test_graphs.h"
#include "quant/src/backprop.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

int32_t add_op(Graph* g, OpType type, const std::string& name, std::vector<int32_t> inputs, std::vector<int32_t> shape,
               Operator proto = Operator()) {
  proto.type = type;
  proto.name = name;
  proto.inputs = std::move(inputs);
  const int32_t out = g->add_tensor(name + "_out", DType::kFloat32, shape);
  proto.outputs = {out};
  g->add_operator(proto);
  return out;
}

// input [N,6,6,4] -> conv 3x3 + ReLU -> (depthwise 3x3 + ReLU6, mul by a constant) -> add -> max pool
// 2x2/1 | average pool 3x3/1 pad 1 -> concat (channels) -> clamp -> transpose NCHW -> reshape -> FC ->
// softmax
Graph every_op_graph(std::vector<int32_t>* biases) {
  std::mt19937 rng(11);
  Graph g;
  const int32_t in = g.add_tensor("input", DType::kFloat32, {-1, 6, 6, 4});
  g.inputs = {in};
  Operator conv;
  conv.mutable_conv().padding = {1, 1, 1, 1};
  conv.activation = FusedActivation::relu();
  const int32_t cb = add_weights(&g, rng, "conv.b", {4}, 0.3f);
  const int32_t c1 = add_op(&g, OpType::kConv2D, "conv", {in, add_weights(&g, rng, "conv.w", {4, 3, 3, 4}, 0.4f), cb},
                            {-1, 6, 6, 4}, conv);
  Operator dw;
  dw.mutable_conv().padding = {1, 1, 1, 1};
  dw.activation = FusedActivation::relu6();
  const int32_t db = add_weights(&g, rng, "dw.b", {4}, 0.3f);
  const int32_t d1 = add_op(&g, OpType::kDepthwiseConv2D, "dw", {c1, add_weights(&g, rng, "dw.w", {1, 3, 3, 4}, 0.6f), db},
                            {-1, 6, 6, 4}, dw);
  const int32_t m1 = add_op(&g, OpType::kMul, "mul", {d1, add_weights(&g, rng, "mul.c", {4}, 1.5f)}, {-1, 6, 6, 4});
  const int32_t a1 = add_op(&g, OpType::kAdd, "add", {m1, c1}, {-1, 6, 6, 4});
  Operator mp;
  mp.mutable_pool().kernel_h = mp.mutable_pool().kernel_w = 2;
  const int32_t p1 = add_op(&g, OpType::kMaxPool2D, "maxpool", {a1}, {-1, 5, 5, 4}, mp);
  Operator ap;
  ap.mutable_pool().kernel_h = ap.mutable_pool().kernel_w = 3;
  ap.mutable_pool().padding = {1, 1, 1, 1};
  const int32_t p2 = add_op(&g, OpType::kAveragePool2D, "avgpool", {p1}, {-1, 5, 5, 4}, ap);
  Operator cat;
  cat.axis = 3;
  const int32_t c2 = add_op(&g, OpType::kConcat, "concat", {p1, p2}, {-1, 5, 5, 8}, cat);
  Operator clamp;
  clamp.activation = FusedActivation::clip(-0.5f, 2.5f);
  const int32_t cl = add_op(&g, OpType::kClamp, "clamp", {c2}, {-1, 5, 5, 8}, clamp);
  Operator tr;
  tr.mutable_perm() = {0, 3, 1, 2};
  const int32_t t1 = add_op(&g, OpType::kTranspose, "transpose", {cl}, {-1, 8, 5, 5}, tr);
  Operator rs;
  rs.mutable_new_shape() = {-1, 200};
  const int32_t r1 = add_op(&g, OpType::kReshape, "flatten", {t1}, {-1, 200}, rs);
  const int32_t fb = add_weights(&g, rng, "fc.b", {5}, 0.2f);
  const int32_t f1 = add_op(&g, OpType::kFullyConnected, "fc", {r1, add_weights(&g, rng, "fc.w", {5, 200}, 0.2f), fb},
                            {-1, 5});
  Operator gap;  // a GAP branch added to the logits through a second FC
  const int32_t g1 = add_op(&g, OpType::kGlobalAveragePool, "gap", {a1}, {-1, 1, 1, 4});
  rs.mutable_new_shape() = {-1, 4};
  const int32_t r2 = add_op(&g, OpType::kReshape, "flatten2", {g1}, {-1, 4}, rs);
  const int32_t fb2 = add_weights(&g, rng, "fc2.b", {5}, 0.2f);
  const int32_t f2 = add_op(&g, OpType::kFullyConnected, "fc2", {r2, add_weights(&g, rng, "fc2.w", {5, 4}, 0.5f), fb2},
                            {-1, 5});
  const int32_t lg = add_op(&g, OpType::kAdd, "logits", {f1, f2}, {-1, 5});
  const int32_t sm = add_op(&g, OpType::kSoftmax, "softmax", {lg}, {-1, 5});
  g.outputs = {sm};
  *biases = {cb, db, fb, fb2};
  return g;
}

// Σ r · output over the batch.
double loss_of(Graph& g, const std::vector<float>& x, const std::vector<float>& r, int32_t batch) {
  quant::Backprop bp;
  REQUIRE(bp.prepare(g, batch).is_ok());
  REQUIRE(bp.forward(x.data()).is_ok());
  const std::vector<float>& y = bp.value(g.outputs[0]);
  double l = 0;
  for (size_t i = 0; i < y.size(); ++i) l += double(r[i]) * y[i];
  return l;
}

}  // namespace

TEST_CASE("backprop: every op's backward matches central finite differences (biases and input)") {
  std::vector<int32_t> biases;
  Graph g = every_op_graph(&biases);
  const int32_t batch = 3;
  std::mt19937 rng(5);
  std::vector<float> x = random_floats(rng, size_t(batch) * 6 * 6 * 4, -1.0f, 1.0f);
  std::vector<float> r = random_floats(rng, size_t(batch) * 5, -1.0f, 1.0f);
  quant::Backprop bp;
  Status s = bp.prepare(g, batch);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  REQUIRE(bp.forward(x.data()).is_ok());
  REQUIRE(bp.backward(r.data()).is_ok());
  const double eps = 1e-3;
  int checked = 0, agree = 0;
  auto compare = [&](double analytic, double numeric) {
    ++checked;
    // Float forward passes: a kink crossed by ±eps can differ; the rest agree tightly.
    if (std::fabs(analytic - numeric) <= 2e-3 + 2e-2 * std::fabs(numeric)) ++agree;
    else MESSAGE("analytic " << analytic << " numeric " << numeric);
  };
  for (int32_t b : biases) {
    float* v = g.mutable_constant_data<float>(b);
    const int64_t n = shape_elements(g.tensors[b].shape);
    for (int64_t i = 0; i < n; ++i) {
      const float keep = v[i];
      v[i] = keep + float(eps);
      const double up = loss_of(g, x, r, batch);
      v[i] = keep - float(eps);
      const double down = loss_of(g, x, r, batch);
      v[i] = keep;
      CAPTURE(g.tensors[b].name);
      compare(bp.grad(b)[i], (up - down) / (2 * eps));
    }
  }
  for (size_t i = 0; i < x.size(); i += 7) {
    const float keep = x[i];
    x[i] = keep + float(eps);
    const double up = loss_of(g, x, r, batch);
    x[i] = keep - float(eps);
    const double down = loss_of(g, x, r, batch);
    x[i] = keep;
    compare(bp.grad(g.inputs[0])[i], (up - down) / (2 * eps));
  }
  CHECK(checked == 18 + 62);
  CHECK(agree >= checked - 2);
  // Not vacuous: the biases do move the loss.
  double total = 0;
  for (int32_t b : biases)
    for (float v : bp.grad(b)) total += std::fabs(v);
  CHECK(total > 1e-3);
}

TEST_CASE("backprop: Quantize -> Dequantize passes the gradient straight through where the code is not clipped") {
  Graph g;
  const int32_t in = g.add_tensor("x", DType::kFloat32, {-1, 8});
  g.inputs = {in};
  const int32_t q = g.add_tensor("x:q", DType::kInt8, {-1, 8});
  g.tensors[q].quant.scale = {0.1f};
  g.tensors[q].quant.zero_point = {-128};
  g.tensors[q].quant.bits = 8;
  Operator qo;
  qo.type = OpType::kQuantize;
  qo.name = "quantize";
  qo.inputs = {in};
  qo.outputs = {q};
  g.add_operator(qo);
  const int32_t out = g.add_tensor("y", DType::kFloat32, {-1, 8});
  Operator dq;
  dq.type = OpType::kDequantize;
  dq.name = "dequantize";
  dq.inputs = {q};
  dq.outputs = {out};
  g.add_operator(dq);
  g.outputs = {out};
  // Representable: [−128 − z, 127 − z] · s = [0, 25.5]; below 0 and above 25.5 clip.
  const std::vector<float> x = {-1.0f, 0.0f, 0.04f, 3.3f, 25.4f, 25.5f, 26.0f, 100.0f};
  const std::vector<float> dy = {1, 2, 3, 4, 5, 6, 7, 8};
  quant::Backprop bp;
  REQUIRE(bp.prepare(g, 1).is_ok());
  REQUIRE(bp.forward(x.data()).is_ok());
  CHECK(bp.value(out)[3] == doctest::Approx(3.3f));
  REQUIRE(bp.backward(dy.data()).is_ok());
  const std::vector<float> want = {0, 2, 3, 4, 5, 6, 0, 0};
  for (size_t i = 0; i < want.size(); ++i) CHECK(bp.grad(in)[i] == doctest::Approx(want[i]));
}

TEST_CASE("backprop: an op without a backward pass is named") {
  Graph g;
  const int32_t in = g.add_tensor("x", DType::kFloat32, {-1, 4});
  g.inputs = {in};
  Operator u;
  u.mutable_unary().kind = UnaryKind::kTanh;
  const int32_t out = add_op(&g, OpType::kUnary, "tanh1", {in}, {-1, 4}, u);
  g.outputs = {out};
  quant::Backprop bp;
  const Status s = bp.prepare(g, 1);
  REQUIRE_FALSE(s.is_ok());
  CHECK(std::string(s.message()).find("Unary 'tanh1'") != std::string::npos);
}
