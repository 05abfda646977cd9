#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "tinyquant/port.h"
#include "tinyquant/shape_inference.h"
#include "toolkit/toolkit.h"

namespace tinyquant {

namespace {
// One float32 [N, classes >= 2] output (shapes inferred at batch 1).
Status check_classifier_output(const Graph& graph) {
  std::vector<Dims> dims;
  TQ_RETURN_IF_ERROR(infer_shapes(graph, 1, &dims));
  const Dims& out = dims[graph.outputs[0]];
  const Tensor& ot = graph.tensors[graph.outputs[0]];
  char buf[96];
  TQ_ENSURE(ot.dtype == DType::kFloat32 && out.rank >= 1 && out.elements() == out[out.rank - 1] &&
                out[out.rank - 1] >= 2,
            kInvalidArgument, "model output '%s' is %s; a classifier returns float32 [N, classes]", ot.name.c_str(),
            out.str(buf, sizeof(buf)));
  return Status::ok();
}
}  // namespace

Status check_classifier(const Graph& graph, int32_t rows, int32_t cols) {
  TQ_ENSURE(graph.inputs.size() == 1 && graph.outputs.size() == 1, kInvalidArgument,
            "the model has %zu inputs and %zu outputs; an image classifier needs exactly one of each",
            graph.inputs.size(), graph.outputs.size());
  const Tensor& in = graph.tensors[graph.inputs[0]];
  char buf[96];
  const std::vector<int32_t>& s = in.shape;
  const bool nchw = s.size() == 4 && s[1] == 1 && s[2] == rows && s[3] == cols;
  const bool nhwc = s.size() == 4 && s[1] == rows && s[2] == cols && s[3] == 1;
  const bool flat = s.size() == 2 && s[1] == rows * cols;
  TQ_ENSURE(in.dtype == DType::kFloat32 && (nchw || nhwc || flat), kInvalidArgument,
            "model input '%s' is %s %s; Fashion-MNIST needs float32 [N,1,%d,%d] (or [N,%d,%d,1] / [N,%d])",
            in.name.c_str(), dtype_name(in.dtype), shape_str(s.data(), (int)s.size(), buf, sizeof(buf)), rows, cols,
            rows, cols, rows * cols);
  return check_classifier_output(graph);
}

namespace {
// The evaluation loop of every labelled dataset: fill(first, n, input) writes samples
// [first, first + n) as the model's float32 input.
template <typename Fill>
Status evaluate_loop(const Graph& graph, int32_t count, const uint8_t* labels, const EvalOptions& options,
                     const char* unit, Fill fill, EvalResult* result) {
  TQ_ENSURE(options.batch >= 1 && options.batch <= 4096, kInvalidArgument, "batch %d must be 1..4096", options.batch);
  TQ_ENSURE(options.limit >= 0, kInvalidArgument, "--limit %d must be >= 0", options.limit);
  const int32_t total = options.limit > 0 ? std::min(options.limit, count) : count;
  *result = EvalResult();

  Interpreter interp;
  PrepareOptions prep;
  prep.backend = options.backend;
  prep.threads = options.threads;
  int32_t prepared_batch = 0;
  const uint64_t t0 = port::now_us();
  uint64_t last_report = t0;
  for (int32_t first = 0; first < total;) {
    const int32_t n = std::min(options.batch, total - first);
    if (n != prepared_batch) {  // the first batch, and a shorter last one
      prep.batch = n;
      TQ_RETURN_IF_ERROR(interp.prepare(graph, prep));
      prepared_batch = n;
      result->arena_bytes = std::max(result->arena_bytes, interp.arena_bytes());
      result->backend_weight_bytes = interp.backend_weight_bytes();
      result->fallback_ops = 0;
      if (options.backend != Backend::kReference)
        for (size_t i = 0; i < graph.operators.size(); ++i)
          result->fallback_ops += interp.op_backend(static_cast<int>(i)) != options.backend;
    }
    fill(first, n, interp.input(0).as<float>());
    TQ_RETURN_IF_ERROR(interp.invoke());
    // Checksum sample by sample (each output's row i in turn), so the batch size cannot change it.
    for (int32_t i = 0; i < n; ++i)
      for (int o = 0; o < interp.num_outputs(); ++o) {
        const TensorView v = interp.output(o);
        const size_t row = static_cast<size_t>(v.elements() / n) * dtype_size(v.dtype);
        result->checksum = fnv1a64(result->checksum, static_cast<const uint8_t*>(v.data) + row * i, row);
      }
    const TensorView out = interp.output(0);
    const int32_t classes = out.dims[out.dims.rank - 1];
    result->classes = classes;
    const float* logits = out.as<const float>();
    for (int32_t i = 0; i < n; ++i) {
      const float* row = logits + size_t(i) * classes;
      const int32_t pred = static_cast<int32_t>(std::max_element(row, row + classes) - row);
      result->predictions.push_back(pred);
      result->correct += pred == labels[first + i];
      if (first + i < options.keep_logits) result->logits.insert(result->logits.end(), row, row + classes);
    }
    first += n;
    const uint64_t now = port::now_us();
    if (options.progress && (now - last_report > 2000000 || first == total)) {
      port::log("  %d/%d %s, top-1 so far %.2f%%, %.1f s", first, total, unit, 100.0 * result->correct / first,
                (now - t0) / 1e6);
      last_report = now;
    }
  }
  result->samples = total;
  result->top1 = total ? 100.0 * result->correct / total : 0.0;
  result->seconds = (port::now_us() - t0) / 1e6;
  return Status::ok();
}
}  // namespace

Status evaluate_classifier(const Graph& graph, const ImageDataset& data, const EvalOptions& options,
                           EvalResult* result) {
  TQ_RETURN_IF_ERROR(check_classifier(graph, data.rows, data.cols));
  TQ_ENSURE(options.std > 0.0f, kInvalidArgument, "--std %g must be > 0", options.std);
  return evaluate_loop(graph, data.count, data.labels.data(), options, "images",
                       [&](int32_t first, int32_t n, float* in) {
                         preprocess_images(data, first, n, options.mean, options.std, in);
                       },
                       result);
}

Status check_token_classifier(const Graph& graph, int32_t seq_len) {
  TQ_ENSURE(graph.inputs.size() == 1 && graph.outputs.size() == 1, kInvalidArgument,
            "the model has %zu inputs and %zu outputs; a token classifier needs exactly one of each",
            graph.inputs.size(), graph.outputs.size());
  const Tensor& in = graph.tensors[graph.inputs[0]];
  char buf[96];
  TQ_ENSURE(in.dtype == DType::kFloat32 && in.shape.size() == 2 && in.shape[1] == seq_len, kInvalidArgument,
            "model input '%s' is %s %s; the text data set gives token ids as [N,%d] (words of at most %d characters)",
            in.name.c_str(), dtype_name(in.dtype), shape_str(in.shape.data(), (int)in.shape.size(), buf, sizeof(buf)),
            seq_len, seq_len);
  return check_classifier_output(graph);
}

Status evaluate_token_classifier(const Graph& graph, const TokenDataset& data, const EvalOptions& options,
                                 EvalResult* result) {
  TQ_RETURN_IF_ERROR(check_token_classifier(graph, data.seq_len));
  return evaluate_loop(graph, data.count, data.labels.data(), options, "words",
                       [&](int32_t first, int32_t n, float* in) {
                         const int32_t* t = data.tokens.data() + int64_t(first) * data.seq_len;
                         for (int64_t i = 0; i < int64_t(n) * data.seq_len; ++i) in[i] = static_cast<float>(t[i]);
                       },
                       result);
}

}  // namespace tinyquant

