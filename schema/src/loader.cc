// .tqm bytes -> Graph. Nothing in the file is trusted until the FlatBuffers verifier has
// bounded every offset and our checks have bounded every index, dimension and option; only
// then do validate_graph() and infer_shapes() see the graph. Builds with -fno-exceptions.
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>

#include "tinyquant/file_io.h"
#include "tinyquant/model_io.h"
#include "tinyquant/op_info.h"
#include "tinyquant/shape_inference.h"
#include "tinyquant_generated.h"

namespace tinyquant {
namespace {

// The file's enums carry graph.h's numeric values, so conversion is a cast.
static_assert(int(fb::DType::Float32) == int(DType::kFloat32) && int(fb::DType::Int8) == int(DType::kInt8) &&
                  int(fb::DType::Int32) == int(DType::kInt32) && int(fb::DType::UInt8) == int(DType::kUInt8) &&
                  int(fb::DType::MAX) == int(DType::kUInt8),
              "fb::DType must match tinyquant::DType");
static_assert(int(fb::OpCode::Conv2D) == int(OpType::kConv2D) &&
                  int(fb::OpCode::DepthwiseConv2D) == int(OpType::kDepthwiseConv2D) &&
                  int(fb::OpCode::FullyConnected) == int(OpType::kFullyConnected) &&
                  int(fb::OpCode::Add) == int(OpType::kAdd) && int(fb::OpCode::Mul) == int(OpType::kMul) &&
                  int(fb::OpCode::Clamp) == int(OpType::kClamp) &&
                  int(fb::OpCode::MaxPool2D) == int(OpType::kMaxPool2D) &&
                  int(fb::OpCode::AveragePool2D) == int(OpType::kAveragePool2D) &&
                  int(fb::OpCode::GlobalAveragePool) == int(OpType::kGlobalAveragePool) &&
                  int(fb::OpCode::Reshape) == int(OpType::kReshape) &&
                  int(fb::OpCode::Concat) == int(OpType::kConcat) &&
                  int(fb::OpCode::Softmax) == int(OpType::kSoftmax) &&
                  int(fb::OpCode::Transpose) == int(OpType::kTranspose) &&
                  int(fb::OpCode::Quantize) == int(OpType::kQuantize) &&
                  int(fb::OpCode::Dequantize) == int(OpType::kDequantize) &&
                  int(fb::OpCode::Unary) == int(OpType::kUnary) && int(fb::OpCode::Sub) == int(OpType::kSub) &&
                  int(fb::OpCode::Div) == int(OpType::kDiv) && int(fb::OpCode::Slice) == int(OpType::kSlice) &&
                  int(fb::OpCode::Resize) == int(OpType::kResize) && int(fb::OpCode::PRelu) == int(OpType::kPRelu) &&
                  int(fb::OpCode::LayerNorm) == int(OpType::kLayerNorm) &&
                  int(fb::OpCode::ConvTranspose) == int(OpType::kConvTranspose) &&
                  int(fb::OpCode::Gather) == int(OpType::kGather) &&
                  int(fb::OpCode::BatchMatMul) == int(OpType::kBatchMatMul) &&
                  int(fb::OpCode::MAX) + 1 == int(OpType::kCount),
              "fb::OpCode must match tinyquant::OpType");
static_assert(int(fb::UnaryKind::Sigmoid) == int(UnaryKind::kSigmoid) &&
                  int(fb::UnaryKind::Softplus) == int(UnaryKind::kSoftplus) &&
                  int(fb::UnaryKind::MAX) + 1 == int(UnaryKind::kCount),
              "fb::UnaryKind must match tinyquant::UnaryKind");
static_assert(int(fb::Activation::None) == int(Activation::kNone) &&
                  int(fb::Activation::Relu) == int(Activation::kRelu) &&
                  int(fb::Activation::Relu6) == int(Activation::kRelu6) &&
                  int(fb::Activation::Clip) == int(Activation::kClip) &&
                  int(fb::Activation::MAX) == int(Activation::kClip),
              "fb::Activation must match tinyquant::Activation");

// A .tqm file's size is a multiple of this (tinyquant.fbs).
constexpr size_t kFileAlignment = 16;
// Root offset, file identifier, a table and its vtable: nothing smaller can be a model.
constexpr size_t kMinModelBytes = 16;
// The schema nests tables three deep (Model > Operator > options); anything deeper is hostile.
constexpr flatbuffers::uoffset_t kMaxDepth = 8;
// Every table in a well-formed file costs at least 8 bytes (a 4-byte offset to it plus its own
// 4-byte vtable offset), so more visits than size / 8 mean offsets shared to amplify work.
constexpr size_t kBytesPerTable = 8;
// Kernel, stride, dilation, padding, group and multiplier values above this are corruption,
// not ambition (validate_graph bounds windows tighter still).
constexpr int32_t kMaxWindow = 1 << 16;

// Bytes the Graph copies out of the file (names, shapes, scales, ...) are charged against the
// file size. A well-formed file holds each such byte once; a crafted one could point many
// tables at one large vector and expand a small file into gigabytes.
class Budget {
 public:
  explicit Budget(size_t bytes) : left_(bytes) {}
  Status take(size_t bytes) {
    TQ_ENSURE(bytes <= left_, kInvalidModel, "tables share data: the model expands beyond its file size");
    left_ -= bytes;
    return Status::ok();
  }

