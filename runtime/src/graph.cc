#include "tinyquant/graph.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "tinyquant/op_info.h"

namespace tinyquant {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kInt8: return "int8";
    case DType::kInt32: return "int32";
    case DType::kUInt8: return "uint8";
  }
  return "?";
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kInt8: return 1;
    case DType::kInt32: return 4;
    case DType::kUInt8: return 1;
  }
  return 0;
}

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::kNone: return "none";
    case Activation::kRelu: return "relu";
    case Activation::kRelu6: return "relu6";
    case Activation::kClip: return "clip";
  }
  return "?";
}

const char* unary_kind_name(UnaryKind kind) {
  static const char* const kNames[] = {"Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu",
                                       "Exp",     "Log",  "Sqrt",        "Abs",       "Neg",       "Erf",
                                       "Gelu",    "GeluTanh", "Pow",     "Reciprocal", "Softplus"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(UnaryKind::kCount),
                "unary_kind_name: one name per UnaryKind");
  return static_cast<size_t>(kind) < static_cast<size_t>(UnaryKind::kCount) ? kNames[static_cast<size_t>(kind)] : "?";
}

int64_t shape_elements(const int32_t* dims, int rank) {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] < 0) return -1;
    if (dims[i] != 0 && n > (int64_t(1) << 40) / dims[i]) return -1;  // far beyond any model
    n *= dims[i];
  }
  return n;
}

int64_t packed_bytes(DType dtype, int64_t elements, int32_t bits) {
  if (elements < 0) return -1;
  if (dtype == DType::kInt8 && bits >= 2 && bits < 8) return (elements * bits + 7) / 8;
  return elements * static_cast<int64_t>(dtype_size(dtype));
}

const char* shape_str(const int32_t* dims, int rank, char* buf, size_t size) {
  size_t used = 0;
  if (size == 0) return buf;
  buf[0] = '\0';
  used += std::snprintf(buf, size, "[");
  for (int i = 0; i < rank && used < size; ++i)
    used += std::snprintf(buf + used, size - used, i ? ",%d" : "%d", dims[i]);
  if (used < size) std::snprintf(buf + used, size - used, "]");
  return buf;
}

int32_t Graph::add_tensor(std::string name, DType dtype, std::vector<int32_t> shape) {
  Tensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  tensors.push_back(std::move(t));
  return static_cast<int32_t>(tensors.size() - 1);
}

int32_t Graph::add_constant(std::string name, DType dtype, std::vector<int32_t> shape, const void* data,
                            size_t bytes) {
  Buffer b;
  // Readable slack past the end: XNNPACK may read up to 16 bytes beyond a tensor it reads in place.
  b.owned.reserve(bytes + 16);
  b.owned.resize(bytes);
  if (bytes) std::memcpy(b.owned.data(), data, bytes);
  buffers.push_back(std::move(b));
  int32_t t = add_tensor(std::move(name), dtype, std::move(shape));
  tensors[t].buffer = static_cast<int32_t>(buffers.size() - 1);
  return t;
}

int32_t Graph::add_operator(Operator op) {
  operators.push_back(std::move(op));
  return static_cast<int32_t>(operators.size() - 1);
}

