#include "tinyquant/quantizer.h"

#include <cmath>
#include <limits>

namespace tinyquant {
namespace quant {

Status check_bits(const char* what, int32_t bits) {
  TQ_ENSURE(bits >= qmath::kMinBits && bits <= qmath::kMaxBits, kInvalidArgument,
            "tensor '%s': %d bits is outside the supported %d..%d", what, bits, qmath::kMinBits, qmath::kMaxBits);
  return Status::ok();
}

namespace {

// Squared error of one channel quantized with `scale`. The channel is `outer` runs of `inner`
// contiguous values, `stride` apart.
double channel_error(const float* w, int64_t outer, int64_t inner, int64_t stride, float scale, int32_t bits) {
  double err = 0.0;
  for (int64_t o = 0; o < outer; ++o) {
    const float* p = w + o * stride;
    for (int64_t i = 0; i < inner; ++i) {
      const double d = static_cast<double>(p[i]) - static_cast<double>(scale * quantize_weight(p[i], scale, bits));
      err += d * d;
    }
  }
  return err;
}

}  // namespace

// The checks every weight quantizer makes: bits, channel axis, a non-empty static shape, data,
// every value finite. *n is the element count.
static Status check_weight_tensor(const char* name, const float* weights, const std::vector<int32_t>& shape, int32_t axis,
                                  int32_t bits, int64_t* n) {
  TQ_RETURN_IF_ERROR(check_bits(name, bits));
  const int rank = static_cast<int>(shape.size());
  TQ_ENSURE(rank >= 1 && axis >= 0 && axis < rank, kInvalidArgument,
            "tensor '%s': channel axis %d is out of range for a rank-%d weight", name, axis, rank);
  *n = shape_elements(shape);
  TQ_ENSURE(*n > 0, kInvalidArgument, "tensor '%s': weight is empty or has a negative dimension", name);
  TQ_ENSURE(weights != nullptr, kInvalidArgument, "tensor '%s': no weight data", name);
  for (int64_t i = 0; i < *n; ++i)
    TQ_ENSURE(std::isfinite(weights[i]), kInvalidArgument, "tensor '%s': weight %lld is %s", name,
              static_cast<long long>(i), std::isnan(weights[i]) ? "NaN" : "infinite");
  return Status::ok();
}

Status quantize_weights(const char* name, const float* weights, const std::vector<int32_t>& shape, int32_t axis,
                        int32_t bits, QuantizedWeights* out, const WeightQuantOptions& options) {
  int64_t n = 0;
  TQ_RETURN_IF_ERROR(check_weight_tensor(name, weights, shape, axis, bits, &n));
  const int rank = static_cast<int>(shape.size());
  TQ_ENSURE(options.grid_steps >= 1 && options.min_ratio > 0.0f && options.min_ratio <= 1.0f, kInvalidArgument,
            "tensor '%s': clip grid of %d steps down to %g is invalid", name, options.grid_steps,
            static_cast<double>(options.min_ratio));

  const int32_t channels = shape[axis];
  int64_t inner = 1, outer = 1;
  for (int d = axis + 1; d < rank; ++d) inner *= shape[d];
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  const int64_t stride = int64_t(channels) * inner;  // between runs of one channel

  out->bits = bits;
  out->axis = axis;
  out->shape = shape;
  out->values.assign(n, 0);
  out->fake_quant.assign(n, 0.0f);
  out->scales.assign(channels, 1.0f);
  out->clip_ratios.assign(channels, 1.0f);
  out->channel_sq_error.assign(channels, 0.0);
  out->sq_error = 0.0;
  const float qmax = static_cast<float>(qmath::qmax(bits));

  for (int32_t c = 0; c < channels; ++c) {
    const float* wc = weights + int64_t(c) * inner;
    float max_abs = 0.0f;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) max_abs = std::max(max_abs, std::fabs(wc[o * stride + i]));
    float best_scale = 1.0f, best_ratio = 1.0f;
    if (max_abs > 0.0f) {
      double best_err = std::numeric_limits<double>::infinity();
      for (int32_t k = 0; k < options.grid_steps; ++k) {
        const float ratio =
            options.grid_steps == 1 ? 1.0f : 1.0f - (1.0f - options.min_ratio) * float(k) / float(options.grid_steps - 1);
        // A channel of subnormals would give a zero scale; FLT_MIN keeps w / s finite.
        const float scale = std::max(ratio * max_abs / qmax, std::numeric_limits<float>::min());
        const double err = channel_error(wc, outer, inner, stride, scale, bits);
        if (err < best_err) {  // strict: ties keep the larger ratio
          best_err = err;
          best_scale = scale;
          best_ratio = ratio;
        }
      }
    }
    out->scales[c] = best_scale;
    out->clip_ratios[c] = best_ratio;
    double err = 0.0;
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t idx = int64_t(c) * inner + o * stride + i;
        const int32_t q = quantize_weight(weights[idx], best_scale, bits);
        out->values[idx] = static_cast<int8_t>(q);
        out->fake_quant[idx] = best_scale * static_cast<float>(q);
        const double d = static_cast<double>(weights[idx]) - static_cast<double>(out->fake_quant[idx]);
        err += d * d;
      }
    }
    out->channel_sq_error[c] = err;
    out->sq_error += err;
  }

  out->packed.assign(static_cast<size_t>(packed_bytes(DType::kInt8, n, bits)), 0);
  qmath::pack_weights(out->values.data(), n, bits, out->packed.data());
  return Status::ok();
}

