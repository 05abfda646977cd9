// MaxPool2D on int8 as xnn_max_pooling2d_nhwc_s8 (input and output share scale and zero point;
// a max and a clamp, exact) and GlobalAveragePool as xnn_global_average_pooling_nwc_qs8, whose
// fp32 arithmetic the reference int8 kernel copies (pooling_s8.cc there), so both agree bit for bit.
//
// Stays on the reference kernel: the window cases pool2d.cc lists for float max pooling (1x1
// windows, dilation with padding, a window wholly in padding); GlobalAveragePool with s_in / s_out
// outside [2^-8, 2^8) (XNNPACK rejects it); an output range of one level. AveragePool2D on int8
// always (XNNPACK 2022-02 has no QS8 average pooling).
#include "kernels/reference/common_s8.h"
#include "kernels/xnnpack/xnnpack_internal.h"

namespace tinyquant {
namespace xnnpack {

Status prepare_max_pool2d_s8(OpContext* ctx, bool* handled) {
  const PoolOptions& p = ctx->op.pool();
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  if (!is_s8(x) || !is_s8(y) || !reference::same_quantization(x, y)) return Status::ok();
  const bool padded = (p.padding.top | p.padding.left | p.padding.bottom | p.padding.right) != 0;
  if ((p.dilation_h > 1 || p.dilation_w > 1) && padded) return Status::ok();
  bool supported = false;
  TQ_RETURN_IF_ERROR(check_pool_window(ctx, &supported));
  int8_t lo, hi;
  if (!supported || !s8_output_bounds(ctx->op.activation, y, &lo, &hi)) return Status::ok();

  const size_t channels = x.dims[3];
  *handled = true;
  xnn_operator_t pool = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(
      xnn_create_max_pooling2d_nhwc_s8(p.padding.top, p.padding.right, p.padding.bottom, p.padding.left, p.kernel_h,
                                       p.kernel_w, p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, channels,
                                       channels, channels, lo, hi, 0, &pool),
      &pool, "xnn_create_max_pooling2d_nhwc_s8"));
  return ctx->check(xnn_setup_max_pooling2d_nhwc_s8(pool, x.dims[0], x.dims[1], x.dims[2], x.as<const int8_t>(),
                                                    y.as<int8_t>(), ctx->threadpool),
                    "xnn_setup_max_pooling2d_nhwc_s8");
}

Status prepare_global_average_pool_s8(OpContext* ctx, bool* handled) {
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  if (!is_s8(x) || !is_s8(y) || x.dims.rank != 4) return Status::ok();
  if (y.elements() != int64_t(x.dims[0]) * x.dims[3]) return ctx->shape_mismatch("output is not [N,1,1,C]");
  const float s_in = x.quant->scale[0], s_out = y.quant->scale[0];
  int8_t lo, hi;
  if (!scale_ok(s_in) || !scale_ok(s_out) || !(s_in / s_out >= 0x1.0p-8f && s_in / s_out < 0x1.0p+8f) ||
      !s8_output_bounds(ctx->op.activation, y, &lo, &hi))
    return Status::ok();

  const size_t channels = x.dims[3];
  *handled = true;
  xnn_operator_t pool = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(
      xnn_create_global_average_pooling_nwc_qs8(channels, channels, channels,
                                                static_cast<int8_t>(reference::zero_point(x)), s_in,
                                                static_cast<int8_t>(reference::zero_point(y)), s_out, lo, hi, 0, &pool),
      &pool, "xnn_create_global_average_pooling_nwc_qs8"));
  return ctx->check(xnn_setup_global_average_pooling_nwc_qs8(pool, x.dims[0], size_t(x.dims[1]) * x.dims[2],
                                                             x.as<const int8_t>(), y.as<int8_t>(), ctx->threadpool),
                    "xnn_setup_global_average_pooling_nwc_qs8");
}

}  // namespace xnnpack
}  // namespace tinyquant
