// tinyquant/op_info.h — what is true of an op type whatever its options: one table, indexed by
// OpType, that validate_graph, infer_shapes, both backends and quant/ pipelines ask instead of
// each spelling out "is this a conv / depthwise / FC" for itself.
//
// The table itself, one row per op, is kOps in runtime/src/op_info.cc; tests/runtime/op_info_test.cc
// checks it against the kernels and against the rules below.
//
// Facts that depend on a backend (XNNPACK has no int8 AveragePool2D / Softmax and no Transpose;
// those fall back to the reference kernels) stay in that backend's switch.
#pragma once

#include <cstdint>

#include "tinyquant/graph.h"
#include "tinyquant/tensor_view.h"

namespace tinyquant {

// How an op's integer kernel treats quantization (the rules infer_shapes checks in prepare and
// the rtn pipeline follows when it rewrites a float graph; quant/include/tinyquant/pipeline.h).
enum class Int8Role : uint8_t {
  // Int8 input 0, int8 weights (input kWeightInput) symmetric per output channel, int32 bias
  // (input kBiasInput) at scale s_in * s_w[c]; requantizes to its own output params.
  kWeighted,
  // Int8 in, int8 out with the input's scale and zero point: values are moved, picked or
  // clamped, never rescaled.
  kPassthrough,
  // Every input int8 with its own params; requantizes to its own output params.
  kRequantizing,
  // Int8 in, but the int8 output's params are fixed by the kernel (Softmax: 8 bits, scale 1/256,
  // zero point -128). The rtn pipeline leaves such ops float.
  kFixedOutput,
  // Quantize (float32 -> int8) / Dequantize (int8 -> float32): always the integer kernel.
  kConversion,
  // Int8 input 0, a constant int8 table of 256 entries (input kTableInput) indexed by the input
  // code + 128, int8 output with its own params: y = table[x + 128]. The table holds
  // quantize_out(f(dequantize_in(q))) (tinyquant/unary.h builds it), so any elementwise f runs
  // exactly, at one load per element, without f's maths on the device.
  kLookup,
  // Gather: indices (input 0; float32 integers or int32), a constant int8 table (input kWeightInput, one scale and
  // zero point, bit-packed below 8 bits); the int8 output has the table's params and bits.
  kGather,
  // No integer kernel: the op runs float32 and a quantized graph keeps it float between a
  // Dequantize and a Quantize.
  kNone,
};

// Input slots of a weighted op.
constexpr int kWeightInput = 1;  // constant weights; the only slot whose data may be bit-packed
constexpr int kBiasInput = 2;    // optional constant bias (-1: none)
constexpr int kTableInput = 1;   // kLookup: the int8 table (absent in a float graph)
constexpr int kLookupTableSize = 256;

struct OpInfo {
  OpType type;          // the table's own index, checked at compile time
  const char* name;     // what op_name() returns, e.g. "Conv2D"; unique
  int8_t min_inputs;    // input count validate_graph accepts, optional inputs included
  int8_t max_inputs;
  int8_t num_outputs;   // exact
  // Input kWeightInput holds the weights (may be bit-packed below 8 bits), input kBiasInput an
  // optional bias; only input 0 is an activation. True for Conv2D, DepthwiseConv2D, FullyConnected.
  bool weighted;
  Int8Role int8_role;
  // Runs in float32 (a float model may keep it); false for the conversion ops.
  bool has_float_kernel;
  // Moves elements (Reshape, Transpose, Concat): every input and the output share one dtype, and
  // the reference backend's non-int8 path copies bytes of any dtype (an int8 Concat still
  // requantizes: its int8_role).
  bool data_movement;
};

// The facts for `type`. An out-of-range type (kCount or a corrupt value) gets an entry named "?"
// that accepts no input count, has no float kernel and is not a conversion op.
const OpInfo& op_info(OpType type);

// Input kWeightInput holds constant weights: a weighted op's, or a Gather's table (an
// embedding). The only inputs that may be bit-packed; quantized_bytes() counts them as weights.
inline bool has_weights(OpType type) { return op_info(type).weighted || type == OpType::kGather; }

// Whether an op runs its integer kernel — the one rule both backends and infer_shapes follow:
// int8 activations select it, int8 weights under float activations do not. True when any
// output is int8, or any present activation input (a weighted op: input 0 only) is int8; always
// true for the conversion ops. Inputs whose view has no data are absent (e.g. no bias).
bool runs_int8(OpType type, const TensorView* inputs, int num_inputs, const TensorView* outputs, int num_outputs);
// The same rule over the graph's tensor dtypes (absent inputs are -1).
bool runs_int8(const Operator& op, const Graph& graph);

}  // namespace tinyquant
