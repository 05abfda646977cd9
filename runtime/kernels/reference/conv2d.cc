#include "common.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

// Direct convolution: one dot product per output element over the window's input channels,
// which are contiguous in both NHWC input and OHWI weights. No im2col buffer: no heap, no scratch.
void conv2d_f32(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
                const TensorView& weights, const TensorView* bias, const TensorView& output) {
  const int32_t batch = input.dims[0], in_h = input.dims[1], in_w = input.dims[2], in_c = input.dims[3];
  const int32_t out_h = output.dims[1], out_w = output.dims[2], out_c = output.dims[3];
  const int32_t k_h = weights.dims[1], k_w = weights.dims[2], group_in = weights.dims[3];
  const int32_t group_out = out_c / opt.groups;
  const float* x = input.as<const float>();
  const float* w = weights.as<const float>();
  const float* b = bias && bias->data ? bias->as<const float>() : nullptr;
  float* y = output.as<float>();

  for (int32_t n = 0; n < batch; ++n) {
    for (int32_t oy = 0; oy < out_h; ++oy) {
      for (int32_t ox = 0; ox < out_w; ++ox) {
        float* out_px = y + ((int64_t(n) * out_h + oy) * out_w + ox) * out_c;
        // Four output channels of one group at a time: four independent accumulator chains keep
        // the FPU busy, and each channel still sums in exactly the order of the plain loop.
        for (int32_t oc = 0; oc < out_c;) {
          const int32_t group_end = (oc / group_out + 1) * group_out;
          const int32_t ic0 = (oc / group_out) * group_in;
          const int32_t block = std::min<int32_t>(4, group_end - oc);
          float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
          for (int32_t ky = 0; ky < k_h; ++ky) {
            const int32_t iy = oy * opt.stride_h - opt.padding.top + ky * opt.dilation_h;
            if (iy < 0 || iy >= in_h) continue;
            for (int32_t kx = 0; kx < k_w; ++kx) {
              const int32_t ix = ox * opt.stride_w - opt.padding.left + kx * opt.dilation_w;
              if (ix < 0 || ix >= in_w) continue;
              const float* xp = x + ((int64_t(n) * in_h + iy) * in_w + ix) * in_c + ic0;
              const int64_t tap = (int64_t(ky) * k_w + kx) * group_in;
              const int64_t row = int64_t(k_h) * k_w * group_in;  // weights of one output channel
              const float* wp = w + int64_t(oc) * row + tap;
              if (block == 4) {
                for (int32_t ic = 0; ic < group_in; ++ic) {
                  const float xv = xp[ic];
                  acc[0] += xv * wp[ic];
                  acc[1] += xv * wp[row + ic];
                  acc[2] += xv * wp[2 * row + ic];
                  acc[3] += xv * wp[3 * row + ic];
                }
              } else {
                for (int32_t j = 0; j < block; ++j)
                  for (int32_t ic = 0; ic < group_in; ++ic) acc[j] += xp[ic] * wp[j * row + ic];
              }
            }
          }
          for (int32_t j = 0; j < block; ++j)
            out_px[oc + j] = apply_activation(b ? acc[j] + b[oc + j] : acc[j], act);
          oc += block;
        }
      }
    }
  }
}

// Depthwise: weights 1HWO; output channel c*m+j reads input channel c. Accumulates straight into
// the output pixel, channels innermost (contiguous in input, weights and output).
void depthwise_conv2d_f32(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
                          const TensorView& weights, const TensorView* bias, const TensorView& output) {
  const int32_t batch = input.dims[0], in_h = input.dims[1], in_w = input.dims[2], in_c = input.dims[3];
  const int32_t out_h = output.dims[1], out_w = output.dims[2], out_c = output.dims[3];
  const int32_t k_h = weights.dims[1], k_w = weights.dims[2];
  const int32_t mult = opt.depth_multiplier;
  const float* x = input.as<const float>();
  const float* w = weights.as<const float>();
  const float* b = bias && bias->data ? bias->as<const float>() : nullptr;
  float* y = output.as<float>();

  for (int32_t n = 0; n < batch; ++n) {
    for (int32_t oy = 0; oy < out_h; ++oy) {
      for (int32_t ox = 0; ox < out_w; ++ox) {
        float* out_px = y + ((int64_t(n) * out_h + oy) * out_w + ox) * out_c;
        for (int32_t oc = 0; oc < out_c; ++oc) out_px[oc] = 0.0f;
        for (int32_t ky = 0; ky < k_h; ++ky) {
          const int32_t iy = oy * opt.stride_h - opt.padding.top + ky * opt.dilation_h;
          if (iy < 0 || iy >= in_h) continue;
          for (int32_t kx = 0; kx < k_w; ++kx) {
            const int32_t ix = ox * opt.stride_w - opt.padding.left + kx * opt.dilation_w;
            if (ix < 0 || ix >= in_w) continue;
            const float* xp = x + ((int64_t(n) * in_h + iy) * in_w + ix) * in_c;
            const float* wp = w + (int64_t(ky) * k_w + kx) * out_c;
            for (int32_t c = 0; c < in_c; ++c)
              for (int32_t j = 0; j < mult; ++j) out_px[c * mult + j] += xp[c] * wp[c * mult + j];
          }
        }
        for (int32_t oc = 0; oc < out_c; ++oc) out_px[oc] = apply_activation(out_px[oc] + (b ? b[oc] : 0.0f), act);
      }
    }
  }
}

}  // namespace reference
}  // namespace tinyquant
