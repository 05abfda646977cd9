// Gather (embeddings) and BatchMatMul (attention): shapes, float values against hand-computed
// products, int8 against the dequantized float product, bad indices, and a .tqm round trip.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tinyquant/interpreter.h"
#include "tinyquant/model_io.h"
#include "tinyquant/qmath.h"
#include "tinyquant/shape_inference.h"

using namespace tinyquant;

namespace {

Operator make_op(OpType type, std::vector<int32_t> inputs, int32_t output) {
  Operator op;
  op.type = type;
  op.name = std::string(op_name(type)) + "_op";
  op.inputs = std::move(inputs);
  op.outputs = {output};
  return op;
}

// y = a [B,M,K] x b [B,K,N], float.
Graph matmul_graph(int32_t b, int32_t m, int32_t k, int32_t n) {
  Graph g;
  const int32_t x = g.add_tensor("a", DType::kFloat32, {b, m, k});
  const int32_t y = g.add_tensor("b", DType::kFloat32, {b, k, n});
  const int32_t z = g.add_tensor("y", DType::kFloat32, {b, m, n});
  g.inputs = {x, y};
  g.outputs = {z};
  g.add_operator(make_op(OpType::kBatchMatMul, {x, y}, z));
  return g;
}

// Token ids [-1,T] (float) -> table [V,D] rows.
Graph gather_graph(int32_t t, const std::vector<float>& table, int32_t v, int32_t d) {
  Graph g;
  const int32_t ids = g.add_tensor("ids", DType::kFloat32, {-1, t});
  const int32_t tab = g.add_constant("table", DType::kFloat32, {v, d}, table.data(), table.size() * sizeof(float));
  const int32_t y = g.add_tensor("emb", DType::kFloat32, {-1, t, d});
  g.inputs = {ids};
  g.outputs = {y};
  g.add_operator(make_op(OpType::kGather, {ids, tab}, y));
  return g;
}

}  // namespace

TEST_CASE("BatchMatMul: float values, shapes and shape errors") {
  const int32_t B = 3, M = 2, K = 5, N = 4;
  Graph g = matmul_graph(B, M, K, N);
  std::vector<Dims> dims;
  REQUIRE(infer_shapes(g, B, &dims).is_ok());  // dim 0 of every input is the batch
  CHECK(dims[2] == Dims::of({B, M, N}));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(B * M * K), b(B * K * N);
  for (float& v : a) v = u(rng);
  for (float& v : b) v = u(rng);
  for (Backend backend : {Backend::kReference, Backend::kXnnpack}) {
    CAPTURE(static_cast<int>(backend));
    Interpreter it;
    PrepareOptions opt;
    opt.backend = backend;
    opt.batch = B;
    Status s = it.prepare(g, opt);
    if (backend == Backend::kXnnpack && !s.is_ok()) continue;  // a build without XNNPACK
    REQUIRE(s.is_ok());
    std::copy(a.begin(), a.end(), it.input(0).as<float>());
    std::copy(b.begin(), b.end(), it.input(1).as<float>());
    REQUIRE(it.invoke().is_ok());
    const float* y = it.output(0).as<const float>();
    for (int i = 0; i < B; ++i)
      for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c) {
          double want = 0.0;
          for (int k = 0; k < K; ++k) want += double(a[(i * M + r) * K + k]) * b[(i * K + k) * N + c];
          CHECK(y[(i * M + r) * N + c] == doctest::Approx(want).epsilon(1e-5));
        }
  }
  SUBCASE("inner dims differ") {
    g.tensors[1].shape = {B, K + 1, N};
    Status s = infer_shapes(g, B, &dims);
    REQUIRE_FALSE(s.is_ok());
    CHECK(std::string(s.message()).find("BatchMatMul 'BatchMatMul_op': 'a' [3,2,5] and 'b' [3,6,4] do not multiply") !=
          std::string::npos);
  }
  SUBCASE("leading dims differ") {
    g.tensors[0].shape = {B, 2, M, K};  // one more leading dim than b
    CHECK_FALSE(infer_shapes(g, B, &dims).is_ok());
    g.tensors[0].shape = {B, M, K};
    g.tensors[1].shape = {B, K, N};
    g.operators[0].inputs = {0, 0};  // [3,2,5] x [3,2,5]: K = 5 against 2 rows
    CHECK_FALSE(infer_shapes(g, B, &dims).is_ok());
  }
  SUBCASE("a constant operand is refused") {
    std::vector<float> w(B * K * N, 1.0f);
    const int32_t c = g.add_constant("w", DType::kFloat32, {B, K, N}, w.data(), w.size() * 4);
    g.operators[0].inputs[1] = c;
    g.inputs = {0};
    Status s = infer_shapes(g, B, &dims);
    REQUIRE_FALSE(s.is_ok());
    CHECK(std::string(s.message()).find("both inputs must be activations") != std::string::npos);
  }
}

