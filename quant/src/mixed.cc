// Mixed precision: candidates, sensitivities, the integer program and the light / advanced
// pipelines (contract in tinyquant/mixed.h).
#include "tinyquant/mixed.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "adam.h"
#include "adaquant_state.h"
#include "backprop.h"
#include "rewrite.h"
#include "stream.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/op_info.h"
#include "tinyquant/port.h"
#include "tinyquant/shape_inference.h"

namespace tinyquant {
namespace quant {

const char* mixed_pipeline_name(MixedPipeline p) { return p == MixedPipeline::kAdvanced ? "advanced" : "light"; }

namespace {

constexpr double kMinSensitivity = 1e-9;  // ΔL floor: no option is free

bool cancelled(const MixedOptions& o) { return o.aq.cancel && o.aq.cancel->load(); }

// Every output value of `g` over the calibration set, sample-major (one output only).
Status run_outputs(const Graph& g, const CalibrationData& calib, int64_t per_sample, const RtnOptions& rtn,
                   std::vector<float>* out, int64_t* out_per) {
  Interpreter interps[2];
  int32_t prepared[2] = {0, 0};
  PrepareOptions prep;
  prep.backend = rtn.backend;
  prep.threads = rtn.threads;
  out->clear();
  for (int32_t first = 0; first < calib.samples;) {
    const int32_t n = std::min(rtn.batch, calib.samples - first);
    const int w = n == rtn.batch ? 0 : 1;
    if (prepared[w] != n) {
      prep.batch = n;
      TQ_RETURN_IF_ERROR(interps[w].prepare(g, prep));
      prepared[w] = n;
    }
    Interpreter& interp = interps[w];
    std::copy(calib.values.data() + first * per_sample, calib.values.data() + (first + n) * per_sample,
              interp.input(0).as<float>());
    Status s = interp.invoke();
    if (!s.is_ok()) return s.with_context("calibration samples %d..%d", first, first + n - 1);
    const TensorView o = interp.output(0);
    TQ_ENSURE(o.dtype == DType::kFloat32, kInternal, "mixed precision: the model's output is %s, expected float32",
              dtype_name(o.dtype));
    *out_per = o.elements() / n;
    out->insert(out->end(), o.as<const float>(), o.as<const float>() + o.elements());
    first += n;
  }
  return Status::ok();
}

// One sample's output as a distribution: the values themselves (renormalised) when they are
// probabilities already (the model ends in Softmax), else their softmax; floored away from 0.
void distribution(const float* v, int64_t per, bool probs, std::vector<double>* p) {
  double s = 0.0;
  if (probs) {
    for (int64_t c = 0; c < per; ++c) s += (*p)[c] = std::max(double(v[c]), 1e-12);
    for (double& x : *p) x /= s;
    return;
  }
  const double m = *std::max_element(v, v + per);
  for (int64_t c = 0; c < per; ++c) s += (*p)[c] = std::exp(double(v[c]) - m);
  for (double& x : *p) x = std::max(x / s, 1e-300);
}

// The label-free loss of outputs q against the float model's f (n samples of `per` values):
// mean KL(softmax f ‖ softmax q) — or of the values themselves when they are probabilities
// already (the model ends in Softmax) — or the mean squared difference; and the percentage of
// samples whose arg-max differs.
void output_loss(const float* f, const float* q, int64_t n, int64_t per, SensitivityLoss kind, bool probs,
                 double* loss, double* drop) {
  double total = 0.0;
  int64_t differ = 0;
  std::vector<double> pf(per), pq(per);
  for (int64_t i = 0; i < n; ++i) {
    const float* a = f + i * per;
    const float* b = q + i * per;
    if (std::max_element(a, a + per) - a != std::max_element(b, b + per) - b) ++differ;
    if (kind == SensitivityLoss::kMse) {
      for (int64_t c = 0; c < per; ++c) total += double(a[c] - b[c]) * (a[c] - b[c]) / double(per);
      continue;
    }
    distribution(a, per, probs, &pf);
    distribution(b, per, probs, &pq);
    for (int64_t c = 0; c < per; ++c) total += pf[c] * (std::log(pf[c]) - std::log(pq[c]));
  }
  *loss = n > 0 ? total / double(n) : 0.0;
  *drop = n > 0 ? 100.0 * double(differ) / double(n) : 0.0;
}

// Per operator: 0 (the uniform RtnOptions::weight_bits) except the embedding tables (Gather),
// which the integer program does not size: 8 bits in the budget check, every candidate and the
// chosen model, so the bytes outside the layers are the same in all of them.
std::vector<int32_t> fixed_layer_bits(const Graph& fg) {
  std::vector<int32_t> b(fg.operators.size(), 0);
  for (size_t i = 0; i < fg.operators.size(); ++i)
    if (fg.operators[i].type == OpType::kGather) b[i] = 8;
  return b;
}

}  // namespace

struct MixedCandidates::Impl {
  const Graph* fg = nullptr;
  const CalibrationData* calib = nullptr;
  MixedOptions opt;
  int64_t per_sample = 0;
  std::vector<int32_t> bits;        // ascending
  std::vector<QuantState> cand;     // per option
  std::vector<int32_t> targets;     // float ops
  std::vector<int32_t> root;        // per float tensor
  std::vector<int32_t> learner;     // per float tensor (a root): the target index whose candidate sets it
  std::vector<std::vector<int64_t>> bytes;   // [target][option]
  std::vector<std::vector<double>> sens;     // [target][option]
  std::vector<std::vector<double>> mse_after;
  std::vector<int64_t> macs, act_bytes;
  std::vector<int32_t> abits;       // per target: its input's bits
  int64_t fixed_bytes = 0, float32_bytes = 0;
  std::vector<float> float_out;
  int64_t out_per = 0;
  bool probs = false;
  double base_loss = 0.0, base_drop = 0.0;
  double candidate_seconds = 0.0, sensitivity_seconds = 0.0;

