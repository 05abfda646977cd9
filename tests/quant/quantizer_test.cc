// Weight, bias and activation quantizers (quant/quantizer.h) against their definitions.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "test_util.h"
#include "tinyquant/quantizer.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

std::vector<float> gaussian(std::mt19937& rng, size_t n, float sigma = 1.0f) {
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

bool mentions(const Status& s, const char* what) { return std::string(s.message()).find(what) != std::string::npos; }

// Channel of element i for a weight of `shape` with channel axis `axis`, from the definition.
int32_t channel_of(int64_t i, const std::vector<int32_t>& shape, int32_t axis) {
  for (int d = static_cast<int>(shape.size()) - 1; d > axis; --d) i /= shape[d];
  return static_cast<int32_t>(i % shape[axis]);
}

}  // namespace

TEST_CASE("pack_weights / unpack_weight round-trip at every bit-width and odd length") {
  std::mt19937 rng(7);
  for (int32_t bits = 2; bits <= 8; ++bits) {
    for (int64_t n : {1, 3, 5, 7, 13, 31, 101}) {
      std::vector<int8_t> v(n);
      for (auto& x : v) x = static_cast<int8_t>(rand_int(rng, qmath::qmin(bits), qmath::qmax(bits)));
      v[0] = static_cast<int8_t>(qmath::qmin(bits));  // both extremes in every case
      v[n - 1] = static_cast<int8_t>(qmath::qmax(bits));
      const int64_t bytes = packed_bytes(DType::kInt8, n, bits);
      CHECK(bytes == (bits == 8 ? n : (n * bits + 7) / 8));
      std::vector<uint8_t> packed(bytes + 1, 0xAB);  // sentinel byte after the end
      qmath::pack_weights(v.data(), n, bits, packed.data());
      CHECK(packed[bytes] == 0xAB);
      for (int64_t i = 0; i < n; ++i) REQUIRE(qmath::unpack_weight(packed.data(), i, bits) == v[i]);
      const int32_t used = static_cast<int32_t>((n * bits) % 8);
      if (bits < 8 && used != 0) CHECK((packed[bytes - 1] >> used) == 0);  // unused high bits zero
    }
  }
  // Little-endian within bytes: element i at bits [i*b, i*b + b).
  const int8_t four[3] = {1, -1, 7};
  uint8_t out[2];
  qmath::pack_weights(four, 3, 4, out);
  CHECK(out[0] == 0xF1);
  CHECK(out[1] == 0x07);
  const int8_t three[3] = {3, -4, 1};  // bits 0-2 = 011, 3-5 = 100, 6-8 = 001 (straddles)
  qmath::pack_weights(three, 3, 3, out);
  CHECK(out[0] == 0x63);
  CHECK(out[1] == 0x00);
  const int8_t three_b[3] = {0, 0, -1};  // 111 at bits 6-8
  qmath::pack_weights(three_b, 3, 3, out);
  CHECK(out[0] == 0xC0);
  CHECK(out[1] == 0x01);
}

