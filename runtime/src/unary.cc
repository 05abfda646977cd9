#include "tinyquant/unary.h"

#include <cmath>

#include "tinyquant/op_info.h"
#include "tinyquant/qmath.h"

namespace tinyquant {

namespace {

// f for one kind, chosen at compile time: unary_apply picks it per element, unary_apply_n once
// per run, so the float kernel's loop has no switch in it.
template <UnaryKind K>
inline float apply_one(const UnaryOptions& f, float x) {
  if constexpr (K == UnaryKind::kSigmoid) return 1.0f / (1.0f + std::exp(-x));
  if constexpr (K == UnaryKind::kTanh) return std::tanh(x);
  if constexpr (K == UnaryKind::kHardSigmoid) return std::fmax(0.0f, std::fmin(1.0f, f.alpha * x + f.beta));
  if constexpr (K == UnaryKind::kHardSwish) return x * std::fmax(0.0f, std::fmin(1.0f, x * (1.0f / 6.0f) + 0.5f));
  if constexpr (K == UnaryKind::kLeakyRelu) return x >= 0.0f ? x : f.alpha * x;
  if constexpr (K == UnaryKind::kElu) return x >= 0.0f ? x : f.alpha * std::expm1(x);
  if constexpr (K == UnaryKind::kExp) return std::exp(x);
  if constexpr (K == UnaryKind::kLog) return std::log(x);
  if constexpr (K == UnaryKind::kSqrt) return std::sqrt(x);
  if constexpr (K == UnaryKind::kAbs) return std::fabs(x);
  if constexpr (K == UnaryKind::kNeg) return -x;
  if constexpr (K == UnaryKind::kErf) return std::erf(x);
  if constexpr (K == UnaryKind::kGelu) return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
  if constexpr (K == UnaryKind::kGeluTanh)
    return 0.5f * x * (1.0f + std::tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
  if constexpr (K == UnaryKind::kPow) return f.alpha == 2.0f ? x * x : std::pow(x, f.alpha);  // x * x: one rounding
  if constexpr (K == UnaryKind::kReciprocal) return 1.0f / x;
  if constexpr (K == UnaryKind::kSoftplus) return x > 20.0f ? x : std::log1p(std::exp(x));  // exp overflows past ~88
  return std::nanf("");
}

template <UnaryKind K>
void apply_run(const UnaryOptions& f, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = apply_one<K>(f, x[i]);
}

}  // namespace

#define TQ_FOR_EACH_UNARY(X)                                                                                      \
  X(kSigmoid) X(kTanh) X(kHardSigmoid) X(kHardSwish) X(kLeakyRelu) X(kElu) X(kExp) X(kLog) X(kSqrt) X(kAbs) X(kNeg) \
  X(kErf) X(kGelu) X(kGeluTanh) X(kPow) X(kReciprocal) X(kSoftplus)

float unary_apply(const UnaryOptions& f, float x) {
  switch (f.kind) {
#define TQ_CASE(k) \
  case UnaryKind::k: return apply_one<UnaryKind::k>(f, x);
    TQ_FOR_EACH_UNARY(TQ_CASE)
#undef TQ_CASE
    case UnaryKind::kCount: break;
  }
  return std::nanf("");
}

void unary_apply_n(const UnaryOptions& f, const float* x, float* y, int64_t n) {
  switch (f.kind) {
#define TQ_CASE(k)                               \
  case UnaryKind::k:                             \
    apply_run<UnaryKind::k>(f, x, y, n);         \
    return;
    TQ_FOR_EACH_UNARY(TQ_CASE)
#undef TQ_CASE
    case UnaryKind::kCount: break;
  }
  for (int64_t i = 0; i < n; ++i) y[i] = std::nanf("");
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
