// Add, Mul, Sub and Div on xnn_{add,multiply,subtract,divide}_nd_f32 (NumPy broadcasting, fused clamp), and Clamp on
// xnn_clamp_nc_f32. A single rounding per element, so these agree with the reference bit for bit.
#include "kernels/xnnpack/xnnpack_internal.h"

namespace tinyquant {
namespace xnnpack {

namespace {

// The row length an nc operator sees: the last dimension (1 for a scalar).
size_t last_dim(const Dims& dims) { return dims.rank > 0 ? static_cast<size_t>(dims[dims.rank - 1]) : 1; }

}  // namespace

Status broadcast_shapes(OpContext* ctx, size_t* a_shape, size_t* b_shape, bool* supported) {
  const TensorView& a = ctx->in(0);
  const TensorView& b = ctx->in(1);
  *supported = a.dims.rank <= XNN_MAX_TENSOR_DIMS && b.dims.rank <= XNN_MAX_TENSOR_DIMS;
  if (!*supported) return Status::ok();
  // XNNPACK writes the broadcast shape; it must be the output we were given.
  Dims broadcast;
  broadcast.rank = a.dims.rank > b.dims.rank ? a.dims.rank : b.dims.rank;
  for (int i = 0; i < broadcast.rank; ++i) {
    const int ia = i - (broadcast.rank - a.dims.rank), ib = i - (broadcast.rank - b.dims.rank);
    const int32_t da = ia >= 0 ? a.dims[ia] : 1, db = ib >= 0 ? b.dims[ib] : 1;
    if (da != db && da != 1 && db != 1) return ctx->shape_mismatch("inputs do not broadcast");
    broadcast.d[i] = da == 1 ? db : da;
  }
  if (broadcast != ctx->output.dims) return ctx->shape_mismatch("output is not the broadcast of the inputs");
  for (int i = 0; i < a.dims.rank; ++i) a_shape[i] = a.dims[i];
  for (int i = 0; i < b.dims.rank; ++i) b_shape[i] = b.dims[i];
  return Status::ok();
}

Status prepare_binary(OpContext* ctx, bool* handled) {
  if (ctx->num_inputs != 2) return Status::ok();
  const Operator& op = ctx->op;
  const TensorView& a = ctx->in(0);
  const TensorView& b = ctx->in(1);
  const TensorView& y = ctx->output;
  if (!is_plain_f32(a) || !is_plain_f32(b) || !is_plain_f32(y) ||
      !clamp_supported(op.activation.min, op.activation.max))
    return Status::ok();
  size_t a_shape[XNN_MAX_TENSOR_DIMS], b_shape[XNN_MAX_TENSOR_DIMS];
  bool supported = false;
  TQ_RETURN_IF_ERROR(broadcast_shapes(ctx, a_shape, b_shape, &supported));
  if (!supported) return Status::ok();
  *handled = true;
  xnn_operator_t binary = nullptr;
  if (op.type == OpType::kAdd) {
    TQ_RETURN_IF_ERROR(ctx->record(xnn_create_add_nd_f32(op.activation.min, op.activation.max, 0, &binary), &binary,
                                   "xnn_create_add_nd_f32"));
    return ctx->check(xnn_setup_add_nd_f32(binary, a.dims.rank, a_shape, b.dims.rank, b_shape, a.as<const float>(),
                                           b.as<const float>(), y.as<float>(), ctx->threadpool),
                      "xnn_setup_add_nd_f32");
  }
  if (op.type == OpType::kSub) {
    TQ_RETURN_IF_ERROR(ctx->record(xnn_create_subtract_nd_f32(op.activation.min, op.activation.max, 0, &binary),
                                   &binary, "xnn_create_subtract_nd_f32"));
    return ctx->check(xnn_setup_subtract_nd_f32(binary, a.dims.rank, a_shape, b.dims.rank, b_shape,
                                                a.as<const float>(), b.as<const float>(), y.as<float>(),
                                                ctx->threadpool),
                      "xnn_setup_subtract_nd_f32");
  }
  if (op.type == OpType::kDiv) {
    TQ_RETURN_IF_ERROR(ctx->record(xnn_create_divide_nd_f32(op.activation.min, op.activation.max, 0, &binary), &binary,
                                   "xnn_create_divide_nd_f32"));
    return ctx->check(xnn_setup_divide_nd_f32(binary, a.dims.rank, a_shape, b.dims.rank, b_shape, a.as<const float>(),
                                              b.as<const float>(), y.as<float>(), ctx->threadpool),
                      "xnn_setup_divide_nd_f32");
  }
  TQ_RETURN_IF_ERROR(ctx->record(xnn_create_multiply_nd_f32(op.activation.min, op.activation.max, 0, &binary), &binary,
                                 "xnn_create_multiply_nd_f32"));
  return ctx->check(xnn_setup_multiply_nd_f32(binary, a.dims.rank, a_shape, b.dims.rank, b_shape, a.as<const float>(),
                                              b.as<const float>(), y.as<float>(), ctx->threadpool),
                    "xnn_setup_multiply_nd_f32");
}

Status prepare_clamp(OpContext* ctx, bool* handled) {
  const Operator& op = ctx->op;
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  // The op's bounds live in `activation` (ReLU [0, inf), ReLU6 [0, 6], Clip [min, max]).
  if (!is_plain_f32(x) || !is_plain_f32(y) || !clamp_supported(op.activation.min, op.activation.max))
    return Status::ok();
  if (x.elements() != y.elements()) return ctx->shape_mismatch("input and output sizes differ");

  const size_t channels = last_dim(x.dims);
  *handled = true;
  xnn_operator_t clamp = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(
      xnn_create_clamp_nc_f32(channels, channels, channels, op.activation.min, op.activation.max, 0, &clamp), &clamp,
      "xnn_create_clamp_nc_f32"));
  return ctx->check(
      xnn_setup_clamp_nc_f32(clamp, x.elements() / channels, x.as<const float>(), y.as<float>(), ctx->threadpool),
      "xnn_setup_clamp_nc_f32");
}

}  // namespace xnnpack
}  // namespace tinyquant
