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
    // Four outputs at a time (independent accumulator chains, same per-output summation order).
    int32_t o = 0;
    for (; o + 4 <= out_features; o += 4) {
      const float* w0 = w + int64_t(o) * in_features;
      float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
      for (int32_t i = 0; i < in_features; ++i) {
        const float xv = xr[i];
        a0 += xv * w0[i];
        a1 += xv * w0[in_features + i];
        a2 += xv * w0[2 * in_features + i];
        a3 += xv * w0[3 * in_features + i];
      }
      const float acc[4] = {a0, a1, a2, a3};
      for (int32_t j = 0; j < 4; ++j)
        y[r * out_features + o + j] = apply_activation(b ? acc[j] + b[o + j] : acc[j], act);
    }
    for (; o < out_features; ++o) {
      const float* wr = w + int64_t(o) * in_features;
      float acc = 0.0f;
      for (int32_t i = 0; i < in_features; ++i) acc += xr[i] * wr[i];
      y[r * out_features + o] = apply_activation(b ? acc + b[o] : acc, act);
    }
  }
}

}  // namespace reference
}  // namespace tinyquant
