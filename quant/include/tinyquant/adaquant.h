// tinyquant/adaquant.h — layer-wise calibration (AdaQuant, ALGORITHMS.md §2) and statistics
// tuning (§4) on top of range calibration.
//
//   quant::AdaQuantOptions opt;
//   opt.rtn.weight_bits = 4; opt.rtn.activation_bits = 4;
//   opt.sequential = true; opt.stats_tuning = true;
//   Graph q; quant::AdaQuantReport report;
//   TQ_RETURN_IF_ERROR(quant::quantize_graph_adaquant(float_graph, calib, opt, &q, &report));
//
// What it does, in order:
//   1. Range calibration and round-to-nearest exactly as quantize_graph_rtn (pipeline.h).
//   2. (adaquant) First, for each int8 BatchMatMul (attention: Q K^T, P V), the quantizers of
//      both its inputs (the producers' output quantizers, which no weighted layer learns): minimise
//        mean ‖ A B − Q_a(A; s_a, z_a) Q_b(B; s_b, z_b) ‖²
//      over A, B of the float model (the parallel form, in either mode) with Adam and the LSQ
//      derivatives below; kept only if the held-out MSE improves (AdaQuantReport::matmuls). An
//      input with fixed params (the int8 softmax's 1/256) takes part unlearned.
//      Then, for each int8 Conv2D / DepthwiseConv2D / FullyConnected, in graph order, minimise
//        mean ‖ f(W, b; X_fp) − f(Q_w(W'; s_w), b'; Q_x(X_in; s_x, z_x)) ‖²
//      over W', b', s_w (per output channel) and the input's s_x, z_x with Adam. f is the layer
//      followed by its fused activation (the target is the float layer's output after it).
//      X_in is the float model's input to the layer (parallel) or the input the already
//      quantized preceding layers produce, for every sample (sequential). Gradients: the
//      straight-through estimator for rounding; clamp passes gradient only inside its range; the
//      scale and zero-point derivatives are LSQ's:
//        inside:  ∂x̂/∂s = round(x/s) − x/s,  ∂x̂/∂z = 0;  clipped to q_b: ∂x̂/∂s = q_b − z, ∂x̂/∂z = −s.
//      The input quantizer is that of the tensor the layer reads — for a tensor behind int8
//      MaxPool / Reshape / Transpose / Clamp, the quantizer of the tensor those pass through — and
//      is learned by the first layer that reads it; later readers keep it fixed.
//      Learning rates (LrMode::kRelative, the default) are relative to each tensor's scale: an
//      Adam step moves W'[c] by about lr_weight · s_w[c] (quantization steps), b'[c] by lr_bias ·
//      s_out (the output's step), s_w[c] by lr_weight_scale · s_w[c], s_x by lr_act_scale · s_x,
//      z_x by lr_zero_point levels. kAbsolute uses the rates as given (the reference code's:
//      1e-5, 1e-3, 1e-3, 1e-1, 1e-1).
//      The last `holdout` fraction of the calibration samples is never trained on: the layer's
//      MSE before and after is measured there, and a layer whose held-out MSE did not improve —
//      or whose loss became NaN / Inf — keeps its range-calibrated version (reported).
//   3. (stats_tuning) For each layer in order, on the calibration set: per output channel, the
//      exact mean and standard deviation of the quantized model's pre-activation output and of
//      the float model's; the ratio of deviations γ_c (bounded to [0.5, 2]) is folded into s_w[c]
//      (the stored integers do not change) and the mean difference into b[c].
//
// Data: the calibration set streams through the network once per pass (quant/src/stream.h):
// each layer's inputs and targets come from a frontier of the activations live at that point,
// advanced op by op, not from re-running the network up to every layer (report:
// capture_seconds). Memory: that frontier (the float graph's, and in sequential mode the
// quantized one's, held as int8 codes) plus one layer's inputs and targets for the calibration
// set (report: largest_cache_bytes, start_rss_bytes, peak_rss_bytes). The .tqm calibration record names the pipeline
// ("adaquant-parallel", "adaquant-sequential", "rtn"; "+stats" when tuned) and its report_json
// holds the per-layer report without timing. Deterministic: the same graph, data, options and
// seed give the same model bytes (GEMM threads do not change results: see layer_kernels.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "tinyquant/pipeline.h"

