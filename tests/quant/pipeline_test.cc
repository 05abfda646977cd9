// The round-to-nearest pipeline on small hand-built float graphs: the integer graph is valid,
// round-trips through .tqm, runs on the reference backend and matches its simulated twin within
// one quantization level; low-bit weights shrink the file; bad input fails with a clear error.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "quant/quant_test_graphs.h"
#include "test_util.h"
#include "tinyquant/adaquant.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/model_io.h"
#include "tinyquant/op_info.h"
#include "tinyquant/pipeline.h"
#include "tinyquant/shape_inference.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

int64_t int8_weight_bytes(const Graph& g) {
  int64_t bytes = 0;
  for (const Tensor& t : g.tensors)
    if (t.is_constant() && t.dtype == DType::kInt8) bytes += static_cast<int64_t>(g.buffers[t.buffer].size());
  return bytes;
}

// The quantization step of the int8 tensor feeding the graph output's Dequantize.
float output_step(const Graph& q) {
  const Operator& last = q.operators.back();
  REQUIRE(last.type == OpType::kDequantize);
  return q.tensors[last.inputs[0]].quant.scale[0];
}

void check_within_one_level(const std::vector<float>& a, const std::vector<float>& b, float step) {
  REQUIRE(a.size() == b.size());
  size_t within = 0;
  for (size_t i = 0; i < a.size(); ++i) within += std::fabs(a[i] - b[i]) <= step * 1.001f;
  CHECK_MESSAGE(within >= a.size() * 99 / 100, within, " of ", a.size(), " within one level (", step, ")");
}

quant::RtnOptions bits(int32_t w, int32_t a) {
  quant::RtnOptions o;
  o.weight_bits = w;
  o.activation_bits = a;
  o.batch = 16;
  o.seed = 7;
  return o;
}

}  // namespace

TEST_CASE("rtn: conv+relu, maxpool, reshape, fc become one int8 region with float edges") {
  const Graph fg = conv_pool_fc_graph();
  const quant::CalibrationData calib = random_calibration(fg, 40, 11);
  Graph q, sim;
  quant::RtnReport report;
  const Status s = quant::quantize_graph_rtn(fg, calib, bits(8, 8), &q, &sim, &report);
  REQUIRE_MESSAGE(s.is_ok(), s.message());

  std::vector<OpType> types;
  for (const Operator& op : q.operators) types.push_back(op.type);
  CHECK(types == std::vector<OpType>{OpType::kQuantize, OpType::kConv2D, OpType::kMaxPool2D, OpType::kReshape,
                                     OpType::kFullyConnected, OpType::kDequantize});
  CHECK(q.tensors[q.inputs[0]].dtype == DType::kFloat32);
  CHECK(q.tensors[q.outputs[0]].dtype == DType::kFloat32);
  CHECK(q.tensors[q.outputs[0]].name == "logits");
  for (const Tensor& t : q.tensors) {
    if (t.dtype == DType::kFloat32) continue;
    INFO(t.name);
    CHECK(!t.quant.scale.empty());
    if (t.dtype == DType::kInt8 && !t.is_constant()) {
      CHECK(t.quant.scale.size() == 1);
      CHECK(t.quant.zero_point.size() == 1);
      CHECK(t.quant.bits == 8);
    }
  }
  // ReLU output: zero point at qmin; MaxPool and Reshape keep their input's quantization.
  const Tensor& conv_out = q.tensors[q.operators[1].outputs[0]];
  CHECK(conv_out.quant.zero_point[0] == -128);
  CHECK(q.tensors[q.operators[2].outputs[0]].quant.scale == conv_out.quant.scale);
  CHECK(q.tensors[q.operators[3].outputs[0]].quant.scale == conv_out.quant.scale);
  const Tensor& conv_w = q.tensors[q.operators[1].inputs[1]];
  CHECK(conv_w.dtype == DType::kInt8);
  CHECK(conv_w.quant.axis == 0);
  CHECK(conv_w.quant.scale.size() == 6);
  CHECK(q.tensors[q.operators[1].inputs[2]].dtype == DType::kInt32);
  CHECK(q.operators[1].activation.type == Activation::kRelu);

  CHECK(q.calibration.present);
  CHECK(q.calibration.pipeline == "rtn");
  CHECK(q.calibration.weight_bits == std::vector<uint8_t>{8, 8});
  CHECK(q.calibration.activation_bits == std::vector<uint8_t>{8, 8});
  CHECK(q.calibration.seed == 7);
  CHECK(q.calibration.calibration_samples == 40);
  CHECK(q.calibration.dataset == "random");
  CHECK(q.calibration.report_json.find("\"pipeline\": \"rtn\"") != std::string::npos);
  CHECK(report.layers.size() == fg.operators.size());
  CHECK(report.quantize_ops == 1);
  CHECK(report.dequantize_ops == 1);

  CHECK(validate_graph(q).is_ok());
  std::vector<Dims> dims;
  CHECK(infer_shapes(q, 3, &dims).is_ok());
}

