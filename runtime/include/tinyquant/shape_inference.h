// tinyquant/shape_inference.h — concrete shapes of every tensor for one batch size.
//
// Runs every operator's shape rule in order, checking that inputs agree with the op (channel
// counts, weight shapes, broadcastability, reshape element counts). It is the semantic check the
// loader runs on every .tqm and the first step of Interpreter::prepare().
#pragma once

#include <vector>

#include "tinyquant/graph.h"
#include "tinyquant/tensor_view.h"

namespace tinyquant {

// batch > 0 replaces dimension 0 of every graph input. Errors name the operator and tensor.
Status infer_shapes(const Graph& graph, int32_t batch, std::vector<Dims>* dims);

// Output size of a sliding window along one spatial axis; <= 0 means the window does not fit.
int32_t window_output_size(int32_t in, int32_t kernel, int32_t stride, int32_t dilation,
                           int32_t pad_before, int32_t pad_after);

}  // namespace tinyquant
