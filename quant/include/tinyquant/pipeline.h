// tinyquant/pipeline.h — float graph -> quantized graph: round-to-nearest ("rtn") after range
// calibration (ALGORITHMS.md §1), and the fake-quant ("simulated") twin of any quantized graph.
//
//   quant::CalibrationData calib;            // samples x (model input without batch), float
//   calib.samples = n; calib.values = ...; calib.dataset = "fashion-mnist:train";
//   quant::RtnOptions opt; opt.weight_bits = 4; opt.activation_bits = 8;
//   Graph q, sim; quant::RtnReport report;
//   TQ_RETURN_IF_ERROR(quant::quantize_graph_rtn(float_graph, calib, opt, &q, &sim, &report));
//
// What the integer graph looks like (every kernel keeps qmath.h's arithmetic):
//   * Conv2D / DepthwiseConv2D / FullyConnected with constant float weights run int8: weights
//     symmetric per output channel at weight_bits (bit-packed below 8), int32 bias at scale
//     s_in * s_w[c], int8 output; the fused activation stays in Operator::activation (the kernels
//     fold it into the output clamp).
//   * MaxPool2D / Reshape / Transpose / Clamp / Slice / Resize run int8 when their input is int8
//     and keep its quantization; Unary runs int8 through a 256-entry table built from its
//     input's and output's params. Concat / Add / Mul / AveragePool2D / GlobalAveragePool run int8
//     when an input is int8 (float inputs are quantized first); an Add or Mul may have one float
//     constant operand (an unfolded batch norm, a bias added in NHWC space), quantized per tensor
//     at 8 bits over its own range; an Add whose scale ratios the int8 kernel cannot take stays
//     float. Ops without an int8 kernel (Sub, Div, PRelu, LayerNorm, ConvTranspose) stay float.
//   * Gather from a constant float table (an embedding) runs int8: the table per tensor,
//     asymmetric over [min(t, 0), max(t, 0)] at the layer's weight bits (8 under mixed precision,
//     whose integer program sizes the weighted layers only), bit-packed; its output keeps the
//     table's params; the indices stay the float graph input. BatchMatMul (two activations, e.g.
//     attention) runs int8 when an input is int8, both inputs per tensor. A Softmax whose every
//     reader is a BatchMatMul (attention weights) runs the int8 softmax when its input is int8,
//     output fixed at 8 bits, scale 1/256, zero point -128.
//   * Every other op (other Softmax, Transpose/Clamp on float data, weighted ops with non-constant weights) stays
//     float, with Dequantize before it and Quantize after it as needed.
//   * Graph inputs and outputs stay float: Quantize where float data enters the int8 region
//     (e.g. after the input's NCHW->NHWC Reshape), Dequantize where it leaves. An int8 tensor that
//     is also a graph output is renamed "<name>:q" and the Dequantize writes "<name>".
//   * Every int8 activation has Tensor::quant = {scale, zero_point, axis -1, activation_bits},
//     chosen per tensor by ActivationObserver over the calibration set; Graph::calibration
//     records pipeline "rtn", the bits of each quantized layer, seed, samples and dataset.
//
// The simulated graph (build_simulated_graph) is derived from the integer graph alone, so a .tqm
// written by quantize_graph_rtn carries everything needed to rebuild it (`tq eval --simulate`):
//   * weighted int8 ops run in float on fake-quant constants: w = s_w[c] * q, b = q_b * (s_in * s_w[c]);
//   * every other op runs as in the integer graph, but in float;
//   * after every op that writes an int8 tensor T comes Quantize(T's params) -> Dequantize, so
//     each activation takes exactly the values T can hold. The int8 graph's Quantize ops become
//     Quantize -> Dequantize pairs, its Dequantize ops read the pair's int8 tensor.
// Float evaluation of it reproduces the integer arithmetic up to float summation order (and the
// fixed-point rounding of the int8 Add / GlobalAveragePool kernels), one quantization level at most.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyquant/graph.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/observer.h"
#include "tinyquant/status.h"