TEST_CASE("rtn: the integer graph round-trips through .tqm and matches the simulated graph within one level") {
  const Graph fg = conv_pool_fc_graph();
  const quant::CalibrationData calib = random_calibration(fg, 64, 21);
  std::mt19937 rng(99);
  const int32_t batch = 50;
  const std::vector<float> x = random_floats(rng, static_cast<size_t>(batch) * 8 * 8 * 3, -1.0f, 1.5f);
  for (int32_t wbits : {8, 4, 2}) {
    for (int32_t abits : {8, 4}) {
      CAPTURE(wbits);
      CAPTURE(abits);
      Graph q, sim;
      const Status s = quant::quantize_graph_rtn(fg, calib, bits(wbits, abits), &q, &sim, nullptr);
      REQUIRE_MESSAGE(s.is_ok(), s.message());
      std::vector<uint8_t> bytes;
      const Status ser = serialize_model(q, &bytes);
      REQUIRE_MESSAGE(ser.is_ok(), ser.message());
      Graph loaded;
      const Status ld = load_model(bytes.data(), bytes.size(), &loaded, "rtn.tqm");
      REQUIRE_MESSAGE(ld.is_ok(), ld.message());
      CHECK(loaded.calibration.pipeline == "rtn");

      const std::vector<float> y_int = run(loaded, x, batch);
      const std::vector<float> y_mem = run(q, x, batch);
      CHECK(y_int == y_mem);
      const std::vector<float> y_sim = run(sim, x, batch);
      check_within_one_level(y_int, y_sim, output_step(q));

      // The loaded file rebuilds the same simulated graph (what tq eval --simulate does).
      Graph sim2;
      REQUIRE(quant::build_simulated_graph(loaded, &sim2).is_ok());
      CHECK(run(sim2, x, batch) == y_sim);

      // At 8 bits the quantized model stays close to the float one.
      if (wbits == 8 && abits == 8) {
        const std::vector<float> y_float = run(fg, x, batch);
        double max_err = 0, max_abs = 0;
        for (size_t i = 0; i < y_float.size(); ++i) {
          max_err = std::max(max_err, double(std::fabs(y_float[i] - y_int[i])));
          max_abs = std::max(max_abs, double(std::fabs(y_float[i])));
        }
        CHECK(max_err < 0.05 * max_abs + 4 * output_step(q));
      }
    }
  }
}

