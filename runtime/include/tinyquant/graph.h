// tinyquant/graph.h — the in-memory model: tensors, operators, constant buffers.
//
// Layout contract (see shared/design/ARCHITECTURE.md, "Numbers and layouts"):
//   * 4-D activations are NHWC. Dimension 0 of every activation tensor is the batch; a stored
//     batch of -1 means "dynamic" and is fixed by Interpreter::prepare().
//   * Conv2D weights are OHWI ([O, KH, KW, I/groups]); DepthwiseConv2D weights are 1HWO
//     ([1, KH, KW, O], O = I * depth_multiplier); FullyConnected weights are [O, I].
//   * Bias is one value per output channel.
//   * Graph inputs and outputs keep the layout the source model declared (an ONNX model's
//     NCHW input stays NCHW at the API); the importer inserts the layout change as operators.
//
// Ownership: a Graph owns its tensors and operators. A constant buffer either owns its bytes
// (imported or built models) or points into memory the caller keeps alive for the Graph's
// lifetime (a .tqm file read in place, e.g. from flash).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "tinyquant/flat_vector.h"
#include "tinyquant/name.h"
#include "tinyquant/status.h"

namespace tinyquant {

constexpr int kMaxRank = 6;

enum class DType : uint8_t { kFloat32 = 0, kInt8 = 1, kInt32 = 2, kUInt8 = 3 };
const char* dtype_name(DType dtype);
size_t dtype_size(DType dtype);

enum class OpType : uint8_t {
  kConv2D = 0,
  kDepthwiseConv2D,
  kFullyConnected,
  kAdd,
  kMul,
  kClamp,  // ReLU = [0, inf), ReLU6 = [0, 6], Clip = [min, max]
  kMaxPool2D,
  kAveragePool2D,
  kGlobalAveragePool,
  kReshape,
  kConcat,
  kSoftmax,
  kTranspose,
  kQuantize,    // float32 -> int8 (per-tensor scale / zero point of the output)
  kDequantize,  // int8 -> float32 (per-tensor scale / zero point of the input)
  kUnary,       // y = f(x) elementwise, f = Operator::unary; int8: input 1 is f's 256-entry lookup table
  kSub,         // a - b, NumPy broadcasting (float32)
  kDiv,         // a / b, NumPy broadcasting (float32)
  kSlice,       // y = x[begin:end:step] per dim (Operator::slice); any dtype, int8 keeps its params
  kResize,      // [N,H,W,C] -> [N,OH,OW,C], nearest or bilinear (Operator::resize); int8 keeps its params
  kPRelu,       // x >= 0 ? x : slope * x, slope (input 1) broadcast against x (float32)
  kLayerNorm,   // (x - mean) / sqrt(var + epsilon) * scale + bias over the last axis (float32)
  kConvTranspose,  // transposed 2-D convolution, weights [O,KH,KW,I/groups], bias [O] (float32)
  // y[i..., :] = table[indices[i...], :] (an embedding): input 0 the indices, any shape, float32
  // holding integers (token ids enter as every input does) or int32; input 1 (kWeightInput) a
  // constant table [V, ...]. An index that is not an integer in [0, V) fails invoke(), naming it.
  // Int8: the table is int8 per tensor (bit-packed below 8 bits) and the output keeps its params.
  kGather,
  // [..., M, K] x [..., K, N] -> [..., M, N]: a product of two activations of one rank (3..6) with
  // equal leading dims (attention scores and their weighted sum). Int8: both inputs per tensor,
  // acc = sum (a - z_a)(b - z_b), y = requantize(acc, s_a * s_b / s_out, z_out, qmin, qmax).
  kBatchMatMul,
  kCount,  // number of op types; keep last
};
const char* op_name(OpType type);  // op_info(type).name, "?" when out of range; per-op facts: op_info.h

enum class Activation : uint8_t { kNone = 0, kRelu, kRelu6, kClip };
const char* activation_name(Activation act);

// A clamp fused into the producing op. min/max are the effective bounds for every Activation.
struct FusedActivation {
  Activation type = Activation::kNone;
  float min = -std::numeric_limits<float>::infinity();
  float max = std::numeric_limits<float>::infinity();
  static FusedActivation relu() { return {Activation::kRelu, 0.0f, std::numeric_limits<float>::infinity()}; }
  static FusedActivation relu6() { return {Activation::kRelu6, 0.0f, 6.0f}; }
  static FusedActivation clip(float lo, float hi) { return {Activation::kClip, lo, hi}; }
};

// The elementwise functions of OpType::kUnary (ONNX semantics; alpha / beta as each says).
enum class UnaryKind : uint8_t {
  kSigmoid = 0,
  kTanh,
  kHardSigmoid,  // max(0, min(1, alpha * x + beta))
  kHardSwish,    // x * max(0, min(1, x / 6 + 1 / 2))
  kLeakyRelu,    // x >= 0 ? x : alpha * x
  kElu,          // x >= 0 ? x : alpha * (exp(x) - 1)
  kExp,
  kLog,
  kSqrt,
  kAbs,
  kNeg,
  kErf,
  kGelu,         // x * (1 + erf(x / sqrt(2))) / 2
  kGeluTanh,     // x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) / 2
  kPow,          // x ^ alpha (a constant exponent)
  kReciprocal,   // 1 / x
  kSoftplus,     // log(1 + exp(x))
  kCount,
};
const char* unary_kind_name(UnaryKind kind);

struct UnaryOptions {
  UnaryKind kind = UnaryKind::kSigmoid;
  float alpha = 0.0f;
  float beta = 0.0f;
};

struct Padding {
  int32_t top = 0, left = 0, bottom = 0, right = 0;
};

// kSlice, one entry per input dim: indices begin, begin + step, ... below min(end, dim).
// begin >= 0, end >= begin (kSliceToEnd: the whole dim, e.g. a dynamic batch), step >= 1.
constexpr int32_t kSliceToEnd = 0x7fffffff;
struct SliceOptions {
  std::vector<int32_t> begin, end, step;
};

// kResize (ONNX Resize semantics, 2-D on NHWC). Output pixel (oy, ox) samples the input at
// coordinate(oy, scale_h, H, OH), coordinate(ox, scale_w, W, OW):
//   kHalfPixel:        (o + 0.5) / scale - 0.5
//   kPytorchHalfPixel: the same, but 0 when the output length is 1
//   kAlignCorners:     o * (in - 1) / (out - 1)   (0 when out == 1)
//   kAsymmetric:       o / scale
// Nearest rounds that coordinate by nearest_mode and clamps it to [0, in - 1]; bilinear clamps
// it to [0, in - 1] and interpolates between floor and floor + 1 (as ONNX Runtime).
enum class ResizeMode : uint8_t { kNearest = 0, kLinear };
enum class ResizeCoord : uint8_t { kHalfPixel = 0, kPytorchHalfPixel, kAlignCorners, kAsymmetric };
enum class ResizeNearest : uint8_t { kRoundPreferFloor = 0, kRoundPreferCeil, kFloor, kCeil };
struct ResizeOptions {
  ResizeMode mode = ResizeMode::kNearest;
  ResizeCoord coord = ResizeCoord::kHalfPixel;
  ResizeNearest nearest = ResizeNearest::kRoundPreferFloor;
  int32_t out_h = 1, out_w = 1;
  float scale_h = 1.0f, scale_w = 1.0f;  // output / input as the model gave it
};

// Conv2D and DepthwiseConv2D.
struct ConvOptions {
  int32_t stride_h = 1, stride_w = 1;
  int32_t dilation_h = 1, dilation_w = 1;
  Padding padding;
  int32_t groups = 1;            // Conv2D, ConvTranspose; input and output channels divide by it
  int32_t depth_multiplier = 1;  // DepthwiseConv2D only
  // ConvTranspose only: rows / columns added at the bottom / right of the output, < stride.
  // Output size (in - 1) * stride - pad_before - pad_after + dilation * (k - 1) + 1 + output_pad.
  int32_t output_pad_h = 0, output_pad_w = 0;
};

// MaxPool2D and AveragePool2D.
struct PoolOptions {
  int32_t kernel_h = 1, kernel_w = 1;
  int32_t stride_h = 1, stride_w = 1;
  int32_t dilation_h = 1, dilation_w = 1;  // MaxPool2D only
  Padding padding;                         // max pool pads with -inf
  bool count_include_pad = false;          // AveragePool2D: divide by the full window
};

// Per-tensor or per-channel quantization. Empty scale = not quantized (float tensor).
// Filled by quant/ (next issues); carried through the file format already.
// A model read in place views its scales and zero points in the file (FlatVector), as it views
// tensor and operator names (Name), shapes and operator tensor lists.
struct Quantization {
  FlatVector<float> scale;
  FlatVector<int32_t> zero_point;
  int32_t axis = -1;  // -1: per tensor; else the channel dimension scale[] runs along
  int32_t bits = 8;   // 2..8; below 8, constant data is bit-packed in the buffer
  bool zero_points_all_zero() const {  // empty counts as all zero (what the .tqm then leaves out)
    for (int32_t z : zero_point)
      if (z != 0) return false;
    return true;
  }
};

struct Tensor {
  Name name;  // a model read in place views it in the file
  DType dtype = DType::kFloat32;
  FlatVector<int32_t> shape;  // static for constants; activations may have shape[0] == -1
  Quantization quant;
  int32_t buffer = -1;  // index into Graph::buffers for constants; -1 for activations
  bool is_constant() const { return buffer >= 0; }
};

// kReshape: ONNX semantics (0 = copy dim, -1 = infer one). kTranspose: the permutation.
struct ReshapeOptions {
  std::vector<int32_t> new_shape;
};
struct TransposeOptions {
  std::vector<int32_t> perm;
};

struct Operator {
  OpType type = OpType::kCount;
  Name name;  // the source node's name, used in every error message about this op
  FlatVector<int32_t> inputs;   // tensor indices; an optional input (e.g. no bias) is -1
  FlatVector<int32_t> outputs;  // tensor indices
  FusedActivation activation;   // conv, FC, add, mul, pools, GAP; the bounds of kClamp
  int32_t axis = -1;            // kConcat (>= 0), kSoftmax (always the last axis: -1)
  float beta = 1.0f;            // kSoftmax: softmax(beta * x)
  float epsilon = 1e-5f;        // kLayerNorm

