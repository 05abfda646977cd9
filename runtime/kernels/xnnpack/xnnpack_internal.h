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

// Each sets *handled = true only once it has decided XNNPACK runs the op; it returns OK with
// *handled false for option combinations XNNPACK lacks.
Status prepare_conv2d(OpContext* ctx, bool* handled);  // Conv2D and DepthwiseConv2D
Status prepare_fully_connected(OpContext* ctx, bool* handled);
Status prepare_binary(OpContext* ctx, bool* handled);  // Add and Mul
Status prepare_clamp(OpContext* ctx, bool* handled);
Status prepare_max_pool2d(OpContext* ctx, bool* handled);
Status prepare_average_pool2d(OpContext* ctx, bool* handled);
Status prepare_global_average_pool(OpContext* ctx, bool* handled);
Status prepare_softmax(OpContext* ctx, bool* handled);
Status prepare_reshape(OpContext* ctx, bool* handled);
Status prepare_concat(OpContext* ctx, bool* handled);

}  // namespace xnnpack
}  // namespace tinyquant
