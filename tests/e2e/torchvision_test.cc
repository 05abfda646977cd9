// Models we did not design: torchvision's resnet18, mobilenet_v2, squeezenet1_1 and densenet121
// (random weights, randomised batch-norm statistics) exported by Debian's PyTorch, imported and
// run on both backends, compared with PyTorch's own output on the same input.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "data/npy.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/onnx_import.h"

using namespace tinyquant;

TEST_CASE("e2e torchvision models import and match PyTorch on both backends") {
  char tmpl[] = "/tmp/tq_torchvision_XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  const std::string dir = tmpl;
  const std::string cmd = std::string("/usr/bin/python3 ") + TQ_SOURCE_DIR + "/tests/e2e/export_torchvision.py " + dir +
                          " > " + dir + "/export.log 2>&1";
  const int rc = std::system(cmd.c_str());
  const bool exported = WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
  REQUIRE_MESSAGE(exported, "export failed, see ", dir, "/export.log");

  for (const char* name : {"resnet18", "mobilenet_v2", "squeezenet1_1", "densenet121"}) {
    CAPTURE(name);
    Graph graph;
    Status s = import_onnx_file((dir + "/" + name + ".onnx").c_str(), &graph);
    REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
    NpyArray x, y;
    REQUIRE(read_npy(dir + "/" + name + ".input.npy", &x).is_ok());
    REQUIRE(read_npy(dir + "/" + name + ".output.npy", &y).is_ok());
    float scale = 0;
    for (float v : y.data) scale = std::max(scale, std::fabs(v));
    for (Backend backend : {Backend::kReference, Backend::kXnnpack}) {
      if (!backend_available(backend)) continue;
      Interpreter interp;
      PrepareOptions opt;
      opt.batch = x.shape[0];
      opt.backend = backend;
      s = interp.prepare(graph, opt);
      REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
      REQUIRE(interp.input(0).elements() == static_cast<int64_t>(x.data.size()));
      std::memcpy(interp.input(0).data, x.data.data(), x.data.size() * sizeof(float));
      REQUIRE(interp.invoke().is_ok());
      const TensorView out = interp.output(0);
      REQUIRE(out.elements() == static_cast<int64_t>(y.data.size()));
      float worst = 0;
      for (size_t i = 0; i < y.data.size(); ++i) worst = std::max(worst, std::fabs(out.as<float>()[i] - y.data[i]));
      MESSAGE(std::string(name), " on ", std::string(backend_name(backend)), ": max |diff| ", worst, " (outputs up to ", scale, ")");
      CHECK(worst <= 1e-4f * std::max(1.0f, scale));
    }
  }
  std::system(("rm -rf " + dir).c_str());  // ~80 MB of exported models
}
