// Cortex-M kernels: Conv2D, DepthwiseConv2D and FullyConnected on int8 activations and b-bit
// packed weights, built on the DSP extension (dsp.h: SMLAD = two 16-bit MACs per instruction,
// SXTB16 / SXTAB16 to widen four int8 at a time), in the manner of CMSIS-NN:
//   * Conv2D (groups = 1): two output pixels at a time are gathered (im2col) into scratch as
//     int16 (x - z_in) and multiplied with two output channels' weights at a time (2 x 2 tile:
//     every weight word loaded is used for two pixels, every activation word for two channels).
//     Weights are read from the model in place, one 32-bit word (4, 8 or 16 weights at 8, 4, 2
//     bits) at a time, and widened with shift / mask + SXTB16: a 4-bit weight in a byte's high
//     nibble sign-extends to 16 * w, a 2-bit one in the top two bits to 64 * w, so the sum is
//     16x (64x) the dot product, shifted back exactly at the end. The im2col column is stored in
//     the lane order that widening produces. Other widths (3, 5, 6, 7 bits), and rows that do
//     not start on a byte, are unpacked to int8 once per tile of output channels into scratch.
//   * FullyConnected: the same with one column (the input row).
//   * DepthwiseConv2D (multiplier 1): per tile of channels, the weights are unpacked once to
//     int8 in scratch, then each output pixel accumulates four channels at a time with SXTAB16
//     (which subtracts z_in while widening) and SMLABB / SMLATT.
// Integer sums are exactly the portable kernels' (only the order differs) and requantization is
// the same qmath::requantize on the same float multiplier, so outputs are bit-exact with
// reference::conv2d_s8 & co. on every target. On a CPU without the DSP extension the same code
// runs on dsp.h's C fallbacks (that is how the host tests it); the interpreter uses these kernels
// only where the extension exists unless asked (PrepareOptions::kernels).
//
// Each kernel has a *_scratch_size twin: bytes of scratch it needs for these views, or -1 when
// the kernel does not take the case (then the portable kernel runs). The interpreter asks at
// prepare() and plans the scratch into the arena, live for that one op.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyquant/graph.h"
#include "tinyquant/tensor_view.h"

namespace tinyquant {
namespace cortex_m {

// Whether this build has the DSP instructions (else the kernels run on C emulations of them).
bool native_dsp();

int64_t conv2d_s8_scratch_size(const ConvOptions& opt, const TensorView& input, const TensorView& weights,
                               const TensorView& output);
void conv2d_s8(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
               const TensorView& weights, const TensorView* bias, const TensorView& output, void* scratch);

int64_t depthwise_conv2d_s8_scratch_size(const ConvOptions& opt, const TensorView& input,
                                         const TensorView& weights, const TensorView& output);
void depthwise_conv2d_s8(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
                         const TensorView& weights, const TensorView* bias, const TensorView& output,
                         void* scratch);

int64_t fully_connected_s8_scratch_size(const TensorView& input, const TensorView& weights,
                                        const TensorView& output);
void fully_connected_s8(const FusedActivation& act, const TensorView& input, const TensorView& weights,
                        const TensorView* bias, const TensorView& output, void* scratch);

// For op (inputs / outputs bound as for reference::eval): scratch bytes when one of the kernels
// above runs it, -1 when the portable kernel does. run() executes it (scratch as sized).
int64_t scratch_size(const Operator& op, const TensorView* inputs, int num_inputs, const TensorView* outputs,
                     int num_outputs);
void run(const Operator& op, const TensorView* inputs, int num_inputs, const TensorView* outputs, void* scratch);

}  // namespace cortex_m
}  // namespace tinyquant
