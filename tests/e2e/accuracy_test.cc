// End to end: each reference model, trained in PyTorch (examples/fashion_mnist/train.py), goes
// ONNX -> importer -> .tqm bytes -> verified loader -> interpreter, and must reproduce PyTorch:
// top-1 on all 10 000 test images within 0.02 points, the first 100 logits within 1e-4.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "tinyquant/file_io.h"
#include "tinyquant/model_io.h"
#include "tinyquant/onnx_import.h"
#include "toolkit/toolkit.h"

using namespace tinyquant;

namespace {

struct Record {
  double top1 = -1;
  std::vector<double> logits;
};

// The records are written by train.py with json.dump: flat keys, one nested list of lists.
Record read_record(const std::string& path) {
  std::vector<uint8_t> bytes;
  Record r;
  if (!read_file(path.c_str(), 1 << 24, &bytes).is_ok()) return r;
  const std::string text(bytes.begin(), bytes.end());
  size_t p = text.find("\"test_top1\":");
  if (p != std::string::npos) r.top1 = std::strtod(text.c_str() + p + 12, nullptr);
  p = text.find("\"logits_first100\":");
  if (p == std::string::npos) return r;
  const char* c = text.c_str() + p + 18;
  while (*c == ' ') ++c;
  int depth = 0;
  do {
    if (*c == '[') ++depth, ++c;
    else if (*c == ']') --depth, ++c;
    else if (*c == ',' || *c == ' ') ++c;
    else {
      char* end = nullptr;
      r.logits.push_back(std::strtod(c, &end));
      if (end == c) break;
      c = end;
    }
  } while (depth > 0 && *c);
  return r;
}

void check_model(const std::string& name, Backend backend) {
  if (!backend_available(backend)) return;
  const std::string dir = TQ_MODELS_DIR;
  const Record rec = read_record(dir + "/" + name + ".json");
  REQUIRE_MESSAGE(rec.top1 > 0, "missing or unreadable ", dir, "/", name, ".json");
  REQUIRE(rec.logits.size() == 1000);

  Graph imported;
  Status s = import_onnx_file((dir + "/" + name + ".onnx").c_str(), &imported);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  std::vector<uint8_t> bytes;
  s = serialize_model(imported, &bytes);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  Graph graph;
  s = load_model(bytes.data(), bytes.size(), &graph, (name + ".tqm").c_str());
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));

  ImageDataset test;
  s = load_fashion_mnist(kDefaultFashionMnistDir, "test", &test);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  REQUIRE(test.count == 10000);

  // TQ_E2E_LIMIT=N (at least 100) runs the first N images only, for runs under emulation
  // (.ci/cross-aarch64.sh): the 100 logits are still compared, the top-1 only over all 10 000.
  const char* limit_env = std::getenv("TQ_E2E_LIMIT");
  const int32_t limit = limit_env ? std::atoi(limit_env) : 0;
  REQUIRE_MESSAGE((limit == 0 || (limit >= 100 && limit <= 10000)), "TQ_E2E_LIMIT must be 100..10000, got ", limit_env);

  EvalOptions opt;
  opt.limit = limit;
  opt.backend = backend;
  opt.threads = 2;
  opt.batch = 100;
  opt.keep_logits = 100;
  EvalResult r;
  s = evaluate_classifier(graph, test, opt, &r);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  REQUIRE(r.classes == 10);
  double worst = 0;
  for (size_t i = 0; i < 1000; ++i) worst = std::max(worst, std::fabs(r.logits[i] - rec.logits[i]));
  MESSAGE(name, " on ", std::string(backend_name(backend)), ": top-1 ", r.top1, "% (PyTorch ", rec.top1, "%), max |logit diff| ",
          worst, ", ", r.seconds, " s");
  CHECK(r.samples == (limit ? limit : 10000));
  if (!limit) CHECK(std::fabs(r.top1 - rec.top1) <= 0.02 + 1e-9);
  CHECK(worst <= 1e-4);
  // Every op of these models runs on XNNPACK (the importer needs no Transpose for any of them).
  if (backend == Backend::kXnnpack) CHECK(r.fallback_ops == 0);
}

}  // namespace

TEST_CASE("e2e lenet reference") { check_model("lenet", Backend::kReference); }
TEST_CASE("e2e lenet xnnpack") { check_model("lenet", Backend::kXnnpack); }
TEST_CASE("e2e resnet20 reference") { check_model("resnet20", Backend::kReference); }
TEST_CASE("e2e resnet20 xnnpack") { check_model("resnet20", Backend::kXnnpack); }
TEST_CASE("e2e mobilenetv2 reference") { check_model("mobilenetv2", Backend::kReference); }
TEST_CASE("e2e mobilenetv2 xnnpack") { check_model("mobilenetv2", Backend::kXnnpack); }
// zoo: every other op the importer supports (grouped/dilated conv, Clip, Mul, Concat, AveragePool,
// standalone BatchNormalization, Reshape, MatMul, Gemm) — stands in for a model trained elsewhere.
TEST_CASE("e2e zoo reference") { check_model("zoo", Backend::kReference); }
TEST_CASE("e2e zoo xnnpack") { check_model("zoo", Backend::kXnnpack); }
