// Concat on int8 tensors whose quantization differs from the output's: each such input is
// requantized, q_out = requantize(q - z_in, s_in / s_out, z_out, qmin(bits_out), qmax(bits_out));
// inputs that already share the output's scale and zero point are copied as bytes.
#include <cstring>

#include "common_s8.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

void concat_s8(int32_t axis, const TensorView* inputs, int count, const TensorView& output) {
  int64_t outer = 1;
  for (int i = 0; i < axis; ++i) outer *= output.dims[i];
  int64_t inner = 1;
  for (int i = axis + 1; i < output.dims.rank; ++i) inner *= output.dims[i];
  const int64_t out_row = int64_t(output.dims[axis]) * inner;
  const float s_out = output.quant->scale[0];
  const int32_t z_out = zero_point(output);
  const int32_t lo = qmath::qmin(output.quant->bits), hi = qmath::qmax(output.quant->bits);
  int8_t* out = output.as<int8_t>();
  int64_t offset = 0;
  for (int k = 0; k < count; ++k) {
    const int64_t row = int64_t(inputs[k].dims[axis]) * inner;
    const int8_t* in = inputs[k].as<const int8_t>();
    if (same_quantization(inputs[k], output)) {
      for (int64_t o = 0; o < outer; ++o) std::memcpy(out + o * out_row + offset, in + o * row, static_cast<size_t>(row));
    } else {
      const float scale = inputs[k].quant->scale[0] / s_out;
      const int32_t z_in = zero_point(inputs[k]);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < row; ++i)
          out[o * out_row + offset + i] =
              static_cast<int8_t>(qmath::requantize(int32_t(in[o * row + i]) - z_in, scale, z_out, lo, hi));
    }
    offset += row;
  }
}

}  // namespace reference
}  // namespace tinyquant
