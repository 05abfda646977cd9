// MaxPool2D, AveragePool2D and GlobalAveragePool on XNNPACK against the reference kernels, and
// which option combinations must stay on the reference.
#include "tinyquant/shape_inference.h"
#include "xnnpack/xnnpack_test_util.h"

namespace tinyquant {
namespace xnnpack_test {
namespace {

// Kernel 1..4 per axis, stride 1..3, padding below the kernel (the graph rule), drawn per side
// with probability `pad`.
PoolOptions random_pool(std::mt19937& rng, bool dilate, double pad) {
  PoolOptions p;
  p.kernel_h = uniform_int(rng, 1, 4);
  p.kernel_w = uniform_int(rng, 1, 4);
  p.stride_h = uniform_int(rng, 1, 3);
  p.stride_w = uniform_int(rng, 1, 3);
  if (dilate) {
    p.dilation_h = chance(rng, 0.3) ? 2 : 1;
    p.dilation_w = chance(rng, 0.3) ? 2 : 1;
  }
  if (chance(rng, pad)) {
    p.padding.top = uniform_int(rng, 0, p.kernel_h - 1);
    p.padding.bottom = uniform_int(rng, 0, p.kernel_h - 1);
    p.padding.left = uniform_int(rng, 0, p.kernel_w - 1);
    p.padding.right = uniform_int(rng, 0, p.kernel_w - 1);
  }
  return p;
}

std::vector<int32_t> pool_output(const std::vector<int32_t>& in, const PoolOptions& p) {
  return {in[0], window_output_size(in[1], p.kernel_h, p.stride_h, p.dilation_h, p.padding.top, p.padding.bottom),
          window_output_size(in[2], p.kernel_w, p.stride_w, p.dilation_w, p.padding.left, p.padding.right), in[3]};
}

// Brute force: does every output window cover at least one input pixel?
bool windows_reach_input(const std::vector<int32_t>& in, const std::vector<int32_t>& out, const PoolOptions& p) {
  for (int32_t oy = 0; oy < out[1]; ++oy)
    for (int32_t ox = 0; ox < out[2]; ++ox) {
      bool any = false;
      for (int32_t ky = 0; ky < p.kernel_h; ++ky)
        for (int32_t kx = 0; kx < p.kernel_w; ++kx) {
          const int32_t iy = oy * p.stride_h - p.padding.top + ky * p.dilation_h;
          const int32_t ix = ox * p.stride_w - p.padding.left + kx * p.dilation_w;
          any = any || (iy >= 0 && iy < in[1] && ix >= 0 && ix < in[2]);
        }
      if (!any) return false;
    }
  return true;
}

bool padded(const PoolOptions& p) { return p.padding.top + p.padding.left + p.padding.bottom + p.padding.right > 0; }

std::string describe(const char* kind, const std::vector<int32_t>& in, const PoolOptions& p) {
  return std::string(kind) + " in " + str(in) + " k " + std::to_string(p.kernel_h) + "x" + std::to_string(p.kernel_w) +
         " s " + std::to_string(p.stride_h) + "x" + std::to_string(p.stride_w) + " d " + std::to_string(p.dilation_h) +
         "x" + std::to_string(p.dilation_w) + " pad " + std::to_string(p.padding.top) + "," +
         std::to_string(p.padding.left) + "," + std::to_string(p.padding.bottom) + "," +
         std::to_string(p.padding.right) + (p.count_include_pad ? " count_include_pad" : "");
}

TEST_CASE("xnnpack: MaxPool2D matches the reference bit for bit; 1x1, dilated+padded, all-padding windows fall back") {
  std::mt19937 rng(4001);
  auto runner = make_runner(1);
  ErrorStats stats{"MaxPool2D"};
  int fallbacks = 0, with_padding = 0, dilated = 0, dilated_and_padded_fallbacks = 0;
  for (int iter = 0; iter < 300; ++iter) {
    const PoolOptions p = random_pool(rng, true, 0.5);
    const std::vector<int32_t> in = {uniform_int(rng, 1, 2), uniform_int(rng, 1, 10), uniform_int(rng, 1, 10),
                                     uniform_int(rng, 1, 20)};
    const std::vector<int32_t> out = pool_output(in, p);
    if (out[1] <= 0 || out[2] <= 0) {
      --iter;
      continue;
    }
    Operator op;
    op.type = OpType::kMaxPool2D;
    op.name = "maxpool" + std::to_string(iter);
    op.mutable_pool() = p;
    op.activation = random_activation(rng);
    TestTensor x(in);
    x.uniform(rng, -4, 4);
    const bool dilated_and_padded = (p.dilation_h > 1 || p.dilation_w > 1) && padded(p);
    const bool expected = p.kernel_h * p.kernel_w > 1 && !dilated_and_padded && windows_reach_input(in, out, p);
    const std::string what = describe("MaxPool2D", in, p);
    CHECK_MESSAGE(check_op(*runner, op, {&x}, out, 0, &stats, what) == expected, what);
    fallbacks += !expected;
    dilated_and_padded_fallbacks += dilated_and_padded;
    with_padding += expected && padded(p);
    dilated += expected && (p.dilation_h > 1 || p.dilation_w > 1);
    runner->reset();
  }
  CHECK(fallbacks > 5);
  CHECK(dilated_and_padded_fallbacks > 30);
  CHECK(with_padding > 50);
  CHECK(dilated > 40);
}

// XNNPACK divides a padded window by the input pixels it covers: count_include_pad = false.
// count_include_pad = true only matches without padding; with padding it falls back.
TEST_CASE("xnnpack: AveragePool2D matches the reference; count_include_pad with padding falls back") {
  std::mt19937 rng(4002);
  auto runner = make_runner(1);
  ErrorStats stats{"AveragePool2D"};
  int exclude_pad_padded = 0, include_pad_unpadded = 0, fallbacks = 0;
  for (int iter = 0; iter < 300; ++iter) {
    PoolOptions p = random_pool(rng, false, 0.7);
    p.count_include_pad = chance(rng, 0.4);
    if (chance(rng, 0.05)) p.dilation_w = 2;  // XNNPACK's average pooling has no dilation
    const std::vector<int32_t> in = {uniform_int(rng, 1, 2), uniform_int(rng, 1, 10), uniform_int(rng, 1, 10),
                                     uniform_int(rng, 1, 20)};
    const std::vector<int32_t> out = pool_output(in, p);
    if (out[1] <= 0 || out[2] <= 0) {
      --iter;
      continue;
    }
    Operator op;
    op.type = OpType::kAveragePool2D;
    op.name = "avgpool" + std::to_string(iter);
    op.mutable_pool() = p;
    op.activation = random_activation(rng);
    TestTensor x(in);
    x.uniform(rng, -4, 4);
    const bool expected = p.kernel_h * p.kernel_w > 1 && p.dilation_h == 1 && p.dilation_w == 1 &&
                          !(p.count_include_pad && padded(p)) && windows_reach_input(in, out, p);
    const std::string what = describe("AveragePool2D", in, p);
    CHECK_MESSAGE(check_op(*runner, op, {&x}, out, double(p.kernel_h) * p.kernel_w, &stats, what) == expected, what);
    fallbacks += !expected;
    exclude_pad_padded += expected && padded(p) && !p.count_include_pad;
    include_pad_unpadded += expected && p.count_include_pad;
    runner->reset();
  }
  CHECK(fallbacks > 30);
  CHECK(exclude_pad_padded > 50);
  CHECK(include_pad_unpadded > 20);
}

// The decision above, on a case small enough to read: a 3x3 window with padding 1 over ones.
TEST_CASE("xnnpack: AveragePool2D excludes padding from the divisor") {
  auto runner = make_runner(1);
  TestTensor x({1, 3, 3, 2}), y({1, 3, 3, 2});
  for (int i = 0; i < 18; ++i) x.f32()[i] = 1.0f;
  Operator op;
  op.type = OpType::kAveragePool2D;
  op.name = "avg3x3";
  op.mutable_pool().kernel_h = op.mutable_pool().kernel_w = 3;
  op.mutable_pool().padding = {1, 1, 1, 1};
  REQUIRE(run_xnnpack(*runner, op, {&x}, y));
  for (int i = 0; i < 18; ++i) CHECK(y[i] == 1.0f);  // count_include_pad would give 4/9 in a corner
  op.mutable_pool().count_include_pad = true;
  CHECK_FALSE(run_xnnpack(*runner, op, {&x}, y));
}

TEST_CASE("xnnpack: GlobalAveragePool matches the reference on random shapes") {
  std::mt19937 rng(4003);
  auto runner = make_runner(1);
  ErrorStats stats{"GlobalAveragePool"};
  for (int iter = 0; iter < 200; ++iter) {
    const std::vector<int32_t> in = {uniform_int(rng, 1, 3), uniform_int(rng, 1, 12), uniform_int(rng, 1, 12),
                                     uniform_int(rng, 1, 40)};
    Operator op;
    op.type = OpType::kGlobalAveragePool;
    op.name = "gap" + std::to_string(iter);
    op.activation = random_activation(rng);
    TestTensor x(in);
    x.uniform(rng, -4, 4);
    const std::string what = "GlobalAveragePool " + str(in);
    CHECK_MESSAGE(check_op(*runner, op, {&x}, {in[0], 1, 1, in[3]}, double(in[1]) * in[2], &stats, what), what);
    runner->reset();
  }
}

}  // namespace
}  // namespace xnnpack_test
}  // namespace tinyquant
