// tinyquant/quantizer.h — the quantizers of ALGORITHMS.md §1 and the float simulation ("fake
// quant") of the integer kernels, built on the arithmetic of tinyquant/qmath.h so that a simulated
// layer reproduces the integer kernel bit for bit (ARCHITECTURE.md, "Numbers and layouts").
//
//   weights      per output channel c, symmetric, b in 2..8 bits:
//                  q = clamp(round_half_even(w / s_c), qmin(b), qmax(b)),   fake quant = s_c * q
//                s_c = r* · max|w_c| / qmax(b), where r* minimises ‖w_c − s_c·q‖² over the grid
//                r_k = 1 − 0.5 · k / (steps − 1), k = 0..steps−1 (1.0 down to 0.5; default 100
//                steps). Ties keep the larger ratio, and r = 1.0 (max-abs) is in the grid, so the
//                chosen clip is never worse than max-abs scaling. All-zero channels get s_c = 1.
//   bias         int32 q_c = round_half_even(b_c / (s_in * s_w[c])), the product in float as in
//                qmath::requant_scale; saturated to int32 (the count is reported, not an error).
//   activations  per tensor, asymmetric (range chosen by ActivationObserver, observer.h):
//                  q    = clamp(round_half_even(x * (1.0f / scale)) + zp, qmin(b), qmax(b))
//                  real = (float)(q − zp) * scale
//                exactly the int8 Quantize / Dequantize kernels.
//
// Everything here is host code (std::vector) with no exceptions in its API: functions return a
// Status whose message names the tensor. Example:
//
//   quant::QuantizedWeights qw;
//   TQ_RETURN_IF_ERROR(quant::quantize_weights("conv1.weight", w.data(), {16, 3, 3, 8}, /*axis=*/0,
//                                              /*bits=*/4, &qw));
//   graph.add_constant(..., qw.packed.data(), qw.packed.size());   // 4-bit: bit-packed bytes
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tinyquant/graph.h"
#include "tinyquant/qmath.h"
#include "tinyquant/status.h"
#include "tinyquant/tensor_view.h"