  int32_t largest() const { return static_cast<int32_t>(bits.size()) - 1; }

  void progress(const char* stage, int32_t layer, int32_t layers, const char* name, double loss, uint64_t t0) const {
    if (!opt.aq.progress) return;
    AdaQuantProgress p;
    p.layer = layer;
    p.layers = layers;
    p.name = name;
    p.stage = stage;
    p.iteration = 1;
    p.iterations = 1;
    p.loss = loss;
    p.elapsed_s = (port::now_us() - t0) / 1e6;
    p.eta_s = layer + 1 < layers ? p.elapsed_s * (layers - layer - 1) / (layer + 1) : 0.0;
    opt.aq.progress(opt.aq.progress_user, p);
  }

  // choice[j]: the option index of target j. Layers, weight bits and the input quantizers their
  // learners' candidates set.
  QuantState assemble(const std::vector<int32_t>& choice) const {
    QuantState s;
    s.layers = cand[largest()].layers;
    s.params = cand[largest()].params;
    for (size_t j = 0; j < targets.size(); ++j) {
      const int32_t i = targets[j];
      s.layers[i] = cand[choice[j]].layers[i];
      s.layers[i].weight_bits = bits[choice[j]];
    }
    for (size_t t = 0; t < root.size(); ++t) {
      const int32_t l = learner[root[t]];
      if (l >= 0) s.params[t] = cand[choice[l]].params[t];
    }
    return s;
  }

  // Per operator of the float graph: the chosen bits of each target (none: 0, the uniform
  // RtnOptions::weight_bits), the embedding tables at 8 (fixed_layer_bits).
  std::vector<int32_t> layer_bits(const std::vector<int32_t>& choice) const {
    std::vector<int32_t> b = fixed_layer_bits(*fg);
    for (size_t j = 0; j < choice.size(); ++j) b[targets[j]] = bits[choice[j]];
    return b;
  }

  RtnOptions rtn_for(const std::vector<int32_t>& choice) const {
    RtnOptions r = opt.aq.rtn;
    r.layer_weight_bits = layer_bits(choice);
    return r;
  }

  Status build(const std::vector<int32_t>& choice, Graph* q, RewriteMap* map) const {
    const QuantState s = assemble(choice);
    return build_integer_graph(*fg, rtn_for(choice), s.params, &s.layers, q, map, nullptr);
  }

  // The loss and top-1 drop of a quantized graph on the calibration set, on its integer kernels.
  Status measure(const Graph& q, double* loss, double* drop) const {
    std::vector<float> out;
    int64_t per = 0;
    TQ_RETURN_IF_ERROR(run_outputs(q, *calib, per_sample, opt.aq.rtn, &out, &per));
    TQ_ENSURE(per == out_per, kInternal, "mixed precision: quantized output has %lld values per sample, float %lld",
              static_cast<long long>(per), static_cast<long long>(out_per));
    output_loss(float_out.data(), out.data(), calib->samples, per, opt.loss, probs, loss, drop);
    return Status::ok();
  }

