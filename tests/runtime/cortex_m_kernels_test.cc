// The Cortex-M kernels (runtime/kernels/cortex_m) against the portable reference kernels, bit for
// bit, on random shapes chosen to reach every path: weights read in place at 8 / 4 / 2 bits with
// and without a tail, unpacked tiles (3, 5, 6, 7 bits; rows not starting on a byte; several tiles
// per layer), 1x1 convolutions read straight from the input, odd pixel and channel counts,
// padding / stride / dilation, extreme values (x - z = +-255, w = qmin), and scratch exactly as
// large as its *_scratch_size twin says (guard bytes behind it must stay untouched). On the host
// the DSP instructions run as dsp.h's C definitions; on Cortex-M4 / M7 (tests/mcu) as the real
// instructions, which the first case checks against those definitions.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "kernels/cortex_m/cortex_m_kernels.h"
#include "kernels/cortex_m/dsp.h"
#include "kernels/cortex_m/gemm_s8.h"
#include "kernels/reference/reference_kernels.h"
#include "test_util.h"
#include "tinyquant/qmath.h"
#include "tinyquant/shape_inference.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

// Random weights; `extreme` draws only qmin / qmax.
QWeights packed_weights(std::mt19937& rng, const Dims& dims, int32_t axis, int32_t bits, bool extreme) {
  QWeights w;
  w.dims = dims;
  w.quant.bits = bits;
  w.quant.axis = axis;
  for (int32_t c = 0; c < dims[axis]; ++c) {
    w.quant.scale.push_back(rand_scale(rng, 0.002f, 0.2f));
    w.quant.zero_point.push_back(0);
  }
  std::vector<int8_t>& values = w.values;
  values.resize(static_cast<size_t>(dims.elements()));
  for (int8_t& v : values)
    v = static_cast<int8_t>(extreme ? (rand_int(rng, 0, 1) ? qmath::qmin(bits) : qmath::qmax(bits))
                                    : rand_int(rng, qmath::qmin(bits), qmath::qmax(bits)));
  w.packed.resize(static_cast<size_t>(packed_bytes(DType::kInt8, dims.elements(), bits)));
  qmath::pack_weights(values.data(), dims.elements(), bits, w.packed.data());
  return w;
}

QTensor input(std::mt19937& rng, const Dims& dims, bool extreme) {
  QTensor t = qtensor(rng, dims, 8, rand_scale(rng, 0.005f, 0.1f), !extreme);
  if (extreme) {  // x - z at the int16 lanes' widest: -128 - 127 and 127 - (-128)
    t.quant.zero_point = {rand_int(rng, 0, 1) ? 127 : -128};
    for (int8_t& v : t.data) v = static_cast<int8_t>(rand_int(rng, 0, 1) ? -128 : 127);
  }
  return t;
}

// An output scale that keeps most outputs off the clamps.
float out_scale(float s_in, const QWeights& w, int64_t terms) {
  float sw = 0.0f;
  for (float s : w.quant.scale) sw += s;
  sw /= static_cast<float>(w.quant.scale.size());
  return s_in * sw * std::sqrt(static_cast<float>(terms)) * 64.0f * float(1 << (w.quant.bits - 1)) / 128.0f;
}

FusedActivation any_act(std::mt19937& rng) {
  switch (rand_int(rng, 0, 2)) {
    case 0: return FusedActivation();
    case 1: return FusedActivation::relu();
    default: return FusedActivation::relu6();
  }
}

TensorView bias_view(std::vector<int32_t>& b) {
  TensorView v;
  v.dtype = DType::kInt32;
  v.dims.rank = 1;
  v.dims.d[0] = static_cast<int32_t>(b.size());
  v.data = b.data();
  return v;
}

// Scratch of exactly `bytes` followed by guard bytes that must survive the kernel.
struct Scratch {
  static constexpr size_t kGuard = 64;
  std::vector<uint32_t> words;
  size_t bytes;
  explicit Scratch(int64_t n) : words((static_cast<size_t>(n) + kGuard + 3) / 4), bytes(static_cast<size_t>(n)) {
    std::memset(words.data(), 0xA5, words.size() * 4);
  }
  void* data() { return words.data(); }
  bool guard_intact() const {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(words.data());
    for (size_t i = bytes; i < bytes + kGuard; ++i)
      if (p[i] != 0xA5) return false;
    return true;
  }
};

}  // namespace