namespace tinyquant {

Status compare_models(const Graph& model, const Graph& reference, const std::vector<NpyArray>& inputs,
                      const EvalOptions& options, FidelityResult* result) {
  TQ_ENSURE(model.inputs.size() == reference.inputs.size() && model.outputs.size() == reference.outputs.size(),
            kInvalidArgument, "the models differ: %zu inputs / %zu outputs against %zu / %zu", model.inputs.size(),
            model.outputs.size(), reference.inputs.size(), reference.outputs.size());
  TQ_ENSURE(inputs.size() == model.inputs.size(), kInvalidArgument,
            "the model has %zu inputs; got data for %zu (give one .npy per input, comma-separated)",
            model.inputs.size(), inputs.size());
  TQ_ENSURE(options.batch >= 1 && options.batch <= 4096, kInvalidArgument, "batch %d must be 1..4096", options.batch);
  int32_t total = -1;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& t = model.tensors[model.inputs[k]];
    const NpyArray& a = inputs[k];
    bool match = a.shape.size() == t.shape.size() && !a.shape.empty();
    for (size_t d = 1; match && d < t.shape.size(); ++d) match = a.shape[d] == t.shape[d];
    char got[96], want[96];
    TQ_ENSURE(match, kInvalidArgument, "data for input '%s' has shape %s, expected %s (N = any)", t.name.c_str(),
              shape_str(a.shape.data(), static_cast<int>(a.shape.size()), got, sizeof(got)),
              shape_str(t.shape.data(), static_cast<int>(t.shape.size()), want, sizeof(want)));
    TQ_ENSURE(total < 0 || a.shape[0] == total, kInvalidArgument,
              "the inputs hold different sample counts (%d and %d)", total, a.shape[0]);
    total = a.shape[0];
  }
  if (options.limit > 0) total = std::min(total, options.limit);
  TQ_ENSURE(total >= 1, kInvalidArgument, "no samples to compare");
  *result = FidelityResult();
  result->samples = total;
  result->outputs.resize(model.outputs.size());
  std::vector<double> signal(model.outputs.size(), 0.0), noise(model.outputs.size(), 0.0);
  std::vector<int64_t> agree(model.outputs.size(), 0), rows(model.outputs.size(), 0);

