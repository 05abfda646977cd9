// The matrix core of the Cortex-M Conv2D and FullyConnected kernels (see cortex_m_kernels.h):
// output channel rows of b-bit weights times int16 activation columns, 2 x 2 at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dsp.h"
#include "tinyquant/qmath.h"

namespace tinyquant {
namespace cortex_m {

// Beyond this many weights per output channel a 64x-scaled int32 sum of 2-bit products could
// wrap (|x - z| <= 255, |64 w| <= 128): the portable kernel takes those layers.
constexpr int32_t kMaxDepth = 32768;
// Int8 rows unpacked at a time when the weights cannot be read in place.
constexpr int32_t kTileBytes = 1024;
// The longest column tail (entries beyond the whole weight words: fewer than 32 / bits).
constexpr int32_t kMaxTail = 16;

inline size_t align4(size_t n) { return (n + 3) & ~size_t(3); }

// How a layer's weight rows (`rows` output channels of `depth` weights at `bits`) are read.
struct RowsPlan {
  bool in_place = false;  // rows read from the model: bits in {2, 4, 8}, each row starts on a byte
  int32_t bits = 8;       // width the inner loop reads (8 for unpacked tiles)
  int32_t depth = 0;      // weights per row (K)
  int32_t groups = 0;     // whole 32-bit words of weights per row
  int32_t kmain = 0;      // weights covered by those words (groups * 32 / bits)
  int32_t kcol = 0;       // int16 entries in one activation column (K, or K rounded up to 4)
  int32_t row_bytes = 0;  // stride between rows where the loop reads them
  int32_t tile_rows = 0;  // rows per unpacked tile (all rows when in place)
};

inline bool plan_rows(int32_t rows, int32_t depth, int32_t bits, RowsPlan* p) {
  if (rows < 1 || depth < 1 || depth > kMaxDepth || bits < qmath::kMinBits || bits > qmath::kMaxBits) return false;
  p->depth = depth;
  const int32_t per_word = 32 / bits;
  if ((bits == 8 || bits == 4 || bits == 2) && (int64_t(depth) * bits) % 8 == 0 && depth >= per_word) {
    p->in_place = true;
    p->bits = bits;
    p->groups = depth / per_word;
    p->kmain = p->groups * per_word;
    p->kcol = depth;
    p->row_bytes = depth * bits / 8;
    p->tile_rows = rows;
  } else {
    p->in_place = false;
    p->bits = 8;
    p->kcol = (depth + 3) & ~3;
    p->groups = p->kcol / 4;
    p->kmain = p->kcol;
    p->row_bytes = p->kcol;
    const int32_t fit = kTileBytes / p->kcol;
    p->tile_rows = fit < 1 ? 1 : (fit > rows ? rows : fit);
  }
  return true;
}

// Scratch of a plan:
// Two interleaved columns' steps, and their two tails.
inline size_t columns_bytes(const RowsPlan& p) { return size_t(p.kmain) * 4 + 2 * kMaxTail * sizeof(int16_t); }
inline size_t tile_bytes(const RowsPlan& p) { return p.in_place ? 0 : size_t(p.tile_rows) * p.kcol; }

// Unpacks rows [first, first + count) of a packed weight matrix into int8 rows of p.kcol bytes,
// zero beyond the depth.
inline void unpack_tile(const uint8_t* w, int32_t bits, const RowsPlan& p, int32_t first, int32_t count,
                        int8_t* tile) {
  for (int32_t r = 0; r < count; ++r) {
    int8_t* dst = tile + int64_t(r) * p.kcol;
    const int64_t base = int64_t(first + r) * p.depth;
    for (int32_t k = 0; k < p.depth; ++k) dst[k] = static_cast<int8_t>(qmath::unpack_weight(w, base + k, bits));
    for (int32_t k = p.depth; k < p.kcol; ++k) dst[k] = 0;
  }
}

// The requantization of qmath::requantize with everything per layer hoisted: the clamp bounds
// as floats (lo - z, hi - z, exactly as qmath converts them) and the zero point folded into the
// rounding constant. Same operations on the same values: bit-exact with qmath::requantize.
struct Requant {
  float lo = 0.0f, hi = 0.0f;
  int32_t bias_minus_z = 0;  // 0x4B400000 - z: round_half_even's magic, zero point included
  Requant() = default;
  Requant(int32_t z, int32_t lo_q, int32_t hi_q)
      : lo(static_cast<float>(lo_q - z)), hi(static_cast<float>(hi_q - z)), bias_minus_z(0x4B400000 - z) {}
  int8_t operator()(int32_t acc, float scale) const {
    float v = static_cast<float>(acc) * scale;
    v = v < lo ? lo : v;  // std::max(v, lo): v unless v < lo
    v = v > hi ? hi : v;  // std::min(v, hi)
    const float biased = v + 12582912.0f;
    int32_t bits;
    std::memcpy(&bits, &biased, sizeof(bits));
    return static_cast<int8_t>(bits - bias_minus_z);
  }
};

// Activation columns in scratch: the whole-word part (p.kmain entries) as int16 pairs in the
// lane order widening produces, one step (2 words = 4 activations) at a time; with two columns
// the steps interleave (col 0 step s at words 4s, 4s+1; col 1 at 4s+2, 4s+3) so one pointer
// walks both. The tail beyond p.kmain (fewer than 32 / bits entries) in natural order apart.
// Steps [first, first + count * 32 / bits / 4) of one column from int8 activations s (count
// words' worth: count * 32 / bits activations), x - z widened; `stride` = words per step (2 or 4).
template <int B>
inline void build_steps(const int8_t* s, int32_t activations, int32_t z, uint32_t* out, int32_t stride) {
  const uint32_t nz = dsp::pack16(-z, -z);
  if (B == 8) {
    for (int32_t k = 0; k < activations; k += 4, s += 4, out += stride) {
      const uint32_t x = dsp::ld32(s);
      out[0] = dsp::sxtab16(nz, x);       // (x0, x2)
      out[1] = dsp::sxtab16_ror8(nz, x);  // (x1, x3)
    }
  } else if (B == 4) {
    for (int32_t k = 0; k < activations; k += 8, s += 8, out += 2 * stride) {
      const uint32_t x0 = dsp::ld32(s), x1 = dsp::ld32(s + 4);
      const uint32_t a0 = dsp::sxtab16(nz, x0), b0 = dsp::sxtab16_ror8(nz, x0);
      const uint32_t a1 = dsp::sxtab16(nz, x1), b1 = dsp::sxtab16_ror8(nz, x1);
      out[0] = dsp::pkhbt(a0, a1);           // (x0, x4)
      out[1] = dsp::pkhtb(a1, a0);           // (x2, x6)
      out[stride] = dsp::pkhbt(b0, b1);      // (x1, x5)
      out[stride + 1] = dsp::pkhtb(b1, b0);  // (x3, x7)
    }
  } else {
    for (int32_t k = 0; k < activations; k += 16, s += 16, out += 4 * stride) {
      const uint32_t x0 = dsp::ld32(s), x1 = dsp::ld32(s + 4), x2 = dsp::ld32(s + 8), x3 = dsp::ld32(s + 12);
      const uint32_t a0 = dsp::sxtab16(nz, x0), b0 = dsp::sxtab16_ror8(nz, x0);
      const uint32_t a1 = dsp::sxtab16(nz, x1), b1 = dsp::sxtab16_ror8(nz, x1);
      const uint32_t a2 = dsp::sxtab16(nz, x2), b2 = dsp::sxtab16_ror8(nz, x2);
      const uint32_t a3 = dsp::sxtab16(nz, x3), b3 = dsp::sxtab16_ror8(nz, x3);
      out[0] = dsp::pkhbt(a0, a2);                   // (x0, x8)
      out[1] = dsp::pkhbt(a1, a3);                   // (x4, x12)
      out[stride] = dsp::pkhbt(b0, b2);              // (x1, x9)
      out[stride + 1] = dsp::pkhbt(b1, b3);          // (x5, x13)
      out[2 * stride] = dsp::pkhtb(a2, a0);          // (x2, x10)
      out[2 * stride + 1] = dsp::pkhtb(a3, a1);      // (x6, x14)
      out[3 * stride] = dsp::pkhtb(b2, b0);          // (x3, x11)
      out[3 * stride + 1] = dsp::pkhtb(b3, b1);      // (x7, x15)
    }
  }
}

inline void build_steps(int32_t bits, const int8_t* s, int32_t activations, int32_t z, uint32_t* out,
                        int32_t stride) {
  switch (bits) {
    case 4: build_steps<4>(s, activations, z, out, stride); break;
    case 2: build_steps<2>(s, activations, z, out, stride); break;
    default: build_steps<8>(s, activations, z, out, stride); break;
  }
}

// Column j (0 or 1) of a pair (stride 4) or a lone column (stride 2) from p.kcol activations.
inline void build_column(const int8_t* s, const RowsPlan& p, int32_t z, uint32_t* steps, int32_t stride,
                         int16_t* tail) {
  build_steps(p.bits, s, p.kmain, z, steps, stride);
  for (int32_t k = p.kmain; k < p.kcol; ++k) *tail++ = static_cast<int16_t>(s[k] - z);
}

// Step s of widening one weight word: two registers of two int16 lanes each (scaled by 2^(8-B)).
template <int B>
inline void widen(uint32_t w, int s, uint32_t* la, uint32_t* lb) {
  uint32_t t;
  if (B == 8)
    t = w;
  else if (B == 4)
    t = (s == 0 ? w << 4 : w) & 0xF0F0F0F0u;
  else
    t = (w << (6 - 2 * s)) & 0xC0C0C0C0u;
  *la = dsp::sxtb16(t);
  *lb = dsp::sxtb16_ror8(t);
}

// Sums over `groups` weight words of rows r0 (and r0 + row_bytes) with one column or an
// interleaved pair, each 2^(8-B) times the dot product: acc[0] = r0.c0, acc[1] = r0.c1,
// acc[2] = r1.c0, acc[3] = r1.c1.
template <int B, bool kTwoRows, bool kTwoCols>
inline void dot_words(const uint8_t* r0, int32_t row_bytes, const uint32_t* c, int32_t groups, int32_t* acc) {
  constexpr int kSteps = 8 / B;
  int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
  const uint8_t* const end = r0 + 4 * groups;
  while (r0 != end) {
    const uint32_t w0 = dsp::ld32(r0);
    const uint32_t w1 = kTwoRows ? dsp::ld32(r0 + row_bytes) : 0u;
    r0 += 4;
#pragma GCC unroll 4
    for (int s = 0; s < kSteps; ++s) {
      uint32_t la, lb;
      widen<B>(w0, s, &la, &lb);
      const uint32_t x0a = c[0], x0b = c[1];
      a00 = dsp::smlad(la, x0a, a00);
      a00 = dsp::smlad(lb, x0b, a00);
      uint32_t x1a = 0, x1b = 0;
      if (kTwoCols) {
        x1a = c[2];
        x1b = c[3];
        a01 = dsp::smlad(la, x1a, a01);
        a01 = dsp::smlad(lb, x1b, a01);
      }
      if (kTwoRows) {
        widen<B>(w1, s, &la, &lb);
        a10 = dsp::smlad(la, x0a, a10);
        a10 = dsp::smlad(lb, x0b, a10);
        if (kTwoCols) {
          a11 = dsp::smlad(la, x1a, a11);
          a11 = dsp::smlad(lb, x1b, a11);
        }
      }
      c += kTwoCols ? 4 : 2;
    }
  }
  acc[0] = a00;
  acc[1] = a01;
  acc[2] = a10;
  acc[3] = a11;
}

// What one GEMM call needs besides the columns: rows (in place or a tile), per-channel
// multipliers, bias, output requantization.
struct GemmArgs {
  RowsPlan plan;
  const uint8_t* rows = nullptr;  // row 0 of this call's channels
  int32_t first = 0, count = 0;   // output channels [first, first + count)
  const int32_t* bias = nullptr;  // indexed by output channel, or null
  const float* scale = nullptr;   // requant multiplier per output channel
  Requant rq;
};

// y0[oc] (and y1[oc]) for the call's channels from the column steps (an interleaved pair when
// kTwoCols) and tails t0 (t1).
template <int B, bool kTwoCols>
inline void gemm_columns(const GemmArgs& args, const uint32_t* steps, const int16_t* t0, const int16_t* t1,
                         int8_t* y0, int8_t* y1) {
  const RowsPlan p = args.plan;  // locals: the int8 stores below may alias anything in memory
  const Requant rq = args.rq;
  const int32_t* const bias = args.bias;
  const float* const scale = args.scale;
  constexpr int kShift = 8 - B;
  const int32_t tail = p.kcol - p.kmain;  // only in place: kcol = depth there
  const uint8_t* row = args.rows;
  const int32_t last = args.first + args.count;
  int32_t oc = args.first;
  for (; oc + 1 < last; oc += 2, row += 2 * p.row_bytes) {
    int32_t acc[4];
    dot_words<B, true, kTwoCols>(row, p.row_bytes, steps, p.groups, acc);
    const int32_t b0 = bias ? bias[oc] : 0, b1 = bias ? bias[oc + 1] : 0;
    acc[0] = (acc[0] >> kShift) + b0;  // exact: a multiple of 2^kShift
    acc[1] = (acc[1] >> kShift) + b0;
    acc[2] = (acc[2] >> kShift) + b1;
    acc[3] = (acc[3] >> kShift) + b1;
    for (int32_t k = 0; k < tail; ++k) {
      const int32_t w0 = qmath::unpack_weight(row, p.kmain + k, B);
      const int32_t w1 = qmath::unpack_weight(row + p.row_bytes, p.kmain + k, B);
      acc[0] += w0 * t0[k];
      acc[2] += w1 * t0[k];
      if (kTwoCols) {
        acc[1] += w0 * t1[k];
        acc[3] += w1 * t1[k];
      }
    }
    const float s0 = scale[oc], s1 = scale[oc + 1];
    y0[oc] = rq(acc[0], s0);
    y0[oc + 1] = rq(acc[2], s1);
    if (kTwoCols) {
      y1[oc] = rq(acc[1], s0);
      y1[oc + 1] = rq(acc[3], s1);
    }
  }
  if (oc < last) {
    int32_t acc[4];
    dot_words<B, false, kTwoCols>(row, p.row_bytes, steps, p.groups, acc);
    const int32_t b0 = bias ? bias[oc] : 0;
    acc[0] = (acc[0] >> kShift) + b0;
    acc[1] = (acc[1] >> kShift) + b0;
    for (int32_t k = 0; k < tail; ++k) {
      const int32_t w0 = qmath::unpack_weight(row, p.kmain + k, B);
      acc[0] += w0 * t0[k];
      if (kTwoCols) acc[1] += w0 * t1[k];
    }
    y0[oc] = rq(acc[0], scale[oc]);
    if (kTwoCols) y1[oc] = rq(acc[1], scale[oc]);
  }
}

// Two columns (interleaved steps, tails t0 / t1, outputs y0 / y1) or one (t1, y1 null).
inline void gemm(const GemmArgs& g, const uint32_t* steps, const int16_t* t0, const int16_t* t1, int8_t* y0,
                 int8_t* y1) {
  const bool two = y1 != nullptr;
  switch (g.plan.bits) {
    case 4: two ? gemm_columns<4, true>(g, steps, t0, t1, y0, y1) : gemm_columns<4, false>(g, steps, t0, t0, y0, y0); break;
    case 2: two ? gemm_columns<2, true>(g, steps, t0, t1, y0, y1) : gemm_columns<2, false>(g, steps, t0, t0, y0, y0); break;
    default: two ? gemm_columns<8, true>(g, steps, t0, t1, y0, y1) : gemm_columns<8, false>(g, steps, t0, t0, y0, y0); break;
  }
}

}  // namespace cortex_m
}  // namespace tinyquant
