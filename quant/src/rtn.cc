// Round-to-nearest pipeline: calibrate activation ranges on the float graph, then rewrite it as
// an integer graph (contract in tinyquant/pipeline.h).
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <unordered_map>

#include "rewrite.h"
#include "tinyquant/adaquant.h"
#include "tinyquant/op_info.h"
#include "tinyquant/pipeline.h"
#include "tinyquant/port.h"
#include "tinyquant/quantizer.h"
#include "tinyquant/shape_inference.h"
#include "tinyquant/unary.h"

namespace tinyquant {
namespace quant {

namespace {

// The op facts this pipeline decides by (tinyquant/op_info.h).
bool is_weighted(OpType t) { return op_info(t).weighted; }
bool is_passthrough(OpType t) { return op_info(t).int8_role == Int8Role::kPassthrough; }
bool is_requantizing(OpType t) { return op_info(t).int8_role == Int8Role::kRequantizing; }
bool is_lookup(OpType t) { return op_info(t).int8_role == Int8Role::kLookup; }
bool is_gather(OpType t) { return op_info(t).int8_role == Int8Role::kGather; }
bool has_float_kernel(OpType t) { return op_info(t).has_float_kernel; }

// Same predicate as the int8 Add kernels (XNNPACK's QS8 add range).
bool add_scales_supported(float a, float b, float out) {
  const float ra = a / out, rb = b / out;
  return ra >= 0x1.0p-10f && ra < 0x1.0p+8f && rb >= 0x1.0p-10f && rb < 0x1.0p+8f;
}

int64_t constant_bytes(const Graph& g, int32_t t) {
  return t >= 0 && g.tensors[t].is_constant() ? static_cast<int64_t>(g.buffers[g.tensors[t].buffer].size()) : 0;
}

void set_activation_quant(Tensor* t, const ActivationParams& p) {
  t->quant.scale = {p.scale};
  t->quant.zero_point = {p.zero_point};
  t->quant.axis = -1;
  t->quant.bits = p.bits;
}

ActivationParams params_of(const Tensor& t) {
  ActivationParams p;
  p.scale = t.quant.scale[0];
  p.zero_point = t.quant.zero_point.empty() ? 0 : t.quant.zero_point[0];
  p.bits = t.quant.bits;
  return p;
}

// Builds the integer graph op by op. Each float-graph tensor may get a float and an int8
// version in the new graph; `home` is the dtype of the version its producer writes.
class IntegerGraphBuilder {
 public:
  IntegerGraphBuilder(const Graph& fg, const RtnOptions& opt, const std::vector<ActivationParams>& params,
                      const std::vector<LayerQuant>* layers, Graph* q)
      : fg_(fg), opt_(opt), params_(params), layers_(layers), q_(*q),
        fver_(fg.tensors.size(), -1), qver_(fg.tensors.size(), -1), home_int8_(fg.tensors.size(), false) {}

  void fill_map(RewriteMap* map) const {
    map->float_version = fver_;
    map->int8_version = qver_;
    map->op = op_map_;
    map->op_int8 = op_int8_;
  }

  Status build(RtnReport* report) {
    q_.producer = "tinyquant quantize rtn";
    q_.metadata = fg_.metadata;
    for (int32_t in : fg_.inputs) {
      fver_[in] = add_like(in, fg_.tensors[in].name);
      q_.inputs.push_back(fver_[in]);
    }
    for (size_t i = 0; i < fg_.operators.size(); ++i) {
      RtnLayerReport layer;
      current_op_ = static_cast<int32_t>(i);
      TQ_RETURN_IF_ERROR(add_op(fg_.operators[i], &layer));
      op_int8_.push_back(layer.int8);
      report->layers.push_back(layer);
    }
    for (int32_t out : fg_.outputs) q_.outputs.push_back(float_version(out));
    report->quantize_ops = quantize_ops_;
    report->dequantize_ops = dequantize_ops_;
    return Status::ok();
  }

 private:
  int32_t add_like(int32_t t, const std::string& name) {
    const Tensor& src = fg_.tensors[t];
    return q_.add_tensor(name, DType::kFloat32, src.shape);
  }

  void add_convert(OpType type, const std::string& name, int32_t in, int32_t out) {
    Operator op;
    op.type = type;
    op.name = name;
    op.inputs = {in};
    op.outputs = {out};
    q_.add_operator(op);
    (type == OpType::kQuantize ? quantize_ops_ : dequantize_ops_)++;
  }

  // The float version of float-graph tensor t (constants copied, int8 data dequantized).
  int32_t float_version(int32_t t) {
    if (t < 0) return -1;
    if (fver_[t] >= 0) return fver_[t];
    const Tensor& src = fg_.tensors[t];
    if (src.is_constant()) {
      const Buffer& b = fg_.buffers[src.buffer];
      fver_[t] = q_.add_constant(src.name, src.dtype, src.shape, b.data(), b.size());
      return fver_[t];
    }
    // A graph output keeps the model's name on its float version; the int8 one becomes "<name>:q".
    const bool graph_output = std::find(fg_.outputs.begin(), fg_.outputs.end(), t) != fg_.outputs.end();
    if (graph_output) q_.tensors[qver_[t]].name += ":q";
    fver_[t] = add_like(t, graph_output ? src.name.str() : src.name + ":dq");
    add_convert(OpType::kDequantize, src.name + ":dequantize", qver_[t], fver_[t]);
    return fver_[t];
  }

