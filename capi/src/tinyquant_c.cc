// The C API (capi/include/tinyquant.h) over runtime/, schema/ and quant/. Nothing throws across
// it: every entry point catches what the C++ underneath could throw (std::bad_alloc) and turns it
// into a status and a message.
#include "tinyquant.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "install.h"
#include "tinyquant/graph.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/model_io.h"
#include "tinyquant/recalibrate.h"

using namespace tinyquant;

struct tq_model {
  std::shared_ptr<const Graph> graph;
};

struct tq_interpreter {
  std::shared_ptr<const Graph> graph;  // keeps the model's constants alive
  Interpreter interp;
  Backend backend = Backend::kReference;
};

namespace {

thread_local char g_error[Status::kMaxMessage + 64] = "";

tq_status to_c(StatusCode c) {
  switch (c) {
    case StatusCode::kOk: return TQ_OK;
    case StatusCode::kInvalidArgument: return TQ_INVALID_ARGUMENT;
    case StatusCode::kInvalidModel: return TQ_INVALID_MODEL;
    case StatusCode::kUnsupported: return TQ_UNSUPPORTED;
    case StatusCode::kNotFound: return TQ_NOT_FOUND;
    case StatusCode::kIoError: return TQ_IO_ERROR;
    case StatusCode::kOutOfMemory: return TQ_OUT_OF_MEMORY;
    case StatusCode::kCancelled: return TQ_CANCELLED;
    case StatusCode::kInternal: break;
  }
  return TQ_INTERNAL;
}

tq_status fail(tq_status code, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
tq_status fail(tq_status code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(g_error, sizeof g_error, fmt, ap);
  va_end(ap);
  return code;
}

tq_status from(const Status& s) {
  if (s.is_ok()) return TQ_OK;
  return fail(to_c(s.code()), "%s", s.message());
}

// Every entry point's body runs inside this: std::bad_alloc (and anything else) becomes a status.
template <typename F>
tq_status guarded(const char* fn, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(TQ_OUT_OF_MEMORY, "%s: out of memory", fn);
  } catch (const std::exception& e) {
    return fail(TQ_INTERNAL, "%s: %s", fn, e.what());
  } catch (...) {
    return fail(TQ_INTERNAL, "%s: unknown error", fn);
  }
}

tq_status adopt(Graph&& g, tq_model** out) {
  auto m = std::unique_ptr<tq_model>(new tq_model);
  m->graph = std::make_shared<const Graph>(std::move(g));
  *out = m.release();
  return TQ_OK;
}

tq_status info(const tq_model* model, int32_t index, bool input, tq_tensor_info* out, const char* fn) {
  if (!model) return fail(TQ_INVALID_ARGUMENT, "%s: the model handle is NULL", fn);
  if (!out) return fail(TQ_INVALID_ARGUMENT, "%s: the info pointer is NULL", fn);
  const Graph& g = *model->graph;
  const std::vector<int32_t>& list = input ? g.inputs : g.outputs;
  if (index < 0 || size_t(index) >= list.size())
    return fail(TQ_INVALID_ARGUMENT, "%s: %s %d does not exist (the model has %zu)", fn, input ? "input" : "output",
                index, list.size());
  const Tensor& t = g.tensors[list[size_t(index)]];
  std::memset(out, 0, sizeof *out);
  out->name = t.name.c_str();
  out->dtype = static_cast<tq_dtype>(t.dtype);
  out->rank = static_cast<int32_t>(std::min<size_t>(t.shape.size(), TQ_MAX_RANK));
  int64_t elements = 1;
  for (int32_t d = 0; d < out->rank; ++d) {
    // A dynamic dimension 0 (the batch) is 1: what an interpreter runs.
    out->dims[d] = d == 0 && t.shape[0] < 0 ? 1 : t.shape[size_t(d)];
    elements *= std::max(0, out->dims[d]);
  }
  out->bytes = size_t(packed_bytes(t.dtype, elements, 8));
  out->quantized = t.dtype == DType::kInt8 && !t.quant.scale.empty();
  out->scale = out->quantized ? t.quant.scale[0] : 0.0f;
  out->zero_point = out->quantized && !t.quant.zero_point.empty() ? t.quant.zero_point[0] : 0;
  out->bits = out->quantized ? t.quant.bits : 0;
  return TQ_OK;
}

Backend resolve(tq_backend b) {
  if (b == TQ_BACKEND_REFERENCE) return Backend::kReference;
  if (b == TQ_BACKEND_XNNPACK) return Backend::kXnnpack;
  return backend_available(Backend::kXnnpack) ? Backend::kXnnpack : Backend::kReference;
}

}  // namespace

