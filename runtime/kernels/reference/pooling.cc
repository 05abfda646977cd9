#include <limits>

#include "common.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

// Padding never contributes to a max; padded positions are skipped.
void max_pool2d_f32(const PoolOptions& opt, const FusedActivation& act, const TensorView& input,
                    const TensorView& output) {
  const int32_t batch = input.dims[0], in_h = input.dims[1], in_w = input.dims[2], ch = input.dims[3];
  const int32_t out_h = output.dims[1], out_w = output.dims[2];
  const float* x = input.as<const float>();
  float* y = output.as<float>();
  for (int32_t n = 0; n < batch; ++n)
    for (int32_t oy = 0; oy < out_h; ++oy)
      for (int32_t ox = 0; ox < out_w; ++ox) {
        float* out_px = y + ((int64_t(n) * out_h + oy) * out_w + ox) * ch;
        for (int32_t c = 0; c < ch; ++c) out_px[c] = -std::numeric_limits<float>::infinity();
        for (int32_t ky = 0; ky < opt.kernel_h; ++ky) {
          const int32_t iy = oy * opt.stride_h - opt.padding.top + ky * opt.dilation_h;
          if (iy < 0 || iy >= in_h) continue;
          for (int32_t kx = 0; kx < opt.kernel_w; ++kx) {
            const int32_t ix = ox * opt.stride_w - opt.padding.left + kx * opt.dilation_w;
            if (ix < 0 || ix >= in_w) continue;
            const float* xp = x + ((int64_t(n) * in_h + iy) * in_w + ix) * ch;
            for (int32_t c = 0; c < ch; ++c) out_px[c] = std::max(out_px[c], xp[c]);
          }
        }
        for (int32_t c = 0; c < ch; ++c) out_px[c] = apply_activation(out_px[c], act);
      }
}

// Divisor: the whole window (count_include_pad, ONNX/PyTorch semantics when pads are present)
// or only the input pixels inside it.
void average_pool2d_f32(const PoolOptions& opt, const FusedActivation& act, const TensorView& input,
                        const TensorView& output) {
  const int32_t batch = input.dims[0], in_h = input.dims[1], in_w = input.dims[2], ch = input.dims[3];
  const int32_t out_h = output.dims[1], out_w = output.dims[2];
  const float* x = input.as<const float>();
  float* y = output.as<float>();
  for (int32_t n = 0; n < batch; ++n)
    for (int32_t oy = 0; oy < out_h; ++oy)
      for (int32_t ox = 0; ox < out_w; ++ox) {
        float* out_px = y + ((int64_t(n) * out_h + oy) * out_w + ox) * ch;
        for (int32_t c = 0; c < ch; ++c) out_px[c] = 0.0f;
        int32_t count = 0;
        for (int32_t ky = 0; ky < opt.kernel_h; ++ky) {
          const int32_t iy = oy * opt.stride_h - opt.padding.top + ky;
          if (iy < 0 || iy >= in_h) continue;
          for (int32_t kx = 0; kx < opt.kernel_w; ++kx) {
            const int32_t ix = ox * opt.stride_w - opt.padding.left + kx;
            if (ix < 0 || ix >= in_w) continue;
            const float* xp = x + ((int64_t(n) * in_h + iy) * in_w + ix) * ch;
            for (int32_t c = 0; c < ch; ++c) out_px[c] += xp[c];
            ++count;
          }
        }
        const int32_t divisor = opt.count_include_pad ? opt.kernel_h * opt.kernel_w : count;
        const float scale = divisor > 0 ? 1.0f / static_cast<float>(divisor) : 0.0f;
        for (int32_t c = 0; c < ch; ++c) out_px[c] = apply_activation(out_px[c] * scale, act);
      }
}

void global_average_pool_f32(const FusedActivation& act, const TensorView& input, const TensorView& output) {
  const int32_t batch = input.dims[0], ch = input.dims[3];
  const int64_t pixels = int64_t(input.dims[1]) * input.dims[2];
  const float* x = input.as<const float>();
  float* y = output.as<float>();
  const float scale = pixels > 0 ? 1.0f / static_cast<float>(pixels) : 0.0f;
  for (int32_t n = 0; n < batch; ++n) {
    float* out = y + int64_t(n) * ch;
    for (int32_t c = 0; c < ch; ++c) out[c] = 0.0f;
    for (int64_t p = 0; p < pixels; ++p) {
      const float* xp = x + (int64_t(n) * pixels + p) * ch;
      for (int32_t c = 0; c < ch; ++c) out[c] += xp[c];
    }
    for (int32_t c = 0; c < ch; ++c) out[c] = apply_activation(out[c] * scale, act);
  }
}

}  // namespace reference
}  // namespace tinyquant