  Status candidates(std::vector<AdaQuantReport>* reports) {
    const uint64_t t0 = port::now_us();
    cand.resize(bits.size());
    reports->resize(bits.size());
    for (size_t k = 0; k < bits.size(); ++k) {
      AdaQuantOptions o = opt.aq;
      o.rtn.weight_bits = bits[k];
      o.rtn.layer_weight_bits = layer_bits({});  // uniform bits[k]
      // Every option, the largest too: ΔL swaps a layer's candidate — weights and, for the layer
      // that learns it, its input quantizer — into the all-largest model, so that model's
      // quantizers must be learned the same way or ΔL measures the quantizer, not the bits (with
      // 4-bit activations a learned input quantizer made many 2-bit layers look better than 8).
      o.adaquant = opt.pipeline == MixedPipeline::kAdvanced;
      o.sequential = false;
      o.stats_tuning = false;
      Graph q;
      Status s = run_adaquant(*fg, *calib, o, nullptr, &cand[k], &q, &(*reports)[k]);
      if (!s.is_ok()) return s.with_context("%d-bit candidates", bits[k]);
      const QuantState& c = cand[k];
      if (k == 0) {
        targets = c.targets;
        root = c.root;
        TQ_ENSURE(!targets.empty(), kInvalidArgument, "mixed precision: the model has no int8 weighted layer");
        bytes.assign(targets.size(), std::vector<int64_t>(bits.size()));
        mse_after.assign(targets.size(), std::vector<double>(bits.size(), 0.0));
        float32_bytes = quantized_bytes(q).float32;
      }
      TQ_ENSURE(c.targets == targets, kInternal, "mixed precision: the %d-bit candidates quantize other layers",
                bits[k]);
      int64_t layer_sum = 0;
      for (size_t j = 0; j < targets.size(); ++j) {
        bytes[j][k] = quantized_op_bytes(q, c.map.op[targets[j]]);
        layer_sum += bytes[j][k];
        const AdaQuantLayerReport& lr = (*reports)[k].layers[j];
        if (lr.optimised) mse_after[j][k] = lr.mse_after;
      }
      const int64_t fixed = quantized_bytes(q).total() - layer_sum;
      TQ_ENSURE(k == 0 || fixed == fixed_bytes, kInternal,
                "mixed precision: the bytes outside the layers differ between candidates (%lld, %lld)",
                static_cast<long long>(fixed), static_cast<long long>(fixed_bytes));
      fixed_bytes = fixed;
      const std::string what = std::to_string(bits[k]) + "-bit weights";
      progress("candidates", static_cast<int32_t>(k), static_cast<int32_t>(bits.size()), what.c_str(), 0.0, t0);
      if (cancelled(opt)) return Status::error(StatusCode::kCancelled, "mixed precision cancelled");
    }
    // Per target: MACs, activation bytes, input bits; the learner of every input quantizer.
    std::vector<Dims> dims;
    TQ_RETURN_IF_ERROR(infer_shapes(*fg, 1, &dims));
    learner.assign(fg->tensors.size(), -1);
    for (size_t j = 0; j < targets.size(); ++j) {
      const Operator& op = fg->operators[targets[j]];
      macs.push_back((*reports)[largest()].layers[j].macs);
      act_bytes.push_back(dims[op.inputs[0]].elements() + dims[op.outputs[0]].elements());
      const int32_t r = root[op.inputs[0]];
      abits.push_back(cand[largest()].params[r].bits);
      if (learner[r] < 0) learner[r] = static_cast<int32_t>(j);
    }
    candidate_seconds = (port::now_us() - t0) / 1e6;
    return Status::ok();
  }

  Status sensitivities() {
    const uint64_t t0 = port::now_us();
    // The float model's outputs: the reference of every loss.
    TQ_RETURN_IF_ERROR(run_outputs(*fg, *calib, per_sample, opt.aq.rtn, &float_out, &out_per));
    const int32_t fout = fg->outputs[0];
    for (const Operator& op : fg->operators)
      if (op.outputs[0] == fout && op.type == OpType::kSoftmax) probs = true;

    const std::vector<int32_t> base_choice(targets.size(), largest());
    Graph qbase;
    RewriteMap map;
    TQ_RETURN_IF_ERROR(build(base_choice, &qbase, &map));
    TQ_RETURN_IF_ERROR(measure(qbase, &base_loss, &base_drop));
    // Where the frontier may stand for target j: before the first q op that changes when j's
    // candidate (and, for its learner, the input quantizer of j's chain) changes.
    std::vector<int32_t> qproducer(qbase.tensors.size(), std::numeric_limits<int32_t>::max());
    for (size_t o = 0; o < qbase.operators.size(); ++o)
      for (int32_t t : qbase.operators[o].outputs) qproducer[t] = static_cast<int32_t>(o);
    std::vector<int32_t> bound(targets.size());
    for (size_t j = 0; j < targets.size(); ++j) {
      int32_t b = map.op[targets[j]];
      const int32_t r = root[fg->operators[targets[j]].inputs[0]];
      for (size_t t = 0; t < root.size(); ++t)
        if (root[t] == r && map.int8_version[t] >= 0) b = std::min(b, qproducer[map.int8_version[t]]);
      bound[j] = b;
    }
    for (size_t j = targets.size(); j-- > 1;) bound[j - 1] = std::min(bound[j - 1], bound[j]);

    Graph sim_base, sim_var;
    SimulatedMap smap_base, smap_var;
    TQ_RETURN_IF_ERROR(build_simulated_graph_mapped(qbase, {}, &sim_base, &smap_base));
    FrontierView base_view;
    base_view.graph = &sim_base;
    base_view.tensor = smap_base.value;
    base_view.op_begin = smap_base.op_begin;
    Frontier frontier;
    TQ_RETURN_IF_ERROR(frontier.init(qbase, *calib, per_sample, opt.aq.rtn));
    const int32_t end = static_cast<int32_t>(qbase.operators.size());
    const int32_t qout = qbase.outputs[0];
    // The simulated twin's loss at all-largest, so that ΔL compares like with like.
    std::vector<SampleValues> got;
    double sim_base_loss = 0.0, unused = 0.0;
    TQ_RETURN_IF_ERROR(frontier.run(base_view, end, {qout}, false, &got));
    output_loss(float_out.data(), got[0]->data(), calib->samples, out_per, opt.loss, probs, &sim_base_loss, &unused);

    sens.assign(targets.size(), std::vector<double>(bits.size(), kMinSensitivity));
    for (size_t j = 0; j < targets.size(); ++j) {
      const int32_t i = targets[j];
      base_view.unchanged = false;
      TQ_RETURN_IF_ERROR(frontier.run(base_view, bound[j], {}, true, &got));
      double worst = 0.0;
      for (int32_t k = 0; k < largest(); ++k) {
        std::vector<int32_t> choice = base_choice;
        choice[j] = k;
        Graph qv;
        RewriteMap vmap;
        TQ_RETURN_IF_ERROR(build(choice, &qv, &vmap));
        TQ_ENSURE(qv.operators.size() == qbase.operators.size() && qv.tensors.size() == qbase.tensors.size(),
                  kInternal, "mixed precision: the candidate graph for '%s' has another shape", fg->operators[i].name.c_str());
        TQ_RETURN_IF_ERROR(build_simulated_graph_mapped(qv, {}, &sim_var, &smap_var));
        FrontierView v;
        v.graph = &sim_var;
        v.tensor = smap_var.value;
        v.op_begin = smap_var.op_begin;
        Status s = frontier.run(v, end, {qout}, false, &got);
        if (!s.is_ok()) return s.with_context("sensitivity of '%s' at %d bits", fg->operators[i].name.c_str(), bits[k]);
        double loss = 0.0, drop = 0.0;
        output_loss(float_out.data(), got[0]->data(), calib->samples, out_per, opt.loss, probs, &loss, &drop);
        sens[j][k] = std::max(kMinSensitivity, loss - sim_base_loss);
        worst = std::max(worst, sens[j][k]);
        if (cancelled(opt)) return Status::error(StatusCode::kCancelled, "mixed precision cancelled");
      }
      progress("sensitivity", static_cast<int32_t>(j), static_cast<int32_t>(targets.size()),
               fg->operators[i].name.c_str(), worst, t0);
    }
    sensitivity_seconds = (port::now_us() - t0) / 1e6;
    return Status::ok();
  }