extern "C" {

#define TQ_STR2(x) #x
#define TQ_STR(x) TQ_STR2(x)
const char* tq_version(void) { return TQ_STR(TQ_VERSION_MAJOR) "." TQ_STR(TQ_VERSION_MINOR) "." TQ_STR(TQ_VERSION_PATCH); }
int32_t tq_version_number(void) { return 10000 * TQ_VERSION_MAJOR + 100 * TQ_VERSION_MINOR + TQ_VERSION_PATCH; }
const char* tq_last_error(void) { return g_error; }

const char* tq_status_name(tq_status s) {
  switch (s) {
    case TQ_OK: return "TQ_OK";
    case TQ_INVALID_ARGUMENT: return "TQ_INVALID_ARGUMENT";
    case TQ_INVALID_MODEL: return "TQ_INVALID_MODEL";
    case TQ_UNSUPPORTED: return "TQ_UNSUPPORTED";
    case TQ_NOT_FOUND: return "TQ_NOT_FOUND";
    case TQ_IO_ERROR: return "TQ_IO_ERROR";
    case TQ_OUT_OF_MEMORY: return "TQ_OUT_OF_MEMORY";
    case TQ_INTERNAL: return "TQ_INTERNAL";
    case TQ_CANCELLED: return "TQ_CANCELLED";
    case TQ_REJECTED: return "TQ_REJECTED";
  }
  return "TQ_UNKNOWN_STATUS";
}

tq_status tq_model_load_file(const char* path, tq_model** model) {
  return guarded("tq_model_load_file", [&]() -> tq_status {
    if (!model) return fail(TQ_INVALID_ARGUMENT, "tq_model_load_file: the model out-pointer is NULL");
    *model = nullptr;
    if (!path) return fail(TQ_INVALID_ARGUMENT, "tq_model_load_file: the path is NULL");
    Graph g;
    tq_status s = from(load_model_file(path, &g));
    return s == TQ_OK ? adopt(std::move(g), model) : s;
  });
}

tq_status tq_model_load_memory(const void* data, size_t size, tq_model** model) {
  return guarded("tq_model_load_memory", [&]() -> tq_status {
    if (!model) return fail(TQ_INVALID_ARGUMENT, "tq_model_load_memory: the model out-pointer is NULL");
    *model = nullptr;
    if (!data) return fail(TQ_INVALID_ARGUMENT, "tq_model_load_memory: the data pointer is NULL");
    // A 16-byte aligned copy with 16 readable bytes after it (XNNPACK may over-read constants).
    auto bytes = std::make_shared<std::vector<uint8_t>>(size + 32);
    uint8_t* p = bytes->data();
    p += (16 - reinterpret_cast<uintptr_t>(p) % 16) % 16;
    std::memcpy(p, data, size);
    Graph g;
    tq_status s = from(load_model(p, size, &g, "<memory>"));
    if (s != TQ_OK) return s;
    g.storage = bytes;
    return adopt(std::move(g), model);
  });
}

void tq_model_free(tq_model* model) { delete model; }

tq_status tq_model_num_inputs(const tq_model* model, int32_t* count) {
  if (!model || !count) return fail(TQ_INVALID_ARGUMENT, "tq_model_num_inputs: NULL %s", model ? "count" : "model");
  *count = static_cast<int32_t>(model->graph->inputs.size());
  return TQ_OK;
}

tq_status tq_model_num_outputs(const tq_model* model, int32_t* count) {
  if (!model || !count) return fail(TQ_INVALID_ARGUMENT, "tq_model_num_outputs: NULL %s", model ? "count" : "model");
  *count = static_cast<int32_t>(model->graph->outputs.size());
  return TQ_OK;
}

tq_status tq_model_input_info(const tq_model* model, int32_t index, tq_tensor_info* out) {
  return info(model, index, true, out, "tq_model_input_info");
}

tq_status tq_model_output_info(const tq_model* model, int32_t index, tq_tensor_info* out) {
  return info(model, index, false, out, "tq_model_output_info");
}

tq_status tq_model_has_master(const tq_model* model, int32_t* has) {
  if (!model || !has) return fail(TQ_INVALID_ARGUMENT, "tq_model_has_master: NULL %s", model ? "output" : "model");
  *has = !model->graph->master_weights.empty();
  return TQ_OK;
}

void tq_options_init(tq_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->backend = TQ_BACKEND_AUTO;
  o->threads = 1;
}

tq_status tq_interpreter_create(const tq_model* model, const tq_options* options, tq_interpreter** out) {
  return guarded("tq_interpreter_create", [&]() -> tq_status {
    if (!out) return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_create: the interpreter out-pointer is NULL");
    *out = nullptr;
    if (!model) return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_create: the model handle is NULL");
    tq_options o;
    tq_options_init(&o);
    if (options) {
      if (options->struct_size < sizeof(size_t) || options->struct_size > sizeof o)
        return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_create: options.struct_size %zu is not a tq_options size "
                                         "(call tq_options_init)", options->struct_size);
      std::memcpy(&o, options, options->struct_size);
    }
    if (o.backend < TQ_BACKEND_AUTO || o.backend > TQ_BACKEND_XNNPACK)
      return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_create: backend %d is not a tq_backend", int(o.backend));
    if (o.threads < 1 || o.threads > 256)
      return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_create: threads %d must be in 1..256", o.threads);
    const Backend b = resolve(o.backend);
    if (!backend_available(b))
      return fail(TQ_UNSUPPORTED, "tq_interpreter_create: this build has no %s backend", backend_name(b));
    auto it = std::unique_ptr<tq_interpreter>(new tq_interpreter);
    it->graph = model->graph;
    it->backend = b;
    PrepareOptions po;
    po.backend = b;
    po.threads = o.threads;
    tq_status s = from(it->interp.prepare(*it->graph, po));
    if (s != TQ_OK) return s;
    *out = it.release();
    return TQ_OK;
  });
}

