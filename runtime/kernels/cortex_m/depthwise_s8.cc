// Cortex-M DepthwiseConv2D (depth multiplier 1, weights 1HWO). Per tile of kChannels channels the
// weights are unpacked once and stored widened, as the int16 pairs SMLABB / SMLATT read:
// [quad of 4 channels][tap] -> (w0, w2), (w1, w3). Every output pixel then takes four channels
// at a time: one word of input (four channels), SXTAB16 twice (x - z_in widened to int16 pairs),
// two words of weights, SMLABB / SMLATT into four sums; a row of three taps is unrolled.
// Requantization clamps after rounding, in integers, when the layer's largest possible |acc| *
// multiplier stays below 2^22 (then it equals qmath::requantize's clamp-then-round exactly:
// rounding is monotonic and keeps the integer bounds); otherwise as qmath does.
// Scratch: per-channel multipliers (4 * C bytes) + the widened weight tile (2 * taps * kChannels).
#include <cmath>
#include <cstring>

#include "cortex_m_kernels.h"
#include "dsp.h"
#include "gemm_s8.h"
#include "kernels/reference/common_s8.h"

namespace tinyquant {
namespace cortex_m {

namespace {
constexpr int32_t kChannels = 64;  // channels per weight tile (a multiple of 4)
constexpr int32_t kMaxTaps = 64;

bool dw_applies(const ConvOptions& opt, const TensorView& input, const TensorView& weights) {
  return opt.depth_multiplier == 1 && weights.quant && input.dtype == DType::kInt8 && weights.dims[1] >= 1 &&
         weights.dims[2] >= 1 && int64_t(weights.dims[1]) * weights.dims[2] <= kMaxTaps;
}

int32_t tile_channels(int32_t channels) { return channels < kChannels ? (channels + 3) & ~3 : kChannels; }

// qmath::requantize with the clamp on the rounded integer (valid while |acc * scale| < 2^22).
struct RequantInt {
  int32_t lo, hi, bias_minus_z;
  int8_t operator()(int32_t acc, float scale) const {
    const float biased = static_cast<float>(acc) * scale + 12582912.0f;
    int32_t bits;
    std::memcpy(&bits, &biased, sizeof(bits));
    int32_t q = bits - bias_minus_z;
    q = q < lo ? lo : q;
    q = q > hi ? hi : q;
    return static_cast<int8_t>(q);
  }
};

struct DwArgs {
  int32_t in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
  int32_t stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
  int32_t batch;
};

template <typename Rq>
__attribute__((noinline)) void dw_tile(const DwArgs& a, const reference::WeightedS8& k, const uint32_t* wtile, int32_t tile_c, int32_t c0,
             int32_t quads, const float* scale, const Rq& rq) {
  const int32_t taps = a.k_h * a.k_w;
  const uint32_t nz = dsp::pack16(-k.z_in, -k.z_in);
  const int32_t xstep = a.dil_w * a.in_c;
  const int32_t* const bias = k.b;
  (void)tile_c;
  for (int32_t n = 0; n < a.batch; ++n)
    for (int32_t oy = 0; oy < a.out_h; ++oy) {
      const int32_t iy0 = oy * a.stride_h - a.pad_top;
      int32_t ky_lo = 0, ky_hi = a.k_h;
      while (ky_lo < a.k_h && iy0 + ky_lo * a.dil_h < 0) ++ky_lo;
      while (ky_hi > ky_lo && iy0 + (ky_hi - 1) * a.dil_h >= a.in_h) --ky_hi;
      for (int32_t ox = 0; ox < a.out_w; ++ox) {
        const int32_t ix0 = ox * a.stride_w - a.pad_left;
        int32_t kx_lo = 0, kx_hi = a.k_w;
        while (kx_lo < a.k_w && ix0 + kx_lo * a.dil_w < 0) ++kx_lo;
        while (kx_hi > kx_lo && ix0 + (kx_hi - 1) * a.dil_w >= a.in_w) --kx_hi;
        const int32_t nx = kx_hi - kx_lo;
        // The first tap inside the image (its row ky_lo, column kx_lo), channel c0.
        const int8_t* img = k.x + int64_t(n) * a.in_h * a.in_w * a.in_c + c0 +
                            (int64_t(iy0 + ky_lo * a.dil_h) * a.in_w + ix0 + kx_lo * a.dil_w) * a.in_c;
        int8_t* out_px = k.y + ((int64_t(n) * a.out_h + oy) * a.out_w + ox) * a.out_c + c0;
        const int32_t row_step = a.dil_h * a.in_w * a.in_c;
        for (int32_t q = 0; q < quads; ++q) {
          int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
          const uint32_t* wq = wtile + 2 * (int64_t(q) * taps + kx_lo);
          const int8_t* xr = img + 4 * q;
          for (int32_t ky = ky_lo; ky < ky_hi; ++ky, xr += row_step) {
            const int8_t* xp = xr;
            const uint32_t* wp = wq + 2 * ky * a.k_w;
            auto tap = [&](const int8_t* x8, const uint32_t* w) {
              const uint32_t x = dsp::ld32(x8);
              const uint32_t xa = dsp::sxtab16(nz, x), xb = dsp::sxtab16_ror8(nz, x);
              a0 = dsp::smlabb(xa, w[0], a0);
              a2 = dsp::smlatt(xa, w[0], a2);
              a1 = dsp::smlabb(xb, w[1], a1);
              a3 = dsp::smlatt(xb, w[1], a3);
            };
            if (nx == 3) {
              tap(xp, wp);
              tap(xp + xstep, wp + 2);
              tap(xp + 2 * xstep, wp + 4);
            } else {
              for (int32_t i = 0; i < nx; ++i, xp += xstep, wp += 2) tap(xp, wp);
            }
          }
          const int32_t oc = c0 + 4 * q;
          if (bias) {
            a0 += bias[oc];
            a1 += bias[oc + 1];
            a2 += bias[oc + 2];
            a3 += bias[oc + 3];
          }
          int8_t* o = out_px + 4 * q;
          o[0] = rq(a0, scale[oc]);
          o[1] = rq(a1, scale[oc + 1]);
          o[2] = rq(a2, scale[oc + 2]);
          o[3] = rq(a3, scale[oc + 3]);
        }
      }
    }
}

// One quad of channels of one output pixel, 3x3 taps: x points at the top-left tap's channel 0
// of the quad, taps `xstep` apart in a row and rows `row_step` apart; w at the quad's 9 widened
// tap pairs (18 words). bias / scale / out at the quad's first channel.
template <typename Rq>
__attribute__((always_inline)) inline void quad3x3(const int8_t* x, int32_t row_step, int32_t xstep, const uint32_t* w, uint32_t nz,
                    const int32_t* bias, const float* scale, int8_t* out, const Rq& rq) {
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  if (bias) {
    a0 = bias[0];
    a1 = bias[1];
    a2 = bias[2];
    a3 = bias[3];
  }
#pragma GCC unroll 3
  for (int r = 0; r < 3; ++r, x += row_step) {
#pragma GCC unroll 3
    for (int t = 0; t < 3; ++t, w += 2) {
      uint64_t pair;  // both words in one LDRD
      std::memcpy(&pair, w, sizeof(pair));
      const uint32_t w0 = static_cast<uint32_t>(pair), w1 = static_cast<uint32_t>(pair >> 32);
      const uint32_t v = dsp::ld32(x + t * xstep);
      const uint32_t xa = dsp::sxtab16(nz, v), xb = dsp::sxtab16_ror8(nz, v);
      a0 = dsp::smlabb(xa, w0, a0);
      a2 = dsp::smlatt(xa, w0, a2);
      a1 = dsp::smlabb(xb, w1, a1);
      a3 = dsp::smlatt(xb, w1, a3);
    }
  }
  out[0] = rq(a0, scale[0]);
  out[1] = rq(a1, scale[1]);
  out[2] = rq(a2, scale[2]);
  out[3] = rq(a3, scale[3]);
}

// 3x3 kernels: interior pixels read the input in place; a pixel whose window leaves the image
// gathers its 9 taps' channels into `patch` first (z_in where outside: x - z_in = 0 adds nothing).
// Kept out of line: each loop nest gets the registers to itself.
template <typename Rq>
__attribute__((noinline)) void dw_tile3x3(const DwArgs& a, const reference::WeightedS8& k, const uint32_t* wtile, int32_t tile_c,
                int32_t c0, int32_t quads, const float* scale, int8_t* patch, const Rq& rq_arg) {
  const Rq rq = rq_arg;  // a local: the int8 stores below could alias the caller's copy
  const uint32_t nz = dsp::pack16(-k.z_in, -k.z_in);
  const int32_t xstep = a.dil_w * a.in_c, row_step = a.dil_h * a.in_w * a.in_c;
  const int32_t width = 4 * quads;
  for (int32_t n = 0; n < a.batch; ++n)
    for (int32_t oy = 0; oy < a.out_h; ++oy) {
      const int32_t iy0 = oy * a.stride_h - a.pad_top;
      const bool rows_in = iy0 >= 0 && iy0 + 2 * a.dil_h < a.in_h;
      for (int32_t ox = 0; ox < a.out_w; ++ox) {
        const int32_t ix0 = ox * a.stride_w - a.pad_left;
        const int8_t* img = k.x + int64_t(n) * a.in_h * a.in_w * a.in_c + c0;
        int8_t* out = k.y + ((int64_t(n) * a.out_h + oy) * a.out_w + ox) * a.out_c + c0;
        const int8_t* x;
        int32_t rs, xs;
        if (rows_in && ix0 >= 0 && ix0 + 2 * a.dil_w < a.in_w) {
          x = img + (int64_t(iy0) * a.in_w + ix0) * a.in_c;
          rs = row_step;
          xs = xstep;
        } else {
          for (int32_t t = 0; t < 9; ++t) {
            const int32_t iy = iy0 + (t / 3) * a.dil_h, ix = ix0 + (t % 3) * a.dil_w;
            int8_t* dst = patch + t * tile_c;
            if (iy < 0 || iy >= a.in_h || ix < 0 || ix >= a.in_w)
              std::memset(dst, k.z_in, size_t(width));
            else
              std::memcpy(dst, img + (int64_t(iy) * a.in_w + ix) * a.in_c, size_t(width));
          }
          x = patch;
          rs = 3 * tile_c;
          xs = tile_c;
        }
        const int32_t* bias = k.b ? k.b + c0 : nullptr;
        for (int32_t q = 0; q < quads; ++q)
          quad3x3(x + 4 * q, rs, xs, wtile + 18 * q, nz, bias ? bias + 4 * q : nullptr, scale + c0 + 4 * q,
                  out + 4 * q, rq);
      }
    }
}
}  // namespace

int64_t depthwise_conv2d_s8_scratch_size(const ConvOptions& opt, const TensorView& input,
                                         const TensorView& weights, const TensorView& output) {
  if (!dw_applies(opt, input, weights)) return -1;
  const int32_t channels = output.dims[3];
  const size_t taps = size_t(weights.dims[1]) * weights.dims[2];
  return static_cast<int64_t>(align4(size_t(channels) * sizeof(float)) + taps * tile_channels(channels) * 2 +
                              taps * tile_channels(channels));  // + the 3x3 edge patch
}

void depthwise_conv2d_s8(const ConvOptions& opt, const FusedActivation& act, const TensorView& input,
                         const TensorView& weights, const TensorView* bias, const TensorView& output,
                         void* scratch) {
  DwArgs a;
  a.batch = input.dims[0], a.in_h = input.dims[1], a.in_w = input.dims[2], a.in_c = input.dims[3];
  a.out_h = output.dims[1], a.out_w = output.dims[2], a.out_c = output.dims[3];
  a.k_h = weights.dims[1], a.k_w = weights.dims[2];
  a.stride_h = opt.stride_h, a.stride_w = opt.stride_w, a.dil_h = opt.dilation_h, a.dil_w = opt.dilation_w;
  a.pad_top = opt.padding.top, a.pad_left = opt.padding.left;
  const int32_t taps = a.k_h * a.k_w, out_c = a.out_c;
  const int32_t tile_c = tile_channels(out_c);
  const reference::WeightedS8 k = reference::weighted_s8(act, input, weights, bias, output);
  float* scale = static_cast<float*>(scratch);
  uint32_t* wtile = reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(scratch) + align4(size_t(out_c) * sizeof(float)));
  int8_t* patch = reinterpret_cast<int8_t*>(wtile + size_t(taps) * tile_c / 2);
  // Integer clamping is exact while |acc| * multiplier < 2^22 for every channel. Checked in
  // single precision (the M4 has no double-precision FPU) against 2^21: float rounding in the
  // bound itself cannot matter with that margin.
  const float max_product = float(taps) * 255.0f * float(1 << (k.w_bits - 1));
  float worst = 0.0f;
  for (int32_t c = 0; c < out_c; ++c) {
    scale[c] = qmath::requant_scale(k.s_in, weights.quant->scale[c], k.s_out);
    const float reach = (max_product + (k.b ? std::fabs(float(k.b[c])) : 0.0f)) * std::fabs(scale[c]);
    worst = reach > worst ? reach : worst;
  }
  const bool int_clamp = worst < 2097152.0f;
  const Requant rq_float(k.z_out, k.lo, k.hi);
  const RequantInt rq_int{k.lo, k.hi, 0x4B400000 - k.z_out};

