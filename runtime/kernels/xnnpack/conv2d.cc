// Conv2D and DepthwiseConv2D on xnn_convolution2d_nhwc_f32.
//
// Our OHWI weights are XNNPACK's GOHWI ([groups * group_out, KH, KW, group_in]); our depthwise
// 1HWO weights ([1, KH, KW, C * m]) are XNNPACK's HWGo under XNN_FLAG_DEPTHWISE_CONVOLUTION
// (groups = C, one input and m outputs per group). XNNPACK packs a copy at create time.
#include "kernels/xnnpack/xnnpack_internal.h"
#include "tinyquant/shape_inference.h"

namespace tinyquant {
namespace xnnpack {

Status prepare_conv2d(OpContext* ctx, bool* handled) {
  if (ctx->num_inputs < 2) return Status::ok();
  const Operator& op = ctx->op;
  const TensorView& x = ctx->in(0);
  const TensorView& w = ctx->in(1);
  const TensorView* b = ctx->bias();
  const TensorView& y = ctx->output;
  if (w.data == nullptr || !is_plain_f32(x) || !is_plain_f32(w) || (b != nullptr && !is_plain_f32(*b)) ||
      !is_plain_f32(y) || !clamp_supported(op.activation.min, op.activation.max) || x.dims.rank != 4 ||
      w.dims.rank != 4 || y.dims.rank != 4)
    return Status::ok();

  const ConvOptions& c = op.conv();
  const bool depthwise = op.type == OpType::kDepthwiseConv2D;
  if (!depthwise && c.groups < 1) return ctx->shape_mismatch("groups must be >= 1");
  const int32_t in_c = x.dims[3], out_c = y.dims[3];
  const int32_t groups = depthwise ? in_c : c.groups;
  const int32_t group_in = depthwise ? 1 : w.dims[3];
  const int32_t group_out = depthwise ? c.depth_multiplier : out_c / groups;
  const int32_t kh = w.dims[1], kw = w.dims[2];
  // XNNPACK sizes the output from the options itself: make sure that is the buffer we were given.
  if (int64_t(groups) * group_in != in_c || int64_t(groups) * group_out != out_c ||
      (depthwise ? w.dims[0] != 1 || w.dims[3] != out_c : w.dims[0] != out_c) ||
      (b != nullptr && b->elements() != out_c) || y.dims[0] != x.dims[0] ||
      y.dims[1] != window_output_size(x.dims[1], kh, c.stride_h, c.dilation_h, c.padding.top, c.padding.bottom) ||
      y.dims[2] != window_output_size(x.dims[2], kw, c.stride_w, c.dilation_w, c.padding.left, c.padding.right))
    return ctx->shape_mismatch("input, weights, bias and output shapes do not match the options");

  *handled = true;
  xnn_operator_t conv = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(
      xnn_create_convolution2d_nhwc_f32(
          c.padding.top, c.padding.right, c.padding.bottom, c.padding.left, kh, kw, c.stride_h, c.stride_w,
          c.dilation_h, c.dilation_w, groups, group_in, group_out, /*input_channel_stride=*/in_c,
          /*output_channel_stride=*/out_c, w.as<const float>(), b != nullptr ? b->as<const float>() : nullptr,
          op.activation.min, op.activation.max, depthwise ? XNN_FLAG_DEPTHWISE_CONVOLUTION : 0, &conv),
      &conv, "xnn_create_convolution2d_nhwc_f32"));
  ctx->weight_bytes += (w.elements() + (b != nullptr ? b->elements() : 0)) * sizeof(float);
  return ctx->check(xnn_setup_convolution2d_nhwc_f32(conv, x.dims[0], x.dims[1], x.dims[2], x.as<const float>(),
                                                     y.as<float>(), ctx->threadpool),
                    "xnn_setup_convolution2d_nhwc_f32");
}

}  // namespace xnnpack
}  // namespace tinyquant
