// Image folders (tq eval --data images:DIR): PNG / JPEG decoding, channel conversion, resizing and
// normalisation, and corrupt files reported by name. The images are written by Debian's Pillow.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include "data/image.h"
#include "tools/cli_util.h"

using namespace tinyquant;
using namespace tinyquant::testing;

TEST_CASE("images: a folder of PNG and JPEG files becomes a normalised batch; corrupt files are errors") {
  const std::string dir = temp_dir("tq_images");
  if (!image_support_available()) {
    Image img;
    const Status s = read_image(dir + "/x.png", &img);
    CHECK_FALSE(s.is_ok());
    CHECK(std::string(s.message()).find("no image decoder") != std::string::npos);
    return;
  }
  const std::string script = dir + "/make.py";
  std::ofstream(script) << "import sys\nfrom PIL import Image\nd = sys.argv[1]\n"
                           "Image.new('RGB', (8, 6), (255, 0, 51)).save(d + '/a_red.png')\n"
                           "Image.new('L', (5, 5), 128).save(d + '/b_gray.png')\n"
                           "Image.new('RGB', (16, 16), (0, 255, 0)).save(d + '/c_green.jpg', quality=95)\n"
                           "open(d + '/notes.txt', 'w').write('not an image')\n";
  const int rc = std::system(("/usr/bin/python3 " + script + " " + dir).c_str());
  REQUIRE((WIFEXITED(rc) && WEXITSTATUS(rc) == 0));

  Image img;
  REQUIRE(read_image(dir + "/a_red.png", &img).is_ok());
  CHECK(img.width == 8);
  CHECK(img.height == 6);
  CHECK(img.channels == 3);
  CHECK(int(img.pixels[0]) == 255);
  CHECK(int(img.pixels[2]) == 51);

  ImageBatchOptions opt;
  opt.mean = {0.5f, 0.5f, 0.5f};
  opt.std = {0.5f, 0.25f, 0.5f};
  NpyArray x;
  std::vector<std::string> names;
  REQUIRE(load_image_folder(dir, {1, 3, 4, 4}, opt, &x, &names).is_ok());
  CHECK(names == std::vector<std::string>{"a_red.png", "b_gray.png", "c_green.jpg"});  // notes.txt skipped
  CHECK(x.shape == std::vector<int32_t>{3, 3, 4, 4});
  // red (255, 0, 51): ((255/255 - 0.5) / 0.5, (0 - 0.5) / 0.25, (51/255 - 0.5) / 0.5) at every pixel (NCHW)
  CHECK(x.data[0] == doctest::Approx(1.0f));
  CHECK(x.data[16] == doctest::Approx(-2.0f));
  CHECK(x.data[32 + 5] == doctest::Approx((51.0f / 255 - 0.5f) / 0.5f));
  // gray 128 replicated to RGB
  CHECK(x.data[48] == doctest::Approx((128.0f / 255 - 0.5f) / 0.5f));
  CHECK(x.data[48 + 16] == doctest::Approx((128.0f / 255 - 0.5f) / 0.25f));
  // JPEG green, within compression error
  CHECK(std::fabs(x.data[96 + 16] - (1.0f - 0.5f) / 0.25f) < 0.1f);
  // NHWC, one channel: RGB becomes luminance
  ImageBatchOptions gray;
  REQUIRE(load_image_folder(dir, {1, 2, 2, 1}, gray, &x, nullptr).is_ok());
  CHECK(x.shape == std::vector<int32_t>{3, 2, 2, 1});
  CHECK(x.data[0] == doctest::Approx((0.299f * 255 + 0.114f * 51) / 255).epsilon(1e-4));

  // Corrupt and truncated files name the file; nothing crashes.
  std::ofstream(dir + "/d_bad.png", std::ios::binary) << "\x89PNG\r\n\x1a\n garbage that is not a PNG";
  std::ifstream full(dir + "/c_green.jpg", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(full)), std::istreambuf_iterator<char>());
  std::ofstream(dir + "/e_cut.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  for (const char* bad : {"d_bad.png", "e_cut.jpg"}) {
    CAPTURE(bad);
    const Status s = read_image(dir + "/" + bad, &img);
    if (std::string(bad) == "e_cut.jpg" && s.is_ok()) continue;  // libjpeg may pad a cut scan with grey
    CHECK_FALSE(s.is_ok());
    CHECK(std::string(s.message()).find(bad) != std::string::npos);
  }
  const Status folder = load_image_folder(dir, {1, 3, 4, 4}, opt, &x, nullptr);
  CHECK_FALSE(folder.is_ok());
  CHECK(std::string(folder.message()).find("d_bad.png") != std::string::npos);
  CHECK_FALSE(load_image_folder(dir + "/nowhere", {1, 3, 4, 4}, opt, &x, nullptr).is_ok());
  CHECK_FALSE(load_image_folder(dir, {1, 5, 4, 4}, opt, &x, nullptr).is_ok());  // 5 channels
  opt.mean = {0.1f, 0.2f};
  CHECK_FALSE(load_image_folder(dir, {1, 3, 4, 4}, opt, &x, nullptr).is_ok());  // 2 means for 3 channels
}
