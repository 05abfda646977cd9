// AdaQuant layer-wise calibration and statistics tuning (contract in tinyquant/adaquant.h).
#include "tinyquant/adaquant.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>

#include "adam.h"
#include "adaquant_state.h"
#include "rewrite.h"
#include "stream.h"
#include "tinyquant/layer_kernels.h"
#include "tinyquant/op_info.h"
#include "tinyquant/port.h"
#include "tinyquant/quantizer.h"
#include "tinyquant/shape_inference.h"

namespace tinyquant {
namespace quant {

const char* lr_mode_name(LrMode mode) { return mode == LrMode::kAbsolute ? "absolute" : "relative"; }

namespace {
int64_t status_kb(const char* key) {  // a "Key: N kB" line of /proc/self/status (0 where there is none)
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256], fmt[64];
  std::snprintf(fmt, sizeof(fmt), "%s: %%lld kB", key);
  long long kb = 0;
  while (std::fgets(line, sizeof(line), f))
    if (std::sscanf(line, fmt, &kb) == 1) break;
  std::fclose(f);
  return kb;
}
}  // namespace

int64_t peak_rss_bytes() { return status_kb("VmHWM") * 1024; }
int64_t rss_bytes() { return status_kb("VmRSS") * 1024; }

namespace {


// The weighted layer being optimised: its shape, fixed data and trainable parameters.
struct LayerProblem {
  LayerShape shape1;           // at batch 1
  FusedActivation act;
  int32_t wbits = 8, abits = 8;
  int64_t in_per = 0, out_per = 0;  // elements per sample
  int64_t inner = 1;           // weight elements per channel run (axis 0: all but dim 0; depthwise: 1)
  int32_t channels = 0;
  std::vector<float> w, b, sw;  // W', b', s_w
  float sx = 1.0f, zx = 0.0f;
  bool learn_input = false;
};

struct Work {
  LayerScratch scratch;
  std::vector<float> yb, xq, wq, dxq, dwq, db;
  std::vector<uint8_t> kept;  // QDrop: 1 where an input element skipped its quantizer this step
  uint64_t drop_state = 0;    // its generator (splitmix64), seeded per layer
  uint32_t drop_threshold = 0;  // an element is kept in float when its random byte < this (of 256)
};

uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

LayerShape at_batch(const LayerShape& s1, int32_t n) {
  LayerShape s = s1;
  if (s1.type == OpType::kFullyConnected) s.batch = s1.batch * n;
  else s.batch = n;
  return s;
}

// Forward over samples [idx...] of (x, target); returns the MSE; with grads, fills them.
double layer_step(LayerProblem& p, const float* x_all, const float* y_all, const int32_t* idx, int32_t n, Work* w,
                  bool grads, int64_t* flops) {
  const LayerShape s = at_batch(p.shape1, n);
  w->xq.resize(n * p.in_per);
  w->yb.resize(n * p.out_per);
  for (int32_t i = 0; i < n; ++i) {  // gather and fake-quantize in one pass
    fake_quant_activation_train(x_all + int64_t(idx[i]) * p.in_per, p.in_per, p.sx, p.zx, p.abits,
                                w->xq.data() + i * p.in_per);
    std::memcpy(w->yb.data() + i * p.out_per, y_all + int64_t(idx[i]) * p.out_per, sizeof(float) * p.out_per);
  }
  const bool drop = grads && w->drop_threshold > 0;
  if (drop) {  // QDrop: a random part of the input skips its quantizer this step
    const int64_t total = int64_t(n) * p.in_per;
    w->kept.resize(static_cast<size_t>(total));
    for (int64_t e = 0; e < total; e += 8) {
      const uint64_t r = splitmix64(&w->drop_state);
      for (int64_t k = 0; k < 8 && e + k < total; ++k) w->kept[e + k] = ((r >> (8 * k)) & 0xFF) < w->drop_threshold;
    }
    for (int32_t i = 0; i < n; ++i) {
      const float* xr = x_all + int64_t(idx[i]) * p.in_per;
      float* q = w->xq.data() + int64_t(i) * p.in_per;
      const uint8_t* kp = w->kept.data() + int64_t(i) * p.in_per;
      for (int64_t e = 0; e < p.in_per; ++e) q[e] = kp[e] ? xr[e] : q[e];
    }
  }
  w->wq.resize(p.w.size());
  fake_quant_weights_train(p.w.data(), p.w.size(), p.inner, p.channels, p.sw.data(), p.wbits, w->wq.data());
  const int64_t m = static_cast<int64_t>(w->yb.size());
  if (grads) {
    w->dwq.resize(p.w.size());
    w->db.resize(p.b.size());
    if (p.learn_input) w->dxq.resize(w->xq.size());
  }
  const double sum = layer_mse_step(s, w->xq.data(), w->wq.data(), p.b.data(), w->yb.data(), p.act.min, p.act.max,
                                    1.0f / float(m), grads && p.learn_input ? w->dxq.data() : nullptr,
                                    grads ? w->dwq.data() : nullptr, grads ? w->db.data() : nullptr, &w->scratch);
  if (flops) *flops += 2 * s.macs() * (grads ? (p.learn_input ? 3 : 2) : 1);
  return sum / double(m);
}

double holdout_mse(LayerProblem& p, const float* x, const float* y, int32_t first, int32_t count, int32_t batch,
                   Work* w) {
  std::vector<int32_t> idx;
  double sum = 0.0;
  int64_t elems = 0;
  for (int32_t f = first; f < first + count; f += batch) {
    const int32_t n = std::min(batch, first + count - f);
    idx.resize(n);
    for (int32_t i = 0; i < n; ++i) idx[i] = f + i;
    sum += layer_step(p, x, y, idx.data(), n, w, false, nullptr) * double(n) * p.out_per;
    elems += int64_t(n) * p.out_per;
  }
  return elems ? sum / double(elems) : 0.0;
}

struct Rates {
  float w, b, s, sx, z;
};

Rates default_rates(LrMode mode) {
  if (mode == LrMode::kAbsolute) return {1e-5f, 1e-3f, 1e-3f, 1e-1f, 1e-1f};
  return {1e-2f, 1e-2f, 1e-3f, 1e-3f, 1e-2f};
}

class Pipeline {
 public:
  Pipeline(const Graph& fg, const CalibrationData& calib, const AdaQuantOptions& opt, const QuantState* start)
      : fg_(fg), calib_(calib), opt_(opt), start_(start) {}

