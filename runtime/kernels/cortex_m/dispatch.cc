// Which ops the Cortex-M kernels take, and running them.
#include "cortex_m_kernels.h"

namespace tinyquant {
namespace cortex_m {

namespace {
// Int8 activations in and out, quantized int8 weights (per output channel), bias int32 or absent.
bool int8_weighted(const TensorView* in, int num_inputs, const TensorView* out, int num_outputs) {
  if (num_inputs < 2 || num_outputs != 1) return false;
  if (in[0].dtype != DType::kInt8 || out[0].dtype != DType::kInt8 || in[1].dtype != DType::kInt8) return false;
  if (!in[0].quant || in[0].quant->scale.empty() || !out[0].quant || out[0].quant->scale.empty()) return false;
  if (!in[1].quant || in[1].quant->scale.empty()) return false;
  if (num_inputs > 2 && in[2].data && in[2].dtype != DType::kInt32) return false;
  return true;
}
}  // namespace

int64_t scratch_size(const Operator& op, const TensorView* in, int num_inputs, const TensorView* out,
                     int num_outputs) {
  if (!int8_weighted(in, num_inputs, out, num_outputs)) return -1;
  switch (op.type) {
    case OpType::kConv2D: return conv2d_s8_scratch_size(op.conv(), in[0], in[1], out[0]);
    case OpType::kDepthwiseConv2D: return depthwise_conv2d_s8_scratch_size(op.conv(), in[0], in[1], out[0]);
    case OpType::kFullyConnected: return fully_connected_s8_scratch_size(in[0], in[1], out[0]);
    default: return -1;
  }
}

void run(const Operator& op, const TensorView* in, int num_inputs, const TensorView* out, void* scratch) {
  const TensorView* bias = num_inputs > 2 && in[2].data ? &in[2] : nullptr;
  switch (op.type) {
    case OpType::kConv2D: conv2d_s8(op.conv(), op.activation, in[0], in[1], bias, out[0], scratch); break;
    case OpType::kDepthwiseConv2D:
      depthwise_conv2d_s8(op.conv(), op.activation, in[0], in[1], bias, out[0], scratch);
      break;
    case OpType::kFullyConnected: fully_connected_s8(op.activation, in[0], in[1], bias, out[0], scratch); break;
    default: break;
  }
}

}  // namespace cortex_m
}  // namespace tinyquant
