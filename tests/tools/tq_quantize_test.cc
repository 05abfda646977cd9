// tq quantize and tq eval --simulate, run as a user would: exit codes, messages, files written.
#include <doctest/doctest.h>
#if TQ_WITH_QUANT  // tq_toolkit defines it when quant/ is built

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "data/npy.h"
#include "tools/cli_util.h"
#include "tinyquant/interpreter.h"
#include "toolkit/json.h"
#include "toolkit/quantize.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

std::string temp_dir() { return testing::temp_dir("tq_quantize"); }

double top1_of(const Run& r) {
  const size_t p = r.out.find("\"top1\": ");
  REQUIRE_MESSAGE(p != std::string::npos, r.out);
  return std::stod(r.out.substr(p + 8));
}

const std::string kLenet = std::string(TQ_MODELS_DIR) + "/lenet.onnx";
const char* kEval = " --limit 500 --backend reference --json";

}  // namespace

TEST_CASE("tq quantize --method rtn W8A8 on lenet: integer and simulated top-1 within 1 point of float") {
  const std::string dir = temp_dir();
  const std::string out = dir + "/lenet_w8a8.tqm";
  Run q = tq("quantize " + kLenet + " --method rtn --wbits 8 --abits 8 --calib-size 200 -o " + out);
  REQUIRE_MESSAGE(q.code == 0, q.out);
  CHECK(contains(q.out, "200 samples of fashion-mnist:train"));
  CHECK(contains(q.out, "FullyConnected"));
  REQUIRE(file_exists(out));

  Run ins = tq("inspect " + out);
  REQUIRE_MESSAGE(ins.code == 0, ins.out);
  CHECK(contains(ins.out, "Quantize"));
  CHECK(contains(ins.out, "Dequantize"));
  CHECK(contains(ins.out, "int8"));
  // Per layer: weight bits, activation bits, output scale/zero point, weight scale range, bytes,
  // where it runs; then the packed weight totals.
  CHECK_MESSAGE(contains(ins.out, "wbits abits out scale/zp"), ins.out);
  CHECK(contains(ins.out, "w scale min..max"));
  CHECK(contains(ins.out, "param B"));
  CHECK(contains(ins.out, "runs on"));
  CHECK(contains(ins.out, "quantized  rtn, 200 calibration samples of fashion-mnist:train, seed 0"));
  CHECK(contains(ins.out, "weights    464160 bytes packed at 8 bits in 4 layers + 1448 bytes int32 bias"));
  {
    // The conv1 row: int8 output, 8-bit weights and activations, "scale/zp" and "lo..hi" fields.
    const size_t row = ins.out.find("/conv1/Conv");
    REQUIRE(row != std::string::npos);
    const std::string line = ins.out.substr(row, ins.out.find('\n', row) - row);
    char name[64], in[32], outs[32], dtype[16], oscale[48], wscale[48], runs[16];
    int wbits = 0, abits = 0;
    long bytes = 0;
    REQUIRE_MESSAGE(std::sscanf(line.c_str(), "%63s %31s %31s %15s %d %d %47s %47s %ld %15s", name, in, outs, dtype,
                                &wbits, &abits, oscale, wscale, &bytes, runs) == 10,
                    line);
    CHECK(std::string(dtype) == "int8");
    CHECK(wbits == 8);
    CHECK(abits == 8);
    CHECK_MESSAGE(std::string(oscale).find('/') != std::string::npos, line);
    CHECK_MESSAGE(std::string(wscale).find("..") != std::string::npos, line);
    CHECK(bytes == 32 * 25 + 32 * 4);  // int8 weights [32,5,5,1] + int32 bias
    CHECK((std::string(runs) == "xnnpack" || std::string(runs) == "reference"));
  }

  Run f = tq("eval " + kLenet + kEval);
  REQUIRE_MESSAGE(f.code == 0, f.out);
  Run i = tq("eval " + out + kEval);
  REQUIRE_MESSAGE(i.code == 0, i.out);
  Run s = tq("eval " + out + kEval + " --simulate");
  REQUIRE_MESSAGE(s.code == 0, s.out);
  CHECK(contains(s.out, "\"simulated\": true"));
  const double tf = top1_of(f), ti = top1_of(i), ts = top1_of(s);
  MESSAGE("lenet top-1 on 500: float ", tf, ", W8A8 integer ", ti, ", simulated ", ts);
  CHECK(std::fabs(tf - ti) <= 1.0);
  CHECK(std::fabs(ti - ts) <= 0.4);  // at most 2 of 500 samples flip

  // A 4-bit model is about half the file (the weights dominate lenet).
  const std::string out4 = dir + "/lenet_w4a8.tqm";
  Run q4 = tq("quantize " + kLenet + " --wbits 4 --abits 8 --calib-size 50 -o " + out4);
  REQUIRE_MESSAGE(q4.code == 0, q4.out);
  const double ratio = double(file_size(out4)) / double(file_size(out));
  Run ins4 = tq("inspect " + out4);
  REQUIRE_MESSAGE(ins4.code == 0, ins4.out);
  CHECK_MESSAGE(contains(ins4.out, "weights    232080 bytes packed at 4 bits in 4 layers + 1448 bytes int32 bias"),
                ins4.out);
  CHECK(ratio > 0.45);
  CHECK(ratio < 0.56);

  // Same model, data, seed and options: the same file, byte for byte.
  const std::string again = dir + "/lenet_w4a8_again.tqm";
  Run q4b = tq("quantize " + kLenet + " --wbits 4 --abits 8 --calib-size 50 -o " + again);
  REQUIRE_MESSAGE(q4b.code == 0, q4b.out);
  std::FILE* a = std::fopen(out4.c_str(), "rb");
  std::FILE* b = std::fopen(again.c_str(), "rb");
  REQUIRE(a);
  REQUIRE(b);
  std::vector<char> ba(file_size(out4)), bb(file_size(again));
  CHECK(std::fread(ba.data(), 1, ba.size(), a) == ba.size());
  CHECK(std::fread(bb.data(), 1, bb.size(), b) == bb.size());
  std::fclose(a);
  std::fclose(b);
  CHECK(ba == bb);
}

