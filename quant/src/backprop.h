// Internal to quant/: reverse-mode gradients through a whole float graph — the fake-quant twin of
// a quantized model — for bias tuning (ALGORITHMS §5). The forward pass is the interpreter's
// (reference kernels), every activation of the batch kept; the backward pass is here, one
// function per op type:
//
//   Conv2D / DepthwiseConv2D / FullyConnected  dz = dy where lo < y < hi (the fused clamp), then
//                     dx, db from layer_backward (the weights are constants: no dW)
//   Add, Mul          dz masked as above; each non-constant input gets dz (Add) or dz · other
//                     (Mul), an operand broadcast over the trailing dims summed back
//   MaxPool2D         dy to the window's first maximum; AveragePool2D and GlobalAveragePool
//                     dy / count spread over the window
//   Reshape           identity; Transpose the inverse permutation; Concat split along its axis
//   Clamp             dy where lo < x < hi; Softmax dx = y ⊙ (dy − Σ dy ⊙ y)
//   Quantize → Dequantize  straight-through: dx = dy where the code was not clipped
//                     (qmin ≤ x / s + z ≤ qmax), else 0
//
// Any other op is an error naming it. Each backward is checked against finite differences
// (tests/quant/backprop_test.cc).
#pragma once

#include <cstdint>
#include <vector>

#include "tinyquant/graph.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/layer_kernels.h"
#include "tinyquant/shape_inference.h"
#include "tinyquant/status.h"

namespace tinyquant {
namespace quant {

class Backprop {
 public:
  // Shapes at `batch` and the check that every op has a backward. The graph must outlive this.
  Status prepare(const Graph& graph, int32_t batch);
  // Forward over one batch: `input` holds batch × (input 0's per-sample values).
  Status forward(const float* input);
  // From d loss / d output 0 (its size), gradients of every activation and of every weighted
  // op's constant bias; call after forward.
  Status backward(const float* d_output);

  const std::vector<float>& value(int32_t tensor) const { return value_[tensor]; }  // int8: as codes
  const std::vector<float>& grad(int32_t tensor) const { return grad_[tensor]; }
  int32_t batch() const { return batch_; }

 private:
  Status backward_op(const Operator& op);

  const Graph* g_ = nullptr;
  int32_t batch_ = 0;
  std::vector<Dims> dims_;
  std::vector<std::vector<float>> value_, grad_;
  LayerScratch scratch_;  // the weighted ops' backward buffers, reused across ops and steps
  Interpreter interp_;
};

}  // namespace quant
}  // namespace tinyquant
