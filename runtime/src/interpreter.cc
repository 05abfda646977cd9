#include "tinyquant/interpreter.h"

#include <algorithm>
#include <cstring>

#include "kernels/cortex_m/cortex_m_kernels.h"
#include "kernels/reference/reference_kernels.h"
#include "tinyquant/arena_planner.h"
#include "tinyquant/op_info.h"
#include "tinyquant/shape_inference.h"
#if TQ_WITH_XNNPACK
#include "kernels/xnnpack/xnnpack_backend.h"
#endif

namespace tinyquant {

const char* backend_name(Backend backend) {
  switch (backend) {
    case Backend::kReference: return "reference";
    case Backend::kXnnpack: return "xnnpack";
  }
  return "?";
}

bool parse_backend(const char* text, Backend* backend) {
  if (std::strcmp(text, "reference") == 0) {
    *backend = Backend::kReference;
    return true;
  }
  if (std::strcmp(text, "xnnpack") == 0) {
    *backend = Backend::kXnnpack;
    return true;
  }
  return false;
}

bool backend_available(Backend backend) {
#if TQ_WITH_XNNPACK
  (void)backend;
  return true;
#else
  return backend == Backend::kReference;
#endif
}

namespace {
constexpr size_t kArenaAlignment = 64;  // cache line; also what SIMD kernels like
// XNNPACK kernels may read (never write) up to 16 bytes past the end of an input tensor.
constexpr size_t kArenaTailSlack = 16;
}

struct Interpreter::Impl {
  const Graph* graph = nullptr;
  // A view per activation tensor (slot[t] >= 0; data bound once the arena is planned). A
  // constant's view is made when asked (view()): it is its shape, dtype, quantization and bytes
  // in the graph, and a stored copy was 40 bytes per constant on a microcontroller.
  std::vector<TensorView> views;
  std::vector<int32_t> slot;  // per graph tensor: its index in `views`, -1 for a constant
  // The running op's input views then output views, gathered from `views` before each reference
  // kernel call (sized at prepare to the largest op, so invoke() never allocates). One op's worth
  // instead of every op's: on a microcontroller a per-op copy was 40 bytes per op input / output.
  std::vector<TensorView> io;
  std::vector<Backend> op_backend;
  std::vector<int> op_handle;
  std::vector<KernelFn> op_kernel;  // per op: its reference kernel (null: none; invoke says so)
  std::vector<int64_t> op_scratch;  // per op: scratch bytes of its Cortex-M kernel, -1: portable kernel
  std::vector<uint8_t*> op_scratch_ptr;
  std::unique_ptr<uint8_t[]> owned_arena;
  uint8_t* arena = nullptr;
  ArenaPlan plan;
#if TQ_WITH_XNNPACK
  std::unique_ptr<xnnpack::Runner> xnn;
#endif
  bool prepared = false;
  OpCallback callback = nullptr;
  void* callback_user = nullptr;