TEST_CASE("tq quantize rejects bad options and bad calibration data, writing nothing") {
  const std::string dir = temp_dir();
  const std::string out = dir + "/bad.tqm";

  Run w9 = tq("quantize " + kLenet + " --method rtn --wbits 9 --abits 8 -o " + out);
  CHECK(w9.code == 2);
  CHECK_MESSAGE(contains(w9.out, "--wbits: Value 9 not in range 2 to 8"), w9.out);
  Run a1 = tq("quantize " + kLenet + " --abits 1 -o " + out);
  CHECK(a1.code == 2);
  CHECK(contains(a1.out, "--abits"));
  Run m = tq("quantize " + kLenet + " --method gptq -o " + out);
  CHECK(m.code == 2);
  CHECK_MESSAGE(contains(m.out, "expected rtn or adaquant"), m.out);
  Run seq = tq("quantize " + kLenet + " --method rtn --sequential -o " + out);
  CHECK(seq.code == 2);
  CHECK_MESSAGE(contains(seq.out, "--sequential: only with --method adaquant"), seq.out);
  Run few = tq("quantize " + kLenet + " --method adaquant --calib-size 40 -o " + out);
  CHECK(few.code == 1);
  CHECK_MESSAGE(contains(few.out, "40 samples"), few.out);
  CHECK_MESSAGE(contains(few.out, "batch of 50"), few.out);
  Run lr = tq("quantize " + kLenet + " --method adaquant --lr-mode fast -o " + out);
  CHECK(lr.code == 2);
  CHECK_MESSAGE(contains(lr.out, "--lr-mode"), lr.out);
  Run no_out = tq("quantize " + kLenet);
  CHECK(no_out.code == 2);
  Run empty = tq("quantize " + kLenet + " --calib-size 0 -o " + out);
  CHECK(empty.code == 2);
  CHECK_MESSAGE(contains(empty.out, "empty calibration set"), empty.out);
  Run spec = tq("quantize " + kLenet + " --calib imagenet:val -o " + out);
  CHECK(spec.code == 1);
  CHECK(contains(spec.out, "--calib 'imagenet:val'"));
  Run missing = tq("quantize " + kLenet + " --data-dir " + dir + "/nowhere -o " + out);
  CHECK(missing.code == 1);
  CHECK_MESSAGE(contains(missing.out, "nowhere"), missing.out);

  // Broken calibration data: a NaN pixel, named with its sample and element.
  std::vector<float> x(3 * 28 * 28, 0.25f);
  x[2 * 784 + 10] = std::numeric_limits<float>::quiet_NaN();
  REQUIRE(write_npy(dir + "/nan.npy", {3, 1, 28, 28}, x.data()).is_ok());
  Run nan = tq("quantize " + kLenet + " --calib npy:" + dir + "/nan.npy -o " + out);
  CHECK(nan.code == 1);
  CHECK_MESSAGE(contains(nan.out, "sample 2, element 10 of input 'input' is NaN"), nan.out);
  // The wrong shape for the model input.
  REQUIRE(write_npy(dir + "/wrong.npy", {2, 1, 14, 14}, x.data()).is_ok());
  Run wrong = tq("quantize " + kLenet + " --calib npy:" + dir + "/wrong.npy -o " + out);
  CHECK(wrong.code == 1);
  CHECK_MESSAGE(contains(wrong.out, "does not match model input 'input'"), wrong.out);

  CHECK_FALSE(file_exists(out));

  // --simulate needs a quantized model.
  Run sim = tq("eval " + kLenet + " --limit 10 --backend reference --simulate");
  CHECK(sim.code == 1);
  CHECK_MESSAGE(contains(sim.out, "not a quantized model"), sim.out);
}

