#include "tinyquant/observer.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tinyquant {
namespace quant {

const char* range_method_name(RangeMethod method) {
  switch (method) {
    case RangeMethod::kMinMaxAverage: return "minmax_average";
    case RangeMethod::kMseClip: return "mse_clip";
  }
  return "unknown";
}

ActivationObserver::ActivationObserver(std::string tensor_name, int32_t bins)
    : name_(std::move(tensor_name)), hist_(static_cast<size_t>(std::max(bins, 1)), 0.0) {}

Status ActivationObserver::observe(const float* values, int64_t n) {
  TQ_ENSURE(n > 0 && values != nullptr, kInvalidArgument, "tensor '%s': calibration batch %lld is empty",
            name_.c_str(), static_cast<long long>(batches_));
  // One branch-free pass (eight lanes the compiler vectorises) for the range and finiteness
  // (v − v is 0 exactly for finite v); the offending element is looked up only on error.
  float lmin[8], lmax[8];
  bool bad = false;
  for (int k = 0; k < 8; ++k) lmin[k] = lmax[k] = values[0];
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) {
      const float v = values[i + k];
      lmin[k] = v < lmin[k] ? v : lmin[k];
      lmax[k] = v > lmax[k] ? v : lmax[k];
      bad |= !(v - v == 0.0f);
    }
  for (; i < n; ++i) {
    const float v = values[i];
    lmin[0] = v < lmin[0] ? v : lmin[0];
    lmax[0] = v > lmax[0] ? v : lmax[0];
    bad |= !(v - v == 0.0f);
  }
  if (bad)
    for (int64_t j = 0; j < n; ++j)
      TQ_ENSURE(std::isfinite(values[j]), kInvalidArgument, "tensor '%s': calibration batch %lld, element %lld is %s",
                name_.c_str(), static_cast<long long>(batches_), static_cast<long long>(j),
                std::isnan(values[j]) ? "NaN" : "infinite");
  float bmin = lmin[0], bmax = lmax[0];
  for (int k = 1; k < 8; ++k) {
    bmin = std::min(bmin, lmin[k]);
    bmax = std::max(bmax, lmax[k]);
  }
  const float lo = std::min({lo_, bmin, 0.0f}), hi = std::max({hi_, bmax, 0.0f});
  if (lo != lo_ || hi != hi_) rebin(lo, hi);

  const int32_t bins = static_cast<int32_t>(hist_.size());
  const double width = (static_cast<double>(hi_) - lo_) / bins;
  // Bin indices are computed a block at a time in a branch-free loop the compiler vectorises
  // (the same double arithmetic per value as one value at a time, so the same bins); exact zeros
  // (ReLU's mass at 0) go to a spare bin that is never read: 0 is always representable, so they
  // add no error, and binning them would score them at a bin centre instead. About half the
  // values of a ReLU output are zeros, so a branch on them mispredicted on every other value.
  // The counts go into four interleaved histograms: neighbouring values mostly fall in the same
  // bin, and one histogram makes every increment wait for the previous one's store. Counts are
  // integers, so the merged result is exactly the single histogram's.
  std::vector<uint32_t> part(static_cast<size_t>(bins + 1) * 4, 0u);
  constexpr int64_t kBlock = 256;
  int32_t idx[kBlock];
  const double lo_d = lo_, top = bins - 1;
  for (int64_t f = 0; f < n; f += kBlock) {
    const int64_t m = std::min<int64_t>(kBlock, n - f);
    const float* v = values + f;
    for (int64_t i = 0; i < m; ++i) {
      const double t = (static_cast<double>(v[i]) - lo_d) / width;
      // t >= 0 up to rounding; the clamp keeps [0, bins - 1] as the one-at-a-time cast did.
      const int32_t b = static_cast<int32_t>(std::min(std::max(t, 0.0), top));
      idx[i] = v[i] == 0.0f ? bins : b;
    }
    for (int64_t i = 0; i < m; ++i) ++part[static_cast<size_t>(idx[i]) * 4 + (i & 3)];
  }
  for (int32_t b = 0; b < bins; ++b) {
    const uint32_t* c = &part[static_cast<size_t>(b) * 4];
    hist_[b] += double(uint64_t(c[0]) + c[1] + c[2] + c[3]);
  }
  sum_min_ += bmin;
  sum_max_ += bmax;
  ++batches_;
  count_ += n;
  return Status::ok();
}