  Interpreter a, b;
  PrepareOptions prep;
  prep.backend = options.backend;
  prep.threads = options.threads;
  int32_t prepared = 0;
  const uint64_t t0 = port::now_us();
  for (int32_t first = 0; first < total;) {
    const int32_t n = std::min(options.batch, total - first);
    if (n != prepared) {
      prep.batch = n;
      TQ_RETURN_IF_ERROR(a.prepare(model, prep));
      TQ_RETURN_IF_ERROR(b.prepare(reference, prep).with_context("reference model"));
      prepared = n;
    }
    for (size_t k = 0; k < inputs.size(); ++k) {
      const size_t per = inputs[k].data.size() / static_cast<size_t>(inputs[k].shape[0]);
      TQ_ENSURE(a.input(static_cast<int>(k)).elements() == static_cast<int64_t>(per) * n &&
                    b.input(static_cast<int>(k)).elements() == static_cast<int64_t>(per) * n,
                kInvalidArgument, "input %zu: the models take %lld elements per batch of %d, the data %zu", k,
                static_cast<long long>(a.input(static_cast<int>(k)).elements()), n, per * n);
      std::memcpy(a.input(static_cast<int>(k)).data, inputs[k].data.data() + per * first, per * n * sizeof(float));
      std::memcpy(b.input(static_cast<int>(k)).data, inputs[k].data.data() + per * first, per * n * sizeof(float));
    }
    TQ_RETURN_IF_ERROR(a.invoke());
    TQ_RETURN_IF_ERROR(b.invoke().with_context("reference model"));
    for (int o = 0; o < a.num_outputs(); ++o) {
      const TensorView y = a.output(o), r = b.output(o);
      TQ_ENSURE(y.dtype == DType::kFloat32 && r.dtype == DType::kFloat32 && y.elements() == r.elements(),
                kInvalidArgument, "output %d: the models' outputs differ in dtype or size (%lld and %lld elements)",
                o, static_cast<long long>(y.elements()), static_cast<long long>(r.elements()));
      FidelityOutput& f = result->outputs[o];
      f.name = model.tensors[model.outputs[o]].name;
      const float* py = y.as<const float>();
      const float* pr = r.as<const float>();
      for (int64_t i = 0; i < y.elements(); ++i) {
        const double d = double(py[i]) - pr[i];
        signal[o] += double(pr[i]) * pr[i];
        noise[o] += d * d;
        f.max_abs_error = std::max(f.max_abs_error, std::fabs(d));
        f.reference_max_abs = std::max(f.reference_max_abs, std::fabs(double(pr[i])));
      }
      f.elements += y.elements();
      // A classifier's scores: [N, C] with C > 1 — compare the arg-max.
      f.classifier = y.dims.rank == 2 && y.dims[1] > 1 && y.dims[0] == n;
      if (f.classifier) {
        const int32_t c = y.dims[1];
        for (int32_t i = 0; i < n; ++i) {
          const float* ry = py + size_t(i) * c;
          const float* rr = pr + size_t(i) * c;
          agree[o] += (std::max_element(ry, ry + c) - ry) == (std::max_element(rr, rr + c) - rr);
        }
        rows[o] += n;
      }
    }
    first += n;
  }
  for (size_t o = 0; o < result->outputs.size(); ++o) {
    FidelityOutput& f = result->outputs[o];
    f.sqnr_db = noise[o] > 0 ? 10.0 * std::log10(signal[o] / noise[o]) : std::numeric_limits<double>::infinity();
    f.top1_agreement = rows[o] ? 100.0 * agree[o] / rows[o] : 0.0;
  }
  result->seconds = (port::now_us() - t0) / 1e6;
  return Status::ok();
}

}  // namespace tinyquant
