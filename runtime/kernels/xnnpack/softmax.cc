// Softmax along the last axis on xnn_softmax_nc_f32: one row per element of the leading dims.
// XNNPACK has no beta, so softmax(beta * x) with beta != 1 stays on the reference kernel.
#include "kernels/xnnpack/xnnpack_internal.h"

namespace tinyquant {
namespace xnnpack {

Status prepare_softmax(OpContext* ctx, bool* handled) {
  const Operator& op = ctx->op;
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  if (!is_plain_f32(x) || !is_plain_f32(y) || x.dims.rank < 1 || op.beta != 1.0f ||
      (op.axis != -1 && op.axis != x.dims.rank - 1))
    return Status::ok();
  if (x.dims != y.dims) return ctx->shape_mismatch("input and output shapes differ");

  const size_t channels = x.dims[x.dims.rank - 1];
  *handled = true;
  xnn_operator_t softmax = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(xnn_create_softmax_nc_f32(channels, channels, channels, 0, &softmax), &softmax,
                                 "xnn_create_softmax_nc_f32"));
  return ctx->check(
      xnn_setup_softmax_nc_f32(softmax, x.elements() / channels, x.as<const float>(), y.as<float>(), ctx->threadpool),
      "xnn_setup_softmax_nc_f32");
}

}  // namespace xnnpack
}  // namespace tinyquant
