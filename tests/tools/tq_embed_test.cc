// tq embed (model + images as a C++ source for examples/mcu_inference) and tq eval's output checksum.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "tools/cli_util.h"
#include "toolkit/toolkit.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

const std::string kLenetOnnx = std::string(TQ_MODELS_DIR) + "/lenet.onnx";

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string json_field(const std::string& json, const char* key) {
  const std::string k = std::string("\"") + key + "\": ";
  const size_t p = json.find(k);
  if (p == std::string::npos) return "";
  const size_t end = json.find_first_of(",}", p + k.size());
  return json.substr(p + k.size(), end - p - k.size());
}

// A .tqm of the bundled lenet (imported once per test binary run).
const std::string& lenet_tqm() {
  static std::string path;
  if (path.empty()) {
    const std::string dir = temp_dir("tq_embed");
    Run imp = tq("import " + kLenetOnnx + " -o " + dir + "/lenet.tqm");
    REQUIRE_MESSAGE(imp.code == 0, imp.out);
    path = dir + "/lenet.tqm";
  }
  return path;
}

}  // namespace

TEST_CASE("fnv1a64 matches the published FNV-1a 64-bit test vectors") {
  CHECK(fnv1a64(kFnv1a64Offset, "", 0) == 0xcbf29ce484222325ull);
  CHECK(fnv1a64(kFnv1a64Offset, "a", 1) == 0xaf63dc4c8601ec8cull);
  CHECK(fnv1a64(kFnv1a64Offset, "foobar", 6) == 0x85944171f73967e8ull);
}

TEST_CASE("tq eval --json reports an output checksum that does not depend on the batch size") {
  const std::string& model = lenet_tqm();
  std::string sums[3];
  const char* batches[3] = {"1", "7", "100"};
  for (int i = 0; i < 3; ++i) {
    Run ev = tq("eval " + model + " --limit 30 --backend reference --json --batch " + batches[i]);
    REQUIRE_MESSAGE(ev.code == 0, ev.out);
    sums[i] = json_field(ev.out, "checksum");
    CHECK(sums[i].size() == 20);  // "0x" + 16 hex digits, quoted
  }
  CHECK(sums[0] == sums[1]);
  CHECK(sums[0] == sums[2]);
  Run other = tq("eval " + model + " --limit 31 --backend reference --json");
  REQUIRE_MESSAGE(other.code == 0, other.out);
  CHECK(json_field(other.out, "checksum") != sums[0]);  // one more sample changes it
  Run text = tq("eval " + model + " --limit 30 --backend reference --quiet");
  REQUIRE_MESSAGE(text.code == 0, text.out);
  CHECK(contains(text.out, ("checksum " + sums[0].substr(1, 18)).c_str()));
}

TEST_CASE("tq embed writes the model bytes, images, labels, preprocessing and a sized arena") {
  const std::string& model = lenet_tqm();
  const std::string dir = temp_dir("tq_embed_out");
  Run r = tq("embed " + model + " --data fashion-mnist:test --count 3 -o " + dir + "/lenet_f32");
  REQUIRE_MESSAGE(r.code == 0, r.out);
  const std::string src = read_text(dir + "/lenet_f32.cc");
  CHECK(contains(src, "namespace tq_embedded"));
  CHECK(contains(src, "const char name[] = \"lenet_f32\";"));
  CHECK(contains(src, "const int32_t count = 3, rows = 28, cols = 28;"));
  CHECK(contains(src, "const float mean = 0.286000013f, std_dev = 0.352999985f;"));
  CHECK(contains(src, "alignas(16) const uint8_t model["));
  CHECK(contains(src, "alignas(64) uint8_t arena["));
  CHECK(contains(src, "const uint8_t images[2352] = {"));
  CHECK(contains(src, "const uint8_t labels[3] = {\n0x09,0x02,0x01,\n};"));  // the first test labels
  // The float lenet's op resolver: exactly the four kernels its ops run (the ReLUs are fused).
  CHECK(contains(src, "void register_kernels(tinyquant::OpResolver* resolver) {\n"
                      "  resolver->add<tinyquant::OpType::kConv2D, tinyquant::KernelKind::kFloat32>();\n"
                      "  resolver->add<tinyquant::OpType::kFullyConnected, tinyquant::KernelKind::kFloat32>();\n"
                      "  resolver->add<tinyquant::OpType::kMaxPool2D, tinyquant::KernelKind::kFloat32>();\n"
                      "  resolver->add<tinyquant::OpType::kReshape, tinyquant::KernelKind::kFloat32>();\n}\n"));
  // The model array holds the file's bytes, in order.
  const std::string bytes = read_text(model);
  const size_t p = src.find("alignas(16) const uint8_t model[" + std::to_string(bytes.size()) + "] = {\n");
  REQUIRE(p != std::string::npos);
  const char* hex = src.c_str() + src.find('\n', p) + 1;
  for (size_t i = 0; i < 64; ++i) {
    unsigned v = 0;
    REQUIRE(std::sscanf(hex, "0x%2x,", &v) == 1);
    CHECK(v == static_cast<uint8_t>(bytes[i]));
    hex += 5;
    if (*hex == '\n') ++hex;
  }
  // "-o NAME.cc" is taken as the file name; rewriting gives the same bytes.
  Run again = tq("embed " + model + " --count 3 -o " + dir + "/lenet_f32.cc");
  REQUIRE_MESSAGE(again.code == 0, again.out);
  CHECK(read_text(dir + "/lenet_f32.cc") == src);
}

TEST_CASE("tq embed rejects bad input clearly and writes nothing") {
  const std::string& model = lenet_tqm();
  const std::string dir = temp_dir("tq_embed_bad");
  const std::string out = " -o " + dir + "/x";

  Run missing = tq("embed " + dir + "/nope.tqm" + out);
  CHECK(missing.code == 1);
  CHECK(contains(missing.out, "nope.tqm"));

  Run onnx = tq("embed " + kLenetOnnx + out);
  CHECK(onnx.code == 1);
  CHECK(contains(onnx.out, "is not a .tqm model"));

  Run zero = tq("embed " + model + " --count 0" + out);
  CHECK(zero.code == 2);
  CHECK(contains(zero.out, "--count"));

  Run too_many = tq("embed " + model + " --count 10001" + out);
  CHECK(too_many.code == 1);
  CHECK(contains(too_many.out, "out of range"));
  CHECK(contains(too_many.out, "10000"));

  Run data = tq("embed " + model + " --data mnist:test" + out);
  CHECK(data.code == 2);
  CHECK(contains(data.out, "fashion-mnist:test"));

  Run no_out = tq("embed " + model);
  CHECK(no_out.code == 2);
  CHECK(contains(no_out.out, "-o"));

  Run bad_name = tq("embed " + model + " -o " + dir + "/bad\\ name");
  CHECK(bad_name.code == 1);
  CHECK(contains(bad_name.out, "may only use"));

  Run unwritable = tq("embed " + model + " --count 2 -o " + dir + "/no/such/dir/x");
  CHECK(unwritable.code == 1);
  CHECK(contains(unwritable.out, "no/such/dir"));

  CHECK_FALSE(file_exists(dir + "/x.cc"));
}