  Status run(Graph* out, AdaQuantReport* report, QuantState* end) {
    const uint64_t t0 = port::now_us();
    report->start_rss_bytes = rss_bytes();
    TQ_ENSURE(fg_.inputs.size() == 1, kUnsupported,
              "AdaQuant calibrates single-input models; this one has %zu inputs (use --method rtn)", fg_.inputs.size());
    TQ_RETURN_IF_ERROR(check_quantization_inputs(fg_, calib_, opt_.rtn.weight_bits, opt_.rtn.activation_bits,
                                                 opt_.rtn.batch, &per_sample_));
    TQ_RETURN_IF_ERROR(check_layer_weight_bits(fg_, opt_.rtn));
    TQ_ENSURE(!opt_.adaquant || (opt_.iterations >= 1 && opt_.batch >= 1), kInvalidArgument,
              "AdaQuant needs iterations >= 1 and batch >= 1 (got %d and %d)", opt_.iterations, opt_.batch);
    TQ_ENSURE(opt_.qdrop >= 0.0f && opt_.qdrop < 1.0f, kInvalidArgument,
              "QDrop probability %g must be in [0, 1)", double(opt_.qdrop));
    TQ_ENSURE(opt_.holdout > 0.0f && opt_.holdout < 1.0f, kInvalidArgument,
              "held-out fraction %g must be in (0, 1)", double(opt_.holdout));
    holdout_ = std::max<int32_t>(1, static_cast<int32_t>(std::lround(calib_.samples * double(opt_.holdout))));
    train_ = calib_.samples - holdout_;
    if (opt_.adaquant)
      TQ_ENSURE(train_ >= opt_.batch, kInvalidArgument,
                "the calibration set has %d samples: %d held out leave %d to train on, fewer than the AdaQuant batch "
                "of %d (use more samples or a smaller --batch)",
                calib_.samples, holdout_, train_, opt_.batch);
    rates_ = default_rates(opt_.lr_mode);
    if (opt_.lr_weight >= 0) rates_.w = opt_.lr_weight;
    if (opt_.lr_bias >= 0) rates_.b = opt_.lr_bias;
    if (opt_.lr_weight_scale >= 0) rates_.s = opt_.lr_weight_scale;
    if (opt_.lr_act_scale >= 0) rates_.sx = opt_.lr_act_scale;
    if (opt_.lr_zero_point >= 0) rates_.z = opt_.lr_zero_point;
    set_gemm_threads(opt_.gemm_threads);

    RtnReport& rtn = report->rtn;
    rtn.samples = calib_.samples;
    std::vector<std::unique_ptr<ActivationObserver>> observers;
    TQ_RETURN_IF_ERROR(calibrate_activations(fg_, calib_, per_sample_, opt_.rtn, &observers, &rtn));
    choices_.assign(fg_.tensors.size(), ActivationChoice());
    params_.assign(fg_.tensors.size(), ActivationParams());
    for (size_t t = 0; t < observers.size(); ++t)
      if (observers[t]) {
        TQ_RETURN_IF_ERROR(observers[t]->choose_activation_params(
            activation_bits_for(fg_, static_cast<int32_t>(t), opt_.rtn), &choices_[t]));
        params_[t] = choices_[t].params;
      }
    TQ_RETURN_IF_ERROR(infer_shapes(fg_, 1, &dims_));
    layers_.assign(fg_.operators.size(), LayerQuant());
    TQ_RETURN_IF_ERROR(rebuild());
    // Roots of passthrough chains and the layers to optimise.
    root_.resize(fg_.tensors.size());
    for (size_t t = 0; t < root_.size(); ++t) root_[t] = static_cast<int32_t>(t);
    for (size_t i = 0; i < fg_.operators.size(); ++i) {
      const Operator& op = fg_.operators[i];
      if (map_.op_int8[i] && op_info(op.type).int8_role == Int8Role::kPassthrough) root_[op.outputs[0]] = root_[op.inputs[0]];
      if (map_.op_int8[i] && op_info(op.type).weighted) targets_.push_back(static_cast<int32_t>(i));
    }
    if (start_) {
      TQ_ENSURE(start_->layers.size() == fg_.operators.size() && start_->params.size() == fg_.tensors.size(),
                kInternal, "AdaQuant start state does not match the graph");
      for (size_t t = 0; t < params_.size(); ++t)
        if (observers[t]) params_[t] = start_->params[t];
    }
    for (int32_t i : targets_) {
      TQ_RETURN_IF_ERROR(init_layer(i));
      if (start_) {
        const LayerQuant& s = start_->layers[i];
        TQ_ENSURE(s.present && s.weights.size() == layers_[i].weights.size() &&
                      s.scales.size() == layers_[i].scales.size() && s.bias.size() == layers_[i].bias.size(),
                  kInternal, "AdaQuant start state: layer '%s' missing or of another shape",
                  fg_.operators[i].name.c_str());
        layers_[i] = s;
      }
      initial_scales_.push_back(layers_[i].scales);
    }
    learned_.assign(fg_.tensors.size(), false);
    if (opt_.adaquant) TQ_RETURN_IF_ERROR(learn_matmul_inputs(report));
    initial_params_ = params_;
    for (int32_t i : targets_) {
      LayerProblem p;
      TQ_RETURN_IF_ERROR(make_problem(i, &p));
      macs_.push_back(std::max<int64_t>(1, p.shape1.macs()));
      total_macs_ += double(macs_.back());
    }

    // Where the simulated twin's frontier may stand for target k: before the first op whose
    // result differs once k's input chain is left unquantized (the chain's first producer), and
    // never past a later target's (the frontier only moves forward).
    // Rebuilt with every target's LayerQuant present (a bias-less layer now has its zero bias),
    // q_ keeps this shape through every later rebuild.
    TQ_RETURN_IF_ERROR(rebuild());
    q_ops_ = q_.operators.size();
    q_tensors_ = q_.tensors.size();
    std::vector<int32_t> qproducer(q_.tensors.size(), std::numeric_limits<int32_t>::max());
    for (size_t j = 0; j < q_.operators.size(); ++j)
      for (int32_t t : q_.operators[j].outputs) qproducer[t] = static_cast<int32_t>(j);
    qbound_.assign(targets_.size(), 0);
    for (size_t k = 0; k < targets_.size(); ++k) {
      int32_t b = map_.op[targets_[k]];
      const std::vector<bool> through = chain_through(k);
      for (size_t t = 0; t < through.size(); ++t)
        if (through[t]) b = std::min(b, qproducer[t]);
      qbound_[k] = b;
    }
    for (size_t k = targets_.size(); k-- > 1;) qbound_[k - 1] = std::min(qbound_[k - 1], qbound_[k]);

    report->train_samples = opt_.adaquant ? train_ : 0;
    report->qdrop = opt_.adaquant ? opt_.qdrop : 0.0f;
    report->holdout_samples = opt_.adaquant ? holdout_ : 0;
    report->gemm_engine = gemm_engine();
    report->layers.resize(targets_.size());
    const uint64_t ta = port::now_us();
    t_start_ = ta;
    if (opt_.adaquant) {
      TQ_RETURN_IF_ERROR(fstream_.init(fg_, calib_, per_sample_, opt_.rtn));
      if (opt_.sequential) TQ_RETURN_IF_ERROR(qstream_.init(q_, calib_, per_sample_, opt_.rtn));
      for (size_t k = 0; k < targets_.size(); ++k) TQ_RETURN_IF_ERROR(optimise_layer(k, report));
    }
    report->adaquant_seconds = (port::now_us() - ta) / 1e6;
    const uint64_t ts = port::now_us();
    if (opt_.stats_tuning) {
      macs_done_ = 0.0;  // the ETA of this stage on its own
      t_start_ = ts;
      TQ_RETURN_IF_ERROR(rebuild());
      TQ_RETURN_IF_ERROR(fstream_.init(fg_, calib_, per_sample_, opt_.rtn));
      TQ_RETURN_IF_ERROR(qstream_.init(q_, calib_, per_sample_, opt_.rtn));
      for (size_t k = 0; k < targets_.size(); ++k) TQ_RETURN_IF_ERROR(tune_statistics(k, report));
    }
    report->stats_seconds = (port::now_us() - ts) / 1e6;

    TQ_RETURN_IF_ERROR(rebuild());
    for (size_t k = 0; k < targets_.size(); ++k) {
      AdaQuantLayerReport& l = report->layers[k];
      const Operator& op = fg_.operators[targets_[k]];
      const ActivationParams& in = params_[root_[op.inputs[0]]];
      l.final_input_scale = in.scale;
      l.final_input_zero_point = in.zero_point;
      l.final_weight_scales = layers_[targets_[k]].scales;
      if (l.init_weight_scales.empty()) {  // no AdaQuant pass: range calibration's values
        l.init_weight_scales = initial_scales_[k];
        l.init_input_scale = initial_params_[root_[op.inputs[0]]].scale;
        l.init_input_zero_point = initial_params_[root_[op.inputs[0]]].zero_point;
      }
      l.name = op.name;
      l.type = op.type;
      l.macs = macs_[k];
      l.weight_bits = layers_[targets_[k]].weight_bits ? layers_[targets_[k]].weight_bits
                                                       : weight_bits_for(fg_, targets_[k], opt_.rtn);
      l.activation_bits = in.bits;  // the input quantizer's bits (8 under keep_first_last_8bit, say)
    }
    report->pipeline = std::string(opt_.adaquant ? (opt_.sequential ? "adaquant-sequential" : "adaquant-parallel")
                                                 : "rtn") +
                       (opt_.stats_tuning ? "+stats" : "");
    rtn.layers = qreport_.layers;
    rtn.quantize_ops = qreport_.quantize_ops;
    rtn.dequantize_ops = qreport_.dequantize_ops;
    finish_quantized_graph(fg_, calib_, opt_.rtn, report->pipeline.c_str(), map_, observers, choices_, &q_, &rtn);
    TQ_RETURN_IF_ERROR(validate_graph(q_).with_context("quantized graph"));
    std::vector<Dims> qdims;
    TQ_RETURN_IF_ERROR(infer_shapes(q_, 1, &qdims).with_context("quantized graph"));
    double total_flops = double(flops_);
    report->gflops = report->adaquant_seconds > 0 ? total_flops / report->adaquant_seconds / 1e9 : 0.0;
    report->seconds = (port::now_us() - t0) / 1e6;
    rtn.seconds = report->seconds;
    for (const AdaQuantLayerReport& l : report->layers)
      report->largest_cache_bytes = std::max(report->largest_cache_bytes, l.cache_bytes);
    report->peak_rss_bytes = peak_rss_bytes();
    q_.calibration.report_json = report->json(/*timing=*/false);
    if (end) {
      end->layers = layers_;
      end->params = params_;
      end->targets = targets_;
      end->root = root_;
      end->map = map_;
    }
    *out = std::move(q_);
    return Status::ok();
  }

