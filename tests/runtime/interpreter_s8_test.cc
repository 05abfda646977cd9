// An int8 graph built by hand — Quantize -> Conv2D s8 (4-bit weights, ReLU) -> MaxPool2D ->
// Reshape -> FullyConnected s8 (3-bit weights) -> Dequantize — run through the Interpreter and
// compared with the same arithmetic written out as plain loops; plus the prepare-time dtype and
// quantization checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "test_util.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/qmath.h"
#include "tinyquant/shape_inference.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

constexpr int kH = 6, kW = 6, kC = 2, kOC = 4, kF = 3, kFlat = 3 * 3 * kOC;

struct Model {
  Graph g;
  std::vector<int8_t> conv_w, fc_w;  // unpacked
  std::vector<float> conv_s, fc_s;
  std::vector<int32_t> conv_b, fc_b;
  int32_t conv_op = -1, x = -1, q = -1, conv = -1, fc_bias = -1;
};

void set_quant(Tensor& t, float scale, int32_t zero_point, int32_t bits = 8) {
  t.quant.scale = {scale};
  t.quant.zero_point = {zero_point};
  t.quant.bits = bits;
}

int32_t add_weights(Graph& g, const char* name, std::vector<int32_t> shape, const std::vector<int8_t>& values,
                    int32_t bits, const std::vector<float>& scales) {
  std::vector<uint8_t> packed(static_cast<size_t>(packed_bytes(DType::kInt8, int64_t(values.size()), bits)));
  qmath::pack_weights(values.data(), int64_t(values.size()), bits, packed.data());
  const int32_t t = g.add_constant(name, DType::kInt8, std::move(shape), packed.data(), packed.size());
  g.tensors[t].quant.bits = bits;
  g.tensors[t].quant.axis = 0;
  g.tensors[t].quant.scale = scales;
  g.tensors[t].quant.zero_point.assign(scales.size(), 0);
  return t;
}

Model build(std::mt19937& rng) {
  Model m;
  Graph& g = m.g;
  m.x = g.add_tensor("x", DType::kFloat32, {-1, kH, kW, kC});
  m.q = g.add_tensor("x_q", DType::kInt8, {-1, kH, kW, kC});
  set_quant(g.tensors[m.q], 0.02f, -3);
  Operator quantize;
  quantize.type = OpType::kQuantize;
  quantize.name = "quantize";
  quantize.inputs = {m.x};
  quantize.outputs = {m.q};
  g.add_operator(quantize);

  for (int i = 0; i < kOC * 9 * kC; ++i) m.conv_w.push_back(int8_t(rand_int(rng, -8, 7)));
  for (int c = 0; c < kOC; ++c) m.conv_s.push_back(0.05f + 0.01f * c), m.conv_b.push_back(rand_int(rng, -400, 400));
  const int32_t cw = add_weights(g, "conv.w", {kOC, 3, 3, kC}, m.conv_w, 4, m.conv_s);
  const int32_t cb = g.add_constant("conv.b", DType::kInt32, {kOC}, m.conv_b.data(), m.conv_b.size() * 4);
  m.conv = g.add_tensor("conv", DType::kInt8, {-1, kH, kW, kOC});
  set_quant(g.tensors[m.conv], 0.03f, -20);
  Operator conv;
  conv.type = OpType::kConv2D;
  conv.name = "conv";
  conv.mutable_conv().padding = {1, 1, 1, 1};
  conv.activation = FusedActivation::relu();
  conv.inputs = {m.q, cw, cb};
  conv.outputs = {m.conv};
  m.conv_op = g.add_operator(conv);

  const int32_t p = g.add_tensor("pool", DType::kInt8, {-1, 3, 3, kOC});
  set_quant(g.tensors[p], 0.03f, -20);
  Operator pool;
  pool.type = OpType::kMaxPool2D;
  pool.name = "pool";
  pool.mutable_pool().kernel_h = pool.mutable_pool().kernel_w = pool.mutable_pool().stride_h = pool.mutable_pool().stride_w = 2;
  pool.inputs = {m.conv};
  pool.outputs = {p};
  g.add_operator(pool);
  const int32_t r = g.add_tensor("flat", DType::kInt8, {-1, kFlat});
  set_quant(g.tensors[r], 0.03f, -20);
  Operator reshape;
  reshape.type = OpType::kReshape;
  reshape.name = "flatten";
  reshape.mutable_new_shape() = {0, -1};
  reshape.inputs = {p};
  reshape.outputs = {r};
  g.add_operator(reshape);

  for (int i = 0; i < kF * kFlat; ++i) m.fc_w.push_back(int8_t(rand_int(rng, -4, 3)));
  for (int c = 0; c < kF; ++c) m.fc_s.push_back(0.1f + 0.02f * c), m.fc_b.push_back(rand_int(rng, -300, 300));
  const int32_t fw = add_weights(g, "fc.w", {kF, kFlat}, m.fc_w, 3, m.fc_s);
  m.fc_bias = g.add_constant("fc.b", DType::kInt32, {kF}, m.fc_b.data(), m.fc_b.size() * 4);
  const int32_t f = g.add_tensor("fc", DType::kInt8, {-1, kF});
  set_quant(g.tensors[f], 0.15f, 5);
  Operator fc;
  fc.type = OpType::kFullyConnected;
  fc.name = "fc";
  fc.inputs = {r, fw, m.fc_bias};
  fc.outputs = {f};
  g.add_operator(fc);
  const int32_t y = g.add_tensor("y", DType::kFloat32, {-1, kF});
  Operator deq;
  deq.type = OpType::kDequantize;
  deq.name = "dequantize";
  deq.inputs = {f};
  deq.outputs = {y};
  g.add_operator(deq);
  g.inputs = {m.x};
  g.outputs = {y};
  return m;
}

