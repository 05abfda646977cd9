// Whole-graph backward pass for bias tuning (contract in backprop.h).
#include "backprop.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tinyquant/layer_kernels.h"
#include "tinyquant/op_info.h"

namespace tinyquant {
namespace quant {
namespace {

bool has_backward(OpType t) {
  switch (t) {
    case OpType::kConv2D:
    case OpType::kDepthwiseConv2D:
    case OpType::kFullyConnected:
    case OpType::kAdd:
    case OpType::kMul:
    case OpType::kMaxPool2D:
    case OpType::kAveragePool2D:
    case OpType::kGlobalAveragePool:
    case OpType::kReshape:
    case OpType::kTranspose:
    case OpType::kConcat:
    case OpType::kClamp:
    case OpType::kSoftmax:
    case OpType::kQuantize:
    case OpType::kDequantize:
      return true;
    default:
      return false;
  }
}

// dz = dy where the fused clamp passed its input (lo < y < hi), in place.
void mask_activation(const FusedActivation& a, const std::vector<float>& y, std::vector<float>* dz) {
  if (a.type == Activation::kNone) return;
  for (size_t i = 0; i < dz->size(); ++i)
    if (!(y[i] > a.min && y[i] < a.max)) (*dz)[i] = 0.0f;
}

struct Collect {
  const Graph* g;
  std::vector<std::vector<float>>* value;
};

bool capture(void* user, int32_t op, const Interpreter& interp) {
  Collect& c = *static_cast<Collect*>(user);
  if (op < 0) return true;
  for (int32_t t : c.g->operators[op].outputs) {
    const TensorView v = interp.tensor(t);
    std::vector<float>& out = (*c.value)[t];
    out.resize(static_cast<size_t>(v.elements()));
    if (v.dtype == DType::kInt8) {
      const int8_t* q = v.as<const int8_t>();
      for (size_t i = 0; i < out.size(); ++i) out[i] = q[i];
    } else {
      std::memcpy(out.data(), v.as<const float>(), out.size() * sizeof(float));
    }
  }
  return true;
}

}  // namespace

Status Backprop::prepare(const Graph& g, int32_t batch) {
  for (const Operator& op : g.operators)
    TQ_ENSURE(has_backward(op.type), kUnsupported, "bias tuning: no backward pass for %s '%s'", op_name(op.type),
              op.name.c_str());
  TQ_ENSURE(g.inputs.size() == 1 && g.outputs.size() == 1, kUnsupported,
            "bias tuning: single-input, single-output graphs only");
  g_ = &g;
  batch_ = batch;
  TQ_RETURN_IF_ERROR(infer_shapes(g, batch, &dims_));
  value_.assign(g.tensors.size(), {});
  grad_.assign(g.tensors.size(), {});
  PrepareOptions prep;
  prep.batch = batch;
  prep.backend = Backend::kReference;
  return interp_.prepare(g, prep);
}

Status Backprop::forward(const float* input) {
  const int32_t in = g_->inputs[0];
  const int64_t n = dims_[in].elements();
  std::memcpy(interp_.input(0).as<float>(), input, sizeof(float) * n);
  value_[in].assign(input, input + n);
  Collect c{g_, &value_};
  interp_.set_op_callback(capture, &c);
  Status s = interp_.invoke();
  interp_.set_op_callback(nullptr, nullptr);
  return s;
}

Status Backprop::backward(const float* d_output) {
  for (size_t t = 0; t < grad_.size(); ++t) grad_[t].assign(value_[t].size(), 0.0f);
  for (const Operator& op : g_->operators) {  // constants: gradient slots for the weighted ops' biases only
    const int32_t b = op_info(op.type).weighted && op.inputs.size() > 2 ? op.inputs[2] : -1;
    if (b >= 0 && g_->tensors[b].is_constant() && g_->tensors[b].dtype == DType::kFloat32)
      grad_[b].assign(static_cast<size_t>(shape_elements(g_->tensors[b].shape)), 0.0f);
  }
  const int32_t out = g_->outputs[0];
  std::memcpy(grad_[out].data(), d_output, sizeof(float) * grad_[out].size());
  for (size_t i = g_->operators.size(); i-- > 0;) TQ_RETURN_IF_ERROR(backward_op(g_->operators[i]));
  return Status::ok();
}

Status Backprop::backward_op(const Operator& op) {
  const Graph& g = *g_;
  const int32_t y = op.outputs[0];
  std::vector<float> dz = grad_[y];
  const Dims& yd = dims_[y];
  auto active = [&](int32_t t) { return t >= 0 && !g.tensors[t].is_constant(); };
  switch (op.type) {
    case OpType::kConv2D:
    case OpType::kDepthwiseConv2D:
    case OpType::kFullyConnected: {
      mask_activation(op.activation, value_[y], &dz);
      const int32_t x = op.inputs[0], w = op.inputs[1];
      const int32_t b = op.inputs.size() > 2 ? op.inputs[2] : -1;
      TQ_ENSURE(g.tensors[w].is_constant() && g.tensors[w].dtype == DType::kFloat32, kUnsupported,
                "bias tuning: %s '%s' needs constant float weights", op_name(op.type), op.name.c_str());
      const Dims& xd = dims_[x];
      const Dims& wd = dims_[w];
      LayerShape s;
      TQ_RETURN_IF_ERROR(LayerShape::of(op, xd.d, xd.rank, wd.d, batch_, &s));
      std::vector<float> dx(value_[x].size()), db(static_cast<size_t>(s.out_c));
      layer_backward(s, value_[x].data(), g.constant_data<float>(w), dz.data(), active(x) ? dx.data() : nullptr,
                     nullptr, db.data(), &scratch_);
      if (active(x))
        for (size_t i = 0; i < dx.size(); ++i) grad_[x][i] += dx[i];
      if (b >= 0 && g.tensors[b].is_constant())
        for (size_t c = 0; c < db.size(); ++c) grad_[b][c] += db[c];
      return Status::ok();
    }
    case OpType::kAdd:
    case OpType::kMul: {
      mask_activation(op.activation, value_[y], &dz);
      for (int k = 0; k < 2; ++k) {
        const int32_t a = op.inputs[k], o = op.inputs[1 - k];
        // (Pointers, not a conditional of vectors: that copied the other operand on every backward.)
        const bool other_constant = g.tensors[o].is_constant();
        const float* ov = other_constant ? g.constant_data<float>(o) : value_[o].data();
        const int64_t on = other_constant ? shape_elements(g.tensors[o].shape) : int64_t(value_[o].size());
        std::vector<float>& ga = grad_[a];
        const int64_t an = static_cast<int64_t>(ga.size());
        if (ga.empty()) continue;  // a constant operand: no gradient wanted
        TQ_ENSURE(an > 0 && int64_t(dz.size()) % an == 0 && int64_t(dz.size()) % std::max<int64_t>(on, 1) == 0,
                  kUnsupported, "bias tuning: %s '%s' broadcasts in a way the backward pass does not take",
                  op_name(op.type), op.name.c_str());
        // An operand with fewer values repeats over the leading dims (NHWC trailing broadcast).
        for (size_t i = 0; i < dz.size(); ++i) {
          const float d = op.type == OpType::kAdd ? dz[i] : dz[i] * ov[i % on];
          ga[i % an] += d;
        }
      }
      return Status::ok();
    }
    case OpType::kMaxPool2D:
    case OpType::kAveragePool2D: {
      mask_activation(op.activation, value_[y], &dz);
      const int32_t x = op.inputs[0];
      const Dims& xd = dims_[x];
      const PoolOptions& p = op.pool();
      const int32_t N = xd.d[0], H = xd.d[1], W = xd.d[2], C = xd.d[3], OH = yd.d[1], OW = yd.d[2];
      const std::vector<float>& xv = value_[x];
      std::vector<float>& gx = grad_[x];
      const bool maxpool = op.type == OpType::kMaxPool2D;
      for (int32_t n = 0; n < N; ++n)
        for (int32_t oy = 0; oy < OH; ++oy)
          for (int32_t ox = 0; ox < OW; ++ox)
            for (int32_t c = 0; c < C; ++c) {
              const float d = dz[((int64_t(n) * OH + oy) * OW + ox) * C + c];
              if (d == 0.0f) continue;
              int64_t best = -1;
              float bv = -std::numeric_limits<float>::infinity();
              int32_t count = 0;
              const int32_t dh = maxpool ? p.dilation_h : 1, dw = maxpool ? p.dilation_w : 1;
              for (int32_t ky = 0; ky < p.kernel_h; ++ky)
                for (int32_t kx = 0; kx < p.kernel_w; ++kx) {
                  const int32_t iy = oy * p.stride_h - p.padding.top + ky * dh;
                  const int32_t ix = ox * p.stride_w - p.padding.left + kx * dw;
                  if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                  const int64_t at = ((int64_t(n) * H + iy) * W + ix) * C + c;
                  ++count;
                  if (maxpool && xv[at] > bv) bv = xv[at], best = at;
                }
              if (maxpool) {
                if (best >= 0) gx[best] += d;
                continue;
              }
              const int32_t divisor = p.count_include_pad ? p.kernel_h * p.kernel_w : count;
              if (divisor <= 0) continue;
              for (int32_t ky = 0; ky < p.kernel_h; ++ky)
                for (int32_t kx = 0; kx < p.kernel_w; ++kx) {
                  const int32_t iy = oy * p.stride_h - p.padding.top + ky;
                  const int32_t ix = ox * p.stride_w - p.padding.left + kx;
                  if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                  gx[((int64_t(n) * H + iy) * W + ix) * C + c] += d / float(divisor);
                }
            }
      return Status::ok();
    }
    case OpType::kGlobalAveragePool: {
      mask_activation(op.activation, value_[y], &dz);
      const int32_t x = op.inputs[0];
      const Dims& xd = dims_[x];
      const int32_t N = xd.d[0], C = xd.d[xd.rank - 1];
      const int64_t hw = xd.elements() / (int64_t(N) * C);
      for (int32_t n = 0; n < N; ++n)
        for (int64_t p = 0; p < hw; ++p)
          for (int32_t c = 0; c < C; ++c) grad_[x][(n * hw + p) * C + c] += dz[int64_t(n) * C + c] / float(hw);
      return Status::ok();
    }
    case OpType::kReshape:
    case OpType::kDequantize: {  // y = x, or y = s · (code − z): d/d(code) = s · dy
      const int32_t x = op.inputs[0];
      if (!active(x)) return Status::ok();
      const float s = op.type == OpType::kDequantize ? g.tensors[x].quant.scale[0] : 1.0f;
      for (size_t i = 0; i < dz.size(); ++i) grad_[x][i] += dz[i] * s;
      return Status::ok();
    }
    case OpType::kQuantize: {
      const int32_t x = op.inputs[0];
      if (!active(x)) return Status::ok();
      const Quantization& q = g.tensors[y].quant;
      const float s = q.scale[0];
      const float z = q.zero_point.empty() ? 0.0f : float(q.zero_point[0]);
      const float qmin = -std::ldexp(1.0f, q.bits - 1), qmax = std::ldexp(1.0f, q.bits - 1) - 1;
      for (size_t i = 0; i < dz.size(); ++i) {
        const float code = value_[x][i] / s + z;
        if (code >= qmin && code <= qmax) grad_[x][i] += dz[i] / s;
      }
      return Status::ok();
    }
    case OpType::kTranspose: {
      const int32_t x = op.inputs[0];
      const Dims& xd = dims_[x];
      const int r = xd.rank;
      std::vector<int64_t> xstride(r, 1);
      for (int k = r - 2; k >= 0; --k) xstride[k] = xstride[k + 1] * xd.d[k + 1];
      std::vector<int32_t> idx(r, 0);  // output index
      for (size_t i = 0; i < dz.size(); ++i) {
        int64_t at = 0;
        for (int k = 0; k < r; ++k) at += int64_t(idx[k]) * xstride[op.perm()[k]];
        grad_[x][at] += dz[i];
        for (int k = r - 1; k >= 0; --k) {
          if (++idx[k] < yd.d[k]) break;
          idx[k] = 0;
        }
      }
      return Status::ok();
    }
    case OpType::kConcat: {
      const int axis = op.axis;
      int64_t outer = 1, inner = 1;
      for (int k = 0; k < axis; ++k) outer *= yd.d[k];
      for (int k = axis + 1; k < yd.rank; ++k) inner *= yd.d[k];
      int64_t offset = 0;
      for (int32_t x : op.inputs) {
        const int64_t len = int64_t(dims_[x].d[axis]) * inner;
        if (active(x))
          for (int64_t o = 0; o < outer; ++o)
            for (int64_t e = 0; e < len; ++e) grad_[x][o * len + e] += dz[o * int64_t(yd.d[axis]) * inner + offset + e];
        offset += len;
      }
      return Status::ok();
    }
    case OpType::kClamp: {
      const int32_t x = op.inputs[0];
      for (size_t i = 0; i < dz.size(); ++i)
        if (value_[x][i] > op.activation.min && value_[x][i] < op.activation.max) grad_[x][i] += dz[i];
      return Status::ok();
    }
    case OpType::kSoftmax: {
      const int32_t x = op.inputs[0];
      const int64_t per = yd.d[yd.rank - 1], rows = yd.elements() / per;
      const std::vector<float>& yv = value_[y];
      for (int64_t r = 0; r < rows; ++r) {
        double dot = 0.0;
        for (int64_t c = 0; c < per; ++c) dot += double(dz[r * per + c]) * yv[r * per + c];
        for (int64_t c = 0; c < per; ++c)
          grad_[x][r * per + c] += float(op.beta * yv[r * per + c] * (dz[r * per + c] - dot));
      }
      return Status::ok();
    }
    default:
      return Status::error(StatusCode::kUnsupported, "bias tuning: no backward pass for %s '%s'", op_name(op.type),
                           op.name.c_str());
  }
}

}  // namespace quant
}  // namespace tinyquant
