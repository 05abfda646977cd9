#include "data/image.h"

#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#if TQ_WITH_IMAGES
#include <jpeglib.h>
#include <png.h>
#endif

namespace tinyquant {

namespace {

bool has_suffix(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  if (s.size() < n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - n + i])) != suffix[i]) return false;
  return true;
}

#if TQ_WITH_IMAGES
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

constexpr int64_t kMaxPixels = int64_t{1} << 26;  // 64 Mpixel: beyond any input we resize from

// Decoders written C-style: libpng / libjpeg report errors by longjmp, so nothing with a
// destructor lives in these frames.
bool decode_png(std::FILE* f, Image* out, char* err, size_t err_size) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!png) return std::snprintf(err, err_size, "out of memory"), false;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return std::snprintf(err, err_size, "out of memory"), false;
  }
  png_bytep* volatile rows = nullptr;  // freed in the error handler: volatile across setjmp
  if (setjmp(png_jmpbuf(png))) {
    std::free(rows);
    png_destroy_read_struct(&png, &info, nullptr);
    return std::snprintf(err, err_size, "corrupt PNG data"), false;
  }
  png_init_io(png, f);
  png_read_info(png, info);
  const png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  if (w == 0 || h == 0 || int64_t(w) * h > kMaxPixels) {
    png_destroy_read_struct(&png, &info, nullptr);
    return std::snprintf(err, err_size, "PNG of %ux%u pixels is empty or too large", unsigned(w), unsigned(h)), false;
  }
  const int color = png_get_color_type(png, info);
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_packing(png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png), png_set_strip_alpha(png);
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  if (channels != 1 && channels != 3) {
    png_destroy_read_struct(&png, &info, nullptr);
    return std::snprintf(err, err_size, "PNG with %d channels after conversion", channels), false;
  }
  out->width = static_cast<int32_t>(w);
  out->height = static_cast<int32_t>(h);
  out->channels = channels;
  out->pixels.resize(size_t(w) * h * channels);
  rows = static_cast<png_bytep*>(std::malloc(sizeof(png_bytep) * h));
  for (png_uint_32 y = 0; y < h; ++y) rows[y] = out->pixels.data() + size_t(y) * w * channels;
  png_read_image(png, rows);
  std::free(rows);
  rows = nullptr;
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  JpegError* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

bool decode_jpeg(std::FILE* f, Image* out, char* err, size_t err_size) {
  jpeg_decompress_struct cinfo;
  JpegError jerr;
  cinfo.err = jpeg_std_error(&jerr.mgr);
  jerr.mgr.error_exit = jpeg_error_exit;
  jerr.mgr.output_message = [](j_common_ptr) {};  // warnings: not to stderr
  if (setjmp(jerr.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return std::snprintf(err, err_size, "corrupt JPEG data (%s)", jerr.message), false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f);
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const int64_t w = cinfo.output_width, h = cinfo.output_height, c = cinfo.output_components;
  if (w == 0 || h == 0 || w * h > kMaxPixels || (c != 1 && c != 3)) {
    jpeg_destroy_decompress(&cinfo);
    return std::snprintf(err, err_size, "JPEG of %lldx%lld x %lld channels is not supported", static_cast<long long>(w),
                         static_cast<long long>(h), static_cast<long long>(c)),
           false;
  }
  out->width = static_cast<int32_t>(w);
  out->height = static_cast<int32_t>(h);
  out->channels = static_cast<int32_t>(c);
  out->pixels.resize(size_t(w * h * c));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->pixels.data() + size_t(cinfo.output_scanline) * w * c;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}
#endif

}  // namespace

bool image_support_available() {
#if TQ_WITH_IMAGES
  return true;
#else
  return false;
#endif
}

Status read_image(const std::string& path, Image* out) {
#if TQ_WITH_IMAGES
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) return Status::error(StatusCode::kNotFound, "%s: cannot open", path.c_str());
  unsigned char magic[8] = {0};
  const size_t got = std::fread(magic, 1, sizeof(magic), f.get());
  std::rewind(f.get());
  char err[256] = "";
  Image img;
  bool ok;
  if (got >= 8 && png_sig_cmp(magic, 0, 8) == 0)
    ok = decode_png(f.get(), &img, err, sizeof(err));
  else if (got >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff)
    ok = decode_jpeg(f.get(), &img, err, sizeof(err));
  else
    return Status::error(StatusCode::kInvalidArgument, "%s: not a PNG or JPEG file", path.c_str());
  if (!ok) return Status::error(StatusCode::kInvalidArgument, "%s: %s", path.c_str(), err);
  *out = std::move(img);
  return Status::ok();