  // The int8 version of activation t (float data quantized with t's calibrated params).
  int32_t int8_version(int32_t t) {
    if (qver_[t] >= 0) return qver_[t];
    const Tensor& src = fg_.tensors[t];
    qver_[t] = q_.add_tensor(src.name + ":q", DType::kInt8, src.shape);
    set_activation_quant(&q_.tensors[qver_[t]], params_[t]);
    add_convert(OpType::kQuantize, src.name + ":quantize", fver_[t], qver_[t]);
    return qver_[t];
  }

  // Params the int8 version of t has or will have (a constant operand: its own range, 8 bits).
  ActivationParams int8_params(int32_t t) const {
    if (fg_.tensors[t].is_constant()) return constant_params(t);
    return qver_[t] >= 0 ? params_of(q_.tensors[qver_[t]]) : params_[t];
  }

  // A float constant operand of an int8 Add / Mul (a bias added in NHWC space, a per-channel
  // scale), or a Gather's table at its weight bits: per tensor over [min(c, 0), max(c, 0)].
  ActivationParams constant_params(int32_t t, int32_t bits = 8) const {
    const float* c = fg_.constant_data<float>(t);
    const int64_t n = shape_elements(fg_.tensors[t].shape);
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < n; ++i) lo = std::min(lo, c[i]), hi = std::max(hi, c[i]);
    if (hi - lo < 1e-30f) hi = lo + 1e-6f;  // an all-zero constant: any scale holds it exactly
    return params_for_range(lo, hi, bits);
  }

  int32_t quantized_constant(int32_t t) {
    auto it = qconst_.find(t);
    if (it != qconst_.end()) return it->second;
    const Tensor& src = fg_.tensors[t];
    const ActivationParams p = constant_params(t);
    const float* c = fg_.constant_data<float>(t);
    const int64_t n = shape_elements(src.shape);
    std::vector<int8_t> q(static_cast<size_t>(n));
    const float inv = 1.0f / p.scale;
    for (int64_t i = 0; i < n; ++i) q[i] = static_cast<int8_t>(quantize_activation(c[i], inv, p.zero_point, p.bits));
    const int32_t qt = q_.add_constant(src.name + ":q", DType::kInt8, src.shape, q.data(), q.size());
    set_activation_quant(&q_.tensors[qt], p);
    return qconst_[t] = qt;
  }

  bool constant_operand_ok(const Operator& op) const {
    if (op.type != OpType::kAdd && op.type != OpType::kMul) return false;
    int constants = 0;
    for (int32_t t : op.inputs) constants += t >= 0 && fg_.tensors[t].is_constant() && fg_.tensors[t].dtype == DType::kFloat32;
    return constants == 1;
  }

  bool all_activations(const Operator& op) const {
    for (int32_t t : op.inputs)
      if (t < 0 || fg_.tensors[t].is_constant()) return false;
    return true;
  }

  // Whether op runs int8; if not, why (for the report).
  bool decide_int8(const Operator& op, std::string* note) const {
    if (is_weighted(op.type)) {
      const int32_t w = op.inputs[1], b = op.inputs.size() > 2 ? op.inputs[2] : -1;
      if (!fg_.tensors[w].is_constant() || (b >= 0 && !fg_.tensors[b].is_constant())) {
        *note = "weights are not constant";
        return false;
      }
      return true;
    }
    if (is_passthrough(op.type)) {
      if (!home_int8_[op.inputs[0]]) *note = "input is float";
      return home_int8_[op.inputs[0]];
    }
    if (is_gather(op.type)) {  // an embedding: its table quantized per tensor, the output keeps its params
      const Tensor& table = fg_.tensors[op.inputs[kWeightInput]];
      if (!table.is_constant() || table.dtype != DType::kFloat32) {
        *note = "table is not a float constant";
        return false;
      }
      return true;
    }
    if (op.type == OpType::kSoftmax) {
      // Attention weights (every reader a BatchMatMul) run the int8 softmax when the scores are
      // int8: its output is fixed at 8 bits, scale 1/256 (finer than any learned 4-bit grid on
      // [0, 1]), and it keeps the integer path exact across backends and targets (no float
      // softmax between a Dequantize and a Quantize). Any other softmax (class probabilities)
      // stays float.
      bool attention = home_int8_[op.inputs[0]];
      int readers = 0;
      for (const Operator& r : fg_.operators)
        for (int32_t t : r.inputs)
          if (t == op.outputs[0]) {
            ++readers;
            attention = attention && r.type == OpType::kBatchMatMul;
          }
      for (int32_t t : fg_.outputs) attention = attention && t != op.outputs[0];
      if (!(attention && readers > 0)) *note = "no int8 kernel (int8 only for attention weights)";
      return attention && readers > 0;
    }
    if (is_lookup(op.type)) {  // a 256-entry table from the int8 input: worth it only when the input is int8
      if (!home_int8_[op.inputs[0]]) *note = "input is float";
      return home_int8_[op.inputs[0]];
    }
    if (is_requantizing(op.type)) {
      if (!all_activations(op) && !constant_operand_ok(op)) {
        *note = "a constant input";
        return false;
      }
      bool any = false;
      for (int32_t t : op.inputs) any |= !fg_.tensors[t].is_constant() && home_int8_[t];
      if (!any) {
        *note = "inputs are float";
        return false;
      }
      if (op.type == OpType::kAdd &&
          !add_scales_supported(int8_params(op.inputs[0]).scale, int8_params(op.inputs[1]).scale,
                                params_[op.outputs[0]].scale)) {
        *note = "input/output scale ratio outside the int8 Add range [2^-10, 2^8)";
        return false;
      }
      return true;
    }
    *note = "no int8 kernel";
    return false;
  }

