// The reference backend's one switch over op types.
#include "common.h"
#include "common_s8.h"
#include "reference_kernels.h"
#include "tinyquant/op_info.h"

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
// Integer paths. Dtypes and quantization parameters were checked by infer_shapes().
Status eval_s8(const Operator& op, const TensorView* in, int num_inputs, const TensorView* out) {
  const TensorView* bias = num_inputs > 2 && in[2].data ? &in[2] : nullptr;
  switch (op.type) {
    case OpType::kConv2D: conv2d_s8(op.conv, op.activation, in[0], in[1], bias, out[0]); break;
    case OpType::kDepthwiseConv2D: depthwise_conv2d_s8(op.conv, op.activation, in[0], in[1], bias, out[0]); break;
    case OpType::kFullyConnected: fully_connected_s8(op.activation, in[0], in[1], bias, out[0]); break;
    case OpType::kQuantize: quantize_s8(in[0], out[0]); break;
    case OpType::kDequantize: dequantize_s8(in[0], out[0]); break;
    case OpType::kMaxPool2D: max_pool2d_s8(op.pool, op.activation, in[0], out[0]); break;
    case OpType::kClamp: clamp_s8(op.activation, in[0], out[0]); break;
    case OpType::kAdd:
      if (!add_s8_scales_supported(in[0].quant->scale[0], in[1].quant->scale[0], out[0].quant->scale[0]))
        return Status::error(StatusCode::kUnsupported,
                             "Add '%s': int8 input-to-output scale ratios %g and %g must lie in [2^-10, 2^8)",
                             op.name.c_str(), in[0].quant->scale[0] / out[0].quant->scale[0],
                             in[1].quant->scale[0] / out[0].quant->scale[0]);
      add_s8(op.activation, in[0], in[1], out[0]);
      break;
    case OpType::kMul: mul_s8(op.activation, in[0], in[1], out[0]); break;
    case OpType::kAveragePool2D: average_pool2d_s8(op.pool, op.activation, in[0], out[0]); break;
    case OpType::kGlobalAveragePool: global_average_pool_s8(op.activation, in[0], out[0]); break;
    case OpType::kReshape:
    case OpType::kTranspose:
    case OpType::kSlice:
    case OpType::kResize:  // codes moved (or interpolated) within the one scale / zero point
      if (!same_quantization(in[0], out[0]))
        return Status::error(StatusCode::kUnsupported, "%s '%s': int8 input and output must share scale and zero point",
                             op_name(op.type), op.name.c_str());
      if (op.type == OpType::kReshape)
        copy(in[0], out[0]);
      else if (op.type == OpType::kTranspose)
        transpose(op.perm.data(), in[0], out[0]);
      else if (op.type == OpType::kSlice)
        slice(op.slice, in[0], out[0]);
      else
        resize_s8(op.resize, in[0], out[0]);
      break;
    case OpType::kConcat: concat_s8(op.axis, in, num_inputs, out[0]); break;
    case OpType::kUnary: lookup_s8(in[0], in[kTableInput], out[0]); break;
    case OpType::kSoftmax:
      if (!softmax_s8_output_supported(out[0]))
        return Status::error(StatusCode::kUnsupported,
                             "Softmax '%s': an int8 softmax output must be 8-bit with scale 1/256 and zero point -128",
                             op.name.c_str());
      softmax_s8(op.beta, in[0], out[0]);
      break;
    default:
      return Status::error(StatusCode::kUnsupported, "%s '%s': the reference backend has no int8 kernel for this op yet",
                           op_name(op.type), op.name.c_str());
  }
  return Status::ok();
}
}  // namespace

Status eval(const Operator& op, const TensorView* in, int num_inputs, const TensorView* out, int num_outputs) {
  if (runs_int8(op.type, in, num_inputs, out, num_outputs)) return eval_s8(op, in, num_inputs, out);
  if (!op_info(op.type).data_movement && !all_float(in, num_inputs, out, num_outputs))
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
    case OpType::kUnary: unary_f32(op.unary, in[0], out[0]); break;
    case OpType::kSub: sub_f32(op.activation, in[0], in[1], out[0]); break;
    case OpType::kDiv: div_f32(op.activation, in[0], in[1], out[0]); break;
    case OpType::kSlice: slice(op.slice, in[0], out[0]); break;
    case OpType::kConvTranspose: conv_transpose_f32(op.conv, op.activation, in[0], in[1], in[2], out[0]); break;
    case OpType::kResize: resize_f32(op.resize, in[0], out[0]); break;
    case OpType::kPRelu: prelu_f32(in[0], in[1], out[0]); break;
    case OpType::kLayerNorm:
      layer_norm_f32(op.epsilon, in[0], in[1], num_inputs > 2 && in[2].data ? &in[2] : nullptr, out[0]);
      break;
    case OpType::kQuantize:
    case OpType::kDequantize: break;  // handled by eval_s8
    case OpType::kCount:
      return Status::error(StatusCode::kInvalidModel, "operator '%s': unknown op type", op.name.c_str());
  }
  (void)num_outputs;
  return Status::ok();
}

}  // namespace reference
}  // namespace tinyquant
