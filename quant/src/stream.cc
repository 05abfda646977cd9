// The calibration set streamed through a network op range by op range (contract in stream.h).
#include "stream.h"

#include <algorithm>
#include <cstring>
#include <limits>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#define TQ_HAVE_MMAP 1
#endif

#include "tinyquant/interpreter.h"
#include "tinyquant/port.h"
#include "tinyquant/shape_inference.h"

namespace tinyquant {
namespace quant {

namespace {
constexpr size_t kPageAllocMin = size_t(1) << 20;  // smaller buffers: operator new
}  // namespace

void* page_alloc(size_t bytes) {
#if TQ_HAVE_MMAP
  if (bytes >= kPageAllocMin) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return p;
  }
#endif
  return ::operator new(bytes);
}

void page_free(void* p, size_t bytes) {
  if (!p) return;
#if TQ_HAVE_MMAP
  if (bytes >= kPageAllocMin) {
    munmap(p, bytes);
    return;
  }
#endif
  ::operator delete(p);
}

Status Frontier::init(const Graph& key_graph, const CalibrationData& calibration, int64_t per_sample,
                      const RtnOptions& options) {
  TQ_ENSURE(key_graph.inputs.size() == 1, kUnsupported, "calibration streams a single-input graph (this one has %zu)",
            key_graph.inputs.size());
  key_ = &key_graph;
  calib_ = &calibration;
  cached_graph_ = nullptr;
  opt_ = options;
  const size_t nt = key_graph.tensors.size();
  producer_.assign(nt, std::numeric_limits<int32_t>::max());
  last_use_.assign(nt, -1);
  for (int32_t t : key_graph.inputs) producer_[t] = -1;
  for (size_t i = 0; i < key_graph.operators.size(); ++i) {
    const Operator& op = key_graph.operators[i];
    for (int32_t t : op.outputs) producer_[t] = static_cast<int32_t>(i);
    for (int32_t t : op.inputs)
      if (t >= 0 && !key_graph.tensors[t].is_constant()) last_use_[t] = static_cast<int32_t>(i);
  }
  std::vector<Dims> dims;
  TQ_RETURN_IF_ERROR(infer_shapes(key_graph, 1, &dims));
  per_sample_.assign(nt, 0);
  for (size_t t = 0; t < nt; ++t) per_sample_[t] = dims[t].elements();
  const int32_t in = key_graph.inputs[0];
  TQ_ENSURE(per_sample_[in] == per_sample, kInternal, "stream: input has %lld values per sample, calibration %lld",
            static_cast<long long>(per_sample_[in]), static_cast<long long>(per_sample));
  live_.clear();
  live_[in].values = std::make_shared<const FloatBuffer>(calibration.values.begin(), calibration.values.end());
  boundary_ = 0;
  return Status::ok();
}

int64_t Frontier::Stored::bytes() const {
  return values ? static_cast<int64_t>(values->size() * sizeof(float)) : static_cast<int64_t>(codes->size());
}

// As the Dequantize kernel: float(q − z) · s.
void Frontier::Stored::expand(int64_t first, int64_t count, float* out) const {
  const int8_t* q = codes->data() + first;
  const int32_t z = zero_point;
  const float s = scale;
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<float>(int32_t(q[i]) - z) * s;
}

SampleValues Frontier::Stored::as_float() const {
  if (values) return values;
  FloatBuffer v(codes->size());
  expand(0, static_cast<int64_t>(v.size()), v.data());
  return std::make_shared<const FloatBuffer>(std::move(v));
}

int64_t Frontier::bytes() const {
  int64_t b = 0;
  for (const auto& kv : live_) b += kv.second.bytes();
  return b;
}

namespace {

struct Slot {
  int32_t key;
  int32_t tensor;  // graph tensor read after its producer ran (codes: an int8 tensor, the key's own or
                   // the Quantize output its Dequantize reads)
  bool codes;
  int64_t per;     // elements per sample
  FloatBuffer values;
  CodeBuffer q;
};

struct Collect {
  std::vector<std::vector<int32_t>> at_op;  // graph op -> slots
  std::vector<Slot>* slots;
  int32_t first = 0;
};

bool collect_at_op(void* user, int32_t op, const Interpreter& interp) {
  Collect& c = *static_cast<Collect*>(user);
  if (op < 0 || op >= static_cast<int32_t>(c.at_op.size())) return true;
  for (int32_t k : c.at_op[op]) {
    Slot& s = (*c.slots)[k];
    const TensorView v = interp.tensor(s.tensor);
    const int64_t at = int64_t(c.first) * s.per;
    if (s.codes) std::memcpy(s.q.data() + at, v.as<const int8_t>(), static_cast<size_t>(v.elements()));
    else std::memcpy(s.values.data() + at, v.as<const float>(), sizeof(float) * v.elements());
  }
  return true;
}

}  // namespace

// One key op at a time over all samples, so that what is held at any moment is the frontier
// plus one op's outputs (not every tensor a multi-op range produces), and a tensor is released
// once its last reader in the range has run.
Status Frontier::run(const FrontierView& view, int32_t end, const std::vector<int32_t>& want, bool advance,
                     std::vector<SampleValues>* got) {
  const uint64_t t0 = port::now_us();
  const Graph& g = *view.graph;
  const int32_t key_ops = static_cast<int32_t>(key_->operators.size());
  TQ_ENSURE(end >= boundary_ && end <= key_ops, kInternal, "stream: boundary %d cannot move to %d", boundary_, end);
  auto gt = [&](int32_t key) { return view.tensor.empty() ? key : view.tensor[key]; };
  auto gop = [&](int32_t b) { return view.op_begin.empty() ? b : view.op_begin[b]; };
  std::vector<int32_t> graph_producer(g.tensors.size(), -1);
  for (size_t i = 0; i < g.operators.size(); ++i)
    for (int32_t t : g.operators[i].outputs) graph_producer[t] = static_cast<int32_t>(i);
  std::vector<bool> wanted(producer_.size(), false);
  for (int32_t t : want) {
    TQ_ENSURE(t >= 0 && t < static_cast<int32_t>(producer_.size()), kInternal, "stream: no tensor %d", t);
    wanted[t] = true;
  }
  for (int32_t t : want)
    TQ_ENSURE(live_.count(t) || (producer_[t] >= boundary_ && producer_[t] < end), kInternal,
              "stream: tensor '%s' is neither live at op %d nor produced before op %d", key_->tensors[t].name.c_str(),
              boundary_, end);

  std::map<int32_t, Stored> cur = live_, kept;  // the working frontier; wanted values that died
  // Interpreters for full batches and the last short one; kept across runs while the view says
  // its graph is unchanged (no re-preparing and re-packing of the whole graph for every layer).
  if (!view.unchanged || cached_graph_ != &g) {
    for (int w = 0; w < 2; ++w) {
      interps_[w].reset(new Interpreter);
      prepared_[w] = 0;
    }
    cached_graph_ = &g;
  }
  std::unique_ptr<Interpreter>* interps = interps_;
  int32_t* prepared = prepared_;
  PrepareOptions prep;
  prep.backend = opt_.backend;
  prep.threads = opt_.threads;
  for (int32_t j = boundary_; j < end; ++j) {
    const int32_t g0 = gop(j), g1 = gop(j + 1);
    // Graph tensor -> key in cur; a key held as codes also provides the int8 tensor its
    // Dequantize reads (which later ops of the view may read directly).
    std::map<int32_t, int32_t> by_graph;
    std::map<int32_t, int32_t> by_codes;
    for (const auto& kv : cur) {
      by_graph[gt(kv.first)] = kv.first;
      const int32_t p = graph_producer[gt(kv.first)];
      if (kv.second.codes && p >= 0 && g.operators[p].type == OpType::kDequantize)
        by_codes[g.operators[p].inputs[0]] = kv.first;
    }
    // The key op's outputs that are needed later; an output the view computes as an alias of a
    // held tensor (a quantizer left out) shares its values.
    std::vector<Slot> slots;
    Collect c;
    c.at_op.resize(g.operators.size());
    for (int32_t t : key_->operators[j].outputs) {
      if (t < 0 || !(wanted[t] || last_use_[t] > j)) continue;
      const int32_t gtt = gt(t);
      const int32_t p = graph_producer[gtt];
      if (p < g0 || p >= g1) {
        auto alias = by_graph.find(gtt);
        TQ_ENSURE(alias != by_graph.end(), kInternal, "stream: tensor '%s' is produced outside the ops run",
                  key_->tensors[t].name.c_str());
        cur[t] = cur[alias->second];
        continue;
      }
      Slot sl;
      sl.key = t;
      sl.per = per_sample_[t];
      sl.tensor = gtt;
      const Operator& pop = g.operators[p];
      const Tensor& gtensor = g.tensors[gtt];
      const int32_t src = pop.type == OpType::kDequantize ? pop.inputs[0] : -1;
      if (gtensor.dtype == DType::kInt8) {  // an integer graph run as itself: its own codes
        TQ_ENSURE(gtensor.quant.scale.size() == 1, kUnsupported,
                  "stream: int8 tensor '%s' needs one scale (per-tensor) to be held", gtensor.name.c_str());
        sl.codes = true;
        sl.q.resize(static_cast<size_t>(sl.per * calib_->samples));
        c.at_op[p].push_back(static_cast<int32_t>(slots.size()));
        slots.push_back(std::move(sl));
        continue;
      }
      TQ_ENSURE(gtensor.dtype == DType::kFloat32, kUnsupported, "stream: tensor '%s' is %s; only float32 and int8 are held",
                gtensor.name.c_str(), dtype_name(gtensor.dtype));
      sl.codes = src >= 0 && g.tensors[src].dtype == DType::kInt8 && g.tensors[src].quant.scale.size() == 1 &&
                 graph_producer[src] >= g0 && graph_producer[src] < p;
      if (sl.codes) {
        sl.tensor = src;
        sl.q.resize(static_cast<size_t>(sl.per * calib_->samples));
        c.at_op[graph_producer[src]].push_back(static_cast<int32_t>(slots.size()));
      } else {
        sl.values.resize(static_cast<size_t>(sl.per * calib_->samples));
        c.at_op[p].push_back(static_cast<int32_t>(slots.size()));
      }
      slots.push_back(std::move(sl));
    }
    c.slots = &slots;
    // The graph tensors the ops read from before the range: frontier members.
    std::vector<std::pair<int32_t, int32_t>> inputs;  // (graph tensor, key)
    for (int32_t o = g0; o < g1; ++o)
      for (int32_t t : g.operators[o].inputs) {
        if (t < 0 || g.tensors[t].is_constant() || (graph_producer[t] >= g0 && graph_producer[t] < g1)) continue;
        auto k = by_graph.find(t);
        const bool held = k != by_graph.end();
        auto kc = by_codes.find(t);
        TQ_ENSURE(held || kc != by_codes.end(), kInternal,
                  "stream: '%s' reads '%s', which the frontier at op %d does not hold", g.operators[o].name.c_str(),
                  g.tensors[t].name.c_str(), j);
        inputs.push_back({t, held ? k->second : kc->second});
      }
    std::sort(inputs.begin(), inputs.end());
    inputs.erase(std::unique(inputs.begin(), inputs.end()), inputs.end());
    if (g0 < g1 && !slots.empty()) {
      for (int32_t first = 0; first < calib_->samples;) {
        const int32_t n = std::min(opt_.batch, calib_->samples - first);
        const int w = n == opt_.batch ? 0 : 1;
        Interpreter& interp = *interps[w];
        if (prepared[w] != n) {
          prep.batch = n;
          TQ_RETURN_IF_ERROR(interp.prepare(g, prep));
          interp.set_op_callback(collect_at_op, &c);
          prepared[w] = n;
        }
        for (const auto& in : inputs) {  // the frontier's rows for this batch
          const TensorView v = interp.tensor(in.first);
          const int32_t key = in.second;
          const Stored& st = cur[key];
          const bool codes = v.dtype == DType::kInt8;
          const int64_t count = v.elements();
          TQ_ENSURE(count == int64_t(n) * per_sample_[key] && (v.dtype == DType::kFloat32 || (codes && st.codes)),
                    kInternal, "stream: tensor '%s' does not match its frontier values", key_->tensors[key].name.c_str());
          const int64_t at = int64_t(first) * per_sample_[key];
          if (codes) {
            std::memcpy(v.as<int8_t>(), st.codes->data() + at, static_cast<size_t>(count));
          } else if (st.values) {
            std::memcpy(v.as<float>(), st.values->data() + at, sizeof(float) * count);
          } else {
            st.expand(at, count, v.as<float>());
          }
        }
        interp.set_op_callback(collect_at_op, &c);  // c is this op's (the interpreter outlives it)
        c.first = first;
        Status s = interp.invoke_range(g0, g1);
        if (!s.is_ok()) return s.with_context("calibration samples %d..%d", first, first + n - 1);
        first += n;
      }
    }
    for (Slot& sl : slots) {
      Stored st;
      if (sl.codes) {
        const Quantization& qz = g.tensors[sl.tensor].quant;
        st.codes = std::make_shared<const CodeBuffer>(std::move(sl.q));
        st.scale = qz.scale[0];
        st.zero_point = qz.zero_point.empty() ? 0 : qz.zero_point[0];
      } else {
        st.values = std::make_shared<const FloatBuffer>(std::move(sl.values));
      }
      cur[sl.key] = std::move(st);
    }
    // Release what no later op reads (keeping what the caller wants).
    for (auto it = cur.begin(); it != cur.end();) {
      if (last_use_[it->first] <= j) {
        if (wanted[it->first]) kept[it->first] = it->second;
        it = cur.erase(it);
      } else {
        ++it;
      }
    }
  }
  got->clear();
  for (int32_t t : want) {
    auto it = cur.find(t);
    got->push_back(it != cur.end() ? it->second.as_float() : kept.at(t).as_float());
  }
  if (advance) {
    live_ = std::move(cur);
    boundary_ = end;
  }
  seconds_ += (port::now_us() - t0) / 1e6;
  return Status::ok();
}

}  // namespace quant
}  // namespace tinyquant
