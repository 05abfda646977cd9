// Master weights and on-device recalibration (contract in tinyquant/recalibrate.h).
#include "tinyquant/recalibrate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <numeric>
#include <random>

#include "rewrite.h"
#include "tinyquant/adaquant.h"
#include "tinyquant/op_info.h"
#include "tinyquant/port.h"
#include "tinyquant/shape_inference.h"

namespace tinyquant {
namespace quant {

namespace {

// IEEE 754 binary16 <-> binary32, round to nearest even (no dependence on compiler half types).
uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t exp = (x >> 23) & 0xffu;
  uint32_t man = x & 0x7fffffu;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (man ? 0x200u : 0u));  // Inf / NaN
  const int32_t e = int32_t(exp) - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> Inf
  if (e <= 0) {                                               // subnormal half or zero
    if (e < -10) return static_cast<uint16_t>(sign);
    man |= 0x800000u;
    const uint32_t shift = uint32_t(14 - e);
    uint32_t h = man >> shift;
    const uint32_t rem = man & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (uint32_t(e) << 10) | (man >> 13);
  const uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: still right
  return static_cast<uint16_t>(sign | h);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t x;
  if (exp == 0) {
    if (man == 0) {
      x = sign;
    } else {  // subnormal: normalise
      int32_t e = -1;
      do {
        man <<= 1;
        ++e;
      } while (!(man & 0x400u));
      x = sign | (uint32_t(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000u | (man << 13);
  } else {
    x = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

bool weighted_int8(const Graph& g, const Operator& op) {
  return op_info(op.type).weighted && op.inputs.size() > 1 && op.inputs[1] >= 0 &&
         g.tensors[op.inputs[1]].dtype == DType::kInt8;
}

std::atomic<int64_t> g_rss_base{0};

bool report_progress(const RecalibrationOptions& o, const char* stage, int32_t step, int32_t steps, double fraction) {
  if (!o.progress) return true;
  RecalibrationProgress p;
  p.stage = stage;
  p.step = step;
  p.steps = steps;
  p.fraction = std::min(1.0, std::max(0.0, fraction));
  return o.progress(o.progress_user, p);
}

// AdaQuant / statistics-tuning progress into the caller's callback; a false return cancels.
// Full mode: AdaQuant over 5..75 % of the job, statistics tuning 75..90 %; fast: tuning 5..90 %.
struct ProgressBridge {
  const RecalibrationOptions* opt = nullptr;
  std::atomic<bool> cancel{false};
  static void fn(void* user, const AdaQuantProgress& p) {
    ProgressBridge* b = static_cast<ProgressBridge*>(user);
    const double layer = p.layers > 0 ? (p.layer + (p.iterations > 0 ? double(p.iteration) / p.iterations : 1.0)) /
                                            p.layers
                                      : 1.0;
    const bool tuning = std::strcmp(p.stage, "adaquant") != 0;
    const double begin = !b->opt->full ? 0.05 : tuning ? 0.75 : 0.05;
    const double span = !b->opt->full ? 0.85 : tuning ? 0.15 : 0.70;
    if (!report_progress(*b->opt, p.stage, p.layer, p.layers, begin + span * std::min(1.0, layer))) b->cancel = true;
  }
};

}  // namespace

void reset_peak_rss() {
#if defined(__linux__)
  // Writing 5 to clear_refs resets VmHWM to the current resident set (Linux >= 4.0).
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
#endif
  g_rss_base = rss_bytes();
}

int64_t peak_rss_growth() {
  const int64_t hwm = peak_rss_bytes();
  return hwm > g_rss_base ? hwm - g_rss_base : 0;
}

Status attach_master_weights(const Graph& float_graph, bool fp16, Graph* quantized) {
  TQ_ENSURE(quantized, kInvalidArgument, "attach_master_weights needs a graph");
  Graph& q = *quantized;
  TQ_ENSURE(q.master_weights.empty(), kInvalidArgument, "the model already carries master weights");
  std::map<std::string, int32_t> by_name;
  for (size_t i = 0; i < float_graph.operators.size(); ++i) by_name[float_graph.operators[i].name] = int32_t(i);
  std::vector<MasterWeights> masters;
  std::vector<Buffer> buffers;
  const int32_t first_buffer = static_cast<int32_t>(q.buffers.size());
  auto add = [&](int32_t tensor, const float* v, int64_t n, bool half) {
    Buffer b;
    if (half) {
      b.owned.resize(size_t(n) * 2);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = float_to_half(v[i]);
        std::memcpy(&b.owned[size_t(i) * 2], &h, 2);
      }
    } else {
      b.owned.resize(size_t(n) * 4);
      std::memcpy(b.owned.data(), v, size_t(n) * 4);
    }
    MasterWeights m;
    m.tensor = tensor;
    m.fp16 = half;
    m.buffer = first_buffer + static_cast<int32_t>(buffers.size());
    buffers.push_back(std::move(b));
    masters.push_back(m);
  };
  for (const Operator& op : q.operators) {
    if (!weighted_int8(q, op)) continue;
    auto it = by_name.find(op.name);
    TQ_ENSURE(it != by_name.end(), kInvalidArgument, "%s '%s': the float model has no operator of that name",
              op_name(op.type), op.name.c_str());
    const Operator& fop = float_graph.operators[it->second];
    const Tensor& qw = q.tensors[op.inputs[1]];
    TQ_ENSURE(fop.type == op.type && fop.inputs.size() > 1 && fop.inputs[1] >= 0 &&
                  float_graph.tensors[fop.inputs[1]].is_constant() &&
                  float_graph.tensors[fop.inputs[1]].dtype == DType::kFloat32 &&
                  float_graph.tensors[fop.inputs[1]].shape == qw.shape,
              kInvalidArgument, "%s '%s': the float model's operator of that name has no float weights shaped like %s",
              op_name(op.type), op.name.c_str(), qw.name.c_str());
    const int64_t n = shape_elements(qw.shape);
    add(op.inputs[1], float_graph.constant_data<float>(fop.inputs[1]), n, fp16);
    if (op.inputs.size() > 2 && op.inputs[2] >= 0) {
      const int64_t nb = shape_elements(q.tensors[op.inputs[2]].shape);
      std::vector<float> bias(static_cast<size_t>(nb), 0.0f);  // a float layer without bias: zeros
      if (fop.inputs.size() > 2 && fop.inputs[2] >= 0) {
        const Tensor& fb = float_graph.tensors[fop.inputs[2]];
        TQ_ENSURE(fb.is_constant() && fb.dtype == DType::kFloat32 && shape_elements(fb.shape) == nb, kInvalidArgument,
                  "%s '%s': the float bias has %lld values, the quantized one %lld", op_name(op.type), op.name.c_str(),
                  static_cast<long long>(shape_elements(fb.shape)), static_cast<long long>(nb));
        const float* v = float_graph.constant_data<float>(fop.inputs[2]);
        bias.assign(v, v + nb);
      }
      add(op.inputs[2], bias.data(), nb, false);
    }
  }
  TQ_ENSURE(!masters.empty(), kInvalidArgument, "the model has no int8 weighted operator to keep master weights of");
  for (Buffer& b : buffers) q.buffers.push_back(std::move(b));
  q.master_weights = std::move(masters);
  return Status::ok();
}

Status master_float_graph(const Graph& quantized, Graph* float_graph, std::vector<int32_t>* layer_ops) {
  TQ_ENSURE(float_graph, kInvalidArgument, "master_float_graph needs an output graph");
  TQ_ENSURE(!quantized.master_weights.empty(), kInvalidArgument,
            "the model carries no float master weights (quantize it with --keep-master fp16 to recalibrate later)");
  std::vector<int32_t> master(quantized.tensors.size(), -1);
  for (size_t i = 0; i < quantized.master_weights.size(); ++i) {
    const MasterWeights& m = quantized.master_weights[i];
    TQ_ENSURE(m.tensor >= 0 && size_t(m.tensor) < quantized.tensors.size() && m.buffer >= 0 &&
                  size_t(m.buffer) < quantized.buffers.size(),
              kInvalidModel, "master weights %zu: tensor %d / buffer %d out of range", i, int(m.tensor), int(m.buffer));
    const int64_t n = shape_elements(quantized.tensors[m.tensor].shape);
    TQ_ENSURE(n >= 0 && quantized.buffers[m.buffer].size() == size_t(n) * (m.fp16 ? 2u : 4u), kInvalidModel,
              "master weights of '%s': %zu bytes, expected %lld", quantized.tensors[m.tensor].name.c_str(),
              quantized.buffers[m.buffer].size(), static_cast<long long>(n * (m.fp16 ? 2 : 4)));
    master[m.tensor] = static_cast<int32_t>(i);
  }
  std::vector<bool> through(quantized.tensors.size(), true);  // every activation in float
  Graph sim;
  SimulatedMap map;
  TQ_RETURN_IF_ERROR(build_simulated_graph_mapped(quantized, through, &sim, &map));
  std::vector<int32_t> layers;
  auto put = [&](int32_t qt, int32_t st, const Operator& op) -> Status {
    TQ_ENSURE(master[qt] >= 0, kInvalidModel, "%s '%s': no master copy of '%s'", op_name(op.type), op.name.c_str(),
              quantized.tensors[qt].name.c_str());
    const MasterWeights& m = quantized.master_weights[master[qt]];
    const int64_t n = shape_elements(quantized.tensors[qt].shape);
    TQ_ENSURE(st >= 0 && sim.tensors[st].dtype == DType::kFloat32 && shape_elements(sim.tensors[st].shape) == n,
              kInternal, "%s '%s': the float twin's constant for '%s' does not match", op_name(op.type),
              op.name.c_str(), quantized.tensors[qt].name.c_str());
    std::vector<float> v(static_cast<size_t>(n));
    const uint8_t* src = quantized.buffers[m.buffer].data();
    for (int64_t i = 0; i < n; ++i) {
      if (m.fp16) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        v[size_t(i)] = half_to_float(h);
      } else {
        std::memcpy(&v[size_t(i)], src + 4 * i, 4);
      }
      TQ_ENSURE(std::isfinite(v[size_t(i)]), kInvalidModel, "master copy of '%s': element %lld is not finite",
                quantized.tensors[qt].name.c_str(), static_cast<long long>(i));
    }
    // A fresh buffer (the twin's constants may share storage with the quantized graph).
    Buffer b;
    b.owned.resize(size_t(n) * 4);
    std::memcpy(b.owned.data(), v.data(), b.owned.size());
    sim.buffers.push_back(std::move(b));
    Tensor& t = sim.tensors[st];
    t.buffer = static_cast<int32_t>(sim.buffers.size() - 1);
    t.name = quantized.tensors[qt].name;
    t.quant = Quantization();
    return Status::ok();
  };
  for (size_t i = 0; i < quantized.operators.size(); ++i) {
    const Operator& op = quantized.operators[i];
    if (!weighted_int8(quantized, op)) continue;
    const int32_t s = map.op[i];
    TQ_ENSURE(s >= 0, kInternal, "%s '%s': no float twin", op_name(op.type), op.name.c_str());
    const Operator& sop = sim.operators[s];
    TQ_RETURN_IF_ERROR(put(op.inputs[1], sop.inputs[1], op));
    if (op.inputs.size() > 2 && op.inputs[2] >= 0) TQ_RETURN_IF_ERROR(put(op.inputs[2], sop.inputs[2], op));
    layers.push_back(s);
  }
  // Drop the buffers nothing reads any more (the dequantized weights the masters replaced).
  {
    std::vector<int32_t> remap(sim.buffers.size(), -1);
    std::vector<Buffer> kept;
    for (Tensor& t : sim.tensors) {
      if (t.buffer < 0) continue;
      if (remap[t.buffer] < 0) {
        remap[t.buffer] = static_cast<int32_t>(kept.size());
        kept.push_back(std::move(sim.buffers[t.buffer]));
      }
      t.buffer = remap[t.buffer];
    }
    sim.buffers = std::move(kept);
  }
  // The model's inputs and outputs keep their names (the twin suffixes the values it computes).
  for (size_t i = 0; i < quantized.inputs.size(); ++i) sim.tensors[sim.inputs[i]].name = quantized.tensors[quantized.inputs[i]].name;
  for (size_t i = 0; i < quantized.outputs.size(); ++i)
    sim.tensors[sim.outputs[i]].name = quantized.tensors[quantized.outputs[i]].name;
  // The twin copied the quantized graph's master buffers and calibration record; the float model
  // carries neither.
  sim.master_weights.clear();
  sim.calibration = CalibrationRecord();
  sim.producer = quantized.producer + " (float master)";
  TQ_RETURN_IF_ERROR(validate_graph(sim).with_context("float master"));
  *float_graph = std::move(sim);
  if (layer_ops) *layer_ops = std::move(layers);
  return Status::ok();
}

int64_t estimate_recalibration_bytes(const Graph& fg, int32_t samples, bool full) {
  std::vector<Dims> dims;
  if (!infer_shapes(fg, 1, &dims).is_ok()) return -1;
  int64_t input = 0, activations = 0, layer = 0, constants = 0;
  for (int32_t in : fg.inputs) input += dims[in].elements();
  for (size_t t = 0; t < fg.tensors.size(); ++t)
    if (!fg.tensors[t].is_constant()) activations += dims[t].elements();
  for (const Buffer& b : fg.buffers) constants += static_cast<int64_t>(b.size());
  for (const Operator& op : fg.operators)
    if (op_info(op.type).weighted) layer = std::max(layer, dims[op.inputs[0]].elements() + dims[op.outputs[0]].elements());
  // Per sample: the calibration copy (float), int8 activation caches of the streaming passes, and
  // float inputs / outputs of the layer being tuned (statistics tuning: 2 copies; AdaQuant: its
  // float input, quantized input, target and gradient scratch as well).
  const int64_t per_sample = 4 * input + activations + 4 * layer * (full ? 3 : 2);
  // Fixed: the float master, the old and new quantized graphs, the simulated twin and the
  // interpreters' packed weights (about 8 copies of the float constants at most); the live
  // tensors of a 50-sample calibration batch in float (twice the largest layer's); allocator and
  // thread-pool slack. Fitted above the measured peaks of lenet and resnet20, fast and full, at
  // 40..1600 samples (tests/capi check measured <= estimate).
  const int64_t fixed = 8 * constants + 50 * 4 * 2 * layer + (int64_t(16) << 20);
  return fixed + int64_t(samples) * per_sample;
}

Status top1_agreement(const Graph& model, const Graph& reference, const float* samples, int32_t count, Backend backend,
                      int32_t threads, double* percent) {
  TQ_ENSURE(percent && (samples || count == 0) && count >= 0, kInvalidArgument, "top1_agreement: bad arguments");
  TQ_ENSURE(model.inputs.size() == 1 && reference.inputs.size() == 1 && !model.outputs.empty() &&
                !reference.outputs.empty(),
            kInvalidArgument, "top1_agreement: single-input models only");
  TQ_ENSURE(model.tensors[model.inputs[0]].shape == reference.tensors[reference.inputs[0]].shape &&
                model.tensors[model.outputs[0]].shape == reference.tensors[reference.outputs[0]].shape,
            kInvalidArgument, "the two models' input or output shapes differ");
  if (count == 0) return *percent = 100.0, Status::ok();
  const int32_t batch = std::min<int32_t>(count, 50);
  PrepareOptions po;
  po.backend = backend;
  po.threads = threads;
  po.batch = batch;
  Interpreter a, b;
  TQ_RETURN_IF_ERROR(a.prepare(model, po));
  TQ_RETURN_IF_ERROR(b.prepare(reference, po));
  const int64_t per = a.input(0).elements() / batch;
  int64_t same = 0;
  for (int32_t at = 0; at < count; at += batch) {
    const int32_t n = std::min(batch, count - at);
    for (Interpreter* it : {&a, &b}) {
      TensorView in = it->input(0);
      TQ_ENSURE(in.dtype == DType::kFloat32, kUnsupported, "top1_agreement: the model input is not float");
      std::memcpy(in.as<float>(), samples + int64_t(at) * per, size_t(n * per) * 4);
      if (n < batch) std::fill(in.as<float>() + n * per, in.as<float>() + batch * per, 0.0f);
      TQ_RETURN_IF_ERROR(it->invoke());
    }
    const TensorView oa = a.output(0), ob = b.output(0);
    TQ_ENSURE(oa.dtype == DType::kFloat32 && ob.dtype == DType::kFloat32, kUnsupported,
              "top1_agreement: the model output is not float");
    const int64_t classes = oa.dims.rank > 0 ? oa.dims[oa.dims.rank - 1] : 1;
    const int64_t rows = oa.elements() / classes, rows_per_sample = rows / batch;
    for (int32_t s = 0; s < n; ++s) {
      bool agree = true;
      for (int64_t r = 0; r < rows_per_sample; ++r) {
        const float* pa = oa.as<float>() + (s * rows_per_sample + r) * classes;
        const float* pb = ob.as<float>() + (s * rows_per_sample + r) * classes;
        agree &= std::max_element(pa, pa + classes) - pa == std::max_element(pb, pb + classes) - pb;
      }
      same += agree;
    }
  }
  *percent = 100.0 * double(same) / double(count);
  return Status::ok();
}

Status plan_recalibration(const Graph& fg, int32_t count, const RecalibrationOptions& opt, RecalibrationReport* r) {
  TQ_ENSURE(r && count > 0, kInvalidArgument, "plan_recalibration: %d samples", count);
  r->mode = opt.full ? "full" : "fast";
  r->samples_given = count;
  r->memory_budget_bytes = opt.memory_budget_bytes;
  r->holdout_samples = std::max<int32_t>(1, int32_t(std::lround(opt.holdout * count)));
  int32_t calib_n = count - r->holdout_samples;
  r->calibration_samples = std::max(0, calib_n);
  r->estimated_bytes = estimate_recalibration_bytes(fg, std::max(calib_n, opt.min_samples), opt.full) + opt.extra_bytes;
  TQ_ENSURE(calib_n >= opt.min_samples, kInvalidArgument,
            "%d samples leave %d to calibrate on after holding back %d for validation; at least %d are needed",
            count, calib_n, r->holdout_samples, opt.min_samples);
  // The budget: the most calibration samples that fit, or a refusal naming what is needed.
  if (opt.memory_budget_bytes >= 0) {
    const int64_t need_min = estimate_recalibration_bytes(fg, opt.min_samples, opt.full) + opt.extra_bytes;
    TQ_ENSURE(need_min >= 0, kInvalidModel, "cannot infer the model's shapes");
    if (need_min > opt.memory_budget_bytes) {
      r->estimated_bytes = need_min;
      r->calibration_samples = 0;
      return Status::error(StatusCode::kOutOfMemory,
                           "%s recalibration needs at least %lld bytes of working memory (%d samples); the budget is "
                           "%lld bytes",
                           r->mode.c_str(), static_cast<long long>(need_min), opt.min_samples,
                           static_cast<long long>(opt.memory_budget_bytes));
    }
    int32_t lo = opt.min_samples, hi = calib_n;
    while (lo < hi) {  // the largest n in [min_samples, calib_n] whose estimate fits
      const int32_t mid = lo + (hi - lo + 1) / 2;
      if (estimate_recalibration_bytes(fg, mid, opt.full) + opt.extra_bytes <= opt.memory_budget_bytes) lo = mid;
      else hi = mid - 1;
    }
    r->subsampled = lo < calib_n;
    calib_n = lo;
  }
  r->calibration_samples = calib_n;
  r->estimated_bytes = estimate_recalibration_bytes(fg, calib_n, opt.full) + opt.extra_bytes;
  return Status::ok();
}

Status recalibrate_graph(const Graph& shipped, const float* samples, int64_t floats, int32_t count,
                         const RecalibrationOptions& opt, Graph* out, RecalibrationReport* report_out) {
  const uint64_t t0 = port::now_us();
  reset_peak_rss();
  TQ_ENSURE(out, kInvalidArgument, "recalibrate_graph needs an output graph");
  TQ_ENSURE(opt.holdout > 0.0f && opt.holdout < 1.0f, kInvalidArgument, "holdout fraction %g must be in (0, 1)",
            double(opt.holdout));
  TQ_ENSURE(opt.min_samples >= 1 && opt.iterations >= 1, kInvalidArgument,
            "min_samples and iterations must be >= 1 (%d, %d)", opt.min_samples, opt.iterations);
  TQ_ENSURE(shipped.calibration.present && !shipped.calibration.weight_bits.empty(), kInvalidModel,
            "the model has no calibration record (it was not written by tq quantize)");
  RecalibrationReport r;
  r.mode = opt.full ? "full" : "fast";
  r.memory_budget_bytes = opt.memory_budget_bytes;
  r.samples_given = count;
  TQ_ENSURE(samples && count > 0, kInvalidArgument, "no samples to recalibrate on (%d given)", count);
  if (!report_progress(opt, "estimate", 0, 1, 0.0)) return Status::error(StatusCode::kCancelled, "recalibration cancelled");

  Graph fg;
  std::vector<int32_t> layer_ops;
  TQ_RETURN_IF_ERROR(master_float_graph(shipped, &fg, &layer_ops));
  TQ_ENSURE(fg.inputs.size() == 1, kUnsupported, "recalibration takes single-input models (this one has %zu)",
            fg.inputs.size());
  std::vector<Dims> dims;
  TQ_RETURN_IF_ERROR(infer_shapes(fg, 1, &dims).with_context("float master"));
  const int64_t per = dims[fg.inputs[0]].elements();  // one sample: the input at batch 1
  TQ_ENSURE(per > 0 && floats == int64_t(count) * per, kInvalidArgument,
            "the samples are %lld floats; expected %d samples x %lld floats (the model input '%s')",
            static_cast<long long>(floats), count, static_cast<long long>(per), fg.tensors[fg.inputs[0]].name.c_str());
  for (int64_t i = 0; i < floats; ++i)
    TQ_ENSURE(std::isfinite(samples[i]), kInvalidArgument, "sample %lld, element %lld is not finite",
              static_cast<long long>(i / per), static_cast<long long>(i % per));
  TQ_ENSURE(layer_ops.size() == shipped.calibration.weight_bits.size(), kInvalidModel,
            "the calibration record lists %zu layers, the model has %zu int8 weighted operators",
            shipped.calibration.weight_bits.size(), layer_ops.size());

  // Split: a seeded permutation; the first `holdout` share is held back, the rest calibrates.
  std::vector<int32_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(opt.seed);
  std::shuffle(order.begin(), order.end(), rng);
  Status planned = plan_recalibration(fg, count, opt, &r);
  if (!planned.is_ok()) {
    if (report_out) *report_out = r;  // the sizes it would need, for the caller to retry with
    return planned;
  }
  const int32_t calib_n = r.calibration_samples;

  CalibrationData calib;
  calib.samples = calib_n;
  calib.dataset = "device samples";
  calib.values.resize(size_t(calib_n) * size_t(per));
  for (int32_t i = 0; i < calib_n; ++i)
    std::memcpy(&calib.values[size_t(i) * size_t(per)], samples + size_t(order[r.holdout_samples + i]) * size_t(per),
                size_t(per) * 4);
  std::vector<float> held(static_cast<size_t>(r.holdout_samples) * static_cast<size_t>(per));
  for (int32_t i = 0; i < r.holdout_samples; ++i)
    std::memcpy(&held[size_t(i) * size_t(per)], samples + size_t(order[i]) * size_t(per), size_t(per) * 4);

  // The recorded widths: weights per layer; activations as the quantized graph has them.
  AdaQuantOptions aq;
  aq.rtn.layer_weight_bits.assign(fg.operators.size(), 0);
  for (size_t j = 0; j < layer_ops.size(); ++j) aq.rtn.layer_weight_bits[layer_ops[j]] = shipped.calibration.weight_bits[j];
  std::map<int32_t, int32_t> abit_count;
  int32_t first_in_bits = 8;
  bool first = true;
  for (const Operator& op : shipped.operators) {
    if (!weighted_int8(shipped, op)) continue;
    const int32_t b = shipped.tensors[op.inputs[0]].quant.bits;
    if (first) first_in_bits = b, first = false; else ++abit_count[b];
  }
  int32_t abits = first_in_bits, best = 0;
  for (const auto& kv : abit_count)
    if (kv.second > best) abits = kv.first, best = kv.second;
  aq.rtn.activation_bits = abits;
  aq.rtn.keep_first_last_8bit = abits < 8 && first_in_bits == 8;
  int32_t out_bits = 8;
  for (const Operator& op : shipped.operators)
    if (op.type == OpType::kDequantize && op.outputs[0] == shipped.outputs[0])
      out_bits = shipped.tensors[op.inputs[0]].quant.bits;
  aq.rtn.output_activation_bits = out_bits == abits ? 0 : out_bits;
  aq.rtn.seed = opt.seed;
  aq.rtn.backend = opt.backend;
  aq.rtn.threads = opt.threads;
  aq.rtn.batch = std::min(50, calib_n);
  aq.adaquant = opt.full;
  aq.sequential = opt.full;
  aq.stats_tuning = true;
  aq.iterations = opt.iterations;
  aq.batch = std::min(32, std::max(1, int32_t(calib_n * 0.9f)));
  ProgressBridge bridge;
  bridge.opt = &opt;
  aq.progress = &ProgressBridge::fn;
  aq.progress_user = &bridge;
  aq.cancel = &bridge.cancel;
  if (!report_progress(opt, "calibrate", 0, 1, 0.05)) return Status::error(StatusCode::kCancelled, "recalibration cancelled");
  Graph q;
  AdaQuantReport aq_report;
  Status s = quantize_graph_adaquant(fg, calib, aq, &q, &aq_report);
  if (bridge.cancel) return Status::error(StatusCode::kCancelled, "recalibration cancelled");
  TQ_RETURN_IF_ERROR(s.with_context("%s recalibration", r.mode.c_str()));
  calib = CalibrationData();  // the working set shrinks before validation

  TQ_ENSURE(q.calibration.weight_bits == shipped.calibration.weight_bits &&
                q.calibration.activation_bits == shipped.calibration.activation_bits,
            kInternal, "the recalibrated model's bit-widths differ from the shipped model's record");
  if (!report_progress(opt, "validate", 0, 1, 0.9)) return Status::error(StatusCode::kCancelled, "recalibration cancelled");
  TQ_RETURN_IF_ERROR(top1_agreement(shipped, fg, held.data(), r.holdout_samples, opt.backend, opt.threads,
                                    &r.old_agreement).with_context("the shipped model"));
  TQ_RETURN_IF_ERROR(top1_agreement(q, fg, held.data(), r.holdout_samples, opt.backend, opt.threads, &r.new_agreement)
                         .with_context("the recalibrated model"));
  // Keep the master (the same values: fp16 masters round-trip exactly) and say what happened.
  TQ_RETURN_IF_ERROR(attach_master_weights(fg, shipped.master_weights[0].fp16, &q));
  // Biases stay fp32 whatever the weights' master precision (attach writes them so).
  CalibrationRecord& rec = q.calibration;
  const std::string origin = shipped.calibration.pipeline;
  rec.pipeline = "recalibrated-" + r.mode + " (" + q.calibration.pipeline + ") of " + origin;
  rec.budget_bytes = shipped.calibration.budget_bytes;
  q.producer = shipped.producer;
  q.metadata = shipped.metadata;
  r.pipeline = rec.pipeline;
  r.holdout.assign(order.begin(), order.begin() + r.holdout_samples);
  r.peak_bytes = peak_rss_growth();
  r.seconds = (port::now_us() - t0) / 1e6;
  report_progress(opt, "done", 1, 1, 1.0);
  *out = std::move(q);
  if (report_out) *report_out = r;
  return Status::ok();
}

}  // namespace quant
}  // namespace tinyquant