namespace {

Status check_window(const Operator& op, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t dh, int32_t dw,
                    const Padding& p) {
  const char* name = op.name.c_str();
  TQ_ENSURE(kh >= 1 && kw >= 1 && kh <= 4096 && kw <= 4096, kInvalidModel, "%s '%s': kernel %dx%d must be 1..4096",
            op_name(op.type), name, kh, kw);
  TQ_ENSURE(sh >= 1 && sw >= 1 && sh <= 4096 && sw <= 4096, kInvalidModel, "%s '%s': stride %dx%d must be 1..4096",
            op_name(op.type), name, sh, sw);
  TQ_ENSURE(dh >= 1 && dw >= 1 && dh <= 4096 && dw <= 4096, kInvalidModel,
            "%s '%s': dilation %dx%d must be 1..4096", op_name(op.type), name, dh, dw);
  TQ_ENSURE(p.top >= 0 && p.left >= 0 && p.bottom >= 0 && p.right >= 0 && p.top <= 4096 && p.left <= 4096 &&
                p.bottom <= 4096 && p.right <= 4096,
            kInvalidModel, "%s '%s': padding (%d,%d,%d,%d) must be 0..4096", op_name(op.type), name, p.top, p.left,
            p.bottom, p.right);
  return Status::ok();
}

Status check_options(const Operator& op) {
  const char* name = op.name.c_str();
  const FusedActivation& a = op.activation;
  TQ_ENSURE(!(a.min > a.max) && a.min == a.min && a.max == a.max, kInvalidModel,
            "%s '%s': activation bounds [%g, %g] are not an interval", op_name(op.type), name, a.min, a.max);
  TQ_ENSURE(static_cast<uint8_t>(a.type) <= static_cast<uint8_t>(Activation::kClip), kInvalidModel,
            "%s '%s': unknown activation %d", op_name(op.type), name, static_cast<int>(a.type));
  switch (op.type) {
    case OpType::kConv2D:
    case OpType::kDepthwiseConv2D:
    case OpType::kConvTranspose: {
      const ConvOptions& c = op.conv();
      TQ_ENSURE(op.type == OpType::kConvTranspose || (c.output_pad_h == 0 && c.output_pad_w == 0), kInvalidModel,
                "%s '%s': output padding is for ConvTranspose only", op_name(op.type), name);
      TQ_ENSURE(c.output_pad_h >= 0 && c.output_pad_w >= 0 && c.output_pad_h < c.stride_h && c.output_pad_w < c.stride_w,
                kInvalidModel, "ConvTranspose '%s': output padding %d,%d must be below the stride %d,%d", name,
                c.output_pad_h, c.output_pad_w, c.stride_h, c.stride_w);
      TQ_RETURN_IF_ERROR(check_window(op, 1, 1, c.stride_h, c.stride_w, c.dilation_h, c.dilation_w, c.padding));
      TQ_ENSURE(c.groups >= 1, kInvalidModel, "%s '%s': groups %d must be >= 1", op_name(op.type), name, c.groups);
      TQ_ENSURE(c.depth_multiplier >= 1, kInvalidModel, "%s '%s': depth multiplier %d must be >= 1",
                op_name(op.type), name, c.depth_multiplier);
      break;
    }
    case OpType::kMaxPool2D:
    case OpType::kAveragePool2D: {
      const PoolOptions& p = op.pool();
      TQ_RETURN_IF_ERROR(
          check_window(op, p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, p.padding));
      TQ_ENSURE(p.padding.top < p.kernel_h && p.padding.bottom < p.kernel_h && p.padding.left < p.kernel_w &&
                    p.padding.right < p.kernel_w,
                kInvalidModel, "%s '%s': padding must be smaller than the %dx%d window", op_name(op.type), name,
                p.kernel_h, p.kernel_w);
      break;
    }
    case OpType::kReshape:
      TQ_ENSURE(!op.new_shape().empty() && op.new_shape().size() <= kMaxRank, kInvalidModel,
                "Reshape '%s': new shape must have 1..%d dims, has %zu", name, kMaxRank, op.new_shape().size());
      break;
    case OpType::kTranspose:
      TQ_ENSURE(!op.perm().empty() && op.perm().size() <= kMaxRank, kInvalidModel,
                "Transpose '%s': permutation must have 1..%d entries, has %zu", name, kMaxRank, op.perm().size());
      break;
    case OpType::kSoftmax:
      TQ_ENSURE(op.beta > 0.0f && op.beta < 1e6f, kInvalidModel, "Softmax '%s': beta %g must be in (0, 1e6)", name,
                op.beta);
      break;
    case OpType::kSlice: {
      const SliceOptions& s = op.slice();
      TQ_ENSURE(!s.begin.empty() && s.begin.size() <= kMaxRank && s.end.size() == s.begin.size() &&
                    s.step.size() == s.begin.size(),
                kInvalidModel, "Slice '%s': begin, end and step need one entry per dim (1..%d), have %zu/%zu/%zu",
                name, kMaxRank, s.begin.size(), s.end.size(), s.step.size());
      for (size_t d = 0; d < s.begin.size(); ++d)
        TQ_ENSURE(s.begin[d] >= 0 && s.end[d] >= s.begin[d] && s.step[d] >= 1, kInvalidModel,
                  "Slice '%s': dim %zu: begin %d, end %d, step %d (expected 0 <= begin <= end, step >= 1)", name, d,
                  s.begin[d], s.end[d], s.step[d]);
      break;
    }
    case OpType::kResize: {
      const ResizeOptions& r = op.resize();
      TQ_ENSURE(static_cast<uint8_t>(r.mode) <= 1 && static_cast<uint8_t>(r.coord) <= 3 &&
                    static_cast<uint8_t>(r.nearest) <= 3,
                kInvalidModel, "Resize '%s': unknown mode %d / coordinate mode %d / nearest mode %d", name,
                int(r.mode), int(r.coord), int(r.nearest));
      TQ_ENSURE(r.out_h >= 1 && r.out_w >= 1 && r.out_h <= 65536 && r.out_w <= 65536 && r.scale_h > 0.0f &&
                    r.scale_w > 0.0f && std::isfinite(r.scale_h) && std::isfinite(r.scale_w),
                kInvalidModel, "Resize '%s': output %dx%d and scales %g, %g must be positive", name, r.out_h, r.out_w,
                r.scale_h, r.scale_w);
      break;
    }
    case OpType::kLayerNorm:
      TQ_ENSURE(op.epsilon >= 0.0f && std::isfinite(op.epsilon), kInvalidModel,
                "LayerNorm '%s': epsilon %g must be finite and >= 0", name, op.epsilon);
      break;
    case OpType::kUnary:
      TQ_ENSURE(static_cast<uint8_t>(op.unary().kind) < static_cast<uint8_t>(UnaryKind::kCount), kInvalidModel,
                "Unary '%s': unknown function %d", name, static_cast<int>(op.unary().kind));
      TQ_ENSURE(std::isfinite(op.unary().alpha) && std::isfinite(op.unary().beta), kInvalidModel,
                "Unary '%s' (%s): alpha %g and beta %g must be finite", name, unary_kind_name(op.unary().kind),
                op.unary().alpha, op.unary().beta);
      break;
    default: break;
  }
  return Status::ok();
}

}  // namespace

