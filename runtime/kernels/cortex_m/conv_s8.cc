// Cortex-M Conv2D (groups = 1) and FullyConnected: im2col into scratch, 2 x 2 SMLAD tiles
// (gemm_s8.h). Scratch, in order: per-channel multipliers (4 * O bytes), the int8 staging column
// (K bytes; none when each tap's channels fill whole weight words, then taps widen straight from
// the input), two interleaved int16 columns with their tails, and an int8 weight tile when the
// weights are not read in place.
#include <cstring>

#include "cortex_m_kernels.h"
#include "gemm_s8.h"
#include "kernels/reference/common_s8.h"

namespace tinyquant {
namespace cortex_m {

bool native_dsp() { return TQ_DSP_NATIVE != 0; }

namespace {

struct Layout {
  RowsPlan plan;
  bool staged = true;  // gather the taps into an int8 staging column first
  size_t scales = 0, stage = 0, cols = 0, tails = 0, tile = 0, total = 0;
};

void finish_layout(int32_t out_c, Layout* l) {
  size_t at = 0;
  l->scales = at;
  at += align4(size_t(out_c) * sizeof(float));
  l->stage = at;
  if (l->staged) at += align4(size_t(l->plan.kcol));
  l->cols = at;
  at += size_t(l->plan.kmain) * 4;
  l->tails = at;
  at += 2 * kMaxTail * sizeof(int16_t);
  l->tile = at;
  at += tile_bytes(l->plan);
  l->total = at;
}

bool conv_layout(const ConvOptions& opt, const TensorView& input, const TensorView& weights,
                 const TensorView& output, Layout* l) {
  if (opt.groups != 1 || !weights.quant || input.dtype != DType::kInt8) return false;
  const int32_t out_c = output.dims[3], in_c = input.dims[3];
  const int64_t depth = int64_t(weights.dims[1]) * weights.dims[2] * weights.dims[3];
  if (depth > kMaxDepth || !plan_rows(out_c, static_cast<int32_t>(depth), weights.quant->bits, &l->plan))
    return false;
  // Every tap's channels whole weight words: each tap widens straight from the input.
  l->staged = !(l->plan.kcol == l->plan.depth && l->plan.kmain == l->plan.depth && in_c % (32 / l->plan.bits) == 0);
  finish_layout(out_c, l);
  return true;
}

// The scratch regions of a layout.
struct Scratch {
  float* scale;
  int8_t* stage;
  uint32_t* cols;
  int16_t* tails[2];
  int8_t* tile;
  Scratch(const Layout& l, void* scratch) {
    uint8_t* base = static_cast<uint8_t*>(scratch);
    scale = reinterpret_cast<float*>(base + l.scales);
    stage = reinterpret_cast<int8_t*>(base + l.stage);
    cols = reinterpret_cast<uint32_t*>(base + l.cols);
    tails[0] = reinterpret_cast<int16_t*>(base + l.tails);
    tails[1] = tails[0] + kMaxTail;
    tile = reinterpret_cast<int8_t*>(base + l.tile);
  }
};

void fill_scales(const TensorView& input, const TensorView& weights, const TensorView& output, int32_t count,
                 float* scale) {
  const float s_in = input.quant->scale[0], s_out = output.quant->scale[0];
  for (int32_t c = 0; c < count; ++c) scale[c] = qmath::requant_scale(s_in, weights.quant->scale[c], s_out);
}

GemmArgs gemm_args(const RowsPlan& p, const reference::WeightedS8& k, const float* scale) {
  GemmArgs g;
  g.plan = p;
  g.bias = k.b;
  g.scale = scale;
  g.rq = Requant(k.z_out, k.lo, k.hi);
  return g;
}

// The tile loop both kernels share: for each tile of output channels (all of them when the
// weights are read in place, else rows unpacked to int8 first), every pair of columns (output
// pixels / input rows) through the 2 x 2 GEMM, a last odd column alone. column(i, j, stride)
// fills column j of a pair (stride 4) or a lone column (stride 2) for column index i.
template <typename Column>
void run_tiles(GemmArgs& g, const reference::WeightedS8& k, int8_t* tile, int32_t channels, int64_t columns,
               uint32_t* cols, int16_t* const* tails, Column column) {
  const RowsPlan& p = g.plan;
  for (int32_t first = 0; first < channels; first += p.tile_rows) {
    g.first = first;
    g.count = channels - first < p.tile_rows ? channels - first : p.tile_rows;
    if (p.in_place) {
      g.rows = k.w + int64_t(first) * p.row_bytes;
    } else {
      unpack_tile(k.w, k.w_bits, p, first, g.count, tile);
      g.rows = reinterpret_cast<const uint8_t*>(tile);
    }
    for (int64_t i = 0; i < columns; i += 2) {
      int8_t* y0 = k.y + i * channels;
      if (i + 1 < columns) {
        column(i, 0, 4);
        column(i + 1, 1, 4);
        gemm(g, cols, tails[0], tails[1], y0, y0 + channels);
      } else {
        column(i, 0, 2);
        gemm(g, cols, tails[0], nullptr, y0, nullptr);
      }
    }
  }
}

}  // namespace

int64_t conv2d_s8_scratch_size(const ConvOptions& opt, const TensorView& input, const TensorView& weights,
                               const TensorView& output) {
  Layout l;
  return conv_layout(opt, input, weights, output, &l) ? static_cast<int64_t>(l.total) : -1;
}

void conv2d_s8(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
               const TensorView& weights, const TensorView* bias, const TensorView& output, void* scratch) {
  Layout l;
  conv_layout(opt, input, weights, output, &l);  // the caller sized scratch with the same call
  const RowsPlan& p = l.plan;
  const Scratch sp(l, scratch);
  float* scale = sp.scale;
  int8_t* stage = sp.stage;
  uint32_t* cols = sp.cols;
  int16_t* const* tails = sp.tails;
  int8_t* tile = sp.tile;

  const int32_t batch = input.dims[0], in_h = input.dims[1], in_w = input.dims[2], in_c = input.dims[3];
  const int32_t out_h = output.dims[1], out_w = output.dims[2], out_c = output.dims[3];
  const int32_t k_h = weights.dims[1], k_w = weights.dims[2];
  const reference::WeightedS8 k = reference::weighted_s8(act, input, weights, bias, output);
  fill_scales(input, weights, output, out_c, scale);
  GemmArgs g = gemm_args(p, k, scale);
  const int32_t tap_steps = in_c / 4;  // steps (4 activations each) per tap when not staged

  // Column j of a pair (stride 4) or a lone column (stride 2) for output pixel px.
  auto column = [&](int64_t px, int j, int32_t stride) {
    const int32_t ox = static_cast<int32_t>(px % out_w);
    const int64_t rest = px / out_w;
    const int32_t oy = static_cast<int32_t>(rest % out_h);
    const int32_t n = static_cast<int32_t>(rest / out_h);
    const int32_t iy0 = oy * opt.stride_h - opt.padding.top, ix0 = ox * opt.stride_w - opt.padding.left;
    const int8_t* img = k.x + int64_t(n) * in_h * in_w * in_c;
    uint32_t* steps = cols + 2 * j;
    if (!l.staged) {  // widen each tap's channels in place; padding taps are 0 (x - z for x = z)
      for (int32_t ky = 0; ky < k_h; ++ky) {
        const int32_t iy = iy0 + ky * opt.dilation_h;
        for (int32_t kx = 0; kx < k_w; ++kx, steps += tap_steps * stride) {
          const int32_t ix = ix0 + kx * opt.dilation_w;
          if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w) {
            for (int32_t s = 0; s < tap_steps; ++s) steps[s * stride] = steps[s * stride + 1] = 0;
          } else {
            build_steps(p.bits, img + (int64_t(iy) * in_w + ix) * in_c, in_c, k.z_in, steps, stride);
          }
        }
      }
      return;
    }
    int8_t* dst = stage;
    for (int32_t ky = 0; ky < k_h; ++ky) {
      const int32_t iy = iy0 + ky * opt.dilation_h;
      for (int32_t kx = 0; kx < k_w; ++kx, dst += in_c) {
        const int32_t ix = ix0 + kx * opt.dilation_w;
        if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w)
          std::memset(dst, k.z_in, size_t(in_c));
        else
          std::memcpy(dst, img + (int64_t(iy) * in_w + ix) * in_c, size_t(in_c));
      }
    }
    for (int32_t i = p.depth; i < p.kcol; ++i) stage[i] = static_cast<int8_t>(k.z_in);
    build_column(stage, p, k.z_in, steps, stride, tails[j]);
  };

