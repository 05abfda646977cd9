// tinyquant/tensor_view.h — a tensor as kernels see it: dtype, concrete dims, a data pointer.
// Views never own memory. Activations point into the interpreter's arena; constants into the
// Graph's buffers (i.e. the model file, in place).
#pragma once

#include <cstdint>
#include <initializer_list>

#include "tinyquant/graph.h"

namespace tinyquant {

struct Dims {
  int32_t rank = 0;
  int32_t d[kMaxRank] = {0};

  int64_t elements() const { return shape_elements(d, rank); }
  int32_t operator[](int i) const { return d[i]; }
  bool operator==(const Dims& o) const {
    if (rank != o.rank) return false;
    for (int i = 0; i < rank; ++i)
      if (d[i] != o.d[i]) return false;
    return true;
  }
  bool operator!=(const Dims& o) const { return !(*this == o); }
  static Dims of(const std::vector<int32_t>& shape);
  static Dims of(const FlatVector<int32_t>& shape);
  static Dims of(std::initializer_list<int32_t> shape);
  const char* str(char* buf, size_t size) const { return shape_str(d, rank, buf, size); }
};

struct TensorView {
  DType dtype = DType::kFloat32;
  Dims dims;
  void* data = nullptr;
  const Quantization* quant = nullptr;  // nullptr or empty scale: float

  template <typename T>
  T* as() const { return static_cast<T*>(data); }
  int64_t elements() const { return dims.elements(); }
};

}  // namespace tinyquant
