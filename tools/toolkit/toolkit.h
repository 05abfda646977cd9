// toolkit/toolkit.h — what the tq commands do, as functions (the tests call them directly).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "data/idx.h"
#include "tinyquant/graph.h"
#include "tinyquant/interpreter.h"

namespace tinyquant {

// .onnx → ONNX importer; .tqm (or any file starting with a TQM0 FlatBuffer) → verified loader.
Status load_any_model(const std::string& path, Graph* graph);

struct EvalOptions {
  Backend backend = Backend::kXnnpack;
  int32_t threads = 1;
  int32_t batch = 100;
  int32_t limit = 0;  // 0: the whole split
  float mean = kFashionMnistMean;
  float std = kFashionMnistStd;
  bool progress = false;   // a line to stderr every few batches
  int32_t keep_logits = 0; // keep the logits of the first N samples
};

struct EvalResult {
  int32_t samples = 0;
  int32_t correct = 0;
  double top1 = 0.0;  // percent
  double seconds = 0.0;
  std::vector<int32_t> predictions;
  std::vector<float> logits;  // keep_logits x classes
  int32_t classes = 0;
  size_t arena_bytes = 0;
  size_t backend_weight_bytes = 0;
  int32_t fallback_ops = 0;  // ops that ran on the reference backend under --backend xnnpack
};

// Checks the model takes one image per sample ([N,1,H,W], [N,H,W,1] or [N,H*W] float32) and
// returns one score per class; errors name the model's input/output and what was expected.
Status check_classifier(const Graph& graph, int32_t rows, int32_t cols);

// Top-1 of the model over the dataset (labels used only to count).
Status evaluate_classifier(const Graph& graph, const ImageDataset& data, const EvalOptions& options,
                           EvalResult* result);

// Human-readable summary: inputs/outputs, one line per operator (type, shapes, options, where it
// runs on XNNPACK), constant bytes per layer, totals, arena bytes at batch 1.
void print_inspect(const Graph& graph, const std::string& path, size_t file_bytes, std::FILE* out);

}  // namespace tinyquant
