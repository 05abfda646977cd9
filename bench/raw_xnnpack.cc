// The floor for tinyquant's runtime overhead: the same int8 network as a plain chain of XNNPACK
// operators, written directly against xnn_* — no Interpreter, no arena planner, no dispatch.
// It walks a quantized .tqm's operators, creates the matching QC8 / QS8 / S8 operator for each on
// buffers of its own (one per tensor; a Reshape aliases its input), sets them up once, and times
// a loop of xnn_run_operator calls exactly as latency.cc times Interpreter::invoke(). Once per
// batch it runs tinyquant's XNNPACK backend on the same input and reports whether the outputs are
// bit-identical, so the comparison is between equal computations.
//   tq_bench_raw_xnnpack MODEL.tqm [--batch 1,64] [--threads 1] [--seconds 2]
// Prints one JSON line per batch (engine "raw-xnnpack", as tq_bench_latency's lines).
#include <pthreadpool.h>
#include <xnnpack.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tinyquant/port.h"
#include "tinyquant/qmath.h"
#include "tinyquant/shape_inference.h"
#include "toolkit/json.h"
#include "toolkit/toolkit.h"

using namespace tinyquant;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

#define RAW_CHECK(call)                                                                 \
  do {                                                                                  \
    const xnn_status st_ = (call);                                                      \
    if (st_ != xnn_status_success) {                                                    \
      std::fprintf(stderr, "raw_xnnpack: op %zu (%s): %s failed (%d)\n", op_index,     \
                   op_name(op.type), #call, static_cast<int>(st_));                     \
      return false;                                                                     \
    }                                                                                   \
  } while (0)

// One network at one batch size: tensor buffers and the operators that run on them.
class RawChain {
 public:
  ~RawChain() {
    for (xnn_operator_t op : ops_) xnn_delete_operator(op);
  }

  bool build(const Graph& g, int32_t batch, pthreadpool_t pool) {
    std::vector<Dims> dims;
    Status s = infer_shapes(g, batch, &dims);
    if (!s.is_ok()) {
      std::fprintf(stderr, "raw_xnnpack: %s\n", s.message());
      return false;
    }
    g_ = &g;
    dims_ = dims;
    data_.assign(g.tensors.size(), nullptr);
    storage_.resize(g.tensors.size());
    for (size_t t = 0; t < g.tensors.size(); ++t)
      if (g.tensors[t].is_constant()) data_[t] = const_cast<uint8_t*>(g.buffers[g.tensors[t].buffer].data());
    for (int32_t t : g.inputs) alloc(t);

    for (size_t op_index = 0; op_index < g.operators.size(); ++op_index) {
      const Operator& op = g.operators[op_index];
      const int32_t xi = op.inputs[0], yi = op.outputs[0];
      if (op.type == OpType::kReshape) {  // same bytes, new shape: alias
        data_[yi] = data_[xi];
        continue;
      }
      alloc(yi);
      const Tensor& x = g.tensors[xi];
      const Tensor& y = g.tensors[yi];
      const Dims& xd = dims[xi];
      const Dims& yd = dims[yi];
      xnn_operator_t o = nullptr;
      int32_t lo = -128, hi = 127;
      if (y.dtype == DType::kInt8)
        qmath::activation_bounds(op.activation, y.quant.bits, y.quant.scale[0], zp(y), &lo, &hi);
      switch (op.type) {
        case OpType::kQuantize: {
          const size_t c = xd[xd.rank - 1];
          RAW_CHECK(xnn_create_convert_nc_f32_qs8(c, c, c, y.quant.scale[0], int8_t(zp(y)),
                                                  int8_t(qmath::qmin(y.quant.bits)), int8_t(qmath::qmax(y.quant.bits)),
                                                  0, &o));
          ops_.push_back(o);
          RAW_CHECK(xnn_setup_convert_nc_f32_qs8(o, xd.elements() / c, f32(xi), s8(yi), pool));
          break;
        }
        case OpType::kDequantize: {
          const size_t c = xd[xd.rank - 1];
          RAW_CHECK(xnn_create_convert_nc_qs8_f32(c, c, c, x.quant.scale[0], int8_t(zp(x)), 0, &o));
          ops_.push_back(o);
          RAW_CHECK(xnn_setup_convert_nc_qs8_f32(o, xd.elements() / c, s8(xi), f32(yi), pool));
          break;
        }
        case OpType::kConv2D:
        case OpType::kDepthwiseConv2D:
        case OpType::kFullyConnected: {
          const Tensor& w = g.tensors[op.inputs[1]];
          const int32_t bi = op.inputs.size() > 2 ? op.inputs[2] : -1;
          const int64_t wn = shape_elements(w.shape);
          std::vector<int8_t> kernel(static_cast<size_t>(wn));
          const uint8_t* packed = g.constant_data<uint8_t>(op.inputs[1]);  // bit-packed below 8 bits
          for (int64_t i = 0; i < wn; ++i) kernel[i] = int8_t(qmath::unpack_weight(packed, i, w.quant.bits));
          const int32_t* bias = bi >= 0 ? g.constant_data<int32_t>(bi) : nullptr;
          const ConvOptions& c = op.conv();
          if (op.type == OpType::kFullyConnected) {
            const size_t out_c = w.shape[0], in_c = w.shape[1];
            RAW_CHECK(xnn_create_convolution2d_nhwc_qc8(0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, in_c, out_c, in_c, out_c,
                                                        int8_t(zp(x)), x.quant.scale[0], w.quant.scale.data(),
                                                        kernel.data(), bias, int8_t(zp(y)), y.quant.scale[0],
                                                        int8_t(lo), int8_t(hi), 0, &o));
            ops_.push_back(o);
            RAW_CHECK(xnn_setup_convolution2d_nhwc_qc8(o, xd.elements() / in_c, 1, 1, s8(xi), s8(yi), pool));
          } else {
            const bool dw = op.type == OpType::kDepthwiseConv2D;
            const size_t in_c = xd[3], out_c = yd[3];
            const size_t groups = dw ? in_c : c.groups;
            RAW_CHECK(xnn_create_convolution2d_nhwc_qc8(
                c.padding.top, c.padding.right, c.padding.bottom, c.padding.left, w.shape[1], w.shape[2], c.stride_h,
                c.stride_w, c.dilation_h, c.dilation_w, groups, in_c / groups, out_c / groups, in_c, out_c,
                int8_t(zp(x)), x.quant.scale[0], w.quant.scale.data(), kernel.data(), bias, int8_t(zp(y)),
                y.quant.scale[0], int8_t(lo), int8_t(hi), dw ? XNN_FLAG_DEPTHWISE_CONVOLUTION : 0, &o));
            ops_.push_back(o);
            RAW_CHECK(xnn_setup_convolution2d_nhwc_qc8(o, xd[0], xd[1], xd[2], s8(xi), s8(yi), pool));
          }
          break;
        }
        case OpType::kAdd:
        case OpType::kMul: {
          const int32_t bi = op.inputs[1];
          const Tensor& b = g.tensors[bi];
          size_t as[XNN_MAX_TENSOR_DIMS], bs[XNN_MAX_TENSOR_DIMS];
          for (int d = 0; d < xd.rank; ++d) as[d] = xd[d];
          for (int d = 0; d < dims[bi].rank; ++d) bs[d] = dims[bi][d];
          if (op.type == OpType::kAdd) {
            RAW_CHECK(xnn_create_add_nd_qs8(int8_t(zp(x)), x.quant.scale[0], int8_t(zp(b)), b.quant.scale[0],
                                            int8_t(zp(y)), y.quant.scale[0], int8_t(lo), int8_t(hi), 0, &o));
            ops_.push_back(o);
            RAW_CHECK(xnn_setup_add_nd_qs8(o, xd.rank, as, dims[bi].rank, bs, s8(xi), s8(bi), s8(yi), pool));
          } else {
            RAW_CHECK(xnn_create_multiply_nd_qs8(int8_t(zp(x)), x.quant.scale[0], int8_t(zp(b)), b.quant.scale[0],
                                                 int8_t(zp(y)), y.quant.scale[0], int8_t(lo), int8_t(hi), 0, &o));
            ops_.push_back(o);
            RAW_CHECK(xnn_setup_multiply_nd_qs8(o, xd.rank, as, dims[bi].rank, bs, s8(xi), s8(bi), s8(yi), pool));
          }
          break;
        }
        case OpType::kClamp: {
          const size_t c = xd[xd.rank - 1];
          RAW_CHECK(xnn_create_clamp_nc_s8(c, c, c, int8_t(lo), int8_t(hi), 0, &o));
          ops_.push_back(o);
          RAW_CHECK(xnn_setup_clamp_nc_s8(o, xd.elements() / c, s8(xi), s8(yi), pool));
          break;
        }
        case OpType::kMaxPool2D: {
          const PoolOptions& p = op.pool();
          const size_t c = xd[3];
          RAW_CHECK(xnn_create_max_pooling2d_nhwc_s8(p.padding.top, p.padding.right, p.padding.bottom, p.padding.left,
                                                     p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.dilation_h,
                                                     p.dilation_w, c, c, c, int8_t(lo), int8_t(hi), 0, &o));
          ops_.push_back(o);
          RAW_CHECK(xnn_setup_max_pooling2d_nhwc_s8(o, xd[0], xd[1], xd[2], s8(xi), s8(yi), pool));
          break;
        }
        case OpType::kGlobalAveragePool: {
          const size_t c = xd[3];
          RAW_CHECK(xnn_create_global_average_pooling_nwc_qs8(c, c, c, int8_t(zp(x)), x.quant.scale[0], int8_t(zp(y)),
                                                              y.quant.scale[0], int8_t(lo), int8_t(hi), 0, &o));
          ops_.push_back(o);
          RAW_CHECK(xnn_setup_global_average_pooling_nwc_qs8(o, xd[0], size_t(xd[1]) * xd[2], s8(xi), s8(yi), pool));
          break;
        }
        default:
          std::fprintf(stderr, "raw_xnnpack: op %zu (%s '%s'): no int8 XNNPACK operator in this chain\n", op_index,
                       op_name(op.type), op.name.c_str());
          return false;
      }
    }
    return true;
  }

  bool run(pthreadpool_t pool) {
    for (xnn_operator_t op : ops_)
      if (xnn_run_operator(op, pool) != xnn_status_success) return false;
    return true;
  }

  float* input() { return f32(g_->inputs[0]); }
  const uint8_t* output() const { return data_[g_->outputs[0]]; }
  size_t output_bytes() const {
    return size_t(dims_[g_->outputs[0]].elements()) * dtype_size(g_->tensors[g_->outputs[0]].dtype);
  }
  size_t num_operators() const { return ops_.size(); }

 private:
  static int32_t zp(const Tensor& t) { return t.quant.zero_point.empty() ? 0 : t.quant.zero_point[0]; }
  void alloc(int32_t t) {
    // XNNPACK may read up to XNN_EXTRA_BYTES past the end of an input.
    storage_[t].assign(size_t(dims_[t].elements()) * dtype_size(g_->tensors[t].dtype) + XNN_EXTRA_BYTES, 0);
    data_[t] = storage_[t].data();
  }
  float* f32(int32_t t) { return reinterpret_cast<float*>(data_[t]); }
  int8_t* s8(int32_t t) { return reinterpret_cast<int8_t*>(data_[t]); }

  const Graph* g_ = nullptr;
  std::vector<Dims> dims_;
  std::vector<uint8_t*> data_;
  std::vector<std::vector<uint8_t>> storage_;
  std::vector<xnn_operator_t> ops_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.tqm [--batch 1,64] [--threads N] [--seconds S]\n", argv[0]);
    return 2;
  }
  std::string model = argv[1], batches = "1,64";
  int threads = 1;
  double seconds = 2.0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--batch") batches = v;
    else if (k == "--threads") threads = std::atoi(v.c_str());
    else if (k == "--seconds") seconds = std::atof(v.c_str());
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  Graph graph;
  Status s = load_any_model(model, &graph);
  if (!s.is_ok()) {
    std::fprintf(stderr, "error: %s\n", s.message());
    return 1;
  }
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1) {
    std::fprintf(stderr, "error: raw_xnnpack takes one input and one output\n");
    return 1;
  }
  if (xnn_initialize(nullptr) != xnn_status_success) {
    std::fprintf(stderr, "error: xnn_initialize failed\n");
    return 1;
  }
  pthreadpool_t pool = threads > 1 ? pthreadpool_create(threads) : nullptr;
  std::mt19937 rng(0);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  int rc = 0;
  for (const std::string& bs : split(batches)) {
    const int32_t batch = std::atoi(bs.c_str());
    RawChain chain;
    if (!chain.build(graph, batch, pool)) {
      rc = 1;
      break;
    }
    // tinyquant on XNNPACK, same input: outputs must agree bit for bit.
    Interpreter interp;
    PrepareOptions opt;
    opt.batch = batch;
    opt.backend = Backend::kXnnpack;
    opt.threads = 1;
    s = interp.prepare(graph, opt);
    if (!s.is_ok()) {
      std::fprintf(stderr, "error: %s\n", s.message());
      rc = 1;
      break;
    }
    float* in = interp.input(0).as<float>();
    for (int64_t i = 0; i < interp.input(0).elements(); ++i) in[i] = dist(rng);
    std::memcpy(chain.input(), in, size_t(interp.input(0).elements()) * sizeof(float));
    s = interp.invoke();
    if (!s.is_ok() || !chain.run(pool)) {
      std::fprintf(stderr, "error: invoke failed\n");
      rc = 1;
      break;
    }
    const bool bit_exact = chain.output_bytes() == size_t(interp.output(0).elements()) * sizeof(float) &&
                           std::memcmp(chain.output(), interp.output(0).data, chain.output_bytes()) == 0;

    for (int i = 0; i < 2; ++i) chain.run(pool);
    std::vector<double> ms;
    bool ok = true;
    const uint64_t start = port::now_us();
    while (ms.size() < 5 || (port::now_us() - start) < seconds * 1e6) {
      const uint64_t t0 = port::now_us();
      ok = chain.run(pool);
      ms.push_back((port::now_us() - t0) / 1000.0);
      if (!ok || ms.size() >= 100000) break;
    }
    if (!ok) {
      std::fprintf(stderr, "error: xnn_run_operator failed\n");
      rc = 1;
      break;
    }
    std::sort(ms.begin(), ms.end());
    const Json row = {{"model", model},
                      {"engine", "raw-xnnpack"},
                      {"batch", batch},
                      {"threads", threads},
                      {"median_ms", json_round(ms[ms.size() / 2], 4)},
                      {"p10_ms", json_round(ms[ms.size() / 10], 4)},
                      {"p90_ms", json_round(ms[ms.size() * 9 / 10], 4)},
                      {"runs", ms.size()},
                      {"xnn_operators", chain.num_operators()},
                      {"bit_exact_vs_tinyquant_xnnpack", bit_exact}};
    std::printf("%s\n", json_line(row).c_str());
    std::fflush(stdout);
  }
  if (pool != nullptr) pthreadpool_destroy(pool);
  return rc;
}