  Status add_op(const Operator& op, RtnLayerReport* layer) {
    layer->name = op.name;
    layer->type = op.type;
    TQ_ENSURE(has_float_kernel(op.type), kUnsupported,
              "%s '%s' cannot be quantized by the rtn pipeline and has no float fallback in a float model",
              op_name(op.type), op.name.c_str());
    const int32_t out = op.outputs[0];
    Operator nop = op;
    if (!decide_int8(op, &layer->note)) {
      for (size_t k = 0; k < op.inputs.size(); ++k) nop.inputs[k] = float_version(op.inputs[k]);
      fver_[out] = add_like(out, fg_.tensors[out].name);
      nop.outputs = {fver_[out]};
      op_map_.push_back(q_.add_operator(nop));
      return Status::ok();
    }
    layer->int8 = true;
    layer->activation_bits = is_passthrough(op.type) ? int8_params(op.inputs[0]).bits : params_[out].bits;
    if (is_gather(op.type)) return add_gather(op, nop, layer);
    for (size_t k = 0; k < op.inputs.size(); ++k) {
      const int32_t t = op.inputs[k];
      if (t >= 0 && !fg_.tensors[t].is_constant()) nop.inputs[k] = int8_version(t);
      else if (t >= 0 && is_requantizing(op.type)) nop.inputs[k] = quantized_constant(t);
    }
    const Tensor& fout = fg_.tensors[out];
    qver_[out] = q_.add_tensor(fout.name, DType::kInt8, fout.shape);
    home_int8_[out] = true;
    if (is_passthrough(op.type)) {
      q_.tensors[qver_[out]].quant = q_.tensors[nop.inputs[0]].quant;
    } else if (op.type == OpType::kSoftmax) {  // the int8 kernel's fixed output params
      set_activation_quant(&q_.tensors[qver_[out]], kSoftmaxS8Output);
      layer->activation_bits = 8;
    } else
      set_activation_quant(&q_.tensors[qver_[out]], params_[out]);
    nop.outputs = {qver_[out]};
    if (is_weighted(op.type)) TQ_RETURN_IF_ERROR(quantize_constants(op, &nop, layer));
    if (is_lookup(op.type)) {
      int8_t table[kLookupTableSize];
      TQ_RETURN_IF_ERROR(build_unary_table(op.unary(), q_.tensors[nop.inputs[0]].quant, q_.tensors[qver_[out]].quant,
                                           table)
                             .with_context("%s '%s'", op_name(op.type), op.name.c_str()));
      nop.inputs.resize(kTableInput + 1);
      nop.inputs[kTableInput] =
          q_.add_constant(op.name + ":table", DType::kInt8, {kLookupTableSize}, table, sizeof(table));
      layer->weight_bytes = kLookupTableSize;
    }
    op_map_.push_back(q_.add_operator(nop));
    return Status::ok();
  }

