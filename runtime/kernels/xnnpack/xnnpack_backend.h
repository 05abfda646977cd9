// XNNPACK backend: each supported op becomes one (or a few) XNNPACK operators, created and set
// up once at prepare time on fixed arena pointers, then only run at invoke time.
// Weights are packed by XNNPACK at creation; packed_weight_bytes() reports what it copied (for int8:
// the weights unpacked to one byte each, the int32 bias and the float scales).
//
// Runs on XNNPACK (float32 tensors without quantization parameters): Conv2D (groups, stride,
// dilation, asymmetric padding), DepthwiseConv2D (any multiplier), FullyConnected, Add and Mul
// (NumPy broadcasting up to rank 6), Clamp, MaxPool2D, AveragePool2D, GlobalAveragePool,
// Softmax, and as 32-bit copies (float32 or int32) Reshape and Concat along any axis. Fused
// activations become XNNPACK's output_min / output_max.
// Stays on the reference kernel (prepare_op sets handled = false): Transpose (no operator in
// XNNPACK 2022-02); Softmax with beta != 1; 1x1 pooling windows; MaxPool2D with dilation and
// padding together (XNNPACK 2022-02 computes it wrong); AveragePool2D with dilation, or with
// count_include_pad and padding (XNNPACK divides by the input pixels a window covers); pools
// with a window wholly in padding; a clamp with min == max; any other dtype; empty tensors.
// Int8 activations (the integer contract of tinyquant/qmath.h; outputs equal the reference int8
// kernels' bit for bit, tests/xnnpack/*_s8_test.cc): Conv2D, DepthwiseConv2D and FullyConnected on
// QC8 convolution (weights below 8 bits unpacked to int8 for the create call), Add and Mul (QS8),
// Clamp and MaxPool2D (S8), GlobalAveragePool (QS8), Quantize / Dequantize (converts), Reshape and
// Concat as byte copies when every input shares the output's scale and zero point. They stay on
// the reference kernel: AveragePool2D and Softmax (no QS8 operator in XNNPACK 2022-02), Transpose,
// a requantizing Concat, scales XNNPACK rejects (QC8: s_in * s_w / s_out >= 256; Add: s_a / s_out
// or s_b / s_out outside [2^-10, 2^8); Mul: s_a * s_b / s_out outside [2^-16, 2^8);
// GlobalAveragePool: s_in / s_out outside [2^-8, 2^8); any scale zero or subnormal), an output
// range narrowed to one level, and the window cases of the float pools. Quantize maps NaN to qmax
// here (x86 SIMD), to qmin on the reference kernel; finite inputs agree.
//
// Memory: XNNPACK kernels may read (never write) up to XNN_EXTRA_BYTES = 16 bytes past the end
// of an input tensor; the arena should keep that much slack after its last tensor.
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
  // Bytes of weights + bias handed to XNNPACK create calls since the last reset(). XNNPACK
  // packs its own copy, at least this big (plus padding to its tile sizes).
  virtual size_t packed_weight_bytes() const = 0;
  virtual void reset() = 0;  // deletes every operator created so far
};

}  // namespace xnnpack
}  // namespace tinyquant
