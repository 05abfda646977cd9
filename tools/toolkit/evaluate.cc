#include <algorithm>
#include <cstring>

#include "tinyquant/port.h"
#include "tinyquant/shape_inference.h"
#include "toolkit/toolkit.h"

namespace tinyquant {

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
  std::vector<Dims> dims;
  TQ_RETURN_IF_ERROR(infer_shapes(graph, 1, &dims));
  const Dims& out = dims[graph.outputs[0]];
  const Tensor& ot = graph.tensors[graph.outputs[0]];
  TQ_ENSURE(ot.dtype == DType::kFloat32 && out.rank >= 1 && out.elements() == out[out.rank - 1] &&
                out[out.rank - 1] >= 2,
            kInvalidArgument, "model output '%s' is %s; a classifier returns float32 [N, classes]", ot.name.c_str(),
            out.str(buf, sizeof(buf)));
  return Status::ok();
}

Status evaluate_classifier(const Graph& graph, const ImageDataset& data, const EvalOptions& options,
                           EvalResult* result) {
  TQ_RETURN_IF_ERROR(check_classifier(graph, data.rows, data.cols));
  TQ_ENSURE(options.batch >= 1 && options.batch <= 4096, kInvalidArgument, "batch %d must be 1..4096", options.batch);
  TQ_ENSURE(options.limit >= 0, kInvalidArgument, "--limit %d must be >= 0", options.limit);
  TQ_ENSURE(options.std > 0.0f, kInvalidArgument, "--std %g must be > 0", options.std);
  const int32_t total = options.limit > 0 ? std::min(options.limit, data.count) : data.count;
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
    preprocess_images(data, first, n, options.mean, options.std, interp.input(0).as<float>());
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
      result->correct += pred == data.labels[first + i];
      if (first + i < options.keep_logits) result->logits.insert(result->logits.end(), row, row + classes);
    }
    first += n;
    const uint64_t now = port::now_us();
    if (options.progress && (now - last_report > 2000000 || first == total)) {
      port::log("  %d/%d images, top-1 so far %.2f%%, %.1f s", first, total, 100.0 * result->correct / first,
                (now - t0) / 1e6);
      last_report = now;
    }
  }
  result->samples = total;
  result->top1 = total ? 100.0 * result->correct / total : 0.0;
  result->seconds = (port::now_us() - t0) / 1e6;
  return Status::ok();
}

}  // namespace tinyquant
