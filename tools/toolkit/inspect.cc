#include <algorithm>
#include <cstring>
#include <string>

#include "tinyquant/op_info.h"
#include "tinyquant/shape_inference.h"
#include "toolkit/toolkit.h"

namespace tinyquant {

namespace {

std::string options_text(const Operator& op) {
  char buf[160] = "";
  switch (op.type) {
    case OpType::kConv2D:
    case OpType::kDepthwiseConv2D: {
      const ConvOptions& c = op.conv();
      std::snprintf(buf, sizeof(buf), "stride %dx%d dil %dx%d pad %d,%d,%d,%d%s", c.stride_h, c.stride_w,
                    c.dilation_h, c.dilation_w, c.padding.top, c.padding.left, c.padding.bottom, c.padding.right,
                    op.type == OpType::kConv2D ? (c.groups > 1 ? (" groups " + std::to_string(c.groups)).c_str() : "")
                                               : (" mult " + std::to_string(c.depth_multiplier)).c_str());
      break;
    }
    case OpType::kMaxPool2D:
    case OpType::kAveragePool2D: {
      const PoolOptions& p = op.pool();
      std::snprintf(buf, sizeof(buf), "k %dx%d stride %dx%d pad %d,%d,%d,%d%s", p.kernel_h, p.kernel_w, p.stride_h,
                    p.stride_w, p.padding.top, p.padding.left, p.padding.bottom, p.padding.right,
                    op.type == OpType::kAveragePool2D && p.count_include_pad ? " count_include_pad" : "");
      break;
    }
    case OpType::kClamp: std::snprintf(buf, sizeof(buf), "[%g, %g]", op.activation.min, op.activation.max); break;
    case OpType::kConcat: std::snprintf(buf, sizeof(buf), "axis %d", op.axis); break;
    case OpType::kSlice: {
      std::string t;
      for (size_t d = 0; d < op.slice().begin.size(); ++d) {
        t += d ? "," : "[";
        t += std::to_string(op.slice().begin[d]) + ":" +
             (op.slice().end[d] == kSliceToEnd ? std::string() : std::to_string(op.slice().end[d]));
        if (op.slice().step[d] != 1) t += ":" + std::to_string(op.slice().step[d]);
      }
      std::snprintf(buf, sizeof(buf), "%s]", t.c_str());
      break;
    }
    case OpType::kResize: {
      static const char* const kCoord[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"};
      static const char* const kNearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
      const ResizeOptions& r = op.resize();
      std::snprintf(buf, sizeof(buf), "%s %dx%d %s%s%s", r.mode == ResizeMode::kLinear ? "linear" : "nearest", r.out_h,
                    r.out_w, kCoord[static_cast<int>(r.coord) & 3], r.mode == ResizeMode::kNearest ? " " : "",
                    r.mode == ResizeMode::kNearest ? kNearest[static_cast<int>(r.nearest) & 3] : "");
      break;
    }
    case OpType::kLayerNorm: std::snprintf(buf, sizeof(buf), "epsilon %g", op.epsilon); break;
    case OpType::kConvTranspose: {
      const ConvOptions& c = op.conv();
      std::snprintf(buf, sizeof(buf), "stride %dx%d pad %d,%d,%d,%d out_pad %d,%d%s", c.stride_h, c.stride_w,
                    c.padding.top, c.padding.left, c.padding.bottom, c.padding.right, c.output_pad_h, c.output_pad_w,
                    c.groups > 1 ? (" groups " + std::to_string(c.groups)).c_str() : "");
      break;
    }
    case OpType::kUnary: {
      const UnaryOptions& u = op.unary();
      const bool a = u.kind == UnaryKind::kHardSigmoid || u.kind == UnaryKind::kLeakyRelu ||
                     u.kind == UnaryKind::kElu || u.kind == UnaryKind::kPow;
      std::snprintf(buf, sizeof(buf), "%s", unary_kind_name(u.kind));
      if (a) std::snprintf(buf + std::strlen(buf), sizeof(buf) - std::strlen(buf), " alpha %g", u.alpha);
      if (u.kind == UnaryKind::kHardSigmoid)
        std::snprintf(buf + std::strlen(buf), sizeof(buf) - std::strlen(buf), " beta %g", u.beta);
      if (op.inputs.size() > kTableInput && op.inputs[kTableInput] >= 0)
        std::snprintf(buf + std::strlen(buf), sizeof(buf) - std::strlen(buf), " (int8 lookup table)");
      break;
    }
    case OpType::kTranspose:
    case OpType::kReshape: {
      const std::vector<int32_t>& v = op.type == OpType::kTranspose ? op.perm() : op.new_shape();
      std::snprintf(buf, sizeof(buf), "%s ", op.type == OpType::kTranspose ? "perm" : "to");
      shape_str(v.data(), static_cast<int>(v.size()), buf + std::strlen(buf), sizeof(buf) - std::strlen(buf));
      break;
    }
    default: break;
  }
  std::string s = buf;
  if (op.type != OpType::kClamp && op.activation.type != Activation::kNone)
    s += std::string(s.empty() ? "" : " ") + "+" + activation_name(op.activation.type);
  return s;
}

}  // namespace

void print_inspect(const Graph& graph, const std::string& path, size_t file_bytes, std::FILE* out) {
  std::vector<Dims> dims;
  Status s = infer_shapes(graph, 1, &dims);
  if (!s.is_ok()) {
    std::fprintf(out, "%s: shapes do not check: %s\n", path.c_str(), s.message());
    return;
  }
  Interpreter interp;
  PrepareOptions prep;
  prep.backend = backend_available(Backend::kXnnpack) ? Backend::kXnnpack : Backend::kReference;
  const bool prepared = interp.prepare(graph, prep).is_ok();

  char b1[96], b2[96];
  std::fprintf(out, "model      %s (%zu bytes)\nproducer   %s\n", path.c_str(), file_bytes,
               graph.producer.empty() ? "-" : graph.producer.c_str());
  for (int32_t t : graph.inputs)
    std::fprintf(out, "input      %s %s %s\n", graph.tensors[t].name.c_str(), dtype_name(graph.tensors[t].dtype),
                 shape_str(graph.tensors[t].shape.data(), (int)graph.tensors[t].shape.size(), b1, sizeof(b1)));
  for (int32_t t : graph.outputs)
    std::fprintf(out, "output     %s %s %s\n", graph.tensors[t].name.c_str(), dtype_name(graph.tensors[t].dtype),
                 dims[t].str(b1, sizeof(b1)));
  // Quantized models: weight bits, activation bits of the output, the output's scale / zero point,
  // the range of the per-channel weight scales, and the packed weight + int32 bias bytes.
  bool quantized = false;
  for (const Tensor& t : graph.tensors) quantized |= !t.quant.scale.empty();
  if (quantized) {
    const CalibrationRecord& c = graph.calibration;
    if (c.present) {
      std::fprintf(out, "quantized  %s, %u calibration samples of %s, seed %llu", c.pipeline.empty() ? "-" : c.pipeline.c_str(),
                   c.calibration_samples, c.dataset.empty() ? "-" : c.dataset.c_str(),
                   static_cast<unsigned long long>(c.seed));
      if (c.budget_bytes > 0) std::fprintf(out, ", budget %llu bytes", static_cast<unsigned long long>(c.budget_bytes));
      std::fprintf(out, "\n");
    }
    std::fprintf(out, "\n%-3s %-17s %-28s %-16s %-16s %-7s %5s %5s %-18s %-19s %10s %-8s %s\n", "#", "op", "name",
                 "input", "output", "dtype", "wbits", "abits", "out scale/zp", "w scale min..max", "param B",
                 "runs on", "options");
  } else {
    std::fprintf(out, "\n%-3s %-17s %-28s %-16s %-16s %-7s %-4s %10s %-8s %s\n", "#", "op", "name", "input", "output",
                 "dtype", "bits", "param B", "runs on", "options");
  }
  size_t total_params = 0;
  int min_wbits = 0, max_wbits = 0;
  for (size_t i = 0; i < graph.operators.size(); ++i) {
    const Operator& op = graph.operators[i];
    size_t params = 0;
    int bits = 0;
    const Tensor* weight = nullptr;
    for (size_t k = 0; k < op.inputs.size(); ++k) {
      const int32_t t = op.inputs[k];
      if (t < 0 || !graph.tensors[t].is_constant()) continue;
      params += graph.buffers[graph.tensors[t].buffer].size();
      // The weights of a weighted op (or ConvTranspose's float ones, or a Gather's embedding
      // table); a lookup table, a PRelu slope or a Mul's constant operand is no weight.
      if (k == kWeightInput && (has_weights(op.type) || op.type == OpType::kConvTranspose)) {
        const Tensor& w = graph.tensors[t];
        bits = w.quant.scale.empty() ? static_cast<int>(dtype_size(w.dtype) * 8) : w.quant.bits;
        weight = &w;
      }
    }
    total_params += params;
    const int32_t in0 = op.inputs.empty() ? -1 : op.inputs[0];
    const int32_t out0 = op.outputs[0];
    const char* runs = prepared ? backend_name(interp.op_backend(static_cast<int>(i))) : "-";
    std::string name = op.name.size() > 28 ? op.name.str().substr(0, 25) + "..." : op.name.str();
    if (!quantized) {
      std::fprintf(out, "%-3zu %-17s %-28s %-16s %-16s %-7s %-4s %10zu %-8s %s\n", i, op_name(op.type), name.c_str(),
                   in0 >= 0 ? dims[in0].str(b1, sizeof(b1)) : "-", dims[out0].str(b2, sizeof(b2)),
                   dtype_name(graph.tensors[out0].dtype), bits ? std::to_string(bits).c_str() : "-", params, runs,
                   options_text(op).c_str());
      continue;
    }
    const Tensor& ot = graph.tensors[out0];
    char wbits[16] = "-", abits[16] = "-", oscale[48] = "-", wscale[48] = "-";
    if (weight && !weight->quant.scale.empty()) {
      const std::vector<float>& sc = weight->quant.scale;
      std::snprintf(wbits, sizeof(wbits), "%d", weight->quant.bits);
      const float lo = *std::min_element(sc.begin(), sc.end()), hi = *std::max_element(sc.begin(), sc.end());
      if (sc.size() == 1) std::snprintf(wscale, sizeof(wscale), "%.4g", lo);
      else std::snprintf(wscale, sizeof(wscale), "%.3g..%.3g", lo, hi);
      min_wbits = min_wbits ? std::min(min_wbits, weight->quant.bits) : weight->quant.bits;
      max_wbits = std::max(max_wbits, weight->quant.bits);
    } else if (weight) {
      std::snprintf(wbits, sizeof(wbits), "%d", bits);
    }
    if (!ot.quant.scale.empty()) {
      std::snprintf(abits, sizeof(abits), "%d", ot.quant.bits);
      std::snprintf(oscale, sizeof(oscale), "%.4g/%d", ot.quant.scale[0],
                    ot.quant.zero_point.empty() ? 0 : ot.quant.zero_point[0]);
    }
    std::fprintf(out, "%-3zu %-17s %-28s %-16s %-16s %-7s %5s %5s %-18s %-19s %10zu %-8s %s\n", i, op_name(op.type),
                 name.c_str(), in0 >= 0 ? dims[in0].str(b1, sizeof(b1)) : "-", dims[out0].str(b2, sizeof(b2)),
                 dtype_name(ot.dtype), wbits, abits, oscale, wscale, params, runs, options_text(op).c_str());
  }
  if (quantized) {
    // What stays at higher precision than the integer path, and why: ops running float32 between
    // a Dequantize and a Quantize (no int8 kernel, or not worth one), and int8 ops whose output
    // is wider than the most common activation width (logits, fixed softmax outputs, 8-bit
    // first / last layers).
    std::vector<int> float_ops(size_t(OpType::kCount), 0), wide(size_t(OpType::kCount), 0);
    int count_bits[9] = {};
    for (const Operator& op : graph.operators) {
      const Tensor& o = graph.tensors[op.outputs[0]];
      if (op_info(op.type).int8_role == Int8Role::kConversion) continue;
      if (o.dtype == DType::kInt8 && !o.quant.scale.empty() && o.quant.bits >= 2 && o.quant.bits <= 8)
        ++count_bits[o.quant.bits];
    }
    int common = 8;
    for (int b = 2; b <= 8; ++b)
      if (count_bits[b] > count_bits[common]) common = b;
    for (const Operator& op : graph.operators) {
      const Tensor& o = graph.tensors[op.outputs[0]];
      if (op_info(op.type).int8_role == Int8Role::kConversion) continue;
      if (!runs_int8(op, graph)) ++float_ops[size_t(op.type)];
      else if (o.dtype == DType::kInt8 && o.quant.bits > common && op.type != OpType::kGather) ++wide[size_t(op.type)];
    }
    std::string f, w;
    for (size_t t = 0; t < float_ops.size(); ++t) {
      if (float_ops[t]) f += (f.empty() ? "" : ", ") + std::string(op_name(OpType(t))) + " x" + std::to_string(float_ops[t]);
      if (wide[t]) w += (w.empty() ? "" : ", ") + std::string(op_name(OpType(t))) + " x" + std::to_string(wide[t]);
    }
    std::fprintf(out, "\nprecision  activations mostly %d-bit; float32 (between Dequantize and Quantize): %s; int8 outputs "
                 "wider than %d bits: %s\n", common, f.empty() ? "none" : f.c_str(), common, w.empty() ? "none" : w.c_str());
  }
  size_t constants = 0;
  for (const Buffer& b : graph.buffers) constants += b.size();
  int fallbacks = 0;
  if (prepared && prep.backend == Backend::kXnnpack)
    for (size_t i = 0; i < graph.operators.size(); ++i)
      fallbacks += interp.op_backend(static_cast<int>(i)) != Backend::kXnnpack;
  std::fprintf(out, "\noperators  %zu\ntensors    %zu (%zu constant buffers, %zu bytes)\n", graph.operators.size(),
               graph.tensors.size(), graph.buffers.size(), constants);
  std::fprintf(out, "parameters %zu bytes in operators\n", total_params);
  if (quantized) {
    const QuantizedBytes qb = quantized_bytes(graph);  // what a mixed-precision budget is checked against
    char wrange[32];
    if (min_wbits == max_wbits) std::snprintf(wrange, sizeof(wrange), "%d", min_wbits);
    else std::snprintf(wrange, sizeof(wrange), "%d..%d", min_wbits, max_wbits);
    std::fprintf(out,
                 "weights    %lld bytes packed at %s bits in %lld layers + %lld bytes int32 bias + %lld bytes "
                 "scales/zero points = %lld bytes (float32: %lld bytes, %.1f%%)\n",
                 static_cast<long long>(qb.weights), wrange, static_cast<long long>(qb.layers),
                 static_cast<long long>(qb.bias), static_cast<long long>(qb.quant_params),
                 static_cast<long long>(qb.total()), static_cast<long long>(qb.float32),
                 qb.float32 > 0 ? 100.0 * double(qb.total()) / double(qb.float32) : 0.0);
  }
  if (!graph.master_weights.empty()) {
    size_t master_bytes = 0, half = 0;
    for (const MasterWeights& m : graph.master_weights) {
      master_bytes += graph.buffers[m.buffer].size();
      half += m.fp16;
    }
    std::fprintf(out, "master     float copies of %zu weight / bias tensors (%zu fp16), %zu bytes: recalibration "
                 "possible (tq recalibrate)\n", graph.master_weights.size(), half, master_bytes);
  }
  if (prepared) {
    std::fprintf(out, "arena      %zu bytes at batch 1 (floor: %zu bytes live at once)\n", interp.arena_bytes(),
                 interp.min_live_bytes());
    if (prep.backend == Backend::kXnnpack)
      std::fprintf(out, "xnnpack    %zu weight bytes packed%s; %d op(s) fall back to the reference kernels\n",
                   interp.backend_weight_bytes(), quantized ? " (int8: sub-byte weights unpacked at prepare)" : "",
                   fallbacks);
  }
}

}  // namespace tinyquant