namespace tinyquant {
namespace quant {

// Rejects bits outside qmath::kMinBits..kMaxBits (2..8), naming `what` (a tensor).
Status check_bits(const char* what, int32_t bits);

// ---------------------------------------------------------------------------------------------
// Weights

struct WeightQuantOptions {
  int32_t grid_steps = 100;  // clip ratios 1.0 ... min_ratio, evenly spaced; 1 = max-abs only
  float min_ratio = 0.5f;
};

struct QuantizedWeights {
  int32_t bits = 8;
  int32_t axis = 0;                 // the channel axis of `shape`
  std::vector<int32_t> shape;
  std::vector<int8_t> values;       // same layout as the float weights, each in [qmin, qmax]
  std::vector<uint8_t> packed;      // qmath::pack_weights(values); packed_bytes(kInt8, n, bits) bytes
  std::vector<float> scales;        // one per channel, > 0
  std::vector<float> clip_ratios;   // the chosen r* per channel (1 for all-zero channels)
  std::vector<float> fake_quant;    // scales[c] * values[i], same layout as the input
  std::vector<double> channel_sq_error;  // ‖w_c − fake_quant_c‖² per channel
  double sq_error = 0.0;                 // their sum
};

// `shape` is the weight's static shape; `axis` its output-channel axis: 0 for OHWI convolution
// weights and [O, I] fully connected weights, 3 (the last) for 1HWO depthwise weights.
// Errors (kInvalidArgument, naming `name`): bits outside 2..8, axis out of range, an empty
// tensor, a negative dimension, a NaN or Inf weight.
Status quantize_weights(const char* name, const float* weights, const std::vector<int32_t>& shape, int32_t axis,
                        int32_t bits, QuantizedWeights* out, const WeightQuantOptions& options = {});

// The same with given per-channel scales (no clip search): what AdaQuant and statistics tuning
// store after they moved the scales. clip_ratios are 0 (unknown). Errors as above, plus a scale
// count other than shape[axis] or a scale that is not finite and > 0.
Status quantize_weights_with_scales(const char* name, const float* weights, const std::vector<int32_t>& shape,
                                    int32_t axis, int32_t bits, const std::vector<float>& scales,
                                    QuantizedWeights* out);

// The symmetric quantizer for one weight with a given scale (what quantize_weights applies).
inline int32_t quantize_weight(float w, float scale, int32_t bits) {
  float v = w / scale;
  v = std::min(std::max(v, static_cast<float>(qmath::qmin(bits))), static_cast<float>(qmath::qmax(bits)));
  return qmath::round_half_even(v);
}

// ---------------------------------------------------------------------------------------------
// Bias

struct QuantizedBias {
  std::vector<int32_t> values;  // one per output channel
  std::vector<float> scales;    // input_scale * weight_scales[c] (float product)
  std::vector<float> fake_quant;  // values[c] * scales[c]
  int64_t saturated = 0;        // channels clamped to the int32 range
};

// bias[c] for c in 0..channels-1, with the weight scales of the same layer. Errors: channels <= 0,
// a non-finite bias, a scale that is not finite and > 0 (a product that underflows to 0 too).
Status quantize_bias(const char* name, const float* bias, int64_t channels, float input_scale,
                     const float* weight_scales, QuantizedBias* out);

// ---------------------------------------------------------------------------------------------
// Activations: fake quant, exactly the integer Quantize / Dequantize kernels.

struct ActivationParams {
  float scale = 1.0f;
  int32_t zero_point = 0;  // in [qmin(bits), qmax(bits)]
  int32_t bits = 8;
};

// The int8 softmax kernel's fixed output (reference::softmax_s8_output_supported): 8 bits, scale
// 1/256, zero point -128.
constexpr ActivationParams kSoftmaxS8Output{0x1.0p-8f, -128, 8};

// `inv_scale` is 1.0f / scale computed once, as the kernel does. Clamping before rounding is the
// same as clamping after (the bounds are integers) and keeps round_half_even in its valid range;
// the comparisons are written as the reference quantize_s8 kernel's, so NaN maps to qmin too.
inline int32_t quantize_activation(float x, float inv_scale, int32_t zero_point, int32_t bits) {
  const float lo = static_cast<float>(qmath::qmin(bits) - zero_point);
  const float hi = static_cast<float>(qmath::qmax(bits) - zero_point);
  float v = x * inv_scale;
  v = v >= lo ? v : lo;
  v = v <= hi ? v : hi;
  return qmath::round_half_even(v) + zero_point;
}
inline float dequantize_activation(int32_t q, float scale, int32_t zero_point) {
  return static_cast<float>(q - zero_point) * scale;
}
inline float fake_quant_activation(float x, float scale, int32_t zero_point, int32_t bits) {
  return dequantize_activation(quantize_activation(x, 1.0f / scale, zero_point, bits), scale, zero_point);
}
// In place over n values. Errors: bits outside 2..8, scale not finite and > 0, zero point outside
// [qmin, qmax].
Status fake_quant_activations(const char* name, float* x, int64_t n, const ActivationParams& params);
Status check_activation_params(const char* name, const ActivationParams& params);

// Scale and zero point for the real range [lo, hi] (widened to include 0):
//   scale = (hi − lo) / (qmax − qmin)   (1 if hi == lo == 0)
//   zero_point = clamp(qmin − round_half_even(lo / scale), qmin, qmax)
// so lo = 0 (after ReLU) gives zero_point = qmin, and 0 is always exactly representable.
ActivationParams params_for_range(float lo, float hi, int32_t bits);

// ---------------------------------------------------------------------------------------------
// Training (AdaQuant): fake quant with a continuous zero point, and its straight-through / LSQ
// backward. The forward is the integer kernels' arithmetic with z_r = round_half_even(z):
//   activations  x̂ = s · (clamp(round(x · (1/s)) + z_r, qmin, qmax) − z_r)
//   weights      ŵ = s_c · clamp(round(w / s_c), qmin, qmax)          (channel c = (i / inner) % channels)
// Backward (the exact gradient of the "frozen rounding" surrogate round(v) ≈ round(v0) + v − v0):
//   inside the range   ∂x̂/∂x = 1, ∂x̂/∂s = round(x/s) − x/s, ∂x̂/∂z = 0
//   clipped to q_b     ∂x̂/∂x = 0, ∂x̂/∂s = q_b − z_r,        ∂x̂/∂z = −s
void fake_quant_activation_train(const float* x, int64_t n, float scale, float zero_point, int32_t bits, float* out);
// Adds Σ dout·∂x̂/∂s to *d_scale and Σ dout·∂x̂/∂z to *d_zero_point (x-gradient not needed: x is data).
void fake_quant_activation_backward(const float* x, int64_t n, float scale, float zero_point, int32_t bits,
                                    const float* dout, double* d_scale, double* d_zero_point);
void fake_quant_weights_train(const float* w, int64_t n, int64_t inner, int32_t channels, const float* scales,
                              int32_t bits, float* out);
// Overwrites dw (n) and d_scales (channels).
void fake_quant_weights_backward(const float* w, int64_t n, int64_t inner, int32_t channels, const float* scales,
                                 int32_t bits, const float* dout, float* dw, double* d_scales);

// ---------------------------------------------------------------------------------------------
// Simulation of one quantized Conv2D / DepthwiseConv2D / FullyConnected, in integers, from float
// inputs: quantize the input (quantize_activation), then run the reference s8 kernel itself
// (accumulate (q_in − zp_in) · w over the window in int32 from the int32 bias, qmath::requantize
// with qmath::requant_scale(s_in, s_w[c], s_out), the clamp of qmath::activation_bounds; padding
// contributes nothing). One implementation of the integer arithmetic, not a copy of it.
struct QuantizedLayer {
  OpType type = OpType::kConv2D;  // kConv2D, kDepthwiseConv2D or kFullyConnected
  ConvOptions conv;               // convolutions only
  FusedActivation activation;
  Dims weight_dims;               // OHWI, 1HWO or [O, I]
  const uint8_t* packed_weights = nullptr;  // qmath::pack_weights layout at weight_bits
  int32_t weight_bits = 8;
  const float* weight_scales = nullptr;     // one per output channel
  const int32_t* bias = nullptr;            // one per output channel, or null
  ActivationParams input;
  ActivationParams output;
};

// `input` has dims `in_dims` (NHWC for convolutions; [..., I] for fully connected); `out_dims`
// are the output dims (NHWC / [rows, O]) as shape inference gives them. `out` is resized to
// out_dims.elements(). Errors: unsupported op type, inconsistent dims, bad bits / params.
Status simulate_layer_s8(const QuantizedLayer& layer, const float* input, const Dims& in_dims, const Dims& out_dims,
                         std::vector<int8_t>* out);

}  // namespace quant
}  // namespace tinyquant
