// Slice (any dtype: byte copies), Resize (nearest / bilinear, NHWC float32), PRelu and LayerNorm.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "tinyquant/qmath.h"

#include "common.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

void slice(const SliceOptions& s, const TensorView& input, const TensorView& output) {
  const int rank = input.dims.rank;
  const size_t elem = dtype_size(input.dtype);
  int64_t in_stride[kMaxRank];
  int64_t stride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    in_stride[d] = stride;
    stride *= input.dims[d];
  }
  const uint8_t* x = static_cast<const uint8_t*>(input.data);
  uint8_t* y = static_cast<uint8_t*>(output.data);
  // Innermost run: contiguous when the last dim's step is 1.
  const int last = rank - 1;
  const int64_t run = output.dims[last];
  const bool contiguous = s.step[last] == 1;
  int32_t idx[kMaxRank] = {0};
  const int64_t rows = output.elements() / run;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off = 0;
    for (int d = 0; d < last; ++d) off += (s.begin[d] + int64_t(idx[d]) * s.step[d]) * in_stride[d];
    off += s.begin[last];
    if (contiguous) {
      std::memcpy(y, x + off * elem, run * elem);
    } else {
      for (int64_t i = 0; i < run; ++i) std::memcpy(y + i * elem, x + (off + i * s.step[last]) * elem, elem);
    }
    y += run * elem;
    for (int d = last - 1; d >= 0; --d) {  // odometer over the outer output dims
      if (++idx[d] < output.dims[d]) break;
      idx[d] = 0;
    }
  }
}

namespace {

float source_coordinate(const ResizeOptions& r, int32_t o, float scale, int32_t in, int32_t out) {
  switch (r.coord) {
    case ResizeCoord::kHalfPixel: return (static_cast<float>(o) + 0.5f) / scale - 0.5f;
    case ResizeCoord::kPytorchHalfPixel: return out > 1 ? (static_cast<float>(o) + 0.5f) / scale - 0.5f : 0.0f;
    case ResizeCoord::kAlignCorners:
      return out > 1 ? static_cast<float>(o) * static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f;
    case ResizeCoord::kAsymmetric: return static_cast<float>(o) / scale;
  }
  return 0.0f;
}

int32_t nearest_index(const ResizeOptions& r, float x, int32_t in) {
  float v;
  switch (r.nearest) {
    case ResizeNearest::kRoundPreferFloor: v = x == std::floor(x) + 0.5f ? std::floor(x) : std::round(x); break;
    case ResizeNearest::kRoundPreferCeil: v = std::round(x); break;  // halves away from zero; x >= -0.5 here
    case ResizeNearest::kFloor: v = std::floor(x); break;
    default: v = std::ceil(x); break;
  }
  const int32_t i = static_cast<int32_t>(v);
  return i < 0 ? 0 : i >= in ? in - 1 : i;
}

}  // namespace

namespace {

// One resize loop for float and int8: nearest copies elements; bilinear interpolates in float and
// (int8) rounds half to even back onto the input's codes, which the output shares.
template <typename T>
void resize_impl(const ResizeOptions& r, const TensorView& input, const TensorView& output, int32_t zero_point) {
  const float z = static_cast<float>(zero_point);
  const int32_t n = input.dims[0], h = input.dims[1], w = input.dims[2], c = input.dims[3];
  const int32_t oh = output.dims[1], ow = output.dims[2];
  const T* x = input.as<const T>();
  T* y = output.as<T>();
  for (int32_t b = 0; b < n; ++b)
    for (int32_t oy = 0; oy < oh; ++oy) {
      const float sy = source_coordinate(r, oy, r.scale_h, h, oh);
      for (int32_t ox = 0; ox < ow; ++ox) {
        const float sx = source_coordinate(r, ox, r.scale_w, w, ow);
        T* out = y + ((int64_t(b) * oh + oy) * ow + ox) * c;
        if (r.mode == ResizeMode::kNearest) {
          const T* in = x + ((int64_t(b) * h + nearest_index(r, sy, h)) * w + nearest_index(r, sx, w)) * c;
          std::memcpy(out, in, sizeof(T) * c);
          continue;
        }
        const float cy = std::min(std::max(sy, 0.0f), static_cast<float>(h - 1));
        const float cx = std::min(std::max(sx, 0.0f), static_cast<float>(w - 1));
        const int32_t y0 = static_cast<int32_t>(cy), x0 = static_cast<int32_t>(cx);
        const int32_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
        const float dy = cy - y0, dx = cx - x0;
        const T* p00 = x + ((int64_t(b) * h + y0) * w + x0) * c;
        const T* p01 = x + ((int64_t(b) * h + y0) * w + x1) * c;
        const T* p10 = x + ((int64_t(b) * h + y1) * w + x0) * c;
        const T* p11 = x + ((int64_t(b) * h + y1) * w + x1) * c;
        for (int32_t k = 0; k < c; ++k) {
          // int8: interpolate q - z (the value's steps) and round that, as quantizing the float
          // result with the same params does; z = 0 for float.
          const float a00 = float(p00[k]) - z, a01 = float(p01[k]) - z, a10 = float(p10[k]) - z, a11 = float(p11[k]) - z;
          const float top = a00 + (a01 - a00) * dx;
          const float bottom = a10 + (a11 - a10) * dx;
          const float v = top + (bottom - top) * dy;
          if constexpr (std::is_same<T, float>::value)
            out[k] = v;
          else
            out[k] = static_cast<T>(std::min<int32_t>(127, std::max<int32_t>(-128, qmath::round_half_even(v) + zero_point)));
        }
      }
    }
}

}  // namespace

