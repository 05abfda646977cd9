// tq — the tinyquant command line. `tq help` lists the commands.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "data/npy.h"
#include "tinyquant/model_io.h"
#include "toolkit/json.h"
#include "toolkit/toolkit.h"
#if TQ_WITH_QUANT
#include "toolkit/quantize.h"
#endif

using namespace tinyquant;

namespace {

const char* kUsage =
    "usage: tq <command> [options]\n"
    "\n"
    "commands:\n"
    "  import MODEL.onnx -o MODEL.tqm      convert an ONNX model (opsets 11-17) to a verified .tqm\n"
    "  eval MODEL.(tqm|onnx) [options]     top-1 accuracy on Fashion-MNIST\n"
    "      --data fashion-mnist            dataset (the only one so far)\n"
    "      --split test|train              split (default test)\n"
    "      --data-dir DIR                  IDX files (default /usr/share/datasets/fashion-mnist)\n"
    "      --limit N                       first N images only\n"
    "      --backend xnnpack|reference     kernels (default xnnpack where built)\n"
    "      --threads N                     XNNPACK threads (default 1)\n"
    "      --batch N                       images per invoke (default 100)\n"
    "      --mean M --std S                preprocessing (default 0.2860 / 0.3530)\n"
    "      --json                          one JSON object on stdout\n"
    "      --simulate                      evaluate the fake-quant float twin of a quantized .tqm\n"
    "                                      (rebuilt from its int8 weights, scales and zero points)\n"
    "  quantize MODEL.(onnx|tqm) -o OUT.tqm [options]   post-training quantization\n"
    "      --method rtn                    round-to-nearest after range calibration (the only one so far)\n"
    "      --wbits B --abits B             weight / activation bits, 2..8 (default 8 / 8)\n"
    "      --calib SPEC                    fashion-mnist:train (default), fashion-mnist:test or npy:FILE.npy\n"
    "      --calib-size N --seed S         a seeded random subset of N images (default 1000, seed 0)\n"
    "      --data-dir DIR                  IDX files (default /usr/share/datasets/fashion-mnist)\n"
    "      --backend B --threads N         float kernels for calibration\n"
    "      --batch N                       calibration samples per invoke (default 50)\n"
    "      --mean M --std S                preprocessing (default 0.2860 / 0.3530)\n"
    "      --json                          the per-layer report as JSON on stdout\n"
    "  inspect MODEL.(tqm|onnx)            graph, tensors, dtypes, bits, bytes per layer, arena\n"
    "  run MODEL.(tqm|onnx) --input X.npy -o Y.npy [--backend B] [--threads N]\n"
    "                                      run on a float32 .npy batch shaped like the model input\n"
    "  embed MODEL.tqm -o DIR/NAME [options]   a C++ source with the model bytes, test images and a\n"
    "                                      static arena for a program without a file system\n"
    "                                      (examples/mcu_inference); writes DIR/NAME.cc\n"
    "      --data fashion-mnist:test|train images to embed (default fashion-mnist:test)\n"
    "      --count N                       the first N images (default 200)\n"
    "      --data-dir DIR --mean M --std S as for eval\n";

int fail(const Status& s) {
  std::fprintf(stderr, "tq: error: %s\n", s.message());
  return 1;
}

int usage_error(const char* fmt, const char* arg) {
  std::fprintf(stderr, "tq: ");
  std::fprintf(stderr, fmt, arg);
  std::fprintf(stderr, "\n(run 'tq help' for usage)\n");
  return 2;
}

bool parse_int(const char* text, int32_t lo, int32_t hi, int32_t* out) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (errno || !end || *end || end == text || v < lo || v > hi) return false;
  *out = static_cast<int32_t>(v);
  return true;
}

bool parse_float(const char* text, float* out) {
  errno = 0;
  char* end = nullptr;
  const float v = std::strtof(text, &end);
  if (errno || !end || *end || end == text || !(v == v)) return false;
  *out = v;
  return true;
}