  // Fills `io` with op's input views (an absent optional input: an empty view) then its outputs.
  const TensorView* gather(const Operator& op) {
    TensorView* v = io.data();
    for (int32_t t : op.inputs) *v++ = t >= 0 ? view(t) : TensorView();
    for (int32_t t : op.outputs) *v++ = view(t);
    return io.data();
  }
  TensorView view(int32_t t) const {
    if (slot[t] >= 0) return views[slot[t]];
    const Tensor& tensor = graph->tensors[t];
    TensorView v;
    v.dtype = tensor.dtype;
    v.dims = Dims::of(tensor.shape);
    v.quant = &tensor.quant;
    v.data = const_cast<uint8_t*>(graph->buffers[tensor.buffer].data());
    return v;
  }
};

Interpreter::Interpreter() : impl_(new Impl) {}
Interpreter::~Interpreter() = default;

Status Interpreter::prepare(const Graph& graph, const PrepareOptions& options) {
  return prepare(graph, options, OpResolver::all());
}

Status Interpreter::prepare(const Graph& graph, const PrepareOptions& options, const OpResolver& resolver) {
  Impl& m = *impl_;
  m.prepared = false;
#if TQ_WITH_XNNPACK
  if (m.xnn) m.xnn->reset();
#endif
  TQ_ENSURE(options.batch >= 1, kInvalidArgument, "batch size %d must be >= 1", options.batch);
  TQ_ENSURE(options.threads >= 1 && options.threads <= 256, kInvalidArgument, "thread count %d must be 1..256",
            options.threads);
  TQ_ENSURE(backend_available(options.backend), kUnsupported,
            "backend '%s' is not compiled into this build (configure with -DTQ_WITH_XNNPACK=ON)",
            backend_name(options.backend));
  m.graph = &graph;

  // Every activation's view (data pointers bound once the arena is planned). The
  // views keep the inferred shapes, so the shape list goes before planning: on a microcontroller
  // prepare()'s temporaries set the peak heap.
  const size_t num_tensors = graph.tensors.size();
  {
    std::vector<Dims> dims;
    TQ_RETURN_IF_ERROR(infer_shapes(graph, options.batch, &dims));
    size_t activations = 0;
    for (const Tensor& tensor : graph.tensors) activations += !tensor.is_constant();
    m.views.assign(activations, TensorView());
    m.slot.assign(num_tensors, -1);
    int32_t next = 0;
    for (size_t t = 0; t < num_tensors; ++t) {
      const Tensor& tensor = graph.tensors[t];
      if (tensor.is_constant()) continue;
      m.slot[t] = next;
      TensorView& v = m.views[next++];
      v.dtype = tensor.dtype;
      v.dims = dims[t];
      v.quant = &tensor.quant;
    }
  }

  // Lifetimes of every activation, then one arena for all of them.
  const int32_t num_ops = static_cast<int32_t>(graph.operators.size());
  const int32_t last_op = num_ops > 0 ? num_ops - 1 : 0;
  std::vector<ArenaRequest> requests;
  std::vector<int32_t> request_tensor;
  {
    std::vector<int32_t> first(num_tensors, -1), last(num_tensors, -1);
    for (int32_t in : graph.inputs) first[in] = last[in] = 0;
    for (int32_t i = 0; i < num_ops; ++i) {
      const Operator& op = graph.operators[i];
      for (int32_t t : op.inputs)
        if (t >= 0 && !graph.tensors[t].is_constant()) last[t] = i;
      for (int32_t t : op.outputs) first[t] = last[t] = i;
    }
    for (int32_t out : graph.outputs) last[out] = last_op;
    size_t activations = 0;
    for (size_t t = 0; t < num_tensors; ++t) activations += !graph.tensors[t].is_constant() && first[t] >= 0;
    requests.reserve(activations + static_cast<size_t>(num_ops));  // + one scratch request per op at most
    request_tensor.reserve(requests.capacity());
    for (size_t t = 0; t < num_tensors; ++t) {
      if (graph.tensors[t].is_constant() || first[t] < 0) continue;
      ArenaRequest r;
      r.bytes = static_cast<size_t>(m.views[m.slot[t]].dims.elements()) * dtype_size(graph.tensors[t].dtype);
      r.first_op = first[t];
      r.last_op = last[t];
      requests.push_back(r);
      request_tensor.push_back(static_cast<int32_t>(t));
    }
  }

  // The Cortex-M kernels' scratch: one request per op, live during that op only (so it lands in
  // a gap between activations where there is one). Sized from the views (shapes, dtypes,
  // quantization and constants are known already).
  m.op_scratch.assign(num_ops, -1);
  const bool cortex_m = options.backend == Backend::kReference &&
                        (options.kernels == KernelSet::kCortexM ||
                         (options.kernels == KernelSet::kAuto && cortex_m::native_dsp()));
  const size_t activation_requests = requests.size();
  size_t max_io = 0;
  for (const Operator& op : graph.operators) max_io = std::max(max_io, op.inputs.size() + op.outputs.size());
  m.io.assign(max_io, TensorView());
  if (cortex_m) {
    for (int32_t i = 0; i < num_ops; ++i) {
      const Operator& op = graph.operators[i];
      const TensorView* v = m.gather(op);
      const int n_in = static_cast<int>(op.inputs.size());
      const int64_t bytes = cortex_m::scratch_size(op, v, n_in, v + n_in, static_cast<int>(op.outputs.size()));
      if (bytes < 0) continue;
      m.op_scratch[i] = bytes;
      ArenaRequest r;
      r.bytes = static_cast<size_t>(bytes > 0 ? bytes : 1);
      r.first_op = r.last_op = i;
      requests.push_back(r);
      request_tensor.push_back(-1 - i);
    }
  }
  TQ_RETURN_IF_ERROR(plan_arena(requests, kArenaAlignment, &m.plan));

  if (options.arena) {
    const uintptr_t base = reinterpret_cast<uintptr_t>(options.arena);
    const size_t slack = (kArenaAlignment - base % kArenaAlignment) % kArenaAlignment;
    TQ_ENSURE(options.arena_size >= m.plan.total_bytes + slack + kArenaTailSlack, kOutOfMemory,
              "the caller's arena has %zu bytes; this model at batch %d needs %zu (+%zu for alignment and slack)",
              options.arena_size, options.batch, m.plan.total_bytes, slack + kArenaTailSlack);
    m.owned_arena.reset();
    m.arena = static_cast<uint8_t*>(options.arena) + slack;
  } else {
    m.owned_arena.reset(new uint8_t[m.plan.total_bytes + kArenaAlignment + kArenaTailSlack]);
    const uintptr_t base = reinterpret_cast<uintptr_t>(m.owned_arena.get());
    m.arena = m.owned_arena.get() + (kArenaAlignment - base % kArenaAlignment) % kArenaAlignment;
  }

  for (size_t r = 0; r < activation_requests; ++r)
    m.views[m.slot[request_tensor[r]]].data = m.arena + m.plan.offsets[r];
  m.op_scratch_ptr.assign(num_ops, nullptr);
  for (size_t r = activation_requests; r < requests.size(); ++r)
    m.op_scratch_ptr[-1 - request_tensor[r]] = m.arena + m.plan.offsets[r];

  // Create backend operators on the now-fixed pointers.
  m.op_backend.assign(num_ops, Backend::kReference);
  m.op_handle.assign(num_ops, -1);
#if TQ_WITH_XNNPACK
  if (options.backend == Backend::kXnnpack) {
    TQ_RETURN_IF_ERROR(xnnpack::Runner::create(options.threads, &m.xnn));
    for (int32_t i = 0; i < num_ops; ++i) {
      const Operator& op = graph.operators[i];
      const TensorView* v = m.gather(op);
      const int n_in = static_cast<int>(op.inputs.size());
      bool handled = false;
      Status s = m.xnn->prepare_op(op, v, n_in, v + n_in, static_cast<int>(op.outputs.size()), &handled,
                                   &m.op_handle[i]);
      if (!s.is_ok()) return s.with_context("XNNPACK backend");
      if (handled) m.op_backend[i] = Backend::kXnnpack;
    }
  }
#endif
  // Every op left on the reference backend gets its kernel from the resolver. One the backend
  // lacks altogether fails at invoke, as it always has; one the caller's resolver left out fails
  // here, unless a Cortex-M kernel runs the op.
  const bool every_kernel = resolver.is_all();
  m.op_kernel.assign(num_ops, nullptr);
  for (int32_t i = 0; i < num_ops; ++i) {
    if (m.op_backend[i] != Backend::kReference) continue;
    const Operator& op = graph.operators[i];
    const TensorView* v = m.gather(op);
    const int n_in = static_cast<int>(op.inputs.size());
    const KernelKind kind = runs_int8(op.type, v, n_in, v + n_in, static_cast<int>(op.outputs.size()))
                                ? KernelKind::kInt8
                                : KernelKind::kFloat32;
    m.op_kernel[i] = resolver.find(op.type, kind);
    if (!m.op_kernel[i] && !every_kernel && m.op_scratch[i] < 0 && reference::has_kernel(op.type, kind))
      return reference::missing_kernel(op, kind, false);
  }
  m.prepared = true;
  return Status::ok();
}

Status Interpreter::invoke() {
  TQ_ENSURE(impl_->prepared, kInvalidArgument, "invoke() before a successful prepare()");
  return invoke_range(0, static_cast<int32_t>(impl_->graph->operators.size()));
}

void Interpreter::set_op_callback(OpCallback callback, void* user) {
  impl_->callback = callback;
  impl_->callback_user = user;
}

Status Interpreter::invoke_range(int32_t first_op, int32_t end_op) {
  Impl& m = *impl_;
  TQ_ENSURE(m.prepared, kInvalidArgument, "invoke() before a successful prepare()");
  const Graph& g = *m.graph;
  const int32_t num_ops = static_cast<int32_t>(g.operators.size());
  TQ_ENSURE(first_op >= 0 && first_op <= end_op && end_op <= num_ops, kInvalidArgument,
            "op range [%d, %d) is not inside the graph's %d ops", first_op, end_op, num_ops);
  for (int32_t i = first_op; i < end_op; ++i) {
    const Operator& op = g.operators[i];
    if (m.op_backend[i] == Backend::kXnnpack) {
#if TQ_WITH_XNNPACK
      TQ_RETURN_IF_ERROR(m.xnn->run(m.op_handle[i]));
#endif
    } else {
      const TensorView* v = m.gather(op);
      const int n_in = static_cast<int>(op.inputs.size());
      const int n_out = static_cast<int>(op.outputs.size());
      if (m.op_scratch[i] >= 0)
        cortex_m::run(op, v, n_in, v + n_in, m.op_scratch_ptr[i]);
      else if (m.op_kernel[i])
        TQ_RETURN_IF_ERROR(m.op_kernel[i](op, v, n_in, v + n_in, n_out));
      else
        return reference::missing_kernel(
            op, runs_int8(op.type, v, n_in, v + n_in, n_out) ? KernelKind::kInt8 : KernelKind::kFloat32, true);
    }
    if (m.callback && !m.callback(m.callback_user, i, *this)) break;
  }
  return Status::ok();
}

int Interpreter::num_inputs() const { return impl_->graph ? static_cast<int>(impl_->graph->inputs.size()) : 0; }
int Interpreter::num_outputs() const { return impl_->graph ? static_cast<int>(impl_->graph->outputs.size()) : 0; }
TensorView Interpreter::input(int i) const { return impl_->view(impl_->graph->inputs[i]); }
TensorView Interpreter::output(int i) const { return impl_->view(impl_->graph->outputs[i]); }
TensorView Interpreter::tensor(int32_t index) const { return impl_->view(index); }
size_t Interpreter::arena_bytes() const { return impl_->plan.total_bytes; }
size_t Interpreter::caller_arena_bytes() const { return impl_->plan.total_bytes + kArenaTailSlack; }
size_t Interpreter::min_live_bytes() const { return impl_->plan.min_live_bytes; }
size_t Interpreter::backend_weight_bytes() const {
#if TQ_WITH_XNNPACK
  return impl_->xnn && impl_->prepared ? impl_->xnn->packed_weight_bytes() : 0;
#else
  return 0;
#endif
}
Backend Interpreter::op_backend(int op) const { return impl_->op_backend[op]; }
bool Interpreter::op_cortex_m(int op) const {
  return impl_->op_backend[op] == Backend::kReference && impl_->op_scratch[op] >= 0;
}
size_t Interpreter::op_scratch_bytes(int op) const {
  return op_cortex_m(op) ? static_cast<size_t>(impl_->op_scratch[op]) : 0;
}

}  // namespace tinyquant
