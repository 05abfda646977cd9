// tinyquant/onnx_import.h — ONNX -> Graph (host only; Debian's libonnx protobuf).
//
// Supported (opsets 11-17): Conv, BatchNormalization (folded into the preceding Conv/Gemm when
// possible, else a per-channel Mul+Add), Relu, Clip, Add, Mul, MaxPool, AveragePool,
// GlobalAveragePool, Flatten, Reshape, Gemm, MatMul (constant second input), Softmax, Concat,
// Identity, Dropout. Relu/Clip after Conv/Gemm/MatMul/Add are fused when nothing else reads the
// intermediate. A zero Pad is folded into the Conv/AveragePool that alone reads it, and shape
// arithmetic on constants (Cast, Concat, ConstantOfShape, Reshape, Slice, Transpose) is evaluated,
// as PyTorch exports F.pad that way. 4-D NCHW tensors become NHWC inside; the graph's inputs and
// outputs keep the ONNX layout (the importer inserts the layout change as Transpose/Reshape operators).
// Anything else — an op, an attribute value, a dtype, a dynamic shape we cannot resolve — is an
// error naming the node, the op and the attribute. Never a silently different graph.
#pragma once

#include <cstddef>

#include "tinyquant/graph.h"

namespace tinyquant {

Status import_onnx_file(const char* path, Graph* graph);
Status import_onnx_bytes(const void* data, size_t size, const char* source_name, Graph* graph);

}  // namespace tinyquant