// Parsed command line: one positional (the model) and --key value / --flag options.
struct Args {
  std::string command, model;
  std::vector<std::pair<std::string, std::string>> options;
  bool has(const char* key) const {
    for (auto& o : options)
      if (o.first == key) return true;
    return false;
  }
  const char* get(const char* key, const char* fallback = nullptr) const {
    for (auto& o : options)
      if (o.first == key) return o.second.c_str();
    return fallback;
  }
};

int parse_args(int argc, char** argv, const std::vector<std::string>& valued, const std::vector<std::string>& flags,
               Args* args) {
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-o") a = "--output";
    if (a.rfind("--", 0) == 0) {
      bool is_valued = false, is_flag = false;
      for (auto& v : valued) is_valued |= v == a;
      for (auto& f : flags) is_flag |= f == a;
      if (is_flag) {
        args->options.emplace_back(a, "1");
      } else if (is_valued) {
        if (i + 1 >= argc) return usage_error("option %s needs a value", a.c_str());
        args->options.emplace_back(a, argv[++i]);
      } else {
        return usage_error("unknown option '%s' for this command", a.c_str());
      }
    } else if (args->model.empty()) {
      args->model = a;
    } else {
      return usage_error("unexpected argument '%s'", a.c_str());
    }
  }
  if (args->model.empty()) return usage_error("%s: missing the MODEL argument", args->command.c_str());
  return 0;
}

int parse_backend_option(const Args& args, Backend* backend, int32_t* threads) {
  *backend = backend_available(Backend::kXnnpack) ? Backend::kXnnpack : Backend::kReference;
  if (const char* b = args.get("--backend")) {
    if (!parse_backend(b, backend)) return usage_error("--backend '%s': expected xnnpack or reference", b);
    if (!backend_available(*backend)) return usage_error("--backend %s is not in this build", b);
  }
  *threads = 1;
  if (const char* t = args.get("--threads"))
    if (!parse_int(t, 1, 256, threads)) return usage_error("--threads '%s': expected an integer 1..256", t);
  return 0;
}

int cmd_import(const Args& args) {
  const char* out = args.get("--output");
  if (!out) return usage_error("%s: missing -o OUT.tqm", "import");
  Graph graph;
  Status s = load_any_model(args.model, &graph);
  if (!s.is_ok()) return fail(s);
  graph.producer = "tinyquant import " + args.model;
  s = save_model_file(graph, out);
  if (!s.is_ok()) return fail(s);
  std::fprintf(stderr, "tq: wrote %s (%zu operators, %zu tensors)\n", out, graph.operators.size(),
               graph.tensors.size());
  return 0;
}