#else
  (void)out;
  return Status::error(StatusCode::kUnsupported, "%s: this build has no image decoder (libpng / libjpeg)",
                       path.c_str());
#endif
}

Status load_image_folder(const std::string& dir, const std::vector<int32_t>& input_shape,
                         const ImageBatchOptions& options, NpyArray* out, std::vector<std::string>* names) {
  TQ_ENSURE(input_shape.size() == 4, kInvalidArgument,
            "images need a 4-D model input ([N,C,H,W] or [N,H,W,C]); this one has rank %zu", input_shape.size());
  const bool nchw = input_shape[1] == 1 || input_shape[1] == 3;
  const bool nhwc = input_shape[3] == 1 || input_shape[3] == 3;
  TQ_ENSURE(nchw || nhwc, kInvalidArgument, "images need 1 or 3 channels in dim 1 or 3 of the model input");
  const int32_t c = nchw ? input_shape[1] : input_shape[3];
  const int32_t h = nchw ? input_shape[2] : input_shape[1], w = nchw ? input_shape[3] : input_shape[2];
  TQ_ENSURE(h > 0 && w > 0, kInvalidArgument, "the model input's height and width must be fixed (bind them with "
            "--input-shape)");
  for (const std::vector<float>* v : {&options.mean, &options.std})
    TQ_ENSURE(v->size() == 1 || static_cast<int32_t>(v->size()) == c, kInvalidArgument,
              "--pixel-mean / --pixel-std: give 1 or %d values (one per channel)", c);
  for (float s : options.std) TQ_ENSURE(s > 0.0f, kInvalidArgument, "--pixel-std %g must be > 0", s);
  std::vector<std::string> files;
  DIR* d = opendir(dir.c_str());
  if (!d) return Status::error(StatusCode::kNotFound, "%s: cannot open the image folder", dir.c_str());
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (has_suffix(name, ".png") || has_suffix(name, ".jpg") || has_suffix(name, ".jpeg")) files.push_back(name);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  if (options.limit > 0 && static_cast<int32_t>(files.size()) > options.limit) files.resize(options.limit);
  TQ_ENSURE(!files.empty(), kInvalidArgument, "%s: no .png / .jpg / .jpeg files", dir.c_str());
  NpyArray a;
  a.shape = input_shape;
  a.shape[0] = static_cast<int32_t>(files.size());
  a.data.resize(files.size() * size_t(h) * w * c);
  for (size_t n = 0; n < files.size(); ++n) {
    Image img;
    TQ_RETURN_IF_ERROR(read_image(dir + "/" + files[n], &img));
    for (int32_t y = 0; y < h; ++y) {
      const float sy = std::min(std::max((y + 0.5f) * img.height / h - 0.5f, 0.0f), float(img.height - 1));
      const int32_t y0 = static_cast<int32_t>(sy), y1 = std::min(y0 + 1, img.height - 1);
      for (int32_t x = 0; x < w; ++x) {
        const float sx = std::min(std::max((x + 0.5f) * img.width / w - 0.5f, 0.0f), float(img.width - 1));
        const int32_t x0 = static_cast<int32_t>(sx), x1 = std::min(x0 + 1, img.width - 1);
        const float dy = sy - y0, dx = sx - x0;
        float rgb[3];
        for (int32_t k = 0; k < img.channels; ++k) {
          auto px = [&](int32_t yy, int32_t xx) { return float(img.pixels[(size_t(yy) * img.width + xx) * img.channels + k]); };
          const float top = px(y0, x0) + (px(y0, x1) - px(y0, x0)) * dx;
          const float bottom = px(y1, x0) + (px(y1, x1) - px(y1, x0)) * dx;
          rgb[k] = top + (bottom - top) * dy;
        }
        for (int32_t k = img.channels; k < 3; ++k) rgb[k] = rgb[0];  // gray -> RGB
        for (int32_t k = 0; k < c; ++k) {
          const float v = c == 1 && img.channels == 3 ? 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2] : rgb[k];
          const float m = options.mean[options.mean.size() == 1 ? 0 : k];
          const float s = options.std[options.std.size() == 1 ? 0 : k];
          const size_t i = nchw ? ((n * c + k) * h + y) * size_t(w) + x : ((n * h + y) * size_t(w) + x) * c + k;
          a.data[i] = (v / 255.0f - m) / s;
        }
      }
    }
  }
  *out = std::move(a);
  if (names) *names = std::move(files);
  return Status::ok();
}

}  // namespace tinyquant