namespace {
// The quantized weight tensor of operator op (a Gather's table counts: an embedding is weights),
// or null (no quantized weights).
const Tensor* quantized_weight(const Graph& g, const Operator& op) {
  if (!has_weights(op.type) || op.inputs.size() <= kWeightInput) return nullptr;
  const int32_t w = op.inputs[kWeightInput];
  if (w < 0 || !g.tensors[w].is_constant() || g.tensors[w].quant.scale.empty()) return nullptr;
  return &g.tensors[w];
}
const Tensor* constant_bias(const Graph& g, const Operator& op) {
  if (op.inputs.size() <= 2 || op.inputs[2] < 0 || !g.tensors[op.inputs[2]].is_constant()) return nullptr;
  return &g.tensors[op.inputs[2]];
}
// What the .tqm stores for a tensor's quantization: its scales (none when implied) and its zero
// points when one is not zero.
int64_t param_bytes(const Tensor& t, bool scales_implied) {
  return 4 * static_cast<int64_t>((scales_implied ? 0 : t.quant.scale.size()) +
                                  (t.quant.zero_points_all_zero() ? 0 : t.quant.zero_point.size()));
}
}  // namespace

bool bias_scales_implied(const Graph& g, const Operator& op) {
  if (!op_info(op.type).weighted || op.inputs.size() < 3 || op.inputs[2] < 0) return false;
  const Tensor& x = g.tensors[op.inputs[0]];
  const Tensor& w = g.tensors[op.inputs[1]];
  const Tensor& b = g.tensors[op.inputs[2]];
  const size_t n = w.quant.scale.size();
  // Scales as the quantizers write them, or none at all (a graph loaded from a version-2 file,
  // which keeps them implied): either way the file needs to store none.
  bool ok = b.dtype == DType::kInt32 && b.is_constant() && x.quant.scale.size() == 1 && n > 0 &&
            (b.quant.scale.size() == n || b.quant.scale.empty()) && b.quant.bits == 8 &&
            shape_elements(b.shape) == int64_t(n) && (b.quant.axis == 0 || (b.quant.axis == -1 && n == 1));
  ok = ok && b.quant.zero_points_all_zero();
  for (size_t c = 0; ok && c < b.quant.scale.size(); ++c) ok = b.quant.scale[c] == x.quant.scale[0] * w.quant.scale[c];
  return ok;
}

