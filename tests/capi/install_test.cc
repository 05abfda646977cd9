// Master weights, the float model rebuilt from them, graph-level recalibration, and the validated
// install: a corrupted, truncated or mismatched candidate never replaces the model on disk.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "install.h"
#include "quant/quant_test_graphs.h"
#include "tinyquant/adaquant.h"
#include "tinyquant/file_io.h"
#include "tinyquant/model_io.h"
#include "tinyquant/recalibrate.h"
#include "tools/cli_util.h"

namespace tinyquant {
namespace {

using testing::conv_pool_fc_graph;
using testing::random_calibration;

Graph quantized_with_master(const Graph& fg, int32_t wbits, bool fp16, uint32_t seed = 3) {
  quant::CalibrationData calib = random_calibration(fg, 64, seed);
  quant::RtnOptions o;
  o.weight_bits = wbits;
  Graph q;
  REQUIRE(quant::quantize_graph_rtn(fg, calib, o, &q, nullptr, nullptr).is_ok());
  const Status s = quant::attach_master_weights(fg, fp16, &q);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  return q;
}

std::vector<uint8_t> bytes_of(const Graph& g) {
  std::vector<uint8_t> b;
  const Status s = serialize_model(g, &b);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  return b;
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::vector<uint8_t> b;
  REQUIRE(read_file(path.c_str(), size_t(1) << 30, &b).is_ok());
  return b;
}

TEST_CASE("master weights: fp32 rebuild the float model exactly, fp16 within half precision, through the file") {
  const Graph fg = conv_pool_fc_graph(7);
  const quant::CalibrationData x = random_calibration(fg, 8, 11);
  const std::vector<float> want = testing::run(fg, x.values, 8);
  for (bool fp16 : {false, true}) {
    CAPTURE(fp16);
    Graph q = quantized_with_master(fg, 4, fp16);
    REQUIRE(q.master_weights.size() == 4);  // conv and FC: weights + bias each
    Graph loaded;
    const std::vector<uint8_t> b = bytes_of(q);
    REQUIRE(load_model(b.data(), b.size(), &loaded).is_ok());
    Graph rebuilt;
    std::vector<int32_t> layers;
    const Status s = quant::master_float_graph(loaded, &rebuilt, &layers);
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    CHECK(layers.size() == 2);
    CHECK(rebuilt.master_weights.empty());
    CHECK(rebuilt.tensors[rebuilt.outputs[0]].name == fg.tensors[fg.outputs[0]].name);
    const std::vector<float> got = testing::run(rebuilt, x.values, 8);
    REQUIRE(got.size() == want.size());
    double worst = 0.0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::fabs(got[i] - want[i])));
    if (fp16) {
      CHECK(worst > 0.0);    // the weights were rounded to half precision...
      CHECK(worst < 2e-3);   // ...by at most 2^-11 relative
    } else {
      CHECK(worst == 0.0);
    }
  }
  // Errors: no master, and attaching twice.
  Graph plain;
  quant::CalibrationData calib = random_calibration(fg, 16, 3);
  REQUIRE(quant::quantize_graph_rtn(fg, calib, quant::RtnOptions(), &plain, nullptr, nullptr).is_ok());
  Graph out;
  Status s = quant::master_float_graph(plain, &out);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(std::string(s.message()).find("--keep-master") != std::string::npos);
  Graph twice = quantized_with_master(fg, 8, true);
  CHECK(!quant::attach_master_weights(fg, true, &twice).is_ok());
  // A float model whose operators do not match by name.
  Graph other = conv_pool_fc_graph(7);
  for (Operator& op : other.operators) op.name += "_renamed";
  Graph q2;
  REQUIRE(quant::quantize_graph_rtn(fg, calib, quant::RtnOptions(), &q2, nullptr, nullptr).is_ok());
  s = quant::attach_master_weights(other, true, &q2);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(std::string(s.message()).find("no operator of that name") != std::string::npos);
}

