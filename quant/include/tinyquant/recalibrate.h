// tinyquant/recalibrate.h — float master weights and recalibration of a shipped quantized model.
//
//   // When quantizing (tq quantize --keep-master fp16):
//   TQ_RETURN_IF_ERROR(quant::attach_master_weights(float_graph, /*fp16=*/true, &quantized));
//   // Later, on the device, with new unlabeled samples:
//   quant::RecalibrationOptions opt;  opt.full = false;  opt.memory_budget_bytes = 8 << 20;
//   Graph fresh;  quant::RecalibrationReport rep;
//   TQ_RETURN_IF_ERROR(quant::recalibrate_graph(shipped, samples, opt, &fresh, &rep));
//   // rep.old_agreement / rep.new_agreement: top-1 agreement with the float master on held-back samples
//
// Master weights: for every int8 weighted op (conv, depthwise, FC), a float copy of its weights
// (fp16 or fp32) and of its bias (always fp32: a bias is one value per channel), attached to the
// quantized weight and bias tensors (Graph::master_weights, stored in the .tqm). From them and the
// quantized graph's structure master_float_graph() rebuilds the float model: the simulated twin
// with every activation computed in float (no Quantize / Dequantize) and the master values in place
// of the dequantized ones.
//
// Recalibration keeps the model's recorded bit-widths (CalibrationRecord weight_bits /
// activation_bits, checked again on the result) and runs, on the new samples:
//   fast: range calibration + statistics tuning (ALGORITHMS §4);
//   full: sequential AdaQuant + statistics tuning (§2), `iterations` Adam steps per layer.
// A fraction of the samples (`holdout`) is held back and never calibrated on: the old and the
// new model's top-1 agreement with the float master are measured there on the integer kernels.
//
// Working memory: before anything is allocated, estimate_recalibration_bytes() prices the run
// (calibration copy, activation caches of the largest layer, the graphs and their interpreters);
// with a budget the calibration set is subsampled to fit, and a budget too small for
// `min_samples` is refused with the bytes it would need. The estimate is an upper bound of the
// measured growth of the process's resident set (tests/capi check measured <= budget).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "tinyquant/graph.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/pipeline.h"
#include "tinyquant/status.h"

namespace tinyquant {
namespace quant {

// Errors: an op of `quantized` with int8 weights that `float_graph` has no float op of the same
// name, type and weight shape for; a model that already carries master weights.
Status attach_master_weights(const Graph& float_graph, bool fp16, Graph* quantized);

// Errors: no master weights ("quantize with --keep-master"), one missing for an int8 weighted op,
// or one of the wrong size; those of build_simulated_graph. *layer_ops (may be null) receives, per
// int8 weighted op of `quantized` in operator order, the index of its op in *float_graph.
Status master_float_graph(const Graph& quantized, Graph* float_graph, std::vector<int32_t>* layer_ops = nullptr);

struct RecalibrationProgress {
  const char* stage = "";  // "estimate", "calibrate", "adaquant", "stats tuning", "validate"
  int32_t step = 0, steps = 0;
  double fraction = 0.0;   // of the whole job, 0..1
};
// Return false to cancel (recalibrate_graph then returns kCancelled and writes nothing).
using RecalibrationProgressFn = bool (*)(void* user, const RecalibrationProgress& progress);

struct RecalibrationOptions {
  bool full = false;                 // false: fast (range + statistics tuning); true: AdaQuant too
  int64_t memory_budget_bytes = -1;  // working memory the job may use (-1: no limit)
  float holdout = 0.2f;              // fraction of the samples held back for validation
  int32_t min_samples = 32;          // fewest calibration samples worth recalibrating on
  int32_t iterations = 200;          // full: Adam steps per layer
  uint64_t seed = 0;                 // subsampling and AdaQuant batches
  Backend backend = Backend::kReference;  // float calibration kernels and validation kernels
  int32_t threads = 1;
  int64_t extra_bytes = 0;           // working memory the caller adds (e.g. the file being rewritten)
  RecalibrationProgressFn progress = nullptr;
  void* progress_user = nullptr;
};

struct RecalibrationReport {
  int32_t samples_given = 0;         // in the caller's buffer
  int32_t calibration_samples = 0;   // used to calibrate (after holdout and any subsampling)
  int32_t holdout_samples = 0;
  bool subsampled = false;           // the budget cut the calibration set
  int64_t estimated_bytes = 0;       // the working-memory estimate for calibration_samples
  int64_t peak_bytes = 0;            // measured: peak resident set growth during the job (Linux)
  int64_t memory_budget_bytes = -1;
  double old_agreement = 0.0;        // % of held-back samples whose top-1 matches the float master's
  double new_agreement = 0.0;
  double seconds = 0.0;
  std::string mode;                  // "fast" or "full"
  std::string pipeline;              // the new model's calibration record pipeline
  std::vector<int32_t> holdout;      // indices of the held-back samples in the caller's buffer
};

// Bytes the job would need for `samples` calibration samples of this float graph (see top).
int64_t estimate_recalibration_bytes(const Graph& float_graph, int32_t samples, bool full);

// The split and the budget alone, without running anything: for `count` samples of the float
// master `float_graph`, fills samples_given, holdout_samples, calibration_samples (after any
// subsampling), subsampled and estimated_bytes (on a refusal: the bytes min_samples needs).
// Errors: too few samples after the holdout; a budget below the estimate for min_samples.
Status plan_recalibration(const Graph& float_graph, int32_t count, const RecalibrationOptions& options,
                          RecalibrationReport* report);

// Errors: a model without master weights or calibration record; a sample buffer that is not
// count model inputs (names both sizes); fewer than min_samples calibration samples after
// the holdout; a budget below the estimate for min_samples (kOutOfMemory, naming the bytes needed);
// NaN / Inf in the samples; a result whose bit-widths differ from the record's (kInternal);
// cancel (kCancelled). *out is written only on success; *report also when the plan is refused.
// samples: `count` model inputs, `floats` floats in all (checked: count x the input's elements).
Status recalibrate_graph(const Graph& shipped, const float* samples, int64_t floats, int32_t count,
                         const RecalibrationOptions& options, Graph* out, RecalibrationReport* report);

// % of the samples whose arg-max of output 0 (over its last axis) is the same for `model` and
// `reference` (both run on `backend`, in batches). Errors: different input or output shapes.
Status top1_agreement(const Graph& model, const Graph& reference, const float* samples, int32_t count,
                      Backend backend, int32_t threads, double* percent);

// Growth of this process's resident set since the last reset_peak_rss() (Linux /proc; 0 elsewhere).
void reset_peak_rss();
int64_t peak_rss_growth();

}  // namespace quant
}  // namespace tinyquant