std::vector<bool> implied_bias_scales(const Graph& g) {
  enum : uint8_t { kUnseen, kImplied, kStored };
  std::vector<uint8_t> state(g.tensors.size(), kUnseen);
  for (const Operator& op : g.operators) {
    if (!op_info(op.type).weighted || op.inputs.size() < 3 || op.inputs[2] < 0) continue;
    uint8_t& st = state[size_t(op.inputs[2])];
    st = bias_scales_implied(g, op) && st != kStored ? kImplied : kStored;
  }
  std::vector<bool> implied(g.tensors.size());
  for (size_t i = 0; i < state.size(); ++i) implied[i] = state[i] == kImplied;
  return implied;
}

QuantizedBytes quantized_bytes(const Graph& g) {
  QuantizedBytes b;
  const std::vector<bool> implied = implied_bias_scales(g);
  for (size_t t = 0; t < g.tensors.size(); ++t) b.quant_params += param_bytes(g.tensors[t], implied[t]);
  for (const Operator& op : g.operators) {
    const Tensor* w = quantized_weight(g, op);
    if (!w) continue;
    ++b.layers;
    b.weights += static_cast<int64_t>(g.buffers[w->buffer].size());
    b.float32 += 4 * shape_elements(w->shape);
    if (const Tensor* bias = constant_bias(g, op)) {
      b.bias += static_cast<int64_t>(g.buffers[bias->buffer].size());
      b.float32 += 4 * shape_elements(bias->shape);
    }
  }
  return b;
}

int64_t quantized_op_bytes(const Graph& g, size_t op) {
  const Tensor* w = quantized_weight(g, g.operators[op]);
  if (!w) return 0;
  int64_t n = static_cast<int64_t>(g.buffers[w->buffer].size()) + param_bytes(*w, false);
  if (const Tensor* bias = constant_bias(g, g.operators[op]))
    n += static_cast<int64_t>(g.buffers[bias->buffer].size()) +
         param_bytes(*bias, bias_scales_implied(g, g.operators[op]));
  return n;
}

