// FullyConnected on XNNPACK against the reference kernel, on random shapes.
#include "xnnpack/xnnpack_test_util.h"

namespace tinyquant {
namespace xnnpack_test {
namespace {

TEST_CASE("xnnpack: FullyConnected matches the reference on random shapes") {
  std::mt19937 rng(2001);
  auto runner = make_runner(1);
  ErrorStats stats{"FullyConnected"};
  for (int iter = 0; iter < 250; ++iter) {
    const int32_t in_c = uniform_int(rng, 1, chance(rng, 0.3) ? 600 : 40);
    const int32_t out_c = uniform_int(rng, 1, chance(rng, 0.3) ? 64 : 12);
    // Input [..., I]: rows = elements / I, from a plain vector up to an NHWC-shaped tensor.
    std::vector<int32_t> in;
    const int rank = uniform_int(rng, 1, 4);
    for (int d = 0; d + 1 < rank; ++d) in.push_back(uniform_int(rng, 1, 4));
    in.push_back(in_c);
    int32_t rows = 1;
    for (int d = 0; d + 1 < rank; ++d) rows *= in[d];

    Operator op;
    op.type = OpType::kFullyConnected;
    op.name = "fc" + std::to_string(iter);
    op.activation = random_activation(rng);
    TestTensor x(in), weights({out_c, in_c}), bias({out_c});
    x.uniform(rng, -1, 1);
    weights.uniform(rng, -1, 1);
    bias.uniform(rng, -1, 1);
    const bool with_bias = chance(rng, 0.8);
    const std::string what = "FullyConnected in " + str(in) + " out " + std::to_string(out_c);
    CHECK_MESSAGE(check_op(*runner, op, {&x, &weights, with_bias ? &bias : nullptr}, {rows, out_c}, in_c, &stats, what),
                  what);
    runner->reset();
  }
}

}  // namespace
}  // namespace xnnpack_test
}  // namespace tinyquant
