// Older .tqm files keep loading. tests/schema/data/zoo_w4a8_v1.tqm is a real version-1 file:
// `tq quantize examples/fashion_mnist/models/zoo.onnx --method rtn --wbits 4 --abits 8
// --calib-size 64` as built at commit e6cbed0 (the last version-1 writer), with its stored bias
// scales and its full report JSON. It must load, run, and write again as version 2 (smaller:
// no report, no bias scales, no all-zero zero points) with the same graph (bias scales left
// implied) and the same outputs.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tinyquant/file_io.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/model_io.h"
#include "tinyquant/op_info.h"
#include "tinyquant_generated.h"

using namespace tinyquant;

namespace {

const char* fixture() { return TQ_SOURCE_DIR "/tests/schema/data/zoo_w4a8_v1.tqm"; }

std::vector<float> run(const Graph& g, const std::vector<float>& images, int batch) {
  Interpreter interp;
  PrepareOptions opt;
  opt.batch = batch;
  const Status s = interp.prepare(g, opt);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  REQUIRE(size_t(interp.input(0).elements()) == images.size());
  std::memcpy(interp.input(0).data, images.data(), images.size() * sizeof(float));
  REQUIRE(interp.invoke().is_ok());
  const TensorView out = interp.output(0);
  return std::vector<float>(out.as<float>(), out.as<float>() + out.elements());
}

}  // namespace

TEST_CASE("tqm: a version-1 file loads, runs, and writes again as version 2 with the same graph") {
  Graph v1;
  const Status s = load_model_file(fixture(), &v1);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  std::vector<uint8_t> v1_bytes;
  REQUIRE(read_file(fixture(), kMaxModelFileBytes, &v1_bytes).is_ok());
  CHECK(fb::GetModel(v1_bytes.data())->version() == 1);
  // What version 1 stored and version 2 leaves out.
  CHECK(v1.calibration.present);
  CHECK(v1.calibration.report_json.size() > 1000);
  CHECK(v1.calibration.report_json.find("\"layers\"") != std::string::npos);
  int biases = 0;
  for (const Operator& op : v1.operators) {
    if (!op_info(op.type).weighted || op.inputs.size() < 3 || op.inputs[2] < 0) continue;
    ++biases;
    CHECK(bias_scales_implied(v1, op));  // stored, and exactly s_in * s_w
  }
  CHECK(biases >= 4);

  std::vector<uint8_t> v2_bytes;
  REQUIRE(serialize_model(v1, &v2_bytes).is_ok());
  const fb::Model& m2 = *fb::GetModel(v2_bytes.data());
  CHECK(m2.version() == kTqmVersion);
  CHECK(kTqmVersion == 2);
  REQUIRE(m2.calibration() != nullptr);
  CHECK(m2.calibration()->report_json() == nullptr);
  int implied = 0, zero_points = 0;
  for (const fb::Tensor* t : *m2.tensors()) {
    if (!t->quantization()) continue;
    implied += t->quantization()->bias_scale_implied();
    if (t->quantization()->zero_point())
      for (int32_t z : *t->quantization()->zero_point()) zero_points += z == 0;
  }
  CHECK(implied == biases);
  CHECK(zero_points == 0);  // a stored zero-point vector has a nonzero entry
  MESSAGE("version 1: " << v1_bytes.size() << " bytes, version 2: " << v2_bytes.size() << " bytes");
  CHECK(v2_bytes.size() + v1.calibration.report_json.size() < v1_bytes.size());

  Graph v2;
  REQUIRE(load_model(v2_bytes.data(), v2_bytes.size(), &v2, "v2").is_ok());
  REQUIRE(v2.tensors.size() == v1.tensors.size());
  const std::vector<bool> implied_v1 = implied_bias_scales(v1);
  int left_empty = 0;
  for (size_t i = 0; i < v1.tensors.size(); ++i) {
    CAPTURE(v1.tensors[i].name);
    if (implied_v1[i]) {  // implied: not stored, not materialized; still implied in the v2 graph
      CHECK(v2.tensors[i].quant.scale.empty());
      left_empty += 1;
    } else {
      CHECK(v2.tensors[i].quant.scale == v1.tensors[i].quant.scale);
    }
    CHECK(v2.tensors[i].quant.axis == v1.tensors[i].quant.axis);
  }
  CHECK(left_empty == biases);
  CHECK(implied_bias_scales(v2) == implied_v1);
  std::vector<uint8_t> again;  // and writes the same bytes again
  REQUIRE(serialize_model(v2, &again).is_ok());
  CHECK(again == v2_bytes);
  CHECK(v2.calibration.weight_bits == v1.calibration.weight_bits);
  CHECK(v2.calibration.activation_bits == v1.calibration.activation_bits);
  CHECK(v2.calibration.pipeline == v1.calibration.pipeline);
  CHECK(v2.calibration.seed == v1.calibration.seed);
  CHECK(v2.calibration.dataset == v1.calibration.dataset);
  CHECK(quantized_bytes(v2).total() == quantized_bytes(v1).total());

  // Same outputs, bit for bit, from both files.
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> pixel(-0.8f, 2.0f);
  const int batch = 4;
  std::vector<float> images(size_t(batch) * 28 * 28);
  for (float& v : images) v = pixel(rng);
  const std::vector<float> a = run(v1, images, batch), b = run(v2, images, batch);
  REQUIRE(a.size() == size_t(batch) * 10);
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TEST_CASE("tqm: implied bias scales that no quantized op can derive are rejected") {
  Graph g;
  REQUIRE(load_model_file(fixture(), &g).is_ok());
  std::vector<uint8_t> bytes;
  REQUIRE(serialize_model(g, &bytes).is_ok());
  const fb::Model& m = *fb::GetModel(bytes.data());
  // Find an implied bias and make its reader's weights per-tensor: the scales no longer match.
  int32_t bias = -1;
  for (uint32_t i = 0; i < m.tensors()->size(); ++i)
    if (m.tensors()->Get(i)->quantization() && m.tensors()->Get(i)->quantization()->bias_scale_implied())
      bias = int32_t(i);
  REQUIRE(bias >= 0);
  // Break the op link: point every op input that reads the bias at input 0 instead.
  std::vector<uint8_t> bad = bytes;
  for (const fb::Operator* op : *m.operators()) {
    const auto* in = op->inputs();
    for (uint32_t k = 0; k < in->size(); ++k) {
      if (in->Get(k) != bias) continue;
      const size_t at = size_t(reinterpret_cast<const uint8_t*>(in->data() + k) - bytes.data());
      const int32_t none = -1;
      std::memcpy(&bad[at], &none, 4);
    }
  }
  Graph loaded;
  const Status s = load_model(bad.data(), bad.size(), &loaded, "bad.tqm");
  REQUIRE_FALSE(s.is_ok());
  CHECK(std::string(s.message()).find("bias scales are implied, but no Conv2D, DepthwiseConv2D or FullyConnected "
                                      "reads it as its bias") != std::string::npos);
}
