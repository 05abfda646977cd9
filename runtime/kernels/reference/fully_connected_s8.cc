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
  const int8_t* x = input.as<const int8_t>();
  const uint8_t* w = weights.as<const uint8_t>();
  const int32_t w_bits = weights.quant->bits;
  const int32_t* b = bias && bias->data ? bias->as<const int32_t>() : nullptr;
  int8_t* y = output.as<int8_t>();
  const float s_in = input.quant->scale[0], s_out = output.quant->scale[0];
  const int32_t z_in = zero_point(input), z_out = zero_point(output);
  int32_t lo, hi;
  qmath::activation_bounds(act, output.quant->bits, s_out, z_out, &lo, &hi);
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
