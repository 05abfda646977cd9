// The reference backend's one switch over op types.
#include "common.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

namespace {
bool all_float(const TensorView* inputs, int n, const TensorView* outputs, int m) {
  for (int i = 0; i < n; ++i)
    if (inputs[i].data && inputs[i].dtype != DType::kFloat32) return false;
  for (int i = 0; i < m; ++i)
    if (outputs[i].dtype != DType::kFloat32) return false;
  return true;
}
}  // namespace

Status eval(const Operator& op, const TensorView* in, int num_inputs, const TensorView* out, int num_outputs) {
  const bool data_movement = op.type == OpType::kReshape || op.type == OpType::kConcat || op.type == OpType::kTranspose;
  if (!data_movement && !all_float(in, num_inputs, out, num_outputs))
    return Status::error(StatusCode::kUnsupported, "%s '%s': the reference backend runs this op on float32 only (got %s)",
                         op_name(op.type), op.name.c_str(), dtype_name(in[0].dtype));
  const TensorView* bias = num_inputs > 2 && in[2].data ? &in[2] : nullptr;
  switch (op.type) {
    case OpType::kConv2D: conv2d_f32(op.conv, op.activation, in[0], in[1], bias, out[0]); break;
    case OpType::kDepthwiseConv2D: depthwise_conv2d_f32(op.conv, op.activation, in[0], in[1], bias, out[0]); break;
    case OpType::kFullyConnected: fully_connected_f32(op.activation, in[0], in[1], bias, out[0]); break;
    case OpType::kAdd: add_f32(op.activation, in[0], in[1], out[0]); break;
    case OpType::kMul: mul_f32(op.activation, in[0], in[1], out[0]); break;
    case OpType::kClamp: clamp_f32(op.activation.min, op.activation.max, in[0], out[0]); break;
    case OpType::kMaxPool2D: max_pool2d_f32(op.pool, op.activation, in[0], out[0]); break;
    case OpType::kAveragePool2D: average_pool2d_f32(op.pool, op.activation, in[0], out[0]); break;
    case OpType::kGlobalAveragePool: global_average_pool_f32(op.activation, in[0], out[0]); break;
    case OpType::kSoftmax: softmax_f32(op.beta, in[0], out[0]); break;
    case OpType::kReshape: copy(in[0], out[0]); break;
    case OpType::kConcat: concat(op.axis, in, num_inputs, out[0]); break;
    case OpType::kTranspose: transpose(op.perm.data(), in[0], out[0]); break;
    case OpType::kQuantize:
    case OpType::kDequantize:
      return Status::error(StatusCode::kUnsupported, "%s '%s': integer kernels are not implemented yet",
                           op_name(op.type), op.name.c_str());
    case OpType::kCount:
      return Status::error(StatusCode::kInvalidModel, "operator '%s': unknown op type", op.name.c_str());
  }
  (void)num_outputs;
  return Status::ok();
}

}  // namespace reference
}  // namespace tinyquant
