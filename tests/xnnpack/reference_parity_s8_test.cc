// The reference int8 Add, Mul, GlobalAveragePool and Softmax against the XNNPACK library itself
// (the build's QS8 operators; for softmax its QU8 operator on x + 128), bit for bit, on random
// parameters. Only with TQ_WITH_XNNPACK.
#if TQ_WITH_XNNPACK
#include <doctest/doctest.h>
#include <xnnpack.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "kernels/reference/reference_kernels.h"
#include "test_util.h"
#include "tinyquant/qmath.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

float rand_scale(std::mt19937& rng) {
  return std::exp(std::uniform_real_distribution<float>(-6.0f, 0.0f)(rng));
}

Quantization quant(float scale, int32_t zero_point) {
  Quantization q;
  q.scale = {scale};
  q.zero_point = {zero_point};
  return q;
}

TensorView s8_view(std::vector<int8_t>& data, const Dims& dims, const Quantization& q) {
  return TensorView{DType::kInt8, dims, data.data(), &q};
}

#if defined(__arm__) || defined(__aarch64__)
constexpr bool kArm = true;
#else
constexpr bool kArm = false;
#endif

}  // namespace

TEST_CASE("int8 add / mul / global average pool / softmax: reference == XNNPACK operators, bit for bit") {
  REQUIRE(xnn_initialize(nullptr) == xnn_status_success);
  std::mt19937 rng(13);
  int compared[3] = {0, 0, 0};
  int arm_mul_off_by_one = 0;
  for (int iter = 0; iter < 200; ++iter) {
    CAPTURE(iter);
    const Quantization qa = quant(rand_scale(rng), rand_int(rng, -128, 127));
    const Quantization qb = quant(rand_scale(rng), rand_int(rng, -128, 127));
    const Quantization qy = quant(rand_scale(rng), rand_int(rng, -128, 127));
    const FusedActivation act = iter % 3 == 0 ? FusedActivation() : iter % 3 == 1 ? FusedActivation::relu()
                                                                                : FusedActivation::relu6();
    int32_t lo, hi;
    qmath::activation_bounds(act, 8, qy.scale[0], qy.zero_point[0], &lo, &hi);
    const int n = rand_int(rng, 1, 80);
    std::vector<int8_t> a(n + 16), b(n + 16), want(n + 16), got(n + 16);
    for (int i = 0; i < n; ++i) a[i] = int8_t(rand_int(rng, -128, 127)), b[i] = int8_t(rand_int(rng, -128, 127));
    const Dims d = dims_of({n});
    const size_t shape[1] = {size_t(n)};
    for (int mul = 0; mul < 2; ++mul) {
      xnn_operator_t op = nullptr;
      const xnn_status created =
          mul ? xnn_create_multiply_nd_qs8(int8_t(qa.zero_point[0]), qa.scale[0], int8_t(qb.zero_point[0]), qb.scale[0],
                                           int8_t(qy.zero_point[0]), qy.scale[0], int8_t(lo), int8_t(hi), 0, &op)
              : xnn_create_add_nd_qs8(int8_t(qa.zero_point[0]), qa.scale[0], int8_t(qb.zero_point[0]), qb.scale[0],
                                      int8_t(qy.zero_point[0]), qy.scale[0], int8_t(lo), int8_t(hi), 0, &op);
      if (!mul) CHECK((created == xnn_status_success) == reference::add_s8_scales_supported(qa.scale[0], qb.scale[0], qy.scale[0]));
      if (created != xnn_status_success) continue;
      REQUIRE((mul ? xnn_setup_multiply_nd_qs8(op, 1, shape, 1, shape, a.data(), b.data(), want.data(), nullptr)
                   : xnn_setup_add_nd_qs8(op, 1, shape, 1, shape, a.data(), b.data(), want.data(), nullptr)) ==
              xnn_status_success);
      REQUIRE(xnn_run_operator(op, nullptr) == xnn_status_success);
      xnn_delete_operator(op);
      const TensorView va = s8_view(a, d, qa), vb = s8_view(b, d, qb), vy = s8_view(got, d, qy);
      if (mul)
        reference::mul_s8(act, va, vb, vy);
      else
        reference::add_s8(act, va, vb, vy);
      // On ARM this XNNPACK multiplies with fixed-point "rndnu" kernels, which may differ by a
      // level; the backend keeps Mul on the reference kernel there (ops_s8_test.cc checks that).
      if (mul && kArm) {
        for (int i = 0; i < n; ++i) arm_mul_off_by_one += std::abs(int(got[i]) - int(want[i])) == 1;
        for (int i = 0; i < n; ++i) REQUIRE(std::abs(int(got[i]) - int(want[i])) <= 1);
      } else {
        for (int i = 0; i < n; ++i) REQUIRE(int(got[i]) == int(want[i]));
      }
      ++compared[mul];
    }
    // Global average pool over [1, H, W, C].
    const int h = rand_int(rng, 1, 12), w = rand_int(rng, 1, 12), c = rand_int(rng, 1, 20);
    std::vector<int8_t> x(h * w * c + 16), gwant(c + 16), ggot(c + 16);
    for (int i = 0; i < h * w * c; ++i) x[i] = int8_t(rand_int(rng, -128, 127));
    xnn_operator_t op = nullptr;
    if (xnn_create_global_average_pooling_nwc_qs8(size_t(c), size_t(c), size_t(c), int8_t(qa.zero_point[0]), qa.scale[0],
                                                  int8_t(qy.zero_point[0]), qy.scale[0], int8_t(lo), int8_t(hi), 0,
                                                  &op) != xnn_status_success)
      continue;
    REQUIRE(xnn_setup_global_average_pooling_nwc_qs8(op, 1, size_t(h * w), x.data(), gwant.data(), nullptr) ==
            xnn_status_success);
    REQUIRE(xnn_run_operator(op, nullptr) == xnn_status_success);
    xnn_delete_operator(op);
    reference::global_average_pool_s8(act, s8_view(x, dims_of({1, h, w, c}), qa), s8_view(ggot, dims_of({1, 1, 1, c}), qy));
    for (int i = 0; i < c; ++i) REQUIRE(int(ggot[i]) == int(gwant[i]));
    ++compared[2];
  }
  // Softmax: ours on int8 == XNNPACK's QU8 softmax on x + 128, shifted back by -128.
  int softmaxes = 0;
  for (int iter = 0; iter < 200; ++iter) {
    CAPTURE(iter);
    const int rows = rand_int(rng, 1, 4), channels = rand_int(rng, 1, iter % 4 == 0 ? 1000 : 40);
    const Quantization qx = quant(std::exp(std::uniform_real_distribution<float>(-7.0f, 0.0f)(rng)), 0);
    Quantization qy = quant(1.0f / 256.0f, -128);
    std::vector<int8_t> x(rows * channels + 16), got(rows * channels + 16);
    std::vector<uint8_t> xu(rows * channels + 16), want(rows * channels + 16);
    const int spread = rand_int(rng, 0, 255);
    const int base = rand_int(rng, -128, 127 - spread);
    for (int i = 0; i < rows * channels; ++i) {
      x[i] = int8_t(base + rand_int(rng, 0, spread));
      xu[i] = uint8_t(x[i] + 128);
    }
    xnn_operator_t op = nullptr;
    REQUIRE(xnn_create_softmax_nc_qu8(size_t(channels), size_t(channels), size_t(channels), qx.scale[0], 0,
                                      1.0f / 256.0f, 0, &op) == xnn_status_success);
    REQUIRE(xnn_setup_softmax_nc_qu8(op, size_t(rows), xu.data(), want.data(), nullptr) == xnn_status_success);
    REQUIRE(xnn_run_operator(op, nullptr) == xnn_status_success);
    xnn_delete_operator(op);
    const TensorView vy = s8_view(got, dims_of({rows, channels}), qy);
    REQUIRE(reference::softmax_s8_output_supported(vy));
    reference::softmax_s8(1.0f, s8_view(x, dims_of({rows, channels}), qx), vy);
    for (int i = 0; i < rows * channels; ++i) REQUIRE(int(got[i]) == int(want[i]) - 128);
    ++softmaxes;
  }
  CHECK(softmaxes == 200);
  MESSAGE("compared " << compared[0] << " adds, " << compared[1] << " muls, " << compared[2] << " pools"
                      << (kArm ? ", ARM muls one level off: " + std::to_string(arm_mul_off_by_one) : std::string()));
  CHECK(compared[0] > 100);
  CHECK(compared[1] > 100);
  CHECK(compared[2] > 50);
}
#endif  // TQ_WITH_XNNPACK