int cmd_eval(const Args& args) {
  EvalOptions opt;
  if (int rc = parse_backend_option(args, &opt.backend, &opt.threads)) return rc;
  const std::string data = args.get("--data", "fashion-mnist");
  if (data != "fashion-mnist") return usage_error("--data '%s': only fashion-mnist is supported", data.c_str());
  const std::string split = args.get("--split", "test");
  if (split != "test" && split != "train") return usage_error("--split '%s': expected test or train", split.c_str());
  if (const char* v = args.get("--limit"))
    if (!parse_int(v, 1, 1 << 30, &opt.limit)) return usage_error("--limit '%s': expected a positive integer", v);
  if (const char* v = args.get("--batch"))
    if (!parse_int(v, 1, 4096, &opt.batch)) return usage_error("--batch '%s': expected an integer 1..4096", v);
  if (const char* v = args.get("--mean"))
    if (!parse_float(v, &opt.mean)) return usage_error("--mean '%s': expected a number", v);
  if (const char* v = args.get("--std"))
    if (!parse_float(v, &opt.std) || !(opt.std > 0)) return usage_error("--std '%s': expected a number > 0", v);
  const bool json = args.has("--json");
  opt.progress = !json && !args.has("--quiet");

  Graph graph;
  Status s = load_any_model(args.model, &graph);
  if (!s.is_ok()) return fail(s);
  const bool simulate = args.has("--simulate");
  if (simulate) {
#if TQ_WITH_QUANT
    Graph sim;
    s = quant::build_simulated_graph(graph, &sim);
    if (!s.is_ok()) return fail(s.with_context("%s", args.model.c_str()));
    graph = std::move(sim);
#else
    return usage_error("%s: this build has no quant/ (TQ_WITH_QUANT=OFF)", "--simulate");
#endif
  }
  ImageDataset ds;
  s = load_fashion_mnist(args.get("--data-dir", kDefaultFashionMnistDir), split, &ds);
  if (!s.is_ok()) return fail(s);
  EvalResult r;
  s = evaluate_classifier(graph, ds, opt, &r);
  if (!s.is_ok()) return fail(s.with_context("%s", args.model.c_str()));
  char checksum[24];
  std::snprintf(checksum, sizeof(checksum), "0x%016llx", static_cast<unsigned long long>(r.checksum));
  if (json) {
    const Json j = {{"model", args.model},
                    {"data", data},
                    {"split", split},
                    {"top1", json_round(r.top1, 4)},
                    {"correct", r.correct},
                    {"samples", r.samples},
                    {"backend", backend_name(opt.backend)},
                    {"threads", opt.threads},
                    {"batch", opt.batch},
                    {"seconds", json_round(r.seconds, 3)},
                    {"arena_bytes", r.arena_bytes},
                    {"backend_weight_bytes", r.backend_weight_bytes},
                    {"fallback_ops", r.fallback_ops},
                    {"simulated", simulate},
                    {"checksum", checksum}};
    std::printf("%s\n", json_line(j).c_str());
  } else {
    std::printf("%s%s: top-1 %.2f%% (%d/%d) on %s %s, backend %s, %d thread(s), %.2f s, checksum %s\n",
                args.model.c_str(), simulate ? " (simulated)" : "", r.top1, r.correct, r.samples, data.c_str(),
                split.c_str(), backend_name(opt.backend), opt.threads, r.seconds, checksum);
  }
  return 0;
}

