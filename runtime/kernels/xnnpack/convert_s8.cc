// Quantize (float32 -> int8) as xnn_convert_nc_f32_qs8 and Dequantize (int8 -> float32) as
// xnn_convert_nc_qs8_f32, one row of the tensor's last dimension per batch item. The reference
// kernels (quantize_s8.cc there) use the same arithmetic — multiply by the float reciprocal of
// the scale, clamp to [qmin(bits), qmax(bits)], round half to even; float(q - z) * s — so finite
// inputs agree bit for bit. A NaN input may quantize differently (the reference maps it to qmin;
// XNNPACK's SIMD kernels to qmax).
#include "kernels/reference/common_s8.h"
#include "kernels/xnnpack/xnnpack_internal.h"

namespace tinyquant {
namespace xnnpack {

namespace {

size_t last_dim(const Dims& dims) { return dims.rank > 0 ? static_cast<size_t>(dims[dims.rank - 1]) : 1; }

}  // namespace

Status prepare_quantize(OpContext* ctx, bool* handled) {
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  if (!is_plain_f32(x) || !is_s8(y) || !scale_ok(y.quant->scale[0])) return Status::ok();
  if (x.elements() != y.elements()) return ctx->shape_mismatch("input and output sizes differ");

  const size_t channels = last_dim(x.dims);
  const int32_t bits = y.quant->bits;
  *handled = true;
  xnn_operator_t convert = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(
      xnn_create_convert_nc_f32_qs8(channels, channels, channels, y.quant->scale[0],
                                    static_cast<int8_t>(reference::zero_point(y)),
                                    static_cast<int8_t>(qmath::qmin(bits)), static_cast<int8_t>(qmath::qmax(bits)), 0,
                                    &convert),
      &convert, "xnn_create_convert_nc_f32_qs8"));
  return ctx->check(xnn_setup_convert_nc_f32_qs8(convert, x.elements() / channels, x.as<const float>(),
                                                 y.as<int8_t>(), ctx->threadpool),
                    "xnn_setup_convert_nc_f32_qs8");
}

Status prepare_dequantize(OpContext* ctx, bool* handled) {
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  if (!is_s8(x) || !is_plain_f32(y) || !scale_ok(x.quant->scale[0])) return Status::ok();
  if (x.elements() != y.elements()) return ctx->shape_mismatch("input and output sizes differ");

  const size_t channels = last_dim(x.dims);
  *handled = true;
  xnn_operator_t convert = nullptr;
  TQ_RETURN_IF_ERROR(ctx->record(
      xnn_create_convert_nc_qs8_f32(channels, channels, channels, x.quant->scale[0],
                                    static_cast<int8_t>(reference::zero_point(x)), 0, &convert),
      &convert, "xnn_create_convert_nc_qs8_f32"));
  return ctx->check(xnn_setup_convert_nc_qs8_f32(convert, x.elements() / channels, x.as<const int8_t>(),
                                                 y.as<float>(), ctx->threadpool),
                    "xnn_setup_convert_nc_qs8_f32");
}

}  // namespace xnnpack
}  // namespace tinyquant
