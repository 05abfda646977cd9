// End to end, quantized: each reference model goes ONNX -> round-to-nearest W8A8 and W4A4 (1000
// calibration images from the train split, seed 0, as `tq quantize --method rtn --calib-size 1000`)
// -> .tqm bytes -> verified loader, and then on all 10 000 test images:
//   * integer accuracy (XNNPACK, 2 threads) equals the simulated (fake-quant float) accuracy within
//     0.05 points, with per-sample top-1 agreement >= 99.9%;
//   * W8A8 loses at most 0.3 points against the float model's PyTorch record (NAME.json test_top1);
//   * the reference integer kernels predict exactly what XNNPACK predicts (the backends are
//     bit-exact). The portable kernels are slow on the larger models (resnet20 W4A4 took 35-50 s
//     per 1000 images on a shared 2-core machine: they unpack sub-byte weights as they go), so that last
//     check runs on the first 1000 test images for resnet20 and mobilenetv2, on all 10 000 for lenet.
#include <doctest/doctest.h>
#if TQ_WITH_QUANT  // tq_toolkit defines it when quant/ is built

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "tinyquant/file_io.h"
#include "tinyquant/model_io.h"
#include "tinyquant/pipeline.h"
#include "toolkit/quantize.h"
#include "toolkit/toolkit.h"

using namespace tinyquant;

namespace {

double float_record_top1(const std::string& path) {
  std::vector<uint8_t> bytes;
  if (!read_file(path.c_str(), 1 << 24, &bytes).is_ok()) return -1;
  const std::string text(bytes.begin(), bytes.end());
  const size_t p = text.find("\"test_top1\":");
  return p == std::string::npos ? -1 : std::strtod(text.c_str() + p + 12, nullptr);
}

EvalResult evaluate(const Graph& graph, const ImageDataset& test, Backend backend, int32_t limit) {
  EvalOptions opt;
  opt.backend = backend;
  opt.threads = 2;
  opt.batch = 100;
  opt.limit = limit;
  EvalResult r;
  const Status s = evaluate_classifier(graph, test, opt, &r);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  return r;
}

int32_t disagreements(const EvalResult& a, const EvalResult& b) {
  const size_t n = std::min(a.predictions.size(), b.predictions.size());
  int32_t d = 0;
  for (size_t i = 0; i < n; ++i) d += a.predictions[i] != b.predictions[i];
  return d;
}

void check_rtn(const std::string& name, const Graph& float_graph, const quant::CalibrationData& calib,
               const ImageDataset& test, double float_top1, int bits, int32_t reference_limit) {
  quant::RtnOptions opt;
  opt.weight_bits = bits;
  opt.activation_bits = bits;
  opt.seed = 0;
  opt.threads = 2;
  Graph quantized;
  Status s = quant::quantize_graph_rtn(float_graph, calib, opt, &quantized, nullptr, nullptr);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  // Through the file format, and the simulated twin rebuilt from the loaded model alone, as
  // `tq eval --simulate Q.tqm` does.
  std::vector<uint8_t> bytes;
  s = serialize_model(quantized, &bytes);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  Graph q;
  s = load_model(bytes.data(), bytes.size(), &q, (name + ".rtn.tqm").c_str());
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  Graph sim;
  s = quant::build_simulated_graph(q, &sim);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));

  const std::string tag = name + " W" + std::to_string(bits) + "A" + std::to_string(bits);
  const EvalResult ri = evaluate(q, test, Backend::kXnnpack, 0);
  const EvalResult rs = evaluate(sim, test, Backend::kXnnpack, 0);
  REQUIRE(ri.samples == 10000);
  REQUIRE(rs.samples == 10000);
  const int32_t d = disagreements(ri, rs);
  const double agreement = 100.0 * (ri.samples - d) / ri.samples;
  MESSAGE(tag, ": integer (xnnpack) top-1 ", ri.top1, "%, simulated ", rs.top1, "%, float (PyTorch) ", float_top1,
          "%, top-1 agreement ", agreement, "% (", d, " of ", ri.samples, " differ), ", bytes.size(),
          " bytes, xnnpack fallbacks ", ri.fallback_ops, ", ", ri.seconds, " s integer / ", rs.seconds,
          " s simulated");
  CHECK(std::fabs(ri.top1 - rs.top1) <= 0.05 + 1e-9);
  CHECK(agreement >= 99.9 - 1e-9);
  if (bits == 8) CHECK(float_top1 - ri.top1 <= 0.3 + 1e-9);

  const EvalResult rr = evaluate(q, test, Backend::kReference, reference_limit);
  const int32_t dr = disagreements(ri, rr);
  MESSAGE(tag, ": reference integer kernels on ", rr.samples, " images: top-1 ", rr.top1, "%, ", dr,
          " predictions differ from xnnpack, ", rr.seconds, " s");
  CHECK(rr.samples == (reference_limit ? reference_limit : 10000));
  CHECK(dr == 0);
}

void check_model(const std::string& name, int32_t reference_limit) {
  REQUIRE_MESSAGE(backend_available(Backend::kXnnpack), "the quantized e2e tests compare against XNNPACK");
  const std::string dir = TQ_MODELS_DIR;
  const double float_top1 = float_record_top1(dir + "/" + name + ".json");
  REQUIRE_MESSAGE(float_top1 > 0, "missing or unreadable ", dir, "/", name, ".json");
  Graph fg;
  Status s = load_any_model(dir + "/" + name + ".onnx", &fg);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  quant::CalibrationData calib;
  s = load_calibration_set("fashion-mnist:train", kDefaultFashionMnistDir, 1000, 0, kFashionMnistMean,
                           kFashionMnistStd, fg, &calib);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  REQUIRE(calib.samples == 1000);
  ImageDataset test;
  s = load_fashion_mnist(kDefaultFashionMnistDir, "test", &test);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  REQUIRE(test.count == 10000);
  SUBCASE("W8A8") { check_rtn(name, fg, calib, test, float_top1, 8, reference_limit); }
  SUBCASE("W4A4") { check_rtn(name, fg, calib, test, float_top1, 4, reference_limit); }
}

}  // namespace

TEST_CASE("e2e rtn lenet") { check_model("lenet", 0); }
TEST_CASE("e2e rtn resnet20") { check_model("resnet20", 1000); }
TEST_CASE("e2e rtn mobilenetv2") { check_model("mobilenetv2", 1000); }

#endif  // TQ_WITH_QUANT
