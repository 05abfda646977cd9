// Helpers shared by the reference kernels (header-only, no state).
#pragma once

#include <algorithm>

#include "tinyquant/graph.h"
#include "tinyquant/tensor_view.h"

namespace tinyquant {
namespace reference {

inline float apply_activation(float v, const FusedActivation& act) {
  return std::min(std::max(v, act.min), act.max);
}

// Shapes right-aligned to `rank` (missing leading dims = 1) and the matching element strides,
// with stride 0 along broadcast dimensions.
inline void broadcast_strides(const Dims& in, const Dims& out, int32_t* strides) {
  const int offset = out.rank - in.rank;
  int64_t stride = 1;
  for (int i = out.rank - 1; i >= 0; --i) {
    const int j = i - offset;
    const int32_t d = j >= 0 ? in[j] : 1;
    strides[i] = d == 1 ? 0 : static_cast<int32_t>(stride);
    stride *= d;
  }
}

// out[i] = f(a[..], b[..]) over the output in row-major order, NumPy broadcasting, for element
// type T (float or int8; f's result is cast to T). Walks up to kMaxRank dims with an odometer of
// broadcast strides: allocation-free, same code for every dtype.
template <typename T, typename F>
void broadcast_binary(const TensorView& a, const TensorView& b, const TensorView& out, F f) {
  const T* pa = a.as<const T>();
  const T* pb = b.as<const T>();
  T* po = out.as<T>();
  const int64_t total = out.elements();
  if (a.dims == out.dims && b.dims == out.dims) {  // common fast path: same shapes
    for (int64_t i = 0; i < total; ++i) po[i] = static_cast<T>(f(pa[i], pb[i]));
    return;
  }
  int32_t sa[kMaxRank], sb[kMaxRank];
  broadcast_strides(a.dims, out.dims, sa);
  broadcast_strides(b.dims, out.dims, sb);
  int32_t idx[kMaxRank] = {0};
  int64_t oa = 0, ob = 0;
  const int rank = out.dims.rank;
  for (int64_t i = 0; i < total; ++i) {
    po[i] = static_cast<T>(f(pa[oa], pb[ob]));
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

}  // namespace reference
}  // namespace tinyquant
