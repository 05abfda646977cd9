#include <cmath>

#include "common.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

void softmax_f32(float beta, const TensorView& input, const TensorView& output) {
  const int32_t depth = input.dims[input.dims.rank - 1];
  if (depth <= 0) return;
  const int64_t rows = input.elements() / depth;
  const float* x = input.as<const float>();
  float* y = output.as<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * depth;
    float* yr = y + r * depth;
    float max = xr[0];
    for (int32_t i = 1; i < depth; ++i) max = std::max(max, xr[i]);
    float sum = 0.0f;
    for (int32_t i = 0; i < depth; ++i) sum += (yr[i] = std::exp(beta * (xr[i] - max)));
    const float inv = 1.0f / sum;
    for (int32_t i = 0; i < depth; ++i) yr[i] *= inv;
  }
}

}  // namespace reference
}  // namespace tinyquant
