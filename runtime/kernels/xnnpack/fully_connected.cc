// FullyConnected on xnn_fully_connected_nc_f32: our [O, I] weights are its default (untransposed)
// layout; every row of the input (elements / I of them) is one batch item.
#include "kernels/xnnpack/xnnpack_internal.h"

namespace tinyquant {
namespace xnnpack {

Status prepare_fully_connected(OpContext* ctx, bool* handled) {
  if (ctx->num_inputs < 2) return Status::ok();
  const Operator& op = ctx->op;
  const TensorView& x = ctx->in(0);
  const TensorView& w = ctx->in(1);
  const TensorView* b = ctx->bias();
  const TensorView& y = ctx->output;
  if (w.data == nullptr || !is_plain_f32(x) || !is_plain_f32(w) || (b != nullptr && !is_plain_f32(*b)) ||
      !is_plain_f32(y) || !clamp_supported(op.activation.min, op.activation.max) || w.dims.rank != 2)
    return Status::ok();

  const int64_t out_c = w.dims[0], in_c = w.dims[1];
  const int64_t rows = x.elements() / in_c;
  if (rows * in_c != x.elements() || y.elements() != rows * out_c || (b != nullptr && b->elements() != out_c))
    return ctx->shape_mismatch("input, weights, bias and output sizes do not match");

  *handled = true;
  xnn_operator_t fc = nullptr;
  TQ_RETURN_IF_ERROR(
      ctx->record(xnn_create_fully_connected_nc_f32(in_c, out_c, /*input_stride=*/in_c, /*output_stride=*/out_c,
                                                    w.as<const float>(), b != nullptr ? b->as<const float>() : nullptr,
                                                    op.activation.min, op.activation.max, /*flags=*/0, &fc),
                  &fc, "xnn_create_fully_connected_nc_f32"));
  ctx->weight_bytes += (w.elements() + (b != nullptr ? b->elements() : 0)) * sizeof(float);
  return ctx->check(xnn_setup_fully_connected_nc_f32(fc, rows, x.as<const float>(), y.as<float>(), ctx->threadpool),
                    "xnn_setup_fully_connected_nc_f32");
}

}  // namespace xnnpack
}  // namespace tinyquant