TEST_CASE("DSP instructions: known answers, and the target's instructions equal dsp.h's C definitions") {
  using namespace tinyquant::dsp;
  CHECK(sxtb16(0x80FF7F01u) == 0xFFFF0001u);        // bytes 0, 2: 0x01 -> 1, 0xFF -> -1
  CHECK(sxtb16_ror8(0x80FF7F01u) == 0xFF80007Fu);   // bytes 1, 3: 0x7F -> 127, 0x80 -> -128
  CHECK(sxtab16(pack16(-127, 128), 0x00800081u) == pack16(-127 - 127, 128 - 128));
  CHECK(sxtab16_ror8(pack16(10, -10), 0x05000300u) == pack16(13, -5));
  CHECK(smlad(pack16(-255, 255), pack16(-128, -128), 7) == 7 + 255 * 128 - 255 * 128);
  CHECK(smlad(pack16(-32768, -32768), pack16(-32768, -32768), 0) == int32_t(0x80000000u));  // wraps
  CHECK(smlabb(pack16(-3, 100), pack16(5, 100), 1) == -14);
  CHECK(smlatt(pack16(100, -3), pack16(100, 5), 1) == -14);
  CHECK(pkhbt(0x11112222u, 0x33334444u) == 0x44442222u);
  CHECK(pkhtb(0x11112222u, 0x33334444u) == 0x11113333u);
  std::mt19937 rng(4);
  int differ = 0;
  for (int i = 0; i < 20000; ++i) {
    const uint32_t a = rng(), b = rng();
    const int32_t acc = static_cast<int32_t>(rng());
    differ += sxtb16(a) != c::sxtb16(a);
    differ += sxtb16_ror8(a) != c::sxtb16_ror8(a);
    differ += sxtab16(a, b) != c::sxtab16(a, b);
    differ += sxtab16_ror8(a, b) != c::sxtab16_ror8(a, b);
    differ += smlad(a, b, acc) != c::smlad(a, b, acc);
    differ += smlabb(a, b, acc) != c::smlabb(a, b, acc);
    differ += smlatt(a, b, acc) != c::smlatt(a, b, acc);
  }
  MESSAGE("DSP instructions " << (cortex_m::native_dsp() ? "native" : "emulated in C"));
  CHECK(differ == 0);
}