 private:
  // AdaQuant on the two input quantizers of every int8 BatchMatMul (attention scores Q K^T and
  // their weighted sum P V), before the weighted layers: Adam with straight-through / LSQ
  // gradients on (s, z) of each input, minimising the MSE of fq(A) fq(B) against the float
  // product A B over the training samples (the float model's A, B: the parallel form; the
  // quantizers are the producers' output quantizers, which no weighted layer learns), kept only
  // if the held-out MSE improves. An input whose quantizer is fixed (the int8 softmax's) takes
  // part with its fixed params.
  Status learn_matmul_inputs(AdaQuantReport* report) {
    for (size_t i = 0; i < fg_.operators.size(); ++i) {
      const Operator& op = fg_.operators[i];
      if (op.type != OpType::kBatchMatMul || !map_.op_int8[i]) continue;
      TQ_RETURN_IF_ERROR(learn_matmul(static_cast<int32_t>(i), report)
                             .with_context("AdaQuant of BatchMatMul '%s'", op.name.c_str()));
    }
    return Status::ok();
  }

  Status learn_matmul(int32_t op_index, AdaQuantReport* report) {
    const uint64_t t0 = port::now_us();
    const Operator& op = fg_.operators[op_index];
    AdaQuantMatMulReport r;
    r.name = op.name;
    const Dims& da = dims_[op.inputs[0]];
    const Dims& db = dims_[op.inputs[1]];
    const int32_t rank = da.rank;
    int64_t heads = 1;
    for (int d = 0; d < rank - 2; ++d) heads *= da[d];
    const int32_t M = da[rank - 2], K = da[rank - 1], N = db[rank - 1];
    const int64_t na = da.elements(), nb = db.elements(), ny = heads * M * N;
    // The quantizer of each input: its passthrough chain's root; fixed when a softmax writes it.
    int32_t root[2];
    ActivationParams q[2];
    for (int k = 0; k < 2; ++k) {
      root[k] = root_[op.inputs[k]];
      r.inputs[k] = fg_.tensors[root[k]].name.str();
      bool fixed = false;
      for (const Operator& p : fg_.operators)
        if (p.outputs[0] == root[k] && p.type == OpType::kSoftmax) fixed = true;
      q[k] = fixed ? kSoftmaxS8Output : params_[root[k]];
      r.learned[k] = !fixed && !learned_[root[k]];
      r.init_scale[k] = r.final_scale[k] = q[k].scale;
      r.init_zero_point[k] = r.final_zero_point[k] = q[k].zero_point;
      r.bits[k] = q[k].bits;
    }
    // The float model's A, B and A B on every calibration sample.
    std::vector<float> A(size_t(calib_.samples) * na), B(size_t(calib_.samples) * nb), Y(size_t(calib_.samples) * ny);
    TQ_RETURN_IF_ERROR(capture_matmul(op_index, &A, &B, &Y));
    float sv[2] = {q[0].scale, q[1].scale}, zv[2] = {float(q[0].zero_point), float(q[1].zero_point)};
    std::vector<float> aq(na), bq(nb), yq(ny), ga(na), gb(nb);
    // Mean squared error over samples idx (the quantizers' gradients added into g when asked).
    auto step = [&](const int32_t* idx, int32_t n, double* g) {
      double sum = 0.0;
      const float inv_m = 1.0f / float(int64_t(n) * ny);
      for (int32_t s = 0; s < n; ++s) {
        const float* a = A.data() + int64_t(idx[s]) * na;
        const float* b = B.data() + int64_t(idx[s]) * nb;
        fake_quant_activation_train(a, na, sv[0], zv[0], q[0].bits, aq.data());
        fake_quant_activation_train(b, nb, sv[1], zv[1], q[1].bits, bq.data());
        sum += matmul_mse_step(heads, M, K, N, aq.data(), bq.data(), Y.data() + int64_t(idx[s]) * ny, inv_m,
                               g && r.learned[0] ? ga.data() : nullptr, g && r.learned[1] ? gb.data() : nullptr,
                               yq.data());
        flops_ += 2 * heads * M * K * N * (g ? 3 : 1);
        if (!g) continue;
        if (r.learned[0]) fake_quant_activation_backward(a, na, sv[0], zv[0], q[0].bits, ga.data(), &g[0], &g[1]);
        if (r.learned[1]) fake_quant_activation_backward(b, nb, sv[1], zv[1], q[1].bits, gb.data(), &g[2], &g[3]);
      }
      return sum / double(int64_t(n) * ny);
    };
    std::vector<int32_t> order(calib_.samples);
    for (int32_t s = 0; s < calib_.samples; ++s) order[s] = s;
    auto holdout = [&]() { return step(order.data() + train_, holdout_, nullptr); };
    r.mse_before = holdout();
    if (r.learned[0] || r.learned[1]) {
      const bool rel = opt_.lr_mode == LrMode::kRelative;
      float lr[4] = {rel ? rates_.sx * sv[0] : rates_.sx, rates_.z, rel ? rates_.sx * sv[1] : rates_.sx, rates_.z};
      Adam adam;
      adam.init(4);
      std::mt19937_64 rng(opt_.rtn.seed * 0x9E3779B97F4A7C15ull + 7919ull * (uint64_t(op_index) + 1));
      const float init_s[2] = {sv[0], sv[1]}, init_z[2] = {zv[0], zv[1]};
      int32_t it = 1;
      for (; it <= opt_.iterations; ++it) {
        if (opt_.cancel && opt_.cancel->load())
          return Status::error(StatusCode::kCancelled, "cancelled (iteration %d); nothing written", it);
        for (int32_t s = 0; s < opt_.batch; ++s) {
          std::uniform_int_distribution<int32_t> pick(s, train_ - 1);
          std::swap(order[s], order[pick(rng)]);
        }
        double g[4] = {0.0, 0.0, 0.0, 0.0};
        const double loss = step(order.data(), opt_.batch, g);
        if (!std::isfinite(loss)) break;
        const double decay = 0.5 * (1.0 + std::cos(3.14159265358979 * double(it - 1) / opt_.iterations));
        float p[4] = {sv[0], zv[0], sv[1], zv[1]};
        adam.update(p, g, lr, 4, it, decay);
        for (int k = 0; k < 2; ++k) {
          if (!r.learned[k]) continue;
          sv[k] = std::max(p[2 * k], 1e-12f);
          zv[k] = std::min(std::max(p[2 * k + 1], float(qmath::qmin(q[k].bits))), float(qmath::qmax(q[k].bits)));
        }
      }
      r.iterations = std::min(it, opt_.iterations);
      // Held-out samples stay where they were: the shuffles only permute the training part.
      for (int k = 0; k < 2; ++k) zv[k] = float(qmath::round_half_even(zv[k]));
      r.mse_after = holdout();
      if (!(r.mse_after < r.mse_before)) {
        r.reverted = true;
        r.mse_after = r.mse_before;
        for (int k = 0; k < 2; ++k) sv[k] = init_s[k], zv[k] = init_z[k];
      }
      for (int k = 0; k < 2; ++k) {
        if (!r.learned[k]) continue;
        params_[root[k]].scale = sv[k];
        params_[root[k]].zero_point = static_cast<int32_t>(zv[k]);
        learned_[root[k]] = true;
        r.final_scale[k] = sv[k];
        r.final_zero_point[k] = static_cast<int32_t>(zv[k]);
      }
    } else {
      r.mse_after = r.mse_before;
    }
    r.seconds = (port::now_us() - t0) / 1e6;
    report->matmuls.push_back(r);
    return Status::ok();
  }