#if TQ_WITH_QUANT
int cmd_quantize(const Args& args) {
  const char* out = args.get("--output");
  if (!out) return usage_error("%s: missing -o OUT.tqm", "quantize");
  const std::string method = args.get("--method", "rtn");
  if (method != "rtn") return usage_error("--method '%s': only rtn is implemented", method.c_str());
  quant::RtnOptions opt;
  if (const char* v = args.get("--wbits"))
    if (!parse_int(v, 2, 8, &opt.weight_bits)) return usage_error("--wbits '%s': expected 2..8", v);
  if (const char* v = args.get("--abits"))
    if (!parse_int(v, 2, 8, &opt.activation_bits)) return usage_error("--abits '%s': expected 2..8", v);
  int32_t calib_size = 1000;
  if (const char* v = args.get("--calib-size"))
    if (!parse_int(v, 1, 1 << 30, &calib_size))
      return usage_error("--calib-size '%s': expected a positive integer (an empty calibration set cannot calibrate)", v);
  int32_t seed = 0;
  if (const char* v = args.get("--seed"))
    if (!parse_int(v, 0, 0x7fffffff, &seed)) return usage_error("--seed '%s': expected an integer >= 0", v);
  opt.seed = static_cast<uint64_t>(seed);
  if (const char* v = args.get("--batch"))
    if (!parse_int(v, 1, 4096, &opt.batch)) return usage_error("--batch '%s': expected an integer 1..4096", v);
  float mean = kFashionMnistMean, std_dev = kFashionMnistStd;
  if (const char* v = args.get("--mean"))
    if (!parse_float(v, &mean)) return usage_error("--mean '%s': expected a number", v);
  if (const char* v = args.get("--std"))
    if (!parse_float(v, &std_dev) || !(std_dev > 0)) return usage_error("--std '%s': expected a number > 0", v);
  if (int rc = parse_backend_option(args, &opt.backend, &opt.threads)) return rc;
  const bool json = args.has("--json");
  opt.progress = true;

  Graph graph;
  Status s = load_any_model(args.model, &graph);
  if (!s.is_ok()) return fail(s);
  const std::string spec = args.get("--calib", "fashion-mnist:train");
  quant::CalibrationData calib;
  s = load_calibration_set(spec, args.get("--data-dir", kDefaultFashionMnistDir), calib_size, opt.seed, mean, std_dev,
                           graph, &calib);
  if (!s.is_ok()) return fail(s);
  std::fprintf(stderr, "tq: calibrating %s on %d samples of %s (rtn, W%dA%d)\n", args.model.c_str(), calib.samples,
               spec.c_str(), opt.weight_bits, opt.activation_bits);
  Graph quantized;
  quant::RtnReport report;
  s = quant::quantize_graph_rtn(graph, calib, opt, &quantized, nullptr, &report);
  if (!s.is_ok()) return fail(s.with_context("%s", args.model.c_str()));
  std::string report_json;
  if (json) {
    // RtnReport::json() writes its JSON by hand: re-read it, so that what we print is valid JSON or
    // an error (before the model is written), never a broken object.
    const Json j = Json::parse(report.json(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded())
      return fail(Status::error(StatusCode::kInternal, "%s: the quantize report is not valid JSON",
                                args.model.c_str()));
    report_json = json_line(j);
  }
  quantized.producer = "tinyquant quantize --method rtn " + args.model;
  s = save_model_file(quantized, out);
  if (!s.is_ok()) return fail(s);
  if (json)
    std::printf("%s\n", report_json.c_str());
  else
    print_rtn_report(report, stderr);
  std::fprintf(stderr, "tq: wrote %s (%zu operators, %zu tensors)\n", out, quantized.operators.size(),
               quantized.tensors.size());
  return 0;
}
#endif

int cmd_inspect(const Args& args) {
  Graph graph;
  Status s = load_any_model(args.model, &graph);
  if (!s.is_ok()) return fail(s);
  size_t bytes = 0;
  if (std::FILE* f = std::fopen(args.model.c_str(), "rb")) {
    std::fseek(f, 0, SEEK_END);
    bytes = static_cast<size_t>(std::ftell(f));
    std::fclose(f);
  }
  print_inspect(graph, args.model, bytes, stdout);
  return 0;
}

int cmd_run(const Args& args) {
  const char* in_path = args.get("--input");
  const char* out_path = args.get("--output");
  if (!in_path || !out_path) return usage_error("%s: needs --input X.npy and -o Y.npy", "run");
  PrepareOptions prep;
  if (int rc = parse_backend_option(args, &prep.backend, &prep.threads)) return rc;
  Graph graph;
  Status s = load_any_model(args.model, &graph);
  if (!s.is_ok()) return fail(s);
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1)
    return fail(Status::error(StatusCode::kUnsupported, "tq run handles models with one input and one output"));
  NpyArray x;
  s = read_npy(in_path, &x);
  if (!s.is_ok()) return fail(s);
  const Tensor& in = graph.tensors[graph.inputs[0]];
  bool match = x.shape.size() == in.shape.size() && !x.shape.empty() && x.shape[0] >= 1;
  for (size_t i = 1; match && i < in.shape.size(); ++i) match = x.shape[i] == in.shape[i];
  if (match && in.shape[0] > 0) match = x.shape[0] == in.shape[0];
  if (!match) {
    char want[96], got[96];
    std::vector<int32_t> w = in.shape;
    return fail(Status::error(StatusCode::kInvalidArgument, "%s has shape %s; model input '%s' expects %s (N = any batch)",
                              in_path, shape_str(x.shape.data(), (int)x.shape.size(), got, sizeof(got)),
                              in.name.c_str(), shape_str(w.data(), (int)w.size(), want, sizeof(want))));
  }
  Interpreter interp;
  prep.batch = x.shape[0];
  s = interp.prepare(graph, prep);
  if (!s.is_ok()) return fail(s);
  std::memcpy(interp.input(0).data, x.data.data(), x.data.size() * sizeof(float));
  s = interp.invoke();
  if (!s.is_ok()) return fail(s);
  const TensorView y = interp.output(0);
  std::vector<int32_t> shape(y.dims.d, y.dims.d + y.dims.rank);
  s = write_npy(out_path, shape, y.as<const float>());
  if (!s.is_ok()) return fail(s);
  char buf[96];
  std::fprintf(stderr, "tq: wrote %s %s\n", out_path, y.dims.str(buf, sizeof(buf)));
  return 0;
}