TEST_CASE("Cortex-M conv2d_s8 equals the portable kernel bit for bit on every path") {
  std::mt19937 rng(20261202);
  int in_place = 0, tiled = 0, direct = 0, multi_tile = 0;
  for (int iter = 0; iter < 300; ++iter) {
    CAPTURE(iter);
    const int32_t bits = iter % 3 == 0 ? rand_int(rng, 2, 8) : (iter % 3 == 1 ? 4 : (iter % 2 ? 2 : 8));
    const bool extreme = iter % 11 == 0;
    ConvOptions o;
    const bool one_by_one = iter % 5 == 0;
    const int kh = one_by_one ? 1 : rand_int(rng, 1, 3), kw = one_by_one ? 1 : rand_int(rng, 1, 3);
    o.stride_h = rand_int(rng, 1, 2), o.stride_w = rand_int(rng, 1, 2);
    if (!one_by_one) {
      o.dilation_h = rand_int(rng, 1, 2), o.dilation_w = rand_int(rng, 1, 2);
      o.padding = {rand_int(rng, 0, kh - 1), rand_int(rng, 0, kw - 1), rand_int(rng, 0, kh - 1),
                   rand_int(rng, 0, kw - 1)};
    }
    // Channels: multiples of 4 / 8 / 16 (whole words), other counts (tails, unaligned rows), and
    // deep layers (several tiles when unpacked).
    const int pick = rand_int(rng, 0, 3);
    const int c = pick == 0 ? 16 * rand_int(rng, 1, 4) : pick == 1 ? rand_int(rng, 1, 40)
                                                        : pick == 2 ? 8 * rand_int(rng, 1, 6) : rand_int(rng, 60, 130);
    const int oc = rand_int(rng, 1, 9);
    const int n = rand_int(rng, 1, 2), h = rand_int(rng, kh * o.dilation_h, 7), w = rand_int(rng, kw * o.dilation_w, 7);
    const int oh = window_output_size(h, kh, o.stride_h, o.dilation_h, o.padding.top, o.padding.bottom);
    const int ow = window_output_size(w, kw, o.stride_w, o.dilation_w, o.padding.left, o.padding.right);
    REQUIRE(oh > 0);
    REQUIRE(ow > 0);
    QTensor x = input(rng, dims_of({n, h, w, c}), extreme);
    QWeights wt = packed_weights(rng, dims_of({oc, kh, kw, c}), 0, bits, extreme);
    const int64_t depth = int64_t(kh) * kw * c;
    const float so = out_scale(x.quant.scale[0], wt, depth);
    QTensor want = qtensor(rng, dims_of({n, oh, ow, oc}), 8, so, false);
    QTensor got = want;
    std::vector<int32_t> b(static_cast<size_t>(oc));
    for (int32_t& v : b) v = rand_int(rng, -20000, 20000);
    TensorView bv = bias_view(b);
    const bool has_bias = iter % 4 != 0;
    const FusedActivation act = any_act(rng);
    const int64_t bytes = cortex_m::conv2d_s8_scratch_size(o, x.view(), wt.view(), got.view());
    REQUIRE(bytes > 0);
    Scratch scratch(bytes);
    reference::conv2d_s8(o, act, x.view(), wt.view(), has_bias ? &bv : nullptr, want.view());
    cortex_m::conv2d_s8(o, act, x.view(), wt.view(), has_bias ? &bv : nullptr, got.view(), scratch.data());
    REQUIRE(count_mismatches(got.data, want.data) == 0);
    REQUIRE(scratch.guard_intact());
    const bool placed = (bits == 8 || bits == 4 || bits == 2) && (depth * bits) % 8 == 0 && depth >= 32 / bits;
    in_place += placed;
    tiled += !placed;
    direct += placed && one_by_one && o.padding.top == 0;
    multi_tile += !placed && ((depth + 3) / 4 * 4) * oc > cortex_m::kTileBytes;
  }
  MESSAGE("conv paths: " << in_place << " in place, " << direct << " of them 1x1 direct, " << tiled << " tiled, "
                         << multi_tile << " with several tiles");
  CHECK(in_place > 100);
  CHECK(tiled > 30);
  CHECK(direct > 10);
  CHECK(multi_tile > 5);
}

TEST_CASE("Cortex-M fully_connected_s8 equals the portable kernel bit for bit") {
  std::mt19937 rng(99);
  for (int iter = 0; iter < 200; ++iter) {
    CAPTURE(iter);
    const int32_t bits = 2 + iter % 7;
    const bool extreme = iter % 9 == 0;
    const int rows = rand_int(rng, 1, 3), out_f = rand_int(rng, 1, 13);
    const int in_f = iter % 4 == 0 ? 16 * rand_int(rng, 1, 30) : rand_int(rng, 1, 300);
    QTensor x = input(rng, dims_of({rows, in_f}), extreme);
    QWeights wt = packed_weights(rng, dims_of({out_f, in_f}), 0, bits, extreme);
    QTensor want = qtensor(rng, dims_of({rows, out_f}), 8, out_scale(x.quant.scale[0], wt, in_f), false);
    QTensor got = want;
    std::vector<int32_t> b(static_cast<size_t>(out_f));
    for (int32_t& v : b) v = rand_int(rng, -20000, 20000);
    TensorView bv = bias_view(b);
    const FusedActivation act = any_act(rng);
    const int64_t bytes = cortex_m::fully_connected_s8_scratch_size(x.view(), wt.view(), got.view());
    REQUIRE(bytes > 0);
    Scratch scratch(bytes);
    reference::fully_connected_s8(act, x.view(), wt.view(), iter % 3 ? &bv : nullptr, want.view());
    cortex_m::fully_connected_s8(act, x.view(), wt.view(), iter % 3 ? &bv : nullptr, got.view(), scratch.data());
    REQUIRE(count_mismatches(got.data, want.data) == 0);
    REQUIRE(scratch.guard_intact());
  }
}