  // Gather from a float table: the table per tensor (asymmetric over [min(t, 0), max(t, 0)]) at
  // the layer's weight bits, bit-packed; indices stay float (graph inputs); the int8 output keeps
  // the table's params, so the kernel only copies codes.
  Status add_gather(const Operator& op, Operator nop, RtnLayerReport* layer) {
    const int32_t tin = op.inputs[kWeightInput], out = op.outputs[0];
    const Tensor& table = fg_.tensors[tin];
    const int32_t bits = weight_bits_for(fg_, current_op_, opt_);
    TQ_RETURN_IF_ERROR(check_bits(table.name.c_str(), bits));
    const float* c = fg_.constant_data<float>(tin);
    const int64_t n = shape_elements(table.shape);
    const ActivationParams p = constant_params(tin, bits);
    std::vector<int8_t> q(static_cast<size_t>(n));
    const float inv = 1.0f / p.scale;
    double sq = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      q[i] = static_cast<int8_t>(quantize_activation(c[i], inv, p.zero_point, p.bits));
      const float back = (int32_t(q[i]) - p.zero_point) * p.scale;
      sq += double(c[i] - back) * (c[i] - back);
    }
    std::vector<uint8_t> packed(static_cast<size_t>(packed_bytes(DType::kInt8, n, bits)));
    qmath::pack_weights(q.data(), n, bits, packed.data());
    const int32_t qt = q_.add_constant(table.name, DType::kInt8, table.shape, packed.data(), packed.size());
    set_activation_quant(&q_.tensors[qt], p);
    nop.inputs[0] = float_version(op.inputs[0]);
    nop.inputs[kWeightInput] = qt;
    const Tensor& fout = fg_.tensors[out];
    qver_[out] = q_.add_tensor(fout.name, DType::kInt8, fout.shape);
    home_int8_[out] = true;
    q_.tensors[qver_[out]].quant = q_.tensors[qt].quant;
    nop.outputs = {qver_[out]};
    layer->weight_bits = bits;
    layer->activation_bits = bits;
    layer->weight_sq_error = sq;
    layer->float_bytes = constant_bytes(fg_, tin);
    layer->weight_bytes = static_cast<int64_t>(packed.size());
    op_map_.push_back(q_.add_operator(nop));
    return Status::ok();
  }

  Status quantize_constants(const Operator& op, Operator* nop, RtnLayerReport* layer) {
    const Tensor& w = fg_.tensors[op.inputs[1]];
    const int32_t b = op.inputs.size() > 2 ? op.inputs[2] : -1;
    const int32_t axis = op.type == OpType::kDepthwiseConv2D ? 3 : 0;
    TQ_ENSURE(w.dtype == DType::kFloat32, kInvalidModel, "%s '%s': weights '%s' are %s, expected float32",
              op_name(op.type), op.name.c_str(), w.name.c_str(), dtype_name(w.dtype));
    const LayerQuant* lq = layers_ && (*layers_)[current_op_].present ? &(*layers_)[current_op_] : nullptr;
    const int32_t bits = lq && lq->weight_bits ? lq->weight_bits : weight_bits_for(fg_, current_op_, opt_);
    TQ_RETURN_IF_ERROR(check_bits(w.name.c_str(), bits));
    QuantizedWeights qw;
    const float* fw = fg_.constant_data<float>(op.inputs[1]);
    if (lq) {
      TQ_RETURN_IF_ERROR(quantize_weights_with_scales(w.name.c_str(), lq->weights.data(), w.shape, axis, bits,
                                                      lq->scales, &qw));
      qw.sq_error = 0.0;
      for (size_t i = 0; i < qw.fake_quant.size(); ++i) qw.sq_error += double(fw[i] - qw.fake_quant[i]) * (fw[i] - qw.fake_quant[i]);
    } else {
      TQ_RETURN_IF_ERROR(quantize_weights(w.name.c_str(), fw, w.shape, axis, bits, &qw));
    }
    const int32_t wt = q_.add_constant(w.name, DType::kInt8, w.shape, qw.packed.data(), qw.packed.size());
    Quantization& wq = q_.tensors[wt].quant;
    wq.scale = qw.scales;  // symmetric: no zero points stored (empty means all zero)
    wq.axis = axis;
    wq.bits = bits;
    nop->inputs[1] = wt;
    layer->weight_bits = bits;
    layer->weight_sq_error = qw.sq_error;
    layer->float_bytes = constant_bytes(fg_, op.inputs[1]) + constant_bytes(fg_, b);
    layer->weight_bytes = static_cast<int64_t>(qw.packed.size());
    const int64_t channels = static_cast<int64_t>(qw.scales.size());
    const float* bias = nullptr;
    std::string bias_name;
    if (lq && !lq->bias.empty()) {
      TQ_ENSURE(static_cast<int64_t>(lq->bias.size()) == channels, kInternal, "%s '%s': %zu bias values for %lld channels",
                op_name(op.type), op.name.c_str(), lq->bias.size(), static_cast<long long>(channels));
      bias = lq->bias.data();
      bias_name = b >= 0 ? fg_.tensors[b].name.str() : op.name + ".bias";
    } else if (b >= 0) {
      const Tensor& bt = fg_.tensors[b];
      TQ_ENSURE(bt.dtype == DType::kFloat32 && shape_elements(bt.shape) == channels, kInvalidModel,
                "%s '%s': bias '%s' must be float32 with %lld values", op_name(op.type), op.name.c_str(),
                bt.name.c_str(), static_cast<long long>(channels));
      bias = fg_.constant_data<float>(b);
      bias_name = bt.name;
    }
    if (bias) {
      QuantizedBias qb;
      const float s_in = q_.tensors[nop->inputs[0]].quant.scale[0];
      TQ_RETURN_IF_ERROR(quantize_bias(bias_name.c_str(), bias, channels, s_in, qw.scales.data(), &qb));
      const int32_t btq = q_.add_constant(bias_name, DType::kInt32, {static_cast<int32_t>(channels)},
                                          qb.values.data(), qb.values.size() * sizeof(int32_t));
      Quantization& bq = q_.tensors[btq].quant;
      bq.scale = qb.scales;
      bq.axis = 0;
      if (nop->inputs.size() < 3) nop->inputs.resize(3, -1);
      nop->inputs[2] = btq;
      layer->weight_bytes += static_cast<int64_t>(qb.values.size() * sizeof(int32_t));
    }
    return Status::ok();
  }

