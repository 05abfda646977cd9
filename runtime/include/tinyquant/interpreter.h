// tinyquant/interpreter.h — runs a Graph.
//
// Lifecycle (as XNNPACK's: create -> setup -> run):
//   Interpreter interp;
//   PrepareOptions opt; opt.batch = 64; opt.backend = Backend::kXnnpack; opt.threads = 2;
//   TQ_RETURN_IF_ERROR(interp.prepare(graph, opt));   // shapes, arena plan, kernels, weight packing
//   std::memcpy(interp.input(0).data, images, bytes);
//   TQ_RETURN_IF_ERROR(interp.invoke());               // never allocates
//   const float* logits = interp.output(0).as<float>();
//
// The Graph must outlive the Interpreter (constants are read in place). prepare() may be called
// again (e.g. with another batch size); it releases what the previous prepare() created.
// Ops a backend cannot run (e.g. a layout or option XNNPACK lacks) fall back to the reference
// kernel for that op; op_backend() tells which ran, and tq inspect prints it.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "tinyquant/graph.h"
#include "tinyquant/op_resolver.h"
#include "tinyquant/tensor_view.h"

namespace tinyquant {

enum class Backend : uint8_t { kReference = 0, kXnnpack = 1 };
const char* backend_name(Backend backend);
// Parses "reference" / "xnnpack"; returns false on anything else.
bool parse_backend(const char* text, Backend* backend);
// Whether this build has the backend (XNNPACK is optional, off on microcontrollers).
bool backend_available(Backend backend);

// Which kernels the reference backend runs for int8 Conv2D / DepthwiseConv2D / FullyConnected.
//   kAuto      the Cortex-M kernels (runtime/kernels/cortex_m: SMLAD / SXTB16) where the CPU has
//              the Armv7E-M DSP extension (Cortex-M4, M7, M33), the portable C ones elsewhere
//   kPortable  always the portable C kernels (the reference every other kernel must equal)
//   kCortexM   the Cortex-M kernels also without the extension, on C emulations of the
//              instructions (how the host tests them; slower than kPortable there)
// Both give the same outputs bit for bit; the Cortex-M kernels need scratch, planned into the arena.
enum class KernelSet : uint8_t { kAuto = 0, kPortable = 1, kCortexM = 2 };

struct PrepareOptions {
  int32_t batch = 1;                   // replaces dimension 0 of every graph input
  Backend backend = Backend::kReference;
  int32_t threads = 1;                 // XNNPACK only (pthreadpool); reference is single-threaded
  void* arena = nullptr;               // optional caller-owned arena (e.g. a static array on an MCU)
  size_t arena_size = 0;               // its size; prepare() fails with the size it needs if short
  KernelSet kernels = KernelSet::kAuto;  // reference backend's int8 weighted ops (see KernelSet)
};

class Interpreter {
 public:
  Interpreter();
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Every reference kernel available (links them all).
  Status prepare(const Graph& graph, const PrepareOptions& options);
  // Only the resolver's reference kernels (op_resolver.h): a program calling only this form links
  // only those. Fails, naming the op, when an op that runs on the reference backend has no kernel
  // there (a Cortex-M kernel or XNNPACK running it instead needs none). The resolver may go away
  // after prepare.
  Status prepare(const Graph& graph, const PrepareOptions& options, const OpResolver& resolver);
  Status invoke();
  // Runs ops [first_op, end_op) only (0 <= first_op <= end_op <= number of ops), e.g. a network's
  // prefix up to one layer, or its tail from tensors the caller wrote. The caller is responsible
  // for the tensors those ops read: after invoke_range(0, k) the outputs of ops < k whose last
  // reader is >= k are valid; a tensor whose last reader ran may already be overwritten.
  Status invoke_range(int32_t first_op, int32_t end_op);

  // Called after every op that invoke() / invoke_range() runs, with the op's index; the op's
  // inputs and outputs are valid then (tensor(i) on them), whatever the arena reuses later. This
  // is how calibration reads every intermediate activation without making it a graph output.
  // Return false to stop the run early (invoke returns ok). Pass null to remove. The callback must
  // not call prepare() or invoke() on this interpreter.
  using OpCallback = bool (*)(void* user, int32_t op, const Interpreter& interpreter);
  void set_op_callback(OpCallback callback, void* user);

  int num_inputs() const;
  int num_outputs() const;
  TensorView input(int i) const;
  TensorView output(int i) const;
  TensorView tensor(int32_t index) const;  // any tensor (activations valid after invoke)

  size_t arena_bytes() const;           // planned arena size
  // What PrepareOptions::arena_size must be for a caller arena aligned to 64 bytes: the plan
  // plus the tail XNNPACK may over-read (a less aligned arena needs up to 63 bytes more).
  size_t caller_arena_bytes() const;
  size_t min_live_bytes() const;        // planner's floor (largest live set)
  size_t backend_weight_bytes() const;  // bytes the backend copied/packed weights into
  Backend op_backend(int op) const;     // where op `op` runs after prepare()
  bool op_cortex_m(int op) const;       // op `op` runs on a Cortex-M kernel (reference backend)
  size_t op_scratch_bytes(int op) const;  // the scratch planned for op `op` (0: none)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tinyquant