TEST_CASE("rtn: Add, GlobalAveragePool run int8; Softmax stays float behind a Dequantize") {
  const Graph fg = residual_graph();
  const quant::CalibrationData calib = random_calibration(fg, 48, 5);
  Graph q, sim;
  quant::RtnReport report;
  const Status s = quant::quantize_graph_rtn(fg, calib, bits(8, 8), &q, &sim, &report);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  int32_t int8_ops = 0;
  for (const Operator& op : q.operators) {
    const DType out = q.tensors[op.outputs[0]].dtype;
    if (op.type == OpType::kAdd || op.type == OpType::kGlobalAveragePool) {
      CHECK(out == DType::kInt8);
      ++int8_ops;
    }
    if (op.type == OpType::kSoftmax) {
      CHECK(out == DType::kFloat32);
      CHECK(q.tensors[op.inputs[0]].dtype == DType::kFloat32);
    }
  }
  CHECK(int8_ops == 2);
  CHECK(q.tensors[q.outputs[0]].name == "probs");
  std::mt19937 rng(3);
  const int32_t batch = 40;
  const std::vector<float> x = random_floats(rng, static_cast<size_t>(batch) * 6 * 6 * 4, -1.0f, 1.5f);
  const std::vector<float> y_int = run(q, x, batch);
  const std::vector<float> y_sim = run(sim, x, batch);
  // Softmax of logits one level apart: probabilities differ by at most ~ one level of the logits.
  float step = 0;
  for (const Operator& op : q.operators)
    if (op.type == OpType::kDequantize) step = q.tensors[op.inputs[0]].quant.scale[0];
  check_within_one_level(y_int, y_sim, step);
}

TEST_CASE("rtn: 4-bit weights take half the bytes of 8-bit ones, in the graph and in the file") {
  const Graph fg = conv_pool_fc_graph();
  const quant::CalibrationData calib = random_calibration(fg, 16, 1);
  Graph q8, q4;
  REQUIRE(quant::quantize_graph_rtn(fg, calib, bits(8, 8), &q8, nullptr, nullptr).is_ok());
  REQUIRE(quant::quantize_graph_rtn(fg, calib, bits(4, 8), &q4, nullptr, nullptr).is_ok());
  const int64_t w8 = int8_weight_bytes(q8), w4 = int8_weight_bytes(q4);
  CHECK(w8 == 6 * 27 + 5 * 96);
  CHECK(w4 == w8 / 2);
  std::vector<uint8_t> f8, f4;
  REQUIRE(serialize_model(q8, &f8).is_ok());
  REQUIRE(serialize_model(q4, &f4).is_ok());
  CHECK(f8.size() - f4.size() >= static_cast<size_t>(w8 - w4) - 64);  // alignment padding aside
  CHECK(q4.calibration.weight_bits == std::vector<uint8_t>{4, 4});
}

TEST_CASE("rtn: bad input is a clear error and leaves the outputs untouched") {
  const Graph fg = conv_pool_fc_graph();
  const quant::CalibrationData good = random_calibration(fg, 8, 2);
  Graph q, sim;
  q.producer = sim.producer = "untouched";
  auto expect_error = [&](const quant::CalibrationData& c, const quant::RtnOptions& o, const char* what) {
    const Status s = quant::quantize_graph_rtn(fg, c, o, &q, &sim, nullptr);
    REQUIRE_FALSE(s.is_ok());
    CHECK_MESSAGE(std::string(s.message()).find(what) != std::string::npos, s.message());
    CHECK(q.producer == "untouched");
    CHECK(q.operators.empty());
    CHECK(sim.producer == "untouched");
  };
  expect_error(good, bits(9, 8), "weight bits");
  expect_error(good, bits(1, 8), "weight bits");
  expect_error(good, bits(8, 9), "activation bits");
  expect_error(good, bits(8, 1), "activation bits");

  quant::CalibrationData empty;
  expect_error(empty, bits(8, 8), "calibration set is empty");

  quant::CalibrationData nan = good;
  nan.values[3 * 192 + 5] = std::numeric_limits<float>::quiet_NaN();
  expect_error(nan, bits(8, 8), "sample 3, element 5 of input 'input' is NaN");
  quant::CalibrationData inf = good;
  inf.values[7] = std::numeric_limits<float>::infinity();
  expect_error(inf, bits(8, 8), "'input' is Inf");

  quant::CalibrationData short_set = good;
  short_set.values.resize(short_set.values.size() - 1);
  expect_error(short_set, bits(8, 8), "calibration data has");

  // An already quantized model is not a float model.
  Graph q8;
  REQUIRE(quant::quantize_graph_rtn(fg, good, bits(8, 8), &q8, nullptr, nullptr).is_ok());
  const Status again = quant::quantize_graph_rtn(q8, good, bits(8, 8), &q, &sim, nullptr);
  REQUIRE_FALSE(again.is_ok());
  CHECK_MESSAGE(std::string(again.message()).find("float models only") != std::string::npos, again.message());
  CHECK(q.operators.empty());

  // A float model has no simulated twin.
  const Status no_sim = quant::build_simulated_graph(fg, &sim);
  REQUIRE_FALSE(no_sim.is_ok());
  CHECK(std::string(no_sim.message()).find("not a quantized model") != std::string::npos);
  CHECK(sim.producer == "untouched");
}