  const Graph& fg_;
  const RtnOptions& opt_;
  const std::vector<ActivationParams>& params_;  // per float-graph activation (calibrated)
  const std::vector<LayerQuant>* layers_;
  Graph& q_;
  int32_t current_op_ = 0;
  std::vector<int32_t> op_map_;
  std::vector<bool> op_int8_;
  std::vector<int32_t> fver_, qver_;
  std::vector<bool> home_int8_;
  std::unordered_map<int32_t, int32_t> qconst_;  // float constant -> its int8 twin (Add / Mul operands)
  int32_t quantize_ops_ = 0, dequantize_ops_ = 0;
};

Status check_finite_input(const std::vector<float>& values, int64_t per_sample, const std::string& input) {
  for (size_t i = 0; i < values.size(); ++i)
    TQ_ENSURE(std::isfinite(values[i]), kInvalidArgument,
              "calibration data: sample %lld, element %lld of input '%s' is %s", static_cast<long long>(i / per_sample),
              static_cast<long long>(i % per_sample), input.c_str(), std::isnan(values[i]) ? "NaN" : "Inf");
  return Status::ok();
}

// Input k's calibration values: CalibrationData::values for input 0, more_inputs[k - 1] after.
const std::vector<float>& input_values(const CalibrationData& c, size_t k) {
  return k == 0 ? c.values : c.more_inputs[k - 1];
}

// Runs the float graph over the calibration set and feeds every activation to its observer from
// the interpreter's per-op callback, right after the op that writes it: the arena reuses memory
// as in inference, nothing is made a graph output.
struct ObserveContext {
  std::vector<std::unique_ptr<ActivationObserver>>* observers;
  const Graph* graph;
  Status status;
};

bool observe_op_outputs(void* user, int32_t op, const Interpreter& interp) {
  ObserveContext& c = *static_cast<ObserveContext*>(user);
  for (int32_t t : c.graph->operators[op].outputs) {
    ActivationObserver* o = (*c.observers)[t].get();
    if (!o) continue;
    const TensorView v = interp.tensor(t);
    c.status = o->observe(v.as<const float>(), v.elements());
    if (!c.status.is_ok()) return false;
  }
  return true;
}

}  // namespace

Status run_calibration_batches(const Graph& graph, const CalibrationData& calib, int64_t per_sample,
                               const RtnOptions& opt, int32_t end_op, Interpreter::OpCallback callback, void* user,
                               const std::function<Status(int32_t first, int32_t n)>& after_batch,
                               size_t* arena_bytes) {
  Interpreter interp;
  PrepareOptions prep;
  prep.backend = opt.backend;
  prep.threads = opt.threads;
  const int32_t end = end_op < 0 ? static_cast<int32_t>(graph.operators.size()) : end_op;
  int32_t prepared = 0;
  for (int32_t first = 0; first < calib.samples;) {
    const int32_t n = std::min(opt.batch, calib.samples - first);
    if (n != prepared) {
      prep.batch = n;
      TQ_RETURN_IF_ERROR(interp.prepare(graph, prep));
      interp.set_op_callback(callback, user);
      prepared = n;
      if (arena_bytes) *arena_bytes = std::max(*arena_bytes, interp.arena_bytes());
    }
    for (size_t k = 0; k < graph.inputs.size(); ++k) {  // input k: its values' share of one sample
      const std::vector<float>& v = input_values(calib, k);
      const int64_t per = k == 0 ? per_sample : static_cast<int64_t>(v.size()) / calib.samples;
      std::copy(v.data() + first * per, v.data() + (first + n) * per, interp.input(static_cast<int>(k)).as<float>());
    }
    Status s = interp.invoke_range(0, end);
    if (s.is_ok()) s = after_batch(first, n);
    if (!s.is_ok()) return s.with_context("calibration samples %d..%d", first, first + n - 1);
    first += n;
  }
  return Status::ok();
}