TEST_CASE("BatchMatMul int8: within one output step of the dequantized float product") {
  const int32_t B = 2, M = 3, K = 16, N = 5;
  Graph g = matmul_graph(B, M, K, N);
  const float sa = 0.05f, sb = 0.03f, sy = 0.08f;
  const int32_t za = 3, zb = -7, zy = 1;
  for (int i = 0; i < 3; ++i) g.tensors[i].dtype = DType::kInt8;
  g.tensors[0].quant.scale = {sa};
  g.tensors[0].quant.zero_point = {za};
  g.tensors[1].quant.scale = {sb};
  g.tensors[1].quant.zero_point = {zb};
  g.tensors[2].quant.scale = {sy};
  g.tensors[2].quant.zero_point = {zy};
  Interpreter it;
  PrepareOptions opt;
  opt.batch = B;
  REQUIRE(it.prepare(g, opt).is_ok());
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> q(-128, 127);
  std::vector<int8_t> a(B * M * K), b(B * K * N);
  for (int8_t& v : a) v = static_cast<int8_t>(q(rng));
  for (int8_t& v : b) v = static_cast<int8_t>(q(rng));
  std::copy(a.begin(), a.end(), it.input(0).as<int8_t>());
  std::copy(b.begin(), b.end(), it.input(1).as<int8_t>());
  REQUIRE(it.invoke().is_ok());
  const int8_t* y = it.output(0).as<const int8_t>();
  int saturated = 0;
  for (int i = 0; i < B; ++i)
    for (int r = 0; r < M; ++r)
      for (int c = 0; c < N; ++c) {
        double real = 0.0;
        for (int k = 0; k < K; ++k)
          real += (double(a[(i * M + r) * K + k]) - za) * sa * ((double(b[(i * K + k) * N + c]) - zb) * sb);
        const double code = std::round(real / sy) + zy;
        const int got = y[(i * M + r) * N + c];
        if (code > 127 || code < -128) {
          ++saturated;
          CHECK(got == (code > 127 ? 127 : -128));
        } else {
          CHECK(std::abs(got - code) <= 1.0);
        }
      }
  CHECK(saturated < B * M * N);  // the scales leave most outputs inside the range
}

