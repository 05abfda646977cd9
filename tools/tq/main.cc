// tq — the tinyquant command line. `tq help` lists the commands and their options.
// Each command has one struct its options bind into (ImportArgs, EvalArgs, ...) and one add_*
// function that declares them with CLI11 (help text, default, range: one line per option); its
// cmd_* function then runs on the parsed struct. Exit codes: 0 done, 1 the command failed,
// 2 a bad command line (`tq help` and `--help` exit 0).
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <algorithm>
#include <atomic>
#include <thread>
#include <csignal>
#if defined(__GLIBC__)
#include <malloc.h>
#include <sys/stat.h>
#endif

#include "data/image.h"
#include "data/npy.h"
#include "tinyquant/file_io.h"
#include "tinyquant/model_io.h"
#if TQ_WITH_QUANT
#include "tinyquant.h"
#include "tinyquant/recalibrate.h"
#endif
#include "toolkit/json.h"
#include "toolkit/toolkit.h"
#if TQ_WITH_QUANT
#include "toolkit/quantize.h"
#include "toolkit/plot.h"
#include "tinyquant/port.h"
#include "data/idx.h"
#endif

using namespace tinyquant;

namespace {

constexpr int kUsageError = 2;
constexpr int32_t kMaxCount = 1 << 30;

int fail(const Status& s) {
  std::fprintf(stderr, "tq: error: %s\n", s.message());
  return 1;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "tq: %s\n(run 'tq help' for usage)\n", message.c_str());
  return kUsageError;
}

// strtof's syntax, as before CLI11; "nan" parses as a float but is refused (a NaN mean or std
// would silently turn every input into NaN).
CLI::Validator number(bool positive) {
  return CLI::Validator(
      [positive](std::string& text) -> std::string {
        errno = 0;
        char* end = nullptr;
        const float v = std::strtof(text.c_str(), &end);
        if (errno || end == text.c_str() || *end || !(v == v)) return "'" + text + "': expected a number";
        if (positive && !(v > 0)) return "'" + text + "': expected a number > 0";
        return std::string();
      },
      positive ? "NUMBER > 0" : "NUMBER");
}

// `check`, with the reason for its bound appended to its error message.
CLI::Validator because(const CLI::Validator& check, const std::string& why) {
  return CLI::Validator(
      [check, why](std::string& text) {
        std::string error = check(text);
        return error.empty() ? error : error + " (" + why + ")";
      },
      check.get_description());
}

void add_model(CLI::App* cmd, std::string* model, const char* what) {
  cmd->add_option("MODEL", *model, what)->required();
}

// The runtime's backend names, only those in this build; the default is XNNPACK where built.
void add_backend(CLI::App* cmd, Backend* backend, int32_t* threads, const char* what) {
  std::vector<std::string> names;
  for (Backend b : {Backend::kXnnpack, Backend::kReference})
    if (backend_available(b)) names.push_back(backend_name(b));
  *backend = backend_available(Backend::kXnnpack) ? Backend::kXnnpack : Backend::kReference;
  cmd->add_option_function<std::string>(
         "--backend", [backend](const std::string& name) { parse_backend(name.c_str(), backend); }, what)
      ->check(CLI::IsMember(names))
      ->default_str(backend_name(*backend));
  cmd->add_option("--threads", *threads, "XNNPACK threads")->check(CLI::Range(1, 256));
}

void add_preprocessing(CLI::App* cmd, std::string* data_dir, float* mean, float* std) {
  cmd->add_option("--data-dir", *data_dir, "Fashion-MNIST IDX files");
  cmd->add_option("--mean", *mean, "preprocessing: (pixel / 255 - mean) / std")->check(number(false));
  cmd->add_option("--std", *std, "preprocessing, see --mean")->check(number(true));
}

// The text data set (examples/langid): Debian's word lists and the model's vocabulary file.
void add_text_data(CLI::App* cmd, std::string* dict_dir, std::string* vocab) {
  cmd->add_option("--dict-dir", *dict_dir, "langid: the Debian word lists (wamerican, wfrench, ...)");
  cmd->add_option("--vocab", *vocab, "langid: the model's vocabulary, one character per line (id = line + 2)");
}

bool ends_with_onnx(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
}

void add_input_shapes(CLI::App* cmd, std::vector<std::string>* specs) {
  cmd->add_option("--input-shape", *specs,
                  "NAME=D0,D1,...: the shape of an ONNX input with dynamic dims (repeat per input), e.g. "
                  "x=1,3,48,192");
}

// --- import ---

struct ImportArgs {
  std::string model, output;
  bool list_ops = false;
  std::vector<std::string> input_shapes;
};

CLI::App* add_import(CLI::App& tq, ImportArgs& a) {
  CLI::App* cmd = tq.add_subcommand("import", "convert an ONNX model (opsets 7-21) to a verified .tqm");
  cmd->add_option("MODEL", a.model, "MODEL.onnx");
  cmd->add_option("-o,--output", a.output, "OUT.tqm");
  cmd->add_flag("--list-ops", a.list_ops, "print the supported opsets and operators, then exit");
  add_input_shapes(cmd, &a.input_shapes);
  return cmd;
}

int cmd_import(const ImportArgs& a) {
  if (a.list_ops) {
    std::fputs(onnx_support_markdown().c_str(), stdout);
    return 0;
  }
  if (a.model.empty()) return usage_error("import: MODEL is required");
  if (a.output.empty()) return usage_error("import: -o,--output is required");
  Graph graph;
  Status s = load_any_model(a.model, &graph, a.input_shapes);
  if (!s.is_ok()) return fail(s);
  graph.producer = "tinyquant import " + a.model;
  s = save_model_file(graph, a.output.c_str());
  if (!s.is_ok()) return fail(s);
  std::fprintf(stderr, "tq: wrote %s (%zu operators, %zu tensors)\n", a.output.c_str(), graph.operators.size(),
               graph.tensors.size());
  return 0;
}

// --- eval ---

struct EvalArgs {
  std::string model, data = "fashion-mnist", split = "test", data_dir = kDefaultFashionMnistDir, against;
  std::string dict_dir = kDefaultDictDir, vocab = kDefaultLangidVocab;
  std::vector<std::string> input_shapes;
  std::vector<float> pixel_mean = {0.0f}, pixel_std = {1.0f};
  EvalOptions eval;
  bool json = false, quiet = false, simulate = false;
};

CLI::App* add_eval(CLI::App& tq, EvalArgs& a) {
  CLI::App* cmd = tq.add_subcommand(
      "eval", "top-1 accuracy on Fashion-MNIST, or output fidelity against a reference model (--against)");
  add_model(cmd, &a.model, "MODEL.(tqm|onnx)");
  cmd->add_option("--data", a.data, "fashion-mnist or langid (words of 11 languages, examples/langid); with "
                                    "--against also npy:A.npy[,B.npy...] (one float32 [N,...] "
                                    "file per model input) or images:DIR (PNG / JPEG files, resized to the input)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            return v == "fashion-mnist" || v == "langid" || (v.rfind("npy:", 0) == 0 && v.size() > 4) ||
                           (v.rfind("images:", 0) == 0 && v.size() > 7)
                       ? ""
                       : "expected fashion-mnist, langid, npy:FILE.npy[,FILE.npy...] or images:DIR";
          },
          "DATA"));
  add_text_data(cmd, &a.dict_dir, &a.vocab);
  cmd->add_option("--pixel-mean", a.pixel_mean, "images:DIR: per-channel mean of pixel / 255 (1 or C values)")
      ->delimiter(',');
  cmd->add_option("--pixel-std", a.pixel_std, "images:DIR: per-channel std of pixel / 255 (1 or C values)")
      ->delimiter(',');
  cmd->add_option("--against", a.against,
                  "REFERENCE.(tqm|onnx): report output fidelity against it (SQNR in dB, max abs error, top-1 "
                  "agreement) instead of accuracy; needs no labels");
  add_input_shapes(cmd, &a.input_shapes);
  cmd->add_option("--split", a.split, "split (val: langid only)")->check(CLI::IsMember({"test", "train", "val"}));
  cmd->add_option("--limit", a.eval.limit, "first N samples only")->check(CLI::Range(1, kMaxCount))->default_str("all");
  add_backend(cmd, &a.eval.backend, &a.eval.threads, "kernels");
  cmd->add_option("--batch", a.eval.batch, "images per invoke")->check(CLI::Range(1, 4096));
  add_preprocessing(cmd, &a.data_dir, &a.eval.mean, &a.eval.std);
  cmd->add_flag("--json", a.json, "one JSON object on stdout");
  cmd->add_flag("--quiet", a.quiet, "no progress lines");
  cmd->add_flag("--simulate", a.simulate,
                "evaluate the fake-quant float twin of a quantized .tqm (rebuilt from its int8 weights, scales and "
                "zero points)");
  return cmd;
}

