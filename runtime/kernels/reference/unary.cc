// Unary elementwise ops (tinyquant/unary.h defines each f), Sub and Div, and the int8 lookup.
#include "common.h"
#include "reference_kernels.h"
#include "tinyquant/unary.h"

namespace tinyquant {
namespace reference {

void unary_f32(const UnaryOptions& f, const TensorView& input, const TensorView& output) {
  unary_apply_n(f, input.as<const float>(), output.as<float>(), input.elements());
}

void sub_f32(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out) {
  broadcast_binary<float>(a, b, out, [&](float x, float y) { return apply_activation(x - y, act); });
}

void div_f32(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out) {
  broadcast_binary<float>(a, b, out, [&](float x, float y) { return apply_activation(x / y, act); });
}

void lookup_s8(const TensorView& input, const TensorView& table, const TensorView& output) {
  const int8_t* x = input.as<const int8_t>();
  const int8_t* t = table.as<const int8_t>();
  int8_t* y = output.as<int8_t>();
  const int64_t n = input.elements();
  for (int64_t i = 0; i < n; ++i) y[i] = t[static_cast<int32_t>(x[i]) + 128];
}

}  // namespace reference
}  // namespace tinyquant
