// The reference backend's kernels, one function per (op type, kernel kind), so that a program
// linking only some of them (an OpResolver naming its model's ops) lets the linker drop the
// rest; eval() and OpResolver::all() are every one of them.
#include "common.h"
#include "common_s8.h"
#include "reference_kernels.h"
#include "tinyquant/op_info.h"
#include "tinyquant/op_resolver.h"

namespace tinyquant {
namespace reference {

namespace {
bool all_float(const TensorView* inputs, int n, const TensorView* outputs, int m) {
  for (int i = 0; i < n; ++i)
    if (inputs[i].data && inputs[i].dtype != DType::kFloat32) return false;
  for (int i = 0; i < m; ++i)
    if (outputs[i].dtype != DType::kFloat32) return false;
  return true;
}
template <OpType>
constexpr bool kNoKernel = false;
}  // namespace

// Integer kernels. Dtypes and quantization parameters were checked by infer_shapes().
template <OpType T, KernelKind K>
Status kernel(const Operator& op, const TensorView* in, int num_inputs, const TensorView* out, int num_outputs) {
  (void)num_outputs;
  const TensorView* bias = num_inputs > 2 && in[2].data ? &in[2] : nullptr;
  if constexpr (K == KernelKind::kInt8) {
    if constexpr (T == OpType::kConv2D) {
      conv2d_s8(op.conv(), op.activation, in[0], in[1], bias, out[0]);
    } else if constexpr (T == OpType::kDepthwiseConv2D) {
      depthwise_conv2d_s8(op.conv(), op.activation, in[0], in[1], bias, out[0]);
    } else if constexpr (T == OpType::kFullyConnected) {
      fully_connected_s8(op.activation, in[0], in[1], bias, out[0]);
    } else if constexpr (T == OpType::kQuantize) {
      quantize_s8(in[0], out[0]);
    } else if constexpr (T == OpType::kDequantize) {
      dequantize_s8(in[0], out[0]);
    } else if constexpr (T == OpType::kMaxPool2D) {
      max_pool2d_s8(op.pool(), op.activation, in[0], out[0]);
    } else if constexpr (T == OpType::kClamp) {
      clamp_s8(op.activation, in[0], out[0]);
    } else if constexpr (T == OpType::kAdd) {
      if (!add_s8_scales_supported(in[0].quant->scale[0], in[1].quant->scale[0], out[0].quant->scale[0]))
        return Status::error(StatusCode::kUnsupported,
                             "Add '%s': int8 input-to-output scale ratios %g and %g must lie in [2^-10, 2^8)",
                             op.name.c_str(), in[0].quant->scale[0] / out[0].quant->scale[0],
                             in[1].quant->scale[0] / out[0].quant->scale[0]);
      add_s8(op.activation, in[0], in[1], out[0]);
    } else if constexpr (T == OpType::kMul) {
      mul_s8(op.activation, in[0], in[1], out[0]);
    } else if constexpr (T == OpType::kAveragePool2D) {
      average_pool2d_s8(op.pool(), op.activation, in[0], out[0]);
    } else if constexpr (T == OpType::kGlobalAveragePool) {
      global_average_pool_s8(op.activation, in[0], out[0]);
    } else if constexpr (T == OpType::kReshape || T == OpType::kTranspose || T == OpType::kSlice ||
                         T == OpType::kResize) {
      // Codes moved (or interpolated) within the one scale / zero point.
      if (!same_quantization(in[0], out[0]))
        return Status::error(StatusCode::kUnsupported, "%s '%s': int8 input and output must share scale and zero point",
                             op_name(op.type), op.name.c_str());
      if constexpr (T == OpType::kReshape)
        copy(in[0], out[0]);
      else if constexpr (T == OpType::kTranspose)
        transpose(op.perm().data(), in[0], out[0]);
      else if constexpr (T == OpType::kSlice)
        slice(op.slice(), in[0], out[0]);
      else
        resize_s8(op.resize(), in[0], out[0]);
    } else if constexpr (T == OpType::kConcat) {
      concat_s8(op.axis, in, num_inputs, out[0]);
    } else if constexpr (T == OpType::kUnary) {
      lookup_s8(in[0], in[kTableInput], out[0]);
    } else if constexpr (T == OpType::kBatchMatMul) {
      batch_matmul_s8(in[0], in[1], out[0]);
    } else if constexpr (T == OpType::kGather) {
      return gather(op.name.c_str(), in[0], in[1], out[0]);
    } else if constexpr (T == OpType::kSoftmax) {
      if (!softmax_s8_output_supported(out[0]))
        return Status::error(StatusCode::kUnsupported,
                             "Softmax '%s': an int8 softmax output must be 8-bit with scale 1/256 and zero point -128",
                             op.name.c_str());
      softmax_s8(op.beta, in[0], out[0]);
    } else {
      static_assert(kNoKernel<T>, "no int8 reference kernel for this op type");
    }
  } else {
    if constexpr (T == OpType::kGather) {  // float32 or int32 indices, a float table
      if (in[1].dtype != DType::kFloat32 || out[0].dtype != DType::kFloat32)
        return Status::error(StatusCode::kUnsupported, "Gather '%s': expected a float32 table", op.name.c_str());
      return gather(op.name.c_str(), in[0], in[1], out[0]);
    }
    if (!op_info(T).data_movement && !all_float(in, num_inputs, out, num_outputs))
      return Status::error(StatusCode::kUnsupported,
                           "%s '%s': the reference backend runs this op on float32 only (got %s)", op_name(op.type),
                           op.name.c_str(), dtype_name(in[0].dtype));
    if constexpr (T == OpType::kConv2D) {
      conv2d_f32(op.conv(), op.activation, in[0], in[1], bias, out[0]);
    } else if constexpr (T == OpType::kDepthwiseConv2D) {
      depthwise_conv2d_f32(op.conv(), op.activation, in[0], in[1], bias, out[0]);
    } else if constexpr (T == OpType::kFullyConnected) {
      fully_connected_f32(op.activation, in[0], in[1], bias, out[0]);
    } else if constexpr (T == OpType::kAdd) {
      add_f32(op.activation, in[0], in[1], out[0]);
    } else if constexpr (T == OpType::kMul) {
      mul_f32(op.activation, in[0], in[1], out[0]);
    } else if constexpr (T == OpType::kClamp) {
      clamp_f32(op.activation.min, op.activation.max, in[0], out[0]);
    } else if constexpr (T == OpType::kMaxPool2D) {
      max_pool2d_f32(op.pool(), op.activation, in[0], out[0]);
    } else if constexpr (T == OpType::kAveragePool2D) {
      average_pool2d_f32(op.pool(), op.activation, in[0], out[0]);
    } else if constexpr (T == OpType::kGlobalAveragePool) {
      global_average_pool_f32(op.activation, in[0], out[0]);
    } else if constexpr (T == OpType::kSoftmax) {
      softmax_f32(op.beta, in[0], out[0]);
    } else if constexpr (T == OpType::kReshape) {
      copy(in[0], out[0]);
    } else if constexpr (T == OpType::kConcat) {
      concat(op.axis, in, num_inputs, out[0]);
    } else if constexpr (T == OpType::kTranspose) {
      transpose(op.perm().data(), in[0], out[0]);
    } else if constexpr (T == OpType::kUnary) {
      unary_f32(op.unary(), in[0], out[0]);
    } else if constexpr (T == OpType::kSub) {
      sub_f32(op.activation, in[0], in[1], out[0]);
    } else if constexpr (T == OpType::kDiv) {
      div_f32(op.activation, in[0], in[1], out[0]);
    } else if constexpr (T == OpType::kSlice) {
      slice(op.slice(), in[0], out[0]);
    } else if constexpr (T == OpType::kConvTranspose) {
      conv_transpose_f32(op.conv(), op.activation, in[0], in[1], in[2], out[0]);
    } else if constexpr (T == OpType::kResize) {
      resize_f32(op.resize(), in[0], out[0]);
    } else if constexpr (T == OpType::kPRelu) {
      prelu_f32(in[0], in[1], out[0]);
    } else if constexpr (T == OpType::kLayerNorm) {
      layer_norm_f32(op.epsilon, in[0], in[1], bias, out[0]);
    } else if constexpr (T == OpType::kBatchMatMul) {
      batch_matmul_f32(in[0], in[1], out[0]);
    } else if constexpr (T == OpType::kGather) {
      // returned above
    } else {
      static_assert(kNoKernel<T>, "no float reference kernel for this op type");
    }
  }
  return Status::ok();
}

// Every pair the backend has (Quantize and Dequantize are int8 kernels: conversions run_int8).
#define TQ_INT8_KERNELS(X)                                                                                        \
  X(kConv2D) X(kDepthwiseConv2D) X(kFullyConnected) X(kQuantize) X(kDequantize) X(kMaxPool2D) X(kClamp) X(kAdd) \
  X(kMul) X(kAveragePool2D) X(kGlobalAveragePool) X(kReshape) X(kTranspose) X(kSlice) X(kResize) X(kConcat)      \
  X(kUnary) X(kSoftmax) X(kBatchMatMul) X(kGather)
#define TQ_FLOAT_KERNELS(X)                                                                                     \
  X(kConv2D) X(kDepthwiseConv2D) X(kFullyConnected) X(kAdd) X(kMul) X(kClamp) X(kMaxPool2D) X(kAveragePool2D) \
  X(kGlobalAveragePool) X(kSoftmax) X(kReshape) X(kConcat) X(kTranspose) X(kUnary) X(kSub) X(kDiv) X(kSlice)  \
  X(kConvTranspose) X(kResize) X(kPRelu) X(kLayerNorm) X(kBatchMatMul) X(kGather)
#define TQ_INSTANTIATE(T, K) \
  template Status kernel<OpType::T, KernelKind::K>(const Operator&, const TensorView*, int, const TensorView*, int);
#define TQ_INSTANTIATE_INT8(T) TQ_INSTANTIATE(T, kInt8)
#define TQ_INSTANTIATE_FLOAT(T) TQ_INSTANTIATE(T, kFloat32)
TQ_INT8_KERNELS(TQ_INSTANTIATE_INT8)
TQ_FLOAT_KERNELS(TQ_INSTANTIATE_FLOAT)

// Which pairs exist, apart from the kernels themselves (asking links none of them).
namespace {
struct KernelSetTable {
  bool has[static_cast<size_t>(OpType::kCount)][2] = {};
};
constexpr KernelSetTable make_kernel_set() {
  KernelSetTable t;
#define TQ_HAS_INT8(T) t.has[static_cast<size_t>(OpType::T)][1] = true;
#define TQ_HAS_FLOAT(T) t.has[static_cast<size_t>(OpType::T)][0] = true;
  TQ_INT8_KERNELS(TQ_HAS_INT8)
  TQ_FLOAT_KERNELS(TQ_HAS_FLOAT)
  return t;
}
constexpr KernelSetTable kKernelSet = make_kernel_set();
}  // namespace

bool has_kernel(OpType type, KernelKind kind) {
  return type < OpType::kCount && kKernelSet.has[static_cast<size_t>(type)][static_cast<size_t>(kind)];
}

Status missing_kernel(const Operator& op, KernelKind kind, bool every_kernel) {
  if (op.type >= OpType::kCount)
    return Status::error(StatusCode::kInvalidModel, "operator '%s': unknown op type", op.name.c_str());
  const char* kind_name = kind == KernelKind::kInt8 ? "int8" : "float32";
  if (every_kernel || !has_kernel(op.type, kind))
    return Status::error(StatusCode::kUnsupported, "%s '%s': the reference backend has no %s kernel for this op yet",
                         op_name(op.type), op.name.c_str(), kind_name);
  return Status::error(StatusCode::kUnsupported,
                       "%s '%s': the op resolver passed to prepare() has no %s kernel for this op (add "
                       "OpResolver::add<OpType::k%s, KernelKind::k%s>())",
                       op_name(op.type), op.name.c_str(), kind_name, op_name(op.type),
                       kind == KernelKind::kInt8 ? "Int8" : "Float32");
}

}  // namespace reference

constexpr OpResolver OpResolver::make_all() {
  OpResolver r;
#define TQ_ADD_INT8(T) r.add<OpType::T, KernelKind::kInt8>();
#define TQ_ADD_FLOAT(T) r.add<OpType::T, KernelKind::kFloat32>();
  TQ_INT8_KERNELS(TQ_ADD_INT8)
  TQ_FLOAT_KERNELS(TQ_ADD_FLOAT)
  r.all_ = true;
  return r;
}

const OpResolver& OpResolver::all() {
  static constexpr OpResolver kAll = make_all();  // a table in flash, built by the compiler
  return kAll;
}

namespace reference {
Status eval(const Operator& op, const TensorView* in, int num_inputs, const TensorView* out, int num_outputs) {
  const KernelKind kind = runs_int8(op.type, in, num_inputs, out, num_outputs) ? KernelKind::kInt8 : KernelKind::kFloat32;
  const KernelFn fn = OpResolver::all().find(op.type, kind);
  if (!fn) return missing_kernel(op, kind, true);
  return fn(op, in, num_inputs, out, num_outputs);
}
}  // namespace reference

}  // namespace tinyquant
