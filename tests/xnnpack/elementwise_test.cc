// Add, Mul (NumPy broadcasting, fused activations) and Clamp on XNNPACK: one rounding per element,
// so they must equal the reference bit for bit.
#include "xnnpack/xnnpack_test_util.h"

namespace tinyquant {
namespace xnnpack_test {
namespace {

// The other operand for an [N,H,W,C] tensor, by broadcast pattern.
std::vector<int32_t> broadcast_partner(int pattern, const std::vector<int32_t>& full) {
  const int32_t n = full[0], h = full[1], w = full[2], c = full[3];
  switch (pattern) {
    case 0: return {c};
    case 1: return {1, 1, 1, c};
    case 2: return {n, 1, 1, c};
    case 3: return {};  // rank-0 scalar
    case 4: return {1};
    case 5: return {n, h, w, c};
    case 6: return {h, w, c};
    case 7: return {n, h, w, 1};
    default: return {1, h, 1, c};
  }
}
constexpr int kPatterns = 9;

void check_binary(OpType type, uint32_t seed, const char* name) {
  std::mt19937 rng(seed);
  auto runner = make_runner(1);
  ErrorStats stats{name};
  int patterns[kPatterns][2] = {};
  for (int iter = 0; iter < 360; ++iter) {
    const std::vector<int32_t> full = {uniform_int(rng, 1, 3), uniform_int(rng, 1, 7), uniform_int(rng, 1, 7),
                                       uniform_int(rng, 1, 33)};
    const int pattern = iter % kPatterns;
    const bool swapped = (iter / kPatterns) % 2 == 1;  // both operand orders
    ++patterns[pattern][swapped];
    const std::vector<int32_t> other = broadcast_partner(pattern, full);
    TestTensor a(swapped ? other : full), b(swapped ? full : other);
    a.uniform(rng, -4, 4);
    b.uniform(rng, -4, 4);
    Operator op;
    op.type = type;
    op.name = std::string(name) + std::to_string(iter);
    op.activation = random_activation(rng);
    const std::string what = std::string(name) + " " + str(a.shape()) + " with " + str(b.shape());
    CHECK_MESSAGE(check_op(*runner, op, {&a, &b}, full, 0, &stats, what), what);
    runner->reset();
  }
  for (int p = 0; p < kPatterns; ++p) CHECK((patterns[p][0] > 10 && patterns[p][1] > 10));
}

TEST_CASE("xnnpack: Add matches the reference bit for bit under broadcasting") {
  check_binary(OpType::kAdd, 3001, "Add");
}

TEST_CASE("xnnpack: Mul matches the reference bit for bit under broadcasting") {
  check_binary(OpType::kMul, 3002, "Mul");
}

TEST_CASE("xnnpack: Sub matches the reference bit for bit under broadcasting") {
  check_binary(OpType::kSub, 3004, "Sub");
}

TEST_CASE("xnnpack: Div matches the reference bit for bit under broadcasting") {
  check_binary(OpType::kDiv, 3005, "Div");
}

TEST_CASE("xnnpack: Clamp matches the reference bit for bit") {
  std::mt19937 rng(3003);
  auto runner = make_runner(1);
  ErrorStats stats{"Clamp"};
  const float inf = std::numeric_limits<float>::infinity();
  for (int iter = 0; iter < 200; ++iter) {
    std::vector<int32_t> shape;
    const int rank = uniform_int(rng, 0, 4);
    for (int d = 0; d < rank; ++d) shape.push_back(uniform_int(rng, 1, 9));
    Operator op;
    op.type = OpType::kClamp;
    op.name = "clamp" + std::to_string(iter);
    switch (iter % 4) {
      case 0: op.activation = FusedActivation::relu(); break;
      case 1: op.activation = FusedActivation::relu6(); break;
      case 2: op.activation = random_activation(rng); break;
      default: op.activation = FusedActivation::clip(-inf, uniform_int(rng, -3, 3) * 0.5f); break;
    }
    if (op.activation.type == Activation::kNone) op.activation = FusedActivation::clip(-1.0f, 0.5f);
    TestTensor x(shape);
    x.uniform(rng, -8, 8);
    const std::string what = "Clamp " + str(shape);
    CHECK_MESSAGE(check_op(*runner, op, {&x}, shape, 0, &stats, what), what);
    runner->reset();
  }
}

}  // namespace
}  // namespace xnnpack_test
}  // namespace tinyquant
