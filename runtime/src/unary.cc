#include "tinyquant/unary.h"

#include <cmath>

#include "tinyquant/op_info.h"
#include "tinyquant/qmath.h"

namespace tinyquant {

float unary_apply(const UnaryOptions& f, float x) {
  switch (f.kind) {
    case UnaryKind::kSigmoid: return 1.0f / (1.0f + std::exp(-x));
    case UnaryKind::kTanh: return std::tanh(x);
    case UnaryKind::kHardSigmoid: return std::fmax(0.0f, std::fmin(1.0f, f.alpha * x + f.beta));
    case UnaryKind::kHardSwish: return x * std::fmax(0.0f, std::fmin(1.0f, x * (1.0f / 6.0f) + 0.5f));
    case UnaryKind::kLeakyRelu: return x >= 0.0f ? x : f.alpha * x;
    case UnaryKind::kElu: return x >= 0.0f ? x : f.alpha * std::expm1(x);
    case UnaryKind::kExp: return std::exp(x);
    case UnaryKind::kLog: return std::log(x);
    case UnaryKind::kSqrt: return std::sqrt(x);
    case UnaryKind::kAbs: return std::fabs(x);
    case UnaryKind::kNeg: return -x;
    case UnaryKind::kErf: return std::erf(x);
    case UnaryKind::kGelu: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case UnaryKind::kGeluTanh:
      return 0.5f * x * (1.0f + std::tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case UnaryKind::kPow: return f.alpha == 2.0f ? x * x : std::pow(x, f.alpha);  // x * x: one rounding
    case UnaryKind::kReciprocal: return 1.0f / x;
    case UnaryKind::kSoftplus: return x > 20.0f ? x : std::log1p(std::exp(x));  // exp overflows past ~88
    case UnaryKind::kCount: break;
  }
  return std::nanf("");
}

Status build_unary_table(const UnaryOptions& f, const Quantization& in, const Quantization& out, int8_t* table) {
  TQ_ENSURE(in.scale.size() == 1 && out.scale.size() == 1 && in.scale[0] > 0.0f && out.scale[0] > 0.0f &&
                std::isfinite(in.scale[0]) && std::isfinite(out.scale[0]),
            kInvalidArgument, "%s lookup table: input and output need one positive scale each",
            unary_kind_name(f.kind));
  const int32_t z_in = in.zero_point.empty() ? 0 : in.zero_point[0];
  const int32_t z_out = out.zero_point.empty() ? 0 : out.zero_point[0];
  const float inv_scale = 1.0f / out.scale[0];
  const float lo = static_cast<float>(qmath::qmin(out.bits) - z_out);
  const float hi = static_cast<float>(qmath::qmax(out.bits) - z_out);
  for (int32_t q = -128; q < 128; ++q) {
    const float y = unary_apply(f, static_cast<float>(q - z_in) * in.scale[0]);
    float v = y * inv_scale;  // as reference::quantize_s8 (NaN -> lo)
    v = v >= lo ? v : lo;
    v = v <= hi ? v : hi;
    table[q + 128] = static_cast<int8_t>(qmath::round_half_even(v) + z_out);
  }
  return Status::ok();
}

}  // namespace tinyquant
