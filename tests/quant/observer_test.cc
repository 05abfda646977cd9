// Activation range calibration (quant/observer.h): the candidates, the choice between them, the
// histogram's MSE estimate against the exact MSE on the raw data, and the error paths.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "test_util.h"
#include "tinyquant/observer.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

bool mentions(const Status& s, const char* what) { return std::string(s.message()).find(what) != std::string::npos; }

double exact_mse(const std::vector<float>& x, const quant::ActivationParams& p) {
  double err = 0.0;
  for (float v : x) {
    const double d = double(v) - quant::fake_quant_activation(v, p.scale, p.zero_point, p.bits);
    err += d * d;
  }
  return err / double(x.size());
}

// Feeds `batches` batches of `per_batch` values from gen(); returns every value fed.
template <typename Gen>
std::vector<float> feed(quant::ActivationObserver& obs, int batches, int per_batch, Gen gen) {
  std::vector<float> all;
  for (int b = 0; b < batches; ++b) {
    std::vector<float> batch(per_batch);
    for (float& v : batch) v = gen(b);
    REQUIRE(obs.observe(batch.data(), per_batch).is_ok());
    all.insert(all.end(), batch.begin(), batch.end());
  }
  return all;
}

}  // namespace

TEST_CASE("observer: ReLU outputs get zero point qmin, symmetric data a zero point near the middle") {
  std::mt19937 rng(21);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  quant::ActivationObserver relu("relu1");
  feed(relu, 10, 2000, [&](int) { return std::max(0.0f, normal(rng)); });
  CHECK(relu.running_min() == 0.0f);
  CHECK(relu.average_min() == 0.0f);
  for (int32_t bits = 2; bits <= 8; ++bits) {
    quant::ActivationChoice c;
    REQUIRE(relu.choose_activation_params(bits, &c).is_ok());
    CHECK(c.params.zero_point == qmath::qmin(bits));
    CHECK(c.minmax.zero_point == qmath::qmin(bits));
    CHECK(c.mse_clip.zero_point == qmath::qmin(bits));
    CHECK(c.params.scale > 0.0f);
  }

  std::uniform_real_distribution<float> uni(-2.0f, 2.0f);
  quant::ActivationObserver sym("add3");
  const std::vector<float> all = feed(sym, 8, 1000, [&](int) { return uni(rng); });
  quant::ActivationChoice c;
  REQUIRE(sym.choose_activation_params(8, &c).is_ok());
  CHECK(std::abs(c.params.zero_point) <= 3);
  CHECK(std::abs(c.minmax.zero_point) <= 1);
  CHECK(c.minmax_lo == doctest::Approx(-2.0).epsilon(0.01));
  CHECK(c.minmax_hi == doctest::Approx(2.0).epsilon(0.01));
  // On uniform data there is nothing worth clipping: the winner is within 2% of min/max's MSE.
  CHECK(exact_mse(all, c.params) <= 1.02 * exact_mse(all, c.minmax));
}

TEST_CASE("observer: heavy-tailed data picks the MSE clip, which really has the lower error") {
  std::mt19937 rng(5);
  std::exponential_distribution<float> expo(1.0f);
  std::bernoulli_distribution sign(0.5);
  quant::ActivationObserver obs("conv2.out");
  // Laplace(0, 1): at 4 bits the extremes cost more in step size than clipping costs in the tails.
  const std::vector<float> all = feed(obs, 10, 5000, [&](int) { return sign(rng) ? expo(rng) : -expo(rng); });
  quant::ActivationChoice c;
  REQUIRE(obs.choose_activation_params(4, &c).is_ok());
  CHECK(c.method == quant::RangeMethod::kMseClip);
  CHECK(std::string(quant::range_method_name(c.method)) == "mse_clip");
  CHECK(c.mse_clip_mse < 0.8 * c.minmax_mse);
  CHECK(c.mse_clip_hi < c.minmax_hi);
  CHECK(c.mse_clip_lo > c.minmax_lo);
  CHECK(c.params.scale == c.mse_clip.scale);
  CHECK(c.params.zero_point == c.mse_clip.zero_point);
  // The reported errors are the histogram's estimates of the true MSE on the data.
  const double true_clip = exact_mse(all, c.mse_clip), true_minmax = exact_mse(all, c.minmax);
  CHECK(c.mse_clip_mse == doctest::Approx(true_clip).epsilon(0.05));
  CHECK(c.minmax_mse == doctest::Approx(true_minmax).epsilon(0.05));
  CHECK(true_clip < true_minmax);
  // The search is a real optimum over its ranges: no nearby symmetric clip does better by > 2%.
  for (float r : {0.8f, 0.9f, 1.1f, 1.25f}) {
    const quant::ActivationParams p = quant::params_for_range(c.mse_clip_lo * r, c.mse_clip_hi * r, 4);
    CHECK(exact_mse(all, p) >= 0.98 * true_clip);
  }
}