// The same network for one image, as plain loops over the definitions in qmath.h.
std::vector<float> naive(const Model& m, const float* image) {
  int8_t xq[kH * kW * kC];
  for (int i = 0; i < kH * kW * kC; ++i) {
    const float v = image[i] * (1.0f / 0.02f);
    xq[i] = int8_t(std::min(127.0, std::max(-128.0, std::nearbyint(double(v)) - 3)));
  }
  int32_t lo, hi;
  qmath::activation_bounds(FusedActivation::relu(), 8, 0.03f, -20, &lo, &hi);
  int8_t conv[kH * kW * kOC];
  for (int oy = 0; oy < kH; ++oy)
    for (int ox = 0; ox < kW; ++ox)
      for (int oc = 0; oc < kOC; ++oc) {
        int32_t acc = m.conv_b[oc];
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            const int iy = oy - 1 + ky, ix = ox - 1 + kx;
            if (iy < 0 || iy >= kH || ix < 0 || ix >= kW) continue;
            for (int ic = 0; ic < kC; ++ic)
              acc += (xq[(iy * kW + ix) * kC + ic] + 3) * m.conv_w[((oc * 3 + ky) * 3 + kx) * kC + ic];
          }
        conv[(oy * kW + ox) * kOC + oc] =
            int8_t(qmath::requantize(acc, qmath::requant_scale(0.02f, m.conv_s[oc], 0.03f), -20, lo, hi));
      }
  int8_t flat[kFlat];
  for (int oy = 0; oy < 3; ++oy)
    for (int ox = 0; ox < 3; ++ox)
      for (int c = 0; c < kOC; ++c) {
        int8_t v = -128;
        for (int ky = 0; ky < 2; ++ky)
          for (int kx = 0; kx < 2; ++kx) v = std::max(v, conv[((oy * 2 + ky) * kW + ox * 2 + kx) * kOC + c]);
        flat[(oy * 3 + ox) * kOC + c] = v;
      }
  std::vector<float> out(kF);
  for (int o = 0; o < kF; ++o) {
    int32_t acc = m.fc_b[o];
    for (int i = 0; i < kFlat; ++i) acc += (flat[i] + 20) * m.fc_w[o * kFlat + i];
    const int32_t q = qmath::requantize(acc, qmath::requant_scale(0.03f, m.fc_s[o], 0.15f), 5, -128, 127);
    out[o] = float(q - 5) * 0.15f;
  }
  return out;
}

std::string prepare_error(const Graph& g) {
  Interpreter interp;
  const Status s = interp.prepare(g, PrepareOptions());
  return s.is_ok() ? std::string() : std::string(s.message());
}

}  // namespace