int cmd_eval_against(const EvalArgs& a, const Graph& graph) {
  Graph reference;
  Status s = load_any_model(a.against, &reference, ends_with_onnx(a.against) ? a.input_shapes : std::vector<std::string>());
  if (!s.is_ok()) return fail(s);
  std::vector<NpyArray> inputs;
  if (a.data.rfind("images:", 0) == 0) {
    if (graph.inputs.size() != 1) return fail(Status::error(StatusCode::kInvalidArgument,
                                                            "images:DIR feeds one input; the model has %zu",
                                                            graph.inputs.size()));
    ImageBatchOptions io;
    io.mean = a.pixel_mean;
    io.std = a.pixel_std;
    io.limit = a.eval.limit;
    NpyArray x;
    s = load_image_folder(a.data.substr(7), graph.tensors[graph.inputs[0]].shape, io, &x, nullptr);
    if (!s.is_ok()) return fail(s);
    inputs.push_back(std::move(x));
  } else if (a.data.rfind("npy:", 0) == 0) {
    std::string list = a.data.substr(4);
    for (size_t start = 0; start <= list.size();) {
      const size_t comma = std::min(list.find(',', start), list.size());
      NpyArray arr;
      s = read_npy(list.substr(start, comma - start), &arr);
      if (!s.is_ok()) return fail(s);
      inputs.push_back(std::move(arr));
      start = comma + 1;
    }
  } else if (a.data == "langid") {
    TokenDataset ds;
    s = load_langid(a.dict_dir, a.vocab, a.split, &ds);
    if (!s.is_ok()) return fail(s);
    s = check_token_classifier(graph, ds.seq_len);
    if (!s.is_ok()) return fail(s.with_context("%s", a.model.c_str()));
    const int32_t n = a.eval.limit > 0 ? std::min(a.eval.limit, ds.count) : ds.count;
    NpyArray x;
    x.shape = {n, ds.seq_len};
    x.data.assign(ds.tokens.begin(), ds.tokens.begin() + int64_t(n) * ds.seq_len);
    inputs.push_back(std::move(x));
  } else {
    if (a.split == "val") return usage_error("--split val: Fashion-MNIST has train and test only");
    ImageDataset ds;
    s = load_fashion_mnist(a.data_dir, a.split, &ds);
    if (!s.is_ok()) return fail(s);
    s = check_classifier(graph, ds.rows, ds.cols);
    if (!s.is_ok()) return fail(s.with_context("%s", a.model.c_str()));
    const int32_t n = a.eval.limit > 0 ? std::min(a.eval.limit, ds.count) : ds.count;
    NpyArray x;
    x.shape = graph.tensors[graph.inputs[0]].shape;
    x.shape[0] = n;
    x.data.resize(static_cast<size_t>(n) * ds.rows * ds.cols);
    preprocess_images(ds, 0, n, a.eval.mean, a.eval.std, x.data.data());
    inputs.push_back(std::move(x));
  }
  FidelityResult r;
  s = compare_models(graph, reference, inputs, a.eval, &r);
  if (!s.is_ok()) return fail(s.with_context("%s against %s", a.model.c_str(), a.against.c_str()));
  if (a.json) {
    Json outs = Json::array();
    for (const FidelityOutput& o : r.outputs) {
      Json j = {{"name", o.name},
                {"sqnr_db", std::isfinite(o.sqnr_db) ? Json(json_round(o.sqnr_db, 3)) : Json("inf")},
                {"max_abs_error", o.max_abs_error},
                {"reference_max_abs", o.reference_max_abs}};
      if (o.classifier) j["top1_agreement"] = json_round(o.top1_agreement, 4);
      outs.push_back(j);
    }
    const Json j = {{"model", a.model},     {"against", a.against},
                    {"data", a.data},       {"samples", r.samples},
                    {"backend", backend_name(a.eval.backend)}, {"seconds", json_round(r.seconds, 3)},
                    {"outputs", outs}};
    std::printf("%s\n", json_line(j).c_str());
    return 0;
  }
  std::printf("%s against %s on %d samples of %s (backend %s):\n", a.model.c_str(), a.against.c_str(), r.samples,
              a.data.c_str(), backend_name(a.eval.backend));
  for (const FidelityOutput& o : r.outputs) {
    std::printf("  %s: SQNR %.2f dB, max |error| %.4g (reference values up to %.4g)", o.name.c_str(), o.sqnr_db,
                o.max_abs_error, o.reference_max_abs);
    if (o.classifier) std::printf(", top-1 agreement %.2f%%", o.top1_agreement);
    std::printf("\n");
  }
  return 0;
}

int cmd_eval(EvalArgs& a) {
  a.eval.progress = !a.json && !a.quiet;
  Graph graph;
  Status s = load_any_model(a.model, &graph, ends_with_onnx(a.model) ? a.input_shapes : std::vector<std::string>());
  if (!s.is_ok()) return fail(s);
  if (a.against.empty() && a.data != "fashion-mnist" && a.data != "langid")
    return usage_error("--data " + a.data + ": data without labels needs --against REFERENCE (output fidelity)");
  if (!a.against.empty() && !a.simulate) return cmd_eval_against(a, graph);
  if (a.simulate) {
#if TQ_WITH_QUANT
    Graph sim;
    s = quant::build_simulated_graph(graph, &sim);
    if (!s.is_ok()) return fail(s.with_context("%s", a.model.c_str()));
    graph = std::move(sim);
    if (!a.against.empty()) return cmd_eval_against(a, graph);
#else
    return usage_error("--simulate: this build has no quant/ (TQ_WITH_QUANT=OFF)");
#endif
  }
  EvalResult r;
  if (a.data == "langid") {
    TokenDataset ds;
    s = load_langid(a.dict_dir, a.vocab, a.split, &ds);
    if (!s.is_ok()) return fail(s);
    s = evaluate_token_classifier(graph, ds, a.eval, &r);
  } else {
    if (a.split == "val") return usage_error("--split val: Fashion-MNIST has train and test only");
    ImageDataset ds;
    s = load_fashion_mnist(a.data_dir, a.split, &ds);
    if (!s.is_ok()) return fail(s);
    s = evaluate_classifier(graph, ds, a.eval, &r);
  }
  if (!s.is_ok()) return fail(s.with_context("%s", a.model.c_str()));
  char checksum[24];
  std::snprintf(checksum, sizeof(checksum), "0x%016llx", static_cast<unsigned long long>(r.checksum));
  if (a.json) {
    const Json j = {{"model", a.model},
                    {"data", a.data},
                    {"split", a.split},
                    {"top1", json_round(r.top1, 4)},
                    {"correct", r.correct},
                    {"samples", r.samples},
                    {"backend", backend_name(a.eval.backend)},
                    {"threads", a.eval.threads},
                    {"batch", a.eval.batch},
                    {"seconds", json_round(r.seconds, 3)},
                    {"arena_bytes", r.arena_bytes},
                    {"backend_weight_bytes", r.backend_weight_bytes},
                    {"fallback_ops", r.fallback_ops},
                    {"simulated", a.simulate},
                    {"checksum", checksum}};
    std::printf("%s\n", json_line(j).c_str());
  } else {
    std::printf("%s%s: top-1 %.2f%% (%d/%d) on %s %s, backend %s, %d thread(s), %.2f s, checksum %s\n",
                a.model.c_str(), a.simulate ? " (simulated)" : "", r.top1, r.correct, r.samples, a.data.c_str(),
                a.split.c_str(), backend_name(a.eval.backend), a.eval.threads, r.seconds, checksum);
  }
  return 0;
}