void tq_interpreter_free(tq_interpreter* it) { delete it; }

tq_status tq_interpreter_set_input(tq_interpreter* it, int32_t index, const void* data, size_t bytes) {
  if (!it) return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_set_input: the interpreter handle is NULL");
  if (!data) return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_set_input: the data pointer is NULL");
  if (index < 0 || index >= it->interp.num_inputs())
    return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_set_input: input %d does not exist (the model has %d)", index,
                it->interp.num_inputs());
  const TensorView t = it->interp.input(index);
  const size_t want = size_t(packed_bytes(t.dtype, t.elements(), 8));
  if (bytes != want)
    return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_set_input: input %d ('%s') takes %zu bytes, %zu given", index,
                it->graph->tensors[it->graph->inputs[size_t(index)]].name.c_str(), want, bytes);
  std::memcpy(t.data, data, bytes);
  return TQ_OK;
}

tq_status tq_interpreter_invoke(tq_interpreter* it) {
  if (!it) return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_invoke: the interpreter handle is NULL");
  return guarded("tq_interpreter_invoke", [&]() { return from(it->interp.invoke()); });
}

tq_status tq_interpreter_get_output(const tq_interpreter* it, int32_t index, void* data, size_t bytes) {
  if (!it) return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_get_output: the interpreter handle is NULL");
  if (!data) return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_get_output: the data pointer is NULL");
  if (index < 0 || index >= it->interp.num_outputs())
    return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_get_output: output %d does not exist (the model has %d)", index,
                it->interp.num_outputs());
  const TensorView t = it->interp.output(index);
  const size_t want = size_t(packed_bytes(t.dtype, t.elements(), 8));
  if (bytes != want)
    return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_get_output: output %d ('%s') is %zu bytes, the buffer %zu", index,
                it->graph->tensors[it->graph->outputs[size_t(index)]].name.c_str(), want, bytes);
  std::memcpy(data, t.data, bytes);
  return TQ_OK;
}

