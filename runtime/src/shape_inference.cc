#include "tinyquant/shape_inference.h"

#include <algorithm>

#include "tinyquant/op_info.h"
#include "tinyquant/qmath.h"

namespace tinyquant {

namespace {
Dims dims_of(const int32_t* shape, size_t rank) {
  Dims d;
  d.rank = static_cast<int32_t>(std::min<size_t>(rank, kMaxRank));
  for (int i = 0; i < d.rank; ++i) d.d[i] = shape[i];
  return d;
}
}  // namespace

Dims Dims::of(const std::vector<int32_t>& shape) { return dims_of(shape.data(), shape.size()); }
Dims Dims::of(const FlatVector<int32_t>& shape) { return dims_of(shape.data(), shape.size()); }
Dims Dims::of(std::initializer_list<int32_t> shape) { return dims_of(shape.begin(), shape.size()); }

int32_t window_output_size(int32_t in, int32_t kernel, int32_t stride, int32_t dilation, int32_t pad_before,
                           int32_t pad_after) {
  const int64_t effective = int64_t(dilation) * (kernel - 1) + 1;
  const int64_t padded = int64_t(in) + pad_before + pad_after;
  if (padded < effective || stride < 1) return 0;
  return static_cast<int32_t>((padded - effective) / stride + 1);
}

namespace {

struct Ctx {
  const Graph& g;
  const Operator& op;
  const std::vector<Dims>& dims;
  const char* kind() const { return op_name(op.type); }
  const char* name() const { return op.name.c_str(); }
  const Dims& in(int k) const { return dims[op.inputs[k]]; }
  const char* tname(int k) const { return g.tensors[op.inputs[k]].name.c_str(); }
  bool has(int k) const { return k < static_cast<int>(op.inputs.size()) && op.inputs[k] >= 0; }
};

#define SHAPE_ERROR(...) return Status::error(StatusCode::kInvalidModel, __VA_ARGS__)

Status require_rank(const Ctx& c, int k, int rank) {
  char buf[96];
  if (c.in(k).rank != rank)
    SHAPE_ERROR("%s '%s': input %d '%s' has shape %s, expected rank %d", c.kind(), c.name(), k, c.tname(k),
                c.in(k).str(buf, sizeof(buf)), rank);
  return Status::ok();
}

Status require_constant(const Ctx& c, int k) {
  if (!c.g.tensors[c.op.inputs[k]].is_constant())
    SHAPE_ERROR("%s '%s': input %d '%s' must be a constant", c.kind(), c.name(), k, c.tname(k));
  return Status::ok();
}

Status check_bias(const Ctx& c, int32_t out_channels) {
  if (!c.has(2)) return Status::ok();
  char buf[96];
  if (c.in(2).rank != 1 || c.in(2)[0] != out_channels)
    SHAPE_ERROR("%s '%s': bias '%s' has shape %s, expected [%d]", c.kind(), c.name(), c.tname(2),
                c.in(2).str(buf, sizeof(buf)), out_channels);
  return Status::ok();
}

Status spatial_out(const Ctx& c, int32_t h, int32_t w, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t dh,
                   int32_t dw, const Padding& p, int32_t* oh, int32_t* ow) {
  *oh = window_output_size(h, kh, sh, dh, p.top, p.bottom);
  *ow = window_output_size(w, kw, sw, dw, p.left, p.right);
  if (*oh <= 0 || *ow <= 0)
    SHAPE_ERROR("%s '%s': a %dx%d window (dilation %dx%d) does not fit input %dx%d with padding (%d,%d,%d,%d)",
                c.kind(), c.name(), kh, kw, dh, dw, h, w, p.top, p.left, p.bottom, p.right);
  return Status::ok();
}

Status infer_conv(const Ctx& c, Dims* out) {
  TQ_RETURN_IF_ERROR(require_rank(c, 0, 4));
  TQ_RETURN_IF_ERROR(require_rank(c, 1, 4));
  TQ_RETURN_IF_ERROR(require_constant(c, 1));
  const Dims& x = c.in(0);
  const Dims& w = c.in(1);
  const ConvOptions& o = c.op.conv();
  const int32_t in_c = x[3];
  int32_t out_c = w[0];
  char xb[96], wb[96];
  if (c.op.type == OpType::kConv2D) {
    if (in_c % o.groups != 0 || w[0] % o.groups != 0 || w[3] * o.groups != in_c)
      SHAPE_ERROR("Conv2D '%s': input %s and weights '%s' %s do not match %d group(s) (weights are OHWI with I = "
                  "input channels / groups)",
                  c.name(), x.str(xb, sizeof(xb)), c.tname(1), w.str(wb, sizeof(wb)), o.groups);
  } else {
    out_c = w[3];
    if (w[0] != 1 || int64_t(in_c) * o.depth_multiplier != w[3])
      SHAPE_ERROR("DepthwiseConv2D '%s': weights '%s' %s, expected [1,KH,KW,%lld] (1HWO, input channels x multiplier %d)",
                  c.name(), c.tname(1), w.str(wb, sizeof(wb)), static_cast<long long>(int64_t(in_c) * o.depth_multiplier),
                  o.depth_multiplier);
  }
  TQ_RETURN_IF_ERROR(check_bias(c, out_c));
  int32_t oh = 0, ow = 0;
  TQ_RETURN_IF_ERROR(spatial_out(c, x[1], x[2], w[1], w[2], o.stride_h, o.stride_w, o.dilation_h, o.dilation_w,
                                 o.padding, &oh, &ow));
  out->rank = 4;
  out->d[0] = x[0], out->d[1] = oh, out->d[2] = ow, out->d[3] = out_c;
  return Status::ok();
}

Status infer_conv_transpose(const Ctx& c, Dims* out) {
  TQ_RETURN_IF_ERROR(require_rank(c, 0, 4));
  TQ_RETURN_IF_ERROR(require_rank(c, 1, 4));
  TQ_RETURN_IF_ERROR(require_constant(c, 1));
  TQ_RETURN_IF_ERROR(require_constant(c, 2));
  const Dims& x = c.in(0);
  const Dims& w = c.in(1);
  const ConvOptions& o = c.op.conv();
  char xb[96], wb[96];
  if (x[3] % o.groups != 0 || w[0] % o.groups != 0 || w[3] * o.groups != x[3])
    SHAPE_ERROR("ConvTranspose '%s': input %s and weights '%s' %s do not match %d group(s) (weights are OHWI with I = "
                "input channels / groups)",
                c.name(), x.str(xb, sizeof(xb)), c.tname(1), w.str(wb, sizeof(wb)), o.groups);
  TQ_RETURN_IF_ERROR(check_bias(c, w[0]));
  const int64_t oh = int64_t(x[1] - 1) * o.stride_h - o.padding.top - o.padding.bottom + int64_t(o.dilation_h) * (w[1] - 1) +
                     1 + o.output_pad_h;
  const int64_t ow = int64_t(x[2] - 1) * o.stride_w - o.padding.left - o.padding.right + int64_t(o.dilation_w) * (w[2] - 1) +
                     1 + o.output_pad_w;
  if (oh < 1 || ow < 1 || oh > (1 << 20) || ow > (1 << 20))
    SHAPE_ERROR("ConvTranspose '%s': output %lldx%lld from input %s is empty or too large", c.name(),
                static_cast<long long>(oh), static_cast<long long>(ow), x.str(xb, sizeof(xb)));
  out->rank = 4;
  out->d[0] = x[0], out->d[1] = static_cast<int32_t>(oh), out->d[2] = static_cast<int32_t>(ow), out->d[3] = w[0];
  return Status::ok();
}

Status infer_fc(const Ctx& c, Dims* out) {
  TQ_RETURN_IF_ERROR(require_rank(c, 1, 2));
  TQ_RETURN_IF_ERROR(require_constant(c, 1));
  const Dims& x = c.in(0);
  const Dims& w = c.in(1);
  char xb[96], wb[96];
  if (x.rank < 1 || x[x.rank - 1] != w[1] || w[1] == 0)
    SHAPE_ERROR("FullyConnected '%s': input '%s' %s does not end in the weights' %d input features (weights '%s' %s)",
                c.name(), c.tname(0), x.str(xb, sizeof(xb)), w[1], c.tname(1), w.str(wb, sizeof(wb)));
  TQ_RETURN_IF_ERROR(check_bias(c, w[0]));
  out->rank = 2;
  out->d[0] = static_cast<int32_t>(x.elements() / w[1]);
  out->d[1] = w[0];
  return Status::ok();
}

Status infer_broadcast(const Ctx& c, Dims* out) {
  const Dims& a = c.in(0);
  const Dims& b = c.in(1);
  out->rank = std::max(a.rank, b.rank);
  for (int i = 0; i < out->rank; ++i) {
    const int ia = i - (out->rank - a.rank), ib = i - (out->rank - b.rank);
    const int32_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char ab[96], bb[96];
      SHAPE_ERROR("%s '%s': shapes %s ('%s') and %s ('%s') do not broadcast", c.kind(), c.name(), a.str(ab, sizeof(ab)),
                  c.tname(0), b.str(bb, sizeof(bb)), c.tname(1));
    }
    out->d[i] = da == 1 ? db : da;
  }
  return Status::ok();
}

Status infer_slice(const Ctx& c, Dims* out) {
  const Dims& x = c.in(0);
  const SliceOptions& s = c.op.slice();
  if (static_cast<int32_t>(s.begin.size()) != x.rank)
    SHAPE_ERROR("Slice '%s': %zu dims of begin/end/step for a rank-%d input", c.name(), s.begin.size(), x.rank);
  out->rank = x.rank;
  for (int d = 0; d < x.rank; ++d) {
    const int64_t end = std::min<int64_t>(s.end[d], x[d]);
    const int64_t n = end > s.begin[d] ? (end - s.begin[d] + s.step[d] - 1) / s.step[d] : 0;
    if (n < 1) {
      char xb[96];
      SHAPE_ERROR("Slice '%s': dim %d of '%s' %s: [%d:%d:%d] is empty", c.name(), d, c.tname(0), x.str(xb, sizeof(xb)),
                  s.begin[d], s.end[d], s.step[d]);
    }
    out->d[d] = static_cast<int32_t>(n);
  }
  return Status::ok();
}

Status infer_layer_norm(const Ctx& c, Dims* out) {
  const Dims& x = c.in(0);
  if (x.rank < 1) SHAPE_ERROR("LayerNorm '%s': input '%s' is a scalar", c.name(), c.tname(0));
  for (int k = 1; k < 3; ++k) {
    if (!c.has(k)) continue;
    TQ_RETURN_IF_ERROR(require_constant(c, k));
    if (c.in(k).elements() != x[x.rank - 1] || c.in(k).rank != 1) {
      char b[96];
      SHAPE_ERROR("LayerNorm '%s': %s '%s' has shape %s, expected [%d]", c.name(), k == 1 ? "scale" : "bias",
                  c.tname(k), c.in(k).str(b, sizeof(b)), x[x.rank - 1]);
    }
  }
  *out = x;
  return Status::ok();
}

// Gather: indices of any shape (input 0, float32 integers or int32), a constant table [V, ...] (input 1).
Status infer_gather(const Ctx& c, Dims* out) {
  TQ_RETURN_IF_ERROR(require_constant(c, kWeightInput));
  const Tensor& idx = c.g.tensors[c.op.inputs[0]];
  if (idx.dtype != DType::kInt32 && idx.dtype != DType::kFloat32)
    SHAPE_ERROR("Gather '%s': indices '%s' are %s, expected float32 or int32", c.name(), c.tname(0),
                dtype_name(idx.dtype));
  const Dims& x = c.in(0);
  const Dims& t = c.in(kWeightInput);
  if (t.rank < 1 || t[0] < 1 || x.rank + t.rank - 1 > kMaxRank) {
    char xb[96], tb[96];
    SHAPE_ERROR("Gather '%s': table '%s' %s cannot be indexed by '%s' %s (a table [V, ...] with V >= 1, output rank "
                "at most %d)", c.name(), c.tname(1), t.str(tb, sizeof(tb)), c.tname(0), x.str(xb, sizeof(xb)),
                kMaxRank);
  }
  *out = x;
  for (int i = 1; i < t.rank; ++i) out->d[out->rank++] = t[i];
  return Status::ok();
}

// BatchMatMul: [..., M, K] x [..., K, N] -> [..., M, N], equal leading dims.
Status infer_batch_matmul(const Ctx& c, Dims* out) {
  const Dims& a = c.in(0);
  const Dims& b = c.in(1);
  bool ok = a.rank >= 3 && a.rank == b.rank && a[a.rank - 1] == b[b.rank - 2];
  for (int i = 0; ok && i < a.rank - 2; ++i) ok = a[i] == b[i];
  if (!ok) {
    char ab[96], bb[96];
    SHAPE_ERROR("BatchMatMul '%s': '%s' %s and '%s' %s do not multiply (expected [..., M, K] x [..., K, N] of one "
                "rank >= 3 with equal leading dims)", c.name(), c.tname(0), a.str(ab, sizeof(ab)), c.tname(1),
                b.str(bb, sizeof(bb)));
  }
  if (c.g.tensors[c.op.inputs[0]].is_constant() || c.g.tensors[c.op.inputs[1]].is_constant())
    SHAPE_ERROR("BatchMatMul '%s': both inputs must be activations (a constant operand is a FullyConnected)",
                c.name());
  *out = a;
  out->d[out->rank - 1] = b[b.rank - 1];
  return Status::ok();
}

Status infer_pool(const Ctx& c, Dims* out) {
  TQ_RETURN_IF_ERROR(require_rank(c, 0, 4));
  const Dims& x = c.in(0);
  const PoolOptions& p = c.op.pool();
  int32_t oh = 0, ow = 0;
  TQ_RETURN_IF_ERROR(spatial_out(c, x[1], x[2], p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.dilation_h,
                                 p.dilation_w, p.padding, &oh, &ow));
  *out = x;
  out->d[1] = oh, out->d[2] = ow;
  return Status::ok();
}

Status infer_reshape(const Ctx& c, Dims* out) {
  const Dims& x = c.in(0);
  const std::vector<int32_t>& s = c.op.new_shape();
  out->rank = static_cast<int32_t>(s.size());
  int infer = -1;
  int64_t known = 1;
  char xb[96];
  for (int i = 0; i < out->rank; ++i) {
    int32_t d = s[i];
    if (d == 0) {
      if (i >= x.rank) SHAPE_ERROR("Reshape '%s': new shape copies dimension %d of a rank-%d input", c.name(), i, x.rank);
      d = x[i];
    } else if (d == -1) {
      if (infer >= 0) SHAPE_ERROR("Reshape '%s': new shape has more than one -1", c.name());
      infer = i;
      d = 1;
    } else if (d < 0) {
      SHAPE_ERROR("Reshape '%s': new shape has dimension %d", c.name(), d);
    }
    out->d[i] = d;
    if (s[i] != -1) {
      if (d != 0 && known > (int64_t(1) << 40) / d)
        SHAPE_ERROR("Reshape '%s': new shape is too large", c.name());
      known *= d;
    }
  }
  const int64_t total = x.elements();
  if (infer >= 0) {
    if (known == 0 || total % known != 0)
      SHAPE_ERROR("Reshape '%s': cannot infer a dimension to reshape '%s' %s (%lld elements)", c.name(), c.tname(0),
                  x.str(xb, sizeof(xb)), static_cast<long long>(total));
    out->d[infer] = static_cast<int32_t>(total / known);
  }
  if (out->elements() != total) {
    char ob[96];
    SHAPE_ERROR("Reshape '%s': cannot reshape '%s' %s (%lld elements) to %s", c.name(), c.tname(0),
                x.str(xb, sizeof(xb)), static_cast<long long>(total), out->str(ob, sizeof(ob)));
  }
  return Status::ok();
}

Status infer_concat(const Ctx& c, Dims* out) {
  const Dims& first = c.in(0);
  const int32_t axis = c.op.axis;
  if (axis < 0 || axis >= first.rank)
    SHAPE_ERROR("Concat '%s': axis %d out of range for rank %d", c.name(), axis, first.rank);
  *out = first;
  int64_t sum = 0;
  for (size_t k = 0; k < c.op.inputs.size(); ++k) {
    const Dims& x = c.in(static_cast<int>(k));
    bool ok = x.rank == first.rank;
    for (int i = 0; ok && i < x.rank; ++i) ok = i == axis || x[i] == first[i];
    if (!ok) {
      char xb[96], fb[96];
      SHAPE_ERROR("Concat '%s': input '%s' %s does not match %s outside axis %d", c.name(),
                  c.tname(static_cast<int>(k)), x.str(xb, sizeof(xb)), first.str(fb, sizeof(fb)), axis);
    }
    sum += x[axis];
  }
  if (sum > (int64_t(1) << 31) - 1) SHAPE_ERROR("Concat '%s': output too large", c.name());
  out->d[axis] = static_cast<int32_t>(sum);
  return Status::ok();
}

Status infer_transpose(const Ctx& c, Dims* out) {
  const Dims& x = c.in(0);
  const std::vector<int32_t>& perm = c.op.perm();
  if (static_cast<int32_t>(perm.size()) != x.rank)
    SHAPE_ERROR("Transpose '%s': permutation has %zu entries for a rank-%d input", c.name(), perm.size(), x.rank);
  bool seen[kMaxRank] = {false};
  out->rank = x.rank;
  for (int i = 0; i < x.rank; ++i) {
    if (perm[i] < 0 || perm[i] >= x.rank || seen[perm[i]])
      SHAPE_ERROR("Transpose '%s': entry %d (%d) of the permutation is invalid", c.name(), i, perm[i]);
    seen[perm[i]] = true;
    out->d[i] = x[perm[i]];
  }
  return Status::ok();
}

// --- dtype / quantization checks (run in prepare, so the int8 kernels can trust them) ---------

#define QUANT_ERROR(code, ...) return Status::error(StatusCode::code, __VA_ARGS__)

const Tensor& in_tensor(const Ctx& c, int k) { return c.g.tensors[c.op.inputs[k]]; }
const Tensor& out_tensor(const Ctx& c) { return c.g.tensors[c.op.outputs[0]]; }

// An int8 activation: one scale, at most one zero point, inside the int8 range of its bits.
Status require_s8_activation(const Ctx& c, const Tensor& t, const char* role) {
  if (t.dtype != DType::kInt8)
    QUANT_ERROR(kUnsupported, "%s '%s': %s '%s' is %s; this op's int8 form needs int8 throughout", c.kind(), c.name(),
                role, t.name.c_str(), dtype_name(t.dtype));
  const Quantization& q = t.quant;
  if (q.scale.size() != 1 || q.zero_point.size() > 1)
    QUANT_ERROR(kInvalidModel, "%s '%s': int8 %s '%s' needs one scale and zero point (has %zu scales, %zu zero points)",
                c.kind(), c.name(), role, t.name.c_str(), q.scale.size(), q.zero_point.size());
  const int32_t z = q.zero_point.empty() ? 0 : q.zero_point[0];
  if (z < qmath::qmin(q.bits) || z > qmath::qmax(q.bits))
    QUANT_ERROR(kInvalidModel, "%s '%s': %s '%s' has zero point %d outside the %d-bit range [%d, %d]", c.kind(),
                c.name(), role, t.name.c_str(), z, q.bits, qmath::qmin(q.bits), qmath::qmax(q.bits));
  return Status::ok();
}

Status require_same_quantization(const Ctx& c, const Tensor& a, const Tensor& b) {
  const int32_t za = a.quant.zero_point.empty() ? 0 : a.quant.zero_point[0];
  const int32_t zb = b.quant.zero_point.empty() ? 0 : b.quant.zero_point[0];
  if (a.quant.scale[0] != b.quant.scale[0] || za != zb)
    QUANT_ERROR(kInvalidModel, "%s '%s': int8 '%s' (scale %g, zero point %d) and '%s' (scale %g, zero point %d) must "
                "share quantization", c.kind(), c.name(), a.name.c_str(), a.quant.scale[0], za, b.name.c_str(),
                b.quant.scale[0], zb);
  return Status::ok();
}

// Quantized conv / FC: int8 input and output, int8 weights with one scale per output channel
// (zero point 0), int32 bias.
Status check_quantized_weights(const Ctx& c, int32_t out_channels) {
  TQ_RETURN_IF_ERROR(require_s8_activation(c, in_tensor(c, 0), "input"));
  TQ_RETURN_IF_ERROR(require_s8_activation(c, out_tensor(c), "output"));
  const Tensor& w = in_tensor(c, 1);
  const int32_t axis = c.op.type == OpType::kDepthwiseConv2D ? 3 : 0;
  if (w.dtype != DType::kInt8)
    QUANT_ERROR(kUnsupported, "%s '%s': weights '%s' are %s; an int8 input needs int8 weights", c.kind(), c.name(),
                w.name.c_str(), dtype_name(w.dtype));
  if (w.quant.scale.size() != static_cast<size_t>(out_channels) || (out_channels > 1 && w.quant.axis != axis))
    QUANT_ERROR(kInvalidModel, "%s '%s': weights '%s' need %d scales along axis %d (one per output channel), have %zu "
                "along axis %d", c.kind(), c.name(), w.name.c_str(), out_channels, axis, w.quant.scale.size(),
                w.quant.axis);
  for (int32_t z : w.quant.zero_point)
    if (z != 0) QUANT_ERROR(kInvalidModel, "%s '%s': weights '%s' have zero point %d; weights are symmetric (0)",
                            c.kind(), c.name(), w.name.c_str(), z);
  if (c.has(2) && in_tensor(c, 2).dtype != DType::kInt32)
    QUANT_ERROR(kInvalidModel, "%s '%s': bias '%s' is %s; a quantized op needs an int32 bias (scale s_in * s_w)",
                c.kind(), c.name(), in_tensor(c, 2).name.c_str(), dtype_name(in_tensor(c, 2).dtype));
  return Status::ok();
}

Status check_dtypes(const Ctx& c, const Dims& out) {
  switch (c.op.type) {
    case OpType::kQuantize:
      if (in_tensor(c, 0).dtype != DType::kFloat32)
        QUANT_ERROR(kInvalidModel, "Quantize '%s': input '%s' is %s, expected float32", c.name(),
                    in_tensor(c, 0).name.c_str(), dtype_name(in_tensor(c, 0).dtype));
      return require_s8_activation(c, out_tensor(c), "output");
    case OpType::kDequantize:
      if (out_tensor(c).dtype != DType::kFloat32)
        QUANT_ERROR(kInvalidModel, "Dequantize '%s': output '%s' is %s, expected float32", c.name(),
                    out_tensor(c).name.c_str(), dtype_name(out_tensor(c).dtype));
      return require_s8_activation(c, in_tensor(c, 0), "input");
    default: break;
  }
  // Float activations with int8 weights do not select the integer kernel; the backend rejects them.
  if (!runs_int8(c.op, c.g)) return Status::ok();
  switch (op_info(c.op.type).int8_role) {
    case Int8Role::kWeighted: return check_quantized_weights(c, out[out.rank - 1]);
    case Int8Role::kPassthrough:
      TQ_RETURN_IF_ERROR(require_s8_activation(c, in_tensor(c, 0), "input"));
      TQ_RETURN_IF_ERROR(require_s8_activation(c, out_tensor(c), "output"));
      return require_same_quantization(c, in_tensor(c, 0), out_tensor(c));
    case Int8Role::kLookup:
      TQ_RETURN_IF_ERROR(require_s8_activation(c, in_tensor(c, 0), "input"));
      if (!c.has(kTableInput))
        QUANT_ERROR(kInvalidModel, "%s '%s': an int8 input needs its lookup table (input %d)", c.kind(), c.name(),
                    kTableInput);
      return require_s8_activation(c, out_tensor(c), "output");
    case Int8Role::kGather: {
      const Tensor& t = in_tensor(c, kWeightInput);
      if (t.dtype != DType::kInt8 || t.quant.scale.size() != 1)
        QUANT_ERROR(kInvalidModel, "Gather '%s': an int8 output needs an int8 table with one scale ('%s' is %s with "
                    "%zu scales)", c.name(), t.name.c_str(), dtype_name(t.dtype), t.quant.scale.size());
      TQ_RETURN_IF_ERROR(require_s8_activation(c, out_tensor(c), "output"));
      const int32_t zt = t.quant.zero_point.empty() ? 0 : t.quant.zero_point[0];
      const Tensor& o = out_tensor(c);
      const int32_t zo = o.quant.zero_point.empty() ? 0 : o.quant.zero_point[0];
      if (t.quant.scale[0] != o.quant.scale[0] || zt != zo || t.quant.bits != o.quant.bits)
        QUANT_ERROR(kInvalidModel, "Gather '%s': output '%s' must keep the table's scale %g, zero point %d and %d "
                    "bits (has %g, %d, %d)", c.name(), o.name.c_str(), t.quant.scale[0], zt, t.quant.bits,
                    o.quant.scale[0], zo, o.quant.bits);
      return Status::ok();
    }
    case Int8Role::kNone:
      QUANT_ERROR(kUnsupported, "%s '%s' has no int8 kernel (it runs float32 between a Dequantize and a Quantize)",
                  c.kind(), c.name());
    default:  // kRequantizing, kFixedOutput (the kernel checks the fixed params)
      for (int k = 0; k < static_cast<int>(c.op.inputs.size()); ++k)
        TQ_RETURN_IF_ERROR(require_s8_activation(c, in_tensor(c, k), "input"));
      return require_s8_activation(c, out_tensor(c), "output");
  }
}

Status infer_op(const Ctx& c, Dims* out) {
  switch (c.op.type) {
    case OpType::kConv2D:
    case OpType::kDepthwiseConv2D: return infer_conv(c, out);
    case OpType::kFullyConnected: return infer_fc(c, out);
    case OpType::kAdd:
    case OpType::kMul:
    case OpType::kSub:
    case OpType::kDiv: return infer_broadcast(c, out);
    case OpType::kPRelu: {
      TQ_RETURN_IF_ERROR(infer_broadcast(c, out));
      if (*out != c.in(0)) {
        char b[96];
        SHAPE_ERROR("PRelu '%s': slope '%s' %s must broadcast to the input's shape", c.name(), c.tname(1),
                    c.in(1).str(b, sizeof(b)));
      }
      return Status::ok();
    }
    case OpType::kSlice: return infer_slice(c, out);
    case OpType::kConvTranspose: return infer_conv_transpose(c, out);
    case OpType::kLayerNorm: return infer_layer_norm(c, out);
    case OpType::kResize:
      TQ_RETURN_IF_ERROR(require_rank(c, 0, 4));
      *out = c.in(0);
      out->d[1] = c.op.resize().out_h;
      out->d[2] = c.op.resize().out_w;
      return Status::ok();
    case OpType::kUnary:
      if (c.has(kTableInput)) {
        TQ_RETURN_IF_ERROR(require_constant(c, kTableInput));
        const Tensor& t = in_tensor(c, kTableInput);
        if (t.dtype != DType::kInt8 || t.shape != std::vector<int32_t>{kLookupTableSize})
          SHAPE_ERROR("Unary '%s': table '%s' must be int8 [%d]", c.name(), c.tname(kTableInput), kLookupTableSize);
      }
      *out = c.in(0);
      return Status::ok();
    case OpType::kClamp:
    case OpType::kQuantize:
    case OpType::kDequantize:
      *out = c.in(0);
      return Status::ok();
    case OpType::kSoftmax:
      if (c.in(0).rank < 1) SHAPE_ERROR("Softmax '%s': input '%s' is a scalar", c.name(), c.tname(0));
      *out = c.in(0);
      return Status::ok();
    case OpType::kMaxPool2D:
    case OpType::kAveragePool2D: return infer_pool(c, out);
    case OpType::kGlobalAveragePool:
      TQ_RETURN_IF_ERROR(require_rank(c, 0, 4));
      *out = c.in(0);
      out->d[1] = out->d[2] = 1;
      return Status::ok();
    case OpType::kReshape: return infer_reshape(c, out);
    case OpType::kConcat: return infer_concat(c, out);
    case OpType::kTranspose: return infer_transpose(c, out);
    case OpType::kGather: return infer_gather(c, out);
    case OpType::kBatchMatMul: return infer_batch_matmul(c, out);
    case OpType::kCount: break;
  }
  SHAPE_ERROR("operator '%s': unknown op type %d", c.name(), static_cast<int>(c.op.type));
}

}  // namespace