  // Runs the float model over the calibration set and keeps op `op_index`'s two inputs and output.
  Status capture_matmul(int32_t op_index, std::vector<float>* a, std::vector<float>* b, std::vector<float>* y) {
    struct Capture {
      int32_t op, first = 0;
      int32_t tensors[3];
      std::vector<float>* out[3];
    } cap{op_index, 0, {fg_.operators[op_index].inputs[0], fg_.operators[op_index].inputs[1],
                        fg_.operators[op_index].outputs[0]}, {a, b, y}};
    auto callback = [](void* user, int32_t op, const Interpreter& it) {
      Capture* c = static_cast<Capture*>(user);
      if (op != c->op) return true;
      for (int k = 0; k < 3; ++k) {
        const TensorView v = it.tensor(c->tensors[k]);
        const float* p = v.as<const float>();
        const int64_t per = v.elements() / v.dims[0];
        std::copy(p, p + v.elements(), c->out[k]->data() + int64_t(c->first) * per);
      }
      return false;  // nothing after the product is needed
    };
    Interpreter interp;
    PrepareOptions prep;
    prep.backend = opt_.rtn.backend;
    prep.threads = opt_.rtn.threads;
    int32_t prepared = 0;
    for (int32_t first = 0; first < calib_.samples;) {
      const int32_t n = std::min(std::max(opt_.rtn.batch, 1), calib_.samples - first);
      if (n != prepared) {
        prep.batch = n;
        TQ_RETURN_IF_ERROR(interp.prepare(fg_, prep));
        interp.set_op_callback(callback, &cap);
        prepared = n;
      }
      std::copy(calib_.values.data() + int64_t(first) * per_sample_, calib_.values.data() + int64_t(first + n) * per_sample_,
                interp.input(0).as<float>());
      cap.first = first;
      TQ_RETURN_IF_ERROR(interp.invoke_range(0, op_index + 1));
      first += n;
    }
    return Status::ok();
  }

  Status rebuild() {
    qreport_ = RtnReport();
    return build_integer_graph(fg_, opt_.rtn, params_, &layers_, &q_, &map_, &qreport_);
  }