Status calibrate_activations(const Graph& fg, const CalibrationData& calib, int64_t per_sample,
                             const RtnOptions& opt, std::vector<std::unique_ptr<ActivationObserver>>* observers,
                             RtnReport* report) {
  observers->clear();
  observers->resize(fg.tensors.size());
  for (const Operator& op : fg.operators)
    for (int32_t t : op.outputs) (*observers)[t].reset(new ActivationObserver(fg.tensors[t].name));
  for (int32_t t : fg.inputs) (*observers)[t].reset(new ActivationObserver(fg.tensors[t].name));

  ObserveContext ctx{observers, &fg, Status::ok()};
  const uint64_t t0 = port::now_us();
  uint64_t last_report = t0;
  TQ_RETURN_IF_ERROR(run_calibration_batches(
      fg, calib, per_sample, opt, -1, observe_op_outputs, &ctx,
      [&](int32_t first, int32_t n) -> Status {
        TQ_RETURN_IF_ERROR(ctx.status);
        // The input's arena bytes may be reused once its last reader ran: observe the samples.
        for (size_t k = 0; k < fg.inputs.size(); ++k) {
          const std::vector<float>& v = input_values(calib, k);
          const int64_t per = k == 0 ? per_sample : static_cast<int64_t>(v.size()) / calib.samples;
          TQ_RETURN_IF_ERROR((*observers)[fg.inputs[k]]->observe(v.data() + first * per, n * per));
        }
        const uint64_t now = port::now_us();
        if (opt.progress && (now - last_report > 2000000 || first + n == calib.samples)) {
          port::log("  calibration: %d/%d samples, %.1f s", first + n, calib.samples, (now - t0) / 1e6);
          last_report = now;
        }
        return Status::ok();
      },
      &report->arena_bytes));
  for (auto& o : *observers)
    if (o) report->observer_bytes += o->memory_bytes();
  return Status::ok();
}

void append_json_string(std::string* out, const std::string& s) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(c));
      *out += buf;
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string RtnReport::json(bool timing) const {
  std::string j = "{\"pipeline\": \"rtn\", \"samples\": " + std::to_string(samples);
  char buf[256];
  if (timing) {
    std::snprintf(buf, sizeof(buf), ", \"seconds\": %.3f, \"peak_rss_bytes\": %lld", seconds,
                  static_cast<long long>(peak_rss_bytes));
    j += buf;
  }
  std::snprintf(buf, sizeof(buf), ", \"observer_bytes\": %zu, \"arena_bytes\": %zu", observer_bytes, arena_bytes);
  j += buf;
  j += ", \"layers\": [";
  bool first = true;
  for (const RtnLayerReport& l : layers) {
    if (!is_weighted(l.type) && l.int8) continue;  // only weighted layers and float fallbacks
    j += first ? "" : ", ";
    first = false;
    j += "{\"name\": ";
    append_json_string(&j, l.name);
    std::snprintf(buf, sizeof(buf), ", \"op\": \"%s\", \"int8\": %s, \"wbits\": %d, \"abits\": %d, "
                  "\"bytes\": %lld, \"float_bytes\": %lld, \"weight_sq_error\": %.6g",
                  op_name(l.type), l.int8 ? "true" : "false", l.weight_bits, l.activation_bits,
                  static_cast<long long>(l.weight_bytes), static_cast<long long>(l.float_bytes), l.weight_sq_error);
    j += buf;
    if (!l.note.empty()) {
      j += ", \"note\": ";
      append_json_string(&j, l.note);
    }
    j += "}";
  }
  j += "], \"activations\": [";
  first = true;
  for (const RtnActivationReport& a : activations) {
    j += first ? "" : ", ";
    first = false;
    j += "{\"tensor\": ";
    append_json_string(&j, a.tensor);
    std::snprintf(buf, sizeof(buf), ", \"scale\": %.9g, \"zero_point\": %d, \"bits\": %d, \"method\": \"%s\"}",
                  a.choice.params.scale, a.choice.params.zero_point, a.choice.params.bits,
                  range_method_name(a.choice.method));
    j += buf;
  }
  j += "]}";
  return j;
}

Status check_layer_weight_bits(const Graph& float_graph, const RtnOptions& options) {
  const std::vector<int32_t>& bits = options.layer_weight_bits;
  if (bits.empty()) return Status::ok();
  TQ_ENSURE(bits.size() == float_graph.operators.size(), kInvalidArgument,
            "per-layer weight bits: %zu values for a graph of %zu operators", bits.size(),
            float_graph.operators.size());
  for (size_t i = 0; i < bits.size(); ++i)
    TQ_ENSURE(bits[i] == 0 || (bits[i] >= 2 && bits[i] <= 8), kInvalidArgument,
              "per-layer weight bits: %d for operator '%s', expected 2..8 (or 0: the default)", bits[i],
              float_graph.operators[i].name.c_str());
  return Status::ok();
}

