// Graph -> .tqm bytes. The output is loaded back before it is returned, so the writer can never
// emit a file the loader rejects (the loader is stricter than validate_graph about file-level
// details such as scale values and option ranges).
#include <cinttypes>

#include "tinyquant/file_io.h"
#include "tinyquant/model_io.h"
#include "tinyquant/op_info.h"
#include "tinyquant_generated.h"

namespace tinyquant {
namespace {

using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

fb::FusedActivation to_fb(const FusedActivation& a) {
  return fb::FusedActivation(fb::Activation(a.type), a.min, a.max);
}

// Zero points are written only when one is not zero (empty means all zero); a bias whose scales
// are implied (graph.h implied_bias_scales) stores none.
Offset<fb::Quantization> write_quantization(FlatBufferBuilder& fbb, const Quantization& q, bool bias_scale_implied) {
  const Quantization none;
  if (q.scale.empty() && q.zero_point.empty() && q.axis == none.axis && q.bits == none.bits) return 0;
  if (bias_scale_implied) return fb::CreateQuantization(fbb, 0, 0, q.axis, uint8_t(q.bits), true);
  return fb::CreateQuantization(fbb, fbb.CreateVector(q.scale.data(), q.scale.size()),
                                q.zero_points_all_zero() ? 0 : fbb.CreateVector(q.zero_point.data(), q.zero_point.size()), q.axis, uint8_t(q.bits));
}

struct Options {
  fb::OperatorOptions type;
  Offset<void> table;
};

Options write_options(FlatBufferBuilder& fbb, const Operator& op) {
  const fb::FusedActivation act = to_fb(op.activation);
  switch (op.type) {
    case OpType::kConv2D:
    case OpType::kDepthwiseConv2D:
    case OpType::kConvTranspose: {
      const ConvOptions& c = op.conv();
      return {fb::OperatorOptions::ConvOptions,
              fb::CreateConvOptions(fbb, c.stride_h, c.stride_w, c.dilation_h, c.dilation_w, c.padding.top,
                                    c.padding.left, c.padding.bottom, c.padding.right, c.groups, c.depth_multiplier,
                                    &act, c.output_pad_h, c.output_pad_w)
                  .Union()};
    }
    case OpType::kMaxPool2D:
    case OpType::kAveragePool2D: {
      const PoolOptions& p = op.pool();
      return {fb::OperatorOptions::PoolOptions,
              fb::CreatePoolOptions(fbb, p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.dilation_h, p.dilation_w,
                                    p.padding.top, p.padding.left, p.padding.bottom, p.padding.right,
                                    p.count_include_pad, &act)
                  .Union()};
    }
    case OpType::kFullyConnected:
    case OpType::kAdd:
    case OpType::kMul:
    case OpType::kSub:
    case OpType::kDiv:
    case OpType::kPRelu:
    case OpType::kClamp:
    case OpType::kGlobalAveragePool:
    case OpType::kQuantize:
    case OpType::kDequantize:
    case OpType::kGather:
    case OpType::kBatchMatMul:
      return {fb::OperatorOptions::ActivationOptions, fb::CreateActivationOptions(fbb, &act).Union()};
    case OpType::kReshape:
      return {fb::OperatorOptions::ReshapeOptions,
              fb::CreateReshapeOptions(fbb, fbb.CreateVector(op.new_shape())).Union()};
    case OpType::kConcat: return {fb::OperatorOptions::ConcatOptions, fb::CreateConcatOptions(fbb, op.axis).Union()};
    case OpType::kSoftmax: return {fb::OperatorOptions::SoftmaxOptions, fb::CreateSoftmaxOptions(fbb, op.beta).Union()};
    case OpType::kTranspose:
      return {fb::OperatorOptions::TransposeOptions, fb::CreateTransposeOptions(fbb, fbb.CreateVector(op.perm())).Union()};
    case OpType::kSlice:
      return {fb::OperatorOptions::SliceOptions,
              fb::CreateSliceOptions(fbb, fbb.CreateVector(op.slice().begin), fbb.CreateVector(op.slice().end),
                                     fbb.CreateVector(op.slice().step))
                  .Union()};
    case OpType::kResize: {
      const ResizeOptions& r = op.resize();
      return {fb::OperatorOptions::ResizeOptions,
              fb::CreateResizeOptions(fbb, fb::ResizeMode(r.mode), fb::ResizeCoord(r.coord),
                                      fb::ResizeNearest(r.nearest), r.out_h, r.out_w, r.scale_h, r.scale_w)
                  .Union()};
    }
    case OpType::kLayerNorm:
      return {fb::OperatorOptions::LayerNormOptions, fb::CreateLayerNormOptions(fbb, op.epsilon).Union()};
    case OpType::kUnary:
      return {fb::OperatorOptions::UnaryOptions,
              fb::CreateUnaryOptions(fbb, fb::UnaryKind(op.unary().kind), op.unary().alpha, op.unary().beta).Union()};
    case OpType::kCount: break;
  }
  return {fb::OperatorOptions::NONE, 0};  // unreachable: validate_graph rejects unknown op types
}

// The optional sections validate_graph() does not know about. The load-back below checks them
// again; checking first names the problem without building anything.
Status check_master_weights(const Graph& g) {
  for (size_t i = 0; i < g.master_weights.size(); ++i) {
    const MasterWeights& m = g.master_weights[i];
    TQ_ENSURE(m.tensor >= 0 && size_t(m.tensor) < g.tensors.size() && g.tensors[size_t(m.tensor)].is_constant(),
              kInvalidModel, "master weights %zu: tensor %d is not a constant of the graph", i, int(m.tensor));
    TQ_ENSURE(m.buffer >= 0 && size_t(m.buffer) < g.buffers.size(), kInvalidModel,
              "master weights %zu: buffer %d is out of range (%zu buffers)", i, int(m.buffer), g.buffers.size());
    const Tensor& t = g.tensors[size_t(m.tensor)];
    const int64_t elements = shape_elements(t.shape);
    const size_t size = g.buffers[size_t(m.buffer)].size();
    TQ_ENSURE(elements >= 0 && uint64_t(elements) * (m.fp16 ? 2u : 4u) == size, kInvalidModel,
              "master weights %zu: buffer %d holds %zu bytes, expected %" PRId64 " for %s '%s'", i, int(m.buffer),
              size, elements * (m.fp16 ? 2 : 4), m.fp16 ? "float16" : "float32", t.name.c_str());
  }
  return Status::ok();
}

Status check_bits(const char* what, const std::vector<uint8_t>& bits) {
  for (size_t i = 0; i < bits.size(); ++i) {
    TQ_ENSURE(bits[i] >= 2 && bits[i] <= 8, kInvalidModel, "calibration record: %s[%zu] is %d, expected 2..8", what,
              i, int(bits[i]));
  }
  return Status::ok();
}

Offset<fb::CalibrationRecord> write_calibration(FlatBufferBuilder& fbb, const CalibrationRecord& c) {
  if (!c.present) return 0;
  const auto pipeline = fbb.CreateString(c.pipeline);
  const auto weight_bits = fbb.CreateVector(c.weight_bits);
  const auto activation_bits = fbb.CreateVector(c.activation_bits);
  const auto dataset = fbb.CreateString(c.dataset);
  // The compact record only (version 2): the full report goes to the report file, not the model.
  return fb::CreateCalibrationRecord(fbb, pipeline, weight_bits, activation_bits, c.budget_bytes, c.seed,
                                     c.calibration_samples, dataset);
}

}  // namespace

Status serialize_model(const Graph& graph, std::vector<uint8_t>* out) {
  TQ_ENSURE(out, kInvalidArgument, "serialize_model needs an output vector");
  // Shape inference runs in the load-back below, at the batch the inputs declare (as on load).
  TQ_RETURN_IF_ERROR(validate_graph(graph));
  TQ_RETURN_IF_ERROR(check_master_weights(graph));
  if (graph.calibration.present) {
    TQ_RETURN_IF_ERROR(check_bits("weight_bits", graph.calibration.weight_bits));
    TQ_RETURN_IF_ERROR(check_bits("activation_bits", graph.calibration.activation_bits));
  }
  // FlatBufferBuilder asserts rather than fails past 2 GiB; keep well below (and below what
  // load_model_file reads).
  size_t constant_bytes = 0;
  for (const Buffer& b : graph.buffers) constant_bytes += b.size() + 16;
  TQ_ENSURE(constant_bytes < kMaxModelFileBytes, kInvalidArgument,
            "the graph has %zu bytes of constants, over the %zu-byte .tqm limit", constant_bytes, kMaxModelFileBytes);

  FlatBufferBuilder fbb(constant_bytes + 4096);
  std::vector<Offset<fb::Buffer>> buffers;
  for (const Buffer& b : graph.buffers) {
    Offset<flatbuffers::Vector<uint8_t>> data;  // absent when empty
    if (b.size() > 0) {
      // Aligned in the file so kernels (and SIMD loads) can read weights in place.
      fbb.ForceVectorAlignment(b.size(), 1, 16);
      data = fbb.CreateVector(b.data(), b.size());
    }
    buffers.push_back(fb::CreateBuffer(fbb, data));
  }
  std::vector<Offset<fb::Tensor>> tensors;
  const std::vector<bool> implied = implied_bias_scales(graph);
  for (size_t i = 0; i < graph.tensors.size(); ++i) {
    const Tensor& t = graph.tensors[i];
    tensors.push_back(fb::CreateTensor(fbb, fbb.CreateString(t.name), fbb.CreateVector(t.shape.data(), t.shape.size()),
                                       fb::DType(t.dtype), write_quantization(fbb, t.quant, implied[i]), t.buffer));
  }
  std::vector<Offset<fb::Operator>> operators;
  for (const Operator& op : graph.operators) {
    const Options options = write_options(fbb, op);
    operators.push_back(fb::CreateOperator(fbb, fb::OpCode(op.type), fbb.CreateString(op.name),
                                           fbb.CreateVector(op.inputs.data(), op.inputs.size()),
                                           fbb.CreateVector(op.outputs.data(), op.outputs.size()), options.type,
                                           options.table));
  }
  std::vector<Offset<fb::Metadata>> metadata;
  for (const auto& kv : graph.metadata) {
    metadata.push_back(fb::CreateMetadata(fbb, fbb.CreateString(kv.first), fbb.CreateString(kv.second)));
  }
  // Both optional sections are left out when empty, so graphs without them write the same bytes
  // as before the sections existed.
  Offset<flatbuffers::Vector<Offset<fb::MasterWeights>>> master_weights;
  if (!graph.master_weights.empty()) {
    std::vector<Offset<fb::MasterWeights>> entries;
    for (const MasterWeights& m : graph.master_weights) {
      entries.push_back(fb::CreateMasterWeights(
          fbb, m.tensor, m.fp16 ? fb::MasterDType::Float16 : fb::MasterDType::Float32, m.buffer));
    }
    master_weights = fbb.CreateVector(entries);
  }
  const Offset<fb::CalibrationRecord> calibration = write_calibration(fbb, graph.calibration);
  const auto model = fb::CreateModel(fbb, kTqmVersion, fbb.CreateString(graph.producer), fbb.CreateVector(tensors),
                                     fbb.CreateVector(operators), fbb.CreateVector(graph.inputs),
                                     fbb.CreateVector(graph.outputs), fbb.CreateVector(buffers),
                                     fbb.CreateVector(metadata), master_weights, calibration);
  fb::FinishModelBuffer(fbb, model);

  // Pad to a multiple of 16 (the loader's truncation check). Offsets count from the start, so
  // trailing zeros change nothing else; a model with constants is already a multiple of 16.
  std::vector<uint8_t> bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  bytes.resize((bytes.size() + 15) / 16 * 16, 0);
  Graph check;
  TQ_RETURN_IF_ERROR(load_model(bytes.data(), bytes.size(), &check, "serialize_model"));
  *out = std::move(bytes);
  return Status::ok();
}

Status save_model_file(const Graph& graph, const char* path) {
  TQ_ENSURE(path, kInvalidArgument, "save_model_file needs a path");
  std::vector<uint8_t> bytes;
  TQ_RETURN_IF_ERROR(serialize_model(graph, &bytes));
  return write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace tinyquant
