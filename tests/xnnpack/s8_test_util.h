// Shared by the XNNPACK int8 suites (*_s8_test.cc): int8 tensors with their quantization, random
// parameters at any bit-width, and the bit-exact comparison of XNNPACK (threads = 1 and 2) with
// the reference int8 kernels. Every case must match exactly: the integer path has no tolerance.
#pragma once

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tinyquant/qmath.h"
#include "xnnpack/xnnpack_test_util.h"

namespace tinyquant {
namespace xnnpack_test {

// A tensor the test owns plus the Quantization its view points at (neither moves).
struct QTensor {
  Quantization q;
  TestTensor t;
  QTensor(const std::vector<int32_t>& shape, DType dtype) : t(shape, dtype) { t.view.quant = &q; }
  QTensor(const QTensor&) = delete;
  QTensor& operator=(const QTensor&) = delete;
  int8_t* s8() const { return t.view.as<int8_t>(); }
  int64_t size() const { return t.size(); }
};

inline float random_scale(std::mt19937& rng) {
  return std::exp(std::uniform_real_distribution<float>(-6.0f, 0.0f)(rng));
}

// An int8 activation of `bits` bits: a random zero point and values on its 2^bits levels.
inline std::unique_ptr<QTensor> s8_activation(std::mt19937& rng, const std::vector<int32_t>& shape, float scale,
                                              int32_t bits) {
  auto x = std::make_unique<QTensor>(shape, DType::kInt8);
  x->q.scale = {scale};
  x->q.zero_point = {uniform_int(rng, qmath::qmin(bits), qmath::qmax(bits))};
  x->q.bits = bits;
  for (int64_t i = 0; i < x->size(); ++i) x->s8()[i] = int8_t(uniform_int(rng, qmath::qmin(bits), qmath::qmax(bits)));
  return x;
}

// An int8 output: values are written by the op; its zero point lies on its levels.
inline std::unique_ptr<QTensor> s8_output(std::mt19937& rng, const std::vector<int32_t>& shape, float scale,
                                          int32_t bits) {
  auto y = std::make_unique<QTensor>(shape, DType::kInt8);
  y->q.scale = {scale};
  y->q.zero_point = {uniform_int(rng, qmath::qmin(bits), qmath::qmax(bits))};
  y->q.bits = bits;
  return y;
}

// Per-channel b-bit weights, bit-packed as in the file; `scales` one per output channel.
inline std::unique_ptr<QTensor> s8_weights(std::mt19937& rng, const std::vector<int32_t>& shape, int32_t bits,
                                           int32_t axis, const std::vector<float>& scales) {
  auto w = std::make_unique<QTensor>(shape, DType::kInt8);
  w->q.scale = scales;
  w->q.zero_point.assign(scales.size(), 0);
  w->q.axis = axis;
  w->q.bits = bits;
  std::vector<int8_t> values(static_cast<size_t>(w->size()));
  for (int8_t& v : values) v = int8_t(uniform_int(rng, qmath::qmin(bits), qmath::qmax(bits)));
  qmath::pack_weights(values.data(), w->size(), bits, w->t.view.as<uint8_t>());
  return w;
}

inline std::unique_ptr<QTensor> s32_bias(std::mt19937& rng, int32_t n, int32_t magnitude) {
  auto b = std::make_unique<QTensor>(std::vector<int32_t>{n}, DType::kInt32);
  for (int32_t i = 0; i < n; ++i) b->t.view.as<int32_t>()[i] = uniform_int(rng, -magnitude, magnitude);
  return b;
}

// Sometimes a power of two (so acc * scale lands on exact halves and tests round-half-even).
inline float maybe_power_of_two(std::mt19937& rng, float scale) {
  return chance(rng, 0.25) ? std::exp2(std::round(std::log2(scale))) : scale;
}

// Per op kind: how many random cases ran, how many XNNPACK took, and the worst difference in
// levels (must stay 0). Printed at the end so a run records the result.
struct S8Stats {
  std::string op;
  int cases = 0, handled = 0, max_levels = 0;
  ~S8Stats() {
    MESSAGE(op << ": " << handled << "/" << cases << " cases on XNNPACK (threads 1 and 2), max |xnn - ref| = "
               << max_levels << " levels");
  }
};

inline int64_t byte_size(const TestTensor& t) { return t.size() * static_cast<int64_t>(dtype_size(t.view.dtype)); }

// Runs `op` on XNNPACK with one and with two threads and on the reference kernel; the outputs
// must be identical bytes. `out` supplies the output's shape, dtype and quantization. Returns
// whether XNNPACK took the op (it must then take it on both runners).
inline bool check_s8(xnnpack::Runner& one, xnnpack::Runner& two, const Operator& op,
                     const std::vector<const TestTensor*>& inputs, const QTensor& out, S8Stats* stats,
                     const std::string& what) {
  ++stats->cases;
  const std::vector<int32_t> shape = out.t.shape();
  TestTensor got1(shape, out.t.view.dtype), got2(shape, out.t.view.dtype), want(shape, out.t.view.dtype);
  got1.view.quant = got2.view.quant = want.view.quant = &out.q;
  const bool handled = run_xnnpack(one, op, inputs, got1);
  CHECK_MESSAGE(run_xnnpack(two, op, inputs, got2) == handled, what);
  if (!handled) return false;
  ++stats->handled;
  run_reference(op, inputs, want);
  const int64_t n = out.t.size();
  int reported = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (out.t.view.dtype == DType::kInt8) {
      const int g1 = got1.view.as<int8_t>()[i], g2 = got2.view.as<int8_t>()[i], w = want.view.as<int8_t>()[i];
      stats->max_levels = std::max({stats->max_levels, std::abs(g1 - w), std::abs(g2 - w)});
      if ((g1 != w || g2 != w) && reported++ < 3)
        FAIL_CHECK(what << ": element " << i << " xnnpack " << g1 << " (2 threads " << g2 << ") reference " << w);
    } else if (std::memcmp(got1.view.as<uint8_t>() + i * 4, want.view.as<uint8_t>() + i * 4, 4) != 0 ||
               std::memcmp(got2.view.as<uint8_t>() + i * 4, want.view.as<uint8_t>() + i * 4, 4) != 0) {
      stats->max_levels = std::max(stats->max_levels, 1);
      if (reported++ < 3)
        FAIL_CHECK(what << ": element " << i << " xnnpack " << got1[i] << " (2 threads " << got2[i] << ") reference "
                        << want[i]);
    }
  }
  return true;
}

}  // namespace xnnpack_test
}  // namespace tinyquant