Status check_quantization_inputs(const Graph& float_graph, const CalibrationData& calibration, int32_t weight_bits,
                                 int32_t activation_bits, int32_t batch, int64_t* per_sample_out) {
  TQ_RETURN_IF_ERROR(check_bits("weight bits", weight_bits));
  TQ_RETURN_IF_ERROR(check_bits("activation bits", activation_bits));
  TQ_ENSURE(batch >= 1, kInvalidArgument, "calibration batch %d must be >= 1", batch);
  TQ_ENSURE(calibration.samples > 0 && !calibration.values.empty(), kInvalidArgument,
            "the calibration set is empty (%d samples); quantization needs at least one sample", calibration.samples);
  TQ_RETURN_IF_ERROR(validate_graph(float_graph));
  TQ_ENSURE(float_graph.inputs.size() == calibration.more_inputs.size() + 1, kInvalidArgument,
            "the model has %zu inputs; the calibration data holds %zu (one array per input)",
            float_graph.inputs.size(), calibration.more_inputs.size() + 1);
  for (const Tensor& t : float_graph.tensors)
    TQ_ENSURE(t.dtype == DType::kFloat32 || (t.dtype == DType::kInt32 && t.is_constant()), kUnsupported,
              "tensor '%s' is %s: quantization takes float models only (is the model already quantized?)",
              t.name.c_str(), dtype_name(t.dtype));
  std::vector<Dims> dims;
  TQ_RETURN_IF_ERROR(infer_shapes(float_graph, 1, &dims));
  const int32_t input = float_graph.inputs[0];
  const int64_t per_sample = dims[input].elements();
  TQ_ENSURE(per_sample > 0 && calibration.values.size() == static_cast<size_t>(per_sample) * calibration.samples,
            kInvalidArgument, "calibration data has %zu values; %d samples of input '%s' need %lld",
            calibration.values.size(), calibration.samples, float_graph.tensors[input].name.c_str(),
            static_cast<long long>(per_sample * calibration.samples));
  TQ_RETURN_IF_ERROR(check_finite_input(calibration.values, per_sample, float_graph.tensors[input].name));
  for (size_t k = 1; k < float_graph.inputs.size(); ++k) {
    const Tensor& t = float_graph.tensors[float_graph.inputs[k]];
    const int64_t per = dims[float_graph.inputs[k]].elements();
    const std::vector<float>& v = calibration.more_inputs[k - 1];
    TQ_ENSURE(per > 0 && v.size() == static_cast<size_t>(per) * calibration.samples, kInvalidArgument,
              "calibration data has %zu values for input '%s'; %d samples need %lld", v.size(), t.name.c_str(),
              calibration.samples, static_cast<long long>(per * calibration.samples));
    TQ_RETURN_IF_ERROR(check_finite_input(v, per, t.name));
  }
  *per_sample_out = per_sample;
  return Status::ok();
}

namespace {
// The first and last weighted ops in graph order (-1, -1 when there is none).
std::pair<int32_t, int32_t> first_last_weighted(const Graph& fg) {
  int32_t first = -1, last = -1;
  for (size_t i = 0; i < fg.operators.size(); ++i)
    if (op_info(fg.operators[i].type).weighted) {
      if (first < 0) first = static_cast<int32_t>(i);
      last = static_cast<int32_t>(i);
    }
  return {first, last};
}

// Whether activation t is the input of op, directly or through the passthrough ops (Reshape,
// MaxPool, ...) between them, which share one quantizer.
bool feeds_through_passthrough(const Graph& fg, int32_t t, const Operator& op) {
  std::vector<int32_t> producer(fg.tensors.size(), -1);
  for (size_t i = 0; i < fg.operators.size(); ++i)
    for (int32_t o : fg.operators[i].outputs) producer[o] = static_cast<int32_t>(i);
  for (int32_t u = op.inputs[0]; u >= 0;) {
    if (u == t) return true;
    const int32_t p = producer[u];
    if (p < 0 || op_info(fg.operators[p].type).int8_role != Int8Role::kPassthrough) return false;
    u = fg.operators[p].inputs[0];
  }
  return false;
}
}  // namespace

int32_t weight_bits_for(const Graph& fg, int32_t op, const RtnOptions& options) {
  if (op >= 0 && static_cast<size_t>(op) < options.layer_weight_bits.size() && options.layer_weight_bits[op] > 0)
    return options.layer_weight_bits[op];
  if (!options.keep_first_last_8bit) return options.weight_bits;
  const std::pair<int32_t, int32_t> fl = first_last_weighted(fg);
  return op == fl.first || op == fl.second ? std::max(options.weight_bits, 8) : options.weight_bits;
}

int32_t activation_bits_for(const Graph& fg, int32_t t, const RtnOptions& options) {
  int32_t bits = options.activation_bits;
  if (options.output_activation_bits > 0) {
    bool leaves = std::find(fg.outputs.begin(), fg.outputs.end(), t) != fg.outputs.end();
    for (const Operator& op : fg.operators)
      if (op.type == OpType::kSoftmax && op.inputs[0] == t) leaves = true;
    if (leaves) bits = std::max(bits, options.output_activation_bits);
  }
  if (options.keep_first_last_8bit) {
    const std::pair<int32_t, int32_t> fl = first_last_weighted(fg);
    for (int32_t i : {fl.first, fl.second})
      if (i >= 0 && feeds_through_passthrough(fg, t, fg.operators[i])) bits = std::max(bits, 8);
  }
  return bits;
}

