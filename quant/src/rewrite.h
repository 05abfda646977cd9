// Internal to quant/: the one float -> quantized graph rewrite that the RTN and AdaQuant pipelines
// and the simulated twin share, and the tensor / operator maps it returns so that no caller
// rediscovers them by name.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tinyquant/observer.h"
#include "tinyquant/pipeline.h"

namespace tinyquant {
namespace quant {

// A weighted layer's quantized parameters where they differ from round-to-nearest: float
// weights W' quantized with the given per-channel scales (no clip search), and a float bias b'.
struct LayerQuant {
  bool present = false;
  int32_t weight_bits = 0;     // 0: RtnOptions::weight_bits
  std::vector<float> weights;  // W' in the float weights' layout
  std::vector<float> scales;   // s_w per output channel
  std::vector<float> bias;     // b' per output channel; empty: the float graph's bias
};

// Where each float-graph tensor / op ended up in the quantized graph (-1: nowhere).
struct RewriteMap {
  std::vector<int32_t> float_version;  // per float tensor: its float32 tensor in the quantized graph
  std::vector<int32_t> int8_version;   // per float tensor: its int8 tensor
  std::vector<int32_t> op;             // per float op: the quantized graph's op that computes it
  std::vector<bool> op_int8;           // per float op: runs int8
};

// Per tensor of the float graph, the activation params its int8 version uses (params[t]); for
// each float op, layers[op] overrides the RTN weights when present (layers may be null).
Status build_integer_graph(const Graph& float_graph, const RtnOptions& options,
                           const std::vector<ActivationParams>& params, const std::vector<LayerQuant>* layers,
                           Graph* quantized, RewriteMap* map, RtnReport* report);

// Runs `graph` over the calibration set in batches of options.batch samples (re-preparing only
// when the batch size changes): ops [0, end_op) (end_op < 0: all) with `callback` after each op,
// then after_batch(first, n). Errors carry the batch's sample range.
Status run_calibration_batches(const Graph& graph, const CalibrationData& calibration, int64_t per_sample,
                               const RtnOptions& options, int32_t end_op, Interpreter::OpCallback callback,
                               void* user, const std::function<Status(int32_t first, int32_t n)>& after_batch,
                               size_t* arena_bytes = nullptr);

// A JSON string literal of s: quotes, backslashes and control characters escaped.
void append_json_string(std::string* out, const std::string& s);

// Range calibration: observers over every activation of the float graph (RTN's first step).
Status calibrate_activations(const Graph& float_graph, const CalibrationData& calibration, int64_t per_sample,
                             const RtnOptions& options, std::vector<std::unique_ptr<ActivationObserver>>* observers,
                             RtnReport* report);

// The bits activation t is quantized to (RtnOptions::activation_bits / output_activation_bits;
// 8 for the input of the first and last weighted ops with keep_first_last_8bit).
int32_t activation_bits_for(const Graph& float_graph, int32_t t, const RtnOptions& options);
// The bits of weighted op `op`'s weights when no LayerQuant sets them (RtnOptions::weight_bits;
// 8 for the first and last weighted ops with keep_first_last_8bit).
int32_t weight_bits_for(const Graph& float_graph, int32_t op, const RtnOptions& options);

// RtnOptions::layer_weight_bits: empty, or one value per operator, each 0 or 2..8.
Status check_layer_weight_bits(const Graph& float_graph, const RtnOptions& options);

// The checks quantize_graph_rtn makes on its inputs; per_sample is the model input's size.
Status check_quantization_inputs(const Graph& float_graph, const CalibrationData& calibration, int32_t weight_bits,
                                 int32_t activation_bits, int32_t batch, int64_t* per_sample);

// The calibration record and the report's activation list of a freshly built quantized graph.
void finish_quantized_graph(const Graph& float_graph, const CalibrationData& calibration, const RtnOptions& options,
                            const char* pipeline, const RewriteMap& map,
                            const std::vector<std::unique_ptr<ActivationObserver>>& observers,
                            const std::vector<ActivationChoice>& choices, Graph* quantized, RtnReport* report);

// The simulated twin with its maps. float_through (per quantized-graph tensor, may be empty):
// those int8 activations are computed in float with no Quantize -> Dequantize (AdaQuant reads a
// layer's input before the quantizer it is learning).
struct SimulatedMap {
  std::vector<int32_t> value;  // per quantized tensor: the simulated float tensor holding its values
  std::vector<int32_t> pre;    // per int8 activation: the float tensor before its Quantize (or -1)
  std::vector<int32_t> op;     // per quantized op: the simulated op computing it (-1 for converts)
  std::vector<int32_t> op_begin;  // per quantized op b, and one past the last: the first simulated op emitted for it
};
Status build_simulated_graph_mapped(const Graph& quantized, const std::vector<bool>& float_through, Graph* simulated,
                                    SimulatedMap* map);

}  // namespace quant
}  // namespace tinyquant
