// Private to runtime/kernels/xnnpack/ (and its tests): how one tinyquant operator becomes one or
// more XNNPACK operators. Each op file (conv2d.cc, pool2d.cc, ...) implements a prepare_* function
// declared here; xnnpack_backend.cc owns the operators, the thread pool and the dispatch switch.
#pragma once

#include <pthreadpool.h>
#include <xnnpack.h>

#include <cstddef>
#include <vector>

#include "tinyquant/graph.h"
#include "tinyquant/tensor_view.h"

namespace tinyquant {
namespace xnnpack {

// What a prepare_* function works on. Every XNNPACK operator it creates is appended to
// `operators` at once (see record()), so the Runner deletes it on every path — failure, reset(),
// destruction — and the op functions never delete anything themselves.
struct OpContext {
  const Operator& op;
  const TensorView* inputs;
  int num_inputs;
  const TensorView& output;
  pthreadpool_t threadpool;                // null: the calling thread
  std::vector<xnn_operator_t>* operators;  // owned by the Runner
  size_t weight_bytes = 0;                 // weights + bias handed to create calls

  const TensorView& in(int i) const { return inputs[i]; }
  // The optional bias (input 2), or null when the op has none.
  const TensorView* bias() const { return num_inputs > 2 && inputs[2].data != nullptr ? &inputs[2] : nullptr; }
  // Keeps *created (if XNNPACK returned one) and turns a failed create call into a Status. Takes
  // the variable's address because `record(xnn_create_...(..., &op), &op, ...)` must read it
  // after the create call; a by-value argument may be evaluated before it.
  Status record(xnn_status status, const xnn_operator_t* created, const char* call);
  // A Status naming the op and the XNNPACK call when `status` is not success.
  Status check(xnn_status status, const char* call) const;
  // kInvalidArgument naming the op: the bound views disagree with the op (XNNPACK would read or
  // write outside them), e.g. an output shape that is not what the options produce.
  Status shape_mismatch(const char* what) const;
};

const char* xnn_status_name(xnn_status status);
// Float32 data without quantization parameters: the only kind these operators take.
bool is_plain_f32(const TensorView& view);
// XNNPACK clamps to [min, max] only when min < max (neither NaN); infinities mean "no bound".
bool clamp_supported(float min, float max);
// Whether every output position of a sliding window covers at least one input element. When one
// lies wholly in padding, the reference yields -inf (max) or divides by zero (average) while
// XNNPACK clamps the window onto the input, so such ops stay on the reference kernel.
bool every_window_reaches_input(int32_t in, int32_t kernel, int32_t stride, int32_t dilation, int32_t pad_before,
                                int32_t out);

// Int8 data with one scale (an activation as tinyquant/qmath.h defines it).
bool is_s8(const TensorView& view);
// The int8 output clamp of an op on `output` (activation_bounds with its fused activation / clamp
// bounds). False when the range collapses to one level: XNNPACK needs output_min < output_max.
bool s8_output_bounds(const FusedActivation& act, const TensorView& output, int8_t* lo, int8_t* hi);
// XNNPACK requires every scale it takes to be positive, finite and normal.
bool scale_ok(float scale);
// Checks the window geometry of MaxPool2D / AveragePool2D (any dtype): whether XNNPACK can take
// it (*supported false: 1x1 window, a window wholly in padding) and whether the output is the
// size XNNPACK will write (error otherwise).
Status check_pool_window(OpContext* ctx, bool* supported);
// Checks that Add / Mul inputs broadcast to the output (error otherwise) and writes their shapes
// as XNNPACK takes them; *supported false for ranks above XNN_MAX_TENSOR_DIMS.
Status broadcast_shapes(OpContext* ctx, size_t* a_shape, size_t* b_shape, bool* supported);

// Each sets *handled = true only once it has decided XNNPACK runs the op; it returns OK with
// *handled false for option combinations XNNPACK lacks.
Status prepare_conv2d(OpContext* ctx, bool* handled);  // Conv2D and DepthwiseConv2D
Status prepare_fully_connected(OpContext* ctx, bool* handled);
Status prepare_binary(OpContext* ctx, bool* handled);  // Add, Mul, Sub, Div
Status prepare_unary(OpContext* ctx, bool* handled);   // float Unary kinds XNNPACK has (unary.cc)
Status prepare_resize(OpContext* ctx, bool* handled);  // bilinear (resize_prelu.cc)
Status prepare_prelu(OpContext* ctx, bool* handled);   // per-channel constant slope
Status prepare_conv_transpose(OpContext* ctx, bool* handled);  // deconvolution
Status prepare_clamp(OpContext* ctx, bool* handled);
Status prepare_max_pool2d(OpContext* ctx, bool* handled);
Status prepare_average_pool2d(OpContext* ctx, bool* handled);
Status prepare_global_average_pool(OpContext* ctx, bool* handled);
Status prepare_softmax(OpContext* ctx, bool* handled);
Status prepare_reshape(OpContext* ctx, bool* handled);
Status prepare_concat(OpContext* ctx, bool* handled);  // Reshape / Concat: 32-bit or int8 copies

// The integer path (int8 activations, tinyquant/qmath.h): conv2d_s8.cc, elementwise_s8.cc,
// pool2d_s8.cc, convert_s8.cc. Bit-exact with the reference int8 kernels (tests/xnnpack/*_s8_test.cc).
Status prepare_conv2d_s8(OpContext* ctx, bool* handled);  // Conv2D, DepthwiseConv2D: QC8 convolution
Status prepare_fully_connected_s8(OpContext* ctx, bool* handled);  // QC8 1x1 convolution
Status prepare_binary_s8(OpContext* ctx, bool* handled);           // Add, Mul: QS8
Status prepare_clamp_s8(OpContext* ctx, bool* handled);
Status prepare_max_pool2d_s8(OpContext* ctx, bool* handled);
Status prepare_global_average_pool_s8(OpContext* ctx, bool* handled);
Status prepare_quantize(OpContext* ctx, bool* handled);    // float32 -> int8
Status prepare_dequantize(OpContext* ctx, bool* handled);  // int8 -> float32

}  // namespace xnnpack
}  // namespace tinyquant