int cmd_embed(const Args& args) {
  EmbedOptions opt;
  opt.model = args.model;
  const char* out = args.get("--output");
  if (!out) return usage_error("%s: missing -o DIR/NAME", "embed");
  opt.output = out;
  opt.data = args.get("--data", "fashion-mnist:test");
  std::string split;
  if (!parse_embed_data_spec(opt.data, &split).is_ok())
    return usage_error("--data '%s': expected fashion-mnist:test or fashion-mnist:train", opt.data.c_str());
  opt.data_dir = args.get("--data-dir", kDefaultFashionMnistDir);
  if (const char* v = args.get("--count"))
    if (!parse_int(v, 1, 1 << 30, &opt.count)) return usage_error("--count '%s': expected a positive integer", v);
  if (const char* v = args.get("--mean"))
    if (!parse_float(v, &opt.mean)) return usage_error("--mean '%s': expected a number", v);
  if (const char* v = args.get("--std"))
    if (!parse_float(v, &opt.std) || !(opt.std > 0)) return usage_error("--std '%s': expected a number > 0", v);
  EmbedResult r;
  Status s = embed_model(opt, &r);
  if (!s.is_ok()) return fail(s);
  std::fprintf(stderr,
               "tq: wrote %s (model %s: %zu bytes, constants %zu bytes; %d images; arena %zu bytes, floor %zu)\n",
               r.path.c_str(), r.name.c_str(), r.model_bytes, r.constant_bytes, r.count, r.arena_bytes,
               r.min_live_bytes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "help") || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  Args args;
  args.command = argv[1];
  const std::string& c = args.command;
  int rc = 0;
  if (c == "import") {
    if ((rc = parse_args(argc, argv, {"--output"}, {}, &args))) return rc;
    return cmd_import(args);
  }
  if (c == "eval") {
    if ((rc = parse_args(argc, argv,
                         {"--data", "--split", "--data-dir", "--limit", "--backend", "--threads", "--batch", "--mean",
                          "--std"},
                         {"--json", "--quiet", "--simulate"}, &args)))
      return rc;
    return cmd_eval(args);
  }
  if (c == "quantize") {
#if TQ_WITH_QUANT
    if ((rc = parse_args(argc, argv,
                         {"--output", "--method", "--wbits", "--abits", "--calib", "--calib-size", "--seed", "--data-dir",
                          "--backend", "--threads", "--batch", "--mean", "--std"},
                         {"--json"}, &args)))
      return rc;
    return cmd_quantize(args);
#else
    return usage_error("%s: this build has no quant/ (TQ_WITH_QUANT=OFF)", "quantize");
#endif
  }
  if (c == "inspect") {
    if ((rc = parse_args(argc, argv, {}, {}, &args))) return rc;
    return cmd_inspect(args);
  }
  if (c == "run") {
    if ((rc = parse_args(argc, argv, {"--input", "--output", "--backend", "--threads"}, {}, &args))) return rc;
    return cmd_run(args);
  }
  if (c == "embed") {
    if ((rc = parse_args(argc, argv, {"--output", "--data", "--data-dir", "--count", "--mean", "--std"}, {}, &args)))
      return rc;
    return cmd_embed(args);
  }
  return usage_error("unknown command '%s'", c.c_str());
}