// The range only ever widens, so each old bin overlaps at most two new ones; split its count by
// overlap (as if uniform within the bin).
void ActivationObserver::rebin(float lo, float hi) {
  const int32_t bins = static_cast<int32_t>(hist_.size());
  std::vector<double> old(bins, 0.0);
  old.swap(hist_);
  const double old_lo = lo_, old_w = (static_cast<double>(hi_) - lo_) / bins;
  const double new_w = (static_cast<double>(hi) - lo) / bins;
  lo_ = lo;
  hi_ = hi;
  if (old_w <= 0.0) return;  // nothing but exact zeros observed so far (or nothing at all)
  for (int32_t i = 0; i < bins; ++i) {
    if (old[i] == 0.0) continue;
    const double a = (old_lo + i * old_w - lo) / new_w, b = (old_lo + (i + 1) * old_w - lo) / new_w;
    const int64_t j = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(std::floor(a)), 0), bins - 1);
    if (b <= j + 1 || j == bins - 1) {
      hist_[j] += old[i];
    } else {
      const double first = (j + 1 - a) / (b - a);
      hist_[j] += old[i] * first;
      hist_[j + 1] += old[i] * (1.0 - first);
    }
  }
}

double ActivationObserver::quantization_mse(const ActivationParams& p) const {
  if (count_ == 0) return 0.0;
  const int32_t bins = static_cast<int32_t>(hist_.size());
  const double width = (static_cast<double>(hi_) - lo_) / bins;
  const float inv_scale = 1.0f / p.scale;
  double err = 0.0;
  for (int32_t i = 0; i < bins; ++i) {
    if (hist_[i] == 0.0) continue;
    const float x = static_cast<float>(lo_ + (i + 0.5) * width);
    const float fq = dequantize_activation(quantize_activation(x, inv_scale, p.zero_point, p.bits), p.scale, p.zero_point);
    const double d = static_cast<double>(x) - fq;
    err += hist_[i] * d * d;
  }
  return err / static_cast<double>(count_);
}

Status ActivationObserver::choose_activation_params(int32_t bits, ActivationChoice* out) const {
  TQ_RETURN_IF_ERROR(check_bits(name_.c_str(), bits));
  TQ_ENSURE(count_ > 0, kInvalidArgument, "tensor '%s': no calibration values observed", name_.c_str());

  ActivationChoice& c = *out;
  c.minmax_lo = std::min(average_min(), 0.0f);
  c.minmax_hi = std::max(average_max(), 0.0f);
  c.minmax = params_for_range(c.minmax_lo, c.minmax_hi, bits);
  c.minmax_mse = quantization_mse(c.minmax);

  // Candidate (b): 2-D search over clip ratios of each side; a side at 0 has nothing to clip.
  const int32_t lo_steps = lo_ < 0.0f ? kClipGridSteps : 1, hi_steps = hi_ > 0.0f ? kClipGridSteps : 1;
  c.mse_clip_mse = std::numeric_limits<double>::infinity();
  for (int32_t i = 0; i < lo_steps; ++i) {
    const float lo = lo_ * std::exp2(-i / 8.0f);
    for (int32_t j = 0; j < hi_steps; ++j) {
      const float hi = hi_ * std::exp2(-j / 8.0f);
      const ActivationParams p = params_for_range(lo, hi, bits);
      const double mse = quantization_mse(p);
      if (mse < c.mse_clip_mse) {
        c.mse_clip_mse = mse;
        c.mse_clip = p;
        c.mse_clip_lo = lo;
        c.mse_clip_hi = hi;
      }
    }
  }
  // Ties go to the plain min/max average.
  c.method = c.mse_clip_mse < c.minmax_mse ? RangeMethod::kMseClip : RangeMethod::kMinMaxAverage;
  c.params = c.method == RangeMethod::kMseClip ? c.mse_clip : c.minmax;
  return Status::ok();
}

}  // namespace quant
}  // namespace tinyquant