  // LayerQuant from the RTN graph: float weights, RTN scales, float bias.
  Status init_layer(int32_t i) {
    const Operator& op = fg_.operators[i];
    LayerQuant& lq = layers_[i];
    lq.present = true;
    const int32_t w = op.inputs[1];
    const int64_t n = shape_elements(fg_.tensors[w].shape);
    const float* fw = fg_.constant_data<float>(w);
    lq.weights.assign(fw, fw + n);
    const Tensor& qw = q_.tensors[q_.operators[map_.op[i]].inputs[1]];
    lq.scales = qw.quant.scale;
    const int32_t b = op.inputs.size() > 2 ? op.inputs[2] : -1;
    if (b >= 0) {
      const float* fb = fg_.constant_data<float>(b);
      lq.bias.assign(fb, fb + lq.scales.size());
    } else {
      lq.bias.assign(lq.scales.size(), 0.0f);
    }
    return Status::ok();
  }

  Status make_problem(int32_t i, LayerProblem* p) {
    const Operator& op = fg_.operators[i];
    const Dims& in = dims_[op.inputs[0]];
    const Dims& wd = dims_[op.inputs[1]];
    TQ_RETURN_IF_ERROR(LayerShape::of(op, in.d, in.rank, wd.d, 1, &p->shape1));
    p->act = op.activation;
    p->wbits = layers_[i].weight_bits ? layers_[i].weight_bits : weight_bits_for(fg_, i, opt_.rtn);
    const int32_t r = root_[op.inputs[0]];
    p->abits = params_[r].bits;
    p->in_per = dims_[op.inputs[0]].elements();
    p->out_per = dims_[op.outputs[0]].elements();
    const int32_t axis = op.type == OpType::kDepthwiseConv2D ? 3 : 0;
    p->channels = static_cast<int32_t>(layers_[i].scales.size());
    p->inner = axis == 0 ? shape_elements(fg_.tensors[op.inputs[1]].shape) / p->channels : 1;
    p->w = layers_[i].weights;
    p->b = layers_[i].bias;
    p->sw = layers_[i].scales;
    p->sx = params_[r].scale;
    p->zx = static_cast<float>(params_[r].zero_point);
    return Status::ok();
  }

  // The float graph as its own stream view; the simulated twin of q_ (with `through` left
  // unquantized) as a view keyed by q_'s tensors and ops.
  FrontierView float_view() const {
    FrontierView v;
    v.graph = &fg_;
    v.unchanged = true;  // the float graph never changes
    return v;
  }
  Status sim_view(const std::vector<bool>& through, FrontierView* v) {
    TQ_ENSURE(q_.operators.size() == q_ops_ && q_.tensors.size() == q_tensors_, kInternal,
              "the quantized graph changed shape between layers");
    TQ_RETURN_IF_ERROR(build_simulated_graph_mapped(q_, through, &sim_, &smap_));
    v->graph = &sim_;
    v->tensor = smap_.value;
    v->op_begin = smap_.op_begin;
    return Status::ok();
  }

  // The q_ tensors AdaQuant leaves unquantized for target k: its input's passthrough chain.
  std::vector<bool> chain_through(size_t k) const {
    std::vector<bool> through(q_.tensors.size(), false);
    const int32_t r = root_[fg_.operators[targets_[k]].inputs[0]];
    for (size_t t = 0; t < fg_.tensors.size(); ++t)
      if (root_[t] == r && map_.int8_version[t] >= 0) through[map_.int8_version[t]] = true;
    return through;
  }

  // X_in and the float target for target k over all calibration samples. Parallel: X_in from the
  // float graph. Sequential: from the quantized network as it stands (the layers before k
  // optimised), the input's own quantizer left out.
  Status layer_data(size_t k, bool sequential, SampleValues* x, SampleValues* y) {
    const int32_t i = targets_[k];
    const Operator& op = fg_.operators[i];
    std::vector<SampleValues> got;
    if (!sequential) {
      TQ_RETURN_IF_ERROR(fstream_.run(float_view(), i + 1, {op.inputs[0], op.outputs[0]}, true, &got));
      *x = got[0];
      *y = got[1];
      return Status::ok();
    }
    TQ_RETURN_IF_ERROR(fstream_.run(float_view(), i + 1, {op.outputs[0]}, true, &got));
    *y = got[0];
    FrontierView view;
    TQ_RETURN_IF_ERROR(sim_view(chain_through(k), &view));
    // Up to where layers from k on first differ from q_ (their chains), then look ahead to X_in.
    TQ_RETURN_IF_ERROR(qstream_.run(view, qbound_[k], {}, true, &got));
    TQ_RETURN_IF_ERROR(qstream_.run(view, map_.op[i], {q_.operators[map_.op[i]].inputs[0]}, false, &got));
    *x = got[0];
    return Status::ok();
  }

  // ETA from the cost so far: the layers done plus this one's fraction, weighted by their MACs.
  void report_progress(size_t k, const char* stage, int32_t it, int32_t its, double loss) {
    if (!opt_.progress) return;
    AdaQuantProgress pr;
    pr.layer = static_cast<int32_t>(k);
    pr.layers = static_cast<int32_t>(targets_.size());
    pr.name = fg_.operators[targets_[k]].name.c_str();
    pr.stage = stage;
    pr.iteration = it;
    pr.iterations = its;
    pr.loss = loss;
    pr.elapsed_s = (port::now_us() - t_start_) / 1e6;
    const double done = macs_done_ + (its > 0 ? double(it) / its : 1.0) * double(macs_[k]);
    pr.eta_s = done > 0 ? pr.elapsed_s * (total_macs_ - done) / done : 0.0;
    opt_.progress(opt_.progress_user, pr);
  }

