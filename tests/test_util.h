// Small helpers shared by the test suites.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "tinyquant/graph.h"
#include "tinyquant/qmath.h"
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

// A scale drawn log-uniformly from [lo, hi].
inline float rand_scale(std::mt19937& rng, float lo, float hi) {
  return std::exp(std::uniform_real_distribution<float>(std::log(lo), std::log(hi))(rng));
}

// An int8 activation tensor with per-tensor quantization and random values on its 2^bits levels.
struct QTensor {
  Dims dims;
  Quantization quant;
  std::vector<int8_t> data;
  TensorView view() {
    TensorView v;
    v.dtype = DType::kInt8;
    v.dims = dims;
    v.data = data.data();
    v.quant = &quant;
    return v;
  }
};

inline QTensor qtensor(std::mt19937& rng, const Dims& dims, int32_t bits, float scale, bool fill = true) {
  QTensor t;
  t.dims = dims;
  t.quant.bits = bits;
  t.quant.scale = {scale};
  t.quant.zero_point = {rand_int(rng, qmath::qmin(bits), qmath::qmax(bits))};
  t.data.resize(static_cast<size_t>(dims.elements()));
  if (fill)
    for (int8_t& v : t.data) v = static_cast<int8_t>(rand_int(rng, qmath::qmin(bits), qmath::qmax(bits)));
  return t;
}

// Per-channel weights: the unpacked values (for the naive loop) and the packed bytes (for the kernel).
struct QWeights {
  Dims dims;
  Quantization quant;
  std::vector<int8_t> values;
  std::vector<uint8_t> packed;
  TensorView view() {
    TensorView v;
    v.dtype = DType::kInt8;
    v.dims = dims;
    v.data = packed.data();
    v.quant = &quant;
    return v;
  }
};

// How many bytes two equal-length outputs differ in.
inline int count_mismatches(const std::vector<int8_t>& a, const std::vector<int8_t>& b) {
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i) bad += a[i] != b[i];
  return bad;
}

}  // namespace testing
}  // namespace tinyquant