TEST_CASE("rtn: NaN produced inside the float graph names the activation") {
  Graph fg = conv_pool_fc_graph();
  // A huge weight makes the conv output overflow to Inf for every sample.
  float* w = fg.mutable_constant_data<float>(fg.operators[0].inputs[1]);
  w[0] = 3.0e38f;
  w[1] = 3.0e38f;
  const quant::CalibrationData calib = random_calibration(fg, 8, 4);
  Graph q;
  const Status s = quant::quantize_graph_rtn(fg, calib, bits(8, 8), &q, nullptr, nullptr);
  REQUIRE_FALSE(s.is_ok());
  CHECK_MESSAGE(std::string(s.message()).find("conv_out") != std::string::npos, std::string(s.message()));
}

namespace {

// conv_pool_fc_graph with `f` after the pool and a Sub of a per-channel constant after that:
// conv -> pool -> Unary f -> Sub c -> flatten -> fc.
Graph unary_graph(const UnaryOptions& f) {
  Graph g = conv_pool_fc_graph();
  const int32_t pool_out = g.operators[1].outputs[0];
  const int32_t act = g.add_tensor("act", DType::kFloat32, {-1, 4, 4, 6});
  const int32_t shifted = g.add_tensor("shifted", DType::kFloat32, {-1, 4, 4, 6});
  const std::vector<float> c = {0.1f, -0.2f, 0.3f, 0.0f, 0.5f, -0.4f};
  const int32_t shift = g.add_constant("shift", DType::kFloat32, {6}, c.data(), c.size() * sizeof(float));
  Operator u;
  u.type = OpType::kUnary;
  u.name = "unary";
  u.mutable_unary() = f;
  u.inputs = {pool_out};
  u.outputs = {act};
  Operator sub;
  sub.type = OpType::kSub;
  sub.name = "sub";
  sub.inputs = {act, shift};
  sub.outputs = {shifted};
  g.operators[2].inputs[0] = shifted;  // flatten
  g.operators.insert(g.operators.begin() + 2, {u, sub});
  REQUIRE(validate_graph(g).is_ok());
  return g;
}

}  // namespace

