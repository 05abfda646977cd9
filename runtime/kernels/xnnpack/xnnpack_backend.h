// XNNPACK backend: each supported op becomes one (or a few) XNNPACK operators, created and set
// up once at prepare time on fixed arena pointers, then only run at invoke time.
// Weights are packed by XNNPACK at creation; packed_weight_bytes() reports what it copied.
#pragma once

#include <cstddef>
#include <memory>

#include "tinyquant/graph.h"
#include "tinyquant/tensor_view.h"

namespace tinyquant {
namespace xnnpack {

class Runner {
 public:
  // threads <= 1: run on the calling thread; otherwise a pthreadpool of that many threads.
  static Status create(int32_t threads, std::unique_ptr<Runner>* out);
  virtual ~Runner() = default;

  // Creates and sets up the XNNPACK operator(s) for `op` on these bound views. If XNNPACK has no
  // operator for this op / option combination, sets *handled = false and returns OK: the caller
  // falls back to the reference kernel. On success *handle identifies the op for run().
  virtual Status prepare_op(const Operator& op, const TensorView* inputs, int num_inputs,
                            const TensorView* outputs, int num_outputs, bool* handled, int* handle) = 0;
  virtual Status run(int handle) = 0;
  virtual size_t packed_weight_bytes() const = 0;
  virtual void reset() = 0;  // deletes every operator created so far
};

}  // namespace xnnpack
}  // namespace tinyquant
