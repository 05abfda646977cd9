#include <cmath>

#include "tinyquant/quantizer.h"

namespace tinyquant {
namespace quant {

namespace {

Status check_layer(const QuantizedLayer& l, const Dims& in, const Dims& out, int32_t* out_channels) {
  TQ_ENSURE(l.packed_weights && l.weight_scales, kInvalidArgument, "layer: weights or weight scales missing");
  TQ_RETURN_IF_ERROR(check_bits("weights", l.weight_bits));
  TQ_RETURN_IF_ERROR(check_activation_params("input", l.input));
  TQ_RETURN_IF_ERROR(check_activation_params("output", l.output));
  const Dims& w = l.weight_dims;
  char a[64], b[64], c[64];
  switch (l.type) {
    case OpType::kConv2D: {
      const int32_t groups = l.conv.groups;
      TQ_ENSURE(in.rank == 4 && out.rank == 4 && w.rank == 4 && groups >= 1 && in[3] == w[3] * groups &&
                    out[3] == w[0] && w[0] % groups == 0 && in[0] == out[0],
                kInvalidArgument, "Conv2D: input %s, weights %s, output %s, groups %d are inconsistent",
                in.str(a, sizeof a), w.str(b, sizeof b), out.str(c, sizeof c), groups);
      *out_channels = w[0];
      return Status::ok();
    }
    case OpType::kDepthwiseConv2D:
      TQ_ENSURE(in.rank == 4 && out.rank == 4 && w.rank == 4 && w[0] == 1 && l.conv.depth_multiplier >= 1 &&
                    out[3] == in[3] * l.conv.depth_multiplier && w[3] == out[3] && in[0] == out[0],
                kInvalidArgument, "DepthwiseConv2D: input %s, weights %s, output %s, multiplier %d are inconsistent",
                in.str(a, sizeof a), w.str(b, sizeof b), out.str(c, sizeof c), l.conv.depth_multiplier);
      *out_channels = w[3];
      return Status::ok();
    case OpType::kFullyConnected:
      TQ_ENSURE(w.rank == 2 && w[1] > 0 && in.rank >= 1 && out.rank >= 1 && out[out.rank - 1] == w[0] &&
                    in.elements() % w[1] == 0 && out.elements() == in.elements() / w[1] * w[0],
                kInvalidArgument, "FullyConnected: input %s, weights %s, output %s are inconsistent",
                in.str(a, sizeof a), w.str(b, sizeof b), out.str(c, sizeof c));
      *out_channels = w[0];
      return Status::ok();
    default:
      return Status::error(StatusCode::kUnsupported, "simulate_layer_s8: %s is not a conv or fully connected op",
                           op_name(l.type));
  }
}

}  // namespace

Status simulate_layer_s8(const QuantizedLayer& l, const float* input, const Dims& in, const Dims& out_dims,
                         std::vector<int8_t>* out) {
  int32_t out_c = 0;
  TQ_RETURN_IF_ERROR(check_layer(l, in, out_dims, &out_c));

  // Quantize the input exactly as the Quantize kernel does; keep (q - zp) for the accumulation.
  const int64_t in_n = in.elements();
  std::vector<int32_t> xq(static_cast<size_t>(in_n));
  const float inv_scale = 1.0f / l.input.scale;
  for (int64_t i = 0; i < in_n; ++i)
    xq[i] = quantize_activation(input[i], inv_scale, l.input.zero_point, l.input.bits) - l.input.zero_point;

  const Dims& wd = l.weight_dims;
  const int64_t w_n = wd.elements();
  std::vector<int32_t> w(static_cast<size_t>(w_n));
  for (int64_t i = 0; i < w_n; ++i) w[i] = qmath::unpack_weight(l.packed_weights, i, l.weight_bits);

  std::vector<float> multiplier(out_c);
  for (int32_t c = 0; c < out_c; ++c)
    multiplier[c] = qmath::requant_scale(l.input.scale, l.weight_scales[c], l.output.scale);
  int32_t lo = 0, hi = 0;
  qmath::activation_bounds(l.activation, l.output.bits, l.output.scale, l.output.zero_point, &lo, &hi);

  out->assign(static_cast<size_t>(out_dims.elements()), 0);
  int8_t* y = out->data();
  auto emit = [&](int64_t index, int32_t c, int32_t acc) {
    y[index] = static_cast<int8_t>(qmath::requantize(acc, multiplier[c], l.output.zero_point, lo, hi));
  };
  auto bias = [&](int32_t c) { return l.bias ? l.bias[c] : 0; };

  if (l.type == OpType::kFullyConnected) {
    const int32_t in_f = wd[1];
    const int64_t rows = in_n / in_f;
    for (int64_t r = 0; r < rows; ++r)
      for (int32_t o = 0; o < out_c; ++o) {
        int32_t acc = bias(o);
        for (int32_t i = 0; i < in_f; ++i) acc += xq[r * in_f + i] * w[int64_t(o) * in_f + i];
        emit(r * out_c + o, o, acc);
      }
    return Status::ok();
  }

  const ConvOptions& opt = l.conv;
  const bool depthwise = l.type == OpType::kDepthwiseConv2D;
  const int32_t batch = in[0], in_h = in[1], in_w = in[2], in_c = in[3];
  const int32_t out_h = out_dims[1], out_w = out_dims[2];
  const int32_t k_h = wd[1], k_w = wd[2];
  const int32_t group_in = depthwise ? 1 : wd[3];
  const int32_t group_out = depthwise ? 1 : out_c / opt.groups;
  for (int32_t n = 0; n < batch; ++n)
    for (int32_t oy = 0; oy < out_h; ++oy)
      for (int32_t ox = 0; ox < out_w; ++ox)
        for (int32_t oc = 0; oc < out_c; ++oc) {
          // Depthwise output channel oc reads input channel oc / multiplier.
          const int32_t ic0 = depthwise ? oc / opt.depth_multiplier : (oc / group_out) * group_in;
          int32_t acc = bias(oc);
          for (int32_t ky = 0; ky < k_h; ++ky) {
            const int32_t iy = oy * opt.stride_h - opt.padding.top + ky * opt.dilation_h;
            if (iy < 0 || iy >= in_h) continue;
            for (int32_t kx = 0; kx < k_w; ++kx) {
              const int32_t ix = ox * opt.stride_w - opt.padding.left + kx * opt.dilation_w;
              if (ix < 0 || ix >= in_w) continue;
              const int32_t* xp = xq.data() + ((int64_t(n) * in_h + iy) * in_w + ix) * in_c + ic0;
              if (depthwise) {
                acc += xp[0] * w[(int64_t(ky) * k_w + kx) * out_c + oc];
              } else {
                const int32_t* wp = w.data() + ((int64_t(oc) * k_h + ky) * k_w + kx) * group_in;
                for (int32_t ic = 0; ic < group_in; ++ic) acc += xp[ic] * wp[ic];
              }
            }
          }
          emit(((int64_t(n) * out_h + oy) * out_w + ox) * out_c + oc, oc, acc);
        }
  return Status::ok();
}

}  // namespace quant
}  // namespace tinyquant