  // Bias tuning (ALGORITHMS §5) of state s: its biases trained end to end on the fake-quant twin
  // against the float model's outputs, KL(p_float ‖ p_quant). Kept only if the held-out KL fell.
  Status tune_biases(const std::vector<int32_t>& choice, QuantState* s, MixedReport::BiasTuning* rep) const {
    const uint64_t t0 = port::now_us();
    Graph q, sim;
    RewriteMap map;
    SimulatedMap smap;
    TQ_RETURN_IF_ERROR(build_integer_graph(*fg, rtn_for(choice), s->params, &s->layers, &q, &map, nullptr));
    TQ_RETURN_IF_ERROR(build_simulated_graph_mapped(q, {}, &sim, &smap));
    // Per target: its bias constant in the simulated graph and its output's quantization step.
    std::vector<int32_t> bias_t(targets.size(), -1);
    std::vector<float> out_scale(targets.size(), 1.0f);
    for (size_t j = 0; j < targets.size(); ++j) {
      const int32_t qop = map.op[targets[j]];
      const int32_t sop = smap.op[qop];
      TQ_ENSURE(sop >= 0 && sim.operators[sop].inputs.size() > 2 && sim.operators[sop].inputs[2] >= 0, kInternal,
                "bias tuning: layer '%s' has no bias in the simulated graph", fg->operators[targets[j]].name.c_str());
      bias_t[j] = sim.operators[sop].inputs[2];
      const Tensor& o = q.tensors[q.operators[qop].outputs[0]];
      out_scale[j] = o.quant.scale.empty() ? 1.0f : o.quant.scale[0];
    }
    const int32_t holdout =
        std::max<int32_t>(1, static_cast<int32_t>(std::lround(calib->samples * double(opt.aq.holdout))));
    const int32_t train = calib->samples - holdout;
    TQ_ENSURE(train >= 1, kInvalidArgument, "bias tuning: %d calibration samples leave none to train on",
              calib->samples);
    const int32_t batch = std::max<int32_t>(1, std::min(opt.bias_batch, train));
    Backprop bp;
    // Mean KL over samples [first, first + count) with the biases in `sim`; with g, the gradient
    // of that batch's mean KL w.r.t. every target's bias (count must then be one batch).
    auto run = [&](int32_t first, int32_t count, double* kl, std::vector<std::vector<float>>* g) -> Status {
      *kl = 0.0;
      for (int32_t at = first; at < first + count;) {
        const int32_t n = std::min(batch, first + count - at);
        if (bp.batch() != n) TQ_RETURN_IF_ERROR(bp.prepare(sim, n));
        TQ_RETURN_IF_ERROR(bp.forward(calib->values.data() + int64_t(at) * per_sample));
        const std::vector<float>& y = bp.value(sim.outputs[0]);
        std::vector<float> dy(y.size());
        std::vector<double> pf(out_per), pq(out_per);
        for (int32_t i = 0; i < n; ++i) {
          const float* o = y.data() + int64_t(i) * out_per;
          distribution(float_out.data() + int64_t(at + i) * out_per, out_per, probs, &pf);
          distribution(o, out_per, probs, &pq);
          for (int64_t c = 0; c < out_per; ++c) {
            *kl += pf[c] * (std::log(pf[c]) - std::log(pq[c]));
            // d KL / d output, for the batch mean: −p_f / p_q for probabilities, p_q − p_f for logits.
            dy[i * out_per + c] =
                static_cast<float>((probs ? -pf[c] / std::max(double(o[c]), 1e-12) : pq[c] - pf[c]) / double(n));
          }
        }
        if (g) {
          TQ_RETURN_IF_ERROR(bp.backward(dy.data()));
          g->resize(targets.size());
          for (size_t j = 0; j < targets.size(); ++j) (*g)[j] = bp.grad(bias_t[j]);
        }
        at += n;
      }
      *kl /= double(count);
      return Status::ok();
    };
    std::vector<std::vector<float>> b(targets.size()), lr(targets.size()), g;
    std::vector<Adam> adam(targets.size());
    for (size_t j = 0; j < targets.size(); ++j) {
      const float* v = sim.constant_data<float>(bias_t[j]);
      b[j].assign(v, v + shape_elements(sim.tensors[bias_t[j]].shape));
      lr[j].assign(b[j].size(), opt.bias_lr * out_scale[j]);
      adam[j].init(b[j].size());
    }
    auto set_biases = [&]() {  // into the simulated graph (owned constants; re-read at every invoke)
      for (size_t j = 0; j < targets.size(); ++j) std::copy(b[j].begin(), b[j].end(), sim.mutable_constant_data<float>(bias_t[j]));
    };
    rep->ran = true;
    TQ_RETURN_IF_ERROR(run(train, holdout, &rep->holdout_kl_before, nullptr));
    int64_t step = 0;
    for (int32_t e = 0; e < opt.bias_epochs; ++e) {
      double kl = 0.0, total = 0.0;
      int32_t batches = 0;
      for (int32_t at = 0; at + batch <= train; at += batch) {
        TQ_RETURN_IF_ERROR(run(at, batch, &kl, &g));
        ++step;
        for (size_t j = 0; j < targets.size(); ++j) adam[j].update(b[j].data(), g[j].data(), lr[j].data(), b[j].size(), step, 1.0);
        set_biases();
        total += kl;
        ++batches;
        if (cancelled(opt)) return Status::error(StatusCode::kCancelled, "mixed precision cancelled");
      }
      progress("bias tuning", e, opt.bias_epochs, "every bias", batches ? total / batches : 0.0, t0);
    }
    rep->epochs = opt.bias_epochs;
    rep->steps = static_cast<int32_t>(step);
    TQ_RETURN_IF_ERROR(run(train, holdout, &rep->holdout_kl_after, nullptr));
    rep->kept = rep->holdout_kl_after < rep->holdout_kl_before;
    if (rep->kept)
      for (size_t j = 0; j < targets.size(); ++j) s->layers[targets[j]].bias = b[j];
    rep->seconds = (port::now_us() - t0) / 1e6;
    return Status::ok();
  }

