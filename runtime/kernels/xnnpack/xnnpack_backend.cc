#include "kernels/xnnpack/xnnpack_backend.h"

#include <cmath>
#include <string>
#include <vector>

#include "kernels/reference/common_s8.h"
#include "kernels/xnnpack/xnnpack_internal.h"
#include "tinyquant/op_info.h"
#include "tinyquant/qmath.h"

namespace tinyquant {
namespace xnnpack {

const char* xnn_status_name(xnn_status status) {
  switch (status) {
    case xnn_status_success: return "success";
    case xnn_status_uninitialized: return "uninitialized";
    case xnn_status_invalid_parameter: return "invalid parameter";
    case xnn_status_invalid_state: return "invalid state";
    case xnn_status_unsupported_parameter: return "unsupported parameter";
    case xnn_status_unsupported_hardware: return "unsupported hardware";
    case xnn_status_out_of_memory: return "out of memory";
  }
  return "unknown status";
}

namespace {

StatusCode status_code(xnn_status status) {
  switch (status) {
    case xnn_status_out_of_memory: return StatusCode::kOutOfMemory;
    case xnn_status_unsupported_hardware: return StatusCode::kUnsupported;
    default: return StatusCode::kInternal;
  }
}

}  // namespace

Status OpContext::check(xnn_status status, const char* call) const {
  if (status == xnn_status_success) return Status::ok();
  return Status::error(status_code(status), "XNNPACK: %s '%s': %s failed: %s (%d)", op_name(op.type), op.name.c_str(),
                       call, xnn_status_name(status), static_cast<int>(status));
}

Status OpContext::record(xnn_status status, const xnn_operator_t* created, const char* call) {
  if (*created != nullptr) operators->push_back(*created);
  return check(status, call);
}

Status OpContext::shape_mismatch(const char* what) const {
  char buf[96];
  return Status::error(StatusCode::kInvalidArgument, "XNNPACK: %s '%s': %s (output %s)", op_name(op.type),
                       op.name.c_str(), what, output.dims.str(buf, sizeof(buf)));
}

bool is_plain_f32(const TensorView& view) {
  return view.dtype == DType::kFloat32 && (view.quant == nullptr || view.quant->scale.empty());
}

bool clamp_supported(float min, float max) { return min < max; }  // false for NaN too

bool is_s8(const TensorView& view) {
  return view.dtype == DType::kInt8 && view.quant != nullptr && view.quant->scale.size() == 1;
}

bool s8_output_bounds(const FusedActivation& act, const TensorView& output, int8_t* lo, int8_t* hi) {
  int32_t l, h;
  qmath::activation_bounds(act, output.quant->bits, output.quant->scale[0], reference::zero_point(output), &l, &h);
  *lo = static_cast<int8_t>(l);
  *hi = static_cast<int8_t>(h);
  return l < h;
}

bool scale_ok(float scale) { return scale > 0.0f && std::isnormal(scale); }

bool every_window_reaches_input(int32_t in, int32_t kernel, int32_t stride, int32_t dilation, int32_t pad_before,
                                int32_t out) {
  for (int64_t o = 0; o < out; ++o) {
    const int64_t start = o * stride - pad_before;
    bool reaches = false;
    for (int64_t k = 0; k < kernel && !reaches; ++k) {
      const int64_t i = start + k * dilation;
      reaches = i >= 0 && i < in;
    }
    if (!reaches) return false;
  }
  return true;
}

namespace {

// One prepared tinyquant op: operators_[begin, end) run in order. begin == end is a no-op
// (e.g. a Reshape whose output already aliases its input).
struct Entry {
  size_t begin = 0, end = 0;
  OpType type = OpType::kCount;
  std::string name;
};

bool has_empty_view(const TensorView* inputs, int num_inputs, const TensorView* outputs, int num_outputs) {
  for (int i = 0; i < num_inputs; ++i)
    if (inputs[i].data != nullptr && inputs[i].elements() <= 0) return true;
  for (int i = 0; i < num_outputs; ++i)
    if (outputs[i].elements() <= 0) return true;
  return false;
}

// The one switch: each op to its float or int8 prepare function.
Status dispatch(OpContext* ctx, bool* handled) {
  const bool s8 = runs_int8(ctx->op.type, ctx->inputs, ctx->num_inputs, &ctx->output, 1);
  switch (ctx->op.type) {
    case OpType::kConv2D:
    case OpType::kDepthwiseConv2D: return s8 ? prepare_conv2d_s8(ctx, handled) : prepare_conv2d(ctx, handled);
    case OpType::kFullyConnected:
      return s8 ? prepare_fully_connected_s8(ctx, handled) : prepare_fully_connected(ctx, handled);
    case OpType::kAdd:
    case OpType::kMul: return s8 ? prepare_binary_s8(ctx, handled) : prepare_binary(ctx, handled);
    case OpType::kClamp: return s8 ? prepare_clamp_s8(ctx, handled) : prepare_clamp(ctx, handled);
    case OpType::kMaxPool2D: return s8 ? prepare_max_pool2d_s8(ctx, handled) : prepare_max_pool2d(ctx, handled);
    case OpType::kAveragePool2D:  // XNNPACK 2022-02 has no QS8 average pooling
      return s8 ? Status::ok() : prepare_average_pool2d(ctx, handled);
    case OpType::kGlobalAveragePool:
      return s8 ? prepare_global_average_pool_s8(ctx, handled) : prepare_global_average_pool(ctx, handled);
    case OpType::kSoftmax:  // int8: only a QU8 softmax, which would need the input shifted by 128
      return s8 ? Status::ok() : prepare_softmax(ctx, handled);
    case OpType::kReshape: return prepare_reshape(ctx, handled);  // 32-bit or int8 copies
    case OpType::kConcat: return prepare_concat(ctx, handled);
    case OpType::kQuantize: return prepare_quantize(ctx, handled);
    case OpType::kDequantize: return prepare_dequantize(ctx, handled);
    case OpType::kSub:
    case OpType::kDiv: return s8 ? Status::ok() : prepare_binary(ctx, handled);
    case OpType::kUnary:  // int8: the reference kernel's 256-entry lookup
      return s8 ? Status::ok() : prepare_unary(ctx, handled);
    case OpType::kResize: return s8 ? Status::ok() : prepare_resize(ctx, handled);
    case OpType::kPRelu: return s8 ? Status::ok() : prepare_prelu(ctx, handled);
    case OpType::kConvTranspose: return s8 ? Status::ok() : prepare_conv_transpose(ctx, handled);
    case OpType::kSlice:      // no slice operator in XNNPACK 2022-02: the reference's strided copies
    case OpType::kLayerNorm:  // no layer norm operator
    case OpType::kTranspose:  // XNNPACK 2022-02 has no transpose operator
    case OpType::kGather:       // nor a gather
    case OpType::kBatchMatMul:  // nor a product of two activations (the reference kernels, both dtypes)
    case OpType::kCount: break;
  }
  return Status::ok();
}

class XnnpackRunner final : public Runner {
 public:
  explicit XnnpackRunner(pthreadpool_t threadpool) : threadpool_(threadpool) {}
  ~XnnpackRunner() override {
    reset();
    if (threadpool_ != nullptr) pthreadpool_destroy(threadpool_);
  }
  XnnpackRunner(const XnnpackRunner&) = delete;
  XnnpackRunner& operator=(const XnnpackRunner&) = delete;