TEST_CASE("Gather: float rows by token id, int8 4-bit packed rows, and bad ids name the op") {
  const int32_t V = 5, D = 3, T = 4;
  std::vector<float> table(V * D);
  for (int i = 0; i < V * D; ++i) table[i] = 0.25f * i - 1.0f;
  Graph g = gather_graph(T, table, V, D);
  std::vector<Dims> dims;
  REQUIRE(infer_shapes(g, 2, &dims).is_ok());
  CHECK(dims[2] == Dims::of({2, T, D}));
  Interpreter it;
  PrepareOptions opt;
  opt.batch = 2;
  REQUIRE(it.prepare(g, opt).is_ok());
  const float ids[2 * T] = {0, 4, 2, 2, 1, 0, 3, 4};
  std::copy(ids, ids + 2 * T, it.input(0).as<float>());
  REQUIRE(it.invoke().is_ok());
  const float* y = it.output(0).as<const float>();
  for (int i = 0; i < 2 * T; ++i)
    for (int j = 0; j < D; ++j) CHECK(y[i * D + j] == table[int(ids[i]) * D + j]);

  SUBCASE("an id out of range") {
    it.input(0).as<float>()[5] = 5.0f;
    Status s = it.invoke();
    REQUIRE_FALSE(s.is_ok());
    CHECK(std::string(s.message()).find("Gather 'Gather_op': index 5 at position 5 is not an integer in [0, 5)") !=
          std::string::npos);
  }
  SUBCASE("a negative or fractional id") {
    it.input(0).as<float>()[0] = -1.0f;
    CHECK_FALSE(it.invoke().is_ok());
    it.input(0).as<float>()[0] = 1.5f;
    Status s = it.invoke();
    REQUIRE_FALSE(s.is_ok());
    CHECK(std::string(s.message()).find("index 1.5 at position 0") != std::string::npos);
    it.input(0).as<float>()[0] = NAN;
    CHECK_FALSE(it.invoke().is_ok());
  }
  SUBCASE("int8 table at 4 bits: the output keeps the table's params") {
    Graph q = gather_graph(T, table, V, D);
    std::vector<int8_t> codes(V * D);
    for (int i = 0; i < V * D; ++i) codes[i] = static_cast<int8_t>(i % 16 - 8);
    std::vector<uint8_t> packed(static_cast<size_t>(packed_bytes(DType::kInt8, V * D, 4)));
    qmath::pack_weights(codes.data(), V * D, 4, packed.data());
    Tensor& t = q.tensors[1];
    t.dtype = DType::kInt8;
    t.quant.scale = {0.5f};
    t.quant.zero_point = {-2};
    t.quant.bits = 4;
    q.buffers[t.buffer].owned = packed;
    Tensor& out = q.tensors[2];
    out.dtype = DType::kInt8;
    out.quant = t.quant;
    Interpreter qi;
    REQUIRE(qi.prepare(q, opt).is_ok());
    std::copy(ids, ids + 2 * T, qi.input(0).as<float>());
    REQUIRE(qi.invoke().is_ok());
    const int8_t* qy = qi.output(0).as<const int8_t>();
    for (int i = 0; i < 2 * T; ++i)
      for (int j = 0; j < D; ++j) CHECK(qy[i * D + j] == codes[int(ids[i]) * D + j]);
    // Output params other than the table's are refused at prepare.
    q.tensors[2].quant.scale = {0.25f};
    Status s = qi.prepare(q, opt);
    REQUIRE_FALSE(s.is_ok());
    CHECK(std::string(s.message()).find("must keep the table's scale") != std::string::npos);
    // And the graph survives a .tqm round trip unchanged.
    q.tensors[2].quant.scale = {0.5f};
    std::vector<uint8_t> bytes;
    REQUIRE(serialize_model(q, &bytes).is_ok());
    Graph back;
    REQUIRE(load_model(bytes.data(), bytes.size(), &back).is_ok());
    REQUIRE(back.operators.size() == 1);
    CHECK(back.operators[0].type == OpType::kGather);
    CHECK(back.tensors[1].quant.bits == 4);
    Interpreter bi;
    REQUIRE(bi.prepare(back, opt).is_ok());
    std::copy(ids, ids + 2 * T, bi.input(0).as<float>());
    REQUIRE(bi.invoke().is_ok());
    for (int i = 0; i < 2 * T * D; ++i) CHECK(bi.output(0).as<const int8_t>()[i] == qy[i]);
  }
  SUBCASE("indices of another dtype are refused") {
    g.tensors[0].dtype = DType::kInt8;
    Status s = infer_shapes(g, 1, &dims);
    REQUIRE_FALSE(s.is_ok());
    CHECK(std::string(s.message()).find("indices 'ids' are int8, expected float32 or int32") != std::string::npos);
  }
}