TEST_CASE("interpreter runs Quantize -> Conv2D s8 (4-bit) -> MaxPool -> FC s8 (3-bit) -> Dequantize bit-exactly") {
  std::mt19937 rng(2026);
  const Model m = build(rng);
  const int batch = 4;
  std::vector<float> images = random_floats(rng, batch * kH * kW * kC, -2.5f, 2.5f);
  // Reference with the portable kernels, reference with the Cortex-M kernels, XNNPACK.
  for (int run = 0; run < 3; ++run) {
    const Backend backend = run == 2 ? Backend::kXnnpack : Backend::kReference;
    if (!backend_available(backend)) continue;
    INFO("backend ", backend_name(backend), " run ", run);
    Interpreter interp;
    PrepareOptions opt;
    opt.batch = batch;
    opt.backend = backend;
    opt.kernels = run == 1 ? KernelSet::kCortexM : KernelSet::kPortable;
    const Status s = interp.prepare(m.g, opt);
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    // The Cortex-M kernels take the conv and the FC (3-bit: an unpacked tile), with scratch.
    int cortex_m_ops = 0;
    for (int i = 0; i < int(m.g.operators.size()); ++i) {
      cortex_m_ops += interp.op_cortex_m(i);
      CHECK((interp.op_scratch_bytes(i) > 0) == interp.op_cortex_m(i));
    }
    CHECK(cortex_m_ops == (run == 1 ? 2 : 0));
    std::memcpy(interp.input(0).data, images.data(), images.size() * 4);
    REQUIRE(interp.invoke().is_ok());
    int nonzero = 0;
    for (int b = 0; b < batch; ++b) {
      const std::vector<float> want = naive(m, images.data() + b * kH * kW * kC);
      for (int o = 0; o < kF; ++o) {
        CHECK(interp.output(0).as<float>()[b * kF + o] == want[o]);
        nonzero += want[o] != 0.0f;
      }
    }
    CHECK(nonzero > 0);
    // Int8 activations take one byte per element: far below what float activations would need.
    CHECK(interp.arena_bytes() < size_t(batch) * (kH * kW * kC * 4 + kH * kW * kOC * 2));
  }
}

TEST_CASE("prepare rejects malformed int8 graphs with a message naming the op and tensor") {
  std::mt19937 rng(3);
  {
    Model m = build(rng);
    m.g.tensors[m.fc_bias].dtype = DType::kFloat32;  // 3 x int32 bytes == 3 x float32 bytes
    const std::string e = prepare_error(m.g);
    CHECK(e.find("fc.b") != std::string::npos);
    CHECK(e.find("int32") != std::string::npos);
  }
  {
    Model m = build(rng);
    m.g.tensors[m.g.operators[m.conv_op].inputs[1]].quant.scale.pop_back();
    m.g.tensors[m.g.operators[m.conv_op].inputs[1]].quant.zero_point.pop_back();
    m.g.tensors[m.g.operators[m.conv_op].inputs[1]].quant.axis = -1;
    m.g.tensors[m.g.operators[m.conv_op].inputs[1]].quant.scale.resize(1);
    m.g.tensors[m.g.operators[m.conv_op].inputs[1]].quant.zero_point.resize(1);
    const std::string e = prepare_error(m.g);
    CHECK(e.find("conv.w") != std::string::npos);
    CHECK(e.find("one per output channel") != std::string::npos);
  }
  {
    Model m = build(rng);
    m.g.tensors[m.conv].quant.scale.clear();  // int8 activation without a scale
    m.g.tensors[m.conv].quant.zero_point.clear();
    const std::string e = prepare_error(m.g);
    CHECK(e.find("'conv'") != std::string::npos);
    CHECK(e.find("one scale") != std::string::npos);
  }
  {
    Model m = build(rng);
    m.g.tensors[m.q].quant.zero_point = {200};
    CHECK(prepare_error(m.g).find("zero point 200") != std::string::npos);
  }
  {
    Model m = build(rng);
    m.g.tensors[m.q].dtype = DType::kFloat32;  // Quantize must produce int8
    const std::string e = prepare_error(m.g);
    CHECK(e.find("Quantize") != std::string::npos);
  }
  {
    Model m = build(rng);
    m.g.tensors[m.conv].quant.scale = {0.5f};  // the pool's input and output no longer share quantization
    const std::string e = prepare_error(m.g);
    CHECK(e.find("MaxPool2D 'pool'") != std::string::npos);
    CHECK(e.find("share quantization") != std::string::npos);
  }
}
