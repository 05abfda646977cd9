#include "toolkit/quantize.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <unistd.h>

#include "data/npy.h"
#include "tinyquant/shape_inference.h"

namespace tinyquant {

Status load_calibration_set(const std::string& spec, const std::string& data_dir, int32_t count, uint64_t seed,
                            float mean, float std, const Graph& graph, quant::CalibrationData* out) {
  quant::CalibrationData c;
  c.dataset = spec;
  if (spec.rfind("npy:", 0) == 0) {  // one file per model input, comma-separated
    std::vector<std::string> files;
    const std::string list = spec.substr(4);
    for (size_t start = 0; start <= list.size();) {
      const size_t comma = std::min(list.find(',', start), list.size());
      files.push_back(list.substr(start, comma - start));
      start = comma + 1;
    }
    TQ_ENSURE(files.size() == graph.inputs.size(), kInvalidArgument,
              "--calib %s: %zu file(s) for a model with %zu input(s) (give npy:A.npy,B.npy,... in input order)",
              spec.c_str(), files.size(), graph.inputs.size());
    for (size_t k = 0; k < files.size(); ++k) {
      const Tensor& in = graph.tensors[graph.inputs[k]];
      NpyArray a;
      TQ_RETURN_IF_ERROR(read_npy(files[k], &a));
      bool match = a.shape.size() == in.shape.size() && !a.shape.empty();
      for (size_t i = 1; match && i < in.shape.size(); ++i) match = a.shape[i] == in.shape[i];
      char got[96], want[96];
      TQ_ENSURE(match, kInvalidArgument, "--calib %s: shape %s does not match model input '%s' %s (N = any)",
                files[k].c_str(), shape_str(a.shape.data(), (int)a.shape.size(), got, sizeof(got)), in.name.c_str(),
                shape_str(in.shape.data(), (int)in.shape.size(), want, sizeof(want)));
      TQ_ENSURE(k == 0 || a.shape[0] == c.samples, kInvalidArgument,
                "--calib %s: %d samples, but %s has %d (every input needs the same count)", files[k].c_str(),
                a.shape[0], files[0].c_str(), c.samples);
      if (k == 0) {
        c.samples = a.shape[0];
        c.values = std::move(a.data);
      } else {
        c.more_inputs.push_back(std::move(a.data));
      }
    }
    *out = std::move(c);
    return Status::ok();
  }
  TQ_ENSURE(graph.inputs.size() == 1, kUnsupported,
            "--calib %s feeds one image input; the model has %zu inputs (give npy:A.npy,B.npy,...)", spec.c_str(),
            graph.inputs.size());
  std::string split;
  if (spec == "fashion-mnist:train" || spec == "fashion-mnist") split = "train";
  else if (spec == "fashion-mnist:test") split = "test";
  TQ_ENSURE(!split.empty(), kInvalidArgument,
            "--calib '%s': expected fashion-mnist:train, fashion-mnist:test or npy:FILE.npy", spec.c_str());
  TQ_ENSURE(count >= 1, kInvalidArgument, "--calib-size %d: the calibration set is empty", count);
  ImageDataset ds;
  TQ_RETURN_IF_ERROR(load_fashion_mnist(data_dir, split, &ds));
  TQ_RETURN_IF_ERROR(check_classifier(graph, ds.rows, ds.cols));
  const int32_t n = std::min(count, ds.count);
  TQ_ENSURE(n >= 1, kInvalidArgument, "--calib %s: the split in %s has no images", spec.c_str(), data_dir.c_str());
  std::vector<int32_t> index(ds.count);
  std::iota(index.begin(), index.end(), 0);
  std::mt19937_64 rng(seed);
  for (int32_t i = 0; i < n; ++i) {
    std::uniform_int_distribution<int32_t> pick(i, ds.count - 1);
    std::swap(index[i], index[pick(rng)]);
  }
  const size_t per = static_cast<size_t>(ds.rows) * ds.cols;
  c.samples = n;
  c.values.resize(per * n);
  for (int32_t i = 0; i < n; ++i) preprocess_images(ds, index[i], 1, mean, std, c.values.data() + per * i);
  *out = std::move(c);
  return Status::ok();
}

void print_rtn_report(const quant::RtnReport& report, std::FILE* out) {
  std::fprintf(out, "%-4s %-18s %-28s %-5s %5s %5s %12s %12s  %s\n", "#", "op", "name", "runs", "wbits", "abits",
               "float B", "quant B", "note");
  int64_t fbytes = 0, qbytes = 0;
  for (size_t i = 0; i < report.layers.size(); ++i) {
    const quant::RtnLayerReport& l = report.layers[i];
    std::string name = l.name.size() > 28 ? l.name.substr(0, 25) + "..." : l.name;
    char wb[16] = "-", ab[16] = "-";
    if (l.weight_bits) std::snprintf(wb, sizeof(wb), "%d", l.weight_bits);
    if (l.int8) std::snprintf(ab, sizeof(ab), "%d", l.activation_bits);
    std::fprintf(out, "%-4zu %-18s %-28s %-5s %5s %5s %12lld %12lld  %s\n", i, op_name(l.type), name.c_str(),
                 l.int8 ? "int8" : "float", wb, ab, static_cast<long long>(l.float_bytes),
                 static_cast<long long>(l.weight_bytes), l.note.c_str());
    fbytes += l.float_bytes;
    qbytes += l.weight_bytes;
  }
  std::fprintf(out, "weights+bias %lld -> %lld bytes; %d Quantize, %d Dequantize ops; %d calibration samples, "
               "%.2f s\n", static_cast<long long>(fbytes), static_cast<long long>(qbytes), report.quantize_ops,
               report.dequantize_ops, report.samples, report.seconds);
}

void print_adaquant_report(const quant::AdaQuantReport& report, std::FILE* out) {
  std::fprintf(out, "%-4s %-16s %-30s %5s %5s %12s %12s %-8s %6s %7s  %s\n", "#", "op", "name", "wbits", "abits",
               "MSE before", "MSE after", "result", "iters", "s", "stats gamma");
  for (size_t i = 0; i < report.layers.size(); ++i) {
    const quant::AdaQuantLayerReport& l = report.layers[i];
    const std::string name = l.name.size() > 30 ? l.name.substr(0, 27) + "..." : l.name;
    const char* result = !l.optimised ? "-" : l.reverted ? "reverted" : "improved";
    std::fprintf(out, "%-4zu %-16s %-30s %5d %5d %12.4g %12.4g %-8s %6d %7.2f  [%.3f, %.3f]\n", i, op_name(l.type),
                 name.c_str(), l.weight_bits, l.activation_bits, l.mse_before, l.mse_after, result, l.iterations,
                 l.seconds, l.stats_gamma_min, l.stats_gamma_max);
    if (!l.note.empty() && l.reverted) std::fprintf(out, "     %s\n", l.note.c_str());
  }
  std::fprintf(out, "pipeline %s: %d calibration samples (%d train, %d held out), %.1f s (AdaQuant %.1f s at %.1f "
               "GFLOP/s on %s GEMM, statistics tuning %.1f s), peak RSS %.1f MiB, largest layer cache %.1f MiB\n",
               report.pipeline.c_str(), report.rtn.samples, report.train_samples, report.holdout_samples,
               report.seconds, report.adaquant_seconds, report.gflops, report.gemm_engine.c_str(),
               report.stats_seconds, report.peak_rss_bytes / 1048576.0, report.largest_cache_bytes / 1048576.0);
}

void print_adaquant_progress(void* user, const quant::AdaQuantProgress& p) {
  std::FILE* out = static_cast<std::FILE*>(user);
  static const bool tty = isatty(fileno(out));
  if (tty) {
    std::fprintf(out, "\r  layer %d/%d %-28.28s %-12s iter %5d/%-5d loss %-10.4g ETA %5.0f s ", p.layer + 1,
                 p.layers, p.name, p.stage, p.iteration, p.iterations, p.loss, p.eta_s);
    if (p.layer + 1 == p.layers && p.iteration == p.iterations) std::fputc('\n', out);
    std::fflush(out);
  } else if (p.iteration == p.iterations) {
    std::fprintf(out, "  layer %d/%d %s: %s done, loss %.4g, %.1f s elapsed, ETA %.0f s\n", p.layer + 1, p.layers,
                 p.name, p.stage, p.loss, p.elapsed_s, p.eta_s);
  }
}

}  // namespace tinyquant