// --- quantize ---

#if TQ_WITH_QUANT
struct QuantizeArgs {
  std::string model, output, method = "rtn", calib = "fashion-mnist:train", data_dir = kDefaultFashionMnistDir;
  std::string lr_mode = "relative", report;
  std::string dict_dir = kDefaultDictDir, vocab = kDefaultLangidVocab;
  std::vector<std::string> input_shapes;
  int32_t calib_size = 1000;
  float mean = kFashionMnistMean, std = kFashionMnistStd;
  bool json = false, no_report = false;
  quant::AdaQuantOptions aq;  // aq.rtn: the range-calibration options every method uses
  CLI::Option* batch = nullptr;  // --batch: Adam's batch (adaquant) or the invoke batch (rtn)
  CLI::Option* method_opt = nullptr;
  // Mixed precision (--pipeline): the budget as given, parsed in cmd_quantize.
  std::string pipeline, budget, budget_bytes, bits = "2,3,4,8", sensitivity = "kl";
  double max_drop = -1.0, max_bops = -1.0;
  int64_t max_activation_bytes = -1;
  bool final_sequential = false, no_stats_tuning = false;
  std::string keep_master;  // "", "fp16" or "fp32"
  QuantizeArgs() { aq.gemm_threads = std::max(1u, std::thread::hardware_concurrency()); }
};

// The report file of tq quantize: --report, else OUT.report.json (OUT without .tqm), or none.
std::string report_path(const QuantizeArgs& a) {
  if (a.no_report) return "";
  if (!a.report.empty()) return a.report;
  std::string base = a.output;
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".tqm") == 0) base.resize(base.size() - 4);
  return base + ".report.json";
}

// The mixed-precision options tq quantize and tq sweep share.
void add_mixed_options(CLI::App* cmd, QuantizeArgs& a) {
  cmd->add_option("--pipeline", a.pipeline,
                  "mixed precision from a budget: light (range calibration + integer program + statistics tuning) "
                  "or advanced (parallel AdaQuant candidates + integer program + statistics tuning)")
      ->check(because(CLI::IsMember({"light", "advanced"}), "expected light or advanced"));
  cmd->add_option("--bits", a.bits, "--pipeline: the weight-bit options per layer")->default_str("2,3,4,8");
  cmd->add_option("--sensitivity", a.sensitivity, "--pipeline: the label-free loss of the sensitivities")
      ->check(because(CLI::IsMember({"kl", "mse"}), "expected kl or mse"));
  cmd->add_option("--max-bops", a.max_bops, "--pipeline: at most this many MACs x w_bits x a_bits")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-activation-bytes", a.max_activation_bytes,
                  "--pipeline: at most this many int8 input + output bytes per layer at batch 1")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--final-sequential", a.final_sequential,
                "--pipeline advanced: a sequential AdaQuant pass at the chosen bits before statistics tuning");
  cmd->add_flag("--no-stats-tuning", a.no_stats_tuning, "--pipeline: skip the statistics tuning of the mixed model");
}

CLI::App* add_quantize(CLI::App& tq, QuantizeArgs& a) {
  quant::RtnOptions& rtn = a.aq.rtn;
  CLI::App* cmd = tq.add_subcommand("quantize", "post-training quantization");
  add_model(cmd, &a.model, "MODEL.(onnx|tqm)");
  cmd->add_option("-o,--output", a.output, "OUT.tqm")->required();
  a.method_opt = cmd->add_option("--method", a.method,
                                 "rtn: round-to-nearest after range calibration; adaquant: layer-wise calibration (AdaQuant)")
                     ->check(because(CLI::IsMember({"rtn", "adaquant"}), "expected rtn or adaquant"));
  add_mixed_options(cmd, a);
  cmd->add_option("--wbits", rtn.weight_bits, "weight bits")->check(CLI::Range(2, 8));
  cmd->add_option("--abits", rtn.activation_bits, "activation bits")->check(CLI::Range(2, 8));
  cmd->add_option("--output-abits", rtn.output_activation_bits,
                  "bits of int8 activations that feed no other layer (the logits); 0: --abits")
      ->check(CLI::Range(0, 8) & !CLI::IsMember({1}));
  cmd->add_flag("--keep-first-last-8bit", rtn.keep_first_last_8bit,
                "the first and last weighted layers keep 8-bit weights and an 8-bit input");
  cmd->add_option("--calib", a.calib, "fashion-mnist:train, fashion-mnist:test, langid:train|val|test (token ids "
                                      "of words, examples/langid) or npy:FILE.npy[,FILE2.npy...] (one per model input)");
  add_text_data(cmd, &a.dict_dir, &a.vocab);
  add_input_shapes(cmd, &a.input_shapes);
  cmd->add_option("--calib-size", a.calib_size, "a seeded random subset of N images")
      ->check(because(CLI::Range(1, kMaxCount), "an empty calibration set cannot calibrate"));
  cmd->add_option("--seed", rtn.seed, "seed of the calibration subset and of AdaQuant's batches")
      ->check(CLI::Range(0, 0x7fffffff));
  add_backend(cmd, &rtn.backend, &rtn.threads, "float kernels for calibration");
  cmd->add_option("--calib-batch", rtn.batch, "calibration samples per float invoke")->check(CLI::Range(1, 4096));
  a.batch = cmd->add_option("--batch", a.aq.batch, "AdaQuant samples per Adam step (rtn: samples per float invoke)")
                ->check(CLI::Range(1, 4096));
  cmd->add_flag("--sequential", a.aq.sequential,
                "adaquant: each layer's input comes from the already quantized layers before it (default: parallel)");
  cmd->add_flag("--stats-tuning", a.aq.stats_tuning,
                "per-channel mean/std correction against the float model after quantization (rtn or adaquant)");
  cmd->add_option("--iters", a.aq.iterations, "adaquant: Adam steps per layer")->check(CLI::Range(1, 1000000));
  cmd->add_option("--lr-mode", a.lr_mode, "adaquant: learning rates relative to each tensor's scale, or absolute")
      ->check(because(CLI::IsMember({"relative", "absolute"}), "expected relative or absolute"));
  cmd->add_option("--lr-weight", a.aq.lr_weight, "adaquant: weights' rate (default 1e-2 relative, 1e-5 absolute)");
  cmd->add_option("--lr-bias", a.aq.lr_bias, "adaquant: biases' rate (default 1e-2 relative, 1e-3 absolute)");
  cmd->add_option("--lr-weight-scale", a.aq.lr_weight_scale, "adaquant: weight scales' rate (1e-3 / 1e-3)");
  cmd->add_option("--lr-act-scale", a.aq.lr_act_scale, "adaquant: input scale's rate (1e-3 / 1e-1)");
  cmd->add_option("--lr-zero-point", a.aq.lr_zero_point, "adaquant: input zero point's rate (1e-2 / 1e-1)");
  cmd->add_option("--holdout", a.aq.holdout, "adaquant: fraction of samples held out to judge each layer")
      ->check(CLI::Range(0.01f, 0.9f));
  cmd->add_option("--early-stop", a.aq.check_every,
                  "adaquant: check the held-out MSE every N steps, stop a layer after 3 checks without gain (0: off)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--qdrop", a.aq.qdrop,
                  "adaquant: QDrop, the probability an input element skips its quantizer in a training step (0: off)")
      ->check(CLI::Range(0.0f, 0.99f));
  cmd->add_option("--gemm-threads", a.aq.gemm_threads, "adaquant: GEMM threads (results do not depend on it)")->check(CLI::Range(1, 256));
  cmd->add_option("--budget", a.budget, "--pipeline: the size budget as a percentage of the float32 weights (13%)");
  cmd->add_option("--budget-bytes", a.budget_bytes,
                  "--pipeline: the size budget in bytes of packed weights + bias + scales (400000, 400KB, 390KiB)");
  cmd->add_option("--max-drop", a.max_drop,
                  "--pipeline: the smallest model whose top-1 differs from the float model's on at most this "
                  "percentage of the calibration samples")
      ->check(CLI::Range(0.0, 100.0));
  CLI::Option* report_opt = cmd->add_option("--report", a.report,
                  "where the full report (per layer, timing, memory) goes as JSON (default: OUT.report.json beside "
                  "the model, which keeps only the compact calibration record)");
  cmd->add_flag("--no-report", a.no_report, "write no report file")->excludes(report_opt);
  add_preprocessing(cmd, &a.data_dir, &a.mean, &a.std);
  cmd->add_flag("--json", a.json, "the per-layer report as JSON on stdout");
  cmd->add_option("--keep-master", a.keep_master,
                  "also store the float weights (fp16 or fp32) so the model can be recalibrated on the device "
                  "(tq recalibrate, tq_recalibrate)")
      ->check(because(CLI::IsMember({"fp16", "fp32"}), "expected fp16 or fp32"));
  return cmd;
}

