// Conv2D, DepthwiseConv2D and FullyConnected on int8 activations: XNNPACK's QC8 convolution
// (per-output-channel weight scales, fp32 requantization with scale s_in * s_w[c] / s_out computed
// in that order — qmath.h's requantize, so the results equal the reference kernels' bit for bit).
// Layouts as in conv2d.cc; FullyConnected is a 1x1 convolution over [rows, 1, 1, I].
//
// Weights below 8 bits are unpacked to int8 for the create call only: XNNPACK packs its own copy
// (with the bias and scales) and keeps no pointer to ours. packed_weight_bytes() counts the int8
// weights, the int32 bias and the float scales handed over.
//
// Stays on the reference kernel: scales XNNPACK rejects (zero, subnormal, a requantization scale
// s_in * s_w / s_out of 256 or more) and an output range of one level (output_min == output_max).
#include <cmath>
#include <vector>

#include "kernels/reference/common_s8.h"
#include "kernels/xnnpack/xnnpack_internal.h"
#include "tinyquant/shape_inference.h"

namespace tinyquant {
namespace xnnpack {

namespace {

struct QC8Conv {
  uint32_t pad_top = 0, pad_right = 0, pad_bottom = 0, pad_left = 0;
  uint32_t kh = 1, kw = 1, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  uint32_t groups = 1;
  size_t group_in = 0, group_out = 0;
  uint32_t flags = 0;
  size_t batch = 0, in_h = 1, in_w = 1;  // setup
};

// Whether XNNPACK's QC8 convolution takes these scales and bounds.
bool qc8_supported(const OpContext& ctx, int8_t* lo, int8_t* hi) {
  const TensorView& x = ctx.in(0);
  const TensorView& w = ctx.in(1);
  const TensorView& y = ctx.output;
  if (!s8_output_bounds(ctx.op.activation, y, lo, hi)) return false;
  const float s_in = x.quant->scale[0], s_out = y.quant->scale[0];
  if (!scale_ok(s_in) || !scale_ok(s_out)) return false;
  for (float s : w.quant->scale)
    if (!scale_ok(s) || !(s_in * s / s_out < 256.0f)) return false;
  return true;
}

Status create_qc8(OpContext* ctx, const QC8Conv& c, int8_t lo, int8_t hi, bool* handled) {
  const TensorView& x = ctx->in(0);
  const TensorView& w = ctx->in(1);
  const TensorView* b = ctx->bias();
  const TensorView& y = ctx->output;
  const int32_t bits = w.quant->bits;
  std::vector<int8_t> unpacked;
  const int8_t* kernel = w.as<const int8_t>();
  if (bits < 8) {
    unpacked.resize(static_cast<size_t>(w.elements()));
    for (int64_t i = 0; i < w.elements(); ++i)
      unpacked[i] = static_cast<int8_t>(qmath::unpack_weight(w.as<const uint8_t>(), i, bits));
    kernel = unpacked.data();
  }
  const size_t in_c = c.groups * c.group_in, out_c = c.groups * c.group_out;

  *handled = true;
  xnn_operator_t conv = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(
      xnn_create_convolution2d_nhwc_qc8(
          c.pad_top, c.pad_right, c.pad_bottom, c.pad_left, c.kh, c.kw, c.stride_h, c.stride_w, c.dilation_h,
          c.dilation_w, c.groups, c.group_in, c.group_out, in_c, out_c, static_cast<int8_t>(reference::zero_point(x)),
          x.quant->scale[0], w.quant->scale.data(), kernel, b != nullptr ? b->as<const int32_t>() : nullptr,
          static_cast<int8_t>(reference::zero_point(y)), y.quant->scale[0], lo, hi, c.flags, &conv),
      &conv, "xnn_create_convolution2d_nhwc_qc8"));
  ctx->weight_bytes += w.elements() + out_c * sizeof(float) + (b != nullptr ? out_c * sizeof(int32_t) : 0);
  return ctx->check(xnn_setup_convolution2d_nhwc_qc8(conv, c.batch, c.in_h, c.in_w, x.as<const int8_t>(),
                                                     y.as<int8_t>(), ctx->threadpool),
                    "xnn_setup_convolution2d_nhwc_qc8");
}

bool s8_weighted_views(const OpContext& ctx) {
  if (ctx.num_inputs < 2) return false;
  const TensorView& w = ctx.in(1);
  const TensorView* b = ctx.bias();
  return w.data != nullptr && is_s8(ctx.in(0)) && is_s8(ctx.output) && w.dtype == DType::kInt8 &&
         w.quant != nullptr && (b == nullptr || b->dtype == DType::kInt32);
}

}  // namespace

Status prepare_conv2d_s8(OpContext* ctx, bool* handled) {
  if (!s8_weighted_views(*ctx)) return Status::ok();
  const Operator& op = ctx->op;
  const TensorView& x = ctx->in(0);
  const TensorView& w = ctx->in(1);
  const TensorView* b = ctx->bias();
  const TensorView& y = ctx->output;
  if (x.dims.rank != 4 || w.dims.rank != 4 || y.dims.rank != 4) return Status::ok();

  const ConvOptions& o = op.conv();
  const bool depthwise = op.type == OpType::kDepthwiseConv2D;
  if (!depthwise && o.groups < 1) return ctx->shape_mismatch("groups must be >= 1");
  QC8Conv c;
  const int32_t in_c = x.dims[3], out_c = y.dims[3];
  c.groups = depthwise ? in_c : o.groups;
  c.group_in = depthwise ? 1 : w.dims[3];
  c.group_out = depthwise ? o.depth_multiplier : out_c / o.groups;
  c.kh = w.dims[1], c.kw = w.dims[2];
  if (int64_t(c.groups) * int64_t(c.group_in) != in_c || int64_t(c.groups) * int64_t(c.group_out) != out_c ||
      (depthwise ? w.dims[0] != 1 || w.dims[3] != out_c : w.dims[0] != out_c) ||
      w.quant->scale.size() != size_t(out_c) || (b != nullptr && b->elements() != out_c) || y.dims[0] != x.dims[0] ||
      y.dims[1] != window_output_size(x.dims[1], c.kh, o.stride_h, o.dilation_h, o.padding.top, o.padding.bottom) ||
      y.dims[2] != window_output_size(x.dims[2], c.kw, o.stride_w, o.dilation_w, o.padding.left, o.padding.right))
    return ctx->shape_mismatch("input, weights, bias, scales and output shapes do not match the options");
  int8_t lo, hi;
  if (!qc8_supported(*ctx, &lo, &hi)) return Status::ok();

  c.pad_top = o.padding.top, c.pad_right = o.padding.right, c.pad_bottom = o.padding.bottom;
  c.pad_left = o.padding.left;
  c.stride_h = o.stride_h, c.stride_w = o.stride_w, c.dilation_h = o.dilation_h, c.dilation_w = o.dilation_w;
  c.flags = depthwise ? XNN_FLAG_DEPTHWISE_CONVOLUTION : 0;
  c.batch = x.dims[0], c.in_h = x.dims[1], c.in_w = x.dims[2];
  return create_qc8(ctx, c, lo, hi, handled);
}

Status prepare_fully_connected_s8(OpContext* ctx, bool* handled) {
  if (!s8_weighted_views(*ctx)) return Status::ok();
  const TensorView& x = ctx->in(0);
  const TensorView& w = ctx->in(1);
  const TensorView* b = ctx->bias();
  const TensorView& y = ctx->output;
  if (w.dims.rank != 2) return Status::ok();
  const int64_t out_c = w.dims[0], in_c = w.dims[1];
  const int64_t rows = x.elements() / in_c;
  if (rows * in_c != x.elements() || y.elements() != rows * out_c || w.quant->scale.size() != size_t(out_c) ||
      (b != nullptr && b->elements() != out_c))
    return ctx->shape_mismatch("input, weights, bias, scales and output sizes do not match");
  int8_t lo, hi;
  if (!qc8_supported(*ctx, &lo, &hi)) return Status::ok();

  QC8Conv c;
  c.group_in = in_c, c.group_out = out_c, c.batch = rows;
  return create_qc8(ctx, c, lo, hi, handled);
}

}  // namespace xnnpack
}  // namespace tinyquant
