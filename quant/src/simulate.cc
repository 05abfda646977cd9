#include <cmath>

#include "kernels/reference/reference_kernels.h"
#include "tinyquant/quantizer.h"

namespace tinyquant {
namespace quant {

namespace {

Status check_layer(const QuantizedLayer& l, const Dims& in, const Dims& out, int32_t* out_channels) {
  TQ_ENSURE(l.packed_weights && l.weight_scales, kInvalidArgument, "layer: weights or weight scales missing");
  TQ_RETURN_IF_ERROR(check_bits("weights", l.weight_bits));
  TQ_RETURN_IF_ERROR(check_activation_params("input", l.input));
  TQ_RETURN_IF_ERROR(check_activation_params("output", l.output));
  const Dims& w = l.weight_dims;
  char a[64], b[64], c[64];
  switch (l.type) {
    case OpType::kConv2D: {
      const int32_t groups = l.conv.groups;
      TQ_ENSURE(in.rank == 4 && out.rank == 4 && w.rank == 4 && groups >= 1 && in[3] == w[3] * groups &&
                    out[3] == w[0] && w[0] % groups == 0 && in[0] == out[0],
                kInvalidArgument, "Conv2D: input %s, weights %s, output %s, groups %d are inconsistent",
                in.str(a, sizeof a), w.str(b, sizeof b), out.str(c, sizeof c), groups);
      *out_channels = w[0];
      return Status::ok();
    }
    case OpType::kDepthwiseConv2D:
      TQ_ENSURE(in.rank == 4 && out.rank == 4 && w.rank == 4 && w[0] == 1 && l.conv.depth_multiplier >= 1 &&
                    out[3] == in[3] * l.conv.depth_multiplier && w[3] == out[3] && in[0] == out[0],
                kInvalidArgument, "DepthwiseConv2D: input %s, weights %s, output %s, multiplier %d are inconsistent",
                in.str(a, sizeof a), w.str(b, sizeof b), out.str(c, sizeof c), l.conv.depth_multiplier);
      *out_channels = w[3];
      return Status::ok();
    case OpType::kFullyConnected:
      TQ_ENSURE(w.rank == 2 && w[1] > 0 && in.rank >= 1 && out.rank >= 1 && out[out.rank - 1] == w[0] &&
                    in.elements() % w[1] == 0 && out.elements() == in.elements() / w[1] * w[0],
                kInvalidArgument, "FullyConnected: input %s, weights %s, output %s are inconsistent",
                in.str(a, sizeof a), w.str(b, sizeof b), out.str(c, sizeof c));
      *out_channels = w[0];
      return Status::ok();
    default:
      return Status::error(StatusCode::kUnsupported, "simulate_layer_s8: %s is not a conv or fully connected op",
                           op_name(l.type));
  }
}

}  // namespace

Status simulate_layer_s8(const QuantizedLayer& l, const float* input, const Dims& in, const Dims& out_dims,
                         std::vector<int8_t>* out) {
  int32_t out_c = 0;
  TQ_RETURN_IF_ERROR(check_layer(l, in, out_dims, &out_c));

  // Quantize the input exactly as the Quantize kernel does; keep (q - zp) for the accumulation.
  const int64_t in_n = in.elements();
  std::vector<int32_t> xq(static_cast<size_t>(in_n));
  const float inv_scale = 1.0f / l.input.scale;
  for (int64_t i = 0; i < in_n; ++i)
    xq[i] = quantize_activation(input[i], inv_scale, l.input.zero_point, l.input.bits) - l.input.zero_point;

  // Then the reference int8 kernels themselves (one implementation of the integer arithmetic).
  std::vector<int8_t> x8(static_cast<size_t>(in_n));
  for (int64_t i = 0; i < in_n; ++i) x8[i] = static_cast<int8_t>(xq[i] + l.input.zero_point);
  Quantization qin, qw, qb, qout;
  qin.scale = {l.input.scale};
  qin.zero_point = {l.input.zero_point};
  qin.bits = l.input.bits;
  qw.scale.assign(l.weight_scales, l.weight_scales + out_c);
  qw.axis = l.type == OpType::kDepthwiseConv2D ? 3 : 0;
  qw.bits = l.weight_bits;
  qb.axis = 0;
  for (int32_t c = 0; c < out_c; ++c) qb.scale.push_back(l.input.scale * l.weight_scales[c]);
  qout.scale = {l.output.scale};
  qout.zero_point = {l.output.zero_point};
  qout.bits = l.output.bits;
  out->assign(static_cast<size_t>(out_dims.elements()), 0);
  TensorView vin, vw, vb, vout;
  vin.dtype = DType::kInt8;
  vin.dims = in;
  vin.data = x8.data();
  vin.quant = &qin;
  vw.dtype = DType::kInt8;
  vw.dims = l.weight_dims;
  vw.data = const_cast<uint8_t*>(l.packed_weights);
  vw.quant = &qw;
  vb.dtype = DType::kInt32;
  vb.dims = Dims::of({out_c});
  vb.data = const_cast<int32_t*>(l.bias);
  vb.quant = &qb;
  vout.dtype = DType::kInt8;
  vout.dims = out_dims;
  vout.data = out->data();
  vout.quant = &qout;
  const TensorView* bias = l.bias ? &vb : nullptr;
  switch (l.type) {
    case OpType::kConv2D: reference::conv2d_s8(l.conv, l.activation, vin, vw, bias, vout); break;
    case OpType::kDepthwiseConv2D: reference::depthwise_conv2d_s8(l.conv, l.activation, vin, vw, bias, vout); break;
    default: {
      // The FC kernel reads rows x features: give it the input as [rows, I].
      vin.dims = Dims::of({static_cast<int32_t>(in_n / l.weight_dims[1]), l.weight_dims[1]});
      vout.dims = Dims::of({static_cast<int32_t>(in_n / l.weight_dims[1]), out_c});
      reference::fully_connected_s8(l.activation, vin, vw, bias, vout);
    }
  }
  return Status::ok();
}

}  // namespace quant
}  // namespace tinyquant
