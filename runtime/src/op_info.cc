#include "tinyquant/op_info.h"

namespace tinyquant {

namespace {

constexpr Int8Role W = Int8Role::kWeighted, P = Int8Role::kPassthrough, R = Int8Role::kRequantizing,
                   F = Int8Role::kFixedOutput, C = Int8Role::kConversion, L = Int8Role::kLookup, G = Int8Role::kGather,
                   N = Int8Role::kNone;

// Concat's input limit bounds the work validate_graph and the kernels do per op, not a kernel need.
constexpr OpInfo kOps[] = {
    //  type                        name                in   in  out weighted role float  moves
    {OpType::kConv2D,            "Conv2D",            2, 3,  1, true,  W, true,  false},
    {OpType::kDepthwiseConv2D,   "DepthwiseConv2D",   2, 3,  1, true,  W, true,  false},
    {OpType::kFullyConnected,    "FullyConnected",    2, 3,  1, true,  W, true,  false},
    {OpType::kAdd,               "Add",               2, 2,  1, false, R, true,  false},
    {OpType::kMul,               "Mul",               2, 2,  1, false, R, true,  false},
    {OpType::kClamp,             "Clamp",             1, 1,  1, false, P, true,  false},
    {OpType::kMaxPool2D,         "MaxPool2D",         1, 1,  1, false, P, true,  false},
    {OpType::kAveragePool2D,     "AveragePool2D",     1, 1,  1, false, R, true,  false},
    {OpType::kGlobalAveragePool, "GlobalAveragePool", 1, 1,  1, false, R, true,  false},
    {OpType::kReshape,           "Reshape",           1, 1,  1, false, P, true,  true},
    {OpType::kConcat,            "Concat",            1, 64, 1, false, R, true,  true},
    {OpType::kSoftmax,           "Softmax",           1, 1,  1, false, F, true,  false},
    {OpType::kTranspose,         "Transpose",         1, 1,  1, false, P, true,  true},
    {OpType::kQuantize,          "Quantize",          1, 1,  1, false, C, false, false},
    {OpType::kDequantize,        "Dequantize",        1, 1,  1, false, C, false, false},
    {OpType::kUnary,             "Unary",             1, 2,  1, false, L, true,  false},
    {OpType::kSub,               "Sub",               2, 2,  1, false, N, true,  false},
    {OpType::kDiv,               "Div",               2, 2,  1, false, N, true,  false},
    {OpType::kSlice,             "Slice",             1, 1,  1, false, P, true,  true},
    {OpType::kResize,            "Resize",            1, 1,  1, false, P, true,  false},
    {OpType::kPRelu,             "PRelu",             2, 2,  1, false, N, true,  false},
    {OpType::kLayerNorm,         "LayerNorm",         2, 3,  1, false, N, true,  false},
    {OpType::kConvTranspose,     "ConvTranspose",     3, 3,  1, false, N, true,  false},
    {OpType::kGather,            "Gather",            2, 2,  1, false, G, true,  false},
    {OpType::kBatchMatMul,       "BatchMatMul",       2, 2,  1, false, R, true,  false},
};
static_assert(sizeof(kOps) / sizeof(kOps[0]) == static_cast<size_t>(OpType::kCount),
              "op_info: one entry per OpType");

constexpr bool indexed_by_type() {
  for (size_t i = 0; i < sizeof(kOps) / sizeof(kOps[0]); ++i)
    if (static_cast<size_t>(kOps[i].type) != i) return false;
  return true;
}
static_assert(indexed_by_type(), "op_info: entries must be in OpType order");

// Accepts no input count; not a conversion op, so runs_int8 decides by dtype as for any other.
constexpr OpInfo kUnknown = {OpType::kCount, "?", 1, 0, 0, false, R, false, false};

int activation_inputs(OpType type, int num_inputs) {
  return op_info(type).weighted && num_inputs > 1 ? 1 : num_inputs;
}

}  // namespace

const OpInfo& op_info(OpType type) {
  return static_cast<size_t>(type) < static_cast<size_t>(OpType::kCount) ? kOps[static_cast<size_t>(type)] : kUnknown;
}

const char* op_name(OpType type) { return op_info(type).name; }

bool runs_int8(OpType type, const TensorView* inputs, int num_inputs, const TensorView* outputs, int num_outputs) {
  if (op_info(type).int8_role == Int8Role::kConversion) return true;
  for (int i = 0; i < activation_inputs(type, num_inputs); ++i)
    if (inputs[i].data != nullptr && inputs[i].dtype == DType::kInt8) return true;
  for (int i = 0; i < num_outputs; ++i)
    if (outputs[i].dtype == DType::kInt8) return true;
  return false;
}

bool runs_int8(const Operator& op, const Graph& graph) {
  if (op_info(op.type).int8_role == Int8Role::kConversion) return true;
  const int n = activation_inputs(op.type, static_cast<int>(op.inputs.size()));
  for (int i = 0; i < n; ++i)
    if (op.inputs[i] >= 0 && graph.tensors[op.inputs[i]].dtype == DType::kInt8) return true;
  for (int32_t t : op.outputs)
    if (graph.tensors[t].dtype == DType::kInt8) return true;
  return false;
}

}  // namespace tinyquant
