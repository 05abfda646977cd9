// tinyquant/onnx_import.h — ONNX -> Graph (host only; Debian's libonnx protobuf).
//
// Supported: opsets kOnnxMinOpset..kOnnxMaxOpset with each op's per-version form (attributes
// that became inputs); the op list is onnx_supported_ops() (`tq help import` prints it).
// BatchNormalization folds into the preceding Conv/Gemm when possible (else a per-channel
// Mul+Add); Relu/Clip after Conv/Gemm/MatMul/Add are fused when nothing else reads the
// intermediate. A zero Pad is folded into the Conv/AveragePool that alone reads it. Shape
// arithmetic on constants (Shape of a static value, Gather, Cast, Concat, ConstantOfShape,
// Reshape, Slice, Squeeze, Unsqueeze, Transpose) is evaluated at import. 4-D NCHW tensors become
// NHWC inside; the graph's inputs and outputs keep the ONNX layout (the importer inserts the
// layout change as Transpose/Reshape operators). Transposes fold into the layout of the value
// they read when that makes them the identity (TF-converted graphs' NHWC<->NCHW pairs); a
// Transpose that really moves data runs as one.
// Anything else — an op, an attribute value, a dtype, a dynamic shape we cannot resolve — is an
// error naming the node, the op and the attribute. Never a silently different graph.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "tinyquant/graph.h"

namespace tinyquant {

constexpr int kOnnxMinOpset = 7, kOnnxMaxOpset = 21;

struct OnnxOpSupport {
  const char* op;    // ONNX op type (default domain)
  const char* note;  // "" or a restriction, e.g. "constant inputs only (evaluated at import)"
};
// Every op the importer takes, from its own dispatch table.
std::vector<OnnxOpSupport> onnx_supported_ops();

// Shapes for graph inputs whose dims the model leaves dynamic (a symbolic height/width, say):
// each binding names an input and gives every dim; the model's static dims must match, and dim 0
// may stay -1 (a dynamic batch). Without a binding only dim 0 may be dynamic; the error then names
// the dim and shows the binding to give (`tq import --input-shape NAME=1,3,48,192`).
struct InputShape {
  std::string name;
  std::vector<int32_t> shape;
};
struct ImportOptions {
  std::vector<InputShape> input_shapes;
};
// "NAME=1,3,48,192" -> binding; the error says what was expected.
Status parse_input_shape(const std::string& spec, InputShape* out);

Status import_onnx_file(const char* path, Graph* graph, const ImportOptions& options = ImportOptions());
Status import_onnx_bytes(const void* data, size_t size, const char* source_name, Graph* graph,
                         const ImportOptions& options = ImportOptions());

}  // namespace tinyquant
