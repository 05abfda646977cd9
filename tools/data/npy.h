// data/npy.h — NumPy .npy files of float32 (version 1.0/2.0, little-endian '<f4', C order).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyquant/status.h"

namespace tinyquant {

struct NpyArray {
  std::vector<int32_t> shape;
  std::vector<float> data;
};

// Every header field is checked; the error names the file and what was expected.
Status read_npy(const std::string& path, NpyArray* out);
Status parse_npy(const uint8_t* bytes, size_t size, const std::string& name, NpyArray* out);
// Atomic write (temp file, fsync, rename).
Status write_npy(const std::string& path, const std::vector<int32_t>& shape, const float* data);

}  // namespace tinyquant