TEST_CASE("rtn: a Unary runs int8 as a lookup table; Sub (no int8 kernel) stays float") {
  const UnaryOptions kinds[] = {{UnaryKind::kSigmoid, 0, 0}, {UnaryKind::kHardSwish, 0, 0}, {UnaryKind::kTanh, 0, 0},
                                {UnaryKind::kGelu, 0, 0}};
  std::mt19937 rng(17);
  const int32_t batch = 40;
  const std::vector<float> x = random_floats(rng, static_cast<size_t>(batch) * 8 * 8 * 3, -1.0f, 1.5f);
  for (const UnaryOptions& f : kinds) {
    const std::string kind = unary_kind_name(f.kind);
    CAPTURE(kind);
    const Graph fg = unary_graph(f);
    const quant::CalibrationData calib = random_calibration(fg, 48, 9);
    Graph q, sim;
    quant::RtnReport report;
    const Status s = quant::quantize_graph_rtn(fg, calib, bits(8, 8), &q, &sim, &report);
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    bool saw_unary = false, saw_sub = false;
    for (const Operator& op : q.operators) {
      if (op.type == OpType::kUnary) {
        saw_unary = true;
        CHECK(q.tensors[op.inputs[0]].dtype == DType::kInt8);
        CHECK(q.tensors[op.outputs[0]].dtype == DType::kInt8);
        REQUIRE(op.inputs.size() == 2);
        CHECK(q.tensors[op.inputs[kTableInput]].shape == std::vector<int32_t>{kLookupTableSize});
      }
      if (op.type == OpType::kSub) {
        saw_sub = true;
        CHECK(q.tensors[op.inputs[0]].dtype == DType::kFloat32);
        CHECK(q.tensors[op.outputs[0]].dtype == DType::kFloat32);
      }
    }
    CHECK(saw_unary);
    CHECK(saw_sub);
    for (const quant::RtnLayerReport& l : report.layers)
      if (l.type == OpType::kSub) CHECK(l.note == "no int8 kernel");
    // Through .tqm and back, the integer graph matches its simulation and stays near float.
    std::vector<uint8_t> bytes;
    REQUIRE(serialize_model(q, &bytes).is_ok());
    Graph loaded;
    REQUIRE(load_model(bytes.data(), bytes.size(), &loaded, "unary.tqm").is_ok());
    const std::vector<float> y_int = run(loaded, x, batch), y_sim = run(sim, x, batch), y_f = run(fg, x, batch);
    check_within_one_level(y_int, y_sim, output_step(q));
    double signal = 0, noise = 0;
    for (size_t i = 0; i < y_f.size(); ++i) {
      signal += double(y_f[i]) * y_f[i];
      noise += double(y_f[i] - y_int[i]) * (y_f[i] - y_int[i]);
    }
    const double sqnr = 10 * std::log10(signal / std::max(noise, 1e-30));
    MESSAGE(kind, ": W8A8 SQNR vs float ", sqnr, " dB");
    CHECK(sqnr > 25.0);
  }
}

TEST_CASE("rtn: a two-input model calibrates each input from its own data; mismatched data is an error") {
  // a [N,4,4,2] -> conv, b [N,4,4,3] -> conv, add, relu.
  std::mt19937 rng(23);
  Graph g;
  const int32_t a = g.add_tensor("a", DType::kFloat32, {-1, 4, 4, 2});
  const int32_t b = g.add_tensor("b", DType::kFloat32, {-1, 4, 4, 3});
  g.inputs = {a, b};
  auto conv = [&](int32_t in, int32_t c_in, const char* name) {
    Operator op;
    op.type = OpType::kConv2D;
    op.name = name;
    op.mutable_conv().padding = {1, 1, 1, 1};
    const int32_t out = g.add_tensor(std::string(name) + "_out", DType::kFloat32, {-1, 4, 4, 4});
    op.inputs = {in, add_weights(&g, rng, std::string(name) + ".w", {4, 3, 3, c_in}, 0.4f),
                 add_weights(&g, rng, std::string(name) + ".b", {4}, 0.1f)};
    op.outputs = {out};
    g.add_operator(op);
    return out;
  };
  const int32_t ca = conv(a, 2, "conv_a"), cb = conv(b, 3, "conv_b");
  Operator add;
  add.type = OpType::kAdd;
  add.name = "add";
  add.activation = FusedActivation::relu();
  const int32_t y = g.add_tensor("y", DType::kFloat32, {-1, 4, 4, 4});
  add.inputs = {ca, cb};
  add.outputs = {y};
  g.add_operator(add);
  g.outputs = {y};
  REQUIRE(validate_graph(g).is_ok());

  quant::CalibrationData calib;
  calib.samples = 40;
  calib.values = random_floats(rng, 40 * 32, -1.0f, 1.0f);
  calib.more_inputs = {random_floats(rng, 40 * 48, -3.0f, 3.0f)};  // a wider range than input a
  Graph q, sim;
  const Status s = quant::quantize_graph_rtn(g, calib, bits(8, 8), &q, &sim, nullptr);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  float scale_a = 0, scale_b = 0;
  for (const Operator& op : q.operators)
    if (op.type == OpType::kQuantize) {
      const float sc = q.tensors[op.outputs[0]].quant.scale[0];
      if (q.tensors[op.inputs[0]].name == "a") scale_a = sc;
      if (q.tensors[op.inputs[0]].name == "b") scale_b = sc;
    }
  CHECK(scale_a > 0);
  CHECK(scale_b > 2.0f * scale_a);  // each input got its own range

  // Run both models on the same two inputs: integer within one level of the simulation.
  std::vector<float> xa = random_floats(rng, 8 * 32, -1.0f, 1.0f), xb = random_floats(rng, 8 * 48, -3.0f, 3.0f);
  std::vector<std::vector<float>> outs;
  for (const Graph* m : {&q, &sim}) {
    Interpreter interp;
    PrepareOptions opt;
    opt.batch = 8;
    REQUIRE(interp.prepare(*m, opt).is_ok());
    std::memcpy(interp.input(0).data, xa.data(), xa.size() * sizeof(float));
    std::memcpy(interp.input(1).data, xb.data(), xb.size() * sizeof(float));
    REQUIRE(interp.invoke().is_ok());
    const float* o = interp.output(0).as<const float>();
    outs.emplace_back(o, o + 8 * 64);
  }
  check_within_one_level(outs[0], outs[1], output_step(q));

  quant::CalibrationData one = calib;
  one.more_inputs.clear();
  const Status missing = quant::quantize_graph_rtn(g, one, bits(8, 8), &q, nullptr, nullptr);
  CHECK_FALSE(missing.is_ok());
  CHECK(std::string(missing.message()).find("the model has 2 inputs; the calibration data holds 1") != std::string::npos);
  quant::CalibrationData wrong = calib;
  wrong.more_inputs[0].resize(40 * 47);
  const Status size = quant::quantize_graph_rtn(g, wrong, bits(8, 8), &q, nullptr, nullptr);
  CHECK_FALSE(size.is_ok());
  CHECK(std::string(size.message()).find("input 'b'") != std::string::npos);
  // AdaQuant takes single-input models and says so.
  const Status ada = quant::quantize_graph_adaquant(g, calib, quant::AdaQuantOptions(), &q, nullptr);
  CHECK_FALSE(ada.is_ok());
  CHECK(std::string(ada.message()).find("single-input") != std::string::npos);
}

