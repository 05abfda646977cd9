// Models from the wild: the forms other exporters write (tests/onnx/wild/make_models.py builds
// them), imported and run on both backends, compared with ONNX Runtime — the reference for ONNX
// semantics — on the same inputs. Prints one row per model: max abs / relative difference per
// backend and the Transposes executed before (ONNX nodes) and after (Graph ops) import.
//
// ONNX Runtime is the onnxruntime-node package under TQ_ORT_DIR (.ci/install-deps.sh installs it);
// the environment variable of the same name overrides the configured path.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "data/npy.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/onnx_import.h"
#include "tinyquant/pipeline.h"
#include "toolkit/toolkit.h"

using namespace tinyquant;

namespace {

struct ManifestRow {
  std::string name;
  int opset = 0, inputs = 0, outputs = 0, onnx_transposes = 0;
  std::string what;
};

std::vector<ManifestRow> read_manifest(const std::string& path) {
  std::vector<ManifestRow> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    ManifestRow r;
    std::string opset, inputs, outputs, transposes;
    std::getline(fields, r.name, '\t');
    std::getline(fields, opset, '\t');
    std::getline(fields, inputs, '\t');
    std::getline(fields, outputs, '\t');
    std::getline(fields, transposes, '\t');
    std::getline(fields, r.what);
    r.opset = std::atoi(opset.c_str());
    r.inputs = std::atoi(inputs.c_str());
    r.outputs = std::atoi(outputs.c_str());
    r.onnx_transposes = std::atoi(transposes.c_str());
    rows.push_back(r);
  }
  return rows;
}

// Random N(0, 1) samples shaped like `graph`'s input k (the wild models' inputs are drawn so too).
NpyArray normal_samples(const Graph& graph, int k, int32_t n, uint32_t seed) {
  NpyArray a;
  a.shape = graph.tensors[graph.inputs[k]].shape;
  a.shape[0] = n;
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  a.data.resize(static_cast<size_t>(shape_elements(a.shape)));
  for (float& v : a.data) v = dist(rng);
  return a;
}

// W8A8 round-to-nearest (calibrated on 256 random samples), the worst output's SQNR against the
// float graph on 32 others. (With 64 samples the observer's range for a 5-value output clipped
// samples drawn later: 18.7 dB.)
double rtn_w8a8_sqnr(const Graph& graph) {
  quant::CalibrationData calib;
  calib.samples = 256;
  calib.dataset = "normal(0,1)";
  std::vector<NpyArray> test;
  for (size_t k = 0; k < graph.inputs.size(); ++k) {
    NpyArray x = normal_samples(graph, static_cast<int>(k), 256, static_cast<uint32_t>(11 + k));
    if (k == 0)
      calib.values = std::move(x.data);
    else
      calib.more_inputs.push_back(std::move(x.data));
    test.push_back(normal_samples(graph, static_cast<int>(k), 32, static_cast<uint32_t>(40 + k)));
  }
  Graph q;
  const Status s = quant::quantize_graph_rtn(graph, calib, quant::RtnOptions(), &q, nullptr, nullptr);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  FidelityResult r;
  EvalOptions opt;
  opt.batch = 8;
  const Status c = compare_models(q, graph, test, opt, &r);
  REQUIRE_MESSAGE(c.is_ok(), std::string(c.message()));
  double worst = INFINITY;
  for (const FidelityOutput& o : r.outputs) worst = std::min(worst, o.sqnr_db);
  return worst;
}

std::string ort_dir() {
  const char* env = std::getenv("TQ_ORT_DIR");
  return env && *env ? env : TQ_ORT_DIR;
}

}  // namespace

