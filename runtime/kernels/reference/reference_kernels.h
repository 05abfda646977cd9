// Reference kernels: portable C++, no heap, no threads. They define what every other backend
// must compute. Layouts as in tinyquant/graph.h (NHWC activations, OHWI / 1HWO weights).
// Each function trusts shapes, dtypes and quantization parameters already checked by
// infer_shapes(); they do not fail.
#pragma once

#include "tinyquant/graph.h"
#include "tinyquant/op_resolver.h"
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
// y = f(x) elementwise (tinyquant/unary.h).
void unary_f32(const UnaryOptions& f, const TensorView& input, const TensorView& output);
void sub_f32(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out);
void div_f32(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out);
// input [N,H,W,C], weights [O,KH,KW,C/groups], bias [O], output [N,OH,OW,O] (graph.h ConvOptions).
void conv_transpose_f32(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
                        const TensorView& weights, const TensorView& bias, const TensorView& output);
// Any dtype (byte copies): output = input[begin:end:step] per dim.
void slice(const SliceOptions& s, const TensorView& input, const TensorView& output);
// [N,H,W,C] -> [N,OH,OW,C] (graph.h ResizeOptions gives the sampling).
void resize_f32(const ResizeOptions& r, const TensorView& input, const TensorView& output);
// Int8, input and output sharing scale / zero point: nearest copies codes; bilinear interpolates
// the codes in float and rounds half to even (so it equals the float resize of the dequantized
// values, quantized again with the same params, up to float rounding).
void resize_s8(const ResizeOptions& r, const TensorView& input, const TensorView& output);
// x >= 0 ? x : slope * x, slope broadcast (NumPy) against x.
void prelu_f32(const TensorView& x, const TensorView& slope, const TensorView& out);
// Over the last axis: mean and variance in double, y = (x - mean) / sqrt(var + eps) * scale + bias.
void layer_norm_f32(float epsilon, const TensorView& input, const TensorView& scale, const TensorView* bias,
                    const TensorView& output);
// Any dtype (byte copies).
void copy(const TensorView& input, const TensorView& output);
void concat(int32_t axis, const TensorView* inputs, int count, const TensorView& output);
void transpose(const int32_t* perm, const TensorView& input, const TensorView& output);

// --- int8 kernels (arithmetic: tinyquant/qmath.h). Activations int8 with one scale / zero point
// (view.quant); weights int8 per output channel (zero point 0, bit-packed below 8 bits, read in
// place); bias int32 with scale s_in * s_w[c]. [lo, hi] = qmath::activation_bounds(act, ...).
// Conv: acc = bias[c] + sum (x - z_in) * w (padding adds nothing);
//       y = requantize(acc, requant_scale(s_in, s_w[c], s_out), z_out, lo, hi).
void conv2d_s8(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
               const TensorView& weights, const TensorView* bias, const TensorView& output);
void depthwise_conv2d_s8(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
                         const TensorView& weights, const TensorView* bias, const TensorView& output);
void fully_connected_s8(const FusedActivation& act, const TensorView& input, const TensorView& weights,
                        const TensorView* bias, const TensorView& output);
// q = clamp(round_half_even(x * (1.0f / s)) + z, qmin, qmax) (XNNPACK f32->qs8 convert).
void quantize_s8(const TensorView& input, const TensorView& output);
// x = float(q - z) * s
void dequantize_s8(const TensorView& input, const TensorView& output);
// Input and output share scale / zero point; max, then clamp to [lo, hi].
void max_pool2d_s8(const PoolOptions& opt, const FusedActivation& act, const TensorView& input,
                   const TensorView& output);
// Add / Mul / GlobalAveragePool follow XNNPACK's QS8 operators (Debian 0.0~git20220216) bit for
// bit; AveragePool2D uses the GlobalAveragePool formula per window. Exact formulas in
// elementwise_s8.cc and pooling_s8.cc.
// Add needs s_a / s_out and s_b / s_out in [2^-10, 2^8) (as XNNPACK); check with the predicate.
bool add_s8_scales_supported(float a_scale, float b_scale, float out_scale);
void add_s8(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out);
// y = requantize((a - z_a) * (b - z_b), (s_a * s_b) / s_out, z_out, lo, hi)
void mul_s8(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out);
void average_pool2d_s8(const PoolOptions& opt, const FusedActivation& act, const TensorView& input,
                       const TensorView& output);
void global_average_pool_s8(const FusedActivation& act, const TensorView& input, const TensorView& output);
// Softmax along the last axis: XNNPACK's QU8 softmax on x + 128 (formula in softmax_s8.cc). The
// output must be 8-bit with scale 1/256 and zero point -128 (check with the predicate).
bool softmax_s8_output_supported(const TensorView& output);
void softmax_s8(float beta, const TensorView& input, const TensorView& output);
// Input and output share scale / zero point; `bounds` are the real-valued clamp limits.
void clamp_s8(const FusedActivation& bounds, const TensorView& input, const TensorView& output);
// Inputs sharing the output's scale / zero point are byte-copied; others are requantized:
// q_out = requantize(q - z_in, s_in / s_out, z_out, qmin(bits_out), qmax(bits_out)).
void concat_s8(int32_t axis, const TensorView* inputs, int count, const TensorView& output);
// y = table[x + 128] (Int8Role::kLookup; table: 256 int8 entries built by build_unary_table).
void lookup_s8(const TensorView& input, const TensorView& table, const TensorView& output);

// [..., M, K] x [..., K, N] -> [..., M, N], leading dims equal (infer_shapes checked them).
void batch_matmul_f32(const TensorView& a, const TensorView& b, const TensorView& out);
// acc = sum_k (a - z_a)(b - z_b); y = requantize(acc, requant_scale(s_a, s_b, s_out), z_out, qmin, qmax).
void batch_matmul_s8(const TensorView& a, const TensorView& b, const TensorView& out);
// out[i, ...] = table[indices[i], ...] (indices float32 integers or int32); an int8 table may be bit-packed (table.quant->bits). The
// only reference kernel that fails: an index outside [0, V) (checked before anything is written).
Status gather(const char* op_name, const TensorView& indices, const TensorView& table, const TensorView& out);

// Runs `op` on views already bound to memory. inputs[i].data may be null for an absent optional
// input (bias). Returns kUnsupported for an op/dtype combination this backend lacks.
Status eval(const Operator& op, const TensorView* inputs, int num_inputs, const TensorView* outputs,
            int num_outputs);
// The error for an op whose (type, kind) kernel is missing: from the backend itself when
// every_kernel (or it has none), else from the caller's OpResolver (naming the add<> call).
Status missing_kernel(const Operator& op, KernelKind kind, bool every_kernel);

}  // namespace reference
}  // namespace tinyquant
