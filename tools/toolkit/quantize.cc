#include "toolkit/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <random>
#include <unistd.h>

#include "data/npy.h"
#include "tinyquant/shape_inference.h"

namespace tinyquant {

Status load_calibration_set(const std::string& spec, const std::string& data_dir, int32_t count, uint64_t seed,
                            float mean, float std, const Graph& graph, quant::CalibrationData* out,
                            const TextDataPaths& text) {
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
  TQ_ENSURE(count >= 1, kInvalidArgument, "--calib-size %d: the calibration set is empty", count);
  auto draw = [&](int32_t total, int32_t n) {  // partial Fisher-Yates: n distinct indices of [0, total)
    std::vector<int32_t> index(total);
    std::iota(index.begin(), index.end(), 0);
    std::mt19937_64 rng(seed);
    for (int32_t i = 0; i < n; ++i) {
      std::uniform_int_distribution<int32_t> pick(i, total - 1);
      std::swap(index[i], index[pick(rng)]);
    }
    index.resize(n);
    return index;
  };
  if (spec == "langid" || spec.rfind("langid:", 0) == 0) {
    const std::string split = spec == "langid" ? "train" : spec.substr(7);
    TQ_ENSURE(split == "train" || split == "val" || split == "test", kInvalidArgument,
              "--calib '%s': expected langid:train, langid:val or langid:test", spec.c_str());
    TokenDataset ds;
    TQ_RETURN_IF_ERROR(load_langid(text.dict_dir, text.vocab, split, &ds));
    TQ_RETURN_IF_ERROR(check_token_classifier(graph, ds.seq_len));
    const int32_t n = std::min(count, ds.count);
    TQ_ENSURE(n >= 1, kInvalidArgument, "--calib %s: the split has no words", spec.c_str());
    const std::vector<int32_t> index = draw(ds.count, n);
    c.samples = n;
    c.values.resize(static_cast<size_t>(n) * ds.seq_len);
    for (int32_t i = 0; i < n; ++i)
      for (int32_t j = 0; j < ds.seq_len; ++j)
        c.values[size_t(i) * ds.seq_len + j] = static_cast<float>(ds.tokens[size_t(index[i]) * ds.seq_len + j]);
    *out = std::move(c);
    return Status::ok();
  }
  std::string split;
  if (spec == "fashion-mnist:train" || spec == "fashion-mnist") split = "train";
  else if (spec == "fashion-mnist:test") split = "test";
  TQ_ENSURE(!split.empty(), kInvalidArgument,
            "--calib '%s': expected fashion-mnist:train, fashion-mnist:test, langid:train|val|test or npy:FILE.npy",
            spec.c_str());
  ImageDataset ds;
  TQ_RETURN_IF_ERROR(load_fashion_mnist(data_dir, split, &ds));
  TQ_RETURN_IF_ERROR(check_classifier(graph, ds.rows, ds.cols));
  const int32_t n = std::min(count, ds.count);
  TQ_ENSURE(n >= 1, kInvalidArgument, "--calib %s: the split in %s has no images", spec.c_str(), data_dir.c_str());
  const std::vector<int32_t> index = draw(ds.count, n);
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
  if (!report.matmuls.empty()) {
    std::fprintf(out, "%-30s %-34s %12s %12s %-8s %6s %7s\n", "BatchMatMul (input quantizers)",
                 "scale A -> , scale B -> (fixed: =)", "MSE before", "MSE after", "result", "iters", "s");
    for (const quant::AdaQuantMatMulReport& m : report.matmuls) {
      const std::string name = m.name.size() > 30 ? m.name.substr(0, 27) + "..." : m.name;
      char scales[96];
      std::snprintf(scales, sizeof(scales), "%.4g%s%.4g, %.4g%s%.4g", m.init_scale[0], m.learned[0] ? "->" : "=",
                    m.final_scale[0], m.init_scale[1], m.learned[1] ? "->" : "=", m.final_scale[1]);
      std::fprintf(out, "%-30s %-34s %12.4g %12.4g %-8s %6d %7.2f\n", name.c_str(), scales, m.mse_before, m.mse_after,
                   m.reverted ? "reverted" : (m.learned[0] || m.learned[1]) ? "improved" : "-", m.iterations,
                   m.seconds);
    }
  }
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

namespace {
// A whole decimal number (no sign, no exponent, at most one '.'), or false.
bool parse_decimal(const std::string& t, double* v) {
  if (t.empty() || t.size() > 24) return false;
  int dots = 0, digits = 0;
  for (char c : t) {
    if (c == '.') ++dots;
    else if (c >= '0' && c <= '9') ++digits;
    else return false;
  }
  if (dots > 1 || digits == 0) return false;
  *v = std::strtod(t.c_str(), nullptr);
  return std::isfinite(*v);
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  size_t at = 0;
  for (;;) {
    const size_t c = text.find(',', at);
    parts.push_back(text.substr(at, c == std::string::npos ? std::string::npos : c - at));
    if (c == std::string::npos) break;
    at = c + 1;
  }
  return parts;
}
}  // namespace

Status parse_budget_percent(const std::string& text, double* fraction) {
  std::string t = text;
  if (!t.empty() && t.back() == '%') t.pop_back();
  double v = 0.0;
  TQ_ENSURE(parse_decimal(t, &v), kInvalidArgument,
            "budget '%s': expected a percentage of the float32 weight size, e.g. 13%% or 12.5", text.c_str());
  TQ_ENSURE(v > 0 && v <= 100, kInvalidArgument, "budget '%s': a percentage must be in (0, 100]", text.c_str());
  *fraction = v / 100.0;
  return Status::ok();
}

Status parse_budget_bytes(const std::string& text, int64_t* bytes) {
  size_t n = 0;
  while (n < text.size() && ((text[n] >= '0' && text[n] <= '9') || text[n] == '.')) ++n;
  const std::string number = text.substr(0, n), unit = text.substr(n);
  double v = 0.0, scale = 0.0;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "KB" || unit == "kB" || unit == "K" || unit == "k") scale = 1e3;
  else if (unit == "KiB") scale = 1024;
  else if (unit == "MB" || unit == "M") scale = 1e6;
  else if (unit == "MiB") scale = 1048576;
  TQ_ENSURE(scale > 0 && parse_decimal(number, &v), kInvalidArgument,
            "budget '%s': expected a size in bytes, e.g. 400000, 400KB, 390KiB or 1.5MB", text.c_str());
  const double b = std::floor(v * scale);
  TQ_ENSURE(b >= 1 && b < 9e15, kInvalidArgument, "budget '%s': a size must be at least 1 byte", text.c_str());
  *bytes = static_cast<int64_t>(b);
  return Status::ok();
}

Status parse_bit_options(const std::string& text, std::vector<int32_t>* bits) {
  std::vector<int32_t> out;
  for (const std::string& p : split_commas(text)) {
    double v = 0.0;
    TQ_ENSURE(parse_decimal(p, &v) && v == std::floor(v), kInvalidArgument,
              "--bits '%s': expected comma-separated weight bits, e.g. 2,3,4,8 ('%s' is no number)", text.c_str(),
              p.c_str());
    TQ_ENSURE(v >= 2 && v <= 8, kInvalidArgument, "--bits '%s': %s bits is not one of 2..8", text.c_str(), p.c_str());
    TQ_ENSURE(std::find(out.begin(), out.end(), int32_t(v)) == out.end(), kInvalidArgument,
              "--bits '%s': %s appears twice", text.c_str(), p.c_str());
    out.push_back(static_cast<int32_t>(v));
  }
  *bits = std::move(out);
  return Status::ok();
}

Status parse_percent_list(const std::string& text, std::vector<double>* fractions) {
  std::vector<double> out;
  for (const std::string& p : split_commas(text)) {
    double f = 0.0;
    Status s = parse_budget_percent(p, &f);
    if (!s.is_ok()) return s.with_context("--budgets '%s'", text.c_str());
    out.push_back(f);
  }
  *fractions = std::move(out);
  return Status::ok();
}

void print_mixed_report(const quant::MixedReport& r, std::FILE* out) {
  std::fprintf(out, "%-4s %-16s %-30s %12s", "#", "op", "name", "MACs");
  if (!r.layers.empty())
    for (const quant::MixedOptionReport& o : r.layers[0].options) std::fprintf(out, "   dL@%d-bit", o.bits);
  std::fprintf(out, " %5s %9s\n", "wbits", "bytes");
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const quant::MixedLayerReport& l = r.layers[i];
    const std::string name = l.name.size() > 30 ? l.name.substr(0, 27) + "..." : l.name;
    std::fprintf(out, "%-4zu %-16s %-30s %12lld", i, op_name(l.type), name.c_str(), static_cast<long long>(l.macs));
    for (const quant::MixedOptionReport& o : l.options) std::fprintf(out, " %10.3g", o.sensitivity);
    std::fprintf(out, " %5d %9lld\n", l.chosen_bits, static_cast<long long>(l.bytes));
  }
  std::fprintf(out, "pipeline %s: bits %s; %lld bytes = %.2f%% of %lld float32 bytes", r.pipeline.c_str(),
               r.bits_summary().c_str(), static_cast<long long>(r.model_bytes),
               r.float32_bytes > 0 ? 100.0 * double(r.model_bytes) / double(r.float32_bytes) : 0.0,
               static_cast<long long>(r.float32_bytes));
  if (r.budget_bytes >= 0) std::fprintf(out, " (budget %lld)", static_cast<long long>(r.budget_bytes));
  if (r.max_drop >= 0) std::fprintf(out, " (max drop %g%%, %d programs measured)", r.max_drop, r.drop_searches);
  std::fprintf(out, "; options reach %lld..%lld bytes\n", static_cast<long long>(r.smallest_bytes),
               static_cast<long long>(r.largest_bytes));
  std::fprintf(out, "  integer program: %s, %lld nodes, %.3f s; predicted loss %.4g, measured %.4g (all at the largest "
               "option: %.4g); top-1 changed on %.2f%% of the calibration samples\n",
               r.allocation.status.c_str(), static_cast<long long>(r.allocation.nodes), r.allocation_seconds,
               r.predicted_loss, r.calibration_loss, r.base_loss, r.calibration_drop);
  std::fprintf(out, "  time: candidates %.1f s, sensitivity %.1f s, this budget %.1f s (tuning %.1f s); peak RSS %.1f MiB\n",
               r.candidate_seconds, r.sensitivity_seconds, r.seconds, r.tuning_seconds, r.peak_rss_bytes / 1048576.0);
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
