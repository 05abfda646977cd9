// The fast AdaQuant accuracy regression CI keeps on the host (few samples and steps), through the
// tq command line. Its own CTest entry (e2e_adaquant_lenet): under the ARM emulators, with the
// portable GEMM, the same run takes over ten minutes, so .ci/run's cross stages skip it (the quant
// suite still runs AdaQuant there on small graphs).
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "tinyquant/interpreter.h"
#include "tools/cli_util.h"
#include "toolkit/json.h"
#include "toolkit/quantize.h"

#if TQ_WITH_QUANT
using namespace tinyquant;
using namespace tinyquant::testing;

namespace {
const std::string kLenet = std::string(TQ_MODELS_DIR) + "/lenet.onnx";
std::string temp_dir() { return testing::temp_dir("tq_adaquant"); }
}  // namespace

// The fast accuracy regression CI keeps (few samples and steps): a broken optimiser either stops
// lowering the layers' held-out error (the revert guard would then hide it in the accuracy) or
// loses accuracy; both fail here.
TEST_CASE("e2e adaquant lenet: W4A4 through tq quantize, every layer improves, the model beats round-to-nearest") {
  const std::string dir = temp_dir();
  const std::string aq = dir + "/aq.tqm", rtn = dir + "/rtn.tqm", report = dir + "/aq.json";
  const std::string common = " --wbits 4 --abits 4 --calib-size 300 --seed 0 ";
  Run r = tq("quantize " + kLenet + " --method rtn" + common + "-o " + rtn);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  Run a = tq("quantize " + kLenet + " --method adaquant --sequential --stats-tuning --iters 40" + common + "-o " + aq +
             " --report " + report);
  REQUIRE_MESSAGE(a.code == 0, a.out);
  CHECK_MESSAGE(contains(a.out, "pipeline adaquant-sequential+stats"), a.out);
  CHECK_MESSAGE(contains(a.out, "layer 4/4 /fc2/Gemm: adaquant done"), a.out);  // piped: plain progress lines
  std::FILE* f = std::fopen(report.c_str(), "rb");
  REQUIRE(f);
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) text.append(buf, n);
  std::fclose(f);
  const Json j = Json::parse(text, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  CHECK(j["pipeline"] == "adaquant-sequential+stats");
  CHECK(j["train_samples"] == 270);
  CHECK(j["peak_rss_bytes"].get<double>() > 0);
  REQUIRE(j["layers"].size() == 4u);
  double ratio = 0;
  for (const Json& l : j["layers"]) {
    INFO(l["name"].get<std::string>(), ": ", l["mse_before"].get<double>(), " -> ", l["mse_after"].get<double>());
    CHECK(l["reverted"] == false);
    CHECK(l["mse_after"].get<double>() < 0.85 * l["mse_before"].get<double>());
    ratio += l["mse_after"].get<double>() / l["mse_before"].get<double>() / 4;
  }
  MESSAGE("AdaQuant W4A4 lenet (300 samples, 40 steps): mean held-out MSE after/before ", ratio);
  CHECK(ratio < 0.7);
  Graph gq, gr;
  REQUIRE(load_any_model(aq, &gq).is_ok());
  REQUIRE(load_any_model(rtn, &gr).is_ok());
  CHECK(gq.calibration.pipeline == "adaquant-sequential+stats");
  ImageDataset test;
  REQUIRE(load_fashion_mnist(kDefaultFashionMnistDir, "test", &test).is_ok());
  EvalOptions eo;
  eo.backend = backend_available(Backend::kXnnpack) ? Backend::kXnnpack : Backend::kReference;
  eo.limit = 2000;
  EvalResult ra, rr;
  REQUIRE(evaluate_classifier(gq, test, eo, &ra).is_ok());
  REQUIRE(evaluate_classifier(gr, test, eo, &rr).is_ok());
  MESSAGE("W4A4 lenet on 2000 test images: rtn ", rr.top1, "%, adaquant sequential + stats ", ra.top1, "%");
  CHECK(ra.top1 >= rr.top1);
  CHECK(ra.top1 >= 89.5);
}

#endif  // TQ_WITH_QUANT