// --keep-master: the float master weights go into the quantized model before it is written.
Status keep_master(const QuantizeArgs& a, const Graph& float_graph, Graph* quantized) {
  if (a.keep_master.empty()) return Status::ok();
  return quant::attach_master_weights(float_graph, a.keep_master == "fp16", quantized).with_context("--keep-master");
}

std::atomic<bool> g_cancel{false};
extern "C" void on_interrupt(int) { g_cancel.store(true); }

int print_checked_json(const std::string& text, const std::string& model, std::string* out) {
  // The reports write their JSON by hand: re-read it, so that what we print is valid JSON or an
  // error (before the model is written), never a broken object.
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return fail(Status::error(StatusCode::kInternal, "%s: the quantize report is not valid JSON", model.c_str()));
  *out = json_line(j);
  return 0;
}

// The model and its calibration set as tq quantize / sweep take them (0 on success, else the exit code).
int load_model_and_calibration(const QuantizeArgs& a, uint64_t seed, Graph* graph, quant::CalibrationData* calib) {
  Status s = load_any_model(a.model, graph, a.input_shapes);
  if (!s.is_ok()) return fail(s);
  TextDataPaths text;
  text.dict_dir = a.dict_dir;
  text.vocab = a.vocab;
  s = load_calibration_set(a.calib, a.data_dir, a.calib_size, seed, a.mean, a.std, *graph, calib, text);
  return s.is_ok() ? 0 : fail(s);
}

// Ctrl-C / SIGTERM stop a long pipeline at its next step (nothing is written), and its progress
// goes to stderr; unwatch restores the default handlers.
void watch_interrupts(quant::AdaQuantOptions* aq) {
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  aq->cancel = &g_cancel;
  aq->progress = print_adaquant_progress;
  aq->progress_user = stderr;
}
void unwatch_interrupts() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

// --pipeline's options -> MixedOptions; a usage message on a bad combination.
bool mixed_options_from(QuantizeArgs& a, quant::MixedOptions* m, std::string* error) {
  Status s = parse_bit_options(a.bits, &m->bits);
  if (!s.is_ok()) return *error = s.message(), false;
  if (a.method_opt->count() > 0) return *error = "--method and --pipeline: choose one", false;
  if (a.aq.sequential) return *error = "--sequential: with --pipeline, use --final-sequential", false;
  if (a.final_sequential && a.pipeline != "advanced") return *error = "--final-sequential: only with --pipeline advanced", false;
  m->pipeline = a.pipeline == "advanced" ? quant::MixedPipeline::kAdvanced : quant::MixedPipeline::kLight;
  m->loss = a.sensitivity == "mse" ? quant::SensitivityLoss::kMse : quant::SensitivityLoss::kKl;
  m->final_sequential = a.final_sequential;
  m->stats_tuning = !a.no_stats_tuning;
  a.aq.lr_mode = a.lr_mode == "absolute" ? quant::LrMode::kAbsolute : quant::LrMode::kRelative;
  m->aq = a.aq;
  return true;
}

int cmd_quantize_mixed(QuantizeArgs& a) {
  quant::MixedOptions m;
  std::string error;
  if (!mixed_options_from(a, &m, &error)) return usage_error(error);
  quant::MixedBudget budget;
  const int given = !a.budget.empty() + !a.budget_bytes.empty() + (a.max_drop >= 0);
  if (given != 1) return usage_error("--pipeline needs exactly one of --budget, --budget-bytes and --max-drop");
  Status s;
  if (!a.budget.empty()) s = parse_budget_percent(a.budget, &budget.fraction);
  if (s.is_ok() && !a.budget_bytes.empty()) s = parse_budget_bytes(a.budget_bytes, &budget.bytes);
  if (!s.is_ok()) return usage_error(s.message());
  budget.max_drop = a.max_drop;
  budget.max_bops = a.max_bops;
  budget.max_activation_bytes = a.max_activation_bytes;
  Graph graph;
  quant::CalibrationData calib;
  if (int rc = load_model_and_calibration(a, m.aq.rtn.seed, &graph, &calib)) return rc;
  std::fprintf(stderr, "tq: %s pipeline on %s, %d samples of %s, weight bits {%s}, activations %d-bit\n",
               a.pipeline.c_str(), a.model.c_str(), calib.samples, a.calib.c_str(), a.bits.c_str(),
               m.aq.rtn.activation_bits);
  // A budget the bit options cannot reach fails now, not after the candidates' minutes of work.
  s = quant::check_mixed_budget(graph, calib, m, budget);
  if (!s.is_ok()) return fail(s.with_context("%s", a.model.c_str()));
  watch_interrupts(&m.aq);
  quant::MixedCandidates cand;
  Graph quantized;
  quant::MixedReport report;
  s = quant::prepare_mixed(graph, calib, m, &cand);
  if (s.is_ok()) s = quant::quantize_graph_mixed(cand, budget, &quantized, &report);
  unwatch_interrupts();
  if (!s.is_ok()) return fail(s.with_context("%s", a.model.c_str()));
  const std::string full_report = report.json();
  std::string report_json;
  if (int rc = print_checked_json(full_report, a.model, &report_json)) return rc;
  if (!a.json) print_mixed_report(report, stderr);
  quantized.producer = "tinyquant quantize --pipeline " + a.pipeline + " " + a.model;
  s = keep_master(a, graph, &quantized);
  if (s.is_ok()) s = save_model_file(quantized, a.output.c_str());
  if (!s.is_ok()) return fail(s);
  if (const std::string path = report_path(a); !path.empty()) {
    report_json += "\n";
    s = write_file_atomic(path.c_str(), report_json.data(), report_json.size());
    if (!s.is_ok()) return fail(s);
    report_json.pop_back();
    std::fprintf(stderr, "tq: wrote the report to %s\n", path.c_str());
  }
  if (a.json) std::printf("%s\n", report_json.c_str());
  std::fprintf(stderr, "tq: wrote %s (%lld bytes of weights, bias and scales; bits %s)\n", a.output.c_str(),
               static_cast<long long>(report.model_bytes), report.bits_summary().c_str());
  return 0;
}