TEST_CASE("rtn: Add and Mul with one constant operand run int8, the constant quantized per tensor") {
  Graph g = conv_pool_fc_graph();
  const int32_t pool_out = g.operators[1].outputs[0];
  const std::vector<float> scale = {0.5f, 1.5f, -1.0f, 2.0f, 0.25f, 1.0f}, shift = {0.1f, -0.3f, 0.0f, 0.2f, 0.4f, -0.1f};
  const int32_t sc = g.add_constant("scale", DType::kFloat32, {6}, scale.data(), scale.size() * 4);
  const int32_t sh = g.add_constant("shift", DType::kFloat32, {6}, shift.data(), shift.size() * 4);
  const int32_t scaled = g.add_tensor("scaled", DType::kFloat32, {-1, 4, 4, 6});
  const int32_t shifted = g.add_tensor("shifted", DType::kFloat32, {-1, 4, 4, 6});
  Operator mul;
  mul.type = OpType::kMul;
  mul.name = "mul";
  mul.inputs = {pool_out, sc};
  mul.outputs = {scaled};
  Operator add;
  add.type = OpType::kAdd;
  add.name = "add";
  add.inputs = {sh, scaled};  // the constant first
  add.outputs = {shifted};
  g.operators[2].inputs[0] = shifted;
  g.operators.insert(g.operators.begin() + 2, {mul, add});
  REQUIRE(validate_graph(g).is_ok());
  const quant::CalibrationData calib = random_calibration(g, 48, 13);
  Graph q, sim;
  quant::RtnReport report;
  const Status s = quant::quantize_graph_rtn(g, calib, bits(8, 8), &q, &sim, &report);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  int int8_binary = 0;
  for (const Operator& op : q.operators) {
    if (op.type != OpType::kMul && op.type != OpType::kAdd) continue;
    CHECK(q.tensors[op.outputs[0]].dtype == DType::kInt8);
    for (int32_t t : op.inputs) {
      CHECK(q.tensors[t].dtype == DType::kInt8);
      if (q.tensors[t].is_constant()) CHECK(q.tensors[t].quant.scale.size() == 1);
    }
    ++int8_binary;
  }
  CHECK(int8_binary == 2);
  std::mt19937 rng(5);
  const std::vector<float> x = random_floats(rng, 30 * 8 * 8 * 3, -1.0f, 1.5f);
  std::vector<uint8_t> bytes;
  REQUIRE(serialize_model(q, &bytes).is_ok());
  Graph loaded, rebuilt;
  REQUIRE(load_model(bytes.data(), bytes.size(), &loaded, "const.tqm").is_ok());
  REQUIRE(quant::build_simulated_graph(loaded, &rebuilt).is_ok());
  check_within_one_level(run(loaded, x, 30), run(rebuilt, x, 30), output_step(q));
  const std::vector<float> yf = run(g, x, 30), yq = run(loaded, x, 30);
  double sig = 0, err = 0;
  for (size_t i = 0; i < yf.size(); ++i) sig += double(yf[i]) * yf[i], err += double(yf[i] - yq[i]) * (yf[i] - yq[i]);
  MESSAGE("W8A8 SQNR with int8 constant operands: ", 10 * std::log10(sig / err), " dB");
  CHECK(10 * std::log10(sig / err) > 25.0);
}