  run_tiles(g, k, tile, out_c, int64_t(batch) * out_h * out_w, cols, tails, column);
}

// ---- FullyConnected: weights [O, I], columns are the input rows ----
namespace {
bool fc_layout(const TensorView& input, const TensorView& weights, Layout* l) {
  if (!weights.quant || input.dtype != DType::kInt8) return false;
  const int32_t out_f = weights.dims[0], in_f = weights.dims[1];
  if (!plan_rows(out_f, in_f, weights.quant->bits, &l->plan)) return false;
  l->staged = l->plan.kcol != l->plan.depth;  // a tile's rows are padded: pad the input too
  finish_layout(out_f, l);
  return true;
}
}  // namespace

int64_t fully_connected_s8_scratch_size(const TensorView& input, const TensorView& weights,
                                        const TensorView& output) {
  (void)output;
  Layout l;
  return fc_layout(input, weights, &l) ? static_cast<int64_t>(l.total) : -1;
}

void fully_connected_s8(const FusedActivation& act, const TensorView& input, const TensorView& weights,
                        const TensorView* bias, const TensorView& output, void* scratch) {
  Layout l;
  fc_layout(input, weights, &l);
  const RowsPlan& p = l.plan;
  const Scratch sp(l, scratch);
  float* scale = sp.scale;
  int8_t* stage = sp.stage;
  uint32_t* cols = sp.cols;
  int16_t* const* tails = sp.tails;
  int8_t* tile = sp.tile;
  const int32_t out_f = weights.dims[0], in_f = weights.dims[1];
  const int64_t rows = input.elements() / in_f;
  const reference::WeightedS8 k = reference::weighted_s8(act, input, weights, bias, output);
  fill_scales(input, weights, output, out_f, scale);
  GemmArgs g = gemm_args(p, k, scale);
  auto column = [&](int64_t r, int j, int32_t stride) {
    const int8_t* x = k.x + r * in_f;
    if (l.staged) {
      std::memcpy(stage, x, size_t(in_f));
      for (int32_t i = in_f; i < p.kcol; ++i) stage[i] = static_cast<int8_t>(k.z_in);
      x = stage;
    }
    build_column(x, p, k.z_in, cols + 2 * j, stride, tails[j]);
  };
  run_tiles(g, k, tile, out_f, rows, cols, tails, column);
}

}  // namespace cortex_m
}  // namespace tinyquant
