// tq quantize --keep-master and tq recalibrate, run as a user would: the model recalibrated in
// place and still loadable, a budget too small refused with the bytes needed, a model without
// master weights refused, bad options; the file is untouched by every failure.
#include <doctest/doctest.h>
#if TQ_WITH_QUANT

#include <string>

#include "tools/cli_util.h"

using namespace tinyquant::testing;

namespace {
const std::string kLenet = std::string(TQ_MODELS_DIR) + "/lenet.onnx";
}  // namespace

TEST_CASE("tq recalibrate: in place on new samples, within its budget; refusals leave the file as it was") {
  const std::string dir = temp_dir("tq_recal");
  const std::string model = dir + "/lenet.tqm", plain = dir + "/plain.tqm";
  Run q = tq("quantize " + kLenet + " --method rtn --wbits 4 --abits 8 --calib-size 100 --keep-master fp16 -o " + model);
  REQUIRE_MESSAGE(q.code == 0, q.out);
  Run i = tq("inspect " + model);
  CHECK_MESSAGE(contains(i.out, "master     float copies of 8 weight / bias tensors (4 fp16)"), i.out);
  const std::string before = read_text_file(model);

  // The test split as "new" data (never seen by the calibration above), with a budget.
  Run r = tq("recalibrate " + model + " --data fashion-mnist:test --count 300 --memory-budget 200MB --json");
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK(contains(r.out, "\"installed\": true"));
  CHECK(contains(r.out, "\"calibration_samples\": 240"));
  CHECK_MESSAGE(contains(r.out, ("tq: installed the recalibrated model in " + model).c_str()), r.out);
  CHECK(read_text_file(model) != before);
  Run e = tq("eval " + model + " --limit 500");
  CHECK_MESSAGE(e.code == 0, e.out);
  Run i2 = tq("inspect " + model);
  CHECK_MESSAGE(contains(i2.out, "master     float copies"), i2.out);  // recalibratable again

  // Refusals: a budget below the minimum (names the bytes), no master weights, bad options.
  const std::string after = read_text_file(model);
  Run small = tq("recalibrate " + model + " --count 100 --memory-budget 2MB");
  CHECK(small.code == 1);
  CHECK_MESSAGE(contains(small.out, "fast recalibration needs at least"), small.out);
  CHECK_MESSAGE(contains(small.out, "the budget is 2000000 bytes"), small.out);
  REQUIRE(tq("quantize " + kLenet + " --method rtn --calib-size 50 -o " + plain).code == 0);
  Run nomaster = tq("recalibrate " + plain + " --count 100");
  CHECK(nomaster.code == 1);
  CHECK_MESSAGE(contains(nomaster.out, "--keep-master"), nomaster.out);
  Run unit = tq("recalibrate " + model + " --memory-budget 12XB");
  CHECK(unit.code == 2);
  CHECK_MESSAGE(contains(unit.out, "--memory-budget"), unit.out);
  Run mode = tq("recalibrate " + model + " --mode slow");
  CHECK(mode.code == 2);
  CHECK_MESSAGE(contains(mode.out, "expected fast or full"), mode.out);
  Run keep = tq("quantize " + kLenet + " --method rtn --calib-size 50 --keep-master fp8 -o " + plain);
  CHECK(keep.code == 2);
  CHECK_MESSAGE(contains(keep.out, "expected fp16 or fp32"), keep.out);
  CHECK(read_text_file(model) == after);
  CHECK_FALSE(file_exists(model + ".tq-new"));
}

#endif  // TQ_WITH_QUANT
