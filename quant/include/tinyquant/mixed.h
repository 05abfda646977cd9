// tinyquant/mixed.h — mixed precision from a memory or accuracy budget: per-layer candidates,
// label-free sensitivities, the integer program (bit_allocator.h) and the light and advanced
// pipelines (ALGORITHMS.md §3, §6).
//
//   quant::MixedOptions opt;                      // opt.pipeline, opt.bits = {2, 3, 4, 8}, opt.aq...
//   quant::MixedCandidates cand;
//   TQ_RETURN_IF_ERROR(quant::prepare_mixed(float_graph, calib, opt, &cand));  // the expensive part
//   quant::MixedBudget budget; budget.fraction = 0.13;                          // 13% of float32
//   Graph q; quant::MixedReport report;
//   TQ_RETURN_IF_ERROR(quant::quantize_graph_mixed(cand, budget, &q, &report)); // per budget, cheap
//
// prepare_mixed, once per model and options:
//   1. Candidates: for every weight-bit option b, every int8 weighted layer quantized at b with
//      the activations at aq.rtn.activation_bits — range calibration and round-to-nearest (light)
//      or parallel AdaQuant (advanced, every option including the largest, whose learned input
//      quantizers the sensitivities compare against). Parallel mode makes the layers independent, so any
//      layer's candidate combines with any other's. Each candidate's bytes are what the .tqm stores
//      for it (quantized_op_bytes: packed weights + int32 bias + their scales).
//   2. Sensitivity, without labels: ΔL[l,b] = L(layer l at b, every other at the largest option) −
//      L(all at the largest option), floored at 1e-9, where L is the mean over the calibration set
//      of KL(softmax(float output) ‖ softmax(quantized output)) (kMse: the mean squared difference
//      of the outputs). The fake-quant twin of the all-largest model streams through the network
//      once (stream.h); for layer l only the tail from l's input quantizer onward is re-run per
//      option, from the cached activations (report: sensitivity_seconds beside candidate_seconds).
// quantize_graph_mixed, per budget (candidates are reused across the budgets of a sweep):
//   3. The integer program: min Σ ΔL subject to the bytes (budget.bytes, or budget.fraction of the
//      float32 weight + bias bytes), or for budget.max_drop the smallest model whose measured top-1
//      disagreement with the float model on the calibration set is at most max_drop percent (the
//      dual program — min bytes subject to Σ ΔL ≤ D — bisected over D, each solution measured on
//      the integer model). An input quantizer shared by several layers comes from the candidate of
//      the layer that learned it (the first reader).
//   4. Statistics tuning (adaquant.h) of the assembled mixed model; advanced with
//      final_sequential: a sequential AdaQuant pass at the chosen bits first; advanced: then bias
//      tuning (§5, MixedOptions::bias_epochs), kept only if the held-out KL improved.
// The written graph's quantized_bytes().total() is checked against the budget; its calibration
// record names the pipeline ("light", "advanced"), the per-layer bits and the budget, and its
// report_json holds the report without timing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tinyquant/adaquant.h"
#include "tinyquant/bit_allocator.h"

