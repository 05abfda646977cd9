// Softmax on int8 along the last axis. Debian's XNNPACK 0.0~git20220216 has no QS8 softmax; we
// follow its QU8 operator (xnn_create_softmax_nc_qu8 + u8 rmax + xnn_u8_lut32norm_ukernel__scalar)
// on x + 128, which only sees differences x - max, and shift the uint8 result by -128. The output
// is fixed at scale 1/256, zero point -128, 8 bits (the QU8 operator's 1/256, 0):
//   qscale = min(UINT32_MAX / channels, 8388607.0)                                  (double)
//   t(x)   = (uint32) lrint(qscale * exp((double)(x - max) * (double)(beta * s_in)))
//   sum    = sum over the row of t(x)                                              (uint32)
//   y      = min(255, ((t(x) << 8) + sum / 2) / sum) - 128                         (uint32 division)
// XNNPACK's operator has no beta: with beta = 1 it is (double) s_in, exactly the QU8 table.
// On a microcontroller the table entry is recomputed per element (no 1 KB table on its stack).
#include <cmath>

#include "common_s8.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

bool softmax_s8_output_supported(const TensorView& output) {
  return output.quant && output.quant->bits == 8 && output.quant->scale.size() == 1 &&
         output.quant->scale[0] == 0x1.0p-8f && zero_point(output) == -128;
}

void softmax_s8(float beta, const TensorView& input, const TensorView& output) {
  const int32_t channels = input.dims[input.dims.rank - 1];
  const int64_t rows = channels > 0 ? input.elements() / channels : 0;
  const double qscale = std::fmin(double(UINT32_MAX) / double(channels), 8388607.0);
  const double s = double(beta * input.quant->scale[0]);
  const int8_t* x = input.as<const int8_t>();
  int8_t* y = output.as<int8_t>();
  // t depends on x - max only (256 values): off a microcontroller (whose stack the 1 KB would
  // strain) the values are computed once per call into a table when the tensor has more
  // elements than the table; the same lrint(exp) either way, so the same bits.
  auto exact = [&](int32_t d) { return static_cast<uint32_t>(std::lrint(qscale * std::exp(double(-d) * s))); };
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
  auto t_of = exact;
#else
  uint32_t table[256];
  const bool tabulate = int64_t(rows) * channels > 256;
  if (tabulate)
    for (int32_t d = 0; d < 256; ++d) table[d] = exact(d);
  auto t_of = [&](int32_t d) { return tabulate ? table[d] : exact(d); };
#endif
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t* xr = x + r * channels;
    int8_t* yr = y + r * channels;
    int32_t x_max = -128;
    for (int32_t c = 0; c < channels; ++c) x_max = std::max<int32_t>(x_max, xr[c]);
    uint32_t sum = 0;
    for (int32_t c = 0; c < channels; ++c) sum += t_of(x_max - xr[c]);
    const uint32_t rounding = sum >> 1;
    for (int32_t c = 0; c < channels; ++c) {
      const uint32_t q = ((t_of(x_max - xr[c]) << 8) + rounding) / sum;
      yr[c] = static_cast<int8_t>(int32_t(q > 255 ? 255 : q) - 128);
    }
  }
}

}  // namespace reference
}  // namespace tinyquant