  // Per-type options, stored once (one of them per op: an op's Operator is ~120 bytes on a
  // 32-bit MCU instead of ~250 with every type's options inline). Reading another type's options
  // gives their defaults; mutable_*() makes them this op's options (defaults first, then whatever
  // the caller sets), replacing any other type's.
  const ConvOptions& conv() const { return options<ConvOptions>(); }  // Conv2D, DepthwiseConv2D, ConvTranspose
  ConvOptions& mutable_conv() { return mutable_options<ConvOptions>(); }
  const PoolOptions& pool() const { return options<PoolOptions>(); }  // MaxPool2D, AveragePool2D
  PoolOptions& mutable_pool() { return mutable_options<PoolOptions>(); }
  const UnaryOptions& unary() const { return options<UnaryOptions>(); }  // kUnary
  UnaryOptions& mutable_unary() { return mutable_options<UnaryOptions>(); }
  const SliceOptions& slice() const { return options<SliceOptions>(); }  // kSlice
  SliceOptions& mutable_slice() { return mutable_options<SliceOptions>(); }
  const ResizeOptions& resize() const { return options<ResizeOptions>(); }  // kResize
  ResizeOptions& mutable_resize() { return mutable_options<ResizeOptions>(); }
  const std::vector<int32_t>& new_shape() const { return options<ReshapeOptions>().new_shape; }  // kReshape
  std::vector<int32_t>& mutable_new_shape() { return mutable_options<ReshapeOptions>().new_shape; }
  const std::vector<int32_t>& perm() const { return options<TransposeOptions>().perm; }  // kTranspose
  std::vector<int32_t>& mutable_perm() { return mutable_options<TransposeOptions>().perm; }

