#include "common.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

namespace {

// Walks the output in row-major order over (up to) kMaxRank dims, with broadcast strides for
// both inputs. Padded to kMaxRank so the loop nest is fixed and allocation-free.
template <typename F>
void broadcast_binary(const TensorView& a, const TensorView& b, const TensorView& out, F f) {
  const float* pa = a.as<const float>();
  const float* pb = b.as<const float>();
  float* po = out.as<float>();
  const int64_t total = out.elements();
  if (a.dims == out.dims && b.dims == out.dims) {  // common fast path: same shapes
    for (int64_t i = 0; i < total; ++i) po[i] = f(pa[i], pb[i]);
    return;
  }
  int32_t sa[kMaxRank], sb[kMaxRank];
  broadcast_strides(a.dims, out.dims, sa);
  broadcast_strides(b.dims, out.dims, sb);
  int32_t idx[kMaxRank] = {0};
  int64_t oa = 0, ob = 0;
  const int rank = out.dims.rank;
  for (int64_t i = 0; i < total; ++i) {
    po[i] = f(pa[oa], pb[ob]);
    for (int d = rank - 1; d >= 0; --d) {  // odometer increment
      oa += sa[d];
      ob += sb[d];
      if (++idx[d] < out.dims[d]) break;
      oa -= int64_t(sa[d]) * out.dims[d];
      ob -= int64_t(sb[d]) * out.dims[d];
      idx[d] = 0;
    }
  }
}

}  // namespace

void add_f32(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out) {
  broadcast_binary(a, b, out, [&](float x, float y) { return apply_activation(x + y, act); });
}

void mul_f32(const FusedActivation& act, const TensorView& a, const TensorView& b, const TensorView& out) {
  broadcast_binary(a, b, out, [&](float x, float y) { return apply_activation(x * y, act); });
}

void clamp_f32(float min, float max, const TensorView& input, const TensorView& output) {
  const float* x = input.as<const float>();
  float* y = output.as<float>();
  const int64_t n = input.elements();
  for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i], min), max);
}

}  // namespace reference
}  // namespace tinyquant
