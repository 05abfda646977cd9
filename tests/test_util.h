// Small helpers shared by the test suites.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "tinyquant/graph.h"
#include "tinyquant/tensor_view.h"

namespace tinyquant {
namespace testing {

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline int32_t rand_int(std::mt19937& rng, int32_t lo, int32_t hi) {
  return std::uniform_int_distribution<int32_t>(lo, hi)(rng);
}

inline Dims dims_of(std::initializer_list<int32_t> d) {
  Dims out;
  for (int32_t v : d) out.d[out.rank++] = v;
  return out;
}

inline TensorView view(std::vector<float>& data, const Dims& dims) {
  TensorView v;
  v.dtype = DType::kFloat32;
  v.dims = dims;
  v.data = data.data();
  return v;
}

// Largest |a-b| / (1 + |b|) over two equal-length arrays.
inline double max_rel_error(const std::vector<float>& a, const std::vector<double>& b) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]) / (1.0 + std::fabs(b[i])));
  return worst;
}

}  // namespace testing
}  // namespace tinyquant
