// FullyConnected on int8 activations and per-output-channel b-bit weights [O, I], read bit-packed
// in place. acc = bias[o] + sum_i (x[i] - z_in) * w[o][i];
// y = requantize(acc, requant_scale(s_in, s_w[o], s_out), z_out, lo, hi).
#include "common_s8.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

void fully_connected_s8(const FusedActivation& act, const TensorView& input, const TensorView& weights,
                        const TensorView* bias, const TensorView& output) {
  const int32_t out_features = weights.dims[0], in_features = weights.dims[1];
  const int64_t rows = input.elements() / in_features;
  const auto [x, w, w_bits, b, y, s_in, s_out, z_in, z_out, lo, hi] = weighted_s8(act, input, weights, bias, output);
  for (int64_t r = 0; r < rows; ++r)
    for (int32_t o = 0; o < out_features; ++o) {
      const int32_t acc = (b ? b[o] : 0) + dot_packed(x + r * in_features, z_in, w, int64_t(o) * in_features,
                                                      in_features, w_bits);
      const float scale = qmath::requant_scale(s_in, weights.quant->scale[o], s_out);
      y[r * out_features + o] = static_cast<int8_t>(qmath::requantize(acc, scale, z_out, lo, hi));
    }
}

}  // namespace reference
}  // namespace tinyquant
