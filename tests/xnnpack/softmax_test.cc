// Softmax on XNNPACK against the reference kernel.
//
// Tolerance: y_i = e_i / sum_j e_j. XNNPACK's exp is a polynomial within a few ulp, the
// reference's is libm's; the row sum of L positive terms carries at most gamma_L relative error
// and the final scaling two more roundings. Per backend that is under (L + 12) u relative, so we
// allow (2L + 24) u * |reference| between the two.
#include "xnnpack/xnnpack_test_util.h"

namespace tinyquant {
namespace xnnpack_test {
namespace {

TEST_CASE("xnnpack: Softmax matches the reference on rows of various lengths") {
  std::mt19937 rng(5001);
  auto runner = make_runner(1);
  ErrorStats stats{"Softmax"};
  const int32_t lengths[] = {1, 2, 3, 4, 5, 7, 8, 10, 15, 16, 17, 31, 64, 100, 257, 1000};
  for (int iter = 0; iter < 240; ++iter) {
    const int32_t length = lengths[iter % (sizeof(lengths) / sizeof(lengths[0]))];
    std::vector<int32_t> shape;
    const int rank = uniform_int(rng, 1, 4);
    for (int d = 0; d + 1 < rank; ++d) shape.push_back(uniform_int(rng, 1, 4));
    shape.push_back(length);
    Operator op;
    op.type = OpType::kSoftmax;
    op.name = "softmax" + std::to_string(iter);
    TestTensor x(shape), got(shape), want(shape);
    x.uniform(rng, -8, 8);
    ++stats.cases;
    const std::string what = "Softmax " + str(shape);
    REQUIRE_MESSAGE(run_xnnpack(*runner, op, {&x}, got), what);
    ++stats.handled;
    run_reference(op, {&x}, want);
    expect_close(got, want, &want, (2.0 * length + 24.0) * kUnitRoundoff, &stats, what);
    runner->reset();
  }
}

}  // namespace
}  // namespace xnnpack_test
}  // namespace tinyquant
