#include "common.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

void fully_connected_f32(const FusedActivation& act, const TensorView& input, const TensorView& weights,
                         const TensorView* bias, const TensorView& output) {
  const int32_t out_features = weights.dims[0], in_features = weights.dims[1];
  const int64_t rows = input.elements() / in_features;
  const float* x = input.as<const float>();
  const float* w = weights.as<const float>();
  const float* b = bias && bias->data ? bias->as<const float>() : nullptr;
  float* y = output.as<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * in_features;
    for (int32_t o = 0; o < out_features; ++o) {
      const float* wr = w + int64_t(o) * in_features;
      float acc = 0.0f;
      for (int32_t i = 0; i < in_features; ++i) acc += xr[i] * wr[i];
      if (b) acc += b[o];
      y[r * out_features + o] = apply_activation(acc, act);
    }
  }
}

}  // namespace reference
}  // namespace tinyquant