int cmd_quantize(QuantizeArgs& a) {
  quant::RtnOptions& rtn = a.aq.rtn;
  rtn.progress = true;
  if (!a.pipeline.empty()) return cmd_quantize_mixed(a);
  if (!a.budget.empty() || !a.budget_bytes.empty() || a.max_drop >= 0)
    return usage_error("--budget, --budget-bytes and --max-drop need --pipeline light|advanced");
  const bool adaquant = a.method == "adaquant";
  if (!adaquant && a.batch->count() > 0) rtn.batch = a.aq.batch;  // rtn: --batch is the invoke batch
  if (!adaquant && a.aq.sequential)
    return usage_error("--sequential: only with --method adaquant");
  a.aq.adaquant = adaquant;
  a.aq.lr_mode = a.lr_mode == "absolute" ? quant::LrMode::kAbsolute : quant::LrMode::kRelative;
  Graph graph;
  quant::CalibrationData calib;
  if (int rc = load_model_and_calibration(a, rtn.seed, &graph, &calib)) return rc;
  Status s;
  std::string what = a.method;
  if (adaquant) what += a.aq.sequential ? " sequential" : " parallel";
  if (a.aq.stats_tuning) what += " + stats tuning";
  std::fprintf(stderr, "tq: calibrating %s on %d samples of %s (%s, W%dA%d)\n", a.model.c_str(), calib.samples,
               a.calib.c_str(), what.c_str(), rtn.weight_bits, rtn.activation_bits);
  Graph quantized;
  std::string report_json, full_report;
  if (!adaquant && !a.aq.stats_tuning) {
    quant::RtnReport report;
    s = quant::quantize_graph_rtn(graph, calib, rtn, &quantized, nullptr, &report);
    if (!s.is_ok()) return fail(s.with_context("%s", a.model.c_str()));
    if (a.json)
      if (int rc = print_checked_json(report.json(), a.model, &report_json)) return rc;
    full_report = report.json();
    if (!a.json) print_rtn_report(report, stderr);
  } else {
    // Ctrl-C stops at the next step: nothing is written (the model file is written atomically
    // after success only).
    watch_interrupts(&a.aq);
    quant::AdaQuantReport report;
    s = quant::quantize_graph_adaquant(graph, calib, a.aq, &quantized, &report);
    unwatch_interrupts();
    if (!s.is_ok()) return fail(s.with_context("%s", a.model.c_str()));
    full_report = report.json();
    if (a.json)
      if (int rc = print_checked_json(full_report, a.model, &report_json)) return rc;
    if (!a.json) {
      print_rtn_report(report.rtn, stderr);
      print_adaquant_report(report, stderr);
    }
  }
  quantized.producer = "tinyquant quantize --method " + what + " " + a.model;
  s = keep_master(a, graph, &quantized);
  if (s.is_ok()) s = save_model_file(quantized, a.output.c_str());
  if (!s.is_ok()) return fail(s);
  if (const std::string path = report_path(a); !path.empty()) {
    std::string checked;
    if (int rc = print_checked_json(full_report, a.model, &checked)) return rc;
    checked += "\n";
    s = write_file_atomic(path.c_str(), checked.data(), checked.size());
    if (!s.is_ok()) return fail(s);
    std::fprintf(stderr, "tq: wrote the report to %s\n", path.c_str());
  }
  if (a.json) std::printf("%s\n", report_json.c_str());
  std::fprintf(stderr, "tq: wrote %s (%zu operators, %zu tensors)\n", a.output.c_str(), quantized.operators.size(),
               quantized.tensors.size());
  return 0;
}

// --- sweep ---

std::string fmt_percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g%%", fraction * 100.0);
  return buf;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

struct SweepArgs {
  QuantizeArgs q;  // model, calibration, AdaQuant and mixed options (pipeline required)
  std::string budgets = "13,16,20,25", uniform = "4,8", plot, report, output_dir;
  int32_t limit = 0;  // test images (0: all)
};

// tq recalibrate: the C API's tq_recalibrate on a data set tq knows how to load.
struct RecalibrateArgs {
  std::string model, data = "fashion-mnist:train", data_dir = kDefaultFashionMnistDir, mode = "fast", budget, backend;
  int32_t count = 1000, iterations = 200, min_samples = 32, threads = 1;
  uint64_t seed = 0;
  float holdout = 0.2f, max_drop = 1.0f, mean = kFashionMnistMean, std = kFashionMnistStd;
  bool json = false;
};

CLI::App* add_recalibrate(CLI::App& tq, RecalibrateArgs& a) {
  CLI::App* cmd = tq.add_subcommand("recalibrate",
                                    "recalibrate a shipped model (written with --keep-master) on new unlabeled samples, "
                                    "in place, never leaving a broken file");
  add_model(cmd, &a.model, "MODEL.tqm");
  cmd->add_option("--data", a.data, "the new samples: fashion-mnist:train, fashion-mnist:test or npy:FILE.npy");
  cmd->add_option("--count", a.count, "a seeded random subset of N samples")->check(CLI::Range(2, kMaxCount));
  cmd->add_option("--mode", a.mode, "fast: range calibration + statistics tuning; full: AdaQuant too")
      ->check(because(CLI::IsMember({"fast", "full"}), "expected fast or full"));
  cmd->add_option("--memory-budget", a.budget, "working memory the job may use (8MB, 6MiB, 4000000); default none");
  cmd->add_option("--holdout", a.holdout, "share of the samples held back to validate the new model")
      ->check(CLI::Range(0.01f, 0.9f));
  cmd->add_option("--min-samples", a.min_samples, "fewest calibration samples to accept")->check(CLI::Range(1, kMaxCount));
  cmd->add_option("--iters", a.iterations, "full: Adam steps per layer")->check(CLI::Range(1, 1000000));
  cmd->add_option("--max-agreement-drop", a.max_drop,
                  "install only if the held-back agreement with the float master falls by at most this many points")
      ->check(CLI::Range(0.0f, 100.0f));
  cmd->add_option("--seed", a.seed, "seed of the subset, the held-back split and AdaQuant")->check(CLI::Range(0, 0x7fffffff));
  cmd->add_option("--backend", a.backend, "kernels: reference or xnnpack (default: xnnpack where built)")
      ->check(because(CLI::IsMember({"reference", "xnnpack"}), "expected reference or xnnpack"));
  cmd->add_option("--threads", a.threads, "threads")->check(CLI::Range(1, 256));
  cmd->add_flag("--json", a.json, "the result as JSON on stdout");
  add_preprocessing(cmd, &a.data_dir, &a.mean, &a.std);
  return cmd;
}

// One line per stage (and per tenth of the job within a long stage); Ctrl-C cancels.
int recalibrate_progress(void* user, const char* stage, double fraction) {
  if (g_cancel.load()) return 1;
  static std::string last_stage;
  static int last_tenth = -1;
  const int tenth = static_cast<int>(fraction * 10);
  if (stage == last_stage && tenth == last_tenth) return 0;
  last_stage = stage;
  last_tenth = tenth;
  std::fprintf(static_cast<std::FILE*>(user), "tq: recalibrating %3.0f%% (%s)\n", 100.0 * fraction, stage);
  return 0;
}