namespace tinyquant {
namespace quant {

// Calibration samples for a single-input model, laid out as the model's input expects (e.g.
// NCHW images for an imported ONNX model): samples x elements-per-sample float values.
struct CalibrationData {
  std::vector<float> values;
  int32_t samples = 0;
  std::string dataset;  // recorded in Graph::calibration (e.g. "fashion-mnist:train")
  // A model with several inputs: inputs 1, 2, ... each as `samples` x that input's elements
  // (values holds input 0). The rtn pipeline takes them; AdaQuant takes single-input models.
  std::vector<std::vector<float>> more_inputs;
};

struct RtnOptions {
  int32_t weight_bits = 8;      // 2..8
  int32_t activation_bits = 8;  // 2..8
  int32_t batch = 50;           // calibration samples per float invoke
  uint64_t seed = 0;            // recorded (the caller drew the calibration subset with it)
  Backend backend = Backend::kReference;  // float kernels for calibration
  int32_t threads = 1;
  bool progress = false;        // a line to the log every few batches
  // Bits of the int8 activations that leave the integer region and feed no other layer: graph
  // outputs (the logits before their Dequantize) and Softmax inputs. Their quantizer is no
  // layer's input quantizer, so AdaQuant cannot learn it, and 4-bit logits tie the arg-max on
  // many samples (lenet W4A4: 16 distinct logit values). 0: activation_bits like every other.
  int32_t output_activation_bits = 8;
  // The first and last weighted layers (in graph order) keep 8-bit weights and an 8-bit input
  // (ALGORITHMS §2 "keep_first_last_8bit"): the first layer's input is the image itself, whose
  // pixels are 8-bit data; off by default (every layer at weight_bits / activation_bits).
  bool keep_first_last_8bit = false;
  // Per operator of the float graph, its weight bits (2..8; 0: the rule above). The mixed-precision
  // pipelines (mixed.h) set it from the integer program; it wins over keep_first_last_8bit. Empty:
  // every layer by the rule above.
  std::vector<int32_t> layer_weight_bits;
};

struct RtnLayerReport {
  std::string name;      // the operator's name
  OpType type = OpType::kCount;
  bool int8 = false;     // false: stays float
  int32_t weight_bits = 0, activation_bits = 0;
  int64_t weight_bytes = 0;   // packed weights + int32 bias in the quantized graph (0 if float)
  int64_t float_bytes = 0;    // float weights + bias in the input graph
  double weight_sq_error = 0.0;  // ‖w − fake_quant(w)‖²
  std::string note;      // why an op stayed float, if it did
};

struct RtnActivationReport {
  std::string tensor;
  ActivationChoice choice;
};

struct RtnReport {
  std::vector<RtnLayerReport> layers;           // one per operator of the float graph
  std::vector<RtnActivationReport> activations; // one per int8 activation with its own params
  int32_t samples = 0;
  int32_t quantize_ops = 0, dequantize_ops = 0;
  size_t observer_bytes = 0;   // histograms held during calibration
  size_t arena_bytes = 0;      // float interpreter arena during calibration (streams: reused as in inference)
  double seconds = 0.0;
  int64_t peak_rss_bytes = 0;  // the process's peak resident set when the pipeline finished (timing only)
  // One JSON object; Graph::calibration.report_json holds it without timing, so that the same
  // model, data and options give the same file byte for byte.
  std::string json(bool timing = true) const;
};

// Errors (nothing is written to *quantized / *simulated on failure; messages name the cause):
// bits outside 2..8; an empty calibration set or one whose size does not match the model input;
// NaN / Inf in the calibration data (names the input tensor, sample and element) or in any
// activation it produces (names the tensor); a model that is not a single-input float graph
// (e.g. already quantized); an op type the pipeline does not know. `simulated` and `report` may
// be null.
Status quantize_graph_rtn(const Graph& float_graph, const CalibrationData& calibration, const RtnOptions& options,
                          Graph* quantized, Graph* simulated, RtnReport* report);

// The fake-quant float twin of a quantized graph (see the top of this header). Errors: a graph
// with no int8 tensor ("not a quantized model"), or an int8 weight without per-channel scales.
Status build_simulated_graph(const Graph& quantized, Graph* simulated);

}  // namespace quant
}  // namespace tinyquant