namespace tinyquant {
namespace quant {

enum class LrMode : uint8_t { kRelative = 0, kAbsolute };
const char* lr_mode_name(LrMode mode);

struct AdaQuantProgress {
  int32_t layer = 0, layers = 0;  // 0-based index among the optimised layers, and their count
  const char* name = "";          // the layer's operator name
  const char* stage = "";         // "adaquant", "stats tuning"
  int32_t iteration = 0, iterations = 0;
  double loss = 0.0;              // running training MSE
  double elapsed_s = 0.0, eta_s = 0.0;
};
using AdaQuantProgressFn = void (*)(void* user, const AdaQuantProgress& progress);

struct AdaQuantOptions {
  RtnOptions rtn;                 // bits, calibration batch, seed, float backend, threads
  bool adaquant = true;           // false: range calibration only (then stats_tuning, if set)
  bool sequential = false;
  bool stats_tuning = false;
  int32_t iterations = 1000;      // Adam steps per layer
  int32_t batch = 50;             // samples per step
  LrMode lr_mode = LrMode::kRelative;
  // Rates; a negative value means "the default of lr_mode".
  float lr_weight = -1, lr_bias = -1, lr_weight_scale = -1, lr_act_scale = -1, lr_zero_point = -1;
  float holdout = 0.1f;           // fraction of samples held out (0 < holdout < 1)
  // Stop a layer early when the held-out MSE, checked every `check_every` steps, has not improved
  // by 0.1% for `patience` checks (0: never stop early).
  int32_t check_every = 0;
  int32_t patience = 3;
  // QDrop (Wei et al., ICLR 2022): in each training step every element of the layer's input keeps
  // its unquantized value with this probability instead of passing the input quantizer (the
  // held-out checks and the model quantize all of them). 0: off; QDrop's choice is 0.5.
  float qdrop = 0.0f;
  int32_t gemm_threads = 1;
  AdaQuantProgressFn progress = nullptr;
  void* progress_user = nullptr;
  const std::atomic<bool>* cancel = nullptr;  // set to true to stop: returns kCancelled, nothing written
};

struct AdaQuantLayerReport {
  std::string name;
  OpType type = OpType::kCount;
  int32_t weight_bits = 0, activation_bits = 0;
  double mse_before = 0.0, mse_after = 0.0;  // held-out, vs the float layer's output
  bool optimised = false;  // AdaQuant ran on it
  bool reverted = false;   // kept the range-calibrated version
  std::string note;        // why it reverted, or what was learned
  bool learned_input_quantizer = false;
  int32_t iterations = 0;  // steps actually run (early stopping)
  double stats_gamma_min = 1.0, stats_gamma_max = 1.0;  // statistics tuning's scale corrections
  double stats_mse_before = 0.0;  // before statistics tuning: pre-activation output MSE vs float (all samples)
  double seconds = 0.0;
  double capture_seconds = 0.0;  // of `seconds`: running the network to this layer's data
  int64_t cache_bytes = 0;  // the layer's calibration inputs + targets held
  int64_t macs = 0;         // one forward pass over one sample
  // The starting quantizers (range calibration) and where AdaQuant / stats tuning left them:
  // the input's scale / zero point and the per-channel weight scales. In json(timing=true) only.
  float init_input_scale = 0.0f, final_input_scale = 0.0f;
  int32_t init_input_zero_point = 0, final_input_zero_point = 0;
  std::vector<float> init_weight_scales, final_weight_scales;
};

// One int8 BatchMatMul (attention) whose input quantizers AdaQuant learned (ALGORITHMS §2 applied
// to both inputs of a product of two activations, as the paper does for BERT's attention): the
// held-out MSE of the quantized product against the float one, and each input's quantizer. An
// input with fixed params (the int8 softmax's 1/256) is not learned.
struct AdaQuantMatMulReport {
  std::string name;
  std::string inputs[2];
  bool learned[2] = {false, false};
  float init_scale[2] = {0.0f, 0.0f}, final_scale[2] = {0.0f, 0.0f};
  int32_t init_zero_point[2] = {0, 0}, final_zero_point[2] = {0, 0};
  int32_t bits[2] = {8, 8};
  double mse_before = 0.0, mse_after = 0.0;
  bool reverted = false;
  int32_t iterations = 0;
  double seconds = 0.0;
};

struct AdaQuantReport {
  RtnReport rtn;  // range calibration and the final rewrite (per layer bits, bytes)
  std::vector<AdaQuantLayerReport> layers;
  std::vector<AdaQuantMatMulReport> matmuls;  // attention products, before the layers (graph order)
  std::string pipeline;
  int32_t train_samples = 0, holdout_samples = 0;
  double seconds = 0.0, adaquant_seconds = 0.0, stats_seconds = 0.0;
  double capture_seconds = 0.0;  // of adaquant + stats: running the network to the layers' data
  double gflops = 0.0;               // achieved by the optimisation's forward + backward GEMM work
  int64_t largest_cache_bytes = 0;
  int64_t peak_rss_bytes = 0;        // the process's peak resident set (VmHWM) at the end
  float qdrop = 0.0f;                // AdaQuantOptions::qdrop the layers trained with
  int64_t start_rss_bytes = 0;       // its resident set (VmRSS) when the pipeline started
  std::string gemm_engine;
  std::string json(bool timing = true) const;
};

// Errors (nothing written on failure): those of quantize_graph_rtn; batch or iterations < 1;
// holdout outside (0, 1); fewer training samples than the batch (names both counts); cancel.
Status quantize_graph_adaquant(const Graph& float_graph, const CalibrationData& calibration,
                               const AdaQuantOptions& options, Graph* quantized, AdaQuantReport* report);

// Peak resident set size of this process in bytes (Linux VmHWM; 0 where unknown).
int64_t peak_rss_bytes();
int64_t rss_bytes();  // the current resident set (VmRSS)

}  // namespace quant
}  // namespace tinyquant