TEST_CASE("quantize_weights: values in range, positive scales, packed bytes, fake quant = s * q") {
  std::mt19937 rng(11);
  struct Case { std::vector<int32_t> shape; int32_t axis; };
  const Case cases[] = {{{6, 3, 3, 5}, 0}, {{1, 3, 3, 7}, 3}, {{9, 13}, 0}, {{4, 1, 1, 3}, 0}};
  for (const Case& cs : cases) {
    for (int32_t bits = 2; bits <= 8; ++bits) {
      CAPTURE(bits);
      const int64_t n = shape_elements(cs.shape);
      std::vector<float> w = gaussian(rng, n, 0.1f);
      quant::QuantizedWeights q;
      REQUIRE(quant::quantize_weights("w", w.data(), cs.shape, cs.axis, bits, &q).is_ok());
      const int32_t channels = cs.shape[cs.axis];
      REQUIRE(q.scales.size() == size_t(channels));
      REQUIRE(q.values.size() == size_t(n));
      CHECK(q.packed.size() == size_t(packed_bytes(DType::kInt8, n, bits)));
      for (int32_t c = 0; c < channels; ++c) {
        CHECK(q.scales[c] > 0.0f);
        CHECK(q.clip_ratios[c] >= 0.5f);
        CHECK(q.clip_ratios[c] <= 1.0f);
      }
      double total = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const int32_t c = channel_of(i, cs.shape, cs.axis);
        const float s = q.scales[c];
        CHECK(q.values[i] >= qmath::qmin(bits));
        CHECK(q.values[i] <= qmath::qmax(bits));
        // q = clamp(round_half_even(w / s)) with this channel's scale: checks the axis mapping.
        const double want = std::min<double>(std::max<double>(std::nearbyint(double(w[i] / s)), qmath::qmin(bits)),
                                             qmath::qmax(bits));
        REQUIRE(q.values[i] == int32_t(want));
        CHECK(q.fake_quant[i] == s * float(q.values[i]));
        CHECK(qmath::unpack_weight(q.packed.data(), i, bits) == q.values[i]);
        total += (double(w[i]) - q.fake_quant[i]) * (double(w[i]) - q.fake_quant[i]);
      }
      CHECK(q.sq_error == doctest::Approx(total).epsilon(1e-9));
    }
  }
}

TEST_CASE("quantize_weights: the MSE clip is never worse than max-abs and wins on a heavy-tailed channel") {
  std::mt19937 rng(3);
  const std::vector<int32_t> shape = {8, 3, 3, 16};
  const int64_t per = 3 * 3 * 16;
  for (int32_t bits = 2; bits <= 8; ++bits) {
    CAPTURE(bits);
    std::vector<float> w = gaussian(rng, 8 * per, 0.05f);
    for (int64_t i = 0; i < per; ++i) w[per + i] = std::uniform_real_distribution<float>(-1, 1)(rng);  // uniform
    std::exponential_distribution<float> expo(20.0f);  // channel 2: Laplace, b = 0.05 (heavy tails)
    for (int64_t i = 0; i < per; ++i) w[2 * per + i] = (i % 2 ? 1.0f : -1.0f) * expo(rng);
    quant::QuantizedWeights mse, maxabs;
    quant::WeightQuantOptions only_max;
    only_max.grid_steps = 1;
    REQUIRE(quant::quantize_weights("w", w.data(), shape, 0, bits, &mse).is_ok());
    REQUIRE(quant::quantize_weights("w", w.data(), shape, 0, bits, &maxabs, only_max).is_ok());
    for (int32_t c = 0; c < 8; ++c) {
      float m = 0.0f;
      for (int64_t i = 0; i < per; ++i) m = std::max(m, std::fabs(w[c * per + i]));
      CHECK(maxabs.scales[c] == m / float(qmath::qmax(bits)));
      CHECK(maxabs.clip_ratios[c] == 1.0f);
      CHECK(mse.channel_sq_error[c] <= maxabs.channel_sq_error[c]);
    }
    if (bits <= 6) {  // at 2..6 bits the Laplace tail is not worth its range
      CHECK(mse.channel_sq_error[2] < (bits <= 4 ? 0.9 : 1.0) * maxabs.channel_sq_error[2]);
      CHECK(mse.clip_ratios[2] < 1.0f);
    }
    CHECK(mse.sq_error < maxabs.sq_error);
  }
}