Status quantize_weights_with_scales(const char* name, const float* weights, const std::vector<int32_t>& shape,
                                    int32_t axis, int32_t bits, const std::vector<float>& scales,
                                    QuantizedWeights* out) {
  int64_t n = 0;
  TQ_RETURN_IF_ERROR(check_weight_tensor(name, weights, shape, axis, bits, &n));
  const int rank = static_cast<int>(shape.size());
  const int32_t channels = shape[axis];
  TQ_ENSURE(static_cast<int64_t>(scales.size()) == channels, kInvalidArgument,
            "tensor '%s': %zu scales for %d channels", name, scales.size(), channels);
  for (int32_t c = 0; c < channels; ++c)
    TQ_ENSURE(std::isfinite(scales[c]) && scales[c] > 0.0f, kInvalidArgument,
              "tensor '%s': scale of channel %d is %g, expected finite and > 0", name, c, double(scales[c]));
  int64_t inner = 1;
  for (int d = axis + 1; d < rank; ++d) inner *= shape[d];
  out->bits = bits;
  out->axis = axis;
  out->shape = shape;
  out->scales = scales;
  out->clip_ratios.assign(channels, 0.0f);
  out->values.assign(n, 0);
  out->fake_quant.assign(n, 0.0f);
  out->channel_sq_error.assign(channels, 0.0);
  out->sq_error = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t c = static_cast<int32_t>((i / inner) % channels);
    const int32_t q = quantize_weight(weights[i], scales[c], bits);
    out->values[i] = static_cast<int8_t>(q);
    out->fake_quant[i] = scales[c] * static_cast<float>(q);
    const double d = double(weights[i]) - double(out->fake_quant[i]);
    out->channel_sq_error[c] += d * d;
    out->sq_error += d * d;
  }
  out->packed.assign(static_cast<size_t>(packed_bytes(DType::kInt8, n, bits)), 0);
  qmath::pack_weights(out->values.data(), n, bits, out->packed.data());
  return Status::ok();
}