TEST_CASE("wild models import and match ONNX Runtime on both backends") {
  const std::string ort = ort_dir();
  REQUIRE_MESSAGE(std::ifstream(ort + "/node_modules/onnxruntime-node/package.json").good(),
                  "ONNX Runtime (npm onnxruntime-node) not found under ", ort,
                  "; run .ci/install-deps.sh or set TQ_ORT_DIR");
  char tmpl[] = "/tmp/tq_wild_XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  const std::string dir = tmpl;
  const std::string cmd = std::string("/usr/bin/python3 ") + TQ_SOURCE_DIR + "/tests/onnx/wild/make_models.py " + dir +
                          " " + ort + " > " + dir + "/make.log 2>&1";
  const int rc = std::system(cmd.c_str());
  REQUIRE_MESSAGE((WIFEXITED(rc) && WEXITSTATUS(rc) == 0), "building the models failed, see ", dir, "/make.log");
  const std::vector<ManifestRow> rows = read_manifest(dir + "/manifest.tsv");
  REQUIRE(rows.size() >= 15);

  MESSAGE("model                        opset  transposes onnx->tq   reference abs / rel      xnnpack abs / rel"
          "    W8A8 RTN SQNR");
  int failures = 0;
  for (const ManifestRow& row : rows) {
    CAPTURE(row.name);
    Graph graph;
    Status s = import_onnx_file((dir + "/" + row.name + ".onnx").c_str(), &graph);
    CHECK_MESSAGE(s.is_ok(), std::string(s.message()));
    if (!s.is_ok()) {
      ++failures;
      continue;
    }
    CHECK(static_cast<int>(graph.inputs.size()) == row.inputs);
    CHECK(static_cast<int>(graph.outputs.size()) == row.outputs);
    int tq_transposes = 0;
    for (const Operator& op : graph.operators) tq_transposes += op.type == OpType::kTranspose;
    std::vector<NpyArray> xs(row.inputs), ys(row.outputs);
    for (int k = 0; k < row.inputs; ++k)
      REQUIRE(read_npy(dir + "/" + row.name + ".in." + std::to_string(k) + ".npy", &xs[k]).is_ok());
    for (int k = 0; k < row.outputs; ++k)
      REQUIRE(read_npy(dir + "/" + row.name + ".ort." + std::to_string(k) + ".npy", &ys[k]).is_ok());
    char line[256];
    std::string cells;
    for (Backend backend : {Backend::kReference, Backend::kXnnpack}) {
      if (!backend_available(backend)) continue;
      CAPTURE(backend_name(backend));
      Interpreter interp;
      PrepareOptions opt;
      opt.batch = xs[0].shape[0];
      opt.backend = backend;
      s = interp.prepare(graph, opt);
      REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
      for (int k = 0; k < row.inputs; ++k) {
        REQUIRE(interp.input(k).elements() == static_cast<int64_t>(xs[k].data.size()));
        std::memcpy(interp.input(k).data, xs[k].data.data(), xs[k].data.size() * sizeof(float));
      }
      REQUIRE(interp.invoke().is_ok());
      double worst_abs = 0.0, worst_rel = 0.0;
      for (int k = 0; k < row.outputs; ++k) {
        const TensorView out = interp.output(k);
        REQUIRE(out.elements() == static_cast<int64_t>(ys[k].data.size()));
        double scale = 0.0;
        for (float v : ys[k].data) scale = std::max(scale, static_cast<double>(std::fabs(v)));
        for (size_t i = 0; i < ys[k].data.size(); ++i) {
          const double d = std::fabs(static_cast<double>(out.as<float>()[i]) - ys[k].data[i]);
          worst_abs = std::max(worst_abs, d);
          worst_rel = std::max(worst_rel, d / std::max(1.0, scale));  // relative to the output's range
        }
      }
      CHECK(worst_rel <= 1e-4);
      std::snprintf(line, sizeof(line), "   %9.2e / %8.2e", worst_abs, worst_rel);
      cells += line;
    }
    const double sqnr = rtn_w8a8_sqnr(graph);
    CHECK(sqnr > 25.0);
    std::snprintf(line, sizeof(line), "    %6.1f dB", sqnr);
    cells += line;
    std::snprintf(line, sizeof(line), "%-28s %5d  %6d -> %-6d", row.name.c_str(), row.opset, row.onnx_transposes,
                  tq_transposes);
    const std::string row_text = std::string(line) + cells;
    MESSAGE(row_text);
  }
  CHECK(failures == 0);
  std::system(("rm -rf " + dir).c_str());
}