Status validate_graph(const Graph& g) {
  const int32_t num_tensors = static_cast<int32_t>(g.tensors.size());
  TQ_ENSURE(num_tensors > 0, kInvalidModel, "graph has no tensors");
  TQ_ENSURE(!g.inputs.empty() && !g.outputs.empty(), kInvalidModel, "graph needs at least one input and one output");
  std::vector<int32_t> producer(num_tensors, -2);  // -2 none, -1 graph input, else op index

  for (int32_t t = 0; t < num_tensors; ++t) {
    const Tensor& tensor = g.tensors[t];
    TQ_ENSURE(static_cast<uint8_t>(tensor.dtype) <= static_cast<uint8_t>(DType::kUInt8), kInvalidModel,
              "tensor %d '%s': unknown dtype %d", t, tensor.name.c_str(), static_cast<int>(tensor.dtype));
    TQ_ENSURE(tensor.shape.size() <= kMaxRank, kInvalidModel, "tensor %d '%s': rank %zu exceeds %d", t,
              tensor.name.c_str(), tensor.shape.size(), kMaxRank);
    for (size_t i = 0; i < tensor.shape.size(); ++i) {
      const bool dynamic_ok = i == 0 && !tensor.is_constant();
      TQ_ENSURE(tensor.shape[i] >= 0 || (dynamic_ok && tensor.shape[i] == -1), kInvalidModel,
                "tensor %d '%s': dimension %zu is %d (only an activation's batch dimension may be -1)", t,
                tensor.name.c_str(), i, tensor.shape[i]);
    }
    const Quantization& q = tensor.quant;
    TQ_ENSURE(q.bits >= 2 && q.bits <= 8, kInvalidModel, "tensor %d '%s': %d bits, expected 2..8", t,
              tensor.name.c_str(), q.bits);
    if (!q.scale.empty()) {
      TQ_ENSURE(q.axis >= -1 && q.axis < static_cast<int32_t>(tensor.shape.size()), kInvalidModel,
                "tensor %d '%s': quantization axis %d out of range", t, tensor.name.c_str(), q.axis);
      const size_t expect = q.axis < 0 ? 1 : static_cast<size_t>(std::max<int32_t>(tensor.shape[q.axis], 0));
      TQ_ENSURE(q.scale.size() == expect, kInvalidModel, "tensor %d '%s': %zu scales, expected %zu", t,
                tensor.name.c_str(), q.scale.size(), expect);
      TQ_ENSURE(q.zero_point.empty() || q.zero_point.size() == q.scale.size(), kInvalidModel,
                "tensor %d '%s': %zu zero points for %zu scales", t, tensor.name.c_str(), q.zero_point.size(),
                q.scale.size());
      for (float s : q.scale)
        TQ_ENSURE(s > 0.0f && s < 3.0e38f, kInvalidModel, "tensor %d '%s': scale %g must be finite and > 0", t,
                  tensor.name.c_str(), s);
    }
    if (tensor.is_constant()) {
      TQ_ENSURE(tensor.buffer < static_cast<int32_t>(g.buffers.size()), kInvalidModel,
                "tensor %d '%s': buffer %d out of range (%zu buffers)", t, tensor.name.c_str(), tensor.buffer,
                g.buffers.size());
      const int64_t want = packed_bytes(tensor.dtype, shape_elements(tensor.shape), q.bits);
      TQ_ENSURE(want >= 0 && static_cast<int64_t>(g.buffers[tensor.buffer].size()) == want, kInvalidModel,
                "tensor %d '%s': buffer has %zu bytes, expected %lld for %s x %lld elements at %d bits", t,
                tensor.name.c_str(), g.buffers[tensor.buffer].size(), static_cast<long long>(want),
                dtype_name(tensor.dtype), static_cast<long long>(shape_elements(tensor.shape)), q.bits);
      producer[t] = -1;
    } else {
      TQ_ENSURE(tensor.buffer == -1, kInvalidModel, "tensor %d '%s': buffer index %d is invalid", t,
                tensor.name.c_str(), tensor.buffer);
    }
  }

  for (int32_t in : g.inputs) {
    TQ_ENSURE(in >= 0 && in < num_tensors, kInvalidModel, "graph input index %d out of range (%d tensors)", in,
              num_tensors);
    TQ_ENSURE(!g.tensors[in].is_constant(), kInvalidModel, "graph input '%s' is a constant", g.tensors[in].name.c_str());
    TQ_ENSURE(producer[in] == -2, kInvalidModel, "graph input '%s' is listed twice", g.tensors[in].name.c_str());
    producer[in] = -1;
  }

  for (int32_t i = 0; i < static_cast<int32_t>(g.operators.size()); ++i) {
    const Operator& op = g.operators[i];
    TQ_ENSURE(static_cast<uint8_t>(op.type) < static_cast<uint8_t>(OpType::kCount), kInvalidModel,
              "operator %d '%s': unknown op type %d", i, op.name.c_str(), static_cast<int>(op.type));
    const OpInfo& info = op_info(op.type);
    const int n_in = static_cast<int>(op.inputs.size());
    TQ_ENSURE(n_in >= info.min_inputs && n_in <= info.max_inputs, kInvalidModel,
              "%s '%s' (operator %d): %d inputs, expected %d..%d", op_name(op.type), op.name.c_str(), i, n_in,
              info.min_inputs, info.max_inputs);
    TQ_ENSURE(static_cast<int>(op.outputs.size()) == info.num_outputs, kInvalidModel,
              "%s '%s' (operator %d): %zu outputs, expected %d", op_name(op.type), op.name.c_str(), i,
              op.outputs.size(), info.num_outputs);
    for (int k = 0; k < n_in; ++k) {
      const int32_t t = op.inputs[k];
      const bool optional = t == -1 && k == kBiasInput && info.weighted;
      if (optional) continue;
      TQ_ENSURE(t >= 0 && t < num_tensors, kInvalidModel, "%s '%s' (operator %d): input %d is tensor %d, out of range",
                op_name(op.type), op.name.c_str(), i, k, t);
      TQ_ENSURE(producer[t] != -2, kInvalidModel,
                "%s '%s' (operator %d): input '%s' is read before any operator produces it", op_name(op.type),
                op.name.c_str(), i, g.tensors[t].name.c_str());
    }
    for (int32_t t : op.outputs) {
      TQ_ENSURE(t >= 0 && t < num_tensors, kInvalidModel, "%s '%s' (operator %d): output tensor %d out of range",
                op_name(op.type), op.name.c_str(), i, t);
      TQ_ENSURE(!g.tensors[t].is_constant(), kInvalidModel, "%s '%s' (operator %d): output '%s' is a constant",
                op_name(op.type), op.name.c_str(), i, g.tensors[t].name.c_str());
      TQ_ENSURE(producer[t] == -2, kInvalidModel, "%s '%s' (operator %d): output '%s' is already produced elsewhere",
                op_name(op.type), op.name.c_str(), i, g.tensors[t].name.c_str());
      producer[t] = i;
    }
    Status s = check_options(op);
    if (!s.is_ok()) return s;
    // Bit-packed constants are weights: only a conv / FC reads them (input 1), unpacking as it goes.
    for (int k = 0; k < n_in; ++k) {
      const int32_t t = op.inputs[k];
      if (t < 0 || !g.tensors[t].is_constant() || g.tensors[t].quant.bits >= 8) continue;
      const bool weight_slot = k == kWeightInput && has_weights(op.type);
      TQ_ENSURE(weight_slot, kInvalidModel,
                "%s '%s' (operator %d): input %d '%s' is bit-packed (%d bits); only conv / fully connected "
                "weights and Gather tables may be",
                op_name(op.type), op.name.c_str(), i, k, g.tensors[t].name.c_str(), g.tensors[t].quant.bits);
    }
    // Data movement copies bytes: every input and the output share one dtype.
    if (info.data_movement) {
      const DType out_dtype = g.tensors[op.outputs[0]].dtype;
      for (int32_t t : op.inputs)
        TQ_ENSURE(g.tensors[t].dtype == out_dtype, kInvalidModel,
                  "%s '%s' (operator %d): input '%s' is %s but the output '%s' is %s; they must match",
                  op_name(op.type), op.name.c_str(), i, g.tensors[t].name.c_str(), dtype_name(g.tensors[t].dtype),
                  g.tensors[op.outputs[0]].name.c_str(), dtype_name(out_dtype));
    }
  }

  for (int32_t out : g.outputs) {
    TQ_ENSURE(out >= 0 && out < num_tensors, kInvalidModel, "graph output index %d out of range (%d tensors)", out,
              num_tensors);
    TQ_ENSURE(producer[out] >= 0 || producer[out] == -1, kInvalidModel, "graph output '%s' is never produced",
              g.tensors[out].name.c_str());
    TQ_ENSURE(!g.tensors[out].is_constant(), kInvalidModel, "graph output '%s' is a constant",
              g.tensors[out].name.c_str());
  }
  return Status::ok();
}

}  // namespace tinyquant