Status build_integer_graph(const Graph& float_graph, const RtnOptions& options,
                           const std::vector<ActivationParams>& params, const std::vector<LayerQuant>* layers,
                           Graph* quantized, RewriteMap* map, RtnReport* report) {
  TQ_ENSURE(params.size() == float_graph.tensors.size() &&
                (!layers || layers->size() == float_graph.operators.size()),
            kInternal, "build_integer_graph: params / layer overrides do not match the graph");
  Graph q;
  RtnReport local;
  if (!report) report = &local;
  report->layers.clear();
  IntegerGraphBuilder builder(float_graph, options, params, layers, &q);
  TQ_RETURN_IF_ERROR(builder.build(report));
  builder.fill_map(map);
  *quantized = std::move(q);
  return Status::ok();
}

Status quantize_graph_rtn(const Graph& float_graph, const CalibrationData& calibration, const RtnOptions& options,
                          Graph* quantized, Graph* simulated, RtnReport* report_out) {
  const uint64_t t0 = port::now_us();
  int64_t per_sample = 0;
  TQ_RETURN_IF_ERROR(check_quantization_inputs(float_graph, calibration, options.weight_bits,
                                               options.activation_bits, options.batch, &per_sample));
  TQ_RETURN_IF_ERROR(check_layer_weight_bits(float_graph, options));
  RtnReport report;
  report.samples = calibration.samples;
  std::vector<std::unique_ptr<ActivationObserver>> observers;
  TQ_RETURN_IF_ERROR(calibrate_activations(float_graph, calibration, per_sample, options, &observers, &report));

  // Params for every observed activation (a few ms each); only the int8 ones end up used.
  std::vector<ActivationParams> params(float_graph.tensors.size());
  std::vector<ActivationChoice> choices(float_graph.tensors.size());
  for (size_t t = 0; t < observers.size(); ++t)
    if (observers[t]) {
      TQ_RETURN_IF_ERROR(observers[t]->choose_activation_params(
          activation_bits_for(float_graph, static_cast<int32_t>(t), options), &choices[t]));
      params[t] = choices[t].params;
    }

  Graph q;
  RewriteMap map;
  TQ_RETURN_IF_ERROR(build_integer_graph(float_graph, options, params, nullptr, &q, &map, &report));
  finish_quantized_graph(float_graph, calibration, options, "rtn", map, observers, choices, &q, &report);
  TQ_RETURN_IF_ERROR(validate_graph(q).with_context("quantized graph"));
  std::vector<Dims> qdims;
  TQ_RETURN_IF_ERROR(infer_shapes(q, 1, &qdims).with_context("quantized graph"));
  Graph sim;
  if (simulated) TQ_RETURN_IF_ERROR(build_simulated_graph(q, &sim));
  report.seconds = (port::now_us() - t0) / 1e6;
  report.peak_rss_bytes = peak_rss_bytes();
  q.calibration.report_json = report.json(/*timing=*/false);  // same inputs, same file

  *quantized = std::move(q);
  if (simulated) *simulated = std::move(sim);
  if (report_out) *report_out = std::move(report);
  return Status::ok();
}

void finish_quantized_graph(const Graph& float_graph, const CalibrationData& calibration, const RtnOptions& options,
                            const char* pipeline, const RewriteMap& map,
                            const std::vector<std::unique_ptr<ActivationObserver>>& observers,
                            const std::vector<ActivationChoice>& choices, Graph* q, RtnReport* report) {
  // The int8 activations with their own params (not a passthrough op's copy of its input's), in
  // quantized-tensor order, with the params the graph ended up with (AdaQuant moves some) and
  // the range method range calibration chose them by.
  std::vector<int32_t> source(q->tensors.size(), -1);
  for (size_t f = 0; f < map.int8_version.size(); ++f)
    if (map.int8_version[f] >= 0) source[map.int8_version[f]] = static_cast<int32_t>(f);
  std::vector<bool> copied(float_graph.tensors.size(), false);
  for (size_t i = 0; i < float_graph.operators.size(); ++i)
    if (map.op_int8[i] && is_passthrough(float_graph.operators[i].type))
      copied[float_graph.operators[i].outputs[0]] = true;
  report->activations.clear();
  for (size_t t = 0; t < q->tensors.size(); ++t) {
    const int32_t f = source[t];
    if (f < 0 || !observers[f] || copied[f]) continue;
    const Tensor& qt = q->tensors[t];
    ActivationChoice c = choices[f];
    c.params.scale = qt.quant.scale[0];
    c.params.zero_point = qt.quant.zero_point[0];
    c.params.bits = qt.quant.bits;
    report->activations.push_back({qt.name, c});
  }
  CalibrationRecord& rec = q->calibration;
  rec = CalibrationRecord();
  rec.present = true;
  rec.pipeline = pipeline;
  for (const RtnLayerReport& l : report->layers)
    if (l.int8 && is_weighted(l.type)) {
      rec.weight_bits.push_back(static_cast<uint8_t>(l.weight_bits));
      rec.activation_bits.push_back(static_cast<uint8_t>(l.activation_bits));
    }
  rec.seed = options.seed;
  rec.calibration_samples = static_cast<uint32_t>(calibration.samples);
  rec.dataset = calibration.dataset;
}

}  // namespace quant
}  // namespace tinyquant
