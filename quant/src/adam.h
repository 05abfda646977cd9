// Internal to quant/: the Adam optimiser AdaQuant and bias tuning step their parameters with.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tinyquant {
namespace quant {

struct Adam {  // in float, as PyTorch's: the loop vectorises (double state cost ~3x on large layers)
  std::vector<float> m, v;
  void init(size_t n) {
    m.assign(n, 0.0f);
    v.assign(n, 0.0f);
  }
  // p[i] -= decay · lr[i] · m̂ / (sqrt(v̂) + eps), bias-corrected for step `step` (1-based).
  template <typename P, typename G>
  void update(P* p, const G* g, const float* lr, size_t n, int64_t step, double decay) {
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const float ic1 = static_cast<float>(1.0 / (1.0 - std::pow(0.9, double(step))));
    const float ic2 = static_cast<float>(1.0 / (1.0 - std::pow(0.999, double(step))));
    const float d = static_cast<float>(decay);
    float* __restrict__ mp = m.data();
    float* __restrict__ vp = v.data();
    for (size_t i = 0; i < n; ++i) {
      const float gi = static_cast<float>(g[i]);
      mp[i] = b1 * mp[i] + (1.0f - b1) * gi;
      vp[i] = b2 * vp[i] + (1.0f - b2) * gi * gi;
      p[i] = static_cast<P>(p[i] - d * lr[i] * (mp[i] * ic1) / (std::sqrt(vp[i] * ic2) + eps));
    }
  }
};

}  // namespace quant
}  // namespace tinyquant
