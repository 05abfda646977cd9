// Float inference latency of tinyquant's backends on a model, printed as JSON lines so
// bench/float_latency.py can put them in one table next to PyTorch measured in the same run.
//   tq_bench_latency MODEL.(onnx|tqm) [--batch 1,64] [--threads 1] [--seconds 2] [--backends reference,xnnpack]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tinyquant/port.h"
#include "toolkit/json.h"
#include "toolkit/toolkit.h"

using namespace tinyquant;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [--batch 1,64] [--threads N] [--seconds S] [--backends a,b]\n", argv[0]);
    return 2;
  }
  std::string model = argv[1], batches = "1,64", backends = "reference,xnnpack";
  int threads = 1;
  double seconds = 2.0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--batch") batches = v;
    else if (k == "--threads") threads = std::atoi(v.c_str());
    else if (k == "--seconds") seconds = std::atof(v.c_str());
    else if (k == "--backends") backends = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  Graph graph;
  Status s = load_any_model(model, &graph);
  if (!s.is_ok()) {
    std::fprintf(stderr, "error: %s\n", s.message());
    return 1;
  }
  std::mt19937 rng(0);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const std::string& b : split(backends)) {
    Backend backend;
    if (!parse_backend(b.c_str(), &backend) || !backend_available(backend)) continue;
    for (const std::string& bs : split(batches)) {
      Interpreter interp;
      PrepareOptions opt;
      opt.batch = std::atoi(bs.c_str());
      opt.backend = backend;
      opt.threads = threads;
      s = interp.prepare(graph, opt);
      if (!s.is_ok()) {
        std::fprintf(stderr, "error: %s\n", s.message());
        return 1;
      }
      float* in = interp.input(0).as<float>();
      // Token ids (the input read by a Gather from a table of `ids` rows): whole numbers in
      // [1, ids) (0 is padding); anything else: normal floats.
      int32_t ids = 0;
      for (const Operator& op : graph.operators)
        if (op.type == OpType::kGather && op.inputs[0] == graph.inputs[0])
          ids = graph.tensors[op.inputs[1]].shape[0];
      std::uniform_int_distribution<int32_t> id(1, std::max(1, ids - 1));
      for (int64_t i = 0; i < interp.input(0).elements(); ++i)
        in[i] = ids > 1 ? static_cast<float>(id(rng)) : dist(rng);
      // The arena may reuse the input's bytes after its last reader: each invoke gets it afresh
      // (untimed), as a caller writes new input before each invoke.
      const std::vector<float> input(in, in + interp.input(0).elements());
      auto refill = [&] { std::copy(input.begin(), input.end(), interp.input(0).as<float>()); };
      // Warm up, then time single invokes until `seconds` have passed (at least 5 runs).
      for (int i = 0; i < 2; ++i) refill(), s = interp.invoke();
      std::vector<double> ms;
      const uint64_t start = port::now_us();
      while (ms.size() < 5 || (port::now_us() - start) < seconds * 1e6) {
        refill();
        const uint64_t t0 = port::now_us();
        s = interp.invoke();
        ms.push_back((port::now_us() - t0) / 1000.0);
        if (!s.is_ok() || ms.size() >= 100000) break;
      }
      if (!s.is_ok()) {
        std::fprintf(stderr, "error: %s\n", s.message());
        return 1;
      }
      std::sort(ms.begin(), ms.end());
      const Json row = {{"model", model},
                        {"engine", "tinyquant-" + b},
                        {"batch", opt.batch},
                        {"threads", threads},
                        {"median_ms", json_round(ms[ms.size() / 2], 4)},
                        {"p10_ms", json_round(ms[ms.size() / 10], 4)},
                        {"p90_ms", json_round(ms[ms.size() * 9 / 10], 4)},
                        {"runs", ms.size()},
                        {"arena_bytes", interp.arena_bytes()},
                        {"packed_weight_bytes", interp.backend_weight_bytes()}};
      std::printf("%s\n", json_line(row).c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
