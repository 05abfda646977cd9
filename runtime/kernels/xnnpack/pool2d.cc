// MaxPool2D, AveragePool2D and GlobalAveragePool on XNNPACK's NHWC pooling operators.
//
// Padding: XNNPACK's max pooling only looks at input pixels, the same as padding with -inf.
// Its average pooling divides each window by the number of *input* pixels it covers (the
// "pixelwise" kernels it picks whenever there is padding), i.e. count_include_pad = false;
// count_include_pad = true with padding stays on the reference kernel.
// XNNPACK rejects 1x1 windows ("meaningless"); those too stay on the reference kernel.
// XNNPACK 2022-02 max pooling with dilation and padding together returns wrong maxima (the random
// tests found it, even with dilation along one axis and padding along the other; later XNNPACK
// rewrote that indirection setup), so that combination stays on the reference; either alone is fine.
#include "kernels/xnnpack/xnnpack_internal.h"
#include "tinyquant/shape_inference.h"

namespace tinyquant {
namespace xnnpack {

Status check_pool_window(OpContext* ctx, bool* supported) {
  const PoolOptions& p = ctx->op.pool();
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  *supported = false;
  if (x.dims.rank != 4 || y.dims.rank != 4 || int64_t(p.kernel_h) * p.kernel_w == 1) return Status::ok();
  if (y.dims[0] != x.dims[0] || y.dims[3] != x.dims[3] ||
      y.dims[1] !=
          window_output_size(x.dims[1], p.kernel_h, p.stride_h, p.dilation_h, p.padding.top, p.padding.bottom) ||
      y.dims[2] != window_output_size(x.dims[2], p.kernel_w, p.stride_w, p.dilation_w, p.padding.left, p.padding.right))
    return ctx->shape_mismatch("output shape does not match the window options");
  *supported = every_window_reaches_input(x.dims[1], p.kernel_h, p.stride_h, p.dilation_h, p.padding.top, y.dims[1]) &&
               every_window_reaches_input(x.dims[2], p.kernel_w, p.stride_w, p.dilation_w, p.padding.left, y.dims[2]);
  return Status::ok();
}

namespace {

bool any_padding(const Padding& p) { return (p.top | p.left | p.bottom | p.right) != 0; }

// The float checks shared by both windowed pools, then the geometry.
Status check_window(OpContext* ctx, bool* supported) {
  const Operator& op = ctx->op;
  *supported = false;
  if (!is_plain_f32(ctx->in(0)) || !is_plain_f32(ctx->output) || !clamp_supported(op.activation.min, op.activation.max))
    return Status::ok();
  return check_pool_window(ctx, supported);
}

}  // namespace

Status prepare_max_pool2d(OpContext* ctx, bool* handled) {
  const PoolOptions& p = ctx->op.pool();
  if ((p.dilation_h > 1 || p.dilation_w > 1) && any_padding(p.padding)) return Status::ok();
  bool supported = false;
  TQ_RETURN_IF_ERROR(check_window(ctx, &supported));
  if (!supported) return Status::ok();

  const Operator& op = ctx->op;
  const TensorView& x = ctx->in(0);
  const size_t channels = x.dims[3];
  *handled = true;
  xnn_operator_t pool = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(
      xnn_create_max_pooling2d_nhwc_f32(p.padding.top, p.padding.right, p.padding.bottom, p.padding.left, p.kernel_h,
                                        p.kernel_w, p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, channels,
                                        channels, channels, op.activation.min, op.activation.max, 0, &pool),
      &pool, "xnn_create_max_pooling2d_nhwc_f32"));
  return ctx->check(xnn_setup_max_pooling2d_nhwc_f32(pool, x.dims[0], x.dims[1], x.dims[2], x.as<const float>(),
                                                     ctx->output.as<float>(), ctx->threadpool),
                    "xnn_setup_max_pooling2d_nhwc_f32");
}

Status prepare_average_pool2d(OpContext* ctx, bool* handled) {
  const Operator& op = ctx->op;
  const PoolOptions& p = op.pool();
  // XNNPACK's average pooling has no dilation.
  if (p.dilation_h != 1 || p.dilation_w != 1 || (p.count_include_pad && any_padding(p.padding))) return Status::ok();
  bool supported = false;
  TQ_RETURN_IF_ERROR(check_window(ctx, &supported));
  if (!supported) return Status::ok();

  const TensorView& x = ctx->in(0);
  const size_t channels = x.dims[3];
  *handled = true;
  xnn_operator_t pool = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(
      xnn_create_average_pooling2d_nhwc_f32(p.padding.top, p.padding.right, p.padding.bottom, p.padding.left,
                                            p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, channels, channels,
                                            channels, op.activation.min, op.activation.max, 0, &pool),
      &pool, "xnn_create_average_pooling2d_nhwc_f32"));
  return ctx->check(xnn_setup_average_pooling2d_nhwc_f32(pool, x.dims[0], x.dims[1], x.dims[2], x.as<const float>(),
                                                         ctx->output.as<float>(), ctx->threadpool),
                    "xnn_setup_average_pooling2d_nhwc_f32");
}

Status prepare_global_average_pool(OpContext* ctx, bool* handled) {
  const Operator& op = ctx->op;
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  if (!is_plain_f32(x) || !is_plain_f32(y) || !clamp_supported(op.activation.min, op.activation.max) ||
      x.dims.rank != 4)
    return Status::ok();
  if (y.elements() != int64_t(x.dims[0]) * x.dims[3]) return ctx->shape_mismatch("output is not [N,1,1,C]");

  // NHWC as XNNPACK's NWC: N batches of width H*W.
  const size_t channels = x.dims[3];
  *handled = true;
  xnn_operator_t pool = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(xnn_create_global_average_pooling_nwc_f32(
                                     channels, channels, channels, op.activation.min, op.activation.max, 0, &pool),
                                 &pool, "xnn_create_global_average_pooling_nwc_f32"));
  return ctx->check(xnn_setup_global_average_pooling_nwc_f32(pool, x.dims[0], size_t(x.dims[1]) * x.dims[2],
                                                             x.as<const float>(), y.as<float>(), ctx->threadpool),
                    "xnn_setup_global_average_pooling_nwc_f32");
}

}  // namespace xnnpack
}  // namespace tinyquant
