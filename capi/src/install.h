// File-level recalibration behind tq_recalibrate: recalibrate in memory, write the new model
// beside the old one, read it back and validate it, and only then rename it into place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyquant/graph.h"
#include "tinyquant/recalibrate.h"
#include "tinyquant/status.h"

namespace tinyquant {
namespace capi {

using ProgressFn = int (*)(void* user, const char* stage, double fraction);

struct RecalibrateFileOptions {
  quant::RecalibrationOptions quant;
  float max_agreement_drop = 1.0f;  // points the held-back agreement may fall and still install
  ProgressFn progress = nullptr;
  void* progress_user = nullptr;
};

struct RecalibrateFileResult {
  bool installed = false;
  std::string reason;  // why not installed
  quant::RecalibrationReport report;
};

// What a candidate file must satisfy to replace the old model.
struct InstallCheck {
  const Graph* old_model = nullptr;     // inputs, outputs and calibration bit-widths must match it
  const Graph* master = nullptr;        // the float master the agreement is measured against
  const float* held = nullptr;          // held-back samples
  int32_t held_count = 0;
  double min_agreement = 0.0;           // % top-1 agreement with the master, at least
  Backend backend = Backend::kReference;
  int32_t threads = 1;
};

// Loads `path` (verifying it) and checks it against `check`; the reason on failure names the
// mismatch (kInvalidModel / kInvalidArgument / kUnsupported).
Status validate_candidate(const char* path, const InstallCheck& check, double* agreement);

// Writes bytes to <path>.tq-new, fsyncs, validates that file, renames it over path (fsync dir).
// A failed validation leaves path untouched and returns the reason.
Status install_model(const char* path, const std::vector<uint8_t>& bytes, const InstallCheck& check, double* agreement);

// The plan alone (quant::plan_recalibration on the model's float master, with the file's own
// working memory counted): result->report's split, sample counts and estimate.
Status plan_file(const char* path, int32_t count, const RecalibrateFileOptions& options, RecalibrateFileResult* result);

// The whole job: errors are those of quant::recalibrate_graph and of reading / writing files; a
// candidate that fails validation is not an error: result->installed is false with the reason.
Status recalibrate_file(const char* path, const float* samples, int64_t floats, int32_t count,
                        const RecalibrateFileOptions& options, RecalibrateFileResult* result);

}  // namespace capi
}  // namespace tinyquant
