// tinyquant/unary.h — the elementwise functions of OpType::kUnary, in one place: the reference
// float kernel, the fake-quant simulation and the int8 lookup tables all evaluate them here, so
// an int8 table holds exactly what the simulated graph computes.
#pragma once

#include <cstdint>

#include "tinyquant/graph.h"
#include "tinyquant/status.h"

namespace tinyquant {

// f(x) for one element, float32 arithmetic (ONNX semantics; NaN in, NaN out).
float unary_apply(const UnaryOptions& f, float x);
// y[i] = unary_apply(f, x[i]) for n elements, f chosen once (the float kernel's loop).
void unary_apply_n(const UnaryOptions& f, const float* x, float* y, int64_t n);

// The 256-entry int8 table of `f` from the input's per-tensor params to the output's:
// table[q + 128] = quantize_out(f(dequantize_in(q))), with Quantize's rounding (round half to
// even of y * (1 / s_out), plus z_out, clamped to the output's bits) and Dequantize's
// x = float(q - z_in) * s_in. A non-finite f(x) (Log(0), Reciprocal(0)) saturates: +inf to the
// top code, -inf and NaN to the bottom one. Error: params that are not one positive scale each.
Status build_unary_table(const UnaryOptions& f, const Quantization& in, const Quantization& out, int8_t* table);

}  // namespace tinyquant
