// Reference kernels: portable C++, no heap, no threads. They define what every other backend
// must compute. Layouts as in tinyquant/graph.h (NHWC activations, OHWI / 1HWO weights).
// Each function trusts shapes already checked by infer_shapes(); they do not fail.
#pragma once

#include "tinyquant/graph.h"
#include "tinyquant/tensor_view.h"

namespace tinyquant {
namespace reference {

// input [N,H,W,C], weights [O,KH,KW,C/groups], bias [O] or null, output [N,OH,OW,O]
void conv2d_f32(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
                const TensorView& weights, const TensorView* bias, const TensorView& output);
// input [N,H,W,C], weights [1,KH,KW,C*m], bias [C*m] or null, output [N,OH,OW,C*m]
void depthwise_conv2d_f32(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
                          const TensorView& weights, const TensorView* bias, const TensorView& output);
// input [..., I] (rows = elements / I), weights [O, I], bias [O] or null, output [rows, O]
void fully_connected_f32(const FusedActivation& act, const TensorView& input, const TensorView& weights,
                         const TensorView* bias, const TensorView& output);
// NumPy-style broadcasting (shapes aligned at the last dimension).
void add_f32(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out);
void mul_f32(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out);
void clamp_f32(float min, float max, const TensorView& input, const TensorView& output);
void max_pool2d_f32(const PoolOptions& opt, const FusedActivation& act, const TensorView& input,
                    const TensorView& output);
void average_pool2d_f32(const PoolOptions& opt, const FusedActivation& act, const TensorView& input,
                        const TensorView& output);
// [N,H,W,C] -> [N,1,1,C]
void global_average_pool_f32(const FusedActivation& act, const TensorView& input, const TensorView& output);
// Softmax along the last axis.
void softmax_f32(float beta, const TensorView& input, const TensorView& output);
// Any dtype (byte copies).
void copy(const TensorView& input, const TensorView& output);
void concat(int32_t axis, const TensorView* inputs, int count, const TensorView& output);
void transpose(const int32_t* perm, const TensorView& input, const TensorView& output);

// Runs `op` on views already bound to memory. inputs[i].data may be null for an absent optional
// input (bias). Returns kUnsupported for an op/dtype combination this backend lacks.
Status eval(const Operator& op, const TensorView* inputs, int num_inputs, const TensorView* outputs,
            int num_outputs);

}  // namespace reference
}  // namespace tinyquant
