// Element-wise ops on int8 activations, written to the arithmetic of XNNPACK's QS8 operators in
// Debian's XNNPACK 0.0~git20220216.ae108ef (checked bit for bit against that library's
// xnn_create_add_nd_qs8 / xnn_create_multiply_nd_qs8 on random parameters):
//
//   Add — xnn_init_qs8_add_minmax_scalar_params + qs8-vadd/qs8-vaddc scalar kernels:
//     ra = s_a / s_out, rb = s_b / s_out (float; each in [2^-10, 2^8), else XNNPACK rejects the op)
//     shift = 20 - exponent(max(ra, rb))                   (so shift is in [12, 30])
//     ma = lrintf(ra * 2^shift), mb = lrintf(rb * 2^shift) (2^shift applied to the float's exponent bits)
//     acc = -(ma * z_a + mb * z_b) + ma * a + mb * b       (int32)
//     y = clamp((acc + 2^(shift-1)) >> shift, lo - z_out, hi - z_out) + z_out   (arithmetic shift)
//   Mul — xnn_init_qs8_mul_minmax_fp32_scalar_params + qs8-vmul fp32 scalar kernel:
//     y = requantize((a - z_a) * (b - z_b), (s_a * s_b) / s_out, z_out, lo, hi)   (qmath.h)
//   Clamp: input and output share scale / zero point; y = min(max(x, lo), hi).
// [lo, hi] = activation_bounds(fused activation, bits_out, s_out, z_out). Broadcasting as in the
// float kernels (NumPy, shapes aligned at the last dimension).
#include <cmath>
#include <cstring>

#include "common.h"
#include "common_s8.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

namespace {

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

}  // namespace

bool add_s8_scales_supported(float a_scale, float b_scale, float out_scale) {
  const float ra = a_scale / out_scale, rb = b_scale / out_scale;
  return ra >= 0x1.0p-10f && ra < 0x1.0p+8f && rb >= 0x1.0p-10f && rb < 0x1.0p+8f;
}

void add_s8(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out) {
  const float s_out = out.quant->scale[0];
  const float ra = a.quant->scale[0] / s_out, rb = b.quant->scale[0] / s_out;
  TQ_DCHECK(add_s8_scales_supported(a.quant->scale[0], b.quant->scale[0], s_out));
  const int32_t exponent = static_cast<int32_t>(float_bits(std::max(ra, rb)) >> 23) - 127;
  const uint32_t shift = static_cast<uint32_t>(20 - exponent);
  const int32_t ma = static_cast<int32_t>(std::lrintf(bits_float(float_bits(ra) + (shift << 23))));
  const int32_t mb = static_cast<int32_t>(std::lrintf(bits_float(float_bits(rb) + (shift << 23))));
  const int32_t bias = -(ma * zero_point(a) + mb * zero_point(b)) + (int32_t(1) << (shift - 1));
  const int32_t z_out = zero_point(out);
  int32_t lo, hi;
  qmath::activation_bounds(act, out.quant->bits, s_out, z_out, &lo, &hi);
  lo -= z_out, hi -= z_out;
  broadcast_binary<int8_t>(a, b, out, [&](int32_t x, int32_t y) {
    const int32_t acc = bias + x * ma + y * mb;
    const int32_t v = acc >> shift;  // arithmetic shift (C++20-defined; every supported compiler does so)
    return std::min(std::max(v, lo), hi) + z_out;
  });
}

void mul_s8(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out) {
  const float scale = qmath::requant_scale(a.quant->scale[0], b.quant->scale[0], out.quant->scale[0]);
  const int32_t za = zero_point(a), zb = zero_point(b), z_out = zero_point(out);
  int32_t lo, hi;
  qmath::activation_bounds(act, out.quant->bits, out.quant->scale[0], z_out, &lo, &hi);
  broadcast_binary<int8_t>(a, b, out, [&](int32_t x, int32_t y) {
    return qmath::requantize((x - za) * (y - zb), scale, z_out, lo, hi);
  });
}

void clamp_s8(const FusedActivation& bounds, const TensorView& input, const TensorView& output) {
  int32_t lo, hi;
  qmath::activation_bounds(bounds, output.quant->bits, output.quant->scale[0], zero_point(output), &lo, &hi);
  const int8_t* x = input.as<const int8_t>();
  int8_t* y = output.as<int8_t>();
  const int64_t n = input.elements();
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<int8_t>(std::min(std::max<int32_t>(x[i], lo), hi));
}

}  // namespace reference
}  // namespace tinyquant