  Status prepare_op(const Operator& op, const TensorView* inputs, int num_inputs, const TensorView* outputs,
                    int num_outputs, bool* handled, int* handle) override {
    *handled = false;
    *handle = -1;
    // Every op here has one output; empty tensors stay on the reference kernel because XNNPACK
    // rejects zero channels.
    if (num_outputs != 1 || num_inputs < 1 || has_empty_view(inputs, num_inputs, outputs, num_outputs))
      return Status::ok();
    const size_t first = operators_.size();
    OpContext ctx{op, inputs, num_inputs, outputs[0], threadpool_, &operators_};
    Status status = dispatch(&ctx, handled);
    if (!status.is_ok() || !*handled) {
      // The one cleanup path: whatever this op created so far goes.
      for (size_t i = first; i < operators_.size(); ++i) xnn_delete_operator(operators_[i]);
      operators_.resize(first);
      *handled = false;
      return status;
    }
    entries_.push_back(Entry{first, operators_.size(), op.type, op.name});
    weight_bytes_ += ctx.weight_bytes;
    *handle = static_cast<int>(entries_.size()) - 1;
    return Status::ok();
  }

  Status run(int handle) override {
    TQ_ENSURE(handle >= 0 && handle < static_cast<int>(entries_.size()), kInvalidArgument,
              "XNNPACK: no prepared op with handle %d (%zu prepared)", handle, entries_.size());
    const Entry& entry = entries_[handle];
    for (size_t i = entry.begin; i < entry.end; ++i) {
      const xnn_status status = xnn_run_operator(operators_[i], threadpool_);
      if (status != xnn_status_success)
        return Status::error(status_code(status), "XNNPACK: %s '%s': xnn_run_operator failed: %s (%d)",
                             op_name(entry.type), entry.name.c_str(), xnn_status_name(status),
                             static_cast<int>(status));
    }
    return Status::ok();
  }

  size_t packed_weight_bytes() const override { return weight_bytes_; }

  void reset() override {
    for (xnn_operator_t op : operators_) xnn_delete_operator(op);
    operators_.clear();
    entries_.clear();
    weight_bytes_ = 0;
  }

 private:
  pthreadpool_t threadpool_;
  std::vector<xnn_operator_t> operators_;
  std::vector<Entry> entries_;
  size_t weight_bytes_ = 0;
};

}  // namespace

Status Runner::create(int32_t threads, std::unique_ptr<Runner>* out) {
  // xnn_initialize is idempotent but not documented as thread-safe; a function-local static
  // runs it exactly once even when several interpreters prepare concurrently.
  static const xnn_status init_status = xnn_initialize(nullptr);
  if (init_status != xnn_status_success)
    return Status::error(status_code(init_status), "XNNPACK: xnn_initialize failed: %s (%d)",
                         xnn_status_name(init_status), static_cast<int>(init_status));
  pthreadpool_t threadpool = nullptr;
  if (threads > 1) {
    threadpool = pthreadpool_create(static_cast<size_t>(threads));
    TQ_ENSURE(threadpool != nullptr, kOutOfMemory, "XNNPACK: cannot create a pool of %d threads", threads);
  }
  out->reset(new XnnpackRunner(threadpool));
  return Status::ok();
}

}  // namespace xnnpack
}  // namespace tinyquant