 private:
  template <typename T>
  const T& options() const {
    if (const T* p = std::get_if<T>(&options_)) return *p;
    static const T kDefaults{};
    return kDefaults;
  }
  template <typename T>
  T& mutable_options() {
    if (T* p = std::get_if<T>(&options_)) return *p;
    return options_.template emplace<T>();
  }
  std::variant<std::monostate, ConvOptions, PoolOptions, UnaryOptions, SliceOptions, ResizeOptions, ReshapeOptions,
               TransposeOptions>
      options_;
};

// Constant bytes: owned, or borrowed from memory the caller keeps alive.
struct Buffer {
  std::vector<uint8_t> owned;
  const uint8_t* external = nullptr;
  size_t external_size = 0;
  const uint8_t* data() const { return external ? external : owned.data(); }
  size_t size() const { return external ? external_size : owned.size(); }
};

// Optional float copy of a quantized weight, kept so a device can recalibrate later.
struct MasterWeights {
  int32_t tensor = -1;  // the (quantized) constant tensor this is the master copy of
  bool fp16 = false;    // buffer holds IEEE half floats (else float32), same element count
  int32_t buffer = -1;  // index into Graph::buffers
};

// What produced a quantized model (filled by quant/ pipelines; carried by the file format).
struct CalibrationRecord {
  bool present = false;
  std::string pipeline;                  // "rtn", "light", "advanced", ...
  std::vector<uint8_t> weight_bits;      // per quantized layer, in operator order
  std::vector<uint8_t> activation_bits;  // per quantized layer
  uint64_t budget_bytes = 0;             // 0: no budget
  uint64_t seed = 0;
  uint32_t calibration_samples = 0;
  std::string dataset;
  std::string report_json;
};

struct Graph {
  std::vector<Tensor> tensors;
  std::vector<Operator> operators;  // in execution (topological) order
  std::vector<Buffer> buffers;
  std::vector<int32_t> inputs;
  std::vector<int32_t> outputs;
  std::string producer;
  std::vector<std::pair<std::string, std::string>> metadata;
  std::vector<MasterWeights> master_weights;
  CalibrationRecord calibration;
  // Keeps borrowed bytes (e.g. a .tqm file read into memory) alive for as long as any copy of
  // this Graph points into them. Null when every buffer is owned or the caller owns the bytes.
  std::shared_ptr<const void> storage;

