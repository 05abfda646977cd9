// Internal to quant/: the AdaQuant pipeline's working state, so that the mixed-precision
// pipelines (mixed.cc) can start it from candidates chosen per layer and read back what it made.
#pragma once

#include <cstdint>
#include <vector>

#include "rewrite.h"
#include "tinyquant/adaquant.h"

namespace tinyquant {
namespace quant {

struct QuantState {
  std::vector<LayerQuant> layers;        // per float op: present for every int8 weighted op
  std::vector<ActivationParams> params;  // per float tensor (those with an int8 version matter)
  // Filled on output only:
  std::vector<int32_t> targets;  // the int8 weighted ops, graph order
  std::vector<int32_t> root;     // per float tensor: the tensor whose quantizer it shares (passthrough chains)
  RewriteMap map;                // float graph -> the quantized graph written
};

// quantize_graph_adaquant, but (start) beginning from the given layers and activation params
// instead of range calibration's — every int8 weighted op's LayerQuant must be present — and
// (end) returning the state it finished in. Either may be null.
Status run_adaquant(const Graph& float_graph, const CalibrationData& calibration, const AdaQuantOptions& options,
                    const QuantState* start, QuantState* end, Graph* quantized, AdaQuantReport* report);

}  // namespace quant
}  // namespace tinyquant
