// The calibration stream (quant/src/stream.h): a frontier advanced op range by op range gives
// every tensor exactly the values one full run of the network gives, on the float graph and on
// a quantized graph's simulated twin keyed by the quantized graph.
#include <doctest/doctest.h>

#include <map>

#include "quant/quant_test_graphs.h"
#include "quant/src/rewrite.h"
#include "quant/src/stream.h"
#include "test_util.h"
#include "tinyquant/interpreter.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

// Every float activation of `g` over all samples in one invoke (the reference backend's results do
// not depend on the batch size).
std::map<int32_t, std::vector<float>> full_run(const Graph& g, const quant::CalibrationData& c,
                                               Backend backend = Backend::kReference) {
  struct Ctx {
    const Graph* g;
    std::map<int32_t, std::vector<float>> out;
  } ctx{&g, {}};
  Interpreter interp;
  PrepareOptions opt;
  opt.batch = c.samples;
  opt.backend = backend;
  REQUIRE(interp.prepare(g, opt).is_ok());
  std::copy(c.values.begin(), c.values.end(), interp.input(0).as<float>());
  ctx.out[g.inputs[0]] = c.values;
  interp.set_op_callback(
      [](void* user, int32_t op, const Interpreter& in) {
        Ctx& x = *static_cast<Ctx*>(user);
        for (int32_t t : x.g->operators[op].outputs) {
          const TensorView v = in.tensor(t);
          if (v.dtype == DType::kFloat32) {
            x.out[t].assign(v.as<const float>(), v.as<const float>() + v.elements());
          } else if (v.dtype == DType::kInt8) {  // as the Dequantize kernel expands it
            const Quantization& q = x.g->tensors[t].quant;
            const int32_t z = q.zero_point.empty() ? 0 : q.zero_point[0];
            std::vector<float>& o = x.out[t];
            o.resize(static_cast<size_t>(v.elements()));
            for (size_t i = 0; i < o.size(); ++i) o[i] = float(int32_t(v.as<const int8_t>()[i]) - z) * q.scale[0];
          }
        }
        return true;
      },
      &ctx);
  REQUIRE(interp.invoke().is_ok());
  return ctx.out;
}

std::vector<float> vec(const quant::SampleValues& v) { return std::vector<float>(v->begin(), v->end()); }

int32_t tensor_named(const Graph& g, const std::string& name) {
  for (size_t t = 0; t < g.tensors.size(); ++t)
    if (g.tensors[t].name == name) return static_cast<int32_t>(t);
  FAIL("no tensor ", name);
  return -1;
}

// The streams' settings for a quantized graph: 4-bit weights, batches of 2 (5 samples: 2 + 2 + 1).
quant::RtnOptions stream_options(int32_t activation_bits) {
  quant::RtnOptions opt;
  opt.weight_bits = 4;
  opt.activation_bits = activation_bits;
  opt.batch = 2;
  return opt;
}

Graph rtn_quantized(const Graph& g, const quant::CalibrationData& calib, const quant::RtnOptions& opt) {
  Graph q, sim_unused;
  quant::RtnReport report;
  REQUIRE(quant::quantize_graph_rtn(g, calib, opt, &q, &sim_unused, &report).is_ok());
  return q;
}

int32_t op_named(const Graph& g, const std::string& name) {
  for (size_t i = 0; i < g.operators.size(); ++i)
    if (g.operators[i].name == name) return static_cast<int32_t>(i);
  FAIL("no operator ", name);
  return -1;
}

}  // namespace

TEST_CASE("a float frontier advanced in pieces gives every tensor a full run's values") {
  const Graph g = residual_graph();
  const quant::CalibrationData calib = random_calibration(g, 7, 3);
  const auto ref = full_run(g, calib);
  quant::RtnOptions opt;
  opt.batch = 3;  // 3 + 3 + 1: the last batch re-prepares
  quant::Frontier f;
  REQUIRE(f.init(g, calib, 6 * 6 * 4, opt).is_ok());
  quant::FrontierView view;
  view.graph = &g;
  const int32_t in = g.inputs[0], c1 = tensor_named(g, "conv1_out"), c2 = tensor_named(g, "conv2_out"),
                sum = tensor_named(g, "sum"), logits = tensor_named(g, "logits");
  std::vector<quant::SampleValues> got;
  // Look ahead to conv2's output without moving: the frontier still stands at 0.
  REQUIRE(f.run(view, 2, {c2}, false, &got).is_ok());
  CHECK(f.boundary() == 0);
  CHECK(vec(got[0]) == ref.at(c2));
  // Op 0 (conv1): the input dies, conv1's output is live (read by conv2 and the add).
  REQUIRE(f.run(view, 1, {in, c1}, true, &got).is_ok());
  CHECK(vec(got[0]) == calib.values);
  CHECK(vec(got[1]) == ref.at(c1));
  CHECK(f.bytes() == int64_t(7 * 144 * sizeof(float)));
  // Ops 1..2 (conv2, add): conv1_out is still wanted though it dies here.
  REQUIRE(f.run(view, 3, {c1, sum}, true, &got).is_ok());
  CHECK(vec(got[0]) == ref.at(c1));
  CHECK(vec(got[1]) == ref.at(sum));
  // Straight to the logits.
  REQUIRE(f.run(view, 6, {logits}, true, &got).is_ok());
  CHECK(vec(got[0]) == ref.at(logits));
  // A tensor that is neither live nor produced in the range is refused by name.
  const Status s = f.run(view, 6, {c1}, false, &got);
  CHECK(s.code() == StatusCode::kInternal);
  CHECK(std::string(s.message()).find("conv1_out") != std::string::npos);
  // Backwards is refused.
  CHECK(!f.run(view, 2, {}, true, &got).is_ok());
}