TEST_CASE("observer: the histogram stays accurate while batches widen the range") {
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  quant::ActivationObserver obs("growing");
  const size_t bytes = obs.memory_bytes();
  CHECK(bytes == size_t(quant::ActivationObserver::kDefaultBins) * sizeof(double));
  // Batch b has sigma 1 + b and a mean shifted by b / 2: the range grows and drifts every batch.
  const std::vector<float> all = feed(obs, 12, 3000, [&](int b) { return 0.5f * b + (1.0f + b) * normal(rng); });
  CHECK(obs.memory_bytes() == bytes);
  CHECK(obs.count() == 12 * 3000);
  CHECK(obs.batches() == 12);
  float lo = 0.0f, hi = 0.0f;
  for (float v : all) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(obs.running_min() == lo);
  CHECK(obs.running_max() == hi);
  for (int32_t bits : {2, 3, 4, 6, 8}) {
    for (float frac : {0.2f, 0.5f, 1.0f}) {
      const quant::ActivationParams p = quant::params_for_range(lo * frac, hi * frac, bits);
      CAPTURE(bits);
      CAPTURE(frac);
      CHECK(obs.quantization_mse(p) == doctest::Approx(exact_mse(all, p)).epsilon(bits == 8 ? 0.1 : 0.05));
    }
  }
}

TEST_CASE("observer: hundreds of small range extensions do not drift the histogram") {
  // Each batch widens the range a little, so the observer re-bins 300 times; re-binning that
  // moved mass (e.g. to the lower of two overlapped bins) would drift it by up to 300 bins.
  std::mt19937 rng(19);
  quant::ActivationObserver obs("drift");
  const std::vector<float> all = feed(obs, 300, 200, [&](int b) {
    return std::uniform_real_distribution<float>(0.0f, 1.0f + b / 100.0f)(rng);
  });
  for (float frac : {0.3f, 0.6f, 0.9f}) {
    for (int32_t bits : {2, 4, 8}) {
      const quant::ActivationParams p = quant::params_for_range(0.0f, obs.running_max() * frac, bits);
      CAPTURE(frac);
      CAPTURE(bits);
      CHECK(obs.quantization_mse(p) == doctest::Approx(exact_mse(all, p)).epsilon(0.02));
    }
  }
}

TEST_CASE("observer: min/max are averaged over batches") {
  quant::ActivationObserver obs("avg");
  const float b0[] = {-1.0f, 0.5f, 3.0f}, b1[] = {-3.0f, 1.0f}, b2[] = {2.0f, 4.0f};
  REQUIRE(obs.observe(b0, 3).is_ok());
  REQUIRE(obs.observe(b1, 2).is_ok());
  REQUIRE(obs.observe(b2, 2).is_ok());
  CHECK(obs.average_min() == doctest::Approx((-1.0 - 3.0 + 2.0) / 3.0));
  CHECK(obs.average_max() == doctest::Approx((3.0 + 1.0 + 4.0) / 3.0));
  CHECK(obs.running_min() == -3.0f);
  CHECK(obs.running_max() == 4.0f);
  quant::ActivationChoice c;
  REQUIRE(obs.choose_activation_params(8, &c).is_ok());
  CHECK(c.minmax_lo == doctest::Approx(-2.0 / 3.0));
  CHECK(c.minmax_hi == doctest::Approx(8.0 / 3.0));
  const quant::ActivationParams want = quant::params_for_range(-2.0f / 3.0f, 8.0f / 3.0f, 8);
  CHECK(c.minmax.scale == doctest::Approx(want.scale));
  CHECK(c.minmax.zero_point == want.zero_point);

  quant::ActivationObserver zeros("zeros");  // all-zero data: valid params, no error
  const float z[] = {0.0f, 0.0f};
  REQUIRE(zeros.observe(z, 2).is_ok());
  REQUIRE(zeros.choose_activation_params(4, &c).is_ok());
  CHECK(c.params.scale > 0.0f);
  CHECK(c.minmax_mse == 0.0);
  CHECK(c.method == quant::RangeMethod::kMinMaxAverage);
}

TEST_CASE("observer rejects NaN / Inf / empty batches, empty sets and bad bits with clear messages") {
  quant::ActivationObserver obs("block3.relu");
  quant::ActivationChoice c;
  Status s = obs.choose_activation_params(8, &c);
  CHECK(!s.is_ok());
  CHECK(mentions(s, "block3.relu"));
  CHECK(mentions(s, "no calibration values"));

  const float good[] = {0.5f, -0.25f};
  REQUIRE(obs.observe(good, 2).is_ok());
  const float bad[] = {0.5f, 1.0f, std::numeric_limits<float>::quiet_NaN()};
  s = obs.observe(bad, 3);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(mentions(s, "block3.relu"));
  CHECK(mentions(s, "batch 1"));
  CHECK(mentions(s, "element 2"));
  CHECK(mentions(s, "NaN"));
  const float inf[] = {std::numeric_limits<float>::infinity()};
  s = obs.observe(inf, 1);
  CHECK(mentions(s, "batch 1"));
  CHECK(mentions(s, "infinite"));
  s = obs.observe(good, 0);
  CHECK(!s.is_ok());
  CHECK(mentions(s, "empty"));
  // Rejected batches leave the state alone.
  CHECK(obs.batches() == 1);
  CHECK(obs.count() == 2);
  CHECK(obs.running_max() == 0.5f);
  for (int32_t bits : {1, 9}) {
    s = obs.choose_activation_params(bits, &c);
    CHECK(!s.is_ok());
    CHECK(mentions(s, "block3.relu"));
  }
  CHECK(obs.choose_activation_params(2, &c).is_ok());
}