TEST_CASE("quantize_weights: channels are independent, all-zero channels get a valid scale") {
  std::mt19937 rng(5);
  const std::vector<int32_t> shape = {1, 3, 3, 4};  // depthwise 1HWO: channel = last axis
  std::vector<float> w = gaussian(rng, 36, 0.2f);
  for (int64_t i = 0; i < 36; i += 4) w[i + 2] = 0.0f;  // channel 2 all zero
  quant::QuantizedWeights a, b;
  REQUIRE(quant::quantize_weights("dw", w.data(), shape, 3, 4, &a).is_ok());
  CHECK(a.scales[2] == 1.0f);
  for (int64_t i = 0; i < 36; i += 4) CHECK(a.values[i + 2] == 0);
  std::vector<float> w2 = w;
  for (int64_t i = 0; i < 36; i += 4) w2[i + 1] *= 37.0f;  // change channel 1 only
  w2[1] = 100.0f;
  REQUIRE(quant::quantize_weights("dw", w2.data(), shape, 3, 4, &b).is_ok());
  CHECK(b.scales[1] != a.scales[1]);
  for (int32_t c : {0, 2, 3}) {
    CHECK(b.scales[c] == a.scales[c]);
    CHECK(b.channel_sq_error[c] == a.channel_sq_error[c]);
    for (int64_t i = c; i < 36; i += 4) CHECK(b.values[i] == a.values[i]);
  }
  // A channel quantized alone gets the same scale as inside the tensor.
  std::vector<float> ch0;
  for (int64_t i = 0; i < 36; i += 4) ch0.push_back(w[i]);
  quant::QuantizedWeights alone;
  REQUIRE(quant::quantize_weights("fc", ch0.data(), {1, 9}, 0, 4, &alone).is_ok());
  CHECK(alone.scales[0] == a.scales[0]);
}

TEST_CASE("quantize_weights: b-bit packed bytes are b/8 of the 8-bit ones") {
  std::mt19937 rng(9);
  const std::vector<int32_t> shape = {16, 3, 3, 8};  // 1152 weights
  std::vector<float> w = gaussian(rng, 1152);
  quant::QuantizedWeights q8, q4, q2, q3;
  REQUIRE(quant::quantize_weights("w", w.data(), shape, 0, 8, &q8).is_ok());
  REQUIRE(quant::quantize_weights("w", w.data(), shape, 0, 4, &q4).is_ok());
  REQUIRE(quant::quantize_weights("w", w.data(), shape, 0, 2, &q2).is_ok());
  REQUIRE(quant::quantize_weights("w", w.data(), shape, 0, 3, &q3).is_ok());
  CHECK(q8.packed.size() == 1152);
  CHECK(q4.packed.size() == 576);
  CHECK(q4.packed.size() * 2 == q8.packed.size());
  CHECK(q2.packed.size() == 288);
  CHECK(q3.packed.size() == 432);
  for (int64_t i = 0; i < 1152; ++i) REQUIRE(reinterpret_cast<const int8_t*>(q8.packed.data())[i] == q8.values[i]);
}

TEST_CASE("quantize_weights rejects bad bits, NaN / Inf, empty tensors and bad axes, naming the tensor") {
  std::vector<float> w(12, 0.5f);
  quant::QuantizedWeights q;
  for (int32_t bits : {1, 9, 0, -3}) {
    const Status s = quant::quantize_weights("conv7.weight", w.data(), {3, 4}, 0, bits, &q);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(mentions(s, "conv7.weight"));
    CHECK(mentions(s, (std::to_string(bits) + " bits").c_str()));
  }
  w[5] = std::numeric_limits<float>::quiet_NaN();
  Status s = quant::quantize_weights("fc.w", w.data(), {3, 4}, 0, 4, &q);
  CHECK(!s.is_ok());
  CHECK(mentions(s, "fc.w"));
  CHECK(mentions(s, "NaN"));
  w[5] = -std::numeric_limits<float>::infinity();
  s = quant::quantize_weights("fc.w", w.data(), {3, 4}, 0, 4, &q);
  CHECK(mentions(s, "infinite"));
  w[5] = 0.0f;
  s = quant::quantize_weights("empty.w", w.data(), {0, 4}, 0, 4, &q);
  CHECK(!s.is_ok());
  CHECK(mentions(s, "empty.w"));
  CHECK(mentions(s, "empty"));
  CHECK(!quant::quantize_weights("w", w.data(), {3, 4}, 2, 4, &q).is_ok());
  CHECK(!quant::quantize_weights("w", w.data(), {3, 4}, -1, 4, &q).is_ok());
  CHECK(quant::quantize_weights("w", w.data(), {3, 4}, 1, 2, &q).is_ok());
}