  Status optimise_layer(size_t k, AdaQuantReport* report) {
    const int32_t i = targets_[k];
    const Operator& op = fg_.operators[i];
    AdaQuantLayerReport& lr = report->layers[k];
    const uint64_t t_layer = port::now_us();
    if (opt_.sequential) TQ_RETURN_IF_ERROR(rebuild());
    SampleValues xs, ys;
    TQ_RETURN_IF_ERROR(layer_data(k, opt_.sequential, &xs, &ys).with_context("AdaQuant layer '%s'", op.name.c_str()));
    const FloatBuffer& x = *xs;
    const FloatBuffer& y = *ys;
    lr.capture_seconds = (port::now_us() - t_layer) / 1e6;
    report->capture_seconds += lr.capture_seconds;
    lr.cache_bytes = static_cast<int64_t>((x.size() + y.size()) * sizeof(float));
    LayerProblem p;
    TQ_RETURN_IF_ERROR(make_problem(i, &p));
    const int32_t r = root_[op.inputs[0]];
    p.learn_input = !learned_[r];
    lr.init_input_scale = p.sx;
    lr.init_input_zero_point = static_cast<int32_t>(p.zx);
    lr.init_weight_scales = p.sw;
    lr.macs = macs_[k];
    Work work;
    const LayerProblem initial = p;
    const int32_t hb = std::max<int32_t>(opt_.batch, 1);
    lr.mse_before = holdout_mse(p, x.data(), y.data(), train_, holdout_, hb, &work);

    // Per-element learning rates.
    const int64_t nw = static_cast<int64_t>(p.w.size());
    std::vector<float> lr_w(nw), lr_b(p.b.size()), lr_s(p.sw.size());
    const bool rel = opt_.lr_mode == LrMode::kRelative;
    const float s_out = params_[op.outputs[0]].scale;
    for (int64_t e = 0; e < nw; ++e) lr_w[e] = rel ? rates_.w * p.sw[(e / p.inner) % p.channels] : rates_.w;
    for (size_t c = 0; c < p.b.size(); ++c) lr_b[c] = rel ? rates_.b * s_out : rates_.b;
    for (size_t c = 0; c < p.sw.size(); ++c) lr_s[c] = rel ? rates_.s * p.sw[c] : rates_.s;
    float lr_act[2] = {rel ? rates_.sx * p.sx : rates_.sx, rates_.z};
    Adam adam_w, adam_b, adam_s, adam_a;
    adam_w.init(nw);
    adam_b.init(p.b.size());
    adam_s.init(p.sw.size());
    adam_a.init(2);

    std::mt19937_64 rng(opt_.rtn.seed * 0x9E3779B97F4A7C15ull + 1000003ull * (k + 1));
    work.drop_state = (opt_.rtn.seed + 1) * 0xD1B54A32D192ED03ull ^ (uint64_t(k) + 1) * 0x8CB92BA72F3D8DD7ull;
    work.drop_threshold = static_cast<uint32_t>(std::lround(double(opt_.qdrop) * 256.0));
    std::vector<int32_t> order(train_);
    for (int32_t s = 0; s < train_; ++s) order[s] = s;
    std::vector<float> dw(nw);
    std::vector<double> dsw(p.sw.size());
    double running = 0.0;
    bool diverged = false;
    int32_t it = 0;
    double best_check = lr.mse_before;
    int32_t stale = 0;
    uint64_t last_progress = 0;
    LayerProblem best = p;
    for (it = 1; it <= opt_.iterations; ++it) {
      if (opt_.cancel && opt_.cancel->load())
        return Status::error(StatusCode::kCancelled, "cancelled during AdaQuant of layer '%s' (iteration %d); nothing written",
                             op.name.c_str(), it);
      for (int32_t s = 0; s < opt_.batch; ++s) {  // a fresh random batch without replacement
        std::uniform_int_distribution<int32_t> pick(s, train_ - 1);
        std::swap(order[s], order[pick(rng)]);
      }
      const double loss = layer_step(p, x.data(), y.data(), order.data(), opt_.batch, &work, true, &flops_);
      if (!std::isfinite(loss)) {
        diverged = true;
        break;
      }
      running = it == 1 ? loss : 0.95 * running + 0.05 * loss;
      fake_quant_weights_backward(p.w.data(), nw, p.inner, p.channels, p.sw.data(), p.wbits, work.dwq.data(),
                                  dw.data(), dsw.data());
      // Cosine decay to 0 over the run: late steps settle instead of hopping across rounding
      // boundaries (the held-out MSE rose again after ~50 steps on lenet's first conv without it).
      const double decay = 0.5 * (1.0 + std::cos(3.14159265358979 * double(it - 1) / opt_.iterations));
      adam_w.update(p.w.data(), dw.data(), lr_w.data(), nw, it, decay);
      adam_b.update(p.b.data(), work.db.data(), lr_b.data(), p.b.size(), it, decay);
      adam_s.update(p.sw.data(), dsw.data(), lr_s.data(), p.sw.size(), it, decay);
      for (float& s : p.sw) s = std::max(s, 1e-12f);
      if (p.learn_input) {
        double g[2] = {0.0, 0.0};
        if (work.drop_threshold > 0)  // elements that skipped the quantizer give it no gradient
          for (size_t e = 0; e < work.kept.size(); ++e)
            if (work.kept[e]) work.dxq[e] = 0.0f;
        for (int32_t s = 0; s < opt_.batch; ++s)  // the batch's rows of X, read in place
          fake_quant_activation_backward(x.data() + int64_t(order[s]) * p.in_per, p.in_per, p.sx, p.zx, p.abits,
                                         work.dxq.data() + int64_t(s) * p.in_per, &g[0], &g[1]);
        float a[2] = {p.sx, p.zx};
        adam_a.update(a, g, lr_act, 2, it, decay);
        p.sx = std::max(a[0], 1e-12f);
        p.zx = std::min(std::max(a[1], float(qmath::qmin(p.abits))), float(qmath::qmax(p.abits)));
      }
      if (opt_.check_every > 0 && it % opt_.check_every == 0) {
        const double h = holdout_mse(p, x.data(), y.data(), train_, holdout_, hb, &work);
        if (h < best_check * 0.999) {
          best_check = h;
          best = p;
          stale = 0;
        } else if (++stale >= opt_.patience) {
          break;
        }
      }
      const uint64_t now = port::now_us();
      if (now - last_progress > 250000 || it == opt_.iterations) {
        report_progress(k, "adaquant", it, opt_.iterations, running);
        last_progress = now;
      }
    }
    lr.iterations = std::min(it, opt_.iterations);
    if (opt_.check_every > 0 && !diverged) p = best;
    lr.optimised = true;
    lr.learned_input_quantizer = p.learn_input;
    if (diverged) {
      lr.mse_after = lr.mse_before;
      lr.reverted = true;
      lr.note = "loss became NaN/Inf at iteration " + std::to_string(it) + "; kept the range-calibrated layer";
      p = initial;
    } else {
      lr.mse_after = holdout_mse(p, x.data(), y.data(), train_, holdout_, hb, &work);
      if (!(lr.mse_after < lr.mse_before)) {
        lr.reverted = true;
        lr.note = "held-out MSE did not improve; kept the range-calibrated layer";
        lr.mse_after = lr.mse_before;
        p = initial;
      }
    }
    LayerQuant& lq = layers_[i];
    lq.weights = p.w;
    lq.bias = p.b;
    lq.scales = p.sw;
    if (p.learn_input && !lr.reverted) {
      params_[r].scale = p.sx;
      params_[r].zero_point = qmath::round_half_even(p.zx);
    }
    learned_[r] = true;
    lr.seconds = (port::now_us() - t_layer) / 1e6;
    macs_done_ += double(macs_[k]);
    return Status::ok();
  }

