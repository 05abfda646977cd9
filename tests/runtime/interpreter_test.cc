#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "test_util.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/shape_inference.h"

using namespace tinyquant;
using namespace tinyquant::testing;

// Counts every C++ heap allocation in the test binary, to prove invoke() makes none.
static std::atomic<long> g_allocations{0};
void* operator new(size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace {

// input [N,6,6,2] -> conv 3x3 (4 ch, relu) -> maxpool 2x2 -> reshape [N,-1] -> FC 3 -> softmax
Graph small_cnn(std::mt19937& rng) {
  Graph g;
  const int32_t x = g.add_tensor("x", DType::kFloat32, {-1, 6, 6, 2});
  std::vector<float> w = random_floats(rng, 4 * 3 * 3 * 2), b = random_floats(rng, 4);
  const int32_t cw = g.add_constant("conv.w", DType::kFloat32, {4, 3, 3, 2}, w.data(), w.size() * 4);
  const int32_t cb = g.add_constant("conv.b", DType::kFloat32, {4}, b.data(), b.size() * 4);
  const int32_t c = g.add_tensor("conv", DType::kFloat32, {-1, 6, 6, 4});
  Operator conv;
  conv.type = OpType::kConv2D;
  conv.name = "conv";
  conv.conv.padding = {1, 1, 1, 1};
  conv.activation = FusedActivation::relu();
  conv.inputs = {x, cw, cb};
  conv.outputs = {c};
  g.add_operator(conv);
  const int32_t p = g.add_tensor("pool", DType::kFloat32, {-1, 3, 3, 4});
  Operator pool;
  pool.type = OpType::kMaxPool2D;
  pool.name = "pool";
  pool.pool.kernel_h = pool.pool.kernel_w = pool.pool.stride_h = pool.pool.stride_w = 2;
  pool.inputs = {c};
  pool.outputs = {p};
  g.add_operator(pool);
  const int32_t r = g.add_tensor("flat", DType::kFloat32, {-1, 36});
  Operator reshape;
  reshape.type = OpType::kReshape;
  reshape.name = "flatten";
  reshape.new_shape = {0, -1};
  reshape.inputs = {p};
  reshape.outputs = {r};
  g.add_operator(reshape);
  std::vector<float> fw = random_floats(rng, 3 * 36), fb = random_floats(rng, 3);
  const int32_t fwt = g.add_constant("fc.w", DType::kFloat32, {3, 36}, fw.data(), fw.size() * 4);
  const int32_t fbt = g.add_constant("fc.b", DType::kFloat32, {3}, fb.data(), fb.size() * 4);
  const int32_t f = g.add_tensor("fc", DType::kFloat32, {-1, 3});
  Operator fc;
  fc.type = OpType::kFullyConnected;
  fc.name = "fc";
  fc.inputs = {r, fwt, fbt};
  fc.outputs = {f};
  g.add_operator(fc);
  const int32_t s = g.add_tensor("probs", DType::kFloat32, {-1, 3});
  Operator sm;
  sm.type = OpType::kSoftmax;
  sm.name = "softmax";
  sm.inputs = {f};
  sm.outputs = {s};
  g.add_operator(sm);
  g.inputs = {x};
  g.outputs = {s};
  return g;
}

}  // namespace

TEST_CASE("interpreter runs a small CNN, batch by batch identical to one big batch") {
  std::mt19937 rng(42);
  Graph g = small_cnn(rng);
  const int batch = 5;
  std::vector<float> images = random_floats(rng, batch * 6 * 6 * 2);

  Interpreter big;
  PrepareOptions opt;
  opt.batch = batch;
  REQUIRE(big.prepare(g, opt).is_ok());
  CHECK(big.input(0).dims == dims_of({5, 6, 6, 2}));
  CHECK(big.output(0).dims == dims_of({5, 3}));
  std::memcpy(big.input(0).data, images.data(), images.size() * 4);
  REQUIRE(big.invoke().is_ok());

  Interpreter one;
  opt.batch = 1;
  REQUIRE(one.prepare(g, opt).is_ok());
  for (int i = 0; i < batch; ++i) {
    std::memcpy(one.input(0).data, images.data() + i * 72, 72 * 4);
    REQUIRE(one.invoke().is_ok());
    float sum = 0;
    for (int k = 0; k < 3; ++k) {
      CHECK(one.output(0).as<float>()[k] == big.output(0).as<float>()[i * 3 + k]);
      sum += one.output(0).as<float>()[k];
    }
    CHECK(sum == doctest::Approx(1.0f).epsilon(1e-5));
  }
  // The planner reuses memory: the arena is smaller than all activations side by side.
  CHECK(big.arena_bytes() < (5 * (72 + 144 + 36 + 36 + 3 + 3)) * 4);
  CHECK(big.arena_bytes() >= big.min_live_bytes());
}

TEST_CASE("invoke() makes no heap allocation") {
  std::mt19937 rng(1);
  Graph g = small_cnn(rng);
  for (Backend backend : {Backend::kReference, Backend::kXnnpack}) {
    if (!backend_available(backend)) continue;
    Interpreter interp;
    PrepareOptions opt;
    opt.batch = 3;
    opt.backend = backend;
    REQUIRE(interp.prepare(g, opt).is_ok());
    const long before = g_allocations.load();
    bool ok = true;
    for (int i = 0; i < 5; ++i) ok = ok && interp.invoke().is_ok();
    const long during = g_allocations.load() - before;  // read before doctest allocates anything
    INFO("backend ", backend_name(backend));
    CHECK(ok);
    CHECK(during == 0);
  }
}

TEST_CASE("caller-owned arena: used when big enough, a clear error naming the size when not") {
  std::mt19937 rng(2);
  Graph g = small_cnn(rng);
  Interpreter probe;
  PrepareOptions opt;
  REQUIRE(probe.prepare(g, opt).is_ok());
  const size_t need = probe.arena_bytes();

  std::vector<uint8_t> small(need / 2);
  opt.arena = small.data();
  opt.arena_size = small.size();
  Interpreter a;
  Status s = a.prepare(g, opt);
  CHECK(s.code() == StatusCode::kOutOfMemory);
  CHECK(std::string(s.message()).find(std::to_string(need)) != std::string::npos);
  CHECK(a.invoke().code() == StatusCode::kInvalidArgument);  // not prepared

  std::vector<uint8_t> big(need + 64);
  opt.arena = big.data();
  opt.arena_size = big.size();
  REQUIRE(a.prepare(g, opt).is_ok());
  uint8_t* in = static_cast<uint8_t*>(a.input(0).data);
  CHECK(in >= big.data());
  CHECK(in < big.data() + big.size());
  REQUIRE(a.invoke().is_ok());
}

TEST_CASE("shape inference rejects inconsistent graphs with messages naming the op") {
  std::mt19937 rng(3);
  {
    Graph g = small_cnn(rng);
    g.operators[0].conv.groups = 3;  // 2 input channels do not split into 3 groups
    std::vector<Dims> dims;
    Status s = infer_shapes(g, 1, &dims);
    CHECK(s.code() == StatusCode::kInvalidModel);
    CHECK(std::string(s.message()).find("Conv2D 'conv'") != std::string::npos);
  }
  {
    Graph g = small_cnn(rng);
    g.operators[2].new_shape = {0, 35};
    std::vector<Dims> dims;
    Status s = infer_shapes(g, 2, &dims);
    CHECK(std::string(s.message()).find("Reshape 'flatten'") != std::string::npos);
  }
  {
    Graph g = small_cnn(rng);
    g.operators[3].inputs[0] = 99;
    std::vector<Dims> dims;
    Status s = infer_shapes(g, 1, &dims);
    CHECK(s.code() == StatusCode::kInvalidModel);
    CHECK(std::string(s.message()).find("out of range") != std::string::npos);
  }
  {
    Graph g = small_cnn(rng);
    std::swap(g.operators[1], g.operators[2]);  // reads 'pool' before it is produced
    std::vector<Dims> dims;
    Status s = infer_shapes(g, 1, &dims);
    CHECK(std::string(s.message()).find("before any operator produces it") != std::string::npos);
  }
  {
    Graph g = small_cnn(rng);
    g.operators[1].pool.kernel_h = 0;
    std::vector<Dims> dims;
    CHECK(std::string(infer_shapes(g, 1, &dims).message()).find("kernel 0x2") != std::string::npos);
  }
  {
    Graph g = small_cnn(rng);
    g.buffers[g.tensors[1].buffer].owned.pop_back();  // conv weights one byte short
    std::vector<Dims> dims;
    CHECK(std::string(infer_shapes(g, 1, &dims).message()).find("conv.w") != std::string::npos);
  }
  Interpreter interp;
  PrepareOptions opt;
  opt.batch = 0;
  Graph g = small_cnn(rng);
  CHECK(interp.prepare(g, opt).code() == StatusCode::kInvalidArgument);
}
