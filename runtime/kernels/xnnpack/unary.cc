// Float Unary ops that XNNPACK 2022-02 has an operator for: Sigmoid, HardSwish, LeakyRelu, Elu,
// Sqrt, Abs, Neg, and Pow with exponent 2 (square). The others (Tanh, Exp, Erf, Gelu, ...) and
// every int8 Unary (a 256-entry lookup) stay on the reference kernels. Sqrt, Abs, Neg, square and
// LeakyRelu round once per element and agree with the reference bit for bit; Sigmoid, HardSwish
// and Elu use XNNPACK's own approximations (within a few float ulps of tinyquant/unary.h).
#include "kernels/xnnpack/xnnpack_internal.h"

namespace tinyquant {
namespace xnnpack {

Status prepare_unary(OpContext* ctx, bool* handled) {
  const UnaryOptions& f = ctx->op.unary();
  const TensorView& x = ctx->in(0);
  const TensorView& y = ctx->output;
  if (ctx->num_inputs != 1 || !is_plain_f32(x) || !is_plain_f32(y)) return Status::ok();
  if (x.elements() != y.elements()) return ctx->shape_mismatch("input and output sizes differ");
  const size_t c = x.dims.rank > 0 ? static_cast<size_t>(x.dims[x.dims.rank - 1]) : 1;
  const size_t rows = static_cast<size_t>(x.elements()) / c;
  xnn_operator_t op = nullptr;
  xnn_status created;
  const char* name;
  switch (f.kind) {
    case UnaryKind::kSigmoid: created = xnn_create_sigmoid_nc_f32(c, c, c, 0, &op), name = "xnn_create_sigmoid_nc_f32"; break;
    case UnaryKind::kHardSwish:
      created = xnn_create_hardswish_nc_f32(c, c, c, 0, &op), name = "xnn_create_hardswish_nc_f32";
      break;
    case UnaryKind::kLeakyRelu:
      created = xnn_create_leaky_relu_nc_f32(c, c, c, f.alpha, 0, &op), name = "xnn_create_leaky_relu_nc_f32";
      break;
    case UnaryKind::kElu: created = xnn_create_elu_nc_f32(c, c, c, f.alpha, 0, &op), name = "xnn_create_elu_nc_f32"; break;
    case UnaryKind::kSqrt:
      created = xnn_create_square_root_nc_f32(c, c, c, 0, &op), name = "xnn_create_square_root_nc_f32";
      break;
    case UnaryKind::kAbs: created = xnn_create_abs_nc_f32(c, c, c, 0, &op), name = "xnn_create_abs_nc_f32"; break;
    case UnaryKind::kNeg: created = xnn_create_negate_nc_f32(c, c, c, 0, &op), name = "xnn_create_negate_nc_f32"; break;
    case UnaryKind::kPow:
      if (f.alpha != 2.0f) return Status::ok();
      created = xnn_create_square_nc_f32(c, c, c, 0, &op), name = "xnn_create_square_nc_f32";
      break;
    default: return Status::ok();
  }
  *handled = true;
  TQ_RETURN_IF_ERROR(ctx->record(created, &op, name));
  const float* in = x.as<const float>();
  float* out = y.as<float>();
  pthreadpool_t pool = ctx->threadpool;
  switch (f.kind) {
    case UnaryKind::kSigmoid: return ctx->check(xnn_setup_sigmoid_nc_f32(op, rows, in, out, pool), "xnn_setup_sigmoid_nc_f32");
    case UnaryKind::kHardSwish:
      return ctx->check(xnn_setup_hardswish_nc_f32(op, rows, in, out, pool), "xnn_setup_hardswish_nc_f32");
    case UnaryKind::kLeakyRelu:
      return ctx->check(xnn_setup_leaky_relu_nc_f32(op, rows, in, out, pool), "xnn_setup_leaky_relu_nc_f32");
    case UnaryKind::kElu: return ctx->check(xnn_setup_elu_nc_f32(op, rows, in, out, pool), "xnn_setup_elu_nc_f32");
    case UnaryKind::kSqrt:
      return ctx->check(xnn_setup_square_root_nc_f32(op, rows, in, out, pool), "xnn_setup_square_root_nc_f32");
    case UnaryKind::kAbs: return ctx->check(xnn_setup_abs_nc_f32(op, rows, in, out, pool), "xnn_setup_abs_nc_f32");
    case UnaryKind::kNeg: return ctx->check(xnn_setup_negate_nc_f32(op, rows, in, out, pool), "xnn_setup_negate_nc_f32");
    default: return ctx->check(xnn_setup_square_nc_f32(op, rows, in, out, pool), "xnn_setup_square_nc_f32");
  }
}

}  // namespace xnnpack
}  // namespace tinyquant