int cmd_recalibrate(const RecalibrateArgs& a) {
  tq_recal_options o;
  tq_recal_options_init(&o);
  o.mode = a.mode == "full" ? TQ_RECAL_FULL : TQ_RECAL_FAST;
  if (!a.budget.empty()) {
    int64_t bytes = 0;
    Status s = parse_budget_bytes(a.budget, &bytes);
    if (!s.is_ok()) return usage_error(std::string("--memory-budget: ") + s.message());
    o.memory_budget_bytes = size_t(bytes);
  }
  o.holdout = a.holdout;
  o.min_samples = a.min_samples;
  o.iterations = a.iterations;
  o.max_agreement_drop = a.max_drop;
  o.seed = a.seed;
  o.backend = a.backend.empty() ? TQ_BACKEND_AUTO : a.backend == "xnnpack" ? TQ_BACKEND_XNNPACK : TQ_BACKEND_REFERENCE;
  o.threads = a.threads;
  o.progress = recalibrate_progress;
  o.progress_user = stderr;
  Graph graph;
  Status s = load_model_file(a.model.c_str(), &graph);
  if (!s.is_ok()) return fail(s);
  quant::CalibrationData data;
  s = load_calibration_set(a.data, a.data_dir, a.count, a.seed, a.mean, a.std, graph, &data);
  if (!s.is_ok()) return fail(s);
  graph = Graph();
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  tq_recal_result r;
  tq_recal_result_init(&r);
  const tq_status st = tq_recalibrate(a.model.c_str(), data.values.data(), data.values.size() * sizeof(float),
                                      data.samples, &o, &r);
  unwatch_interrupts();
  if (st != TQ_OK && st != TQ_REJECTED) {
    std::fprintf(stderr, "\ntq: error: %s\n", tq_last_error());
    return 1;
  }
  if (a.json) {
    nlohmann::ordered_json j = {{"installed", bool(r.installed)}, {"mode", a.mode},
                                {"samples", r.samples_given}, {"calibration_samples", r.calibration_samples},
                                {"holdout_samples", r.holdout_samples}, {"subsampled", bool(r.subsampled)},
                                {"old_agreement", r.old_agreement}, {"new_agreement", r.new_agreement},
                                {"memory_budget_bytes", r.memory_budget_bytes}, {"estimated_bytes", r.estimated_bytes},
                                {"peak_bytes", r.peak_bytes}, {"seconds", r.seconds}, {"reason", r.reason}};
    std::printf("%s\n", j.dump(2).c_str());
  }
  std::fprintf(stderr,
               "tq: %s: %s recalibration on %d of %d samples (%d held back%s): agreement with the float master "
               "%.2f%% -> %.2f%%; working memory %.2f MB measured, %.2f MB estimated%s%s; %.1f s\n",
               a.model.c_str(), a.mode.c_str(), r.calibration_samples, r.samples_given, r.holdout_samples,
               r.subsampled ? ", subsampled to the budget" : "", r.old_agreement, r.new_agreement, r.peak_bytes / 1e6,
               r.estimated_bytes / 1e6, r.memory_budget_bytes ? ", budget " : "",
               r.memory_budget_bytes ? (std::to_string(r.memory_budget_bytes / 1e6).substr(0, 5) + " MB").c_str() : "",
               r.seconds);
  if (st == TQ_REJECTED) {
    std::fprintf(stderr, "tq: not installed, %s keeps its model: %s\n", a.model.c_str(), r.reason);
    return 4;
  }
  std::fprintf(stderr, "tq: installed the recalibrated model in %s\n", a.model.c_str());
  return 0;
}

CLI::App* add_sweep(CLI::App& tq, SweepArgs& a) {
  QuantizeArgs& q = a.q;
  quant::RtnOptions& rtn = q.aq.rtn;
  CLI::App* cmd = tq.add_subcommand(
      "sweep", "mixed precision at several budgets from one set of candidates: a table, a Pareto SVG and a JSON report");
  add_model(cmd, &q.model, "MODEL.(onnx|tqm)");
  q.method_opt = cmd->add_option("--method", q.method, "(not with sweep)")->group("");
  add_mixed_options(cmd, q);
  cmd->get_option("--pipeline")->required();
  cmd->add_option("--budgets", a.budgets, "budgets, percent of the float32 weights")->default_str("13,16,20,25");
  cmd->add_option("--uniform", a.uniform, "reference points with every layer at one of these widths ('none': no reference)")
      ->default_str("4,8");
  cmd->add_option("--plot", a.plot, "write the Pareto and bit-width charts to P.svg");
  cmd->add_option("--report", a.report, "write every point (bytes, bits per layer, accuracy, time) as JSON to R.json");
  cmd->add_option("--output-dir", a.output_dir, "also write each model to DIR/<model>_<pipeline>_<budget>.tqm");
  cmd->add_option("--limit", a.limit, "test images to evaluate on (0: the whole split)")->check(CLI::Range(0, kMaxCount));
  cmd->add_option("--abits", rtn.activation_bits, "activation bits")->check(CLI::Range(2, 8));
  cmd->add_option("--output-abits", rtn.output_activation_bits, "bits of the logits (0: --abits)")
      ->check(CLI::Range(0, 8) & !CLI::IsMember({1}));
  cmd->add_flag("--keep-first-last-8bit", rtn.keep_first_last_8bit, "the first and last layers' inputs stay 8-bit");
  cmd->add_option("--calib", q.calib, "fashion-mnist:train, fashion-mnist:test or npy:FILE.npy");
  cmd->add_option("--calib-size", q.calib_size, "a seeded random subset of N images")
      ->check(because(CLI::Range(1, kMaxCount), "an empty calibration set cannot calibrate"));
  cmd->add_option("--seed", rtn.seed, "seed of the calibration subset and of AdaQuant's batches")
      ->check(CLI::Range(0, 0x7fffffff));
  add_backend(cmd, &rtn.backend, &rtn.threads, "kernels for calibration and evaluation");
  cmd->add_option("--iters", q.aq.iterations, "advanced: Adam steps per layer")->check(CLI::Range(1, 1000000));
  q.batch = cmd->add_option("--batch", q.aq.batch, "advanced: AdaQuant samples per Adam step")->check(CLI::Range(1, 4096));
  cmd->add_option("--gemm-threads", q.aq.gemm_threads, "advanced: GEMM threads")->check(CLI::Range(1, 256));
  add_preprocessing(cmd, &q.data_dir, &q.mean, &q.std);
  return cmd;
}