void resize_f32(const ResizeOptions& r, const TensorView& input, const TensorView& output) {
  resize_impl<float>(r, input, output, 0);
}

void resize_s8(const ResizeOptions& r, const TensorView& input, const TensorView& output) {
  resize_impl<int8_t>(r, input, output,
                      input.quant && !input.quant->zero_point.empty() ? input.quant->zero_point[0] : 0);
}

void prelu_f32(const TensorView& x, const TensorView& slope, const TensorView& out) {
  broadcast_binary<float>(x, slope, out, [](float v, float a) { return v >= 0.0f ? v : a * v; });
}

void layer_norm_f32(float epsilon, const TensorView& input, const TensorView& scale, const TensorView* bias,
                    const TensorView& output) {
  const int32_t c = input.dims[input.dims.rank - 1];
  const int64_t rows = input.elements() / c;
  const float* x = input.as<const float>();
  const float* g = scale.as<const float>();
  const float* b = bias ? bias->as<const float>() : nullptr;
  float* y = output.as<float>();
  for (int64_t r = 0; r < rows; ++r, x += c, y += c) {
    double mean = 0.0;
    for (int32_t k = 0; k < c; ++k) mean += x[k];
    mean /= c;
    double var = 0.0;
    for (int32_t k = 0; k < c; ++k) var += (x[k] - mean) * (x[k] - mean);
    var /= c;
    const float inv = static_cast<float>(1.0 / std::sqrt(var + epsilon));
    const float m = static_cast<float>(mean);
    for (int32_t k = 0; k < c; ++k) y[k] = (x[k] - m) * inv * g[k] + (b ? b[k] : 0.0f);
  }
}

}  // namespace reference
}  // namespace tinyquant

namespace tinyquant {
namespace reference {

void conv_transpose_f32(const ConvOptions& o, const FusedActivation& act, const TensorView& input,
                        const TensorView& weights, const TensorView& bias, const TensorView& output) {
  const int32_t n = input.dims[0], h = input.dims[1], w = input.dims[2], in_c = input.dims[3];
  const int32_t oh = output.dims[1], ow = output.dims[2], out_c = output.dims[3];
  const int32_t kh = weights.dims[1], kw = weights.dims[2];
  const int32_t gi = in_c / o.groups, go = out_c / o.groups;
  const float* x = input.as<const float>();
  const float* wt = weights.as<const float>();
  const float* b = bias.as<const float>();
  float* y = output.as<float>();
  for (int64_t p = 0; p < int64_t(n) * oh * ow; ++p)
    for (int32_t k = 0; k < out_c; ++k) y[p * out_c + k] = b[k];
  // Scatter: input pixel (iy, ix) reaches output (iy * s - pad + ky * d, ix * s - pad + kx * d).
  for (int32_t bn = 0; bn < n; ++bn)
    for (int32_t iy = 0; iy < h; ++iy)
      for (int32_t ix = 0; ix < w; ++ix) {
        const float* px = x + ((int64_t(bn) * h + iy) * w + ix) * in_c;
        for (int32_t ky = 0; ky < kh; ++ky) {
          const int32_t oy = iy * o.stride_h - o.padding.top + ky * o.dilation_h;
          if (oy < 0 || oy >= oh) continue;
          for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ox = ix * o.stride_w - o.padding.left + kx * o.dilation_w;
            if (ox < 0 || ox >= ow) continue;
            float* py = y + ((int64_t(bn) * oh + oy) * ow + ox) * out_c;
            for (int32_t g = 0; g < o.groups; ++g)
              for (int32_t k = 0; k < go; ++k) {
                const float* pw = wt + ((int64_t(g * go + k) * kh + ky) * kw + kx) * gi;
                float acc = 0.0f;
                for (int32_t i = 0; i < gi; ++i) acc += px[g * gi + i] * pw[i];
                py[g * go + k] += acc;
              }
          }
        }
      }
  const int64_t total = output.elements();
  for (int64_t i = 0; i < total; ++i) y[i] = apply_activation(y[i], act);
}

}  // namespace reference
}  // namespace tinyquant
