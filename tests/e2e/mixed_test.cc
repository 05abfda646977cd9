// Mixed precision on a real model through the tq command line: resnet20, light pipeline at 13% of
// the float32 weight bytes. The model must honour the budget, stay within a point of float on
// the whole test split, and beat uniform 4-bit weights (W4A8 round-to-nearest), which is larger.
// Its own CTest entry (e2e_mixed_resnet20), skipped under the ARM emulators.
#include <doctest/doctest.h>

#include <string>

#include "tinyquant/interpreter.h"
#include "tools/cli_util.h"
#include "toolkit/quantize.h"

#if TQ_WITH_QUANT
using namespace tinyquant;
using namespace tinyquant::testing;

TEST_CASE("e2e mixed resnet20: light at 13% honours the budget, is within 1 point of float and beats uniform W4A8") {
  const std::string model = std::string(TQ_MODELS_DIR) + "/resnet20.onnx";
  const std::string dir = testing::temp_dir("tq_e2e_mixed");
  const std::string mixed = dir + "/mixed.tqm", uniform = dir + "/w4a8.tqm";
  Run r = tq("quantize " + model + " --pipeline light --budget 13% --calib-size 500 --seed 0 -o " + mixed);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  Run u = tq("quantize " + model + " --method rtn --wbits 4 --abits 8 --calib-size 500 --seed 0 -o " + uniform);
  REQUIRE_MESSAGE(u.code == 0, u.out);
  Graph gm, gu, gf;
  REQUIRE(load_any_model(mixed, &gm).is_ok());
  REQUIRE(load_any_model(uniform, &gu).is_ok());
  REQUIRE(load_any_model(model, &gf).is_ok());
  const QuantizedBytes bm = quantized_bytes(gm), bu = quantized_bytes(gu);
  CHECK(bm.total() <= bm.float32 * 13 / 100);
  CHECK(bm.total() < bu.total());
  CHECK(gm.calibration.pipeline == "light+stats");
  CHECK(gm.calibration.budget_bytes == uint64_t(bm.float32 * 13 / 100));
  ImageDataset test;
  REQUIRE(load_fashion_mnist(kDefaultFashionMnistDir, "test", &test).is_ok());
  EvalOptions eo;
  eo.backend = backend_available(Backend::kXnnpack) ? Backend::kXnnpack : Backend::kReference;
  EvalResult rm, ru, rf;
  REQUIRE(evaluate_classifier(gm, test, eo, &rm).is_ok());
  REQUIRE(evaluate_classifier(gu, test, eo, &ru).is_ok());
  REQUIRE(evaluate_classifier(gf, test, eo, &rf).is_ok());
  MESSAGE("resnet20 top-1: float ", rf.top1, "%, light 13% ", rm.top1, "% (", bm.total(), " bytes), W4A8 RTN ", ru.top1,
          "% (", bu.total(), " bytes)");
  CHECK(rm.top1 >= rf.top1 - 1.0);
  CHECK(rm.top1 > ru.top1);
}

#endif  // TQ_WITH_QUANT
