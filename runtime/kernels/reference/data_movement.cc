#include <cstring>

#include "common.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

void copy(const TensorView& input, const TensorView& output) {
  if (input.data != output.data)
    std::memmove(output.data, input.data, static_cast<size_t>(input.elements()) * dtype_size(input.dtype));
}

void concat(int32_t axis, const TensorView* inputs, int count, const TensorView& output) {
  const size_t elem = dtype_size(output.dtype);
  int64_t outer = 1;
  for (int i = 0; i < axis; ++i) outer *= output.dims[i];
  int64_t inner = 1;  // elements after the axis
  for (int i = axis + 1; i < output.dims.rank; ++i) inner *= output.dims[i];
  const int64_t out_row = int64_t(output.dims[axis]) * inner * elem;
  uint8_t* out = output.as<uint8_t>();
  int64_t offset = 0;
  for (int k = 0; k < count; ++k) {
    const int64_t row = int64_t(inputs[k].dims[axis]) * inner * elem;
    const uint8_t* in = inputs[k].as<const uint8_t>();
    for (int64_t o = 0; o < outer; ++o) std::memcpy(out + o * out_row + offset, in + o * row, static_cast<size_t>(row));
    offset += row;
  }
}

void transpose(const int32_t* perm, const TensorView& input, const TensorView& output) {
  const int rank = input.dims.rank;
  const size_t elem = dtype_size(input.dtype);
  // Input strides (elements), then the stride each output dimension walks in the input.
  int64_t in_stride[kMaxRank];
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; --i) {
    in_stride[i] = s;
    s *= input.dims[i];
  }
  int64_t walk[kMaxRank];
  for (int i = 0; i < rank; ++i) walk[i] = in_stride[perm[i]];
  const uint8_t* in = input.as<const uint8_t>();
  uint8_t* out = output.as<uint8_t>();
  const int64_t total = output.elements();
  int32_t idx[kMaxRank] = {0};
  int64_t src = 0;
  for (int64_t i = 0; i < total; ++i) {
    std::memcpy(out + i * elem, in + src * elem, elem);
    for (int d = rank - 1; d >= 0; --d) {
      src += walk[d];
      if (++idx[d] < output.dims[d]) break;
      src -= walk[d] * output.dims[d];
      idx[d] = 0;
    }
  }
}

}  // namespace reference
}  // namespace tinyquant