tq_status tq_interpreter_arena_bytes(const tq_interpreter* it, size_t* bytes) {
  if (!it || !bytes) return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_arena_bytes: NULL %s", it ? "output" : "interpreter");
  *bytes = it->interp.arena_bytes();
  return TQ_OK;
}

tq_status tq_interpreter_backend(const tq_interpreter* it, tq_backend* backend) {
  if (!it || !backend) return fail(TQ_INVALID_ARGUMENT, "tq_interpreter_backend: NULL %s", it ? "output" : "interpreter");
  *backend = it->backend == Backend::kXnnpack ? TQ_BACKEND_XNNPACK : TQ_BACKEND_REFERENCE;
  return TQ_OK;
}

void tq_recal_options_init(tq_recal_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->mode = TQ_RECAL_FAST;
  o->holdout = 0.2f;
  o->min_samples = 32;
  o->iterations = 200;
  o->max_agreement_drop = 1.0f;
  o->backend = TQ_BACKEND_AUTO;
  o->threads = 1;
}

void tq_recal_result_init(tq_recal_result* r) {
  if (!r) return;
  std::memset(r, 0, sizeof *r);
  r->struct_size = sizeof *r;
}

}  // extern "C"

namespace {

// tq_recal_options (any ABI size) -> the file job's options; a message on anything out of range.
tq_status convert_recal_options(const tq_recal_options* options, const char* fn, tq_recal_options* o,
                                capi::RecalibrateFileOptions* fo) {
  tq_recal_options_init(o);
  if (options) {
    if (options->struct_size < sizeof(size_t) || options->struct_size > sizeof *o)
      return fail(TQ_INVALID_ARGUMENT, "%s: options.struct_size %zu is not a tq_recal_options size "
                                       "(call tq_recal_options_init)", fn, options->struct_size);
    std::memcpy(o, options, options->struct_size);
  }
  if (o->mode != TQ_RECAL_FAST && o->mode != TQ_RECAL_FULL)
    return fail(TQ_INVALID_ARGUMENT, "%s: mode %d is not TQ_RECAL_FAST or TQ_RECAL_FULL", fn, int(o->mode));
  if (!(o->holdout > 0.0f && o->holdout < 1.0f))
    return fail(TQ_INVALID_ARGUMENT, "%s: holdout %g must be in (0, 1)", fn, double(o->holdout));
  if (o->min_samples < 1 || o->iterations < 1 || o->threads < 1 || o->threads > 256 || !(o->max_agreement_drop >= 0.0f))
    return fail(TQ_INVALID_ARGUMENT, "%s: min_samples %d, iterations %d, threads %d and max_agreement_drop %g must "
                                     "be >= 1, >= 1, 1..256 and >= 0",
                fn, o->min_samples, o->iterations, o->threads, double(o->max_agreement_drop));
  if (o->backend < TQ_BACKEND_AUTO || o->backend > TQ_BACKEND_XNNPACK)
    return fail(TQ_INVALID_ARGUMENT, "%s: backend %d is not a tq_backend", fn, int(o->backend));
  fo->quant.full = o->mode == TQ_RECAL_FULL;
  fo->quant.memory_budget_bytes = o->memory_budget_bytes ? int64_t(o->memory_budget_bytes) : -1;
  fo->quant.holdout = o->holdout;
  fo->quant.min_samples = o->min_samples;
  fo->quant.iterations = o->iterations;
  fo->quant.seed = o->seed;
  fo->quant.backend = resolve(o->backend);
  fo->quant.threads = o->threads;
  fo->max_agreement_drop = o->max_agreement_drop;
  fo->progress = o->progress;
  fo->progress_user = o->progress_user;
  return TQ_OK;
}

// Checks result's ABI size and clears everything after it.
tq_status check_result(tq_recal_result* result, const char* fn) {
  if (!result) return TQ_OK;
  tq_recal_result local;
  if (result->struct_size < sizeof(size_t) || result->struct_size > sizeof local)
    return fail(TQ_INVALID_ARGUMENT, "%s: result.struct_size %zu is not a tq_recal_result size "
                                     "(call tq_recal_result_init)", fn, result->struct_size);
  std::memset(reinterpret_cast<char*>(result) + sizeof(size_t), 0, result->struct_size - sizeof(size_t));
  return TQ_OK;
}

// The report into the caller's result (as much of it as its struct_size holds).
void fill_result(const capi::RecalibrateFileResult& r, const tq_recal_options& o, double seconds,
                 tq_recal_result* result) {
  if (!result) return;
  tq_recal_result local;
  tq_recal_result_init(&local);
  local.installed = r.installed;
  local.samples_given = r.report.samples_given;
  local.calibration_samples = r.report.calibration_samples;
  local.holdout_samples = r.report.holdout_samples;
  local.subsampled = r.report.subsampled;
  local.old_agreement = r.report.old_agreement;
  local.new_agreement = r.report.new_agreement;
  local.memory_budget_bytes = o.memory_budget_bytes;
  local.estimated_bytes = size_t(std::max<int64_t>(0, r.report.estimated_bytes));
  local.peak_bytes = size_t(std::max<int64_t>(0, r.report.peak_bytes));
  local.seconds = seconds;
  std::snprintf(local.reason, sizeof local.reason, "%s", r.reason.c_str());
  std::memcpy(reinterpret_cast<char*>(result) + sizeof(size_t), reinterpret_cast<char*>(&local) + sizeof(size_t),
              result->struct_size - sizeof(size_t));
}

}  // namespace

