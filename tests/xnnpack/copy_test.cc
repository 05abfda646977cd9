// Reshape and Concat on XNNPACK's 32-bit copies: bit-exact against the reference.
#include "xnnpack/xnnpack_test_util.h"

namespace tinyquant {
namespace xnnpack_test {
namespace {

std::vector<int32_t> random_shape(std::mt19937& rng, int min_rank, int max_rank, int max_dim) {
  std::vector<int32_t> shape;
  const int rank = uniform_int(rng, min_rank, max_rank);
  for (int d = 0; d < rank; ++d) shape.push_back(uniform_int(rng, 1, max_dim));
  return shape;
}

TEST_CASE("xnnpack: Reshape copies bit for bit") {
  std::mt19937 rng(6001);
  auto runner = make_runner(1);
  ErrorStats stats{"Reshape"};
  for (int iter = 0; iter < 200; ++iter) {
    const std::vector<int32_t> in = random_shape(rng, 0, 4, 6);
    int32_t total = 1;
    for (int32_t d : in) total *= d;
    const std::vector<int32_t> out = chance(rng, 0.5) ? std::vector<int32_t>{total} : std::vector<int32_t>{1, total, 1};
    Operator op;
    op.type = OpType::kReshape;
    op.name = "reshape" + std::to_string(iter);
    op.mutable_new_shape() = out;
    TestTensor x(in);
    x.uniform(rng, -100, 100);
    CHECK(check_op(*runner, op, {&x}, out, 0, &stats, "Reshape " + str(in) + " to " + str(out)));
    runner->reset();
  }
}

TEST_CASE("xnnpack: Reshape onto its own input runs nothing") {
  auto runner = make_runner(1);
  TestTensor x({2, 3});
  for (int i = 0; i < 6; ++i) x.f32()[i] = float(i);
  TensorView out = x.view;
  out.dims = Dims::of({6});
  Operator op;
  op.type = OpType::kReshape;
  op.name = "aliased";
  bool handled = false;
  int handle = -1;
  REQUIRE(runner->prepare_op(op, &x.view, 1, &out, 1, &handled, &handle).is_ok());
  REQUIRE(handled);
  REQUIRE(runner->run(handle).is_ok());
  for (int i = 0; i < 6; ++i) CHECK(x[i] == float(i));
}

TEST_CASE("xnnpack: Concat copies bit for bit along any axis") {
  std::mt19937 rng(6002);
  auto runner = make_runner(1);
  ErrorStats stats{"Concat"};
  int last_axis = 0;
  for (int iter = 0; iter < 240; ++iter) {
    const std::vector<int32_t> base = random_shape(rng, 1, 4, 5);
    const int32_t rank = static_cast<int32_t>(base.size());
    // Two thirds along the last axis (NHWC channels), the rest along any axis.
    const int32_t axis = chance(rng, 0.67) ? rank - 1 : uniform_int(rng, 0, rank - 1);
    last_axis += axis == rank - 1;
    std::vector<std::unique_ptr<TestTensor>> inputs;
    std::vector<const TestTensor*> views;
    std::vector<int32_t> out = base;
    out[axis] = 0;
    const int count = uniform_int(rng, 1, 4);
    for (int k = 0; k < count; ++k) {
      std::vector<int32_t> shape = base;
      shape[axis] = uniform_int(rng, 1, 10);
      out[axis] += shape[axis];
      inputs.push_back(std::make_unique<TestTensor>(shape));
      inputs.back()->uniform(rng, -100, 100);
      views.push_back(inputs.back().get());
    }
    Operator op;
    op.type = OpType::kConcat;
    op.name = "concat" + std::to_string(iter);
    op.axis = axis;
    const std::string what =
        "Concat of " + std::to_string(count) + " into " + str(out) + " axis " + std::to_string(axis);
    CHECK_MESSAGE(check_op(*runner, op, views, out, 0, &stats, what), what);
    runner->reset();
  }
  CHECK(last_axis > 150);
}

}  // namespace
}  // namespace xnnpack_test
}  // namespace tinyquant
