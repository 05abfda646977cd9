// Pooling on int8 activations. [lo, hi] = activation_bounds(act, bits_out, s_out, z_out).
//   MaxPool2D: input and output share scale / zero point; y = clamp(max over the in-bounds
//   window, lo, hi). Padding never wins.
//   GlobalAveragePool: the arithmetic of XNNPACK's global_average_pooling_nwc_qs8 in Debian's
//   XNNPACK 0.0~git20220216.ae108ef (qs8-gavgpool fp32 kernels; checked bit for bit against that
//   library on random parameters), n = H * W:
//     acc = -(n * z_in) + sum x                                   (int32)
//     y   = requantize(acc, s_in / (s_out * (float) n), z_out, lo, hi)
//   AveragePool2D: that XNNPACK has no QS8 average pooling; we use the same formula per window,
//   with n = the divisor (window size with count_include_pad, else the in-bounds pixels) and the
//   sum over in-bounds pixels only (a padded position is a real 0, i.e. x = z_in, adding 0):
//     acc = sum over in-bounds (x - z_in);  y = requantize(acc, s_in / (s_out * (float) n), z_out, lo, hi)
#include "common_s8.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

void max_pool2d_s8(const PoolOptions& opt, const FusedActivation& act, const TensorView& input,
                   const TensorView& output) {
  const int32_t batch = input.dims[0], in_h = input.dims[1], in_w = input.dims[2], ch = input.dims[3];
  const int32_t out_h = output.dims[1], out_w = output.dims[2];
  const int8_t* x = input.as<const int8_t>();
  int8_t* y = output.as<int8_t>();
  int32_t lo, hi;
  qmath::activation_bounds(act, output.quant->bits, output.quant->scale[0], zero_point(output), &lo, &hi);
  for (int32_t n = 0; n < batch; ++n)
    for (int32_t oy = 0; oy < out_h; ++oy)
      for (int32_t ox = 0; ox < out_w; ++ox) {
        int8_t* out_px = y + ((int64_t(n) * out_h + oy) * out_w + ox) * ch;
        for (int32_t c = 0; c < ch; ++c) out_px[c] = INT8_MIN;
        for (int32_t ky = 0; ky < opt.kernel_h; ++ky) {
          const int32_t iy = oy * opt.stride_h - opt.padding.top + ky * opt.dilation_h;
          if (iy < 0 || iy >= in_h) continue;
          for (int32_t kx = 0; kx < opt.kernel_w; ++kx) {
            const int32_t ix = ox * opt.stride_w - opt.padding.left + kx * opt.dilation_w;
            if (ix < 0 || ix >= in_w) continue;
            const int8_t* xp = x + ((int64_t(n) * in_h + iy) * in_w + ix) * ch;
            for (int32_t c = 0; c < ch; ++c) out_px[c] = xp[c] > out_px[c] ? xp[c] : out_px[c];
          }
        }
        for (int32_t c = 0; c < ch; ++c)
          out_px[c] = static_cast<int8_t>(std::min(std::max<int32_t>(out_px[c], lo), hi));
      }
}

void average_pool2d_s8(const PoolOptions& opt, const FusedActivation& act, const TensorView& input,
                       const TensorView& output) {
  const int32_t batch = input.dims[0], in_h = input.dims[1], in_w = input.dims[2], ch = input.dims[3];
  const int32_t out_h = output.dims[1], out_w = output.dims[2];
  const int8_t* x = input.as<const int8_t>();
  int8_t* y = output.as<int8_t>();
  const float s_in = input.quant->scale[0], s_out = output.quant->scale[0];
  const int32_t z_in = zero_point(input), z_out = zero_point(output);
  int32_t lo, hi;
  qmath::activation_bounds(act, output.quant->bits, s_out, z_out, &lo, &hi);
  for (int32_t n = 0; n < batch; ++n)
    for (int32_t oy = 0; oy < out_h; ++oy)
      for (int32_t ox = 0; ox < out_w; ++ox) {
        int8_t* out_px = y + ((int64_t(n) * out_h + oy) * out_w + ox) * ch;
        int32_t count = 0;
        for (int32_t ky = 0; ky < opt.kernel_h; ++ky) {
          const int32_t iy = oy * opt.stride_h - opt.padding.top + ky;
          if (iy < 0 || iy >= in_h) continue;
          for (int32_t kx = 0; kx < opt.kernel_w; ++kx) {
            const int32_t ix = ox * opt.stride_w - opt.padding.left + kx;
            count += ix >= 0 && ix < in_w;
          }
        }
        const int32_t divisor = opt.count_include_pad ? opt.kernel_h * opt.kernel_w : count;
        const float scale = s_in / (s_out * static_cast<float>(divisor > 0 ? divisor : 1));
        for (int32_t c = 0; c < ch; ++c) {
          int32_t acc = -count * z_in;
          for (int32_t ky = 0; ky < opt.kernel_h; ++ky) {
            const int32_t iy = oy * opt.stride_h - opt.padding.top + ky;
            if (iy < 0 || iy >= in_h) continue;
            for (int32_t kx = 0; kx < opt.kernel_w; ++kx) {
              const int32_t ix = ox * opt.stride_w - opt.padding.left + kx;
              if (ix >= 0 && ix < in_w) acc += x[((int64_t(n) * in_h + iy) * in_w + ix) * ch + c];
            }
          }
          out_px[c] = static_cast<int8_t>(qmath::requantize(acc, scale, z_out, lo, hi));
        }
      }
}

void global_average_pool_s8(const FusedActivation& act, const TensorView& input, const TensorView& output) {
  const int32_t batch = input.dims[0], ch = input.dims[3];
  const int32_t pixels = input.dims[1] * input.dims[2];
  const int8_t* x = input.as<const int8_t>();
  int8_t* y = output.as<int8_t>();
  const float s_out = output.quant->scale[0];
  const float scale = input.quant->scale[0] / (s_out * static_cast<float>(pixels));
  const int32_t z_out = zero_point(output);
  const int32_t bias = -(pixels * zero_point(input));
  int32_t lo, hi;
  qmath::activation_bounds(act, output.quant->bits, s_out, z_out, &lo, &hi);
  for (int32_t n = 0; n < batch; ++n)
    for (int32_t c = 0; c < ch; ++c) {
      int32_t acc = bias;
      for (int64_t p = 0; p < pixels; ++p) acc += x[(int64_t(n) * pixels + p) * ch + c];
      y[int64_t(n) * ch + c] = static_cast<int8_t>(qmath::requantize(acc, scale, z_out, lo, hi));
    }
}

}  // namespace reference
}  // namespace tinyquant
