#include "data/idx.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cstring>

namespace tinyquant {

namespace {

constexpr size_t kMaxIdxBytes = size_t(1) << 30;

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// gzread also reads uncompressed files transparently.
Status read_maybe_gz(const std::string& path, std::vector<uint8_t>* out) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return Status::error(StatusCode::kNotFound, "%s: cannot open", path.c_str());
  out->clear();
  uint8_t chunk[1 << 16];
  for (;;) {
    const int n = gzread(f, chunk, sizeof(chunk));
    if (n < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      Status s = Status::error(StatusCode::kIoError, "%s: read failed (%s)", path.c_str(), msg ? msg : "?");
      gzclose(f);
      return s;
    }
    if (n == 0) break;
    if (out->size() + static_cast<size_t>(n) > kMaxIdxBytes) {
      gzclose(f);
      return Status::error(StatusCode::kInvalidArgument, "%s: larger than %zu bytes uncompressed", path.c_str(),
                           kMaxIdxBytes);
    }
    out->insert(out->end(), chunk, chunk + n);
  }
  gzclose(f);
  return Status::ok();
}

uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

}  // namespace

Status read_idx_u8(const std::string& path, std::vector<int32_t>* dims, std::vector<uint8_t>* data) {
  std::vector<uint8_t> bytes;
  TQ_RETURN_IF_ERROR(read_maybe_gz(path, &bytes));
  TQ_ENSURE(bytes.size() >= 4, kInvalidArgument, "%s: %zu bytes is too short for an IDX header", path.c_str(),
            bytes.size());
  const uint32_t magic = be32(bytes.data());
  TQ_ENSURE((magic >> 16) == 0 && ((magic >> 8) & 0xFF) == 0x08, kInvalidArgument,
            "%s: not an IDX file of unsigned bytes (magic 0x%08x, expected 0x000008NN)", path.c_str(), magic);
  const uint32_t rank = magic & 0xFF;
  TQ_ENSURE(rank >= 1 && rank <= 4, kInvalidArgument, "%s: IDX rank %u, expected 1..4", path.c_str(), rank);
  const size_t header = 4 + 4 * size_t(rank);
  TQ_ENSURE(bytes.size() >= header, kInvalidArgument, "%s: truncated IDX header", path.c_str());
  dims->clear();
  uint64_t total = 1;
  for (uint32_t i = 0; i < rank; ++i) {
    const uint32_t d = be32(bytes.data() + 4 + 4 * i);
    TQ_ENSURE(d > 0 && d < (1u << 24), kInvalidArgument, "%s: IDX dimension %u is %u", path.c_str(), i, d);
    total *= d;
    TQ_ENSURE(total <= kMaxIdxBytes, kInvalidArgument, "%s: IDX data too large", path.c_str());
    dims->push_back(static_cast<int32_t>(d));
  }
  TQ_ENSURE(bytes.size() - header == total, kInvalidArgument,
            "%s: IDX header promises %llu bytes of data, file has %zu", path.c_str(),
            static_cast<unsigned long long>(total), bytes.size() - header);
  data->assign(bytes.begin() + static_cast<long>(header), bytes.end());
  return Status::ok();
}

Status load_fashion_mnist(const std::string& dir, const std::string& split, ImageDataset* out) {
  TQ_ENSURE(split == "train" || split == "test", kInvalidArgument, "unknown split '%s' (expected train or test)",
            split.c_str());
  const std::string prefix = dir + "/" + (split == "train" ? "train" : "t10k");
  auto find = [&](const char* kind, std::string* path) {
    for (const char* ext : {".gz", ""}) {
      *path = prefix + "-" + kind + "-ubyte" + ext;
      if (exists(*path)) return true;
    }
    return false;
  };
  std::string images_path, labels_path;
  TQ_ENSURE(find("images-idx3", &images_path), kNotFound,
            "Fashion-MNIST %s images not found: no %s-images-idx3-ubyte[.gz] in %s (install the Debian package "
            "dataset-fashion-mnist, or pass --data-dir)",
            split.c_str(), prefix.c_str(), dir.c_str());
  TQ_ENSURE(find("labels-idx1", &labels_path), kNotFound,
            "Fashion-MNIST %s labels not found: no %s-labels-idx1-ubyte[.gz] in %s", split.c_str(), prefix.c_str(),
            dir.c_str());
  std::vector<int32_t> idims, ldims;
  TQ_RETURN_IF_ERROR(read_idx_u8(images_path, &idims, &out->pixels));
  TQ_RETURN_IF_ERROR(read_idx_u8(labels_path, &ldims, &out->labels));
  TQ_ENSURE(idims.size() == 3, kInvalidArgument, "%s: images must be a rank-3 IDX (N x rows x cols), got rank %zu",
            images_path.c_str(), idims.size());
  TQ_ENSURE(ldims.size() == 1 && ldims[0] == idims[0], kInvalidArgument,
            "%s: %d labels for %d images in %s", labels_path.c_str(), ldims.empty() ? -1 : ldims[0], idims[0],
            images_path.c_str());
  for (size_t i = 0; i < out->labels.size(); ++i)
    TQ_ENSURE(out->labels[i] < 10, kInvalidArgument, "%s: label %zu is %u, expected 0..9", labels_path.c_str(), i,
              out->labels[i]);
  out->count = idims[0];
  out->rows = idims[1];
  out->cols = idims[2];
  return Status::ok();
}

void preprocess_images(const ImageDataset& ds, int32_t first, int32_t n, float mean, float std, float* out) {
  const size_t pixels = size_t(ds.rows) * ds.cols;
  const uint8_t* src = ds.pixels.data() + size_t(first) * pixels;
  // Same float32 arithmetic as examples/fashion_mnist/train.py: (p / 255 - mean) / std.
  for (size_t i = 0; i < size_t(n) * pixels; ++i) out[i] = (static_cast<float>(src[i]) / 255.0f - mean) / std;
}

}  // namespace tinyquant