  AllocationProblem problem() const {
    AllocationProblem p;
    p.fixed_bytes = fixed_bytes;
    for (size_t j = 0; j < targets.size(); ++j) {
      AllocationLayer l;
      l.name = fg->operators[targets[j]].name;
      for (size_t k = 0; k < bits.size(); ++k) {
        AllocationOption o;
        o.cost = sens[j][k];
        o.bytes = bytes[j][k];
        o.bops = double(macs[j]) * bits[k] * abits[j];
        o.activation_bytes = act_bytes[j];
        l.options.push_back(o);
      }
      p.layers.push_back(std::move(l));
    }
    return p;
  }
};

MixedCandidates::MixedCandidates() = default;
MixedCandidates::~MixedCandidates() = default;
MixedCandidates::MixedCandidates(MixedCandidates&&) noexcept = default;
MixedCandidates& MixedCandidates::operator=(MixedCandidates&&) noexcept = default;

Status prepare_mixed(const Graph& float_graph, const CalibrationData& calibration, const MixedOptions& options,
                     MixedCandidates* out) {
  std::unique_ptr<MixedCandidates::Impl> m(new MixedCandidates::Impl);
  m->fg = &float_graph;
  m->calib = &calibration;
  m->opt = options;
  TQ_ENSURE(!options.bits.empty(), kInvalidArgument, "mixed precision needs at least one weight-bit option");
  for (int32_t b : options.bits)
    TQ_ENSURE(b >= 2 && b <= 8, kInvalidArgument, "weight-bit option %d is not one of 2..8", b);
  m->bits = options.bits;
  std::sort(m->bits.begin(), m->bits.end());
  TQ_ENSURE(std::adjacent_find(m->bits.begin(), m->bits.end()) == m->bits.end(), kInvalidArgument,
            "weight-bit options repeat a value");
  TQ_ENSURE(float_graph.inputs.size() == 1 && float_graph.outputs.size() == 1, kUnsupported,
            "mixed precision takes single-input, single-output models (this one has %zu inputs, %zu outputs)",
            float_graph.inputs.size(), float_graph.outputs.size());
  TQ_RETURN_IF_ERROR(check_quantization_inputs(float_graph, calibration, 8, options.aq.rtn.activation_bits,
                                               options.aq.rtn.batch, &m->per_sample));
  std::vector<AdaQuantReport> reports;
  TQ_RETURN_IF_ERROR(m->candidates(&reports));
  TQ_RETURN_IF_ERROR(m->sensitivities());
  out->impl = std::move(m);
  return Status::ok();
}

std::string MixedReport::bits_summary() const {
  std::map<int32_t, int32_t> count;
  for (const MixedLayerReport& l : layers) ++count[l.chosen_bits];
  std::string s;
  for (const auto& kv : count) s += (s.empty() ? "" : " ") + std::to_string(kv.first) + ":" + std::to_string(kv.second);
  return s;
}

std::string MixedReport::json(bool timing) const {
  std::string j = "{\"pipeline\": ";
  append_json_string(&j, pipeline);
  char buf[768];
  std::snprintf(buf, sizeof(buf),
                ", \"float32_bytes\": %lld, \"budget_bytes\": %lld, \"max_drop\": %g, \"model_bytes\": %lld, "
                "\"fraction\": %.6f, \"smallest_bytes\": %lld, \"largest_bytes\": %lld, \"base_loss\": %.6g, "
                "\"predicted_loss\": %.6g, \"calibration_loss\": %.6g, \"calibration_drop\": %.3f, \"bops\": %.6g, "
                "\"solver\": \"%s\", \"solver_nodes\": %lld, \"drop_searches\": %d, \"bits\": \"%s\"",
                static_cast<long long>(float32_bytes), static_cast<long long>(budget_bytes), max_drop,
                static_cast<long long>(model_bytes), float32_bytes > 0 ? double(model_bytes) / double(float32_bytes) : 0.0,
                static_cast<long long>(smallest_bytes), static_cast<long long>(largest_bytes), base_loss,
                predicted_loss, calibration_loss, calibration_drop, bops, allocation.status.c_str(),
                static_cast<long long>(allocation.nodes), drop_searches, bits_summary().c_str());
  j += buf;
  if (bias.ran) {
    std::snprintf(buf, sizeof(buf),
                  ", \"bias_tuning\": {\"epochs\": %d, \"steps\": %d, \"holdout_kl_before\": %.6g, "
                  "\"holdout_kl_after\": %.6g, \"kept\": %s",
                  bias.epochs, bias.steps, bias.holdout_kl_before, bias.holdout_kl_after, bias.kept ? "true" : "false");
    j += buf;
    if (timing) {
      std::snprintf(buf, sizeof(buf), ", \"seconds\": %.3f", bias.seconds);
      j += buf;
    }
    j += "}";
  }
  if (timing) {
    std::snprintf(buf, sizeof(buf),
                  ", \"seconds\": %.3f, \"candidate_seconds\": %.3f, \"sensitivity_seconds\": %.3f, "
                  "\"allocation_seconds\": %.3f, \"tuning_seconds\": %.3f, \"peak_rss_bytes\": %lld",
                  seconds, candidate_seconds, sensitivity_seconds, allocation_seconds, tuning_seconds,
                  static_cast<long long>(peak_rss_bytes));
    j += buf;
  }
  j += ", \"layers\": [";
  for (size_t k = 0; k < layers.size(); ++k) {
    const MixedLayerReport& l = layers[k];
    j += k ? ", {\"name\": " : "{\"name\": ";
    append_json_string(&j, l.name);
    std::snprintf(buf, sizeof(buf), ", \"op\": \"%s\", \"macs\": %lld, \"wbits\": %d, \"bytes\": %lld, \"options\": [",
                  op_name(l.type), static_cast<long long>(l.macs), l.chosen_bits, static_cast<long long>(l.bytes));
    j += buf;
    for (size_t o = 0; o < l.options.size(); ++o) {
      const MixedOptionReport& r = l.options[o];
      std::snprintf(buf, sizeof(buf), "%s{\"wbits\": %d, \"bytes\": %lld, \"sensitivity\": %.6g, \"mse_after\": %.6g}",
                    o ? ", " : "", r.bits, static_cast<long long>(r.bytes), r.sensitivity, r.mse_after);
      j += buf;
    }
    j += "]}";
  }
  j += "], \"tuning\": " + tuning.json(timing) + "}";
  return j;
}

namespace {
Status budget_below_smallest(const MixedBudget& budget, int64_t max_bytes, int64_t float32, int64_t smallest) {
  if (budget.fraction >= 0)
    return Status::error(StatusCode::kInvalidArgument,
                         "budget %g%% of the float32 weights (%lld of %lld bytes) is below the smallest model these "
                         "bit options allow: %lld bytes (%.1f%%)",
                         budget.fraction * 100, static_cast<long long>(max_bytes), static_cast<long long>(float32),
                         static_cast<long long>(smallest), 100.0 * double(smallest) / double(float32));
  return Status::error(StatusCode::kInvalidArgument,
                       "budget %lld bytes is below the smallest model these bit options allow: %lld bytes (%.1f%% of "
                       "the float32 weights)",
                       static_cast<long long>(max_bytes), static_cast<long long>(smallest),
                       100.0 * double(smallest) / double(float32));
}
}  // namespace

Status check_mixed_budget(const Graph& float_graph, const CalibrationData& calibration, const MixedOptions& options,
                          const MixedBudget& budget) {
  if (budget.fraction < 0 && budget.bytes < 0) return Status::ok();
  TQ_ENSURE(!options.bits.empty(), kInvalidArgument, "mixed precision needs at least one weight-bit option");
  const int32_t low = *std::min_element(options.bits.begin(), options.bits.end());
  TQ_ENSURE(low >= 2 && low <= 8, kInvalidArgument, "weight-bit option %d is not one of 2..8", low);
  TQ_ENSURE(calibration.samples > 0 && !calibration.values.empty() && calibration.more_inputs.empty(),
            kInvalidArgument, "mixed precision: no calibration samples (or a multi-input model)");
  CalibrationData first;
  first.samples = std::min(calibration.samples, std::max(1, options.aq.rtn.batch));
  const size_t per = calibration.values.size() / size_t(calibration.samples);
  first.values.assign(calibration.values.begin(), calibration.values.begin() + per * size_t(first.samples));
  first.dataset = calibration.dataset;
  RtnOptions o = options.aq.rtn;
  o.weight_bits = low;
  o.layer_weight_bits = fixed_layer_bits(float_graph);  // tables sized as in every candidate
  Graph q;
  TQ_RETURN_IF_ERROR(quantize_graph_rtn(float_graph, first, o, &q, nullptr, nullptr));
  const QuantizedBytes b = quantized_bytes(q);
  const int64_t max_bytes = budget.bytes >= 0 ? budget.bytes
                                              : static_cast<int64_t>(std::floor(budget.fraction * double(b.float32)));
  if (max_bytes < b.total()) return budget_below_smallest(budget, max_bytes, b.float32, b.total());
  return Status::ok();
}

Status quantize_graph_mixed(const MixedCandidates& candidates, const MixedBudget& budget, Graph* quantized,
                            MixedReport* report_out) {
  const uint64_t t0 = port::now_us();
  TQ_ENSURE(candidates.impl, kInvalidArgument, "mixed precision: the candidates were not prepared");
  const MixedCandidates::Impl& m = *candidates.impl;
  const int given = (budget.fraction >= 0) + (budget.bytes >= 0) + (budget.max_drop >= 0) + (budget.uniform_bits > 0);
  TQ_ENSURE(given == 1, kInvalidArgument,
            "a mixed-precision budget is exactly one of a fraction of the float size, a byte count, a maximum "
            "drop or uniform bits (%d given)", given);
  const auto uniform = std::find(m.bits.begin(), m.bits.end(), budget.uniform_bits);
  TQ_ENSURE(budget.uniform_bits <= 0 || uniform != m.bits.end(), kInvalidArgument,
            "uniform %d-bit weights: not one of the candidates' bit options", budget.uniform_bits);
  TQ_ENSURE(budget.fraction < 0 || (budget.fraction > 0 && budget.fraction <= 1), kInvalidArgument,
            "budget %g%% of the float32 size must be in (0, 100]", budget.fraction * 100);
  TQ_ENSURE(budget.bytes != 0, kInvalidArgument, "budget of 0 bytes");
  TQ_ENSURE(budget.max_drop < 0 || budget.max_drop <= 100, kInvalidArgument, "maximum drop %g%% is over 100%%",
            budget.max_drop);

  MixedReport r;
  r.pipeline = mixed_pipeline_name(m.opt.pipeline);
  r.float32_bytes = m.float32_bytes;
  r.candidate_seconds = m.candidate_seconds;
  r.sensitivity_seconds = m.sensitivity_seconds;
  r.base_loss = m.base_loss;
  const AllocationProblem problem = m.problem();
  r.smallest_bytes = smallest_bytes(problem, budget.max_activation_bytes);
  r.largest_bytes = largest_bytes(problem, budget.max_activation_bytes);
  AllocationLimits lim;
  lim.max_bops = budget.max_bops;
  lim.max_activation_bytes = budget.max_activation_bytes;
  const uint64_t ta = port::now_us();
  Allocation alloc;
  if (budget.uniform_bits > 0) {
    const int32_t k = static_cast<int32_t>(uniform - m.bits.begin());
    alloc.choice.assign(problem.layers.size(), k);
    alloc.bytes = problem.fixed_bytes;
    for (size_t j = 0; j < problem.layers.size(); ++j) {
      alloc.cost += problem.layers[j].options[k].cost;
      alloc.bytes += problem.layers[j].options[k].bytes;
      alloc.bops += problem.layers[j].options[k].bops;
    }
    alloc.status = "uniform";
  } else if (budget.max_drop < 0) {
    lim.max_bytes = budget.bytes >= 0 ? budget.bytes
                                      : static_cast<int64_t>(std::floor(budget.fraction * double(m.float32_bytes)));
    r.budget_bytes = lim.max_bytes;
    Status s = allocate_bits(problem, AllocationObjective::kMinCost, lim, &alloc);
    if (!s.is_ok() && lim.max_bytes < r.smallest_bytes)
      return budget_below_smallest(budget, lim.max_bytes, m.float32_bytes, r.smallest_bytes);
    TQ_RETURN_IF_ERROR(s);
  } else {
    // The smallest model whose measured drop is within max_drop: the dual program bisected over
    // the allowed Σ ΔL, each solution measured on the integer model (memoised by choice).
    r.max_drop = budget.max_drop;
    std::map<std::vector<int32_t>, double> measured;
    auto drop_of = [&](const std::vector<int32_t>& choice, double* drop) -> Status {
      auto it = measured.find(choice);
      if (it != measured.end()) return *drop = it->second, Status::ok();
      Graph q;
      RewriteMap map;
      TQ_RETURN_IF_ERROR(m.build(choice, &q, &map));
      double loss = 0.0;
      TQ_RETURN_IF_ERROR(m.measure(q, &loss, drop));
      measured[choice] = *drop;
      ++r.drop_searches;
      return Status::ok();
    };
    double lo = 0.0, hi = 0.0;  // Σ ΔL of the least and most sensitive choices
    for (const AllocationLayer& l : problem.layers) {
      double a = std::numeric_limits<double>::infinity(), b = 0.0;
      for (const AllocationOption& o : l.options) a = std::min(a, o.cost), b = std::max(b, o.cost);
      lo += a;
      hi += b;
    }
    Allocation best;
    bool found = false;
    double drop = 0.0;
    auto attempt = [&](double d, bool* ok) -> Status {
      AllocationLimits l2 = lim;
      l2.max_cost = d;
      Allocation a;
      TQ_RETURN_IF_ERROR(allocate_bits(problem, AllocationObjective::kMinBytes, l2, &a));
      TQ_RETURN_IF_ERROR(drop_of(a.choice, &drop));
      *ok = drop <= budget.max_drop;
      if (*ok && (!found || a.bytes < best.bytes)) best = a, found = true;
      return Status::ok();
    };
    bool ok = false;
    TQ_RETURN_IF_ERROR(attempt(lo, &ok));  // the least sensitive choice
    if (!ok) {
      const double least = drop;
      const std::vector<int32_t> base(problem.layers.size(), m.largest());
      TQ_RETURN_IF_ERROR(drop_of(base, &drop));
      return Status::error(StatusCode::kInvalidArgument,
                           "maximum drop %g%%: even the least sensitive model these bit options allow changes the "
                           "top-1 class of %.2f%% of the calibration samples (all at %d bits: %.2f%%)",
                           budget.max_drop, least, m.bits.back(), drop);
    }
    TQ_RETURN_IF_ERROR(attempt(hi, &ok));  // the smallest model
    if (!ok) {
      double a = std::max(lo, 1e-12), b = hi;
      for (int it = 0; it < 12 && b / a > 1.02; ++it) {  // geometric bisection
        const double mid = std::sqrt(a * b);
        TQ_RETURN_IF_ERROR(attempt(mid, &ok));
        (ok ? a : b) = mid;
      }
    }
    alloc = best;
    r.budget_bytes = -1;
  }
  r.allocation_seconds = (port::now_us() - ta) / 1e6;
  r.allocation = alloc;

  // The mixed model: the chosen candidates, then (advanced) a sequential AdaQuant pass and
  // statistics tuning at the chosen bits.
  const uint64_t tt = port::now_us();
  QuantState start = m.assemble(alloc.choice);
  AdaQuantOptions fo = m.opt.aq;
  fo.rtn = m.rtn_for(alloc.choice);
  fo.adaquant = m.opt.pipeline == MixedPipeline::kAdvanced && m.opt.final_sequential;
  fo.sequential = true;
  fo.stats_tuning = m.opt.stats_tuning;
  Graph q;
  QuantState tuned;
  TQ_RETURN_IF_ERROR(run_adaquant(*m.fg, *m.calib, fo, &start, &tuned, &q, &r.tuning));
  if (m.opt.pipeline == MixedPipeline::kAdvanced && m.opt.bias_epochs > 0) {
    TQ_RETURN_IF_ERROR(m.tune_biases(alloc.choice, &tuned, &r.bias));
    if (r.bias.kept) {  // the graph again, from the tuned biases (no further tuning)
      AdaQuantOptions bo = fo;
      bo.adaquant = false;
      bo.stats_tuning = false;
      AdaQuantReport unused;
      TQ_RETURN_IF_ERROR(run_adaquant(*m.fg, *m.calib, bo, &tuned, nullptr, &q, &unused));
    }
  }
  r.tuning_seconds = (port::now_us() - tt) / 1e6;
  r.model_bytes = quantized_bytes(q).total();
  TQ_ENSURE(r.budget_bytes < 0 || r.model_bytes <= r.budget_bytes, kInternal,
            "mixed precision: the model has %lld bytes, over the budget of %lld", static_cast<long long>(r.model_bytes),
            static_cast<long long>(r.budget_bytes));
  TQ_RETURN_IF_ERROR(m.measure(q, &r.calibration_loss, &r.calibration_drop));
  r.predicted_loss = m.base_loss + alloc.cost;
  r.bops = alloc.bops;
  for (size_t j = 0; j < m.targets.size(); ++j) {
    const Operator& op = m.fg->operators[m.targets[j]];
    MixedLayerReport l;
    l.name = op.name;
    l.type = op.type;
    l.macs = m.macs[j];
    l.activation_bytes = m.act_bytes[j];
    for (size_t k = 0; k < m.bits.size(); ++k) l.options.push_back({m.bits[k], m.bytes[j][k], m.sens[j][k], m.mse_after[j][k]});
    l.chosen_bits = m.bits[alloc.choice[j]];
    l.bytes = m.bytes[j][alloc.choice[j]];
    r.layers.push_back(std::move(l));
  }
  CalibrationRecord& rec = q.calibration;
  rec.pipeline = r.pipeline + (fo.adaquant ? "+sequential" : "") + (fo.stats_tuning ? "+stats" : "") +
                 (r.bias.kept ? "+bias" : "");
  rec.budget_bytes = r.budget_bytes > 0 ? static_cast<uint64_t>(r.budget_bytes) : 0;
  r.pipeline = rec.pipeline;
  r.seconds = (port::now_us() - t0) / 1e6;
  r.peak_rss_bytes = peak_rss_bytes();
  rec.report_json = r.json(/*timing=*/false);
  *quantized = std::move(q);
  if (report_out) *report_out = std::move(r);
  return Status::ok();
}

}  // namespace quant
}  // namespace tinyquant
