#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "test_util.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/qmath.h"
#include "tinyquant/shape_inference.h"

using namespace tinyquant;
using namespace tinyquant::testing;

// Counts every C++ heap allocation in the test binary, to prove invoke() makes none.
static std::atomic<long> g_allocations{0};
void* operator new(size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
#if defined(__cpp_exceptions)
  throw std::bad_alloc();
#else
  std::abort();  // -fno-exceptions (the Cortex-M build of this suite, tests/mcu)
#endif
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
  conv.mutable_conv().padding = {1, 1, 1, 1};
  conv.activation = FusedActivation::relu();
  conv.inputs = {x, cw, cb};
  conv.outputs = {c};
  g.add_operator(conv);
  const int32_t p = g.add_tensor("pool", DType::kFloat32, {-1, 3, 3, 4});
  Operator pool;
  pool.type = OpType::kMaxPool2D;
  pool.name = "pool";
  pool.mutable_pool().kernel_h = pool.mutable_pool().kernel_w = pool.mutable_pool().stride_h = pool.mutable_pool().stride_w = 2;
  pool.inputs = {c};
  pool.outputs = {p};
  g.add_operator(pool);
  const int32_t r = g.add_tensor("flat", DType::kFloat32, {-1, 36});
  Operator reshape;
  reshape.type = OpType::kReshape;
  reshape.name = "flatten";
  reshape.mutable_new_shape() = {0, -1};
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

  // Worst case over the allocator's alignment: up to 63 bytes to reach the 64-byte boundary plus
  // the 16-byte tail slack (newlib's malloc only aligns to 8, glibc's to 16).
  std::vector<uint8_t> big(need + 63 + 16);
  opt.arena = big.data();
  opt.arena_size = big.size();
  REQUIRE(a.prepare(g, opt).is_ok());
  uint8_t* in = static_cast<uint8_t*>(a.input(0).data);
  CHECK(in >= big.data());
  CHECK(in < big.data() + big.size());
  REQUIRE(a.invoke().is_ok());

  // caller_arena_bytes() is exactly what a 64-byte aligned arena needs (tq embed sizes its
  // static arrays with it): accepted at that size, refused one 16-byte step below.
  const size_t exact = probe.caller_arena_bytes();
  CHECK(exact == need + 16);
  std::vector<uint8_t> pool(exact + 63);
  uint8_t* aligned = pool.data() + (64 - reinterpret_cast<uintptr_t>(pool.data()) % 64) % 64;
  opt.arena = aligned;
  opt.arena_size = exact;
  Interpreter b;
  CHECK(b.prepare(g, opt).is_ok());
  opt.arena_size = exact - 16;
  Interpreter c;
  CHECK(c.prepare(g, opt).code() == StatusCode::kOutOfMemory);
}