  // Helpers for builders (importer, tests). They return the new index.
  int32_t add_tensor(std::string name, DType dtype, std::vector<int32_t> shape);
  int32_t add_constant(std::string name, DType dtype, std::vector<int32_t> shape, const void* data,
                       size_t bytes);
  int32_t add_operator(Operator op);
  template <typename T>
  const T* constant_data(int32_t tensor) const {
    return reinterpret_cast<const T*>(buffers[tensors[tensor].buffer].data());
  }
  template <typename T>
  T* mutable_constant_data(int32_t tensor) {  // only for owned buffers
    return reinterpret_cast<T*>(buffers[tensors[tensor].buffer].owned.data());
  }
};

// Number of elements of a static shape (every dim >= 0). Returns -1 on overflow or a dim < 0.
int64_t shape_elements(const int32_t* dims, int rank);
inline int64_t shape_elements(const std::vector<int32_t>& s) { return shape_elements(s.data(), (int)s.size()); }
inline int64_t shape_elements(const FlatVector<int32_t>& s) { return shape_elements(s.data(), (int)s.size()); }
// Bytes a constant of this dtype/shape/bits takes in a buffer (bit-packed below 8 bits).
int64_t packed_bytes(DType dtype, int64_t elements, int32_t bits);
// "[1,28,28,1]" into buf; returns buf.
const char* shape_str(const int32_t* dims, int rank, char* buf, size_t size);

// The parameter bytes of a quantized graph as the .tqm stores them and `tq inspect` totals them:
// the packed weights of every weighted op with quantized weights (and every int8 Gather table),
// their int32 bias, and every
// tensor's stored scales and zero points (4 bytes each; no zero points when all are zero, no
// scales for a bias whose scales are implied). A mixed-precision budget is checked against
// total(). op_bytes(graph, i) is operator i's share: its weight and bias buffers and their scales
// and zero points (0 for an op without quantized weights).
struct QuantizedBytes {
  int64_t weights = 0, bias = 0, quant_params = 0;
  int64_t layers = 0;  // weighted ops with quantized weights
  int64_t float32 = 0; // the same weights and bias as float32
  int64_t total() const { return weights + bias + quant_params; }
};
QuantizedBytes quantized_bytes(const Graph& graph);
int64_t quantized_op_bytes(const Graph& graph, size_t op);

// A weighted op's int32 bias whose scales are exactly s_in * s_w[c] (its input's and weights'
// scales, as every quantizer makes them), or absent with axis 0: the .tqm (version 2) stores no
// scales for it, and the loader checks the reading op could derive them but does not
// materialize them (no kernel reads a bias's scales; on a device they would be heap for
// nothing). implied_bias_scales: per tensor, true when every op reading it as its bias says so.
bool bias_scales_implied(const Graph& graph, const Operator& op);
std::vector<bool> implied_bias_scales(const Graph& graph);

// Structural checks every graph passes before it is run or saved: indices in range, op arity,
// options sane, each activation produced exactly once and before it is read, constants sized
// to dtype x shape x bits. Shape consistency is checked by infer_shapes (shape_inference.h).
Status validate_graph(const Graph& graph);

}  // namespace tinyquant
