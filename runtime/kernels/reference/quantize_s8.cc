// Quantize (float32 -> int8) and Dequantize (int8 -> float32), per tensor.
//   quantize:   q = clamp(round_half_even(x * (1.0f / s)) + z, qmin(bits), qmax(bits))
//               computed as XNNPACK's f32->qs8 convert (scalar "magic" variant) does: multiply by
//               the float reciprocal, clamp in float to [qmin - z, qmax - z], round, add z. NaN
//               maps to qmin.
//   dequantize: x = float(q - z) * s
#include "common_s8.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

void quantize_s8(const TensorView& input, const TensorView& output) {
  const float inv_scale = 1.0f / output.quant->scale[0];
  const int32_t z = zero_point(output);
  const float lo = static_cast<float>(qmath::qmin(output.quant->bits) - z);
  const float hi = static_cast<float>(qmath::qmax(output.quant->bits) - z);
  const float* x = input.as<const float>();
  int8_t* y = output.as<int8_t>();
  const int64_t n = input.elements();
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] * inv_scale;
    v = v >= lo ? v : lo;  // also maps NaN to lo
    v = v <= hi ? v : hi;
    y[i] = static_cast<int8_t>(qmath::round_half_even(v) + z);
  }
}

void dequantize_s8(const TensorView& input, const TensorView& output) {
  const float s = input.quant->scale[0];
  const int32_t z = zero_point(input);
  const int8_t* x = input.as<const int8_t>();
  float* y = output.as<float>();
  const int64_t n = input.elements();
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(int32_t(x[i]) - z) * s;
}

}  // namespace reference
}  // namespace tinyquant
