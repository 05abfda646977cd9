// Helpers shared by the reference int8 kernels (header-only, no state, no heap).
#pragma once

#include <cstdint>

#include "tinyquant/qmath.h"
#include "tinyquant/tensor_view.h"

namespace tinyquant {
namespace reference {

// Per-tensor zero point of an int8 view (an empty zero_point list means 0).
inline int32_t zero_point(const TensorView& v) {
  return v.quant && !v.quant->zero_point.empty() ? v.quant->zero_point[0] : 0;
}

// Both views carry the same per-tensor scale and zero point (so int8 values can be copied).
inline bool same_quantization(const TensorView& a, const TensorView& b) {
  return a.quant && b.quant && !a.quant->scale.empty() && !b.quant->scale.empty() &&
         a.quant->scale[0] == b.quant->scale[0] && zero_point(a) == zero_point(b);
}

// What every weighted int8 kernel (conv, depthwise, FC) reads from its views before its loops.
struct WeightedS8 {
  const int8_t* x;      // input activations
  const uint8_t* w;     // weights, bit-packed at w_bits
  int32_t w_bits;
  const int32_t* b;     // int32 bias or null
  int8_t* y;            // output activations
  float s_in, s_out;
  int32_t z_in, z_out;
  int32_t lo, hi;       // output clamp, fused activation included
};

inline WeightedS8 weighted_s8(const FusedActivation& act, const TensorView& input, const TensorView& weights,
                              const TensorView* bias, const TensorView& output) {
  WeightedS8 k;
  k.x = input.as<const int8_t>();
  k.w = weights.as<const uint8_t>();
  k.w_bits = weights.quant->bits;
  k.b = bias && bias->data ? bias->as<const int32_t>() : nullptr;
  k.y = output.as<int8_t>();
  k.s_in = input.quant->scale[0];
  k.s_out = output.quant->scale[0];
  k.z_in = zero_point(input);
  k.z_out = zero_point(output);
  qmath::activation_bounds(act, output.quant->bits, k.s_out, k.z_out, &k.lo, &k.hi);
  return k;
}

// sum_{i<n} (x[i] - z) * w[first + i], with w a b-bit packed stream read in place. Unpacks up to
// 64 weights at a time into a stack buffer (the only copy), so the inner loop is plain int8 math.
inline int32_t dot_packed(const int8_t* x, int32_t z, const uint8_t* w, int64_t first, int32_t n, int32_t bits) {
  int32_t acc = 0;
  if (bits == 8) {
    const int8_t* wp = reinterpret_cast<const int8_t*>(w) + first;
    for (int32_t i = 0; i < n; ++i) acc += (int32_t(x[i]) - z) * wp[i];
    return acc;
  }
  constexpr int32_t kChunk = 64;
  int8_t buf[kChunk];
  for (int32_t i0 = 0; i0 < n; i0 += kChunk) {
    const int32_t m = n - i0 < kChunk ? n - i0 : kChunk;
    for (int32_t i = 0; i < m; ++i) buf[i] = static_cast<int8_t>(qmath::unpack_weight(w, first + i0 + i, bits));
    for (int32_t i = 0; i < m; ++i) acc += (int32_t(x[i0 + i]) - z) * buf[i];
  }
  return acc;
}

}  // namespace reference
}  // namespace tinyquant
