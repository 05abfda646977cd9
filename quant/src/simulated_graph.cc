// The fake-quant float twin of a quantized graph (contract in tinyquant/pipeline.h).
#include "rewrite.h"
#include "tinyquant/op_info.h"
#include "tinyquant/pipeline.h"
#include "tinyquant/qmath.h"

namespace tinyquant {
namespace quant {

namespace {

class SimulatedGraphBuilder {
 public:
  SimulatedGraphBuilder(const Graph& q, const std::vector<bool>& float_through, Graph* sim)
      : q_(q), s_(*sim), float_through_(float_through), fver_(q.tensors.size(), -1), qver_(q.tensors.size(), -1),
        pre_(q.tensors.size(), -1) {}

  void fill_map(SimulatedMap* map) const {
    map->value = fver_;
    map->pre = pre_;
    map->op = op_map_;
    map->op_begin = op_begin_;
  }

  Status build() {
    s_.producer = q_.producer.empty() ? "tinyquant simulate" : q_.producer + " (simulated)";
    s_.metadata = q_.metadata;
    s_.calibration = q_.calibration;
    for (int32_t in : q_.inputs) {
      TQ_ENSURE(q_.tensors[in].dtype == DType::kFloat32, kUnsupported,
                "input '%s' is %s; the simulated graph keeps float inputs only", q_.tensors[in].name.c_str(),
                dtype_name(q_.tensors[in].dtype));
      fver_[in] = s_.add_tensor(q_.tensors[in].name, DType::kFloat32, q_.tensors[in].shape);
      s_.inputs.push_back(fver_[in]);
    }
    for (const Operator& op : q_.operators) {
      op_map_.push_back(-1);
      op_begin_.push_back(static_cast<int32_t>(s_.operators.size()));
      TQ_RETURN_IF_ERROR(add_op(op));
    }
    op_begin_.push_back(static_cast<int32_t>(s_.operators.size()));
    for (int32_t out : q_.outputs) {
      TQ_ENSURE(fver_[out] >= 0, kUnsupported, "output '%s' is %s; the simulated graph needs float outputs",
                q_.tensors[out].name.c_str(), dtype_name(q_.tensors[out].dtype));
      s_.outputs.push_back(fver_[out]);
    }
    return Status::ok();
  }

 private:
  // Float constant or float activation of quantized-graph tensor t.
  Status float_input(int32_t t, int32_t* out) {
    if (t < 0) {
      *out = -1;
      return Status::ok();
    }
    if (fver_[t] < 0) {
      const Tensor& src = q_.tensors[t];
      TQ_ENSURE(src.is_constant(), kInvalidModel, "tensor '%s' is read before it is produced", src.name.c_str());
      const Buffer& b = q_.buffers[src.buffer];
      if (src.dtype == DType::kInt8 && src.quant.scale.size() == 1 && src.quant.axis < 0) {
        // An int8 constant operand (of an Add / Mul) or a Gather's table (bit-packed below 8
        // bits): its dequantized values.
        const int64_t n = shape_elements(src.shape);
        const int32_t z = src.quant.zero_point.empty() ? 0 : src.quant.zero_point[0];
        std::vector<float> v(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i)
          v[i] = static_cast<float>(qmath::unpack_weight(b.data(), i, src.quant.bits) - z) * src.quant.scale[0];
        fver_[t] = s_.add_constant(src.name + ":dequantized", DType::kFloat32, src.shape, v.data(), v.size() * 4);
      } else {
        fver_[t] = s_.add_constant(src.name, src.dtype, src.shape, b.data(), b.size());
        s_.tensors[fver_[t]].quant = src.quant;
      }
    }
    *out = fver_[t];
    return Status::ok();
  }

  void add_convert(OpType type, const std::string& name, int32_t in, int32_t out) {
    Operator op;
    op.type = type;
    op.name = name;
    op.inputs = {in};
    op.outputs = {out};
    s_.add_operator(op);
  }