TEST_CASE("quantize_bias rounds half to even with scale s_in * s_w and saturates to int32") {
  // Bias scales 0.125 (exact), so b / scale hits .5 ties exactly.
  const float s_w[] = {0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 1.0f, 1.0f, 1.0f};
  const float b[] = {0.0625f, 0.1875f, -0.0625f, -0.1875f, 0.3125f, 1000.0f, 1e10f, -1e10f, 536870912.0f};
  quant::QuantizedBias q;
  REQUIRE(quant::quantize_bias("conv.bias", b, 9, 0.5f, s_w, &q).is_ok());
  CHECK(q.values[0] == 0);   // 0.5 -> 0
  CHECK(q.values[1] == 2);   // 1.5 -> 2
  CHECK(q.values[2] == 0);   // -0.5 -> 0
  CHECK(q.values[3] == -2);  // -1.5 -> -2
  CHECK(q.values[4] == 2);   // 2.5 -> 2
  CHECK(q.values[5] == 8000);
  CHECK(q.values[6] == std::numeric_limits<int32_t>::max());
  CHECK(q.values[7] == std::numeric_limits<int32_t>::min());
  CHECK(q.values[8] == 1073741824);  // 2^29 / 0.5: large but in range
  CHECK(q.saturated == 2);
  CHECK(q.scales[0] == 0.125f);
  CHECK(q.fake_quant[1] == 0.25f);

  const float nan_b[] = {0.0f, std::numeric_limits<float>::quiet_NaN()};
  Status s = quant::quantize_bias("fc.bias", nan_b, 2, 0.5f, s_w, &q);
  CHECK(!s.is_ok());
  CHECK(mentions(s, "fc.bias"));
  const float zero_scale[] = {0.25f, 0.0f};
  s = quant::quantize_bias("fc.bias", b, 2, 0.5f, zero_scale, &q);
  CHECK(!s.is_ok());
  CHECK(mentions(s, "channel 1"));
}