 private:
  size_t left_;
};

Status copy_string(const flatbuffers::String* s, Budget* budget, std::string* out) {
  if (!s) return Status::ok();
  TQ_RETURN_IF_ERROR(budget->take(s->size()));
  out->assign(s->c_str(), s->size());
  return Status::ok();
}

// In place, as the FlatVector views below: the verifier checked the string's terminating NUL.
Status copy_string(const flatbuffers::String* s, Budget* budget, Name* out) {
  if (!s) return Status::ok();
  TQ_RETURN_IF_ERROR(budget->take(s->size()));
  *out = Name::view(s->c_str(), s->size());
  return Status::ok();
}

template <typename T>
Status copy_vector(const flatbuffers::Vector<T>* v, Budget* budget, std::vector<T>* out) {
  if (!v) return Status::ok();
  TQ_RETURN_IF_ERROR(budget->take(size_t(v->size()) * sizeof(T)));
  out->assign(v->begin(), v->end());
  return Status::ok();
}

// In place: a view of the file's elements (the caller keeps the file alive, load_model's
// contract), so a model's scales, zero points, shapes and operator tensor lists cost no heap.
// Charged against the budget all the same: it also bounds the work of checking them. Copied
// where the file's bytes cannot be read as T (misaligned, or a big-endian host).
template <typename T>
Status copy_vector(const flatbuffers::Vector<T>* v, Budget* budget, FlatVector<T>* out) {
  if (!v) return Status::ok();
  TQ_RETURN_IF_ERROR(budget->take(size_t(v->size()) * sizeof(T)));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (reinterpret_cast<uintptr_t>(v->data()) % alignof(T) == 0) {
    *out = FlatVector<T>::view(reinterpret_cast<const T*>(v->data()), v->size());
    return Status::ok();
  }
#endif
  out->assign(v->begin(), v->end());
  return Status::ok();
}

template <typename T>
int32_t count(const flatbuffers::Vector<T>* v) {
  return v ? int32_t(v->size()) : 0;  // a verified buffer is < 2 GiB, so this cannot overflow
}

const char* dims_str(const FlatVector<int32_t>& shape, char* buf, size_t size) {
  return shape_str(shape.data(), int(shape.size()), buf, size);
}

Status check_range(const char* what, int32_t value, int32_t lo, int32_t hi) {
  TQ_ENSURE(value >= lo && value <= hi, kInvalidModel, "%s is %" PRId32 ", expected %" PRId32 "..%" PRId32, what,
            value, lo, hi);
  return Status::ok();
}

Status read_quantization(const fb::Quantization* fq, Budget* budget, Tensor* t) {
  if (!fq) return Status::ok();
  Quantization& q = t->quant;
  if (fq->bias_scale_implied()) {  // no scales stored; check_implied_bias_scales() checks the reading op
    TQ_ENSURE(t->dtype == DType::kInt32, kInvalidModel, "implied bias scales need dtype int32, not %s",
              dtype_name(t->dtype));
    TQ_ENSURE(count(fq->scale()) == 0 && count(fq->zero_point()) == 0 && fq->bits() == 8, kInvalidModel,
              "implied bias scales: the file stores %d scales, %d zero points, %d bits (expected none, none, 8)",
              int(count(fq->scale())), int(count(fq->zero_point())), int(fq->bits()));
    q.axis = fq->axis();
    return check_range("quantization axis", q.axis, -1, int(t->shape.size()) - 1);
  }
  TQ_RETURN_IF_ERROR(copy_vector(fq->scale(), budget, &q.scale));
  TQ_RETURN_IF_ERROR(copy_vector(fq->zero_point(), budget, &q.zero_point));
  q.axis = fq->axis();
  q.bits = fq->bits();
  // Read through const references: a non-const access would copy the file's elements (FlatVector).
  const FlatVector<float>& scale = q.scale;
  const FlatVector<int32_t>& zero_point = q.zero_point;
  const FlatVector<int32_t>& shape = t->shape;
  const int rank = int(shape.size());
  TQ_RETURN_IF_ERROR(check_range("quantization bits", q.bits, 2, 8));
  TQ_ENSURE(q.bits == 8 || t->dtype == DType::kInt8, kInvalidModel, "%d-bit quantization needs dtype int8, not %s",
            int(q.bits), dtype_name(t->dtype));
  TQ_RETURN_IF_ERROR(check_range("quantization axis", q.axis, -1, rank - 1));
  const size_t n = scale.size();
  if (n == 0) {
    TQ_ENSURE(zero_point.empty(), kInvalidModel, "%zu zero points but no scales", zero_point.size());
    return Status::ok();
  }
  if (q.axis < 0) {
    TQ_ENSURE(n == 1, kInvalidModel, "%zu scales for per-tensor quantization (axis -1), expected 1", n);
  } else {
    TQ_ENSURE(int64_t(n) == shape[q.axis], kInvalidModel, "%zu scales, expected one per index of axis %d (%d)", n,
              int(q.axis), int(shape[q.axis]));
  }
  TQ_ENSURE(zero_point.empty() || zero_point.size() == n, kInvalidModel, "%zu zero points for %zu scales",
            zero_point.size(), n);
  for (size_t i = 0; i < n; ++i) {
    TQ_ENSURE(std::isfinite(scale[i]) && scale[i] > 0, kInvalidModel, "scale[%zu] is %g, expected finite and > 0",
              i, double(scale[i]));
  }
  int32_t lo = INT32_MIN, hi = INT32_MAX;
  if (t->dtype == DType::kInt8) lo = -128, hi = 127;
  if (t->dtype == DType::kUInt8) lo = 0, hi = 255;
  for (size_t i = 0; i < zero_point.size(); ++i) {
    TQ_ENSURE(zero_point[i] >= lo && zero_point[i] <= hi, kInvalidModel,
              "zero_point[%zu] is %" PRId32 ", outside the %s range", i, zero_point[i], dtype_name(t->dtype));
  }
  return Status::ok();
}

Status read_tensor(const fb::Tensor& ft, const fb::Model& model, Budget* budget, Tensor* t) {
  TQ_RETURN_IF_ERROR(copy_string(ft.name(), budget, &t->name));
  TQ_ENSURE(ft.dtype() <= fb::DType::MAX, kInvalidModel, "unknown dtype %d", int(ft.dtype()));
  t->dtype = DType(ft.dtype());
  t->buffer = ft.buffer();
  TQ_RETURN_IF_ERROR(check_range("buffer index", t->buffer, -1, count(model.buffers()) - 1));

  TQ_ENSURE(count(ft.shape()) <= kMaxRank, kInvalidModel, "rank %d is over %d", count(ft.shape()), kMaxRank);
  TQ_RETURN_IF_ERROR(copy_vector(ft.shape(), budget, &t->shape));
  const FlatVector<int32_t>& shape = t->shape;  // const: reads must not copy the view
  const int rank = int(shape.size());
  int32_t dims[kMaxRank];
  for (int d = 0; d < rank; ++d) {
    const bool dynamic_batch = d == 0 && !t->is_constant() && shape[0] == -1;
    TQ_ENSURE(shape[d] >= 0 || dynamic_batch, kInvalidModel, "dimension %d is %" PRId32 ", expected >= 0%s", d,
              shape[d], d == 0 && !t->is_constant() ? " or -1 (dynamic batch)" : "");
    dims[d] = dynamic_batch ? 1 : shape[d];
  }
  const int64_t elements = shape_elements(dims, rank);
  char buf[96];
  TQ_ENSURE(elements >= 0, kInvalidModel, "shape %s has too many elements", dims_str(shape, buf, sizeof(buf)));
  TQ_RETURN_IF_ERROR(read_quantization(ft.quantization(), budget, t));

  if (t->is_constant()) {
    const flatbuffers::Vector<uint8_t>* data = model.buffers()->Get(t->buffer)->data();
    const size_t size = data ? data->size() : 0;
    const int64_t expected = packed_bytes(t->dtype, elements, t->quant.bits);
    TQ_ENSURE(expected >= 0 && uint64_t(expected) == size, kInvalidModel,
              "buffer %" PRId32 " holds %zu bytes, expected %" PRId64 " (%s %s at %d bits)", t->buffer, size, expected,
              dtype_name(t->dtype), dims_str(shape, buf, sizeof(buf)), int(t->quant.bits));
  }
  return Status::ok();
}

Status read_activation(const fb::FusedActivation* fa, FusedActivation* act) {
  if (!fa) return Status::ok();  // none: [-inf, inf]
  TQ_ENSURE(fa->type() <= fb::Activation::MAX, kInvalidModel, "unknown activation %d", int(fa->type()));
  TQ_ENSURE(!std::isnan(fa->min()) && !std::isnan(fa->max()) && fa->min() <= fa->max(), kInvalidModel,
            "%s bounds [%g, %g] are not an interval", activation_name(Activation(fa->type())), double(fa->min()),
            double(fa->max()));
  *act = {Activation(fa->type()), fa->min(), fa->max()};
  return Status::ok();
}

Status read_padding(int32_t top, int32_t left, int32_t bottom, int32_t right, Padding* p) {
  TQ_RETURN_IF_ERROR(check_range("pad_top", top, 0, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("pad_left", left, 0, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("pad_bottom", bottom, 0, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("pad_right", right, 0, kMaxWindow));
  *p = {top, left, bottom, right};
  return Status::ok();
}

Status read_conv(const fb::ConvOptions& o, Operator* op) {
  ConvOptions& c = op->mutable_conv();
  TQ_RETURN_IF_ERROR(check_range("stride_h", c.stride_h = o.stride_h(), 1, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("stride_w", c.stride_w = o.stride_w(), 1, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("dilation_h", c.dilation_h = o.dilation_h(), 1, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("dilation_w", c.dilation_w = o.dilation_w(), 1, kMaxWindow));
  TQ_RETURN_IF_ERROR(read_padding(o.pad_top(), o.pad_left(), o.pad_bottom(), o.pad_right(), &c.padding));
  TQ_RETURN_IF_ERROR(check_range("groups", c.groups = o.groups(), 1, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("depth_multiplier", c.depth_multiplier = o.depth_multiplier(), 1, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("output_pad_h", c.output_pad_h = o.output_pad_h(), 0, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("output_pad_w", c.output_pad_w = o.output_pad_w(), 0, kMaxWindow));
  return read_activation(o.activation(), &op->activation);
}

Status read_pool(const fb::PoolOptions& o, Operator* op) {
  PoolOptions& p = op->mutable_pool();
  TQ_RETURN_IF_ERROR(check_range("kernel_h", p.kernel_h = o.kernel_h(), 1, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("kernel_w", p.kernel_w = o.kernel_w(), 1, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("stride_h", p.stride_h = o.stride_h(), 1, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("stride_w", p.stride_w = o.stride_w(), 1, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("dilation_h", p.dilation_h = o.dilation_h(), 1, kMaxWindow));
  TQ_RETURN_IF_ERROR(check_range("dilation_w", p.dilation_w = o.dilation_w(), 1, kMaxWindow));
  TQ_RETURN_IF_ERROR(read_padding(o.pad_top(), o.pad_left(), o.pad_bottom(), o.pad_right(), &p.padding));
  p.count_include_pad = o.count_include_pad();
  return read_activation(o.activation(), &op->activation);
}

Status read_reshape(const fb::ReshapeOptions& o, Budget* budget, Operator* op) {
  TQ_ENSURE(count(o.new_shape()) <= kMaxRank, kInvalidModel, "new_shape has rank %d, over %d", count(o.new_shape()),
            kMaxRank);
  TQ_RETURN_IF_ERROR(copy_vector(o.new_shape(), budget, &op->mutable_new_shape()));
  int inferred = 0;
  for (int32_t d : op->new_shape()) {
    TQ_RETURN_IF_ERROR(check_range("new_shape dimension", d, -1, INT32_MAX));
    inferred += d == -1;
  }
  TQ_ENSURE(inferred <= 1, kInvalidModel, "new_shape has %d dimensions of -1, at most one is inferred", inferred);
  return Status::ok();
}

Status read_transpose(const fb::TransposeOptions& o, Budget* budget, Operator* op) {
  const int n = count(o.perm());
  TQ_ENSURE(n <= kMaxRank, kInvalidModel, "perm has %d entries, over %d", n, kMaxRank);
  TQ_RETURN_IF_ERROR(copy_vector(o.perm(), budget, &op->mutable_perm()));
  bool seen[kMaxRank] = {};
  for (int32_t p : op->perm()) {
    TQ_ENSURE(p >= 0 && p < n && !seen[p], kInvalidModel, "perm is not a permutation of 0..%d", n - 1);
    seen[p] = true;
  }
  return Status::ok();
}

// The options table each op carries; graph.h keeps all options in Operator, the file in a union.
fb::OperatorOptions expected_options(OpType type) {
  switch (type) {
    case OpType::kConv2D:
    case OpType::kDepthwiseConv2D:
    case OpType::kConvTranspose: return fb::OperatorOptions::ConvOptions;
    case OpType::kMaxPool2D:
    case OpType::kAveragePool2D: return fb::OperatorOptions::PoolOptions;
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
    case OpType::kBatchMatMul: return fb::OperatorOptions::ActivationOptions;
    case OpType::kUnary: return fb::OperatorOptions::UnaryOptions;
    case OpType::kSlice: return fb::OperatorOptions::SliceOptions;
    case OpType::kResize: return fb::OperatorOptions::ResizeOptions;
    case OpType::kLayerNorm: return fb::OperatorOptions::LayerNormOptions;
    case OpType::kReshape: return fb::OperatorOptions::ReshapeOptions;
    case OpType::kConcat: return fb::OperatorOptions::ConcatOptions;
    case OpType::kSoftmax: return fb::OperatorOptions::SoftmaxOptions;
    case OpType::kTranspose: return fb::OperatorOptions::TransposeOptions;
    case OpType::kCount: break;
  }
  return fb::OperatorOptions::NONE;
}

Status read_operator(const fb::Operator& fo, int32_t num_tensors, Budget* budget, Operator* op) {
  TQ_RETURN_IF_ERROR(copy_string(fo.name(), budget, &op->name));
  TQ_ENSURE(fo.opcode() <= fb::OpCode::MAX, kInvalidModel, "unknown opcode %d", int(fo.opcode()));
  op->type = OpType(fo.opcode());
  TQ_RETURN_IF_ERROR(copy_vector(fo.inputs(), budget, &op->inputs));
  TQ_RETURN_IF_ERROR(copy_vector(fo.outputs(), budget, &op->outputs));
  const FlatVector<int32_t>& inputs = op->inputs;  // const: reads must not copy the views
  const FlatVector<int32_t>& outputs = op->outputs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    TQ_ENSURE(inputs[i] >= -1 && inputs[i] < num_tensors, kInvalidModel,
              "input %zu is tensor %" PRId32 ", expected -1 (absent) or 0..%" PRId32, i, inputs[i], num_tensors - 1);
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    TQ_ENSURE(outputs[i] >= 0 && outputs[i] < num_tensors, kInvalidModel,
              "output %zu is tensor %" PRId32 ", expected 0..%" PRId32, i, outputs[i], num_tensors - 1);
  }

  const fb::OperatorOptions expected = expected_options(op->type);
  if (fo.options_type() != expected || !fo.options()) {
    char found[32] = "no options";
    if (fo.options() && fo.options_type() <= fb::OperatorOptions::MAX) {
      std::snprintf(found, sizeof(found), "%s", fb::EnumNameOperatorOptions(fo.options_type()));
    } else if (fo.options()) {
      std::snprintf(found, sizeof(found), "options type %d", int(fo.options_type()));
    }
    return Status::error(StatusCode::kInvalidModel, "%s takes %s, but the file has %s", op_name(op->type),
                         fb::EnumNameOperatorOptions(expected), found);
  }
  switch (expected) {
    case fb::OperatorOptions::ConvOptions: return read_conv(*fo.options_as_ConvOptions(), op);
    case fb::OperatorOptions::PoolOptions: return read_pool(*fo.options_as_PoolOptions(), op);
    case fb::OperatorOptions::ActivationOptions:
      return read_activation(fo.options_as_ActivationOptions()->activation(), &op->activation);
    case fb::OperatorOptions::ReshapeOptions: return read_reshape(*fo.options_as_ReshapeOptions(), budget, op);
    case fb::OperatorOptions::TransposeOptions: return read_transpose(*fo.options_as_TransposeOptions(), budget, op);
    case fb::OperatorOptions::ConcatOptions:
      return check_range("axis", op->axis = fo.options_as_ConcatOptions()->axis(), 0, kMaxRank - 1);
    case fb::OperatorOptions::SoftmaxOptions:
      op->beta = fo.options_as_SoftmaxOptions()->beta();
      TQ_ENSURE(std::isfinite(op->beta) && op->beta > 0, kInvalidModel, "beta is %g, expected finite and > 0",
                double(op->beta));
      return Status::ok();
    case fb::OperatorOptions::UnaryOptions: {
      const fb::UnaryOptions& u = *fo.options_as_UnaryOptions();
      TQ_ENSURE(u.kind() <= fb::UnaryKind::MAX, kInvalidModel, "unknown unary function %d", int(u.kind()));
      op->mutable_unary().kind = UnaryKind(u.kind());
      op->mutable_unary().alpha = u.alpha();
      op->mutable_unary().beta = u.beta();
      TQ_ENSURE(std::isfinite(op->unary().alpha) && std::isfinite(op->unary().beta), kInvalidModel,
                "unary alpha %g / beta %g must be finite", double(op->unary().alpha), double(op->unary().beta));
      return Status::ok();
    }
    case fb::OperatorOptions::SliceOptions: {
      const fb::SliceOptions& o = *fo.options_as_SliceOptions();
      const int n = count(o.begin());
      TQ_ENSURE(n >= 1 && n <= kMaxRank && count(o.end()) == n && count(o.step()) == n, kInvalidModel,
                "slice begin/end/step need 1..%d entries each, have %d/%d/%d", kMaxRank, n, count(o.end()),
                count(o.step()));
      TQ_RETURN_IF_ERROR(copy_vector(o.begin(), budget, &op->mutable_slice().begin));
      TQ_RETURN_IF_ERROR(copy_vector(o.end(), budget, &op->mutable_slice().end));
      TQ_RETURN_IF_ERROR(copy_vector(o.step(), budget, &op->mutable_slice().step));
      return Status::ok();  // value ranges: validate_graph
    }
    case fb::OperatorOptions::ResizeOptions: {
      const fb::ResizeOptions& o = *fo.options_as_ResizeOptions();
      TQ_ENSURE(o.mode() <= fb::ResizeMode::MAX && o.coord() <= fb::ResizeCoord::MAX &&
                    o.nearest() <= fb::ResizeNearest::MAX,
                kInvalidModel, "unknown resize mode %d / coordinate mode %d / nearest mode %d", int(o.mode()),
                int(o.coord()), int(o.nearest()));
      op->mutable_resize().mode = ResizeMode(o.mode());
      op->mutable_resize().coord = ResizeCoord(o.coord());
      op->mutable_resize().nearest = ResizeNearest(o.nearest());
      op->mutable_resize().out_h = o.out_h();
      op->mutable_resize().out_w = o.out_w();
      op->mutable_resize().scale_h = o.scale_h();
      op->mutable_resize().scale_w = o.scale_w();
      return Status::ok();
    }
    case fb::OperatorOptions::LayerNormOptions:
      op->epsilon = fo.options_as_LayerNormOptions()->epsilon();
      return Status::ok();
    case fb::OperatorOptions::NONE: break;
  }
  return Status::ok();
}

Status read_graph_ios(const flatbuffers::Vector<int32_t>* ios, const char* what, int32_t num_tensors, Budget* budget,
                      std::vector<int32_t>* out) {
  TQ_RETURN_IF_ERROR(copy_vector(ios, budget, out));
  for (size_t i = 0; i < out->size(); ++i) {
    TQ_ENSURE((*out)[i] >= 0 && (*out)[i] < num_tensors, kInvalidModel,
              "graph %s %zu is tensor %" PRId32 ", expected 0..%" PRId32, what, i, (*out)[i], num_tensors - 1);
  }
  return Status::ok();
}

Status read_master_weights(const fb::MasterWeights& m, const Graph& g, MasterWeights* out) {
  TQ_RETURN_IF_ERROR(check_range("tensor", m.tensor(), 0, int32_t(g.tensors.size()) - 1));
  TQ_RETURN_IF_ERROR(check_range("buffer", m.buffer(), 0, int32_t(g.buffers.size()) - 1));
  TQ_ENSURE(m.dtype() <= fb::MasterDType::MAX, kInvalidModel, "unknown dtype %d", int(m.dtype()));
  const Tensor& t = g.tensors[m.tensor()];
  TQ_ENSURE(t.is_constant(), kInvalidModel, "tensor %d '%.64s' is not a constant", int(m.tensor()), t.name.c_str());
  // read_tensor bounded a constant's elements by its buffer size, so this cannot overflow.
  const int64_t elements = shape_elements(t.shape);
  const int64_t expected = elements * (m.dtype() == fb::MasterDType::Float32 ? 4 : 2);
  const size_t size = g.buffers[m.buffer()].size();
  TQ_ENSURE(elements >= 0 && uint64_t(expected) == size, kInvalidModel,
            "buffer %d holds %zu bytes, expected %" PRId64 " for %s", int(m.buffer()), size, expected,
            fb::EnumNameMasterDType(m.dtype()));
  out->tensor = m.tensor();
  out->fp16 = m.dtype() == fb::MasterDType::Float16;
  out->buffer = m.buffer();
  return Status::ok();
}

Status check_bits(const char* what, const std::vector<uint8_t>& bits) {
  for (size_t i = 0; i < bits.size(); ++i) {
    TQ_ENSURE(bits[i] >= 2 && bits[i] <= 8, kInvalidModel, "%s[%zu] is %d, expected 2..8", what, i, int(bits[i]));
  }
  return Status::ok();
}

Status read_calibration(const fb::CalibrationRecord& r, Budget* budget, CalibrationRecord* c) {
  c->present = true;
  TQ_RETURN_IF_ERROR(copy_string(r.pipeline(), budget, &c->pipeline));
  TQ_RETURN_IF_ERROR(copy_vector(r.weight_bits(), budget, &c->weight_bits));
  TQ_RETURN_IF_ERROR(check_bits("weight_bits", c->weight_bits));
  TQ_RETURN_IF_ERROR(copy_vector(r.activation_bits(), budget, &c->activation_bits));
  TQ_RETURN_IF_ERROR(check_bits("activation_bits", c->activation_bits));
  c->budget_bytes = r.budget_bytes();
  c->seed = r.seed();
  c->calibration_samples = r.calibration_samples();
  TQ_RETURN_IF_ERROR(copy_string(r.dataset(), budget, &c->dataset));
  return copy_string(r.report_json(), budget, &c->report_json);
}

// Version 2 files leave out an int32 bias's scales when they are s_in * s_w[c] of the quantized
// op that reads it (Quantization.bias_scale_implied). Checked here: some Conv2D /
// DepthwiseConv2D / FullyConnected reads it as its bias and has the input and weight scales to
// derive them from. They are not materialized (no kernel reads them; bias_scales_implied() in
// graph.h says what they are).
Status check_implied_bias_scales(const fb::Model& model, const Graph& g) {
  const int32_t num_tensors = count(model.tensors());
  for (int32_t t = 0; t < num_tensors; ++t) {
    const fb::Quantization* fq = model.tensors()->Get(t)->quantization();
    if (!fq || !fq->bias_scale_implied()) continue;
    const Tensor& bias = g.tensors[t];
    bool found = false;
    for (const Operator& op : g.operators) {
      if (!op_info(op.type).weighted || op.inputs.size() < 3 || op.inputs[2] != t) continue;
      const Tensor& x = g.tensors[op.inputs[0]];
      const Tensor& w = g.tensors[op.inputs[1]];
      TQ_ENSURE(x.quant.scale.size() == 1 && !w.quant.scale.empty(), kInvalidModel,
                "tensor %d '%.64s': bias scales are implied, but %s '%.64s' has %zu input and %zu weight scales "
                "(expected 1 and one per channel)",
                int(t), bias.name.c_str(), op_name(op.type), op.name.c_str(), x.quant.scale.size(),
                w.quant.scale.size());
      const size_t n = w.quant.scale.size();
      TQ_ENSURE(shape_elements(bias.shape) == int64_t(n) && (bias.quant.axis == 0 || (bias.quant.axis == -1 && n == 1)),
                kInvalidModel, "tensor %d '%.64s': implied bias scales: %zu weight scales of %s '%.64s' for a bias of "
                "%lld values along axis %d (expected as many, along axis 0)", int(t), bias.name.c_str(), n, op_name(op.type),
                op.name.c_str(), static_cast<long long>(shape_elements(bias.shape)), int(bias.quant.axis));
      found = true;
    }
    TQ_ENSURE(found, kInvalidModel,
              "tensor %d '%.64s': bias scales are implied, but no Conv2D, DepthwiseConv2D or FullyConnected reads "
              "it as its bias", int(t), bias.name.c_str());
  }
  return Status::ok();
}

// Batch the stored shapes are checked at: what the inputs declare, else 1 (dynamic batch).
int32_t declared_batch(const Graph& g) {
  for (int32_t i : g.inputs) {
    const Tensor& t = g.tensors[i];
    if (!t.shape.empty() && t.shape[0] > 0) return t.shape[0];
  }
  return 1;
}

// Stored activation shapes must be what inference gives (a stored batch of -1 matches any).
// Tensors no operator produces have no inferred shape and are not checked.
Status check_stored_shapes(const Graph& g, const std::vector<Dims>& dims) {
  std::vector<bool> produced(g.tensors.size(), false);
  for (int32_t i : g.inputs) produced[i] = true;
  for (const Operator& op : g.operators)
    for (int32_t o : op.outputs) produced[o] = true;
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    if (!produced[i]) continue;
    const Tensor& t = g.tensors[i];
    const Dims& d = dims[i];
    bool same = int(t.shape.size()) == d.rank;
    for (int j = 0; same && j < d.rank; ++j) same = t.shape[j] == d[j] || (j == 0 && t.shape[0] == -1);
    char stored[96], inferred[96];
    TQ_ENSURE(same, kInvalidModel, "tensor %zu '%.64s': stored shape %s, but shape inference gives %s", i,
              t.name.c_str(), dims_str(t.shape, stored, sizeof(stored)), d.str(inferred, sizeof(inferred)));
  }
  return Status::ok();
}

Status parse(const uint8_t* data, size_t size, Graph* g) {
  const char* id = flatbuffers::GetBufferIdentifier(data);
  if (!flatbuffers::BufferHasIdentifier(data, fb::ModelIdentifier())) {
    char shown[5];
    for (int i = 0; i < 4; ++i) shown[i] = id[i] >= 0x20 && id[i] < 0x7f ? id[i] : '?';
    shown[4] = '\0';
    return Status::error(StatusCode::kInvalidModel, "not a tinyquant model (identifier '%s', expected '%s')", shown,
                         fb::ModelIdentifier());
  }
  // FlatBuffers records no total size, and a file cut inside its trailing alignment padding
  // still verifies. The writer pads files to a multiple of 16 and the padding is always
  // shorter than that, so every truncation fails here or in the verifier.
  TQ_ENSURE(size % kFileAlignment == 0, kInvalidModel, "%zu bytes is not a multiple of %zu: the file is truncated",
            size, kFileAlignment);
  flatbuffers::Verifier::Options options;
  options.max_depth = kMaxDepth;
  options.max_tables = flatbuffers::uoffset_t(size / kBytesPerTable + 16);
  flatbuffers::Verifier verifier(data, size, options);
  TQ_ENSURE(fb::VerifyModelBuffer(verifier), kInvalidModel,
            "FlatBuffers verification failed: the file is truncated or corrupt");

  const fb::Model& model = *fb::GetModel(data);
  TQ_ENSURE(model.version() >= 1 && model.version() <= kTqmVersion, kInvalidModel,
            "format version %" PRIu32 " is not supported (this build reads 1..%" PRIu32 ")", model.version(),
            kTqmVersion);
  Budget budget(size);
  TQ_RETURN_IF_ERROR(copy_string(model.producer(), &budget, &g->producer));

  // Buffers are used in place: `data` is 4-byte aligned (load_model) and so is every byte
  // vector (its length prefix is), which is all the kernels need; our writer aligns to 16.
  g->buffers.resize(count(model.buffers()));
  for (size_t i = 0; i < g->buffers.size(); ++i) {
    const flatbuffers::Vector<uint8_t>* v = model.buffers()->Get(flatbuffers::uoffset_t(i))->data();
    g->buffers[i].external = v ? v->data() : nullptr;
    g->buffers[i].external_size = v ? v->size() : 0;
  }

  const int32_t num_tensors = count(model.tensors());
  g->tensors.resize(num_tensors);
  for (int32_t i = 0; i < num_tensors; ++i) {
    Status s = read_tensor(*model.tensors()->Get(i), model, &budget, &g->tensors[i]);
    if (!s.is_ok()) return s.with_context("tensor %d '%.64s'", int(i), g->tensors[i].name.c_str());
  }
  g->operators.resize(count(model.operators()));
  for (size_t i = 0; i < g->operators.size(); ++i) {
    Operator& op = g->operators[i];
    Status s = read_operator(*model.operators()->Get(flatbuffers::uoffset_t(i)), num_tensors, &budget, &op);
    if (!s.is_ok()) {
      return s.with_context("operator %zu '%.64s' (%s)", i, op.name.c_str(),
                            op.type < OpType::kCount ? op_name(op.type) : "?");
    }
  }
  TQ_RETURN_IF_ERROR(check_implied_bias_scales(model, *g));
  TQ_RETURN_IF_ERROR(read_graph_ios(model.inputs(), "input", num_tensors, &budget, &g->inputs));
  TQ_RETURN_IF_ERROR(read_graph_ios(model.outputs(), "output", num_tensors, &budget, &g->outputs));

  g->metadata.resize(count(model.metadata()));
  for (size_t i = 0; i < g->metadata.size(); ++i) {
    const fb::Metadata& m = *model.metadata()->Get(flatbuffers::uoffset_t(i));
    TQ_RETURN_IF_ERROR(copy_string(m.key(), &budget, &g->metadata[i].first));
    TQ_RETURN_IF_ERROR(copy_string(m.value(), &budget, &g->metadata[i].second));
  }
  g->master_weights.resize(count(model.master_weights()));
  for (size_t i = 0; i < g->master_weights.size(); ++i) {
    Status s = read_master_weights(*model.master_weights()->Get(flatbuffers::uoffset_t(i)), *g, &g->master_weights[i]);
    if (!s.is_ok()) return s.with_context("master weights %zu", i);
  }
  if (model.calibration()) {
    Status s = read_calibration(*model.calibration(), &budget, &g->calibration);
    if (!s.is_ok()) return s.with_context("calibration record");
  }

  TQ_RETURN_IF_ERROR(validate_graph(*g));
  std::vector<Dims> dims;
  TQ_RETURN_IF_ERROR(infer_shapes(*g, declared_batch(*g), &dims));
  return check_stored_shapes(*g, dims);
}

// 16-byte-aligned heap bytes (std::vector only guarantees the platform's new alignment).
std::shared_ptr<uint8_t> allocate_aligned(size_t size) {
  constexpr std::align_val_t kAlign{16};
  uint8_t* p = new (kAlign, std::nothrow) uint8_t[size > 0 ? size : 1];
  if (!p) return nullptr;
  return std::shared_ptr<uint8_t>(p, [](uint8_t* q) { operator delete[](q, kAlign); });
}

}  // namespace

Status load_model(const uint8_t* data, size_t size, Graph* graph, const char* source_name) {
  if (!source_name) source_name = "<memory>";
  TQ_ENSURE(data && graph, kInvalidArgument, "%s: load_model needs data and a graph", source_name);
  TQ_ENSURE(size >= kMinModelBytes, kInvalidModel, "%s: %zu bytes is too small for a .tqm model",
            source_name, size);
  TQ_ENSURE(size < FLATBUFFERS_MAX_BUFFER_SIZE, kInvalidModel, "%s: %zu bytes is over the 2 GiB .tqm limit",
            source_name, size);
  Graph g;
  // FlatBuffers reads scalars in place. Misaligned bytes (a contract violation, but an easy one
  // on the host) are copied rather than read with unaligned loads some cores fault on.
  if (reinterpret_cast<uintptr_t>(data) % 4 != 0) {
    std::shared_ptr<uint8_t> copy = allocate_aligned(size);
    TQ_ENSURE(copy, kOutOfMemory, "%s: no memory to align %zu bytes", source_name, size);
    std::memcpy(copy.get(), data, size);
    data = copy.get();
    g.storage = std::move(copy);
  }
  Status s = parse(data, size, &g);
  if (!s.is_ok()) return s.with_context("%s", source_name);
  *graph = std::move(g);
  return Status::ok();
}

Status load_model_file(const char* path, Graph* graph) {
  TQ_ENSURE(path && graph, kInvalidArgument, "load_model_file needs a path and a graph");
  auto bytes = std::make_shared<std::vector<uint8_t>>();
  TQ_RETURN_IF_ERROR(read_file(path, kMaxModelFileBytes, bytes.get()));
  const size_t size = bytes->size();
  // XNNPACK may read (never write) up to 16 bytes past a tensor it is given in place; constant
  // buffers can sit at the very end of the file, so keep that much readable slack after it.
  bytes->resize(size + 16);
  std::shared_ptr<const void> storage = bytes;
  const uint8_t* data = bytes->data();
  if (reinterpret_cast<uintptr_t>(data) % 16 != 0) {  // e.g. 8-byte operator new on 32-bit ARM
    std::shared_ptr<uint8_t> aligned = allocate_aligned(size + 16);
    TQ_ENSURE(aligned, kOutOfMemory, "%s: no memory for %zu bytes", path, size);
    std::memcpy(aligned.get(), data, size);
    data = aligned.get();
    storage = std::move(aligned);
  }
  bytes.reset();
  Graph g;
  TQ_RETURN_IF_ERROR(load_model(data, size, &g, path));
  g.storage = std::move(storage);  // load_model only sets storage for misaligned data
  *graph = std::move(g);
  return Status::ok();
}

}  // namespace tinyquant
