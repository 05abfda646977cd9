// data/idx.h — Fashion-MNIST (IDX format) and the preprocessing every tinyquant tool applies.
//
// Files: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in one directory (Debian's
// dataset-fashion-mnist: /usr/share/datasets/fashion-mnist). Every header field is checked
// (magic, dims, sizes against the file length, labels 0..9, image/label counts equal).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyquant/status.h"

namespace tinyquant {

constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";
constexpr float kFashionMnistMean = 0.2860f;
constexpr float kFashionMnistStd = 0.3530f;

struct ImageDataset {
  int32_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count x rows x cols
  std::vector<uint8_t> labels;  // count, 0..9
};

// split: "train" or "test".
Status load_fashion_mnist(const std::string& dir, const std::string& split, ImageDataset* out);

// Images [first, first+n) as float32 NCHW [n,1,rows,cols]: (pixel / 255 - mean) / std.
void preprocess_images(const ImageDataset& ds, int32_t first, int32_t n, float mean, float std, float* out);

// Reads an IDX file (gzip or raw) holding uint8 data; dims are returned as stored.
Status read_idx_u8(const std::string& path, std::vector<int32_t>* dims, std::vector<uint8_t>* data);

}  // namespace tinyquant
