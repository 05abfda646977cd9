// tinyquant/qmath.h — the integer arithmetic every quantized kernel keeps, on every backend, and
// that the quantizer's fake-quant simulation reproduces in float (ARCHITECTURE.md, "Numbers and
// layouts"). Header-only, no heap, MCU-safe.
//
//   weights      symmetric per output channel, b in 2..8 bits, integers in [-2^(b-1), 2^(b-1)-1],
//                zero point 0; stored bit-packed when b < 8 (see pack_weights)
//   activations  per tensor, asymmetric: real = scale * (q - zero_point); a b-bit activation is
//                an int8 whose values stay in [-2^(b-1), 2^(b-1)-1] (2^b consecutive levels)
//   bias         int32 with scale s_in * s_w[c]
//   requantize   out = clamp(round_half_even(acc * (s_in * s_w[c] / s_out)) + zp_out, lo, hi)
//                in fp32; [lo, hi] is [qmin, qmax] narrowed by the fused activation — the "fp32"
//                requantization of XNNPACK's QC8/QS8 operators, so both backends agree bit for bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "tinyquant/graph.h"

namespace tinyquant {
namespace qmath {

constexpr int32_t kMinBits = 2;
constexpr int32_t kMaxBits = 8;

inline int32_t qmin(int32_t bits) { return -(1 << (bits - 1)); }
inline int32_t qmax(int32_t bits) { return (1 << (bits - 1)) - 1; }

// Round half to even for |v| < 2^22, independent of the FPU rounding mode: adding 1.5 * 2^23
// leaves the rounded integer in the low mantissa bits (XNNPACK's "magic bias" trick).
inline int32_t round_half_even(float v) {
  const float biased = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &biased, sizeof(bits));
  return bits - 0x4B400000;
}

// The per-channel multiplier, computed in float exactly in this order on every backend.
inline float requant_scale(float input_scale, float weight_scale, float output_scale) {
  return input_scale * weight_scale / output_scale;
}

inline int32_t requantize(int32_t acc, float scale, int32_t zero_point, int32_t lo, int32_t hi) {
  float v = static_cast<float>(acc) * scale;
  v = std::max(v, static_cast<float>(lo - zero_point));
  v = std::min(v, static_cast<float>(hi - zero_point));
  return round_half_even(v) + zero_point;
}

// The output clamp [lo, hi] for an output with `bits`, `scale`, `zero_point`, narrowed by a fused
// activation (ReLU: lo = zero_point; ReLU6: hi = zero_point + round(6 / scale); Clip likewise).
inline void activation_bounds(const FusedActivation& act, int32_t bits, float scale, int32_t zero_point,
                              int32_t* lo, int32_t* hi) {
  *lo = qmin(bits);
  *hi = qmax(bits);
  constexpr float kLimit = 4194304.0f;  // 2^22: beyond it the bound is outside any int8 range anyway
  if (act.min > -INFINITY) {
    const float q = std::min(std::max(act.min / scale, -kLimit), kLimit);
    *lo = std::max(*lo, std::min(*hi, zero_point + round_half_even(q)));
  }
  if (act.max < INFINITY) {
    const float q = std::min(std::max(act.max / scale, -kLimit), kLimit);
    *hi = std::min(*hi, std::max(*lo, zero_point + round_half_even(q)));
  }
}

// Bit packing of b-bit two's-complement weights: element i occupies bits [i*b, i*b + b) of a
// little-endian bit stream (bit k of the stream is bit k % 8 of byte k / 8), row-major; unused
// high bits of the last byte are zero. b = 8 is plain int8.
inline int32_t unpack_weight(const uint8_t* packed, int64_t index, int32_t bits) {
  if (bits == 8) return static_cast<int8_t>(packed[index]);
  const int64_t bit = index * bits;
  const int64_t byte = bit >> 3;
  const int32_t shift = static_cast<int32_t>(bit & 7);
  uint32_t word = packed[byte];
  if (shift + bits > 8) word |= static_cast<uint32_t>(packed[byte + 1]) << 8;  // straddles two bytes
  const uint32_t v = (word >> shift) & ((1u << bits) - 1u);
  return static_cast<int32_t>(v << (32 - bits)) >> (32 - bits);  // sign-extend
}

// `out` must hold packed_bytes(kInt8, n, bits) bytes; values must already lie in [qmin, qmax].
inline void pack_weights(const int8_t* values, int64_t n, int32_t bits, uint8_t* out) {
  if (bits == 8) {
    std::memcpy(out, values, static_cast<size_t>(n));
    return;
  }
  std::memset(out, 0, static_cast<size_t>((n * bits + 7) / 8));
  const uint32_t mask = (1u << bits) - 1u;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t bit = i * bits;
    const uint32_t v = (static_cast<uint32_t>(values[i]) & mask) << (bit & 7);
    out[bit >> 3] |= static_cast<uint8_t>(v & 0xFF);
    if ((bit & 7) + bits > 8) out[(bit >> 3) + 1] |= static_cast<uint8_t>(v >> 8);
  }
}

}  // namespace qmath
}  // namespace tinyquant