TEST_CASE("shape inference rejects inconsistent graphs with messages naming the op") {
  std::mt19937 rng(3);
  {
    Graph g = small_cnn(rng);
    g.operators[0].mutable_conv().groups = 3;  // 2 input channels do not split into 3 groups
    std::vector<Dims> dims;
    Status s = infer_shapes(g, 1, &dims);
    CHECK(s.code() == StatusCode::kInvalidModel);
    CHECK(std::string(s.message()).find("Conv2D 'conv'") != std::string::npos);
  }
  {
    Graph g = small_cnn(rng);
    g.operators[2].mutable_new_shape() = {0, 35};
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
    g.operators[1].mutable_pool().kernel_h = 0;
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

namespace {

// Int8 layers for the allocation test: Quantize -> Conv2D s8 (4-bit, ReLU) -> Add s8 (the conv
// with itself) -> MaxPool2D -> GlobalAveragePool -> Reshape -> FullyConnected s8 (3-bit) ->
// Dequantize; every one of them runs on XNNPACK.
int32_t add_s8_tensor(Graph& g, const char* name, std::vector<int32_t> shape, float scale, int32_t zero_point) {
  const int32_t t = g.add_tensor(name, DType::kInt8, std::move(shape));
  g.tensors[t].quant.scale = {scale};
  g.tensors[t].quant.zero_point = {zero_point};
  return t;
}

int32_t add_packed_weights(Graph& g, std::mt19937& rng, const char* name, std::vector<int32_t> shape, int32_t bits) {
  const int32_t out_c = shape[0];
  int64_t n = 1;
  for (int32_t d : shape) n *= d;
  std::vector<int8_t> values(static_cast<size_t>(n));
  for (int8_t& v : values) v = int8_t(rand_int(rng, qmath::qmin(bits), qmath::qmax(bits)));
  std::vector<uint8_t> packed(static_cast<size_t>(packed_bytes(DType::kInt8, n, bits)));
  qmath::pack_weights(values.data(), n, bits, packed.data());
  const int32_t t = g.add_constant(name, DType::kInt8, std::move(shape), packed.data(), packed.size());
  g.tensors[t].quant.bits = bits;
  g.tensors[t].quant.axis = 0;
  for (int32_t c = 0; c < out_c; ++c) g.tensors[t].quant.scale.push_back(0.04f + 0.01f * c);
  g.tensors[t].quant.zero_point.assign(out_c, 0);
  return t;
}

Graph small_int_cnn(std::mt19937& rng) {
  Graph g;
  auto op = [&g](OpType type, const char* name, std::vector<int32_t> inputs, int32_t output) {
    Operator o;
    o.type = type;
    o.name = name;
    o.inputs = std::move(inputs);
    o.outputs = {output};
    return o;
  };
  const int32_t x = g.add_tensor("x", DType::kFloat32, {-1, 6, 6, 3});
  const int32_t xq = add_s8_tensor(g, "x_q", {-1, 6, 6, 3}, 0.02f, -3);
  g.add_operator(op(OpType::kQuantize, "quantize", {x}, xq));
  const int32_t cw = add_packed_weights(g, rng, "conv.w", {8, 3, 3, 3}, 4);
  std::vector<int32_t> bias(8);
  for (int32_t& b : bias) b = rand_int(rng, -500, 500);
  const int32_t cb = g.add_constant("conv.b", DType::kInt32, {8}, bias.data(), bias.size() * 4);
  const int32_t conv = add_s8_tensor(g, "conv", {-1, 6, 6, 8}, 0.03f, -20);
  Operator c = op(OpType::kConv2D, "conv", {xq, cw, cb}, conv);
  c.mutable_conv().padding = {1, 1, 1, 1};
  c.activation = FusedActivation::relu();
  g.add_operator(c);
  const int32_t sum = add_s8_tensor(g, "sum", {-1, 6, 6, 8}, 0.05f, -10);
  g.add_operator(op(OpType::kAdd, "add", {conv, conv}, sum));
  const int32_t pool = add_s8_tensor(g, "pool", {-1, 3, 3, 8}, 0.05f, -10);
  Operator p = op(OpType::kMaxPool2D, "pool", {sum}, pool);
  p.mutable_pool().kernel_h = p.mutable_pool().kernel_w = p.mutable_pool().stride_h = p.mutable_pool().stride_w = 2;
  g.add_operator(p);
  const int32_t gap = add_s8_tensor(g, "gap", {-1, 1, 1, 8}, 0.04f, 0);
  g.add_operator(op(OpType::kGlobalAveragePool, "gap", {pool}, gap));
  const int32_t flat = add_s8_tensor(g, "flat", {-1, 8}, 0.04f, 0);
  Operator r = op(OpType::kReshape, "flatten", {gap}, flat);
  r.mutable_new_shape() = {0, -1};
  g.add_operator(r);
  const int32_t fw = add_packed_weights(g, rng, "fc.w", {3, 8}, 3);
  const int32_t fc = add_s8_tensor(g, "fc", {-1, 3}, 0.15f, 5);
  g.add_operator(op(OpType::kFullyConnected, "fc", {flat, fw, -1}, fc));
  const int32_t y = g.add_tensor("y", DType::kFloat32, {-1, 3});
  g.add_operator(op(OpType::kDequantize, "dequantize", {fc}, y));
  g.inputs = {x};
  g.outputs = {y};
  return g;
}

}  // namespace

TEST_CASE("invoke() of an int8 graph makes no heap allocation; XNNPACK (1 and 2 threads) equals the reference") {
  std::mt19937 rng(3);
  const Graph g = small_int_cnn(rng);
  const int batch = 3;
  const std::vector<float> images = random_floats(rng, batch * 6 * 6 * 3, -2.0f, 2.0f);
  std::vector<float> want;
  for (int run = 0; run < 3; ++run) {
    const Backend backend = run == 0 ? Backend::kReference : Backend::kXnnpack;
    if (!backend_available(backend)) continue;
    Interpreter interp;
    PrepareOptions opt;
    opt.batch = batch;
    opt.backend = backend;
    opt.threads = run == 2 ? 2 : 1;
    const Status s = interp.prepare(g, opt);
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    const long before = g_allocations.load();
    bool ok = true;
    for (int i = 0; i < 5; ++i) {
      // The arena reuses the input's bytes for later tensors: set it before every run.
      std::memcpy(interp.input(0).data, images.data(), images.size() * 4);
      ok = ok && interp.invoke().is_ok();
    }
    const long during = g_allocations.load() - before;
    INFO("backend ", std::string(backend_name(backend)), ", threads ", opt.threads);
    CHECK(ok);
    CHECK(during == 0);
    const float* y = interp.output(0).as<float>();
    if (run == 0) {
      want.assign(y, y + batch * 3);
      int distinct = 0;
      for (int i = 1; i < batch * 3; ++i) distinct += want[i] != want[0];
      CHECK(distinct > 0);  // the comparison below is not between constant outputs
      continue;
    }
    for (int i = 0; i < batch * 3; ++i) CHECK(y[i] == want[i]);
    for (int op = 0; op < static_cast<int>(g.operators.size()); ++op) {
      INFO("op ", g.operators[op].name);
      CHECK(interp.op_backend(op) == Backend::kXnnpack);
    }
  }
}

namespace {
struct Captured {
  std::vector<int32_t> ops;
  std::vector<std::vector<float>> outputs;  // each op's first output, copied when the op ran
  int32_t stop_after = -1;
};
bool capture_op(void* user, int32_t op, const Interpreter& interp) {
  Captured& c = *static_cast<Captured*>(user);
  c.ops.push_back(op);
  const TensorView v = interp.tensor(0);  // touch a view: must stay valid in the callback
  (void)v;
  return op != c.stop_after;
}
}  // namespace

TEST_CASE("per-op callback sees every intermediate activation; invoke_range runs a prefix and a tail") {
  std::mt19937 rng(7);
  Graph g = small_cnn(rng);
  std::vector<float> images = random_floats(rng, 2 * 72);
  Interpreter full;
  PrepareOptions opt;
  opt.batch = 2;
  REQUIRE(full.prepare(g, opt).is_ok());
  std::memcpy(full.input(0).data, images.data(), images.size() * 4);
  REQUIRE(full.invoke().is_ok());
  const std::vector<float> want(full.output(0).as<float>(), full.output(0).as<float>() + 6);

  // Reference: a graph where the conv output is a graph output (so the arena keeps it).
  Graph g_out = g;
  g_out.outputs.push_back(g.operators[0].outputs[0]);
  Interpreter ref;
  REQUIRE(ref.prepare(g_out, opt).is_ok());
  std::memcpy(ref.input(0).data, images.data(), images.size() * 4);
  REQUIRE(ref.invoke().is_ok());

  struct Grab {
    Captured c;
    std::vector<float> conv;
    int32_t conv_tensor;
  } grab;
  grab.conv_tensor = g.operators[0].outputs[0];
  Interpreter interp;
  REQUIRE(interp.prepare(g, opt).is_ok());
  interp.set_op_callback(
      [](void* user, int32_t op, const Interpreter& it) {
        Grab& gr = *static_cast<Grab*>(user);
        if (op == 0) {
          const TensorView v = it.tensor(gr.conv_tensor);
          gr.conv.assign(v.as<const float>(), v.as<const float>() + v.elements());
        }
        return capture_op(&gr.c, op, it);
      },
      &grab);
  std::memcpy(interp.input(0).data, images.data(), images.size() * 4);
  REQUIRE(interp.invoke().is_ok());
  CHECK(grab.c.ops == std::vector<int32_t>{0, 1, 2, 3, 4});
  REQUIRE(grab.conv.size() == 2u * 144);
  const TensorView rv = ref.tensor(grab.conv_tensor);
  for (size_t i = 0; i < grab.conv.size(); ++i) CHECK(grab.conv[i] == rv.as<const float>()[i]);
  for (int k = 0; k < 6; ++k) CHECK(interp.output(0).as<float>()[k] == want[k]);

  // Stop early from the callback: ops after 1 do not run.
  grab.c = Captured();
  grab.c.stop_after = 1;
  std::memcpy(interp.input(0).data, images.data(), images.size() * 4);  // the arena reused it
  REQUIRE(interp.invoke().is_ok());
  CHECK(grab.c.ops == std::vector<int32_t>{0, 1});

  // A prefix then the tail equals the whole run.
  interp.set_op_callback(nullptr, nullptr);
  std::memset(interp.output(0).data, 0, 6 * 4);
  std::memcpy(interp.input(0).data, images.data(), images.size() * 4);
  REQUIRE(interp.invoke_range(0, 2).is_ok());
  REQUIRE(interp.invoke_range(2, 5).is_ok());
  for (int k = 0; k < 6; ++k) CHECK(interp.output(0).as<float>()[k] == want[k]);
  CHECK_FALSE(interp.invoke_range(3, 2).is_ok());
  const Status bad = interp.invoke_range(0, 6);
  CHECK_FALSE(bad.is_ok());
  CHECK(std::string(bad.message()).find("op range [0, 6)") != std::string::npos);
}

TEST_CASE("an OpResolver with the model's kernels runs it as prepare() without one; a missing one fails at prepare") {
  std::mt19937 rng(7);
  const Graph g = small_cnn(rng);
  const std::vector<float> images = random_floats(rng, 2 * 6 * 6 * 2);
  PrepareOptions opt;
  opt.batch = 2;
  Interpreter every;
  REQUIRE(every.prepare(g, opt).is_ok());
  std::memcpy(every.input(0).data, images.data(), images.size() * 4);
  REQUIRE(every.invoke().is_ok());

  OpResolver resolver;
  resolver.add<OpType::kConv2D, KernelKind::kFloat32>()
      .add<OpType::kMaxPool2D, KernelKind::kFloat32>()
      .add<OpType::kReshape, KernelKind::kFloat32>()
      .add<OpType::kFullyConnected, KernelKind::kFloat32>();
  Interpreter some;
  Status s = some.prepare(g, opt, resolver);
  CHECK(s.code() == StatusCode::kUnsupported);
  CHECK(std::string(s.message()) ==
        "Softmax 'softmax': the op resolver passed to prepare() has no float32 kernel for this op (add "
        "OpResolver::add<OpType::kSoftmax, KernelKind::kFloat32>())");
  const bool missing = resolver.find(OpType::kSoftmax, KernelKind::kFloat32) == nullptr;
  CHECK(missing);
  resolver.add<OpType::kSoftmax, KernelKind::kFloat32>();
  const bool same_kernel = resolver.find(OpType::kSoftmax, KernelKind::kFloat32) ==
                           OpResolver::all().find(OpType::kSoftmax, KernelKind::kFloat32);
  CHECK(same_kernel);
  s = some.prepare(g, opt, resolver);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  std::memcpy(some.input(0).data, images.data(), images.size() * 4);
  REQUIRE(some.invoke().is_ok());
  CHECK(std::memcmp(some.output(0).data, every.output(0).data, 2 * 3 * 4) == 0);

  // Which pairs the backend has: int8 conversions, no float Quantize, nothing past kCount.
  CHECK(reference::has_kernel(OpType::kQuantize, KernelKind::kInt8));
  CHECK_FALSE(reference::has_kernel(OpType::kQuantize, KernelKind::kFloat32));
  CHECK_FALSE(reference::has_kernel(OpType::kLayerNorm, KernelKind::kInt8));
  CHECK(reference::has_kernel(OpType::kLayerNorm, KernelKind::kFloat32));
  CHECK_FALSE(reference::has_kernel(OpType::kCount, KernelKind::kFloat32));
}

TEST_CASE("an OpResolver need not name a weighted op the Cortex-M kernels run") {
  std::mt19937 rng(3);
  const Graph g = small_int_cnn(rng);
  OpResolver resolver;  // everything but the int8 Conv2D and FullyConnected
  resolver.add<OpType::kQuantize, KernelKind::kInt8>()
      .add<OpType::kAdd, KernelKind::kInt8>()
      .add<OpType::kMaxPool2D, KernelKind::kInt8>()
      .add<OpType::kGlobalAveragePool, KernelKind::kInt8>()
      .add<OpType::kReshape, KernelKind::kInt8>()
      .add<OpType::kDequantize, KernelKind::kInt8>();
  PrepareOptions opt;
  opt.kernels = KernelSet::kCortexM;
  Interpreter interp;
  Status s = interp.prepare(g, opt, resolver);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  for (int i = 0; i < static_cast<int>(g.operators.size()); ++i)
    if (g.operators[i].type == OpType::kConv2D || g.operators[i].type == OpType::kFullyConnected)
      CHECK(interp.op_cortex_m(i));
  REQUIRE(interp.invoke().is_ok());
  // On the portable kernels the same resolver is one short, and prepare names the op.
  opt.kernels = KernelSet::kPortable;
  s = interp.prepare(g, opt, resolver);
  CHECK(std::string(s.message()).find("Conv2D 'conv': the op resolver passed to prepare() has no int8 kernel") == 0);
}