namespace {

// Round half to even in double for any finite v (qmath::round_half_even covers |v| < 2^22 only,
// and a bias can need the whole int32 range).
double round_half_even_wide(double v) {
  const double f = std::floor(v);
  const double frac = v - f;
  if (frac > 0.5) return f + 1.0;
  if (frac < 0.5) return f;
  return std::fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

}  // namespace

Status quantize_bias(const char* name, const float* bias, int64_t channels, float input_scale,
                     const float* weight_scales, QuantizedBias* out) {
  TQ_ENSURE(channels > 0 && bias != nullptr && weight_scales != nullptr, kInvalidArgument,
            "tensor '%s': bias is empty or missing", name);
  TQ_ENSURE(std::isfinite(input_scale) && input_scale > 0.0f, kInvalidArgument,
            "tensor '%s': input scale %g must be finite and > 0", name, static_cast<double>(input_scale));
  out->values.assign(channels, 0);
  out->scales.assign(channels, 0.0f);
  out->fake_quant.assign(channels, 0.0f);
  out->saturated = 0;
  for (int64_t c = 0; c < channels; ++c) {
    TQ_ENSURE(std::isfinite(bias[c]), kInvalidArgument, "tensor '%s': bias %lld is %s", name,
              static_cast<long long>(c), std::isnan(bias[c]) ? "NaN" : "infinite");
    const float scale = input_scale * weight_scales[c];  // the same float product as requant_scale
    TQ_ENSURE(std::isfinite(scale) && scale > 0.0f, kInvalidArgument,
              "tensor '%s': bias scale of channel %lld (%g * %g) must be finite and > 0", name,
              static_cast<long long>(c), static_cast<double>(input_scale), static_cast<double>(weight_scales[c]));
    double q = round_half_even_wide(static_cast<double>(bias[c]) / static_cast<double>(scale));
    constexpr double kLo = std::numeric_limits<int32_t>::min(), kHi = std::numeric_limits<int32_t>::max();
    if (q < kLo || q > kHi) {
      q = std::min(std::max(q, kLo), kHi);
      ++out->saturated;
    }
    out->values[c] = static_cast<int32_t>(q);
    out->scales[c] = scale;
    out->fake_quant[c] = static_cast<float>(out->values[c]) * scale;
  }
  return Status::ok();
}

Status check_activation_params(const char* name, const ActivationParams& p) {
  TQ_RETURN_IF_ERROR(check_bits(name, p.bits));
  TQ_ENSURE(std::isfinite(p.scale) && p.scale > 0.0f, kInvalidArgument,
            "tensor '%s': activation scale %g must be finite and > 0", name, static_cast<double>(p.scale));
  TQ_ENSURE(p.zero_point >= qmath::qmin(p.bits) && p.zero_point <= qmath::qmax(p.bits), kInvalidArgument,
            "tensor '%s': zero point %d is outside [%d, %d] for %d bits", name, p.zero_point, qmath::qmin(p.bits),
            qmath::qmax(p.bits), p.bits);
  return Status::ok();
}

Status fake_quant_activations(const char* name, float* x, int64_t n, const ActivationParams& p) {
  TQ_RETURN_IF_ERROR(check_activation_params(name, p));
  const float inv_scale = 1.0f / p.scale;
  for (int64_t i = 0; i < n; ++i)
    x[i] = dequantize_activation(quantize_activation(x[i], inv_scale, p.zero_point, p.bits), p.scale, p.zero_point);
  return Status::ok();
}

ActivationParams params_for_range(float lo, float hi, int32_t bits) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  ActivationParams p;
  p.bits = bits;
  const int32_t qmin = qmath::qmin(bits), qmax = qmath::qmax(bits);
  const float scale = (hi - lo) / static_cast<float>(qmax - qmin);
  p.scale = scale > 0.0f && std::isfinite(scale) ? std::max(scale, std::numeric_limits<float>::min()) : 1.0f;
  // |lo / scale| <= qmax - qmin here, well inside round_half_even's range.
  p.zero_point = std::min(std::max(qmin - qmath::round_half_even(lo / p.scale), qmin), qmax);
  return p;
}

namespace {
inline float round_even(float v) { return static_cast<float>(qmath::round_half_even(v)); }
}  // namespace

void fake_quant_activation_train(const float* x, int64_t n, float scale, float zero_point, int32_t bits, float* out) {
  const float zr = round_even(zero_point), inv = 1.0f / scale;
  const float lo = static_cast<float>(qmath::qmin(bits)), hi = static_cast<float>(qmath::qmax(bits));
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] * inv;
    v = std::min(std::max(v, lo - zr), hi - zr);  // clamp before rounding, as the kernel
    out[i] = scale * round_even(v);
  }
}

