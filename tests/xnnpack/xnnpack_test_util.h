// Shared by the XNNPACK backend suites: tensors the tests own, running one op on the XNNPACK
// runner and on the reference kernels, and comparing the two.
//
// Tolerance. XNNPACK sums in another order than the reference (blocked GEMM, SIMD lanes, FMA),
// so a reduction of n terms may differ. For recursive summation of n products (any order, with
// or without FMA) the classic bound is |computed - exact| <= gamma_n * S, gamma_n = n*u/(1 - n*u),
// u = 2^-24, S = sum of |terms| (Higham, Accuracy and Stability of Numerical Algorithms, 3.1).
// Both backends stay within it, so they differ by at most 2 * gamma_n * S; we allow
// 2 * (n + 2) * u * S, the +2 covering a bias add and a final scale (average pools). S is
// computed exactly that way: the reference kernel run on |inputs|, |weights|, |bias| with no
// activation. Fused clamps are 1-Lipschitz and keep the bound. The bound is rigorous, so the
// tests are never flaky, yet a misplaced term (error ~ S/n) still exceeds it for every n we draw
// (n <= ~600 -> bound ~1e-4 S). Ops with one rounding per element (add, mul, clamp, max pool,
// copies) must match bit for bit: tolerance 0.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/reference/reference_kernels.h"
#include "kernels/xnnpack/xnnpack_backend.h"

namespace tinyquant {
namespace xnnpack_test {

constexpr double kUnitRoundoff = 5.9604644775390625e-08;  // 2^-24
// XNNPACK kernels may read (never write) up to XNN_EXTRA_BYTES = 16 bytes past an input; every
// test tensor has that much slack after it. After an output the slack is a guard we check.
constexpr int kSlackFloats = 4;
constexpr float kGuard = -12345.5f;

class TestTensor {
 public:
  explicit TestTensor(const std::vector<int32_t>& shape, DType dtype = DType::kFloat32) {
    view.dtype = dtype;
    view.dims = Dims::of(shape);
    const int64_t bytes = view.elements() * static_cast<int64_t>(dtype_size(dtype));
    storage_.assign(static_cast<size_t>((bytes + 3) / 4 + kSlackFloats), kGuard);
    view.data = storage_.data();
  }
  TestTensor(const TestTensor&) = delete;
  TestTensor& operator=(const TestTensor&) = delete;

  int64_t size() const { return view.elements(); }
  float* f32() const { return view.as<float>(); }
  float operator[](int64_t i) const { return f32()[i]; }

  TestTensor& uniform(std::mt19937& rng, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    for (int64_t i = 0; i < size(); ++i) f32()[i] = dist(rng);
    return *this;
  }
  std::unique_ptr<TestTensor> abs() const {
    auto out = std::make_unique<TestTensor>(shape());
    for (int64_t i = 0; i < size(); ++i) out->f32()[i] = std::fabs(f32()[i]);
    return out;
  }
  std::vector<int32_t> shape() const { return std::vector<int32_t>(view.dims.d, view.dims.d + view.dims.rank); }
  // The slack after the data still holds kGuard (nothing wrote past the end).
  bool guard_intact() const {
    const size_t used = storage_.size() - kSlackFloats;
    for (size_t i = used; i < storage_.size(); ++i)
      if (storage_[i] != kGuard) return false;
    return true;
  }
  void poison() { std::fill(storage_.begin(), storage_.end() - kSlackFloats, std::nanf("")); }

  TensorView view;

