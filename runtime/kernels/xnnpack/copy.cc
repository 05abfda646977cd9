// Reshape and Concat as copies: 32-bit (xnn_copy_nc_x32: float32, int32) or bytes (xnn_copy_nc_x8:
// int8 whose inputs share the output's scale and zero point — an int8 Concat that requantizes an
// input stays on the reference kernel). Other dtypes stay on the reference kernel's byte copies.
#include "kernels/reference/common_s8.h"
#include "kernels/xnnpack/xnnpack_internal.h"

namespace tinyquant {
namespace xnnpack {

namespace {

// The element size XNNPACK copies `x` into `y` with: 4, 1, or 0 (no copy operator fits).
size_t copy_width(const TensorView& x, const TensorView& y) {
  if (x.dtype != y.dtype) return 0;
  if (dtype_size(x.dtype) == 4) return 4;
  if (is_s8(x) && is_s8(y) && reference::same_quantization(x, y)) return 1;
  return 0;
}

// Creates and sets up one strided 2-D copy of `rows` rows of `channels` elements.
Status copy_rows(OpContext* ctx, size_t width, size_t channels, size_t out_stride, size_t rows, const void* from,
                 void* to) {
  xnn_operator_t copy = nullptr;
  if (width == 4) {
    TQ_RETURN_IF_ERROR(
        ctx->record(xnn_create_copy_nc_x32(channels, channels, out_stride, 0, &copy), &copy, "xnn_create_copy_nc_x32"));
    return ctx->check(xnn_setup_copy_nc_x32(copy, rows, from, to, ctx->threadpool), "xnn_setup_copy_nc_x32");
  }
  TQ_RETURN_IF_ERROR(
      ctx->record(xnn_create_copy_nc_x8(channels, channels, out_stride, 0, &copy), &copy, "xnn_create_copy_nc_x8"));
  return ctx->check(xnn_setup_copy_nc_x8(copy, rows, from, to, ctx->threadpool), "xnn_setup_copy_nc_x8");
}

}  // namespace

Status prepare_reshape(OpContext* ctx, bool* handled) {
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  const size_t width = copy_width(x, y);
  if (width == 0) return Status::ok();
  if (x.elements() != y.elements()) return ctx->shape_mismatch("input and output sizes differ");

  *handled = true;
  if (x.data == y.data) return Status::ok();  // the planner aliased the output: nothing to run
  const size_t channels = x.dims.rank > 0 ? x.dims[x.dims.rank - 1] : 1;
  return copy_rows(ctx, width, channels, channels, x.elements() / channels, x.data, y.data);
}

// Concat along any axis is a strided 2-D copy per input: `outer` rows (the dims before the axis)
// of input i's slab (its axis extent x the dims after the axis) into the output rows, each at
// the column where the previous inputs end.
Status prepare_concat(OpContext* ctx, bool* handled) {
  const Operator& op = ctx->op;
  const TensorView& y = ctx->output;
  const int32_t rank = y.dims.rank;
  const int32_t axis = op.axis < 0 ? op.axis + rank : op.axis;
  if (axis < 0 || axis >= rank) return Status::ok();
  const size_t width = copy_width(y, y);
  if (width == 0) return Status::ok();
  for (int i = 0; i < ctx->num_inputs; ++i)
    if (copy_width(ctx->in(i), y) != width) return Status::ok();

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
    TQ_RETURN_IF_ERROR(
        copy_rows(ctx, width, slab, out_slab, outer, x.data, static_cast<uint8_t*>(y.data) + offset * width));
    offset += slab;
  }
  return Status::ok();
}

}  // namespace xnnpack
}  // namespace tinyquant
