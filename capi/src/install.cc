// Validated, atomic model installation (see install.h).
#include "install.h"

#include <sys/stat.h>

#include <cstring>

#include "tinyquant/file_io.h"
#include "tinyquant/model_io.h"

namespace tinyquant {
namespace capi {

namespace {

bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.name == b.name && a.shape == b.shape && a.dtype == b.dtype;
}

struct Validation {
  const InstallCheck* check;
  double agreement = 0.0;
};

Status validate_temp(void* user, const char* temp) {
  Validation* v = static_cast<Validation*>(user);
  return validate_candidate(temp, *v->check, &v->agreement);
}

// Progress from the quant job into the caller's callback (nonzero = cancel).
struct Bridge {
  const RecalibrateFileOptions* o;
  static bool fn(void* user, const quant::RecalibrationProgress& p) {
    const Bridge* b = static_cast<const Bridge*>(user);
    if (std::strcmp(p.stage, "done") == 0) return true;  // writing and validating the file follow
    return b->o->progress(b->o->progress_user, p.stage, p.fraction * 0.95) == 0;
  }
};

}  // namespace

Status validate_candidate(const char* path, const InstallCheck& c, double* agreement) {
  TQ_ENSURE(c.old_model && c.master, kInvalidArgument, "validate_candidate: no reference models");
  Graph g;
  TQ_RETURN_IF_ERROR(load_model_file(path, &g));
  const Graph& old = *c.old_model;
  TQ_ENSURE(g.inputs.size() == old.inputs.size() && g.outputs.size() == old.outputs.size(), kInvalidModel,
            "%s: %zu inputs / %zu outputs, the installed model has %zu / %zu", path, g.inputs.size(), g.outputs.size(),
            old.inputs.size(), old.outputs.size());
  for (size_t i = 0; i < g.inputs.size(); ++i)
    TQ_ENSURE(same_tensor(g.tensors[g.inputs[i]], old.tensors[old.inputs[i]]), kInvalidModel,
              "%s: input %zu ('%s') differs from the installed model's ('%s') in name, shape or dtype", path, i,
              g.tensors[g.inputs[i]].name.c_str(), old.tensors[old.inputs[i]].name.c_str());
  for (size_t i = 0; i < g.outputs.size(); ++i)
    TQ_ENSURE(same_tensor(g.tensors[g.outputs[i]], old.tensors[old.outputs[i]]), kInvalidModel,
              "%s: output %zu ('%s') differs from the installed model's ('%s') in name, shape or dtype", path, i,
              g.tensors[g.outputs[i]].name.c_str(), old.tensors[old.outputs[i]].name.c_str());
  TQ_ENSURE(g.calibration.weight_bits == old.calibration.weight_bits &&
                g.calibration.activation_bits == old.calibration.activation_bits,
            kInvalidModel, "%s: its bit-widths differ from the installed model's", path);
  TQ_ENSURE(!g.master_weights.empty(), kInvalidModel, "%s: no master weights (the next recalibration would need them)",
            path);
  double a = 0.0;
  TQ_RETURN_IF_ERROR(quant::top1_agreement(g, *c.master, c.held, c.held_count, c.backend, c.threads, &a)
                         .with_context("%s", path));
  if (agreement) *agreement = a;
  TQ_ENSURE(a >= c.min_agreement, kInvalidModel,
            "%s: agrees with the float master on %.2f%% of the held-back samples; at least %.2f%% is required", path, a,
            c.min_agreement);
  return Status::ok();
}

Status install_model(const char* path, const std::vector<uint8_t>& bytes, const InstallCheck& check, double* agreement) {
  Validation v;
  v.check = &check;
  TQ_RETURN_IF_ERROR(write_file_validated(path, bytes.data(), bytes.size(), &validate_temp, &v));
  if (agreement) *agreement = v.agreement;
  return Status::ok();
}

namespace {
// The old model in memory, the new one serialized, and the candidate loaded back to validate it.
int64_t file_working_bytes(const char* path) {
  struct stat st;
  return ::stat(path, &st) == 0 ? 3 * int64_t(st.st_size) : 0;
}
}  // namespace

Status plan_file(const char* path, int32_t count, const RecalibrateFileOptions& options, RecalibrateFileResult* result) {
  TQ_ENSURE(path && result, kInvalidArgument, "plan_file needs a path and a result");
  *result = RecalibrateFileResult();
  Graph old, master;
  TQ_RETURN_IF_ERROR(load_model_file(path, &old));
  TQ_RETURN_IF_ERROR(quant::master_float_graph(old, &master).with_context("%s", path));
  quant::RecalibrationOptions qo = options.quant;
  qo.extra_bytes += file_working_bytes(path);
  return quant::plan_recalibration(master, count, qo, &result->report).with_context("%s", path);
}

Status recalibrate_file(const char* path, const float* samples, int64_t floats, int32_t count,
                        const RecalibrateFileOptions& options, RecalibrateFileResult* result) {
  TQ_ENSURE(path && result, kInvalidArgument, "recalibrate_file needs a path and a result");
  *result = RecalibrateFileResult();
  Graph old;
  TQ_RETURN_IF_ERROR(load_model_file(path, &old));
  quant::RecalibrationOptions qo = options.quant;
  qo.extra_bytes += file_working_bytes(path);
  Bridge bridge{&options};
  if (options.progress) {
    qo.progress = &Bridge::fn;
    qo.progress_user = &bridge;
  }
  Graph fresh;
  TQ_RETURN_IF_ERROR(quant::recalibrate_graph(old, samples, floats, count, qo, &fresh, &result->report)
                         .with_context("%s", path));
  quant::RecalibrationReport& r = result->report;
  Graph master;
  TQ_RETURN_IF_ERROR(quant::master_float_graph(old, &master));
  const int64_t per = floats / count;
  std::vector<float> held(static_cast<size_t>(r.holdout_samples) * static_cast<size_t>(per));
  for (int32_t i = 0; i < r.holdout_samples; ++i)
    std::memcpy(&held[size_t(i) * size_t(per)], samples + size_t(r.holdout[size_t(i)]) * size_t(per), size_t(per) * 4);
  if (options.progress && options.progress(options.progress_user, "write", 0.95) != 0)
    return Status::error(StatusCode::kCancelled, "%s: recalibration cancelled", path);
  std::vector<uint8_t> bytes;
  TQ_RETURN_IF_ERROR(serialize_model(fresh, &bytes).with_context("%s: the recalibrated model", path));
  fresh = Graph();
  InstallCheck check;
  check.old_model = &old;
  check.master = &master;
  check.held = held.data();
  check.held_count = r.holdout_samples;
  check.min_agreement = r.old_agreement - double(options.max_agreement_drop);
  check.backend = qo.backend;
  check.threads = qo.threads;
  double agreement = 0.0;
  Status s = install_model(path, bytes, check, &agreement);
  r.peak_bytes = std::max(r.peak_bytes, quant::peak_rss_growth());
  if (s.code() == StatusCode::kInvalidModel) {  // the candidate failed validation: the old model stays
    result->reason = s.message();
    if (options.progress) options.progress(options.progress_user, "done", 1.0);
    return Status::ok();
  }
  TQ_RETURN_IF_ERROR(s);
  // The file on disk must be what was measured in memory (deterministic kernels).
  r.new_agreement = agreement;
  result->installed = true;
  if (options.progress) options.progress(options.progress_user, "done", 1.0);
  return Status::ok();
}

}  // namespace capi
}  // namespace tinyquant
