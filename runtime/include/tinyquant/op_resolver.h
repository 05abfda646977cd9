// tinyquant/op_resolver.h — which reference kernels a program links (TFLite Micro's
// MicroMutableOpResolver, for the same reason: flash).
//
// Interpreter::prepare(graph, options) runs any op on every kernel the reference backend has,
// so it links all of them: float convolutions, resize, layer norm, the float unary functions
// and the libm behind them. A microcontroller program that knows its model passes an
// OpResolver naming only the kernels that model runs, and the linker's section GC drops the rest:
//   OpResolver resolver;
//   resolver.add<OpType::kConv2D, KernelKind::kInt8>().add<OpType::kQuantize, KernelKind::kInt8>();
//   interp.prepare(graph, options, resolver);   // fails at prepare, naming the op, if one is missing
// `tq embed` writes that list for the embedded model (tq_embedded::register_kernels).
//
// The Cortex-M kernels (KernelSet) are chosen apart from the resolver; the portable int8 kernel of
// a weighted op is still its fallback (an op's shape or bits the Cortex-M kernel does not take).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyquant/graph.h"
#include "tinyquant/status.h"
#include "tinyquant/tensor_view.h"

namespace tinyquant {

// Which of an op type's kernels: kInt8 when runs_int8() says so (int8 activations, or a
// Quantize / Dequantize), else kFloat32 (data-movement ops' kFloat32 kernel moves any dtype).
enum class KernelKind : uint8_t { kFloat32 = 0, kInt8 = 1 };

// A reference kernel: runs `op` on views bound to memory (an absent optional input's data is
// null). Returns kUnsupported for parameters this kernel does not take (checked at run time).
using KernelFn = Status (*)(const Operator& op, const TensorView* inputs, int num_inputs, const TensorView* outputs,
                            int num_outputs);

namespace reference {
// Defined (explicitly instantiated) in runtime/kernels/reference/eval.cc for every pair the
// backend has: has_kernel() below tells which; another pair does not link.
template <OpType Type, KernelKind Kind>
Status kernel(const Operator& op, const TensorView* inputs, int num_inputs, const TensorView* outputs,
              int num_outputs);
// Whether the reference backend has a kernel for this pair.
bool has_kernel(OpType type, KernelKind kind);
}  // namespace reference

class OpResolver {
 public:
  template <OpType Type, KernelKind Kind>
  constexpr OpResolver& add() {
    static_assert(Type < OpType::kCount, "not an op type");
    table_[static_cast<size_t>(Type)][static_cast<size_t>(Kind)] = &reference::kernel<Type, Kind>;
    return *this;
  }
  // The kernel for this pair, or null when it was not added.
  constexpr KernelFn find(OpType type, KernelKind kind) const {
    return type < OpType::kCount ? table_[static_cast<size_t>(type)][static_cast<size_t>(kind)] : nullptr;
  }
  // Every kernel the reference backend has (what prepare() without a resolver uses; naming it
  // links them all).
  static const OpResolver& all();
  bool is_all() const { return all_; }  // this is all() (tells without linking all())

 private:
  static constexpr OpResolver make_all();
  KernelFn table_[static_cast<size_t>(OpType::kCount)][2] = {};  // [type][kind]
  bool all_ = false;
};

}  // namespace tinyquant