TEST_CASE("recalibrate_graph keeps the recorded bit-widths and the master, and fits a memory budget") {
  const Graph fg = conv_pool_fc_graph(5);
  const Graph shipped = quantized_with_master(fg, 3, true);
  // New data from another distribution (shifted and scaled): what drift looks like.
  quant::CalibrationData fresh = random_calibration(fg, 300, 21);
  for (float& v : fresh.values) v = 2.5f * v + 1.0f;
  for (bool full : {false, true}) {
    CAPTURE(full);
    quant::RecalibrationOptions o;
    o.full = full;
    o.iterations = 20;
    Graph out;
    quant::RecalibrationReport r;
    Status s = quant::recalibrate_graph(shipped, fresh.values.data(), int64_t(fresh.values.size()), fresh.samples, o,
                                        &out, &r);
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    CHECK(out.calibration.weight_bits == shipped.calibration.weight_bits);
    CHECK(out.calibration.activation_bits == shipped.calibration.activation_bits);
    CHECK(out.master_weights.size() == shipped.master_weights.size());
    CHECK(r.holdout_samples == 60);
    CHECK(r.calibration_samples == 240);
    CHECK(r.holdout.size() == 60);
    // Calibrated on the new distribution, the model agrees better with the float master there.
    CHECK(r.new_agreement > r.old_agreement);
    MESSAGE("agreement " << r.old_agreement << " -> " << r.new_agreement << ", peak " << r.peak_bytes << " of "
                         << r.estimated_bytes);
    CHECK(out.calibration.pipeline.find(full ? "recalibrated-full" : "recalibrated-fast") == 0);
    // A budget: subsampled to fit; too small: refused with the bytes needed.
    Graph master;
    REQUIRE(quant::master_float_graph(shipped, &master).is_ok());
    const int64_t at64 = quant::estimate_recalibration_bytes(master, 64, full);
    o.memory_budget_bytes = at64;
    s = quant::recalibrate_graph(shipped, fresh.values.data(), int64_t(fresh.values.size()), fresh.samples, o, &out, &r);
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    CHECK(r.subsampled);
    CHECK(r.calibration_samples == 64);
    CHECK(r.estimated_bytes <= at64);
    o.memory_budget_bytes = quant::estimate_recalibration_bytes(master, o.min_samples, full) - 1;
    s = quant::recalibrate_graph(shipped, fresh.values.data(), int64_t(fresh.values.size()), fresh.samples, o, &out, &r);
    CHECK(s.code() == StatusCode::kOutOfMemory);
    CHECK(std::string(s.message()).find("needs at least") != std::string::npos);
  }
  // NaN in the samples is named.
  fresh.values[5 * 192 + 7] = std::nanf("");
  Graph out;
  Status s = quant::recalibrate_graph(shipped, fresh.values.data(), int64_t(fresh.values.size()), fresh.samples,
                                      quant::RecalibrationOptions(), &out, nullptr);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(std::string(s.message()).find("sample 5, element 7 is not finite") != std::string::npos);
}

TEST_CASE("install_model: corrupted, truncated or mismatched candidates never replace the model") {
  const std::string dir = testing::temp_dir("tq_install");
  const std::string path = dir + "/model.tqm";
  const Graph fg = conv_pool_fc_graph(9);
  const Graph old = quantized_with_master(fg, 8, true);
  const std::vector<uint8_t> old_bytes = bytes_of(old);
  REQUIRE(write_file_atomic(path.c_str(), old_bytes.data(), old_bytes.size()).is_ok());
  Graph master;
  REQUIRE(quant::master_float_graph(old, &master).is_ok());
  const quant::CalibrationData held = random_calibration(fg, 40, 4);
  capi::InstallCheck check;
  check.old_model = &old;
  check.master = &master;
  check.held = held.values.data();
  check.held_count = held.samples;
  check.min_agreement = 0.0;

  auto refused = [&](const std::vector<uint8_t>& candidate, const char* why) {
    CAPTURE(why);
    const Status s = capi::install_model(path.c_str(), candidate, check, nullptr);
    CHECK_FALSE(s.is_ok());
    CHECK(file_bytes(path) == old_bytes);                    // the old model stays, byte for byte
    CHECK_FALSE(testing::file_exists(path + ".tq-new"));  // and no temp file is left
    return std::string(s.message());
  };
  // Corrupted: bytes flipped, truncated, empty.
  std::vector<uint8_t> flipped = old_bytes;
  for (size_t i = 16; i < 48; ++i) flipped[i] ^= 0x5a;
  refused(flipped, "flipped");
  refused(std::vector<uint8_t>(old_bytes.begin(), old_bytes.begin() + old_bytes.size() / 2), "truncated");
  refused({}, "empty");
  // Mismatched: other bit-widths; another input shape; no master weights.
  CHECK(refused(bytes_of(quantized_with_master(fg, 4, true)), "bits").find("bit-widths differ") != std::string::npos);
  Graph fg2 = conv_pool_fc_graph(9);
  fg2.tensors[fg2.inputs[0]].name = "image";
  Graph other_input = quantized_with_master(fg2, 8, true);
  CHECK(refused(bytes_of(other_input), "input").find("input 0") != std::string::npos);
  Graph no_master;
  REQUIRE(quant::quantize_graph_rtn(fg, random_calibration(fg, 64, 3), quant::RtnOptions(), &no_master, nullptr,
                                    nullptr).is_ok());
  CHECK(refused(bytes_of(no_master), "master").find("no master weights") != std::string::npos);
  // Worse agreement than required.
  check.min_agreement = 100.01;
  CHECK(refused(bytes_of(quantized_with_master(fg, 8, true, 5)), "agreement").find("at least 100.01%") !=
        std::string::npos);
  // A good candidate is installed, and a stale temp file from a killed write does not stop it.
  check.min_agreement = 0.0;
  const std::vector<uint8_t> good = bytes_of(quantized_with_master(fg, 8, true, 5));
  REQUIRE(write_file_atomic((path + ".tq-new").c_str(), "junk", 4).is_ok());
  double agreement = -1.0;
  const Status s = capi::install_model(path.c_str(), good, check, &agreement);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  CHECK(file_bytes(path) == good);
  CHECK(agreement >= 0.0);
  CHECK_FALSE(testing::file_exists(path + ".tq-new"));
}

}  // namespace
}  // namespace tinyquant
