// toolkit/toolkit.h — what the tq commands do, as functions (the tests call them directly).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "data/idx.h"
#include "data/langid.h"
#include "data/npy.h"
#include "tinyquant/graph.h"
#include "tinyquant/interpreter.h"

namespace tinyquant {

// .onnx → ONNX importer; .tqm (or any file starting with a TQM0 FlatBuffer) → verified loader.
// input_shapes: "NAME=1,3,48,192" bindings for an ONNX model's dynamic input dims (--input-shape).
Status load_any_model(const std::string& path, Graph* graph, const std::vector<std::string>& input_shapes = {});
// The importer's opsets and operators (from its own table) as a Markdown list; the README's
// list is this text (`tq import --list-ops`).
std::string onnx_support_markdown();

// FNV-1a 64-bit: start from kFnv1a64Offset, fold in bytes with fnv1a64().
constexpr uint64_t kFnv1a64Offset = 0xcbf29ce484222325ull;
inline uint64_t fnv1a64(uint64_t hash, const void* data, size_t size) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) hash = (hash ^ p[i]) * 0x100000001b3ull;
  return hash;
}

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
  // FNV-1a 64-bit over the raw bytes of every output tensor of every sample, in dataset order
  // (sample by sample, outputs in graph order): independent of the batch size, and what
  // examples/mcu_inference prints, so a device run can be compared with the host bit for bit.
  uint64_t checksum = kFnv1a64Offset;
};

// Checks the model takes one image per sample ([N,1,H,W], [N,H,W,1] or [N,H*W] float32) and
// returns one score per class; errors name the model's input/output and what was expected.
Status check_classifier(const Graph& graph, int32_t rows, int32_t cols);

// Top-1 of the model over the dataset (labels used only to count).
Status evaluate_classifier(const Graph& graph, const ImageDataset& data, const EvalOptions& options,
                           EvalResult* result);

// A text classifier over token ids (examples/langid): float32 input [N, seq_len] holding the ids
// (tinyquant's convention for integer inputs), float32 [N, classes] output.
Status check_token_classifier(const Graph& graph, int32_t seq_len);
Status evaluate_token_classifier(const Graph& graph, const TokenDataset& data, const EvalOptions& options,
                                 EvalResult* result);

// Output fidelity of `model` against `reference` (e.g. a quantized model against its float
// original) on the same inputs: one float32 array per model input, [N, ...] each. Per output:
// SQNR = 10 log10(sum ref^2 / sum (out - ref)^2) in dB, max |out - ref|, and for [N, C>1] outputs
// the percentage of samples whose arg-max agrees. options: backend, threads, batch, limit.
struct FidelityOutput {
  std::string name;
  int64_t elements = 0;
  double sqnr_db = 0.0, max_abs_error = 0.0, reference_max_abs = 0.0;
  bool classifier = false;
  double top1_agreement = 0.0;  // percent, classifier outputs only
};
struct FidelityResult {
  int32_t samples = 0;
  std::vector<FidelityOutput> outputs;
  double seconds = 0.0;
};
Status compare_models(const Graph& model, const Graph& reference, const std::vector<NpyArray>& inputs,
                      const EvalOptions& options, FidelityResult* result);

// tq embed: MODEL.tqm + the first `count` images of a split -> one C++ source (model bytes, raw
// uint8 images, labels, preprocessing, a static arena sized on the host) for examples/mcu_inference.
struct EmbedOptions {
  std::string model;                   // a .tqm file
  std::string data = "fashion-mnist:test";
  std::string data_dir = kDefaultFashionMnistDir;
  int32_t count = 200;                 // 1..images in the split
  float mean = kFashionMnistMean;
  float std = kFashionMnistStd;
  std::string output;                  // DIR/NAME or DIR/NAME.cc; NAME is what the program reports
  // langid:test|val|train: the first `count` words as token ids (examples/langid's data set).
  std::string dict_dir = kDefaultDictDir;
  std::string vocab = kDefaultLangidVocab;
};

struct EmbedResult {
  std::string path, name;
  int32_t count = 0;
  size_t model_bytes = 0;     // the .tqm file
  size_t constant_bytes = 0;  // sum of the constant tensors' (packed) buffers
  size_t arena_bytes = 0;     // the static arena emitted: batch-1 plan + interpreter slack
  size_t min_live_bytes = 0;  // the planner's floor at batch 1
};

// "fashion-mnist:test" / "fashion-mnist:train" / "langid:test|val|train" -> the data set and split.
Status parse_embed_data_spec(const std::string& spec, std::string* split, bool* text = nullptr);
// Verifies the model (loader + classifier check), plans its arena and writes the source atomically.
Status embed_model(const EmbedOptions& options, EmbedResult* result);

// Human-readable summary: inputs/outputs, one line per operator (type, shapes, options, where it
// runs on XNNPACK), constant bytes per layer, totals, arena bytes at batch 1.
void print_inspect(const Graph& graph, const std::string& path, size_t file_bytes, std::FILE* out);

}  // namespace tinyquant