int cmd_sweep(SweepArgs& a) {
  QuantizeArgs& q = a.q;
  quant::MixedOptions m;
  std::string error;
  if (!mixed_options_from(q, &m, &error)) return usage_error(error);
  std::vector<double> fractions;
  Status s = parse_percent_list(a.budgets, &fractions);
  if (!s.is_ok()) return usage_error(s.message());
  std::vector<int32_t> uniform;
  if (a.uniform != "none") {
    s = parse_bit_options(a.uniform, &uniform);
    if (!s.is_ok()) return usage_error(std::string("--uniform: ") + s.message());
    for (int32_t b : uniform)
      if (std::find(m.bits.begin(), m.bits.end(), b) == m.bits.end())
        return usage_error("--uniform " + std::to_string(b) + ": not one of --bits " + q.bits);
  }
  if (!a.output_dir.empty() && !is_directory(a.output_dir))
    return fail(Status::error(StatusCode::kNotFound, "--output-dir %s: no such directory", a.output_dir.c_str()));
  Graph graph;
  quant::CalibrationData calib;
  if (int rc = load_model_and_calibration(q, m.aq.rtn.seed, &graph, &calib)) return rc;
  ImageDataset test;
  s = load_fashion_mnist(q.data_dir, "test", &test);
  if (!s.is_ok()) return fail(s);
  EvalOptions eo;
  eo.backend = m.aq.rtn.backend;
  eo.threads = m.aq.rtn.threads;
  eo.limit = a.limit;
  eo.mean = q.mean;
  eo.std = q.std;
  EvalResult fr;
  s = evaluate_classifier(graph, test, eo, &fr);
  if (!s.is_ok()) return fail(s.with_context("%s", q.model.c_str()));
  std::fprintf(stderr, "tq: sweep, %s pipeline on %s (float top-1 %.2f%% on %d test images), %d calibration samples\n",
               q.pipeline.c_str(), q.model.c_str(), fr.top1, fr.samples, calib.samples);
  watch_interrupts(&m.aq);
  const uint64_t t0 = port::now_us();
  quant::MixedCandidates cand;
  s = quant::prepare_mixed(graph, calib, m, &cand);
  const double prepare_s = (port::now_us() - t0) / 1e6;
  if (!s.is_ok()) return fail(s.with_context("%s", q.model.c_str()));

  std::string stem = q.model.substr(q.model.find_last_of('/') + 1);
  stem = stem.substr(0, stem.find_last_of('.'));
  struct Point {
    std::string label;
    bool mixed;
    double fraction;
    quant::MixedReport r;
    EvalResult e;
    size_t file_bytes;
    std::string path;
  };
  std::vector<Point> points;
  std::vector<quant::MixedBudget> budgets;
  std::vector<std::string> labels;
  for (int32_t b : uniform) {
    quant::MixedBudget u;
    u.uniform_bits = b;
    budgets.push_back(u);
    labels.push_back("W" + std::to_string(b) + "A" + std::to_string(m.aq.rtn.activation_bits));
  }
  for (double f : fractions) {
    quant::MixedBudget u;
    u.fraction = f;
    budgets.push_back(u);
    labels.push_back(fmt_percent(f));
  }
  for (size_t i = 0; i < budgets.size(); ++i) {
    Point p;
    p.label = labels[i];
    p.mixed = budgets[i].uniform_bits == 0;
    p.fraction = budgets[i].fraction;
    Graph qg;
    s = quant::quantize_graph_mixed(cand, budgets[i], &qg, &p.r);
    if (!s.is_ok()) return fail(s.with_context("%s, budget %s", q.model.c_str(), p.label.c_str()));
    qg.producer = "tinyquant sweep --pipeline " + q.pipeline + " " + q.model;
    std::vector<uint8_t> bytes;
    s = serialize_model(qg, &bytes);
    if (!s.is_ok()) return fail(s);
    p.file_bytes = bytes.size();
    if (!a.output_dir.empty()) {
      std::string name = p.label;
      if (!name.empty() && name.back() == '%') name.back() = 'p';
      p.path = a.output_dir + "/" + stem + "_" + q.pipeline + "_" + name + ".tqm";
      s = write_file_atomic(p.path.c_str(), bytes.data(), bytes.size());
      if (!s.is_ok()) return fail(s);
    }
    s = evaluate_classifier(qg, test, eo, &p.e);
    if (!s.is_ok()) return fail(s.with_context("%s, budget %s", q.model.c_str(), p.label.c_str()));
    std::fprintf(stderr, "  %-8s %9lld bytes (%5.2f%%) file %9zu  bits %-18s top-1 %.2f%% (%+.2f)  calibration drop %.2f%%  %.1f s\n",
                 p.label.c_str(), static_cast<long long>(p.r.model_bytes),
                 100.0 * double(p.r.model_bytes) / double(p.r.float32_bytes), p.file_bytes, p.r.bits_summary().c_str(),
                 p.e.top1, p.e.top1 - fr.top1, p.r.calibration_drop, p.r.seconds);
    points.push_back(std::move(p));
  }
  unwatch_interrupts();

  // The table on stdout.
  std::printf("%s, %s pipeline, weight bits {%s}, A%d; float top-1 %.2f%% on %d test images; candidates + sensitivity %.1f s\n",
              stem.c_str(), q.pipeline.c_str(), q.bits.c_str(), m.aq.rtn.activation_bits, fr.top1, fr.samples, prepare_s);
  std::printf("%-9s %10s %7s %10s %-20s %8s %7s %9s %7s\n", "budget", "bytes", "% fp32", "file B", "bits (w:layers)",
              "top-1", "drop", "calib dr", "s");
  for (const Point& p : points)
    std::printf("%-9s %10lld %6.2f%% %10zu %-20s %7.2f%% %+7.2f %8.2f%% %7.1f\n", p.label.c_str(),
                static_cast<long long>(p.r.model_bytes), 100.0 * double(p.r.model_bytes) / double(p.r.float32_bytes),
                p.file_bytes, p.r.bits_summary().c_str(), p.e.top1, p.e.top1 - fr.top1, p.r.calibration_drop, p.r.seconds);

  if (!a.report.empty()) {
    Json pts = Json::array();
    for (const Point& p : points) {
      Json bits = Json::array();
      for (const quant::MixedLayerReport& l : p.r.layers) bits.push_back(l.chosen_bits);
      Json j = {{"label", p.label},
                {"mixed", p.mixed},
                {"budget_bytes", p.r.budget_bytes},
                {"model_bytes", p.r.model_bytes},
                {"file_bytes", p.file_bytes},
                {"fraction", json_round(double(p.r.model_bytes) / double(p.r.float32_bytes), 5)},
                {"bits", bits},
                {"bits_summary", p.r.bits_summary()},
                {"top1", json_round(p.e.top1, 4)},
                {"drop", json_round(p.e.top1 - fr.top1, 4)},
                {"calibration_drop", json_round(p.r.calibration_drop, 4)},
                {"calibration_loss", p.r.calibration_loss},
                {"predicted_loss", p.r.predicted_loss},
                {"seconds", json_round(p.r.seconds, 3)},
                {"peak_rss_bytes", p.r.peak_rss_bytes}};
      if (!p.path.empty()) j["path"] = p.path;
      pts.push_back(j);
    }
    Json layers = Json::array();
    const quant::MixedReport& r0 = points.front().r;
    for (const quant::MixedLayerReport& l : r0.layers) {
      Json opts = Json::array();
      for (const quant::MixedOptionReport& o : l.options)
        opts.push_back({{"wbits", o.bits}, {"bytes", o.bytes}, {"sensitivity", o.sensitivity}, {"mse_after", o.mse_after}});
      layers.push_back({{"name", l.name}, {"op", op_name(l.type)}, {"macs", l.macs}, {"options", opts}});
    }
    const Json j = {{"model", q.model},
                    {"pipeline", q.pipeline},
                    {"bits", m.bits},
                    {"activation_bits", m.aq.rtn.activation_bits},
                    {"calibration_samples", calib.samples},
                    {"test_images", fr.samples},
                    {"float_top1", json_round(fr.top1, 4)},
                    {"float32_bytes", r0.float32_bytes},
                    {"candidate_seconds", json_round(r0.candidate_seconds, 3)},
                    {"sensitivity_seconds", json_round(r0.sensitivity_seconds, 3)},
                    {"peak_rss_bytes", quant::peak_rss_bytes()},
                    {"layers", layers},
                    {"points", pts}};
    const std::string text = j.dump(1) + "\n";
    s = write_file_atomic(a.report.c_str(), text.data(), text.size());
    if (!s.is_ok()) return fail(s);
  }
  if (!a.plot.empty()) {
    SweepPlot plot;
    plot.title = stem + ", " + q.pipeline + " pipeline, A" + std::to_string(m.aq.rtn.activation_bits);
    plot.float_top1 = fr.top1;
    plot.float_kilobytes = points.front().r.float32_bytes / 1000.0;
    for (const quant::MixedLayerReport& l : points.front().r.layers) plot.layers.push_back(l.name);
    for (const Point& p : points) {
      (p.mixed ? plot.mixed : plot.uniform).push_back({p.label, p.r.model_bytes / 1000.0, p.e.top1});
      plot.rows.push_back(p.label);
      std::vector<int> b;
      for (const quant::MixedLayerReport& l : p.r.layers) b.push_back(l.chosen_bits);
      plot.bits.push_back(b);
    }
    const std::string svg = sweep_svg(plot);
    s = write_file_atomic(a.plot.c_str(), svg.data(), svg.size());
    if (!s.is_ok()) return fail(s);
    std::fprintf(stderr, "tq: wrote %s\n", a.plot.c_str());
  }
  return 0;
}
#endif

// --- inspect ---

CLI::App* add_inspect(CLI::App& tq, std::string& model) {
  CLI::App* cmd = tq.add_subcommand("inspect", "graph, tensors, dtypes, bits, bytes per layer, arena");
  add_model(cmd, &model, "MODEL.(tqm|onnx)");
  return cmd;
}