namespace tinyquant {
namespace quant {

enum class MixedPipeline : uint8_t { kLight = 0, kAdvanced };
enum class SensitivityLoss : uint8_t { kKl = 0, kMse };
const char* mixed_pipeline_name(MixedPipeline p);

struct MixedOptions {
  // Activation bits (every layer), calibration batch, seed, backend, threads, AdaQuant's
  // iterations / rates / progress / cancel. rtn.weight_bits and layer_weight_bits are ignored.
  AdaQuantOptions aq;
  MixedPipeline pipeline = MixedPipeline::kLight;
  std::vector<int32_t> bits = {2, 3, 4, 8};  // weight-bit options, each 2..8
  SensitivityLoss loss = SensitivityLoss::kKl;
  bool stats_tuning = true;
  bool final_sequential = false;  // advanced: a sequential AdaQuant pass at the chosen bits
  // Advanced, last step (ALGORITHMS §5): only the biases trained end to end on the fake-quant
  // model, loss KL(float softmax ‖ quantized softmax), Adam, straight-through rounding. Each
  // Adam step moves a bias by about bias_lr of its layer's output quantization step. The last
  // aq.holdout of the samples judge it: if their KL did not improve, the biases stay. 0 epochs: off.
  int32_t bias_epochs = 4;
  int32_t bias_batch = 32;
  float bias_lr = 0.05f;
};

struct MixedBudget {  // exactly one of fraction, bytes, max_drop, uniform_bits
  double fraction = -1.0;   // of the float32 weight + bias bytes, e.g. 0.13
  int64_t bytes = -1;       // packed weights + bias + scales, as quantized_bytes() totals them
  double max_drop = -1.0;   // percent of calibration samples whose top-1 may differ from the float model's
  int32_t uniform_bits = 0; // a reference point: every layer at this option (one of MixedOptions::bits), no program
  double max_bops = -1.0;   // optional: Σ MACs × w_bits × a_bits
  int64_t max_activation_bytes = -1;  // optional: a layer's int8 input + output bytes at batch 1
};

struct MixedOptionReport {
  int32_t bits = 0;
  int64_t bytes = 0;
  double sensitivity = 0.0;  // ΔL
  double mse_after = 0.0;    // advanced: AdaQuant's held-out MSE at these bits (0: not run)
};

struct MixedLayerReport {
  std::string name;
  OpType type = OpType::kCount;
  int64_t macs = 0, activation_bytes = 0;
  std::vector<MixedOptionReport> options;  // one per MixedOptions::bits, ascending
  int32_t chosen_bits = 0;
  int64_t bytes = 0;
};

struct MixedReport {
  std::string pipeline;
  std::vector<MixedLayerReport> layers;
  int64_t float32_bytes = 0;   // the float weights + bias of the quantized layers
  int64_t budget_bytes = -1;   // the byte limit applied (-1: none, max_drop)
  double max_drop = -1.0;
  int64_t model_bytes = 0;     // quantized_bytes(written graph).total()
  int64_t smallest_bytes = 0, largest_bytes = 0;  // what the options can reach
  double predicted_loss = 0.0;      // Σ ΔL of the choice + L(all largest)
  double base_loss = 0.0;           // L(all at the largest option)
  double calibration_loss = 0.0;    // measured L of the written model (integer kernels)
  double calibration_drop = 0.0;    // measured % of calibration samples whose top-1 differs from float
  double bops = 0.0;
  Allocation allocation;
  int32_t drop_searches = 0;        // max_drop: programs solved and measured
  double candidate_seconds = 0.0, sensitivity_seconds = 0.0, allocation_seconds = 0.0, tuning_seconds = 0.0;
  double seconds = 0.0;             // this budget's (quantize_graph_mixed) time
  int64_t peak_rss_bytes = 0;
  AdaQuantReport tuning;            // the final stats tuning / sequential pass
  struct BiasTuning {
    bool ran = false, kept = false;
    int32_t epochs = 0, steps = 0;
    double holdout_kl_before = 0.0, holdout_kl_after = 0.0, seconds = 0.0;
  } bias;
  std::string bits_summary() const; // e.g. "2:3 3:5 4:10 8:4" (bits:layers)
  std::string json(bool timing = true) const;
};

class MixedCandidates {
 public:
  MixedCandidates();
  ~MixedCandidates();
  MixedCandidates(MixedCandidates&&) noexcept;
  MixedCandidates& operator=(MixedCandidates&&) noexcept;
  struct Impl;
  std::unique_ptr<Impl> impl;
};

// Errors: those of quantize_graph_adaquant; no bit option, one outside 2..8, or repeated; a
// multi-input model; no int8 weighted layer; cancel. The float graph and calibration data must
// outlive the candidates.
Status prepare_mixed(const Graph& float_graph, const CalibrationData& calibration, const MixedOptions& options,
                     MixedCandidates* out);

// Before the expensive part: is a byte budget (fraction or bytes; the other kinds pass) reachable
// with these bit options? The sizes depend on the shapes only, so one range-calibrated model at the
// smallest option, calibrated on the first batch, gives the smallest reachable size. Errors as
// quantize_graph_mixed's for a budget below it (the same message), in well under a second.
Status check_mixed_budget(const Graph& float_graph, const CalibrationData& calibration, const MixedOptions& options,
                          const MixedBudget& budget);

// Errors (nothing written): a budget that is not exactly one of fraction / bytes / max_drop, or
// is not positive; a budget below the smallest model ("... smallest model these bit options
// allow: N bytes"); a max_drop the largest model already exceeds (states its drop).
Status quantize_graph_mixed(const MixedCandidates& candidates, const MixedBudget& budget, Graph* quantized,
                            MixedReport* report);

}  // namespace quant
}  // namespace tinyquant
