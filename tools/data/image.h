// data/image.h — a folder of PNG / JPEG images as a model input batch (tq eval --data images:DIR).
// Host builds with libpng and libjpeg (Debian libpng-dev, libjpeg-dev); without them the loader
// says so. Every file is decoded with the library's errors caught: a corrupt image is an error
// naming the file, never a crash.
#pragma once

#include <string>
#include <vector>

#include "data/npy.h"
#include "tinyquant/status.h"

namespace tinyquant {

struct Image {
  int32_t width = 0, height = 0, channels = 0;  // channels 1 (gray) or 3 (RGB)
  std::vector<uint8_t> pixels;                  // row-major, interleaved
};

bool image_support_available();
// PNG (8/16-bit gray, gray+alpha, RGB, RGBA, palette) or baseline/progressive JPEG, by content.
Status read_image(const std::string& path, Image* out);

struct ImageBatchOptions {
  std::vector<float> mean = {0.0f};  // per channel (one value: every channel), on pixel / 255
  std::vector<float> std = {1.0f};
  int32_t limit = 0;                 // 0: every image
};
// Every .png / .jpg / .jpeg file of `dir` (sorted by name), converted to the model input's
// channels (gray <-> RGB), resized bilinearly (half-pixel centres) to its H x W and normalised
// (pixel / 255 - mean[c]) / std[c], laid out as `input_shape` says: [N,C,H,W] or [N,H,W,C] with
// C = 1 or 3. *names gets the file names in batch order.
Status load_image_folder(const std::string& dir, const std::vector<int32_t>& input_shape,
                         const ImageBatchOptions& options, NpyArray* out, std::vector<std::string>* names);

}  // namespace tinyquant