int cmd_inspect(const std::string& model) {
  Graph graph;
  Status s = load_any_model(model, &graph);
  if (!s.is_ok()) return fail(s);
  size_t bytes = 0;
  if (std::FILE* f = std::fopen(model.c_str(), "rb")) {
    std::fseek(f, 0, SEEK_END);
    bytes = static_cast<size_t>(std::ftell(f));
    std::fclose(f);
  }
  print_inspect(graph, model, bytes, stdout);
  return 0;
}

// --- run ---

struct RunArgs {
  std::string model, input, output;
  PrepareOptions prepare;
};

CLI::App* add_run(CLI::App& tq, RunArgs& a) {
  CLI::App* cmd = tq.add_subcommand("run", "run on a float32 .npy batch shaped like the model input");
  add_model(cmd, &a.model, "MODEL.(tqm|onnx)");
  cmd->add_option("--input", a.input, "X.npy")->required();
  cmd->add_option("-o,--output", a.output, "Y.npy")->required();
  add_backend(cmd, &a.prepare.backend, &a.prepare.threads, "kernels");
  return cmd;
}

int cmd_run(RunArgs& a) {
  Graph graph;
  Status s = load_any_model(a.model, &graph);
  if (!s.is_ok()) return fail(s);
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1)
    return fail(Status::error(StatusCode::kUnsupported, "tq run handles models with one input and one output"));
  NpyArray x;
  s = read_npy(a.input, &x);
  if (!s.is_ok()) return fail(s);
  const Tensor& in = graph.tensors[graph.inputs[0]];
  bool match = x.shape.size() == in.shape.size() && !x.shape.empty() && x.shape[0] >= 1;
  for (size_t i = 1; match && i < in.shape.size(); ++i) match = x.shape[i] == in.shape[i];
  if (match && in.shape[0] > 0) match = x.shape[0] == in.shape[0];
  if (!match) {
    char want[96], got[96];
    std::vector<int32_t> w = in.shape;
    return fail(Status::error(StatusCode::kInvalidArgument, "%s has shape %s; model input '%s' expects %s (N = any batch)",
                              a.input.c_str(), shape_str(x.shape.data(), (int)x.shape.size(), got, sizeof(got)),
                              in.name.c_str(), shape_str(w.data(), (int)w.size(), want, sizeof(want))));
  }
  Interpreter interp;
  a.prepare.batch = x.shape[0];
  s = interp.prepare(graph, a.prepare);
  if (!s.is_ok()) return fail(s);
  std::memcpy(interp.input(0).data, x.data.data(), x.data.size() * sizeof(float));
  s = interp.invoke();
  if (!s.is_ok()) return fail(s);
  const TensorView y = interp.output(0);
  std::vector<int32_t> shape(y.dims.d, y.dims.d + y.dims.rank);
  s = write_npy(a.output, shape, y.as<const float>());
  if (!s.is_ok()) return fail(s);
  char buf[96];
  std::fprintf(stderr, "tq: wrote %s %s\n", a.output.c_str(), y.dims.str(buf, sizeof(buf)));
  return 0;
}

// --- embed ---

CLI::App* add_embed(CLI::App& tq, EmbedOptions& a) {
  CLI::App* cmd = tq.add_subcommand(
      "embed",
      "a C++ source with the model bytes, test images and a static arena for a program without a file system "
      "(examples/mcu_inference); writes DIR/NAME.cc");
  add_model(cmd, &a.model, "MODEL.tqm");
  cmd->add_option("-o,--output", a.output, "DIR/NAME")->required();
  cmd->add_option("--data", a.data, "images (or words, as token ids) to embed")
      ->check(CLI::IsMember({"fashion-mnist:test", "fashion-mnist:train", "langid:test", "langid:val", "langid:train"}));
  cmd->add_option("--count", a.count, "the first N samples")->check(CLI::Range(1, kMaxCount));
  add_preprocessing(cmd, &a.data_dir, &a.mean, &a.std);
  add_text_data(cmd, &a.dict_dir, &a.vocab);
  return cmd;
}

int cmd_embed(const EmbedOptions& a) {
  EmbedResult r;
  Status s = embed_model(a, &r);
  if (!s.is_ok()) return fail(s);
  std::fprintf(stderr,
               "tq: wrote %s (model %s: %zu bytes, constants %zu bytes; %d samples; arena %zu bytes, floor %zu)\n",
               r.path.c_str(), r.name.c_str(), r.model_bytes, r.constant_bytes, r.count, r.arena_bytes,
               r.min_live_bytes);
  return 0;
}

// Every command with all its options (CLI11's App::help would describe only a selected command).
std::string usage(const CLI::App& tq) {
  return tq.get_formatter()->make_help(&tq, tq.get_name(), CLI::AppFormatMode::All);
}

}  // namespace

int main(int argc, char** argv) {
#if defined(__GLIBC__)
  // Buffers of 1 MiB and more (calibration tensors, interpreter arenas) come from mmap and go back
  // to the system when freed. glibc's default threshold slides up after the first large free and
  // then keeps freed calibration buffers in a heap it does not shrink (+20 MiB peak RSS measured
  // on resnet20 statistics tuning).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
  CLI::App tq("tq — the tinyquant command line", "tq");
  tq.option_defaults()->always_capture_default();
  tq.get_formatter()->column_width(40);
  tq.require_subcommand(1);
  ImportArgs import_args;
  EvalArgs eval_args;
  std::string inspect_model;
  RunArgs run_args;
  EmbedOptions embed_args;
  CLI::App* import = add_import(tq, import_args);
  CLI::App* eval = add_eval(tq, eval_args);
#if TQ_WITH_QUANT
  QuantizeArgs quantize_args;
  CLI::App* quantize = add_quantize(tq, quantize_args);
  SweepArgs sweep_args;
  CLI::App* sweep = add_sweep(tq, sweep_args);
  RecalibrateArgs recalibrate_args;
  CLI::App* recalibrate = add_recalibrate(tq, recalibrate_args);
#else
  CLI::App* recalibrate = tq.add_subcommand("recalibrate", "not in this build (TQ_WITH_QUANT=OFF)")->allow_extras();
  CLI::App* quantize = tq.add_subcommand("quantize", "not in this build (TQ_WITH_QUANT=OFF)")->allow_extras();
  CLI::App* sweep = tq.add_subcommand("sweep", "not in this build (TQ_WITH_QUANT=OFF)")->allow_extras();
#endif
  CLI::App* inspect = add_inspect(tq, inspect_model);
  CLI::App* run = add_run(tq, run_args);
  CLI::App* embed = add_embed(tq, embed_args);
  CLI::App* help = tq.add_subcommand("help", "this usage")->allow_extras();

  if (argc < 2) {
    std::fputs(usage(tq).c_str(), stderr);
    return kUsageError;
  }
  try {
    tq.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help
      std::fputs(tq.help("", CLI::AppFormatMode::All).c_str(), stdout);
      return 0;
    }
    if (tq.get_subcommands().empty() && argv[1][0] != '-')
      return usage_error(std::string("unknown command '") + argv[1] + "'");
    return usage_error(e.what());
  }
  if (*help) {
    std::fputs(usage(tq).c_str(), stdout);
    return 0;
  }
  if (*import) return cmd_import(import_args);
  if (*eval) return cmd_eval(eval_args);
#if TQ_WITH_QUANT
  if (*quantize) return cmd_quantize(quantize_args);
  if (*sweep) return cmd_sweep(sweep_args);
  if (*recalibrate) return cmd_recalibrate(recalibrate_args);
#else
  if (*recalibrate) return usage_error("recalibrate: this build has no quant/ (TQ_WITH_QUANT=OFF)");
  if (*quantize) return usage_error("quantize: this build has no quant/ (TQ_WITH_QUANT=OFF)");
  if (*sweep) return usage_error("sweep: this build has no quant/ (TQ_WITH_QUANT=OFF)");
#endif
  if (*inspect) return cmd_inspect(inspect_model);
  if (*run) return cmd_run(run_args);
  if (*embed) return cmd_embed(embed_args);
  return usage_error("no command");  // require_subcommand(1) makes this unreachable
}
