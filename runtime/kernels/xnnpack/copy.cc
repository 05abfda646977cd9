// Reshape and Concat as 32-bit copies (xnn_copy_nc_x32): float32 and int32 tensors. Other dtypes
// stay on the reference kernel's byte copies.
#include "kernels/xnnpack/xnnpack_internal.h"

namespace tinyquant {
namespace xnnpack {

namespace {

bool is_x32(const TensorView& view) { return dtype_size(view.dtype) == 4; }

}  // namespace

Status prepare_reshape(OpContext* ctx, bool* handled) {
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  if (!is_x32(x) || y.dtype != x.dtype) return Status::ok();
  if (x.elements() != y.elements()) return ctx->shape_mismatch("input and output sizes differ");

  *handled = true;
  if (x.data == y.data) return Status::ok();  // the planner aliased the output: nothing to run
  const size_t channels = x.dims.rank > 0 ? x.dims[x.dims.rank - 1] : 1;
  xnn_operator_t copy = nullptr;
  TQ_RETURN_IF_ERROR(
      ctx->record(xnn_create_copy_nc_x32(channels, channels, channels, 0, &copy), &copy, "xnn_create_copy_nc_x32"));
  return ctx->check(xnn_setup_copy_nc_x32(copy, x.elements() / channels, x.data, y.data, ctx->threadpool),
                    "xnn_setup_copy_nc_x32");
}

// Concat along any axis is a strided 2-D copy per input: `outer` rows (the dims before the axis)
// of input i's slab (its axis extent x the dims after the axis) into the output rows, each at
// the column where the previous inputs end.
Status prepare_concat(OpContext* ctx, bool* handled) {
  const Operator& op = ctx->op;
  const TensorView& y = ctx->output;
  const int32_t rank = y.dims.rank;
  const int32_t axis = op.axis < 0 ? op.axis + rank : op.axis;
  if (!is_x32(y) || axis < 0 || axis >= rank) return Status::ok();
  for (int i = 0; i < ctx->num_inputs; ++i)
    if (ctx->in(i).dtype != y.dtype) return Status::ok();

  size_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= y.dims[d];
  for (int d = axis + 1; d < rank; ++d) inner *= y.dims[d];
  const size_t out_slab = size_t(y.dims[axis]) * inner;
  int64_t axis_sum = 0;
  for (int i = 0; i < ctx->num_inputs; ++i) {
    const Dims& x = ctx->in(i).dims;
    bool same = x.rank == rank;
    for (int d = 0; same && d < rank; ++d) same = d == axis || x[d] == y.dims[d];
    if (!same) return ctx->shape_mismatch("an input differs from the output outside the axis");
    axis_sum += x[axis];
  }
  if (axis_sum != y.dims[axis]) return ctx->shape_mismatch("inputs do not add up to the output along the axis");

  *handled = true;
  size_t offset = 0;
  for (int i = 0; i < ctx->num_inputs; ++i) {
    const TensorView& x = ctx->in(i);
    const size_t slab = size_t(x.dims[axis]) * inner;
    xnn_operator_t copy = nullptr;
    TQ_RETURN_IF_ERROR(
        ctx->record(xnn_create_copy_nc_x32(slab, slab, out_slab, 0, &copy), &copy, "xnn_create_copy_nc_x32"));
    TQ_RETURN_IF_ERROR(
        ctx->check(xnn_setup_copy_nc_x32(copy, outer, x.data, static_cast<uint32_t*>(y.data) + offset, ctx->threadpool),
                   "xnn_setup_copy_nc_x32"));
    offset += slab;
  }
  return Status::ok();
}

}  // namespace xnnpack
}  // namespace tinyquant
