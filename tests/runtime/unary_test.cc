// Unary (every function of tinyquant/unary.h), Sub and Div on the reference kernels, the int8
// lookup table and its kernel, and the checks prepare makes on an int8 Unary.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/reference/reference_kernels.h"
#include "test_util.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/op_info.h"
#include "tinyquant/unary.h"

namespace tinyquant {
namespace {

// The ONNX definitions in double precision, written out independently of unary.cc.
double onnx_unary(const UnaryOptions& f, double x) {
  switch (f.kind) {
    case UnaryKind::kSigmoid: return 1.0 / (1.0 + std::exp(-x));
    case UnaryKind::kTanh: return std::tanh(x);
    case UnaryKind::kHardSigmoid: return std::max(0.0, std::min(1.0, double(f.alpha) * x + double(f.beta)));
    case UnaryKind::kHardSwish: return x * std::max(0.0, std::min(1.0, x / 6.0 + 0.5));
    case UnaryKind::kLeakyRelu: return x >= 0 ? x : double(f.alpha) * x;
    case UnaryKind::kElu: return x >= 0 ? x : double(f.alpha) * (std::exp(x) - 1.0);
    case UnaryKind::kExp: return std::exp(x);
    case UnaryKind::kLog: return std::log(x);
    case UnaryKind::kSqrt: return std::sqrt(x);
    case UnaryKind::kAbs: return std::fabs(x);
    case UnaryKind::kNeg: return -x;
    case UnaryKind::kErf: return std::erf(x);
    case UnaryKind::kGelu: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case UnaryKind::kGeluTanh: return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
    case UnaryKind::kPow: return std::pow(x, double(f.alpha));
    case UnaryKind::kReciprocal: return 1.0 / x;
    case UnaryKind::kSoftplus: return std::log(1.0 + std::exp(x));
    case UnaryKind::kCount: break;
  }
  return NAN;
}

std::vector<UnaryOptions> every_unary() {
  std::vector<UnaryOptions> out;
  for (int k = 0; k < static_cast<int>(UnaryKind::kCount); ++k) {
    UnaryOptions f;
    f.kind = static_cast<UnaryKind>(k);
    if (f.kind == UnaryKind::kHardSigmoid) f.alpha = 0.2f, f.beta = 0.5f;
    if (f.kind == UnaryKind::kLeakyRelu) f.alpha = 0.1f;
    if (f.kind == UnaryKind::kElu) f.alpha = 1.5f;
    if (f.kind == UnaryKind::kPow) f.alpha = 3.0f;
    out.push_back(f);
  }
  return out;
}

// Inputs where f is defined (Log, Sqrt: positive; Pow with exponent 3: any).
bool in_domain(const UnaryOptions& f, double x) {
  return (f.kind != UnaryKind::kLog && f.kind != UnaryKind::kSqrt) || x > 0.0;
}

}  // namespace

TEST_CASE("unary: every function matches its ONNX definition") {
  for (const UnaryOptions& f : every_unary()) {
    const std::string kind = unary_kind_name(f.kind);
    CAPTURE(kind);
    double worst = 0.0;
    int points = 0;
    for (int i = -400; i <= 400; ++i) {
      const float x = 0.02f * static_cast<float>(i) + 0.0037f;  // off the exact grid (no x = 0 for Reciprocal)
      if (!in_domain(f, x)) continue;
      const double want = onnx_unary(f, x), got = unary_apply(f, x);
      worst = std::max(worst, std::fabs(got - want) / std::max(1.0, std::fabs(want)));
      ++points;
    }
    CHECK(points > 300);
    CHECK(worst < 2e-6);
  }
  // Spot values from the ONNX operator documentation.
  CHECK(unary_apply({UnaryKind::kSigmoid, 0, 0}, 0.0f) == 0.5f);
  CHECK(unary_apply({UnaryKind::kHardSigmoid, 0.2f, 0.5f}, 1.0f) == doctest::Approx(0.7f));
  CHECK(unary_apply({UnaryKind::kHardSwish, 0, 0}, 3.0f) == 3.0f);
  CHECK(unary_apply({UnaryKind::kHardSwish, 0, 0}, -3.0f) == 0.0f);
  CHECK(unary_apply({UnaryKind::kLeakyRelu, 0.1f, 0}, -2.0f) == doctest::Approx(-0.2f));
  CHECK(unary_apply({UnaryKind::kGelu, 0, 0}, 1.0f) == doctest::Approx(0.8413447f).epsilon(1e-6));
  CHECK(unary_apply({UnaryKind::kGeluTanh, 0, 0}, 1.0f) == doctest::Approx(0.8411920f).epsilon(1e-6));
  CHECK(unary_apply({UnaryKind::kSoftplus, 0, 0}, 0.0f) == doctest::Approx(std::log(2.0f)));
  CHECK(unary_apply({UnaryKind::kSoftplus, 0, 0}, 100.0f) == 100.0f);  // no overflow to inf
  CHECK(unary_apply({UnaryKind::kPow, 2.0f, 0}, -3.0f) == 9.0f);
  CHECK(unary_apply({UnaryKind::kReciprocal, 0, 0}, 4.0f) == 0.25f);
  CHECK(std::isnan(unary_apply({UnaryKind::kSqrt, 0, 0}, -1.0f)));
}

TEST_CASE("unary: the reference kernels apply f elementwise; Sub and Div broadcast") {
  std::mt19937 rng(41);
  std::vector<float> x = testing::random_floats(rng, 2 * 3 * 5, 0.1f, 3.0f), y(x.size());
  const Dims d = testing::dims_of({2, 3, 5});
  for (const UnaryOptions& f : every_unary()) {
    const std::string kind = unary_kind_name(f.kind);
    CAPTURE(kind);
    reference::unary_f32(f, testing::view(x, d), testing::view(y, d));
    for (size_t i = 0; i < x.size(); ++i) CHECK(y[i] == unary_apply(f, x[i]));
  }
  std::vector<float> b = {2.0f, -4.0f, 0.5f, 8.0f, -1.0f}, out(x.size());
  reference::sub_f32(FusedActivation(), testing::view(x, d), testing::view(b, testing::dims_of({5})),
                     testing::view(out, d));
  for (size_t i = 0; i < x.size(); ++i) CHECK(out[i] == x[i] - b[i % 5]);
  reference::div_f32(FusedActivation::relu(), testing::view(b, testing::dims_of({5})), testing::view(x, d),
                     testing::view(out, d));
  for (size_t i = 0; i < x.size(); ++i) CHECK(out[i] == std::max(0.0f, b[i % 5] / x[i]));
}

TEST_CASE("unary: the int8 lookup table is Quantize(f(Dequantize(q))), and the kernel reads it") {
  std::mt19937 rng(42);
  int entries = 0, exact = 0;
  for (const UnaryOptions& f : every_unary()) {
    const std::string kind = unary_kind_name(f.kind);
    CAPTURE(kind);
    for (int trial = 0; trial < 6; ++trial) {
      Quantization in, out;
      in.bits = trial % 2 ? 8 : 5;
      out.bits = trial % 3 ? 8 : 4;
      in.scale = {testing::rand_scale(rng, 0.005f, 0.1f)};
      out.scale = {testing::rand_scale(rng, 0.005f, 0.1f)};
      in.zero_point = {testing::rand_int(rng, qmath::qmin(in.bits), qmath::qmax(in.bits))};
      out.zero_point = {testing::rand_int(rng, qmath::qmin(out.bits), qmath::qmax(out.bits))};
      int8_t table[kLookupTableSize];
      REQUIRE(build_unary_table(f, in, out, table).is_ok());
      for (int q = -128; q < 128; ++q) {
        const double x = double(q - in.zero_point[0]) * in.scale[0];
        const double y = onnx_unary(f, x);
        double want;  // saturating quantization of the exact value
        if (std::isnan(y) || y == -INFINITY)
          want = qmath::qmin(out.bits);
        else
          want = std::min<double>(qmath::qmax(out.bits),
                                  std::max<double>(qmath::qmin(out.bits), std::nearbyint(y / out.scale[0]) +
                                                                              out.zero_point[0]));
        const int got = table[q + 128];
        ++entries;
        exact += got == want;
        CHECK(std::fabs(got - want) <= 1.0);  // float evaluation may land across a rounding boundary
        CHECK(got >= qmath::qmin(out.bits));
        CHECK(got <= qmath::qmax(out.bits));
      }
      // The kernel: y[i] = table[x[i] + 128].
      std::vector<int8_t> xs(64), ys(64);
      for (int8_t& v : xs) v = static_cast<int8_t>(testing::rand_int(rng, -128, 127));
      TensorView vx, vt, vy;
      vx.dtype = vt.dtype = vy.dtype = DType::kInt8;
      vx.dims = vy.dims = testing::dims_of({64});
      vt.dims = testing::dims_of({kLookupTableSize});
      vx.data = xs.data();
      vt.data = table;
      vy.data = ys.data();
      reference::lookup_s8(vx, vt, vy);
      for (int i = 0; i < 64; ++i) CHECK(ys[i] == table[xs[i] + 128]);
    }
  }
  MESSAGE(exact, " of ", entries, " table entries equal the exact value's code");
  CHECK(exact >= entries * 99 / 100);
  // Log(0) is -inf and Log(<0) NaN: the bottom code; Reciprocal(+0) is +inf: the top one.
  Quantization in, out;
  in.scale = {1.0f};
  in.zero_point = {0};
  out.scale = {0.1f};
  out.zero_point = {-3};
  int8_t table[kLookupTableSize];
  REQUIRE(build_unary_table({UnaryKind::kLog, 0, 0}, in, out, table).is_ok());
  CHECK(table[128] == -128);
  CHECK(table[127] == -128);
  REQUIRE(build_unary_table({UnaryKind::kReciprocal, 0, 0}, in, out, table).is_ok());
  CHECK(table[128] == 127);
  out.scale = {0.0f};
  const Status bad = build_unary_table({UnaryKind::kTanh, 0, 0}, in, out, table);
  CHECK(!bad.is_ok());
  CHECK(std::string(bad.message()).find("Tanh") != std::string::npos);
}

namespace {

// Quantize -> Unary(table) -> Dequantize on [1,16].
Graph int8_unary_graph(const UnaryOptions& f, bool with_table, int table_size = kLookupTableSize) {
  Graph g;
  const int32_t x = g.add_tensor("x", DType::kFloat32, {1, 16});
  const int32_t xq = g.add_tensor("x:q", DType::kInt8, {1, 16});
  g.tensors[xq].quant.scale = {0.05f};
  g.tensors[xq].quant.zero_point = {3};
  const int32_t yq = g.add_tensor("y:q", DType::kInt8, {1, 16});
  g.tensors[yq].quant.scale = {1.0f / 128.0f};
  g.tensors[yq].quant.zero_point = {0};
  const int32_t y = g.add_tensor("y", DType::kFloat32, {1, 16});
  Operator op;
  op.type = OpType::kQuantize;
  op.name = "quantize";
  op.inputs = {x};
  op.outputs = {xq};
  g.add_operator(op);
  op = Operator();
  op.type = OpType::kUnary;
  op.name = "tanh";
  op.mutable_unary() = f;
  op.inputs = {xq};
  if (with_table) {
    std::vector<int8_t> table(table_size);
    if (table_size == kLookupTableSize)
      REQUIRE(build_unary_table(f, g.tensors[xq].quant, g.tensors[yq].quant, table.data()).is_ok());
    op.inputs.push_back(g.add_constant("tanh:table", DType::kInt8, {table_size}, table.data(), table.size()));
  }
  op.outputs = {yq};
  g.add_operator(op);
  op = Operator();
  op.type = OpType::kDequantize;
  op.name = "dequantize";
  op.inputs = {yq};
  op.outputs = {y};
  g.add_operator(op);
  g.inputs = {x};
  g.outputs = {y};
  return g;
}

}  // namespace

TEST_CASE("unary: an int8 Unary runs its table on both backends, identically") {
  const UnaryOptions f{UnaryKind::kTanh, 0.0f, 0.0f};
  const Graph g = int8_unary_graph(f, true);
  std::vector<float> xs(16);
  for (int i = 0; i < 16; ++i) xs[i] = -2.0f + 0.27f * static_cast<float>(i);
  std::vector<std::vector<float>> results;
  for (Backend backend : {Backend::kReference, Backend::kXnnpack}) {
    if (!backend_available(backend)) continue;
    Interpreter interp;
    PrepareOptions opt;
    opt.backend = backend;
    REQUIRE(interp.prepare(g, opt).is_ok());
    std::memcpy(interp.input(0).data, xs.data(), sizeof(float) * xs.size());
    REQUIRE(interp.invoke().is_ok());
    const float* y = interp.output(0).as<const float>();
    results.emplace_back(y, y + 16);
    for (int i = 0; i < 16; ++i) CHECK(std::fabs(y[i] - std::tanh(xs[i])) <= 0.05f / 2 + 1.0f / 128);
  }
  for (size_t r = 1; r < results.size(); ++r) CHECK(results[r] == results[0]);
}

TEST_CASE("unary: prepare rejects an int8 Unary without its table or with a wrong one") {
  const UnaryOptions f{UnaryKind::kSigmoid, 0.0f, 0.0f};
  for (int variant = 0; variant < 2; ++variant) {
    const Graph g = variant == 0 ? int8_unary_graph(f, false) : int8_unary_graph(f, true, 128);
    Interpreter interp;
    const Status s = interp.prepare(g, PrepareOptions());
    REQUIRE(!s.is_ok());
    const std::string m = s.message();
    CAPTURE(m);
    CHECK(m.find("tanh") != std::string::npos);  // the op's name
    CHECK(m.find(variant == 0 ? "lookup table" : "int8 [256]") != std::string::npos);
  }
}

}  // namespace tinyquant