TEST_CASE("tq quantize --keep-first-last-8bit: lenet's first and last layers at 8-bit weights and input") {
  const std::string out = temp_dir() + "/lenet_w4a4_fl8.tqm";
  Run q = tq("quantize " + kLenet + " --wbits 4 --abits 4 --keep-first-last-8bit --calib-size 50 -o " + out);
  REQUIRE_MESSAGE(q.code == 0, q.out);
  Run ins = tq("inspect " + out);
  REQUIRE_MESSAGE(ins.code == 0, ins.out);
  // Row fields: #, op, name, input, output, dtype, wbits, abits (of the op's output), ...
  auto fields = [&](const std::string& name) {
    const size_t row = ins.out.find(" " + name + " ");
    REQUIRE_MESSAGE(row != std::string::npos, name, "\n", ins.out);
    const size_t begin = ins.out.rfind('\n', row) + 1;
    char idx[8], op[32], nm[64], in[32], outs[32], dtype[16], wbits[8], abits[8];
    REQUIRE(std::sscanf(ins.out.substr(begin, ins.out.find('\n', row) - begin).c_str(), "%7s %31s %63s %31s %31s %15s %7s %7s",
                        idx, op, nm, in, outs, dtype, wbits, abits) == 8);
    return std::make_pair(std::string(wbits), std::string(abits));
  };
  CHECK(fields("input:nhwc:quantize").second == "8");  // the image enters at 8 bits
  CHECK(fields("/conv1/Conv").first == "8");
  CHECK(fields("/conv1/Conv").second == "4");  // its output is conv2's input: 4 bits
  CHECK(fields("/conv2/Conv").first == "4");
  CHECK(fields("/fc1/Gemm").first == "4");
  CHECK(fields("/fc1/Gemm").second == "8");  // fc1's output is the last layer's input
  CHECK(fields("/fc2/Gemm").first == "8");
}

TEST_CASE("rtn W4A4 lenet: integer and simulated predictions agree sample by sample") {
  Graph fg;
  REQUIRE(load_any_model(kLenet, &fg).is_ok());
  quant::CalibrationData calib;
  const Status c = load_calibration_set("fashion-mnist:train", kDefaultFashionMnistDir, 200, 0, kFashionMnistMean,
                                        kFashionMnistStd, fg, &calib);
  REQUIRE_MESSAGE(c.is_ok(), c.message());
  CHECK(calib.samples == 200);
  quant::RtnOptions opt;
  opt.weight_bits = 4;
  opt.activation_bits = 4;
  Graph q, sim;
  const Status s = quant::quantize_graph_rtn(fg, calib, opt, &q, &sim, nullptr);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  ImageDataset test;
  REQUIRE(load_fashion_mnist(kDefaultFashionMnistDir, "test", &test).is_ok());
  EvalOptions eo;
  const bool xnn = backend_available(Backend::kXnnpack);
  eo.backend = xnn ? Backend::kXnnpack : Backend::kReference;
  eo.limit = xnn ? 2000 : 300;  // the reference int8 kernels unpack 4-bit weights as they go: slower
  EvalResult ri, rs;
  REQUIRE(evaluate_classifier(q, test, eo, &ri).is_ok());
  REQUIRE(evaluate_classifier(sim, test, eo, &rs).is_ok());
  int32_t disagree = 0;
  for (size_t i = 0; i < ri.predictions.size(); ++i) disagree += ri.predictions[i] != rs.predictions[i];
  MESSAGE("W4A4 lenet on ", ri.samples, " test images (", std::string(backend_name(eo.backend)), "): integer ", ri.top1,
          "%, simulated ", rs.top1, "%, ", disagree, " disagreements");
  CHECK(disagree <= std::max(1, ri.samples / 1000));
}

#endif  // TQ_WITH_QUANT
