// tinyquant/observer.h — activation range calibration for one tensor (ALGORITHMS.md §1).
//
// Feed the calibration batches' values of one activation tensor with observe(); then
// choose_activation_params(bits) returns the per-tensor asymmetric scale / zero point from the
// better of two candidate ranges, judged by quantization MSE on the observed data:
//
//   kMinMaxAverage  [mean over batches of the batch min, mean over batches of the batch max]
//   kMseClip        the clipped range [r_lo · L, r_hi · H] minimising the MSE, where [L, H] is
//                   the running min/max (with 0) and r_lo, r_hi each range over the geometric grid
//                   2^(−k/8), k = 0..kClipGridSteps−1 (1 down to ~0.0078); after ReLU L = 0 and
//                   the search is over r_hi alone.
//
// Both ranges are widened to include 0 and mapped to (scale, zero point) by params_for_range, so
// ReLU outputs get zero_point = qmin. The MSE is that of fake_quant_activation (the integer
// kernels' arithmetic) evaluated on a histogram of the data.
//
// Memory: the histogram has a fixed number of bins (default 2048) over the running [L, H]; its
// memory is bins × 8 bytes (16 KiB by default) whatever the number of values observed. When a
// batch widens [L, H], the old counts are re-spread over the new, wider bins in proportion to
// overlap (mass moves by at most one new bin width). Each bin's values are scored at its centre,
// which resolves a quantization step into ≥ bins / 2^b points when the chosen range spans [L, H].
// Exact zeros (ReLU's mass at 0) are counted but not binned: 0 is always representable, so they
// add no error. choose_activation_params costs kClipGridSteps² × bins fake-quant evaluations
// (~6.6 M by default, a few ms). The result is deterministic for a given batch order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyquant/quantizer.h"
#include "tinyquant/status.h"

namespace tinyquant {
namespace quant {

enum class RangeMethod : uint8_t { kMinMaxAverage = 0, kMseClip };
const char* range_method_name(RangeMethod method);

struct ActivationChoice {
  ActivationParams params;        // the winner's
  RangeMethod method = RangeMethod::kMinMaxAverage;
  ActivationParams minmax;        // candidate (a)
  ActivationParams mse_clip;      // candidate (b)
  float minmax_lo = 0, minmax_hi = 0;      // the real ranges the candidates came from
  float mse_clip_lo = 0, mse_clip_hi = 0;
  double minmax_mse = 0.0;        // mean squared error per observed value
  double mse_clip_mse = 0.0;
};

class ActivationObserver {
 public:
  static constexpr int32_t kDefaultBins = 2048;
  static constexpr int32_t kClipGridSteps = 57;  // 2^0 .. 2^-7

  explicit ActivationObserver(std::string tensor_name, int32_t bins = kDefaultBins);

  // One batch of n values. Errors (the state is left unchanged): n <= 0, a NaN or Inf value
  // (the message names the tensor, the batch number and the element index).
  Status observe(const float* values, int64_t n);

  // Errors: bits outside 2..8; nothing observed yet.
  Status choose_activation_params(int32_t bits, ActivationChoice* out) const;

  const std::string& name() const { return name_; }
  int64_t batches() const { return batches_; }
  int64_t count() const { return count_; }
  float running_min() const { return lo_; }  // with 0 included
  float running_max() const { return hi_; }
  float average_min() const { return batches_ ? static_cast<float>(sum_min_ / batches_) : 0.0f; }
  float average_max() const { return batches_ ? static_cast<float>(sum_max_ / batches_) : 0.0f; }
  // Bytes held (the histogram), independent of the number of values observed.
  size_t memory_bytes() const { return hist_.size() * sizeof(double); }

  // MSE per value of fake-quantizing the observed data with `params` (histogram estimate).
  double quantization_mse(const ActivationParams& params) const;

 private:
  void rebin(float lo, float hi);

  std::string name_;
  std::vector<double> hist_;  // counts over [lo_, hi_]
  float lo_ = 0.0f, hi_ = 0.0f;
  double sum_min_ = 0.0, sum_max_ = 0.0;
  int64_t batches_ = 0;
  int64_t count_ = 0;
};

}  // namespace quant
}  // namespace tinyquant