// The bits of weighted op `name`'s weights and of its int8 input in quantized graph q.
std::pair<int32_t, int32_t> weight_and_input_bits(const Graph& q, const std::string& name) {
  for (const Operator& op : q.operators)
    if (op.name == name) return {q.tensors[op.inputs[1]].quant.bits, q.tensors[op.inputs[0]].quant.bits};
  FAIL("no operator " << name);
  return {0, 0};
}

TEST_CASE("keep_first_last_8bit: the first and last weighted layers keep 8-bit weights and input, rtn and adaquant") {
  const Graph fg = residual_graph();  // conv1 (first), conv2, fc (last, its input behind GAP -> Reshape)
  const quant::CalibrationData calib = random_calibration(fg, 60, 5);
  using Bits = std::pair<int32_t, int32_t>;
  for (bool keep : {false, true}) {
    quant::RtnOptions o = bits(4, 4);
    o.keep_first_last_8bit = keep;
    Graph q, sim;
    quant::RtnReport report;
    Status s = quant::quantize_graph_rtn(fg, calib, o, &q, &sim, &report);
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    INFO("keep_first_last_8bit ", keep);
    CHECK(weight_and_input_bits(q, "conv1") == (keep ? Bits{8, 8} : Bits{4, 4}));
    CHECK(weight_and_input_bits(q, "conv2") == Bits{4, 4});
    CHECK(weight_and_input_bits(q, "fc") == (keep ? Bits{8, 8} : Bits{4, 4}));
    // The passthrough Reshape shares the GAP output's quantizer, so that one is 8-bit too.
    for (const Operator& op : q.operators)
      if (op.name == "gap") CHECK(q.tensors[op.outputs[0]].quant.bits == (keep ? 8 : 4));
    CHECK(q.calibration.weight_bits == (keep ? std::vector<uint8_t>{8, 4, 8} : std::vector<uint8_t>{4, 4, 4}));

    quant::AdaQuantOptions ao;
    ao.rtn = o;
    ao.adaquant = true;
    ao.sequential = true;
    ao.iterations = 5;
    ao.batch = 10;
    Graph qa;
    quant::AdaQuantReport ar;
    s = quant::quantize_graph_adaquant(fg, calib, ao, &qa, &ar);
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    CHECK(weight_and_input_bits(qa, "conv1") == (keep ? Bits{8, 8} : Bits{4, 4}));
    CHECK(weight_and_input_bits(qa, "conv2") == Bits{4, 4});
    CHECK(weight_and_input_bits(qa, "fc") == (keep ? Bits{8, 8} : Bits{4, 4}));
    REQUIRE(ar.layers.size() == 3);
    CHECK(Bits{ar.layers[0].weight_bits, ar.layers[0].activation_bits} == (keep ? Bits{8, 8} : Bits{4, 4}));
    CHECK(Bits{ar.layers[1].weight_bits, ar.layers[1].activation_bits} == Bits{4, 4});
    CHECK(Bits{ar.layers[2].weight_bits, ar.layers[2].activation_bits} == (keep ? Bits{8, 8} : Bits{4, 4}));
  }
}

