// Conv2D / DepthwiseConv2D on int8 activations and per-channel b-bit weights, read bit-packed in
// place (qmath::unpack_weight) — no unpacked copy anywhere. Arithmetic as in qmath.h:
//   acc = bias[c] + sum over in-bounds taps of (x - z_in) * w[c]    (int32; padding adds nothing)
//   y   = requantize(acc, requant_scale(s_in, s_w[c], s_out), z_out, lo, hi)
#include "common_s8.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

void conv2d_s8(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
               const TensorView& weights, const TensorView* bias, const TensorView& output) {
  const int32_t batch = input.dims[0], in_h = input.dims[1], in_w = input.dims[2], in_c = input.dims[3];
  const int32_t out_h = output.dims[1], out_w = output.dims[2], out_c = output.dims[3];
  const int32_t k_h = weights.dims[1], k_w = weights.dims[2], group_in = weights.dims[3];
  const int32_t group_out = out_c / opt.groups;
  const int64_t row = int64_t(k_h) * k_w * group_in;  // weights of one output channel
  const auto [x, w, w_bits, b, y, s_in, s_out, z_in, z_out, lo, hi] = weighted_s8(act, input, weights, bias, output);

  for (int32_t n = 0; n < batch; ++n)
    for (int32_t oy = 0; oy < out_h; ++oy)
      for (int32_t ox = 0; ox < out_w; ++ox) {
        int8_t* out_px = y + ((int64_t(n) * out_h + oy) * out_w + ox) * out_c;
        for (int32_t oc = 0; oc < out_c; ++oc) {
          const int32_t ic0 = (oc / group_out) * group_in;
          int32_t acc = b ? b[oc] : 0;
          for (int32_t ky = 0; ky < k_h; ++ky) {
            const int32_t iy = oy * opt.stride_h - opt.padding.top + ky * opt.dilation_h;
            if (iy < 0 || iy >= in_h) continue;
            for (int32_t kx = 0; kx < k_w; ++kx) {
              const int32_t ix = ox * opt.stride_w - opt.padding.left + kx * opt.dilation_w;
              if (ix < 0 || ix >= in_w) continue;
              const int8_t* xp = x + ((int64_t(n) * in_h + iy) * in_w + ix) * in_c + ic0;
              const int64_t w0 = int64_t(oc) * row + (int64_t(ky) * k_w + kx) * group_in;
              acc += dot_packed(xp, z_in, w, w0, group_in, w_bits);
            }
          }
          const float scale = qmath::requant_scale(s_in, weights.quant->scale[oc], s_out);
          out_px[oc] = static_cast<int8_t>(qmath::requantize(acc, scale, z_out, lo, hi));
        }
      }
}

// Weights 1HWO: output channel c*m+j reads input channel c; weight element (ky*KW+kx)*O + oc.
void depthwise_conv2d_s8(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
                         const TensorView& weights, const TensorView* bias, const TensorView& output) {
  const int32_t batch = input.dims[0], in_h = input.dims[1], in_w = input.dims[2], in_c = input.dims[3];
  const int32_t out_h = output.dims[1], out_w = output.dims[2], out_c = output.dims[3];
  const int32_t k_h = weights.dims[1], k_w = weights.dims[2];
  const int32_t mult = opt.depth_multiplier;
  const auto [x, w, w_bits, b, y, s_in, s_out, z_in, z_out, lo, hi] = weighted_s8(act, input, weights, bias, output);

  for (int32_t n = 0; n < batch; ++n)
    for (int32_t oy = 0; oy < out_h; ++oy)
      for (int32_t ox = 0; ox < out_w; ++ox) {
        int8_t* out_px = y + ((int64_t(n) * out_h + oy) * out_w + ox) * out_c;
        for (int32_t oc = 0; oc < out_c; ++oc) {
          const int32_t ic = oc / mult;
          int32_t acc = b ? b[oc] : 0;
          for (int32_t ky = 0; ky < k_h; ++ky) {
            const int32_t iy = oy * opt.stride_h - opt.padding.top + ky * opt.dilation_h;
            if (iy < 0 || iy >= in_h) continue;
            for (int32_t kx = 0; kx < k_w; ++kx) {
              const int32_t ix = ox * opt.stride_w - opt.padding.left + kx * opt.dilation_w;
              if (ix < 0 || ix >= in_w) continue;
              const int32_t xv = x[((int64_t(n) * in_h + iy) * in_w + ix) * in_c + ic] - z_in;
              acc += xv * qmath::unpack_weight(w, (int64_t(ky) * k_w + kx) * out_c + oc, w_bits);
            }
          }
          const float scale = qmath::requant_scale(s_in, weights.quant->scale[oc], s_out);
          out_px[oc] = static_cast<int8_t>(qmath::requantize(acc, scale, z_out, lo, hi));
        }
      }
}

}  // namespace reference
}  // namespace tinyquant