  // Int8 tensor t is written in float to `pre`; quantize it to t's params and back.
  void quantize_dequantize(int32_t t, int32_t pre) {
    const Tensor& src = q_.tensors[t];
    pre_[t] = pre;
    if (!float_through_.empty() && float_through_[t]) {  // computed in float, not quantized
      fver_[t] = pre;
      return;
    }
    qver_[t] = s_.add_tensor(src.name + ":sim_q", DType::kInt8, src.shape);
    s_.tensors[qver_[t]].quant = src.quant;
    add_convert(OpType::kQuantize, src.name + ":sim_quantize", pre, qver_[t]);
    fver_[t] = s_.add_tensor(src.name + ":sim_fq", DType::kFloat32, src.shape);
    add_convert(OpType::kDequantize, src.name + ":sim_dequantize", qver_[t], fver_[t]);
  }

  // w = s_w[c] * q (per output channel along the weight's axis).
  Status fake_quant_weights(const Operator& op, int32_t w, int32_t* out) {
    const Tensor& t = q_.tensors[w];
    const int64_t n = shape_elements(t.shape);
    const int32_t axis = t.quant.axis;
    TQ_ENSURE(t.dtype == DType::kInt8 && axis >= 0 && axis < static_cast<int32_t>(t.shape.size()) &&
                  t.quant.scale.size() == static_cast<size_t>(t.shape[axis]) && n > 0,
              kInvalidModel, "%s '%s': int8 weights '%s' need one scale per output channel", op_name(op.type),
              op.name.c_str(), t.name.c_str());
    int64_t inner = 1;
    for (size_t d = axis + 1; d < t.shape.size(); ++d) inner *= t.shape[d];
    const int64_t channels = t.shape[axis];
    const uint8_t* packed = q_.buffers[t.buffer].data();
    std::vector<float> values(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      values[i] = t.quant.scale[(i / inner) % channels] * static_cast<float>(qmath::unpack_weight(packed, i, t.quant.bits));
    *out = s_.add_constant(t.name + ":fake_quant", DType::kFloat32, t.shape, values.data(), values.size() * sizeof(float));
    return Status::ok();
  }

  // b = q_b * (s_in * s_w[c]), the product in float as qmath::requant_scale's numerator.
  Status fake_quant_bias(const Operator& op, int32_t b, float s_in, const std::vector<float>& s_w, int32_t* out) {
    const Tensor& t = q_.tensors[b];
    TQ_ENSURE(t.dtype == DType::kInt32 && shape_elements(t.shape) == static_cast<int64_t>(s_w.size()), kInvalidModel,
              "%s '%s': bias '%s' must be int32 with one value per output channel", op_name(op.type),
              op.name.c_str(), t.name.c_str());
    const int32_t* q = q_.constant_data<int32_t>(b);
    std::vector<float> values(s_w.size());
    for (size_t c = 0; c < s_w.size(); ++c) values[c] = static_cast<float>(q[c]) * (s_in * s_w[c]);
    *out = s_.add_constant(t.name + ":fake_quant", DType::kFloat32, t.shape, values.data(), values.size() * sizeof(float));
    return Status::ok();
  }

  Status add_op(const Operator& op) {
    const int32_t out = op.outputs[0];
    const Tensor& ot = q_.tensors[out];
    if (op.type == OpType::kQuantize) {
      int32_t in = -1;
      TQ_RETURN_IF_ERROR(float_input(op.inputs[0], &in));
      quantize_dequantize(out, in);
      return Status::ok();
    }
    if (op.type == OpType::kDequantize) {
      if (qver_[op.inputs[0]] < 0 && fver_[op.inputs[0]] >= 0 && !float_through_.empty() &&
          float_through_[op.inputs[0]]) {
        fver_[out] = fver_[op.inputs[0]];  // the float value passes straight through
        return Status::ok();
      }
      TQ_ENSURE(qver_[op.inputs[0]] >= 0, kInvalidModel, "Dequantize '%s': input '%s' is not an int8 activation",
                op.name.c_str(), q_.tensors[op.inputs[0]].name.c_str());
      fver_[out] = s_.add_tensor(ot.name, DType::kFloat32, ot.shape);
      add_convert(OpType::kDequantize, op.name, qver_[op.inputs[0]], fver_[out]);
      return Status::ok();
    }
    Operator nop = op;
    const bool weighted_int8 =
        op_info(op.type).weighted && op.inputs[1] >= 0 && q_.tensors[op.inputs[1]].dtype == DType::kInt8;
    // An int8 lookup runs as its float function: the table holds exactly f's quantized values.
    const bool lookup = op_info(op.type).int8_role == Int8Role::kLookup;
    if (lookup) nop.inputs.resize(1);
    for (size_t k = 0; k < nop.inputs.size(); ++k) {
      if (weighted_int8 && k >= 1) continue;
      TQ_RETURN_IF_ERROR(float_input(op.inputs[k], &nop.inputs[k]));
      if (nop.inputs[k] >= 0 && s_.tensors[nop.inputs[k]].dtype != DType::kFloat32)
        return Status::error(StatusCode::kUnsupported, "%s '%s': input '%s' is %s; cannot simulate it in float",
                             op_name(op.type), op.name.c_str(), q_.tensors[op.inputs[k]].name.c_str(),
                             dtype_name(q_.tensors[op.inputs[k]].dtype));
    }
    if (weighted_int8) {
      const Tensor& in = q_.tensors[op.inputs[0]];
      TQ_ENSURE(in.dtype == DType::kInt8 && in.quant.scale.size() == 1, kInvalidModel,
                "%s '%s': int8 weights need an int8 input with one scale", op_name(op.type), op.name.c_str());
      TQ_RETURN_IF_ERROR(fake_quant_weights(op, op.inputs[1], &nop.inputs[1]));
      if (op.inputs.size() > 2 && op.inputs[2] >= 0)
        TQ_RETURN_IF_ERROR(fake_quant_bias(op, op.inputs[2], in.quant.scale[0], q_.tensors[op.inputs[1]].quant.scale,
                                           &nop.inputs[2]));
    }
    if (ot.dtype == DType::kInt8) {
      const int32_t pre = s_.add_tensor(ot.name + ":sim_pre", DType::kFloat32, ot.shape);
      nop.outputs = {pre};
      op_map_.back() = s_.add_operator(nop);
      quantize_dequantize(out, pre);
    } else {
      fver_[out] = s_.add_tensor(ot.name, ot.dtype, ot.shape);
      nop.outputs = {fver_[out]};
      op_map_.back() = s_.add_operator(nop);
    }
    return Status::ok();
  }

  const Graph& q_;
  Graph& s_;
  const std::vector<bool>& float_through_;
  std::vector<int32_t> fver_, qver_, pre_, op_map_, op_begin_;
};

}  // namespace

Status build_simulated_graph(const Graph& quantized, Graph* simulated) {
  SimulatedMap map;
  return build_simulated_graph_mapped(quantized, {}, simulated, &map);
}

Status build_simulated_graph_mapped(const Graph& quantized, const std::vector<bool>& float_through, Graph* simulated,
                                    SimulatedMap* map) {
  bool any_int8 = false;
  for (const Tensor& t : quantized.tensors) any_int8 |= t.dtype == DType::kInt8 && !t.quant.scale.empty();
  TQ_ENSURE(any_int8, kInvalidArgument,
            "not a quantized model (no int8 tensor); --simulate needs a model written by tq quantize");
  TQ_RETURN_IF_ERROR(validate_graph(quantized));
  Graph sim;
  SimulatedGraphBuilder builder(quantized, float_through, &sim);
  TQ_RETURN_IF_ERROR(builder.build());
  builder.fill_map(map);
  TQ_RETURN_IF_ERROR(validate_graph(sim).with_context("simulated graph"));
  *simulated = std::move(sim);
  return Status::ok();
}

}  // namespace quant
}  // namespace tinyquant