  // Statistics tuning of layer k against the float model (ALGORITHMS §4).
  Status tune_statistics(size_t k, AdaQuantReport* report) {
    const int32_t i = targets_[k];
    const Operator& op = fg_.operators[i];
    AdaQuantLayerReport& lr = report->layers[k];
    if (opt_.cancel && opt_.cancel->load())
      return Status::error(StatusCode::kCancelled, "cancelled during statistics tuning of layer '%s'; nothing written",
                           op.name.c_str());
    const uint64_t t_layer = port::now_us();
    TQ_RETURN_IF_ERROR(rebuild());
    std::vector<SampleValues> got;
    TQ_RETURN_IF_ERROR(fstream_.run(float_view(), i, {op.inputs[0]}, true, &got));
    const FloatBuffer& xf = *got[0];
    // The quantized input from the integer model itself (its int8 kernels, what the device runs;
    // faster than the fake-quant twin's float convolutions).
    TQ_ENSURE(q_.operators.size() == q_ops_ && q_.tensors.size() == q_tensors_, kInternal,
              "the quantized graph changed shape between layers");
    FrontierView view;
    view.graph = &q_;
    std::vector<SampleValues> gotq;
    TQ_RETURN_IF_ERROR(qstream_.run(view, map_.op[i], {q_.operators[map_.op[i]].inputs[0]}, true, &gotq));
    const FloatBuffer& xq = *gotq[0];  // already on the input's quantization grid
    const double captured = (port::now_us() - t_layer) / 1e6;
    lr.capture_seconds += captured;
    report->capture_seconds += captured;
    lr.cache_bytes = std::max<int64_t>(lr.cache_bytes, static_cast<int64_t>((xf.size() + xq.size()) * sizeof(float)));

    LayerProblem p;
    TQ_RETURN_IF_ERROR(make_problem(i, &p));
    const int32_t r = root_[op.inputs[0]];
    const float s_in = params_[r].scale;
    // Quantized layer: fake-quant weights and the real value of the int32 bias the file stores.
    std::vector<float> wq(p.w.size());
    fake_quant_weights_train(p.w.data(), p.w.size(), p.inner, p.channels, p.sw.data(), p.wbits, wq.data());
    QuantizedBias qb;
    TQ_RETURN_IF_ERROR(quantize_bias(op.name.c_str(), p.b.data(), p.channels, s_in, p.sw.data(), &qb));
    const std::vector<float>& bq = qb.fake_quant;
    const float* fw = fg_.constant_data<float>(op.inputs[1]);
    std::vector<float> fb(p.b.size(), 0.0f);
    if (op.inputs.size() > 2 && op.inputs[2] >= 0) {
      const float* b = fg_.constant_data<float>(op.inputs[2]);
      fb.assign(b, b + p.b.size());
    }
    const int32_t C = p.channels;
    std::vector<double> sum_q(C, 0), sq_q(C, 0), sum_f(C, 0), sq_f(C, 0), sq_d(C, 0);
    LayerScratch scratch;
    std::vector<float> zq, zf;
    int64_t count = 0;
    const int32_t chunk = std::max<int32_t>(1, opt_.rtn.batch);
    double mse_before = 0.0;
    for (int32_t f = 0; f < calib_.samples; f += chunk) {
      const int32_t n = std::min(chunk, calib_.samples - f);
      const LayerShape s = at_batch(p.shape1, n);
      zq.resize(s.output_elements());
      zf.resize(s.output_elements());
      layer_forward(s, xq.data() + int64_t(f) * p.in_per, wq.data(), bq.data(), zq.data(), &scratch);
      layer_forward(s, xf.data() + int64_t(f) * p.in_per, fw, fb.data(), zf.data(), &scratch);
      const int64_t rows = static_cast<int64_t>(zq.size()) / C;
      for (int64_t r = 0; r < rows; ++r) {  // rows x channels: no modulo, the channel loop vectorises
        const float* q = zq.data() + r * C;
        const float* fl = zf.data() + r * C;
        for (int32_t c = 0; c < C; ++c) {
          sum_q[c] += q[c];
          sq_q[c] += double(q[c]) * q[c];
          sum_f[c] += fl[c];
          sq_f[c] += double(fl[c]) * fl[c];
          sq_d[c] += double(q[c] - fl[c]) * (q[c] - fl[c]);
        }
      }
      count += rows;
    }
    for (int32_t c = 0; c < C; ++c) mse_before += sq_d[c];
    lr.stats_gamma_min = 1e9;
    lr.stats_gamma_max = -1e9;
    for (int32_t c = 0; c < C; ++c) {
      const double mq = sum_q[c] / count, mf = sum_f[c] / count;
      const double vq = std::max(0.0, sq_q[c] / count - mq * mq), vf = std::max(0.0, sq_f[c] / count - mf * mf);
      double g = (vq > 1e-20 && vf > 0) ? std::sqrt(vf / vq) : 1.0;
      g = std::min(std::max(g, 0.5), 2.0);
      lr.stats_gamma_min = std::min(lr.stats_gamma_min, g);
      lr.stats_gamma_max = std::max(lr.stats_gamma_max, g);
      // Output = g·(conv(x, W_q) + b_q − mq) + mf: the integers stay, s_w scales by g.
      p.sw[c] = static_cast<float>(p.sw[c] * g);
      p.b[c] = static_cast<float>(mf - g * (mq - bq[c]));
    }
    // W' scales with s_w so the stored integers round(W'/s_w) do not change.
    for (size_t e = 0; e < p.w.size(); ++e) {
      const int32_t c = static_cast<int32_t>((e / p.inner) % p.channels);
      const double g = double(p.sw[c]) / double(layers_[i].scales[c]);
      p.w[e] = static_cast<float>(p.w[e] * g);
    }
    lr.stats_mse_before = mse_before / double(count * C);
    LayerQuant& lq = layers_[i];
    lq.weights = p.w;
    lq.scales = p.sw;
    lq.bias = p.b;
    lr.seconds += (port::now_us() - t_layer) / 1e6;
    report_progress(k, "stats tuning", 1, 1, lr.stats_mse_before);
    macs_done_ += double(macs_[k]);
    return Status::ok();
  }

