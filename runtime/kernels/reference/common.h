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

}  // namespace reference
}  // namespace tinyquant
