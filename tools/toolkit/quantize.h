// toolkit/quantize.h — what `tq quantize` does, as functions (built when TQ_WITH_QUANT is on).
#pragma once

#include <cstdint>
#include <string>

#include "tinyquant/adaquant.h"
#include "tinyquant/graph.h"
#include "tinyquant/pipeline.h"
#include "toolkit/toolkit.h"

namespace tinyquant {

// Calibration samples for `graph` (one float input; labels are never read):
//   "fashion-mnist:train" / "fashion-mnist:test"  `count` images drawn without replacement from the
//       split in `data_dir` by a std::mt19937_64 seeded with `seed` (partial Fisher-Yates over the
//       indices), preprocessed as tq eval does ((pixel / 255 - mean) / std); the model input must
//       be an image classifier's (check_classifier). count > split size takes the whole split.
//   "npy:PATH"  a float32 .npy [N, ...] whose dims after the first match the model input's; all N
//       samples are used (count and seed are ignored).
// Errors name the spec, file or tensor: an unknown spec, a missing file, a shape mismatch, count < 1.
Status load_calibration_set(const std::string& spec, const std::string& data_dir, int32_t count, uint64_t seed,
                            float mean, float std, const Graph& graph, quant::CalibrationData* out);

// One line per layer of a quantize report: name, op, bits, float bytes -> quantized bytes; totals.
void print_rtn_report(const quant::RtnReport& report, std::FILE* out);

// Per optimised layer: held-out MSE before -> after, kept or reverted, iterations, seconds, the
// statistics-tuning corrections; then totals (time, GFLOP/s, peak RSS, largest layer cache).
void print_adaquant_report(const quant::AdaQuantReport& report, std::FILE* out);

// A progress printer for quant::AdaQuantOptions::progress: on a terminal one live line
// (layer i/N, stage, iteration, loss, ETA) rewritten in place; when piped, a plain line per layer
// and stage. `user` is the FILE* to print to.
void print_adaquant_progress(void* user, const quant::AdaQuantProgress& progress);

}  // namespace tinyquant