Status infer_shapes(const Graph& graph, int32_t batch, std::vector<Dims>* dims) {
  TQ_RETURN_IF_ERROR(validate_graph(graph));
  dims->assign(graph.tensors.size(), Dims());
  for (size_t t = 0; t < graph.tensors.size(); ++t)
    if (graph.tensors[t].is_constant()) (*dims)[t] = Dims::of(graph.tensors[t].shape);
  for (int32_t in : graph.inputs) {
    const Tensor& t = graph.tensors[in];
    Dims d = Dims::of(t.shape);
    if (d.rank > 0) {
      if (batch > 0)
        d.d[0] = batch;
      else if (d.d[0] < 0)
        d.d[0] = 1;
    }
    (*dims)[in] = d;
  }
  for (const Operator& op : graph.operators) {
    Ctx c{graph, op, *dims};
    Dims out;
    TQ_RETURN_IF_ERROR(infer_op(c, &out));
    TQ_RETURN_IF_ERROR(check_dtypes(c, out));
    if (out.elements() < 0 || out.elements() > (int64_t(1) << 31))
      SHAPE_ERROR("%s '%s': output '%s' is too large", op_name(op.type), op.name.c_str(),
                  graph.tensors[op.outputs[0]].name.c_str());
    (*dims)[op.outputs[0]] = out;
  }
  return Status::ok();
}

}  // namespace tinyquant
