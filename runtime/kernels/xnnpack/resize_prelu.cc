// Bilinear Resize on xnn_resize_bilinear2d_nhwc_f32 (half-pixel, align-corners, or asymmetric via
// TensorFlow's legacy mode) when the model's scales are the output / input ratios XNNPACK derives
// from the sizes; PRelu on xnn_prelu_nc_f32 when the slope is a constant per channel (last dim).
// Nearest Resize, other slopes and scales stay on the reference kernels.
#include "kernels/xnnpack/xnnpack_internal.h"

namespace tinyquant {
namespace xnnpack {

Status prepare_resize(OpContext* ctx, bool* handled) {
  const ResizeOptions& r = ctx->op.resize();
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  if (!is_plain_f32(x) || !is_plain_f32(y) || x.dims.rank != 4 || r.mode != ResizeMode::kLinear) return Status::ok();
  if (y.dims.rank != 4 || y.dims[0] != x.dims[0] || y.dims[3] != x.dims[3] || y.dims[1] != r.out_h ||
      y.dims[2] != r.out_w)
    return ctx->shape_mismatch("output is not [N, out_h, out_w, C]");
  const int32_t h = x.dims[1], w = x.dims[2];
  uint32_t flags = 0;
  switch (r.coord) {
    case ResizeCoord::kAlignCorners: flags = XNN_FLAG_ALIGN_CORNERS; break;
    case ResizeCoord::kAsymmetric: flags = XNN_FLAG_TENSORFLOW_LEGACY_MODE; break;
    case ResizeCoord::kHalfPixel: break;
    case ResizeCoord::kPytorchHalfPixel:
      if (r.out_h == 1 || r.out_w == 1) return Status::ok();  // differs from half-pixel only there
      break;
  }
  if (r.coord != ResizeCoord::kAlignCorners &&
      (r.scale_h != static_cast<float>(r.out_h) / h || r.scale_w != static_cast<float>(r.out_w) / w))
    return Status::ok();
  const size_t c = static_cast<size_t>(x.dims[3]);
  *handled = true;
  xnn_operator_t op = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(xnn_create_resize_bilinear2d_nhwc_f32(c, c, c, flags, &op), &op,
                                 "xnn_create_resize_bilinear2d_nhwc_f32"));
  return ctx->check(xnn_setup_resize_bilinear2d_nhwc_f32(op, x.dims[0], h, w, r.out_h, r.out_w, x.as<const float>(),
                                                         y.as<float>(), ctx->threadpool),
                    "xnn_setup_resize_bilinear2d_nhwc_f32");
}

Status prepare_prelu(OpContext* ctx, bool* handled) {
  if (ctx->num_inputs != 2) return Status::ok();
  const TensorView& x = ctx->in(0);
  const TensorView& slope = ctx->in(1);
  const TensorView& y = ctx->output;
  if (!is_plain_f32(x) || !is_plain_f32(slope) || !is_plain_f32(y) || x.dims.rank < 1) return Status::ok();
  const int64_t c = x.dims[x.dims.rank - 1];
  bool per_channel = slope.elements() == c && slope.dims.rank >= 1 && slope.dims[slope.dims.rank - 1] == c;
  if (!per_channel) return Status::ok();
  if (x.dims != y.dims) return ctx->shape_mismatch("input and output shapes differ");
  *handled = true;
  xnn_operator_t op = nullptr;
  // XNNPACK packs the slope at create: the constant's bytes must stay put (constants do).
  TQ_RETURN_IF_ERROR(ctx->record(xnn_create_prelu_nc_f32(c, c, c, slope.as<const float>(), 0, &op), &op,
                                 "xnn_create_prelu_nc_f32"));
  ctx->weight_bytes += static_cast<size_t>(c) * sizeof(float);
  return ctx->check(xnn_setup_prelu_nc_f32(op, x.elements() / c, x.as<const float>(), y.as<float>(), ctx->threadpool),
                    "xnn_setup_prelu_nc_f32");
}

}  // namespace xnnpack
}  // namespace tinyquant

namespace tinyquant {
namespace xnnpack {

// ConvTranspose on xnn_deconvolution2d_nhwc_f32 (weights OHWI per group, as XNNPACK packs them).
Status prepare_conv_transpose(OpContext* ctx, bool* handled) {
  const Operator& op = ctx->op;
  const ConvOptions& c = op.conv();
  const TensorView& x = ctx->in(0);
  const TensorView& w = ctx->in(1);
  const TensorView* b = ctx->bias();
  const TensorView& y = ctx->output;
  if (!is_plain_f32(x) || !is_plain_f32(w) || !is_plain_f32(y) || (b && !is_plain_f32(*b)) ||
      !clamp_supported(op.activation.min, op.activation.max) || x.dims.rank != 4 || w.dims.rank != 4)
    return Status::ok();
  const int32_t kh = w.dims[1], kw = w.dims[2];
  const int64_t oh = int64_t(x.dims[1] - 1) * c.stride_h - c.padding.top - c.padding.bottom +
                     int64_t(c.dilation_h) * (kh - 1) + 1 + c.output_pad_h;
  const int64_t ow = int64_t(x.dims[2] - 1) * c.stride_w - c.padding.left - c.padding.right +
                     int64_t(c.dilation_w) * (kw - 1) + 1 + c.output_pad_w;
  if (y.dims.rank != 4 || y.dims[1] != oh || y.dims[2] != ow || y.dims[3] != w.dims[0] || y.dims[0] != x.dims[0])
    return ctx->shape_mismatch("output is not the transposed convolution's size");
  const size_t gi = static_cast<size_t>(x.dims[3] / c.groups), go = static_cast<size_t>(w.dims[0] / c.groups);
  *handled = true;
  xnn_operator_t d = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(
      xnn_create_deconvolution2d_nhwc_f32(c.padding.top, c.padding.right, c.padding.bottom, c.padding.left, kh, kw,
                                          c.stride_h, c.stride_w, c.dilation_h, c.dilation_w, c.groups, gi, go,
                                          gi * c.groups, go * c.groups, w.as<const float>(),
                                          b ? b->as<const float>() : nullptr, op.activation.min, op.activation.max, 0,
                                          &d),
      &d, "xnn_create_deconvolution2d_nhwc_f32"));
  ctx->weight_bytes += static_cast<size_t>(w.elements() + (b ? b->elements() : 0)) * sizeof(float);
  return ctx->check(xnn_setup_deconvolution2d_nhwc_f32(d, x.dims[0], x.dims[1], x.dims[2], c.output_pad_h,
                                                       c.output_pad_w, x.as<const float>(), y.as<float>(),
                                                       ctx->threadpool),
                    "xnn_setup_deconvolution2d_nhwc_f32");
}

}  // namespace xnnpack
}  // namespace tinyquant