  for (int32_t c0 = 0; c0 < out_c; c0 += tile_c) {
    const int32_t cn = out_c - c0 < tile_c ? out_c - c0 : tile_c;
    const int32_t quads = cn / 4;
    for (int32_t q = 0; q < quads; ++q)
      for (int32_t t = 0; t < taps; ++t) {
        int32_t w[4];
        const int64_t at = int64_t(t) * out_c + c0 + 4 * q;
        if (k.w_bits == 8) {
          const int8_t* w8 = reinterpret_cast<const int8_t*>(k.w) + at;
          for (int j = 0; j < 4; ++j) w[j] = w8[j];
        } else {
          for (int j = 0; j < 4; ++j) w[j] = qmath::unpack_weight(k.w, at + j, k.w_bits);
        }
        wtile[2 * (q * taps + t)] = dsp::pack16(w[0], w[2]);
        wtile[2 * (q * taps + t) + 1] = dsp::pack16(w[1], w[3]);
      }
    const bool k3x3 = a.k_h == 3 && a.k_w == 3;
    if (k3x3 && int_clamp)
      dw_tile3x3(a, k, wtile, tile_c, c0, quads, scale, patch, rq_int);
    else if (k3x3)
      dw_tile3x3(a, k, wtile, tile_c, c0, quads, scale, patch, rq_float);
    else if (int_clamp)
      dw_tile(a, k, wtile, tile_c, c0, quads, scale, rq_int);
    else
      dw_tile(a, k, wtile, tile_c, c0, quads, scale, rq_float);
    // The last channels of a count not divisible by 4: plain loops, weights read packed.
    for (int32_t c = c0 + 4 * quads; c < c0 + cn; ++c)
      for (int32_t n = 0; n < a.batch; ++n)
        for (int32_t oy = 0; oy < a.out_h; ++oy)
          for (int32_t ox = 0; ox < a.out_w; ++ox) {
            int32_t acc = k.b ? k.b[c] : 0;
            for (int32_t ky = 0; ky < a.k_h; ++ky) {
              const int32_t iy = oy * a.stride_h - a.pad_top + ky * a.dil_h;
              if (iy < 0 || iy >= a.in_h) continue;
              for (int32_t kx = 0; kx < a.k_w; ++kx) {
                const int32_t ix = ox * a.stride_w - a.pad_left + kx * a.dil_w;
                if (ix < 0 || ix >= a.in_w) continue;
                acc += (k.x[((int64_t(n) * a.in_h + iy) * a.in_w + ix) * a.in_c + c] - k.z_in) *
                       qmath::unpack_weight(k.w, int64_t(ky * a.k_w + kx) * out_c + c, k.w_bits);
              }
            }
            k.y[((int64_t(n) * a.out_h + oy) * a.out_w + ox) * out_c + c] = rq_float(acc, scale[c]);
          }
  }
}

}  // namespace cortex_m
}  // namespace tinyquant
