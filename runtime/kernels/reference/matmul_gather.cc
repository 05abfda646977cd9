// The transformer ops: BatchMatMul (a product of two activations) and Gather (an embedding
// lookup), float32 and int8.
#include <cinttypes>
#include <cstring>

#include "common_s8.h"
#include "reference_kernels.h"

namespace tinyquant {
namespace reference {

namespace {
struct MatMulShape {
  int64_t batch = 1;
  int32_t m = 0, k = 0, n = 0;
};
MatMulShape matmul_shape(const TensorView& a, const TensorView& b) {
  MatMulShape s;
  const int r = a.dims.rank;
  for (int i = 0; i < r - 2; ++i) s.batch *= a.dims[i];
  s.m = a.dims[r - 2];
  s.k = a.dims[r - 1];
  s.n = b.dims[r - 1];
  return s;
}
}  // namespace

void batch_matmul_f32(const TensorView& a, const TensorView& b, const TensorView& out) {
  const MatMulShape s = matmul_shape(a, b);
  const float* pa = a.as<const float>();
  const float* pb = b.as<const float>();
  float* py = out.as<float>();
  for (int64_t i = 0; i < s.batch; ++i) {
    const float* ai = pa + i * s.m * s.k;
    const float* bi = pb + i * s.k * s.n;
    float* yi = py + i * s.m * s.n;
    for (int32_t r = 0; r < s.m; ++r) {
      float* yr = yi + int64_t(r) * s.n;
      for (int32_t c = 0; c < s.n; ++c) yr[c] = 0.0f;
      for (int32_t k = 0; k < s.k; ++k) {  // row r of A times B, accumulated along B's rows
        const float av = ai[int64_t(r) * s.k + k];
        const float* bk = bi + int64_t(k) * s.n;
        for (int32_t c = 0; c < s.n; ++c) yr[c] += av * bk[c];
      }
    }
  }
}

void batch_matmul_s8(const TensorView& a, const TensorView& b, const TensorView& out) {
  const MatMulShape s = matmul_shape(a, b);
  const int8_t* pa = a.as<const int8_t>();
  const int8_t* pb = b.as<const int8_t>();
  int8_t* py = out.as<int8_t>();
  const int32_t za = zero_point(a), zb = zero_point(b), zy = zero_point(out);
  const float scale = qmath::requant_scale(a.quant->scale[0], b.quant->scale[0], out.quant->scale[0]);
  const int32_t lo = qmath::qmin(out.quant->bits), hi = qmath::qmax(out.quant->bits);
  // sum_k (a - z_a)(b - z_b) = sum_k (a - z_a) b - z_b sum_k (a - z_a): B's rows are read in
  // order, accumulated into a row of int32 (columns in chunks of kChunk, on the stack).
  constexpr int32_t kChunk = 256;
  int32_t acc[kChunk];
  for (int64_t i = 0; i < s.batch; ++i) {
    const int8_t* ai = pa + i * s.m * s.k;
    const int8_t* bi = pb + i * s.k * s.n;
    int8_t* yi = py + i * s.m * s.n;
    for (int32_t r = 0; r < s.m; ++r) {
      const int8_t* ar = ai + int64_t(r) * s.k;
      int32_t asum = 0;
      for (int32_t k = 0; k < s.k; ++k) asum += int32_t(ar[k]) - za;
      for (int32_t c0 = 0; c0 < s.n; c0 += kChunk) {
        const int32_t nc = s.n - c0 < kChunk ? s.n - c0 : kChunk;
        for (int32_t c = 0; c < nc; ++c) acc[c] = 0;
        for (int32_t k = 0; k < s.k; ++k) {
          const int32_t av = int32_t(ar[k]) - za;
          const int8_t* bk = bi + int64_t(k) * s.n + c0;
          for (int32_t c = 0; c < nc; ++c) acc[c] += av * bk[c];
        }
        int8_t* yr = yi + int64_t(r) * s.n + c0;
        for (int32_t c = 0; c < nc; ++c)
          yr[c] = static_cast<int8_t>(qmath::requantize(acc[c] - zb * asum, scale, zy, lo, hi));
      }
    }
  }
}

Status gather(const char* op_name_str, const TensorView& indices, const TensorView& table, const TensorView& out) {
  const int64_t count = indices.elements();
  const int32_t rows = table.dims[0];
  const int64_t row = rows > 0 ? table.elements() / rows : 0;
  // Every index is checked before anything is written: a bad one leaves no partial output.
  auto index_at = [&](int64_t i, int32_t* r) {
    if (indices.dtype == DType::kInt32) {
      *r = indices.as<const int32_t>()[i];
      return *r >= 0 && *r < rows;
    }
    const float f = indices.as<const float>()[i];
    if (!(f >= 0.0f && f < static_cast<float>(rows)) || f != static_cast<float>(static_cast<int32_t>(f))) return false;
    *r = static_cast<int32_t>(f);
    return true;
  };
  int32_t r = 0;
  for (int64_t i = 0; i < count; ++i)
    if (!index_at(i, &r)) {
      const double v = indices.dtype == DType::kInt32 ? double(indices.as<const int32_t>()[i])
                                                      : double(indices.as<const float>()[i]);
      return Status::error(StatusCode::kInvalidArgument,
                           "Gather '%s': index %g at position %" PRId64 " is not an integer in [0, %" PRId32
                           ") (the table has %" PRId32 " rows)",
                           op_name_str, v, i, rows, rows);
    }
  if (table.dtype == DType::kInt8) {
    const int32_t bits = table.quant ? table.quant->bits : 8;
    const uint8_t* t = table.as<const uint8_t>();
    int8_t* y = out.as<int8_t>();
    for (int64_t i = 0; i < count; ++i) {
      index_at(i, &r);
      for (int64_t j = 0; j < row; ++j) y[i * row + j] = static_cast<int8_t>(qmath::unpack_weight(t, r * row + j, bits));
    }
  } else {
    const size_t bytes = static_cast<size_t>(row) * dtype_size(table.dtype);
    const uint8_t* t = table.as<const uint8_t>();
    uint8_t* y = out.as<uint8_t>();
    for (int64_t i = 0; i < count; ++i) {
      index_at(i, &r);
      std::memcpy(y + i * bytes, t + size_t(r) * bytes, bytes);
    }
  }
  return Status::ok();
}

}  // namespace reference
}  // namespace tinyquant