TEST_CASE("layer_weight_bits: per-layer weight bits win over the uniform bits and keep_first_last_8bit") {
  const Graph fg = residual_graph();  // ops: conv1, conv2, add, gap, flatten, fc, softmax
  const quant::CalibrationData calib = random_calibration(fg, 60, 5);
  using Bits = std::pair<int32_t, int32_t>;
  quant::RtnOptions o = bits(4, 8);
  o.keep_first_last_8bit = true;
  o.layer_weight_bits = {2, 8, 0, 0, 0, 3, 0};  // conv1 2, conv2 8, fc 3
  Graph q;
  quant::RtnReport report;
  Status s = quant::quantize_graph_rtn(fg, calib, o, &q, nullptr, &report);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  CHECK(weight_and_input_bits(q, "conv1") == Bits{2, 8});
  CHECK(weight_and_input_bits(q, "conv2") == Bits{8, 8});
  CHECK(weight_and_input_bits(q, "fc") == Bits{3, 8});
  CHECK(q.calibration.weight_bits == std::vector<uint8_t>{2, 8, 3});
  // quantized_bytes: the layers' shares plus the activations' scales / zero points make the total.
  const QuantizedBytes qb = quantized_bytes(q);
  int64_t layers = 0;
  for (size_t i = 0; i < q.operators.size(); ++i) layers += quantized_op_bytes(q, i);
  int64_t activation_params = 0;
  for (const Tensor& t : q.tensors)
    if (!t.is_constant())
      activation_params += 4 * int64_t(t.quant.scale.size() + (t.quant.zero_point == std::vector<int32_t>{0} ? 0 : t.quant.zero_point.size()));
  CHECK(qb.layers == 3);
  CHECK(qb.total() == layers + activation_params);
  // conv1: 144 weights at 2 bits (36 bytes) + 4 int32 bias + 4 weight scales; the 4 bias scales
  // are s_in * s_w, implied, not stored (format version 2).
  for (size_t i = 0; i < q.operators.size(); ++i)
    if (q.operators[i].name == "conv1") CHECK(quantized_op_bytes(q, i) == 36 + 16 + 16);
  CHECK(qb.float32 == 4 * (2 * (144 + 4) + 12));

  quant::AdaQuantOptions ao;
  ao.rtn = o;
  ao.iterations = 3;
  ao.batch = 10;
  Graph qa;
  quant::AdaQuantReport ar;
  s = quant::quantize_graph_adaquant(fg, calib, ao, &qa, &ar);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  REQUIRE(ar.layers.size() == 3);
  CHECK(ar.layers[0].weight_bits == 2);
  CHECK(ar.layers[1].weight_bits == 8);
  CHECK(ar.layers[2].weight_bits == 3);
  CHECK(weight_and_input_bits(qa, "fc") == Bits{3, 8});

  o.layer_weight_bits = {2, 8, 0};  // not one per operator
  s = quant::quantize_graph_rtn(fg, calib, o, &q, nullptr, &report);
  REQUIRE_FALSE(s.is_ok());
  CHECK(std::string(s.message()).find("3 values for a graph of 7 operators") != std::string::npos);
  o.layer_weight_bits = {9, 0, 0, 0, 0, 0, 0};
  s = quant::quantize_graph_rtn(fg, calib, o, &q, nullptr, &report);
  REQUIRE_FALSE(s.is_ok());
  CHECK(std::string(s.message()).find("9 for operator 'conv1'") != std::string::npos);
}