 private:
  std::vector<float> storage_;
};

// Views for an op's inputs; a null entry is an absent optional input (bias).
inline std::vector<TensorView> views_of(const std::vector<const TestTensor*>& tensors) {
  std::vector<TensorView> views(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i] != nullptr) views[i] = tensors[i]->view;
  return views;
}

// Prepares `op` on the runner; when handled, runs it into `out`. Returns whether XNNPACK took it.
inline bool run_xnnpack(xnnpack::Runner& runner, const Operator& op, const std::vector<const TestTensor*>& inputs,
                        TestTensor& out) {
  const std::vector<TensorView> in = views_of(inputs);
  bool handled = true;
  int handle = -7;
  out.poison();
  const Status prepared =
      runner.prepare_op(op, in.data(), static_cast<int>(in.size()), &out.view, 1, &handled, &handle);
  REQUIRE_MESSAGE(prepared.is_ok(), std::string(prepared.message()));
  if (!handled) {
    CHECK(handle == -1);
    return false;
  }
  const Status ran = runner.run(handle);
  REQUIRE_MESSAGE(ran.is_ok(), std::string(ran.message()));
  CHECK_MESSAGE(out.guard_intact(), "XNNPACK wrote past the end of the output of ", op.name);
  return true;
}

inline void run_reference(const Operator& op, const std::vector<const TestTensor*>& inputs, TestTensor& out) {
  const std::vector<TensorView> in = views_of(inputs);
  const Status status = reference::eval(op, in.data(), static_cast<int>(in.size()), &out.view, 1);
  REQUIRE_MESSAGE(status.is_ok(), std::string(status.message()));
}

// Sum of |terms| per output element: the reference on |inputs| without activation (see top).
inline std::unique_ptr<TestTensor> magnitude(const Operator& op, const std::vector<const TestTensor*>& inputs,
                                             const std::vector<int32_t>& out_shape) {
  std::vector<std::unique_ptr<TestTensor>> owned;
  std::vector<const TestTensor*> abs_inputs;
  for (const TestTensor* t : inputs) {
    if (t == nullptr) {
      abs_inputs.push_back(nullptr);
      continue;
    }
    owned.push_back(t->abs());
    abs_inputs.push_back(owned.back().get());
  }
  Operator plain = op;
  plain.activation = FusedActivation();
  auto out = std::make_unique<TestTensor>(out_shape);
  run_reference(plain, abs_inputs, *out);
  return out;
}

// Worst error seen for one op over a test case; printed at the end so runs record the margin.
struct ErrorStats {
  std::string op;
  int cases = 0, handled = 0;
  double max_abs = 0.0;    // max |xnnpack - reference|
  double max_ratio = 0.0;  // max |xnnpack - reference| / tolerance (must stay <= 1)
  ~ErrorStats() {
    MESSAGE(op << ": " << handled << "/" << cases << " cases on XNNPACK, max |xnn - ref| = " << max_abs
               << ", max error / tolerance = " << max_ratio);
  }
};

// Element i must satisfy |got - want| <= factor * scale[i] (scale null: bit-exact).
inline void expect_close(const TestTensor& got, const TestTensor& want, const TestTensor* scale, double factor,
                         ErrorStats* stats, const std::string& what) {
  REQUIRE(got.size() == want.size());
  int reported = 0;
  for (int64_t i = 0; i < want.size(); ++i) {
    const double g = got[i], w = want[i];
    const double err = g == w ? 0.0 : std::fabs(g - w);  // also equal infinities
    const double tol = scale != nullptr ? factor * std::fabs((*scale)[i]) : 0.0;
    stats->max_abs = std::max(stats->max_abs, err);
    if (tol > 0.0) stats->max_ratio = std::max(stats->max_ratio, err / tol);
    if (!(err <= tol) && reported++ < 3)
      FAIL_CHECK(what << ": element " << i << " xnnpack " << g << " reference " << w << " (tolerance " << tol << ")");
  }
}

// Runs op on both backends and compares. `terms` is the reduction length n (0: bit-exact op).
// Returns whether XNNPACK handled it.
inline bool check_op(xnnpack::Runner& runner, const Operator& op, const std::vector<const TestTensor*>& inputs,
                     const std::vector<int32_t>& out_shape, double terms, ErrorStats* stats, const std::string& what) {
  TestTensor got(out_shape), want(out_shape);
  ++stats->cases;
  const bool handled = run_xnnpack(runner, op, inputs, got);
  if (!handled) return false;
  ++stats->handled;
  run_reference(op, inputs, want);
  if (terms > 0) {
    const auto scale = magnitude(op, inputs, out_shape);
    expect_close(got, want, scale.get(), 2.0 * (terms + 2.0) * kUnitRoundoff, stats, what);
  } else {
    expect_close(got, want, nullptr, 0.0, stats, what);
  }
  return true;
}

// A random fused activation: none, ReLU, ReLU6 or a clip inside [-2, 2].
inline FusedActivation random_activation(std::mt19937& rng) {
  switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
    case 1: return FusedActivation::relu();
    case 2: return FusedActivation::relu6();
    case 3: {
      std::uniform_real_distribution<float> d(-2.0f, 2.0f);
      float lo = d(rng), hi = d(rng);
      if (lo > hi) std::swap(lo, hi);
      return FusedActivation::clip(lo, hi + 0.25f);
    }
    default: return FusedActivation();
  }
}

inline int uniform_int(std::mt19937& rng, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
inline bool chance(std::mt19937& rng, double p) { return std::bernoulli_distribution(p)(rng); }

inline std::unique_ptr<xnnpack::Runner> make_runner(int threads) {
  std::unique_ptr<xnnpack::Runner> runner;
  const Status status = xnnpack::Runner::create(threads, &runner);
  REQUIRE_MESSAGE(status.is_ok(), std::string(status.message()));
  return runner;
}

// "[2,3,4]" for failure messages.
inline std::string str(const std::vector<int32_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace xnnpack_test
}  // namespace tinyquant
