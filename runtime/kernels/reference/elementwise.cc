#include "common.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

void add_f32(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out) {
  broadcast_binary<float>(a, b, out, [&](float x, float y) { return apply_activation(x + y, act); });
}

void mul_f32(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out) {
  broadcast_binary<float>(a, b, out, [&](float x, float y) { return apply_activation(x * y, act); });
}

void clamp_f32(float min, float max, const TensorView& input, const TensorView& output) {
  const float* x = input.as<const float>();
  float* y = output.as<float>();
  const int64_t n = input.elements();
  for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i], min), max);
}

}  // namespace reference
}  // namespace tinyquant