TEST_CASE("fake_quant_activation equals quantize-then-dequantize in integers, ties to even") {
  // Exact ties at scale 1 and 0.5 (reciprocals exact).
  CHECK(quant::fake_quant_activation(2.5f, 1.0f, 0, 8) == 2.0f);
  CHECK(quant::fake_quant_activation(3.5f, 1.0f, 0, 8) == 4.0f);
  CHECK(quant::fake_quant_activation(-2.5f, 1.0f, 0, 8) == -2.0f);
  CHECK(quant::fake_quant_activation(-3.5f, 1.0f, 0, 8) == -4.0f);
  CHECK(quant::fake_quant_activation(0.5f, 1.0f, 3, 8) == 0.0f);
  CHECK(quant::fake_quant_activation(0.75f, 0.5f, -128, 8) == 1.0f);  // 1.5 -> 2 levels
  CHECK(quant::fake_quant_activation(1.25f, 0.5f, -128, 8) == 1.0f);  // 2.5 -> 2 levels
  CHECK(quant::fake_quant_activation(-1.0f, 0.5f, -128, 8) == 0.0f);  // clamped at qmin = zp
  CHECK(quant::fake_quant_activation(100.0f, 0.5f, -128, 8) == 100.0f);
  CHECK(quant::fake_quant_activation(200.0f, 0.5f, -128, 8) == 127.5f);  // clamped at qmax
  CHECK(quant::fake_quant_activation(100.0f, 0.5f, 0, 4) == 3.5f);      // qmax(4) = 7
  CHECK(quant::fake_quant_activation(-100.0f, 0.5f, 0, 4) == -4.0f);    // qmin(4) = -8

  std::mt19937 rng(13);
  int64_t ties = 0;
  for (int iter = 0; iter < 200; ++iter) {
    const int32_t bits = rand_int(rng, 2, 8);
    const int32_t zp = rand_int(rng, qmath::qmin(bits), qmath::qmax(bits));
    const bool pow2 = iter % 2 == 0;  // power-of-two scales make x * (1/s) land on .5 exactly
    const float scale = pow2 ? std::ldexp(1.0f, rand_int(rng, -8, 2))
                             : std::uniform_real_distribution<float>(1e-3f, 2.0f)(rng);
    const float inv = 1.0f / scale;
    for (int k = 0; k < 500; ++k) {
      float x;
      if (pow2 && k % 2 == 0) {
        x = (static_cast<float>(rand_int(rng, -300, 300)) + 0.5f) * scale;  // exact tie
      } else {
        x = std::uniform_real_distribution<float>(-300.0f, 300.0f)(rng) * scale;
      }
      // Integer reference: the float product x * (1/s) as the kernel forms it, rounded to nearest
      // even in double, then integer clamp after adding the zero point.
      const float prod = x * inv;
      if (prod - std::floor(prod) == 0.5f) ++ties;
      int64_t q = static_cast<int64_t>(std::nearbyint(static_cast<double>(prod))) + zp;
      q = std::min<int64_t>(std::max<int64_t>(q, qmath::qmin(bits)), qmath::qmax(bits));
      REQUIRE(quant::quantize_activation(x, inv, zp, bits) == q);
      REQUIRE(quant::fake_quant_activation(x, scale, zp, bits) == static_cast<float>(int32_t(q) - zp) * scale);
    }
  }
  CHECK(ties > 20000);

  std::vector<float> x = {0.3f, 2.5f, -7.0f};
  quant::ActivationParams p;
  p.scale = 1.0f;
  p.zero_point = 0;
  p.bits = 3;
  REQUIRE(quant::fake_quant_activations("act", x.data(), 3, p).is_ok());
  CHECK(x[0] == 0.0f);
  CHECK(x[1] == 2.0f);
  CHECK(x[2] == -4.0f);
  for (int32_t bits : {1, 9}) {
    p.bits = bits;
    const Status s = quant::fake_quant_activations("relu3", x.data(), 3, p);
    CHECK(!s.is_ok());
    CHECK(mentions(s, "relu3"));
  }
  p.bits = 4;
  p.zero_point = 8;  // qmax(4) = 7
  CHECK(!quant::fake_quant_activations("a", x.data(), 3, p).is_ok());
  p.zero_point = 0;
  p.scale = 0.0f;
  CHECK(!quant::fake_quant_activations("a", x.data(), 3, p).is_ok());
}

TEST_CASE("params_for_range: range includes 0, ReLU ranges put the zero point at qmin") {
  for (int32_t bits = 2; bits <= 8; ++bits) {
    const quant::ActivationParams relu = quant::params_for_range(0.0f, 6.0f, bits);
    CHECK(relu.zero_point == qmath::qmin(bits));
    CHECK(relu.scale == 6.0f / float((1 << bits) - 1));
    const quant::ActivationParams pos = quant::params_for_range(2.0f, 6.0f, bits);  // widened to [0, 6]
    CHECK(pos.zero_point == qmath::qmin(bits));
    CHECK(pos.scale == relu.scale);
    const quant::ActivationParams neg = quant::params_for_range(-3.0f, -1.0f, bits);  // widened to [-3, 0]
    CHECK(neg.zero_point == qmath::qmax(bits));
    const quant::ActivationParams sym = quant::params_for_range(-1.0f, 1.0f, bits);
    CHECK(std::abs(sym.zero_point) <= 1);
    CHECK(quant::fake_quant_activation(0.0f, sym.scale, sym.zero_point, bits) == 0.0f);
  }
  const quant::ActivationParams zero = quant::params_for_range(0.0f, 0.0f, 8);
  CHECK(zero.scale > 0.0f);
  CHECK(zero.zero_point >= -128);
}