extern "C" {

tq_status tq_recal_plan(const char* path, int32_t count, const tq_recal_options* options, tq_recal_result* result) {
  return guarded("tq_recal_plan", [&]() -> tq_status {
    tq_status st = check_result(result, "tq_recal_plan");
    if (st != TQ_OK) return st;
    tq_recal_options o;
    capi::RecalibrateFileOptions fo;
    st = convert_recal_options(options, "tq_recal_plan", &o, &fo);
    if (st != TQ_OK) return st;
    if (!path) return fail(TQ_INVALID_ARGUMENT, "tq_recal_plan: the model path is NULL");
    if (count <= 0) return fail(TQ_INVALID_ARGUMENT, "tq_recal_plan: %d samples; at least one is needed", count);
    capi::RecalibrateFileResult r;
    Status s = capi::plan_file(path, count, fo, &r);
    fill_result(r, o, 0.0, result);
    return from(s);
  });
}

tq_status tq_recalibrate(const char* path, const float* samples, size_t samples_bytes, int32_t count,
                         const tq_recal_options* options, tq_recal_result* result) {
  return guarded("tq_recalibrate", [&]() -> tq_status {
    const auto t0 = std::chrono::steady_clock::now();
    tq_status st = check_result(result, "tq_recalibrate");
    if (st != TQ_OK) return st;
    tq_recal_options o;
    capi::RecalibrateFileOptions fo;
    st = convert_recal_options(options, "tq_recalibrate", &o, &fo);
    if (st != TQ_OK) return st;
    if (!path) return fail(TQ_INVALID_ARGUMENT, "tq_recalibrate: the model path is NULL");
    if (!samples) return fail(TQ_INVALID_ARGUMENT, "tq_recalibrate: the samples pointer is NULL");
    if (count <= 0) return fail(TQ_INVALID_ARGUMENT, "tq_recalibrate: %d samples; at least one is needed", count);
    if (samples_bytes % sizeof(float) != 0)
      return fail(TQ_INVALID_ARGUMENT, "tq_recalibrate: %zu sample bytes is not a whole number of float32 values",
                  samples_bytes);
    capi::RecalibrateFileResult r;
    Status s = capi::recalibrate_file(path, samples, int64_t(samples_bytes / sizeof(float)), count, fo, &r);
    fill_result(r, o, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), result);
    if (!s.is_ok()) return from(s);
    if (!r.installed) return fail(TQ_REJECTED, "%s: the recalibrated model was not installed: %s", path, r.reason.c_str());
    return TQ_OK;
  });
}

}  // extern "C"