void fake_quant_activation_backward(const float* x, int64_t n, float scale, float zero_point, int32_t bits,
                                    const float* dout, double* d_scale, double* d_zero_point) {
  const float zr = round_even(zero_point), inv = 1.0f / scale;
  const float lo = static_cast<float>(qmath::qmin(bits)) - zr, hi = static_cast<float>(qmath::qmax(bits)) - zr;
  // Branch-free, eight float partial sums per block of 512 summed in double: the compiler
  // vectorises it (a branchy double chain cost as much as the layer's GEMMs on small convs).
  //   inside [lo, hi]: ∂/∂s = dout·(round(v) − v), ∂/∂z = 0;  clamped to b: ∂/∂s = dout·b, ∂/∂z = −dout·s
  double ds = 0.0, dz = 0.0;
  for (int64_t i0 = 0; i0 < n; i0 += 512) {
    const int64_t i1 = std::min(n, i0 + 512);
    float as[8] = {0, 0, 0, 0, 0, 0, 0, 0}, az[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8)
      for (int k = 0; k < 8; ++k) {
        const float v = x[i + k] * inv;
        const float in = float(v >= lo) * float(v <= hi);
        const float c = v < lo ? lo : (v > hi ? hi : v);
        as[k] += dout[i + k] * (round_even(c) - in * v);
        az[k] += dout[i + k] * (1.0f - in);
      }
    for (; i < i1; ++i) {
      const float v = x[i] * inv;
      const float in = float(v >= lo) * float(v <= hi);
      const float c = v < lo ? lo : (v > hi ? hi : v);
      as[0] += dout[i] * (round_even(c) - in * v);
      az[0] += dout[i] * (1.0f - in);
    }
    for (int k = 0; k < 8; ++k) {
      ds += as[k];
      dz -= double(az[k]) * scale;
    }
  }
  *d_scale += ds;
  *d_zero_point += dz;
}

// Weights in runs: channel c of outer block o covers elements [(o·channels + c)·inner, +inner)
// (axis 0: one run per channel; depthwise's last axis: runs of 1). No per-element division to
// find the channel: that 64-bit division cost more than the rest of these loops together.
template <typename F>
void for_each_channel_run(int64_t n, int64_t inner, int32_t channels, F&& run) {
  const int64_t outer = n / (inner * channels);
  for (int64_t o = 0; o < outer; ++o)
    for (int32_t c = 0; c < channels; ++c) run(c, (o * channels + c) * inner, inner);
}

void fake_quant_weights_train(const float* w, int64_t n, int64_t inner, int32_t channels, const float* scales,
                              int32_t bits, float* out) {
  const float lo = static_cast<float>(qmath::qmin(bits)), hi = static_cast<float>(qmath::qmax(bits));
  if (inner == 1) {  // depthwise: per element along the channel axis
    for (int64_t o = 0; o < n; o += channels)
      for (int32_t c = 0; c < channels; ++c) {
        const float sc = scales[c];
        out[o + c] = sc * round_even(std::min(std::max(w[o + c] / sc, lo), hi));
      }
    return;
  }
  for_each_channel_run(n, inner, channels, [&](int32_t c, int64_t first, int64_t len) {
    const float sc = scales[c];
    const float* __restrict__ wp = w + first;
    float* __restrict__ op = out + first;
    for (int64_t i = 0; i < len; ++i) op[i] = sc * round_even(std::min(std::max(wp[i] / sc, lo), hi));
  });
}

void fake_quant_weights_backward(const float* w, int64_t n, int64_t inner, int32_t channels, const float* scales,
                                 int32_t bits, const float* dout, float* dw, double* d_scales) {
  const float lo = static_cast<float>(qmath::qmin(bits)), hi = static_cast<float>(qmath::qmax(bits));
  std::fill(d_scales, d_scales + channels, 0.0);
  // Straight through inside [lo, hi]; ∂/∂s = dout·(round(v) − v) there, dout·bound outside.
  auto element = [lo, hi](float v, float g, float* dwi) {
    const float in = float(v >= lo) * float(v <= hi);
    const float cl = v < lo ? lo : (v > hi ? hi : v);
    *dwi = g * in;
    return g * (round_even(cl) - in * v);
  };
  if (inner == 1) {
    for (int64_t o = 0; o < n; o += channels)
      for (int32_t c = 0; c < channels; ++c)
        d_scales[c] += element(w[o + c] / scales[c], dout[o + c], dw + o + c);
    return;
  }
  for_each_channel_run(n, inner, channels, [&](int32_t c, int64_t first, int64_t len) {
    const float sc = scales[c];
    double sum = 0.0;
    for (int64_t i0 = 0; i0 < len; i0 += 512) {  // float partial sums per block, summed in double
      const int64_t i1 = std::min(len, i0 + 512);
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = i0;
      for (; i + 8 <= i1; i += 8)
        for (int k = 0; k < 8; ++k)
          acc[k] += element(w[first + i + k] / sc, dout[first + i + k], dw + first + i + k);
      for (; i < i1; ++i) acc[0] += element(w[first + i] / sc, dout[first + i], dw + first + i);
      for (int k = 0; k < 8; ++k) sum += acc[k];
    }
    d_scales[c] += sum;
  });
}

}  // namespace quant
}  // namespace tinyquant