TEST_CASE("a frontier keyed by a quantized graph runs its simulated twin, a quantizer left out") {
  const Graph g = residual_graph();
  const quant::CalibrationData calib = random_calibration(g, 5, 4);
  quant::RtnOptions opt = stream_options(4);
  const Graph q = rtn_quantized(g, calib, opt);
  for (Backend backend : {Backend::kReference, Backend::kXnnpack}) {
    if (!backend_available(backend)) continue;
    opt.backend = backend;  // the float kernels differ between backends; each is compared with itself
    INFO("backend ", backend_name(backend));
    // conv1's output (int8, read by conv2 and the add) computed in float: AdaQuant's view for conv2.
    const int32_t qc1 = tensor_named(q, "conv1_out");
    REQUIRE(q.tensors[qc1].dtype == DType::kInt8);
    for (bool through_c1 : {false, true}) {
      std::vector<bool> through(q.tensors.size(), false);
      through[qc1] = through_c1;
      Graph sim;
      quant::SimulatedMap smap;
      REQUIRE(quant::build_simulated_graph_mapped(q, through, &sim, &smap).is_ok());
      const auto ref = full_run(sim, calib, backend);
      quant::FrontierView view;
      view.graph = &sim;
      view.tensor = smap.value;
      view.op_begin = smap.op_begin;
      quant::Frontier f;
      REQUIRE(f.init(q, calib, 6 * 6 * 4, opt).is_ok());
      std::vector<quant::SampleValues> got;
      const int32_t conv2 = op_named(q, "conv2");
      // Advance to conv2, whose input is conv1's output, in pieces of one quantized op; conv1's
      // int8 output is held as codes (a quarter of its float bytes) unless it is left in float.
      for (int32_t b = 1; b <= conv2; ++b) REQUIRE(f.run(view, b, {}, true, &got).is_ok());
      const int64_t c1_bytes = int64_t(5) * 144 * (through_c1 ? sizeof(float) : 1);
      CHECK(f.bytes() == c1_bytes);
      REQUIRE(f.run(view, conv2, {qc1}, false, &got).is_ok());
      INFO("conv1 output left in float: ", through_c1);
      CHECK(vec(got[0]) == ref.at(smap.value[qc1]));
      // The last int8 activation before the Dequantize, through to the end.
      const int32_t qsum = tensor_named(q, "sum");
      const Status to_end = f.run(view, static_cast<int32_t>(q.operators.size()), {qsum}, true, &got);
      REQUIRE_MESSAGE(to_end.is_ok(), std::string(to_end.message()));
      CHECK(vec(got[0]) == ref.at(smap.value[qsum]));
    }
  }
}

TEST_CASE("a frontier over a quantized graph run as itself holds its int8 activations as codes") {
  const Graph g = residual_graph();
  const quant::CalibrationData calib = random_calibration(g, 5, 6);
  quant::RtnOptions opt = stream_options(8);
  const Graph q = rtn_quantized(g, calib, opt);
  for (Backend backend : {Backend::kReference, Backend::kXnnpack}) {
    if (!backend_available(backend)) continue;
    opt.backend = backend;
    INFO("backend ", backend_name(backend));
    const auto ref = full_run(q, calib, backend);
    quant::FrontierView view;
    view.graph = &q;
    quant::Frontier f;
    REQUIRE(f.init(q, calib, 6 * 6 * 4, opt).is_ok());
    const int32_t c1 = tensor_named(q, "conv1_out"), sum = tensor_named(q, "sum");
    const int32_t conv2 = op_named(q, "conv2");
    std::vector<quant::SampleValues> got;
    REQUIRE(f.run(view, conv2, {c1}, true, &got).is_ok());
    CHECK(vec(got[0]) == ref.at(c1));
    CHECK(f.bytes() == int64_t(5) * 144);  // conv1's int8 output, one byte per value
    REQUIRE(f.run(view, static_cast<int32_t>(q.operators.size()), {sum}, true, &got).is_ok());
    CHECK(vec(got[0]) == ref.at(sum));
  }
}
