// toolkit/quantize.h — what `tq quantize` does, as functions (built when TQ_WITH_QUANT is on).
#pragma once

#include <cstdint>
#include <string>

#include "tinyquant/adaquant.h"
#include "tinyquant/graph.h"
#include "tinyquant/mixed.h"
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
//   "langid:train" / "langid:val" / "langid:test"  `count` words drawn the same way from the text
//       data set (examples/langid; word lists in text.dict_dir, vocabulary text.vocab), as token ids
//       in float32 [count, seq_len] (check_token_classifier).
struct TextDataPaths {
  std::string dict_dir = kDefaultDictDir;
  std::string vocab = kDefaultLangidVocab;
};
Status load_calibration_set(const std::string& spec, const std::string& data_dir, int32_t count, uint64_t seed,
                            float mean, float std, const Graph& graph, quant::CalibrationData* out,
                            const TextDataPaths& text = TextDataPaths());

// One line per layer of a quantize report: name, op, bits, float bytes -> quantized bytes; totals.
void print_rtn_report(const quant::RtnReport& report, std::FILE* out);

// Per optimised layer: held-out MSE before -> after, kept or reverted, iterations, seconds, the
// statistics-tuning corrections; then totals (time, GFLOP/s, peak RSS, largest layer cache).
void print_adaquant_report(const quant::AdaQuantReport& report, std::FILE* out);

// A progress printer for quant::AdaQuantOptions::progress: on a terminal one live line
// (layer i/N, stage, iteration, loss, ETA) rewritten in place; when piped, a plain line per layer
// and stage. `user` is the FILE* to print to.
void print_adaquant_progress(void* user, const quant::AdaQuantProgress& progress);

// Mixed-precision budgets from the command line; errors quote the text and say what was expected.
//   parse_budget_percent: "13%" or "13" (percent of the float32 weights, 0 < p <= 100) -> 0.13
//   parse_budget_bytes:   "400000", "400KB" (1000), "390KiB" (1024), "1.5MB", "1MiB" -> bytes (>= 1)
//   parse_bit_options:    "2,3,4,8" -> {2, 3, 4, 8}: each 2..8, no repeats
//   parse_percent_list:   "13,16,20,25" -> {0.13, 0.16, 0.20, 0.25} (tq sweep --budgets)
Status parse_budget_percent(const std::string& text, double* fraction);
Status parse_budget_bytes(const std::string& text, int64_t* bytes);
Status parse_bit_options(const std::string& text, std::vector<int32_t>* bits);
Status parse_percent_list(const std::string& text, std::vector<double>* fractions);

// Per layer: the sensitivity of each bit option and the chosen bits; then the budget, the model's
// bytes, the solver's status and the measured calibration loss and top-1 drop.
void print_mixed_report(const quant::MixedReport& report, std::FILE* out);

}  // namespace tinyquant
