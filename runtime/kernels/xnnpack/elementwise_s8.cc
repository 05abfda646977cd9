// Add and Mul on int8 activations as xnn_{add,multiply}_nd_qs8 (NumPy broadcasting), Clamp as
// xnn_clamp_nc_s8. The reference int8 kernels (elementwise_s8.cc there) are written to these
// operators' arithmetic — Add's fixed-point multipliers, Mul's fp32 requantization — so both
// backends agree bit for bit.
//
// Mul on ARM stays on the reference kernel: there this XNNPACK picks the fixed-point "rndnu" QS8
// multiply kernels (round to nearest, ties up, after a 32-bit doubling multiply) instead of fp32
// requantization, which differs from the contract by one level on a few elements in a thousand
// (tests/xnnpack/ops_s8_test.cc under qemu-aarch64). Bit-exactness across targets wins over speed.
//
// Stays on the reference kernel: scale ratios XNNPACK rejects (Add: s_a / s_out or s_b / s_out
// outside [2^-10, 2^8), which the reference rejects too; Mul: s_a * s_b / s_out outside
// [2^-16, 2^8)) and an output range of one level.
#include "kernels/reference/common_s8.h"
#include "kernels/reference/reference_kernels.h"
#include "kernels/xnnpack/xnnpack_internal.h"

namespace tinyquant {
namespace xnnpack {

Status prepare_binary_s8(OpContext* ctx, bool* handled) {
  if (ctx->num_inputs != 2) return Status::ok();
  const Operator& op = ctx->op;
  const TensorView& a = ctx->in(0);
  const TensorView& b = ctx->in(1);
  const TensorView& y = ctx->output;
  if (!is_s8(a) || !is_s8(b) || !is_s8(y)) return Status::ok();
  size_t a_shape[XNN_MAX_TENSOR_DIMS], b_shape[XNN_MAX_TENSOR_DIMS];
  bool supported = false;
  TQ_RETURN_IF_ERROR(broadcast_shapes(ctx, a_shape, b_shape, &supported));
  int8_t lo, hi;
  if (!supported || !s8_output_bounds(op.activation, y, &lo, &hi)) return Status::ok();
  const float s_a = a.quant->scale[0], s_b = b.quant->scale[0], s_y = y.quant->scale[0];
  if (!scale_ok(s_a) || !scale_ok(s_b) || !scale_ok(s_y)) return Status::ok();
  const int8_t z_a = static_cast<int8_t>(reference::zero_point(a)), z_b = static_cast<int8_t>(reference::zero_point(b));
  const int8_t z_y = static_cast<int8_t>(reference::zero_point(y));

  xnn_operator_t binary = nullptr;
  if (op.type == OpType::kAdd) {
    if (!reference::add_s8_scales_supported(s_a, s_b, s_y)) return Status::ok();
    *handled = true;
    TQ_RETURN_IF_ERROR(
        ctx->record(xnn_create_add_nd_qs8(z_a, s_a, z_b, s_b, z_y, s_y, lo, hi, 0, &binary), &binary,
                    "xnn_create_add_nd_qs8"));
    return ctx->check(xnn_setup_add_nd_qs8(binary, a.dims.rank, a_shape, b.dims.rank, b_shape, a.as<const int8_t>(),
                                           b.as<const int8_t>(), y.as<int8_t>(), ctx->threadpool),
                      "xnn_setup_add_nd_qs8");
  }
#if defined(__arm__) || defined(__aarch64__)
  return Status::ok();
#endif
  const float product_scale = qmath::requant_scale(s_a, s_b, s_y);
  if (!(product_scale >= 0x1.0p-16f && product_scale < 0x1.0p+8f)) return Status::ok();
  *handled = true;
  TQ_RETURN_IF_ERROR(ctx->record(xnn_create_multiply_nd_qs8(z_a, s_a, z_b, s_b, z_y, s_y, lo, hi, 0, &binary),
                                 &binary, "xnn_create_multiply_nd_qs8"));
  return ctx->check(xnn_setup_multiply_nd_qs8(binary, a.dims.rank, a_shape, b.dims.rank, b_shape,
                                              a.as<const int8_t>(), b.as<const int8_t>(), y.as<int8_t>(),
                                              ctx->threadpool),
                    "xnn_setup_multiply_nd_qs8");
}

// Input and output share scale and zero point (checked by infer_shapes), so the clamp is on the
// int8 values themselves.
Status prepare_clamp_s8(OpContext* ctx, bool* handled) {
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  if (!is_s8(x) || !is_s8(y) || !reference::same_quantization(x, y)) return Status::ok();
  if (x.elements() != y.elements()) return ctx->shape_mismatch("input and output sizes differ");
  int8_t lo, hi;
  if (!s8_output_bounds(ctx->op.activation, y, &lo, &hi)) return Status::ok();

  const size_t channels = x.dims.rank > 0 ? static_cast<size_t>(x.dims[x.dims.rank - 1]) : 1;
  *handled = true;
  xnn_operator_t clamp = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(xnn_create_clamp_nc_s8(channels, channels, channels, lo, hi, 0, &clamp), &clamp,
                                 "xnn_create_clamp_nc_s8"));
  return ctx->check(
      xnn_setup_clamp_nc_s8(clamp, x.elements() / channels, x.as<const int8_t>(), y.as<int8_t>(), ctx->threadpool),
      "xnn_setup_clamp_nc_s8");
}

}  // namespace xnnpack
}  // namespace tinyquant