  const Graph& fg_;
  const CalibrationData& calib_;
  const AdaQuantOptions& opt_;
  const QuantState* start_;
  int64_t per_sample_ = 0;
  int32_t holdout_ = 0, train_ = 0;
  Rates rates_{};
  std::vector<Dims> dims_;
  std::vector<ActivationChoice> choices_;
  std::vector<ActivationParams> params_;
  std::vector<LayerQuant> layers_;
  std::vector<int32_t> root_, targets_;
  std::vector<bool> learned_;
  std::vector<std::vector<float>> initial_scales_;
  std::vector<ActivationParams> initial_params_;
  Graph q_;
  RewriteMap map_;
  size_t q_ops_ = 0, q_tensors_ = 0;  // q_'s shape, the same after every rebuild
  Frontier fstream_, qstream_;        // the float graph's; q_'s (run on its simulated twin)
  std::vector<int32_t> qbound_;       // per target: the q_ boundary qstream_ may stand at
  Graph sim_;
  SimulatedMap smap_;
  RtnReport qreport_;
  int64_t flops_ = 0;
  uint64_t t_start_ = 0;
  std::vector<int64_t> macs_;  // per target: one sample's forward
  double total_macs_ = 0.0, macs_done_ = 0.0;
};


}  // namespace

std::string AdaQuantReport::json(bool timing) const {
  std::string j = "{\"pipeline\": ";
  append_json_string(&j, pipeline);
  char buf[512];
  std::snprintf(buf, sizeof(buf), ", \"samples\": %d, \"train_samples\": %d, \"holdout_samples\": %d, \"qdrop\": %g",
                rtn.samples, train_samples, holdout_samples, double(qdrop));
  j += buf;
  if (timing) {
    std::snprintf(buf, sizeof(buf),
                  ", \"seconds\": %.3f, \"adaquant_seconds\": %.3f, \"stats_seconds\": %.3f, \"capture_seconds\": %.3f, \"gflops\": %.2f, "
                  "\"peak_rss_bytes\": %lld, \"start_rss_bytes\": %lld, \"gemm\": \"%s\"",
                  seconds, adaquant_seconds, stats_seconds, capture_seconds, gflops, static_cast<long long>(peak_rss_bytes), static_cast<long long>(start_rss_bytes),
                  gemm_engine.c_str());
    j += buf;
  }
  std::snprintf(buf, sizeof(buf), ", \"largest_cache_bytes\": %lld", static_cast<long long>(largest_cache_bytes));
  j += buf;
  j += ", \"layers\": [";
  for (size_t k = 0; k < layers.size(); ++k) {
    const AdaQuantLayerReport& l = layers[k];
    j += k ? ", {\"name\": " : "{\"name\": ";
    append_json_string(&j, l.name);
    std::snprintf(buf, sizeof(buf),
                  ", \"op\": \"%s\", \"wbits\": %d, \"abits\": %d, \"optimised\": %s, \"reverted\": %s, "
                  "\"mse_before\": %.6g, \"mse_after\": %.6g, \"iterations\": %d, \"learned_input_quantizer\": %s, "
                  "\"stats_gamma_min\": %.5g, \"stats_gamma_max\": %.5g, \"stats_mse_before\": %.6g, "
                  "\"cache_bytes\": %lld, \"macs\": %lld",
                  op_name(l.type), l.weight_bits, l.activation_bits, l.optimised ? "true" : "false",
                  l.reverted ? "true" : "false", l.mse_before, l.mse_after, l.iterations,
                  l.learned_input_quantizer ? "true" : "false", l.stats_gamma_min, l.stats_gamma_max,
                  l.stats_mse_before, static_cast<long long>(l.cache_bytes), static_cast<long long>(l.macs));
    j += buf;
    if (timing) {
      std::snprintf(buf, sizeof(buf),
                    ", \"seconds\": %.3f, \"capture_seconds\": %.3f, \"init_input_scale\": %.9g, \"init_input_zero_point\": %d, "
                    "\"final_input_scale\": %.9g, \"final_input_zero_point\": %d",
                    l.seconds, l.capture_seconds, l.init_input_scale, l.init_input_zero_point, l.final_input_scale,
                    l.final_input_zero_point);
      j += buf;
      for (int f = 0; f < 2; ++f) {
        j += f ? ", \"final_weight_scales\": [" : ", \"init_weight_scales\": [";
        const std::vector<float>& v = f ? l.final_weight_scales : l.init_weight_scales;
        for (size_t c = 0; c < v.size(); ++c) {
          std::snprintf(buf, sizeof(buf), c ? ", %.9g" : "%.9g", v[c]);
          j += buf;
        }
        j += "]";
      }
    }
    if (!l.note.empty()) {
      j += ", \"note\": ";
      append_json_string(&j, l.note);
    }
    j += "}";
  }
  j += "], \"matmuls\": [";
  for (size_t k = 0; k < matmuls.size(); ++k) {
    const AdaQuantMatMulReport& m = matmuls[k];
    j += k ? ", {\"name\": " : "{\"name\": ";
    append_json_string(&j, m.name);
    for (int i = 0; i < 2; ++i) {
      j += i ? ", \"input_b\": " : ", \"input_a\": ";
      append_json_string(&j, m.inputs[i]);
      std::snprintf(buf, sizeof(buf),
                    ", \"%s_learned\": %s, \"%s_bits\": %d, \"%s_init_scale\": %.9g, \"%s_init_zero_point\": %d, "
                    "\"%s_final_scale\": %.9g, \"%s_final_zero_point\": %d",
                    i ? "b" : "a", m.learned[i] ? "true" : "false", i ? "b" : "a", m.bits[i], i ? "b" : "a",
                    m.init_scale[i], i ? "b" : "a", m.init_zero_point[i], i ? "b" : "a", m.final_scale[i],
                    i ? "b" : "a", m.final_zero_point[i]);
      j += buf;
    }
    std::snprintf(buf, sizeof(buf), ", \"mse_before\": %.6g, \"mse_after\": %.6g, \"reverted\": %s, \"iterations\": %d",
                  m.mse_before, m.mse_after, m.reverted ? "true" : "false", m.iterations);
    j += buf;
    if (timing) {
      std::snprintf(buf, sizeof(buf), ", \"seconds\": %.3f", m.seconds);
      j += buf;
    }
    j += "}";
  }
  j += "], \"rtn\": " + rtn.json(timing) + "}";
  return j;
}

Status run_adaquant(const Graph& float_graph, const CalibrationData& calibration, const AdaQuantOptions& options,
                    const QuantState* start, QuantState* end, Graph* quantized, AdaQuantReport* report) {
  AdaQuantReport local;
  AdaQuantReport& r = report ? *report : local;
  r = AdaQuantReport();
  Graph q;
  QuantState state;
  Pipeline pipeline(float_graph, calibration, options, start);
  TQ_RETURN_IF_ERROR(pipeline.run(&q, &r, end ? &state : nullptr));
  if (quantized) *quantized = std::move(q);
  if (end) *end = std::move(state);
  return Status::ok();
}

Status quantize_graph_adaquant(const Graph& float_graph, const CalibrationData& calibration,
                               const AdaQuantOptions& options, Graph* quantized, AdaQuantReport* report) {
  return run_adaquant(float_graph, calibration, options, nullptr, nullptr, quantized, report);
}

}  // namespace quant
}  // namespace tinyquant