TEST_CASE("Cortex-M depthwise_conv2d_s8 equals the portable kernel bit for bit") {
  std::mt19937 rng(31);
  for (int iter = 0; iter < 200; ++iter) {
    CAPTURE(iter);
    const int32_t bits = 2 + iter % 7;
    const bool extreme = iter % 9 == 0;
    ConvOptions o;
    const bool k3 = iter % 3 == 0;  // the 3x3 path (interior pixels in place, edges through a patch)
    const int kh = k3 ? 3 : rand_int(rng, 1, 5), kw = k3 ? 3 : rand_int(rng, 1, 5);
    o.stride_h = rand_int(rng, 1, 2), o.stride_w = rand_int(rng, 1, 2);
    o.dilation_h = rand_int(rng, 1, 2), o.dilation_w = rand_int(rng, 1, 2);
    o.padding = {rand_int(rng, 0, kh - 1), rand_int(rng, 0, kw - 1), rand_int(rng, 0, kh - 1),
                 rand_int(rng, 0, kw - 1)};
    const int c = iter % 5 == 0 ? rand_int(rng, 65, 150) : rand_int(rng, 1, 24);  // several tiles of 64
    const int n = rand_int(rng, 1, 2), h = rand_int(rng, kh * o.dilation_h, kh * o.dilation_h + 5),
              w = rand_int(rng, kw * o.dilation_w, kw * o.dilation_w + 5);
    const int oh = window_output_size(h, kh, o.stride_h, o.dilation_h, o.padding.top, o.padding.bottom);
    const int ow = window_output_size(w, kw, o.stride_w, o.dilation_w, o.padding.left, o.padding.right);
    QTensor x = input(rng, dims_of({n, h, w, c}), extreme);
    QWeights wt = packed_weights(rng, dims_of({1, kh, kw, c}), 3, bits, extreme);
    // Now and then an output scale so small that |acc| * multiplier can pass 2^22: the kernel's
    // integer clamp is not exact there and it must requantize as qmath does.
    const float so = out_scale(x.quant.scale[0], wt, kh * kw) * (iter % 7 == 3 ? 1e-5f : 1.0f);
    QTensor want = qtensor(rng, dims_of({n, oh, ow, c}), 8, so, false);
    QTensor got = want;
    std::vector<int32_t> b(static_cast<size_t>(c));
    for (int32_t& v : b) v = rand_int(rng, -5000, 5000);
    TensorView bv = bias_view(b);
    const FusedActivation act = any_act(rng);
    const int64_t bytes = cortex_m::depthwise_conv2d_s8_scratch_size(o, x.view(), wt.view(), got.view());
    REQUIRE(bytes > 0);
    Scratch scratch(bytes);
    reference::depthwise_conv2d_s8(o, act, x.view(), wt.view(), iter % 3 ? &bv : nullptr, want.view());
    cortex_m::depthwise_conv2d_s8(o, act, x.view(), wt.view(), iter % 3 ? &bv : nullptr, got.view(), scratch.data());
    REQUIRE(count_mismatches(got.data, want.data) == 0);
    REQUIRE(scratch.guard_intact());
  }
  // A depth multiplier other than 1 stays with the portable kernel.
  ConvOptions o;
  o.depth_multiplier = 2;
  QTensor x = input(rng, dims_of({1, 4, 4, 3}), false);
  QWeights wt = packed_weights(rng, dims_of({1, 3, 3, 6}), 3, 8, false);
  QTensor y = qtensor(rng, dims_of({1, 2, 2, 6}), 8, 0.1f, false);
  CHECK(cortex_m::depthwise_conv2d_s8_scratch_size(o, x.view(), wt.view(), y.view()) == -1);
}
